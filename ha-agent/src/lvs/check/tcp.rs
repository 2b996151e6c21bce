//! TCP_CHECK (check_tcp.c): a TCP connection opens within `connect_timeout`, then is closed.

use std::time::Instant;

use super::{Attempt, Target};

pub(super) async fn check(target: &Target) -> Attempt {
    let start = Instant::now();
    match target.connect_tcp().await {
        Ok(stream) => {
            let attempt = Attempt::up(start);
            drop(stream);
            attempt
        }
        Err(why) => Attempt::down(format!("TCP_CHECK: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{checker, round};
    use crate::config::lvs::CheckKind;
    use crate::lvs::Verdict;

    #[tokio::test]
    async fn up_while_the_port_accepts_down_once_it_is_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = checker(CheckKind::Tcp, addr);
        let a = round(&c).await;
        assert_eq!(a.verdict, Verdict::Up);
        assert!(a.latency.is_some());
        drop(listener);
        let a = round(&c).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("refused")),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn bindto_is_the_source_of_the_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = checker(CheckKind::Tcp, listener.local_addr().unwrap());
        c.bind = Some("127.0.0.9:0".parse().unwrap());
        let (a, accepted) = tokio::join!(round(&c), listener.accept());
        assert_eq!(a.verdict, Verdict::Up);
        assert_eq!(
            accepted.unwrap().1.ip(),
            "127.0.0.9".parse::<std::net::IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn bind_if_binds_the_connection_to_the_device() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = checker(CheckKind::Tcp, listener.local_addr().unwrap());
        c.bind_if = Some("lo".into());
        assert_eq!(round(&c).await.verdict, Verdict::Up);
        c.bind_if = Some("nosuchdev0".into());
        let a = round(&c).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("cannot create a socket")),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn retries_wait_delay_before_retry_then_fail_with_their_count() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut c = checker(CheckKind::Tcp, addr);
        c.retry = 2;
        c.delay_before_retry = Duration::from_millis(100);
        let start = std::time::Instant::now();
        let a = round(&c).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.ends_with("after 2 retries")),
            "{a:?}"
        );
        // Two delays between three attempts.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}

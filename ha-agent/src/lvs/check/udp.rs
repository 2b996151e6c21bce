//! UDP_CHECK (check_udp.c): sends `payload` on a connected UDP socket. With `require_reply`, a
//! reply within `connect_timeout` whose length is within `min_reply_length`..=
//! `max_reply_length` and whose first bytes match the given ones is up; without, only an ICMP
//! destination unreachable (port, host or network: IP_RECVERR, as keepalived) is down, and
//! silence is up.

use std::time::Instant;

use super::{Attempt, Target};
use crate::config::lvs::UdpCheck;

pub(super) async fn check(target: &Target, udp: &UdpCheck) -> Attempt {
    let start = Instant::now();
    let socket = match target.connect_udp() {
        Ok(s) => s,
        Err(why) => return Attempt::down(format!("UDP_CHECK: {why}")),
    };
    if let Err(e) = recv_errors(&socket, target.connect.is_ipv4()) {
        return Attempt::down(format!("UDP_CHECK: IP_RECVERR: {e}"));
    }
    if let Err(e) = socket.send(&udp.payload).await {
        return Attempt::down(format!("UDP_CHECK: send to {} failed: {e}", target.connect));
    }
    let max = udp.max_reply_length as usize;
    let mut buf = vec![0u8; max.max(udp.payload.len()).saturating_add(1).min(65536)];
    let got = tokio::time::timeout(target.timeout, socket.recv(&mut buf)).await;
    match (got, &udp.require_reply) {
        (Ok(Err(e)), _) => {
            Attempt::down(format!("UDP connection to {} failed: {e}", target.connect))
        }
        (Err(_), None) => Attempt::up(start),
        (Err(_), Some(_)) => Attempt::down(format!(
            "UDP_CHECK: no reply from {} within {:?}",
            target.connect, target.timeout
        )),
        (Ok(Ok(_)), None) => Attempt::up(start),
        (Ok(Ok(n)), Some(want)) => {
            if reply_matches(&buf[..n], want, udp) {
                Attempt::up(start)
            } else {
                Attempt::down(format!(
                    "UDP check to {} reply data mismatch",
                    target.connect
                ))
            }
        }
    }
}

/// IP_RECVERR / IPV6_RECVERR, as keepalived's `udp_bind_connect`: every ICMP destination
/// unreachable (host, network, port) fails the receive, not only port unreachable.
fn recv_errors(socket: &tokio::net::UdpSocket, v4: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let (level, name) = if v4 {
        (libc::SOL_IP, libc::IP_RECVERR)
    } else {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    };
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this function borrows, with an int option and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// keepalived's `check_udp_reply`: the length within bounds, then the lesser of the reply's
/// and the expected length compared.
fn reply_matches(reply: &[u8], want: &[u8], udp: &UdpCheck) -> bool {
    let len = reply.len();
    if len < udp.min_reply_length as usize || len > udp.max_reply_length as usize {
        return false;
    }
    let n = len.min(want.len());
    reply[..n] == want[..n]
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use crate::config::lvs::{CheckKind, UdpCheck};
    use crate::lvs::Verdict;
    use crate::lvs::check::testing::{checker, round};

    fn udp(require_reply: Option<&[u8]>) -> UdpCheck {
        UdpCheck {
            payload: b"ping".to_vec(),
            require_reply: require_reply.map(<[u8]>::to_vec),
            min_reply_length: 0,
            max_reply_length: 255,
        }
    }

    /// A UDP server answering every datagram with `reply`, or silent.
    async fn server(
        reply: Option<&'static [u8]>,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let (_, from) = socket.recv_from(&mut buf).await.unwrap();
                if let Some(r) = reply {
                    socket.send_to(r, from).await.unwrap();
                }
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_required_reply_must_come_and_match() {
        let (echo, t1) = server(Some(b"pong!")).await;
        let (silent, t2) = server(None).await;
        assert_eq!(
            round(&checker(CheckKind::Udp(udp(Some(b"pong"))), echo))
                .await
                .verdict,
            Verdict::Up
        );
        let a = round(&checker(CheckKind::Udp(udp(Some(b"nope"))), echo)).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("mismatch")),
            "{a:?}"
        );
        let mut short = udp(Some(b"pong"));
        short.max_reply_length = 4;
        assert!(matches!(
            round(&checker(CheckKind::Udp(short), echo)).await.verdict,
            Verdict::Down(_)
        ));
        let a = round(&checker(CheckKind::Udp(udp(Some(b"pong"))), silent)).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("no reply")),
            "{a:?}"
        );
        t1.abort();
        t2.abort();
    }

    #[tokio::test]
    async fn without_require_reply_only_port_unreachable_is_down() {
        let (silent, t) = server(None).await;
        assert_eq!(
            round(&checker(CheckKind::Udp(udp(None)), silent))
                .await
                .verdict,
            Verdict::Up
        );
        t.abort();
        // A closed port: the kernel answers ICMP port unreachable.
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let a = round(&checker(CheckKind::Udp(udp(None)), closed)).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("refused")),
            "{a:?}"
        );
    }
}

//! SMTP_CHECK (check_smtp.c): a 220 greeting, `HELO helo_name` answered 250, then `QUIT` (its
//! answer read, whatever it is). Each read and write waits at most `connect_timeout`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use super::{Attempt, Target};

pub(super) async fn check(target: &Target, helo_name: &str) -> Attempt {
    let start = Instant::now();
    let stream = match target.connect_tcp().await {
        Ok(s) => s,
        Err(why) => return Attempt::down(format!("SMTP_CHECK {why}")),
    };
    let to = target.connect;
    match converse(stream, helo_name, target.timeout).await {
        Ok(()) => Attempt::up(start),
        Err(why) => Attempt::down(format!("SMTP_CHECK {why} server {to}")),
    }
}

async fn converse(stream: TcpStream, helo_name: &str, timeout: Duration) -> Result<(), String> {
    let mut io = BufReader::new(stream);
    if reply(&mut io, timeout).await? != 220 {
        return Err("Bad greeting banner from".into());
    }
    send(&mut io, &format!("HELO {helo_name}\r\n"), timeout).await?;
    if reply(&mut io, timeout).await? != 250 {
        return Err("Bad HELO response from".into());
    }
    send(&mut io, "QUIT\r\n", timeout).await?;
    reply(&mut io, timeout).await?;
    Ok(())
}

async fn send(io: &mut BufReader<TcpStream>, line: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, io.get_mut().write_all(line.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("Write failure ({e}) to")),
        Err(_) => Err("Write timeout to".into()),
    }
}

/// An SMTP reply's code: its lines up to the last (`NNN text`, where `NNN-text` continues).
async fn reply(io: &mut BufReader<TcpStream>, timeout: Duration) -> Result<u16, String> {
    loop {
        let mut line = String::new();
        // One reply line is short; a server sending an endless one is cut at 512 bytes.
        let mut limited = tokio::io::AsyncReadExt::take(&mut *io, 512);
        match tokio::time::timeout(timeout, limited.read_line(&mut line)).await {
            Ok(Ok(0)) => return Err("Read failure (connection closed) from".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("Read failure ({e}) from")),
            Err(_) => return Err("Read timeout from".into()),
        }
        let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::TcpListener;

    use crate::config::lvs::CheckKind;
    use crate::lvs::Verdict;
    use crate::lvs::check::testing::{checker, round};

    /// An SMTP greeter: `banner`, then answers HELO with `helo_code`; records the HELO line.
    async fn greeter(
        banner: &'static str,
        helo_code: u16,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut io = BufReader::new(s);
            io.get_mut().write_all(banner.as_bytes()).await.unwrap();
            let mut helo = String::new();
            io.read_line(&mut helo).await.unwrap();
            let answer = format!("{helo_code} hello\r\n");
            io.get_mut().write_all(answer.as_bytes()).await.unwrap();
            let mut quit = String::new();
            let _ = io.read_line(&mut quit).await;
            let _ = io.get_mut().write_all(b"221 bye\r\n").await;
            helo
        });
        (addr, task)
    }

    fn smtp() -> CheckKind {
        CheckKind::Smtp {
            helo_name: "director.example".into(),
        }
    }

    #[tokio::test]
    async fn greeting_then_helo_is_up() {
        let (addr, server) = greeter("220-mx.example ESMTP\r\n220 ready\r\n", 250).await;
        assert_eq!(round(&checker(smtp(), addr)).await.verdict, Verdict::Up);
        assert_eq!(server.await.unwrap(), "HELO director.example\r\n");
    }

    #[tokio::test]
    async fn a_bad_greeting_or_helo_answer_is_down() {
        let (addr, _server) = greeter("554 go away\r\n", 250).await;
        let a = round(&checker(smtp(), addr)).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("Bad greeting banner")),
            "{a:?}"
        );
        let (addr, _server) = greeter("220 ready\r\n", 501).await;
        let a = round(&checker(smtp(), addr)).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("Bad HELO response")),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_down_after_connect_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = checker(smtp(), listener.local_addr().unwrap());
        let start = std::time::Instant::now();
        let a = round(&c).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("Read timeout")),
            "{a:?}"
        );
        assert!(start.elapsed() >= c.connect_timeout);
    }
}

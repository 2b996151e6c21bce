//! DNS_CHECK (check_dns.c): a query (recursion desired) of `type` for `name` over UDP; up when
//! a response with our identifier comes (QR set) with RCODE 0 (NOERROR). Datagrams that are
//! too short, carry another identifier or are not responses are ignored, as keepalived does,
//! until `connect_timeout`. keepalived does not look at the answer count: neither does this.

use std::time::Instant;

use super::{Attempt, Target};
use crate::config::lvs::DnsCheck;

/// The DNS header's length (RFC 1035 4.1.1).
const HEADER_LEN: usize = 12;

pub(super) async fn check(target: &Target, dns: &DnsCheck) -> Attempt {
    let start = Instant::now();
    let socket = match target.connect_udp() {
        Ok(s) => s,
        Err(why) => return Attempt::down(format!("DNS_CHECK: {why}")),
    };
    let id = (super::random_u64() & 0xffff) as u16;
    let query = query(id, dns.qtype, &dns.name);
    if let Err(e) = socket.send(&query).await {
        return Attempt::down(format!(
            "DNS_CHECK: failed to send the query to {}: {e}",
            target.connect
        ));
    }
    let wait = async {
        let mut buf = [0u8; 1024];
        loop {
            let n = socket
                .recv(&mut buf)
                .await
                .map_err(|e| format!("failed to read socket; {e}"))?;
            match response_rcode(&buf[..n], id) {
                Some(0) => return Ok(()),
                Some(rcode) => return Err(format!("read error occurred. (rcode = {rcode})")),
                None => continue,
            }
        }
    };
    match tokio::time::timeout(target.timeout, wait).await {
        Ok(Ok(())) => Attempt::up(start),
        Ok(Err(why)) => Attempt::down(format!("DNS_CHECK to {}: {why}", target.connect)),
        Err(_) => Attempt::down(format!(
            "DNS_CHECK to {}: read timeout from socket",
            target.connect
        )),
    }
}

/// keepalived's `dns_make_query`: header (id, RD, one question), QNAME by labels (`.` is the
/// root), QTYPE, QCLASS IN.
fn query(id: u16, qtype: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let label = &label.as_bytes()[..label.len().min(63)];
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    q
}

/// The RCODE of `packet` when it is a response to query `id`; None to keep waiting.
fn response_rcode(packet: &[u8], id: u16) -> Option<u8> {
    if packet.len() < HEADER_LEN || u16::from_be_bytes([packet[0], packet[1]]) != id {
        return None;
    }
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & 0x8000 == 0 {
        return None;
    }
    Some((flags & 0x000f) as u8)
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::*;
    use crate::config::lvs::CheckKind;
    use crate::lvs::Verdict;
    use crate::lvs::check::testing::{checker, round};

    #[test]
    fn the_query_is_keepalived_s() {
        let q = query(0xabcd, 6, ".");
        assert_eq!(q, [0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]);
        let q = query(1, 1, "www.example.com.");
        assert_eq!(&q[12..], b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(query(1, 1, "www.example.com"), q);
    }

    /// A DNS responder: first a stray datagram (another id), then the answer with `rcode`.
    async fn responder(rcode: u8) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                let mut stray = buf[..n].to_vec();
                stray[0] ^= 0xff;
                stray[2] |= 0x80;
                socket.send_to(&stray, from).await.unwrap();
                let mut answer = buf[..n].to_vec();
                answer[2] |= 0x80; // QR
                answer[3] = (answer[3] & 0xf0) | rcode;
                socket.send_to(&answer, from).await.unwrap();
            }
        });
        (addr, task)
    }

    fn dns() -> CheckKind {
        CheckKind::Dns(DnsCheck {
            qtype: 6,
            name: ".".into(),
        })
    }

    #[tokio::test]
    async fn noerror_is_up_another_rcode_down_silence_down() {
        let (ok, t1) = responder(0).await;
        assert_eq!(round(&checker(dns(), ok)).await.verdict, Verdict::Up);
        let (servfail, t2) = responder(2).await;
        let a = round(&checker(dns(), servfail)).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("rcode = 2")),
            "{a:?}"
        );
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = round(&checker(dns(), silent.local_addr().unwrap())).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("timeout")),
            "{a:?}"
        );
        t1.abort();
        t2.abort();
    }
}

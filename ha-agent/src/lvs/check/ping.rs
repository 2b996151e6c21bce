//! PING_CHECK (check_ping.c): an ICMP (ICMPv6) echo request, up when the matching echo reply
//! comes within `connect_timeout`. An unprivileged ICMP datagram socket when
//! `net.ipv4.ping_group_range` allows it (the kernel then owns the identifier and filters the
//! replies), else a raw socket (root), where the reply is matched by identifier and sequence.

use ha_common::wire::internet_checksum;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use socket2::{Protocol, Type};
use tokio::net::UdpSocket;

use super::{Attempt, Target};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// keepalived's `seq_no`: one sequence for every PING_CHECK of the process.
static SEQUENCE: AtomicU16 = AtomicU16::new(0);

pub(super) async fn check(target: &Target) -> Attempt {
    let start = Instant::now();
    let dst = target.destination();
    let v4 = dst.is_ipv4();
    let protocol = if v4 {
        Protocol::ICMPV4
    } else {
        Protocol::ICMPV6
    };
    // Datagram first (no privilege needed), raw when ping_group_range forbids it.
    let (socket, raw) = match target.socket(Type::DGRAM, Some(protocol)) {
        Ok(s) => (s, false),
        Err(_) => match target.socket(Type::RAW, Some(protocol)) {
            Ok(s) => (s, true),
            Err(e) => return Attempt::down(format!("PING_CHECK: cannot open an ICMP socket: {e}")),
        },
    };
    let id = (super::random_u64() & 0xffff) as u16;
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let socket = match socket
        .connect(&dst.into())
        .and_then(|()| UdpSocket::from_std(socket.into()))
    {
        Ok(s) => s,
        Err(e) => return Attempt::down(format!("PING_CHECK: connect to {}: {e}", target.connect)),
    };
    let request = echo_request(v4, id, seq);
    if let Err(e) = socket.send(&request).await {
        return Attempt::down(format!(
            "PING_CHECK: send to {} failed: {e}",
            target.connect
        ));
    }
    let wait = async {
        let mut buf = [0u8; 1500];
        loop {
            let n = socket.recv(&mut buf).await?;
            if is_reply(&buf[..n], v4, raw, id, seq) {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    match tokio::time::timeout(target.timeout, wait).await {
        Ok(Ok(())) => Attempt::up(start),
        Ok(Err(e)) => Attempt::down(format!("PING_CHECK: {} failed: {e}", target.connect)),
        Err(_) => Attempt::down(format!(
            "PING_CHECK: no echo reply from {} within {:?}",
            target.connect, target.timeout
        )),
    }
}

/// An echo request: type, code, checksum, identifier, sequence, payload.
fn echo_request(v4: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v4 { ECHO_REQUEST_V4 } else { ECHO_REQUEST_V6 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"ha-agent");
    // ICMPv6's checksum covers a pseudo-header: the kernel computes it.
    if v4 {
        let sum = internet_checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// Whether `packet` answers our request. A raw IPv4 socket reads the IP header too; a
/// datagram socket's identifier is the kernel's, so only the sequence is ours to match.
fn is_reply(packet: &[u8], v4: bool, raw: bool, id: u16, seq: u16) -> bool {
    let icmp = if v4 && raw {
        let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        packet.get(ihl..).unwrap_or(&[])
    } else {
        packet
    };
    if icmp.len() < 8 {
        return false;
    }
    let reply = if v4 { ECHO_REPLY_V4 } else { ECHO_REPLY_V6 };
    icmp[0] == reply
        && (!raw || u16::from_be_bytes([icmp[4], icmp[5]]) == id)
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::lvs::CheckKind;
    use crate::lvs::Verdict;
    use crate::lvs::check::testing::{checker, round};

    #[tokio::test]
    async fn loopback_answers_in_both_families() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let a = round(&checker(CheckKind::Ping, addr.parse().unwrap())).await;
            assert_eq!(a.verdict, Verdict::Up, "{addr}");
        }
    }

    #[test]
    fn an_address_without_a_route_is_down() {
        // A network namespace of this thread only, with no route anywhere: nothing leaves it.
        std::thread::spawn(|| {
            // SAFETY: unshare(2) on this thread, which the test owns and ends.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "unshare(CLONE_NEWNET) needs root: {}",
                std::io::Error::last_os_error()
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut c = checker(CheckKind::Ping, "192.0.2.1:0".parse().unwrap());
            c.connect_timeout = Duration::from_millis(200);
            let a = rt.block_on(round(&c));
            assert!(matches!(&a.verdict, Verdict::Down(_)), "{a:?}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_checksum_of_a_request_verifies() {
        let p = echo_request(true, 0x1234, 7);
        assert_eq!(internet_checksum(&p), 0);
        // A raw IPv4 socket reads the IP header (IHL 5) first.
        let raw = |icmp: &[u8]| [&[0x45u8; 1][..], &[0; 19], icmp].concat();
        assert!(is_reply(
            &raw(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]),
            true,
            true,
            0x1234,
            7
        ));
        assert!(!is_reply(
            &raw(&[0, 0, 0, 0, 0x12, 0x35, 0, 7]),
            true,
            true,
            0x1234,
            7
        ));
        assert!(!is_reply(
            &raw(&[8, 0, 0, 0, 0x12, 0x34, 0, 7]),
            true,
            true,
            0x1234,
            7
        ));
        // A datagram socket: the identifier is the kernel's.
        assert!(is_reply(
            &[0, 0, 0, 0, 0x99, 0x99, 0, 7],
            true,
            false,
            0x1234,
            7
        ));
        assert!(is_reply(
            &[129, 0, 0, 0, 0x99, 0x99, 0, 7],
            false,
            false,
            0x1234,
            7
        ));
    }
}

//! `icmp_prober TARGET [INTERVAL_MS]`: the lab client's reachability prober. Sends an ICMP echo
//! request to TARGET every INTERVAL_MS milliseconds (default 1) on a fixed schedule and prints
//! one line per echo reply, in `ping -D -n`'s format, which `ha_tests::probe` parses:
//!
//! ```text
//! [1795323246.435891] 64 bytes from 192.0.2.200: icmp_seq=17 ttl=64 time=0.081 ms
//! ```
//!
//! Why not `ping -i 0.001`: iputils' ping spins between requests at that interval and takes
//! ~95 % of a core; on the 2-core machines the benchmarks and chaos runs use, that is CPU taken
//! from the daemons being measured. This one sleeps between requests and blocks on replies.
//! Stop it with SIGINT or SIGTERM. Needs root (raw ICMP sockets).

use ha_common::wire::internet_checksum;
use std::{
    io::Write,
    mem,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// ICMP header (8) + payload (56): the 64 bytes ping sends by default.
const ICMP_LEN: usize = 64;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let target: IpAddr = args
        .next()
        .context("usage: icmp_prober TARGET [INTERVAL_MS]")?
        .parse()
        .context("TARGET: an IPv4 or IPv6 address")?;
    let interval_ms: u64 = match args.next() {
        Some(a) => a
            .parse()
            .context("INTERVAL_MS: a whole number of milliseconds")?,
        None => 1,
    };
    if interval_ms == 0 {
        bail!("INTERVAL_MS must be at least 1");
    }
    let socket = Arc::new(open(target)?);
    // Echo identifier: the process id, as ping does, so concurrent probers tell replies apart.
    let ident = (std::process::id() & 0xffff) as u16;
    let epoch = Instant::now();
    let sender = {
        let socket = socket.clone();
        std::thread::spawn(move || send_loop(&socket, target, ident, epoch, interval_ms))
    };
    let received = receive_loop(&socket, target, ident, epoch);
    // The receive loop only ends on an error; the sender's error (if any) is the better one.
    if sender.is_finished() {
        sender.join().expect("sender thread")?;
    }
    received
}

/// A raw ICMP (or ICMPv6) socket.
fn open(target: IpAddr) -> Result<OwnedFd> {
    let (domain, proto) = match target {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
    };
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .context("socket(SOCK_RAW, ICMP): the prober needs root (CAP_NET_RAW)");
    }
    // SAFETY: `fd` is a socket just returned by the kernel and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends request `seq` at `epoch + seq × interval`; a late wake-up sends at once without
/// bursting to catch up (the schedule restarts from now).
fn send_loop(
    socket: &OwnedFd,
    target: IpAddr,
    ident: u16,
    epoch: Instant,
    interval_ms: u64,
) -> Result<()> {
    let interval = Duration::from_millis(interval_ms);
    let mut base = epoch;
    let mut k: u32 = 0;
    let mut seq: u16 = 1;
    loop {
        let due = base + interval * k;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > interval {
            base = now;
            k = 0;
        }
        let sent_ns = epoch.elapsed().as_nanos() as u64;
        let packet = echo_request(target, ident, seq, sent_ns);
        if let Err(e) = send_to(socket.as_raw_fd(), &packet, target) {
            // No route or no neighbour yet (the VIP is moving): what a client sees, not an
            // error of the prober. Anything else ends the run.
            match e.raw_os_error() {
                Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EAGAIN | libc::ENOBUFS) => {}
                _ => return Err(e).context(format!("sendto {target}")),
            }
        }
        seq = seq.wrapping_add(1);
        k += 1;
    }
}

fn echo_request(target: IpAddr, ident: u16, seq: u16, sent_ns: u64) -> [u8; ICMP_LEN] {
    let mut p = [0u8; ICMP_LEN];
    p[0] = match target {
        IpAddr::V4(_) => ECHO_REQUEST_V4,
        IpAddr::V6(_) => ECHO_REQUEST_V6,
    };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(&sent_ns.to_be_bytes());
    if target.is_ipv4() {
        // ICMPv6 checksums are filled in by the kernel on raw ICMPv6 sockets.
        let sum = internet_checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

fn send_to(fd: RawFd, packet: &[u8], target: IpAddr) -> std::io::Result<()> {
    let (addr, len) = sockaddr(target);
    // SAFETY: `packet` and `addr` are valid for the lengths given for the duration of the call.
    let n = unsafe {
        libc::sendto(
            fd,
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const addr).cast(),
            len,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sockaddr(target: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match target {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Blocks on replies; prints each echo reply of ours from `target`.
fn receive_loop(socket: &OwnedFd, target: IpAddr, ident: u16, epoch: Instant) -> Result<()> {
    let mut buf = [0u8; 2048];
    let stdout = std::io::stdout();
    loop {
        let mut from: libc::sockaddr_storage =
            // SAFETY: all-zero is a valid sockaddr_storage.
            unsafe { mem::zeroed() };
        let mut from_len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `buf` and `from` are valid for the lengths given for the duration of the call.
        let n = unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("recvfrom");
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let data = &buf[..n as usize];
        let Some(reply) = parse_reply(data, target, ident) else {
            continue;
        };
        if source(&from) != Some(target) {
            continue;
        }
        let rtt_ns = (epoch.elapsed().as_nanos() as u64).saturating_sub(reply.sent_ns);
        let ttl = reply.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
        let line = format!(
            "[{}.{:06}] {} bytes from {target}: icmp_seq={}{ttl} time={:.3} ms\n",
            wall.as_secs(),
            wall.subsec_micros(),
            reply.len,
            reply.seq,
            rtt_ns as f64 / 1e6
        );
        let mut out = stdout.lock();
        out.write_all(line.as_bytes()).context("stdout")?;
        out.flush().context("stdout")?;
    }
}

struct Reply {
    seq: u16,
    len: usize,
    ttl: Option<u8>,
    sent_ns: u64,
}

/// An echo reply of ours in what a raw socket returned (IPv4: with the IP header).
fn parse_reply(data: &[u8], target: IpAddr, ident: u16) -> Option<Reply> {
    let (icmp, reply_type, ttl) = match target {
        IpAddr::V4(_) => {
            let ihl = usize::from(*data.first()? & 0x0f) * 4;
            (data.get(ihl..)?, ECHO_REPLY_V4, Some(*data.get(8)?))
        }
        IpAddr::V6(_) => (data, ECHO_REPLY_V6, None),
    };
    if icmp.len() < 16 || icmp[0] != reply_type {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != ident {
        return None;
    }
    Some(Reply {
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        len: icmp.len(),
        ttl,
        sent_ns: u64::from_be_bytes(icmp[8..16].try_into().ok()?),
    })
}

fn source(from: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(from.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (ss_family says so).
            let sin: libc::sockaddr_in = unsafe { std::ptr::read(from as *const _ as *const _) };
            Some(IpAddr::V4(Ipv4Addr::from(
                sin.sin_addr.s_addr.to_ne_bytes(),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (ss_family says so).
            let sin6: libc::sockaddr_in6 = unsafe { std::ptr::read(from as *const _ as *const _) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksum_verifies_and_reply_parses() {
        let target = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
        let p = echo_request(target, 0x1234, 7, 42);
        assert_eq!(
            internet_checksum(&p),
            0,
            "a packet with its checksum sums to zero"
        );
        // The reply the target would send: type 0, behind a 20-byte IPv4 header with TTL 64.
        let mut data = vec![
            0x45, 0, 0, 84, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 200, 192, 0, 2, 100,
        ];
        let mut icmp = p.to_vec();
        icmp[0] = ECHO_REPLY_V4;
        data.extend_from_slice(&icmp);
        let r = parse_reply(&data, target, 0x1234).expect("our reply");
        assert_eq!((r.seq, r.len, r.ttl, r.sent_ns), (7, 64, Some(64), 42));
        assert!(
            parse_reply(&data, target, 0x4321).is_none(),
            "another prober's"
        );
        data[20] = ECHO_REQUEST_V4;
        assert!(parse_reply(&data, target, 0x1234).is_none(), "not a reply");
    }
}

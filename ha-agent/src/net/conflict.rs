//! Address claims seen on the wire: another host saying "this IP is at my MAC". A master that
//! sees one for its VIP from a MAC that is not its own has an address conflict (someone else
//! configured the VIP, or another master answers for it); the agent reports it.
//!
//! One `AF_PACKET` socket per interface with a classic BPF filter that passes only ARP and
//! ICMPv6 neighbour advertisements, so the agent reads a frame only for those (a LAN's ARP, not
//! its traffic). Taps like this one see frames before TC ingress, so the `vip_fence` does not
//! hide a claim; frames we send ourselves (`PACKET_OUTGOING`) are skipped.
//!
//! ```text
//! ARP          sender hardware address (sha) claims sender protocol address (spa): a reply, a
//!              request, a gratuitous ARP (spa = tpa) all say "spa is at sha"
//! NA (type 136) the target address is at the target link-layer address option, else at the
//!              Ethernet source
//! ```

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use ha_common::wire::{ETH_HLEN, ETH_P_ARP, ETH_P_IPV6, IPPROTO_ICMPV6};

use super::{IfError, resolve, sockopt, syscall, v4s, v6s};

const ETH_P_ALL: u16 = 0x0003;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LL_ADDR: u8 = 2;
/// Bytes of each frame the filter passes: an ARP frame is 42, an NA with its option 86.
const SNAPLEN: u32 = 256;

/// One host's claim to an address: `addr` is at `mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub addr: IpAddr,
    pub mac: [u8; 6],
    /// What made the claim: `"ARP"` or `"NA"`.
    pub kind: &'static str,
}

/// The claim an Ethernet frame makes, if it is an ARP packet (any operation) from a sender
/// with an address, or an ICMPv6 neighbour advertisement with hop limit 255.
pub fn parse_claim(frame: &[u8]) -> Option<Claim> {
    let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    match ethertype {
        ETH_P_ARP => {
            let arp = frame.get(ETH_HLEN..ETH_HLEN + 28)?;
            // Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses (RFC 826).
            if arp[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
                return None;
            }
            let mac: [u8; 6] = arp[8..14].try_into().ok()?;
            let spa = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
            // 0.0.0.0 is a probe (RFC 5227): it claims nothing yet.
            (!spa.is_unspecified()).then_some(Claim {
                addr: spa.into(),
                mac,
                kind: "ARP",
            })
        }
        ETH_P_IPV6 => {
            let ip6 = frame.get(ETH_HLEN..ETH_HLEN + 40)?;
            // Next header ICMPv6 (no extension headers in ND), hop limit 255 (RFC 4861 §7.1.2).
            if ip6[6] != IPPROTO_ICMPV6 || ip6[7] != 255 {
                return None;
            }
            let icmp = frame.get(ETH_HLEN + 40..)?;
            if *icmp.first()? != ND_NEIGHBOR_ADVERT {
                return None;
            }
            let target: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
            let mut mac: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
            let mut opts = icmp.get(24..).unwrap_or_default();
            while opts.len() >= 8 {
                let len = usize::from(opts[1]) * 8;
                if len == 0 || len > opts.len() {
                    break;
                }
                if opts[0] == ND_OPT_TARGET_LL_ADDR && len >= 8 {
                    mac = opts[2..8].try_into().ok()?;
                    break;
                }
                opts = &opts[len..];
            }
            Some(Claim {
                addr: Ipv6Addr::from(target).into(),
                mac,
                kind: "NA",
            })
        }
        _ => None,
    }
}

/// The most VIPs of one family the socket filter lists one by one; beyond that (a kernel
/// filter holds at most 4096 instructions) that family's claims are all passed and the loop
/// matches them, with the same result at a higher cost.
const MAX_FILTER_V4: usize = 1000;
const MAX_FILTER_V6: usize = 200;
/// Offset of the ARP sender protocol address, and of the NA's target address, in the frame.
const ARP_SPA: u32 = (ETH_HLEN + 14) as u32;
const NA_TARGET: u32 = (ETH_HLEN + 40 + 8) as u32;

/// The classic BPF program of the socket: accept ARP whose sender protocol address is one of
/// `vips` and ICMPv6 neighbour advertisements whose target is one, drop the rest; a LAN's
/// other ARP never reaches the agent. Every jump is short (a VIP's test skips only over
/// itself), so any number of VIPs fits the 8-bit jump offsets.
fn filter(vips: &[IpAddr]) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const JA: u16 = 0x05;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let (v4, v6) = (v4s(vips), v6s(vips));
    // ARP: sender protocol address, one (jeq, accept) pair per VIP.
    let mut arp = vec![op(LD_W_ABS, 0, 0, ARP_SPA)];
    if v4.len() > MAX_FILTER_V4 {
        arp.push(op(RET_K, 0, 0, SNAPLEN));
    } else {
        for a in &v4 {
            arp.push(op(JEQ_K, 0, 1, u32::from(*a)));
            arp.push(op(RET_K, 0, 0, SNAPLEN));
        }
        arp.push(op(RET_K, 0, 0, 0));
    }
    let mut prog = vec![
        op(LD_H_ABS, 0, 0, 12),                // ethertype
        op(JEQ_K, 1, 0, u32::from(ETH_P_ARP)), // ARP: on to its block
        op(JA, 0, 0, arp.len() as u32),        // else past it
    ];
    prog.extend(arp);
    prog.extend([
        op(JEQ_K, 1, 0, u32::from(ETH_P_IPV6)),
        op(RET_K, 0, 0, 0),
        op(LD_B_ABS, 0, 0, 20), // next header
        op(JEQ_K, 1, 0, u32::from(IPPROTO_ICMPV6)),
        op(RET_K, 0, 0, 0),
        op(LD_B_ABS, 0, 0, (ETH_HLEN + 40) as u32), // ICMPv6 type
        op(JEQ_K, 1, 0, u32::from(ND_NEIGHBOR_ADVERT)),
        op(RET_K, 0, 0, 0),
    ]);
    if v6.len() > MAX_FILTER_V6 {
        prog.push(op(RET_K, 0, 0, SNAPLEN));
        return prog;
    }
    // NA: the target's four words; a mismatch skips to the next VIP's test.
    for a in &v6 {
        let o = a.octets();
        for w in 0..4u8 {
            let k = u32::from_be_bytes(o[usize::from(w) * 4..][..4].try_into().expect("4 bytes"));
            prog.push(op(LD_W_ABS, 0, 0, NA_TARGET + u32::from(w) * 4));
            prog.push(op(JEQ_K, 0, 7 - 2 * w, k));
        }
        prog.push(op(RET_K, 0, 0, SNAPLEN));
    }
    prog.push(op(RET_K, 0, 0, 0));
    prog
}

/// `getsockopt(PACKET_STATISTICS)`: frames the kernel dropped because the socket's queue was
/// full, since the last call (the kernel resets the counters on each read).
fn kernel_drops(fd: std::os::fd::RawFd) -> io::Result<u64> {
    // SAFETY: all-zero is a valid `tpacket_stats` (two u32).
    let mut stats: libc::tpacket_stats = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` is live and writable for the call, passed with its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(stats.tp_drops))
}

/// What went wrong opening or reading the claim socket.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Interface(#[from] IfError),
    #[error("`recvfrom` on the ARP/NA socket of interface `{ifname}` failed")]
    Recv {
        ifname: String,
        #[source]
        io_error: io::Error,
    },
    #[error("`getsockopt(PACKET_STATISTICS)` on the ARP/NA socket of interface `{ifname}` failed")]
    Stats {
        ifname: String,
        #[source]
        io_error: io::Error,
    },
}

/// ARP and neighbour advertisements for our VIPs arriving on one interface.
pub struct ClaimWatch {
    fd: AsyncFd<Socket>,
    ifname: String,
}

impl ClaimWatch {
    /// Opens the socket on `ifname` for claims of `vips` (the VIPs placed on it): created
    /// receiving nothing, the filter attached, then bound to the interface for every protocol,
    /// so no unfiltered frame is ever queued. A reload opens a new one for the new VIPs.
    pub fn open(ifname: &str, vips: &[IpAddr]) -> Result<Self, ClaimError> {
        let ifindex = resolve(ifname)?;
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
            .map_err(syscall("socket(AF_PACKET, SOCK_RAW, 0)", ifname))?;
        let program = filter(vips);
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `program`, both live for the call; the kernel copies them.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(
                syscall("setsockopt(SO_ATTACH_FILTER)", ifname)(io::Error::last_os_error()).into(),
            );
        }
        // SAFETY: all-zero is a valid `sockaddr_ll` (plain C struct).
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll passed with its size.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(
                syscall("bind(AF_PACKET, ETH_P_ALL)", ifname)(io::Error::last_os_error()).into(),
            );
        }
        let fd = sockopt::into_async(socket, ifname)?;
        Ok(Self {
            fd,
            ifname: ifname.to_owned(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Claims the kernel dropped since the last call because the agent read too slowly (its
    /// socket queue was full): what a flood costs is counted, never queued.
    pub fn dropped(&self) -> Result<u64, ClaimError> {
        kernel_drops(self.fd.get_ref().as_raw_fd()).map_err(|io_error| ClaimError::Stats {
            ifname: self.ifname.clone(),
            io_error,
        })
    }

    /// The next claim another host makes on the interface (frames we sent are skipped).
    pub async fn next(&self) -> Result<Claim, ClaimError> {
        let mut buf = [0u8; SNAPLEN as usize];
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|io_error| ClaimError::Recv {
                    ifname: self.ifname.clone(),
                    io_error,
                })?;
            let fd = guard.get_ref().as_raw_fd();
            match guard.try_io(|_| recv_ll(fd, &mut buf)) {
                Ok(Ok((len, pkttype))) => {
                    if pkttype == libc::PACKET_OUTGOING {
                        continue;
                    }
                    if let Some(claim) = parse_claim(&buf[..len]) {
                        return Ok(claim);
                    }
                }
                Ok(Err(io_error)) => {
                    return Err(ClaimError::Recv {
                        ifname: self.ifname.clone(),
                        io_error,
                    });
                }
                Err(_would_block) => continue,
            }
        }
    }
}

/// `recvfrom(2)` of one frame: its length (at most `buf.len()`) and `sll_pkttype`.
fn recv_ll(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<(usize, u8)> {
    // SAFETY: all-zero is a valid `sockaddr_ll`.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` and `sll` are live and writable for the call, passed with their sizes.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut sll as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((n as usize, sll.sll_pkttype))
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::garp::{garp_frame, na_frame};

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];

    #[test]
    fn a_gratuitous_arp_claims_its_sender_address() {
        let vip = Ipv4Addr::new(192, 0, 2, 200);
        let claim = parse_claim(&garp_frame(MAC, vip)).unwrap();
        assert_eq!(
            claim,
            Claim {
                addr: vip.into(),
                mac: MAC,
                kind: "ARP"
            }
        );
    }

    #[test]
    fn an_arp_reply_claims_its_sender_address_and_a_probe_claims_nothing() {
        let mut f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 200));
        f[21] = 2; // reply
        f[38..42].copy_from_slice(&[192, 0, 2, 100]); // to the client
        assert_eq!(
            parse_claim(&f).unwrap().addr,
            IpAddr::from([192, 0, 2, 200])
        );
        // RFC 5227 probe: sender 0.0.0.0.
        f[28..32].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(parse_claim(&f), None);
        // Not Ethernet/IPv4 ARP.
        let mut g = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 200));
        g[16] = 0x86;
        assert_eq!(parse_claim(&g), None);
        // Truncated.
        assert_eq!(
            parse_claim(&garp_frame(MAC, Ipv4Addr::LOCALHOST)[..30]),
            None
        );
    }

    #[test]
    fn a_neighbour_advertisement_claims_its_target_at_its_link_layer_option() {
        let vip: Ipv6Addr = "2001:db8::200".parse().unwrap();
        let ll: Ipv6Addr = "fe80::64".parse().unwrap();
        let mut f = na_frame(MAC, ll, vip, false);
        assert_eq!(
            parse_claim(&f).unwrap(),
            Claim {
                addr: vip.into(),
                mac: MAC,
                kind: "NA"
            }
        );
        // The option names another MAC than the frame's source: the option wins.
        f[80..86].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
        assert_eq!(parse_claim(&f).unwrap().mac, [2, 0, 0, 0, 0, 0x99]);
        // Without the option, the Ethernet source.
        let short = &na_frame(MAC, ll, vip, false)[..78];
        assert_eq!(parse_claim(short).unwrap().mac, MAC);
        // Hop limit not 255: not a valid NA.
        let mut g = na_frame(MAC, ll, vip, false);
        g[21] = 64;
        assert_eq!(parse_claim(&g), None);
        // A neighbour solicitation (135) claims nothing.
        let mut h = na_frame(MAC, ll, vip, false);
        h[54] = 135;
        assert_eq!(parse_claim(&h), None);
    }

    /// What the kernel does with `frame` under `prog` (the classic BPF subset `filter` uses):
    /// the bytes it keeps, 0 to drop.
    fn run(prog: &[libc::sock_filter], frame: &[u8]) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let at = |n: usize| frame.get(i.k as usize..i.k as usize + n);
            pc += 1;
            match i.code {
                0x20 => match at(4) {
                    Some(b) => acc = u32::from_be_bytes(b.try_into().unwrap()),
                    None => return 0,
                },
                0x28 => match at(2) {
                    Some(b) => acc = u32::from(u16::from_be_bytes(b.try_into().unwrap())),
                    None => return 0,
                },
                0x30 => match at(1) {
                    Some(b) => acc = u32::from(b[0]),
                    None => return 0,
                },
                0x05 => pc += i.k as usize,
                0x15 => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
                0x06 => return i.k,
                other => panic!("opcode {other:#x} not in the subset"),
            }
        }
    }

    #[test]
    fn the_filter_passes_claims_of_our_vips_only() {
        let (v4, v4b, other4) = (
            Ipv4Addr::new(192, 0, 2, 200),
            Ipv4Addr::new(192, 0, 2, 201),
            Ipv4Addr::new(192, 0, 2, 9),
        );
        let v6: Ipv6Addr = "2001:db8::200".parse().unwrap();
        let other6: Ipv6Addr = "2001:db8::201".parse().unwrap();
        let ll: Ipv6Addr = "fe80::64".parse().unwrap();
        let prog = filter(&[v4.into(), v6.into(), v4b.into()]);
        assert_eq!(run(&prog, &garp_frame(MAC, v4)), SNAPLEN);
        assert_eq!(run(&prog, &garp_frame(MAC, v4b)), SNAPLEN);
        assert_eq!(run(&prog, &garp_frame(MAC, other4)), 0);
        assert_eq!(run(&prog, &na_frame(MAC, ll, v6, false)), SNAPLEN);
        assert_eq!(run(&prog, &na_frame(MAC, ll, other6, false)), 0);
        // A VIP differing in its last word only, and an NS for the VIP: dropped.
        let mut ns = na_frame(MAC, ll, v6, false);
        ns[54] = 135;
        assert_eq!(run(&prog, &ns), 0);
        // Not ARP nor IPv6; IPv6 but not ICMPv6; truncated.
        let mut ip4 = garp_frame(MAC, v4);
        ip4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(run(&prog, &ip4), 0);
        let mut udp6 = na_frame(MAC, ll, v6, false);
        udp6[20] = 17;
        assert_eq!(run(&prog, &udp6), 0);
        assert_eq!(run(&prog, &garp_frame(MAC, v4)[..30]), 0);
        // No VIPs: nothing passes.
        assert_eq!(run(&filter(&[]), &garp_frame(MAC, v4)), 0);
        assert_eq!(run(&filter(&[]), &na_frame(MAC, ll, v6, false)), 0);
    }

    #[test]
    fn the_filter_of_many_vips_fits_the_kernel_and_passes_each() {
        let v4: Vec<IpAddr> = (0..MAX_FILTER_V4 as u32)
            .map(|n| Ipv4Addr::from(0x0a00_0000 + n).into())
            .collect();
        let v6: Vec<IpAddr> = (0..MAX_FILTER_V6 as u128)
            .map(|n| Ipv6Addr::from(0x2001_0db8_u128 << 96 | n).into())
            .collect();
        let all: Vec<IpAddr> = v4.iter().chain(&v6).copied().collect();
        let prog = filter(&all);
        assert!(prog.len() <= 4096, "{} instructions", prog.len());
        let ll: Ipv6Addr = "fe80::64".parse().unwrap();
        for vip in [
            all[0],
            all[MAX_FILTER_V4 - 1],
            all[MAX_FILTER_V4],
            all[all.len() - 1],
        ] {
            let frame = match vip {
                IpAddr::V4(a) => garp_frame(MAC, a).to_vec(),
                IpAddr::V6(a) => na_frame(MAC, ll, a, false).to_vec(),
            };
            assert_eq!(run(&prog, &frame), SNAPLEN, "{vip}");
        }
        assert_eq!(run(&prog, &garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 1))), 0);
        // Beyond the bound, that family passes whole (the loop matches it).
        let more: Vec<IpAddr> = (0..=MAX_FILTER_V4 as u32)
            .map(|n| Ipv4Addr::from(0x0a00_0000 + n).into())
            .collect();
        let prog = filter(&more);
        assert_eq!(
            run(&prog, &garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 1))),
            SNAPLEN
        );
        let IpAddr::V6(first6) = v6[0] else {
            unreachable!("v6 holds IPv6 addresses")
        };
        assert_eq!(run(&prog, &na_frame(MAC, ll, first6, false)), 0);
    }

    #[test]
    fn macs_print_as_ip_link_does() {
        assert_eq!(mac_string(MAC), "02:00:00:00:00:64");
    }
}

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

use super::{IfError, resolve, sockopt, syscall};

const ETH_HLEN: usize = 14;
const ETH_P_ALL: u16 = 0x0003;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_ICMPV6: u8 = 58;
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

/// The classic BPF program of the socket: accept ARP and ICMPv6 type 136, drop the rest.
fn filter() -> [libc::sock_filter; 9] {
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        op(LD_H_ABS, 0, 0, 12),                         // 0: ethertype
        op(JEQ_K, 5, 0, u32::from(ETH_P_ARP)),          // 1: ARP -> 7
        op(JEQ_K, 0, 5, u32::from(ETH_P_IPV6)),         // 2: not IPv6 -> 8
        op(LD_B_ABS, 0, 0, 20),                         // 3: next header
        op(JEQ_K, 0, 3, u32::from(IPPROTO_ICMPV6)),     // 4: not ICMPv6 -> 8
        op(LD_B_ABS, 0, 0, (ETH_HLEN + 40) as u32),     // 5: ICMPv6 type
        op(JEQ_K, 0, 1, u32::from(ND_NEIGHBOR_ADVERT)), // 6: not an NA -> 8
        op(RET_K, 0, 0, SNAPLEN),                       // 7: accept
        op(RET_K, 0, 0, 0),                             // 8: drop
    ]
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
}

/// ARP and neighbour advertisements arriving on one interface.
pub struct ClaimWatch {
    fd: AsyncFd<Socket>,
    ifname: String,
}

impl ClaimWatch {
    /// Opens the socket on `ifname`: created receiving nothing, the filter attached, then bound
    /// to the interface for every protocol, so no unfiltered frame is ever queued.
    pub fn open(ifname: &str) -> Result<Self, ClaimError> {
        let ifindex = resolve(ifname)?;
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
            .map_err(syscall("socket(AF_PACKET, SOCK_RAW, 0)", ifname))?;
        let program = filter();
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
        let fd = sockopt::into_async(socket).map_err(|(call, e)| syscall(call, ifname)(e))?;
        Ok(Self {
            fd,
            ifname: ifname.to_owned(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
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

    #[test]
    fn the_filter_jumps_land_on_accept_and_drop() {
        let f = filter();
        // Each conditional jump's targets: (index + 1 + jt, index + 1 + jf).
        let targets: Vec<(usize, usize)> = f
            .iter()
            .enumerate()
            .filter(|(_, i)| i.code == 0x15)
            .map(|(n, i)| (n + 1 + usize::from(i.jt), n + 1 + usize::from(i.jf)))
            .collect();
        assert_eq!(targets, vec![(7, 2), (3, 8), (5, 8), (7, 8)]);
        assert_eq!((f[7].code, f[7].k), (0x06, SNAPLEN));
        assert_eq!((f[8].code, f[8].k), (0x06, 0));
    }

    #[test]
    fn macs_print_as_ip_link_does() {
        assert_eq!(mac_string(MAC), "02:00:00:00:00:64");
    }
}

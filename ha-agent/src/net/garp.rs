//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) for VIPs, so switches
//! and neighbours learn the new master's MAC at once (RFC 5798 §6.4.2).
//!
//! Whole Ethernet frames on one `AF_PACKET`/`SOCK_RAW` socket per interface, as keepalived
//! sends them: the source MAC is the interface's own (with `use_vmac` the interface is the
//! macvlan, so the VRID's MAC).
//!
//! ```text
//! GARP (42 bytes)      dst ff:ff:ff:ff:ff:ff  src <if MAC>  type 0x0806
//!                      ARP request: sha <if MAC>  spa <VIP>  tha ff:ff:ff:ff:ff:ff  tpa <VIP>
//! NA (86 bytes)        dst 33:33:00:00:00:01  src <if MAC>  type 0x86dd
//!                      IPv6 <link-local> -> ff02::1, hop limit 255, next header 58
//!                      ICMPv6 136: flags O (and R on a router), target <VIP>,
//!                      option 2 (target link-layer address) = <if MAC>
//! ```

use std::cell::Cell;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use ha_common::wire::{ETH_P_ARP, ETH_P_IPV6};

use super::{IfError, resolve, sockopt, syscall};

/// What went wrong, which syscall, on what interface or VIP.
#[derive(Debug, thiserror::Error)]
pub enum GarpError {
    #[error(transparent)]
    Interface(#[from] IfError),
    #[error("`sendto` of the {what} for {vip} failed on interface `{ifname}`")]
    Send {
        what: &'static str,
        vip: IpAddr,
        ifname: String,
        #[source]
        io_error: io::Error,
    },
    #[error("no link-local source to advertise IPv6 VIP {vip} on interface `{ifname}`")]
    NoLinkLocal { vip: Ipv6Addr, ifname: String },
}

const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// ff02::1 (all nodes) mapped to Ethernet (RFC 2464 §7).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Length of a gratuitous ARP frame: Ethernet 14 + ARP 28.
pub const GARP_FRAME_LEN: usize = 42;
/// Length of an unsolicited NA frame: Ethernet 14 + IPv6 40 + NA 24 + option 8.
pub const NA_FRAME_LEN: usize = 86;

/// The gratuitous ARP keepalived sends: a broadcast ARP request with sender and target
/// protocol address both `vip` and sender hardware address `mac`.
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut f = [0u8; GARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // ar_hrd: ARPHRD_ETHER
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ar_pro: IPv4
    f[18] = 6; // ar_hln
    f[19] = 4; // ar_pln
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // ar_op: ARPOP_REQUEST
    f[22..28].copy_from_slice(&mac); // sha
    f[28..32].copy_from_slice(&vip.octets()); // spa
    f[32..38].copy_from_slice(&BROADCAST_MAC); // tha, as keepalived
    f[38..42].copy_from_slice(&vip.octets()); // tpa
    f
}

/// An unsolicited neighbour advertisement for `target` (RFC 4861 §7.2.6): to all nodes, Override
/// set (the VIP moved), Router set if `router`, with the target link-layer address option.
pub fn na_frame(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr, router: bool) -> [u8; NA_FRAME_LEN] {
    const ICMP6_LEN: usize = 32;
    let mut f = [0u8; NA_FRAME_LEN];
    f[0..6].copy_from_slice(&ALL_NODES_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip = 14;
    f[ip] = 0x60; // version 6, traffic class 0, flow label 0
    f[ip + 4..ip + 6].copy_from_slice(&(ICMP6_LEN as u16).to_be_bytes());
    f[ip + 6] = 58; // next header: ICMPv6
    f[ip + 7] = 255; // hop limit: receivers drop ND with less (RFC 4861 §7.1.2)
    f[ip + 8..ip + 24].copy_from_slice(&src.octets());
    f[ip + 24..ip + 40].copy_from_slice(&ALL_NODES.octets());
    let icmp = ip + 40;
    f[icmp] = 136; // Neighbor Advertisement
    f[icmp + 4] = 0x20 | if router { 0x80 } else { 0 }; // O flag, R flag; S clear (unsolicited)
    f[icmp + 8..icmp + 24].copy_from_slice(&target.octets());
    f[icmp + 24] = 2; // option: target link-layer address
    f[icmp + 25] = 1; // length in units of 8 bytes
    f[icmp + 26..icmp + 32].copy_from_slice(&mac);
    let sum = icmpv6_checksum(src, ALL_NODES, &f[icmp..icmp + ICMP6_LEN]);
    f[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ICMPv6 checksum (RFC 4443 §2.3) over the pseudo-header (RFC 8200 §8.1) and `msg`, whose
/// checksum field must be zero.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A send-only `AF_PACKET` socket on one interface for GARPs and NAs.
pub struct GarpSender {
    fd: AsyncFd<Socket>,
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
    pacer: Rc<Pacer>,
}

impl GarpSender {
    /// Opens the socket for `ifname`, whose MAC is `mac` (see `Netlink::interface`).
    pub fn open(ifname: &str, mac: [u8; 6]) -> Result<Self, GarpError> {
        let ifindex = resolve(ifname)?;
        // Protocol 0: the socket receives nothing, it only sends.
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
            .map_err(syscall("socket(AF_PACKET, SOCK_RAW, 0)", ifname))?;
        let fd = sockopt::into_async(socket, ifname)?;
        Ok(Self {
            fd,
            ifname: ifname.to_owned(),
            ifindex,
            mac,
            pacer: Rc::default(),
        })
    }

    /// Paces its GARPs and NAs with `pacer`, which other interfaces may share (`garp_group`).
    pub fn paced(mut self, pacer: Rc<Pacer>) -> Self {
        self.pacer = pacer;
        self
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    async fn send_frame(
        &self,
        frame: &[u8],
        ethertype: u16,
        dst_mac: [u8; 6],
        what: &'static str,
        vip: IpAddr,
    ) -> Result<(), GarpError> {
        let send_error = |io_error| GarpError::Send {
            what,
            vip,
            ifname: self.ifname.clone(),
            io_error,
        };
        loop {
            let mut guard = self.fd.writable().await.map_err(send_error)?;
            let fd = guard.get_ref().as_raw_fd();
            match guard.try_io(|_| sendto_ll(fd, self.ifindex, ethertype, dst_mac, frame)) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(io_error)) => return Err(send_error(io_error)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one gratuitous ARP for `vip`.
    pub async fn send_garp(&self, vip: Ipv4Addr) -> Result<(), GarpError> {
        let frame = garp_frame(self.mac, vip);
        self.send_frame(
            &frame,
            ETH_P_ARP,
            BROADCAST_MAC,
            "gratuitous ARP",
            vip.into(),
        )
        .await
    }

    /// Sends one unsolicited NA for `vip` from `src` (the interface's link-local address).
    pub async fn send_na(
        &self,
        vip: Ipv6Addr,
        src: Ipv6Addr,
        router: bool,
    ) -> Result<(), GarpError> {
        let frame = na_frame(self.mac, src, vip, router);
        self.send_frame(
            &frame,
            ETH_P_IPV6,
            ALL_NODES_MAC,
            "unsolicited NA",
            vip.into(),
        )
        .await
    }

    /// keepalived's `garp_master_repeat`: `repeat` rounds of one GARP or NA per VIP, each when
    /// the sender's [`Pacer`] allows (keepalived's `vrrp_garp_interval` / `vrrp_gna_interval`, or
    /// its `garp_group`'s). IPv6 VIPs need `link_local` (the NA's source). Returns the number of
    /// frames sent.
    pub async fn announce(
        &self,
        vips: &[IpAddr],
        link_local: Option<Ipv6Addr>,
        router: bool,
        repeat: u32,
    ) -> Result<usize, GarpError> {
        let mut sent = 0;
        for _ in 0..repeat {
            for vip in vips {
                // No await between the check and the send's start: senders sharing the pacer
                // (other instances, the group's other interfaces) wait their turn.
                while let Err(at) = self.pacer.try_take(Instant::now(), vip.is_ipv6()) {
                    tokio::time::sleep_until(at.into()).await;
                }
                match *vip {
                    IpAddr::V4(v4) => self.send_garp(v4).await?,
                    IpAddr::V6(v6) => {
                        let src = link_local.ok_or_else(|| GarpError::NoLinkLocal {
                            vip: v6,
                            ifname: self.ifname.clone(),
                        })?;
                        self.send_na(v6, src, router).await?;
                    }
                }
                sent += 1;
            }
        }
        Ok(sent)
    }
}

/// The delays between gratuitous ARPs and between unsolicited NAs on one interface
/// (keepalived's `vrrp_garp_interval`, `vrrp_gna_interval`; 0: back to back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spacing {
    pub garp: Duration,
    pub gna: Duration,
}

/// When the next gratuitous ARP and the next NA may leave the interfaces that share it
/// (keepalived's `garp_delay_t` with its `garp_next_time` / `gna_next_time`: one per interface,
/// or one per `garp_group`), across all instances announcing there.
#[derive(Debug, Default)]
pub struct Pacer {
    spacing: Spacing,
    /// The earliest next GARP and next NA.
    next: Cell<(Option<Instant>, Option<Instant>)>,
}

impl Pacer {
    pub fn new(spacing: Spacing) -> Pacer {
        Pacer {
            spacing,
            next: Cell::default(),
        }
    }

    /// A GARP (an NA if `na`) may go out at `now`: then the next of its kind waits a spacing
    /// from now (keepalived's `garp_next_time = now + interval`, from the real send, so a late
    /// wake-up never shortens a gap); otherwise `Err` says when to ask again.
    pub fn try_take(&self, now: Instant, na: bool) -> Result<(), Instant> {
        let (mut garp, mut gna) = self.next.get();
        let (next, gap) = if na {
            (&mut gna, self.spacing.gna)
        } else {
            (&mut garp, self.spacing.garp)
        };
        if let Some(at) = *next
            && at > now
        {
            return Err(at);
        }
        *next = Some(now + gap);
        self.next.set((garp, gna));
        Ok(())
    }
}

/// `sendto(2)` of a whole Ethernet frame on interface `ifindex`.
fn sendto_ll(
    fd: RawFd,
    ifindex: u32,
    ethertype: u16,
    dst: [u8; 6],
    frame: &[u8],
) -> io::Result<()> {
    // SAFETY: all-zero is a valid `sockaddr_ll` (plain C struct).
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&dst);
    // SAFETY: `frame` and `sll` are live for the call and passed with their true lengths; the
    // kernel only reads them.
    let n = unsafe {
        libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_pacer_spaces_garps_and_nas_apart_each_by_its_own_interval() {
        let p = Pacer::new(Spacing {
            garp: ms(100),
            gna: ms(30),
        });
        let t0 = Instant::now();
        assert_eq!(p.try_take(t0, false), Ok(()));
        assert_eq!(p.try_take(t0 + ms(50), false), Err(t0 + ms(100)));
        assert_eq!(p.try_take(t0, true), Ok(()), "NAs are not held up by GARPs");
        assert_eq!(p.try_take(t0, true), Err(t0 + ms(30)));
        // Sent late (a loaded host): the next gap counts from the real send.
        assert_eq!(p.try_take(t0 + ms(170), false), Ok(()));
        assert_eq!(p.try_take(t0 + ms(200), false), Err(t0 + ms(270)));
    }

    #[test]
    fn senders_sharing_a_pacer_take_turns() {
        // Two instances' tasks (or two interfaces of one garp_group) asking at the same time.
        let p = Pacer::new(Spacing {
            garp: ms(50),
            gna: Duration::ZERO,
        });
        let t0 = Instant::now();
        assert_eq!(p.try_take(t0, false), Ok(()));
        assert_eq!(p.try_take(t0, false), Err(t0 + ms(50)));
        assert_eq!(p.try_take(t0 + ms(50), false), Ok(()));
        assert_eq!(p.try_take(t0, true), Ok(()));
        assert_eq!(
            p.try_take(t0, true),
            Ok(()),
            "gna_interval 0: NAs back to back"
        );
    }
}

//! The socket data path: raw `IPPROTO_VRRP` sockets, one per interface and family, for when XDP
//! cannot be used (or to cross-check it).
//!
//! Receive only: sending is `net::advert`, which needs a socket per source address and has to
//! exist on the XDP path too, where XDP consumes adverts and no receive socket is opened.
//!
//! - IPv4: the kernel hands over the whole packet, IP header included, so TTL and addresses are
//!   in the buffer; `IP_PKTINFO` adds the arrival ifindex and header destination.
//! - IPv6: the kernel strips the IPv6 header, so `IPV6_RECVPKTINFO` and `IPV6_RECVHOPLIMIT`
//!   deliver destination, ifindex and hop limit as ancillary data.
//!
//! Both join the VRRP groups on the interface only, are bound to it (`SO_BINDTODEVICE`), and
//! also see unicast adverts addressed to the host on that interface (`unicast_peer`). On an
//! interface whose adverts XDP reads, [`Membership`] joins the groups without a receive path.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use crate::net::{IPPROTO_VRRP, IfError, resolve, sockopt, sockopt::BoundSocket, syscall};
pub use crate::net::{v4s, v6s};

/// What went wrong, which syscall, on what interface.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(transparent)]
    Interface(#[from] IfError),
    #[error(
        "joining the VRRP multicast group {group} on interface `{ifname}` \
         (IP_ADD_MEMBERSHIP / IPV6_ADD_MEMBERSHIP) failed"
    )]
    Join {
        group: IpAddr,
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("VRRP packet on `{ifname}` longer than the {buf_len}-byte buffer: dropped")]
    Truncated { ifname: String, buf_len: usize },
}

/// One received VRRP packet; the bytes are in the buffer given to [`VrrpSocket::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes written to the buffer: the whole IPv4 packet, or the IPv6 payload.
    pub len: usize,
    /// Where the VRRP header starts in the buffer: the IPv4 header length, 0 for IPv6.
    pub payload_offset: usize,
    /// The interface it arrived on (`IP_PKTINFO` / `IPV6_PKTINFO`).
    pub ifindex: u32,
    pub src: IpAddr,
    /// The IP destination: the VRRP group, or our address for a unicast peer's advert.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit; RFC 5798 §7.1 drops anything but 255.
    pub ttl: u8,
}

/// Joins `groups` on interface `ifindex` with `socket`, and asks for those groups only (not
/// every group some socket on the host joined).
fn join_v4(
    socket: &Socket,
    ifname: &str,
    ifindex: u32,
    groups: &[Ipv4Addr],
) -> Result<(), SocketError> {
    for group in groups {
        socket
            .join_multicast_v4_n(group, &InterfaceIndexOrAddress::Index(ifindex))
            .map_err(|source| SocketError::Join {
                group: IpAddr::V4(*group),
                ifname: ifname.to_owned(),
                source,
            })?;
    }
    socket
        .set_multicast_all_v4(false)
        .map_err(syscall("setsockopt(IP_MULTICAST_ALL)", ifname))?;
    Ok(())
}

fn join_v6(
    socket: &Socket,
    ifname: &str,
    ifindex: u32,
    groups: &[Ipv6Addr],
) -> Result<(), SocketError> {
    for group in groups {
        socket
            .join_multicast_v6(group, ifindex)
            .map_err(|source| SocketError::Join {
                group: IpAddr::V6(*group),
                ifname: ifname.to_owned(),
                source,
            })?;
    }
    socket
        .set_multicast_all_v6(false)
        .map_err(syscall("setsockopt(IPV6_MULTICAST_ALL)", ifname))?;
    Ok(())
}

/// The VRRP groups joined on an interface whose adverts XDP reads: nothing is received on it,
/// but a NIC filters multicast by the groups the host joined, and without a membership the
/// adverts to 224.0.0.18 / ff02::12 (or the configured groups) may never reach XDP at all.
/// (The socket data path's receive socket joins them itself.) Left when dropped.
pub struct Membership {
    _socket: Socket,
}

impl Membership {
    /// Joins `groups` on `ifname` from a UDP socket that is never bound, so it receives nothing.
    pub fn join(ifname: &str, groups: &[IpAddr]) -> Result<Self, SocketError> {
        let ifindex = resolve(ifname)?;
        let v6 = groups.iter().any(IpAddr::is_ipv6);
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(syscall(
            "socket(SOCK_DGRAM) for multicast membership",
            ifname,
        ))?;
        if v6 {
            join_v6(&socket, ifname, ifindex, &v6s(groups))?;
        } else {
            join_v4(&socket, ifname, ifindex, &v4s(groups))?;
        }
        Ok(Self { _socket: socket })
    }
}

/// A raw VRRP receive socket on one interface.
pub struct VrrpSocket {
    bound: BoundSocket,
}

impl VrrpSocket {
    /// Opens the IPv4 socket on `ifname` and joins `groups` there (its instances' groups:
    /// `mcast_dst_ip`, else `vrrp_mcast_group4`, 224.0.0.18; none when all are unicast).
    pub fn open_v4(ifname: &str, groups: &[Ipv4Addr]) -> Result<Self, SocketError> {
        let ifindex = resolve(ifname)?;
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(syscall("socket(AF_INET, SOCK_RAW, IPPROTO_VRRP)", ifname))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(syscall("setsockopt(SO_BINDTODEVICE)", ifname))?;
        join_v4(&socket, ifname, ifindex, groups)?;
        sockopt::set_int(socket.as_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
            .map_err(syscall("setsockopt(IP_PKTINFO)", ifname))?;
        Ok(Self {
            bound: BoundSocket::new(socket, ifname, ifindex, false)?,
        })
    }

    /// Opens the IPv6 socket on `ifname` and joins `groups` there (its instances' groups:
    /// `mcast_dst_ip`, else `vrrp_mcast_group6`, ff02::12).
    pub fn open_v6(ifname: &str, groups: &[Ipv6Addr]) -> Result<Self, SocketError> {
        let ifindex = resolve(ifname)?;
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(syscall("socket(AF_INET6, SOCK_RAW, IPPROTO_VRRP)", ifname))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(syscall("setsockopt(SO_BINDTODEVICE)", ifname))?;
        join_v6(&socket, ifname, ifindex, groups)?;
        sockopt::set_int(
            socket.as_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVPKTINFO,
            1,
        )
        .map_err(syscall("setsockopt(IPV6_RECVPKTINFO)", ifname))?;
        socket
            .set_recv_hoplimit_v6(true)
            .map_err(syscall("setsockopt(IPV6_RECVHOPLIMIT)", ifname))?;
        // A kernel-verified checksum would drop adverts the codec should count as bad.
        sockopt::ensure_no_ipv6_checksum(socket.as_fd())
            .map_err(syscall("getsockopt/setsockopt(IPV6_CHECKSUM)", ifname))?;
        Ok(Self {
            bound: BoundSocket::new(socket, ifname, ifindex, true)?,
        })
    }

    pub fn ifname(&self) -> &str {
        &self.bound.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.bound.ifindex
    }

    /// Waits for the next VRRP packet on the interface and writes it to `buf` (IPv4: with its IP
    /// header). A `buf` of 1500 bytes holds any advert; longer packets are [`SocketError::Truncated`].
    pub async fn recv(&self, buf: &mut [u8]) -> Result<Received, SocketError> {
        loop {
            let mut guard = self
                .bound
                .fd
                .readable()
                .await
                .map_err(syscall("epoll_wait", &self.bound.ifname))?;
            match guard.try_io(|fd| recvmsg(fd.get_ref().as_raw_fd(), buf, self.bound.v6)) {
                Ok(Ok(raw)) => return self.received(raw, buf),
                Ok(Err(io_error)) => {
                    return Err(syscall("recvmsg", &self.bound.ifname)(io_error).into());
                }
                Err(_would_block) => continue,
            }
        }
    }

    fn received(&self, raw: RawRecv, buf: &[u8]) -> Result<Received, SocketError> {
        if raw.truncated {
            return Err(SocketError::Truncated {
                ifname: self.bound.ifname.clone(),
                buf_len: buf.len(),
            });
        }
        let ifindex = raw.ifindex.unwrap_or(self.bound.ifindex);
        if self.bound.v6 {
            return Ok(Received {
                len: raw.len,
                payload_offset: 0,
                ifindex,
                src: raw.src,
                dst: raw.dst.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
                ttl: raw.hop_limit.unwrap_or(0),
            });
        }
        // Raw IPv4 sockets always deliver the IP header; read TTL and destination from it.
        let packet = &buf[..raw.len];
        let (payload_offset, ttl, dst) = if packet.len() >= 20 {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
            (ihl.min(packet.len()), packet[8], IpAddr::V4(dst))
        } else {
            (
                packet.len(),
                0,
                raw.dst.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            )
        };
        Ok(Received {
            len: raw.len,
            payload_offset,
            ifindex,
            src: raw.src,
            dst,
            ttl,
        })
    }
}

struct RawRecv {
    len: usize,
    truncated: bool,
    src: IpAddr,
    dst: Option<IpAddr>,
    ifindex: Option<u32>,
    hop_limit: Option<u8>,
}

/// Room for `IP_PKTINFO`, or `IPV6_PKTINFO` plus `IPV6_HOPLIMIT`, with headers and padding.
#[repr(C, align(8))]
struct ControlBuf([u8; 128]);

/// One `recvmsg(2)` with source address and ancillary data.
fn recvmsg(fd: RawFd, buf: &mut [u8], v6: bool) -> io::Result<RawRecv> {
    let mut control = ControlBuf([0; 128]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid `sockaddr_storage` and `msghdr` (plain C structs).
    let (mut name, mut msg): (libc::sockaddr_storage, libc::msghdr) =
        unsafe { (mem::zeroed(), mem::zeroed()) };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;

    // SAFETY: `msg` points at `name`, `iov` (-> `buf`) and `control`, all live and writable for
    // their stated lengths for the duration of the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = RawRecv {
        len: n as usize,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        src: if v6 {
            // SAFETY: the kernel filled `name` with a `sockaddr_in6` on this AF_INET6 socket.
            let sin6 =
                unsafe { &*(&name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
        } else {
            // SAFETY: the kernel filled `name` with a `sockaddr_in` on this AF_INET socket.
            let sin =
                unsafe { &*(&name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
        },
        dst: None,
        ifindex: None,
        hop_limit: None,
    };

    // SAFETY: `msg` is the header recvmsg just filled; `msg_controllen` bounds the walk and
    // CMSG_* only yield headers inside `control`. Payloads are read unaligned at their C types,
    // each matched on level and type first.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = data.cast::<libc::in_pktinfo>().read_unaligned();
                    out.ifindex = Some(info.ipi_ifindex as u32);
                    out.dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = data.cast::<libc::in6_pktinfo>().read_unaligned();
                    out.ifindex = Some(info.ipi6_ifindex);
                    out.dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let hops = data.cast::<libc::c_int>().read_unaligned();
                    out.hop_limit = u8::try_from(hops).ok();
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(out)
}

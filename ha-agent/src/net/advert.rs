//! Sends VRRP adverts: a raw `IPPROTO_VRRP` socket per (interface, family, source address).
//!
//! The kernel builds the IP header (no `IP_HDRINCL`): TTL / hop limit 255 (RFC 5798 §5.1.1.3,
//! §5.1.2.3), protocol 112, source = the bound address. The advert bytes (VRRP header,
//! addresses, checksum) come from the codec and go out unchanged: on IPv6 the kernel adds no
//! checksum (`IPV6_CHECKSUM` stays off, verified at open).
//!
//! Send-only: a BPF filter that accepts nothing keeps the kernel from queueing every VRRP packet
//! the host receives on this socket too; receiving is `datapath::socket`.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{
    IPPROTO_VRRP, IfError, VRRP_MCAST_V4, VRRP_MCAST_V6, VRRP_TTL, resolve, sockopt,
    sockopt::BoundSocket, syscall,
};

/// What went wrong, which syscall, on what interface or destination.
#[derive(Debug, thiserror::Error)]
pub enum AdvertError {
    #[error(transparent)]
    Interface(#[from] IfError),
    #[error("`{call}` to {dst} failed on interface `{ifname}`")]
    Send {
        call: &'static str,
        dst: IpAddr,
        ifname: String,
        #[source]
        io_error: io::Error,
    },
    #[error("{dst} is not of the socket's address family (interface `{ifname}`)")]
    FamilyMismatch { dst: IpAddr, ifname: String },
}

/// A send-only raw VRRP socket bound to one interface and one source address.
pub struct AdvertSender {
    bound: BoundSocket,
}

impl AdvertSender {
    /// IPv4 sender on `ifname`. `src` is `mcast_src_ip` / `unicast_src_ip`; with `None` the
    /// kernel picks the interface's primary address (`IP_MULTICAST_IF` by ifindex selects it for
    /// the group; for unicast peers the route's source, normally the same address).
    pub fn open_v4(ifname: &str, src: Option<Ipv4Addr>) -> Result<Self, AdvertError> {
        let ifindex = resolve(ifname)?;
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(syscall("socket(AF_INET, SOCK_RAW, IPPROTO_VRRP)", ifname))?;
        socket
            .attach_filter(&sockopt::drop_all_filter())
            .map_err(syscall("setsockopt(SO_ATTACH_FILTER)", ifname))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(syscall("setsockopt(SO_BINDTODEVICE)", ifname))?;
        if let Some(src) = src {
            socket
                .bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
                .map_err(syscall("bind(source address)", ifname))?;
        }
        sockopt::set_multicast_if_v4_index(socket.as_fd(), ifindex, src)
            .map_err(syscall("setsockopt(IP_MULTICAST_IF)", ifname))?;
        socket
            .set_multicast_ttl_v4(u32::from(VRRP_TTL))
            .map_err(syscall("setsockopt(IP_MULTICAST_TTL)", ifname))?;
        socket
            .set_ttl_v4(u32::from(VRRP_TTL))
            .map_err(syscall("setsockopt(IP_TTL)", ifname))?;
        socket
            .set_multicast_loop_v4(false)
            .map_err(syscall("setsockopt(IP_MULTICAST_LOOP)", ifname))?;
        Ok(Self {
            bound: BoundSocket::new(socket, ifname, ifindex, false)?,
        })
    }

    /// IPv6 sender on `ifname`. With `src` `None` the kernel picks the interface's link-local
    /// address, the only source RFC 5798 §5.1.2.1 allows (link-scope destination, RFC 6724
    /// rule 2); a given `src` is bound with the interface as scope.
    pub fn open_v6(ifname: &str, src: Option<Ipv6Addr>) -> Result<Self, AdvertError> {
        Self::open_v6_from(ifname, src, false)
    }

    /// IPv6 sender on `ifname` from `src`, an address of another interface when `foreign`
    /// (`IPV6_FREEBIND`): a `use_vmac` macvlan sends from its base's link-local without a copy
    /// of it, so nothing on the LAN ever resolves the base's link-local to the VRID's MAC.
    pub fn open_v6_from(
        ifname: &str,
        src: Option<Ipv6Addr>,
        foreign: bool,
    ) -> Result<Self, AdvertError> {
        let ifindex = resolve(ifname)?;
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(syscall("socket(AF_INET6, SOCK_RAW, IPPROTO_VRRP)", ifname))?;
        socket
            .attach_filter(&sockopt::drop_all_filter())
            .map_err(syscall("setsockopt(SO_ATTACH_FILTER)", ifname))?;
        sockopt::ensure_no_ipv6_checksum(socket.as_fd())
            .map_err(syscall("getsockopt/setsockopt(IPV6_CHECKSUM)", ifname))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(syscall("setsockopt(SO_BINDTODEVICE)", ifname))?;
        if foreign {
            socket
                .set_freebind_v6(true)
                .map_err(syscall("setsockopt(IPV6_FREEBIND)", ifname))?;
        }
        if let Some(src) = src {
            let scope = if src.is_unicast_link_local() {
                ifindex
            } else {
                0
            };
            socket
                .bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, scope)))
                .map_err(syscall("bind(source address)", ifname))?;
        }
        socket
            .set_multicast_if_v6(ifindex)
            .map_err(syscall("setsockopt(IPV6_MULTICAST_IF)", ifname))?;
        socket
            .set_multicast_hops_v6(u32::from(VRRP_TTL))
            .map_err(syscall("setsockopt(IPV6_MULTICAST_HOPS)", ifname))?;
        socket
            .set_unicast_hops_v6(u32::from(VRRP_TTL))
            .map_err(syscall("setsockopt(IPV6_UNICAST_HOPS)", ifname))?;
        socket
            .set_multicast_loop_v6(false)
            .map_err(syscall("setsockopt(IPV6_MULTICAST_LOOP)", ifname))?;
        Ok(Self {
            bound: BoundSocket::new(socket, ifname, ifindex, true)?,
        })
    }

    /// keepalived's `unicast_ttl`: the TTL / hop limit of adverts to unicast peers (multicast
    /// ones keep 255, RFC 5798 §5.1.1.3).
    pub fn set_unicast_ttl(&self, ttl: u8) -> Result<(), AdvertError> {
        let socket = self.bound.fd.get_ref();
        let ifname = &self.bound.ifname;
        if self.bound.v6 {
            socket
                .set_unicast_hops_v6(u32::from(ttl))
                .map_err(syscall("setsockopt(IPV6_UNICAST_HOPS)", ifname))?;
        } else {
            socket
                .set_ttl_v4(u32::from(ttl))
                .map_err(syscall("setsockopt(IP_TTL)", ifname))?;
        }
        Ok(())
    }

    /// The VRRP group of this socket's family: 224.0.0.18 or ff02::12.
    pub fn group(&self) -> IpAddr {
        if self.bound.v6 {
            IpAddr::V6(VRRP_MCAST_V6)
        } else {
            IpAddr::V4(VRRP_MCAST_V4)
        }
    }

    fn sockaddr(&self, dst: IpAddr) -> Result<SockAddr, AdvertError> {
        match (dst, self.bound.v6) {
            (IpAddr::V4(a), false) => Ok(SockAddr::from(SocketAddrV4::new(a, 0))),
            (IpAddr::V6(a), true) => {
                // Link-scope destinations (fe80::/10, ff02::/16) need the interface as scope.
                let link_scope = a.is_unicast_link_local() || a.segments()[0] == 0xff02;
                let scope = if link_scope { self.bound.ifindex } else { 0 };
                Ok(SockAddr::from(SocketAddr::V6(SocketAddrV6::new(
                    a, 0, 0, scope,
                ))))
            }
            _ => Err(AdvertError::FamilyMismatch {
                dst,
                ifname: self.bound.ifname.clone(),
            }),
        }
    }

    /// Sends one advert to `dst` (the group or a unicast peer).
    pub async fn send_to(&self, advert: &[u8], dst: IpAddr) -> Result<(), AdvertError> {
        let addr = self.sockaddr(dst)?;
        let send_error = |io_error| AdvertError::Send {
            call: "sendto",
            dst,
            ifname: self.bound.ifname.clone(),
            io_error,
        };
        loop {
            let mut guard = self.bound.fd.writable().await.map_err(send_error)?;
            match guard.try_io(|fd| fd.get_ref().send_to(advert, &addr)) {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(io_error)) => return Err(send_error(io_error)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one advert to the VRRP group.
    pub async fn send_multicast(&self, advert: &[u8]) -> Result<(), AdvertError> {
        self.send_to(advert, self.group()).await
    }

    /// Sends the same advert to each unicast peer (`unicast_peer`), in one `sendmmsg`.
    pub async fn send_to_peers(&self, advert: &[u8], peers: &[IpAddr]) -> Result<(), AdvertError> {
        let batch: Vec<(&[u8], IpAddr)> = peers.iter().map(|&p| (advert, p)).collect();
        self.send_batch(&batch).await
    }

    /// Sends many adverts at once with `sendmmsg(2)` (many instances due in the same tick): one
    /// syscall per up to 1024 datagrams instead of one each. A datagram that fails does not
    /// stop the others; the first failure is returned.
    pub async fn send_batch(&self, batch: &[(&[u8], IpAddr)]) -> Result<(), AdvertError> {
        match self.send_each(batch).await.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// [`AdvertSender::send_batch`], returning every failure with its index in `batch`.
    pub async fn send_each(&self, batch: &[(&[u8], IpAddr)]) -> Vec<(usize, AdvertError)> {
        let mut failed = Vec::new();
        let mut items: Vec<(usize, &[u8], SockAddr)> = Vec::with_capacity(batch.len());
        for (k, &(payload, dst)) in batch.iter().enumerate() {
            match self.sockaddr(dst) {
                Ok(addr) => items.push((k, payload, addr)),
                Err(e) => failed.push((k, e)),
            }
        }
        let send_error = |k: usize, io_error| AdvertError::Send {
            call: "sendmmsg",
            dst: batch[k].1,
            ifname: self.bound.ifname.clone(),
            io_error,
        };
        let mut sent = 0;
        while sent < items.len() {
            let mut guard = match self.bound.fd.writable().await {
                Ok(g) => g,
                Err(io_error) => {
                    // The socket is unusable: everything left fails with the same error.
                    let kind = io_error.kind();
                    failed.push((items[sent].0, send_error(items[sent].0, io_error)));
                    for item in &items[sent + 1..] {
                        failed.push((item.0, send_error(item.0, io::Error::from(kind))));
                    }
                    break;
                }
            };
            let fd = guard.get_ref().as_raw_fd();
            match guard.try_io(|_| sendmmsg(fd, &items[sent..])) {
                Ok(Ok(n)) => sent += n,
                // The kernel refused the first datagram of this call: skip it, send the rest.
                Ok(Err(io_error)) => {
                    failed.push((items[sent].0, send_error(items[sent].0, io_error)));
                    sent += 1;
                }
                Err(_would_block) => continue,
            }
        }
        failed.sort_by_key(|&(k, _)| k);
        failed
    }
}

/// The kernel's `UIO_MAXIOV`: the most datagrams one `sendmmsg` takes.
const SENDMMSG_MAX: usize = 1024;

/// One `sendmmsg(2)`; returns how many datagrams went (at least one, or an error).
fn sendmmsg(fd: RawFd, items: &[(usize, &[u8], SockAddr)]) -> io::Result<usize> {
    let count = items.len().min(SENDMMSG_MAX);
    let mut iovs: Vec<libc::iovec> = items[..count]
        .iter()
        .map(|(_, payload, _)| libc::iovec {
            iov_base: payload.as_ptr().cast_mut().cast(),
            iov_len: payload.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(count);
    for (iov, (_, _, addr)) in iovs.iter_mut().zip(items) {
        // SAFETY: all-zero is a valid `mmsghdr` (plain C struct, null pointers, zero lengths).
        let mut m: libc::mmsghdr = unsafe { mem::zeroed() };
        m.msg_hdr.msg_name = addr.as_ptr().cast_mut().cast();
        m.msg_hdr.msg_namelen = addr.len();
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
        msgs.push(m);
    }
    // SAFETY: `msgs` holds `count` headers whose names point into `items` and iovecs into
    // `iovs` -> the caller's payloads, all alive until the call returns; the kernel only reads
    // them (and writes `msg_len`, inside `msgs`).
    let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), count as libc::c_uint, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

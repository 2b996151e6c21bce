//! The few socket options socket2 does not wrap, shared by the send (`net::advert`) and receive
//! (`datapath::socket`) sides of the raw VRRP sockets, and the registered socket both hold.

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::Socket;
use tokio::io::unix::AsyncFd;

use super::{IfError, syscall};

/// Makes a raw socket of interface `ifname` non-blocking and registers it with tokio's reactor.
pub(crate) fn into_async(socket: Socket, ifname: &str) -> Result<AsyncFd<Socket>, IfError> {
    socket
        .set_nonblocking(true)
        .map_err(syscall("fcntl(O_NONBLOCK)", ifname))?;
    // SAFETY: the `Socket` owns its fd, which stays open and the same until the `AsyncFd`
    // (which owns the `Socket`) is dropped.
    unsafe { AsyncFd::register(socket) }
        .map_err(|e| syscall("epoll_ctl(EPOLL_CTL_ADD)", ifname)(e.into()))
}

/// A raw VRRP socket bound to one interface and registered with tokio: what the advert sender
/// and the receive socket both hold.
pub(crate) struct BoundSocket {
    pub(crate) fd: AsyncFd<Socket>,
    pub(crate) ifname: String,
    pub(crate) ifindex: u32,
    /// IPv6, else IPv4.
    pub(crate) v6: bool,
}

impl BoundSocket {
    /// Registers `socket`, bound to `ifname` (index `ifindex`).
    pub(crate) fn new(
        socket: Socket,
        ifname: &str,
        ifindex: u32,
        v6: bool,
    ) -> Result<Self, IfError> {
        Ok(Self {
            fd: into_async(socket, ifname)?,
            ifname: ifname.to_owned(),
            ifindex,
            v6,
        })
    }
}

/// `setsockopt(fd, level, name, &value, sizeof value)` for a plain-old-data `value`.
fn setsockopt<T: Copy>(fd: BorrowedFd<'_>, level: i32, name: i32, value: &T) -> io::Result<()> {
    let len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live `T` of `len` bytes; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockopt(fd, level, name)` of an `int` option.
fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and writable; `len` is `value`'s size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) fn set_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    setsockopt(fd, level, name, &(value as libc::c_int))
}

/// `IP_MULTICAST_IF` with a `struct ip_mreqn`: by interface index (socket2 takes only an
/// address, which is ambiguous when two interfaces share one or the interface has none).
pub(crate) fn set_multicast_if_v4_index(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    src: Option<Ipv4Addr>,
) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr {
            s_addr: u32::from(src.unwrap_or(Ipv4Addr::UNSPECIFIED)).to_be(),
        },
        imr_ifindex: ifindex as libc::c_int,
    };
    setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)
}

/// Makes sure the kernel neither fills in nor verifies a checksum on this raw IPv6 socket.
///
/// For raw IPv6 sockets other than ICMPv6, `IPV6_CHECKSUM` is off (-1) unless set (RFC 3542
/// §3.1; `rawv6_init_sk` only turns it on for IPPROTO_ICMPV6): the VRRP codec computes the
/// checksum itself, so a kernel offset would corrupt it. Verified, and forced off if it is not.
/// Returns the offset found before (expected -1).
pub(crate) fn ensure_no_ipv6_checksum(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let found = getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM)?;
    if found != -1 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, -1)?;
    }
    Ok(found)
}

/// A classic BPF program that accepts nothing (`ret #0`): a send-only raw socket still matches
/// every VRRP packet the host receives and would queue them unread (keepalived does the same).
pub(crate) fn drop_all_filter() -> [socket2::SockFilter; 1] {
    const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    [socket2::SockFilter::new(BPF_RET_K, 0, 0, 0)]
}

//! What the agent does to the network, as opposed to what comes in (`datapath`):
//!
//! - [`advert`]: sends VRRP adverts on raw `IPPROTO_VRRP` sockets (multicast or unicast peers),
//! - [`vip`]: adds and removes virtual addresses and `virtual_routes` with rtnetlink,
//! - [`garp`]: gratuitous ARP and unsolicited neighbour advertisements on an `AF_PACKET` socket,
//! - [`link`]: interface facts (ifindex, MAC, oper state, primary addresses) and link events,
//! - [`conflict`]: ARP and neighbour advertisements from other hosts, for address conflicts.
//!
//! Everything here takes and returns bytes and addresses: the codec (`vrrp::packet`) builds the
//! adverts, the state machine (`vrrp::instance`) decides when.

pub mod advert;
pub mod conflict;
pub mod garp;
pub mod link;
pub mod netlink;
pub(crate) mod sockopt;
pub mod vip;

pub use advert::{AdvertError, AdvertSender};
pub use conflict::{Claim, ClaimError, ClaimWatch};
pub use garp::{GarpError, GarpSender};
pub use link::{InterfaceInfo, LinkError, LinkEvent, LinkWatch, OperState};
pub use netlink::{Netlink, NetlinkError};
pub use vip::{
    AddOutcome, DelOutcome, IfAddress, LIFETIME_FOREVER, Scope, Vip, VipError, VipFlags,
    VirtualRoute,
};

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr},
};

/// The IANA protocol number of VRRP (RFC 5798 §5.1.1.4, §5.1.2.4).
pub const IPPROTO_VRRP: i32 = 112;

/// The VRRP IPv4 multicast group, 224.0.0.18 (RFC 5798 §5.1.1.2).
pub const VRRP_MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// The VRRP IPv6 multicast group, ff02::12 (RFC 5798 §5.1.2.2).
pub const VRRP_MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The TTL / hop limit every VRRP packet is sent with and must arrive with (RFC 5798 §5.1.1.3).
pub const VRRP_TTL: u8 = 255;

/// The failures every raw socket of the agent shares: the interface does not exist, or a
/// syscall on it failed. Embedded (transparently) in `AdvertError`, `GarpError` and
/// `datapath::socket::SocketError`.
#[derive(Debug, thiserror::Error)]
pub enum IfError {
    #[error("no interface named `{ifname}` (`if_nametoindex`)")]
    NoSuchInterface {
        ifname: String,
        #[source]
        io_error: io::Error,
    },
    #[error("`{call}` failed on interface `{ifname}`")]
    Syscall {
        call: &'static str,
        ifname: String,
        #[source]
        io_error: io::Error,
    },
}

/// `map_err` adapter: `call` failed on `ifname`.
pub(crate) fn syscall<'a>(
    call: &'static str,
    ifname: &'a str,
) -> impl FnOnce(io::Error) -> IfError + 'a {
    move |io_error| IfError::Syscall {
        call,
        ifname: ifname.to_owned(),
        io_error,
    }
}

/// The index of interface `ifname`.
pub(crate) fn resolve(ifname: &str) -> Result<u32, IfError> {
    link::if_index(ifname).map_err(|io_error| IfError::NoSuchInterface {
        ifname: ifname.to_owned(),
        io_error,
    })
}

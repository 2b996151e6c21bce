//! What the agent does to the network, as opposed to what comes in (`datapath`):
//!
//! - [`advert`]: sends VRRP adverts on raw `IPPROTO_VRRP` sockets (multicast or unicast peers),
//! - [`vip`]: adds and removes virtual addresses with rtnetlink,
//! - [`route`]: adds and removes routes and policy rules (virtual and static) with rtnetlink,
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
pub mod route;
pub(crate) mod sockopt;
pub mod vip;
pub mod vmac;

pub use advert::{AdvertError, AdvertSender};
pub use conflict::{Claim, ClaimError, ClaimWatch};
pub use garp::{GarpError, GarpSender};
pub use link::{InterfaceInfo, LinkError, LinkEvent, LinkWatch, OperState};
pub use netlink::{Netlink, NetlinkError};
pub use route::{Deleted, DeletionWatch, Nexthop, Route, RouteKind, Rule, RuleAction};
pub use vip::{
    AddOutcome, DelOutcome, IfAddress, LIFETIME_FOREVER, Scope, Vip, VipError, VipFlags,
};

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ha_common::wire;
/// The TTL / hop limit every VRRP packet is sent with and must arrive with (RFC 5798 §5.1.1.3).
pub use ha_common::wire::VRRP_TTL;

/// The IANA protocol number of VRRP (RFC 5798 §5.1.1.4, §5.1.2.4), as socket(2) takes it.
pub const IPPROTO_VRRP: i32 = wire::IPPROTO_VRRP as i32;

/// The VRRP IPv4 multicast group, 224.0.0.18 (RFC 5798 §5.1.1.2).
pub const VRRP_MCAST_V4: Ipv4Addr = Ipv4Addr::from_bits(u32::from_be_bytes(wire::VRRP_MCAST_V4));

/// The VRRP IPv6 multicast group, ff02::12 (RFC 5798 §5.1.2.2).
pub const VRRP_MCAST_V6: Ipv6Addr = Ipv6Addr::from_bits(u128::from_be_bytes(wire::VRRP_MCAST_V6));

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

/// The IPv4 ones of `addrs`.
pub fn v4s(addrs: &[IpAddr]) -> Vec<Ipv4Addr> {
    addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The IPv6 ones of `addrs`.
pub fn v6s(addrs: &[IpAddr]) -> Vec<Ipv6Addr> {
    addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vrrp_constants_are_the_wire_ones() {
        assert_eq!(IPPROTO_VRRP, 112);
        assert_eq!(VRRP_MCAST_V4, Ipv4Addr::new(224, 0, 0, 18));
        assert_eq!(VRRP_MCAST_V6, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));
        assert_eq!(VRRP_TTL, 255);
    }

    #[test]
    fn addresses_split_by_family_in_order() {
        let addrs: Vec<IpAddr> = ["192.0.2.1", "fe80::1", "192.0.2.2", "ff02::12"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(
            v4s(&addrs),
            [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
        );
        assert_eq!(
            v6s(&addrs),
            [
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)
            ]
        );
        assert!(v4s(&[]).is_empty());
    }
}

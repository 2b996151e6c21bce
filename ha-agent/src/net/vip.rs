//! Virtual IP addresses, added and removed with rtnetlink (`RTM_NEWADDR`/`RTM_DELADDR`).
//!
//! Both directions are idempotent, as a failover agent needs them to be: a restarted master finds
//! its VIPs already there, a backup removes VIPs it never had. The outcome says which case it was.
//!
//! Kernel rules worth knowing (IPv4): a VIP in the subnet of an existing address becomes its
//! `secondary` and must have the primary's scope (else `EINVAL`, "Invalid scope value"); and
//! deleting a primary deletes its secondaries too unless `net.ipv4.conf.<if>.promote_secondaries`
//! is 1, which the agent should set on VRRP interfaces (keepalived does).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::{Netlink, to_io};

/// Longest `IFA_LABEL` the kernel keeps (`IFNAMSIZ - 1`).
const MAX_LABEL_LEN: usize = 15;

/// An address lifetime of `forever` (`INFINITY_LIFE_TIME`).
pub const LIFETIME_FOREVER: u32 = u32::MAX;

/// What went wrong, and on which address or route.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: &'static str },
    #[error("`{call}` failed for {what} on ifindex {ifindex}")]
    Netlink {
        call: &'static str,
        what: String,
        ifindex: u32,
        #[source]
        io_error: io::Error,
    },
}

/// Address scope (`ifa_scope` / `rtm_scope`), keepalived's `scope` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    #[default]
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

impl Scope {
    /// The kernel's number (`RT_SCOPE_*`).
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Global => 0,
            Self::Site => 200,
            Self::Link => 253,
            Self::Host => 254,
            Self::Nowhere => 255,
            Self::Other(n) => n,
        }
    }

    /// From the kernel's number.
    pub fn from_u8(n: u8) -> Self {
        match n {
            0 => Self::Global,
            200 => Self::Site,
            253 => Self::Link,
            254 => Self::Host,
            255 => Self::Nowhere,
            n => Self::Other(n),
        }
    }
}

/// The `IFA_F_*` flags a VIP is added with: keepalived's (and `ip address add`'s) `home`,
/// `mngtmpaddr`, `noprefixroute`, `autojoin` and `-nodad`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VipFlags {
    /// `home`: `IFA_F_HOMEADDRESS` (Mobile IPv6 home address).
    pub home: bool,
    /// `mngtmpaddr`: `IFA_F_MANAGETEMPADDR` (the kernel makes privacy addresses from it; IPv6,
    /// /64 only).
    pub mngtmpaddr: bool,
    /// `noprefixroute`: `IFA_F_NOPREFIXROUTE`, no route for the prefix is added with it.
    pub noprefixroute: bool,
    /// `autojoin`: `IFA_F_MCAUTOJOIN`, a multicast address joins its group.
    pub autojoin: bool,
    /// `-nodad`: IPv6 duplicate address detection runs. Without it IPv6 VIPs get
    /// `IFA_F_NODAD` (keepalived's default).
    pub dad: bool,
}

impl VipFlags {
    /// The `IFA_FLAGS` for an address of this family.
    fn bits(self, ipv6: bool) -> AddressFlags {
        let mut f = AddressFlags::empty();
        for (on, bit) in [
            (self.home, AddressFlags::Homeaddress),
            (self.mngtmpaddr, AddressFlags::Managetempaddr),
            (self.noprefixroute, AddressFlags::Noprefixroute),
            (self.autojoin, AddressFlags::Mcautojoin),
            // A VIP moves between nodes: DAD would hold it tentative (unusable) for a second and
            // fail it outright while the old master still answers (keepalived does the same).
            (ipv6 && !self.dad, AddressFlags::Nodad),
        ] {
            if on {
                f |= bit;
            }
        }
        f
    }
}

/// One `virtual_ipaddress` entry: `<addr>[/<prefix>] [brd <addr>] [scope <scope>] [label <l>]
/// [peer <addr>] [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin] [preferred_lft <n>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    /// keepalived's default is /32 (IPv4) and /128 (IPv6). With a peer, the peer's prefix.
    pub prefix_len: u8,
    /// `IFA_BROADCAST`, IPv4 only; none unless configured (keepalived's default).
    pub broadcast: Option<Ipv4Addr>,
    pub scope: Scope,
    /// `IFA_LABEL`, IPv4 only (the kernel has no labels on IPv6 addresses); at most 15 bytes.
    pub label: Option<String>,
    /// `peer`: the other end of a point-to-point link, sent as `IFA_ADDRESS` (with `addr` as
    /// `IFA_LOCAL`); the prefix route goes to the peer's prefix.
    pub peer: Option<IpAddr>,
    pub flags: VipFlags,
    /// `preferred_lft` in seconds ([`LIFETIME_FOREVER`]: forever), sent as `IFA_CACHEINFO`
    /// with a valid lifetime of forever. 0 makes the address deprecated: the kernel does not
    /// pick it as a source. `None`: the kernel's default (forever), no `IFA_CACHEINFO`.
    pub preferred_lft: Option<u32>,
}

impl Vip {
    /// `addr` as a host address (/32 or /128), global scope, no broadcast, no label.
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            broadcast: None,
            scope: Scope::Global,
            label: None,
            peer: None,
            flags: VipFlags::default(),
            preferred_lft: None,
        }
    }

    pub fn with_prefix_len(mut self, prefix_len: u8) -> Self {
        self.prefix_len = prefix_len;
        self
    }

    pub fn with_broadcast(mut self, broadcast: Ipv4Addr) -> Self {
        self.broadcast = Some(broadcast);
        self
    }

    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A point-to-point address: `peer` as `IFA_ADDRESS`. `prefix_len` then is the peer's.
    pub fn with_peer(mut self, peer: IpAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    pub fn with_flags(mut self, flags: VipFlags) -> Self {
        self.flags = flags;
        self
    }

    /// `preferred_lft` seconds ([`LIFETIME_FOREVER`]: forever; 0: deprecated at once).
    pub fn with_preferred_lft(mut self, seconds: u32) -> Self {
        self.preferred_lft = Some(seconds);
        self
    }

    fn validate(&self) -> Result<(), VipError> {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(self.invalid("prefix length longer than the address"));
        }
        if self.addr.is_ipv6() && self.broadcast.is_some() {
            return Err(self.invalid("IPv6 has no broadcast address"));
        }
        if self
            .peer
            .is_some_and(|p| p.is_ipv4() != self.addr.is_ipv4())
        {
            return Err(self.invalid("the peer must be of the address's family"));
        }
        if let Some(label) = &self.label {
            if self.addr.is_ipv6() {
                return Err(self.invalid("the kernel keeps no labels on IPv6 addresses"));
            }
            if label.len() > MAX_LABEL_LEN || label.is_empty() {
                return Err(self.invalid("label must be 1 to 15 bytes (IFNAMSIZ - 1)"));
            }
        }
        Ok(())
    }

    fn invalid(&self, why: &'static str) -> VipError {
        VipError::Invalid {
            what: format!("VIP {self}"),
            why,
        }
    }

    fn message(&self, ifindex: u32) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = match self.addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.header.prefix_len = self.prefix_len;
        msg.header.scope = AddressScope::from(self.scope.as_u8());
        msg.header.index = ifindex;
        // As `ip address add ADDR peer PEER`: IFA_LOCAL is ours, IFA_ADDRESS the other end (the
        // same address when there is no peer).
        msg.attributes.push(AddressAttribute::Local(self.addr));
        msg.attributes
            .push(AddressAttribute::Address(self.peer.unwrap_or(self.addr)));
        if let Some(brd) = self.broadcast {
            msg.attributes.push(AddressAttribute::Broadcast(brd));
        }
        if let Some(label) = &self.label {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
        if let Some(preferred) = self.preferred_lft {
            let mut lifetimes = CacheInfo::default();
            lifetimes.ifa_preferred = preferred;
            lifetimes.ifa_valid = LIFETIME_FOREVER;
            msg.attributes.push(AddressAttribute::CacheInfo(lifetimes));
        }
        let flags = self.flags.bits(self.addr.is_ipv6());
        if !flags.is_empty() {
            // The header keeps the low 8 bits (kernels before IFA_FLAGS read only those).
            msg.header.flags = AddressHeaderFlags::from_bits_retain(flags.bits() as u8);
            msg.attributes.push(AddressAttribute::Flags(flags));
        }
        msg
    }

    /// The `RTM_DELADDR` message: address, peer and prefix only, so that a label, scope,
    /// lifetime or flag that differs does not keep the address. IPv4 matches a point-to-point
    /// address only with its peer as `IFA_ADDRESS`.
    fn del_message(&self, ifindex: u32) -> AddressMessage {
        let mut msg = self.message(ifindex);
        msg.attributes
            .retain(|a| matches!(a, AddressAttribute::Local(_) | AddressAttribute::Address(_)));
        msg.header.flags = AddressHeaderFlags::empty();
        msg
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(peer) => write!(f, "{} peer {peer}/{}", self.addr, self.prefix_len)?,
            None => write!(f, "{}/{}", self.addr, self.prefix_len)?,
        }
        if let Some(label) = &self.label {
            write!(f, " label {label}")?;
        }
        Ok(())
    }
}

/// What an idempotent add did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// It was there already (`EEXIST`): nothing changed.
    AlreadyPresent,
}

/// What an idempotent delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelOutcome {
    Removed,
    /// It was not there (`EADDRNOTAVAIL` / `ESRCH`): nothing changed.
    AlreadyAbsent,
}

/// An address as the kernel lists it on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddress {
    /// The interface it is on.
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub scope: Scope,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    /// `IFA_F_SECONDARY`: another address of the same subnet is the primary.
    pub secondary: bool,
    /// `IFA_F_NODAD`.
    pub nodad: bool,
    /// `IFA_ADDRESS` when it differs from `IFA_LOCAL`: a point-to-point peer.
    pub peer: Option<IpAddr>,
    /// The preferred lifetime left, in seconds ([`LIFETIME_FOREVER`]: forever), when the
    /// kernel reports one (`IFA_CACHEINFO`).
    pub preferred_lft: Option<u32>,
    /// `IFA_F_NOPREFIXROUTE`.
    pub noprefixroute: bool,
}

impl Netlink {
    /// Sends one request that expects an ACK; `Err(errno)` for a NACK.
    pub(super) async fn acked(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), io::Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        let mut responses = self.handle().clone().request(req).map_err(to_io)?;
        while let Some(resp) = responses.next().await {
            if let NetlinkPayload::Error(err) = resp.payload
                && err.code.is_some()
            {
                return Err(err.to_io());
            }
        }
        Ok(())
    }

    /// Adds `vip` to interface `ifindex` (`RTM_NEWADDR`, `NLM_F_EXCL`); an existing address is
    /// [`AddOutcome::AlreadyPresent`] (its flags and lifetimes are left as they are). IPv6 VIPs
    /// are added with `IFA_F_NODAD` unless [`VipFlags::dad`].
    pub async fn add_vip(&self, ifindex: u32, vip: &Vip) -> Result<AddOutcome, VipError> {
        vip.validate()?;
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        match self
            .acked(RouteNetlinkMessage::NewAddress(vip.message(ifindex)), flags)
            .await
        {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
            Err(io_error) => Err(VipError::Netlink {
                call: "RTM_NEWADDR",
                what: format!("VIP {vip}"),
                ifindex,
                io_error,
            }),
        }
    }

    /// Removes `vip` (address, peer and prefix length) from interface `ifindex`
    /// (`RTM_DELADDR`); a missing address is [`DelOutcome::AlreadyAbsent`].
    pub async fn del_vip(&self, ifindex: u32, vip: &Vip) -> Result<DelOutcome, VipError> {
        match self
            .acked(
                RouteNetlinkMessage::DelAddress(vip.del_message(ifindex)),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(()) => Ok(DelOutcome::Removed),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
                Ok(DelOutcome::AlreadyAbsent)
            }
            Err(io_error) => Err(VipError::Netlink {
                call: "RTM_DELADDR",
                what: format!("VIP {vip}"),
                ifindex,
                io_error,
            }),
        }
    }

    /// The addresses on interface `ifindex`, IPv4 and IPv6, in the kernel's order.
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IfAddress>, VipError> {
        self.address_dump(Some(ifindex)).await
    }

    /// Every address of every interface (of this network namespace).
    pub async fn all_addresses(&self) -> Result<Vec<IfAddress>, VipError> {
        self.address_dump(None).await
    }

    async fn address_dump(&self, only: Option<u32>) -> Result<Vec<IfAddress>, VipError> {
        let ifindex = only.unwrap_or(0);
        let mut request = self.handle().address().get();
        if let Some(index) = only {
            request = request.set_link_index_filter(index);
        }
        let mut dump = request.execute();
        let mut out = Vec::new();
        loop {
            let msg = match dump.try_next().await {
                Ok(Some(msg)) => msg,
                Ok(None) => return Ok(out),
                Err(e) => {
                    return Err(VipError::Netlink {
                        call: "RTM_GETADDR",
                        what: "address dump".into(),
                        ifindex,
                        io_error: to_io(e),
                    });
                }
            };
            let mut local = None;
            let mut address = None;
            let mut broadcast = None;
            let mut label = None;
            let mut flags = None;
            let mut preferred_lft = None;
            for attr in msg.attributes {
                match attr {
                    AddressAttribute::Local(a) => local = Some(a),
                    AddressAttribute::Address(a) => address = Some(a),
                    AddressAttribute::Broadcast(b) => broadcast = Some(b),
                    AddressAttribute::Label(l) => label = Some(l),
                    AddressAttribute::Flags(f) => flags = Some(f),
                    AddressAttribute::CacheInfo(c) => preferred_lft = Some(c.ifa_preferred),
                    _ => {}
                }
            }
            let Some(addr) = local.or(address) else {
                continue;
            };
            let peer = address.filter(|a| *a != addr);
            // IFA_FLAGS (32 bits) supersedes the 8-bit header flags when present.
            let flags = flags.unwrap_or_else(|| {
                AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()))
            });
            out.push(IfAddress {
                ifindex: msg.header.index,
                addr,
                prefix_len: msg.header.prefix_len,
                scope: Scope::from_u8(u8::from(msg.header.scope)),
                broadcast,
                label,
                secondary: flags.contains(AddressFlags::Secondary),
                nodad: flags.contains(AddressFlags::Nodad),
                peer,
                preferred_lft,
                noprefixroute: flags.contains(AddressFlags::Noprefixroute),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn flags_of(msg: &AddressMessage) -> Option<AddressFlags> {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
    }

    fn cache_info_of(msg: &AddressMessage) -> Option<CacheInfo> {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::CacheInfo(c) => Some(*c),
            _ => None,
        })
    }

    #[test]
    fn plain_vips_as_before() {
        let v4 = Vip::new(ip("192.0.2.10")).message(3);
        assert_eq!(
            v4.attributes,
            [
                AddressAttribute::Local(ip("192.0.2.10")),
                AddressAttribute::Address(ip("192.0.2.10"))
            ]
        );
        assert_eq!(v4.header.flags, AddressHeaderFlags::empty());
        let v6 = Vip::new(ip("2001:db8::10")).message(3);
        assert_eq!(flags_of(&v6), Some(AddressFlags::Nodad));
        assert_eq!(v6.header.flags, AddressHeaderFlags::Nodad);
        assert_eq!(cache_info_of(&v6), None, "no lifetimes unless asked");
    }

    #[test]
    fn peer_is_ifa_address_and_local_is_ours() {
        let vip = Vip::new(ip("192.0.2.10")).with_peer(ip("192.0.2.11"));
        let msg = vip.message(3);
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Local(ip("192.0.2.10")))
        );
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Address(ip("192.0.2.11")))
        );
        assert!(
            !msg.attributes
                .contains(&AddressAttribute::Address(ip("192.0.2.10")))
        );
        // The delete names the peer too (IPv4 matches on it), and nothing else.
        let del = vip.del_message(3);
        assert_eq!(
            del.attributes,
            [
                AddressAttribute::Local(ip("192.0.2.10")),
                AddressAttribute::Address(ip("192.0.2.11"))
            ]
        );
        assert_eq!(vip.to_string(), "192.0.2.10 peer 192.0.2.11/32");
        let odd = Vip::new(ip("192.0.2.10")).with_peer(ip("2001:db8::1"));
        assert!(odd.validate().is_err());
    }

    #[test]
    fn preferred_lft_is_cache_info_valid_forever() {
        let vip = Vip::new(ip("2001:db8::10"))
            .with_prefix_len(64)
            .with_preferred_lft(0);
        let c = cache_info_of(&vip.message(3)).expect("IFA_CACHEINFO");
        assert_eq!((c.ifa_preferred, c.ifa_valid), (0, LIFETIME_FOREVER));
        let del = vip.del_message(3);
        assert_eq!(cache_info_of(&del), None);
        assert_eq!(del.header.flags, AddressHeaderFlags::empty());
    }

    #[test]
    fn flags_are_ifa_flags() {
        let all = VipFlags {
            home: true,
            mngtmpaddr: true,
            noprefixroute: true,
            autojoin: true,
            dad: false,
        };
        let msg = Vip::new(ip("2001:db8::10")).with_flags(all).message(3);
        assert_eq!(
            flags_of(&msg),
            Some(
                AddressFlags::Homeaddress
                    | AddressFlags::Managetempaddr
                    | AddressFlags::Noprefixroute
                    | AddressFlags::Mcautojoin
                    | AddressFlags::Nodad
            )
        );
        // The 8-bit header carries what fits.
        assert_eq!(
            msg.header.flags,
            AddressHeaderFlags::Homeaddress | AddressHeaderFlags::Nodad
        );
        // `-nodad`: IPv6 DAD runs.
        let dad = VipFlags {
            dad: true,
            ..VipFlags::default()
        };
        let msg = Vip::new(ip("2001:db8::10")).with_flags(dad).message(3);
        assert_eq!(flags_of(&msg), None);
        // IPv4 has no DAD: never IFA_F_NODAD.
        let only = VipFlags {
            noprefixroute: true,
            ..VipFlags::default()
        };
        let msg = Vip::new(ip("192.0.2.10")).with_flags(only).message(3);
        assert_eq!(flags_of(&msg), Some(AddressFlags::Noprefixroute));
        assert_eq!(msg.header.flags, AddressHeaderFlags::empty());
    }
}

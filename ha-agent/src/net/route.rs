//! Routes and policy rules, added and removed with rtnetlink (`RTM_NEWROUTE`/`RTM_DELROUTE`,
//! `RTM_NEWRULE`/`RTM_DELRULE`): `virtual_routes`/`virtual_rules` (with an instance's VIPs) and
//! `static_routes`/`static_rules` (for the agent's whole run), as keepalived's
//! vrrp_iproute.c `netlink_route` and vrrp_iprule.c `netlink_rule` build them.
//!
//! [`DeletionWatch`] reports deletions, for the static entries keepalived puts back.
//!
//! Both directions are idempotent: an add of what is there is [`AddOutcome::AlreadyPresent`], a
//! delete of what is not is [`DelOutcome::AlreadyAbsent`], so a restarted agent can remove what
//! a killed one left without knowing whether it did.

use std::fmt;
use std::net::IpAddr;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use rtnetlink::packet_route::IpProtocol;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteNextHop,
    RouteNextHopFlags, RoutePreference, RouteProtocol, RouteRealm, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{
    RuleAction as NlRuleAction, RuleAttribute, RuleFlags, RuleHeader, RuleMessage, RulePortRange,
    RuleUidRange,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{MulticastGroup, sys::SocketAddr};
use tokio::task::JoinHandle;

use super::netlink::Netlink;
use super::vip::{AddOutcome, DelOutcome, Scope, VipError};

/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;

/// `rtm_type` of a route: where a packet matching it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteKind {
    #[default]
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// One path of a multipath route (`RTA_MULTIPATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nexthop {
    pub via: Option<IpAddr>,
    pub ifindex: Option<u32>,
    /// 1-256 (`rtnh_hops` is the weight minus one).
    pub weight: Option<u16>,
    pub onlink: bool,
}

/// A route to install: `ip route` words with interfaces resolved to indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    pub dst: IpAddr,
    pub prefix_len: u8,
    /// `from`: the source prefix (`RTA_SRC`, IPv6).
    pub from: Option<(IpAddr, u8)>,
    pub via: Option<IpAddr>,
    /// The `dev` (`RTA_OIF`).
    pub ifindex: Option<u32>,
    /// `src`: the preferred source (`RTA_PREFSRC`).
    pub src: Option<IpAddr>,
    /// `RTA_PRIORITY`.
    pub metric: Option<u32>,
    pub table: u32,
    /// When `None`, as `ip route`: link scope for a unicast route without a gateway, else
    /// global (IPv6 routes are always global).
    pub scope: Option<Scope>,
    /// `rtm_protocol`: keepalived's 18 unless the configuration says otherwise.
    pub protocol: u8,
    pub onlink: bool,
    /// `rtm_tos`.
    pub tos: u8,
    /// `RTA_FLOW`: SRC << 16 | DST realm (IPv4).
    pub realms: Option<u32>,
    /// `RTA_PREF` (IPv6 router preference, `ICMPV6_ROUTER_PREF_*`).
    pub pref: Option<u8>,
    /// `RTA_EXPIRES` in seconds (IPv6).
    pub expires: Option<u32>,
    /// `RTA_METRICS` (`mtu`, `advmss`, `congctl`, …), and the `lock`ed ones as a bit set
    /// (`RTAX_LOCK`).
    pub metrics: Vec<RouteMetric>,
    pub locked: u32,
    pub nexthops: Vec<Nexthop>,
    /// `ip route append` (`NLM_F_APPEND`) rather than keepalived's default prepend.
    pub append: bool,
    /// `ip route add` (`NLM_F_EXCL`): not added beside another route to the destination.
    pub exclusive: bool,
}

impl Route {
    /// A unicast route to `dst/prefix_len` in the main table, keepalived's protocol.
    pub fn new(dst: IpAddr, prefix_len: u8) -> Self {
        Self {
            kind: RouteKind::Unicast,
            dst,
            prefix_len,
            from: None,
            via: None,
            ifindex: None,
            src: None,
            metric: None,
            table: RT_TABLE_MAIN,
            scope: None,
            protocol: 18,
            onlink: false,
            tos: 0,
            realms: None,
            pref: None,
            expires: None,
            metrics: Vec::new(),
            locked: 0,
            nexthops: Vec::new(),
            append: false,
            exclusive: false,
        }
    }

    fn invalid(&self, why: &'static str) -> VipError {
        VipError::Invalid {
            what: format!("route {self}"),
            why,
        }
    }

    fn validate(&self) -> Result<(), VipError> {
        let max = if self.dst.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(self.invalid("prefix length longer than the address"));
        }
        let same_family = |a: &IpAddr| a.is_ipv4() == self.dst.is_ipv4();
        let addrs = self.via.iter().chain(self.src.iter());
        let hops = self.nexthops.iter().filter_map(|n| n.via.as_ref());
        if !addrs.chain(hops).all(same_family) {
            return Err(self.invalid("via, src and nexthops must be of the destination's family"));
        }
        if self.kind == RouteKind::Unicast
            && self.via.is_none()
            && self.ifindex.is_none()
            && self.nexthops.is_empty()
        {
            return Err(self.invalid("a unicast route needs a gateway (via), a dev or nexthops"));
        }
        Ok(())
    }

    /// The `RTM_NEWROUTE` message (`del`: the `RTM_DELROUTE` one, which matches any scope and
    /// ignores the metrics, as keepalived's).
    pub fn message(&self, del: bool) -> Result<RouteMessage, VipError> {
        self.validate()?;
        let v4 = self.dst.is_ipv4();
        let mut h = RouteHeader {
            address_family: if v4 {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            },
            destination_prefix_length: self.prefix_len,
            ..RouteHeader::default()
        };
        h.kind = match self.kind {
            RouteKind::Unicast => RouteType::Unicast,
            RouteKind::Blackhole => RouteType::BlackHole,
            RouteKind::Unreachable => RouteType::Unreachable,
            RouteKind::Prohibit => RouteType::Prohibit,
            RouteKind::Throw => RouteType::Throw,
        };
        h.protocol = RouteProtocol::from(self.protocol);
        h.tos = self.tos;
        let gateway = self.via.is_some() || !self.nexthops.is_empty();
        let scope = match self.scope {
            _ if del => Scope::Nowhere,
            Some(s) => s,
            None if v4 && self.kind == RouteKind::Unicast && !gateway => Scope::Link,
            None => Scope::Global,
        };
        h.scope = RouteScope::from(scope.as_u8());
        if self.onlink {
            h.flags = RouteFlags::Onlink;
        }
        let mut attrs = Vec::new();
        if self.table < 256 {
            h.table = self.table as u8;
        } else {
            h.table = RouteHeader::RT_TABLE_UNSPEC;
            attrs.push(RouteAttribute::Table(self.table));
        }
        if self.prefix_len > 0 {
            attrs.push(RouteAttribute::Destination(RouteAddress::from(self.dst)));
        }
        if let Some((from, len)) = self.from {
            h.source_prefix_length = len;
            attrs.push(RouteAttribute::Source(RouteAddress::from(from)));
        }
        if let Some(src) = self.src {
            attrs.push(RouteAttribute::PrefSource(RouteAddress::from(src)));
        }
        if let Some(via) = self.via {
            attrs.push(RouteAttribute::Gateway(RouteAddress::from(via)));
        }
        if let Some(ifindex) = self.ifindex {
            attrs.push(RouteAttribute::Oif(ifindex));
        }
        if let Some(metric) = self.metric {
            attrs.push(RouteAttribute::Priority(metric));
        }
        if let Some(r) = self.realms {
            attrs.push(RouteAttribute::Realm(realm(r)));
        }
        if let Some(pref) = self.pref.filter(|_| !del) {
            attrs.push(RouteAttribute::Preference(RoutePreference::from(pref)));
        }
        if let Some(expires) = self.expires.filter(|_| !del) {
            attrs.push(RouteAttribute::Expires(expires));
        }
        if !del && (!self.metrics.is_empty() || self.locked != 0) {
            let mut m = self.metrics.clone();
            if self.locked != 0 {
                m.push(RouteMetric::Lock(self.locked));
            }
            attrs.push(RouteAttribute::Metrics(m));
        }
        if !self.nexthops.is_empty() {
            let hops = self
                .nexthops
                .iter()
                .map(|n| {
                    let mut hop = RouteNextHop::default();
                    hop.interface_index = n.ifindex.unwrap_or(0);
                    hop.hops = n.weight.map_or(0, |w| (w.clamp(1, 256) - 1) as u8);
                    if n.onlink {
                        hop.flags = RouteNextHopFlags::Onlink;
                    }
                    if let Some(via) = n.via {
                        hop.attributes
                            .push(RouteAttribute::Gateway(RouteAddress::from(via)));
                    }
                    hop
                })
                .collect();
            attrs.push(RouteAttribute::MultiPath(hops));
        }
        let mut msg = RouteMessage::default();
        msg.header = h;
        msg.attributes = attrs;
        Ok(msg)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != RouteKind::Unicast {
            write!(f, "{} ", format!("{:?}", self.kind).to_lowercase())?;
        }
        write!(f, "{}/{}", self.dst, self.prefix_len)?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(ifindex) = self.ifindex {
            write!(f, " dev #{ifindex}")?;
        }
        for n in &self.nexthops {
            write!(f, " nexthop")?;
            if let Some(via) = n.via {
                write!(f, " via {via}")?;
            }
            if let Some(w) = n.weight {
                write!(f, " weight {w}")?;
            }
        }
        if self.table != RT_TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        Ok(())
    }
}

/// What a policy rule does with a packet it matches (`fib_rule_hdr.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Table(u32),
    /// `l3mdev`: the VRF device's table (`FRA_L3MDEV`).
    L3mdev,
    Goto(u32),
    Nop,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// A policy rule to install: `ip rule` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub ipv6: bool,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub action: RuleAction,
    pub priority: u32,
    /// `not`: `FIB_RULE_INVERT`.
    pub invert: bool,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub tos: u8,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `FRA_PROTOCOL`: keepalived's 18 unless `no_track`.
    pub protocol: Option<u8>,
    /// `FRA_FLOW`: SRC << 16 | DST realm (IPv4).
    pub realms: Option<u32>,
    pub suppress_prefixlen: Option<u32>,
    pub suppress_ifgroup: Option<u32>,
    pub tunnel_id: Option<u64>,
    pub uid_range: Option<(u32, u32)>,
    pub ip_proto: Option<u8>,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
}

impl Rule {
    /// A rule `from all` to `action` at `priority`.
    pub fn new(ipv6: bool, action: RuleAction, priority: u32) -> Self {
        Self {
            ipv6,
            from: None,
            to: None,
            action,
            priority,
            invert: false,
            fwmark: None,
            fwmask: None,
            tos: 0,
            iif: None,
            oif: None,
            protocol: Some(18),
            realms: None,
            suppress_prefixlen: None,
            suppress_ifgroup: None,
            tunnel_id: None,
            uid_range: None,
            ip_proto: None,
            sport: None,
            dport: None,
        }
    }

    /// The `RTM_NEWRULE` / `RTM_DELRULE` message (the same: the kernel deletes the rule that
    /// matches every attribute given).
    pub fn message(&self) -> Result<RuleMessage, VipError> {
        let same_family = |(a, _): &(IpAddr, u8)| a.is_ipv6() == self.ipv6;
        if !self.from.iter().chain(self.to.iter()).all(same_family) {
            return Err(VipError::Invalid {
                what: format!("rule {self}"),
                why: "from and to must be of the rule's family",
            });
        }
        let mut h = RuleHeader {
            family: if self.ipv6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            },
            tos: self.tos,
            ..RuleHeader::default()
        };
        let mut attrs = Vec::new();
        h.action = match self.action {
            RuleAction::Table(t) => {
                if t < 256 {
                    h.table = t as u8;
                } else {
                    attrs.push(RuleAttribute::Table(t));
                }
                NlRuleAction::ToTable
            }
            RuleAction::L3mdev => {
                attrs.push(RuleAttribute::L3MDev(true));
                NlRuleAction::ToTable
            }
            RuleAction::Goto(target) => {
                attrs.push(RuleAttribute::Goto(target));
                NlRuleAction::Goto
            }
            RuleAction::Nop => NlRuleAction::Nop,
            RuleAction::Blackhole => NlRuleAction::Blackhole,
            RuleAction::Unreachable => NlRuleAction::Unreachable,
            RuleAction::Prohibit => NlRuleAction::Prohibit,
        };
        if self.invert {
            h.flags = RuleFlags::Invert;
        }
        if let Some((a, len)) = self.from {
            h.src_len = len;
            attrs.push(RuleAttribute::Source(a));
        }
        if let Some((a, len)) = self.to {
            h.dst_len = len;
            attrs.push(RuleAttribute::Destination(a));
        }
        attrs.push(RuleAttribute::Priority(self.priority));
        if let Some(m) = self.fwmark {
            attrs.push(RuleAttribute::FwMark(m));
        }
        if let Some(m) = self.fwmask {
            attrs.push(RuleAttribute::FwMask(m));
        }
        if let Some(i) = &self.iif {
            attrs.push(RuleAttribute::Iifname(i.clone()));
        }
        if let Some(o) = &self.oif {
            attrs.push(RuleAttribute::Oifname(o.clone()));
        }
        if let Some(p) = self.protocol {
            attrs.push(RuleAttribute::Protocol(RouteProtocol::from(p)));
        }
        if let Some(r) = self.realms {
            attrs.push(RuleAttribute::Realm(realm(r)));
        }
        if let Some(n) = self.suppress_prefixlen {
            attrs.push(RuleAttribute::SuppressPrefixLen(n));
        }
        if let Some(n) = self.suppress_ifgroup {
            attrs.push(RuleAttribute::SuppressIfGroup(n));
        }
        if let Some(n) = self.tunnel_id {
            attrs.push(RuleAttribute::TunId(n));
        }
        if let Some((start, end)) = self.uid_range {
            attrs.push(RuleAttribute::UidRange(RuleUidRange { start, end }));
        }
        if let Some(p) = self.ip_proto {
            attrs.push(RuleAttribute::IpProtocol(IpProtocol::from(p)));
        }
        if let Some((start, end)) = self.sport {
            attrs.push(RuleAttribute::SourcePortRange(RulePortRange { start, end }));
        }
        if let Some((start, end)) = self.dport {
            attrs.push(RuleAttribute::DestinationPortRange(RulePortRange {
                start,
                end,
            }));
        }
        let mut msg = RuleMessage::default();
        msg.header = h;
        msg.attributes = attrs;
        Ok(msg)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pref {}", self.priority)?;
        if self.invert {
            write!(f, " not")?;
        }
        match self.from {
            Some((a, l)) => write!(f, " from {a}/{l}")?,
            None => write!(f, " from all")?,
        }
        if let Some((a, l)) = self.to {
            write!(f, " to {a}/{l}")?;
        }
        if let Some(m) = self.fwmark {
            write!(f, " fwmark {m:#x}")?;
        }
        match self.action {
            RuleAction::Table(t) => write!(f, " lookup {t}"),
            RuleAction::Goto(t) => write!(f, " goto {t}"),
            other => write!(f, " {}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// A realm pair as the kernel packs it (`RTA_FLOW`, `FRA_FLOW`): source in the high 16 bits.
fn realm(packed: u32) -> RouteRealm {
    RouteRealm {
        source: (packed >> 16) as u16,
        destination: packed as u16,
    }
}

impl Netlink {
    /// Adds `route` (`RTM_NEWROUTE`): in front of other routes to its destination (keepalived's
    /// default: no `NLM_F_EXCL`), behind them ([`Route::append`]) or not beside them
    /// ([`Route::exclusive`]). The same route already there is [`AddOutcome::AlreadyPresent`]
    /// (the kernel refuses an identical one with `EEXIST` in every mode; exclusive, any route
    /// to the destination with the same metric is).
    pub async fn add_route(&self, route: &Route) -> Result<AddOutcome, VipError> {
        let msg = route.message(false)?;
        let mut flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
        if route.exclusive {
            flags |= NLM_F_EXCL;
        } else if route.append {
            flags |= NLM_F_APPEND;
        }
        match self.acked(RouteNetlinkMessage::NewRoute(msg), flags).await {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
            Err(io_error) => Err(VipError::Netlink {
                call: "RTM_NEWROUTE",
                what: format!("route {route}"),
                ifindex: route.ifindex.unwrap_or(0),
                io_error,
            }),
        }
    }

    /// Removes `route` (`RTM_DELROUTE`); a missing one is [`DelOutcome::AlreadyAbsent`].
    pub async fn del_route(&self, route: &Route) -> Result<DelOutcome, VipError> {
        let msg = route.message(true)?;
        match self
            .acked(
                RouteNetlinkMessage::DelRoute(msg),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(()) => Ok(DelOutcome::Removed),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(DelOutcome::AlreadyAbsent),
            Err(io_error) => Err(VipError::Netlink {
                call: "RTM_DELROUTE",
                what: format!("route {route}"),
                ifindex: route.ifindex.unwrap_or(0),
                io_error,
            }),
        }
    }

    /// Adds `rule` (`RTM_NEWRULE`, `NLM_F_EXCL`); an existing one is
    /// [`AddOutcome::AlreadyPresent`].
    pub async fn add_rule(&self, rule: &Rule) -> Result<AddOutcome, VipError> {
        let msg = rule.message()?;
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        match self.acked(RouteNetlinkMessage::NewRule(msg), flags).await {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
            Err(io_error) => Err(VipError::Netlink {
                call: "RTM_NEWRULE",
                what: format!("rule {rule}"),
                ifindex: 0,
                io_error,
            }),
        }
    }

    /// Removes `rule` (`RTM_DELRULE`); a missing one is [`DelOutcome::AlreadyAbsent`].
    pub async fn del_rule(&self, rule: &Rule) -> Result<DelOutcome, VipError> {
        let msg = rule.message()?;
        match self
            .acked(RouteNetlinkMessage::DelRule(msg), NLM_F_REQUEST | NLM_F_ACK)
            .await
        {
            Ok(()) => Ok(DelOutcome::Removed),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(DelOutcome::AlreadyAbsent),
            Err(io_error) => Err(VipError::Netlink {
                call: "RTM_DELRULE",
                what: format!("rule {rule}"),
                ifindex: 0,
                io_error,
            }),
        }
    }
}

/// A route, rule or address the kernel reports deleted (by anyone): what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Route {
        dst: IpAddr,
        prefix_len: u8,
        table: u32,
    },
    Rule {
        priority: u32,
    },
    Address {
        ifindex: u32,
        addr: IpAddr,
    },
}

impl Deleted {
    /// Whether this deletion is of `route` (destination, prefix, table).
    pub fn is_route(&self, route: &Route) -> bool {
        matches!(*self, Deleted::Route { dst, prefix_len, table }
            if dst == route.dst && prefix_len == route.prefix_len && table == route.table)
    }

    /// Whether this deletion is of `rule` (its preference and family are its identity here).
    pub fn is_rule(&self, rule: &Rule) -> bool {
        matches!(*self, Deleted::Rule { priority } if priority == rule.priority)
    }

    /// A deletion from an `RTM_DEL*` notification; `None` for anything else.
    fn of(msg: RouteNetlinkMessage) -> Option<Deleted> {
        match msg {
            RouteNetlinkMessage::DelRoute(m) => {
                let mut dst = None;
                let mut table = u32::from(m.header.table);
                for a in m.attributes {
                    match a {
                        RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(d.into()),
                        RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = Some(d.into()),
                        RouteAttribute::Table(t) => table = t,
                        _ => {}
                    }
                }
                let dst = dst.unwrap_or(match m.header.address_family {
                    AddressFamily::Inet6 => IpAddr::from([0u16; 8]),
                    _ => IpAddr::from([0u8; 4]),
                });
                Some(Deleted::Route {
                    dst,
                    prefix_len: m.header.destination_prefix_length,
                    table,
                })
            }
            RouteNetlinkMessage::DelRule(m) => m.attributes.iter().find_map(|a| match a {
                RuleAttribute::Priority(p) => Some(Deleted::Rule { priority: *p }),
                _ => None,
            }),
            RouteNetlinkMessage::DelAddress(m) => {
                use rtnetlink::packet_route::address::AddressAttribute;
                let ifindex = m.header.index;
                let local = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(a) => Some(*a),
                    _ => None,
                });
                let address = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(a) => Some(*a),
                    _ => None,
                });
                local
                    .or(address)
                    .map(|addr| Deleted::Address { ifindex, addr })
            }
            _ => None,
        }
    }
}

/// Deletions of routes, rules and addresses as the kernel announces them (`RTNLGRP_IPV4_ROUTE`,
/// `_IPV6_ROUTE`, `_IPV4_RULE`, `_IPV6_RULE`, `_IPV4_IFADDR`, `_IPV6_IFADDR`), so that static
/// entries someone removes are put back, as keepalived's netlink reflector does.
pub struct DeletionWatch {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    task: JoinHandle<()>,
}

impl DeletionWatch {
    /// Subscribes (a netlink socket bound to the groups) and spawns its I/O task.
    pub fn subscribe() -> std::io::Result<Self> {
        let (connection, _handle, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
            MulticastGroup::Ipv4Rule,
            MulticastGroup::Ipv6Rule,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])?;
        let task = tokio::spawn(connection);
        Ok(Self { messages, task })
    }

    /// The next deletion. Cancel-safe (one message is read at a time).
    pub async fn next(&mut self) -> Option<Deleted> {
        loop {
            let (msg, _) = self.messages.next().await?;
            if let NetlinkPayload::InnerMessage(inner) = msg.payload
                && let Some(d) = Deleted::of(inner)
            {
                return Some(d);
            }
        }
    }
}

impl Drop for DeletionWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn device_route_is_link_scope_and_keepalived_protocol() {
        let mut r = Route::new(ip("203.0.113.0"), 24);
        r.ifindex = Some(2);
        let m = r.message(false).unwrap();
        assert_eq!(m.header.scope, RouteScope::Link);
        assert_eq!(m.header.protocol, RouteProtocol::from(18));
        assert_eq!(m.header.table, 254);
        assert_eq!(m.header.kind, RouteType::Unicast);
        assert_eq!(
            m.attributes,
            [
                RouteAttribute::Destination(RouteAddress::from(ip("203.0.113.0"))),
                RouteAttribute::Oif(2)
            ]
        );
        // The delete matches any scope.
        assert_eq!(r.message(true).unwrap().header.scope, RouteScope::NoWhere);
        // Neither gateway nor device: refused before the kernel is asked.
        assert!(Route::new(ip("203.0.113.0"), 24).message(false).is_err());
    }

    #[test]
    fn multipath_weights_are_hops_minus_one() {
        let mut r = Route::new(ip("0.0.0.0"), 0);
        r.table = 100;
        r.nexthops = vec![
            Nexthop {
                via: Some(ip("192.0.2.1")),
                ifindex: Some(3),
                weight: Some(3),
                onlink: true,
            },
            Nexthop {
                via: Some(ip("192.0.2.2")),
                ifindex: None,
                weight: None,
                onlink: false,
            },
        ];
        let m = r.message(false).unwrap();
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(m.header.table, 100);
        let Some(RouteAttribute::MultiPath(hops)) = m.attributes.first() else {
            panic!(
                "no RTA_MULTIPATH (a default route has no RTA_DST): {:?}",
                m.attributes
            );
        };
        assert_eq!(hops.len(), 2);
        assert_eq!((hops[0].hops, hops[0].interface_index), (2, 3));
        assert_eq!(hops[0].flags, RouteNextHopFlags::Onlink);
        assert_eq!(
            hops[1].attributes,
            [RouteAttribute::Gateway(RouteAddress::from(ip("192.0.2.2")))]
        );
        assert_eq!(hops[1].hops, 0);
    }

    #[test]
    fn blackhole_big_table_metrics_and_ipv6() {
        let mut r = Route::new(ip("2001:db8:9::"), 48);
        r.kind = RouteKind::Blackhole;
        r.table = 1000;
        r.metrics = vec![RouteMetric::Mtu(1400)];
        r.locked = 1 << 2;
        r.protocol = 4;
        let m = r.message(false).unwrap();
        assert_eq!(m.header.kind, RouteType::BlackHole);
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.table, 0, "a table above 255 goes in RTA_TABLE");
        assert_eq!(m.header.protocol, RouteProtocol::Static);
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(m.attributes.contains(&RouteAttribute::Metrics(vec![
            RouteMetric::Mtu(1400),
            RouteMetric::Lock(4)
        ])));
        let del = r.message(true).unwrap();
        assert!(
            !del.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Metrics(_)))
        );
        let mut odd = Route::new(ip("10.0.0.0"), 8);
        odd.via = Some(ip("2001:db8::1"));
        assert!(odd.message(false).is_err());
    }

    #[test]
    fn deletions_name_what_they_delete() {
        let mut r = Route::new(ip("198.19.0.0"), 16);
        r.via = Some(ip("198.18.0.254"));
        r.table = 1000;
        let del = RouteNetlinkMessage::DelRoute(r.message(true).unwrap());
        let d = Deleted::of(del).expect("a route deletion");
        assert!(d.is_route(&r));
        let mut other = r.clone();
        other.table = 254;
        assert!(!d.is_route(&other), "another table");
        // A default route has no RTA_DST: 0/0 of its family.
        let default6 = Route::new(ip("::"), 0);
        let mut m = default6.clone();
        m.via = Some(ip("2001:db8::1"));
        let d = Deleted::of(RouteNetlinkMessage::DelRoute(m.message(true).unwrap())).unwrap();
        assert!(d.is_route(&default6));
        let rule = Rule::new(false, RuleAction::Table(50), 90);
        let d = Deleted::of(RouteNetlinkMessage::DelRule(rule.message().unwrap())).unwrap();
        assert!(d.is_rule(&rule));
        assert!(!d.is_rule(&Rule::new(false, RuleAction::Table(50), 91)));
        let add = RouteNetlinkMessage::NewRule(rule.message().unwrap());
        assert_eq!(Deleted::of(add), None, "only deletions");
    }

    #[test]
    fn rule_message() {
        let mut r = Rule::new(false, RuleAction::Table(100), 100);
        r.from = Some((ip("192.0.2.200"), 32));
        r.invert = true;
        r.fwmark = Some(0x10);
        r.fwmask = Some(0xff);
        r.iif = Some("eth0".into());
        let m = r.message().unwrap();
        assert_eq!(m.header.action, NlRuleAction::ToTable);
        assert_eq!((m.header.table, m.header.src_len), (100, 32));
        assert_eq!(m.header.flags, RuleFlags::Invert);
        for a in [
            RuleAttribute::Source(ip("192.0.2.200")),
            RuleAttribute::Priority(100),
            RuleAttribute::FwMark(0x10),
            RuleAttribute::FwMask(0xff),
            RuleAttribute::Iifname("eth0".into()),
            RuleAttribute::Protocol(RouteProtocol::from(18)),
        ] {
            assert!(m.attributes.contains(&a), "{a:?} in {:?}", m.attributes);
        }
        let big = Rule::new(true, RuleAction::Table(5000), 7)
            .message()
            .unwrap();
        assert_eq!(big.header.table, 0);
        assert!(big.attributes.contains(&RuleAttribute::Table(5000)));
        let goto = Rule::new(false, RuleAction::Goto(300), 250)
            .message()
            .unwrap();
        assert_eq!(goto.header.action, NlRuleAction::Goto);
        assert!(goto.attributes.contains(&RuleAttribute::Goto(300)));
        let mut mixed = Rule::new(true, RuleAction::Nop, 1);
        mixed.to = Some((ip("10.0.0.0"), 8));
        assert!(mixed.message().is_err());
    }
}

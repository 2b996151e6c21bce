//! Route and rule lines: `virtual_routes` / `static_routes` (`ip route` words,
//! keepalived/vrrp/vrrp_iproute.c `alloc_route`) and `virtual_rules` / `static_rules` (`ip rule`
//! words, vrrp_iprule.c `alloc_rule`), typed into [`Route`] and [`Rule`]. A word keepalived knows
//! but ha-agent cannot install is an error naming it, at its line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Builder;
use super::addresses::{bad_ifname, scope_value};
use crate::config::lexer::Word;
use crate::config::model::{
    Family, MetricName, Nexthop, Route, RouteAddMode, RouteKind, RouteMetric, Rule, RuleAction,
};
use crate::config::parser::Stmt;

/// keepalived's `RTPROT_KEEPALIVED`: the protocol of the routes and rules it installs.
pub(crate) const RTPROT_KEEPALIVED: u8 = 18;

/// The preference keepalived gives the first rule written without one (vrrp_iprule.c
/// `RULE_START_PRIORITY`), counting down per family.
pub(super) const RULE_START_PRIORITY: u32 = 16384;

/// `ip route` words keepalived reads that ha-agent does not install.
const ROUTE_UNSUPPORTED: &[&str] = &["encap", "ttl-propagate", "vrf", "track_group"];

/// `ip rule` words keepalived reads that ha-agent does not install.
const RULE_UNSUPPORTED: &[&str] = &["track_group"];

/// A prefix as written: `all`/`any`/`default` take the family of the rest of the line.
#[derive(Clone, Copy)]
enum Prefix {
    Any,
    Addr(IpAddr, u8),
}

impl Prefix {
    fn family(self) -> Option<Family> {
        match self {
            Prefix::Any => None,
            Prefix::Addr(a, _) => Some(Family::of(&a)),
        }
    }

    fn resolve(self, family: Family) -> (IpAddr, u8) {
        match (self, family) {
            (Prefix::Addr(a, l), _) => (a, l),
            (Prefix::Any, Family::Ipv4) => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            (Prefix::Any, Family::Ipv6) => (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        }
    }
}

/// The words of one line and a cursor, for the `ip route` / `ip rule` grammars.
struct Line<'a> {
    kw: &'a str,
    words: Vec<&'a Word>,
    stmt: &'a Stmt,
    i: usize,
}

impl<'a> Line<'a> {
    fn new(kw: &'a str, l: &'a Stmt) -> Self {
        Line {
            kw,
            words: std::iter::once(&l.keyword).chain(l.args.iter()).collect(),
            stmt: l,
            i: 0,
        }
    }

    fn peek(&self) -> Option<&'a Word> {
        self.words.get(self.i).copied()
    }
}

impl Builder<'_> {
    /// The value after `w` (the cursor is on `w`), or an error at the end of the line.
    fn value<'a>(&mut self, line: &mut Line<'a>, w: &Word) -> Option<&'a Word> {
        line.i += 1;
        let v = line.peek();
        if v.is_none() {
            self.d.error(
                &line.stmt.end_pos(),
                format!(
                    "{}: {}: expected a value, found end of line",
                    line.kw, w.text
                ),
            );
        }
        v
    }

    /// Sets the line's family from `f`, or says the line mixes IPv4 and IPv6.
    fn same_family(&mut self, kw: &str, fam: &mut Option<Family>, f: Family, w: &Word) -> bool {
        match *fam {
            Some(have) if have != f => {
                self.d.error(
                    &w.pos,
                    format!("{kw}: \"{}\": cannot mix IPv4 and IPv6 in one line", w.text),
                );
                false
            }
            _ => {
                *fam = Some(f);
                true
            }
        }
    }

    fn prefix(&mut self, kw: &str, w: &Word) -> Option<Prefix> {
        if matches!(w.text.as_str(), "default" | "any" | "all") {
            return Some(Prefix::Any);
        }
        let (a, len) = self.addr_prefix(kw, w)?;
        Some(Prefix::Addr(a, len))
    }

    fn ifname(&mut self, kw: &str, w: &Word) -> Option<String> {
        if let Some(msg) = bad_ifname(&w.text) {
            self.d.error(&w.pos, format!("{kw}: {msg}"));
            return None;
        }
        self.interface_ref(&w.text, &w.pos, format!("{kw}: dev"));
        Some(w.text.clone())
    }

    /// `table N|main|local|default` (keepalived `find_rttables_table`).
    fn table(&mut self, kw: &str, w: &Word) -> Option<u32> {
        let t = match w.text.as_str() {
            "main" => Some(254),
            "local" => Some(255),
            "default" => Some(253),
            n => n.parse::<u32>().ok(),
        };
        if t.is_none() {
            self.d.error(
                &w.pos,
                format!(
                    "{kw}: routing table \"{}\" not found: use a number or main, local, default",
                    w.text
                ),
            );
        }
        t
    }

    /// `protocol N|NAME` (/etc/iproute2/rt_protos).
    fn protocol(&mut self, kw: &str, w: &Word) -> Option<u8> {
        let p = match w.text.as_str() {
            "redirect" => Some(1),
            "kernel" => Some(2),
            "boot" => Some(3),
            "static" => Some(4),
            "keepalived" => Some(RTPROT_KEEPALIVED),
            n => n.parse::<u8>().ok(),
        };
        if p.is_none() {
            self.d.error(
                &w.pos,
                format!("{kw}: protocol \"{}\" not found or invalid", w.text),
            );
        }
        p
    }

    /// `tos|dsfield N` (keepalived `find_rttables_dsfield`: a number, hex allowed).
    fn tos(&mut self, kw: &str, w: &Word) -> Option<u8> {
        let t = parse_c_uint(&w.text).and_then(|n| u8::try_from(n).ok());
        if t.is_none() {
            self.d
                .error(&w.pos, format!("{kw}: TOS value \"{}\" is invalid", w.text));
        }
        t
    }

    /// `realms [SRC/]DST` (keepalived `get_realms`): numbers, or `unknown`/`cosmos` (0, the
    /// names every rt_realms has); SRC << 16 | DST.
    fn realms(&mut self, kw: &str, w: &Word) -> Option<u32> {
        let one = |s: &str| match s {
            "unknown" | "cosmos" => Some(0u16),
            n => n.parse::<u16>().ok(),
        };
        let r = match w.text.split_once('/') {
            Some((src, dst)) => one(src).zip(one(dst)),
            None => one(&w.text).map(|d| (0, d)),
        };
        match r {
            Some((src, dst)) => Some(u32::from(src) << 16 | u32::from(dst)),
            None => {
                self.d
                    .error(&w.pos, format!("{kw}: invalid realms \"{}\"", w.text));
                None
            }
        }
    }

    /// An `rtt`, `rttvar` or `rto_min` value (keepalived `get_time_rtt`): `Ns` (up to 3
    /// decimals) or `Nms` in ms, or a bare number in the kernel's units (`per_ms` of them a
    /// ms); kept within 200 ms - 120 s with a warning, as keepalived.
    fn rtt(&mut self, kw: &str, what: &Word, w: &Word, per_ms: u64) -> Option<u32> {
        let t = w.text.to_ascii_lowercase();
        let (number, ms_factor, decimals) = if let Some(n) = t.strip_suffix("ms") {
            (n, Some(1), 0)
        } else if let Some(n) = ["secs", "sec", "s"].iter().find_map(|u| t.strip_suffix(u)) {
            (n, Some(1000), 3)
        } else {
            (t.as_str(), None, 0)
        };
        let parsed = match number.split_once('.') {
            None => number.parse::<u64>().ok().map(|n| n * 10u64.pow(decimals)),
            Some((int, frac)) if !frac.is_empty() && frac.len() as u32 <= decimals => {
                let whole = int.parse::<u64>().ok()?;
                let frac_v = frac.parse::<u64>().ok()?;
                Some(whole * 10u64.pow(decimals) + frac_v * 10u64.pow(decimals - frac.len() as u32))
            }
            _ => None,
        };
        let Some(n) = parsed else {
            self.d.error(
                &w.pos,
                format!(
                    "{kw}: invalid {} \"{}\": a number, Nms or Ns",
                    what.text, w.text
                ),
            );
            return None;
        };
        // In ms when a unit was given (s: thousandths of a second), else the kernel's units.
        let units = match ms_factor {
            Some(f) => n * f / 10u64.pow(decimals) * per_ms,
            None => n,
        };
        let (min, max) = (200 * per_ms, 120_000 * per_ms);
        let kept = units.clamp(min, max);
        if kept != units {
            self.d.warn(
                &w.pos,
                format!(
                    "{kw}: {} {} outside 200ms-120s: set to {}ms, as keepalived",
                    what.text,
                    w.text,
                    kept / per_ms
                ),
            );
        }
        Some(kept as u32)
    }

    fn not_supported(&mut self, kw: &str, w: &Word) {
        self.d.error(
            &w.pos,
            format!(
                "{kw}: \"{}\" is not supported by ha-agent: remove it, or manage this entry \
                 outside ha-agent",
                w.text
            ),
        );
    }

    /// One `virtual_routes` / `static_routes` line.
    pub(super) fn route(&mut self, kw: &str, l: &Stmt) -> Option<Route> {
        let mut line = Line::new(kw, l);
        let mut fam: Option<Family> = None;
        let mut kind = RouteKind::Unicast;
        let mut dst: Option<Prefix> = None;
        let mut from = None;
        let mut src = None;
        let mut via = None;
        let mut dev = None;
        let mut table = 254;
        let mut metric = None;
        let mut scope = None;
        let mut protocol: Option<(u8, &Word)> = None;
        let mut onlink = false;
        let mut tos = 0;
        let mut realms = None;
        let mut pref = None;
        let mut expires = None;
        let mut congctl = None;
        let mut metrics: Vec<RouteMetric> = Vec::new();
        let mut nexthops: Vec<Nexthop> = Vec::new();
        let mut no_track = false;
        let mut add_mode = RouteAddMode::Prepend;
        while let Some(w) = line.peek() {
            match w.text.as_str() {
                "inet" | "inet6" => {
                    let f = if w.text == "inet" {
                        Family::Ipv4
                    } else {
                        Family::Ipv6
                    };
                    if !self.same_family(kw, &mut fam, f, w) {
                        return None;
                    }
                }
                "prepend" => add_mode = RouteAddMode::Prepend,
                "append" => add_mode = RouteAddMode::Append,
                "add" => add_mode = RouteAddMode::Exclusive,
                "src" => {
                    let v = self.value(&mut line, w)?;
                    let a = self.ip_word(&format!("{kw}: src"), v)?;
                    if !self.same_family(kw, &mut fam, Family::of(&a), v) {
                        return None;
                    }
                    src = Some(a);
                }
                "via" | "gw" => {
                    if w.text == "gw" {
                        self.d.warn(
                            &w.pos,
                            format!("{kw}: \"gw\" for routes is deprecated, use \"via\""),
                        );
                    }
                    let mut v = self.value(&mut line, w)?;
                    if matches!(v.text.as_str(), "inet" | "inet6") {
                        v = self.value(&mut line, v)?;
                    }
                    let a = self.ip_word(&format!("{kw}: via"), v)?;
                    if !self.same_family(kw, &mut fam, Family::of(&a), v) {
                        return None;
                    }
                    via = Some(a);
                }
                "from" => {
                    let v = self.value(&mut line, w)?;
                    let (a, len) = self.addr_prefix(kw, v)?;
                    if a.is_ipv4() {
                        self.d.error(
                            &v.pos,
                            format!("{kw}: from: a source prefix is only supported with IPv6"),
                        );
                        return None;
                    }
                    if !self.same_family(kw, &mut fam, Family::Ipv6, v) {
                        return None;
                    }
                    from = Some((a, len));
                }
                "table" => {
                    let v = self.value(&mut line, w)?;
                    table = self.table(kw, v)?;
                }
                "protocol" => {
                    let v = self.value(&mut line, w)?;
                    protocol = Some((self.protocol(kw, v)?, w));
                }
                "tos" | "dsfield" => {
                    let v = self.value(&mut line, w)?;
                    tos = self.tos(kw, v)?;
                }
                "realms" => {
                    let v = self.value(&mut line, w)?;
                    if !self.same_family(kw, &mut fam, Family::Ipv4, w) {
                        return None;
                    }
                    realms = Some(self.realms(kw, v)?);
                }
                "rtt" | "rttvar" | "rto_min" => {
                    let mut v = self.value(&mut line, w)?;
                    let lock = v.text == "lock";
                    if lock {
                        v = self.value(&mut line, v)?;
                    }
                    // vrrp_ip_rule_route_parser.c get_time_rtt: the kernel's units per ms.
                    let (name, per_ms) = match w.text.as_str() {
                        "rtt" => (MetricName::Rtt, 8),
                        "rttvar" => (MetricName::Rttvar, 4),
                        _ => (MetricName::RtoMin, 1),
                    };
                    let value = self.rtt(kw, w, v, per_ms)?;
                    metrics.retain(|x| x.name != name);
                    metrics.push(RouteMetric { name, value, lock });
                }
                "features" => {
                    let v = self.value(&mut line, w)?;
                    if v.text == "ecn" {
                        metrics.retain(|x| x.name != MetricName::Features);
                        metrics.push(RouteMetric {
                            name: MetricName::Features,
                            value: 1,
                            lock: false,
                        });
                    } else {
                        self.d.warn(
                            &v.pos,
                            format!(
                                "{kw}: feature {} not supported, ignored (as keepalived)",
                                v.text
                            ),
                        );
                    }
                }
                "as" => {
                    // keepalived: "as to" is for MPLS only, and ignored with a warning.
                    let mut v = self.value(&mut line, w)?;
                    if v.text == "to" {
                        v = self.value(&mut line, v)?;
                    }
                    self.d.warn(
                        &w.pos,
                        format!(
                            "{kw}: \"as to {}\" is for MPLS only: ignored, as keepalived",
                            v.text
                        ),
                    );
                }
                "pref" => {
                    let v = self.value(&mut line, w)?;
                    if !self.same_family(kw, &mut fam, Family::Ipv6, w) {
                        return None;
                    }
                    // ICMPV6_ROUTER_PREF_*.
                    pref = Some(match v.text.as_str() {
                        "low" => 3,
                        "medium" => 0,
                        "high" => 1,
                        _ => self.uint_word(&format!("{kw}: pref"), v, 0, 255)? as u8,
                    });
                }
                "expires" => {
                    let v = self.value(&mut line, w)?;
                    if !self.same_family(kw, &mut fam, Family::Ipv6, w) {
                        return None;
                    }
                    expires =
                        Some(
                            self.uint_word(&format!("{kw}: expires"), v, 0, u32::MAX.into())?
                                as u32,
                        );
                }
                "congctl" => {
                    let mut v = self.value(&mut line, w)?;
                    let lock = v.text == "lock";
                    if lock {
                        v = self.value(&mut line, v)?;
                    }
                    congctl = Some((v.text.clone(), lock));
                }
                "scope" => {
                    let v = self.value(&mut line, w)?;
                    match scope_value(&v.text) {
                        Some(s) => scope = Some(s),
                        None => {
                            self.d.error(
                                &v.pos,
                                format!(
                                    "{kw}: scope: expected global, site, link, host, nowhere or \
                                     0-255, found \"{}\"",
                                    v.text
                                ),
                            );
                            return None;
                        }
                    }
                }
                "metric" | "priority" | "preference" => {
                    let v = self.value(&mut line, w)?;
                    metric = Some(
                        self.uint_word(&format!("{kw}: metric"), v, 0, u32::MAX.into())? as u32,
                    );
                }
                "dev" | "oif" => {
                    let v = self.value(&mut line, w)?;
                    dev = Some(self.ifname(kw, v)?);
                }
                "onlink" => onlink = true,
                "no_track" => no_track = true,
                m if metric_name(m).is_some() => {
                    let name = metric_name(m).unwrap_or(MetricName::Mtu);
                    let mut v = self.value(&mut line, w)?;
                    let lock = v.text == "lock";
                    if lock {
                        v = self.value(&mut line, v)?;
                    }
                    // keepalived reads quickack and fastopen_no_cookie as 0 or 1.
                    let max = match name {
                        MetricName::Quickack | MetricName::FastopenNoCookie => 1,
                        _ => u32::MAX.into(),
                    };
                    let value = self.uint_word(&format!("{kw}: {m}"), v, 0, max)? as u32;
                    metrics.retain(|x| x.name != name);
                    metrics.push(RouteMetric { name, value, lock });
                }
                "or" => {
                    // vrrp_iproute.c: the deprecated `via A or B`, two nexthops.
                    self.d.warn(
                        &w.pos,
                        format!("{kw}: \"or\" for routes is deprecated, use \"nexthop\""),
                    );
                    let v = self.value(&mut line, w)?;
                    let a = self.ip_word(&format!("{kw}: or"), v)?;
                    if !nexthops.is_empty() {
                        self.d.warn(
                            &w.pos,
                            format!("{kw}: \"or\" route already given: {a} ignored"),
                        );
                    } else {
                        let Some(first) = via.take() else {
                            self.d
                                .error(&w.pos, format!("{kw}: \"or\" needs a \"via\" before it"));
                            return None;
                        };
                        if !self.same_family(kw, &mut fam, Family::of(&a), v) {
                            return None;
                        }
                        for gw in [first, a] {
                            nexthops.push(Nexthop {
                                via: Some(gw),
                                dev: None,
                                weight: None,
                                onlink: false,
                            });
                        }
                    }
                }
                "nexthop" => {
                    if !nexthops.is_empty() {
                        self.d.error(
                            &w.pos,
                            format!("{kw}: cannot give nexthops with an \"or\" route"),
                        );
                        return None;
                    }
                    nexthops = self.nexthops(&mut line, &mut fam)?;
                    break;
                }
                u if ROUTE_UNSUPPORTED.contains(&u) => {
                    self.not_supported(kw, w);
                    return None;
                }
                _ => {
                    let mut w = w;
                    if w.text == "to" {
                        w = self.value(&mut line, w)?;
                    }
                    let typed = match w.text.as_str() {
                        "unicast" => Some(RouteKind::Unicast),
                        "blackhole" => Some(RouteKind::Blackhole),
                        "unreachable" => Some(RouteKind::Unreachable),
                        "prohibit" => Some(RouteKind::Prohibit),
                        "throw" => Some(RouteKind::Throw),
                        "local" | "broadcast" | "anycast" | "multicast" | "nat" | "xresolve" => {
                            self.not_supported(kw, w);
                            return None;
                        }
                        _ => None,
                    };
                    if let Some(k) = typed {
                        kind = k;
                        w = self.value(&mut line, w)?;
                    }
                    let looks_like = matches!(w.text.as_str(), "default" | "any" | "all")
                        || w.text
                            .split('/')
                            .next()
                            .is_some_and(|a| a.parse::<IpAddr>().is_ok());
                    if !looks_like {
                        self.d.error(
                            &w.pos,
                            format!("{kw}: unknown route keyword \"{}\"", w.text),
                        );
                        return None;
                    }
                    let p = self.prefix(kw, w)?;
                    if let Some(f) = p.family()
                        && !self.same_family(kw, &mut fam, f, w)
                    {
                        return None;
                    }
                    dst = Some(p);
                }
            }
            line.i += 1;
        }
        let Some(dst) = dst else {
            self.d
                .error(l.pos(), format!("{kw}: a route must have a destination"));
            return None;
        };
        if kind != RouteKind::Unicast && (via.is_some() || !nexthops.is_empty()) {
            self.d.error(
                l.pos(),
                format!(
                    "{kw}: a {} route has no gateway (via/nexthop)",
                    format!("{kind:?}").to_lowercase()
                ),
            );
            return None;
        }
        let protocol = match protocol {
            Some((p, _)) if no_track => p,
            Some((p, w)) if p != RTPROT_KEEPALIVED => {
                self.d.warn(
                    &w.pos,
                    format!(
                        "{kw}: a tracked route has protocol keepalived ({RTPROT_KEEPALIVED}): \
                         protocol {p} ignored (add no_track to keep it), as keepalived"
                    ),
                );
                RTPROT_KEEPALIVED
            }
            _ => RTPROT_KEEPALIVED,
        };
        let family = fam.unwrap_or(Family::Ipv4);
        let (dst, dst_len) = dst.resolve(family);
        Some(Route {
            source: super::source(l.pos()),
            family,
            kind,
            dst,
            dst_len,
            from,
            src,
            via,
            dev,
            table,
            metric,
            scope,
            protocol,
            onlink,
            tos,
            realms,
            pref,
            expires,
            metrics,
            congctl,
            nexthops,
            add_mode,
            no_track,
        })
    }

    /// `nexthop via ADDR [dev IF] [weight N] [onlink] nexthop …` to the end of the line
    /// (vrrp_iproute.c `parse_nexthops`).
    fn nexthops(&mut self, line: &mut Line<'_>, fam: &mut Option<Family>) -> Option<Vec<Nexthop>> {
        let kw = line.kw;
        let mut out = Vec::new();
        while let Some(w) = line.peek() {
            if w.text != "nexthop" {
                self.d.error(
                    &w.pos,
                    format!(
                        "{kw}: \"{}\" after the nexthops: expected \"nexthop\"",
                        w.text
                    ),
                );
                return None;
            }
            line.i += 1;
            let mut nh = Nexthop {
                via: None,
                dev: None,
                weight: None,
                onlink: false,
            };
            while let Some(w) = line.peek().filter(|w| w.text != "nexthop") {
                match w.text.as_str() {
                    "via" => {
                        let mut v = self.value(line, w)?;
                        if matches!(v.text.as_str(), "inet" | "inet6") {
                            v = self.value(line, v)?;
                        }
                        let a = self.ip_word(&format!("{kw}: nexthop via"), v)?;
                        if !self.same_family(kw, fam, Family::of(&a), v) {
                            return None;
                        }
                        nh.via = Some(a);
                    }
                    "dev" => {
                        let v = self.value(line, w)?;
                        nh.dev = Some(self.ifname(kw, v)?);
                    }
                    "weight" => {
                        let v = self.value(line, w)?;
                        nh.weight =
                            Some(
                                self.uint_word(&format!("{kw}: nexthop weight"), v, 1, 256)? as u16
                            );
                    }
                    "onlink" => nh.onlink = true,
                    "encap" | "realms" | "as" => {
                        self.not_supported(kw, w);
                        return None;
                    }
                    _ => {
                        self.d.error(
                            &w.pos,
                            format!("{kw}: unknown nexthop option \"{}\"", w.text),
                        );
                        return None;
                    }
                }
                line.i += 1;
            }
            if nh.via.is_none() && nh.dev.is_none() {
                self.d
                    .error(&w.pos, format!("{kw}: a nexthop needs via or dev"));
                return None;
            }
            out.push(nh);
        }
        Some(out)
    }

    /// One `virtual_rules` / `static_rules` line.
    pub(super) fn rule(&mut self, kw: &str, l: &Stmt) -> Option<Rule> {
        let mut line = Line::new(kw, l);
        let mut fam: Option<Family> = None;
        let mut from = None;
        let mut to = None;
        let mut action: Option<RuleAction> = None;
        let mut priority = None;
        let mut invert = false;
        let mut fwmark = None;
        let mut tos = 0;
        let mut iif = None;
        let mut oif = None;
        let mut protocol: Option<(u8, &Word)> = None;
        let mut no_track = false;
        let mut realms = None;
        let mut suppress_prefixlen = None;
        let mut suppress_ifgroup = None;
        let mut tunnel_id = None;
        let mut uid_range = None;
        let mut ip_proto = None;
        let mut sport = None;
        let mut dport = None;
        while let Some(w) = line.peek() {
            let mut set_action: Option<RuleAction> = None;
            match w.text.as_str() {
                "inet" | "inet6" => {
                    let f = if w.text == "inet" {
                        Family::Ipv4
                    } else {
                        Family::Ipv6
                    };
                    if !self.same_family(kw, &mut fam, f, w) {
                        return None;
                    }
                }
                "from" | "to" => {
                    let v = self.value(&mut line, w)?;
                    let p = self.prefix(kw, v)?;
                    if let Some(f) = p.family()
                        && !self.same_family(kw, &mut fam, f, v)
                    {
                        return None;
                    }
                    if w.text == "from" {
                        from = Some(p);
                    } else {
                        to = Some(p);
                    }
                }
                "table" | "lookup" => {
                    let v = self.value(&mut line, w)?;
                    let t = self.table(kw, v)?;
                    if t == 0 {
                        self.d.error(&v.pos, format!("{kw}: table 0 is not valid"));
                        return None;
                    }
                    set_action = Some(RuleAction::Table(t));
                }
                "not" => invert = true,
                "preference" | "order" | "priority" => {
                    let v = self.value(&mut line, w)?;
                    priority =
                        Some(
                            self.uint_word(&format!("{kw}: {}", w.text), v, 0, u32::MAX.into())?
                                as u32,
                        );
                }
                "tos" | "dsfield" => {
                    let v = self.value(&mut line, w)?;
                    tos = self.tos(kw, v)?;
                }
                "realms" => {
                    let v = self.value(&mut line, w)?;
                    if !self.same_family(kw, &mut fam, Family::Ipv4, w) {
                        return None;
                    }
                    realms = Some(self.realms(kw, v)?);
                }
                "suppress_prefixlength" | "sup_pl" => {
                    let v = self.value(&mut line, w)?;
                    suppress_prefixlen =
                        Some(
                            self.uint_word(&format!("{kw}: {}", w.text), v, 0, i32::MAX as u64)?
                                as u32,
                        );
                }
                "suppress_ifgroup" | "sup_group" => {
                    let v = self.value(&mut line, w)?;
                    suppress_ifgroup = Some(if v.text == "default" {
                        0
                    } else {
                        self.uint_word(&format!("{kw}: {}", w.text), v, 0, u32::MAX.into())? as u32
                    });
                }
                "tunnel-id" => {
                    let v = self.value(&mut line, w)?;
                    tunnel_id =
                        Some(self.uint_word(&format!("{kw}: tunnel-id"), v, 0, u64::MAX)?);
                }
                "uidrange" => {
                    let v = self.value(&mut line, w)?;
                    let range = v
                        .text
                        .split_once('-')
                        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
                    let Some(range) = range else {
                        self.d.error(
                            &v.pos,
                            format!("{kw}: uidrange: expected START-END, found \"{}\"", v.text),
                        );
                        return None;
                    };
                    uid_range = Some(range);
                }
                "ipproto" => {
                    let v = self.value(&mut line, w)?;
                    let p = match v.text.as_str() {
                        "icmp" => Some(1),
                        "tcp" => Some(6),
                        "udp" => Some(17),
                        "gre" => Some(47),
                        "esp" => Some(50),
                        "ah" => Some(51),
                        "ipv6-icmp" | "icmpv6" => Some(58),
                        "sctp" => Some(132),
                        n => n.parse::<u8>().ok(),
                    };
                    let Some(p) = p else {
                        self.d
                            .error(&v.pos, format!("{kw}: invalid ipproto \"{}\"", v.text));
                        return None;
                    };
                    ip_proto = Some(p);
                }
                "sport" | "dport" => {
                    let v = self.value(&mut line, w)?;
                    let range = match v.text.split_once('-') {
                        Some((a, b)) => a.parse::<u16>().ok().zip(b.parse::<u16>().ok()),
                        None => v.text.parse::<u16>().ok().map(|p| (p, p)),
                    };
                    let Some(range) = range else {
                        self.d.error(
                            &v.pos,
                            format!("{kw}: invalid {} range \"{}\"", w.text, v.text),
                        );
                        return None;
                    };
                    if w.text == "sport" {
                        sport = Some(range);
                    } else {
                        dport = Some(range);
                    }
                }
                "l3mdev" => set_action = Some(RuleAction::L3mdev),
                "fwmark" => {
                    let v = self.value(&mut line, w)?;
                    let (m, mask) = match v.text.split_once('/') {
                        Some((m, k)) => (m, Some(k)),
                        None => (v.text.as_str(), None),
                    };
                    let m = parse_c_uint(m);
                    let mask = mask.map(parse_c_uint);
                    match (m, mask) {
                        (Some(m), None) => fwmark = Some((m, None)),
                        (Some(m), Some(Some(k))) => fwmark = Some((m, Some(k))),
                        _ => {
                            self.d
                                .error(&v.pos, format!("{kw}: invalid fwmark \"{}\"", v.text));
                            return None;
                        }
                    }
                }
                "dev" | "iif" => {
                    let v = self.value(&mut line, w)?;
                    iif = Some(self.ifname(kw, v)?);
                }
                "oif" => {
                    let v = self.value(&mut line, w)?;
                    oif = Some(self.ifname(kw, v)?);
                }
                "protocol" => {
                    let v = self.value(&mut line, w)?;
                    protocol = Some((self.protocol(kw, v)?, w));
                }
                "no_track" => no_track = true,
                u if RULE_UNSUPPORTED.contains(&u) => {
                    self.not_supported(kw, w);
                    return None;
                }
                _ => {
                    let mut w = w;
                    if w.text == "type" {
                        w = self.value(&mut line, w)?;
                    }
                    set_action = Some(match w.text.as_str() {
                        "goto" => {
                            let v = self.value(&mut line, w)?;
                            RuleAction::Goto(self.uint_word(
                                &format!("{kw}: goto"),
                                v,
                                0,
                                u32::MAX.into(),
                            )? as u32)
                        }
                        "nop" => RuleAction::Nop,
                        "blackhole" => RuleAction::Blackhole,
                        "unreachable" => RuleAction::Unreachable,
                        "prohibit" => RuleAction::Prohibit,
                        _ => {
                            self.d
                                .error(&w.pos, format!("{kw}: unknown rule option \"{}\"", w.text));
                            return None;
                        }
                    });
                }
            }
            if let Some(a) = set_action {
                if action.is_some() {
                    self.d.error(
                        &w.pos,
                        format!(
                            "{kw}: more than one of table/nop/goto/blackhole/prohibit/unreachable"
                        ),
                    );
                    return None;
                }
                action = Some(a);
            }
            line.i += 1;
        }
        let Some(action) = action else {
            self.d.error(
                l.pos(),
                format!("{kw}: no action (table, goto, nop, blackhole, unreachable, prohibit)"),
            );
            return None;
        };
        if (suppress_prefixlen.is_some() || suppress_ifgroup.is_some() || realms.is_some())
            && !matches!(action, RuleAction::Table(_))
        {
            self.d.error(
                l.pos(),
                format!("{kw}: a suppressor or realms is only for a table action (as keepalived)"),
            );
            return None;
        }
        let family = fam.unwrap_or(Family::Ipv4);
        let priority = match priority {
            Some(p) => p,
            None => {
                let next = match family {
                    Family::Ipv4 => &mut self.rule_priority.0,
                    Family::Ipv6 => &mut self.rule_priority.1,
                };
                let p = *next;
                *next = next.saturating_sub(1);
                self.d.warn(
                    l.pos(),
                    format!(
                        "{kw}: rule has no preference: set to {p}, as keepalived (this is \
                         probably not what you want)"
                    ),
                );
                p
            }
        };
        if let RuleAction::Goto(target) = action
            && priority >= target
        {
            self.d.error(
                l.pos(),
                format!("{kw}: preference {priority} >= goto target {target}"),
            );
            return None;
        }
        let protocol = match protocol {
            Some((p, _)) if no_track => Some(p),
            Some((p, w)) if p != RTPROT_KEEPALIVED => {
                self.d.warn(
                    &w.pos,
                    format!(
                        "{kw}: a tracked rule has protocol keepalived ({RTPROT_KEEPALIVED}): \
                         protocol {p} ignored (add no_track to keep it), as keepalived"
                    ),
                );
                Some(RTPROT_KEEPALIVED)
            }
            None if no_track => None,
            _ => Some(RTPROT_KEEPALIVED),
        };
        Some(Rule {
            source: super::source(l.pos()),
            family,
            from: from.map(|p| p.resolve(family)),
            to: to.map(|p| p.resolve(family)),
            action,
            priority,
            invert,
            fwmark,
            tos,
            iif,
            oif,
            protocol,
            realms,
            suppress_prefixlen,
            suppress_ifgroup,
            tunnel_id,
            uid_range,
            ip_proto,
            sport,
            dport,
            no_track,
        })
    }

    /// A block of route lines (`virtual_routes`, `static_routes`).
    pub(super) fn route_block(&mut self, x: &Stmt) -> Vec<Route> {
        self.line_block(x, Self::route)
    }

    /// A block of rule lines (`virtual_rules`, `static_rules`).
    pub(super) fn rule_block(&mut self, x: &Stmt) -> Vec<Rule> {
        self.line_block(x, Self::rule)
    }

    /// `KEYWORD { LINE… }` with no arguments and no nested blocks: what `line` makes of each
    /// line (given the block's keyword), the ones it refused left out.
    fn line_block<T>(&mut self, x: &Stmt, line: fn(&mut Self, &str, &Stmt) -> Option<T>) -> Vec<T> {
        self.extra_args(x, 0);
        let Some(lines) = self.block(x) else {
            return Vec::new();
        };
        lines
            .iter()
            .filter_map(|l| {
                self.no_block(l);
                line(self, x.kw(), l)
            })
            .collect()
    }

    /// `static_ipaddress { ADDR [dev IF] … }`: as a VIP line; without `dev`, on
    /// `default_interface` as read so far, else `eth0` (keepalived vrrp_ipaddress.c
    /// `get_default_if`, called as the line is read).
    pub(super) fn static_addresses(&mut self, x: &Stmt) {
        self.extra_args(x, 0);
        let Some(lines) = self.block(x) else { return };
        for l in lines {
            self.no_block(l);
            let Some(mut a) = self.vip(x.kw(), l) else {
                continue;
            };
            if a.dev.is_none() {
                let dev = self.global.default_interface.clone();
                let why = if dev.is_some() {
                    "default_interface"
                } else {
                    "keepalived's default"
                };
                let dev = dev.unwrap_or_else(|| "eth0".to_owned());
                let what = format!("{} {}: dev ({why} {dev})", x.kw(), a.addr);
                self.interface_ref(&dev, l.pos(), what);
                a.dev = Some(dev);
            }
            self.statics.addresses.push(a);
        }
    }
}

/// `ip route` metrics with a plain integer value.
fn metric_name(word: &str) -> Option<MetricName> {
    Some(match word {
        "mtu" => MetricName::Mtu,
        "advmss" => MetricName::Advmss,
        "hoplimit" => MetricName::Hoplimit,
        "window" => MetricName::Window,
        "cwnd" => MetricName::Cwnd,
        "initcwnd" => MetricName::Initcwnd,
        "initrwnd" => MetricName::Initrwnd,
        "ssthresh" => MetricName::Ssthresh,
        "reordering" => MetricName::Reordering,
        "quickack" => MetricName::Quickack,
        "fastopen_no_cookie" => MetricName::FastopenNoCookie,
        _ => return None,
    })
}

/// An unsigned number as C's `strtoul(s, NULL, 0)` reads it: decimal, `0x` hex or `0` octal.
fn parse_c_uint(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1
        && let Some(o) = s.strip_prefix('0')
    {
        u32::from_str_radix(o, 8).ok()
    } else {
        s.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::model::*;

    fn parse(text: &str) -> Result<Config, String> {
        let path = Path::new("/etc/keepalived/keepalived.conf");
        crate::config::parse_str(text, path)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    fn instance_with(block: &str) -> String {
        format!(
            "vrrp_instance R {{\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {{\n \
             192.0.2.200/24\n }}\n {block}\n}}\n"
        )
    }

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn route_forms_are_typed() {
        let c = parse(&instance_with(
            "virtual_routes {\n src 192.0.2.200 to 198.51.100.0/24 via 192.0.2.254 dev eth0 \
             table 100 metric 7 scope link protocol static no_track onlink mtu lock 1400\n \
             blackhole 203.0.113.0/24 table 100\n \
             default nexthop via 192.0.2.1 weight 2 nexthop via 192.0.2.2 dev eth0 weight 1\n \
             10.1.0.0/16 via 192.0.2.1 or 192.0.2.2\n \
             inet6 unreachable 2001:db8:9::/48\n \
             throw 10.9.0.0/16 table main\n }",
        ))
        .unwrap();
        let r = &c.instances[0].virtual_routes;
        assert_eq!(r.len(), 6);
        assert_eq!((r[0].dst, r[0].dst_len), (ip("198.51.100.0"), 24));
        assert_eq!(r[0].src, Some(ip("192.0.2.200")));
        assert_eq!(r[0].via, Some(ip("192.0.2.254")));
        assert_eq!(r[0].dev.as_deref(), Some("eth0"));
        assert_eq!(
            (r[0].table, r[0].metric, r[0].scope),
            (100, Some(7), Some(253))
        );
        assert_eq!((r[0].protocol, r[0].onlink, r[0].no_track), (4, true, true));
        assert_eq!(
            r[0].metrics,
            [RouteMetric {
                name: MetricName::Mtu,
                value: 1400,
                lock: true
            }]
        );
        assert_eq!(
            (r[1].kind, r[1].dst_len, r[1].protocol),
            (RouteKind::Blackhole, 24, 18)
        );
        assert_eq!((r[2].dst, r[2].dst_len), (ip("0.0.0.0"), 0));
        assert_eq!(
            r[2].nexthops,
            [
                Nexthop {
                    via: Some(ip("192.0.2.1")),
                    dev: None,
                    weight: Some(2),
                    onlink: false
                },
                Nexthop {
                    via: Some(ip("192.0.2.2")),
                    dev: Some("eth0".into()),
                    weight: Some(1),
                    onlink: false
                }
            ]
        );
        // `via A or B` is two nexthops, as keepalived.
        assert_eq!(r[3].via, None);
        let or: Vec<_> = r[3].nexthops.iter().map(|n| n.via).collect();
        assert_eq!(or, [Some(ip("192.0.2.1")), Some(ip("192.0.2.2"))]);
        assert_eq!(
            (r[4].family, r[4].kind),
            (Family::Ipv6, RouteKind::Unreachable)
        );
        assert_eq!((r[5].kind, r[5].table), (RouteKind::Throw, 254));
    }

    #[test]
    fn route_words_ha_agent_cannot_install_are_errors_at_their_word() {
        let e = parse(&instance_with(
            "virtual_routes {\n 10.0.0.0/8 via 192.0.2.1 encap mpls 100\n }",
        ))
        .unwrap_err();
        assert!(
            e.contains(":8:27:") && e.contains("\"encap\" is not supported"),
            "{e}"
        );
        let e = parse(&instance_with(
            "virtual_routes {\n 10.0.0.0/8 via 192.0.2.1 via 2001:db8::1\n }",
        ))
        .unwrap_err();
        assert!(e.contains("cannot mix IPv4 and IPv6"), "{e}");
        let e = parse(&instance_with(
            "virtual_routes {\n blackhole 10.0.0.0/8 via 192.0.2.1\n }",
        ))
        .unwrap_err();
        assert!(e.contains("has no gateway"), "{e}");
        let e = parse(&instance_with("virtual_routes {\n via 192.0.2.1\n }")).unwrap_err();
        assert!(e.contains("must have a destination"), "{e}");
    }

    #[test]
    fn rule_forms_are_typed() {
        let c = parse(&instance_with(
            "virtual_rules {\n from 192.0.2.200/32 table 100 priority 100\n \
             to 198.51.100.0/24 not fwmark 0x10/0xff iif eth0 oif eth1 lookup main preference 200\n \
             from all goto 300 priority 250\n \
             inet6 from 2001:db8::/64 prohibit\n \
             from 10.0.0.0/8 table 7 no_track\n }",
        ))
        .unwrap();
        let r = &c.instances[0].virtual_rules;
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].from, Some((ip("192.0.2.200"), 32)));
        assert_eq!((r[0].action, r[0].priority), (RuleAction::Table(100), 100));
        assert_eq!(r[0].protocol, Some(18));
        assert_eq!(r[1].to, Some((ip("198.51.100.0"), 24)));
        assert!(r[1].invert);
        assert_eq!(r[1].fwmark, Some((0x10, Some(0xff))));
        assert_eq!(
            (r[1].iif.as_deref(), r[1].oif.as_deref()),
            (Some("eth0"), Some("eth1"))
        );
        assert_eq!(r[1].action, RuleAction::Table(254));
        assert_eq!(r[2].from, Some((ip("0.0.0.0"), 0)));
        assert_eq!(r[2].action, RuleAction::Goto(300));
        // No preference: keepalived's count down from 16384, per family.
        assert_eq!((r[3].family, r[3].priority), (Family::Ipv6, 16384));
        assert_eq!(r[3].action, RuleAction::Prohibit);
        assert_eq!((r[4].priority, r[4].protocol), (16384, None));
    }

    #[test]
    fn rule_selectors_and_route_attributes_beyond_the_basics() {
        let c = parse(&instance_with(
            "virtual_rules {\n from all lookup main suppress_prefixlength 0 priority 10\n \
             to 10.0.0.0/8 ipproto tcp sport 1000-2000 dport 443 uidrange 100-200 \
             tunnel-id 7 sup_group 3 table 9 priority 11\n l3mdev priority 12\n }\n \
             virtual_routes {\n 10.8.0.0/16 via 192.0.2.1 tos 0x10 congctl lock cubic quickack 1\n \
             2001:db8:5::/48 via 2001:db8::1 pref high expires 300\n }",
        ))
        .unwrap();
        let r = &c.instances[0].virtual_rules;
        assert_eq!(r[0].suppress_prefixlen, Some(0));
        assert_eq!(r[1].ip_proto, Some(6));
        assert_eq!(
            (r[1].sport, r[1].dport),
            (Some((1000, 2000)), Some((443, 443)))
        );
        assert_eq!(
            (r[1].uid_range, r[1].tunnel_id),
            (Some((100, 200)), Some(7))
        );
        assert_eq!(r[1].suppress_ifgroup, Some(3));
        assert_eq!(r[2].action, RuleAction::L3mdev);
        let v = &c.instances[0].virtual_routes;
        assert_eq!(v[0].tos, 0x10);
        assert_eq!(v[0].congctl, Some(("cubic".into(), true)));
        assert_eq!(v[0].metrics[0].name, MetricName::Quickack);
        assert_eq!((v[1].pref, v[1].expires), (Some(1), Some(300)));
        assert_eq!(v[0].add_mode, RouteAddMode::Prepend, "keepalived's default");
        // Times as keepalived reads them, in the kernel's units; realms; features; `as to`.
        let c = parse(&instance_with(
            "virtual_routes {\n 10.8.0.0/16 via 192.0.2.1 rtt 300ms rttvar lock 1.5s rto_min 10ms \
             realms 2/3 features ecn as to 10.0.0.1\n 10.9.0.0/16 via 192.0.2.1 rtt 2400\n }",
        ))
        .unwrap();
        let v = &c.instances[0].virtual_routes;
        let m = |i: usize, n: MetricName| {
            v[i].metrics
                .iter()
                .find(|x| x.name == n)
                .map(|x| (x.value, x.lock))
        };
        assert_eq!(
            m(0, MetricName::Rtt),
            Some((2400, false)),
            "300 ms in 1/8 ms"
        );
        assert_eq!(
            m(0, MetricName::Rttvar),
            Some((6000, true)),
            "1.5 s in 1/4 ms"
        );
        assert_eq!(
            m(0, MetricName::RtoMin),
            Some((200, false)),
            "raised to 200 ms"
        );
        assert_eq!(m(0, MetricName::Features), Some((1, false)));
        assert_eq!(v[0].realms, Some(2 << 16 | 3));
        assert_eq!(
            m(1, MetricName::Rtt),
            Some((2400, false)),
            "a bare number: kernel units"
        );
        for (bad, want) in [
            ("rtt 1.2345s", "invalid rtt"),
            ("quickack 2", "expected an integer 0-1"),
            ("realms a/b", "invalid realms"),
        ] {
            let e = parse(&instance_with(&format!(
                "virtual_routes {{\n 10.8.0.0/16 via 192.0.2.1 {bad}\n }}"
            )))
            .unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let c = parse(&instance_with(
            "virtual_routes {\n append 10.8.0.0/16 via 192.0.2.1\n add 10.9.0.0/16 via 192.0.2.1\n }",
        ))
        .unwrap();
        let modes: Vec<_> = c.instances[0]
            .virtual_routes
            .iter()
            .map(|r| r.add_mode)
            .collect();
        assert_eq!(modes, [RouteAddMode::Append, RouteAddMode::Exclusive]);
        let e = parse(&instance_with(
            "virtual_routes {\n 10.8.0.0/16 via 192.0.2.1 pref high\n }",
        ))
        .unwrap_err();
        assert!(e.contains("cannot mix IPv4 and IPv6"), "{e}");
    }

    #[test]
    fn bad_rules_are_refused() {
        for (rules, want) in [
            ("from 10.0.0.0/8 priority 5", "no action"),
            ("from 10.0.0.0/8 table 1 nop priority 5", "more than one"),
            ("from 10.0.0.0/8 goto 3 priority 5", ">= goto target"),
            ("from 10.0.0.0/8 table 0 priority 5", "table 0"),
            (
                "from 10.0.0.0/8 table 5 track_group g priority 5",
                "\"track_group\" is not supported",
            ),
            (
                "from 10.0.0.0/8 nop sup_pl 0 priority 5",
                "only for a table action",
            ),
            ("from 10.0.0.0/8 table 5 l3mdev priority 5", "more than one"),
            (
                "from 10.0.0.0/8 table 5 sport 80-x priority 5",
                "invalid sport range",
            ),
            ("from 10.0.0.0/8 table 5 frobnicate", "unknown rule option"),
        ] {
            let e = parse(&instance_with(&format!("virtual_rules {{\n {rules}\n }}"))).unwrap_err();
            assert!(e.contains(want), "{rules}: {e}");
        }
    }

    #[test]
    fn static_blocks_and_promote_secondaries() {
        let c = parse(&format!(
            "static_ipaddress {{\n 10.10.0.1/24 dev eth1 label eth1:st\n}}\n\
             static_routes {{\n 10.20.0.0/16 via 10.10.0.254\n}}\n\
             static_rules {{\n from 10.10.0.1 table 50 priority 90\n}}\n{}",
            instance_with("promote_secondaries")
        ))
        .unwrap();
        assert_eq!(c.statics.addresses[0].dev.as_deref(), Some("eth1"));
        assert_eq!(c.statics.addresses[0].label.as_deref(), Some("eth1:st"));
        assert_eq!(c.statics.routes[0].via, Some(ip("10.10.0.254")));
        assert_eq!(c.statics.rules[0].action, RuleAction::Table(50));
        assert!(c.instances[0].promote_secondaries);
        let c = parse("static_ipaddress {\n 10.10.0.1/24\n}\n").unwrap();
        assert_eq!(c.statics.addresses[0].dev.as_deref(), Some("eth0"));
    }

    /// keepalived's get_default_if: a static address without `dev` goes on `default_interface`
    /// as read so far (the interface is named at the line, for a host that lacks it), else
    /// on `eth0`; a `dev` of its own wins; VIPs and instances are not affected.
    #[test]
    fn default_interface_places_static_addresses_without_dev() {
        let c = parse(&format!(
            "global_defs {{\n default_interface eth7\n}}\n\
             static_ipaddress {{\n 10.10.0.1/24\n 10.10.0.2/24 dev eth1\n}}\n{}",
            instance_with("")
        ))
        .unwrap();
        let devs: Vec<_> = c
            .statics
            .addresses
            .iter()
            .map(|a| a.dev.as_deref())
            .collect();
        assert_eq!(devs, [Some("eth7"), Some("eth1")]);
        assert_eq!(c.global.default_interface.as_deref(), Some("eth7"));
        let r = c.interface_ref("eth7").expect("eth7 is named");
        assert_eq!((r.at.line, r.at.col), (5, 2));
        assert!(r.what.contains("default_interface eth7"), "{}", r.what);
        assert_eq!(c.instances[0].interface.as_deref(), Some("eth0"));

        // Read after the static block: not yet known there, as in keepalived.
        let c = parse(
            "static_ipaddress {\n 10.10.0.1/24\n}\nglobal_defs {\n default_interface eth7\n}\n",
        )
        .unwrap();
        assert_eq!(c.statics.addresses[0].dev.as_deref(), Some("eth0"));

        for (text, says) in [
            (
                "global_defs {\n default_interface\n}\n",
                "2:20: default_interface: expected an interface name",
            ),
            (
                "global_defs {\n default_interface abcdefghijklmnopq\n}\n",
                "2:20: default_interface: interface name \"abcdefghijklmnopq\" is longer",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}

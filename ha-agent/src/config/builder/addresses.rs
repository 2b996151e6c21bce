//! Address lines: `virtual_ipaddress` and `static_ipaddress` (`ip addr` words), and the address
//! syntax route and rule lines share (`ADDR[/LEN]`, interface names, scopes).

use std::net::{IpAddr, Ipv4Addr};

use super::Builder;
use crate::config::lexer::Word;
use crate::config::model::VirtualAddress;
use crate::config::parser::Stmt;

impl Builder<'_> {
    /// One `virtual_ipaddress` line (keepalived/vrrp/vrrp_ipaddress.c `alloc_ipaddress`):
    /// `ADDR[/LEN] [dev IF] [brd ADDR|+|-] [scope S] [label L] [peer ADDR] [no_track] …`
    pub(super) fn vip(&mut self, block_kw: &str, l: &Stmt) -> Option<VirtualAddress> {
        let first = &l.keyword;
        let (addr, prefix_len) = self.addr_prefix(block_kw, first)?;
        let mut va = VirtualAddress {
            addr,
            prefix_len,
            dev: None,
            broadcast: None,
            scope: None,
            label: None,
            peer: None,
            no_track: false,
            flags: Vec::new(),
            preferred_lft: None,
            use_vmac: false,
        };
        let mut brd: Option<&Word> = None;
        let mut i = 0;
        let is6 = addr.is_ipv6();
        while i < l.args.len() {
            let w = &l.args[i];
            let takes_value = matches!(
                w.text.as_str(),
                "dev" | "scope" | "broadcast" | "brd" | "label" | "peer" | "preferred_lft"
            );
            let value = if takes_value {
                match l.args.get(i + 1) {
                    Some(v) => Some(v),
                    None => {
                        self.d.error(
                            &l.end_pos(),
                            format!(
                                "{block_kw}: {}: expected a value, found end of line",
                                w.text
                            ),
                        );
                        return None;
                    }
                }
            } else {
                None
            };
            let v4_only = match w.text.as_str() {
                "scope" | "label" => Some(w.text.as_str()),
                "broadcast" | "brd" => Some("broadcast"),
                _ => None,
            };
            if let Some(opt) = v4_only
                && is6
            {
                self.d.error(
                    &w.pos,
                    format!("{block_kw}: {opt} cannot be set on an IPv6 address"),
                );
                return None;
            }
            match (w.text.as_str(), value) {
                ("dev", Some(val)) => {
                    if va.dev.is_some() {
                        self.d
                            .error(&w.pos, format!("{block_kw}: dev given twice for {addr}"));
                        return None;
                    }
                    if let Some(msg) = bad_ifname(&val.text) {
                        self.d.error(&val.pos, format!("{block_kw}: dev: {msg}"));
                        return None;
                    }
                    self.interface_ref(&val.text, &val.pos, format!("{block_kw} {addr}: dev"));
                    va.dev = Some(val.text.clone());
                }
                ("scope", Some(val)) => match scope_value(&val.text) {
                    Some(s) => va.scope = Some(s),
                    None => {
                        self.d.error(
                                &val.pos,
                                format!(
                                    "{block_kw}: scope: expected global, site, link, host, nowhere or 0-255, found \"{}\"",
                                    val.text
                                ),
                            );
                        return None;
                    }
                },
                ("broadcast" | "brd", Some(val)) => {
                    brd = Some(val);
                }
                ("label", Some(val)) => {
                    if val.text.len() >= 16 {
                        self.d.error(
                            &val.pos,
                            format!(
                                "{block_kw}: label \"{}\" is longer than 15 characters",
                                val.text
                            ),
                        );
                        return None;
                    }
                    va.label = Some(val.text.clone());
                }
                ("peer", Some(val)) => {
                    let (p, len) = self.addr_prefix(block_kw, val)?;
                    if p.is_ipv6() != is6 {
                        self.d.error(
                            &val.pos,
                            format!("{block_kw}: peer {p} is not of the address's family"),
                        );
                        return None;
                    }
                    if first.text.contains('/') && prefix_len != len {
                        // vrrp_ipaddress.c: "Cannot specify address prefix when specifying peer
                        // address - ignoring".
                        self.d.warn(
                            &w.pos,
                            format!(
                                "{block_kw}: {addr}: prefix /{prefix_len} ignored: with a peer the \
                                 prefix is the peer's (/{len}), as keepalived does"
                            ),
                        );
                    }
                    va.peer = Some(p);
                    va.prefix_len = len;
                }
                ("preferred_lft", Some(_)) if !is6 => {
                    // keepalived sends address lifetimes for IPv6 VIPs only.
                    self.d.warn(
                        &w.pos,
                        format!(
                            "{block_kw}: preferred_lft on IPv4 address {addr} ignored \
                             (keepalived applies it to IPv6 addresses only)"
                        ),
                    );
                }
                ("preferred_lft", Some(val)) => {
                    if val.text == "forever" {
                        va.preferred_lft = Some(u32::MAX);
                    } else {
                        va.preferred_lft =
                            Some(
                                self.uint_word("preferred_lft", val, 0, u64::from(u32::MAX))?
                                    as u32,
                            );
                    }
                }
                ("no_track", None) => va.no_track = true,
                ("home" | "-nodad" | "mngtmpaddr", None) if !is6 => {
                    // IPv6 address flags: IPv4 has no DAD, home addresses or privacy addresses.
                    self.d.warn(
                        &w.pos,
                        format!(
                            "{block_kw}: {} is an IPv6 option: ignored on IPv4 address {addr}",
                            w.text
                        ),
                    );
                }
                ("home" | "-nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin", None) => {
                    if !va.flags.contains(&w.text) {
                        va.flags.push(w.text.clone());
                    }
                }
                ("use_vmac", None) => va.use_vmac = true,
                _ => {
                    self.d.error(
                        &w.pos,
                        format!("{block_kw}: unknown option \"{}\" for {addr}", w.text),
                    );
                    return None;
                }
            }
            i += if takes_value { 2 } else { 1 };
        }
        if let (Some(b), IpAddr::V4(a4)) = (brd, addr) {
            let host_mask = if va.prefix_len >= 32 {
                0
            } else {
                u32::MAX >> va.prefix_len
            };
            let base = u32::from(match va.peer {
                Some(IpAddr::V4(p)) => p,
                _ => a4,
            });
            va.broadcast = match b.text.as_str() {
                "+" | "-" if va.prefix_len > 30 => {
                    self.d.error(
                        &b.pos,
                        format!(
                            "{block_kw}: brd {}: prefix /{} too long for a broadcast address",
                            b.text, va.prefix_len
                        ),
                    );
                    return None;
                }
                "+" => Some(Ipv4Addr::from(base | host_mask)),
                "-" => Some(Ipv4Addr::from(base & !host_mask)),
                t => {
                    match t.parse::<Ipv4Addr>() {
                        Ok(x) => Some(x),
                        Err(_) => {
                            self.d.error(
                            &b.pos,
                            format!("{block_kw}: brd: expected an IPv4 address, + or -, found \"{t}\""),
                        );
                            return None;
                        }
                    }
                }
            };
        }
        Some(va)
    }

    /// `ADDR[/LEN]` (vrrp_ipaddress.c `parse_ipaddress`).
    pub(super) fn addr_prefix(&mut self, kw: &str, w: &Word) -> Option<(IpAddr, u8)> {
        let (a, len) = match w.text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (w.text.as_str(), None),
        };
        let Ok(addr) = a.parse::<IpAddr>() else {
            self.d.error(
                &w.pos,
                format!(
                    "{kw}: expected an IP address[/prefix], found \"{}\"",
                    w.text
                ),
            );
            return None;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    self.d.error(
                        &w.pos,
                        format!("{kw}: prefix length \"{l}\" of {a}: expected 0-{max}"),
                    );
                    return None;
                }
            },
        };
        Some((addr, prefix))
    }
}

pub(super) fn is_link_local6(a: &std::net::Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The kernel's rule for interface names (IFNAMSIZ 16; keepalived `vrrp_int_handler`).
pub(super) fn bad_ifname(name: &str) -> Option<String> {
    if name.len() >= 16 {
        Some(format!(
            "interface name \"{name}\" is longer than 15 characters"
        ))
    } else if name.is_empty() || name == "." || name == ".." || name.contains(['/', ':']) {
        Some(format!("invalid interface name \"{name}\""))
    } else {
        None
    }
}

/// /etc/iproute2/rt_scopes names (keepalived `find_rttables_scope`).
pub(super) fn scope_value(s: &str) -> Option<u8> {
    match s {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
}

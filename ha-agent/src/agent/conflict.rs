//! Address conflicts: a VIP that someone else configured, or that another host claims on the
//! LAN while we are its master. Reported (a WARN naming the instance, the VIP and who has it,
//! counters in the status and metrics), never acted on: keepalived does not change state on a
//! conflict either, and a fight over an address is for the operator to settle.
//!
//! - On the host: at start and when an instance becomes master, an address equal to a VIP that
//!   this agent did not put there (on another interface, or with another prefix or label, or
//!   already there when we are about to add it) is reported ([`foreign_addresses`]).
//! - On the wire: ARP or neighbour advertisements from another MAC for a VIP of a master
//!   instance (`net::conflict`), counted per instance and VIP ([`Conflicts`]).

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    time::{Duration, Instant},
};

use super::plan::PlacedVip;
use crate::net::IfAddress;

/// After the first warning for a claimant (VIP, MAC), further claims are counted and warned
/// about at most this often, with how many there were: a host that keeps claiming the VIP
/// does not flood the log.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(10);

/// One instance's claims from other hosts.
#[derive(Debug, Default)]
pub(super) struct Conflicts {
    /// Claims seen, by VIP (every claim, warned about or not).
    pub(super) counts: BTreeMap<IpAddr, u64>,
    /// By claimant: when we last warned, and the claims since.
    warned: HashMap<(IpAddr, [u8; 6]), (Instant, u64)>,
}

impl Conflicts {
    /// Counts a claim of `vip` by `mac` at `now`. Returns `Some(n)` when it is to be warned
    /// about now, `n` being the claims by this claimant since the last warning (0 the first
    /// time).
    pub(super) fn record(&mut self, vip: IpAddr, mac: [u8; 6], now: Instant) -> Option<u64> {
        *self.counts.entry(vip).or_insert(0) += 1;
        match self.warned.get_mut(&(vip, mac)) {
            None => {
                self.warned.insert((vip, mac), (now, 0));
                Some(0)
            }
            Some((last, since)) if now.saturating_duration_since(*last) >= WARN_EVERY => {
                let n = *since;
                *last = now;
                *since = 0;
                Some(n)
            }
            Some((_, since)) => {
                *since += 1;
                None
            }
        }
    }
}

/// The host's addresses (`host`, every interface) equal to `vip` that this agent did not put
/// there: on another interface than the VIP's (`ifindex`, with name `ifname`), or there with
/// another prefix length, peer or (IPv4) label. With `exact_too`, also one exactly as we would add
/// it: when an instance becomes master its VIPs are not there (it removed them on leaving
/// master, and stale ones at start), so one that is, someone else added.
pub(super) fn foreign_addresses<'h>(
    vip: &PlacedVip,
    ifindex: u32,
    ifname: &str,
    host: &'h [IfAddress],
    exact_too: bool,
) -> Vec<&'h IfAddress> {
    let label = vip.vip.label.as_deref().unwrap_or(ifname);
    host.iter()
        .filter(|a| a.addr == vip.vip.addr)
        .filter(|a| {
            let ours = a.ifindex == ifindex
                && a.prefix_len == vip.vip.prefix_len
                && a.peer == vip.vip.peer
                && (a.addr.is_ipv6() || a.label.as_deref().is_none_or(|l| l == label));
            exact_too || !ours
        })
        .collect()
}

/// How a foreign address reads in a log line: `192.0.2.200/32 on eth1 (label eth1:x)`.
pub(super) fn describe(a: &IfAddress, ifname: &str) -> String {
    let mut s = match a.peer {
        Some(p) => format!("{} peer {p}/{} on {ifname}", a.addr, a.prefix_len),
        None => format!("{}/{} on {ifname}", a.addr, a.prefix_len),
    };
    if let Some(l) = a.label.as_deref().filter(|l| *l != ifname) {
        s.push_str(&format!(" (label {l})"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Scope, Vip};

    fn addr(ifindex: u32, a: &str, prefix_len: u8, label: Option<&str>) -> IfAddress {
        IfAddress {
            ifindex,
            addr: a.parse().unwrap(),
            prefix_len,
            scope: Scope::Global,
            broadcast: None,
            label: label.map(str::to_owned),
            secondary: false,
            nodad: false,
            peer: None,
            preferred_lft: None,
            noprefixroute: false,
        }
    }

    fn vip(a: &str, prefix_len: u8) -> PlacedVip {
        PlacedVip {
            vip: Vip::new(a.parse().unwrap()).with_prefix_len(prefix_len),
            interface: "eth0".into(),
        }
    }

    #[test]
    fn foreign_is_another_interface_prefix_or_label_and_exact_only_when_asked() {
        let host = [
            addr(2, "192.0.2.1", 24, Some("eth0")),
            addr(2, "192.0.2.200", 24, Some("eth0")),
            addr(3, "192.0.2.201", 32, Some("eth1")),
            addr(2, "192.0.2.202", 32, Some("eth0")),
            addr(2, "192.0.2.203", 24, Some("eth0:other")),
            addr(2, "2001:db8::200", 64, None),
            addr(3, "2001:db8::200", 64, None),
        ];
        let found = |v: &PlacedVip, exact: bool| {
            foreign_addresses(v, 2, "eth0", &host, exact)
                .iter()
                .map(|a| (a.ifindex, a.prefix_len))
                .collect::<Vec<_>>()
        };
        // Exactly ours (a stale one at start): not foreign, unless we are about to add it.
        assert_eq!(found(&vip("192.0.2.200", 24), false), vec![]);
        assert_eq!(found(&vip("192.0.2.200", 24), true), vec![(2, 24)]);
        // On another interface.
        assert_eq!(found(&vip("192.0.2.201", 32), false), vec![(3, 32)]);
        // Another prefix length.
        assert_eq!(found(&vip("192.0.2.202", 24), false), vec![(2, 32)]);
        // Another label.
        assert_eq!(found(&vip("192.0.2.203", 24), false), vec![(2, 24)]);
        // IPv6: ours on eth0, someone's on eth1.
        assert_eq!(found(&vip("2001:db8::200", 64), false), vec![(3, 64)]);
        // Absent.
        assert_eq!(found(&vip("192.0.2.250", 32), true), vec![]);
    }

    #[test]
    fn claims_are_all_counted_and_warned_about_at_most_every_10s_per_claimant() {
        let t0 = Instant::now();
        let vip: IpAddr = "192.0.2.200".parse().unwrap();
        let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut c = Conflicts::default();
        assert_eq!(c.record(vip, a, t0), Some(0));
        assert_eq!(c.record(vip, a, t0 + Duration::from_secs(1)), None);
        assert_eq!(c.record(vip, a, t0 + Duration::from_secs(2)), None);
        // Another claimant is news.
        assert_eq!(c.record(vip, b, t0 + Duration::from_secs(2)), Some(0));
        assert_eq!(c.record(vip, a, t0 + WARN_EVERY), Some(2));
        assert_eq!(c.record(vip, a, t0 + WARN_EVERY), None);
        assert_eq!(c.counts[&vip], 6);
    }

    #[test]
    fn descriptions_name_interface_and_an_unusual_label() {
        assert_eq!(
            describe(&addr(3, "192.0.2.201", 32, Some("eth1")), "eth1"),
            "192.0.2.201/32 on eth1"
        );
        assert_eq!(
            describe(&addr(2, "192.0.2.203", 24, Some("eth0:x")), "eth0"),
            "192.0.2.203/24 on eth0 (label eth0:x)"
        );
    }
}

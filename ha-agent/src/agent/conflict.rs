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
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use super::plan::PlacedVip;
use crate::net::IfAddress;

/// After the first warning for a claimant (VIP, MAC), further claims are counted and warned
/// about at most this often, with how many there were: a host that keeps claiming the VIP
/// does not flood the log.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(10);

/// Claimants (MACs) remembered by name per VIP; claims by any further MAC are counted together
/// as "others": a flood from random MACs costs a counter, not memory.
pub(super) const MAX_CLAIMANTS: usize = 8;

/// Conflict warnings the agent logs per [`WARN_EVERY`], all instances together; the rest are
/// counted and summed up in one line.
pub(super) const WARN_LINES: u32 = 10;

/// One instance's claims from other hosts.
#[derive(Debug, Default)]
pub(super) struct Conflicts {
    /// Claims seen, by VIP (every claim, warned about or not).
    pub(super) counts: BTreeMap<IpAddr, u64>,
    /// By VIP: who claimed it.
    claimants: BTreeMap<IpAddr, Claimants>,
}

/// The claimants of one VIP: the first [`MAX_CLAIMANTS`] MACs each with when we last warned
/// and its claims since; then the others together.
#[derive(Debug, Default)]
struct Claimants {
    known: Vec<([u8; 6], Instant, u64)>,
    others: Option<(Instant, u64)>,
}

/// What a claim is to be warned about as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Warning {
    /// A claimant, with its claims since the last warning about it (0 the first time).
    Claimant { since: u64 },
    /// One of the MACs beyond the first [`MAX_CLAIMANTS`], with the claims by all of them since
    /// the last such warning (0 the first time).
    Others { since: u64 },
}

impl Conflicts {
    /// Counts a claim of `vip` by `mac` at `now`. Returns what to warn about now, if anything:
    /// a claimant the first time and then at most every [`WARN_EVERY`], the same for the others
    /// together.
    pub(super) fn record(&mut self, vip: IpAddr, mac: [u8; 6], now: Instant) -> Option<Warning> {
        *self.counts.entry(vip).or_insert(0) += 1;
        let c = self.claimants.entry(vip).or_default();
        let due = |last: &mut Instant, since: &mut u64| {
            if now.saturating_duration_since(*last) >= WARN_EVERY {
                let n = *since;
                (*last, *since) = (now, 0);
                Some(n)
            } else {
                *since += 1;
                None
            }
        };
        if let Some((_, last, since)) = c.known.iter_mut().find(|(m, _, _)| *m == mac) {
            return due(last, since).map(|since| Warning::Claimant { since });
        }
        if c.known.len() < MAX_CLAIMANTS {
            c.known.push((mac, now, 0));
            return Some(Warning::Claimant { since: 0 });
        }
        match &mut c.others {
            None => {
                c.others = Some((now, 0));
                Some(Warning::Others { since: 0 })
            }
            Some((last, since)) => due(last, since).map(|since| Warning::Others { since }),
        }
    }
}

/// A bound on log lines: at most [`WARN_LINES`] per [`WARN_EVERY`]; the lines refused are
/// counted and reported once the interval is over.
#[derive(Debug, Default)]
pub(super) struct LogBudget {
    /// Start of the current interval, and the lines allowed and refused in it.
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    /// Whether a line may be logged at `now`, and the lines refused in the interval that just
    /// ended, if any (to be reported first).
    pub(super) fn allow(&mut self, now: Instant) -> (bool, Option<u64>) {
        let ended = self.roll(now);
        let ok = self.used < WARN_LINES;
        if ok {
            self.used += 1;
        } else {
            self.suppressed += 1;
        }
        (ok, ended)
    }

    /// The lines refused in an interval that has ended by `now`, once (a flood that stopped
    /// still gets its summary).
    pub(super) fn flush(&mut self, now: Instant) -> Option<u64> {
        self.roll(now)
    }

    fn roll(&mut self, now: Instant) -> Option<u64> {
        match self.window {
            Some(start) if now.saturating_duration_since(start) < WARN_EVERY => None,
            _ => {
                let n = std::mem::take(&mut self.suppressed);
                self.window = Some(now);
                self.used = 0;
                (n > 0).then_some(n)
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
        let claimant = |since| Some(Warning::Claimant { since });
        assert_eq!(c.record(vip, a, t0), claimant(0));
        assert_eq!(c.record(vip, a, t0 + Duration::from_secs(1)), None);
        assert_eq!(c.record(vip, a, t0 + Duration::from_secs(2)), None);
        // Another claimant is news.
        assert_eq!(c.record(vip, b, t0 + Duration::from_secs(2)), claimant(0));
        assert_eq!(c.record(vip, a, t0 + WARN_EVERY), claimant(2));
        assert_eq!(c.record(vip, a, t0 + WARN_EVERY), None);
        assert_eq!(c.counts[&vip], 6);
    }

    #[test]
    fn claimants_beyond_the_cap_are_counted_together_and_memory_stays_bounded() {
        let t0 = Instant::now();
        let vip: IpAddr = "192.0.2.200".parse().unwrap();
        let mac = |n: u32| {
            let b = n.to_be_bytes();
            [2, 0, b[0], b[1], b[2], b[3]]
        };
        let mut c = Conflicts::default();
        let mut warnings = Vec::new();
        for n in 0..100_000 {
            let at = t0 + Duration::from_micros(u64::from(n) * 200); // 5000 claims/s for 20 s
            if let Some(w) = c.record(vip, mac(n), at) {
                warnings.push(w);
            }
        }
        assert_eq!(c.counts[&vip], 100_000);
        let cl = &c.claimants[&vip];
        assert_eq!(cl.known.len(), MAX_CLAIMANTS);
        // The first 8 by name; the others once, then with their count every 10 s.
        let named = warnings
            .iter()
            .filter(|w| matches!(w, Warning::Claimant { .. }))
            .count();
        assert_eq!(named, MAX_CLAIMANTS);
        let others: Vec<_> = warnings
            .iter()
            .filter_map(|w| match w {
                Warning::Others { since } => Some(*since),
                Warning::Claimant { .. } => None,
            })
            .collect();
        assert_eq!(others, vec![0, 49_999]);
        // A named claimant is still recognised after the flood.
        assert_eq!(
            c.record(vip, mac(3), t0 + 3 * WARN_EVERY),
            Some(Warning::Claimant { since: 0 })
        );
    }

    #[test]
    fn the_log_budget_allows_a_burst_per_interval_then_reports_what_it_refused() {
        let t0 = Instant::now();
        let mut b = LogBudget::default();
        let allowed = (0..25)
            .filter(|n| b.allow(t0 + Duration::from_millis(*n)).0)
            .count();
        assert_eq!(allowed, WARN_LINES as usize);
        assert_eq!(
            b.flush(t0 + Duration::from_secs(1)),
            None,
            "the interval is not over"
        );
        // The next line after the interval comes with the count of the refused ones.
        assert_eq!(b.allow(t0 + WARN_EVERY), (true, Some(15)));
        assert_eq!(b.flush(t0 + 2 * WARN_EVERY), None, "nothing refused since");
        for n in 0..12 {
            b.allow(t0 + 2 * WARN_EVERY + Duration::from_millis(n));
        }
        // A flood that stopped: the summary comes from the periodic flush.
        assert_eq!(b.flush(t0 + 3 * WARN_EVERY), Some(2));
        assert_eq!(b.flush(t0 + 4 * WARN_EVERY), None);
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

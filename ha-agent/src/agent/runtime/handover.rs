//! Planned handovers ([`crate::vrrp::Action::HandOver`]): a Master that steps down (shutdown,
//! preempted, moved by its sync group) keeps its VIPs, quiet in the TC fence (no ARP/ND from
//! us, IP still answered), until its successor's gratuitous ARP/NA had time to reach the
//! clients; then the runtime fences and removes them. This component only keeps the deadlines.
//!
//! When: [`GARP_MARGIN`] after the successor's gratuitous ARP/NA for one of the VIPs is seen
//! (the claim watcher's ARP/NA socket, which sees every claim on the LAN): a broadcast, so the
//! clients got it at the same moment. A fallback when it is not seen (lost, or sent late by a
//! starved successor): a [`grace`] after the successor's first advert, which a new master
//! sends right before its VIP adds and GARPs (RFC 5798 §6.4.1). Bounded: with no successor
//! heard within the master-down interval plus the grace, the VIPs are removed anyway (and the
//! log says so).
//!
//! Without a TC fence for every VIP (socket datapath, fence off) there is no quiet state: the
//! step-down fences and removes at once, as before, and the log says so once.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use tracing::{info, warn};

use super::Runtime;

/// After the successor's GARP was seen: the clients' kernels take it in (softirq, busy host).
pub(super) const GARP_MARGIN: Duration = Duration::from_millis(5);
/// The least time a successor's GARP is given after its first advert, when it is not seen: its
/// VIP adds (netlink) and the GARP itself on a busy host, even at advert intervals of 10 ms.
pub(super) const GRACE_MIN: Duration = Duration::from_millis(50);
/// The most: a successor with a long advert interval sent its GARP long before.
pub(super) const GRACE_MAX: Duration = Duration::from_secs(1);

/// How long after the successor's first advert the VIPs stay when its GARP is not seen, for a
/// successor advertising every `successor_interval` (its second advert follows its GARPs).
pub(super) fn grace(successor_interval: Duration) -> Duration {
    (2 * successor_interval).clamp(GRACE_MIN, GRACE_MAX)
}

/// How a handover ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The successor was heard this long after we stepped down (zero: its advert made us);
    /// `announced`: its GARP was seen, else the grace ran out.
    Successor { after: Duration, announced: bool },
    /// Nobody advertised within the bound.
    Silent { waited: Duration },
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    since: Instant,
    heard: Option<Instant>,
    /// When another host's gratuitous ARP/NA for one of the VIPs was seen.
    announced: Option<Instant>,
    grace: Duration,
    bound: Duration,
    /// How often the loop must wake to keep `vip_fence`'s heartbeat fresh: a quiet VIP is
    /// fenced when the agent looks dead, and a backup's loop may sleep longer than that.
    refresh: Duration,
}

impl Pending {
    fn deadline(&self) -> Instant {
        let fallback = match self.heard {
            Some(at) => at + self.grace,
            None => self.since + self.bound,
        };
        self.announced
            .map_or(fallback, |at| fallback.min(at + GARP_MARGIN))
    }
}

/// The handovers under way, per instance.
pub(super) struct Handovers {
    /// Only the instances handing over: the loop asks for the next deadline at every turn.
    pending: BTreeMap<usize, Pending>,
    /// When the loop last ended or began a handover (and so refreshed the heartbeat).
    woke: Option<Instant>,
    /// Whether the log has said that an instance without a TC fence steps down as before.
    pub(super) said_unfenced: bool,
}

impl Handovers {
    pub(super) fn new() -> Handovers {
        Handovers {
            pending: BTreeMap::new(),
            woke: None,
            said_unfenced: false,
        }
    }

    /// Instance `i` stepped down at `now`; its successor is heard already (`successor_heard`)
    /// or awaited for at most `bound`; the loop wakes at least every `refresh` meanwhile.
    pub(super) fn begin(
        &mut self,
        i: usize,
        now: Instant,
        successor_heard: bool,
        (grace, bound, refresh): (Duration, Duration, Duration),
    ) {
        self.woke = Some(now);
        self.pending.insert(
            i,
            Pending {
                since: now,
                heard: successor_heard.then_some(now),
                announced: None,
                grace,
                bound,
                refresh,
            },
        );
    }

    /// A valid advert with a priority above 0 for instance `i`, received `at`: the first one
    /// after the step-down starts the grace.
    pub(super) fn heard(&mut self, i: usize, at: Instant) {
        if let Some(p) = self.pending.get_mut(&i)
            && p.heard.is_none()
            && at >= p.since
        {
            p.heard = Some(at);
        }
    }

    /// Another host announced one of instance `i`'s VIPs (ARP/NA) `at`: its successor's GARP.
    pub(super) fn announced(&mut self, i: usize, at: Instant) {
        if let Some(p) = self.pending.get_mut(&i)
            && p.announced.is_none()
        {
            p.heard.get_or_insert(at);
            p.announced = Some(at);
        }
    }

    /// Instance `i` owns its VIPs again (Master once more) or fences them: nothing to finish.
    pub(super) fn cancel(&mut self, i: usize) {
        self.pending.remove(&i);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next handover to end, or the next heartbeat refresh while one is under way.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending.values();
        let refresh = pending.clone().map(|p| p.refresh).min();
        let refresh = self.woke.zip(refresh).map(|(at, every)| at + every);
        pending.map(Pending::deadline).chain(refresh).min()
    }

    /// The handovers due at `now` (all of them with `all`), taken out, with how they ended.
    pub(super) fn take_due(&mut self, now: Instant, all: bool) -> Vec<(usize, Outcome)> {
        self.woke = Some(now);
        (self.pending)
            .extract_if(.., |_, p| all || p.deadline() <= now)
            .map(|(i, p)| {
                let outcome = match p.heard {
                    Some(at) => Outcome::Successor {
                        after: at.saturating_duration_since(p.since),
                        announced: p.announced.is_some(),
                    },
                    None => Outcome::Silent {
                        waited: now.saturating_duration_since(p.since),
                    },
                };
                (i, outcome)
            })
            .collect()
    }
}

impl Runtime {
    /// [`crate::vrrp::Action::HandOver`] for instance `i`: quiet now, fenced and removed later.
    pub(super) async fn hand_over(&mut self, i: usize, successor_heard: bool) {
        let now = Instant::now();
        self.garp.stop(i);
        let priority = self.instance(i).effective_priority();
        let ip = &self.plan.instances[i];
        if self.datapaths.quiet(i, ip.vips.len(), priority) {
            let grace = grace(self.instance(i).master_adver_interval());
            let bound = self.instance(i).master_down_interval() + grace;
            let refresh = self.datapaths.heartbeat_timeout(i) / 2;
            self.handovers
                .begin(i, now, successor_heard, (grace, bound, refresh));
            return;
        }
        if !self.handovers.said_unfenced && !ip.vips.is_empty() {
            self.handovers.said_unfenced = true;
            // Info, not a warning: the datapath was chosen (`socket`), or its fallback warned.
            info!(
                instance = %ip.name,
                "no TC fence for every VIP (datapath {}): a planned step-down removes the VIPs at once, clients lose packets until the new master's gratuitous ARP/NA (said once)",
                self.datapaths.label()
            );
        }
        self.datapaths.fence(i, true, priority);
        self.vips.remove(i, ip, &self.plan, &self.facts).await;
    }

    /// An ARP/NA from another host for a VIP (the claim watcher): for an instance handing
    /// over, its successor's announcement.
    pub(super) fn claim_during_handover(&mut self, interface: &str, claim: &crate::net::Claim) {
        if self.handovers.is_empty() || self.facts.values().any(|f| f.mac == Some(claim.mac)) {
            return;
        }
        let now = Instant::now();
        for (i, ip) in self.plan.instances.iter().enumerate() {
            let ours = |pv: &crate::agent::plan::PlacedVip| {
                pv.interface == interface && pv.vip.addr == claim.addr
            };
            if ip.vips.iter().any(ours) {
                self.handovers.announced(i, now);
            }
        }
    }

    /// Ends the handovers due at `now` (every one with `all`: shutdown, reload): the VIPs are
    /// fenced and removed.
    pub(super) async fn finish_handovers(&mut self, now: Instant, all: bool) {
        for (i, outcome) in self.handovers.take_due(now, all) {
            let ip = &self.plan.instances[i];
            match outcome {
                Outcome::Successor { after, announced } => info!(
                    instance = %ip.name,
                    "handover done: successor heard {:.1} ms after we stepped down, {}: VIPs fenced and removed",
                    after.as_secs_f64() * 1e3,
                    if announced { "its gratuitous ARP/NA seen" } else { "its gratuitous ARP/NA not seen within the grace" }
                ),
                Outcome::Silent { waited } => warn!(
                    instance = %ip.name,
                    "handover: no successor advertised within {:.0} ms of our step-down: VIPs fenced and removed anyway",
                    waited.as_secs_f64() * 1e3
                ),
            }
            let priority = self.instance(i).effective_priority();
            self.datapaths.fence(i, true, priority);
            self.vips.remove(i, ip, &self.plan, &self.facts).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_preempted_master_keeps_its_vips_for_the_grace() {
        let t0 = Instant::now();
        let mut h = Handovers::new();
        h.begin(1, t0, true, (20 * MS, 50 * MS, 30 * MS));
        assert_eq!(h.next_deadline(), Some(t0 + 20 * MS));
        assert!(h.take_due(t0 + 19 * MS, false).is_empty());
        assert_eq!(
            h.take_due(t0 + 20 * MS, false),
            vec![(
                1,
                Outcome::Successor {
                    after: Duration::ZERO,
                    announced: false
                }
            )]
        );
        assert!(h.is_empty());
    }

    #[test]
    fn a_resigned_master_waits_for_its_successor_bounded() {
        let t0 = Instant::now();
        let mut h = Handovers::new();
        h.begin(0, t0, false, (20 * MS, 50 * MS, 30 * MS));
        h.begin(1, t0, false, (20 * MS, 50 * MS, 30 * MS));
        // Instance 0 hears a successor 3 ms later: its grace runs from then.
        h.heard(0, t0 + 3 * MS);
        h.heard(0, t0 + 4 * MS);
        assert_eq!(h.next_deadline(), Some(t0 + 23 * MS));
        assert_eq!(
            h.take_due(t0 + 23 * MS, false),
            vec![(
                0,
                Outcome::Successor {
                    after: 3 * MS,
                    announced: false
                }
            )]
        );
        // Instance 1 hears nobody: the bound ends it.
        assert_eq!(h.next_deadline(), Some(t0 + 50 * MS));
        assert_eq!(
            h.take_due(t0 + 50 * MS, false),
            vec![(1, Outcome::Silent { waited: 50 * MS })]
        );
    }

    #[test]
    fn the_loop_wakes_to_keep_the_heartbeat_fresh() {
        let t0 = Instant::now();
        let mut h = Handovers::new();
        h.begin(0, t0, false, (20 * MS, 50 * MS, 10 * MS));
        assert_eq!(h.next_deadline(), Some(t0 + 10 * MS));
        assert!(h.take_due(t0 + 10 * MS, false).is_empty());
        assert_eq!(h.next_deadline(), Some(t0 + 20 * MS));
    }

    #[test]
    fn becoming_master_again_cancels_and_shutdown_takes_all() {
        let t0 = Instant::now();
        let mut h = Handovers::new();
        h.begin(0, t0, true, (20 * MS, 50 * MS, 30 * MS));
        h.cancel(0);
        assert!(h.is_empty());
        h.begin(1, t0, false, (20 * MS, 50 * MS, 30 * MS));
        assert_eq!(h.take_due(t0, true).len(), 1);
        assert_eq!(h.next_deadline(), None);
    }

    #[test]
    fn the_successors_garp_ends_the_handover_after_a_margin() {
        let t0 = Instant::now();
        let mut h = Handovers::new();
        h.begin(0, t0, false, (50 * MS, 100 * MS, 1000 * MS));
        h.announced(0, t0 + 4 * MS);
        assert_eq!(h.next_deadline(), Some(t0 + 4 * MS + GARP_MARGIN));
        assert_eq!(
            h.take_due(t0 + 4 * MS + GARP_MARGIN, false),
            vec![(
                0,
                Outcome::Successor {
                    after: 4 * MS,
                    announced: true
                }
            )]
        );
    }

    #[test]
    fn grace_follows_the_successors_interval_within_bounds() {
        assert_eq!(grace(10 * MS), GRACE_MIN);
        assert_eq!(grace(100 * MS), 200 * MS);
        assert_eq!(grace(Duration::from_secs(3)), GRACE_MAX);
    }
}

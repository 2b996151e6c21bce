//! Gratuitous ARPs and unsolicited NAs: the sockets, each instance's announcement task (the
//! burst at takeover, the delayed burst, the refreshes: [`Schedule`]), and the reassertion over a
//! lower priority with its rate limit ([`ReassertLimit`]).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    rc::Rc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tokio::task::{AbortHandle, spawn_local};
use tracing::{info, warn};

use crate::{
    agent::plan::{IfFacts, InstancePlan, Plan},
    net::{GarpSender, garp::Pacer},
};

/// Bursts of gratuitous ARPs / NAs: `repeat` now, `repeat` again after `delay` (0: not), then
/// `refresh_repeat` every `refresh` (0: never).
#[derive(Clone, Copy, Debug)]
pub(super) struct Bursts {
    pub repeat: u32,
    pub delay: Duration,
    pub refresh: Duration,
    pub refresh_repeat: u32,
}

/// When each burst of [`Bursts`] goes out, as offsets from the start, with its size: keepalived's
/// burst, the same again `delay` after it, and `refresh_repeat` every `refresh` counted from the
/// transition (vrrp_state_become_master arms the refresh timer then), not from the delayed burst.
pub(super) struct Schedule {
    bursts: Bursts,
    first: bool,
    delayed: Option<Duration>,
    refreshed: Option<Duration>,
}

impl Schedule {
    pub fn new(bursts: Bursts) -> Schedule {
        Schedule {
            bursts,
            first: true,
            delayed: (!bursts.delay.is_zero()).then_some(bursts.delay),
            refreshed: (!bursts.refresh.is_zero()).then_some(bursts.refresh),
        }
    }
}

impl Iterator for Schedule {
    type Item = (Duration, u32);

    fn next(&mut self) -> Option<(Duration, u32)> {
        if std::mem::take(&mut self.first) {
            return Some((Duration::ZERO, self.bursts.repeat));
        }
        let next = match (self.delayed, self.refreshed) {
            (None, None) => return None,
            (Some(d), Some(r)) => d.min(r),
            (Some(t), None) | (None, Some(t)) => t,
        };
        if self.delayed == Some(next) {
            self.delayed = None;
            Some((next, self.bursts.repeat))
        } else {
            self.refreshed = Some(next + self.bursts.refresh);
            Some((next, self.bursts.refresh_repeat))
        }
    }
}

/// keepalived's `garp_lower_prio_repeat`: one reassertion per advert interval at most, so a
/// stream of lower-priority adverts does not become a stream of bursts.
#[derive(Default)]
pub(super) struct ReassertLimit {
    last: Option<Instant>,
}

impl ReassertLimit {
    /// Whether a reassertion may start at `now` (and if so, it counts from `now`).
    pub fn allow(&mut self, now: Instant, every: Duration) -> bool {
        if self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < every)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// One instance's announcement tasks.
#[derive(Default)]
struct Tasks {
    /// Since it became master.
    garp: Option<AbortHandle>,
    /// A Master reasserting itself over a lower priority.
    lower: Option<AbortHandle>,
    limit: ReassertLimit,
}

pub(super) struct Garp {
    senders: HashMap<String, Rc<GarpSender>>,
    tasks: Vec<Tasks>,
}

/// Opens a GARP socket on every interface that carries VIPs and has an Ethernet address, paced
/// on its own or with the other interfaces of its `garp_group`.
pub(super) fn open(
    plan: &Plan,
    facts: &HashMap<String, IfFacts>,
) -> Result<HashMap<String, Rc<GarpSender>>> {
    let mut garp = HashMap::new();
    let mut groups: HashMap<usize, Rc<Pacer>> = HashMap::new();
    for ip in &plan.instances {
        for pv in &ip.vips {
            if garp.contains_key(&pv.interface) {
                continue;
            }
            let Some(mac) = facts.get(&pv.interface).and_then(|f| f.mac) else {
                continue;
            };
            let pacing = &plan.garp_pacing;
            let pacer = match pacing.group_of(&pv.interface) {
                Some(g) => groups
                    .entry(g)
                    .or_insert_with(|| Rc::new(Pacer::new(pacing.groups[g].0)))
                    .clone(),
                None => Rc::new(Pacer::new(pacing.default)),
            };
            let sender = GarpSender::open(&pv.interface, mac)
                .with_context(|| format!("opening the GARP socket on {}", pv.interface))?
                .paced(pacer);
            garp.insert(pv.interface.clone(), Rc::new(sender));
        }
    }
    Ok(garp)
}

impl Garp {
    /// For `instances` instances; no socket until [`Garp::install`].
    pub fn new(instances: usize) -> Garp {
        Garp {
            senders: HashMap::new(),
            tasks: (0..instances).map(|_| Tasks::default()).collect(),
        }
    }

    pub fn install(&mut self, senders: HashMap<String, Rc<GarpSender>>) {
        self.senders = senders;
    }

    /// The interfaces that send gratuitous ARPs/NAs (where claims are watched for).
    pub fn interfaces(&self) -> impl Iterator<Item = &String> {
        self.senders.keys()
    }

    /// Instance `i`'s tasks carry over to index `to` of `next` (a reload that keeps it).
    pub fn carry(&mut self, i: usize, next: &mut Garp, to: usize) {
        next.tasks[to] = std::mem::take(&mut self.tasks[i]);
    }

    /// Gratuitous ARP / unsolicited NA: a burst now, another after `garp_master_delay`, then
    /// every `garp_master_refresh`. Runs as a task, so it starts after this batch of actions
    /// (after Unfence: the TC fence would drop GARPs for a fenced VIP).
    pub fn announce(&mut self, i: usize, ip: &InstancePlan, facts: &HashMap<String, IfFacts>) {
        let bursts = Bursts {
            repeat: ip.garp_repeat,
            delay: ip.garp_delay,
            refresh: ip.garp_refresh,
            refresh_repeat: ip.garp_refresh_repeat,
        };
        let task = self.task(ip, facts, bursts);
        if let Some(old) = self.tasks[i].garp.replace(task) {
            old.abort();
        }
    }

    /// keepalived's `garp_lower_prio_repeat` GARPs of a Master that heard a lower-priority
    /// advert, and as many again after `garp_lower_prio_delay`: the neighbours that followed the
    /// other master (a healed partition) come back at once. One such pair per advert interval
    /// at most ([`ReassertLimit`]); but a pair still waiting for its second burst does not
    /// swallow a later reassertion, which starts a new pair (after a second hang the neighbours
    /// followed a backup again meanwhile).
    pub fn reassert(&mut self, i: usize, ip: &InstancePlan, facts: &HashMap<String, IfFacts>) {
        let every = crate::vrrp::types::cs_to_duration(ip.machine.advert_interval_cs);
        if !self.tasks[i].limit.allow(Instant::now(), every) {
            return;
        }
        if let Some(old) = self.tasks[i].lower.take() {
            old.abort();
        }
        info!(
            instance = %ip.name,
            "reasserting over a lower priority: {} gratuitous ARP/NA per VIP{}",
            ip.garp_lower_prio_repeat,
            if ip.garp_lower_prio_delay.is_zero() {
                String::new()
            } else {
                format!(", again in {:?}", ip.garp_lower_prio_delay)
            }
        );
        let bursts = Bursts {
            repeat: ip.garp_lower_prio_repeat,
            delay: ip.garp_lower_prio_delay,
            refresh: Duration::ZERO,
            refresh_repeat: 0,
        };
        self.tasks[i].lower = Some(self.task(ip, facts, bursts));
    }

    /// Stops instance `i`'s announcements (it leaves master, or stops).
    pub fn stop(&mut self, i: usize) {
        let t = &mut self.tasks[i];
        for h in [t.garp.take(), t.lower.take()].into_iter().flatten() {
            h.abort();
        }
    }

    /// A task sending instance `ip`'s gratuitous ARPs / NAs as `bursts` says.
    fn task(
        &self,
        ip: &InstancePlan,
        facts: &HashMap<String, IfFacts>,
        bursts: Bursts,
    ) -> AbortHandle {
        let mut by_if: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for pv in &ip.vips {
            by_if
                .entry(pv.interface.clone())
                .or_default()
                .push(pv.vip.addr);
        }
        let jobs: Vec<(Rc<GarpSender>, Vec<IpAddr>, Option<Ipv6Addr>)> = by_if
            .into_iter()
            .filter_map(|(name, vips)| {
                let sender = self.senders.get(&name)?.clone();
                let ll = facts.get(&name).and_then(|f| f.link_local_v6);
                Some((sender, vips, ll))
            })
            .collect();
        let name = ip.name.clone();
        let task = spawn_local(async move {
            let start = tokio::time::Instant::now();
            for (offset, n) in Schedule::new(bursts) {
                // The first burst at once: a takeover's neighbours must not wait for a timer tick.
                if !offset.is_zero() {
                    tokio::time::sleep_until(start + offset).await;
                }
                for (sender, vips, ll) in &jobs {
                    if let Err(e) = sender.announce(vips, *ll, false, n).await {
                        warn!(instance = %name, "gratuitous ARP/NA: {e}");
                    }
                }
            }
        });
        task.abort_handle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn bursts(repeat: u32, delay: u64, refresh: u64, refresh_repeat: u32) -> Bursts {
        Bursts {
            repeat,
            delay: ms(delay),
            refresh: ms(refresh),
            refresh_repeat,
        }
    }

    #[test]
    fn one_burst_without_delay_or_refresh() {
        let s: Vec<_> = Schedule::new(bursts(5, 0, 0, 0)).collect();
        assert_eq!(s, [(ms(0), 5)]);
    }

    #[test]
    fn the_delayed_burst_repeats_the_first() {
        let s: Vec<_> = Schedule::new(bursts(5, 5000, 0, 1)).collect();
        assert_eq!(s, [(ms(0), 5), (ms(5000), 5)]);
    }

    #[test]
    fn refreshes_count_from_the_transition_not_the_delayed_burst() {
        let s: Vec<_> = Schedule::new(bursts(3, 1500, 1000, 2)).take(5).collect();
        assert_eq!(
            s,
            [
                (ms(0), 3),
                (ms(1000), 2),
                (ms(1500), 3),
                (ms(2000), 2),
                (ms(3000), 2)
            ]
        );
    }

    #[test]
    fn a_delay_equal_to_a_refresh_sends_both() {
        let s: Vec<_> = Schedule::new(bursts(3, 1000, 1000, 1)).take(4).collect();
        assert_eq!(s, [(ms(0), 3), (ms(1000), 3), (ms(1000), 1), (ms(2000), 1)]);
    }

    #[test]
    fn reassertion_once_per_advert_interval() {
        let mut limit = ReassertLimit::default();
        let t0 = Instant::now();
        let every = ms(1000);
        assert!(limit.allow(t0, every));
        assert!(!limit.allow(t0 + ms(10), every));
        assert!(!limit.allow(t0 + ms(999), every));
        assert!(limit.allow(t0 + ms(1000), every));
        // The interval counts from the last reassertion allowed, not the last asked for.
        assert!(!limit.allow(t0 + ms(1500), every));
        assert!(limit.allow(t0 + ms(2000), every));
    }
}

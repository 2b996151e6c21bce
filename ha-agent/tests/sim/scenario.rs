//! Random scenarios from a seed: a LAN of 2..=5 nodes and 1..=2 VRIDs (some seeds with both
//! VRIDs in a sync group on every node), a random fault sequence (crash/restart, clean
//! shutdown/restart, link flaps, tracker faults, priority changes, partitions and heals, loss
//! bursts on the LAN or on single directed links), every fault healed by `heal_at`, then a
//! convergence bound.

use std::fmt::Write as _;
use std::time::Duration;

use ha_agent::vrrp::instance::{InstanceConfig, PRIORITY_OWNER, State, Version};

use super::lan::{Fault, LinkParams, NodeSpec, Sim, Stats};
use super::rng::Rng;

pub struct Scenario {
    pub specs: Vec<NodeSpec>,
    pub link: LinkParams,
    pub faults: Vec<(Duration, Fault)>,
    /// Every random fault with when it ends (its heal, or its own time for a priority change).
    pub windows: Vec<(Duration, Duration, Fault)>,
    /// The initial election is over; the random faults start here.
    pub warmup: Duration,
    /// The longest an advert takes on any link (delay plus jitter).
    pub max_flight: Duration,
    /// When convergence is checked.
    pub check_at: Duration,
    pub description: String,
}

fn cs(d: u16) -> Duration {
    Duration::from_millis(10 * u64::from(d))
}

/// What one node is like in every VRID of a sync-group seed: the group's members agree on the
/// order of the nodes, as a sync group needs (with crossed priorities two groups can each hold
/// the other in Backup forever; keepalived does the same).
struct NodeTraits {
    priority: u8,
    preempt: bool,
    /// preempt_delay in advert intervals (0: none).
    delay_intervals: u32,
}

pub fn random(seed: u64) -> Scenario {
    let mut rng = Rng::new(seed);
    let nodes = rng.range(2, 5) as usize;
    let vrids = rng.range(1, 2) as usize;
    let sync = vrids == 2 && rng.chance(400);
    let mut description = String::new();
    if sync {
        let _ = writeln!(description, "sync group of both VRIDs on every node");
    }

    // Distinct addresses in random order, so node index and address order differ.
    let mut addresses: Vec<u8> = Vec::new();
    while addresses.len() < nodes {
        let a = rng.range(1, 250) as u8;
        if !addresses.contains(&a) {
            addresses.push(a);
        }
    }

    let mut specs: Vec<NodeSpec> = (0..nodes)
        .map(|_| NodeSpec {
            instances: Vec::new(),
            sync_group: sync,
        })
        .collect();
    let group_owner = (sync && rng.chance(200)).then(|| rng.below(nodes as u64) as usize);
    let traits: Vec<NodeTraits> = (0..nodes)
        .map(|n| {
            let priority = if group_owner == Some(n) {
                PRIORITY_OWNER
            } else {
                *rng.pick(&[1, 50, 100, 100, 100, 150, 200, 254])
            };
            let owner = priority == PRIORITY_OWNER;
            NodeTraits {
                priority,
                preempt: owner || !rng.chance(150),
                delay_intervals: if !owner && rng.chance(100) {
                    rng.range(1, 5) as u32
                } else {
                    0
                },
            }
        })
        .collect();
    let mut max_interval = Duration::ZERO;
    let mut min_interval = Duration::MAX;
    let mut max_dta = 1u8;
    let mut max_preempt_delay = Duration::ZERO;
    for vrid in 0..vrids {
        let version = if rng.chance(300) {
            Version::V2
        } else {
            Version::V3
        };
        let v6 = version == Version::V3 && rng.chance(300);
        // v3 nodes may advertise different intervals: backups must learn the master's.
        let base_cs: u16 = match version {
            Version::V2 => 100,
            Version::V3 => *rng.pick(&[1, 2, 5, 10, 100]),
        };
        let owner = if !sync && rng.chance(200) {
            Some(rng.below(nodes as u64) as usize)
        } else {
            None
        };
        let dta = *rng.pick(&[1, 2, 3, 3, 3, 4]);
        let _ = write!(
            description,
            "vrid#{vrid} {version:?}{} [",
            if v6 { "/v6" } else { "" }
        );
        for (n, spec) in specs.iter_mut().enumerate() {
            let priority = if sync {
                traits[n].priority
            } else if owner == Some(n) {
                PRIORITY_OWNER
            } else {
                *rng.pick(&[1, 50, 100, 100, 100, 150, 200, 254])
            };
            let mut config = InstanceConfig::new(
                vrid as u8 + 1,
                version,
                priority,
                super::lan::node_address(addresses[n], v6),
            );
            config.advert_interval_cs = match version {
                Version::V2 => base_cs,
                // Not with down_timer_adverts 1: a backup that last accepted a transient
                // equal-priority master at half the real master's interval times out before
                // the real master's next advert, again and again (seed 48718 before this rule;
                // keepalived does the same: RFC 5798 §6.4.2 learns any interval not below us).
                Version::V3 if dta == 1 => base_cs,
                Version::V3 => base_cs * *rng.pick(&[1, 1, 2]),
            };
            config.down_timer_adverts = dta;
            if sync {
                config.preempt = traits[n].preempt;
                config.preempt_delay = cs(config.advert_interval_cs) * traits[n].delay_intervals;
            } else {
                if priority != PRIORITY_OWNER && rng.chance(150) {
                    config.preempt = false;
                }
                if priority != PRIORITY_OWNER && rng.chance(100) {
                    config.preempt_delay = cs(config.advert_interval_cs) * rng.range(1, 5) as u32;
                }
            }
            config.vips = vec![super::lan::node_address(200 + vrid as u8, v6)];
            max_interval = max_interval.max(cs(config.advert_interval_cs));
            min_interval = min_interval.min(cs(config.advert_interval_cs));
            max_dta = max_dta.max(dta);
            max_preempt_delay = max_preempt_delay.max(config.preempt_delay);
            let _ = write!(
                description,
                " n{n}@{} p{} {}cs{}{}",
                addresses[n],
                priority,
                config.advert_interval_cs,
                if config.preempt { "" } else { " nopreempt" },
                if config.preempt_delay.is_zero() {
                    String::new()
                } else {
                    format!(" delay {:?}", config.preempt_delay)
                }
            );
            spec.instances.push(config);
        }
        let _ = writeln!(description, " ] dta {dta}");
    }

    // Delays well under the smallest skew would hide nothing; keep them a few % of the
    // smallest interval, jitter under the smallest possible skew (interval / 256).
    let max_delay_ns = (min_interval.as_nanos() as u64 / 20).max(1);
    let delay: Vec<Vec<Duration>> = (0..nodes)
        .map(|_| {
            (0..nodes)
                .map(|_| Duration::from_nanos(rng.range(max_delay_ns / 10, max_delay_ns)))
                .collect()
        })
        .collect();
    let jitter = Duration::from_nanos(min_interval.as_nanos() as u64 / 1000);
    let max_flight = delay.iter().flatten().copied().max().unwrap_or_default() + jitter;
    let link = LinkParams { delay, jitter };

    // Master_Down_Interval upper bound for this LAN (skew < one interval).
    let mdi = max_interval * (u32::from(max_dta) + 1);
    let mut faults = Vec::new();
    let mut windows = Vec::new();
    // Starts: all together (tie races) or staggered.
    let together = rng.chance(300);
    for n in 0..nodes {
        let at = if together {
            Duration::ZERO
        } else {
            Duration::from_nanos(rng.below(2 * max_interval.as_nanos() as u64))
        };
        faults.push((at, Fault::Start(n)));
    }
    let warmup = mdi * 2;
    let span = mdi * 8;
    let mut heal_at = warmup;
    let count = rng.range(0, 7);
    let rand_time = |rng: &mut Rng, from: Duration, len: Duration| {
        from + Duration::from_nanos(rng.below(len.as_nanos() as u64 + 1))
    };
    for _ in 0..count {
        let at = rand_time(&mut rng, warmup, span);
        let lasting = rand_time(&mut rng, max_interval / 2, mdi * 3);
        let end = at + lasting;
        let node = rng.below(nodes as u64) as usize;
        let member = rng.below(vrids as u64) as usize;
        let (start, heal) = match rng.below(10) {
            0 => (Fault::Crash(node), Some(Fault::Start(node))),
            1 => (Fault::Shutdown(node), Some(Fault::Start(node))),
            2 => (Fault::LinkDown(node), Some(Fault::LinkUp(node))),
            3 => (
                Fault::MemberDown(node, member),
                Some(Fault::MemberUp(node, member)),
            ),
            4 | 5 => {
                let priority = *rng.pick(&[1, 20, 100, 101, 180, 254, 255]);
                // A sync group's members keep one order of the nodes: a group-wide tracker.
                let members = if sync { 0..vrids } else { member..member + 1 };
                for member in members {
                    let f = Fault::SetPriority {
                        node,
                        member,
                        priority,
                    };
                    faults.push((at, f));
                    windows.push((at, at, f));
                }
                heal_at = heal_at.max(at);
                continue;
            }
            6 => {
                let mut mask = rng.below(1 << nodes);
                if mask == 0 {
                    mask = 1;
                }
                (Fault::Partition(mask), Some(Fault::Heal))
            }
            7 => {
                let permille = rng.range(300, 1000) as u16;
                (Fault::LossStart(permille), Some(Fault::LossEnd(permille)))
            }
            _ => {
                // Loss on one directed link, sometimes on both directions of a pair.
                let to = (node + 1 + rng.below(nodes as u64 - 1) as usize) % nodes;
                let permille = rng.range(300, 1000) as u16;
                if rng.chance(400) {
                    let back = Fault::LinkLossStart {
                        from: to,
                        to: node,
                        permille,
                    };
                    faults.push((at, back));
                    faults.push((
                        end,
                        Fault::LinkLossEnd {
                            from: to,
                            to: node,
                            permille,
                        },
                    ));
                    windows.push((at, end, back));
                }
                (
                    Fault::LinkLossStart {
                        from: node,
                        to,
                        permille,
                    },
                    Some(Fault::LinkLossEnd {
                        from: node,
                        to,
                        permille,
                    }),
                )
            }
        };
        faults.push((at, start));
        if let Some(heal) = heal {
            faults.push((end, heal));
        }
        windows.push((at, end, start));
        heal_at = heal_at.max(end);
    }
    // Any node still down at the end comes back (a start of a running node is a no-op).
    for n in 0..nodes {
        faults.push((heal_at, Fault::Start(n)));
    }
    // Convergence: a preempting backup waits at most preempt_delay plus a Master_Down_Interval
    // from the last advert it accepted, then the old master hears it and steps down; a
    // restarted node adds one more Master_Down_Interval.
    let check_at = heal_at + max_preempt_delay + mdi * 3 + max_interval * 2;
    let _ = writeln!(
        description,
        "{nodes} nodes, {count} faults, heal at {heal_at:?}, check at {check_at:?}"
    );
    for (at, f) in &faults {
        let _ = writeln!(description, "  {at:?}: {f:?}");
    }
    Scenario {
        specs,
        link,
        faults,
        windows,
        warmup,
        max_flight,
        check_at,
        description,
    }
}

/// The master of one VRID at a moment of the run, if there was exactly one.
#[derive(Clone, Copy, Debug)]
struct Incumbent {
    at: Duration,
    member: usize,
    node: usize,
    /// When it last became master.
    since: Duration,
}

/// The unique masters just before `at`.
fn snapshot(sim: &Sim, at: Duration) -> Vec<Incumbent> {
    (0..sim.members())
        .filter_map(|member| match sim.masters(member).as_slice() {
            &[node] => Some(Incumbent {
                at,
                member,
                node,
                since: *sim.transitions_to(node, member, State::Master).last()?,
            }),
            _ => None,
        })
        .collect()
}

/// RFC 5798 §6.1 Skew_Time (v3), RFC 3768 §6.1 (v2).
fn skew(cfg: &InstanceConfig, priority: u8) -> Duration {
    let weight = 256 - u64::from(priority);
    match cfg.version {
        Version::V3 => {
            Duration::from_nanos(weight * u64::from(cfg.advert_interval_cs) * 10_000_000 / 256)
        }
        Version::V2 => Duration::from_nanos(weight * 1_000_000_000 / 256),
    }
}

/// The incumbent rule (Preempt_Mode, RFC 5798 §6.4.2): a master that nothing could legitimately
/// unseat since it took over must still be master at the end. `None` when the rule does not
/// apply to `inc`; else whether it held, with the reason it should have.
///
/// What may unseat it: its own crash, shutdown, link or tracker fault, priority change; a
/// partition, a LAN-wide loss burst, loss on a link from it (a backup that stops hearing it
/// becomes master, and two masters settle by priority, nopreempt or not); a preempting backup
/// whose priority is or becomes higher; a node that (re)starts with a Master_Down_Interval
/// shorter than the incumbent's advert interval and outranks it. A nopreempt backup above it,
/// restarted or with a raised priority, may not.
fn check_incumbent(
    sim: &Sim,
    scenario: &Scenario,
    inc: &Incumbent,
) -> Option<Result<bool, String>> {
    let i = inc.node;
    let nodes = scenario.specs.len();
    // Everyone heard its first adverts, and two masters of that moment have settled.
    if inc.at < inc.since + scenario.max_flight * 2 {
        return None;
    }
    // In a sync group, whatever moves another member moves this one too.
    let concern: Vec<usize> = if scenario.specs[i].sync_group {
        (0..sim.members()).collect()
    } else {
        vec![inc.member]
    };
    let cfg = |n: usize, m: usize| &scenario.specs[n].instances[m];
    let clamp = |n: usize, m: usize, p: u8| {
        if cfg(n, m).priority == PRIORITY_OWNER {
            PRIORITY_OWNER
        } else {
            p.clamp(1, PRIORITY_OWNER - 1)
        }
    };
    let prio_i = |m: usize| sim.effective_priority(i, m);
    // A node's highest priority on `m` during the run.
    let max_prio = |n: usize, m: usize| {
        scenario
            .windows
            .iter()
            .filter_map(|(_, _, f)| match *f {
                Fault::SetPriority {
                    node,
                    member,
                    priority,
                } if node == n && member == m => Some(clamp(n, m, priority)),
                _ => None,
            })
            .fold(cfg(n, m).priority, u8::max)
    };
    let all = (1u64 << nodes) - 1;
    for &(_, end, f) in &scenario.windows {
        if end < inc.since {
            continue;
        }
        let unseats = match f {
            Fault::Crash(n) | Fault::Shutdown(n) | Fault::LinkDown(n) => n == i,
            Fault::MemberDown(n, m) => n == i && concern.contains(&m),
            Fault::SetPriority {
                node,
                member,
                priority,
            } => {
                concern.contains(&member)
                    && (node == i
                        || (cfg(node, member).preempt
                            && clamp(node, member, priority) > prio_i(member)))
            }
            Fault::Partition(mask) => mask & all != 0 && mask & all != all,
            Fault::LossStart(_) => true,
            Fault::LinkLossStart { from, .. } => from == i,
            _ => false,
        };
        if unseats {
            return None;
        }
    }
    for k in (0..nodes).filter(|&k| k != i) {
        for &m in &concern {
            let (ck, ci) = (cfg(k, m), cfg(i, m));
            let pk = max_prio(k, m);
            let outranks =
                pk > prio_i(m) || (pk == prio_i(m) && ck.primary_address > ci.primary_address);
            if !outranks {
                continue;
            }
            // A preempting node above it, at any time, takes over, rightly.
            if ck.preempt && pk > prio_i(m) {
                return None;
            }
            // A (re)started node that can time out before it hears the incumbent.
            let first_wait =
                cs(ck.advert_interval_cs) * u32::from(ck.down_timer_adverts) + skew(ck, pk);
            if first_wait <= cs(ci.advert_interval_cs) + scenario.max_flight {
                return None;
            }
        }
    }
    if !sim.eligible(i, inc.member) {
        return None;
    }
    let nopreempt_above = (0..nodes).any(|k| {
        k != i
            && concern
                .iter()
                .any(|&m| !cfg(k, m).preempt && max_prio(k, m) > prio_i(m) && sim.eligible(k, m))
    });
    let masters = sim.masters(inc.member);
    if masters == [i] {
        Some(Ok(nopreempt_above))
    } else {
        Some(Err(format!(
            "vrid#{}: node {i} was master at {:?} (since {:?}) and nothing since could unseat \
             it, but the masters at the end are {masters:?}",
            inc.member, inc.at, inc.since
        )))
    }
}

/// Runs one seed; Err carries a report with the seed, the scenario and the trace tail.
pub fn run(seed: u64) -> Result<Stats, String> {
    let scenario = random(seed);
    let mut sim = Sim::new(seed, scenario.specs.clone(), scenario.link.clone());
    for &(at, fault) in &scenario.faults {
        sim.schedule(at, fault);
    }
    // The masters just before the random faults start and before each one: running in steps
    // changes nothing in the run.
    let one_ns = Duration::from_nanos(1);
    let mut moments: Vec<Duration> = scenario
        .faults
        .iter()
        .map(|(at, _)| *at)
        .filter(|&at| at >= scenario.warmup)
        .chain([scenario.warmup])
        .map(|at| at - one_ns)
        .filter(|&at| at <= scenario.check_at)
        .collect();
    moments.sort();
    moments.dedup();
    let mut incumbents = Vec::new();
    for at in moments {
        sim.run_until(at);
        incumbents.extend(snapshot(&sim, at));
    }
    sim.run_until(scenario.check_at);
    let converged = sim.check_converged();
    let mut unseated = Vec::new();
    for inc in &incumbents {
        match check_incumbent(&sim, &scenario, inc) {
            None => {}
            Some(Ok(nopreempt_above)) => {
                sim.stats.incumbent_checks += 1;
                sim.stats.nopreempt_checks += u64::from(nopreempt_above);
            }
            Some(Err(e)) => unseated.push(e),
        }
    }
    if sim.violations.is_empty() && converged.is_ok() && unseated.is_empty() {
        return Ok(sim.stats);
    }
    let mut report = format!("seed {seed} failed\n{}", scenario.description);
    for v in &sim.violations {
        let _ = writeln!(report, "violation: {v}");
    }
    if let Err(e) = converged {
        let _ = writeln!(report, "not converged at {:?}:\n{e}", scenario.check_at);
    }
    for e in &unseated {
        let _ = writeln!(report, "incumbent unseated: {e}");
    }
    let _ = writeln!(report, "trace (last lines):\n{}", sim.trace());
    let _ = writeln!(
        report,
        "replay: SIM_SEED={seed} cargo test -p ha-agent --test simulator random_fault_sequences"
    );
    Err(report)
}

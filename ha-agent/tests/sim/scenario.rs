//! Random scenarios from a seed: a LAN of 2..=5 nodes and 1..=2 VRIDs, a random fault
//! sequence (crash/restart, clean shutdown/restart, link flaps, tracker faults, priority changes,
//! partitions and heals, loss bursts), every fault healed by `heal_at`, then a convergence bound.

use std::fmt::Write as _;
use std::time::Duration;

use ha_agent::vrrp::instance::{InstanceConfig, PRIORITY_OWNER, Version};

use super::lan::{Fault, LinkParams, NodeSpec, Sim, Stats};
use super::rng::Rng;

pub struct Scenario {
    pub specs: Vec<NodeSpec>,
    pub link: LinkParams,
    pub faults: Vec<(Duration, Fault)>,
    /// When convergence is checked.
    pub check_at: Duration,
    pub description: String,
}

fn cs(d: u16) -> Duration {
    Duration::from_millis(10 * u64::from(d))
}

pub fn random(seed: u64) -> Scenario {
    let mut rng = Rng::new(seed);
    let nodes = rng.range(2, 5) as usize;
    let vrids = rng.range(1, 2) as usize;
    let mut description = String::new();

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
            sync_group: false,
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
        let owner = if rng.chance(200) {
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
            let priority = if owner == Some(n) {
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
                Version::V3 => base_cs * *rng.pick(&[1, 1, 2]),
            };
            config.down_timer_adverts = dta;
            if priority != PRIORITY_OWNER && rng.chance(150) {
                config.preempt = false;
            }
            if priority != PRIORITY_OWNER && rng.chance(100) {
                config.preempt_delay = cs(config.advert_interval_cs) * rng.range(1, 5) as u32;
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
    let delay = (0..nodes)
        .map(|_| {
            (0..nodes)
                .map(|_| Duration::from_nanos(rng.range(max_delay_ns / 10, max_delay_ns)))
                .collect()
        })
        .collect();
    let link = LinkParams {
        delay,
        jitter: Duration::from_nanos(min_interval.as_nanos() as u64 / 1000),
    };

    // Master_Down_Interval upper bound for this LAN (skew < one interval).
    let mdi = max_interval * (u32::from(max_dta) + 1);
    let mut faults = Vec::new();
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
        match rng.below(9) {
            0 => {
                faults.push((at, Fault::Crash(node)));
                faults.push((end, Fault::Start(node)));
            }
            1 => {
                faults.push((at, Fault::Shutdown(node)));
                faults.push((end, Fault::Start(node)));
            }
            2 => {
                faults.push((at, Fault::LinkDown(node)));
                faults.push((end, Fault::LinkUp(node)));
            }
            3 => {
                faults.push((at, Fault::MemberDown(node, member)));
                faults.push((end, Fault::MemberUp(node, member)));
            }
            4 | 5 => {
                let priority = *rng.pick(&[1, 20, 100, 101, 180, 254, 255]);
                faults.push((
                    at,
                    Fault::SetPriority {
                        node,
                        member,
                        priority,
                    },
                ));
            }
            6 => {
                let mut mask = rng.below(1 << nodes);
                if mask == 0 {
                    mask = 1;
                }
                faults.push((at, Fault::Partition(mask)));
                faults.push((end, Fault::Heal));
            }
            _ => {
                let permille = rng.range(300, 1000) as u16;
                faults.push((at, Fault::LossStart(permille)));
                faults.push((end, Fault::LossEnd(permille)));
            }
        }
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
        check_at,
        description,
    }
}

/// Runs one seed; Err carries a report with the seed, the scenario and the trace tail.
pub fn run(seed: u64) -> Result<Stats, String> {
    let scenario = random(seed);
    let mut sim = Sim::new(seed, scenario.specs, scenario.link);
    for (at, fault) in scenario.faults {
        sim.schedule(at, fault);
    }
    sim.run_until(scenario.check_at);
    let converged = sim.check_converged();
    if sim.violations.is_empty() && converged.is_ok() {
        return Ok(sim.stats);
    }
    let mut report = format!("seed {seed} failed\n{}", scenario.description);
    for v in &sim.violations {
        let _ = writeln!(report, "violation: {v}");
    }
    if let Err(e) = converged {
        let _ = writeln!(report, "not converged at {:?}:\n{e}", scenario.check_at);
    }
    let _ = writeln!(report, "trace (last lines):\n{}", sim.trace());
    let _ = writeln!(
        report,
        "replay: SIM_SEED={seed} cargo test -p ha-agent --test simulator random_fault_sequences"
    );
    Err(report)
}

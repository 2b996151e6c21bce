//! Scenario `scale-1k` (issue #17 §3): a thousand instances on one node. Two nodes with four
//! LANs each (`eth0`…`eth3`, `Lab::add_lans`), 255 VRIDs on every interface (1,020 instances)
//! at advert_int 0.1, node 1 at priority 150 and node 2 at 100, from the same generated
//! keepalived.conf for both daemons. Each trial measures the start-up to all-stable (both
//! daemons started, until node 1 holds every VIP and node 2 none, timed by `ip -ts monitor
//! address` on both nodes: the same observable for both daemons), then over a window the CPU of
//! each node (user and system apart), the state transitions (spurious: the pair is stable), and
//! the RSS. With the bridge's netfilter hooks off (the lab's default) and, where the kernel has
//! br_netfilter, on (a distribution's default); the host's own setting is never touched.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use ha_tests::{Daemon, Lab, Node, epoch_now};

use super::{
    BACKUP_PRIO, BRIDGE_NF_ON, Impl, MASTER_PRIO, Plan, Scenario, ScenarioResult, Trial, alternate,
    config, log_tails, parse_monitor_ts, stop_all, window,
};

/// Interfaces per node (`eth0` and the lab's extra LANs).
pub const INTERFACES: u8 = 4;
/// VRIDs on each interface: all of them.
pub const VRIDS: u8 = 255;
/// Instances per node.
pub const INSTANCES: usize = INTERFACES as usize * VRIDS as usize;
/// Targets of issue #17 §3.
pub const MASTER_CPU_TARGET: f64 = 5.0;
pub const BACKUP_CPU_TARGET: f64 = 1.0;
pub const STARTUP_TARGET_MS: f64 = 2000.0;
/// The start-up metric; the others are named in [`measure`].
pub const STARTUP: &str = "start-up to all-stable (ms)";
/// A trial that is not stable this long after its daemons started is measured anyway.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// All-stable must hold this long (over 2 × Master_Down_Interval at advert_int 0.1) before the
/// last VIP event counts as the end of the start-up.
const HOLD: Duration = Duration::from_secs(1);

/// The VIP of VRID `vrid` on `eth<iface>`: 198.19.VRID.(iface + 1)/32, RFC 2544's benchmarking
/// range, never a .0 or .255.
fn vip(iface: u8, vrid: u8) -> String {
    format!("198.19.{vrid}.{}/32", iface + 1)
}

fn instance(iface: u8, vrid: u8, priority: u8) -> String {
    format!(
        "vrrp_instance VI_{iface}_{vrid} {{\n    state BACKUP\n    interface eth{iface}\n    \
         virtual_router_id {vrid}\n    version 3\n    priority {priority}\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n        {}\n    }}\n}}\n",
        vip(iface, vrid)
    )
}

/// Node `node`'s keepalived.conf with `vrids` VRIDs on each interface.
fn node_config(node: usize, priority: u8, vrids: u8) -> String {
    let instances: String = (0..INTERFACES)
        .flat_map(|i| (1..=vrids).map(move |v| instance(i, v, priority)))
        .collect();
    config(node, &instances, "")
}

fn all_vips() -> BTreeSet<IpAddr> {
    (0..INTERFACES)
        .flat_map(|i| (1..=VRIDS).map(move |v| vip(i, v)))
        .map(|v| {
            v.trim_end_matches("/32")
                .parse()
                .expect("a VIP is an address")
        })
        .collect()
}

pub fn run(plan: &Plan, out: &mut ScenarioResult) -> Result<()> {
    let lab = Lab::new("bs1k", 2)?;
    lab.add_lans(INTERFACES - 1)?;
    let (c1, c2) = (
        node_config(1, MASTER_PRIO, VRIDS),
        node_config(2, BACKUP_PRIO, VRIDS),
    );
    // Two VRIDs per interface show the shape; the files run VRIDs 1–255 on each.
    out.configs = BTreeMap::from([
        (
            "node 1 (VRIDs 1–2 of 1–255 per interface)".to_owned(),
            node_config(1, MASTER_PRIO, 2),
        ),
        (
            "node 2 (VRIDs 1–2 of 1–255 per interface)".to_owned(),
            node_config(2, BACKUP_PRIO, 2),
        ),
    ]);
    let vips = all_vips();
    let nf = ha_tests::bridge_netfilter_available();
    for nf_on in [false, true] {
        if !nf {
            if nf_on {
                // Said in every trial's notes, so the report shows why the variant is absent.
                for t in &mut out.trials {
                    t.notes.push(
                        "this kernel has no br_netfilter: the bridge-netfilter-on lab was not run"
                            .into(),
                    );
                }
            }
            continue;
        }
        lab.bridge_netfilter(nf_on)?;
        let suffix = if nf_on { BRIDGE_NF_ON } else { "" };
        let mut trials = Vec::new();
        alternate(
            plan.scale_trials,
            Scenario::Scale1k,
            &mut trials,
            |imp, i| trial(&lab, imp, i, plan, (&c1, &c2), &vips, suffix),
        );
        out.trials.extend(trials);
    }
    if nf {
        lab.bridge_netfilter(false)?;
    }
    Ok(())
}

fn trial(
    lab: &Lab,
    imp: Impl,
    i: usize,
    plan: &Plan,
    (c1, c2): (&str, &str),
    vips: &BTreeSet<IpAddr>,
    suffix: &str,
) -> Result<Trial> {
    let monitors = [
        AddrMonitor::start(lab, 1, imp)?,
        AddrMonitor::start(lab, 2, imp)?,
    ];
    let started = epoch_now();
    let daemons = vec![imp.start(lab, 1, c1)?, imp.start(lab, 2, c2)?];
    let result = measure(lab, imp, plan, &daemons, monitors, vips, started, suffix)
        .map_err(|e| anyhow::anyhow!("{e:#}; {}", log_tails(&daemons)));
    let mut notes: Vec<String> = super::datapath_note(imp, &daemons[0].log())
        .into_iter()
        .collect();
    stop_all(daemons);
    let scrubbed = scrub(lab, vips);
    if !scrubbed.is_empty() {
        notes.push(format!(
            "VIPs left on node(s) {scrubbed:?} after the daemons stopped; removed"
        ));
    }
    let (metrics, more) = result?;
    notes.extend(more);
    Ok(Trial {
        daemon: imp,
        trial: i,
        metrics,
        notes,
        error: None,
    })
}

#[expect(clippy::too_many_arguments, reason = "one trial's state, passed once")]
fn measure(
    lab: &Lab,
    imp: Impl,
    plan: &Plan,
    daemons: &[Daemon],
    monitors: [AddrMonitor; 2],
    vips: &BTreeSet<IpAddr>,
    started: f64,
    suffix: &str,
) -> Result<(BTreeMap<String, f64>, Vec<String>)> {
    let mut notes = Vec::new();
    let mut m = BTreeMap::new();
    let stable = monitors_stable(lab, &monitors, vips);
    let lost = monitors.iter().any(AddrMonitor::lost_events);
    match stable {
        Ok(last) if !lost => {
            m.insert(format!("{STARTUP}{suffix}"), (last - started) * 1e3);
        }
        Ok(_) => notes.push(
            "ip monitor lost address events (ENOBUFS): start-up not measured in this trial".into(),
        ),
        Err(e) => notes.push(format!("{e:#}; measured anyway")),
    }
    // The monitors' own CPU and memory are not the daemons'.
    drop(monitors);
    // Where each log stood when the window opened: the first spurious transition is named.
    let from: Vec<usize> = daemons.iter().map(|d| d.log().len()).collect();
    let (cpu, moved) = window(lab, imp, daemons, plan.stability_window_s, suffix)?;
    m.extend(cpu);
    m.insert(format!("spurious transitions{suffix}"), moved as f64);
    if let Some(first) = first_transition(imp, daemons, &from) {
        notes.push(format!("first spurious transition{suffix}: {first}"));
    }
    let held = held_vips(lab.node(1), vips)?;
    if held != vips.len() || held_vips(lab.node(2), vips)? != 0 {
        notes.push(format!(
            "after the window node 1 held {held} of {INSTANCES} VIPs, node 2 {}",
            held_vips(lab.node(2), vips)?
        ));
    }
    Ok((m, notes))
}

/// The first transition node 1's daemon logged after `from` (the logs' offsets), else node 2's,
/// as `node N: what`, so that a report says what an unstable trial did.
fn first_transition(imp: Impl, daemons: &[Daemon], from: &[usize]) -> Option<String> {
    daemons
        .iter()
        .zip(from)
        .enumerate()
        .find_map(|(n, (d, from))| {
            let log = d.log();
            let line = log
                .get(*from..)?
                .lines()
                .find(|l| imp.is_transition(l))?
                .to_owned();
            let what = ha_tests::agent_log::parse(&line)
                .map_or(line.trim().to_owned(), |e| e.message().to_owned());
            Some(format!("node {}: {what}", n + 1))
        })
}

/// Waits until node 1 holds every VIP and node 2 none, as the monitors saw them, for [`HOLD`]
/// without a change; returns when the last VIP was added or removed on either node (epoch s).
fn monitors_stable(lab: &Lab, monitors: &[AddrMonitor; 2], vips: &BTreeSet<IpAddr>) -> Result<f64> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut since: Option<(Instant, f64)> = None;
    loop {
        let (on1, last1) = monitors[0].held(vips);
        let (on2, last2) = monitors[1].held(vips);
        let last = last1.max(last2);
        if on1.len() == vips.len() && on2.is_empty() {
            match since {
                Some((at, l)) if l == last && at.elapsed() >= HOLD => return Ok(last),
                Some((_, l)) if l == last => {}
                _ => since = Some((Instant::now(), last)),
            }
        } else {
            since = None;
        }
        if Instant::now() >= deadline {
            bail!(
                "not all-stable {START_TIMEOUT:?} after the start (node 1 held {}, node 2 {} of \
                 {INSTANCES} VIPs; node 1 now holds {})",
                on1.len(),
                on2.len(),
                held_vips(lab.node(1), vips)?
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How many of `vips` `node` holds on any interface.
fn held_vips(node: &Node, vips: &BTreeSet<IpAddr>) -> Result<usize> {
    Ok(addresses(node)?
        .iter()
        .filter(|(_, a)| vips.contains(a))
        .count())
}

/// `(interface, address)` of every IPv4 address of `node`.
fn addresses(node: &Node) -> Result<Vec<(String, IpAddr)>> {
    let out = node.run("ip", &["-o", "-4", "addr", "show"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip(1);
            let dev = w.next()?.to_owned();
            w.find(|x| *x == "inet")?;
            Some((dev, w.next()?.split('/').next()?.parse().ok()?))
        })
        .collect())
}

/// Removes the VIPs daemons left behind; returns the nodes they were removed from.
fn scrub(lab: &Lab, vips: &BTreeSet<IpAddr>) -> Vec<usize> {
    let mut scrubbed = Vec::new();
    for n in &lab.nodes {
        let Ok(addrs) = addresses(n) else { continue };
        for (dev, a) in addrs.iter().filter(|(_, a)| vips.contains(a)) {
            let _ = n.run("ip", &["addr", "del", &format!("{a}/32"), "dev", dev]);
            if !scrubbed.contains(&usize::from(n.index)) {
                scrubbed.push(usize::from(n.index));
            }
        }
    }
    scrubbed
}

/// `ip -ts monitor address` on every interface of a node.
struct AddrMonitor {
    daemon: Daemon,
}

impl AddrMonitor {
    /// Starts the monitor and waits until it reports: a sentinel address added to and removed
    /// from the node's `lo` shows it subscribed.
    fn start(lab: &Lab, node: usize, imp: Impl) -> Result<AddrMonitor> {
        let n = lab.node(node);
        let daemon = n.spawn(
            &format!("addrmon-n{node}-{}", imp.name()),
            &lab.dir,
            "env",
            &["TZ=UTC", "ip", "-ts", "monitor", "address"],
        )?;
        let sentinel = "127.0.0.77/32";
        let wait = ha_tests::wait_for("ip monitor to subscribe", Duration::from_secs(10), || {
            n.run("ip", &["addr", "replace", sentinel, "dev", "lo"])?;
            Ok(daemon.log().contains("127.0.0.77/32"))
        });
        n.run("ip", &["addr", "del", sentinel, "dev", "lo"])
            .context("removing the monitor's sentinel address")?;
        wait?;
        Ok(AddrMonitor { daemon })
    }

    /// The VIPs held after the events seen so far, and when the last VIP event was (epoch s).
    fn held(&self, vips: &BTreeSet<IpAddr>) -> (BTreeSet<IpAddr>, f64) {
        held_after(&self.daemon.log(), vips)
    }

    /// Whether the kernel dropped events for it (its socket's buffer overflowed).
    fn lost_events(&self) -> bool {
        let log = self.daemon.log();
        log.contains("No buffer space") || log.contains("ENOBUFS")
    }
}

/// The VIPs held after the `ip -ts monitor address` lines of `log`, and the time of the last
/// line about one of them (epoch s; 0 if none).
fn held_after(log: &str, vips: &BTreeSet<IpAddr>) -> (BTreeSet<IpAddr>, f64) {
    let mut held = BTreeSet::new();
    let mut last = 0.0f64;
    for line in log.lines() {
        let Some(addr) = line
            .split_once(" inet ")
            .and_then(|(_, r)| r.split('/').next()?.parse::<IpAddr>().ok())
            .filter(|a| vips.contains(a))
        else {
            continue;
        };
        if line.contains("Deleted") {
            held.remove(&addr);
        } else {
            held.insert(addr);
        }
        if let Some(t) = parse_monitor_ts(line) {
            last = last.max(t);
        }
    }
    (held, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_instances_with_distinct_vips() {
        assert_eq!(all_vips().len(), INSTANCES);
        let c = node_config(1, MASTER_PRIO, VRIDS);
        assert_eq!(c.matches("vrrp_instance ").count(), 1020);
        assert!(c.contains("interface eth3\n    virtual_router_id 255\n"));
        assert!(c.contains("advert_int 0.1\n"));
        assert!(c.contains("198.19.255.4/32"));
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }

    #[test]
    fn monitor_lines_replay_to_the_vips_held_and_the_last_change() {
        let vips = all_vips();
        let log = "[2026-12-02T11:00:00.100000] 3: eth1    inet 198.19.1.2/32 scope global eth1\n\
                   [2026-12-02T11:00:00.200000] 2: eth0    inet 198.19.1.1/32 scope global eth0\n\
                   [2026-12-02T11:00:00.300000] Deleted 3: eth1    inet 198.19.1.2/32 scope global eth1\n\
                   [2026-12-02T11:00:00.400000] 1: lo    inet 127.0.0.77/32 scope host lo\n";
        let (held, last) = held_after(log, &vips);
        assert_eq!(held, BTreeSet::from(["198.19.1.1".parse().unwrap()]));
        let at = parse_monitor_ts("[2026-12-02T11:00:00.300000]").unwrap();
        assert!((last - at).abs() < 1e-6, "{last} {at}");
    }
}

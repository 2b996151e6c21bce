//! Scenario 8: hitless reload (issue #17). 255 VRRPv3 instances at advert_int 0.05 on a
//! master/backup pair, one /32 VIP each, the same generated keepalived.conf for both daemons.
//! While the client probes the VIPs of three untouched instances every 1 ms, instance
//! `CHANGED`'s priorities change in both files (master 200 -> 190, backup 100 -> 110, still
//! below) and both daemons get SIGHUP. Measured: state changes (untouched, changed), lost
//! probes and the longest gap on the untouched VIPs, SIGHUP to the first advert on the wire
//! with the new priority (tcpdump on the client), and the daemons' CPU over the reload.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use ha_tests::{Daemon, IFACE, Lab, Node, epoch_now, wait_for};

use super::{
    Impl, Plan, Scenario, ScenarioResult, Trial, alternate, log_tails, ns_pids, scale_vip, scrub,
    stop_all, transitions_since,
};

/// Instances on the pair (VRIDs 1..=N).
const INSTANCES: u8 = 255;
/// The instance whose priorities change.
const CHANGED: u8 = 128;
/// Untouched instances whose VIPs the client probes.
const PROBED: [u8; 3] = [1, 127, 254];
/// The changed instance's priorities before and after, on node 1 (master) and node 2.
const BEFORE: [u8; 2] = [200, 100];
const AFTER: [u8; 2] = [190, 110];
/// The untouched instances' priorities on node 1 and node 2.
const UNTOUCHED: [u8; 2] = [150, 100];
/// keepalived's 255 instances started as BACKUP on both nodes take long to settle on a loaded
/// 2-core machine (both nodes take over, then node 1 preempts): more than the scale scenario's
/// 20 s was seen.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long after SIGHUP the daemons' CPU is counted and the probes go on.
const WINDOW: Duration = Duration::from_secs(1);

/// One VRRPv3 instance at advert_int 0.05.
fn instance(vrid: u8, priority: u8) -> String {
    format!(
        "vrrp_instance VI_{vrid} {{\n    state BACKUP\n    interface {IFACE}\n    \
         virtual_router_id {vrid}\n    version 3\n    priority {priority}\n    advert_int 0.05\n    \
         virtual_ipaddress {{\n        {}\n    }}\n}}\n",
        scale_vip(vrid)
    )
}

/// Node `node`'s (1 or 2) keepalived.conf, with `changed` the changed instance's priority.
fn config(node: usize, changed: u8) -> String {
    let instances: String = (1..=INSTANCES)
        .map(|v| {
            let prio = if v == CHANGED {
                changed
            } else {
                UNTOUCHED[node - 1]
            };
            instance(v, prio)
        })
        .collect();
    super::config(node, &instances, "")
}

/// Where `imp` reads node `node`'s configuration in the lab.
fn conf_path(lab: &Lab, imp: Impl, node: usize) -> std::path::PathBuf {
    match imp {
        Impl::Keepalived => lab.dir.join(format!("keepalived-n{node}.conf")),
        Impl::HaAgent => lab.dir.join(format!("ha-agent-n{node}.conf")),
    }
}

pub fn run(plan: &Plan, out: &mut ScenarioResult) -> Result<()> {
    let lab = Lab::new("brel", 2)?;
    out.configs = BTreeMap::from([
        (
            format!(
                "node 1 ({INSTANCES} VRIDs; VI_{CHANGED} at {} then {})",
                BEFORE[0], AFTER[0]
            ),
            config(1, BEFORE[0]),
        ),
        (
            format!("node 2 (VI_{CHANGED} at {} then {})", BEFORE[1], AFTER[1]),
            config(2, BEFORE[1]),
        ),
    ]);
    let vips: Vec<String> = (1..=INSTANCES).map(scale_vip).collect();
    alternate(plan.trials, Scenario::Reload, &mut out.trials, |imp, i| {
        let mut daemons = vec![imp.start(&lab, 1, &config(1, BEFORE[0]))?];
        // The backup joins a settled master: 255 elections at once (both start as BACKUP,
        // both take over, node 1 preempts) did not settle keepalived in 90 s here.
        let result = wait_for(
            &format!("node 1 alone to hold all {INSTANCES} VIPs"),
            SETTLE_TIMEOUT,
            || Ok(count_on(&lab, &vips, 1)? == vips.len()),
        )
        .and_then(|_| {
            daemons.push(imp.start(&lab, 2, &config(2, BEFORE[1]))?);
            wait_for("node 2 BACKUP of all", SETTLE_TIMEOUT, || {
                Ok(transitions_since(imp, &daemons[1].log(), 0) >= usize::from(INSTANCES))
            })
        })
        .and_then(|_| measure(&lab, imp, &daemons, &vips))
        .map_err(|e| anyhow!("{e:#}; {}", log_tails(&daemons)));
        let mut notes: Vec<String> = super::datapath_note(imp, &daemons[0].log())
            .into_iter()
            .collect();
        stop_all(daemons);
        let scrubbed = scrub(&lab, &vips);
        if !scrubbed.is_empty() {
            notes.push(format!(
                "VIPs left on node(s) {scrubbed:?} after the daemons stopped; removed"
            ));
        }
        let metrics = result.map(|(m, n)| {
            notes.extend(n);
            m
        })?;
        Ok(Trial {
            daemon: imp,
            trial: i,
            metrics,
            notes,
            error: None,
        })
    });
    Ok(())
}

/// Whether `line` (either daemon's log) is about instance `VI_<vrid>`.
fn about(line: &str, vrid: u8) -> bool {
    line.contains(&format!("\"VI_{vrid}\"")) || line.contains(&format!("(VI_{vrid})"))
}

/// user and system clock ticks of every process in `node`'s namespace.
fn ticks(node: &Node) -> Result<(u64, u64)> {
    let mut sum = (0, 0);
    for pid in ns_pids(&node.ns)? {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |r| r.1)
            .split_whitespace()
            .collect();
        let field = |k: usize| f.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        sum.0 += field(11);
        sum.1 += field(12);
    }
    Ok(sum)
}

/// The first VRRP advert for `CHANGED` with priority `AFTER[0]` that the client sees, as
/// tcpdump's epoch timestamp: started before the SIGHUP, exits on that packet.
fn capture(lab: &Lab) -> Result<Daemon> {
    // IPv4 without options (the daemons send none): the VRRP header at byte 20.
    let filter = format!(
        "ip proto 112 and ip[21] = {CHANGED} and ip[22] = {}",
        AFTER[0]
    );
    lab.client.spawn(
        "reload-capture",
        &lab.dir,
        "tcpdump",
        &[
            "-i",
            IFACE,
            "-n",
            "-tt",
            "-l",
            "--immediate-mode",
            "-c",
            "1",
            &filter,
        ],
    )
}

/// How many of `vips` node `node` holds.
fn count_on(lab: &Lab, vips: &[String], node: usize) -> Result<usize> {
    let addrs = lab.node(node).addrs()?;
    Ok(vips
        .iter()
        .filter_map(|v| v.split('/').next()?.parse::<IpAddr>().ok())
        .filter(|a| addrs.contains(a))
        .count())
}

fn measure(
    lab: &Lab,
    imp: Impl,
    daemons: &[Daemon],
    vips: &[String],
) -> Result<(BTreeMap<String, f64>, Vec<String>)> {
    let count_on = |node: usize| count_on(lab, vips, node);
    wait_for(
        &format!("node 1 to hold all {INSTANCES} VIPs"),
        SETTLE_TIMEOUT,
        || Ok(count_on(1)? == vips.len() && count_on(2)? == 0),
    )?;
    let probed: Vec<IpAddr> = PROBED
        .iter()
        .map(|&v| scale_vip(v).split('/').next().unwrap_or_default().parse())
        .collect::<Result<_, _>>()?;
    // The VIPs are not in the LAN's prefix: the client reaches them on its link (ARP).
    let net = scale_vip(1).replace(".1/32", ".0/24");
    lab.client
        .run("ip", &["route", "replace", &net, "dev", IFACE])?;
    let probers = probed
        .iter()
        .map(|&vip| lab.prober(vip))
        .collect::<Result<Vec<_>>>()?;
    let started = epoch_now();
    for &vip in &probed {
        wait_for("the probes to be answered", Duration::from_secs(5), || {
            Ok(super::replies_after(lab, vip, started) > 100)
        })?;
    }
    let mut capture = capture(lab)?;
    // tcpdump says when it listens; the advert it waits for comes only after the SIGHUP.
    wait_for("tcpdump to listen", Duration::from_secs(5), || {
        Ok(capture.log().contains("listening on"))
    })?;
    let logs: Vec<usize> = daemons.iter().map(|d| d.log().len()).collect();
    for node in 1..=2 {
        std::fs::write(conf_path(lab, imp, node), config(node, AFTER[node - 1]))?;
    }
    // The second before the SIGHUP too: the pair's steady cost, to tell the reload's from it.
    let cpu_steady = [ticks(lab.node(1))?, ticks(lab.node(2))?];
    std::thread::sleep(WINDOW);
    let cpu_before = [ticks(lab.node(1))?, ticks(lab.node(2))?];
    let hup = epoch_now();
    for d in daemons {
        d.signal(libc::SIGHUP)?;
    }
    std::thread::sleep(WINDOW);
    let cpu_after = [ticks(lab.node(1))?, ticks(lab.node(2))?];
    let applied = wait_for(
        "the new priority on the wire",
        Duration::from_secs(5),
        || Ok(!capture.is_running()),
    )
    .and_then(|_| {
        let log = capture.log();
        let line = log
            .lines()
            .find(|l| l.contains("VRRP"))
            .context("tcpdump exited without the advert")?;
        let ts: f64 = line.split_whitespace().next().unwrap_or_default().parse()?;
        Ok(ts - hup)
    });
    drop(capture);
    let reports = probers
        .into_iter()
        .map(|p| p.stop())
        .collect::<Result<Vec<_>>>()?;
    let mut m = BTreeMap::new();
    let mut notes = Vec::new();
    if imp == Impl::HaAgent {
        // How long each agent's loop was busy with the reload: its own log's timestamps.
        for (k, d) in daemons.iter().enumerate() {
            let log = d.log();
            let tail = log.get(logs[k]..).unwrap_or_default();
            let entries: Vec<_> = ha_tests::agent_log::entries(tail).collect();
            let at = |what: &str| {
                let e = entries.iter().find(|e| e.message().contains(what));
                e.map(|e| e.t)
            };
            if let (Some(a), Some(b)) = (at("SIGHUP: reloading"), at("reload done")) {
                let who = ["master", "backup"][k];
                m.insert(format!("{who} reload duration (ms)"), (b - a) * 1e3);
            }
        }
    }
    // (gap, requests unanswered in it, when after the SIGHUP)
    let (mut lost, mut gap) = (0u64, (0f64, 0u16, 0f64));
    for r in &reports {
        // Only the stretch from a little before the SIGHUP on.
        let from = r
            .reply_times
            .iter()
            .position(|t| *t > hup - 0.1)
            .unwrap_or(0);
        for k in from..r.replies.saturating_sub(1) {
            lost += u64::from(r.lost_between(k));
            let g = r.reply_times[k + 1] - r.reply_times[k];
            if g > gap.0 {
                gap = (g, r.lost_between(k), r.reply_times[k] - hup);
            }
        }
    }
    m.insert("lost probes, untouched VIPs".into(), lost as f64);
    m.insert("longest probe gap, untouched VIPs (ms)".into(), gap.0 * 1e3);
    // A gap with no request unanswered is the client's prober not sending (starved), not the
    // VIP not answering.
    notes.push(format!(
        "longest gap {:.1} ms, starting {:.1} ms after the SIGHUP: {} request(s) unanswered in it",
        gap.0 * 1e3,
        gap.2 * 1e3,
        gap.1
    ));
    let (mut untouched, mut changed) = (0, 0);
    for (d, from) in daemons.iter().zip(&logs) {
        let log = d.log();
        for line in log.get(*from..).unwrap_or_default().lines() {
            if imp.is_transition(line) {
                if about(line, CHANGED) {
                    changed += 1;
                } else {
                    untouched += 1;
                }
            }
        }
    }
    m.insert(
        "state changes, untouched instances".into(),
        f64::from(untouched),
    );
    m.insert("state changes, changed instance".into(), f64::from(changed));
    match applied {
        Ok(s) => {
            m.insert(
                "SIGHUP to the new priority on the wire (ms)".into(),
                s * 1e3,
            );
        }
        Err(e) => notes.push(format!("the new priority was not seen on the wire: {e:#}")),
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    for (k, who) in ["master", "backup"].iter().enumerate() {
        let user = cpu_after[k].0.saturating_sub(cpu_before[k].0) as f64 / hz;
        let system = cpu_after[k].1.saturating_sub(cpu_before[k].1) as f64 / hz;
        m.insert(format!("{who} CPU over the reload, user (ms)"), user * 1e3);
        m.insert(
            format!("{who} CPU over the reload, system (ms)"),
            system * 1e3,
        );
        let steady = cpu_before[k].0 + cpu_before[k].1 - cpu_steady[k].0 - cpu_steady[k].1;
        m.insert(
            format!("{who} CPU over the second before, user+system (ms)"),
            steady as f64 / hz * 1e3,
        );
    }
    if count_on(1)? != vips.len() {
        bail!("node 1 no longer holds every VIP after the reload");
    }
    Ok((m, notes))
}

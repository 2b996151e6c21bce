//! Scenario 8 (issue #17): failback. The priority 100 node is master alone; the priority 150
//! node (preempt, the default) starts and takes over. The client pings the VIP every 1 ms; over
//! the takeover: the longest gap between replies and the probes lost. Also [`losses`], the
//! same figures for the graceful scenario.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use anyhow::{Context, Result, anyhow};
use ha_tests::{Daemon, Lab, ProberReport, epoch_now, wait_for};

use super::{
    AddrWatch, BACKUP_PRIO, ELECTION_TIMEOUT, FAILOVER_TIMEOUT, Impl, MASTER_PRIO, Plan, Scenario,
    ScenarioResult, Trial, VIP, VRID, alternate, config, datapath_note, instance, log_tails, scrub,
    stop_all, wait_holders, wait_replies,
};

/// The takeover's window starts this long before the VIP is added on the new master (its
/// advert, which makes the old master step down, goes out just before).
const BEFORE_TAKEOVER: f64 = 0.05;

pub(super) fn run(plan: &Plan, out: &mut ScenarioResult) -> Result<()> {
    let lab = Lab::new("bfai", 2)?;
    let vip = format!("{VIP}/24");
    let confs = [
        config(1, &instance(VRID, BACKUP_PRIO, &vip, ""), ""),
        config(2, &instance(VRID, MASTER_PRIO, &vip, ""), ""),
    ];
    out.configs = BTreeMap::from([
        ("node 1".to_owned(), confs[0].clone()),
        ("node 2".to_owned(), confs[1].clone()),
    ]);
    alternate(
        plan.trials,
        Scenario::Failback,
        &mut out.trials,
        |imp, i| trial(&lab, &confs, imp, i),
    );
    Ok(())
}

/// One trial: node 1 alone, then node 2; the lab is put back as it was whatever happens.
fn trial(lab: &Lab, confs: &[String; 2], imp: Impl, i: usize) -> Result<Trial> {
    let mut daemons = vec![imp.start(lab, 1, &confs[0])?];
    let result = measure(lab, imp, &confs[1], &mut daemons)
        .map_err(|e| anyhow!("{e:#}; {}", log_tails(&daemons)));
    let mut notes = Vec::new();
    if let Some(n) = datapath_note(imp, &daemons[0].log()) {
        notes.push(n);
    }
    stop_all(daemons);
    let scrubbed = scrub(lab, &[format!("{VIP}/24")]);
    if !scrubbed.is_empty() {
        notes.push(format!(
            "VIP left on node(s) {scrubbed:?} after the daemons stopped; removed"
        ));
    }
    Ok(Trial {
        daemon: imp,
        trial: i,
        metrics: result?,
        notes,
        error: None,
    })
}

fn measure(
    lab: &Lab,
    imp: Impl,
    conf2: &str,
    daemons: &mut Vec<Daemon>,
) -> Result<BTreeMap<String, f64>> {
    let vip = IpAddr::V4(VIP);
    wait_holders(lab, vip, &[1], ELECTION_TIMEOUT).context("node 1 master alone")?;
    let watch = AddrWatch::start(
        lab.node(2),
        &lab.dir,
        &format!("addrwatch-fb-{}", imp.name()),
    )?;
    let prober = lab.prober(vip)?;
    wait_replies(lab, vip, epoch_now())?;
    std::thread::sleep(Duration::from_millis(200));

    let started = epoch_now();
    daemons.push(imp.start(lab, 2, conf2)?);
    // Reading logs only until the takeover (see the failover scenarios).
    wait_for(
        "the VIP added on node 2 (ip monitor)",
        ELECTION_TIMEOUT,
        || Ok(watch.added(vip).is_some()),
    )
    .context("takeover by node 2")?;
    wait_replies(lab, vip, epoch_now())?;
    wait_holders(lab, vip, &[2], FAILOVER_TIMEOUT).context("node 1 giving the VIP up")?;
    std::thread::sleep(Duration::from_millis(100));
    let report = prober.stop()?;
    let added = watch
        .added(vip)
        .context("ip monitor did not see the VIP added on node 2")?;
    drop(watch);

    let (gap, lost) = losses(&report, added - BEFORE_TAKEOVER);
    Ok(BTreeMap::from([
        ("outage (ms)".to_owned(), gap * 1e3),
        ("lost probes".to_owned(), f64::from(lost)),
        (
            "takeover after start (ms)".to_owned(),
            (added - started) * 1e3,
        ),
    ]))
}

/// From replies after `from` (seconds since the epoch): the longest gap between replies
/// (seconds) and the requests that got no reply (skipped sequence numbers).
pub(super) fn losses(r: &ProberReport, from: f64) -> (f64, u32) {
    let first = r.reply_times.iter().position(|t| *t >= from).unwrap_or(0);
    let k = first.saturating_sub(1)..r.reply_times.len().saturating_sub(1);
    let gap = k
        .clone()
        .map(|k| r.reply_times[k + 1] - r.reply_times[k])
        .fold(0.0, f64::max);
    let lost = k.map(|k| u32::from(r.lost_between(k))).sum();
    (gap, lost)
}

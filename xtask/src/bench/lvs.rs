//! Scenario 7: the XDP load balancer (`virtual_server`, issue #16). A director (node 1 of the
//! LVS lab, `ha_tests::lvs`) runs the agent with a UDP service on VIP1:9 (three real servers)
//! and a TCP one on VIP1:80 with HTTP_GET checks. Each trial measures, with the same live
//! frames (`ha_tests::lvs::bench`): `xdp_bounce` (the ceiling), the kernel forwarding them, and
//! the agent's `vrrp_rx` → `xdp_lb`; then the health-check detection time (a real server's
//! /health starts failing → it no longer gets new connections) and the share of the Maglev
//! table that changed with it (read from the running `xdp_lb`'s `LB_RING`).

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use anyhow::{Context, Result};
use ha_tests::{
    lvs::{self, HTTP_PORT, LvsLab, REALS, VIP1, bench},
    wait_for,
};

use super::{Impl, Plan, ScenarioResult, Trial};

/// The real server whose health check fails in the detection measurement.
const FAILING: usize = 4;

fn config(lvs: &LvsLab) -> String {
    let mut udp = format!(
        "virtual_server {VIP1} {} {{\n    lb_algo rr\n    lb_kind DR\n    protocol UDP\n",
        bench::BENCH_PORT
    );
    for n in REALS {
        udp += &format!(
            "    real_server {} {} {{\n        weight 1\n    }}\n",
            lvs.node(n).ipv4,
            bench::BENCH_PORT
        );
    }
    udp += "}\n";
    let three = [(3, 1), (4, 1), (5, 1)];
    lvs::instance("VI_1", 51, 150, VIP1.into())
        + &udp
        + &lvs::virtual_server(lvs, VIP1.into(), "rr", "DR", "", &three)
}

pub fn run(plan: &Plan, out: &mut ScenarioResult) -> Result<()> {
    let object = std::fs::read(crate::ebpf_object()).context("reading the eBPF object")?;
    // The lab keeps the object for its helper programs for its whole life: the bench's.
    let object: &'static [u8] = Box::leak(object.into_boxed_slice());
    let lvs = LvsLab::new("blvs", object)?;
    let conf = config(&lvs);
    out.configs.insert("director".into(), conf.clone());
    let mut agent = lvs
        .lab
        .ha_agent(1, &conf, &["--log-level", "info", "--log-format", "json"])?;
    // Before the balancer is merged the agent refuses virtual_server: the references are
    // still measured, the balancer's trials say why they have no numbers.
    let agent_up = lvs
        .lab
        .wait_agent_ready(1, &mut agent, Duration::from_secs(30))
        .and_then(|_| {
            let http = SocketAddr::new(VIP1.into(), HTTP_PORT);
            wait_for("VIP1:80 served", Duration::from_secs(30), || {
                Ok(lvs::http_get(lvs.client(), http, "/", None).is_ok_and(|(s, _)| s == 200))
            })
        });
    for i in 0..plan.trials {
        let mut t = Trial {
            daemon: Impl::HaAgent,
            trial: i,
            metrics: BTreeMap::new(),
            notes: Vec::new(),
            error: None,
        };
        if let Err(e) = trial(&lvs, agent_up.is_ok(), &mut t) {
            t.error = Some(format!("{e:#}"));
        }
        if let Err(e) = &agent_up {
            t.notes.push(format!("xdp_lb not measured: {e:#}"));
        }
        eprintln!("   trial {i}: {:?} {:?}", t.metrics, t.error);
        out.trials.push(t);
    }
    Ok(())
}

fn trial(lvs: &LvsLab, balancer: bool, t: &mut Trial) -> Result<()> {
    let sent = f64::from(bench::REPEAT);
    let bounce = bench::bounce(lvs).context("xdp_bounce")?;
    t.metrics
        .insert("xdp_bounce (Mpps)".into(), bounce.run.mpps());
    let forward = bench::kernel_forwarding(lvs).context("kernel forwarding")?;
    t.metrics
        .insert("kernel forwarding (Mpps)".into(), forward.run.mpps());
    t.metrics.insert(
        "kernel forwarding: delivered (%)".into(),
        100.0 * forward.received.unwrap_or(0) as f64 / sent,
    );
    if !balancer {
        return Ok(());
    }
    let lb = bench::xdp_lb(lvs).context("xdp_lb")?;
    t.metrics.insert("xdp_lb (Mpps)".into(), lb.run.mpps());
    t.metrics.insert(
        "xdp_lb: delivered to the real servers (%)".into(),
        100.0 * lb.received.unwrap_or(0) as f64 / sent,
    );
    t.metrics.insert(
        "xdp_lb / xdp_bounce (%)".into(),
        100.0 * lb.run.mpps() / bounce.run.mpps(),
    );
    t.metrics.insert(
        "xdp_lb / kernel forwarding (x)".into(),
        lb.run.mpps() / forward.run.mpps(),
    );
    let (took, moved) = detection(lvs)?;
    t.metrics
        .insert("health-check detection (s)".into(), took.as_secs_f64());
    match moved {
        Ok(Some(share)) => {
            t.metrics.insert(
                "flows moved when 1 of 3 servers leaves (%)".into(),
                100.0 * share,
            );
        }
        Ok(None) => t.notes.push("no table changed when a server left".into()),
        Err(e) => t.notes.push(format!("flow disruption not measured: {e:#}")),
    }
    Ok(())
}

/// From real server `FAILING`'s /health failing to 30 new connections in a row none of which
/// reaches it (then it is made healthy and back in the table before the next trial); and the
/// share of the service's Maglev table that changed meanwhile (the flows that moved: the
/// leaving server's third, and whatever else moved).
fn detection(lvs: &LvsLab) -> Result<(Duration, Result<Option<f64>>)> {
    let http = SocketAddr::new(VIP1.into(), HTTP_PORT);
    let name = lvs::server_name(FAILING);
    // The bench's two services have indexes below 4, whatever order the agent gives them.
    let before = bench::rings(lvs.node(1), 4);
    lvs.set_health(FAILING, false)?;
    let took = wait_for(&format!("{name} to leave"), Duration::from_secs(30), || {
        let t = lvs::tally(lvs.client(), http, 30, None)?;
        Ok(t.failed == 0 && t.from(&name) == 0)
    });
    let moved = before.and_then(|b| Ok(bench::disruption(&b, &bench::rings(lvs.node(1), 4)?)));
    lvs.set_health(FAILING, true)?;
    wait_for(
        &format!("{name} to come back"),
        Duration::from_secs(30),
        || Ok(lvs::tally(lvs.client(), http, 30, None)?.from(&name) > 0),
    )?;
    Ok((took?, moved))
}

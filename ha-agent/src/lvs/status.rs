//! A service's state and counters as the status shows them (`crate::status`).

use std::{collections::HashMap, net::IpAddr};

use super::{LbDatapath, Verdict, manager::ServiceState, neigh::Hop};
use crate::{
    config::lvs::{LbAlgo, LbKind, Protocol},
    status::{CheckerStatus, RealServerStatus, VirtualServerStatus},
};

fn kind_word(k: LbKind) -> String {
    match k {
        LbKind::Dr => "DR",
        LbKind::Tun => "TUN",
    }
    .into()
}

/// `svc` now; counters from `dp` when the balancer is attached.
pub fn service(
    svc: &ServiceState,
    dp: Option<&dyn LbDatapath>,
    hops: &HashMap<IpAddr, Hop>,
) -> VirtualServerStatus {
    let vs = &svc.config;
    let stats = |index: u32, service: bool| {
        dp.and_then(|d| {
            if service {
                d.service_stats(index).ok()
            } else {
                d.real_stats(index).ok()
            }
        })
        .unwrap_or_default()
    };
    let s = stats(svc.index, true);
    let reals = svc
        .reals
        .iter()
        .map(|r| {
            let placed = r.healthy && !svc.sorry_active();
            let health = if !r.healthy && r.config.inhibit_on_failure {
                "inhibited"
            } else if !r.healthy {
                "down"
            } else if r.forwarding.is_none() {
                match hops.get(&r.config.addr.ip()) {
                    Some(Hop::Failed(_)) => "no route",
                    _ => "no neighbour",
                }
            } else {
                "up"
            };
            let st = stats(r.index, false);
            RealServerStatus {
                address: r.config.addr,
                kind: kind_word(r.config.kind),
                health: health.into(),
                weight: if placed && r.forwarding.is_some() {
                    r.weight
                } else {
                    0
                },
                configured_weight: r.config.weight,
                checkers: r
                    .checkers
                    .iter()
                    .zip(&r.config.checkers)
                    .map(|(c, cfg)| CheckerStatus {
                        kind: cfg.kind.keyword().into(),
                        up: c.up,
                        last: c.last.as_ref().map(|v| match v {
                            Verdict::Up => "up".to_owned(),
                            Verdict::UpWeight(w) => format!("up weight {w}"),
                            Verdict::Down(why) => why.clone(),
                        }),
                        latency_seconds: c.latency.map(|d| d.as_secs_f64()),
                        failures: c.failures,
                    })
                    .collect(),
                packets: st.packets,
                bytes: st.bytes,
                new_flows: st.new_flows,
            }
        })
        .collect();
    VirtualServerStatus {
        address: vs.addr,
        protocol: match vs.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
        .into(),
        algo: match vs.algo {
            LbAlgo::Rr => "rr",
            LbAlgo::Wrr => "wrr",
            LbAlgo::Lc => "lc",
            LbAlgo::Wlc => "wlc",
            LbAlgo::Sh => "sh",
            LbAlgo::Mh => "mh",
        }
        .into(),
        kind: kind_word(vs.kind),
        quorum_up: svc.quorum_up,
        sorry_active: svc.sorry_active(),
        sorry_server: svc.sorry.as_ref().map(|s| s.config.addr),
        suspended: !svc.checking(),
        packets: s.packets,
        bytes: s.bytes,
        new_flows: s.new_flows,
        reals,
    }
}

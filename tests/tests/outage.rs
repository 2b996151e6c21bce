//! The same link-cut failover, from the same keepalived.conf (VRRPv3, advert_int 0.05), run by a
//! pair of ha-agents and by a pair of keepalived 2.2.7: the client's outage (longest gap between
//! replies to a 1 ms ping of the VIP) is printed for both, and each must stay under ten
//! Master_Down_Intervals. Its own test binary, so that the measurements do not share the
//! machine with the interop tests.

mod common;

use std::time::Duration;

use common::{Kind, Scene, epoch_now, global_defs, wait_for_replies};

const ADVERT_INT: Duration = Duration::from_millis(50);

fn conf(priority: u8) -> String {
    global_defs("outage")
        + &format!(
            "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
             version 3\n    priority {priority}\n    advert_int 0.05\n    virtual_ipaddress {{\n        \
             192.0.2.200/24\n    }}\n}}\n"
        )
}

/// Master_Down_Interval of the priority 100 backup: 3 × 50 ms + (256 − 100) / 256 × 50 ms.
fn master_down() -> Duration {
    3 * ADVERT_INT + ADVERT_INT * 156 / 256
}

/// Node 1 (priority 200) is master, the client pings the VIP, node 1's link is cut; returns
/// the client's longest gap between replies.
fn link_cut_outage(tag: &str, kind: Kind) -> Duration {
    let vip = "192.0.2.200".parse().unwrap();
    let mut s = Scene::new(tag, 2);
    s.start(1, kind, &conf(200));
    s.start(2, kind, &conf(100));
    let timeout = Duration::from_secs(5);
    s.wait_vip(vip, &[1], timeout);
    s.hold_vip(vip, &[1], 10 * ADVERT_INT);
    let prober = s.lab.prober(vip).unwrap();
    wait_for_replies(&s, vip, epoch_now(), timeout);

    let cut = epoch_now();
    s.lab.cut(1).unwrap();
    let moved = s.wait_vip(vip, &[2], timeout);
    wait_for_replies(&s, vip, epoch_now(), timeout);
    let report = prober.stop().unwrap();
    let outage = report.longest_gap();
    if report.replies_after(cut) == 0 || outage >= 10 * master_down() {
        s.fail(&format!(
            "{} pair: client outage {outage:?} on a link cut of the master (VIP moved after \
             {moved:?}); want < 10 × Master_Down_Interval = {:?}",
            kind.name(),
            10 * master_down()
        ));
    }
    s.assert_clean_logs();
    outage
}

#[test]
fn link_cut_outage_agent_pair_and_keepalived_pair() {
    let agents = link_cut_outage("outa", Kind::Agent);
    let keepaliveds = link_cut_outage("outk", Kind::Keepalived);
    println!(
        "link cut of the master, VRRPv3 advert_int 0.05 (Master_Down_Interval {:?}): \
         client outage: ha-agent pair {agents:?}, keepalived pair {keepaliveds:?}",
        master_down()
    );
}

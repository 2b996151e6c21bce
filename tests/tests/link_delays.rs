//! `interface_up_down_delays`: a master's link that goes down is acted on only once it has
//! stayed down for the delay, so a flap shorter than the delay does not move the VIP, and a
//! longer outage does, after the delay (keepalived's `down_debounce_timer`).

mod common;

use std::time::{Duration, Instant};

use common::{Kind, Proto, Scene, global_defs, instance};

#[test]
fn a_link_flap_shorter_than_the_down_delay_keeps_the_vip_and_a_longer_outage_moves_it() {
    let proto = Proto::V2Pass;
    let vip = proto.vip(0);
    let mut s = Scene::new("linkdelay", 2);
    let delays = "interface_up_down_delays {\n    eth0 1\n}\n";
    s.start(
        1,
        Kind::Agent,
        &format!(
            "{}{delays}{}",
            global_defs("n1"),
            instance("VI_1", 51, 150, proto, 0, "")
        ),
    );
    s.start(
        2,
        Kind::Agent,
        &format!(
            "{}{}",
            global_defs("n2"),
            instance("VI_1", 51, 100, proto, 0, "")
        ),
    );
    s.wait_vip(vip, &[1], Duration::from_secs(10));
    s.wait("node 2 to hear node 1", Duration::from_secs(5), |s| {
        s.hears_master(2, "192.0.2.1".parse().unwrap())
    });

    // The stimulus: node 1's carrier gone for 0.2 s, well inside the 1 s down delay.
    let port = &s.lab.node(1).port;
    s.lab
        .node(1)
        .run(
            "sh",
            &[
                "-c",
                &format!(
                    "ip -n {lan} link set {port} down && sleep 0.2 && ip -n {lan} link set {port} up",
                    lan = s.lab.lan
                ),
            ],
        )
        .unwrap_or_else(|e| s.fail(&format!("flapping node 1's link: {e:#}")));
    s.wait_log(
        1,
        "interface eth0 is down: acted on if it stays so for 1s",
        1,
        Duration::from_secs(5),
    );
    // Longer than node 2's Master_Down_Interval: it would have taken over had node 1 gone FAULT.
    s.hold_vip(vip, &[1], proto.master_down(100) + Duration::from_secs(1));
    if s.log(1).contains("-> FAULT") {
        s.fail("node 1 went FAULT on a 0.2 s flap with a 1 s down delay");
    }

    // An outage: node 1 gives the VIP up once the link has been down for the delay, not before.
    let cut = Instant::now();
    s.lab
        .cut(1)
        .unwrap_or_else(|e| s.fail(&format!("cutting node 1: {e:#}")));
    s.wait("node 1 to drop the VIP", Duration::from_secs(5), |s| {
        !s.holders(vip).contains(&1)
    });
    let dropped = cut.elapsed();
    if dropped < Duration::from_millis(900) {
        s.fail(&format!(
            "node 1 dropped the VIP {dropped:?} after the cut, before its 1 s delay"
        ));
    }
    s.wait_log(1, "MASTER -> FAULT", 1, Duration::from_secs(1));
    s.wait_vip(vip, &[2], Duration::from_secs(10));
    s.lab
        .restore(1)
        .unwrap_or_else(|e| s.fail(&format!("restoring node 1: {e:#}")));
    // No up delay: node 1 is back at once and preempts.
    s.wait_vip(vip, &[1], Duration::from_secs(10));
}

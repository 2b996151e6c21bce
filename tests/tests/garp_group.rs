//! `garp_group`: the interfaces of a group share one pace of gratuitous ARPs, across every
//! instance announcing there (keepalived's `garp_delay_t`), instead of `vrrp_garp_interval`.
//! Seen from the client with tcpdump.

use std::time::Duration;

use ha_tests::{Capture, Lab, ha_agent_bin, wait_for};

const VIPS: [&str; 2] = ["192.0.2.200", "192.0.2.201"];

/// The capture times (seconds, tcpdump's `-tt`) of the gratuitous ARPs for either VIP.
fn garp_times(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| {
            VIPS.iter().any(|vip| {
                l.contains(&format!("Request who-has {vip} "))
                    && l.contains(&format!("tell {vip},"))
            })
        })
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn gratuitous_arps_of_two_instances_on_a_grouped_interface_are_spaced_by_the_group() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("garpgrp", 1).expect("lab");
    let mut capture =
        Capture::start(&lab.client, &lab.dir, "client", "eth0", "arp").expect("capture");
    // The global interval (0.01 s) would send them back to back; the group's 0.3 s applies.
    let instance = |name: &str, vrid: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    \
             version 3\n    priority 150\n    advert_int 0.1\n    garp_master_repeat 3\n    \
             garp_master_delay 0\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n"
        )
    };
    let conf = format!(
        "global_defs {{\n    vrrp_garp_interval 0.01\n}}\n\
         garp_group {{\n    garp_interval 0.3\n    interfaces {{\n        eth0\n    }}\n}}\n{}{}",
        instance("VI_1", 51, VIPS[0]),
        instance("VI_2", 52, VIPS[1]),
    );
    let agent = lab.ha_agent(1, &conf, &["--datapath", "socket"]).unwrap();
    // 3 GARPs for each VIP, 6 in all, 0.3 s apart: 1.5 s from the first to the last.
    wait_for("six gratuitous ARPs", Duration::from_secs(10), || {
        Ok(garp_times(&capture.read(&["-tt", "-n"])?).len() >= 6)
    })
    .unwrap_or_else(|e| panic!("{e}\nagent log:\n{}", agent.log()));
    capture.stop().unwrap();
    let text = capture.read(&["-tt", "-n"]).unwrap();
    let times = garp_times(&text);
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Each gap is the group's 0.3 s: not less (0.02 s of capture timestamp slack), and not
    // much more (up to 0.3 s late on a loaded host).
    assert!(
        times.len() == 6 && gaps.iter().all(|g| (0.28..=0.6).contains(g)),
        "GARPs {gaps:?} s apart, want 6 GARPs 0.3 s apart; capture:\n{text}\nagent log:\n{}",
        agent.log()
    );
    assert!(
        agent.log().matches("-> MASTER").count() == 2,
        "both instances are master:\n{}",
        agent.log()
    );
}

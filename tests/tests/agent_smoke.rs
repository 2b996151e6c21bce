//! Two ha-agent nodes elect the higher priority as master, which holds the VIP; a link cut
//! moves the VIP; SIGTERM hands over and removes the VIP.

use std::{net::IpAddr, time::Duration};

use ha_tests::{Lab, ha_agent_bin};

/// Waits for `cond` (lab commands inside may fail the test) for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond())).unwrap();
}

fn conf(priority: u8) -> String {
    format!(
        r#"
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    version 3
    priority {priority}
    advert_int 0.1
    virtual_ipaddress {{
        192.0.2.200/24
    }}
    virtual_routes {{
        198.51.100.0/24 via 192.0.2.254
    }}
}}
"#
    )
}

#[test]
fn two_agents_elect_fail_over_and_hand_over() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("smoke", 2).expect("lab");
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let mut a1 = lab
        .ha_agent(1, &conf(150), &["--datapath", "socket"])
        .unwrap();
    let a2 = lab
        .ha_agent(2, &conf(100), &["--datapath", "socket"])
        .unwrap();
    wait_for("node 1 to hold the VIP", Duration::from_secs(5), || {
        lab.node(1).has_addr(vip).unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !lab.node(2).has_addr(vip).unwrap(),
        "backup holds the VIP; n2 log:\n{}",
        a2.log()
    );

    lab.cut(1).unwrap();
    wait_for("node 2 to take the VIP", Duration::from_secs(5), || {
        lab.node(2).has_addr(vip).unwrap()
    });
    lab.restore(1).unwrap();
    wait_for("node 1 to preempt back", Duration::from_secs(5), || {
        lab.node(1).has_addr(vip).unwrap() && !lab.node(2).has_addr(vip).unwrap()
    });

    a1.signal(libc::SIGTERM).unwrap();
    let status = a1
        .wait_timeout(Duration::from_secs(2))
        .unwrap()
        .expect("ha-agent exits on SIGTERM");
    assert!(status.success(), "exit status {status}; log:\n{}", a1.log());
    assert!(
        !lab.node(1).has_addr(vip).unwrap(),
        "the VIP is removed on exit"
    );
    wait_for(
        "node 2 to take over after the priority-0 advert",
        Duration::from_secs(2),
        || lab.node(2).has_addr(vip).unwrap(),
    );
    // The stopping master stayed until the new master advertised, and said who it was.
    assert!(
        a1.log()
            .contains("handed over: 192.0.2.2 (priority 100) is master"),
        "no hand-over line in n1's log:\n{}",
        a1.log()
    );
    wait_for("node 2 to log its takeover", Duration::from_secs(2), || {
        a2.log()
            .contains("BACKUP -> MASTER (skew time expired after the master resigned (priority 0)")
    });

    // Alone, a stopping master waits at most its Master_Down_Interval (0.3 s + skew) for a
    // successor, then says the VIP has no master and exits.
    let mut a2 = a2;
    a2.signal(libc::SIGTERM).unwrap();
    let status = a2
        .wait_timeout(Duration::from_secs(2))
        .unwrap()
        .expect("a lone ha-agent exits on SIGTERM within 2 s");
    assert!(status.success(), "exit status {status}; log:\n{}", a2.log());
    assert!(
        a2.log()
            .contains("no other router advertised within 360 ms of our priority-0 advert"),
        "no warning about the VIP left without a master; n2 log:\n{}",
        a2.log()
    );
    assert!(
        !lab.node(2).has_addr(vip).unwrap(),
        "the VIP is removed on exit"
    );
}

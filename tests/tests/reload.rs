//! SIGHUP reloads keepalived.conf: instances whose configuration did not change keep their
//! state and VIPs (no outage), changed ones are restarted, new ones start, removed ones stop;
//! a configuration that does not load is refused and changes nothing.

use std::{net::IpAddr, time::Duration};

use ha_tests::{Lab, ha_agent_bin};

/// Waits for `cond` (lab commands inside may fail the test) for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond())).unwrap();
}

fn instance(name: &str, vrid: u8, vip: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    version 3\n    \
         priority 150\n    advert_int 0.05\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n"
    )
}

#[test]
fn sighup_keeps_unchanged_instances_and_applies_the_rest() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("reload", 1).expect("lab");
    let n1 = lab.node(1);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let first = instance("KEEP", 51, "192.0.2.201")
        + &instance("CHANGE", 52, "192.0.2.202")
        + &instance("DROP", 53, "192.0.2.203");
    let mut agent = lab.ha_agent(1, &first, &["--datapath", "socket"]).unwrap();
    wait_for("all three VIPs", Duration::from_secs(5), || {
        ["192.0.2.201", "192.0.2.202", "192.0.2.203"]
            .iter()
            .all(|v| n1.has_addr(ip(v)).unwrap())
    });
    let conf_path = lab.dir.join("ha-agent-n1.conf");

    // A broken file is refused: nothing changes.
    std::fs::write(
        &conf_path,
        "vrrp_instance BROKEN {\n    virtual_router_id 300\n}\n",
    )
    .unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    agent
        .wait_for_log("reload refused", Duration::from_secs(5))
        .unwrap();
    assert!(
        agent.log().contains("virtual_router_id"),
        "the refusal names the problem:\n{}",
        agent.log()
    );
    assert!(
        n1.has_addr(ip("192.0.2.203")).unwrap(),
        "a refused reload removed a VIP"
    );

    let prober = lab.prober(ip("192.0.2.201")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = instance("KEEP", 51, "192.0.2.201")
        + &instance("CHANGE", 52, "192.0.2.212")
        + &instance("NEW", 54, "192.0.2.204");
    std::fs::write(&conf_path, second).unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    agent
        .wait_for_log("reload done", Duration::from_secs(5))
        .unwrap();
    wait_for("the changed and new VIPs", Duration::from_secs(5), || {
        n1.has_addr(ip("192.0.2.212")).unwrap() && n1.has_addr(ip("192.0.2.204")).unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    let report = prober.stop().unwrap();
    assert!(
        !n1.has_addr(ip("192.0.2.202")).unwrap(),
        "the changed instance's old VIP is removed"
    );
    assert!(
        !n1.has_addr(ip("192.0.2.203")).unwrap(),
        "the removed instance's VIP is removed"
    );
    assert!(
        n1.has_addr(ip("192.0.2.201")).unwrap(),
        "the unchanged instance keeps its VIP"
    );
    // The unchanged instance did not flap: its VIP answered throughout (1 ms probes).
    assert!(
        report.longest_gap() < Duration::from_millis(50),
        "the unchanged instance's VIP was unreachable for {:?} during the reload",
        report.longest_gap()
    );
    let log = agent.log();
    let keep = |needle: &str| {
        log.lines()
            .filter(|l| l.contains("instance=KEEP") && l.contains(needle))
            .count()
    };
    assert_eq!(
        keep("-> MASTER"),
        1,
        "KEEP became master once, at start:\n{log}"
    );
    assert_eq!(keep("MASTER ->"), 0, "KEEP never left master:\n{log}");
}

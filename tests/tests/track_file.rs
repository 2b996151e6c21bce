//! track_file: the value in the file times the weight moves the effective priority, so writing
//! to the file on the master hands the VIP to the backup, and clearing it takes it back.

use std::{net::IpAddr, time::Duration};

use ha_tests::{Lab, ha_agent_bin};

/// Waits for `cond` (lab commands inside may fail the test) for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond())).unwrap();
}

#[test]
fn track_file_value_moves_the_vip() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("trackfile", 2).expect("lab");
    let file = lab.dir.join("maintenance");
    let conf = |priority: u8, track: bool| {
        let tracking = if track {
            format!(
                "track_file maint {{\n    file {}\n    weight 60\n    init_file 0 overwrite\n}}\n",
                file.display()
            )
        } else {
            String::new()
        };
        let reference = if track {
            "    track_file {\n        maint\n    }\n"
        } else {
            ""
        };
        format!(
            "{tracking}vrrp_instance VI {{\n    interface eth0\n    virtual_router_id 60\n    version 3\n    \
             priority {priority}\n    advert_int 0.05\n{reference}    virtual_ipaddress {{\n        192.0.2.200/24\n    }}\n}}\n"
        )
    };
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let a1 = lab
        .ha_agent(1, &conf(150, true), &["--datapath", "socket"])
        .unwrap();
    let _a2 = lab
        .ha_agent(2, &conf(100, false), &["--datapath", "socket"])
        .unwrap();
    wait_for("node 1 to be master", Duration::from_secs(5), || {
        lab.node(1).has_addr(vip).unwrap()
    });
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        "0",
        "init_file writes the initial value"
    );

    // -1 x 60: effective priority 90 < 100.
    std::fs::write(&file, "-1\n").unwrap();
    wait_for("node 2 to take over", Duration::from_secs(5), || {
        lab.node(2).has_addr(vip).unwrap() && !lab.node(1).has_addr(vip).unwrap()
    });
    assert!(
        a1.log().contains("effective priority 90"),
        "log:\n{}",
        a1.log()
    );

    std::fs::write(&file, "0\n").unwrap();
    wait_for("node 1 to preempt back", Duration::from_secs(5), || {
        lab.node(1).has_addr(vip).unwrap()
    });
}

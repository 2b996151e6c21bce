//! track_file: the value in the file times the weight moves the effective priority, so writing
//! to the file on the master hands the VIP to the backup, and clearing it takes it back.

use std::{net::IpAddr, time::Duration};

use ha_tests::{Lab, ha_agent_bin};

/// How long an agent may take to answer on its status socket (XDP loads on a loaded machine).
const READY: Duration = Duration::from_secs(20);

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
    let mut a1 = lab
        .ha_agent(1, &conf(150, true), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &conf(100, false), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
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

/// A `vrrp_sync_group`'s own `track_file` with weight 0 (any value but 0 is a fault) faults every
/// member: both VIPs move to the other node together, and come back when the file reads 0 again.
#[test]
fn a_sync_group_track_file_faults_the_whole_group() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("grpfile", 2).expect("lab");
    let file = lab.dir.join("maintenance");
    let instance = |name: &str, vrid: u8, priority: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    version 3\n    \
             priority {priority}\n    advert_int 0.05\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n"
        )
    };
    let conf = |priority: u8, track: bool| {
        let (tracking, reference) = if track {
            (
                format!(
                    "track_file maint {{\n    file {}\n    weight 0\n    init_file 0 overwrite\n}}\n",
                    file.display()
                ),
                "    track_file {\n        maint\n    }\n",
            )
        } else {
            (String::new(), "")
        };
        format!(
            "{tracking}vrrp_sync_group G {{\n    group {{\n        VI_A\n        VI_B\n    }}\n{reference}}}\n{}{}",
            instance("VI_A", 61, priority, "192.0.2.201"),
            instance("VI_B", 62, priority, "192.0.2.202")
        )
    };
    let vips: [IpAddr; 2] = [
        "192.0.2.201".parse().unwrap(),
        "192.0.2.202".parse().unwrap(),
    ];
    let holds = |node: usize| vips.iter().all(|v| lab.node(node).has_addr(*v).unwrap());
    let mut a1 = lab
        .ha_agent(1, &conf(150, true), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &conf(100, false), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to hold both VIPs", Duration::from_secs(5), || {
        holds(1)
    });

    std::fs::write(&file, "1\n").unwrap();
    wait_for("node 2 to take both VIPs", Duration::from_secs(5), || {
        holds(2) && vips.iter().all(|v| !lab.node(1).has_addr(*v).unwrap())
    });
    let log = a1.log();
    for name in ["VI_A", "VI_B"] {
        assert!(
            log.lines()
                .any(|l| l.contains(name) && l.contains("MASTER -> FAULT")),
            "{name} did not go to FAULT; log:\n{log}"
        );
    }

    std::fs::write(&file, "0\n").unwrap();
    wait_for(
        "node 1 to take both VIPs back",
        Duration::from_secs(5),
        || holds(1),
    );
}

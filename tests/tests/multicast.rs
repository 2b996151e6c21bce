//! The VRRP multicast groups: a configured `vrrp_mcast_group4`/`vrrp_mcast_group6` is where the
//! agent listens as well as where it sends (interoperating with keepalived configured the same
//! way), and on the XDP datapath, where no socket reads adverts, the groups are still joined on
//! the interface: a NIC filters multicast by the groups the host joined, and one that never
//! hears of 224.0.0.18 may drop every advert before XDP sees it (a backup that hears nothing
//! becomes a second master).

mod common;

use std::time::Duration;

use common::{Kind, Proto, Scene, instance};

/// `global_defs` with custom VRRP groups.
fn global_defs(router_id: &str) -> String {
    format!(
        "global_defs {{\n    router_id {router_id}\n    vrrp_mcast_group4 224.0.0.19\n    \
         vrrp_mcast_group6 ff02::13\n}}\n"
    )
}

/// The groups node `i` has joined on its eth0 (`ip maddr show dev eth0`).
fn joined(s: &Scene, i: usize) -> String {
    s.lab
        .node(i)
        .run("ip", &["maddr", "show", "dev", "eth0"])
        .unwrap()
}

/// One VRID on each family, node 1 (priority 150) against node 2 (priority 100) on `low`,
/// both with the custom groups: node 2 must hear node 1 and stay backup for both.
fn custom_group_elects_one_master(tag: &str, high: Kind, low: Kind) {
    let mut s = Scene::new(tag, 2);
    let conf = |node: &str, priority: u8| {
        global_defs(node)
            + &instance("VI_4", 51, priority, Proto::V3Ipv4, 0, "")
            + &instance("VI_6", 52, priority, Proto::V3Ipv6, 0, "")
    };
    s.start(1, high, &conf("n1", 150));
    let timeout = Duration::from_secs(5);
    let (v4, v6) = (Proto::V3Ipv4.vip(0), Proto::V3Ipv6.vip(0));
    s.wait_vip(v4, &[1], timeout);
    s.wait_vip(v6, &[1], timeout);
    s.start(2, low, &conf("n2", 100));
    // Long enough for node 2 to give up on a master it cannot hear (master-down ≈ 0.34 s).
    s.hold_vip(v4, &[1], Duration::from_millis(1500));
    s.hold_vip(v6, &[1], Duration::from_millis(500));
    for i in [1, 2] {
        if s.kind(i).is_agent() {
            let groups = joined(&s, i);
            for group in ["224.0.0.19", "ff02::13"] {
                assert!(
                    groups.contains(group),
                    "node {i} has not joined {group}:\n{groups}"
                );
            }
        }
    }
    // And the custom groups are where the adverts go: nothing to the default ones.
    s.assert_clean_logs();
}

#[test]
fn custom_multicast_groups_socket_datapath_agent_pair() {
    custom_group_elects_one_master("mcastss", Kind::Agent, Kind::Agent);
}

#[test]
fn custom_multicast_groups_agent_backup_keepalived_master() {
    custom_group_elects_one_master("mcastks", Kind::Keepalived, Kind::Agent);
}

#[test]
fn custom_multicast_groups_xdp_agent_backup_keepalived_master() {
    custom_group_elects_one_master("mcastkx", Kind::Keepalived, Kind::AgentXdp);
}

/// On the XDP datapath (`--datapath xdp`: no fallback to sockets) the default groups are joined
/// while the agent runs, and left when it stops.
#[test]
fn the_xdp_datapath_joins_the_vrrp_groups_while_it_runs() {
    ha_tests::ha_agent_bin().expect("ha-agent binary");
    let lab = ha_tests::Lab::new("mcastx", 1).expect("lab");
    let joined = || {
        lab.node(1)
            .run("ip", &["maddr", "show", "dev", "eth0"])
            .unwrap()
    };
    let conf = common::global_defs("n1")
        + &instance("VI_4", 51, 150, Proto::V3Ipv4, 0, "")
        + &instance("VI_6", 52, 150, Proto::V3Ipv6, 0, "");
    let groups = ["224.0.0.18", "ff02::12"];
    let before = joined();
    for group in groups {
        assert!(!before.contains(group), "{group} joined already:\n{before}");
    }
    let mut agent = lab.ha_agent(1, &conf, &["--datapath", "xdp"]).unwrap();
    ha_tests::wait_for("the agent to be master", Duration::from_secs(5), || {
        lab.node(1).has_addr(Proto::V3Ipv4.vip(0))
    })
    .unwrap();
    let during = joined();
    for group in groups {
        assert!(during.contains(group), "{group} not joined:\n{during}");
    }
    agent.signal(libc::SIGTERM).unwrap();
    let status = agent.wait_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        agent.log()
    );
    let after = joined();
    for group in groups {
        assert!(!after.contains(group), "{group} still joined:\n{after}");
    }
}

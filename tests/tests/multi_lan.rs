//! One agent on four LANs (`eth0`…`eth3`, as the scale-1k bench runs it): the same VRID on
//! each interface is a router of its own, elected on its own LAN, and a cut on one LAN moves
//! only that LAN's VIP.

mod common;

use std::{net::IpAddr, process::Command, time::Duration};

use common::{Kind, Scene};

const VRID: u8 = 7;

/// The VIP of the instance on `eth<k>`.
fn vip(k: u8) -> IpAddr {
    format!("198.19.{VRID}.{}", k + 1).parse().unwrap()
}

/// VRID 7 on every interface; node 1 outranks node 2 on eth0 and eth1, node 2 on eth2 and eth3.
fn conf(node: u8) -> String {
    let mut c = common::global_defs(&format!("n{node}"));
    for k in 0..4u8 {
        let high = (k < 2) == (node == 1);
        c += &format!(
            "vrrp_instance VI_{k} {{\n    state BACKUP\n    interface eth{k}\n    \
             virtual_router_id {VRID}\n    version 3\n    priority {}\n    advert_int 0.05\n    \
             virtual_ipaddress {{\n        {}/32\n    }}\n}}\n",
            if high { 150 } else { 100 },
            vip(k)
        );
    }
    c
}

/// The nodes holding `vip` on `eth<k>`.
fn holders(s: &Scene, k: u8) -> Vec<usize> {
    s.lab
        .nodes
        .iter()
        .filter(|n| {
            let out = n
                .run("ip", &["-o", "addr", "show", "dev", &format!("eth{k}")])
                .expect("listing addresses");
            out.contains(&format!(" {}/32 ", vip(k)))
        })
        .map(|n| usize::from(n.index))
        .collect()
}

#[test]
fn the_same_vrid_on_four_lans_is_four_routers() {
    let mut s = Scene::new("mlan", 2);
    s.lab.add_lans(3).expect("three more LANs");
    s.start(1, Kind::AgentXdp, &conf(1));
    s.start(2, Kind::AgentXdp, &conf(2));
    let owners = |k: u8| if k < 2 { vec![1] } else { vec![2] };
    s.wait(
        "each LAN's VIP on its master",
        Duration::from_secs(10),
        |s| (0..4).all(|k| holders(s, k) == owners(k)),
    );
    // Well past Master_Down_Interval (3 × 50 ms + skew): no LAN's instance hears another's.
    s.hold(
        "each LAN's VIP on its master",
        Duration::from_millis(500),
        |s| (0..4).all(|k| holders(s, k) == owners(k)),
    );

    // Node 1 loses eth1's LAN only: node 2 takes that VIP, eth0's stays.
    let cut = Command::new("ip")
        .args(["-n", &s.lab.lan, "link", "set", "p1e1", "down"])
        .status()
        .expect("ip link set");
    assert!(cut.success(), "cutting node 1's eth1");
    s.wait("eth1's VIP on node 2", Duration::from_secs(5), |s| {
        holders(s, 1) == [2]
    });
    s.hold(
        "the other LANs' VIPs where they were",
        Duration::from_millis(500),
        |s| [0, 2, 3].iter().all(|&k| holders(s, k) == owners(k)),
    );
    // Node 1 starts first and is master of eth2 and eth3 until node 2 preempts it (node 2's
    // GARP may reach it before its advert); eth1's instance goes to FAULT with the cut.
    s.assert_clean_logs_except(&["address conflict", "interface eth1 down"]);
}

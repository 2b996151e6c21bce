//! A VRRP-only partition (adverts dropped, everything else flows) makes both nodes master; each
//! sends gratuitous ARPs, and the client's neighbour entry for the VIP follows the last one,
//! the lower-priority node. When the partition heals the higher-priority master hears a lower
//! priority and reasserts itself: as keepalived does (`vrrp_garp_lower_prio_repeat`), it must
//! send gratuitous ARPs then, or the client keeps sending to the node that stepped down until
//! its neighbour entry is resolved again (seconds, or never while it stays STALE unused). When
//! the winner's advert reaches the loser first, the loser advertises once before it steps down
//! (`higher_prio_send_advert`, on by default in ha-agent), so the winner reasserts all the same.

mod common;

use std::{net::IpAddr, time::Duration};

use common::{Kind, Scene, global_defs};

fn vip() -> IpAddr {
    "192.0.2.200".parse().unwrap()
}

/// A VRRPv3 instance at advert_int 0.1 with the VIP.
fn instance(priority: u8) -> String {
    ha_tests::v3_instance(priority, "0.1")
}

/// The MAC of the client's neighbour entry for the VIP (whatever its state), if it has one.
fn client_neighbour(s: &Scene) -> Option<String> {
    s.lab.client.neighbour_mac(vip()).unwrap()
}

/// Two masters: node 1 (priority 150, advert_int 0.1) and node 2 (priority 100, advert_int
/// `advert_int_2`) after a VRRP-only partition, the client's neighbour entry for the VIP on node
/// 2. Returns the scene, both MACs and how many times node 2 had stepped down before.
fn partitioned(tag: &str, kind: Kind, advert_int_2: &str) -> (Scene, String, String, usize) {
    let mut s = Scene::new(tag, 2);
    s.start(1, kind, &(global_defs("n1") + &instance(150)));
    s.start(
        2,
        kind,
        &(global_defs("n2") + &ha_tests::v3_instance(100, advert_int_2)),
    );
    let timeout = Duration::from_secs(5);
    s.wait_vip(vip(), &[1], timeout);
    // Node 2 must have heard node 1 before the partition: a backup that never did waits its own
    // Master_Down_Interval (30 s at advert_int 10), not the one it learns from node 1's adverts.
    let n1 = IpAddr::V4(s.lab.node(1).ipv4);
    s.wait("node 2 to hear node 1 as master", timeout, |s| {
        s.hears_master(2, n1)
    });
    let (mac1, mac2) = (s.lab.node(1).mac().unwrap(), s.lab.node(2).mac().unwrap());
    // The client resolves the VIP: node 1.
    s.lab
        .client
        .run("ping", &["-c", "1", "-W", "1", &vip().to_string()])
        .unwrap();
    assert_eq!(client_neighbour(&s).as_deref(), Some(mac1.as_str()));

    // (Node 2 may have been master for a moment at start: count from here.)
    let count = |s: &Scene, needle: &str| s.log(2).matches(needle).count();
    let (up, down) = (count(&s, "BACKUP -> MASTER"), count(&s, "MASTER -> BACKUP"));
    s.lab.block_vrrp(1, true).unwrap();
    s.lab.block_vrrp(2, true).unwrap();
    s.wait_log(2, "BACKUP -> MASTER", up + 1, timeout);
    // Node 2's gratuitous ARPs turn the client to it (two masters, by design of the test).
    s.wait(
        "the client's entry for the VIP to follow node 2",
        timeout,
        |s| client_neighbour(s).as_deref() == Some(mac2.as_str()),
    );
    (s, mac1, mac2, down)
}

fn healed_partition_sends_gratuitous_arp(tag: &str, kind: Kind) {
    let (s, mac1, _, down) = partitioned(tag, kind, "0.1");
    let timeout = Duration::from_secs(5);
    // The heal reaches node 1 first: node 2's adverts (priority 100) arrive while node 1's are
    // still dropped. Node 1, hearing a lower priority, reasserts with gratuitous ARPs at once
    // (the ARPs are not VRRP: they pass). Without them the client's entry keeps node 2's MAC.
    s.lab.block_vrrp(2, false).unwrap();
    let took = s.wait(
        "the client's entry for the VIP to point at node 1 again after the heal",
        Duration::from_secs(2),
        |s| client_neighbour(s).as_deref() == Some(mac1.as_str()),
    );
    s.wait_log(1, "reasserting over a lower priority", 1, timeout);
    // Then the other direction: node 2 hears node 1 and steps down; the client stays on node 1.
    s.lab.block_vrrp(1, false).unwrap();
    s.wait_log(2, "MASTER -> BACKUP", down + 1, timeout);
    s.hold(
        "the client's entry on node 1",
        Duration::from_millis(500),
        |s| client_neighbour(s).as_deref() == Some(mac1.as_str()),
    );
    s.hold_vip(vip(), &[1], Duration::from_millis(500));
    eprintln!("client back on node 1 {took:?} after the heal");
}

/// The other order: the winner's advert reaches the loser first. Node 2 advertises every 10 s,
/// and it sent its last periodic advert when it became master, under a second before the heal:
/// none of its periodic adverts can reach node 1 in this test, only node 1's (every 100 ms)
/// reach node 2. Node 2 steps down, and with `higher_prio_send_advert` (ha-agent's default) it
/// advertises its priority once first: node 1 hears a lower priority and reasserts itself with
/// gratuitous ARPs. Without that advert node 2 steps down silently and the client keeps node
/// 2's MAC until its neighbour entry is resolved again (2.5–7.7 s in the chaos runs).
fn healed_partition_winner_heard_first(tag: &str, kind: Kind) {
    let (s, mac1, _, down) = partitioned(tag, kind, "10");
    let timeout = Duration::from_secs(5);
    s.lab.block_vrrp(2, false).unwrap();
    s.lab.block_vrrp(1, false).unwrap();
    s.wait_log(2, "MASTER -> BACKUP", down + 1, timeout);
    let took = s.wait(
        "the client's entry for the VIP to point at node 1 again after the heal",
        Duration::from_secs(2),
        |s| client_neighbour(s).as_deref() == Some(mac1.as_str()),
    );
    s.wait_log(1, "reasserting over a lower priority", 1, timeout);
    s.hold(
        "the client's entry on node 1",
        Duration::from_millis(500),
        |s| client_neighbour(s).as_deref() == Some(mac1.as_str()),
    );
    s.hold_vip(vip(), &[1], Duration::from_millis(500));
    eprintln!("client back on node 1 {took:?} after the heal (winner heard first)");
}

#[test]
fn a_healed_partition_turns_the_client_back_socket_datapath() {
    healed_partition_sends_gratuitous_arp("healsock", Kind::Agent);
}

#[test]
fn a_healed_partition_turns_the_client_back_xdp_datapath() {
    healed_partition_sends_gratuitous_arp("healxdp", Kind::AgentXdp);
}

#[test]
fn a_healed_partition_heard_by_the_loser_first_turns_the_client_back_socket_datapath() {
    healed_partition_winner_heard_first("healwsock", Kind::Agent);
}

#[test]
fn a_healed_partition_heard_by_the_loser_first_turns_the_client_back_xdp_datapath() {
    healed_partition_winner_heard_first("healwxdp", Kind::AgentXdp);
}

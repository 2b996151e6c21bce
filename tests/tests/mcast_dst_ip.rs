//! `mcast_dst_ip`: an instance advertises to its own group, and hears its peers there, with
//! keepalived on the same LAN on both datapaths: the agent is master of one VRID and keepalived
//! its backup, keepalived is master of another and the agent its backup; the client sees the
//! agent's adverts go to the configured group and none to 224.0.0.18.

mod common;

use std::{net::IpAddr, time::Duration};

use common::{AGENT_READY, Kind, Proto, Scene, global_defs, instance};

/// The instances' group.
const GROUP: &str = "224.0.0.100";

fn run(kind: Kind, tag: &str) {
    let mut s = Scene::new(tag, 2);
    let extra = format!("    mcast_dst_ip {GROUP}\n");
    let conf = |name: &str, a: u8, b: u8| {
        format!(
            "{}{}{}",
            global_defs(name),
            instance("VI_A", 61, a, Proto::V3Ipv4, 0, &extra),
            instance("VI_B", 62, b, Proto::V3Ipv4, 1, &extra),
        )
    };
    let (vip_a, vip_b) = (Proto::V3Ipv4.vip(0), Proto::V3Ipv4.vip(1));
    let tcpdump = s
        .lab
        .client
        .spawn(
            "tcpdump-client",
            &s.lab.dir,
            "tcpdump",
            &["-l", "-n", "-i", "eth0", "ip proto 112"],
        )
        .unwrap_or_else(|e| s.fail(&format!("tcpdump in the client: {e:#}")));
    // The agent on node 1: master of VRID 61, backup of 62; keepalived on node 2 the reverse.
    s.start(1, kind, &conf("n1", 150, 100));
    s.start(2, Kind::Keepalived, &conf("n2", 100, 150));
    s.wait_vip(vip_a, &[1], AGENT_READY);
    s.wait_vip(vip_b, &[2], AGENT_READY);
    let node2 = IpAddr::V4(s.lab.node(2).ipv4);
    s.wait(
        "the agent to hear keepalived as VRID 62's master",
        Duration::from_secs(5),
        |s| {
            s.report(1)
                .instances
                .iter()
                .any(|i| i.vrid == 62 && i.master.as_ref().is_some_and(|m| m.address == node2))
        },
    );
    // Each backup keeps hearing its master on the group: nobody takes over.
    s.hold_vip(vip_a, &[1], Proto::V3Ipv4.master_down(100));
    s.hold_vip(vip_b, &[2], Duration::ZERO);
    let log = tcpdump.log();
    assert!(
        log.contains(&format!("192.0.2.1 > {GROUP}: VRRPv3")),
        "no advert of the agent to {GROUP}:\n{log}"
    );
    assert!(
        !log.contains("192.0.2.1 > 224.0.0.18"),
        "the agent advertised to the default group:\n{log}"
    );
    s.assert_clean_logs();
}

#[test]
fn mcast_dst_ip_with_keepalived_xdp() {
    run(Kind::AgentXdp, "mdstxdp");
}

#[test]
fn mcast_dst_ip_with_keepalived_socket() {
    run(Kind::Agent, "mdstsock");
}

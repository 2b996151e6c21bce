//! Accept mode (RFC 5798 §6.1, §6.4.3) enforced by `vip_fence`: a Master that is not the
//! address owner and runs with accept mode off (`no_accept`, or strict mode) takes no IP
//! addressed to its VIPs but Neighbor Discovery, while ARP/ND for them and the adverts go on, as
//! keepalived's nftables rules; with accept mode on, or as the owner (priority 255), the VIP
//! takes connections, and a backup is still a client of the VIP.

mod common;

use std::{net::IpAddr, time::Duration};

use common::{AGENT_READY, Kind, Proto, Scene, global_defs, instance};
use ha_tests::{Daemon, Node};

/// The port of the test's TCP service on node 1.
const PORT: &str = "8080";

/// A TCP service on every address of node `i` (IPv4 and IPv6) that answers "ok" and closes.
fn listen(s: &Scene, i: usize) -> Daemon {
    s.lab
        .node(i)
        .spawn(
            "listener",
            &s.lab.dir,
            "socat",
            &[
                &format!("TCP6-LISTEN:{PORT},ipv6only=0,fork,reuseaddr"),
                "SYSTEM:echo ok",
            ],
        )
        .unwrap_or_else(|e| s.fail(&format!("starting socat on node {i}: {e:#}")))
}

/// Whether `from` gets the service's answer from `addr` (connect timeout 1 s: a dropped SYN
/// is a failure, not a hang).
fn connects(from: &Node, addr: IpAddr) -> bool {
    let target = match addr {
        IpAddr::V4(a) => format!("TCP4:{a}:{PORT},connect-timeout=1"),
        IpAddr::V6(a) => format!("TCP6:[{a}]:{PORT},connect-timeout=1"),
    };
    from.run("socat", &["-T", "2", "-u", &target, "STDOUT"])
        .is_ok_and(|out| out.trim() == "ok")
}

/// Node `i`'s packets dropped by `vip_fence` on eth0; fails unless its datapath is XDP.
fn fence_drops(s: &Scene, i: usize) -> u64 {
    let r = s.report(i);
    if r.agent.datapath != "xdp" {
        s.fail(&format!(
            "node {i} runs the {} datapath: accept mode is enforced by the TC fence (XDP)",
            r.agent.datapath
        ));
    }
    r.fence_drops.get("eth0").copied().unwrap_or(0)
}

/// Waits until node 1's service answers on its own address: the listener is up and the path
/// works, so a failure to the VIP is the VIP's.
fn wait_listening(s: &Scene, from: &Node, addr: IpAddr) {
    s.wait(
        &format!("the service on node 1 to answer on {addr}"),
        Duration::from_secs(10),
        |_| connects(from, addr),
    );
}

#[test]
fn accept_off_drops_connections_to_the_vip_but_not_arp_nd_or_adverts() {
    let mut s = Scene::new("noaccept", 2);
    let conf = |priority: u8| {
        format!(
            "{}{}{}",
            global_defs(&format!("n{priority}")),
            // Strict mode: accept off by default for a non-owner (vrrp_complete_instance).
            instance(
                "VI_4",
                51,
                priority,
                Proto::V3Ipv4,
                0,
                "    strict_mode on\n"
            ),
            instance("VI_6", 52, priority, Proto::V3Ipv6, 0, "    no_accept\n"),
        )
    };
    let (vip4, vip6) = (Proto::V3Ipv4.vip(0), Proto::V3Ipv6.vip(0));
    s.start(1, Kind::AgentXdp, &conf(150));
    s.start(2, Kind::AgentXdp, &conf(100));
    s.wait_vip(vip4, &[1], AGENT_READY);
    s.wait_vip(vip6, &[1], AGENT_READY);
    let _listener = listen(&s, 1);
    let (client, node1) = (s.lab.client.clone(), s.lab.node(1).clone());
    wait_listening(&s, &client, IpAddr::V4(node1.ipv4));
    wait_listening(&s, &client, IpAddr::V6(node1.ipv6));
    let drops_before = fence_drops(&s, 1);

    for vip in [vip4, vip6] {
        assert!(
            !connects(&client, vip),
            "accept mode off: node 1 (priority 150, not the owner) took a connection to {vip}"
        );
        // ARP / ND for the VIP were answered (RFC 5798 §6.4.3), by node 1's MAC.
        let mac = client.neighbour_mac(vip).unwrap();
        assert_eq!(
            mac.as_deref(),
            Some(node1.mac().unwrap().as_str()),
            "the client resolved {vip} to node 1 (ARP/ND pass the accept-mode filter)"
        );
    }
    let drops = fence_drops(&s, 1) - drops_before;
    assert!(drops > 0, "vip_fence dropped nothing on node 1");
    // The adverts went on: node 2 still hears node 1 and holds no VIP.
    assert!(
        s.hears_master(2, IpAddr::V4(node1.ipv4)),
        "node 2 no longer hears node 1's adverts"
    );
    s.hold_vip(vip4, &[1], Proto::V3Ipv4.master_down(100));
    s.hold_vip(vip6, &[1], Proto::V3Ipv6.master_down(100));
    s.assert_clean_logs();
}

#[test]
fn accept_on_and_the_owner_take_connections_and_a_backup_reaches_the_vip() {
    let mut s = Scene::new("accept", 2);
    // VI_1: accept mode on. VI_O: node 1 is the address owner, whose `no_accept` keepalived
    // ignores (vrrp_handle_accept_mode); node 2 backs it up.
    let conf = |priority: u8, owner: u8| {
        format!(
            "{}{}{}",
            global_defs(&format!("n{priority}")),
            instance("VI_1", 51, priority, Proto::V3Ipv4, 0, "    accept\n"),
            instance("VI_O", 53, owner, Proto::V3Ipv4, 1, "    no_accept\n"),
        )
    };
    let (vip, owned) = (Proto::V3Ipv4.vip(0), Proto::V3Ipv4.vip(1));
    s.start(1, Kind::AgentXdp, &conf(150, 255));
    s.start(2, Kind::AgentXdp, &conf(100, 100));
    s.wait_vip(vip, &[1], AGENT_READY);
    s.wait_vip(owned, &[1], AGENT_READY);
    let _listener = listen(&s, 1);
    let (client, node1, node2) = (
        s.lab.client.clone(),
        s.lab.node(1).clone(),
        s.lab.node(2).clone(),
    );
    wait_listening(&s, &client, IpAddr::V4(node1.ipv4));

    assert!(connects(&client, vip), "accept mode on: {vip} refused");
    assert!(
        connects(&client, owned),
        "the owner (priority 255) accepts whatever no_accept says: {owned} refused"
    );
    // Node 2 is backup for both, its fence holding both VIPs: it is still their client.
    assert!(
        connects(&node2, vip) && connects(&node2, owned),
        "the backup could not reach the VIPs as a client"
    );
    assert_eq!(
        s.report(2).agent.datapath,
        "xdp",
        "node 2 runs the TC fence"
    );

    // A reload that turns accept mode off on node 1 (VI_1 restarts as master; the owner's
    // VI_O is unchanged) makes the fence drop connections to its VIP, and only to it.
    let off = conf(150, 255).replace("    accept\n", "    no_accept\n");
    s.lab.write_file("ha-agent-n1.conf", &off).unwrap();
    let done = s.log(1).matches("reload done").count();
    s.daemon(1).signal(libc::SIGHUP).unwrap();
    s.wait("node 1's reload", Duration::from_secs(5), |s| {
        s.log(1).matches("reload done").count() > done
    });
    s.wait_vip(vip, &[1], AGENT_READY);
    s.wait(
        "node 1 to refuse connections to the VIP after the reload",
        Duration::from_secs(10),
        |_| !connects(&client, vip),
    );
    assert!(
        connects(&client, owned),
        "the owner's VIP stopped taking connections"
    );
    s.assert_clean_logs_except(&["state BACKUP with priority 255"]);
}

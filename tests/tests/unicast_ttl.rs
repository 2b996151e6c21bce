//! `unicast_ttl` on the wire, and per-peer `min_ttl` / `max_ttl` enforced on receive (keepalived's
//! `check_ttl_hl`) by both datapaths: an advert from a peer outside its range is dropped and
//! counted as `ttl_out_of_range`, and the instance behaves as if it heard nothing.

mod common;

use std::time::Duration;

use common::{AGENT_READY, Kind, Proto, Scene, global_defs, instance};

/// Node 1 sends its unicast adverts with TTL 64. Node 2 wants node 1's adverts for VRID 61 with
/// a TTL of at least 100 (so it hears none and is master too), and for VRID 62 with exactly 64
/// (so it stays backup).
fn run(kind: Kind, tag: &str) {
    let mut s = Scene::new(tag, 2);
    let unicast = |node: u8, range: &str| {
        let peer = if node == 1 { 2 } else { 1 };
        format!(
            "    unicast_src_ip 192.0.2.{node}\n    unicast_ttl 64\n    unicast_peer {{\n        \
             192.0.2.{peer}{range}\n    }}\n"
        )
    };
    let node1 = format!(
        "{}{}{}",
        global_defs("n1"),
        instance("VI_A", 61, 150, Proto::V3Unicast, 0, &unicast(1, "")),
        instance("VI_B", 62, 150, Proto::V3Unicast, 1, &unicast(1, "")),
    );
    let node2 = format!(
        "{}{}{}",
        global_defs("n2"),
        instance(
            "VI_A",
            61,
            100,
            Proto::V3Unicast,
            0,
            &unicast(2, " min_ttl 100 max_ttl 255"),
        ),
        instance(
            "VI_B",
            62,
            100,
            Proto::V3Unicast,
            1,
            &unicast(2, " min_ttl 64 max_ttl 64"),
        ),
    );
    let (vip_a, vip_b) = (Proto::V3Unicast.vip(0), Proto::V3Unicast.vip(1));
    // Node 1's adverts as they leave it, with their IP header (`-v`): TTL 64. (Captured on
    // the way out: on the way in, XDP consumes adverts before a packet socket sees them.)
    let tcpdump = s
        .lab
        .node(1)
        .spawn(
            "tcpdump-n1",
            &s.lab.dir,
            "tcpdump",
            &[
                "-l",
                "-n",
                "-v",
                "-i",
                "eth0",
                "ip proto 112 and src 192.0.2.1",
            ],
        )
        .unwrap_or_else(|e| s.fail(&format!("tcpdump in node 1: {e:#}")));
    s.start(1, kind, &node1);
    s.start(2, kind, &node2);
    s.wait_vip(vip_b, &[1], AGENT_READY);
    // VRID 61: node 2 drops every advert of node 1 (TTL 64 < 100) and takes over too.
    s.wait_vip(vip_a, &[1, 2], AGENT_READY);
    let rejected = |s: &Scene| {
        s.report(2)
            .instances
            .iter()
            .find(|i| i.vrid == 61)
            .and_then(|i| i.adverts.rejected.get("ttl_out_of_range").copied())
            .unwrap_or(0)
    };
    s.wait(
        "node 2 to count node 1's adverts as ttl_out_of_range",
        Duration::from_secs(5),
        |s| rejected(s) >= 3,
    );
    let b = s.report(2);
    let b = b.instances.iter().find(|i| i.vrid == 62).unwrap();
    assert!(
        b.adverts.rejected.is_empty() && b.adverts.received > 0,
        "VRID 62 (range 64..=64) takes node 1's adverts: {:?}",
        b.adverts
    );
    s.wait(
        "tcpdump to show node 1's adverts with TTL 64",
        Duration::from_secs(5),
        |_| tcpdump.log().contains("ttl 64"),
    );
    assert!(
        !tcpdump.log().contains("ttl 255"),
        "an advert to a unicast peer left with TTL 255 despite unicast_ttl 64:\n{}",
        tcpdump.log()
    );
    // Node 2 on VRID 61 is master beside node 1 by design: both claim its VIP.
    s.assert_clean_logs_except(&["ttl_out_of_range", "address conflict"]);
}

#[test]
fn peer_ttl_range_and_unicast_ttl_xdp() {
    run(Kind::AgentXdp, "ttlxdp");
}

#[test]
fn peer_ttl_range_and_unicast_ttl_socket() {
    run(Kind::Agent, "ttlsock");
}

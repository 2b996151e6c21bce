//! ha-agent and keepalived 2.2.7 as peers in the same virtual router, each as master and as
//! backup: VRRPv2 with PASS authentication, VRRPv3 over IPv4 and over IPv6. Then the layouts
//! keepalived users run: two instances crossed between two nodes, a sync group, a track_script,
//! a graceful stop.
//!
//! "Sees the other's adverts" is shown by VIP placement held for longer than a Master_Down
//! Interval: a backup that did not accept the master's adverts would take the VIP when its
//! Master_Down_Timer fires, and a `nopreempt` backup that did not accept a lower-priority
//! master's adverts would do the same.

mod common;

use std::time::{Duration, Instant};

use common::{Kind, Proto, Scene, global_defs, instance, partition, unicast_lines};

const HIGH: u8 = 200;
const LOW: u8 = 100;

/// Node `node`'s configuration: one instance, VRID 51, the protocol's first VIP.
fn conf(proto: Proto, node: u8, priority: u8, extra: &str) -> String {
    let extra = unicast_lines(proto, node, 2) + extra;
    global_defs("interop") + &instance("VI_1", 51, priority, proto, 0, &extra)
}

/// Log lines that mark a transition, per daemon.
fn entered(kind: Kind, to: &str) -> &'static str {
    match (kind.is_agent(), to) {
        (true, "FAULT") => "-> FAULT",
        (true, "BACKUP") => "FAULT -> BACKUP",
        (false, "FAULT") => "Entering FAULT STATE",
        (false, "BACKUP") => "Entering BACKUP STATE",
        _ => unreachable!("{to}"),
    }
}

/// Node 1 runs `high` at priority 200, node 2 runs `low` at priority 100, same VRID and VIP.
///
/// 1. Both start: node 1 is master, node 2 stays backup past its Master_Down_Interval (it
///    accepts node 1's adverts).
/// 2. Node 1's link is cut: node 2 takes over. Restored: node 1 preempts back (node 2 steps
///    down on node 1's higher-priority advert).
/// 3. Node 1 stops (SIGTERM): node 2 takes over sooner than a Master_Down_Interval (the
///    priority 0 advert). Node 1 restarts with `nopreempt`: it stays backup behind the
///    lower-priority master (it accepts node 2's adverts), also after its own link is cut and
///    restored.
fn interop(tag: &str, proto: Proto, high: Kind, low: Kind) {
    let mut s = Scene::new(tag, 2);
    let vip = proto.vip(0);
    let ai = proto.advert_int();
    let (md_high, md_low) = (proto.master_down(HIGH), proto.master_down(LOW));
    // Generous: a loaded 2-core CI machine, link detection, netlink.
    let timeout = 10 * md_low + Duration::from_secs(2);

    s.start(1, high, &conf(proto, 1, HIGH, ""));
    s.start(2, low, &conf(proto, 2, LOW, ""));
    let started = Instant::now();
    s.wait_vip(vip, &[1], timeout);
    let until = started + md_low * 3 / 2;
    s.hold_vip(
        vip,
        &[1],
        until.saturating_duration_since(Instant::now()).max(3 * ai),
    );

    s.lab.cut(1).unwrap();
    s.wait_vip(vip, &[2], timeout);
    s.lab.restore(1).unwrap();
    s.wait_vip(vip, &[1], timeout);
    s.hold_vip(vip, &[1], 3 * ai);

    s.terminate(1);
    let handover = s.wait_vip(vip, &[2], timeout);
    s.reap(1, Duration::from_secs(5));
    if handover >= md_low.max(Duration::from_secs(1)) {
        s.fail(&format!(
            "{} took over {handover:?} after {} was stopped: not on the priority 0 advert \
             (Master_Down_Interval {md_low:?})",
            low.name(),
            high.name()
        ));
    }

    s.start(1, high, &conf(proto, 1, HIGH, "    nopreempt\n"));
    let past_master_down = (md_high + 2 * ai).max(Duration::from_secs(1));
    s.hold_vip(vip, &[2], past_master_down);
    s.lab.cut(1).unwrap();
    s.wait_log(1, entered(high, "FAULT"), 1, timeout);
    s.lab.restore(1).unwrap();
    // keepalived logs "Entering BACKUP STATE" at start too.
    let backups = if high.is_agent() { 1 } else { 2 };
    s.wait_log(1, entered(high, "BACKUP"), backups, timeout);
    s.hold_vip(vip, &[2], past_master_down);
    // A preempting master that the agent does not hear at once (unicast adverts wait for ARP
    // after a link restore) makes two masters for a moment: the agent reports the other's
    // gratuitous ARPs as an address conflict, rightly. This test is about the wire formats.
    s.assert_clean_logs_except(&["address conflict"]);
}

#[test]
fn v2_pass_agent_master_keepalived_backup() {
    interop("v2ak", Proto::V2Pass, Kind::Agent, Kind::Keepalived);
}

#[test]
fn v2_pass_keepalived_master_agent_backup() {
    interop("v2ka", Proto::V2Pass, Kind::Keepalived, Kind::Agent);
}

/// With the default datapath: XDP `vrrp_rx` and the TC fence are attached.
#[test]
fn v3_ipv4_agent_xdp_master_keepalived_backup() {
    interop("v34ak", Proto::V3Ipv4, Kind::AgentXdp, Kind::Keepalived);
}

/// With the default datapath: XDP `vrrp_rx` and the TC fence are attached.
#[test]
fn v3_ipv4_keepalived_master_agent_xdp_backup() {
    interop("v34ka", Proto::V3Ipv4, Kind::Keepalived, Kind::AgentXdp);
}

#[test]
fn v3_ipv6_agent_master_keepalived_backup() {
    interop("v36ak", Proto::V3Ipv6, Kind::Agent, Kind::Keepalived);
}

#[test]
fn v3_ipv6_keepalived_master_agent_backup() {
    interop("v36ka", Proto::V3Ipv6, Kind::Keepalived, Kind::Agent);
}

#[test]
fn v3_unicast_agent_master_keepalived_backup() {
    interop("v3uak", Proto::V3Unicast, Kind::Agent, Kind::Keepalived);
}

#[test]
fn v3_unicast_keepalived_master_agent_backup() {
    interop("v3uka", Proto::V3Unicast, Kind::Keepalived, Kind::Agent);
}

/// Two nodes of equal priority split by the LAN (bridge ports isolated, no carrier change) are
/// both master; when the LAN joins again the one with the lower primary address steps down
/// (RFC 5798 §6.4.3), whichever daemon it runs: node 2 for IPv4 (192.0.2.2 > .1), the node
/// with the greater link-local address for IPv6.
fn split_brain_heals(tag: &str, proto: Proto, n1: Kind, n2: Kind) {
    let vip = proto.vip(0);
    let mut s = Scene::new(tag, 2);
    partition(&s.lab, true);
    s.start(1, n1, &conf(proto, 1, LOW, ""));
    s.start(2, n2, &conf(proto, 2, LOW, ""));
    s.wait_vip(vip, &[1, 2], v3_timeout());
    let winner = match proto {
        Proto::V3Ipv6 => {
            let link_local = |i: usize| {
                s.lab
                    .node(i)
                    .addrs()
                    .unwrap()
                    .into_iter()
                    .find(|a| matches!(a, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local()))
                    .expect("a link-local address")
            };
            if link_local(2) > link_local(1) { 2 } else { 1 }
        }
        _ => 2,
    };
    partition(&s.lab, false);
    s.wait_vip(vip, &[winner], v3_timeout());
    s.hold_vip(vip, &[winner], Duration::from_secs(1));
    // Two masters answered for the VIP while VRRP was cut: an agent that hears the other's
    // gratuitous ARP reports the conflict, which is right (and all it does about it).
    s.assert_clean_logs_except(&["address conflict: VIP"]);
}

#[test]
fn split_brain_heals_to_higher_address_agent_n1_keepalived_n2() {
    split_brain_heals("sbak", Proto::V3Ipv4, Kind::Agent, Kind::Keepalived);
}

#[test]
fn split_brain_heals_to_higher_address_keepalived_n1_agent_n2() {
    split_brain_heals("sbka", Proto::V3Ipv4, Kind::Keepalived, Kind::Agent);
}

#[test]
fn split_brain_heals_to_higher_link_local_ipv6() {
    split_brain_heals("sb6", Proto::V3Ipv6, Kind::Agent, Kind::Keepalived);
}

/// A VRRPv3 backup configured with advert_int 1 behind a master advertising every 0.1 s learns
/// Master_Adver_Interval from the adverts (RFC 5798 §6.4.2): when the master is cut off it takes
/// over after about 3 × 0.1 s, not 3 × 1 s.
fn learns_master_adver_interval(tag: &str, master: Kind, backup: Kind) {
    let proto = Proto::V3Ipv4;
    let vip = proto.vip(0);
    let mut s = Scene::new(tag, 2);
    s.start(1, master, &conf(proto, 1, HIGH, ""));
    let slow = conf(proto, 2, LOW, "").replace("advert_int 0.1", "advert_int 1");
    s.start(2, backup, &slow);
    s.wait_vip(vip, &[1], v3_timeout());
    // The backup's own Master_Down_Interval is 3.6 s: past it, it still holds back.
    s.hold_vip(vip, &[1], Duration::from_secs(4));
    s.lab.cut(1).unwrap();
    let takeover = s.wait_vip(vip, &[2], Duration::from_secs(10));
    if takeover >= Duration::from_millis(1500) {
        s.fail(&format!(
            "{} took over {takeover:?} after the master was cut off: it did not learn the \
             master's advert interval (0.1 s; learned Master_Down_Interval ≈ 0.36 s, own 3.6 s)",
            backup.name()
        ));
    }
    // keepalived says so, once per change of interval.
    s.assert_clean_logs_except(&["advertisement interval mismatch"]);
}

#[test]
fn v3_agent_backup_learns_keepalived_master_interval() {
    learns_master_adver_interval("learnka", Kind::Keepalived, Kind::Agent);
}

#[test]
fn v3_keepalived_backup_learns_agent_master_interval() {
    learns_master_adver_interval("learnak", Kind::Agent, Kind::Keepalived);
}

/// A generous bound for a v3 (advert_int 0.1) takeover: ten Master_Down_Intervals.
fn v3_timeout() -> Duration {
    10 * Proto::V3Ipv4.master_down(LOW)
}

/// keepalived's "dual master" layout: two instances crossed between two nodes, each node master
/// of one VIP and backup of the other. Each node takes the other's VIP when the other is cut
/// off, and gives it back (preempt) when it returns.
#[test]
fn dual_master_crossed_instances() {
    let proto = Proto::V3Ipv4;
    let (a, b) = (proto.vip(0), proto.vip(1));
    let conf = |prio_a: u8, prio_b: u8| {
        global_defs("dual")
            + &instance("VI_A", 51, prio_a, proto, 0, "")
            + &instance("VI_B", 52, prio_b, proto, 1, "")
    };
    let mut s = Scene::new("dual", 2);
    s.start(1, Kind::Agent, &conf(HIGH, LOW));
    s.start(2, Kind::Keepalived, &conf(LOW, HIGH));
    s.wait_vip(a, &[1], v3_timeout());
    s.wait_vip(b, &[2], v3_timeout());
    s.hold("each node keeps its own VIP", Duration::from_secs(1), |s| {
        s.holders(a) == [1] && s.holders(b) == [2]
    });
    for (cut, other) in [(1, 2), (2, 1)] {
        s.lab.cut(cut).unwrap();
        s.wait_vip(a, &[other], v3_timeout());
        s.wait_vip(b, &[other], v3_timeout());
        s.lab.restore(cut).unwrap();
        s.wait_vip(a, &[1], v3_timeout());
        s.wait_vip(b, &[2], v3_timeout());
    }
    s.hold("each node keeps its own VIP", Duration::from_secs(1), |s| {
        s.holders(a) == [1] && s.holders(b) == [2]
    });
    s.assert_clean_logs();
}

/// A `vrrp_sync_group` of two instances on node 1 (`high`), one of which tracks a second
/// interface; node 2 (`low`) runs the same group as backup. When the tracked interface loses
/// carrier, the tracking instance goes to FAULT and the group takes the other one with it: both
/// VIPs move to node 2, although the other instance's own link is fine. When it comes back up
/// both return.
fn sync_group(tag: &str, high: Kind, low: Kind) {
    let proto = Proto::V3Ipv4;
    let (a, b) = (proto.vip(10), proto.vip(11));
    let group = "vrrp_sync_group G {\n    group {\n        VI_A\n        VI_B\n    }\n}\n";
    let conf = |prio: u8, track: &str| {
        global_defs("sync")
            + group
            + &instance("VI_A", 61, prio, proto, 10, "")
            + &instance("VI_B", 62, prio, proto, 11, track)
    };
    let mut s = Scene::new(tag, 2);
    let n1 = s.lab.node(1).clone();
    // A second link inside node 1: eth1 loses carrier when its peer eth1p goes down.
    n1.sh(
        "ip link add eth1 type veth peer name eth1p && ip link set eth1p up && ip link set eth1 up",
    )
    .unwrap();
    s.start(
        1,
        high,
        &conf(HIGH, "    track_interface {\n        eth1\n    }\n"),
    );
    s.start(2, low, &conf(LOW, ""));
    s.wait_vip(a, &[1], v3_timeout());
    s.wait_vip(b, &[1], v3_timeout());
    s.hold_vip(a, &[1], Duration::from_millis(500));

    n1.sh("ip link set eth1p down").unwrap();
    s.wait("both VIPs on node 2", v3_timeout(), |s| {
        s.holders(a) == [2] && s.holders(b) == [2]
    });
    s.hold(
        "both VIPs on node 2 while eth1 is down",
        Duration::from_secs(1),
        |s| s.holders(a) == [2] && s.holders(b) == [2],
    );
    n1.sh("ip link set eth1p up").unwrap();
    s.wait("both VIPs back on node 1", v3_timeout(), |s| {
        s.holders(a) == [1] && s.holders(b) == [1]
    });
    s.hold("both VIPs on node 1", Duration::from_millis(500), |s| {
        s.holders(a) == [1] && s.holders(b) == [1]
    });
    s.assert_clean_logs();
}

#[test]
fn sync_group_agent_master_moves_together() {
    sync_group("synca", Kind::Agent, Kind::Keepalived);
}

#[test]
fn sync_group_keepalived_master_agent_backup_follows() {
    sync_group("synck", Kind::Keepalived, Kind::Agent);
}

/// `track_script` on node 1 (`tracker`, priority 150) against node 2 (`peer`, priority 100),
/// in two instances: VI_W's script has weight -60 (150 → 90, below the peer), VI_F's has weight
/// 0 (failure is FAULT). The scripts test for files the test creates and deletes: deleting one
/// moves that instance's VIP to node 2, creating it again brings it back.
fn track_script(tag: &str, tracker: Kind, peer: Kind) {
    let proto = Proto::V3Ipv4;
    let (w, f) = (proto.vip(20), proto.vip(21));
    let mut s = Scene::new(tag, 2);
    let flag_w = s.lab.dir.join("up-w");
    let flag_f = s.lab.dir.join("up-f");
    std::fs::write(&flag_w, "").unwrap();
    std::fs::write(&flag_f, "").unwrap();
    let script = |name: &str, flag: &std::path::Path| {
        format!(
            "vrrp_script {name} {{\n    script \"/usr/bin/test -e {}\"\n    interval 1\n    \
             fall 1\n    rise 1\n}}\n",
            flag.display()
        )
    };
    let tracker_conf = global_defs("track")
        + &script("chk_w", &flag_w)
        + &script("chk_f", &flag_f)
        + &instance(
            "VI_W",
            71,
            150,
            proto,
            20,
            "    track_script {\n        chk_w weight -60\n    }\n",
        )
        + &instance(
            "VI_F",
            72,
            150,
            proto,
            21,
            "    track_script {\n        chk_f weight 0\n    }\n",
        );
    let peer_conf = global_defs("track")
        + &instance("VI_W", 71, LOW, proto, 20, "")
        + &instance("VI_F", 72, LOW, proto, 21, "");
    s.start(1, tracker, &tracker_conf);
    s.start(2, peer, &peer_conf);
    s.wait_vip(w, &[1], v3_timeout());
    s.wait_vip(f, &[1], v3_timeout());
    // Generous: a script interval (keepalived 2.2.7 takes whole seconds only), the check
    // itself, then an election.
    let timeout = v3_timeout() + Duration::from_secs(3);

    // Weight -60: node 1 advertises 90, node 2 (100) preempts it.
    std::fs::remove_file(&flag_w).unwrap();
    s.wait_vip(w, &[2], timeout);
    s.hold(
        "VI_W on node 2 (node 1 at 90 does not preempt 100), VI_F on node 1",
        Duration::from_millis(800),
        |s| s.holders(w) == [2] && s.holders(f) == [1],
    );
    std::fs::write(&flag_w, "").unwrap();
    s.wait_vip(w, &[1], timeout);

    // Weight 0: FAULT, priority 0 advert, node 2 takes over.
    std::fs::remove_file(&flag_f).unwrap();
    s.wait_vip(f, &[2], timeout);
    let fault = if tracker.is_agent() {
        "MASTER -> FAULT"
    } else {
        "(VI_F) Entering FAULT STATE"
    };
    s.wait_log(1, fault, 1, timeout);
    s.hold(
        "VI_F on node 2 while node 1 is in FAULT, VI_W on node 1",
        Duration::from_millis(800),
        |s| s.holders(f) == [2] && s.holders(w) == [1],
    );
    std::fs::write(&flag_f, "").unwrap();
    s.wait_vip(f, &[1], timeout);
    s.hold_vip(w, &[1], Duration::from_millis(300));
    s.assert_clean_logs();
}

#[test]
fn track_script_agent_tracks_keepalived_peer() {
    track_script("tracka", Kind::Agent, Kind::Keepalived);
}

#[test]
fn track_script_keepalived_tracks_agent_peer() {
    track_script("trackk", Kind::Keepalived, Kind::Agent);
}

/// SIGTERM on the master (`master`, node 1) with a client pinging the VIP every millisecond:
/// the master resigns with a priority 0 advert and the backup (`backup`, node 2) takes over
/// after its skew time (61 ms at advert_int 0.1 and priority 100), and its gratuitous ARP or
/// unsolicited NA moves the client's neighbour entry at once, far sooner than its
/// Master_Down_Interval. The client's outage must stay under 1 s.
fn graceful_stop(tag: &str, proto: Proto, master: Kind, backup: Kind) {
    let vip = proto.vip(0);
    let mut s = Scene::new(tag, 2);
    s.start(1, master, &conf(proto, 1, HIGH, ""));
    s.start(2, backup, &conf(proto, 2, LOW, ""));
    s.wait_vip(vip, &[1], v3_timeout());
    let prober = s.lab.prober(vip).unwrap();
    common::wait_for_replies(&s, vip, common::epoch_now(), Duration::from_secs(3));

    s.terminate(1);
    let stopped = common::epoch_now();
    let takeover = s.wait_vip(vip, &[2], v3_timeout());
    if master.is_agent() {
        // It stays (XDP/TC attached, pins kept) until the new master advertises.
        s.wait_log(
            1,
            &format!("(priority {LOW}) is master"),
            1,
            Duration::from_secs(2),
        );
    }
    if backup.is_agent() {
        s.wait_log(
            2,
            "BACKUP -> MASTER (skew time expired after the master resigned (priority 0)",
            1,
            Duration::from_secs(2),
        );
    }
    s.reap(1, Duration::from_secs(5));
    common::wait_for_replies(&s, vip, common::epoch_now(), Duration::from_secs(3));
    let report = prober.stop().unwrap();
    let outage = report.longest_gap();
    println!(
        "graceful stop, {proto:?}, {} master -> {} backup: VIP moved {takeover:?} after SIGTERM, client outage {outage:?}",
        master.name(),
        backup.name()
    );
    if report.replies_after(stopped) == 0 || outage >= Duration::from_secs(1) {
        s.fail(&format!(
            "client outage {outage:?} on SIGTERM of the master (VIP moved after {takeover:?}); \
             want < 1 s"
        ));
    }
    s.assert_clean_logs();
}

#[test]
fn graceful_stop_agent_master_hands_over_to_keepalived() {
    graceful_stop("stopa", Proto::V3Ipv4, Kind::Agent, Kind::Keepalived);
}

/// The client's neighbour cache follows keepalived's unsolicited NA.
#[test]
fn graceful_stop_ipv6_agent_master_hands_over_to_keepalived() {
    graceful_stop("stopa6", Proto::V3Ipv6, Kind::Agent, Kind::Keepalived);
}

/// The client's neighbour cache follows ha-agent's unsolicited NA.
#[test]
fn graceful_stop_ipv6_keepalived_master_hands_over_to_agent() {
    graceful_stop("stopk6", Proto::V3Ipv6, Kind::Keepalived, Kind::Agent);
}

#[test]
fn graceful_stop_keepalived_master_hands_over_to_agent() {
    graceful_stop("stopk", Proto::V3Ipv4, Kind::Keepalived, Kind::Agent);
}

/// The notify script sees what keepalived 2.2.7 gives it (`notify`: TYPE NAME STATE PRIORITY),
/// for the same events in the same order, whichever daemon runs on node 1: start (BACKUP, then
/// MASTER), link cut (FAULT), restore (BACKUP, then MASTER: preempt), SIGTERM (STOP).
#[test]
fn notify_script_arguments_match_keepalived() {
    fn run(tag: &str, kind: Kind) -> Vec<String> {
        let proto = Proto::V3Ipv4;
        let vip = proto.vip(0);
        let mut s = Scene::new(tag, 2);
        let out = s.lab.dir.join("notify.out");
        let script = s
            .lab
            .write_file(
                "notify.sh",
                &format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
            )
            .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let extra = format!("    notify {}\n", script.display());
        s.start(1, kind, &conf(proto, 1, HIGH, &extra));
        s.start(2, Kind::Keepalived, &conf(proto, 2, LOW, ""));
        let lines = || -> Vec<String> {
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        };
        let wait_lines = |s: &Scene, n: usize| {
            s.wait(&format!("{n} notify lines"), v3_timeout(), |_| {
                lines().len() >= n
            })
        };
        s.wait_vip(vip, &[1], v3_timeout());
        wait_lines(&s, 2);
        s.lab.cut(1).unwrap();
        s.wait_vip(vip, &[2], v3_timeout());
        wait_lines(&s, 3);
        s.lab.restore(1).unwrap();
        s.wait_vip(vip, &[1], v3_timeout());
        wait_lines(&s, 5);
        s.terminate(1);
        s.reap(1, Duration::from_secs(5));
        wait_lines(&s, 6);
        // Nothing more comes.
        s.hold("no further notify", Duration::from_millis(300), |_| {
            lines().len() == 6
        });
        lines()
    }
    let expected: Vec<String> = [
        "INSTANCE VI_1 BACKUP 200",
        "INSTANCE VI_1 MASTER 200",
        "INSTANCE VI_1 FAULT 200",
        "INSTANCE VI_1 BACKUP 200",
        "INSTANCE VI_1 MASTER 200",
        "INSTANCE VI_1 STOP 200",
    ]
    .map(str::to_owned)
    .to_vec();
    assert_eq!(run("notk", Kind::Keepalived), expected, "keepalived 2.2.7");
    assert_eq!(run("nota", Kind::Agent), expected, "ha-agent");
}

/// The address owner (priority 255, the VIP is node 1's own address 192.0.2.1) is master at
/// once and the backup accepts its adverts. Its own address is not a VIP it added: it stays
/// through FAULT (link cut) and after a stop.
///
/// The backup is stopped before the owner's link is cut: a backup that took over 192.0.2.1 can
/// no longer hear the owner (Linux drops packets whose source is one of its own addresses as
/// martians), so the two would stay master. And only ha-agent as the owner: keepalived 2.2.7
/// in the owner's place removes its own address at start ("removing VIPs") and then sits in
/// FAULT ("no IPv4 address for interface").
#[test]
fn address_owner_keeps_its_own_address() {
    let own: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let conf = |state: &str, priority: u8| {
        global_defs("owner")
            + &format!(
                "vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n    \
                 virtual_router_id 51\n    priority {priority}\n    version 3\n    \
                 advert_int 0.1\n    virtual_ipaddress {{\n        192.0.2.1/24\n    }}\n}}\n"
            )
    };
    let mut s = Scene::new("owner", 2);
    s.start(1, Kind::Agent, &conf("MASTER", 255));
    s.wait_log(1, "INIT -> MASTER", 1, v3_timeout());
    s.start(2, Kind::Keepalived, &conf("BACKUP", LOW));
    s.hold_vip(own, &[1], Proto::V3Ipv4.master_down(LOW) * 3);
    s.terminate(2);
    s.reap(2, Duration::from_secs(5));

    s.lab.cut(1).unwrap();
    s.wait_log(1, "MASTER -> FAULT", 1, v3_timeout());
    s.hold_vip(own, &[1], Duration::from_millis(300));
    s.lab.restore(1).unwrap();
    s.wait_log(1, "FAULT -> MASTER", 1, v3_timeout());
    s.terminate(1);
    s.reap(1, Duration::from_secs(5));
    if s.holders(own) != [1] {
        s.fail("ha-agent removed node 1's own address (the owner's VIP) on exit");
    }
}

/// A VIP on another interface than the instance's (`dev eth1`) makes the instance track that
/// interface, as keepalived does, unless the VIP says `no_track`. Node 1 (`high`) runs VI_T
/// with an excluded VIP on eth1 and VI_N with one on eth1 `no_track`; node 2 (`low`) runs both
/// without them. When eth1 loses carrier VI_T goes to FAULT and its VIP moves to node 2, VI_N
/// stays master on node 1; when eth1 comes back VI_T's VIP returns.
fn vip_interface_tracking(tag: &str, high: Kind, low: Kind) {
    let proto = Proto::V3Ipv4;
    let (t, n) = (proto.vip(30), proto.vip(31));
    let conf = |prio: u8, on_eth1: bool| {
        let evip = |line: &str| {
            if on_eth1 {
                format!("    virtual_ipaddress_excluded {{\n        {line}\n    }}\n")
            } else {
                String::new()
            }
        };
        global_defs("viptrack")
            + &instance(
                "VI_T",
                81,
                prio,
                proto,
                30,
                &evip("198.51.100.1/32 dev eth1"),
            )
            + &instance(
                "VI_N",
                82,
                prio,
                proto,
                31,
                &evip("198.51.100.2/32 dev eth1 no_track"),
            )
    };
    let mut s = Scene::new(tag, 2);
    let n1 = s.lab.node(1).clone();
    n1.sh(
        "ip link add eth1 type veth peer name eth1p && ip link set eth1p up && ip link set eth1 up",
    )
    .unwrap();
    s.start(1, high, &conf(HIGH, true));
    s.start(2, low, &conf(LOW, false));
    s.wait("both VIPs on node 1", v3_timeout(), |s| {
        s.holders(t) == [1] && s.holders(n) == [1]
    });
    let on_eth1 = |addr: &str| {
        n1.run("ip", &["-o", "addr", "show", "dev", "eth1"])
            .unwrap()
            .contains(addr)
    };
    s.wait("both excluded VIPs on eth1", v3_timeout(), |_| {
        on_eth1("198.51.100.1/32") && on_eth1("198.51.100.2/32")
    });

    n1.sh("ip link set eth1p down").unwrap();
    s.wait("VI_T's VIP on node 2", v3_timeout(), |s| {
        s.holders(t) == [2]
    });
    s.hold(
        "VI_N (no_track) stays on node 1 while eth1 is down",
        Duration::from_secs(1),
        |s| s.holders(t) == [2] && s.holders(n) == [1],
    );
    n1.sh("ip link set eth1p up").unwrap();
    s.wait("VI_T's VIP back on node 1", v3_timeout(), |s| {
        s.holders(t) == [1] && s.holders(n) == [1]
    });
    s.assert_clean_logs();
}

#[test]
fn vip_interface_tracking_agent_as_keepalived() {
    vip_interface_tracking("vtrka", Kind::Agent, Kind::Keepalived);
}

#[test]
fn vip_interface_tracking_keepalived_reference() {
    vip_interface_tracking("vtrkk", Kind::Keepalived, Kind::Agent);
}

/// The addresses keepalived and ha-agent add for the same `virtual_ipaddress` options are the
/// same: `ip -d addr` lists the same flags, peers and lifetimes. Node 1 runs keepalived, then
/// ha-agent, alone, with VIPs with `peer`, `noprefixroute`, `preferred_lft` and an IPv6 /128
/// without `preferred_lft` (keepalived's default makes it deprecated).
#[test]
fn vip_options_applied_as_keepalived_applies_them() {
    let proto = Proto::V3Ipv4;
    let lines = [
        "10.9.0.1 peer 10.9.0.2",
        "10.9.1.1/24 noprefixroute",
        "2001:db8:5::1/64 preferred_lft 0 noprefixroute",
        "2001:db8:6::1 peer 2001:db8:6::2",
        "2001:db8:7::1",
        "2001:db8:8::1/64",
        "2001:db8:9::1/64 preferred_lft forever",
    ];
    // How `ip -o addr` starts each one's line.
    let heads = [
        "inet 10.9.0.1 peer 10.9.0.2/32 ",
        "inet 10.9.1.1/24 ",
        "inet6 2001:db8:5::1/64 ",
        "inet6 2001:db8:6::1 peer 2001:db8:6::2/128 ",
        "inet6 2001:db8:7::1/128 ",
        "inet6 2001:db8:8::1/64 ",
        "inet6 2001:db8:9::1/64 ",
    ];
    let evips: String = lines.iter().map(|l| format!("        {l}\n")).collect();
    let conf = global_defs("vipopts")
        + &instance(
            "VI_1",
            91,
            HIGH,
            proto,
            40,
            &format!("    virtual_ipaddress_excluded {{\n{evips}    }}\n"),
        );
    let mut s = Scene::new("vipopt", 1);
    let n1 = s.lab.node(1).clone();
    // Each VIP's words after the address, as `ip -o -d addr` shows them (the `\` line breaks
    // dropped).
    let shown = |s: &Scene| -> Option<Vec<String>> {
        let out = n1
            .run("ip", &["-o", "-d", "addr", "show", "dev", "eth0"])
            .unwrap_or_else(|e| s.fail(&format!("ip addr: {e:#}")));
        heads
            .iter()
            .map(|h| {
                let line = out.lines().find(|l| l.contains(h))?;
                let words = line[line.find(h)?..].split_whitespace();
                Some(words.filter(|w| *w != "\\").collect::<Vec<_>>().join(" "))
            })
            .collect()
    };
    let mut seen = Vec::new();
    for kind in [Kind::Keepalived, Kind::Agent] {
        s.start(1, kind, &conf);
        s.wait_vip(proto.vip(40), &[1], v3_timeout());
        let mut got = None;
        s.wait("every VIP with its options", v3_timeout(), |s| {
            got = shown(s);
            got.is_some()
        });
        seen.push(got.unwrap());
        s.assert_clean_logs();
        s.terminate(1);
        s.reap(1, Duration::from_secs(5));
        if kind == Kind::Keepalived {
            // keepalived 2.2.7 deletes an IPv4 address with IFA_ADDRESS = the address itself,
            // which does not match one with a peer: it stays. ha-agent names the peer (below,
            // every VIP is gone after it stops).
            let _ = n1.run(
                "ip",
                &["addr", "del", "10.9.0.1", "peer", "10.9.0.2", "dev", "eth0"],
            );
        }
        s.wait("the VIPs removed", v3_timeout(), |s| {
            n1.run("ip", &["-o", "addr", "show", "dev", "eth0"])
                .unwrap_or_else(|e| s.fail(&format!("ip addr: {e:#}")))
                .lines()
                .all(|l| heads.iter().all(|h| !l.contains(h)))
        });
    }
    let (keepalived, agent) = (&seen[0], &seen[1]);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            agent[i], keepalived[i],
            "`{line}`: ha-agent's address differs from keepalived's"
        );
    }
    // And they are what the options say (not both ignoring them).
    let has = |i: usize, w: &str| agent[i].contains(w);
    assert!(has(1, "noprefixroute"), "{}", agent[1]);
    assert!(
        has(2, "deprecated") && has(2, "noprefixroute"),
        "{}",
        agent[2]
    );
    assert!(has(2, "preferred_lft 0sec"), "{}", agent[2]);
    assert!(has(4, "deprecated"), "/128 default: {}", agent[4]);
    assert!(!has(5, "deprecated"), "/64 default: {}", agent[5]);
    assert!(!has(6, "deprecated"), "{}", agent[6]);
}

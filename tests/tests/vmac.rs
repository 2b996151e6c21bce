//! `use_vmac`: the VIPs live on a macvlan carrying the VRID's MAC (RFC 5798 §7.3), so a client's
//! neighbour entry for the VIP never changes at failover; the macvlan, and the ARP settings of
//! the interface under it, are gone and restored after a clean stop, after a crash and restart,
//! and after a reload that drops `use_vmac`; an interface ha-agent did not create is never taken.

mod common;

use std::{net::IpAddr, time::Duration};

use common::{Kind, Scene, epoch_now, wait_for_replies};
use ha_tests::{Lab, Node, ha_agent_bin};

const ADVERT_INT: Duration = Duration::from_millis(50);
/// VRID 51: the macvlan is `vrrp.51` with MAC 00:00:5e:00:01:33 (IPv4), 00:00:5e:00:02:33
/// (IPv6).
const VMAC: &str = "vrrp.51";
const READY: Duration = Duration::from_secs(20);

fn vmac_mac(v6: bool) -> &'static str {
    if v6 {
        "00:00:5e:00:02:33"
    } else {
        "00:00:5e:00:01:33"
    }
}

fn vip_of(v6: bool) -> IpAddr {
    if v6 { "2001:db8::200" } else { "192.0.2.200" }
        .parse()
        .unwrap()
}

fn vip() -> IpAddr {
    vip_of(false)
}

fn conf(priority: u8, extra: &str) -> String {
    conf_of(false, priority, extra)
}

fn conf_of(v6: bool, priority: u8, extra: &str) -> String {
    let vip = if v6 {
        "2001:db8::200/64"
    } else {
        "192.0.2.200/24"
    };
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         version 3\n    priority {priority}\n    advert_int 0.05\n{extra}    virtual_ipaddress {{\n        \
         {vip}\n    }}\n}}\n"
    )
}

/// Master_Down_Interval of the priority 100 backup.
fn master_down() -> Duration {
    3 * ADVERT_INT + ADVERT_INT * 156 / 256
}

/// The interface of `node` that holds `addr`, if one does.
fn holder_interface(node: &Node, addr: IpAddr) -> Option<String> {
    let out = node.run("ip", &["-o", "addr", "show"]).unwrap();
    let needle = format!(" {addr}/");
    out.lines()
        .find(|l| l.contains(&needle))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
}

fn link_exists(node: &Node, name: &str) -> bool {
    node.command("ip")
        .args(["link", "show", "dev", name])
        .output()
        .unwrap()
        .status
        .success()
}

fn sysctl(node: &Node, path: &str) -> String {
    node.run("cat", &[&format!("/proc/sys/net/{path}")])
        .unwrap()
        .trim()
        .to_owned()
}

/// Node 1 (priority 200) is master, the client pings the VIP, node 1's link is cut. Returns
/// the client's longest gap between replies, and the MACs its neighbour table had for the VIP
/// before and after (and any seen while the VIP moved).
fn link_cut(tag: &str, v6: bool, extra: &str) -> (Duration, Vec<String>) {
    let vip = || vip_of(v6);
    let mut s = Scene::new(tag, 2);
    s.start(1, Kind::AgentXdp, &conf_of(v6, 200, extra));
    s.start(2, Kind::AgentXdp, &conf_of(v6, 100, extra));
    let timeout = Duration::from_secs(5);
    let on = |s: &Scene, i: usize| holder_interface(s.lab.node(i), vip());
    s.wait("node 1 to hold the VIP", timeout, |s| {
        on(s, 1).is_some() && on(s, 2).is_none()
    });
    s.hold("node 1 alone holding the VIP", 10 * ADVERT_INT, |s| {
        on(s, 1).is_some() && on(s, 2).is_none()
    });
    let prober = s.lab.prober(vip()).unwrap();
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    let client = s.lab.client.clone();
    let mut macs: Vec<String> = Vec::new();
    let mut note = |m: Option<String>| {
        if let Some(m) = m
            && !macs.contains(&m)
        {
            macs.push(m);
        }
    };
    note(client.neighbour_mac(vip()).unwrap());
    // The backup's adverts are taken by XDP on eth0, before macvlan's receive handler (its
    // counters are read once a second).
    s.wait("node 2 to count node 1's adverts by XDP", timeout, |s| {
        let r = s.report(2);
        r.agent.datapath == "xdp" && r.instances[0].adverts.received > 0
    });

    let cut = epoch_now();
    s.lab.cut(1).unwrap();
    s.wait("node 2 to hold the VIP", timeout, |s| {
        note(client.neighbour_mac(vip()).unwrap());
        on(s, 2).is_some() && on(s, 1).is_none()
    });
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    note(client.neighbour_mac(vip()).unwrap());
    let report = prober.stop().unwrap();
    if report.replies_after(cut) == 0 {
        s.fail("no reply from the VIP after the cut");
    }
    if !extra.is_empty() {
        // The VIP sits on the macvlan, which carries the VRID's MAC; the status says where.
        assert_eq!(on(&s, 2).as_deref(), Some(VMAC), "{}", s.logs());
        let mac = s
            .lab
            .node(2)
            .run("cat", &[&format!("/sys/class/net/{VMAC}/address")])
            .unwrap();
        assert_eq!(mac.trim(), vmac_mac(v6));
        if v6 {
            // No link-local of its own and none copied from eth0: nothing to fail DAD, and
            // the base's link-local never resolves to the VRID's MAC.
            let addrs = s
                .lab
                .node(2)
                .run("ip", &["-6", "addr", "show", "dev", VMAC])
                .unwrap();
            assert!(
                !addrs.contains("fe80") && !addrs.contains("dadfailed"),
                "{addrs}"
            );
        }
        let r = s.report(2);
        assert_eq!(r.instances[0].vmac.as_deref(), Some(VMAC));
    }
    s.assert_clean_logs_except(&["is down", "-> FAULT"]);
    (report.longest_gap(), macs)
}

#[test]
fn vmac_failover_keeps_the_clients_neighbour_entry() {
    failover(false);
}

#[test]
fn vmac_failover_keeps_the_clients_neighbour_entry_ipv6() {
    failover(true);
}

fn failover(v6: bool) {
    let tag = if v6 { "vm6" } else { "vm4" };
    let (plain, plain_macs) = link_cut(&format!("{tag}p"), v6, "");
    let (vmac, vmac_macs) = link_cut(&format!("{tag}v"), v6, "    use_vmac\n");
    println!(
        "IPv{}: link cut of the master, advert_int 0.05: client outage without use_vmac \
         {plain:?} (VIP's MACs seen {plain_macs:?}), with use_vmac {vmac:?} (MACs seen \
         {vmac_macs:?})",
        if v6 { 6 } else { 4 }
    );
    assert_eq!(
        plain_macs.len(),
        2,
        "without use_vmac the client follows the new master's own MAC: {plain_macs:?}"
    );
    assert_eq!(
        vmac_macs,
        [vmac_mac(v6)],
        "with use_vmac the client's neighbour entry for the VIP must never change MAC"
    );
    let bound = 10 * master_down();
    assert!(
        vmac < bound,
        "outage {vmac:?} with use_vmac: want < {bound:?}"
    );
    // No worse than without the macvlan: the same failover, with slack for a loaded machine.
    assert!(
        vmac <= plain + 3 * master_down(),
        "outage {vmac:?} with use_vmac is worse than {plain:?} without"
    );
}

/// The source MAC of the next VRRP advert the client sees.
fn advert_src_mac(lab: &Lab) -> String {
    let out = lab
        .client
        .run(
            "timeout",
            &[
                "5",
                "tcpdump",
                "-c",
                "1",
                "-e",
                "-n",
                "-l",
                "-i",
                "eth0",
                "ip proto 112",
            ],
        )
        .unwrap();
    out.split_whitespace().nth(1).unwrap_or_default().to_owned()
}

/// Frames with source MAC `mac` entering the LAN from node `i` (tcpdump on its bridge port),
/// from [`Capture::start`] until [`Capture::count`].
struct Capture(ha_tests::Daemon);

impl Capture {
    fn start(lab: &Lab, i: usize, mac: &str) -> Capture {
        let lan = Node {
            ns: lab.lan.clone(),
            ..lab.client.clone()
        };
        let port = lab.node(i).port.clone();
        let filter = format!("ether src {mac}");
        let mut d = lan
            .spawn(
                &format!("tcpdump-n{i}"),
                &lab.dir,
                "tcpdump",
                &["-Q", "in", "-e", "-n", "-l", "-i", &port, &filter],
            )
            .unwrap();
        d.wait_for_log("listening on", READY).unwrap();
        Capture(d)
    }

    fn count(&self) -> usize {
        self.0.log().lines().filter(|l| l.contains(" > ")).count()
    }
}

/// The fence with use_vmac: a master killed by SIGKILL leaves its VIP on its macvlan, with the
/// same MAC as the new master's; the TC program on the base interface (the macvlan's frames
/// pass its egress, its ingress runs before macvlan's receive handler) keeps that zombie from
/// answering anything, so the LAN's switch never moves the VRID's MAC back to the dead node.
#[test]
fn a_killed_masters_vmac_answers_nothing() {
    ha_agent_bin().expect("ha-agent binary");
    let mut s = Scene::new("vmacf", 2);
    s.start(1, Kind::AgentXdp, &conf(200, "    use_vmac\n"));
    s.start(2, Kind::AgentXdp, &conf(100, "    use_vmac\n"));
    let mac = vmac_mac(false);
    s.wait(
        "node 1 to hold the VIP on its macvlan",
        Duration::from_secs(5),
        |s| holder_interface(s.lab.node(1), vip()).as_deref() == Some(VMAC),
    );
    // The capture sees node 1's adverts: they leave from the macvlan, with the VRID's MAC.
    let live = Capture::start(&s.lab, 1, mac);
    s.wait(
        "an advert from node 1's macvlan",
        Duration::from_secs(5),
        |_| live.count() > 0,
    );
    assert_eq!(advert_src_mac(&s.lab), mac, "adverts' source MAC");
    drop(live);

    s.daemon(1).signal(libc::SIGKILL).unwrap();
    s.wait("node 2 to take over", Duration::from_secs(5), |s| {
        holder_interface(s.lab.node(2), vip()).as_deref() == Some(VMAC)
    });
    assert_eq!(
        holder_interface(s.lab.node(1), vip()).as_deref(),
        Some(VMAC),
        "the zombie VIP stays on node 1's macvlan"
    );
    let zombie = Capture::start(&s.lab, 1, mac);
    let probe = s.lab.arp_probe("192.0.2.200".parse().unwrap(), 20).unwrap();
    assert_eq!(
        probe.macs.into_iter().collect::<Vec<_>>(),
        [mac.to_owned()],
        "the VIP answers ARP with the VRID's MAC"
    );
    let prober = s.lab.prober(vip()).unwrap();
    wait_for_replies(&s, vip(), epoch_now(), Duration::from_secs(5));
    prober.stop().unwrap();
    assert_eq!(
        zombie.count(),
        0,
        "the killed master's macvlan spoke:\n{}",
        zombie.0.log()
    );
}

/// `ha-agent run` in node `i` with the XDP datapath, waited for.
fn start(lab: &Lab, i: usize, config: &str) -> ha_tests::Daemon {
    let mut a = lab.ha_agent(i, config, &[]).unwrap();
    lab.wait_agent_ready(i, &mut a, READY).unwrap();
    a
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, Duration::from_secs(5), || Ok(cond())).unwrap();
}

/// Stops `a` with SIGTERM and checks it exited cleanly.
fn stop(mut a: ha_tests::Daemon) {
    a.signal(libc::SIGTERM).unwrap();
    let status = a.wait_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit on SIGTERM: {status:?}\n{}",
        a.log()
    );
}

#[test]
fn vmac_is_removed_after_stop_crash_and_reload_and_a_foreign_one_is_never_taken() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("vmacl", 1).unwrap();
    let node = lab.node(1).clone();
    let vmac_conf = conf(200, "    use_vmac\n");
    // The base's ARP settings are the operator's: they must come back as they were.
    node.sh("echo 2 > /proc/sys/net/ipv4/conf/eth0/arp_ignore")
        .unwrap();
    // Strict reverse-path filtering host-wide, as RHEL ships it: the route back to a client
    // is eth0's, so a macvlan that kept it would drop every packet to the VIP.
    node.sh("echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter")
        .unwrap();
    // A macvlan ha-agent did not create, on the same interface.
    node.run(
        "ip",
        &[
            "link", "add", "theirs0", "link", "eth0", "type", "macvlan", "mode", "bridge",
        ],
    )
    .unwrap();
    let base_arp = |n: &Node| {
        [
            "eth0/arp_ignore",
            "eth0/arp_filter",
            "eth0/arp_announce",
            "all/rp_filter",
        ]
        .map(|k| sysctl(n, &format!("ipv4/conf/{k}")))
    };
    let original = ["2", "0", "0", "1"].map(str::to_owned);
    assert_eq!(base_arp(&node), original);

    // Running: the macvlan is there with keepalived's settings, and holds the VIP.
    let a = start(&lab, 1, &vmac_conf);
    wait_for("the VIP on the macvlan", || {
        holder_interface(&node, vip()).as_deref() == Some(VMAC)
    });
    // The VIP answers; eth0 filters as strictly as before (raised to the old `all`).
    lab.client
        .run("ping", &["-c", "1", "-W", "2", "192.0.2.200"])
        .unwrap();
    assert_eq!(base_arp(&node), ["1", "1", "2", "0"].map(str::to_owned));
    assert_eq!(sysctl(&node, "ipv4/conf/eth0/rp_filter"), "1");
    assert_eq!(sysctl(&node, &format!("ipv4/conf/{VMAC}/arp_ignore")), "1");
    assert_eq!(
        sysctl(&node, &format!("ipv6/conf/{VMAC}/disable_ipv6")),
        "1"
    );
    let details = node.run("ip", &["-d", "link", "show", VMAC]).unwrap();
    assert!(
        details.contains("macvlan mode private") && details.contains("alias ha-agent vmac"),
        "{details}"
    );

    // Clean stop: gone, and the base's settings restored.
    stop(a);
    assert!(!link_exists(&node, VMAC), "{VMAC} left after a clean stop");
    assert_eq!(base_arp(&node), original);

    // SIGKILL leaves it; the next run adopts it, and its clean stop removes it.
    let mut a = start(&lab, 1, &vmac_conf);
    wait_for("the VIP on the macvlan", || {
        holder_interface(&node, vip()).as_deref() == Some(VMAC)
    });
    a.signal(libc::SIGKILL).unwrap();
    a.wait_timeout(Duration::from_secs(10)).unwrap();
    assert!(link_exists(&node, VMAC), "SIGKILL cannot clean up");
    let a = start(&lab, 1, &vmac_conf);
    wait_for("the VIP on the macvlan", || {
        holder_interface(&node, vip()).as_deref() == Some(VMAC)
    });
    stop(a);
    assert!(
        !link_exists(&node, VMAC),
        "{VMAC} left after crash, restart, stop"
    );
    assert_eq!(
        base_arp(&node),
        original,
        "the crashed run's saved settings"
    );

    // Reloads: vmac_xmit_base, then no use_vmac, which removes the macvlan.
    let a = start(&lab, 1, &vmac_conf);
    wait_for("the VIP on the macvlan", || {
        holder_interface(&node, vip()).as_deref() == Some(VMAC)
    });

    // vmac_xmit_base: the adverts leave from eth0 with its own MAC, the VIP stays on the macvlan.
    assert_eq!(advert_src_mac(&lab), vmac_mac(false));
    lab.write_file(
        "ha-agent-n1.conf",
        &conf(200, "    use_vmac\n    vmac_xmit_base\n"),
    )
    .unwrap();
    a.signal(libc::SIGHUP).unwrap();
    let eth0_mac = node.mac().unwrap();
    wait_for("adverts from eth0", || advert_src_mac(&lab) == eth0_mac);
    wait_for("the VIP on the macvlan", || {
        holder_interface(&node, vip()).as_deref() == Some(VMAC)
    });
    lab.write_file("ha-agent-n1.conf", &conf(200, "")).unwrap();
    a.signal(libc::SIGHUP).unwrap();
    wait_for("the macvlan removed by the reload", || {
        !link_exists(&node, VMAC) && holder_interface(&node, vip()).as_deref() == Some("eth0")
    });
    assert_eq!(base_arp(&node), original);
    stop(a);

    // Another agent's macvlan, on another interface of this namespace, is not this one's.
    node.sh("ip link add oth0 type veth peer name oth1 && \
         ip link add othervm link oth0 type macvlan mode private && \
         ip link set dev othervm alias 'ha-agent vmac base_arp_ignore=0 base_arp_filter=0 \
         base_arp_announce=0 all_rp_filter=1 default_rp_filter=0'")
        .unwrap();
    let a = start(&lab, 1, &vmac_conf);
    wait_for("the VIP on the macvlan", || {
        holder_interface(&node, vip()).as_deref() == Some(VMAC)
    });
    stop(a);
    assert!(!link_exists(&node, VMAC), "{VMAC} left after a clean stop");
    assert!(
        link_exists(&node, "othervm"),
        "another agent's macvlan removed"
    );

    // A use_vmac name held by an interface ha-agent did not create is refused, untouched.
    let theirs = conf(200, "    use_vmac theirs0\n");
    let file = lab.write_file("theirs.conf", &theirs).unwrap();
    let out = node
        .command(ha_agent_bin().unwrap())
        .args(["check-config", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("theirs0") && text.contains("did not create"),
        "check-config must refuse a use_vmac name ha-agent did not create: {text}"
    );
    assert!(
        link_exists(&node, "theirs0"),
        "a foreign macvlan was removed"
    );
}

/// keepalived 2.2.7 with use_vmac as the peer: the VRID's MAC is the VIP's whichever daemon is
/// master, in both directions of the failover.
#[test]
fn keepalived_peer_with_use_vmac() {
    let mut s = Scene::new("vmack", 2);
    let extra = "    use_vmac\n";
    let keepalived_conf = common::global_defs("vmack") + &conf(200, extra);
    // keepalived leaves arp_announce at 0: its master then asks for the client's MAC "tell
    // VIP" from eth0 with eth0's MAC, and the client's entry for the VIP leaves the VRID's MAC
    // (seen here without this line). ha-agent sets it while it runs a macvlan; for keepalived
    // the operator must.
    s.lab
        .node(1)
        .sh("echo 2 > /proc/sys/net/ipv4/conf/eth0/arp_announce")
        .unwrap();
    s.start(1, Kind::Keepalived, &keepalived_conf);
    s.start(2, Kind::AgentXdp, &conf(100, extra));
    let timeout = Duration::from_secs(10);
    let on = |s: &Scene, i: usize| holder_interface(s.lab.node(i), vip());
    s.wait("keepalived (node 1) to hold the VIP", timeout, |s| {
        on(s, 1).as_deref() == Some(VMAC) && on(s, 2).is_none()
    });
    let client = s.lab.client.clone();
    let prober = s.lab.prober(vip()).unwrap();
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    let mac = vmac_mac(false).to_owned();
    assert_eq!(client.neighbour_mac(vip()).unwrap(), Some(mac.clone()));

    // keepalived stops: ha-agent takes over on its own macvlan.
    s.terminate(1);
    s.reap(1, timeout);
    s.wait("ha-agent (node 2) to hold the VIP", timeout, |s| {
        assert_eq!(client.neighbour_mac(vip()).unwrap(), Some(mac.clone()));
        on(s, 2).as_deref() == Some(VMAC)
    });
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    assert_eq!(client.neighbour_mac(vip()).unwrap(), Some(mac.clone()));

    // keepalived comes back with the higher priority and preempts.
    s.start(1, Kind::Keepalived, &keepalived_conf);
    s.wait("keepalived to take the VIP back", timeout, |s| {
        assert_eq!(client.neighbour_mac(vip()).unwrap(), Some(mac.clone()));
        on(s, 1).as_deref() == Some(VMAC) && on(s, 2).is_none()
    });
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    prober.stop().unwrap();
    assert_eq!(client.neighbour_mac(vip()).unwrap(), Some(mac));
    s.assert_clean_logs();
}

/// use_vmac_addr: an IPv6 eVIP of an IPv4 instance gets a macvlan of its own with the IPv6
/// VRID MAC, which the client's neighbour entry for it holds; gone after a clean stop.
#[test]
fn use_vmac_addr_gives_an_evip_of_the_other_family_its_own_macvlan() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("vmaca", 1).unwrap();
    let node = lab.node(1).clone();
    let evip: IpAddr = "2001:db8::201".parse().unwrap();
    let conf = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    \
                version 3\n    priority 200\n    advert_int 0.05\n    use_vmac_addr\n    \
                virtual_ipaddress {\n        192.0.2.200/24\n    }\n    \
                virtual_ipaddress_excluded {\n        2001:db8::201/64\n    }\n}\n";
    let a = start(&lab, 1, conf);
    wait_for("the VIP on eth0 and the eVIP on the macvlan", || {
        holder_interface(&node, vip()).as_deref() == Some("eth0")
            && holder_interface(&node, evip).as_deref() == Some(VMAC)
    });
    let mac = node
        .run("cat", &[&format!("/sys/class/net/{VMAC}/address")])
        .unwrap();
    assert_eq!(mac.trim(), vmac_mac(true));
    lab.client
        .run("ping", &["-c", "1", "-W", "2", "2001:db8::201"])
        .unwrap();
    assert_eq!(
        lab.client.neighbour_mac(evip).unwrap().as_deref(),
        Some(vmac_mac(true))
    );
    stop(a);
    assert!(!link_exists(&node, VMAC), "{VMAC} left after a clean stop");
}

/// A macvlan deleted under a running master comes back, as keepalived re-creates it, and the
/// VIP with it.
#[test]
fn a_deleted_vmac_is_re_created_and_the_vip_comes_back() {
    let mut s = Scene::new("vmacd", 1);
    s.start(1, Kind::AgentXdp, &conf(200, "    use_vmac\n"));
    let timeout = Duration::from_secs(10);
    let on = |s: &Scene| holder_interface(s.lab.node(1), vip());
    s.wait("the VIP on the macvlan", timeout, |s| {
        on(s).as_deref() == Some(VMAC)
    });
    s.lab.node(1).run("ip", &["link", "del", VMAC]).unwrap();
    s.wait_log(1, "was deleted: re-creating it", 1, timeout);
    s.wait("the VIP back on a new macvlan", timeout, |s| {
        on(s).as_deref() == Some(VMAC)
    });
    s.lab
        .client
        .run("ping", &["-c", "1", "-W", "2", "192.0.2.200"])
        .unwrap();
    s.terminate(1);
    s.reap(1, timeout);
    assert!(
        !link_exists(s.lab.node(1), VMAC),
        "{VMAC} left after a clean stop"
    );
}

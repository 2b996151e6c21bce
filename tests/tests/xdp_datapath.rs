//! The eBPF datapath end to end, with real agents in a lab:
//!
//! - a master agent killed with SIGKILL (or hung with SIGSTOP) leaves its VIP configured, but
//!   its TC fence (attached through netlink, heartbeat gone stale) stops it answering: one MAC
//!   answers ARP for the VIP after the takeover, also when the agent ran as users start it
//!   (plain `ip netns exec`, no `--bpf-dir`: its pins die with it). keepalived in the same
//!   situation answers from both nodes;
//! - a restarted agent replaces the programs left attached and a clean exit removes them and
//!   every pin; a second agent on the same interface is refused, naming the first one's pid;
//! - an interface that is not Ethernet is refused by `--datapath xdp` and runs sockets with
//!   `auto`;
//! - a VRRP-only partition makes two masters; when it heals the lower one is fenced by XDP and
//!   steps down, and one MAC answers again;
//! - a backup on the XDP datapath wakes about once per master-down interval, not per advert
//!   (the socket datapath wakes for every advert);
//! - a stopping master sees its successor's first advert even when XDP sends no event for it.

mod common;

use std::{net::Ipv4Addr, path::Path, time::Duration};

use ha_agent::control::report::Report;
use ha_tests::{Lab, ha_agent_bin, leftover::SYS_BPF, wait_for};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);

fn conf(priority: u8, advert_int: &str) -> String {
    ha_tests::v3_instance(priority, advert_int)
}

fn wait(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(secs), || Ok(cond())).unwrap();
}

fn status(lab: &Lab, i: usize) -> Option<Report> {
    common::node_status(lab, i)
}

fn state(lab: &Lab, i: usize) -> String {
    status(lab, i).map_or_else(|| "-".into(), |r| r.instances[0].state.clone())
}

/// The MACs that answer ARP for the VIP (20 requests from the client).
fn arp_macs(lab: &Lab) -> Vec<String> {
    let probe = lab.arp_probe(VIP, 20).unwrap();
    probe.macs.into_iter().collect()
}

/// The agents' pin directories (`<netns>-<interface>-v<N>`; the BPF filesystem also shows its
/// own `maps.debug` and `progs.debug`).
fn pins(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("-eth0-v"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_or_hung_master_is_fenced_a_restart_replaces_and_a_clean_exit_unpins() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("zombie", 2).expect("lab");
    let xdp = ["--datapath", "xdp"];
    let mut a1 = lab.ha_agent(1, &conf(150, "0.1"), &xdp).unwrap();
    let mut a2 = lab.ha_agent(2, &conf(100, "0.1"), &xdp).unwrap();
    wait("node 1 master", 5, || state(&lab, 1) == "MASTER");
    wait("node 2 backup", 5, || state(&lab, 2) == "BACKUP");
    assert_eq!(status(&lab, 1).unwrap().agent.datapath, "xdp");
    let one = arp_macs(&lab);
    assert_eq!(one.len(), 1, "one MAC for the VIP: {one:?}");
    let pinned = pins(&lab.bpf_dir);
    assert_eq!(pinned.len(), 2, "one pin directory per agent: {pinned:?}");

    // SIGKILL: the VIP stays on node 1, the fence holds it silent.
    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(Duration::from_secs(5)).unwrap();
    wait("node 2 to take over", 5, || state(&lab, 2) == "MASTER");
    assert!(
        lab.node(1).has_addr(VIP.into()).unwrap(),
        "the killed agent's VIP is still configured (the zombie the fence must silence)"
    );
    let macs = arp_macs(&lab);
    assert_eq!(
        macs.len(),
        1,
        "only the new master answers ARP for the VIP: {macs:?}; n2 log:\n{}",
        a2.log()
    );
    assert_ne!(macs, one, "and it is node 2");

    // Restart: the programs left attached are replaced, the stale VIP removed, node 1 preempts.
    let mut a1 = lab.ha_agent(1, &conf(150, "0.1"), &xdp).unwrap();
    a1.wait_for_log("replacing vrrp_rx", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}; n1 log:\n{}", a1.log()));
    wait("node 1 master again", 5, || state(&lab, 1) == "MASTER");
    wait("node 2 backup again", 5, || state(&lab, 2) == "BACKUP");
    wait("one MAC (node 1) again", 5, || arp_macs(&lab) == one);

    // SIGSTOP: a hung master is fenced once its heartbeat is older than 3 intervals.
    a1.signal(libc::SIGSTOP).unwrap();
    wait("node 2 to take over from the hung agent", 5, || {
        state(&lab, 2) == "MASTER"
    });
    let macs = arp_macs(&lab);
    assert_eq!(macs.len(), 1, "the hung master is fenced: {macs:?}");
    assert_ne!(macs, one);
    a1.signal(libc::SIGCONT).unwrap();
    wait("node 1 to preempt after SIGCONT", 5, || {
        state(&lab, 1) == "MASTER" && state(&lab, 2) == "BACKUP"
    });
    wait("one MAC (node 1) after SIGCONT", 5, || {
        arp_macs(&lab) == one
    });

    // Clean exits remove every pin.
    for a in [&mut a1, &mut a2] {
        a.signal(libc::SIGTERM).unwrap();
        assert!(a.wait_timeout(Duration::from_secs(5)).unwrap().is_some());
    }
    assert!(
        pins(&lab.bpf_dir).is_empty(),
        "pins left: {:?}",
        pins(&lab.bpf_dir)
    );
}

/// keepalived, killed the same way, leaves a zombie VIP that answers beside the new master: the
/// behaviour the fence exists for (run here so the comparison is made on the same lab).
#[test]
fn keepalived_killed_the_same_way_answers_from_two_macs() {
    let lab = Lab::new("kazombie", 2).expect("lab");
    let ka = |priority: u8| {
        format!(
            "global_defs {{\n router_id n{priority}\n}}\n{}",
            conf(priority, "0.1")
        )
    };
    let k1 = lab.keepalived(1, &ka(150)).unwrap();
    let _k2 = lab.keepalived(2, &ka(100)).unwrap();
    wait("keepalived node 1 to hold the VIP", 10, || {
        lab.node(1).has_addr(VIP.into()).unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    let vrrp_pid: i32 = std::fs::read_to_string(lab.dir.join("keepalived-n1-vrrp.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The VRRP child first: killed after its parent, it may get the SIGTERM keepalived's
    // children ask for when the parent dies (PR_SET_PDEATHSIG) and remove the VIP before our
    // SIGKILL lands (CI, on a loaded host).
    for pid in [vrrp_pid, k1.pid()] {
        // SAFETY: kill(2) on processes this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    wait("keepalived node 2 to take the VIP", 5, || {
        lab.node(2).has_addr(VIP.into()).unwrap()
    });
    assert!(lab.node(1).has_addr(VIP.into()).unwrap());
    let macs = arp_macs(&lab);
    assert_eq!(
        macs.len(),
        2,
        "keepalived's zombie VIP answers too: {macs:?}"
    );
}

/// Drops VRRP (IP protocol 112) leaving node `i`, or stops dropping.
fn vrrp_partition(lab: &Lab, i: usize, on: bool) {
    lab.block_vrrp(i, on).unwrap();
}

#[test]
fn a_healed_vrrp_partition_leaves_one_master_and_one_mac() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("heal", 2).expect("lab");
    let xdp = ["--datapath", "xdp"];
    let _a1 = lab.ha_agent(1, &conf(150, "0.1"), &xdp).unwrap();
    let a2 = lab.ha_agent(2, &conf(100, "0.1"), &xdp).unwrap();
    wait("node 1 master", 5, || state(&lab, 1) == "MASTER");
    wait("node 2 backup", 5, || state(&lab, 2) == "BACKUP");
    let one = arp_macs(&lab);

    vrrp_partition(&lab, 1, true);
    vrrp_partition(&lab, 2, true);
    wait("split brain: both master", 5, || {
        state(&lab, 1) == "MASTER" && state(&lab, 2) == "MASTER"
    });
    vrrp_partition(&lab, 1, false);
    vrrp_partition(&lab, 2, false);
    wait("node 2 steps down", 5, || state(&lab, 2) == "BACKUP");
    assert_eq!(state(&lab, 1), "MASTER");
    wait("one MAC (node 1)", 5, || arp_macs(&lab) == one);
    let r2 = status(&lab, 2).unwrap();
    assert!(r2.instances[0].transitions >= 3, "{r2:#?}\n{}", a2.log());
}

/// Wake-ups and valid adverts of node `i` over `window`.
fn wakeups_and_adverts(lab: &Lab, i: usize, window: Duration) -> (u64, u64) {
    let before = status(lab, i).unwrap();
    std::thread::sleep(window);
    let after = status(lab, i).unwrap();
    (
        after.agent.wakeups - before.agent.wakeups,
        after.instances[0].adverts.received - before.instances[0].adverts.received,
    )
}

#[test]
fn an_xdp_backup_wakes_per_master_down_interval_not_per_advert() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("wakeup", 3).expect("lab");
    // 100 adverts/s from node 1; node 2 on XDP, node 3 on sockets, both backups.
    let _a1 = lab
        .ha_agent(1, &conf(150, "0.01"), &["--datapath", "xdp"])
        .unwrap();
    let _a2 = lab
        .ha_agent(2, &conf(100, "0.01"), &["--datapath", "xdp"])
        .unwrap();
    let _a3 = lab
        .ha_agent(3, &conf(90, "0.01"), &["--datapath", "socket"])
        .unwrap();
    wait("node 1 master", 5, || state(&lab, 1) == "MASTER");
    wait("backups", 5, || {
        state(&lab, 2) == "BACKUP" && state(&lab, 3) == "BACKUP"
    });
    // Counters of the XDP node are read once a second: measure over whole seconds after one.
    std::thread::sleep(Duration::from_millis(1500));
    let window = Duration::from_secs(4);
    let (xdp_wakeups, xdp_adverts) = wakeups_and_adverts(&lab, 2, window);
    let (sock_wakeups, sock_adverts) = wakeups_and_adverts(&lab, 3, window);
    eprintln!(
        "over {window:?}: xdp backup {xdp_wakeups} wake-ups for {xdp_adverts} adverts; socket backup {sock_wakeups} for {sock_adverts}"
    );
    assert!(xdp_adverts >= 200, "node 1 advertises 100/s: {xdp_adverts}");
    assert!(
        sock_wakeups >= sock_adverts,
        "a socket backup wakes per advert"
    );
    // Master down interval at priority 100: 3 × 10 ms + 6.1 ms; re-armed from the last advert,
    // so about one wake-up per 26–36 ms, plus the 1 s counter and 0.5 s track_file ticks.
    assert!(
        xdp_wakeups * 2 < xdp_adverts,
        "an XDP backup must not wake per advert: {xdp_wakeups} wake-ups for {xdp_adverts} adverts"
    );
}

/// A master stopped moments after it preempted: its successor's adverts are nothing new to its
/// XDP program (the source and priority it heard as a backup, no silence between), so no event
/// reaches the stopping agent; it still sees the hand-over (it reads the peer record) instead of
/// waiting out its Master_Down_Interval and warning that nobody took over.
#[test]
fn a_master_stopped_right_after_preempting_sees_its_successor() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("handxdp", 2).expect("lab");
    let xdp = ["--datapath", "xdp"];
    let a2 = lab.ha_agent(2, &conf(100, "1"), &xdp).unwrap();
    wait("node 2 master", 10, || state(&lab, 2) == "MASTER");
    let mut a1 = lab.ha_agent(1, &conf(150, "1"), &xdp).unwrap();
    // Node 1 preempts after its Master_Down_Interval (3 s + skew); stop it at once.
    wait("node 1 to preempt", 10, || state(&lab, 1) == "MASTER");
    a1.signal(libc::SIGTERM).unwrap();
    let status = a1
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("node 1 exits");
    assert!(status.success(), "exit status {status}; log:\n{}", a1.log());
    let log = a1.log();
    assert!(
        log.contains("handed over: 192.0.2.2 (priority 100) is master"),
        "node 1 did not see node 2 take over; its log:\n{log}\nnode 2:\n{}",
        a2.log()
    );
    assert!(!log.contains("no other router advertised"), "{log}");
}

/// An agent of another pin layout killed before an upgrade leaves its programs attached and
/// pinned under `<netns>-eth0-v<N>`: the new agent removes them (detaching the old XDP link,
/// which would refuse its own, and the old fence, whose stale heartbeat would drop the VIP's
/// traffic), says so, and runs on XDP.
#[test]
fn pins_of_another_layout_left_by_a_crash_are_removed_at_start() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("layout", 1).expect("lab");
    let xdp = ["--datapath", "xdp"];
    let mut a1 = lab.ha_agent(1, &conf(150, "0.1"), &xdp).unwrap();
    wait("node 1 master", 5, || state(&lab, 1) == "MASTER");
    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(Duration::from_secs(5)).unwrap();
    drop(a1);
    // The killed agent's pins, renamed as an older layout would have named them.
    let ours = pins(&lab.bpf_dir);
    assert_eq!(ours.len(), 1, "{ours:?}");
    let old = ours[0].rsplit_once("-v").unwrap().0.to_owned() + "-v1";
    std::fs::rename(lab.bpf_dir.join(&ours[0]), lab.bpf_dir.join(&old)).unwrap();

    let a1 = lab.ha_agent(1, &conf(150, "0.1"), &xdp).unwrap();
    wait("node 1 master again, on XDP", 5, || {
        a1.log().contains("datapath xdp") && state(&lab, 1) == "MASTER"
    });
    assert!(
        a1.log()
            .contains(&format!("removing {}", lab.bpf_dir.join(&old).display())),
        "no warning about the old layout; log:\n{}",
        a1.log()
    );
    assert_eq!(pins(&lab.bpf_dir), ours, "only this layout's pins are left");
    // The old fence is gone with its pins: the VIP answers.
    assert_eq!(arp_macs(&lab).len(), 1);
}

/// The SIGKILL test as users deploy the agent: plain `ip netns exec NS ha-agent run -f FILE`,
/// no `--bpf-dir` (the BPF filesystem it mounts lives in `ip netns exec`'s private mount
/// namespace and dies with it). The fence, attached through netlink, stays: one MAC answers
/// for the VIP. A restarted agent replaces the programs and runs on XDP; a second agent on the
/// same interface is refused; clean exits leave nothing attached.
#[test]
fn a_master_killed_under_plain_ip_netns_exec_stays_fenced() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("plainkill", 2).expect("lab");
    let base = lab.baseline().unwrap();
    let xdp = ["--datapath", "xdp"];
    let mut a1 = lab
        .ha_agent_as_deployed(1, &conf(150, "0.1"), &xdp)
        .unwrap();
    let mut a2 = lab
        .ha_agent_as_deployed(2, &conf(100, "0.1"), &xdp)
        .unwrap();
    wait_for(
        "node 1 master, node 2 backup",
        Duration::from_secs(10),
        || Ok(state(&lab, 1) == "MASTER" && state(&lab, 2) == "BACKUP"),
    )
    .unwrap_or_else(|e| panic!("{e}; n1 log:\n{}\nn2 log:\n{}", a1.log(), a2.log()));
    assert_eq!(status(&lab, 1).unwrap().agent.datapath, "xdp");
    let one = arp_macs(&lab);
    assert_eq!(one.len(), 1, "one MAC for the VIP: {one:?}");

    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(Duration::from_secs(5)).unwrap();
    wait("node 2 to take over", 5, || state(&lab, 2) == "MASTER");
    assert!(lab.node(1).has_addr(VIP.into()).unwrap());
    let macs = arp_macs(&lab);
    assert_eq!(
        macs.len(),
        1,
        "only the new master answers ARP for the VIP: {macs:?}; n1 log:\n{}",
        a1.log()
    );
    assert_ne!(macs, one, "and it is node 2");

    let mut a1 = lab
        .ha_agent_as_deployed(1, &conf(150, "0.1"), &xdp)
        .unwrap();
    a1.wait_for_log("replacing vrrp_rx", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}; n1 log:\n{}", a1.log()));
    wait_for(
        "node 1 master again on XDP",
        Duration::from_secs(10),
        || {
            Ok(state(&lab, 1) == "MASTER"
                && state(&lab, 2) == "BACKUP"
                && status(&lab, 1).is_some_and(|r| r.agent.datapath == "xdp"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}; n1 log:\n{}", a1.log()));
    wait("one MAC (node 1) again", 5, || arp_macs(&lab) == one);

    // A second agent on node 1's eth0 (another config file) is refused, naming the first.
    let other = lab.write_file("other.conf", &conf(120, "0.1")).unwrap();
    let out = lab
        .node(1)
        .command(ha_agent_bin().unwrap())
        .args(["run", "--datapath", "xdp", "-f"])
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second agent ran: {err}");
    assert!(
        err.contains(&format!("already driven by ha-agent pid {}", a1.pid())),
        "the refusal names the first agent's pid: {err}"
    );
    assert_eq!(state(&lab, 1), "MASTER", "the first agent is undisturbed");

    for a in [&mut a1, &mut a2] {
        a.signal(libc::SIGTERM).unwrap();
        let status = a.wait_timeout(Duration::from_secs(5)).unwrap();
        assert!(status.is_some_and(|s| s.success()), "{}", a.log());
    }
    let left = lab.leftovers(&base, &[VIP.into()], Path::new(SYS_BPF));
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// An interface that is not Ethernet (a `tun` device: no Ethernet header for `vrrp_rx` or the
/// fence to parse): `--datapath xdp` refuses it naming the interface; `auto` warns once and
/// runs the socket datapath.
#[test]
fn a_non_ethernet_interface_is_refused_by_xdp_and_runs_sockets_with_auto() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("tun", 1).expect("lab");
    let n1 = lab.node(1);
    n1.run("ip", &["tuntap", "add", "mode", "tun", "name", "tun0"])
        .unwrap();
    n1.run("ip", &["addr", "add", "198.51.100.1/24", "dev", "tun0"])
        .unwrap();
    n1.run("ip", &["link", "set", "tun0", "up"]).unwrap();
    let tun = conf(150, "1")
        .replace("interface eth0", "interface tun0")
        .replace("192.0.2.200/24", "198.51.100.200/24");

    let conf_path = lab.write_file("tun.conf", &tun).unwrap();
    let out = n1
        .command(ha_agent_bin().unwrap())
        .args(["run", "--datapath", "xdp", "-f"])
        .arg(&conf_path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "xdp ran on a tun device: {err}");
    assert!(
        err.contains("interface tun0 is not Ethernet"),
        "the refusal names the interface and why: {err}"
    );

    let mut a1 = lab
        .ha_agent(1, &tun, &["--datapath", "auto", "--log-level", "info"])
        .unwrap();
    a1.wait_for_log("ha-agent running", Duration::from_secs(10))
        .unwrap();
    let log = a1.log();
    assert!(log.contains("datapath socket"), "{log}");
    assert_eq!(
        log.matches("is not Ethernet").count(),
        1,
        "one warning saying why: {log}"
    );
    assert_eq!(status(&lab, 1).unwrap().agent.datapath, "socket");
}

/// Another program's XDP on the interface (here the object's `xdp_baseline`, attached by this
/// test) is never replaced: `--datapath xdp` refuses to start, naming the interface, the
/// program and how to remove it, and the program stays.
#[test]
fn an_xdp_program_that_is_not_ours_is_refused_not_replaced() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("foreignxdp", 1).expect("lab");
    let n1 = lab.node(1).clone();
    let ebpf = ha_tests::in_netns(&n1.ns, || {
        let mut ebpf = aya::Ebpf::load(ha_agent::datapath::EBPF_OBJECT)?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut("xdp_baseline")
            .expect("xdp_baseline in the object")
            .try_into()?;
        prog.load()?;
        prog.attach(ha_tests::IFACE, aya::programs::XdpMode::Driver)?;
        Ok(ebpf)
    })
    .expect("attaching xdp_baseline in node 1");
    let path = lab.write_file("foreign.conf", &conf(150, "0.1")).unwrap();
    let out = n1
        .command(ha_agent_bin().unwrap())
        .args(["run", "--datapath", "xdp", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the agent replaced it: {err}");
    assert!(
        err.contains("interface eth0 already runs XDP program `xdp_baseline`")
            && err.contains("ip link set dev eth0 xdp off"),
        "the refusal names the interface, the program and the fix: {err}"
    );
    let link = n1
        .run("ip", &["-d", "link", "show", "dev", "eth0"])
        .unwrap();
    assert!(
        link.contains("prog/xdp"),
        "the program is still there: {link}"
    );
    assert!(!n1.has_addr(VIP.into()).unwrap());
    drop(ebpf);
}

/// A backup killed with its VIP fenced in its pinned fence map, restarted with a configuration
/// that no longer has that VIP: the entry is pruned at start, so the address, configured on
/// the node by other means, answers (it was blackholed by the dead run's entry).
#[test]
fn fence_entries_of_vips_no_longer_configured_are_pruned_at_start() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("prune", 2).expect("lab");
    let xdp = ["--datapath", "xdp"];
    let _a2 = lab.ha_agent(2, &conf(150, "0.1"), &xdp).unwrap();
    let mut a1 = lab.ha_agent(1, &conf(100, "0.1"), &xdp).unwrap();
    wait_for(
        "node 2 master, node 1 backup",
        Duration::from_secs(10),
        || Ok(state(&lab, 2) == "MASTER" && state(&lab, 1) == "BACKUP"),
    )
    .unwrap_or_else(|e| panic!("{e}; n1 log:\n{}", a1.log()));
    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(Duration::from_secs(5)).unwrap();
    drop(a1);

    // The same instance with another VIP: 192.0.2.200 is no longer ha-agent's.
    let other = conf(100, "0.1").replace("192.0.2.200/24", "192.0.2.201/24");
    let mut a1 = lab.ha_agent(1, &other, &xdp).unwrap();
    a1.wait_for_log("ha-agent running", Duration::from_secs(10))
        .unwrap();
    let n1 = lab.node(1);
    n1.run("ip", &["addr", "add", "192.0.2.200/32", "dev", "eth0"])
        .unwrap();
    let client = &lab.client;
    client
        .run(
            "ip",
            &[
                "neigh",
                "replace",
                &VIP.to_string(),
                "lladdr",
                &n1.mac().unwrap(),
                "dev",
                "eth0",
                "nud",
                "permanent",
            ],
        )
        .unwrap();
    let out = client
        .command("ping")
        .args(["-n", "-c", "3", "-i", "0.05", "-w", "3"])
        .arg(VIP.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "192.0.2.200 on node 1 is still fenced by the dead run's entry: {}\nn1 log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        a1.log()
    );
}

/// `auto` falls back to sockets when the datapath cannot be configured after it was attached
/// (here: more VIPs in adverts than `vrrp_rx` checks) and leaves nothing attached: a fence left
/// behind, its heartbeat stale, would drop the traffic of the VIPs the socket datapath serves.
#[test]
fn a_datapath_that_cannot_be_configured_is_not_left_attached() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("cfgfail", 1).expect("lab");
    let many: String = (1..=65)
        .map(|k| format!("        192.0.2.{}/24\n", 130 + k))
        .collect();
    let conf = conf(150, "0.1").replace("        192.0.2.200/24\n", &many);
    let a1 = lab
        .ha_agent(1, &conf, &["--datapath", "auto", "--log-level", "info"])
        .unwrap();
    wait_for("node 1 master", Duration::from_secs(10), || {
        Ok(state(&lab, 1) == "MASTER")
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", a1.log()));
    assert_eq!(status(&lab, 1).unwrap().agent.datapath, "socket");
    let n1 = lab.node(1);
    for hook in ["ingress", "egress"] {
        let filters = n1
            .run("tc", &["filter", "show", "dev", "eth0", hook])
            .unwrap();
        assert!(filters.trim().is_empty(), "{hook} fence left: {filters}");
    }
    let link = n1
        .run("ip", &["-d", "link", "show", "dev", "eth0"])
        .unwrap();
    assert!(!link.contains("prog/xdp"), "XDP left: {link}");
    let out = lab
        .client
        .command("ping")
        .args(["-n", "-c", "3", "-i", "0.05", "-w", "3", "192.0.2.131"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the master's VIP does not answer");
}

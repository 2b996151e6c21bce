//! SIGHUP reloads keepalived.conf: instances whose configuration did not change keep their
//! state and VIPs (no outage), changed ones take the change in place (a new VRID, interface,
//! family or version restarts them), new ones start, removed ones stop; a configuration that
//! does not load is refused and changes nothing.

mod common;

use std::{net::IpAddr, time::Duration};

use ha_tests::{Lab, ha_agent_bin};

/// The tests of this file run one at a time: the first measures a reload's outage to the
/// millisecond, which a neighbour loading XDP programs on this 2-core machine would disturb.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for `cond` (lab commands inside may fail the test) for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond())).unwrap();
}

fn instance(name: &str, vrid: u8, vip: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    version 3\n    \
         priority 150\n    advert_int 0.05\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n"
    )
}

#[test]
fn sighup_keeps_unchanged_instances_and_applies_the_rest() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("reload", 1).expect("lab");
    let n1 = lab.node(1);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let first = instance("KEEP", 51, "192.0.2.201")
        + &instance("CHANGE", 52, "192.0.2.202")
        + &instance("DROP", 53, "192.0.2.203");
    let mut agent = lab.ha_agent(1, &first, &["--datapath", "socket"]).unwrap();
    wait_for("all three VIPs", Duration::from_secs(5), || {
        ["192.0.2.201", "192.0.2.202", "192.0.2.203"]
            .iter()
            .all(|v| n1.has_addr(ip(v)).unwrap())
    });
    let conf_path = lab.dir.join("ha-agent-n1.conf");

    // A broken file is refused: nothing changes.
    std::fs::write(
        &conf_path,
        "vrrp_instance BROKEN {\n    virtual_router_id 300\n}\n",
    )
    .unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    agent
        .wait_for_log("reload refused", Duration::from_secs(5))
        .unwrap();
    assert!(
        agent.log().contains("virtual_router_id"),
        "the refusal names the problem:\n{}",
        agent.log()
    );
    assert!(
        n1.has_addr(ip("192.0.2.203")).unwrap(),
        "a refused reload removed a VIP"
    );

    let prober = lab.prober(ip("192.0.2.201")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = instance("KEEP", 51, "192.0.2.201")
        + &instance("CHANGE", 52, "192.0.2.212")
        + &instance("NEW", 54, "192.0.2.204");
    std::fs::write(&conf_path, second).unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    agent
        .wait_for_log("reload done", Duration::from_secs(5))
        .unwrap();
    wait_for("the changed and new VIPs", Duration::from_secs(5), || {
        n1.has_addr(ip("192.0.2.212")).unwrap() && n1.has_addr(ip("192.0.2.204")).unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    let report = prober.stop().unwrap();
    assert!(
        !n1.has_addr(ip("192.0.2.202")).unwrap(),
        "the changed instance's old VIP is removed"
    );
    assert!(
        !n1.has_addr(ip("192.0.2.203")).unwrap(),
        "the removed instance's VIP is removed"
    );
    assert!(
        n1.has_addr(ip("192.0.2.201")).unwrap(),
        "the unchanged instance keeps its VIP"
    );
    // The unchanged instance did not flap: its VIP answered throughout (1 ms probes).
    assert!(
        report.longest_gap() < Duration::from_millis(50),
        "the unchanged instance's VIP was unreachable for {:?} during the reload",
        report.longest_gap()
    );
    let log = agent.log();
    let keep = |needle: &str| {
        log.lines()
            .filter(|l| l.contains("instance=KEEP") && l.contains(needle))
            .count()
    };
    assert_eq!(
        keep("-> MASTER"),
        1,
        "KEEP became master once, at start:\n{log}"
    );
    assert_eq!(keep("MASTER ->"), 0, "KEEP never left master:\n{log}");
}

/// On the XDP datapath a reload that changes one instance leaves the others alone and logs no
/// ERROR. Node 1 has a second VRRP interface (`vx0`, a veth whose peer stays in the node; its own XDP/TC and fence map): taking the
/// changed instance's VIPs out of the fence maps of every interface deleted entries that were
/// never there, and the failed `bpf_map_delete_elem` (ENOENT) was logged as an ERROR on every
/// such reload. Node 1 is master of the unchanged VI_A, node 2 its backup.
#[test]
fn a_reload_on_the_xdp_datapath_logs_no_error() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("reloadx", 2).expect("lab");
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    lab.node(1)
        .sh("ip link add vx0 type veth peer name vx1 && ip addr add 198.51.100.1/24 dev vx0 && ip link set vx1 up && ip link set vx0 up")
        .unwrap();
    let one = |name: &str, ifname: &str, vrid: u8, prio: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    state BACKUP\n    interface {ifname}\n    virtual_router_id {vrid}\n    \
             version 3\n    priority {prio}\n    advert_int 0.05\n    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n"
        )
    };
    let conf = |node: usize, b: u8| {
        let a = if node == 1 { 150 } else { 100 };
        let mut c =
            one("VI_A", "eth0", 61, a, "192.0.2.201") + &one("VI_B", "eth0", 62, b, "192.0.2.202");
        if node == 1 {
            c += &one("VI_C", "vx0", 63, 100, "198.51.100.200");
        }
        c
    };
    let mut agents = [
        lab.ha_agent(1, &conf(1, 100), &[]).unwrap(),
        lab.ha_agent(2, &conf(2, 150), &[]).unwrap(),
    ];
    let holders = |vip: &str| {
        (1..=2)
            .filter(|&i| lab.node(i).has_addr(ip(vip)).unwrap())
            .collect::<Vec<_>>()
    };
    let settled = || holders("192.0.2.201") == [1] && holders("192.0.2.202") == [2];
    wait_for(
        "VI_A on node 1, VI_B on node 2",
        Duration::from_secs(5),
        settled,
    );
    // VI_B changes on each node in turn; VI_A (and VI_C) stay as they are.
    for (round, (b1, b2)) in [(90, 150), (90, 140), (100, 150)].into_iter().enumerate() {
        for (i, agent) in agents.iter_mut().enumerate() {
            let b = if i == 0 { b1 } else { b2 };
            std::fs::write(
                lab.dir.join(format!("ha-agent-n{}.conf", i + 1)),
                conf(i + 1, b),
            )
            .unwrap();
            let done = agent.log().matches("reload done").count();
            agent.signal(libc::SIGHUP).unwrap();
            wait_for("the reload", Duration::from_secs(5), || {
                agent.log().matches("reload done").count() > done
            });
        }
        wait_for(
            &format!("round {round}: VI_A on node 1, VI_B on node 2"),
            Duration::from_secs(5),
            settled,
        );
    }
    for (i, agent) in agents.iter().enumerate() {
        let log = agent.log();
        assert!(
            log.contains("datapath xdp"),
            "node {}: not on the XDP datapath:\n{log}",
            i + 1
        );
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert!(
            errors.is_empty(),
            "node {}: errors across reloads that changed only VI_B:\n{}\n\nlog:\n{log}",
            i + 1,
            errors.join("\n")
        );
    }
    assert!(
        agents[0]
            .log()
            .lines()
            .filter(|l| l.contains("instance=VI_A"))
            .all(|l| !l.contains("MASTER ->")),
        "the unchanged VI_A left MASTER on node 1:\n{}",
        agents[0].log()
    );
}

/// An instance at `advert_int 0.02` tracking `scripts` (weight 1: they never change who wins).
fn tracking(name: &str, vrid: u8, priority: u8, scripts: &[&str]) -> String {
    let track = if scripts.is_empty() {
        String::new()
    } else {
        format!(
            "    track_script {{\n{}    }}\n",
            scripts
                .iter()
                .map(|s| format!("        {s} weight 1\n"))
                .collect::<String>()
        )
    };
    format!(
        "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {vrid}\n    \
         version 3\n    priority {priority}\n    advert_int 0.02\n{track}    virtual_ipaddress {{\n        \
         192.0.2.{vrid}/24\n    }}\n}}\n"
    )
}

/// A vrrp_script whose result changes every second (an update queued at any reload is likely).
fn flapping(name: &str) -> String {
    format!(
        "vrrp_script {name} {{\n    script \"/bin/sh -c '[ $(( $(date +%s) % 2 )) = 0 ]'\"\n    \
         interval 1\n    rise 1\n    fall 1\n}}\n"
    )
}

/// Regression: adverts (socket datapath) and script results queued while a reload ran carried
/// the old plan's indices: one past the new plan's end panicked the agent, others went to the
/// wrong instance or script. Node 2 is master of 16 instances at 50 adverts/s each; node 1 is
/// reloaded back and forth between all 16 (4 scripts) and 4 of them, reordered (2 scripts),
/// until what was queued for the old plan was seen (and dropped) three times.
#[test]
fn reloads_that_reorder_and_remove_instances_drop_what_was_queued_for_the_old_plan() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("reloadq", 2).expect("lab");
    let scripts4: String = ["chk0", "chk1", "chk2", "chk3"]
        .iter()
        .map(|s| flapping(s))
        .collect();
    let all = |priority: u8, tracked: bool| -> String {
        (0..16u8)
            .map(|k| {
                let s = ["chk0", "chk1", "chk2", "chk3"][usize::from(k % 4)];
                let scripts: &[&str] = if tracked { &[s] } else { &[] };
                tracking(&format!("VI_{k}"), 61 + k, priority, scripts)
            })
            .collect()
    };
    let full = scripts4.clone() + &all(100, true);
    let half = flapping("chk3")
        + &flapping("chk1")
        + &[7u8, 5, 3, 1]
            .iter()
            .map(|&k| {
                tracking(
                    &format!("VI_{k}"),
                    61 + k,
                    100,
                    &[["chk3", "chk1"][usize::from(k % 4 == 1)]],
                )
            })
            .collect::<String>();
    let mut peer = lab
        .ha_agent(2, &all(200, false), &["--datapath", "socket"])
        .unwrap();
    let mut agent = lab.ha_agent(1, &full, &["--datapath", "socket"]).unwrap();
    let backups = |n: usize| {
        common::node_status(&lab, 1).is_some_and(|r| {
            r.instances.len() == n
                && r.instances
                    .iter()
                    .all(|i| i.state == "BACKUP" && i.adverts.received > 0 && i.master.is_some())
        })
    };
    wait_for("node 1 backup of all 16", Duration::from_secs(10), || {
        backups(16)
    });
    let conf_path = lab.dir.join("ha-agent-n1.conf");
    let stale = |log: &str| log.matches("queued before the reload").count();
    let mut round = 0;
    while stale(&agent.log()) < 3 {
        round += 1;
        assert!(
            round <= 60,
            "60 reloads and nothing was ever queued across one: the test does not test"
        );
        let (text, n) = if round % 2 == 1 {
            (&half, 4)
        } else {
            (&full, 16)
        };
        std::fs::write(&conf_path, text).unwrap();
        agent.signal(libc::SIGHUP).unwrap();
        wait_for(&format!("reload {round}"), Duration::from_secs(10), || {
            agent.log().matches("reload done").count() >= round || !agent.is_running()
        });
        assert!(
            agent.is_running(),
            "node 1 died in reload {round}:\n{}",
            agent.log()
        );
        wait_for(
            &format!("node 1 backup of all {n} after reload {round}"),
            Duration::from_secs(10),
            || !agent.is_running() || backups(n),
        );
        assert!(
            agent.is_running(),
            "node 1 died after reload {round}:\n{}",
            agent.log()
        );
    }
    assert!(peer.is_running(), "{}", peer.log());
    eprintln!(
        "{round} reloads; {} adverts or script results queued across them were dropped",
        stale(&agent.log())
    );
    agent.signal(libc::SIGTERM).unwrap();
    agent.wait_timeout(Duration::from_secs(5)).unwrap();
}

/// A reload whose sockets or files cannot be set up is refused whole: the running
/// configuration keeps advertising. Before, the failure came after the old units were stopped
/// and left the new runtime without advert sockets: the next advert panicked the agent.
#[test]
fn a_reload_that_cannot_start_is_refused_and_the_old_configuration_keeps_running() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("reloadf", 1).expect("lab");
    let n1 = lab.node(1);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let first = instance("KEEP", 51, "192.0.2.201");
    let mut agent = lab.ha_agent(1, &first, &["--datapath", "socket"]).unwrap();
    wait_for("KEEP's VIP", Duration::from_secs(5), || {
        n1.has_addr(ip("192.0.2.201")).unwrap()
    });
    // init_file over a directory: it passes the checks (its directory exists) and fails when
    // written, after the new configuration's sockets are open.
    let dir = lab.dir.join("adir");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = format!(
        "track_file maint {{\n    file \"{}\"\n    init_file 0 overwrite\n}}\n",
        dir.display()
    );
    let second = instance("KEEP", 51, "192.0.2.201") + &instance("NEW", 52, "192.0.2.202");
    let conf_path = lab.dir.join("ha-agent-n1.conf");
    std::fs::write(&conf_path, bad + &second).unwrap();
    let sent = |lab: &Lab| {
        common::node_status(lab, 1).map_or(0, |r| {
            r.instances
                .iter()
                .find(|i| i.name == "KEEP")
                .map_or(0, |i| i.adverts.sent)
        })
    };
    agent.signal(libc::SIGHUP).unwrap();
    wait_for("the reload to be refused", Duration::from_secs(5), || {
        agent.log().contains("reload refused") || !agent.is_running()
    });
    assert!(
        agent.log().contains("init_file"),
        "the refusal says why:\n{}",
        agent.log()
    );
    // Still advertising (20 adverts at 0.05 s), still only KEEP.
    let before = sent(&lab);
    wait_for("KEEP to keep advertising", Duration::from_secs(5), || {
        !agent.is_running() || sent(&lab) >= before + 20
    });
    assert!(agent.is_running(), "the agent died:\n{}", agent.log());
    let report = common::node_status(&lab, 1).unwrap();
    assert_eq!(report.instances.len(), 1, "NEW must not run");
    assert_eq!(report.instances[0].state, "MASTER");
    assert!(!n1.has_addr(ip("192.0.2.202")).unwrap());
    // Fixed, the same reload is applied.
    std::fs::write(&conf_path, &second).unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    agent
        .wait_for_log("reload done", Duration::from_secs(5))
        .unwrap();
    wait_for("NEW's VIP", Duration::from_secs(5), || {
        n1.has_addr(ip("192.0.2.202")).unwrap()
    });
    agent.signal(libc::SIGTERM).unwrap();
    agent.wait_timeout(Duration::from_secs(5)).unwrap();
}

/// The case (#17): one instance, node 1 master at `prio1`, node 2 backup at `prio2`,
/// VIPs `vips`, a notify script that appends each call to `notify-n<node>.log`.
fn handover_pair(lab: &Lab, node: usize, prio: u8, vips: &[&str]) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let script = lab.dir.join("notify.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nn=\"$1\"; shift\necho \"$@\" >> \"$(dirname \"$0\")/notify-n$n.log\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vips: String = vips.iter().map(|v| format!("        {v}/24\n")).collect();
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         version 3\n    priority {prio}\n    advert_int 0.05\n    notify \"{} {node}\"\n    \
         virtual_ipaddress {{\n{vips}    }}\n}}\n",
        script.display()
    )
}

/// Transitions, state, configured and effective priority of node `i`'s VI_1, and the master
/// (address, priority) it knows.
fn vi1(lab: &Lab, i: usize) -> Option<(u64, String, u8, u8, Option<u8>)> {
    let r = common::node_status(lab, i)?;
    let v = r.instances.into_iter().find(|v| v.name == "VI_1")?;
    let master = v.master.map(|m| m.priority);
    Some((
        v.transitions,
        v.state,
        v.configured_priority,
        v.effective_priority,
        master,
    ))
}

/// Hitless reload (#17): lowering a master's priority 200 -> 190, still above its peer's 100,
/// and adding a VIP, with SIGHUP to both nodes, changes no state on either node and calls no
/// notify script; the VIP answers throughout, the new VIP is added on the master only, and
/// both status sockets show the new priority. Lowered to 90 (below the preempting peer) it
/// hands over exactly once: node 1 MASTER -> BACKUP, node 2 BACKUP -> MASTER, never a STOP.
#[test]
fn a_priority_change_applies_in_place_and_a_lower_one_hands_over_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("reloadp", 2).expect("lab");
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let first = ["192.0.2.200"];
    let second = ["192.0.2.200", "192.0.2.9"];
    let notified = |n: usize| {
        std::fs::read_to_string(lab.dir.join(format!("notify-n{n}.log")))
            .unwrap_or_default()
            .lines()
            .count()
    };
    // Node 2 joins a master: started together, either may be master first on a loaded host.
    let one = lab
        .ha_agent(1, &handover_pair(&lab, 1, 200, &first), &[])
        .unwrap();
    wait_for("node 1 MASTER", Duration::from_secs(10), || {
        vi1(&lab, 1).is_some_and(|v| v.1 == "MASTER") && notified(1) == 2
    });
    let two = lab
        .ha_agent(2, &handover_pair(&lab, 2, 100, &first), &[])
        .unwrap();
    let mut agents = [one, two];
    wait_for(
        "node 2 BACKUP hearing node 1",
        Duration::from_secs(10),
        || vi1(&lab, 2).is_some_and(|v| v.1 == "BACKUP" && v.4 == Some(200)) && notified(2) == 1,
    );
    let before = [vi1(&lab, 1).unwrap().0, vi1(&lab, 2).unwrap().0];
    let prober = lab.prober(ip("192.0.2.200")).unwrap();
    let replies = || {
        std::fs::read_to_string(lab.dir.join("prober-192_0_2_200.log"))
            .unwrap_or_default()
            .matches("bytes from")
            .count()
    };
    wait_for("the prober's first replies", Duration::from_secs(5), || {
        replies() >= 50
    });
    let reload = |agents: &mut [ha_tests::Daemon; 2], prios: [u8; 2], vips: &[&str]| {
        for (k, agent) in agents.iter_mut().enumerate() {
            let conf = handover_pair(&lab, k + 1, prios[k], vips);
            std::fs::write(lab.dir.join(format!("ha-agent-n{}.conf", k + 1)), conf).unwrap();
            let done = agent.log().matches("reload done").count();
            agent.signal(libc::SIGHUP).unwrap();
            wait_for("the reload", Duration::from_secs(5), || {
                agent.log().matches("reload done").count() > done
            });
        }
    };
    reload(&mut agents, [190, 100], &second);
    wait_for(
        "node 2 to hear priority 190",
        Duration::from_secs(5),
        || vi1(&lab, 2).is_some_and(|v| v.4 == Some(190)),
    );
    // Another second of adverts and probes after the change.
    let at = replies();
    wait_for(
        "a second of probes after the reload",
        Duration::from_secs(5),
        || replies() >= at + 1000,
    );
    let report = prober.stop().unwrap();
    let (one, two) = (vi1(&lab, 1).unwrap(), vi1(&lab, 2).unwrap());
    assert_eq!(
        (one.0, one.1.as_str(), one.2, one.3),
        (before[0], "MASTER", 190, 190)
    );
    assert_eq!((two.0, two.1.as_str(), two.2), (before[1], "BACKUP", 100));
    assert_eq!([notified(1), notified(2)], [2, 1], "a notify script ran");
    let log = agents[0].log();
    assert!(
        log.contains("priority 200 -> 190; virtual_ipaddress +192.0.2.9/24 (applied in place)"),
        "one line says what changed:\n{log}"
    );
    assert!(!log.contains("reload: stopping"), "{log}");
    assert!(
        lab.node(1).has_addr(ip("192.0.2.9")).unwrap(),
        "the added VIP on the master"
    );
    assert!(
        !lab.node(2).has_addr(ip("192.0.2.9")).unwrap(),
        "and not on the backup"
    );
    let lost: u16 = (0..report.replies).map(|k| report.lost_between(k)).sum();
    assert_eq!(lost, 0, "probes lost across the reload");
    assert!(
        report.longest_gap() < Duration::from_millis(50),
        "the VIP did not answer for {:?}",
        report.longest_gap()
    );

    // Below the peer: one handover, the normal way.
    reload(&mut agents, [90, 100], &second);
    wait_for(
        "node 2 MASTER, node 1 BACKUP",
        Duration::from_secs(5),
        || {
            vi1(&lab, 1).is_some_and(|v| v.1 == "BACKUP" && v.4 == Some(100))
                && vi1(&lab, 2).is_some_and(|v| v.1 == "MASTER")
                && lab.node(2).has_addr(ip("192.0.2.9")).unwrap()
                && notified(1) == 3
                && notified(2) == 2
        },
    );
    let (one, two) = (vi1(&lab, 1).unwrap(), vi1(&lab, 2).unwrap());
    assert_eq!(
        [one.0, two.0],
        [before[0] + 1, before[1] + 1],
        "one transition each"
    );
    assert!(!lab.node(1).has_addr(ip("192.0.2.200")).unwrap());
    for agent in &agents {
        let log = agent.log();
        assert!(!log.contains("-> INIT"), "an instance stopped:\n{log}");
    }
}

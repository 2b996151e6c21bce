//! track_process: the agent counts the processes of a name from the kernel's process events
//! (started with plain `ip netns exec`: the connector only speaks in the initial network
//! namespace), so killing the tracked process on the master hands the VIP to the backup, and
//! starting it again takes it back.

mod common;

use std::{net::IpAddr, path::Path, time::Duration};

use common::node_status;
use ha_tests::{Daemon, Lab, ha_agent_bin};

/// How long an agent may take to answer on its status socket (a loaded machine).
const READY: Duration = Duration::from_secs(20);

/// A VIP moves within this (advert_int 0.05: master down is well under a second).
const MOVE: Duration = Duration::from_secs(5);

/// Waits for `cond` (lab commands inside may fail the test) for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond())).unwrap();
}

fn instance(priority: u8, vrid: u8, tracking: &str) -> String {
    format!(
        "vrrp_instance VI {{\n    interface eth0\n    virtual_router_id {vrid}\n    version 3\n    \
         priority {priority}\n    advert_int 0.05\n{tracking}    virtual_ipaddress {{\n        \
         192.0.2.200/24\n    }}\n}}\n"
    )
}

/// The `process` tracker of node `i`'s first instance: (count, up), `None` while the agent does
/// not answer.
fn tracked(lab: &Lab, i: usize) -> Option<(u32, bool)> {
    let report = node_status(lab, i)?;
    let t = report.instances[0]
        .trackers
        .iter()
        .find(|t| t.kind == "process")
        .unwrap_or_else(|| panic!("no process tracker in node {i}'s status"));
    Some((t.count.expect("a process tracker shows its count"), t.up))
}

/// Starts a copy of `sleep` named `name` (its comm) in node 1.
fn start_copy(lab: &Lab, bin: &Path, tag: &str) -> Daemon {
    lab.node(1)
        .spawn(tag, &lab.dir, &bin.display().to_string(), &["1000"])
        .unwrap()
}

/// Unweighted (keepalived's default weight 0): the process gone is FAULT, as keepalived.
#[test]
fn killing_the_tracked_process_faults_the_master_and_restarting_it_takes_the_vip_back() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("tproc", 2).expect("lab");
    // A name no other process has (comm: at most 15 characters), unique to this test run.
    let name = format!("tpa{}", std::process::id());
    let bin = lab.dir.join(&name);
    std::fs::copy(ha_tests::which("sleep").unwrap(), &bin).unwrap();
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let conf1 = format!(
        "vrrp_track_process worker {{\n    process {name}\n}}\n{}",
        instance(150, 70, "    track_process {\n        worker\n    }\n")
    );

    let worker = start_copy(&lab, &bin, "worker-1");
    let mut a1 = lab.ha_agent(1, &conf1, &["--datapath", "socket"]).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &instance(100, 70, ""), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to be master", MOVE, || {
        lab.node(1).has_addr(vip).unwrap()
    });
    assert_eq!(tracked(&lab, 1), Some((1, true)), "log:\n{}", a1.log());

    worker.signal(libc::SIGKILL).unwrap();
    wait_for("node 2 to take over", MOVE, || {
        lab.node(2).has_addr(vip).unwrap() && !lab.node(1).has_addr(vip).unwrap()
    });
    let log = a1.log();
    assert!(
        log.lines().any(|l| l.contains("MASTER -> FAULT")),
        "node 1 did not go to FAULT; log:\n{log}"
    );
    assert_eq!(tracked(&lab, 1), Some((0, false)));
    // What an operator reads: the tracker, its state and how many run.
    let out = std::process::Command::new(ha_agent_bin().unwrap())
        .args(["status", "-f"])
        .arg(lab.dir.join("ha-agent-n1.conf"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains("process")
            && l.contains("worker")
            && l.contains("DOWN (0 running)")),
        "ha-agent status:\n{text}"
    );

    let _worker = start_copy(&lab, &bin, "worker-2");
    wait_for("node 1 to take the VIP back", MOVE, || {
        lab.node(1).has_addr(vip).unwrap() && !lab.node(2).has_addr(vip).unwrap()
    });
    assert_eq!(tracked(&lab, 1), Some((1, true)));
}

/// `full_command` with a parameter and `quorum 2`, weighted: argv[0] (set with `exec -a`) and
/// the parameter must match exactly, a process with another parameter does not count, and one
/// of the two gone lowers the master's priority below the backup's.
#[test]
fn a_weighted_quorum_of_full_commands_moves_the_vip_by_priority() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("tprocq", 2).expect("lab");
    let argv0 = format!("/opt/tpb{}/worker", std::process::id());
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let conf1 = format!(
        "vrrp_track_process workers {{\n    process {argv0} 1000\n    quorum 2\n    \
         weight -60\n}}\n{}",
        instance(150, 71, "    track_process {\n        workers\n    }\n")
    );
    let start = |tag: &str, param: &str| {
        lab.node(1)
            .spawn(
                tag,
                &lab.dir,
                "bash",
                &["-c", &format!("exec -a {argv0} sleep {param}")],
            )
            .unwrap()
    };
    let _other = start("other", "999");
    let _w1 = start("worker-1", "1000");
    let w2 = start("worker-2", "1000");
    let mut a1 = lab.ha_agent(1, &conf1, &["--datapath", "socket"]).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &instance(100, 71, ""), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to be master", MOVE, || {
        lab.node(1).has_addr(vip).unwrap()
    });
    assert_eq!(tracked(&lab, 1), Some((2, true)), "log:\n{}", a1.log());

    // 150 - 60 = 90 < 100.
    w2.signal(libc::SIGKILL).unwrap();
    wait_for("node 2 to take over", MOVE, || {
        lab.node(2).has_addr(vip).unwrap() && !lab.node(1).has_addr(vip).unwrap()
    });
    assert!(
        a1.log().contains("effective priority 90"),
        "log:\n{}",
        a1.log()
    );
    assert_eq!(tracked(&lab, 1), Some((1, false)));

    let _w3 = start("worker-3", "1000");
    wait_for("node 1 to preempt back", MOVE, || {
        lab.node(1).has_addr(vip).unwrap() && !lab.node(2).has_addr(vip).unwrap()
    });
    assert_eq!(tracked(&lab, 1), Some((2, true)));
}

/// A `vrrp_sync_group`'s own `track_process` faults every member: both VIPs move to the other
/// node together, and come back when the process runs again.
#[test]
fn a_sync_group_track_process_moves_the_whole_group() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("tprocg", 2).expect("lab");
    let name = format!("tpc{}", std::process::id());
    let bin = lab.dir.join(&name);
    std::fs::copy(ha_tests::which("sleep").unwrap(), &bin).unwrap();
    let member = |name: &str, vrid: u8, priority: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    \
             version 3\n    priority {priority}\n    advert_int 0.05\n    virtual_ipaddress {{\n        \
             {vip}/24\n    }}\n}}\n"
        )
    };
    let conf = |priority: u8, track: bool| {
        let (definition, reference) = if track {
            (
                format!("vrrp_track_process worker {{\n    process {name}\n}}\n"),
                "    track_process {\n        worker\n    }\n",
            )
        } else {
            (String::new(), "")
        };
        format!(
            "{definition}vrrp_sync_group G {{\n    group {{\n        VI_A\n        VI_B\n    }}\n\
             {reference}}}\n{}{}",
            member("VI_A", 72, priority, "192.0.2.201"),
            member("VI_B", 73, priority, "192.0.2.202")
        )
    };
    let vips: [IpAddr; 2] = [
        "192.0.2.201".parse().unwrap(),
        "192.0.2.202".parse().unwrap(),
    ];
    let holds = |node: usize| vips.iter().all(|v| lab.node(node).has_addr(*v).unwrap());
    let holds_none = |node: usize| vips.iter().all(|v| !lab.node(node).has_addr(*v).unwrap());

    let worker = start_copy(&lab, &bin, "worker-1");
    let mut a1 = lab
        .ha_agent(1, &conf(150, true), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &conf(100, false), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to hold both VIPs", MOVE, || holds(1));

    worker.signal(libc::SIGKILL).unwrap();
    wait_for("node 2 to take both VIPs", MOVE, || {
        holds(2) && holds_none(1)
    });
    let log = a1.log();
    for member in ["VI_A", "VI_B"] {
        assert!(
            log.lines()
                .any(|l| l.contains(member) && l.contains("MASTER -> FAULT")),
            "{member} did not go to FAULT; log:\n{log}"
        );
    }

    let _worker = start_copy(&lab, &bin, "worker-2");
    wait_for("node 1 to take both VIPs back", MOVE, || {
        holds(1) && holds_none(2)
    });
}

/// A process renaming itself away from the name (a COMM event: it writes its own
/// `/proc/self/comm`) counts at once, however long `terminate_delay` is; a process that exits is
/// still counted up for `terminate_delay`, so a supervisor that restarts it within the delay
/// never moves the VIP.
#[test]
fn a_rename_counts_at_once_and_terminate_delay_rides_out_a_restart() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("tprocd", 2).expect("lab");
    let name = format!("tpd{}", std::process::id());
    // A copy of bash named `name` that renames itself on SIGUSR1 and back on SIGUSR2, and forks
    // nothing (it waits on a FIFO nobody writes: `read` is a builtin).
    let bin = lab.dir.join(&name);
    std::fs::copy(ha_tests::which("bash").unwrap(), &bin).unwrap();
    let fifo = lab.dir.join("idle");
    ha_tests::run(std::process::Command::new("mkfifo").arg(&fifo)).unwrap();
    let script = format!(
        "trap 'printf renamed > /proc/$$/comm' USR1; trap 'printf {name} > /proc/$$/comm' USR2; \
         exec 3<> {}; while :; do read -t 0.1 -u 3; done",
        fifo.display()
    );
    let start = |tag: &str| {
        lab.node(1)
            .spawn(tag, &lab.dir, &bin.display().to_string(), &["-c", &script])
            .unwrap()
    };
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let conf1 = format!(
        "vrrp_track_process worker {{\n    process {name}\n    terminate_delay 60\n}}\n{}",
        instance(150, 74, "    track_process {\n        worker\n    }\n")
    );
    let worker = start("worker-1");
    let mut a1 = lab.ha_agent(1, &conf1, &["--datapath", "socket"]).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &instance(100, 74, ""), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to be master", MOVE, || {
        lab.node(1).has_addr(vip).unwrap()
    });
    assert_eq!(tracked(&lab, 1), Some((1, true)), "log:\n{}", a1.log());

    // Renamed: gone from the count at once (well within the 60 s terminate_delay).
    worker.signal(libc::SIGUSR1).unwrap();
    wait_for("node 2 to take over after the rename", MOVE, || {
        lab.node(2).has_addr(vip).unwrap() && !lab.node(1).has_addr(vip).unwrap()
    });
    assert_eq!(tracked(&lab, 1), Some((0, false)));
    worker.signal(libc::SIGUSR2).unwrap();
    wait_for(
        "node 1 to take the VIP back after the rename back",
        MOVE,
        || lab.node(1).has_addr(vip).unwrap() && !lab.node(2).has_addr(vip).unwrap(),
    );

    // Killed: none runs, but the quorum holds for terminate_delay.
    worker.signal(libc::SIGKILL).unwrap();
    wait_for("the exit to be counted", MOVE, || {
        tracked(&lab, 1).is_some_and(|t| t.0 == 0)
    });
    assert_eq!(tracked(&lab, 1), Some((0, true)), "log:\n{}", a1.log());
    let _worker = start("worker-2");
    wait_for("the restart to be counted", MOVE, || {
        tracked(&lab, 1).is_some_and(|t| t.0 == 1)
    });
    assert_eq!(tracked(&lab, 1), Some((1, true)));
    assert!(
        lab.node(1).has_addr(vip).unwrap() && !lab.node(2).has_addr(vip).unwrap(),
        "the VIP moved during terminate_delay"
    );
    let log = a1.log();
    assert_eq!(
        log.matches("quorum lost").count(),
        1,
        "only the rename lost the quorum; log:\n{log}"
    );
}

/// Lost process events are never silent: with the connector's receive buffer at the kernel's
/// minimum (`process_monitor_rcv_bufs`), a burst of a thousand short processes overflows it
/// while the tracked process is killed; /proc is read again and the process is counted gone
/// whether or not its exit was among the events lost.
#[test]
fn lost_process_events_are_recounted_from_proc() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("tprocl", 2).expect("lab");
    let name = format!("tpe{}", std::process::id());
    let bin = lab.dir.join(&name);
    std::fs::copy(ha_tests::which("sleep").unwrap(), &bin).unwrap();
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let conf1 = format!(
        "global_defs {{\n    process_monitor_rcv_bufs 1\n}}\n\
         vrrp_track_process worker {{\n    process {name}\n}}\n{}",
        instance(150, 75, "    track_process {\n        worker\n    }\n")
    );
    let worker = start_copy(&lab, &bin, "worker-1");
    let mut a1 = lab.ha_agent(1, &conf1, &["--datapath", "socket"]).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &instance(100, 75, ""), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to be master", MOVE, || {
        lab.node(1).has_addr(vip).unwrap()
    });

    // 40 shells each running /bin/true 25 times (a fork, an exec and an exit each), the
    // tracked process killed in the middle of it.
    let burst = format!(
        "for i in $(seq 40); do (for j in $(seq 25); do /bin/true; done) & done; \
         kill -9 {}; wait",
        worker.pid()
    );
    lab.node(1).sh(&burst).unwrap();
    wait_for("node 2 to take over", Duration::from_secs(10), || {
        lab.node(2).has_addr(vip).unwrap() && !lab.node(1).has_addr(vip).unwrap()
    });
    let log = a1.log();
    assert!(
        log.contains("process events were lost"),
        "the burst lost no event: nothing was tested; log:\n{log}"
    );
    wait_for("/proc to be read again", MOVE, || {
        a1.log().contains("0 running after reading /proc again")
    });
    assert_eq!(tracked(&lab, 1), Some((0, false)));
}

//! Bad input a user depends on ha-agent to survive:
//!
//! - every file of the broken-configuration corpus (`ha-agent/tests/config/broken`) is refused
//!   by `check-config` and by `run` with `file:line:col` and what was expected, and `run` touches
//!   nothing on the host first (no address, route, multicast membership, XDP/TC attachment,
//!   control socket or pid file; no namespace);
//! - a notify script that fails (exit 1) or cannot start (not executable) is logged and the
//!   election goes on: the VIP still moves;
//! - a vrrp_script that hangs is killed at its timeout, with everything it started, and counts
//!   as a failure;
//! - the VRRP interface disappears (the veth is deleted inside the node) and comes back: the
//!   instance goes FAULT, the backup takes over, and the instance recovers and preempts back;
//! - another host claims the master's VIP (gratuitous ARP), or the VIP is already on the host
//!   when the agent starts: an address conflict is reported and counted, nothing else changes.

mod common;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{Kind, Scene, epoch_now, global_defs, wait_for_replies};
use ha_agent::control::default_socket_path;
use ha_tests::{IFACE, Lab, Node, ha_agent_bin};

fn broken_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ha-agent/tests/config/broken")
}

/// Each broken file, the file its first error is in (relative to the corpus), its line and
/// column, and a fragment of the message.
const BROKEN: &[(&str, &str, u32, u32, &str)] = &[
    (
        "advert_int_precision.conf",
        "advert_int_precision.conf",
        4,
        16,
        "more than 6 decimal places",
    ),
    ("auth_ah.conf", "auth_ah.conf", 5, 19, "auth_type AH"),
    (
        "bad_state.conf",
        "bad_state.conf",
        4,
        11,
        "expected MASTER or BACKUP",
    ),
    (
        "bad_vip.conf",
        "bad_vip.conf",
        5,
        9,
        "expected an IP address",
    ),
    (
        "binary_tail.conf",
        "binary_tail.conf",
        8,
        1,
        "unknown keyword",
    ),
    (
        "definition_value.conf",
        "definition_value.conf",
        4,
        23,
        "expected an integer 1-255, found \"300\"",
    ),
    (
        "crlf_advert_int_zero.conf",
        "crlf_advert_int_zero.conf",
        4,
        16,
        "expected a number of seconds 0.01-255",
    ),
    (
        "duplicate_name.conf",
        "duplicate_name.conf",
        4,
        14,
        "expected an integer 1-255",
    ),
    (
        "duplicate_vrid.conf",
        "duplicate_vrid.conf",
        10,
        5,
        "both use VRID 5",
    ),
    (
        "extra_brace.conf",
        "extra_brace.conf",
        8,
        1,
        "unexpected '}'",
    ),
    (
        "include_error.conf",
        "inc/bad.conf",
        3,
        23,
        "virtual_router_id",
    ),
    (
        "include_device.conf",
        "include_device.conf",
        4,
        1,
        "include: cannot read /dev/zero: a character device, not a regular file",
    ),
    (
        "instance_no_name.conf",
        "instance_no_name.conf",
        1,
        15,
        "expected a name",
    ),
    ("loop/a.conf", "loop/b.conf", 1, 1, "include loop"),
    (
        "lvs_refused.conf",
        "lvs_refused.conf",
        10,
        16,
        "before netfilter sets marks",
    ),
    (
        "many_errors.conf",
        "many_errors.conf",
        2,
        18,
        "vrrp_version",
    ),
    (
        "missing_value.conf",
        "missing_value.conf",
        3,
        23,
        "found end of line",
    ),
    (
        "missing_vrid.conf",
        "missing_vrid.conf",
        1,
        1,
        "virtual_router_id: required",
    ),
    (
        "mixed_peer_family.conf",
        "mixed_peer_family.conf",
        6,
        9,
        "is IPv6 but",
    ),
    (
        "negative_interval.conf",
        "negative_interval.conf",
        3,
        14,
        "found \"-1\"",
    ),
    (
        "preprocessor.conf",
        "preprocessor.conf",
        2,
        1,
        "invalid ~SEQ values",
    ),
    (
        "priority_word.conf",
        "priority_word.conf",
        4,
        14,
        "found \"high\"",
    ),
    (
        "sync_unknown_instance.conf",
        "sync_unknown_instance.conf",
        4,
        9,
        "no vrrp_instance named",
    ),
    (
        "tabs_bad_peer.conf",
        "tabs_bad_peer.conf",
        7,
        3,
        "found \"192.0.2.256\"",
    ),
    (
        "unclosed_block.conf",
        "unclosed_block.conf",
        1,
        20,
        "never closed",
    ),
    (
        "undefined_script.conf",
        "undefined_script.conf",
        12,
        9,
        "no vrrp_script named",
    ),
    (
        "unknown_keyword.conf",
        "unknown_keyword.conf",
        4,
        5,
        "unknown keyword \"priorty\"",
    ),
    (
        "unterminated_quote.conf",
        "unterminated_quote.conf",
        2,
        12,
        "unterminated quoted string",
    ),
    (
        "utf8_keyword.conf",
        "utf8_keyword.conf",
        5,
        5,
        "unknown keyword \"nötify_master\"",
    ),
    (
        "vip_without_block.conf",
        "vip_without_block.conf",
        4,
        38,
        "expected a '{' block",
    ),
    (
        "vrid_out_of_range.conf",
        "vrid_out_of_range.conf",
        3,
        23,
        "found \"300\"",
    ),
];

/// Files of the corpus that are read only through another one's `include`.
const INCLUDED_ONLY: &[&str] = &["inc/bad.conf", "loop/b.conf"];

/// Every `.conf` under `dir`, relative to it.
fn conf_files(dir: &Path, rel: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir.join(rel)).unwrap() {
        let entry = entry.unwrap();
        let rel = rel.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            conf_files(dir, &rel, out);
        } else if rel.extension().is_some_and(|e| e == "conf") {
            out.push(rel.display().to_string());
        }
    }
}

/// What a node looks like from the inside, for "touched nothing": links (with XDP programs),
/// addresses, routes and rules of both families, multicast memberships, BPF attachments.
fn snapshot(node: &Node) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let views: &[(&str, &[&str])] = &[
        ("links", &["ip", "-d", "link", "show"]),
        ("addresses", &["ip", "addr", "show"]),
        ("routes v4", &["ip", "-4", "route", "show", "table", "all"]),
        ("routes v6", &["ip", "-6", "route", "show", "table", "all"]),
        ("rules", &["ip", "rule", "show"]),
        ("multicast", &["ip", "maddr", "show"]),
        ("bpf attachments", &["bpftool", "net", "show"]),
        ("neighbours", &["ip", "neigh", "show", "nud", "permanent"]),
    ];
    for (name, argv) in views {
        let text = node
            .run(argv[0], &argv[1..])
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        out.insert(*name, text);
    }
    out
}

/// Namespaces of this lab that exist now.
fn lab_namespaces(lab: &Lab) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&lab.name))
        .collect();
    names.sort();
    names
}

/// Runs `ha-agent ARGS…` in `node` and returns (exit code, everything it printed); fails if it
/// is still running after `timeout` (a refused configuration must not start).
fn agent_in(node: &Node, lab: &Lab, name: &str, args: &[&str], timeout: Duration) -> (i32, String) {
    let bin = ha_agent_bin().unwrap().display().to_string();
    let mut daemon = node.spawn(name, &lab.dir, &bin, args).unwrap();
    match daemon.wait_timeout(timeout).unwrap() {
        Some(status) => (status.code().unwrap_or(-1), daemon.log()),
        None => panic!(
            "`ha-agent {}` still runs after {timeout:?}: it accepted the file; log:\n{}",
            args.join(" "),
            daemon.log()
        ),
    }
}

#[test]
fn broken_configs_are_refused_at_their_position_and_touch_nothing() {
    ha_agent_bin().expect("the ha-agent binary: run `cargo build -p ha-agent` first");
    which_or_fail("bpftool", "apt-get install bpftool");
    let dir = broken_dir();

    // The table covers the corpus: a new broken file needs its expected position here.
    let mut found = Vec::new();
    conf_files(&dir, Path::new(""), &mut found);
    found.retain(|f| !INCLUDED_ONLY.contains(&f.as_str()));
    found.sort();
    let mut listed: Vec<String> = BROKEN.iter().map(|b| b.0.to_owned()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "every broken file has its expected error here"
    );

    let lab = Lab::new("badcfg", 1).unwrap();
    let node = lab.node(1);
    let before = snapshot(node);
    let namespaces = lab_namespaces(&lab);
    let mut failures = Vec::new();
    for &(file, err_file, line, col, fragment) in BROKEN {
        let path = dir.join(file);
        let want = format!("{}:{line}:{col}: ", dir.join(err_file).display());
        let shows = |out: &str| {
            out.lines()
                .any(|l| l.contains(&want) && l.contains(fragment))
        };

        // The library, as check-config and run read it: the first error is the expected one.
        match ha_agent::config::load(&path) {
            Ok(_) => failures.push(format!("{file}: loads without error")),
            Err(e)
                if !e
                    .to_string()
                    .lines()
                    .next()
                    .is_some_and(|l| l.starts_with(&want) && l.contains(fragment)) =>
            {
                failures.push(format!(
                    "{file}: first error is not {want}…{fragment}:\n{e}"
                ))
            }
            Err(_) => {}
        }

        let p = path.display().to_string();
        let (code, out) = agent_in(
            node,
            &lab,
            "check-config",
            &["check-config", "-f", &p],
            Duration::from_secs(10),
        );
        if code != 1 || !shows(&out) {
            failures.push(format!(
                "check-config -f {file}: exit {code}, want 1 and {want}…{fragment}:\n{out}"
            ));
        }

        // `run` with the default datapath (XDP and TC if they load): it must stop before any.
        let pid_file = lab.dir.join("refused.pid");
        let socket = lab.dir.join("refused.sock");
        let (code, out) = agent_in(
            node,
            &lab,
            "run",
            &[
                "run",
                "-f",
                &p,
                "--pid-file",
                &pid_file.display().to_string(),
                "--control-socket",
                &socket.display().to_string(),
            ],
            Duration::from_secs(10),
        );
        if code == 0 || !shows(&out) {
            failures.push(format!(
                "run -f {file}: exit {code}, want non-zero and {want}…{fragment}:\n{out}"
            ));
        }
        for left in [&pid_file, &socket, &default_socket_path(&path)] {
            if left.exists() {
                failures.push(format!("run -f {file} left {}", left.display()));
                let _ = std::fs::remove_file(left);
            }
        }
        let after = snapshot(node);
        for (view, text) in &before {
            if after[view] != *text {
                failures.push(format!(
                    "run -f {file} changed the node's {view}:\nbefore:\n{text}\nafter:\n{}",
                    after[view]
                ));
            }
        }
        if lab_namespaces(&lab) != namespaces {
            failures.push(format!(
                "run -f {file} changed the lab's namespaces: {:?} → {:?}",
                namespaces,
                lab_namespaces(&lab)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A configuration that reads well but names what the host lacks (an interface, the loopback,
/// a script user) is refused by `check-config` and by `run`, before it touches anything, naming
/// what is missing where the file names it.
#[test]
fn run_refuses_what_the_host_lacks_and_touches_nothing() {
    ha_agent_bin().expect("the ha-agent binary: run `cargo build -p ha-agent` first");
    which_or_fail("bpftool", "apt-get install bpftool");
    let lab = Lab::new("badhost", 1).unwrap();
    let node = lab.node(1);
    let instance = |iface: &str| {
        format!(
            "vrrp_instance VI_1 {{\n    interface {iface}\n    virtual_router_id 51\n    version 3\n    \
             advert_int 0.1\n    virtual_ipaddress {{\n        192.0.2.200/24\n    }}\n}}\n"
        )
    };
    // What each refusal must say: `{}` is the configuration's path.
    let cases = [
        (
            "no-such-interface",
            instance("eth9"),
            "{}:2:15: vrrp_instance VI_1: interface: no interface `eth9` on this host",
        ),
        (
            "loopback",
            instance("lo"),
            "{}:2:15: interface: the loopback",
        ),
        (
            "no-such-user",
            "global_defs {\n    script_user nosuchuser\n}\n".to_owned() + &instance(IFACE),
            "{}:2:17: global_defs script_user: user `nosuchuser` does not exist on this host",
        ),
    ];
    let before = snapshot(node);
    let namespaces = lab_namespaces(&lab);
    for (name, conf, says) in cases {
        let path = lab.write_file(&format!("{name}.conf"), &conf).unwrap();
        let says = says.replace("{}", &path.display().to_string());
        // check-config makes the same checks (the same function: `agent::preflight`).
        let (code, out) = agent_in(
            node,
            &lab,
            &format!("{name}-check"),
            &["check-config", "-f", &path.display().to_string()],
            Duration::from_secs(10),
        );
        assert!(
            code == 1 && out.contains(&says),
            "check-config {name}: exit {code}, want 1 and {says:?}:\n{out}"
        );
        let socket = lab.dir.join(format!("{name}.sock"));
        let (code, out) = agent_in(
            node,
            &lab,
            name,
            &[
                "run",
                "-f",
                &path.display().to_string(),
                "--control-socket",
                &socket.display().to_string(),
            ],
            Duration::from_secs(10),
        );
        assert!(
            code != 0 && out.contains(&says),
            "{name}: exit {code}, want {says:?}:\n{out}"
        );
        assert!(!socket.exists(), "{name}: left its control socket");
        assert_eq!(snapshot(node), before, "{name}: the node changed");
        assert_eq!(
            lab_namespaces(&lab),
            namespaces,
            "{name}: namespaces changed"
        );
    }
}

fn which_or_fail(program: &str, install: &str) {
    ha_tests::which(program)
        .unwrap_or_else(|e| panic!("this test needs {program} ({e:#}): `{install}`"));
}

const ADVERT_INT: Duration = Duration::from_millis(100);

/// Master_Down_Interval of a priority 100 backup at advert_int 0.1 (RFC 5798 §6.1).
fn master_down() -> Duration {
    3 * ADVERT_INT + ADVERT_INT * 156 / 256
}

fn vip() -> IpAddr {
    "192.0.2.200".parse().unwrap()
}

/// A VRRPv3 instance at advert_int 0.1 with the VIP, and `extra` lines.
fn instance(priority: u8, extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         version 3\n    priority {priority}\n    advert_int 0.1\n{extra}    virtual_ipaddress {{\n        \
         192.0.2.200/24\n    }}\n}}\n"
    )
}

/// Writes an executable (or not) shell script into the lab directory.
fn script(lab: &Lab, name: &str, body: &str, mode: u32) -> PathBuf {
    let path = lab
        .write_file(name, &format!("#!/bin/sh\n{body}\n"))
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn failing_notify_scripts_are_logged_and_the_election_goes_on() {
    let mut s = Scene::new("notify", 2);
    let witness = s.lab.dir.join("ran");
    // Node 1: notify_master exits 1 (it runs: the witness shows it), notify exits 1 too.
    let fails = script(
        &s.lab,
        "fails.sh",
        &format!("echo \"$@\" >> {}\nexit 1", witness.display()),
        0o755,
    );
    // Node 2: its notify_master cannot start at all.
    let not_exec = script(&s.lab, "not-executable.sh", "exit 0", 0o644);
    let n1 = format!(
        "    notify_master {}\n    notify {}\n",
        fails.display(),
        fails.display()
    );
    let n2 = format!("    notify_master {}\n", not_exec.display());
    s.start(1, Kind::Agent, &(global_defs("n1") + &instance(150, &n1)));
    s.start(2, Kind::Agent, &(global_defs("n2") + &instance(100, &n2)));
    let timeout = Duration::from_secs(5);
    s.wait_vip(vip(), &[1], timeout);
    s.wait("node 1 to log its failed notify_master", timeout, |s| {
        s.log(1)
            .lines()
            .any(|l| l.contains("WARN") && l.contains("fails.sh") && l.contains("failed"))
    });
    s.wait("the notify scripts to have run", timeout, |_| {
        std::fs::read_to_string(&witness)
            .is_ok_and(|w| w.lines().any(|l| l.trim() == "INSTANCE VI_1 MASTER 150"))
    });
    // Still master, still answering, after its scripts failed.
    s.hold_vip(vip(), &[1], 5 * ADVERT_INT);

    // The failover still happens; node 2's notify_master cannot even start.
    let prober = s.lab.prober(vip()).unwrap();
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    s.lab.cut(1).unwrap();
    let moved = s.wait_vip(vip(), &[2], timeout);
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    s.wait(
        "node 2 to log that its notify_master cannot start",
        timeout,
        |s| {
            s.log(2).lines().any(|l| {
                l.contains("WARN") && l.contains("not-executable.sh") && l.contains("cannot start")
            })
        },
    );
    let gap = prober.stop().unwrap().longest_gap();
    if gap > 10 * master_down() {
        s.fail(&format!(
            "client outage {gap:?} (VIP moved after {moved:?}), want < 10 × Master_Down_Interval"
        ));
    }
    s.lab.restore(1).unwrap();
    s.wait_vip(vip(), &[1], timeout);
}

/// Processes in `node` whose command line contains `marker`.
fn processes_with(node: &Node, marker: &str) -> Vec<String> {
    let pids = ha_tests::run(Command::new("ip").args(["netns", "pids", &node.ns])).unwrap();
    pids.split_whitespace()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(marker)
                .then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}

#[test]
fn a_hanging_vrrp_script_is_killed_at_its_timeout_and_counts_as_failed() {
    let mut s = Scene::new("hang", 2);
    let hang = s.lab.dir.join("hang");
    // What a check that waits on a dead backend does: a child that never returns. The child
    // (`sleep 3600`) must die with the script at the timeout, not be left behind.
    let check = script(
        &s.lab,
        "check.sh",
        &format!("[ -e {} ] && sleep 3600\nexit 0", hang.display()),
        0o755,
    );
    let scripts = format!(
        "vrrp_script chk {{\n    script \"{}\"\n    interval 1\n    timeout 1\n    fall 1\n    rise 1\n    \
         weight -100\n}}\n",
        check.display()
    );
    let track = "    track_script {\n        chk\n    }\n";
    s.start(
        1,
        Kind::Agent,
        &(global_defs("n1") + &scripts + &instance(150, track)),
    );
    s.start(2, Kind::Agent, &(global_defs("n2") + &instance(100, "")));
    let timeout = Duration::from_secs(10);
    s.wait_vip(vip(), &[1], timeout);
    s.wait_log(1, "vrrp_script chk is up", 1, timeout);

    std::fs::write(&hang, "").unwrap();
    // Down within interval + timeout (+ slack); 150 − 100 = 50 < 100: node 2 takes over.
    let took = s.wait_vip(vip(), &[2], timeout);
    s.wait_log(1, "timed out after", 1, timeout);
    s.wait_log(1, "vrrp_script chk is down", 1, timeout);
    if took > Duration::from_secs(4) {
        s.fail(&format!(
            "the VIP moved {took:?} after the script started hanging; want ≤ interval + \
             timeout + Master_Down_Interval + slack (4 s)"
        ));
    }
    // Let it hang (and be killed) a few more times: every run's children die with it.
    std::thread::sleep(Duration::from_secs(3));
    let node = s.lab.node(1).clone();
    let alive = processes_with(&node, "sleep 3600");
    if alive.len() > 1 {
        s.fail(&format!(
            "{} hanging children of timed-out runs of the script are still alive (at most the \
             current run's may be):\n{}",
            alive.len(),
            alive.join("\n")
        ));
    }

    std::fs::remove_file(&hang).unwrap();
    s.wait_log(1, "vrrp_script chk is up", 2, timeout);
    s.wait_vip(vip(), &[1], timeout);
    // The last hanging run has been killed by now: nothing of the script is left.
    let alive = processes_with(&node, "sleep 3600");
    if !alive.is_empty() {
        s.fail(&format!(
            "children of the killed script are still alive:\n{}",
            alive.join("\n")
        ));
    }
}

/// A track_file that is a FIFO (nothing writes it) does not hang the agent: it is refused with a
/// warning and counts as 0; once it is a regular file its value counts again.
#[test]
fn a_track_file_that_is_a_fifo_does_not_hang_the_agent() {
    let mut s = Scene::new("trackfifo", 2);
    let file = s.lab.dir.join("maint");
    let c = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let tracked = format!(
        "track_file maint {{\n    file \"{}\"\n    weight 100\n}}\n",
        file.display()
    );
    let track = "    track_file {\n        maint\n    }\n";
    s.start(
        1,
        Kind::Agent,
        &(global_defs("n1") + &tracked + &instance(150, track)),
    );
    s.start(2, Kind::Agent, &(global_defs("n2") + &instance(100, "")));
    let timeout = Duration::from_secs(10);
    // A blocking open of the FIFO would stop node 1's loop before its first advert.
    s.wait_vip(vip(), &[1], timeout);
    s.wait_log(1, "not a regular file", 1, timeout);
    // A regular file with -1: 150 - 100 = 50 < 100, node 2 takes over.
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, "-1\n").unwrap();
    s.wait_vip(vip(), &[2], timeout);
}

/// Deletes node `i`'s `eth0` (and so its veth peer, the bridge port).
fn delete_iface(lab: &Lab, i: usize) {
    lab.node(i).run("ip", &["link", "del", IFACE]).unwrap();
}

fn interface_disappears_and_comes_back(tag: &str, kind: Kind) {
    let mut s = Scene::new(tag, 2);
    s.start(1, kind, &(global_defs("n1") + &instance(150, "")));
    s.start(2, kind, &(global_defs("n2") + &instance(100, "")));
    let timeout = Duration::from_secs(5);
    s.wait_vip(vip(), &[1], timeout);
    let prober = s.lab.prober(vip()).unwrap();
    wait_for_replies(&s, vip(), epoch_now(), timeout);

    delete_iface(&s.lab, 1);
    s.wait_log(1, "MASTER -> FAULT", 1, timeout);
    // (Node 1 has no eth0 to list addresses of: only node 2 is asked.)
    s.wait("node 2 to take the VIP", timeout, |s| {
        s.lab.node(2).has_addr(vip()).unwrap()
    });
    wait_for_replies(&s, vip(), epoch_now(), timeout);
    // Still in FAULT while the interface is gone, and still running.
    s.hold("node 1's agent running in FAULT", 5 * ADVERT_INT, |s| {
        !s.log(1).contains("FAULT -> ")
    });

    // As the lab first made it (`Lab::rewire`), link up first, then its addresses; here with
    // the agent given the time to see the new interface before it has an address: its reload
    // then cannot work (no address to send adverts from) and must be retried once the address
    // comes (it was refused for good, leaving the node in FAULT on a dead ifindex).
    s.lab.rewire_link(1).unwrap();
    s.wait_log(1, "has no IPv4 address to send adverts from", 1, timeout);
    s.lab.readdress(1).unwrap();
    s.wait_log(1, "FAULT -> BACKUP", 1, timeout);
    // Each deferral said so, as a warning (it is not a refused configuration).
    for line in s
        .log(1)
        .lines()
        .filter(|l| l.contains("has no IPv4 address"))
    {
        if !(line.contains("WARN") && line.contains("deferred")) {
            s.fail(&format!(
                "the deferred reload is not a WARN saying so: {line}"
            ));
        }
    }
    // Priority 150 preempts: the VIP comes back to node 1, on its new interface, and answers.
    s.wait_vip(vip(), &[1], timeout);
    let back = epoch_now();
    s.wait(
        "the client's pings to be answered by node 1 again",
        timeout,
        |s| common::prober_replies_after(&s.lab, vip(), back) > 0,
    );
    let mac = s.lab.node(1).mac().unwrap();
    let arp = s.lab.arp_probe(Ipv4Addr::new(192, 0, 2, 200), 5).unwrap();
    if arp.macs.len() != 1 || !arp.macs.contains(&mac) {
        s.fail(&format!(
            "after recovery ARP for the VIP is answered by {:?}, want node 1's new {mac} alone",
            arp.macs
        ));
    }
    // Node 2 hears node 1's adverts from the new interface and stays backup.
    s.hold_vip(vip(), &[1], 10 * ADVERT_INT);
    prober.stop().unwrap();
}

#[test]
fn interface_disappears_and_comes_back_socket_datapath() {
    interface_disappears_and_comes_back("ifgone", Kind::Agent);
}

#[test]
fn interface_disappears_and_comes_back_xdp_datapath() {
    interface_disappears_and_comes_back("ifgonex", Kind::AgentXdp);
}

/// A backup whose agent hangs (SIGSTOP, or starved of CPU) longer than the master-down interval
/// and then resumes finds the master's adverts queued on its socket: it must read them rather
/// than act on its expired timer first. Becoming MASTER for a moment adds the VIP and sends a
/// gratuitous ARP that turns the client away from the real master (an outage of about a second,
/// until the client's ARP entry fails over again).
#[test]
fn a_backup_resumed_after_a_hang_does_not_take_over() {
    let mut s = Scene::new("resume", 2);
    s.start(1, Kind::Agent, &(global_defs("n1") + &instance(150, "")));
    s.start(2, Kind::Agent, &(global_defs("n2") + &instance(100, "")));
    let timeout = Duration::from_secs(5);
    s.wait_vip(vip(), &[1], timeout);
    s.wait_log(2, "BACKUP", 1, timeout);
    for round in 1..=3 {
        s.daemon(2).signal(libc::SIGSTOP).unwrap();
        std::thread::sleep(5 * master_down());
        s.daemon(2).signal(libc::SIGCONT).unwrap();
        s.hold_vip(vip(), &[1], 10 * ADVERT_INT);
        if s.log(2).contains("BACKUP -> MASTER") {
            s.fail(&format!(
                "round {round}: node 2 became MASTER on resuming although node 1's adverts were \
                 waiting on its socket"
            ));
        }
    }
}

/// A VIP the kernel refuses to add is retried with backoff; after the bound the instance goes
/// to FAULT and says which VIP and why (log and status), and gives up the VIPs it added. Here
/// the VIP's `dev` (no_track, so its loss alone faults nothing) is deleted while node 1 waits
/// to become master: the add fails with ENODEV. After a hold it leaves FAULT and tries again.
#[test]
fn a_vip_that_cannot_be_added_is_retried_then_faults_the_instance() {
    let mut s = Scene::new("vipfail", 1);
    let node = s.lab.node(1).clone();
    node.sh("ip link add vx0 type veth peer name vx1 && ip link set vx1 up && ip link set vx0 up")
        .unwrap();
    let conf = "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
                version 3\n    priority 100\n    advert_int 1\n    virtual_ipaddress {\n        \
                192.0.2.200/24\n        198.51.100.50/24 dev vx0 no_track\n    }\n}\n";
    s.start(1, Kind::Agent, &(global_defs("n1") + conf));
    let timeout = Duration::from_secs(10);
    s.wait_log(1, "INIT -> BACKUP", 1, timeout);
    // Master_Down_Interval is 3.6 s: the interface goes well before the takeover.
    node.sh("ip link del vx0").unwrap();
    s.wait_log(1, "retry 2 of 5", 1, timeout);
    s.wait("node 1 in FAULT, saying why", timeout, |s| {
        let r = s.report(1);
        let i = &r.instances[0];
        i.state == "FAULT"
            && i.trackers
                .iter()
                .any(|t| t.kind == "vip" && !t.up && t.name.contains("198.51.100.50 on vx0"))
    });
    s.wait_log(
        1,
        "could not be added (6 attempts): going to FAULT",
        1,
        timeout,
    );
    s.wait("the VIP it had added to be removed", timeout, |_| {
        !node.has_addr(vip()).unwrap()
    });
    // Not FAULT forever: after the hold (10 s) it leaves FAULT to try again.
    s.wait_log(
        1,
        "leaving FAULT to try adding the VIPs again",
        1,
        Duration::from_secs(15),
    );
    s.wait("node 1 out of FAULT", timeout, |s| {
        s.report(1).instances[0].state != "FAULT"
    });
}

/// Claims of the VIP by other hosts that node `i`'s VI_1 counted.
fn conflicts_of(s: &Scene, i: usize) -> u64 {
    s.report(i).instances[0]
        .vip_conflicts
        .get(&vip())
        .copied()
        .unwrap_or(0)
}

/// Someone else configures the VIP: the client adds it to its own interface and announces it
/// (`arping -U`, gratuitous ARP). The master reports the conflict (WARN with the instance, the
/// VIP and the client's MAC; a counter in the status) and does not change state, as keepalived;
/// the backup, which does not own the VIP, counts nothing.
fn a_host_claiming_the_vip_is_reported(tag: &str, kind: Kind) {
    let mut s = Scene::new(tag, 2);
    s.start(1, kind, &(global_defs("n1") + &instance(150, "")));
    s.start(2, kind, &(global_defs("n2") + &instance(100, "")));
    let timeout = Duration::from_secs(5);
    s.wait_vip(vip(), &[1], timeout);
    s.wait_log(2, "-> BACKUP", 1, timeout);
    std::thread::sleep(5 * ADVERT_INT);
    assert_eq!(
        conflicts_of(&s, 1),
        0,
        "no conflict before the client claims the VIP"
    );
    let transitions = s.report(1).instances[0].transitions;

    let client_mac = s.lab.client.mac().unwrap();
    s.lab
        .client
        .run("ip", &["addr", "add", "192.0.2.200/24", "dev", IFACE])
        .unwrap();
    // Habets' arping: unsolicited (gratuitous) ARP, sender = target = the VIP (-S), from eth0;
    // exit 1 means nobody answered, which is fine for an announcement.
    s.lab
        .client
        .sh("arping -U -S 192.0.2.200 -c 3 -i eth0 192.0.2.200 >/dev/null; [ $? -le 1 ]")
        .unwrap();
    s.wait("node 1 to warn about the conflict", timeout, |s| {
        s.log(1).lines().any(|l| {
            l.contains("WARN")
                && l.contains("address conflict")
                && l.contains("192.0.2.200")
                && l.contains(&client_mac)
                && l.contains("instance=VI_1")
        })
    });
    s.wait("node 1 to count the claims", timeout, |s| {
        conflicts_of(s, 1) >= 3
    });
    let status = s.report(1);
    if status.instances[0].state != "MASTER" || status.instances[0].transitions != transitions {
        s.fail(&format!(
            "a conflict changed node 1's state: {} after {} transitions (was MASTER after {transitions})",
            status.instances[0].state, status.instances[0].transitions
        ));
    }
    s.hold_vip(vip(), &[1], 3 * ADVERT_INT);
    assert_eq!(
        conflicts_of(&s, 2),
        0,
        "the backup owns nothing to conflict with"
    );
    // Three claims, one warning (the rest are counted until the next one, 10 s later).
    let warnings = s.log(1).matches("address conflict").count();
    if warnings != 1 {
        s.fail(&format!(
            "{warnings} warnings for one claimant's 3 claims, want 1"
        ));
    }
}

#[test]
fn a_host_claiming_the_vip_is_reported_socket_datapath() {
    a_host_claiming_the_vip_is_reported("claim", Kind::Agent);
}

#[test]
fn a_host_claiming_the_vip_is_reported_xdp_datapath() {
    a_host_claiming_the_vip_is_reported("claimx", Kind::AgentXdp);
}

/// The VIP is already configured on the host, not by the agent (here on a second interface):
/// the agent says so at start and when it becomes master, naming the instance, the VIP and
/// where it is, and runs on.
#[test]
fn a_vip_configured_by_someone_else_is_reported_at_start() {
    let mut s = Scene::new("vipthere", 1);
    s.lab
        .node(1)
        .sh("ip link add vx0 type veth peer name vx1 && ip addr add 192.0.2.200/32 dev vx0")
        .unwrap();
    s.start(1, Kind::Agent, &(global_defs("n1") + &instance(150, "")));
    s.wait_log(1, "BACKUP -> MASTER", 1, Duration::from_secs(5));
    let found = |s: &Scene| {
        s.log(1)
            .lines()
            .filter(|l| {
                l.contains("WARN")
                    && l.contains("address conflict: VIP 192.0.2.200")
                    && l.contains("192.0.2.200/32 on vx0")
                    && l.contains("instance=VI_1")
            })
            .count()
    };
    s.wait(
        "the warnings at start and on becoming master",
        Duration::from_secs(5),
        |s| found(s) >= 2,
    );
}

//! What an operator relies on while ha-agent runs: `ha-agent status` (table and JSON) over the
//! per-configuration control socket, Prometheus metrics scraped inside the node, the SIGUSR1 /
//! SIGUSR2 dumps, transition log lines with their reason, systemd's READY/STATUS/STOPPING, the
//! journal and JSON log formats and the typed events of the JSON log, rejected adverts in the
//! log, a fatal start error, stale and colliding control sockets, and the example configs.

mod common;

use std::{
    io::{Read as _, Write as _},
    net::IpAddr,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use ha_agent::control::{default_socket_path, report::Report};
use ha_tests::{Daemon, Lab, agent_log, ha_agent_bin, in_netns};

const VIP: &str = "192.0.2.200";

fn vip() -> IpAddr {
    VIP.parse().unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond())).unwrap();
}

fn conf(priority: u8) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         version 3\n    priority {priority}\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    )
}

/// The configuration file `Lab::ha_agent` writes for node `i`.
fn conf_path(lab: &Lab, i: usize) -> PathBuf {
    lab.dir.join(format!("ha-agent-n{i}.conf"))
}

/// `ha-agent status ARGS…` from the host (the control socket is a file: no namespace needed).
fn status_cmd(args: &[&str]) -> std::process::Output {
    Command::new(ha_agent_bin().unwrap())
        .arg("status")
        .args(args)
        .output()
        .unwrap()
}

fn wait_status(what: &str, conf: &Path, cond: impl FnMut(&Report) -> bool) -> Report {
    wait_status_for(what, Duration::from_secs(5), conf, cond)
}

fn wait_status_for(
    what: &str,
    timeout: Duration,
    conf: &Path,
    mut cond: impl FnMut(&Report) -> bool,
) -> Report {
    let mut last = None;
    let found = ha_tests::wait_for(what, timeout, || {
        last = common::agent_status(conf);
        Ok(last.as_ref().is_some_and(&mut cond))
    });
    if let Err(e) = found {
        panic!("{e}; last status: {last:#?}");
    }
    last.unwrap()
}

/// Removes the files an agent leaves in /run/ha-agent when the lab kills it (SIGKILL on drop:
/// no clean exit), so test runs do not pile up stale sockets and dumps.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for socket in &self.0 {
            for ext in ["sock", "data", "stats", "json"] {
                let _ = std::fs::remove_file(socket.with_extension(ext));
            }
        }
    }
}

/// GET `path` from `port` on 127.0.0.1 inside node `ns`: (status line, body).
fn http_get(ns: &str, port: u16, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let reply = in_netns(ns, move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(request.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name{labels}` in a text exposition.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn status_metrics_dumps_and_transition_logs() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("ops", 2).unwrap();
    let port = 9650;
    let mut a1 = lab
        .ha_agent(
            1,
            &conf(150),
            &[
                "--datapath",
                "socket",
                "--metrics-listen",
                &format!("127.0.0.1:{port}"),
            ],
        )
        .unwrap();
    let (c1, c2) = (conf_path(&lab, 1), conf_path(&lab, 2));
    // Node 2 starts once node 1 is master: node 1's takeover is then by the master-down timer
    // (no master heard), the one the log assertions below name; started together, node 2 could
    // win first and node 1's takeover would be a preemption.
    wait_status("node 1 MASTER before node 2 starts", &c1, |r| {
        r.instances[0].state == "MASTER"
    });
    let mut a2 = lab
        .ha_agent(2, &conf(100), &["--datapath", "socket"])
        .unwrap();

    // Each agent has its own owner-only socket, derived from its configuration file.
    let (s1, s2) = (default_socket_path(&c1), default_socket_path(&c2));
    assert_ne!(s1, s2);
    let _cleanup = RemoveOnDrop(vec![s1.clone(), s2.clone()]);
    wait_for("both control sockets", Duration::from_secs(5), || {
        s1.exists() && s2.exists()
    });
    for s in [&s1, &s2] {
        let mode = std::fs::metadata(s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", s.display());
    }

    let r1 = wait_status("node 1 MASTER in its status", &c1, |r| {
        r.instances[0].state == "MASTER"
    });
    let r2 = wait_status("node 2 BACKUP hearing node 1", &c2, |r| {
        let i = &r.instances[0];
        i.state == "BACKUP"
            && i.master
                .as_ref()
                .is_some_and(|m| m.address.to_string() == "192.0.2.1")
    });
    assert!(lab.node(1).has_addr(vip()).unwrap());
    assert_eq!(r1.agent.pid, a1.pid() as u32);
    assert_eq!(r2.agent.pid, a2.pid() as u32);
    assert_eq!(r1.agent.datapath, "socket");
    assert_eq!(r1.agent.config_file, c1.display().to_string());
    let i1 = &r1.instances[0];
    assert_eq!(
        (
            i1.name.as_str(),
            i1.interface.as_str(),
            i1.vrid,
            i1.version,
            i1.family
        ),
        ("VI_1", "eth0", 51, 3, 4)
    );
    assert_eq!((i1.configured_priority, i1.effective_priority), (150, 150));
    let m1 = i1.master.as_ref().unwrap();
    assert!(m1.is_self && m1.priority == 150 && m1.address.to_string() == "192.0.2.1");
    assert_eq!(i1.vips, vec![vip()]);
    assert_eq!(i1.transitions, 2, "INIT → BACKUP → MASTER");
    assert!(i1.adverts.sent > 0);
    let i2 = &r2.instances[0];
    assert_eq!(i2.master.as_ref().unwrap().priority, 150);
    assert!(i2.adverts.received > 0);
    assert!(i2.time_in_state_seconds <= r2.agent.uptime_seconds);

    // The table.
    let out = status_cmd(&["-f", c1.to_str().unwrap()]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("VI_1"))
        .unwrap_or_else(|| panic!("no VI_1 row:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..9],
        [
            "VI_1",
            "eth0",
            "51",
            "MASTER",
            "150",
            "150",
            "192.0.2.1",
            "(self)",
            VIP
        ],
        "{table}"
    );
    // --control-socket names the same agent.
    let by_path = status_cmd(&["--control-socket", s2.to_str().unwrap(), "--json"]);
    let by_path = Report::from_json(&String::from_utf8_lossy(&by_path.stdout)).unwrap();
    assert_eq!(by_path.agent.pid, a2.pid() as u32);

    // Metrics, scraped inside node 1 (the listener is in its namespace).
    let (code, body) = http_get(&lab.node(1).ns, port, "/metrics");
    assert_eq!(code, "HTTP/1.1 200 OK", "{body}");
    let labels = r#"instance="VI_1",interface="eth0",vrid="51",family="ipv4""#;
    assert_eq!(
        sample(
            &body,
            &format!(r#"ha_agent_instance_state{{{labels},state="MASTER"}}"#)
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            &format!(r#"ha_agent_instance_state{{{labels},state="BACKUP"}}"#)
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &body,
            &format!("ha_agent_instance_effective_priority{{{labels}}}")
        ),
        Some(150.0)
    );
    assert_eq!(
        sample(
            &body,
            &format!("ha_agent_instance_transitions_total{{{labels}}}")
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &body,
            &format!("ha_agent_instance_adverts_sent_total{{{labels}}}")
        )
        .unwrap()
            > 0.0
    );
    assert!(
        !body.contains("ha_agent_fence_drops_total"),
        "no fence on the socket datapath"
    );
    let (code, _) = http_get(&lab.node(1).ns, port, "/");
    assert!(code.starts_with("HTTP/1.1 404"), "{code}");

    // The dumps, beside the socket.
    let base = s1.with_extension("");
    let (data, stats, json) = (
        base.with_extension("data"),
        base.with_extension("stats"),
        base.with_extension("json"),
    );
    a1.signal(libc::SIGUSR1).unwrap();
    wait_for("the data dump", Duration::from_secs(5), || {
        data.exists() && json.exists()
    });
    let text = std::fs::read_to_string(&data).unwrap();
    assert!(
        text.contains("VRRP Instance = VI_1") && text.contains("State = MASTER"),
        "{text}"
    );
    a1.signal(libc::SIGUSR2).unwrap();
    wait_for("the stats dump", Duration::from_secs(5), || stats.exists());
    let text = std::fs::read_to_string(&stats).unwrap();
    assert!(
        text.contains("VRRP Instance: VI_1") && text.contains("Sent: "),
        "{text}"
    );
    let dumped = Report::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(dumped.instances[0].state, "MASTER");
    for f in [&data, &stats, &json] {
        assert_eq!(std::fs::metadata(f).unwrap().mode() & 0o777, 0o600);
    }

    // A failover shows in status, metrics and the logs, with its reason.
    lab.cut(1).unwrap();
    wait_status("node 1 in FAULT", &c1, |r| r.instances[0].state == "FAULT");
    let r2 = wait_status("node 2 MASTER", &c2, |r| r.instances[0].state == "MASTER");
    let takeover = r2.instances[0]
        .last_takeover_seconds
        .expect("a takeover duration");
    assert!(takeover > 0.0 && takeover < 2.0, "takeover {takeover}s");
    lab.restore(1).unwrap();
    wait_status("node 1 MASTER again", &c1, |r| {
        r.instances[0].state == "MASTER"
    });
    wait_status("node 2 BACKUP again", &c2, |r| {
        r.instances[0].state == "BACKUP"
    });
    let (_, body) = http_get(&lab.node(1).ns, port, "/metrics");
    assert_eq!(
        sample(
            &body,
            &format!("ha_agent_instance_transitions_total{{{labels}}}")
        ),
        Some(5.0),
        "INIT→BACKUP→MASTER→FAULT→BACKUP→MASTER:\n{body}"
    );
    // The failback is a preemption, told as one on both sides (not "master down timer").
    a2.wait_for_log(
        "MASTER -> BACKUP (preempted by 192.0.2.1, priority 150 > 100",
        Duration::from_secs(2),
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", a2.log()));
    let log1 = a1.log();
    for line in [
        "INIT -> BACKUP (startup;",
        "BACKUP -> MASTER (master down timer expired",
        "MASTER -> FAULT (fault (interface down",
        "FAULT -> BACKUP (fault cleared",
        "BACKUP -> MASTER (preempting 192.0.2.2, priority 100 < 150;",
    ] {
        assert!(log1.contains(line), "no {line:?} in node 1's log:\n{log1}");
    }
    assert!(log1.contains("priority 150, effective 150"), "{log1}");
    // Taking over, node 1 is "self": its own address never reads as the master it replaced.
    let takeovers: Vec<_> = log1.lines().filter(|l| l.contains("-> MASTER (")).collect();
    assert_eq!(takeovers.len(), 2, "{log1}");
    for line in takeovers {
        assert!(
            line.contains("master self)") && !line.contains("192.0.2.1"),
            "{line}"
        );
    }

    // SIGTERM: the socket goes with the agent.
    a1.signal(libc::SIGTERM).unwrap();
    assert!(
        a1.wait_timeout(Duration::from_secs(3))
            .unwrap()
            .is_some_and(|s| s.success())
    );
    assert!(!s1.exists(), "control socket removed at exit");
    let out = status_cmd(&["-f", c1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no control socket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The typed events of `--log-format json` (ha-agent's `control::events`): a takeover, a fault
/// (at WARN, naming what is down) and a graceful handover carry their facts as fields, so the
/// chaos driver and the bench read them without parsing the message.
#[test]
fn json_log_events_carry_transitions_faults_and_the_handover() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("opsevents", 2).unwrap();
    let json = ["--datapath", "socket", "--log-format", "json"];
    let mut a1 = lab.ha_agent(1, &conf(150), &json).unwrap();
    let a2 = lab.ha_agent(2, &conf(100), &json).unwrap();
    let _cleanup = RemoveOnDrop(vec![
        default_socket_path(&conf_path(&lab, 1)),
        default_socket_path(&conf_path(&lab, 2)),
    ]);
    let (c1, c2) = (conf_path(&lab, 1), conf_path(&lab, 2));
    wait_status("node 1 MASTER", &c1, |r| r.instances[0].state == "MASTER");
    wait_status("node 2 BACKUP hearing node 1", &c2, |r| {
        r.instances[0].state == "BACKUP"
            && r.instances[0]
                .master
                .as_ref()
                .is_some_and(|m| m.address.to_string() == "192.0.2.1")
    });
    let transitions = |d: &Daemon| -> Vec<agent_log::Entry> {
        agent_log::entries(&d.log())
            .filter(agent_log::Entry::is_transition)
            .collect()
    };
    let t1 = transitions(&a1);
    let steps: Vec<(&str, &str)> = t1
        .iter()
        .map(|e| (e.str("from").unwrap(), e.str("to").unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("INIT", "BACKUP"), ("BACKUP", "MASTER")],
        "{}",
        a1.log()
    );
    let up = &t1[1];
    assert_eq!(up.str("instance"), Some("VI_1"));
    assert_eq!(up.level, "INFO");
    assert_eq!(
        (up.num("priority"), up.num("effective")),
        (Some(150.0), Some(150.0))
    );
    assert!(
        up.str("reason").is_some_and(|r| !r.is_empty()),
        "{:?}",
        up.fields
    );
    assert!(
        up.message().starts_with("BACKUP -> MASTER ("),
        "{}",
        up.message()
    );
    // A new master names itself "self", never its address (which would read as the master it
    // replaced).
    assert_eq!(up.str("master"), Some("self"));
    assert_eq!(up.num("master_priority"), Some(150.0));

    // FAULT: a WARN that says what is down.
    lab.cut(2).unwrap();
    wait_status("node 2 in FAULT", &c2, |r| r.instances[0].state == "FAULT");
    let fault = transitions(&a2)
        .into_iter()
        .find(|e| e.str("to") == Some("FAULT"))
        .unwrap_or_else(|| panic!("no FAULT event:\n{}", a2.log()));
    assert_eq!(fault.level, "WARN");
    assert_eq!(fault.str("from"), Some("BACKUP"));
    assert_eq!(
        fault.str("fault"),
        Some("interface eth0 down"),
        "{:?}",
        fault.fields
    );
    lab.restore(2).unwrap();
    wait_status("node 2 BACKUP again", &c2, |r| {
        r.instances[0].state == "BACKUP"
            && r.instances[0]
                .master
                .as_ref()
                .is_some_and(|m| m.address.to_string() == "192.0.2.1")
    });

    // SIGTERM on the master: node 1 logs whom it handed over to, and after how long.
    a1.signal(libc::SIGTERM).unwrap();
    assert!(
        a1.wait_timeout(Duration::from_secs(3))
            .unwrap()
            .is_some_and(|s| s.success())
    );
    let handed = agent_log::entries(&a1.log())
        .find(|e| e.event() == Some("handed_over"))
        .unwrap_or_else(|| panic!("no handed_over event:\n{}", a1.log()));
    assert_eq!(handed.str("instance"), Some("VI_1"));
    assert_eq!(handed.str("successor"), Some("192.0.2.2"));
    assert_eq!(handed.num("priority"), Some(100.0));
    assert!(
        handed
            .num("after_ms")
            .is_some_and(|ms| ms > 0.0 && ms < 1000.0),
        "{:?}",
        handed.fields
    );
    let last = transitions(&a1).pop().unwrap();
    assert_eq!(
        (last.str("from"), last.str("to")),
        (Some("MASTER"), Some("STOP"))
    );
    let took = transitions(&a2).pop().unwrap();
    assert_eq!(
        (took.str("from"), took.str("to")),
        (Some("BACKUP"), Some("MASTER"))
    );
}

/// A fatal start error is printed once, one line per error, each at ERROR (under the journal,
/// each with the `<3>` priority prefix): no second copy on stderr, no continuation line
/// without a priority.
#[test]
fn a_fatal_start_error_is_printed_once_one_line_per_error() {
    let bin = ha_agent_bin().expect("ha-agent binary");
    let dir = std::env::temp_dir().join(format!("ha-agent-fatal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.conf");
    std::fs::write(
        &bad,
        "vrrp_instance X {\n    state BOGUS\n    interface eth0\n    virtual_router_id 300\n}\n",
    )
    .unwrap();
    let missing = dir.join("missing.conf");
    let run = |conf: &Path, journal: bool| -> String {
        let log = dir.join("stderr");
        let file = std::fs::File::create(&log).unwrap();
        let meta = file.metadata().unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["run", "-f", conf.to_str().unwrap(), "--control-socket"])
            .arg(dir.join("ctl.sock"))
            .env_remove("JOURNAL_STREAM")
            .stderr(file);
        if journal {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), Some(1));
        std::fs::read_to_string(&log).unwrap()
    };
    let out = run(&missing, false);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("ERROR") && out.contains("cannot read configuration"),
        "{out}"
    );
    let out = run(&bad, false);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("ERROR") && lines[0].contains("bad.conf:2:11: state"),
        "{out}"
    );
    assert!(
        lines[1].contains("ERROR") && lines[1].contains("bad.conf:4:23: virtual_router_id"),
        "{out}"
    );
    let out = run(&bad, true);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.starts_with("<3>ERROR ")), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn v2_auth_conf(pass: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 52\n    \
         version 2\n    priority 100\n    advert_int 1\n    \
         authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}\n    \
         virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    )
}

/// The README's "two masters" case: a password mismatch makes both nodes master, and status
/// and metrics say why (adverts rejected as auth_mismatch). Node 1 runs the XDP datapath:
/// status and metrics show it and the fence's drop counter.
#[test]
fn two_masters_from_an_auth_mismatch_show_as_rejected_adverts() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("opsauth", 2).unwrap();
    let a1 = lab
        .ha_agent(
            1,
            &v2_auth_conf("secret1"),
            // The default datapath: XDP + TC fence (the lab's veths run XDP natively).
            &["--metrics-listen", "127.0.0.1:9651"],
        )
        .unwrap();
    let _a2 = lab
        .ha_agent(2, &v2_auth_conf("secret2"), &["--datapath", "socket"])
        .unwrap();
    let _cleanup = RemoveOnDrop(vec![
        default_socket_path(&conf_path(&lab, 1)),
        default_socket_path(&conf_path(&lab, 2)),
    ]);
    for i in [1, 2] {
        // v2 adverts are a second apart: master down after ~3.6 s, then the peer's adverts.
        let r = wait_status_for(
            "MASTER with adverts rejected for auth",
            Duration::from_secs(10),
            &conf_path(&lab, i),
            |r| {
                let inst = &r.instances[0];
                inst.state == "MASTER" && inst.adverts.rejected.contains_key("auth_mismatch")
            },
        );
        assert_eq!(r.instances[0].adverts.received, 0);
        assert!(
            r.rejected
                .iter()
                .any(|x| x.interface == "eth0" && x.vrid == 52 && x.reason == "auth_mismatch"),
            "{r:#?}"
        );
    }
    let r1 = common::agent_status(&conf_path(&lab, 1)).unwrap();
    assert_eq!(r1.agent.datapath, "xdp", "{}", a1.log());
    assert!(r1.fence_drops.contains_key("eth0"), "{r1:#?}");
    let (_, body) = http_get(&lab.node(1).ns, 9651, "/metrics");
    assert!(
        body.contains(&format!(
            r#"ha_agent_info{{version="{}",datapath="xdp"}} 1"#,
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    assert!(
        sample(&body, r#"ha_agent_fence_drops_total{interface="eth0"}"#).is_some(),
        "{body}"
    );
    let n = sample(
        &body,
        r#"ha_agent_adverts_rejected_total{interface="eth0",vrid="52",reason="auth_mismatch"}"#,
    );
    assert!(n.is_some_and(|n| n >= 1.0), "{body}\n{}", a1.log());
    // The XDP datapath logs its rejections as the socket datapath does: one line at info per
    // (interface, vrid, reason), then at debug as the count grows.
    let first = "INFO eth0: dropped advert(s) (vrid 52): auth_mismatch (";
    assert_eq!(a1.log().matches(first).count(), 1, "{}", a1.log());
    wait_for(
        "a debug line as the count grows",
        Duration::from_secs(5),
        || {
            a1.log()
                .lines()
                .any(|l| l.contains("DEBUG eth0: dropped advert(s) (vrid 52): auth_mismatch (+"))
        },
    );
    assert_eq!(a1.log().matches(first).count(), 1, "{}", a1.log());
    // --log-level debug (the lab's) is the agent's debug, not aya's BPF loader.
    for loader in ["relocating", "BPF Feature Detection"] {
        assert!(!a1.log().contains(loader), "{loader}: {}", a1.log());
    }
}

/// `env NOTIFY_SOCKET=… [JOURNAL_STREAM=…] ha-agent run …` in node 1 with its own pid file and
/// log; the log file is created first so that its inode can be named in JOURNAL_STREAM.
fn spawn_env(lab: &Lab, name: &str, env: &[String], args: &[&str]) -> Daemon {
    let bin = ha_agent_bin().unwrap().display().to_string();
    let mut argv: Vec<&str> = env.iter().map(String::as_str).collect();
    argv.push(&bin);
    argv.push("run");
    argv.extend_from_slice(args);
    lab.node(1).spawn(name, &lab.dir, "env", &argv).unwrap()
}

#[test]
fn systemd_ready_status_stopping_and_journal_log_lines() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("opsnotify", 1).unwrap();
    let notify_path = lab.dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let conf = lab.write_file("notify.conf", &conf(150)).unwrap();
    let socket = lab.dir.join("ctl.sock");
    // Our stderr is this file: JOURNAL_STREAM names its device and inode as systemd would.
    let log = lab.dir.join("agent-notify.log");
    std::fs::write(&log, "").unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let mut agent = spawn_env(
        &lab,
        "agent-notify",
        &[
            format!("NOTIFY_SOCKET={}", notify_path.display()),
            format!("JOURNAL_STREAM={}:{}", meta.dev(), meta.ino()),
        ],
        &[
            "-f",
            conf.to_str().unwrap(),
            "--datapath",
            "socket",
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    let recv = || {
        let mut buf = [0u8; 1024];
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification ({e}); log:\n{}", agent.log()));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = recv();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains("STATUS=VI_1 BACKUP; datapath socket"),
        "{ready:?}"
    );
    // READY means started: the control socket answers by then.
    let r =
        Report::from_json(&ha_agent::control::socket::request_status(&socket).unwrap()).unwrap();
    assert_eq!(r.instances.len(), 1);
    assert_eq!(recv(), "STATUS=VI_1 MASTER; datapath socket");

    agent.signal(libc::SIGTERM).unwrap();
    let stopping = recv();
    assert!(stopping.starts_with("STOPPING=1"), "{stopping:?}");
    assert!(
        agent
            .wait_timeout(Duration::from_secs(3))
            .unwrap()
            .is_some_and(|s| s.success())
    );
    assert!(!socket.exists());

    // Journal lines: a <N> priority prefix, no colours, no timestamp (the journal adds its own).
    let text = agent.log();
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>") && l.contains("BACKUP -> MASTER")),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with('<') && !line.contains('\u{1b}'),
            "not a journal line: {line:?}"
        );
        let rest = line[3..].trim_start();
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                .iter()
                .any(|l| rest.starts_with(l)),
            "a timestamp or something else before the level in {line:?}"
        );
    }
}

#[test]
fn stale_control_socket_is_replaced_and_a_live_one_refused_json_logs() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("opsstale", 1).unwrap();
    let socket = lab.dir.join("ctl.sock");
    // What a crashed agent leaves: a socket file nobody accepts on.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let conf_a = lab.write_file("a.conf", &conf(150)).unwrap();
    let sock = socket.to_str().unwrap();
    let mut first = spawn_env(
        &lab,
        "agent-a",
        &[],
        &[
            "-f",
            conf_a.to_str().unwrap(),
            "--datapath",
            "socket",
            "--control-socket",
            sock,
            "--log-format",
            "json",
        ],
    );
    let out = ha_tests::wait_for("the first agent to answer", Duration::from_secs(5), || {
        Ok(status_cmd(&["--control-socket", sock]).status.success())
    });
    out.unwrap_or_else(|e| panic!("{e}:\n{}", first.log()));
    assert!(
        first.log().contains("replacing a stale socket"),
        "{}",
        first.log()
    );

    // A second agent given the same socket stops before touching the host.
    let conf_b = lab
        .write_file(
            "b.conf",
            &conf(100).replace("51", "61").replace(VIP, "192.0.2.201"),
        )
        .unwrap();
    let mut second = spawn_env(
        &lab,
        "agent-b",
        &[],
        &[
            "-f",
            conf_b.to_str().unwrap(),
            "--datapath",
            "socket",
            "--control-socket",
            sock,
        ],
    );
    let status = second
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("the second agent exits");
    assert!(!status.success());
    assert!(
        second.log().contains("another ha-agent is serving it"),
        "{}",
        second.log()
    );
    assert!(first.is_running());
    assert!(
        status_cmd(&["--control-socket", sock]).status.success(),
        "the first one still answers"
    );

    // --log-format json: one object a line.
    first.signal(libc::SIGTERM).unwrap();
    first.wait_timeout(Duration::from_secs(3)).unwrap();
    let log = first.log();
    assert!(log.lines().any(|l| l.contains("INIT -> BACKUP")), "{log}");
    for line in log.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains(r#""level":"#),
            "not a JSON log line: {line:?}"
        );
    }
}

/// Under systemd the agent has NOTIFY_SOCKET; its notify and vrrp_script children must not (a
/// script writing READY=1 or STATUS= there would speak for the agent).
#[test]
fn notify_and_check_scripts_do_not_inherit_notify_socket() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("opsnsock", 1).unwrap();
    let notify_path = lab.dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let seen = |name: &str| lab.dir.join(format!("{name}.env"));
    let script = |name: &str| {
        let path = lab
            .write_file(
                &format!("{name}.sh"),
                &format!(
                    "#!/bin/sh\necho \"${{NOTIFY_SOCKET-unset}}\" > {0}.tmp && mv {0}.tmp {0}\n",
                    seen(name).display()
                ),
            )
            .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let (notify_master, check) = (script("notify_master"), script("check"));
    let text = format!(
        "vrrp_script chk {{\n    script \"{}\"\n    interval 1\n}}\n{}",
        check.display(),
        conf(150).replace(
            "    virtual_ipaddress",
            &format!(
                "    notify_master \"{}\"\n    track_script {{\n        chk\n    }}\n    \
                 virtual_ipaddress",
                notify_master.display()
            )
        )
    );
    let conf = lab.write_file("nsock.conf", &text).unwrap();
    let socket = lab.dir.join("ctl.sock");
    let mut agent = spawn_env(
        &lab,
        "agent-nsock",
        &[format!("NOTIFY_SOCKET={}", notify_path.display())],
        &[
            "-f",
            conf.to_str().unwrap(),
            "--datapath",
            "socket",
            "--control-socket",
            socket.to_str().unwrap(),
        ],
    );
    // The agent itself still has it: READY=1 arrives.
    let mut buf = [0u8; 1024];
    let n = notify
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no READY ({e}); log:\n{}", agent.log()));
    assert!(buf[..n].starts_with(b"READY=1"));
    for name in ["check", "notify_master"] {
        let path = seen(name);
        wait_for(&format!("{name} to run"), Duration::from_secs(10), || {
            path.exists()
        });
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            "unset",
            "{name} inherited NOTIFY_SOCKET"
        );
    }
    agent.signal(libc::SIGTERM).unwrap();
    agent.wait_timeout(Duration::from_secs(3)).unwrap();
}

/// The systemd unit bounds the agent's descriptors (and the metrics cap fits well within).
#[test]
fn the_unit_sets_limit_nofile() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ha-agent.service"),
    )
    .unwrap();
    let limit = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .unwrap_or_else(|| panic!("no LimitNOFILE= in dist/ha-agent.service"));
    let n: usize = limit.parse().expect("a number, not infinity");
    assert!(
        n >= 1024.max(4 * ha_agent::control::metrics::MAX_CONNECTIONS),
        "LimitNOFILE={n}"
    );
}

/// The pid file is locked for the agent's life: a second agent is refused naming the first's
/// pid; a stale file naming a live (reused) pid does not block a start; nothing planted beside
/// it (the old `.tmp` name) is followed.
#[test]
fn pid_file_is_locked_and_symlinks_beside_it_are_not_followed() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("opspid", 1).unwrap();
    let pid_file = lab.dir.join("agent.pid");
    // A crashed agent's pid file whose pid now belongs to another program (pid 1 is alive).
    std::fs::write(&pid_file, "1\n").unwrap();
    let victim = lab.dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, lab.dir.join("agent.tmp")).unwrap();
    let conf_a = lab.write_file("a.conf", &conf(150)).unwrap();
    let pid = pid_file.to_str().unwrap();
    let sock_a = lab.dir.join("a.sock");
    let mut first = spawn_env(
        &lab,
        "agent-pid-a",
        &[],
        &[
            "-f",
            conf_a.to_str().unwrap(),
            "--datapath",
            "socket",
            "--control-socket",
            sock_a.to_str().unwrap(),
            "--pid-file",
            pid,
        ],
    );
    let up = ha_tests::wait_for("the first agent to answer", Duration::from_secs(5), || {
        Ok(status_cmd(&["--control-socket", sock_a.to_str().unwrap()])
            .status
            .success())
    });
    up.unwrap_or_else(|e| panic!("{e}:\n{}", first.log()));
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), first.pid().to_string());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

    let conf_b = lab
        .write_file(
            "b.conf",
            &conf(100).replace("51", "61").replace(VIP, "192.0.2.201"),
        )
        .unwrap();
    let sock_b = lab.dir.join("b.sock");
    let mut second = spawn_env(
        &lab,
        "agent-pid-b",
        &[],
        &[
            "-f",
            conf_b.to_str().unwrap(),
            "--datapath",
            "socket",
            "--control-socket",
            sock_b.to_str().unwrap(),
            "--pid-file",
            pid,
        ],
    );
    let status = second
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("the second agent exits");
    assert!(!status.success());
    let log = second.log();
    assert!(
        log.contains(&format!(
            "(pid {}) is running with this pid file",
            first.pid()
        )) && log.contains("agent.pid"),
        "{log}"
    );
    assert!(!sock_b.exists(), "refused before its control socket");
    assert!(first.is_running());
    first.signal(libc::SIGTERM).unwrap();
    first.wait_timeout(Duration::from_secs(3)).unwrap();
    assert!(!pid_file.exists(), "removed at exit");
}

/// Every example configuration loads without errors or warnings, `check-config` accepts it (on
/// a lab node, which has their `eth0`), and it has the instances its comment promises.
#[test]
fn examples_pass_check_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let expected: &[(&str, usize)] = &[
        ("master-backup-nginx.conf", 1),
        ("dual-master-a.conf", 2),
        ("dual-master-b.conf", 2),
        ("three-nodes-nopreempt.conf", 1),
        ("sync-group.conf", 2),
        ("unicast.conf", 1),
        ("ipv6.conf", 2),
    ];
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = expected.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "every example is checked here");
    // check-config also looks for the interfaces the files name (eth0, and eth1 for the sync
    // group) and the IPv4 address adverts go out from: run it in a lab node, which has them
    // whatever this host's are called.
    let bin = ha_agent_bin().expect("the ha-agent binary: run `cargo build -p ha-agent` first");
    let lab = Lab::new("opsex", 1).unwrap();
    for args in [
        &[
            "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
        ][..],
        &["addr", "add", "198.18.0.1/24", "dev", "eth1"],
    ] {
        lab.node(1).run("ip", args).unwrap();
    }
    for (name, instances) in expected {
        let path = dir.join(name);
        let loaded = ha_agent::config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            loaded.warnings.is_empty(),
            "{name}: {:?}",
            loaded
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        assert_eq!(loaded.config.instances.len(), *instances, "{name}");
        let out = lab
            .node(1)
            .command(&bin)
            .args(["check-config", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every subcommand's --help documents its options.
#[test]
fn help_covers_every_subcommand_and_option() {
    let bin = ha_agent_bin().expect("ha-agent binary");
    let help = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&[]);
    for sub in ["run", "status", "check-config"] {
        assert!(top.contains(sub), "{top}");
    }
    let run = help(&["run"]);
    for word in [
        "--use-file",
        "--datapath",
        "--log-level",
        "--log-format",
        "--pid-file",
        "--control-socket",
        "--metrics-listen",
        "SIGUSR1",
        "SIGHUP",
        "READY=1",
    ] {
        assert!(run.contains(word), "run --help lacks {word}:\n{run}");
    }
    let status = help(&["status"]);
    for word in ["--use-file", "--control-socket", "--json"] {
        assert!(
            status.contains(word),
            "status --help lacks {word}:\n{status}"
        );
    }
    assert!(help(&["check-config"]).contains("--use-file"));
}

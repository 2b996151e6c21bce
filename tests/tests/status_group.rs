//! `--control-socket-group`: a monitoring user reads `ha-agent status` without root, and only
//! reads it. The agent runs as root in a lab node; `ha-agent status` runs on the host as
//! `nobody` (group `nogroup`, no other groups) through `setpriv`, as a monitoring check would.

use std::{
    io::{Read as _, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use ha_agent::control::report::Report;
use ha_tests::{Daemon, Lab, ha_agent_bin, v3_instance};

/// `ha-agent status ARGS…` as `nobody`:`nogroup` with no supplementary groups.
fn status_as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(ha_agent_bin().unwrap())
        .arg("status")
        .args(args)
        .output()
        .expect("setpriv (Debian's util-linux) runs `ha-agent status` as nobody")
}

/// One request line on the socket and the agent's whole answer. The agent does not look at who
/// asks (no peer credentials): what root is refused here, the group is refused too.
fn request(socket: &Path, line: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn spawn_agent(lab: &Lab, name: &str, conf: &Path, extra: &[&str]) -> Daemon {
    let bin = ha_agent_bin().unwrap().display().to_string();
    let mut args = vec![
        "run",
        "-f",
        conf.to_str().unwrap(),
        "--datapath",
        "socket",
        "--bpf-dir",
        lab.bpf_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    lab.node(1).spawn(name, &lab.dir, &bin, &args).unwrap()
}

fn report(socket: &Path) -> Report {
    Report::from_json(&ha_agent::control::socket::request_status(socket).unwrap()).unwrap()
}

#[test]
fn a_monitoring_group_reads_status_without_root_and_changes_nothing() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("sockgrp", 1).unwrap();
    // nobody must be able to reach the agent's directory; the agent makes `run/` itself.
    std::fs::set_permissions(&lab.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = lab
        .write_file("grp.conf", &v3_instance(150, "0.1"))
        .unwrap();
    let socket = lab.dir.join("run/grp.sock");
    let sock = socket.to_str().unwrap();
    let mut agent = spawn_agent(
        &lab,
        "agent-grp",
        &conf,
        &[
            "--control-socket",
            sock,
            "--control-socket-group",
            "nogroup",
        ],
    );
    ha_tests::wait_for("the agent MASTER", Duration::from_secs(5), || {
        Ok(socket.exists() && report(&socket).instances[0].state == "MASTER")
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", agent.log()));

    let out = status_as_nobody(&["--control-socket", sock]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("VI_1") && stdout.contains("MASTER"),
        "status as nobody: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = status_as_nobody(&["--control-socket", sock, "--json"]);
    assert!(json.status.success());
    Report::from_json(&String::from_utf8_lossy(&json.stdout)).unwrap();

    // Read-only: whatever else the group sends is refused and changes nothing.
    let before = report(&socket);
    for line in [
        "reload",
        "stop",
        "shutdown",
        "set priority 1",
        "status; stop",
        "STATUS",
        "dump",
        "",
    ] {
        let reply = request(&socket, line);
        assert!(
            reply.starts_with(r#"{"error":"unknown request"#),
            "{line:?} answered {reply:?}"
        );
    }
    // Status still answers, as nobody: nothing above closed or broke the socket.
    assert!(
        status_as_nobody(&["--control-socket", sock])
            .status
            .success()
    );
    let after = report(&socket);
    assert!(agent.is_running(), "{}", agent.log());
    assert_eq!(after.agent.pid, before.agent.pid);
    let (b, a) = (&before.instances[0], &after.instances[0]);
    assert_eq!(
        (
            &a.state,
            a.configured_priority,
            a.effective_priority,
            a.transitions
        ),
        (
            &b.state,
            b.configured_priority,
            b.effective_priority,
            b.transitions
        ),
        "a refused request changed the instance"
    );
    assert!(!agent.log().contains("SIGHUP"), "{}", agent.log());

    // Without the option, nobody is refused with the permission message.
    let private = lab.dir.join("private/grp.sock");
    let conf2 = lab
        .write_file(
            "private.conf",
            &v3_instance(150, "0.1")
                .replace("VI_1", "VI_2")
                .replace("51", "52")
                .replace("192.0.2.200", "192.0.2.201"),
        )
        .unwrap();
    let owner_only = spawn_agent(
        &lab,
        "agent-private",
        &conf2,
        &["--control-socket", private.to_str().unwrap()],
    );
    ha_tests::wait_for("the second agent", Duration::from_secs(5), || {
        Ok(private.exists())
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", owner_only.log()));
    report(&private);
    let out = status_as_nobody(&["--control-socket", private.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("permission denied") && stderr.contains("--control-socket-group"),
        "{stderr}"
    );

    // An unknown group stops the start, naming the option, before the socket exists.
    let missing = lab.dir.join("run/missing.sock");
    let mut unknown = spawn_agent(
        &lab,
        "agent-unknown",
        &conf2,
        &[
            "--control-socket",
            missing.to_str().unwrap(),
            "--control-socket-group",
            "ha-agent-no-such-group",
        ],
    );
    let status = unknown
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("an agent with an unknown group exits");
    assert!(!status.success());
    assert!(
        unknown
            .log()
            .contains("--control-socket-group ha-agent-no-such-group: no such group"),
        "{}",
        unknown.log()
    );
    assert!(!missing.exists());

    for mut a in [agent, owner_only] {
        a.signal(libc::SIGTERM).unwrap();
        assert!(
            a.wait_timeout(Duration::from_secs(3)).unwrap().is_some(),
            "{}",
            a.log()
        );
    }
    assert!(!socket.exists() && !private.exists());
}

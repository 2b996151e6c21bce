//! `check-config` makes the checks `run` makes before it touches the host (one function,
//! `agent::preflight`): every configuration below that `run` refuses, `check-config` refuses
//! with the same message, at the file:line:col where the file has one; `run` still refuses it
//! before its pid file and control socket; and a good configuration passes both (and
//! `check-config` changes nothing in the namespace).
//!
//! Each binary runs in a network namespace of its own with one interface, `eth0`
//! (192.0.2.1/24), so nothing reaches the host's network. Root is needed; the tests fail, never
//! skip, otherwise.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "net/lab.rs"]
#[allow(dead_code)] // the net tests' lab: only its `sh` here
mod lab;

use lab::sh;

const BIN: &str = env!("CARGO_BIN_EXE_ha-agent");

/// A network namespace with `eth0` (192.0.2.1/24, up; a veth whose peer is there too) and a scratch directory; both
/// removed on drop, also on panic.
struct Scratch {
    ns: String,
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        // /proc/self belongs to the effective user.
        let euid = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(
            euid, 0,
            "these tests run ha-agent in a network namespace: run them as root"
        );
        let pid = std::process::id();
        let s = Scratch {
            ns: format!("hacc-{test}-{pid}"),
            dir: std::env::temp_dir().join(format!("ha-agent-check-config-{test}-{pid}")),
        };
        s.remove();
        std::fs::create_dir_all(&s.dir).unwrap();
        // Not writable by group or others, so that a script below it passes
        // enable_script_security unless the script itself is not secure.
        std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        sh(&["ip", "netns", "add", &s.ns]);
        // No IPv6 DAD on the interfaces made below: a link-local address going from
        // `tentative` to valid in the middle of a test would read as a change to the namespace.
        for conf in ["all", "default"] {
            sh(&[
                "ip",
                "netns",
                "exec",
                &s.ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{conf}.accept_dad=0"),
            ]);
        }
        sh(&["ip", "-n", &s.ns, "link", "set", "lo", "up"]);
        s.ip(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
        ]);
        s.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
        s.ip(&["link", "set", "eth0p", "up"]);
        s.ip(&["link", "set", "eth0", "up"]);
        s
    }

    /// `ip -n NS ARGS…`
    fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", &self.ns];
        full.extend_from_slice(args);
        sh(&full)
    }

    fn remove(&self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// What `ip` shows of the namespace: links, addresses, routes.
    fn snapshot(&self) -> String {
        ["link", "addr", "route"]
            .iter()
            .map(|what| self.ip(&[what]))
            .collect()
    }

    /// `ha-agent check-config -f FILE` in the namespace: (exit code, stdout, stderr).
    fn check_config(&self, file: &Path) -> (i32, String, String) {
        self.check_config_with(file, &[])
    }

    /// `ha-agent check-config -f FILE ARGS…` in the namespace.
    fn check_config_with(&self, file: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIN, "check-config", "-f"])
            .arg(file)
            .args(args)
            .output()
            .unwrap();
        split(&out)
    }

    /// `ha-agent run -f FILE --datapath socket` in the namespace, with the pid file and control
    /// socket in the scratch directory. `ip netns exec` execs the agent, so the child is it.
    fn spawn_run(&self, file: &Path) -> std::process::Child {
        self.spawn_run_with(file, &[])
    }

    /// [`Scratch::spawn_run`] with more arguments.
    fn spawn_run_with(&self, file: &Path, args: &[&str]) -> std::process::Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                BIN,
                "run",
                "--datapath",
                "socket",
                "-f",
            ])
            .arg(file)
            .arg("--pid-file")
            .arg(self.pid_file())
            .arg("--control-socket")
            .arg(self.socket())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("agent.pid")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

fn split(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits at most `limit` for `child` to exit; kills it (and fails) if it does not.
fn wait_within(mut child: std::process::Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A VRRPv3 instance on `eth0` with one VIP (8 lines), and `extra` lines before its closing
/// brace.
fn instance(extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         version 3\n    virtual_ipaddress {{\n        192.0.2.200/24\n    }}\n{extra}}}\n"
    )
}

const TRACK_CHK: &str = "    track_script {\n        chk\n    }\n";

/// Each refused configuration: name, file text (`{dir}` is the scratch directory), and what
/// both commands must say (`{}` is the file's path).
fn refused() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "route-option",
            instance(
                "    virtual_routes {\n        198.51.100.0/24 via 192.0.2.254 encap mpls 100\n    }\n",
            ),
            "{}:10:41: virtual_routes: \"encap\" is not supported by ha-agent",
        ),
        (
            "script-user",
            "global_defs {\n    script_user nosuchuser\n}\nvrrp_script chk {\n    script \
             \"/bin/true\"\n}\n"
                .to_owned()
                + &instance(TRACK_CHK),
            "{}:2:17: global_defs script_user: user `nosuchuser` does not exist on this host: \
             create it",
        ),
        (
            "no-instance",
            "global_defs {\n    router_id lab\n}\n".to_owned(),
            "{}: no vrrp_instance: nothing to run",
        ),
        (
            "script-security",
            "global_defs {\n    enable_script_security\n}\nvrrp_script chk {\n    script \
             \"{dir}/chk.sh\"\n}\n"
                .to_owned()
                + &instance(TRACK_CHK),
            "{}:4:1: vrrp_script chk: script {dir}/chk.sh is not secure: {dir}/chk.sh is \
             writable by others (mode 777)",
        ),
        (
            "vrrp-script-user",
            "vrrp_script chk {\n    script \"/bin/true\"\n    user nosuchuser\n}\n".to_owned()
                + &instance(TRACK_CHK),
            "{}:3:10: vrrp_script chk: user `nosuchuser` does not exist on this host",
        ),
        (
            "notify-user",
            instance("    notify_master \"/bin/true\" nosuchuser\n"),
            "{}:9:5: vrrp_instance VI_1: notify user: user `nosuchuser` does not exist on this \
             host",
        ),
        (
            "notify-security",
            "global_defs {\n    enable_script_security\n}\n".to_owned()
                + &instance("    notify_master \"{dir}/chk.sh\"\n"),
            "{}:4:1: vrrp_instance VI_1: notify script: script {dir}/chk.sh is not secure",
        ),
        (
            "init-file-dir",
            "track_file tf {\n    file {dir}/missing/tf\n    init_file 0\n}\n".to_owned()
                + &instance("    track_file {\n        tf\n    }\n"),
            "{}:1:1: track_file tf: init_file: {dir}/missing is not a directory",
        ),
        (
            // A keyword that changes failover and that ha-agent does not act on.
            "unsupported",
            instance("    use_ipvlan\n"),
            "{}:9:5: use_ipvlan: not supported by ha-agent, and ignoring it would change failover \
             behaviour",
        ),
        (
            "net-namespace",
            "net_namespace ha-agent-no-such-netns\n".to_owned() + &instance(""),
            "{}:1:15: net_namespace ha-agent-no-such-netns: cannot open \
             /run/netns/ha-agent-no-such-netns",
        ),
        (
            // keepalived's get_default_if: a static address without dev is on it.
            "default-interface",
            "global_defs {\n    default_interface eth9\n}\nstatic_ipaddress {\n    \
             192.0.2.50/32\n}\n"
                .to_owned()
                + &instance(""),
            "{}:5:5: static_ipaddress 192.0.2.50: dev (default_interface eth9): no interface \
             `eth9` on this host",
        ),
        (
            "startup-user",
            "global_defs {\n    startup_script /bin/true nosuchuser\n}\n".to_owned()
                + &instance(""),
            "{}:2:5: startup_script: notify user: user `nosuchuser` does not exist on this host",
        ),
        (
            "shutdown-security",
            "global_defs {\n    enable_script_security\n    shutdown_script {dir}/chk.sh\n}\n"
                .to_owned()
                + &instance(""),
            "global_defs: shutdown_script: notify script: script {dir}/chk.sh is not secure",
        ),
        (
            // keepalived's LVS half: MISC_CHECK's user is checked as script users are.
            "misc-check-user",
            instance("")
                + "virtual_server 192.0.2.200 80 {\n    lb_kind DR\n    protocol TCP\n    \
                   real_server 192.0.2.11 80 {\n        MISC_CHECK {\n            misc_path \
                   /bin/true\n            user nosuchuser\n        }\n    }\n}\n",
            "{}:16:18: MISC_CHECK of real_server 192.0.2.11:80: notify user: user `nosuchuser` \
             does not exist on this host",
        ),
        (
            "no-address",
            instance("").replace("eth0", "eth1"),
            "{}:1:1: vrrp_instance VI_1: interface eth1 has no IPv4 address to send adverts from",
        ),
    ]
}

#[test]
fn what_run_refuses_check_config_refuses_with_the_same_message() {
    let s = Scratch::new("refused");
    // A script anyone may change: enable_script_security refuses it.
    let script = s.write("chk.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    // An interface without an address: adverts have no source.
    s.ip(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    let dir = s.dir.display().to_string();
    let before = s.snapshot();
    let mut failures = Vec::new();
    for (name, text, says) in refused() {
        let path = s.write(&format!("{name}.conf"), &text.replace("{dir}", &dir));
        let says = says
            .replace("{}", &path.display().to_string())
            .replace("{dir}", &dir);

        let (code, _, err) = s.check_config(&path);
        let errors: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("warning: "))
            .collect();
        if code != 1 || !err.contains(&says) {
            failures.push(format!(
                "check-config {name}: exit {code}, want 1 and {says:?}:\n{err}"
            ));
        }

        let out = wait_within(
            s.spawn_run(&path),
            Duration::from_secs(10),
            &format!("run {name}"),
        );
        let (code, _, run_err) = split(&out);
        if code == 0 || !run_err.contains(&says) {
            failures.push(format!(
                "run {name}: exit {code}, want non-zero and {says:?}:\n{run_err}"
            ));
        }
        // The same checks: every error line of check-config is in run's.
        for line in &errors {
            if !run_err.contains(line) {
                failures.push(format!(
                    "run {name} does not say what check-config says: {line:?}:\n{run_err}"
                ));
            }
        }
        for left in [s.pid_file(), s.socket()] {
            if left.exists() {
                failures.push(format!("run {name} left {}", left.display()));
                let _ = std::fs::remove_file(&left);
            }
        }
        if s.snapshot() != before {
            failures.push(format!("{name}: the namespace changed"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A SIGTERM as soon as the pid file exists (a `systemctl stop` right after the start) is a
/// clean stop: exit 0, pid file and control socket removed. The handlers were installed after
/// them, and a SIGTERM in between killed the agent by the default action (exit -1, both left).
/// A SIGHUP there (a `systemctl reload`) is a reload once the agent runs, not a death.
#[test]
fn sigterm_right_after_the_start_is_a_clean_stop() {
    let s = Scratch::new("early");
    let path = s.write("early.conf", &instance(""));
    // `run`, and `signal` to it the moment its pid file exists: the earliest a supervisor sees it.
    let start_and_signal = |signal: libc::c_int, attempt: u32| {
        let child = s.spawn_run(&path);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.pid_file().exists() {
            assert!(
                Instant::now() < deadline,
                "attempt {attempt}: no pid file within 10 s"
            );
            std::thread::yield_now();
        }
        // SAFETY: kill(2) on our own child's pid, which wait_within reaps.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
        (child, deadline)
    };
    for attempt in 0..5 {
        let (child, deadline) = start_and_signal(libc::SIGHUP, attempt);
        while !s.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "attempt {attempt}: a SIGHUP during the start ended the agent"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: kill(2) on our own child's pid, which wait_within reaps below.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
        let out = wait_within(
            child,
            Duration::from_secs(10),
            "run after SIGHUP and SIGTERM",
        );
        let (code, _, err) = split(&out);
        assert_eq!(code, 0, "attempt {attempt} (SIGHUP): exit {code}:\n{err}");
    }
    for attempt in 0..5 {
        let (child, _) = start_and_signal(libc::SIGTERM, attempt);
        let out = wait_within(child, Duration::from_secs(10), "run after an early SIGTERM");
        let (code, _, err) = split(&out);
        assert_eq!(code, 0, "attempt {attempt}: exit {code}:\n{err}");
        assert!(
            !s.pid_file().exists() && !s.socket().exists(),
            "attempt {attempt}: the pid file or the control socket was left behind:\n{err}"
        );
    }
}

#[test]
fn a_good_configuration_passes_check_config_and_runs() {
    let s = Scratch::new("good");
    let conf = "global_defs {\n    enable_script_security\n    script_user root\n}\n\
                vrrp_script chk {\n    script \"/bin/true\"\n}\n"
        .to_owned()
        + &instance(&format!(
            "{TRACK_CHK}    virtual_routes {{\n        198.51.100.0/24 via 192.0.2.254\n    }}\n"
        ));
    let path = s.write("good.conf", &conf);
    let before = s.snapshot();
    let (code, out, err) = s.check_config(&path);
    assert_eq!(code, 0, "check-config: {err}");
    assert!(
        out.contains("VI_1"),
        "the summary names the instance:\n{out}"
    );
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(s.snapshot(), before, "check-config changed the namespace");
    assert!(!s.pid_file().exists() && !s.socket().exists());

    // run gets past the same checks: its control socket appears, then SIGTERM stops it.
    let child = s.spawn_run(&path);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.socket().exists() {
        if Instant::now() > deadline {
            let out = wait_within(child, Duration::ZERO, "run good.conf");
            panic!(
                "run did not start within 10 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.pid_file().exists(), "run wrote its pid file");
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let out = wait_within(
        child,
        Duration::from_secs(10),
        "run good.conf after SIGTERM",
    );
    let (code, _, err) = split(&out);
    assert_eq!(code, 0, "run good.conf: {err}");
}

/// `default_interface` places a static address without dev (shown in the summary, and put
/// there by run); the startup and shutdown scripts are listed with their timeouts.
#[test]
fn default_interface_and_start_stop_scripts_in_check_config() {
    let s = Scratch::new("defif");
    let conf = "global_defs {\n    default_interface eth0\n    startup_script /bin/true\n    \
                startup_script_timeout 3\n    shutdown_script \"/bin/echo bye\"\n}\n\
                static_ipaddress {\n    198.51.100.7/32\n}\n"
        .to_owned()
        + &instance("");
    let path = s.write("defif.conf", &conf);
    let (code, out, err) = s.check_config(&path);
    assert_eq!(code, 0, "check-config: {err}");
    for line in [
        "static address 198.51.100.7/32 dev eth0",
        "startup_script: /bin/true, timeout 3s",
        "shutdown_script: /bin/echo bye, timeout 10s",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
}

/// `--allow-unsupported`: check-config accepts a file with a failover keyword ha-agent ignores,
/// warns at its line and sums up what it ignored on its last line; run starts with it.
#[test]
fn allow_unsupported_runs_without_the_keyword_and_says_so() {
    let s = Scratch::new("allow");
    let conf = "global_defs {\n    enable_snmp_vrrp\n}\n".to_owned()
        + &instance("    use_ipvlan\n    track_bfd {\n        b\n    }\n");
    let path = s.write("allow.conf", &conf);
    let (code, _, err) = s.check_config(&path);
    assert_eq!(code, 1, "refused without the flag: {err}");
    let (code, out, err) = s.check_config_with(&path, &["--allow-unsupported"]);
    assert_eq!(code, 0, "check-config --allow-unsupported: {err}");
    let at = path.display().to_string();
    assert!(
        err.contains(&format!(
            "warning: {at}:12:5: use_ipvlan: not supported by ha-agent, ignored"
        )) && err.contains(&format!("warning: {at}:13:5: track_bfd: not supported"))
            && err.contains(&format!(
                "warning: {at}:2:5: enable_snmp_vrrp: parsed but not used"
            )),
        "{err}"
    );
    assert_eq!(
        out.lines().last(),
        Some(
            "ignored: 3 keywords: 2 that change failover, run without them by \
             --allow-unsupported (track_bfd, use_ipvlan); 1 that only configure what ha-agent \
             replaces (enable_snmp_vrrp)"
        ),
        "{out}"
    );

    let child = s.spawn_run_with(&path, &["--allow-unsupported"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.socket().exists() {
        if Instant::now() > deadline {
            let out = wait_within(child, Duration::ZERO, "run allow.conf");
            panic!(
                "run --allow-unsupported did not start within 10 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let out = wait_within(
        child,
        Duration::from_secs(10),
        "run allow.conf after SIGTERM",
    );
    let (code, _, err) = split(&out);
    assert_eq!(code, 0, "run --allow-unsupported: {err}");
    assert!(
        err.contains("use_ipvlan: not supported by ha-agent, ignored"),
        "{err}"
    );
}

/// `-i ID` picks the `@ID` lines; without it the id is the host name up to its first dot, as
/// keepalived.
#[test]
fn config_id_picks_the_conditional_lines() {
    let s = Scratch::new("cfgid");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim().split('.').next().unwrap().to_owned();
    let conf = format!(
        "$PRIO=100\n@node1 $PRIO=150\n@{host} $PRIO=120\n{}",
        instance("    priority $PRIO\n")
    );
    let path = s.write("cfgid.conf", &conf);
    for (args, want) in [
        (&["-i", "node1"][..], "priority 150"),
        (&["--config-id", "other"][..], "priority 100"),
        (&[][..], "priority 120"),
    ] {
        let (code, out, err) = s.check_config_with(&path, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains(want), "{args:?}: want {want}:\n{out}");
    }
}

/// Our configurations in the shapes of keepalived's doc/samples (ha-agent/tests/config/samples):
/// `keepalived -t` accepts each, and so does `check-config` (conditional.conf with `-i high`),
/// with the warnings keepalived's leniency calls for (the VIP listed twice is added once).
#[test]
fn keepalived_sample_shapes_pass_check_config_as_keepalived_t() {
    let s = Scratch::new("samples");
    for (i, addr) in [
        (1, "198.51.100.1/24"),
        (2, "203.0.113.1/25"),
        (3, "203.0.113.129/25"),
    ] {
        let (dev, peer) = (format!("eth{i}"), format!("eth{i}p"));
        s.ip(&["link", "add", &dev, "type", "veth", "peer", "name", &peer]);
        s.ip(&["addr", "add", addr, "dev", &dev]);
        s.ip(&["link", "set", &peer, "up"]);
        s.ip(&["link", "set", &dev, "up"]);
    }
    let keepalived = Command::new("keepalived").arg("--version").output();
    assert!(
        keepalived.is_ok(),
        "keepalived is needed to compare with (apt-get install keepalived)"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 11, "the samples: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let id: &[&str] = if file.ends_with("conditional.conf") {
            &["-i", "high"]
        } else {
            &[]
        };
        let k = Command::new("ip")
            .args(["netns", "exec", &s.ns, "keepalived", "-t", "-f"])
            .arg(file)
            .args(id)
            .output()
            .unwrap();
        let (code, _, err) = split(&k);
        if code != 0 {
            failures.push(format!(
                "keepalived -t {}: exit {code}\n{err}",
                file.display()
            ));
        }
        let (code, out, err) = s.check_config_with(file, id);
        if code != 0 || !out.contains("ignored: ") {
            failures.push(format!(
                "check-config {}: exit {code}\n{err}{out}",
                file.display()
            ));
        }
        if file.ends_with("vrrp.conf")
            && !err
                .contains("virtual_ipaddress: 192.0.2.52 is already listed at line 28: added once")
        {
            failures.push(format!(
                "vrrp.conf: no warning for the VIP listed twice:\n{err}"
            ));
        }
        // The LVS shapes: every service resolved and listed, as ipvsadm -Ln would.
        let name = file.file_name().unwrap().to_string_lossy();
        if name.starts_with("lvs_") && !out.contains("virtual_server (as ipvsadm -Ln") {
            failures.push(format!("{name}: no services listed:\n{out}"));
        }
        if name == "lvs_sample.conf"
            && !(out.contains("UDP  203.0.113.213:53 mh (TUN) group DNS")
                && out.contains("-> 203.0.113.200:1358  sorry server (DR)"))
        {
            failures.push(format!(
                "{name}: the group or the sorry server is missing:\n{out}"
            ));
        }
        if file.ends_with("conditional.conf") && !out.contains("priority 170") {
            failures.push(format!(
                "conditional.conf -i high: not priority 170:\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A VIP listed twice (keepalived accepts it) runs: the master adds it once, and nothing fails.
#[test]
fn a_vip_listed_twice_is_added_once() {
    let s = Scratch::new("dupvip");
    let conf = instance("    priority 255\n").replace(
        "192.0.2.200/24\n",
        "192.0.2.200/24\n        192.0.2.200/24 label eth0:dup\n",
    );
    let path = s.write("dup.conf", &conf);
    let child = s.spawn_run(&path);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .ip(&["-4", "addr", "show", "dev", "eth0"])
        .contains("192.0.2.200/24")
    {
        if Instant::now() > deadline {
            let out = wait_within(child, Duration::ZERO, "run dup.conf");
            panic!(
                "the owner did not add its VIP within 10 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let addrs = s.ip(&["-4", "addr", "show", "dev", "eth0"]);
    assert_eq!(addrs.matches("192.0.2.200/24").count(), 1, "{addrs}");
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let out = wait_within(child, Duration::from_secs(10), "run dup.conf after SIGTERM");
    let (code, _, err) = split(&out);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("192.0.2.200 is already listed at line 7: added once"),
        "{err}"
    );
    assert!(!err.contains("ERROR"), "{err}");
}

/// `run -i ID` keeps its id across a SIGHUP reload: the reloaded file's `@ID` lines are chosen
/// as at the start (not by the host name).
#[test]
fn a_reload_reads_the_file_with_the_same_config_id() {
    let s = Scratch::new("reloadid");
    let first = instance("    priority 255\n");
    let path = s.write("reload.conf", &first);
    let child = s.spawn_run_with(&path, &["-i", "node1"]);
    let addrs = |s: &Scratch| s.ip(&["-4", "addr", "show", "dev", "eth0"]);
    let wait_for = |s: &Scratch, what: &dyn Fn(&str) -> bool, why: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what(&addrs(s)) {
            assert!(
                Instant::now() < deadline,
                "{why}: not within 10 s:\n{}",
                addrs(s)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(
        &s,
        &|a| a.contains("192.0.2.200/24"),
        "the owner adds its VIP",
    );
    let second = first.replace(
        "192.0.2.200/24\n",
        "192.0.2.200/24\n@node1        192.0.2.201/24\n@^node1        192.0.2.202/24\n",
    );
    std::fs::write(&path, second).unwrap();
    sh(&["kill", "-HUP", &child.id().to_string()]);
    wait_for(
        &s,
        &|a| a.contains("192.0.2.201/24") || a.contains("192.0.2.202/24"),
        "the reloaded instance adds its VIPs",
    );
    let now = addrs(&s);
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let out = wait_within(
        child,
        Duration::from_secs(10),
        "run reload.conf after SIGTERM",
    );
    let (code, _, err) = split(&out);
    assert_eq!(code, 0, "{err}");
    assert!(
        now.contains("192.0.2.201/24") && !now.contains("192.0.2.202/24"),
        "-i node1 after the reload:\n{now}\n{err}"
    );
}

/// keepalived's warning: scripts run as root without enable_script_security. check-config
/// accepts the file and says so.
#[test]
fn scripts_as_root_without_script_security_are_a_security_violation_warning() {
    let s = Scratch::new("violation");
    let conf = "vrrp_script chk {\n    script \"/bin/true\"\n}\n".to_owned() + &instance(TRACK_CHK);
    let path = s.write("violation.conf", &conf);
    let (code, _, err) = s.check_config(&path);
    assert_eq!(code, 0, "check-config: {err}");
    assert!(
        err.contains(
            "warning: SECURITY VIOLATION - scripts are being executed but script_security not \
             enabled"
        ),
        "{err}"
    );
    // As another user: nothing to warn about.
    let conf = format!("global_defs {{\n    script_user nobody\n}}\n{conf}");
    let path = s.write("as-nobody.conf", &conf);
    let (code, _, err) = s.check_config(&path);
    assert_eq!(code, 0, "check-config: {err}");
    assert!(!err.contains("SECURITY VIOLATION"), "{err}");
}

/// Removes files on drop, also on panic.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// keepalived's `instance NAME` names its files after it: without --pid-file and
/// --control-socket, the agent's are /run/ha-agent/NAME.pid and NAME.sock, `ha-agent status -f`
/// finds the socket from the same file, and both are gone after a clean exit.
#[test]
fn instance_names_the_default_pid_file_and_control_socket() {
    let s = Scratch::new("instance");
    let name = format!("hacc-instance-{}", std::process::id());
    let path = s.write("inst.conf", &format!("instance {name}\n{}", instance("")));
    let (pid_file, socket) = (
        Path::new("/run/ha-agent").join(format!("{name}.pid")),
        Path::new("/run/ha-agent").join(format!("{name}.sock")),
    );
    let _cleanup = RemoveOnDrop(vec![pid_file.clone(), socket.clone()]);
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns,
            BIN,
            "run",
            "--datapath",
            "socket",
            "-f",
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        if Instant::now() > deadline {
            let out = wait_within(child, Duration::ZERO, "run inst.conf");
            panic!(
                "no {} within 10 s:\n{}",
                socket.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        child.id().to_string(),
        "the pid file names the agent"
    );
    let status = Command::new(BIN)
        .args(["status", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "status -f found no agent: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let out = wait_within(
        child,
        Duration::from_secs(10),
        "run inst.conf after SIGTERM",
    );
    assert_eq!(split(&out).0, 0, "{}", split(&out).2);
    assert!(
        !pid_file.exists() && !socket.exists(),
        "left behind at exit"
    );
}

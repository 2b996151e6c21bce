//! `global_defs { startup_script, shutdown_script }` as keepalived runs them: the startup
//! script runs to its end before any instance starts, the shutdown script after the VIPs and
//! static addresses are gone, and a script that hangs is stopped (with what it started) at its
//! timeout while the agent goes on, or at once when the agent is told to exit. `default_interface` places a `static_ipaddress` line that
//! has no `dev`.

use std::{net::IpAddr, os::unix::fs::PermissionsExt as _, path::Path, time::Duration};

use ha_tests::{Daemon, Lab, ha_agent_bin};

/// How long an agent may take to answer on its status socket (a loaded machine).
const READY: Duration = Duration::from_secs(20);

fn wait_for(what: &str, timeout: Duration, agent: &Daemon, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond()))
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", agent.log()));
}

fn executable(lab: &Lab, name: &str, body: &str) -> String {
    let path = lab.write_file(name, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Whether `pid` is gone (or a zombie no one reaped yet: it runs nothing).
fn gone(pid: &str) -> bool {
    let stat = read(Path::new(&format!("/proc/{}/stat", pid.trim())));
    stat.is_empty() || stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
}

/// Kills, on drop (also on panic), the processes whose pids the lab's `*.pid` files of the
/// scripts name, if they still run something from the lab directory.
struct KillScripts(Vec<std::path::PathBuf>);

impl Drop for KillScripts {
    fn drop(&mut self) {
        for file in &self.0 {
            let dir = file.parent().unwrap().to_string_lossy().into_owned();
            let Ok(pid) = read(file).trim().parse::<i32>() else {
                continue;
            };
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir));
            if ours {
                // SAFETY: kill(2) with a pid a script of this test wrote; SIGKILL to it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn config(globals: &str, statics: &str) -> String {
    format!(
        "global_defs {{\n{globals}}}\n{statics}vrrp_instance VI {{\n    interface eth0\n    \
         virtual_router_id 70\n    version 3\n    priority 150\n    advert_int 0.05\n    \
         virtual_ipaddress {{\n        192.0.2.170/24\n    }}\n}}\n"
    )
}

/// The startup script holds the start until the test releases it: meanwhile no instance has
/// started (no transition logged, no VIP, the agent not running); released, the agent starts and
/// takes the VIP. `default_interface eth0` puts the dev-less static address on eth0. At SIGTERM
/// the shutdown script runs once the VIP and the static address are gone from eth0, and the
/// agent exits after it.
#[test]
fn startup_script_runs_before_the_instances_and_shutdown_script_after_the_vips() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("startstop", 1).expect("lab");
    let dir = lab.dir.display().to_string();
    let startup = executable(
        &lab,
        "startup.sh",
        &format!(
            "#!/bin/sh\necho started > {dir}/startup.state\n\
             while [ ! -e {dir}/release ]; do sleep 0.02; done\n\
             ip -o addr show dev eth0 > {dir}/startup.addrs\necho released >> {dir}/startup.state\n"
        ),
    );
    let shutdown = executable(
        &lab,
        "shutdown.sh",
        &format!("#!/bin/sh\nip -o addr show dev eth0 > {dir}/shutdown.addrs\n"),
    );
    let conf = config(
        &format!(
            "    startup_script {startup}\n    startup_script_timeout 120\n    \
             shutdown_script {shutdown}\n    default_interface eth0\n"
        ),
        "static_ipaddress {\n    198.51.100.7/32\n}\n",
    );
    let vip: IpAddr = "192.0.2.170".parse().unwrap();
    let fixed: IpAddr = "198.51.100.7".parse().unwrap();
    let mut agent = lab.ha_agent(1, &conf, &["--datapath", "socket"]).unwrap();
    let state = lab.dir.join("startup.state");
    wait_for("the startup script to start", READY, &agent, || {
        read(&state).contains("started")
    });
    // Held by the script: nothing of the instance has started.
    let log = agent.log();
    assert!(
        log.contains("running startup script") && !log.contains(" -> "),
        "an instance moved while the startup script ran:\n{log}"
    );
    assert!(!log.contains("ha-agent running"), "{log}");
    assert!(!lab.node(1).has_addr(vip).unwrap() && !lab.node(1).has_addr(fixed).unwrap());

    lab.write_file("release", "").unwrap();
    lab.wait_agent_ready(1, &mut agent, READY).unwrap();
    wait_for("the VIP", Duration::from_secs(10), &agent, || {
        lab.node(1).has_addr(vip).unwrap()
    });
    assert!(
        lab.node(1).has_addr(fixed).unwrap(),
        "the static address without dev is on default_interface eth0"
    );
    let log = agent.log();
    let done = log
        .find(&format!("startup script `{startup}` done"))
        .unwrap_or_else(|| panic!("no 'done' line:\n{log}"));
    let first_transition = log.find(" -> ").expect("a transition");
    assert!(done < first_transition, "{log}");
    let seen = read(&lab.dir.join("startup.addrs"));
    assert!(
        !seen.contains("192.0.2.170") && !seen.contains("198.51.100.7"),
        "the startup script saw addresses of the agent: {seen}"
    );

    agent.signal(libc::SIGTERM).unwrap();
    let status = agent.wait_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}:\n{}",
        agent.log()
    );
    let seen = read(&lab.dir.join("shutdown.addrs"));
    assert!(
        seen.contains("eth0"),
        "the shutdown script did not run:\n{}",
        agent.log()
    );
    assert!(
        !seen.contains("192.0.2.170") && !seen.contains("198.51.100.7"),
        "the shutdown script ran while the VIP or the static address was there: {seen}"
    );
    assert!(
        agent
            .log()
            .contains(&format!("shutdown script `{shutdown}` done")),
        "{}",
        agent.log()
    );
}

/// A startup script that hangs is killed at `startup_script_timeout`, with the process it
/// started, and the agent starts anyway; a hanging shutdown script is killed the same way at
/// `shutdown_script_timeout` and the agent exits.
#[test]
fn a_hanging_script_is_killed_at_its_timeout_and_the_agent_goes_on() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("scripthang", 1).expect("lab");
    let dir = lab.dir.display().to_string();
    let hang = |name: &str| {
        executable(
            &lab,
            &format!("{name}.sh"),
            &format!("#!/bin/sh\nsleep 1000 &\necho $! > {dir}/{name}.pid\nwait\n"),
        )
    };
    let (startup, shutdown) = (hang("startup"), hang("shutdown"));
    let _cleanup = KillScripts(vec![
        lab.dir.join("startup.pid"),
        lab.dir.join("shutdown.pid"),
    ]);
    let conf = config(
        &format!(
            "    startup_script {startup}\n    startup_script_timeout 1\n    \
             shutdown_script {shutdown}\n    shutdown_script_timeout 1\n"
        ),
        "",
    );
    let vip: IpAddr = "192.0.2.170".parse().unwrap();
    let mut agent = lab.ha_agent(1, &conf, &["--datapath", "socket"]).unwrap();
    lab.wait_agent_ready(1, &mut agent, READY).unwrap();
    wait_for("the VIP", Duration::from_secs(10), &agent, || {
        lab.node(1).has_addr(vip).unwrap()
    });
    assert!(
        agent.log().contains(&format!(
            "startup script `{startup}` timed out after 1s (startup_script_timeout): stopped"
        )),
        "{}",
        agent.log()
    );
    let pid = read(&lab.dir.join("startup.pid"));
    assert!(!pid.is_empty(), "the startup script ran");
    wait_for(
        "the startup script's child to be killed",
        Duration::from_secs(5),
        &agent,
        || gone(&pid),
    );

    agent.signal(libc::SIGTERM).unwrap();
    let status = agent.wait_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}:\n{}",
        agent.log()
    );
    assert!(
        agent.log().contains(&format!(
            "shutdown script `{shutdown}` timed out after 1s (shutdown_script_timeout): stopped"
        )),
        "{}",
        agent.log()
    );
    let pid = read(&lab.dir.join("shutdown.pid"));
    assert!(!pid.is_empty(), "the shutdown script ran");
    assert!(gone(&pid), "the shutdown script's child still runs");
}

/// SIGTERM while the startup script runs stops the script (and what it started) and the agent
/// exits without starting anything; the shutdown script still runs, as keepalived's stop path.
#[test]
fn sigterm_during_the_startup_script_stops_it_and_nothing_starts() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("scriptterm", 1).expect("lab");
    let dir = lab.dir.display().to_string();
    let startup = executable(
        &lab,
        "startup.sh",
        &format!("#!/bin/sh\nsleep 1000 &\necho $! > {dir}/startup.pid\nwait\n"),
    );
    let shutdown = executable(
        &lab,
        "shutdown.sh",
        &format!("#!/bin/sh\necho ran > {dir}/shutdown.state\n"),
    );
    let _cleanup = KillScripts(vec![lab.dir.join("startup.pid")]);
    let conf = config(
        &format!(
            "    startup_script {startup}\n    startup_script_timeout 120\n    \
             shutdown_script {shutdown}\n"
        ),
        "",
    );
    let mut agent = lab.ha_agent(1, &conf, &["--datapath", "socket"]).unwrap();
    let pid_file = lab.dir.join("startup.pid");
    wait_for("the startup script to start", READY, &agent, || {
        !read(&pid_file).is_empty()
    });
    agent.signal(libc::SIGTERM).unwrap();
    let status = agent.wait_timeout(Duration::from_secs(10)).unwrap();
    let log = agent.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "startup script `{startup}`: stopped, the agent was told to exit"
        )),
        "{log}"
    );
    assert!(
        gone(&read(&pid_file)),
        "the startup script's child still runs"
    );
    assert!(
        !log.contains(" -> ") && !log.contains("ha-agent running"),
        "something started:\n{log}"
    );
    assert_eq!(read(&lab.dir.join("shutdown.state")).trim(), "ran", "{log}");
}

/// A reload that changes `shutdown_script` runs the new one at exit (keepalived re-reads its
/// global_defs at a reload), and the startup script does not run again.
#[test]
fn a_reload_changes_the_shutdown_script_and_does_not_rerun_the_startup_script() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("scriptreload", 1).expect("lab");
    let dir = lab.dir.display().to_string();
    let startup = executable(
        &lab,
        "startup.sh",
        &format!("#!/bin/sh\necho ran >> {dir}/startup.state\n"),
    );
    let script = |name: &str| {
        executable(
            &lab,
            &format!("{name}.sh"),
            &format!("#!/bin/sh\necho {name} >> {dir}/shutdown.state\n"),
        )
    };
    let (old, new) = (script("old"), script("new"));
    let conf = |shutdown: &str| {
        config(
            &format!("    startup_script {startup}\n    shutdown_script {shutdown}\n"),
            "",
        )
    };
    let mut agent = lab
        .ha_agent(1, &conf(&old), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(1, &mut agent, READY).unwrap();
    lab.write_file("ha-agent-n1.conf", &conf(&new)).unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    wait_for("the reload", Duration::from_secs(10), &agent, || {
        agent.log().contains("reload done")
    });
    agent.signal(libc::SIGTERM).unwrap();
    let status = agent.wait_timeout(Duration::from_secs(20)).unwrap();
    let log = agent.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}:\n{log}"
    );
    assert_eq!(read(&lab.dir.join("shutdown.state")), "new\n", "{log}");
    assert_eq!(read(&lab.dir.join("startup.state")), "ran\n", "{log}");
}

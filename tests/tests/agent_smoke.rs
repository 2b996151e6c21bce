//! Two ha-agent nodes elect the higher priority as master, which holds the VIP and the virtual
//! route; a link cut moves both; SIGTERM hands over and removes them. `dont_track_primary`
//! keeps a master through its own link going down.

use std::{net::IpAddr, time::Duration};

use ha_tests::{Lab, ha_agent_bin};

/// How long an agent may take to answer on its status socket (XDP loads on a loaded machine).
const READY: Duration = Duration::from_secs(20);

/// Waits for `cond` (lab commands inside may fail the test) for at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    ha_tests::wait_for(what, timeout, || Ok(cond())).unwrap();
}

/// Whether node `i` has the virtual route 198.51.100.0/24.
fn has_route(lab: &Lab, i: usize) -> bool {
    lab.node(i)
        .run("ip", &["-4", "route", "show", "198.51.100.0/24"])
        .unwrap()
        .contains("198.51.100.0/24 via 192.0.2.254")
}

fn conf(priority: u8) -> String {
    format!(
        r#"
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    version 3
    priority {priority}
    advert_int 0.1
    virtual_ipaddress {{
        192.0.2.200/24
    }}
    virtual_routes {{
        198.51.100.0/24 via 192.0.2.254
    }}
}}
"#
    )
}

#[test]
fn two_agents_elect_fail_over_and_hand_over() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("smoke", 2).expect("lab");
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let mut a1 = lab
        .ha_agent(1, &conf(150), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab
        .ha_agent(2, &conf(100), &["--datapath", "socket"])
        .unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for("node 1 to hold the VIP", Duration::from_secs(5), || {
        lab.node(1).has_addr(vip).unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !lab.node(2).has_addr(vip).unwrap(),
        "backup holds the VIP; n2 log:\n{}",
        a2.log()
    );
    // virtual_routes go with the VIPs.
    assert!(has_route(&lab, 1), "no virtual route on the master");
    assert!(!has_route(&lab, 2), "a virtual route on the backup");

    lab.cut(1).unwrap();
    wait_for("node 2 to take the VIP", Duration::from_secs(5), || {
        lab.node(2).has_addr(vip).unwrap()
    });
    wait_for(
        "the virtual route to move to node 2",
        Duration::from_secs(2),
        || has_route(&lab, 2) && !has_route(&lab, 1),
    );
    lab.restore(1).unwrap();
    wait_for("node 1 to preempt back", Duration::from_secs(5), || {
        lab.node(1).has_addr(vip).unwrap() && !lab.node(2).has_addr(vip).unwrap()
    });

    a1.signal(libc::SIGTERM).unwrap();
    let status = a1
        .wait_timeout(Duration::from_secs(2))
        .unwrap()
        .expect("ha-agent exits on SIGTERM");
    assert!(status.success(), "exit status {status}; log:\n{}", a1.log());
    assert!(
        !lab.node(1).has_addr(vip).unwrap(),
        "the VIP is removed on exit"
    );
    assert!(!has_route(&lab, 1), "the virtual route is removed on exit");
    wait_for(
        "node 2 to take over after the priority-0 advert",
        Duration::from_secs(2),
        || lab.node(2).has_addr(vip).unwrap(),
    );
    // The stopping master stayed until the new master advertised, and said who it was.
    assert!(
        a1.log()
            .contains("handed over: 192.0.2.2 (priority 100) is master"),
        "no hand-over line in n1's log:\n{}",
        a1.log()
    );
    wait_for("node 2 to log its takeover", Duration::from_secs(2), || {
        a2.log()
            .contains("BACKUP -> MASTER (skew time expired after the master resigned (priority 0)")
    });

    // Alone, a stopping master waits at most one advert interval (0.1 s) for a
    // successor, then says the VIP has no master and exits.
    let mut a2 = a2;
    a2.signal(libc::SIGTERM).unwrap();
    let status = a2
        .wait_timeout(Duration::from_secs(2))
        .unwrap()
        .expect("a lone ha-agent exits on SIGTERM within 2 s");
    assert!(status.success(), "exit status {status}; log:\n{}", a2.log());
    assert!(
        a2.log()
            .contains("no other router advertised within 100 ms of our priority-0 advert"),
        "no warning about the VIP left without a master; n2 log:\n{}",
        a2.log()
    );
    assert!(
        !lab.node(2).has_addr(vip).unwrap(),
        "the VIP is removed on exit"
    );
}

/// keepalived's `dont_track_primary`: an instance whose own interface loses its carrier stays
/// master (only its trackers can fault it); without it, the instance goes to FAULT and removes
/// the VIP. One node of each, each alone in its VRID, both links cut.
#[test]
fn dont_track_primary_keeps_a_master_through_its_link_going_down() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("dtprim", 2).expect("lab");
    let conf = |vrid: u8, vip: &str, extra: &str| {
        format!(
            "vrrp_instance VI_{vrid} {{\n    interface eth0\n    virtual_router_id {vrid}\n    \
             version 3\n    priority 150\n    advert_int 0.1\n{extra}    virtual_ipaddress {{\n        \
             {vip}/24\n    }}\n}}\n"
        )
    };
    let (v1, v2): (IpAddr, IpAddr) = (
        "192.0.2.201".parse().unwrap(),
        "192.0.2.202".parse().unwrap(),
    );
    let mut a1 = lab
        .ha_agent(1, &conf(61, "192.0.2.201", "    dont_track_primary\n"), &[])
        .unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab.ha_agent(2, &conf(62, "192.0.2.202", ""), &[]).unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait_for(
        "both nodes to hold their VIP",
        Duration::from_secs(5),
        || lab.node(1).has_addr(v1).unwrap() && lab.node(2).has_addr(v2).unwrap(),
    );
    lab.cut(1).unwrap();
    lab.cut(2).unwrap();
    wait_for("node 2 to go to FAULT", Duration::from_secs(5), || {
        a2.log().contains("MASTER -> FAULT") && !lab.node(2).has_addr(v2).unwrap()
    });
    // Node 1 saw the same link change, and stays master with its VIP.
    wait_for(
        "node 1 to see its link down",
        Duration::from_secs(2),
        || a1.log().contains("interface eth0 is down"),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.node(1).has_addr(v1).unwrap(), "log:\n{}", a1.log());
    assert!(!a1.log().contains("-> FAULT"), "log:\n{}", a1.log());
}

/// A notify line that names a user runs its script as that user (keepalived's
/// `notify_master "SCRIPT" USER`); one that names none runs as `script_user` (here unset: root).
#[test]
fn a_notify_line_runs_as_the_user_it_names() {
    use std::os::unix::fs::PermissionsExt as _;
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("notifyuser", 1).expect("lab");
    // Readable by nobody all the way down, the output directory writable by it.
    let dir = lab.dir.join("notify");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    for (path, mode) in [(&lab.dir, 0o755), (&dir, 0o755), (&dir.join("out"), 0o777)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let script = dir.join("who.sh");
    // Written aside and renamed: the test never reads a file the shell has created but `id`
    // has not written yet.
    std::fs::write(
        &script,
        "#!/bin/sh\nout=\"$(dirname \"$0\")/out\"\nid -u > \"$out/.$1\" && mv \"$out/.$1\" \"$out/$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.display();
    let conf = format!(
        "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    version 3\n    \
         priority 150\n    advert_int 0.1\n    notify_master \"{s} master\" nobody\n    \
         notify_backup \"{s} backup\"\n    virtual_ipaddress {{\n        192.0.2.200/24\n    }}\n}}\n"
    );
    let mut agent = lab.ha_agent(1, &conf, &["--datapath", "socket"]).unwrap();
    lab.wait_agent_ready(1, &mut agent, READY).unwrap();
    let read = |which: &str| std::fs::read_to_string(dir.join("out").join(which)).ok();
    wait_for("both notify scripts to run", Duration::from_secs(5), || {
        read("master").is_some() && read("backup").is_some()
    });
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody = String::from_utf8_lossy(&nobody.stdout).into_owned();
    assert_eq!(
        read("master").unwrap().trim(),
        nobody.trim(),
        "notify_master ... nobody"
    );
    assert_eq!(
        read("backup").unwrap().trim(),
        "0",
        "notify_backup without a user"
    );
}

//! `net_namespace NAME`: an agent started in another namespace (here the lab's client) enters
//! node 1's before it reads any interface, as keepalived: it runs VRRP on node 1's eth0, holds
//! the VIP there (not where it was started), and hands it to node 2 when it stops.

use std::{net::IpAddr, time::Duration};

use ha_tests::{Lab, ha_agent_bin, v3_instance, wait_for};

/// How long an agent may take to answer on its status socket (XDP loads on a loaded machine).
const READY: Duration = Duration::from_secs(20);

#[test]
fn an_agent_enters_its_net_namespace_and_runs_vrrp_there() {
    let bin = ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("netns", 2).expect("lab");
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let conf = format!(
        "net_namespace {}\n{}",
        lab.node(1).ns,
        v3_instance(150, "0.05")
    );
    let path = lab.write_file("ha-agent-n1.conf", &conf).unwrap();
    let (path, pid) = (
        path.display().to_string(),
        lab.dir.join("ha-agent-n1.pid").display().to_string(),
    );
    let bpf_dir = lab.bpf_dir.display().to_string();
    // Started in the client's namespace, which has an eth0 of its own on the same LAN.
    let args = [
        "run",
        "-f",
        &path,
        "--pid-file",
        &pid,
        "--bpf-dir",
        &bpf_dir,
        "--log-level",
        "debug",
    ];
    let mut a1 = lab
        .client
        .spawn("ha-agent-n1", &lab.dir, &bin.display().to_string(), &args)
        .unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    assert!(
        a1.log()
            .contains(&format!("entered network namespace {}", lab.node(1).ns)),
        "{}",
        a1.log()
    );
    wait_for("node 1 to hold the VIP", Duration::from_secs(10), || {
        lab.node(1).has_addr(vip)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", a1.log()));
    assert!(
        !lab.client.has_addr(vip).unwrap(),
        "the VIP went to the namespace the agent was started in"
    );
    let mut a2 = lab.ha_agent(2, &v3_instance(100, "0.05"), &[]).unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    assert!(!lab.node(2).has_addr(vip).unwrap(), "node 2 took the VIP");

    // Its priority-0 advert reaches node 2 over node 1's eth0: node 2 takes over at once.
    a1.signal(libc::SIGTERM).unwrap();
    wait_for("node 2 to take over", Duration::from_secs(5), || {
        Ok(lab.node(2).has_addr(vip)? && !lab.node(1).has_addr(vip)?)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", a1.log()));
    assert!(a1.wait_timeout(Duration::from_secs(10)).unwrap().is_some());
    assert!(
        a1.log()
            .contains("handed over: 192.0.2.2 (priority 100) is master"),
        "{}",
        a1.log()
    );
}

//! Issue 13 item 2: XDP on an interface passes other speakers' VRRP to the kernel.
//!
//! ```text
//!   node 1: ha-agent --datapath xdp, VRID 51 (priority 150) on eth0 ─┐
//!           └─ macvlan child (mode bridge) in its own namespace:      │
//!              keepalived VRID 52, priority 100 (a container)         ├─ LAN
//!   node 2: keepalived VRID 52, priority 150                          │
//!   node 3: keepalived VRID 51, priority 100                         ─┘
//! ```
//!
//! Native XDP on node 1's eth0 runs before the kernel hands frames to the macvlan child. When
//! `vrrp_rx` dropped adverts for VRIDs it does not run, the container never heard node 2 and
//! became a second master of VRID 52's VIP. Now exactly one node (node 2) owns it, held for many
//! master-down intervals, while the agent's VRID 51 is unaffected, and the agent counts node 2's
//! adverts as another speaker's in its status.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{Kind, Proto, Scene, global_defs, unicast_lines};
use ha_agent::control::report::Report;
use ha_tests::{Daemon, IFACE, Lab, Node, run};

const VIP51: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const VIP52: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 252);
/// The container's address on the LAN.
const CTR_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
/// keepalived's VRID 52 backup in the container: Master_Down_Interval at advert_int 0.1 and
/// priority 100 is 3 × 100 ms + 61 ms.
const MASTER_DOWN_52: Duration = Duration::from_millis(361);

fn instance(name: &str, vrid: u8, priority: u8, vip: Ipv4Addr) -> String {
    format!(
        "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {vrid}\n    \
         version 3\n    priority {priority}\n    advert_int 0.1\n    virtual_ipaddress {{\n        \
         {vip}/24\n    }}\n}}\n"
    )
}

/// A container behind node 1's NIC: a namespace with a macvlan child (mode bridge) of node 1's
/// eth0 as its own `eth0`, running keepalived. Dropped: keepalived stopped, namespace deleted
/// (with the macvlan in it).
struct Container {
    // Dropped first: the daemon is stopped before its namespace goes.
    keepalived: Option<Daemon>,
    node: Node,
}

impl Container {
    fn new(lab: &Lab, parent: &Node) -> anyhow::Result<Container> {
        // The lab's prefix and name: a killed run's leftover is removed by the next lab.
        let ns = format!("{}-ctr", lab.name);
        run(Command::new("ip").args(["netns", "add", &ns]))?;
        let c = Container {
            keepalived: None,
            node: Node {
                ns: ns.clone(),
                index: 50,
                port: String::new(),
                ipv4: CTR_ADDR,
                ipv6: "2001:db8::50".parse()?,
            },
        };
        run(Command::new("ip").args([
            "-n", &parent.ns, "link", "add", "link", IFACE, "name", "mv0", "type", "macvlan",
            "mode", "bridge",
        ]))?;
        run(Command::new("ip").args(["-n", &parent.ns, "link", "set", "mv0", "netns", &ns]))?;
        c.node.run("ip", &["link", "set", "mv0", "name", IFACE])?;
        c.node.run("ip", &["link", "set", "lo", "up"])?;
        c.node.run("ip", &["link", "set", IFACE, "up"])?;
        c.node.run(
            "ip",
            &["addr", "add", &format!("{CTR_ADDR}/24"), "dev", IFACE],
        )?;
        c.node
            .run("ip", &["route", "replace", "224.0.0.0/4", "dev", IFACE])?;
        Ok(c)
    }

    /// Starts keepalived in the container as `Lab::keepalived` does in a node.
    fn start_keepalived(&mut self, dir: &Path, config: &str) -> anyhow::Result<()> {
        let conf = dir.join("keepalived-ctr.conf");
        std::fs::write(&conf, config)?;
        let pid = |what: &str| dir.join(format!("keepalived-ctr-{what}.pid"));
        let arg = |p: PathBuf| p.display().to_string();
        self.keepalived = Some(self.node.spawn(
            "keepalived-ctr",
            dir,
            "keepalived",
            &[
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--vrrp",
                "--use-file",
                &arg(conf.clone()),
                "--pid",
                &arg(pid("main")),
                "--vrrp_pid",
                &arg(pid("vrrp")),
                "--checkers_pid",
                &arg(pid("checkers")),
            ],
        )?);
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        drop(self.keepalived.take());
        let _ = run(Command::new("ip").args(["netns", "del", &self.node.ns]));
    }
}

/// Who holds `vip`: the lab's nodes by number, the container as 50.
fn holders(lab: &Lab, ctr: &Container, vip: Ipv4Addr) -> Vec<u8> {
    let vip = IpAddr::V4(vip);
    lab.nodes
        .iter()
        .chain(std::iter::once(&ctr.node))
        .filter(|n| n.has_addr(vip).expect("listing addresses"))
        .map(|n| n.index)
        .collect()
}

#[test]
fn xdp_passes_a_containers_vrrp_behind_the_same_nic() {
    let lab = Lab::new("foreign", 3).expect("building the lab");
    let mut ctr = Container::new(&lab, lab.node(1)).expect("the macvlan container on node 1");
    let agent_conf = format!("{}{}", global_defs("n1"), instance("VI_51", 51, 150, VIP51));
    let mut agent = lab
        .ha_agent(1, &agent_conf, &["--datapath", "xdp"])
        .expect("starting ha-agent on node 1");
    let _peer51 = lab
        .keepalived(
            3,
            &format!("{}{}", global_defs("n3"), instance("VI_51", 51, 100, VIP51)),
        )
        .expect("starting keepalived on node 3");
    let _master52 = lab
        .keepalived(
            2,
            &format!("{}{}", global_defs("n2"), instance("VI_52", 52, 150, VIP52)),
        )
        .expect("starting keepalived on node 2");
    ctr.start_keepalived(
        &lab.dir,
        &format!(
            "{}{}",
            global_defs("ctr"),
            instance("VI_52", 52, 100, VIP52)
        ),
    )
    .expect("starting keepalived in the container");

    let conf = lab.dir.join("ha-agent-n1.conf");
    let logs = |agent: &mut Daemon, ctr: &Container| {
        let read = |name: &str| std::fs::read_to_string(lab.dir.join(name)).unwrap_or_default();
        format!(
            "--- ha-agent n1 ---\n{}\n--- keepalived n2 ---\n{}\n--- keepalived ctr ---\n{}\n\
             VIP52 holders {:?}, VIP51 holders {:?}",
            agent.log(),
            read("keepalived-n2.log"),
            read("keepalived-ctr.log"),
            holders(&lab, ctr, VIP52),
            holders(&lab, ctr, VIP51),
        )
    };

    // The agent is up on XDP and master of VRID 51; node 2 is the one master of VRID 52.
    let settled = |lab: &Lab, ctr: &Container| {
        holders(lab, ctr, VIP51) == [1] && holders(lab, ctr, VIP52) == [2]
    };
    let start = Instant::now();
    let mut last = None;
    while !(settled(&lab, &ctr)
        && last.as_ref().is_some_and(|r: &Report| {
            r.agent.datapath == "xdp"
                && r.instances.iter().all(|i| i.state == "MASTER")
                && r.foreign
                    .iter()
                    .any(|f| f.interface == IFACE && f.vrid == 52 && f.count > 0)
        }))
    {
        assert!(
            agent.is_running(),
            "ha-agent exited\n{}",
            logs(&mut agent, &ctr)
        );
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no convergence in 15 s (one owner of each VIP, the agent master on xdp counting \
             VRID 52 as foreign); last status {last:#?}\n{}",
            logs(&mut agent, &ctr)
        );
        last = common::agent_status(&conf);
        std::thread::sleep(Duration::from_millis(20));
    }

    let transitions = last.as_ref().map(|r| r.instances[0].transitions);
    // Held over many master-down intervals of the container's backup: had it stopped hearing
    // node 2, it would have taken the VIP within one.
    let hold = MASTER_DOWN_52 * 8;
    let start = Instant::now();
    while start.elapsed() < hold {
        assert!(
            settled(&lab, &ctr),
            "after {:?} of {hold:?}: not exactly one owner per VIP\n{}",
            start.elapsed(),
            logs(&mut agent, &ctr)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = common::agent_status(&conf).expect("the agent's status");
    let vi = &report.instances[0];
    assert_eq!(
        (vi.state.as_str(), Some(vi.transitions)),
        ("MASTER", transitions),
        "the agent's instance is unaffected\n{}",
        logs(&mut agent, &ctr)
    );
    assert!(
        report.rejected.is_empty(),
        "nothing is rejected: other speakers' adverts are not ours to judge: {:?}",
        report.rejected
    );
}

/// Check 5a's other half: a unicast advert in a frame to the interface's own MAC is ours. An
/// agent on XDP, backup of a unicast keepalived master, hears it (its status names the master)
/// and stays backup over many master-down intervals; taken for another host's, it would be
/// master within one.
#[test]
fn xdp_hears_unicast_adverts_to_its_own_mac() {
    let mut s = Scene::new("fgnuni", 2);
    let proto = Proto::V3Unicast;
    let conf = |node: u8, priority: u8| {
        format!(
            "{}{}",
            global_defs(&format!("n{node}")),
            common::instance(
                "VI_1",
                51,
                priority,
                proto,
                0,
                &unicast_lines(proto, node, 2)
            )
        )
    };
    s.start(1, Kind::Keepalived, &conf(1, 150));
    s.start(2, Kind::AgentXdp, &conf(2, 100));
    let vip = proto.vip(0);
    let agent_conf = s.lab.dir.join("ha-agent-n2.conf");
    let node1: IpAddr = s.lab.node(1).ipv4.into();
    s.wait(
        "the agent on xdp, backup, hearing node 1 as master",
        Duration::from_secs(15),
        |_| {
            common::agent_status(&agent_conf).is_some_and(|r| {
                r.agent.datapath == "xdp"
                    && r.instances[0].state == "BACKUP"
                    && r.instances[0].master.as_ref().map(|m| m.address) == Some(node1)
            })
        },
    );
    // Counted before the agent wrote its rules (programs attach first): passed, harmlessly.
    let foreign = |r: &Report| r.foreign.iter().map(|f| f.count).sum::<u64>();
    let before = common::agent_status(&agent_conf).expect("the agent's status");
    s.hold_vip(vip, &[1], proto.master_down(100) * 8);
    let after = common::agent_status(&agent_conf).expect("the agent's status");
    assert!(
        after.instances[0].adverts.received > before.instances[0].adverts.received
            && foreign(&after) == foreign(&before),
        "node 1's unicast adverts are valid, none another host's: before {before:#?}\nafter \
         {after:#?}"
    );
}

/// The socket datapath ignores other speakers' adverts as keepalived ignores VRIDs it does not
/// run: counted as foreign in the status, not as rejected.
#[test]
fn the_socket_datapath_counts_other_vrids_as_foreign() {
    let mut s = Scene::new("fgnsock", 2);
    s.start(
        1,
        Kind::Agent,
        &format!("{}{}", global_defs("n1"), instance("VI_51", 51, 150, VIP51)),
    );
    s.start(
        2,
        Kind::Keepalived,
        &format!("{}{}", global_defs("n2"), instance("VI_52", 52, 150, VIP52)),
    );
    let conf = s.lab.dir.join("ha-agent-n1.conf");
    s.wait(
        "the agent on sockets, master of VRID 51, counting VRID 52 as foreign",
        Duration::from_secs(15),
        |_| {
            common::agent_status(&conf).is_some_and(|r| {
                r.agent.datapath == "socket"
                    && r.instances[0].state == "MASTER"
                    && r.foreign.iter().any(|f| f.vrid == 52 && f.count > 2)
            })
        },
    );
    let r = common::agent_status(&conf).expect("the agent's status");
    assert!(
        r.rejected.is_empty(),
        "another VRID is not a rejection: {:?}",
        r.rejected
    );
    s.wait_vip(VIP52.into(), &[2], Duration::from_secs(5));
}

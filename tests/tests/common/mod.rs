//! Shared by the integration tests that run daemons in a lab: polling with a timeout, a scene of
//! daemons (ha-agent or keepalived) on the lab's nodes with their logs in every failure message,
//! and keepalived.conf snippets.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of this module"
)]

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

pub use ha_tests::epoch_now;

/// `ha-agent status --json -f CONF`: the report of the agent running `conf`, `None` while it does
/// not answer. An answer that does not parse panics (a broken status is a bug, not a wait).
pub fn agent_status(conf: &std::path::Path) -> Option<ha_agent::control::report::Report> {
    let out = std::process::Command::new(ha_agent_bin().ok()?)
        .args(["status", "--json", "-f"])
        .arg(conf)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let report = ha_agent::control::report::Report::from_json(&text);
    Some(report.unwrap_or_else(|e| panic!("status --json -f {}: {e}\n{text}", conf.display())))
}

/// The status of node `i`'s agent (started by `Lab::ha_agent`), `None` while it does not answer.
pub fn node_status(lab: &Lab, i: usize) -> Option<ha_agent::control::report::Report> {
    agent_status(&lab.dir.join(format!("ha-agent-n{i}.conf")))
}
use ha_tests::{Daemon, Lab, ha_agent_bin};

/// Which daemon runs on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ha-agent run --datapath socket`.
    Agent,
    /// `ha-agent run` with the default datapath (`auto`: XDP + TC fence).
    AgentXdp,
    /// keepalived 2.2.7 (`--vrrp`).
    Keepalived,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Agent => "ha-agent",
            Kind::AgentXdp => "ha-agent (xdp)",
            Kind::Keepalived => "keepalived",
        }
    }

    pub fn is_agent(self) -> bool {
        self != Kind::Keepalived
    }
}

/// How long an agent may take to answer on its status socket after it was started (XDP loads
/// take seconds on a loaded 2-core machine).
pub const AGENT_READY: Duration = Duration::from_secs(20);

/// A lab with a daemon (or none) per node. Every failure message carries all daemons' logs.
pub struct Scene {
    // Dropped before the lab: the daemons are killed, then the namespaces removed.
    daemons: Vec<Option<(Kind, Daemon)>>,
    /// Logs of daemons that were stopped, for failure messages.
    past_logs: Vec<String>,
    pub lab: Lab,
}

impl Scene {
    /// A lab named `tag` with `nodes` nodes, no daemon running yet.
    pub fn new(tag: &str, nodes: u8) -> Scene {
        ha_agent_bin().expect("the ha-agent binary: run `cargo build -p ha-agent` first");
        let lab = Lab::new(tag, nodes).expect("building the lab");
        Scene {
            daemons: (0..nodes).map(|_| None).collect(),
            past_logs: Vec::new(),
            lab,
        }
    }

    /// Starts `kind` with `conf` on node `i` (1-based).
    pub fn start(&mut self, i: usize, kind: Kind, conf: &str) {
        assert!(
            self.daemons[i - 1].is_none(),
            "node {i} already runs a daemon"
        );
        let daemon = match kind {
            Kind::Agent => self.lab.ha_agent(i, conf, &["--datapath", "socket"]),
            Kind::AgentXdp => self.lab.ha_agent(i, conf, &[]),
            Kind::Keepalived => self.lab.keepalived(i, conf),
        }
        .unwrap_or_else(|e| self.fail(&format!("starting {} on node {i}: {e:#}", kind.name())));
        self.daemons[i - 1] = Some((kind, daemon));
        if kind.is_agent() {
            // What the test does next assumes a running agent: wait for its status socket
            // (datapath attached, instances started), never a fixed time.
            let (_, daemon) = self.daemons[i - 1].as_mut().expect("just started");
            let ready = self.lab.wait_agent_ready(i, daemon, AGENT_READY);
            if let Err(e) = ready {
                self.fail(&format!("{e:#}"));
            }
        }
    }

    /// The daemon on node `i`.
    pub fn daemon(&self, i: usize) -> &Daemon {
        &self.daemons[i - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("no daemon on node {i}"))
            .1
    }

    /// What runs on node `i`.
    pub fn kind(&self, i: usize) -> Kind {
        self.daemons[i - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("no daemon on node {i}"))
            .0
    }

    /// The log of the daemon on node `i`.
    pub fn log(&self, i: usize) -> String {
        self.daemon(i).log()
    }

    /// Sends SIGTERM to node `i`'s daemon; [`Scene::reap`] waits for it to exit.
    pub fn terminate(&self, i: usize) {
        self.daemon(i).signal(libc::SIGTERM).expect("SIGTERM");
    }

    /// Waits for node `i`'s daemon to exit cleanly (status 0) within `timeout`, e.g. after
    /// [`Scene::terminate`].
    pub fn reap(&mut self, i: usize, timeout: Duration) {
        let (kind, mut daemon) = self.daemons[i - 1]
            .take()
            .unwrap_or_else(|| panic!("no daemon on node {i}"));
        let status = daemon
            .wait_timeout(timeout)
            .expect("waiting for the daemon");
        self.past_logs.push(format!(
            "--- {} on node {i} (stopped) ---\n{}",
            kind.name(),
            without_debug(&daemon.log())
        ));
        match status {
            Some(s) if s.success() => {}
            Some(s) => self.fail(&format!(
                "{} on node {i} exited with {s} on SIGTERM",
                kind.name()
            )),
            None => self.fail(&format!(
                "{} on node {i} did not exit within {timeout:?} of SIGTERM",
                kind.name()
            )),
        }
    }

    /// Everything the daemons logged, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = self.past_logs.join("\n");
        for (n, d) in self.daemons.iter().enumerate() {
            if let Some((kind, daemon)) = d {
                out.push_str(&format!(
                    "\n--- {} on node {} ---\n{}",
                    kind.name(),
                    n + 1,
                    without_debug(&daemon.log())
                ));
            }
        }
        out
    }

    /// Panics with `msg`, the VIP placement and every log.
    pub fn fail(&self, msg: &str) -> ! {
        let addrs: Vec<String> = self
            .lab
            .nodes
            .iter()
            .map(|n| format!("node {}: {:?}", n.index, n.addrs().unwrap_or_default()))
            .collect();
        panic!("{msg}\naddresses: {addrs:#?}\n{}", self.logs());
    }

    /// Node `i`'s agent's status (`ha-agent status --json`), `None` while it does not answer.
    pub fn status(&self, i: usize) -> Option<ha_agent::control::report::Report> {
        node_status(&self.lab, i)
    }

    /// Node `i`'s agent's status; fails the test with every log when it does not answer.
    pub fn report(&self, i: usize) -> ha_agent::control::report::Report {
        self.status(i)
            .unwrap_or_else(|| self.fail(&format!("ha-agent status on node {i}: no answer")))
    }

    /// Whether node `i`'s agent hears `master` as the master of its first instance (a backup
    /// that has heard it has learned its Master_Adver_Interval, RFC 5798 §6.4.2).
    pub fn hears_master(&self, i: usize, master: IpAddr) -> bool {
        self.status(i).is_some_and(|r| {
            r.instances
                .first()
                .and_then(|inst| inst.master.as_ref())
                .is_some_and(|m| m.address == master && !m.is_self)
        })
    }

    /// The nodes (1-based) that hold `vip`.
    pub fn holders(&self, vip: IpAddr) -> Vec<usize> {
        self.lab
            .nodes
            .iter()
            .filter(|n| n.has_addr(vip).expect("listing addresses"))
            .map(|n| usize::from(n.index))
            .collect()
    }

    /// Polls until `cond` holds; fails with every log after `timeout`. Returns the time taken.
    pub fn wait(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Scene) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if cond(self) {
                return start.elapsed();
            }
            if start.elapsed() >= timeout {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Checks `cond` every 10 ms for `duration`; fails with every log the first time it is false.
    pub fn hold(&self, what: &str, duration: Duration, mut cond: impl FnMut(&Scene) -> bool) {
        let start = Instant::now();
        loop {
            if !cond(self) {
                self.fail(&format!(
                    "{what} stopped holding after {:?} (should hold for {duration:?})",
                    start.elapsed()
                ));
            }
            if start.elapsed() >= duration {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until exactly the nodes `owners` hold `vip`; returns the time taken.
    pub fn wait_vip(&self, vip: IpAddr, owners: &[usize], timeout: Duration) -> Duration {
        self.wait(
            &format!("{vip} on exactly node(s) {owners:?}"),
            timeout,
            |s| s.holders(vip) == owners,
        )
    }

    /// Asserts that exactly the nodes `owners` hold `vip` for all of `duration`.
    pub fn hold_vip(&self, vip: IpAddr, owners: &[usize], duration: Duration) {
        self.hold(
            &format!("{vip} on exactly node(s) {owners:?}"),
            duration,
            |s| s.holders(vip) == owners,
        )
    }

    /// Waits until node `i`'s log contains `needle` at least `count` times.
    pub fn wait_log(&self, i: usize, needle: &str, count: usize, timeout: Duration) {
        self.wait(
            &format!("node {i} to log {needle:?} {count} time(s)"),
            timeout,
            |s| s.log(i).matches(needle).count() >= count,
        );
    }

    /// Fails if a running daemon rejected adverts from its peer or complained about the
    /// configuration: the wire formats must agree exactly.
    pub fn assert_clean_logs(&self) {
        self.assert_clean_logs_except(&[]);
    }

    /// [`Scene::assert_clean_logs`], except lines containing one of `allowed`.
    pub fn assert_clean_logs_except(&self, allowed: &[&str]) {
        for (n, d) in self.daemons.iter().enumerate() {
            let Some((kind, daemon)) = d else { continue };
            let log = daemon.log();
            let bad: &[&str] = if kind.is_agent() {
                &["dropped advert", "ERROR", "WARN"]
            } else {
                KEEPALIVED_COMPLAINTS
            };
            for needle in bad {
                // Both warn that RFC 5798 wants a link-local first IPv6 VIP; the lab's is global.
                // Both warn of scripts run as root without enable_script_security (the lab's
                // scripts live in its temporary directory and run as root).
                // A transition into FAULT logs at WARN: whether one is expected is the test's.
                let fault = |l: &str| kind.is_agent() && l.contains(" -> FAULT (");
                let complaint = |l: &&str| {
                    l.contains(needle)
                        && !fault(l)
                        && !l.contains("link-local")
                        && !l.contains("link local")
                        && !l.contains("SECURITY VIOLATION")
                        && !allowed.iter().any(|a| l.contains(a))
                };
                if let Some(line) = log.lines().find(complaint) {
                    self.fail(&format!(
                        "{} on node {} logged {needle:?}: {line}",
                        kind.name(),
                        n + 1
                    ));
                }
            }
        }
    }
}

/// Echo replies the lab's prober of `target` has logged after wall-clock time `after` (seconds
/// since the epoch, as `ping -D`), read from its log while it runs.
pub fn prober_replies_after(lab: &Lab, target: IpAddr, after: f64) -> usize {
    let name = format!("prober-{}.log", target.to_string().replace([':', '.'], "_"));
    let log = std::fs::read_to_string(lab.dir.join(name)).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse::<f64>().ok())
        .filter(|t| *t > after)
        .count()
}

/// Waits until the prober of `target` has seen a reply after `after`.
pub fn wait_for_replies(s: &Scene, target: IpAddr, after: f64, timeout: Duration) {
    s.wait(
        &format!("the client's pings to {target} to be answered"),
        timeout,
        |s| prober_replies_after(&s.lab, target, after) > 0,
    );
}

/// A log without ha-agent's debug lines (aya's BTF and relocation chatter).
fn without_debug(log: &str) -> String {
    log.lines()
        .filter(|l| !l.contains(" DEBUG "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What keepalived logs when it rejects a peer's advert or our configuration.
pub const KEEPALIVED_COMPLAINTS: &[&str] = &[
    "bogus",
    "ignoring received",
    "not present in received",
    "mismatch",
    "invalid",
    "Invalid",
    "checksum",
    "wrong",
    "Wrong",
    "Unknown keyword",
];

/// The flavours of VRRP the interop tests run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// VRRPv2, IPv4, `auth_type PASS`, advert_int 1 (v2 has whole seconds only).
    V2Pass,
    /// VRRPv3 over IPv4, advert_int 0.1.
    V3Ipv4,
    /// VRRPv3 over IPv6, advert_int 0.1.
    V3Ipv6,
    /// VRRPv3 over IPv4 to unicast peers (`unicast_src_ip`, `unicast_peer`), advert_int 0.1.
    V3Unicast,
}

impl Proto {
    /// The advert interval the tests configure.
    pub fn advert_int(self) -> Duration {
        match self {
            Proto::V2Pass => Duration::from_secs(1),
            Proto::V3Ipv4 | Proto::V3Ipv6 | Proto::V3Unicast => Duration::from_millis(100),
        }
    }

    /// Master_Down_Interval of a backup of `priority` (RFC 5798 §6.1).
    pub fn master_down(self, priority: u8) -> Duration {
        let ai = self.advert_int();
        3 * ai + ai * (256 - u32::from(priority)) / 256
    }

    /// A VIP of the protocol's family: `n` = 0 is the first.
    pub fn vip(self, n: u8) -> IpAddr {
        match self {
            Proto::V2Pass | Proto::V3Ipv4 | Proto::V3Unicast => {
                format!("192.0.2.{}", 200 + n).parse().unwrap()
            }
            Proto::V3Ipv6 => format!("2001:db8::{:x}", 0x200 + u16::from(n))
                .parse()
                .unwrap(),
        }
    }

    /// `virtual_ipaddress` line for VIP `n`.
    pub fn vip_line(self, n: u8) -> String {
        match self {
            Proto::V2Pass | Proto::V3Ipv4 | Proto::V3Unicast => format!("{}/24", self.vip(n)),
            Proto::V3Ipv6 => format!("{}/64", self.vip(n)),
        }
    }

    /// The lines of a `vrrp_instance` that depend on the protocol.
    fn lines(self) -> String {
        match self {
            Proto::V2Pass => "    version 2\n    advert_int 1\n    authentication {\n        \
                 auth_type PASS\n        auth_pass s3cret\n    }\n"
                .to_owned(),
            Proto::V3Ipv4 | Proto::V3Ipv6 | Proto::V3Unicast => {
                "    version 3\n    advert_int 0.1\n".to_owned()
            }
        }
    }
}

/// The lines that make node `node`'s instance talk unicast to the other nodes of a lab of
/// `nodes` nodes (empty unless `proto` is [`Proto::V3Unicast`]).
pub fn unicast_lines(proto: Proto, node: u8, nodes: u8) -> String {
    if proto != Proto::V3Unicast {
        return String::new();
    }
    let peers: String = (1..=nodes)
        .filter(|n| *n != node)
        .map(|n| format!("        192.0.2.{n}\n"))
        .collect();
    format!("    unicast_src_ip 192.0.2.{node}\n    unicast_peer {{\n{peers}    }}\n")
}

/// Splits the lab's LAN between its nodes without a carrier change: every node's bridge port
/// becomes isolated (isolated ports reach only non-isolated ones, the client's), or joined again.
pub fn partition(lab: &Lab, isolated: bool) {
    let state = if isolated { "on" } else { "off" };
    for node in &lab.nodes {
        ha_tests::run(std::process::Command::new("ip").args([
            "netns", "exec", &lab.lan, "bridge", "link", "set", "dev", &node.port, "isolated",
            state,
        ]))
        .expect("bridge link set isolated");
    }
}

/// `global_defs` both daemons accept.
pub fn global_defs(router_id: &str) -> String {
    format!("global_defs {{\n    router_id {router_id}\n    script_user root\n}}\n")
}

/// A `vrrp_instance` block: `state BACKUP`, the protocol's version/interval/auth, VIP `vip`,
/// and `extra` lines (e.g. `nopreempt`, `track_script { … }`).
pub fn instance(name: &str, vrid: u8, priority: u8, proto: Proto, vip: u8, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {vrid}\n    \
         priority {priority}\n{}{extra}    virtual_ipaddress {{\n        {}\n    }}\n}}\n",
        proto.lines(),
        proto.vip_line(vip)
    )
}

pub use ha_tests::{ETHTOOL_STXCSUM, ethtool_set, veth_tx_checksum_off};

/// What XDP on a veth needs to transmit, in the lab: a NAPI context on node `i`'s bridge port
/// (the peer of its `eth0`), without which the kernel drops what XDP on `eth0` sends (`XDP_TX`,
/// `bpf_redirect`: veth delivers such frames through the peer's NAPI, which a veth has only
/// with an XDP program attached; GRO on through the legacy `ETHTOOL_SGRO` did not do it on
/// 6.18). A pass-through XDP program (`xdp_baseline`) goes
/// on the port; it is detached when the returned object is dropped.
pub fn veth_napi_on_port(lab: &Lab, i: usize) -> aya::Ebpf {
    let port = lab.node(i).port.clone();
    ha_tests::in_netns(&lab.lan, move || {
        let mut ebpf = aya::Ebpf::load(ha_agent::datapath::EBPF_OBJECT)?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut("xdp_baseline")
            .ok_or_else(|| anyhow::anyhow!("no xdp_baseline in the eBPF object"))?
            .try_into()?;
        prog.load()?;
        prog.attach(&port, aya::programs::XdpMode::Driver)?;
        Ok(ebpf)
    })
    .expect("a pass-through XDP program on the node's bridge port (needs root and BPF)")
}

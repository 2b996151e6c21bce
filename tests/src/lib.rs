//! The lab: hosts made of network namespaces, for ha-agent's integration tests, benchmarks and demo.
//!
//! ```text
//!   node 1 (ns) eth0 ─┐
//!   node 2 (ns) eth0 ─┼── p1 p2 … pc ── br0 in the LAN namespace
//!   client (ns) eth0 ─┘
//! ```
//!
//! Nodes are 192.0.2.N/24 and 2001:db8::N/64 (documentation ranges; they exist only inside the
//! lab), the client .100. Names carry the test's tag and this process's pid, so tests run in
//! parallel and a later run can recognise and remove what a killed run left behind. Everything a
//! lab creates (namespaces, processes, its temporary directory) is removed when it is dropped,
//! also when a test panics.

pub mod agent_log;
pub mod arpflood;
mod capture;
pub mod chaos;
mod daemon;
pub mod flood;
pub mod frr;
pub mod leftover;
pub mod lvs;
mod netns;
mod probe;
pub mod soak;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

pub use capture::Capture;
pub use daemon::Daemon;
pub use netns::in_netns;
pub use probe::{ArpProbe, Prober, ProberReport, days_from_civil, epoch_now, utc_epoch};

/// Prefix of every namespace a lab creates.
pub const NS_PREFIX: &str = "hal-";
/// The interface of a node or of the client, inside its namespace.
pub const IFACE: &str = "eth0";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A host in the lab: a network namespace with one interface, `eth0`, on the LAN.
#[derive(Clone, Debug)]
pub struct Node {
    /// Namespace name (`ip netns` name).
    pub ns: String,
    /// 1-based node number; the client is 100.
    pub index: u8,
    /// Name of the bridge port in the LAN namespace that leads to this node.
    pub port: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
}

impl Node {
    /// A command that runs inside this node (`ip netns exec NS program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// Runs `program args…` in this node and returns its stdout; fails with stderr on non-zero.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        run(self.command(program).args(args))
    }

    /// Runs a shell command line in this node.
    pub fn sh(&self, script: &str) -> Result<String> {
        self.run("sh", &["-c", script])
    }

    /// Addresses currently on `eth0` (without prefix lengths).
    pub fn addrs(&self) -> Result<Vec<IpAddr>> {
        let out = self.run("ip", &["-o", "addr", "show", "dev", IFACE])?;
        Ok(parse_ip_o_addr(&out))
    }

    /// Whether `addr` is configured on `eth0`.
    pub fn has_addr(&self, addr: IpAddr) -> Result<bool> {
        Ok(self.addrs()?.contains(&addr))
    }

    /// The MAC this node's neighbour table has for `addr` on `eth0` (whatever the entry's
    /// state), if it has an entry with one.
    pub fn neighbour_mac(&self, addr: IpAddr) -> Result<Option<String>> {
        let out = self.run("ip", &["neigh", "show", &addr.to_string(), "dev", IFACE])?;
        let mut words = out.split_whitespace();
        Ok(words
            .find(|w| *w == "lladdr")
            .and_then(|_| words.next())
            .map(str::to_owned))
    }

    /// MAC address of `eth0`.
    pub fn mac(&self) -> Result<String> {
        let out = self.run("cat", &[&format!("/sys/class/net/{IFACE}/address")])?;
        Ok(out.trim().to_owned())
    }

    /// Starts a long-running program in this node; its stdout and stderr go to `log` in the lab
    /// directory. The process is killed when the returned [`Daemon`] is dropped.
    pub fn spawn(
        &self,
        name: &str,
        log_dir: &Path,
        program: &str,
        args: &[&str],
    ) -> Result<Daemon> {
        let mut cmd = self.command(program);
        cmd.args(args);
        Daemon::spawn(name, cmd, &log_dir.join(format!("{name}.log")))
    }
}

/// A VRRPv3 instance `VI_1` (VRID 51) on eth0 with the VIP 192.0.2.200/24, as most lab tests
/// run it.
pub fn v3_instance(priority: u8, advert_int: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         version 3\n    priority {priority}\n    advert_int {advert_int}\n    virtual_ipaddress {{\n        \
         192.0.2.200/24\n    }}\n}}\n"
    )
}

/// Parses `ip -o addr show` lines into addresses.
fn parse_ip_o_addr(out: &str) -> Vec<IpAddr> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            let addr = words.next()?.split('/').next()?;
            addr.parse().ok()
        })
        .collect()
}

/// `node`'s addresses on its `eth0`: 192.0.2.N/24 and 2001:db8::N/64 (no DAD), and the IPv4
/// multicast route (224.0.0.0/4 via `eth0`, as a host with one LAN has it; IPv6's ff00::/8 is
/// the kernel's own on every interface).
fn add_addresses(node: &Node) -> Result<()> {
    node.run(
        "ip",
        &["addr", "add", &format!("{}/24", node.ipv4), "dev", IFACE],
    )?;
    let v6 = format!("{}/64", node.ipv6);
    node.run("ip", &["-6", "addr", "add", &v6, "dev", IFACE, "nodad"])?;
    node.run("ip", &["route", "replace", "224.0.0.0/4", "dev", IFACE])
        .map(drop)
}

/// Waits until `node`'s `eth0` has carrier: IPv6 multicast and NA are dropped silently until
/// both veth ends have it.
fn wait_carrier(node: &Node) -> Result<()> {
    node.sh(&format!(
        "for i in $(seq 500); do [ \"$(cat /sys/class/net/{IFACE}/carrier 2>/dev/null)\" = 1 ] && exit 0; \
         sleep 0.01; done; echo no carrier on {IFACE} >&2; exit 1"
    ))
    .map(drop)
}

/// Polls `cond` every millisecond until it holds, for at most `timeout`; returns how long it
/// took, or fails naming `what`.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond()? {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

/// Runs a command and returns its stdout; fails with the command line and its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails with a message naming what is missing unless the lab can run here: root (for network
/// namespaces and BPF) and the `ip` tool.
pub fn require_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!(
            "the lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN for network namespaces, CAP_BPF for \
             the eBPF programs); run the tests as root, e.g. `sudo -E cargo xtask test`"
        );
    }
    which("ip").context("the lab needs iproute2's `ip`: `apt-get install iproute2`")?;
    Ok(())
}

/// Full path of `program` on PATH.
pub fn which(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("`{program}` not found on PATH"))
}

/// The `ha-agent` binary: `$HA_AGENT_BIN`, or the one cargo built beside this test binary.
pub fn ha_agent_bin() -> Result<PathBuf> {
    built_bin("ha-agent", "HA_AGENT_BIN", "cargo build -p ha-agent")
}

/// The lab client's prober (`tests/src/bin/icmp_prober.rs`): `$HA_PROBER_BIN`, or the one cargo
/// built beside this binary (cargo builds it for this package's integration tests).
pub fn prober_bin() -> Result<PathBuf> {
    built_bin(
        "icmp_prober",
        "HA_PROBER_BIN",
        "cargo build -p ha-tests --bin icmp_prober",
    )
}

/// `$env`, or `name` in target/<profile>/ beside the running test (…/deps/<test>) or xtask.
pub(crate) fn built_bin(name: &str, env: &str, build: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{name} binary not found next to {}: build it first (`{build}`) or set {env}",
        exe.display()
    )
}

/// A set of namespaces: a LAN with a bridge, `nodes` nodes and a client.
pub struct Lab {
    /// Unique name of this lab: `hal-<tag>-<pid>-<seq>`.
    pub name: String,
    pub lan: String,
    pub nodes: Vec<Node>,
    pub client: Node,
    /// Temporary directory for configs and logs; removed on drop.
    pub dir: PathBuf,
    /// A BPF filesystem (`dir/bpf`) the lab's agents pin their XDP/TC objects in
    /// (`--bpf-dir`); unmounted on drop, which releases whatever is still pinned.
    pub bpf_dir: PathBuf,
}

impl Lab {
    /// Builds a lab with `nodes` nodes and a client. `tag` names the test (short, [a-z0-9]).
    pub fn new(tag: &str, nodes: u8) -> Result<Lab> {
        require_privileges()?;
        assert!((1..=99).contains(&nodes), "a lab has 1 to 99 nodes");
        netns::remove_stale()?;
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NS_PREFIX}{tag}-{}-{seq}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let node = |index: u8, role: String, port: String| Node {
            ns: format!("{name}-{role}"),
            index,
            port,
            ipv4: Ipv4Addr::new(192, 0, 2, index),
            ipv6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(index)),
        };
        let mut lab = Lab {
            lan: format!("{name}-lan"),
            nodes: (1..=nodes)
                .map(|i| node(i, format!("n{i}"), format!("p{i}")))
                .collect(),
            client: node(100, "cl".into(), "pc".into()),
            name,
            bpf_dir: dir.join("bpf"),
            dir,
        };
        // On error, Drop removes whatever was created so far.
        lab.build()?;
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        netns::mount_bpffs(&self.bpf_dir)?;
        netns::add(&self.lan)?;
        let lan = self.lan.clone();
        run(Command::new("ip").args(["-n", &lan, "link", "set", "lo", "up"]))?;
        run(Command::new("ip").args([
            "-n",
            &lan,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ]))?;
        run(Command::new("ip").args(["-n", &lan, "link", "set", "br0", "up"]))?;
        // A switch, not a firewall: where br_netfilter is loaded, every bridged frame would run
        // the iptables hooks, on veth in the sender's context (a third of a sender's CPU at
        // 25k adverts/s). The switches are per network namespace.
        if bridge_netfilter_available() {
            self.bridge_netfilter(false)?;
        }
        for node in self.nodes.iter().chain(std::iter::once(&self.client)) {
            netns::add(&node.ns)?;
            self.wire(node)?;
        }
        for node in self.nodes.iter().chain(std::iter::once(&self.client)) {
            wait_carrier(node)?;
        }
        Ok(())
    }

    /// Turns the bridge's netfilter hooks of this lab's LAN on or off (`net.bridge.bridge-nf-
    /// call-iptables`, `-ip6tables`, `-arptables`: per network namespace, so the host's own
    /// setting is untouched). On is a distribution's default wherever br_netfilter is loaded;
    /// the lab turns them off at birth. Fails when this kernel has no br_netfilter.
    pub fn bridge_netfilter(&self, on: bool) -> Result<()> {
        if !bridge_netfilter_available() {
            bail!(
                "this kernel has no br_netfilter (no /proc/sys/net/bridge/bridge-nf-call-*): \
                 built without CONFIG_BRIDGE_NETFILTER, or the module is not loaded"
            );
        }
        let value = if on { "1" } else { "0" };
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.lan,
            "sysctl",
            "-qw",
            &format!("net.bridge.bridge-nf-call-iptables={value}"),
            &format!("net.bridge.bridge-nf-call-ip6tables={value}"),
            &format!("net.bridge.bridge-nf-call-arptables={value}"),
        ]))
        .map(drop)
    }

    /// Gives every node `count` more interfaces, `eth1`…`eth<count>`, each on its own LAN: a
    /// bridge `br<k>` in the LAN namespace (as `br0`), node N's port `p<N>e<k>`, its address
    /// 198.18.k.N/24 (RFC 2544's benchmarking range). The client stays on `eth0` only.
    pub fn add_lans(&self, count: u8) -> Result<()> {
        assert!((1..=9).contains(&count), "1 to 9 extra LANs");
        for k in 1..=count {
            let br = format!("br{k}");
            run(Command::new("ip").args([
                "-n",
                &self.lan,
                "link",
                "add",
                &br,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ]))?;
            run(Command::new("ip").args(["-n", &self.lan, "link", "set", &br, "up"]))?;
            for node in &self.nodes {
                let (iface, port) = (format!("eth{k}"), format!("p{}e{k}", node.index));
                run(Command::new("ip").args([
                    "-n", &node.ns, "link", "add", &iface, "type", "veth", "peer", "name", &port,
                    "netns", &self.lan,
                ]))?;
                run(Command::new("ip")
                    .args(["-n", &self.lan, "link", "set", &port, "master", &br, "up"]))?;
                node.run("ip", &["link", "set", &iface, "up"])?;
                let addr = format!("198.18.{k}.{}/24", node.index);
                node.run("ip", &["addr", "add", &addr, "dev", &iface])?;
                node.sh(&format!(
                    "for i in $(seq 500); do [ \"$(cat /sys/class/net/{iface}/carrier)\" = 1 ] \
                     && exit 0; sleep 0.01; done; echo no carrier on {iface} >&2; exit 1"
                ))?;
            }
        }
        Ok(())
    }

    /// Gives `node` its `eth0`: a veth whose peer is the node's port on the bridge, then (in
    /// this order, as a host's network setup does it) the link up, then its addresses.
    fn wire(&self, node: &Node) -> Result<()> {
        self.wire_link(node)?;
        add_addresses(node)
    }

    /// The link part of [`Lab::wire`]: the veth, its bridge port, sysctls, link up.
    fn wire_link(&self, node: &Node) -> Result<()> {
        run(Command::new("ip").args([
            "-n", &node.ns, "link", "add", IFACE, "type", "veth", "peer", "name", &node.port,
            "netns", &self.lan,
        ]))?;
        run(Command::new("ip").args([
            "-n", &self.lan, "link", "set", &node.port, "master", "br0", "up",
        ]))?;
        // No DAD (addresses usable at once), no router solicitations: the lab has no router.
        node.sh(
            "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
             net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.router_solicitations=0 \
             net.ipv6.conf.all.forwarding=0",
        )?;
        node.run("ip", &["link", "set", "lo", "up"])?;
        node.run("ip", &["link", "set", IFACE, "up"]).map(drop)
    }

    /// Re-creates node `i`'s `eth0` after it was deleted (`ip link del eth0` in the node) as the
    /// lab first made it: the same veth to the bridge, link up first and then its addresses;
    /// waits for carrier. The interface comes back under a new ifindex.
    pub fn rewire(&self, i: usize) -> Result<()> {
        self.rewire_link(i)?;
        self.readdress(i)
    }

    /// The first half of [`Lab::rewire`]: node `i`'s `eth0` back and up, with carrier, but no
    /// address yet (what a host looks like between `ip link set up` and its DHCP lease).
    pub fn rewire_link(&self, i: usize) -> Result<()> {
        let node = self.node(i);
        self.wire_link(node)?;
        wait_carrier(node)
    }

    /// The second half of [`Lab::rewire`]: node `i`'s addresses on its `eth0`.
    pub fn readdress(&self, i: usize) -> Result<()> {
        add_addresses(self.node(i))
    }

    /// Node `i` (1-based).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i - 1]
    }

    /// Cuts node `i` off the LAN: its bridge port goes down, so the node sees carrier loss.
    pub fn cut(&self, i: usize) -> Result<()> {
        self.set_port(&self.node(i).port, "down")
    }

    /// Reconnects node `i` to the LAN.
    pub fn restore(&self, i: usize) -> Result<()> {
        self.set_port(&self.node(i).port, "up")
    }

    fn set_port(&self, port: &str, state: &str) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.lan, "link", "set", port, state])).map(drop)
    }

    /// A VRRP-only partition of node `i`: IP protocol 112 leaving the node is dropped
    /// (nftables, output hook, table `inet hal`) while `on`, everything else passes; `on =
    /// false` removes the table. Two nodes cut so both become master; ARP and pings still flow.
    pub fn block_vrrp(&self, i: usize, on: bool) -> Result<()> {
        which("nft").context("a VRRP-only partition needs nft: `apt-get install nftables`")?;
        let node = self.node(i);
        if on {
            node.run("nft", &["add", "table", "inet", "hal"])?;
            node.run(
                "nft",
                &[
                    "add",
                    "chain",
                    "inet",
                    "hal",
                    "out",
                    "{ type filter hook output priority 0 ; }",
                ],
            )?;
            node.run(
                "nft",
                &[
                    "add", "rule", "inet", "hal", "out", "meta", "l4proto", "112", "drop",
                ],
            )
            .map(drop)
        } else {
            node.run("nft", &["delete", "table", "inet", "hal"])
                .map(drop)
        }
    }

    /// Writes `contents` to `name` in the lab directory and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Starts keepalived (VRRP only, no fork, logging to its log file) in node `i` with `config`.
    pub fn keepalived(&self, i: usize, config: &str) -> Result<Daemon> {
        self.keepalived_on(self.node(i), &format!("keepalived-n{i}"), config)
    }

    /// Starts keepalived as [`Lab::keepalived`] does, in any namespace of the lab (a container
    /// beside the nodes); `tag` names its config, pid files and log in the lab directory.
    pub fn keepalived_on(&self, node: &Node, tag: &str, config: &str) -> Result<Daemon> {
        which("keepalived").context("keepalived is needed: `apt-get install keepalived`")?;
        let conf = self.write_file(&format!("{tag}.conf"), config)?;
        let pid = |what: &str| {
            self.dir
                .join(format!("{tag}-{what}.pid"))
                .display()
                .to_string()
        };
        node.spawn(
            tag,
            &self.dir,
            "keepalived",
            &[
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--vrrp",
                "--use-file",
                &conf.display().to_string(),
                "--pid",
                &pid("main"),
                "--vrrp_pid",
                &pid("vrrp"),
                "--checkers_pid",
                &pid("checkers"),
            ],
        )
    }

    /// Starts `ha-agent run` in node `i` with `config` (written to the lab directory) and
    /// `extra` arguments (`--log-level debug` unless they set a level). Its log is
    /// `ha-agent-n<i>.log` in the lab directory.
    pub fn ha_agent(&self, i: usize, config: &str, extra: &[&str]) -> Result<Daemon> {
        let bin = ha_agent_bin()?;
        let tag = format!("ha-agent-n{i}");
        let conf = self.write_file(&format!("{tag}.conf"), config)?;
        let pid = self.dir.join(format!("{tag}.pid")).display().to_string();
        let conf = conf.display().to_string();
        let bpf_dir = self.bpf_dir.display().to_string();
        let mut args = vec![
            "run",
            "-f",
            &conf,
            "--pid-file",
            &pid,
            "--bpf-dir",
            &bpf_dir,
        ];
        // Tests log at debug; a caller's own level wins (the bench runs at info, as deployed).
        if !extra.contains(&"--log-level") {
            args.extend(["--log-level", "debug"]);
        }
        args.extend_from_slice(extra);
        self.node(i)
            .spawn(&tag, &self.dir, &bin.display().to_string(), &args)
    }

    /// Waits until node `i`'s agent answers on its status socket, which it serves once its
    /// datapath is attached and its instances have started: what a test may assume of a running
    /// agent. The socket's path is the one the agent logs (`control socket PATH`); the query is
    /// made on the socket directly, not by spawning `ha-agent status`, so that many tests
    /// waiting at once on a 2-core machine do not load it with processes. Fails with the agent's
    /// log when it exits first or is not ready within `timeout` (a loaded machine can take
    /// seconds to load the XDP programs: never a fixed wait). Returns the status JSON.
    pub fn wait_agent_ready(
        &self,
        i: usize,
        agent: &mut Daemon,
        timeout: Duration,
    ) -> Result<String> {
        let start = Instant::now();
        loop {
            if let Some(reply) = control_socket_in_log(&agent.log()).and_then(|p| query_status(&p))
            {
                return Ok(reply);
            }
            if !agent.is_running() {
                bail!(
                    "node {i}'s agent exited before it was ready:\n{}",
                    agent.log()
                );
            }
            if start.elapsed() >= timeout {
                bail!(
                    "node {i}'s agent was not ready (status socket) after {timeout:?}:\n{}",
                    agent.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the agent in node `i` as a user deploys it: `ip netns exec NS ha-agent run -f
    /// FILE` and `extra` (`--log-level debug` unless they set a level), no `--bpf-dir` nor pid
    /// file: its default BPF directory is a BPF filesystem in the private mount namespace `ip
    /// netns exec` gives it, gone with the process. Log and config as [`Lab::ha_agent`]'s.
    pub fn ha_agent_as_deployed(&self, i: usize, config: &str, extra: &[&str]) -> Result<Daemon> {
        let bin = ha_agent_bin()?;
        let tag = format!("ha-agent-n{i}");
        let conf = self.write_file(&format!("{tag}.conf"), config)?;
        let conf = conf.display().to_string();
        let mut args = vec!["run", "-f", &conf];
        if !extra.contains(&"--log-level") {
            args.extend(["--log-level", "debug"]);
        }
        args.extend_from_slice(extra);
        self.node(i)
            .spawn(&tag, &self.dir, &bin.display().to_string(), &args)
    }

    /// Pings `target` from the client every millisecond until [`Prober::stop`].
    pub fn prober(&self, target: IpAddr) -> Result<Prober> {
        Prober::start(&self.client, target, &self.dir)
    }

    /// Asks for `vip` by ARP from the client `count` times and returns the MACs that answered.
    pub fn arp_probe(&self, vip: Ipv4Addr, count: u32) -> Result<ArpProbe> {
        ArpProbe::run(&self.client, vip, count)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for node in self.nodes.iter().chain(std::iter::once(&self.client)) {
            remove_interface_locks(&node.ns);
            netns::kill_all_and_delete(&node.ns);
        }
        netns::kill_all_and_delete(&self.lan);
        netns::unmount(&self.bpf_dir);
        remove_control_files(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this kernel has br_netfilter's switches (`CONFIG_BRIDGE_NETFILTER` built in, or the
/// module loaded): without them the bridge never calls netfilter.
pub fn bridge_netfilter_available() -> bool {
    Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists()
}

/// Removes the interface locks (`/run/ha-agent/xdp-<netns inode>-<interface>.lock`) agents
/// killed in namespace `ns` left (a clean exit removes its own), so test runs do not pile them up.
fn remove_interface_locks(ns: &str) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(ino) = std::fs::metadata(format!("/run/netns/{ns}")).map(|m| m.ino()) else {
        return;
    };
    let prefix = format!("xdp-{ino}-");
    let Ok(entries) = std::fs::read_dir("/run/ha-agent") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".lock") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Where an agent's log says its control socket is: the `control socket PATH` line it writes at
/// start (text or JSON format), if the path is under `/run/ha-agent`.
fn control_socket_in_log(log: &str) -> Option<PathBuf> {
    const NEEDLE: &str = "control socket /run/ha-agent/";
    let at = log.find(NEEDLE)? + "control socket ".len();
    let path: String = log[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ':')
        .collect();
    Some(PathBuf::from(path))
}

/// The agent's status JSON from its control socket at `path` (the `status` request `ha-agent
/// status` makes), or `None` when it does not answer with one.
fn query_status(path: &Path) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(path).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    stream.write_all(b"status\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    (reply.trim_start().starts_with('{') && !reply.contains("\"error\"")).then_some(reply)
}

/// Removes the control sockets and dumps (`.data`, `.stats`, `.json` beside the socket) of the
/// agents this lab started, once they are dead: an agent killed by a test (SIGKILL, or SIGTERM
/// while it waited for a successor longer than the lab waits) cannot remove them itself, and
/// their names, one per lab's config path, would pile up in `/run/ha-agent`.
fn remove_control_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("ha-agent") && name.contains(".log")) {
            continue;
        }
        let Some(socket) = std::fs::read(entry.path())
            .ok()
            .and_then(|log| control_socket_in_log(&String::from_utf8_lossy(&log)))
        else {
            continue;
        };
        for ext in ["sock", "data", "stats", "json"] {
            let _ = std::fs::remove_file(socket.with_extension(ext));
        }
    }
}

/// `ETHTOOL_STXCSUM` (linux/ethtool.h): the legacy toggle of `ethtool -K IFACE tx on|off`.
pub const ETHTOOL_STXCSUM: u32 = 0x17;

/// `ethtool -K` for one legacy toggle of `iface` in namespace `ns`, through the `SIOCETHTOOL`
/// ioctl (the lab's machines have no `ethtool`).
pub fn ethtool_set(ns: &str, iface: &str, cmd: u32, on: bool) {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    let name = iface.to_owned();
    crate::in_netns(ns, move || {
        let mut value = EthtoolValue {
            cmd,
            data: u32::from(on),
        };
        // SAFETY: socket(2) with constant arguments; the fd is owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        anyhow::ensure!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain data; all zeroes is a valid (empty) request.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr
            .ifr_name
            .iter_mut()
            .zip(name.bytes().take(libc::IFNAMSIZ - 1))
        {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&raw mut value).cast();
        // SAFETY: SIOCETHTOOL reads the named interface and the ethtool_value ifru_data points
        // to, which outlives the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) } != 0 {
            anyhow::bail!(
                "SIOCETHTOOL {cmd:#x} on {name}: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("ethtool -K {iface} in {ns}: {e:#}"));
}

/// A veth's frames carry a TCP/UDP checksum for the receiver to finish (checksum offload), which
/// XDP on another veth forwards as it is: a host whose traffic XDP forwards must compute its
/// own (`ethtool -K eth0 tx off`), as a real NIC would.
pub fn veth_tx_checksum_off(node: &crate::Node) {
    ethtool_set(&node.ns, crate::IFACE, ETHTOOL_STXCSUM, false);
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let bytes: Vec<u8> = s
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("MAC {s:?}"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("MAC {s:?}: not 6 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_control_socket_in_an_agent_log() {
        let text = "2026-11-22T07:00:00.000001Z  INFO ha_agent::control: control socket \
                    /run/ha-agent/ha-agent-n1-0427ca63.sock\n";
        let json = "{\"level\":\"INFO\",\"fields\":{\"message\":\"control socket \
                    /run/ha-agent/ha-agent-n2-068052ac.sock\"}}\n";
        assert_eq!(
            control_socket_in_log(text),
            Some(PathBuf::from("/run/ha-agent/ha-agent-n1-0427ca63.sock"))
        );
        assert_eq!(
            control_socket_in_log(json),
            Some(PathBuf::from("/run/ha-agent/ha-agent-n2-068052ac.sock"))
        );
        // Only the agent's run directory: nothing else is ever removed.
        assert_eq!(control_socket_in_log("control socket /tmp/x.sock\n"), None);
    }

    #[test]
    fn parses_ip_o_addr_output() {
        let out = "2: eth0    inet 192.0.2.1/24 scope global eth0\\       valid_lft forever\n\
                   2: eth0    inet 192.0.2.200/32 scope global secondary eth0:vip\n\
                   2: eth0    inet6 2001:db8::1/64 scope global \\       valid_lft forever\n";
        assert_eq!(
            parse_ip_o_addr(out),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "192.0.2.200".parse().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
    }
}

//! Chaos soak: three nodes run ha-agent with two VRIDs while a seeded random schedule of faults
//! hits them, and a client watches each VIP the whole time.
//!
//! ```text
//!   VI_A  VRID 61  192.0.2.201  priorities n1 150, n2 120, n3 100   route 198.51.100.0/24
//!   VI_B  VRID 62  192.0.2.202  priorities n1 100, n2 120, n3 150   route 203.0.113.0/24
//! ```
//!
//! Faults, one at a time, each injected, held a random while, then healed: the node's link cut
//! and restored; its agent SIGKILLed and restarted; SIGSTOPped and SIGCONTed; a VRRP-only
//! partition (IP protocol 112 dropped to and from its bridge port, everything else passes) and
//! heal; its track_script failing and passing again (weight −60); a reload (SIGHUP) with VI_B's
//! priority lowered by 40, and back; an ARP flood: the client claims the VIP the node holds
//! (or VI_A's) from a new random MAC each frame, [`ARP_FLOOD_RATE`] a second, sent to the
//! node's MAC (a broadcast flood would repoint every host's neighbour entry for the VIP at
//! random MACs, an outage no VRRP daemon can prevent; the agent is what is under test here);
//! another VRRP domain (`foreign`): keepalived for VRID 70 in a container behind the node's
//! NIC (a macvlan child of its eth0) and on the observer, which must agree on one master (the
//! observer) while the agent's XDP sees their adverts first.
//!
//! Invariants, checked on what the hosts saw (the client pings each VIP every 1 ms; an
//! observer host, not the client, arpings each VIP every 20 ms so that the client's neighbour
//! cache learns of a new master only as a real client's would) and on the nodes at the end:
//!
//! 1. **one MAC**: from the master-down interval + margin after each event until the next, at
//!    most one MAC answers ARP for a VIP (not checked while a VRRP-only partition is in place:
//!    with the adverts cut and the data path up, both sides are masters by design);
//! 2. **bounded outages**: every gap in the echo replies longer than advert_int in which
//!    requests went unanswered starts after an event and ends within master-down + margin
//!    (+ the event's own reaction time: a restarted agent's start, a script's interval and
//!    timeout) of it;
//! 3. **foreign VRRP** (when `foreign` was drawn): the other domain ends each fault with one
//!    master, the observer, within [`FOREIGN_SETTLE`] of its start;
//! 4. **nothing left behind**: after SIGTERM every agent exits 0 and no VIP, route, XDP/TC
//!    attachment, control socket, pinned BPF object or process remains in the nodes, and when
//!    the lab is gone none of its namespaces or processes remain.
//!
//! Host stalls are measured, not guessed: the driver's 5 ms sleeps that wake ≥ 50 ms late, and
//! gaps ≥ 50 ms in a prober's replies with no request lost (the client's ping was not run).
//! A bound (1 and 2) is stretched by the measured stalls that overlap it, and says so; a gap
//! without a lost request is a stall, not an outage.
//!
//! A run reports every invariant with its violations, the seed and the timeline (faults and
//! the agents' state changes, from their logs).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{Daemon, IFACE, Lab, Node, Prober, epoch_now, which};

/// What a chaos run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Length of the fault schedule (the final settle and checks come after).
    pub duration: Duration,
    pub seed: u64,
    /// Slack on top of the master-down interval for every bound.
    pub margin: Duration,
    pub advert_int: Duration,
    /// `--datapath` of the agents.
    pub datapath: String,
    /// The faults to draw from.
    pub faults: Vec<FaultKind>,
    /// Copy the lab's configs and logs here before it is removed.
    pub keep_logs: Option<PathBuf>,
}

impl Options {
    pub fn new(duration: Duration, seed: u64) -> Options {
        Options {
            duration,
            seed,
            margin: Duration::from_millis(1000),
            advert_int: Duration::from_millis(100),
            datapath: "auto".into(),
            faults: FaultKind::ALL.to_vec(),
            keep_logs: None,
        }
    }
}

/// The faults the schedule draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    LinkCut,
    Kill,
    Stop,
    Partition,
    Flap,
    Reload,
    ArpFlood,
    Foreign,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::LinkCut,
        FaultKind::Kill,
        FaultKind::Stop,
        FaultKind::Partition,
        FaultKind::Flap,
        FaultKind::Reload,
        FaultKind::ArpFlood,
        FaultKind::Foreign,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::LinkCut => "link",
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Partition => "partition",
            FaultKind::Flap => "flap",
            FaultKind::Reload => "reload",
            FaultKind::ArpFlood => "arpflood",
            FaultKind::Foreign => "foreign",
        }
    }

    pub fn parse(s: &str) -> Result<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .with_context(|| {
                format!(
                    "unknown fault {s:?}; faults: {}",
                    FaultKind::ALL.map(FaultKind::name).join(", ")
                )
            })
    }
}

/// The result of a run: the report, and which invariants failed.
pub struct Outcome {
    pub report: String,
    /// Names of the invariants that did not hold.
    pub failed: Vec<&'static str>,
}

/// SplitMix64: a seeded generator with no dependency; the same seed gives the same schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(self.next() % span.max(1))
    }
}

struct Vrrp {
    name: &'static str,
    vrid: u8,
    vip: Ipv4Addr,
    /// Priority on nodes 1, 2, 3.
    priorities: [u8; 3],
    route: &'static str,
}

const INSTANCES: [Vrrp; 2] = [
    Vrrp {
        name: "VI_A",
        vrid: 61,
        vip: Ipv4Addr::new(192, 0, 2, 201),
        priorities: [150, 120, 100],
        route: "198.51.100.0/24",
    },
    Vrrp {
        name: "VI_B",
        vrid: 62,
        vip: Ipv4Addr::new(192, 0, 2, 202),
        priorities: [100, 120, 150],
        route: "203.0.113.0/24",
    },
];
const NODES: usize = 3;
/// The lab node that watches ARP, running no agent. Not the client: arping's replies would
/// refresh the client's own neighbour entry for the VIP every 20 ms, so the pinging client
/// would find a new master by itself within the kernel's locktime (1 s) even when no
/// gratuitous ARP told it, which a real client does not (it keeps the old MAC until its entry
/// goes stale, tens of seconds).
const OBSERVER: usize = NODES + 1;
/// Tracker weight of the flapping script, and how much a reload lowers VI_B's priority.
const FLAP_WEIGHT: u8 = 60;
const RELOAD_DROP: u8 = 40;
const SCRIPT_INTERVAL: Duration = Duration::from_millis(200);
const SCRIPT_TIMEOUT: Duration = Duration::from_millis(500);
/// arping's interval; replies of different MACs closer than half of it answer one request.
const ARP_INTERVAL: Duration = Duration::from_millis(20);
/// Claims a second of the `arpflood` fault: bounded, so that the flood tests the agent and not
/// the host's CPU (a shared machine stalls every agent at line rate).
const ARP_FLOOD_RATE: u64 = 5_000;

/// The `foreign` fault: another VRRP domain on the LAN, VRID 70 with its own VIP, spoken by
/// keepalived in a container behind the target node's NIC (a macvlan child of its eth0,
/// priority 100) and on the observer (priority 150). The agents run other VRIDs: XDP on the
/// node's eth0 must pass these adverts on to the container, or it never hears the observer and
/// becomes a second master.
const FOREIGN_VRID: u8 = 70;
const FOREIGN_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 210);
/// The container's own address on the LAN.
const FOREIGN_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 60);
/// How long the foreign speakers may take to agree on one master after they start (keepalived's
/// start-up, then its Master_Down_Interval of 0.36 s), checked when the fault heals.
const FOREIGN_SETTLE: Duration = Duration::from_secs(5);

/// The `foreign` fault's speakers while it lasts; dropping them stops both keepalived and
/// deletes the container's namespace (and the macvlan in it).
struct Foreign {
    daemons: Vec<Daemon>,
    container: Node,
}

impl Foreign {
    /// A namespace whose `eth0` is a macvlan child (mode bridge) of `parent`'s `eth0`, running
    /// keepalived with priority 100, and keepalived on `observer` with priority 150.
    fn start(lab: &Lab, parent: &Node, observer: &Node) -> Result<Foreign> {
        let ns = format!("{}-fctr", lab.name);
        crate::run(Command::new("ip").args(["netns", "add", &ns]))?;
        let mut foreign = Foreign {
            daemons: Vec::new(),
            container: Node {
                ns,
                index: 60,
                port: String::new(),
                ipv4: FOREIGN_ADDR,
                ipv6: "2001:db8::60".parse()?,
            },
        };
        let c = &foreign.container;
        crate::run(Command::new("ip").args([
            "-n", &parent.ns, "link", "add", "link", IFACE, "name", "fv0", "type", "macvlan",
            "mode", "bridge",
        ]))?;
        crate::run(
            Command::new("ip").args(["-n", &parent.ns, "link", "set", "fv0", "netns", &c.ns]),
        )?;
        c.run("ip", &["link", "set", "fv0", "name", IFACE])?;
        c.run("ip", &["link", "set", "lo", "up"])?;
        c.run("ip", &["link", "set", IFACE, "up"])?;
        c.run(
            "ip",
            &["addr", "add", &format!("{FOREIGN_ADDR}/24"), "dev", IFACE],
        )?;
        c.run("ip", &["route", "replace", "224.0.0.0/4", "dev", IFACE])?;
        for (node, tag, priority) in [(c, "fctr", 100), (observer, "fobs", 150)] {
            let conf = format!(
                "global_defs {{\n    router_id {tag}\n}}\n\
                 vrrp_instance VF {{\n    state BACKUP\n    interface {IFACE}\n    \
                 virtual_router_id {FOREIGN_VRID}\n    version 3\n    priority {priority}\n    \
                 advert_int 0.1\n    virtual_ipaddress {{\n        {FOREIGN_VIP}/24\n    }}\n}}\n"
            );
            let daemon = lab.keepalived_on(node, &format!("keepalived-{tag}"), &conf)?;
            foreign.daemons.push(daemon);
        }
        Ok(foreign)
    }

    /// Who holds the foreign VIP: "container", "observer".
    fn holders(&self, observer: &Node) -> Vec<&'static str> {
        let vip = IpAddr::V4(FOREIGN_VIP);
        let mut out = Vec::new();
        if self.container.has_addr(vip).unwrap_or(false) {
            out.push("container");
        }
        if observer.has_addr(vip).unwrap_or(false) {
            out.push("observer");
        }
        out
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        // The daemons first (killed and reaped), then their namespace.
        self.daemons.clear();
        let _ = crate::run(Command::new("ip").args(["netns", "del", &self.container.ns]));
    }
}

/// A running `arpflood`: its stop switch and the thread that sends it.
type RunningFlood = (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Result<crate::flood::FloodReport>>,
);

/// What happened when, in epoch seconds (as `ping -D`).
#[derive(Clone, Debug)]
struct Event {
    t: f64,
    what: String,
    /// Time this event may take to act before the master-down interval starts (a restart's
    /// start-up, a script's interval and timeout).
    reaction: Duration,
    /// A VRRP-only partition is in place from this event until the next.
    partitioned: bool,
}

/// A line of the timeline: a fault, or a state change an agent logged.
struct Line {
    t: f64,
    text: String,
}

/// `arping` of one VIP from the client, every [`ARP_INTERVAL`]; each reply's MAC with the time
/// it was read.
struct ArpWatch {
    child: Child,
    replies: Arc<Mutex<Vec<(f64, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ArpWatch {
    fn start(client: &Node, vip: Ipv4Addr) -> Result<ArpWatch> {
        which("arping").context("the chaos soak needs arping: `apt-get install arping`")?;
        which("stdbuf").context("the chaos soak needs coreutils' stdbuf")?;
        // stdbuf: a reply is read when it arrives, not when arping's buffer fills.
        let mut child = client
            .command("stdbuf")
            .args(["-oL", "arping", "-r", "-i", IFACE, "-W"])
            .arg(ARP_INTERVAL.as_secs_f64().to_string())
            .arg(vip.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting arping")?;
        let out = child.stdout.take().expect("piped");
        let replies = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&replies);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let t = epoch_now();
                // `-r`: one MAC a line.
                let mac = line.trim().to_ascii_lowercase();
                if mac.len() == 17 && mac.chars().filter(|c| *c == ':').count() == 5 {
                    sink.lock().expect("arp replies").push((t, mac));
                }
            }
        });
        Ok(ArpWatch {
            child,
            replies,
            reader: Some(reader),
        })
    }

    fn stop(mut self) -> Vec<(f64, String)> {
        self.kill();
        std::mem::take(&mut *self.replies.lock().expect("arp replies"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for ArpWatch {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A thread that sleeps 5 ms at a time and notes when it woke much later: the host stalled
/// (CPU starved), which stalls the agents too. Shown in the timeline so that a reader can tell
/// such a stall from an agent's fault.
struct StallWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(f64, Duration)>>>,
}

impl StallWatch {
    const TICK: Duration = Duration::from_millis(5);
    const REPORTED: Duration = Duration::from_millis(50);

    fn start() -> StallWatch {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut stalls = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let before = Instant::now();
                let t = epoch_now();
                std::thread::sleep(Self::TICK);
                let late = before.elapsed().saturating_sub(Self::TICK);
                if late >= Self::REPORTED {
                    stalls.push((t, late));
                }
            }
            stalls
        });
        StallWatch {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<(f64, Duration)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for StallWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The agents of a lab and what was done to them.
struct Soak<'a> {
    opts: &'a Options,
    lab: &'a Lab,
    agents: Vec<Option<Daemon>>,
    /// Whether node i's agent is SIGSTOPped.
    stopped: Vec<bool>,
    /// Whether node i runs the reloaded (lowered VI_B) configuration.
    reloaded: Vec<bool>,
    /// Logs of agents that were killed, renamed aside.
    restarts: Vec<usize>,
    events: Vec<Event>,
    /// Pids of every agent started, to check none survives.
    pids: Vec<i32>,
    /// Control sockets the agents announced.
    sockets: BTreeSet<PathBuf>,
    /// The `arpflood` in progress.
    flood: Option<RunningFlood>,
    /// The `foreign` speakers in place, and the target node they sit behind.
    foreign: Option<(usize, Foreign)>,
    /// Each `foreign` fault's outcome: whether its domain ended with exactly one master (the
    /// observer), and what was seen.
    foreign_checks: Vec<(bool, f64, String)>,
}

impl Soak<'_> {
    fn conf(&self, i: usize) -> String {
        let ai = self.opts.advert_int.as_secs_f64();
        let flap = self.lab.dir.join(format!("flap-n{i}.sh"));
        let mut c = format!(
            "global_defs {{\n    router_id chaos-n{i}\n    script_user root\n}}\n\
             vrrp_script chk_flap {{\n    script \"{}\"\n    interval {}\n    timeout {}\n    \
             rise 1\n    fall 1\n    weight -{FLAP_WEIGHT}\n}}\n",
            flap.display(),
            SCRIPT_INTERVAL.as_secs_f64(),
            SCRIPT_TIMEOUT.as_secs_f64(),
        );
        for inst in &INSTANCES {
            let mut prio = inst.priorities[i - 1];
            if self.reloaded[i - 1] && inst.name == "VI_B" {
                prio -= RELOAD_DROP;
            }
            let _ = write!(
                c,
                "vrrp_instance {} {{\n    state BACKUP\n    interface {IFACE}\n    virtual_router_id {}\n    \
                 version 3\n    priority {prio}\n    advert_int {ai}\n    track_script {{\n        chk_flap\n    }}\n    \
                 virtual_ipaddress {{\n        {}/24\n    }}\n    virtual_routes {{\n        {} via 192.0.2.254 dev {IFACE}\n    }}\n}}\n",
                inst.name, inst.vrid, inst.vip, inst.route
            );
        }
        c
    }

    /// Starts node i's agent and waits until it runs; returns how long its start took.
    fn start_agent(&mut self, i: usize) -> Result<Duration> {
        let started = Instant::now();
        let conf = self.conf(i);
        let mut agent = self.lab.ha_agent(
            i,
            &conf,
            &["--datapath", &self.opts.datapath, "--log-format", "json"],
        )?;
        self.pids.push(agent.pid());
        agent.wait_for_log("ha-agent running", Duration::from_secs(20))?;
        for e in crate::agent_log::entries(&agent.log()) {
            if let Some(path) = e.message().strip_prefix("control socket ") {
                self.sockets.insert(PathBuf::from(path));
            }
        }
        self.agents[i - 1] = Some(agent);
        self.stopped[i - 1] = false;
        Ok(started.elapsed())
    }

    fn agent(&self, i: usize) -> Result<&Daemon> {
        self.agents[i - 1]
            .as_ref()
            .with_context(|| format!("node {i} runs no agent"))
    }

    fn record(&mut self, t: f64, what: String, reaction: Duration, partitioned: bool) {
        self.events.push(Event {
            t,
            what,
            reaction,
            partitioned,
        });
    }

    /// Injects `kind` on node i; returns what heals it.
    fn inject(&mut self, kind: FaultKind, i: usize) -> Result<()> {
        let t = epoch_now();
        let lab = self.lab;
        let (what, reaction, partitioned) = match kind {
            FaultKind::LinkCut => {
                lab.cut(i)?;
                (format!("cut n{i}'s link"), Duration::ZERO, false)
            }
            FaultKind::Kill => {
                self.agent(i)?.signal(libc::SIGKILL)?;
                let mut agent = self.agents[i - 1].take().expect("checked");
                agent.wait_timeout(Duration::from_secs(5))?;
                (format!("SIGKILL n{i}'s agent"), Duration::ZERO, false)
            }
            FaultKind::Stop => {
                self.agent(i)?.signal(libc::SIGSTOP)?;
                self.stopped[i - 1] = true;
                (format!("SIGSTOP n{i}'s agent"), Duration::ZERO, false)
            }
            FaultKind::Partition => {
                vrrp_filter(lab, i, true)?;
                (format!("VRRP-only partition of n{i}"), Duration::ZERO, true)
            }
            FaultKind::Flap => {
                std::fs::write(lab.dir.join(format!("flap-n{i}")), "")?;
                (
                    format!("n{i}'s track_script fails"),
                    SCRIPT_INTERVAL + SCRIPT_TIMEOUT,
                    false,
                )
            }
            FaultKind::Reload => {
                self.reloaded[i - 1] = true;
                self.reload(i)?;
                (
                    format!("reload n{i}: VI_B priority -{RELOAD_DROP}"),
                    Duration::ZERO,
                    false,
                )
            }
            FaultKind::ArpFlood => {
                let vip = INSTANCES
                    .iter()
                    .map(|v| v.vip)
                    .find(|v| self.holders(*v).contains(&i))
                    .unwrap_or(INSTANCES[0].vip);
                let mac = crate::parse_mac(&lab.node(i).mac()?)?;
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let spec = crate::arpflood::ArpFloodSpec {
                    interface: IFACE.to_owned(),
                    addr: vip,
                    dst_mac: Some(mac),
                    reply: true,
                    seed: t.to_bits(),
                    rate: Some(ARP_FLOOD_RATE),
                    duration: Duration::from_secs(3600),
                };
                let (ns, flag) = (lab.client.ns.clone(), Arc::clone(&stop));
                let thread = std::thread::spawn(move || {
                    crate::in_netns(&ns, move || crate::arpflood::arp_flood(&spec, &flag))
                });
                self.flood = Some((stop, thread));
                (
                    format!("ARP flood at n{i}: {vip} claimed from random MACs"),
                    Duration::ZERO,
                    false,
                )
            }
            FaultKind::Foreign => {
                let foreign = Foreign::start(lab, lab.node(i), lab.node(OBSERVER))?;
                self.foreign = Some((i, foreign));
                (
                    format!(
                        "foreign VRRP: keepalived VRID {FOREIGN_VRID} behind n{i}'s NIC (macvlan) \
                         and on the observer"
                    ),
                    Duration::ZERO,
                    false,
                )
            }
        };
        self.record(t, what, reaction, partitioned);
        Ok(())
    }

    fn heal(&mut self, kind: FaultKind, i: usize) -> Result<()> {
        let t = epoch_now();
        let lab = self.lab;
        let (what, reaction) = match kind {
            FaultKind::LinkCut => {
                lab.restore(i)?;
                (format!("restore n{i}'s link"), Duration::ZERO)
            }
            FaultKind::Kill => {
                let log = lab.dir.join(format!("ha-agent-n{i}.log"));
                let n = self.restarts[i - 1];
                self.restarts[i - 1] += 1;
                std::fs::rename(&log, lab.dir.join(format!("ha-agent-n{i}.log.{n}")))?;
                let took = self.start_agent(i)?;
                (format!("restart n{i}'s agent (up in {took:.0?})"), took)
            }
            FaultKind::Stop => {
                self.agent(i)?.signal(libc::SIGCONT)?;
                self.stopped[i - 1] = false;
                (format!("SIGCONT n{i}'s agent"), Duration::ZERO)
            }
            FaultKind::Partition => {
                vrrp_filter(lab, i, false)?;
                (format!("heal n{i}'s partition"), Duration::ZERO)
            }
            FaultKind::Flap => {
                std::fs::remove_file(lab.dir.join(format!("flap-n{i}")))?;
                (
                    format!("n{i}'s track_script passes"),
                    SCRIPT_INTERVAL + SCRIPT_TIMEOUT,
                )
            }
            FaultKind::Reload => {
                self.reloaded[i - 1] = false;
                self.reload(i)?;
                (format!("reload n{i}: VI_B priority back"), Duration::ZERO)
            }
            FaultKind::Foreign => {
                let (node, foreign) = self.foreign.take().context("no foreign speakers run")?;
                let observer = lab.node(OBSERVER);
                // The observer (priority 150) must end up the only master: the container
                // behind the agent's NIC hears it.
                let agreed = crate::wait_for("one foreign master", FOREIGN_SETTLE, || {
                    Ok(foreign.holders(observer) == ["observer"])
                });
                let seen = foreign.holders(observer);
                let ok = agreed.is_ok();
                self.foreign_checks.push((
                    ok,
                    t,
                    format!(
                        "VRID {FOREIGN_VRID} behind n{node}'s NIC: holders {seen:?}{}",
                        if ok {
                            ""
                        } else {
                            " (expected only the observer)"
                        }
                    ),
                ));
                drop(foreign);
                (
                    format!("foreign VRRP behind n{node} stopped (holders were {seen:?})"),
                    Duration::ZERO,
                )
            }
            FaultKind::ArpFlood => {
                let sent = self.stop_flood()?;
                (
                    format!(
                        "ARP flood at n{i} over: {} claims at {:.0}/s",
                        sent.sent,
                        sent.pps()
                    ),
                    Duration::ZERO,
                )
            }
        };
        self.record(t, what, reaction, false);
        Ok(())
    }

    /// Stops the `arpflood` in progress and returns what it sent.
    fn stop_flood(&mut self) -> Result<crate::flood::FloodReport> {
        let (stop, thread) = self.flood.take().context("no ARP flood runs")?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the ARP flood thread panicked"))?
    }

    /// Writes node i's configuration (as it now should be) and sends SIGHUP.
    fn reload(&mut self, i: usize) -> Result<()> {
        let conf = self.conf(i);
        self.lab.write_file(&format!("ha-agent-n{i}.conf"), &conf)?;
        self.agent(i)?.signal(libc::SIGHUP)
    }

    /// Nodes holding `vip` (a node without `eth0` holds nothing).
    fn holders(&self, vip: Ipv4Addr) -> Vec<usize> {
        self.lab
            .nodes
            .iter()
            .filter(|n| n.has_addr(IpAddr::V4(vip)).unwrap_or(false))
            .map(|n| usize::from(n.index))
            .collect()
    }
}

/// Drops (or lets through again) IP protocol 112 to and from node i in the LAN's bridge
/// (nftables, bridge family: the kernel here has no TC drop action); ARP, pings and everything
/// else still pass.
fn vrrp_filter(lab: &Lab, i: usize, isolate: bool) -> Result<()> {
    let port = &lab.node(i).port;
    let script = if isolate {
        format!(
            "table bridge chaos {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    \
             iifname \"{port}\" ip protocol 112 drop\n    oifname \"{port}\" ip protocol 112 drop\n  }}\n}}\n"
        )
    } else {
        "delete table bridge chaos\n".to_owned()
    };
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.lan, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nft")?;
    std::io::Write::write_all(&mut child.stdin.take().expect("piped"), script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft in {}: {}\n{script}",
            lab.lan,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs a chaos soak and returns its report; fails only when the lab itself cannot run.
pub fn run_soak(opts: &Options) -> Result<Outcome> {
    crate::ha_agent_bin()?;
    which("nft").context(
        "the chaos soak needs nft for its VRRP-only partition: `apt-get install nftables`",
    )?;
    if opts.faults.is_empty() {
        bail!("no faults to draw from");
    }
    // The nodes, and an observer host that runs the ARP watch (see `OBSERVER`).
    let lab = Lab::new("chaos", NODES as u8 + 1)?;
    let lab_name = lab.name.clone();
    let bpf_dir = lab.bpf_dir.clone();
    let mut soak = Soak {
        opts,
        lab: &lab,
        agents: (0..NODES).map(|_| None).collect(),
        stopped: vec![false; NODES],
        reloaded: vec![false; NODES],
        restarts: vec![0; NODES],
        events: Vec::new(),
        pids: Vec::new(),
        sockets: BTreeSet::new(),
        flood: None,
        foreign: None,
        foreign_checks: Vec::new(),
    };
    let result = drive(&mut soak);
    // A run cut short mid-flood: the flood stops with it.
    if soak.flood.is_some() {
        let _ = soak.stop_flood();
    }
    // Whatever happened, no agent stays stopped (SIGTERM would wait on it).
    for (i, agent) in soak.agents.iter().enumerate() {
        if soak.stopped[i]
            && let Some(a) = agent
        {
            let _ = a.signal(libc::SIGCONT);
        }
    }
    let mut result = result;
    if let (Ok(findings), Some(dir)) = (&mut result, &opts.keep_logs) {
        if let Err(e) = copy_dir(&lab.dir, dir) {
            findings.notes.push(format!("copying the logs: {e:#}"));
        } else {
            findings
                .notes
                .push(format!("configs and logs kept in {}", dir.display()));
        }
    }
    let pids = std::mem::take(&mut soak.pids);
    drop(soak);
    drop(lab);
    let mut findings = result?;
    // After the lab: none of its namespaces, agents or BPF filesystem remain.
    findings
        .leftovers
        .extend(crate::leftover::gone(&lab_name, &bpf_dir, &pids));
    Ok(findings.into_outcome(opts))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// What a run found, before it is written up.
struct Findings {
    t0: f64,
    master_down: Duration,
    timeline: Vec<Line>,
    /// Per VIP: intervals where two MACs answered, with the MACs' nodes.
    two_macs: Vec<String>,
    arp_checked: Vec<String>,
    outages: Vec<String>,
    outage_summary: Vec<String>,
    leftovers: Vec<String>,
    notes: Vec<String>,
    schedule: BTreeMap<&'static str, usize>,
    /// `foreign` faults whose domain ended with one master, and those that did not.
    foreign_checked: Vec<String>,
    foreign_bad: Vec<String>,
}

fn drive(soak: &mut Soak) -> Result<Findings> {
    let opts = soak.opts;
    let lab = soak.lab;
    let mut rng = Rng(opts.seed);
    for i in 1..=NODES {
        let script = lab.write_file(
            &format!("flap-n{i}.sh"),
            &format!(
                "#!/bin/sh\n[ ! -e {} ]\n",
                lab.dir.join(format!("flap-n{i}")).display()
            ),
        )?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    let baseline = lab.baseline()?;
    for i in 1..=NODES {
        soak.start_agent(i)?;
    }
    // Initial election: each VIP on its priority-150 node.
    let ok = crate::wait_for("the initial election", Duration::from_secs(20), || {
        Ok(soak.holders(INSTANCES[0].vip) == [1] && soak.holders(INSTANCES[1].vip) == [3])
    });
    if let Err(e) = ok {
        bail!(
            "{e}: VI_A on {:?}, VI_B on {:?}",
            soak.holders(INSTANCES[0].vip),
            soak.holders(INSTANCES[1].vip)
        );
    }
    let macs: BTreeMap<String, usize> = lab
        .nodes
        .iter()
        .map(|n| Ok((n.mac()?, usize::from(n.index))))
        .collect::<Result<_>>()?;
    let mut probers: Vec<Prober> = INSTANCES
        .iter()
        .map(|v| lab.prober(IpAddr::V4(v.vip)))
        .collect::<Result<_>>()?;
    let mut arps: Vec<ArpWatch> = INSTANCES
        .iter()
        .map(|v| ArpWatch::start(lab.node(OBSERVER), v.vip))
        .collect::<Result<_>>()?;
    let stalls = StallWatch::start();
    // The clock starts once every prober is answered, not after a fixed wait: a prober that
    // took seconds to start (a loaded host) read as an outage at +0 (seed 564327 in CI).
    for p in &mut probers {
        p.wait_answered(Duration::from_secs(10))
            .context("the client's prober got no echo reply from the VIP before the faults")?;
    }
    let t0 = epoch_now();
    soak.record(t0, "start".into(), Duration::ZERO, false);

    let ai = opts.advert_int;
    // Master_Down_Interval of the lowest priority any instance can have (100 − 60 for the
    // script, 60 after a reload too): 3 × advert_int + skew (RFC 5798 §6.1).
    let lowest = 100 - u32::from(FLAP_WEIGHT);
    let master_down = 3 * ai + ai * (256 - lowest) / 256;
    let settle = master_down + opts.margin;
    let mut schedule: BTreeMap<&'static str, usize> = BTreeMap::new();
    let start = Instant::now();
    while start.elapsed() < opts.duration {
        let kind = opts.faults[rng.below(opts.faults.len())];
        // Half the time the fault hits a VIP's current master, else any node.
        let target = if rng.below(2) == 0 {
            let vip = INSTANCES[rng.below(INSTANCES.len())].vip;
            soak.holders(vip).first().copied()
        } else {
            None
        };
        let node = target.unwrap_or_else(|| 1 + rng.below(NODES));
        let hold = rng.between(Duration::from_millis(300), settle + Duration::from_secs(3));
        let after = rng.between(
            settle + Duration::from_millis(200),
            settle + Duration::from_secs(2),
        );
        *schedule.entry(kind.name()).or_default() += 1;
        soak.inject(kind, node)?;
        std::thread::sleep(hold);
        soak.heal(kind, node)?;
        std::thread::sleep(after);
    }
    std::thread::sleep(Duration::from_secs(1));
    let t_end = epoch_now();
    soak.record(t_end, "end of the schedule".into(), Duration::ZERO, false);

    let driver_stalls = stalls.stop();
    let arp_replies: Vec<Vec<(f64, String)>> = arps.drain(..).map(ArpWatch::stop).collect();
    let pings: Vec<_> = probers.drain(..).map(Prober::stop).collect::<Result<_>>()?;
    // The probers measure host stalls too: a gap in the replies without a lost request is
    // the client's ping not being run (it sends every millisecond when it runs).
    let mut prober_stalls: Vec<(f64, Duration)> = Vec::new();
    for report in &pings {
        for k in 0..report.reply_times.len().saturating_sub(1) {
            let gap = report.reply_times[k + 1] - report.reply_times[k];
            if report.lost_between(k) == 0 && gap >= StallWatch::REPORTED.as_secs_f64() {
                prober_stalls.push((report.reply_times[k], Duration::from_secs_f64(gap)));
            }
        }
    }
    prober_stalls.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Both probers starved at once are one stall.
    prober_stalls.dedup_by(|b, a| b.0 < a.0 + a.1.as_secs_f64());
    let mut stalls: Vec<(f64, Duration)> = driver_stalls
        .iter()
        .chain(&prober_stalls)
        .copied()
        .collect();
    stalls.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut f = Findings {
        t0,
        master_down,
        timeline: Vec::new(),
        two_macs: Vec::new(),
        arp_checked: Vec::new(),
        outages: Vec::new(),
        outage_summary: Vec::new(),
        leftovers: Vec::new(),
        notes: Vec::new(),
        schedule,
        foreign_checked: Vec::new(),
        foreign_bad: Vec::new(),
    };
    for (ok, t, what) in std::mem::take(&mut soak.foreign_checks) {
        let line = format!("{:+9.3}  {what}", t - t0);
        if ok {
            f.foreign_checked.push(line);
        } else {
            f.foreign_bad.push(line);
        }
    }
    let rel = |t: f64| t - t0;
    let node_of = |mac: &str| {
        macs.get(mac)
            .map_or_else(|| format!("{mac} (no node)"), |n| format!("n{n} ({mac})"))
    };

    // Invariant 1: one MAC per VIP once master-down + margin has passed after each event.
    for (v, replies) in INSTANCES.iter().zip(&arp_replies) {
        let mut checked = Duration::ZERO;
        let mut split_brain = Duration::ZERO;
        for (k, ev) in soak.events.iter().enumerate() {
            let Some(next) = soak.events.get(k + 1) else {
                break;
            };
            if ev.partitioned {
                // Not an invariant (both sides are masters by design), but worth showing.
                for (a, b, _) in two_mac_intervals(replies, ev.t, next.t) {
                    split_brain += Duration::from_secs_f64(b - a);
                }
                continue;
            }
            let bound = stretched(&stalls, ev.t, settle + ev.reaction);
            let from = ev.t + bound.as_secs_f64();
            if from >= next.t {
                continue;
            }
            checked += Duration::from_secs_f64(next.t - from);
            for (a, b, set) in two_mac_intervals(replies, from, next.t) {
                f.two_macs.push(format!(
                    "{} {}: +{:.3}..+{:.3} s ({:.0} ms) answered by {}; {:.3} s after \"{}\" at +{:.3}{}",
                    v.name,
                    v.vip,
                    rel(a),
                    rel(b),
                    (b - a) * 1000.0,
                    set.iter().map(|m| node_of(m)).collect::<Vec<_>>().join(" and "),
                    a - ev.t,
                    ev.what,
                    rel(ev.t),
                    stall_note(bound, settle + ev.reaction)
                ));
            }
        }
        f.arp_checked.push(format!(
            "{} {}: {} ARP replies, {:.1} s checked; two MACs during VRRP-only partitions \
             (expected, not checked): {:.0} ms",
            v.name,
            v.vip,
            replies.len(),
            checked.as_secs_f64(),
            split_brain.as_secs_f64() * 1000.0
        ));
    }

    // Invariant 2: outages start after an event and end within its bound.
    for (v, report) in INSTANCES.iter().zip(&pings) {
        let kept: Vec<usize> = (0..report.reply_times.len())
            .filter(|k| (t0..=t_end).contains(&report.reply_times[*k]))
            .collect();
        let times: Vec<f64> = kept.iter().map(|k| report.reply_times[*k]).collect();
        // A gap is an outage when requests in it went unanswered; one without is the prober
        // starved (counted among the stalls above).
        let mut gaps: Vec<(f64, f64)> = kept
            .windows(2)
            .filter(|w| {
                let (a, b) = (report.reply_times[w[0]], report.reply_times[w[1]]);
                b - a > ai.as_secs_f64() && report.lost_between(w[0]) > 0
            })
            .map(|w| (report.reply_times[w[0]], report.reply_times[w[1]]))
            .collect();
        match (times.first(), times.last()) {
            (Some(first), Some(last)) => {
                if first - t0 > ai.as_secs_f64() {
                    gaps.insert(0, (t0, *first));
                }
                if t_end - last > ai.as_secs_f64() {
                    gaps.push((*last, t_end));
                }
            }
            _ => gaps.push((t0, t_end)),
        }
        let mut longest = 0.0f64;
        let mut listed = Vec::new();
        for &(a, b) in &gaps {
            longest = longest.max(b - a);
            // The latest event at or before the gap's start (10 ms of slack for clocks).
            let cause = soak.events.iter().rev().find(|e| e.t <= a + 0.010);
            let bound = |e: &Event| stretched(&stalls, e.t, settle + e.reaction);
            let bounded = cause.is_some_and(|e| b <= e.t + bound(e).as_secs_f64());
            if let Some(e) = cause {
                listed.push(format!(
                    "  +{:.3} s, {:.0} ms, {:.3} s after \"{}\"{}",
                    rel(a),
                    (b - a) * 1000.0,
                    a - e.t,
                    e.what,
                    stall_note(bound(e), settle + e.reaction)
                ));
            }
            if !bounded {
                let because = cause.map_or_else(
                    || "before any event".to_owned(),
                    |e| {
                        format!(
                            "{:.3} s after \"{}\" at +{:.3}, bound {:.3} s{}",
                            b - e.t,
                            e.what,
                            rel(e.t),
                            bound(e).as_secs_f64(),
                            stall_note(bound(e), settle + e.reaction)
                        )
                    },
                );
                f.outages.push(format!(
                    "{} {}: no echo reply +{:.3}..+{:.3} s ({:.0} ms), ending {because}",
                    v.name,
                    v.vip,
                    rel(a),
                    rel(b),
                    (b - a) * 1000.0
                ));
            }
        }
        f.outage_summary.push(format!(
            "{} {}: {} replies, {} outages > {:?}, longest {:.0} ms",
            v.name,
            v.vip,
            times.len(),
            gaps.len(),
            ai,
            longest * 1000.0
        ));
        f.outage_summary.extend(listed);
    }

    // Invariant 3: a clean stop leaves nothing behind.
    for i in 1..=NODES {
        let Some(mut agent) = soak.agents[i - 1].take() else {
            continue;
        };
        agent.signal(libc::SIGTERM)?;
        match agent.wait_timeout(Duration::from_secs(10))? {
            Some(s) if s.success() => {}
            Some(s) => f
                .leftovers
                .push(format!("n{i}'s agent exited with {s} on SIGTERM")),
            None => f
                .leftovers
                .push(format!("n{i}'s agent still runs 10 s after SIGTERM")),
        }
        soak.agents[i - 1] = Some(agent);
    }
    f.timeline = timeline(soak, t0);
    f.timeline
        .extend(driver_stalls.iter().map(|(t, late)| Line {
            t: *t,
            text: format!("~~ host stall: the chaos driver woke {late:.0?} late"),
        }));
    f.timeline.extend(prober_stalls.iter().map(|(t, gap)| Line {
        t: *t,
        text: format!("~~ host stall: the client's ping sent nothing for {gap:.0?}"),
    }));
    f.timeline.sort_by(|a, b| a.t.total_cmp(&b.t));
    f.notes.push(format!(
        "host stalls ≥ {:?}: the chaos driver's 5 ms sleep woke that late {} times (longest \
         {:.0?}); the client's 1 ms ping sent nothing for that long {} times (longest {:.0?}); \
         bounds are stretched by the measured stalls that overlap them",
        StallWatch::REPORTED,
        driver_stalls.len(),
        driver_stalls.iter().map(|s| s.1).max().unwrap_or_default(),
        prober_stalls.len(),
        prober_stalls.iter().map(|s| s.1).max().unwrap_or_default()
    ));
    let vips: Vec<IpAddr> = INSTANCES.iter().map(|v| IpAddr::V4(v.vip)).collect();
    f.leftovers
        .extend(lab.leftovers(&baseline, &vips, Path::new(crate::leftover::SYS_BPF)));
    for socket in &soak.sockets {
        if socket.exists() {
            f.leftovers
                .push(format!("control socket {}", socket.display()));
        }
    }
    Ok(f)
}

/// `bound` after an event at `t`, stretched by the host stalls the stall watch measured from
/// `t` to the end of the stretched bound: while the host is frozen the agents' timers, the
/// kernel's and the client's are too, so a stall of 300 ms delays every reaction by as much.
/// Only measured stalls count (≥ [`StallWatch::REPORTED`]); shorter ones are the margin's.
fn stretched(stalls: &[(f64, Duration)], t: f64, bound: Duration) -> Duration {
    let mut out = bound;
    // Each stretch may take in another stall; a few rounds reach the fixed point.
    for _ in 0..8 {
        let end = t + out.as_secs_f64();
        let lost: Duration = stalls
            .iter()
            .filter(|(at, late)| *at < end && at + (StallWatch::TICK + *late).as_secs_f64() > t)
            .map(|(_, late)| *late)
            .sum();
        if bound + lost == out {
            break;
        }
        out = bound + lost;
    }
    out
}

/// `" (bound + N ms of host stalls)"` when the stalls stretched a bound, else nothing.
fn stall_note(stretched: Duration, bound: Duration) -> String {
    let lost = stretched.saturating_sub(bound);
    if lost.is_zero() {
        String::new()
    } else {
        format!(
            " (bound stretched by {:.0} ms of host stalls)",
            lost.as_secs_f64() * 1000.0
        )
    }
}

/// Intervals in `[from, to)` in which ARP replies from different MACs answered the same
/// request (read closer together than half the request interval), with the MACs; replies less
/// than a second apart join one interval.
fn two_mac_intervals(
    replies: &[(f64, String)],
    from: f64,
    to: f64,
) -> Vec<(f64, f64, BTreeSet<String>)> {
    let close = ARP_INTERVAL.as_secs_f64() / 2.0;
    let window: Vec<&(f64, String)> = replies
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .collect();
    let mut out: Vec<(f64, f64, BTreeSet<String>)> = Vec::new();
    for pair in window.windows(2) {
        let ((ta, ma), (tb, mb)) = (pair[0], pair[1]);
        if ma == mb || tb - ta >= close {
            continue;
        }
        match out.last_mut() {
            Some((_, end, set)) if *ta - *end < 1.0 => {
                *end = *tb;
                set.insert(ma.clone());
                set.insert(mb.clone());
            }
            _ => out.push((*ta, *tb, [ma.clone(), mb.clone()].into())),
        }
    }
    out
}

/// The faults and the state changes the agents logged (all their logs, restarts included).
fn timeline(soak: &Soak, t0: f64) -> Vec<Line> {
    let mut lines: Vec<Line> = soak
        .events
        .iter()
        .map(|e| Line {
            t: e.t,
            text: format!("** {}", e.what),
        })
        .collect();
    for i in 1..=NODES {
        let mut logs: Vec<PathBuf> = (0..soak.restarts[i - 1])
            .map(|n| soak.lab.dir.join(format!("ha-agent-n{i}.log.{n}")))
            .collect();
        logs.push(soak.lab.dir.join(format!("ha-agent-n{i}.log")));
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for l in text.lines() {
                if let Some(line) = transition(l, i)
                    && line.t >= t0 - 1.0
                {
                    lines.push(line);
                }
            }
        }
    }
    lines.sort_by(|a, b| a.t.total_cmp(&b.t));
    lines
}

/// A line of node i's agent log (`--log-format json`) as a timeline line: its `transition`
/// events by their fields, its warnings and errors and its reassertions by their message.
fn transition(line: &str, i: usize) -> Option<Line> {
    let e = crate::agent_log::parse(line)?;
    let text = if e.is_transition() {
        format!(
            "n{i} {} {} -> {}: {}",
            e.str("instance").unwrap_or("?"),
            e.str("from")?,
            e.str("to")?,
            e.str("reason").unwrap_or_default()
        )
    } else if e.level == "ERROR"
        || e.level == "WARN"
        || e.message().contains("reasserting over a lower priority")
    {
        format!("n{i} {}", e.message().chars().take(160).collect::<String>())
    } else {
        return None;
    };
    Some(Line { t: e.t, text })
}

/// The `cargo xtask chaos` flags, besides `--seconds` and `--seed`, that repeat `opts`.
fn reproduce_flags(opts: &Options) -> String {
    let defaults = Options::new(opts.duration, opts.seed);
    let mut flags = String::new();
    if opts.faults != defaults.faults {
        let names: Vec<&str> = opts.faults.iter().map(|f| f.name()).collect();
        let _ = write!(flags, " --faults {}", names.join(","));
    }
    if opts.margin != defaults.margin {
        let _ = write!(flags, " --margin-ms {}", opts.margin.as_millis());
    }
    if opts.advert_int != defaults.advert_int {
        let _ = write!(flags, " --advert-int-ms {}", opts.advert_int.as_millis());
    }
    if opts.datapath != defaults.datapath {
        let _ = write!(flags, " --datapath {}", opts.datapath);
    }
    flags
}

impl Findings {
    fn into_outcome(self, opts: &Options) -> Outcome {
        let mut r = String::new();
        let rel = |t: f64| t - self.t0;
        let _ = writeln!(
            r,
            "chaos soak: seed {}, {} s of faults, 3 nodes, datapath {}, advert_int {:?}\n\
             VI_A VRID 61 192.0.2.201 (n1 150, n2 120, n3 100); VI_B VRID 62 192.0.2.202 (n1 100, n2 120, n3 150)\n\
             bounds: master-down interval {:?} + margin {:?} (+ a restart's start-up, a script's interval + timeout)\n\
             faults drawn: {}\n\
             reproduce: cargo xtask chaos --seconds {} --seed {}{}",
            opts.seed,
            opts.duration.as_secs(),
            opts.datapath,
            opts.advert_int,
            self.master_down,
            opts.margin,
            self.schedule
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            opts.duration.as_secs(),
            opts.seed,
            reproduce_flags(opts)
        );
        let mut failed = Vec::new();
        let mut section = |name: &'static str, what: &str, summary: &[String], bad: &[String]| {
            let verdict = if bad.is_empty() { "PASS" } else { "FAIL" };
            let _ = writeln!(r, "\n[{verdict}] {name}: {what}");
            for s in summary {
                let _ = writeln!(r, "    {s}");
            }
            for b in bad {
                let _ = writeln!(r, "  ! {b}");
            }
            if !bad.is_empty() {
                failed.push(name);
            }
        };
        section(
            "one-mac",
            "at most one MAC answers ARP for a VIP from master-down + margin after each event",
            &self.arp_checked,
            &self.two_macs,
        );
        section(
            "bounded-outages",
            "a VIP is unreachable only within master-down + margin of an event",
            &self.outage_summary,
            &self.outages,
        );
        if !self.foreign_checked.is_empty() || !self.foreign_bad.is_empty() {
            section(
                "foreign-vrrp",
                "another VRRP domain behind an agent's NIC (macvlan) and on the LAN keeps one master",
                &self.foreign_checked,
                &self.foreign_bad,
            );
        }
        section(
            "nothing-left",
            "after SIGTERM and the lab's removal: no VIP, route, attachment, socket, pin, process or namespace",
            &[],
            &self.leftovers,
        );
        for n in &self.notes {
            let _ = writeln!(r, "\nnote: {n}");
        }
        let _ = writeln!(
            r,
            "\ntimeline (seconds since the start; ** = fault, ~~ = host stall):"
        );
        for l in &self.timeline {
            let _ = writeln!(r, "  {:+9.3}  {}", rel(l.t), l.text);
        }
        let _ = writeln!(
            r,
            "\n{}: seed {}",
            if failed.is_empty() {
                "all invariants held".to_owned()
            } else {
                format!("invariants broken: {}", failed.join(", "))
            },
            opts.seed
        );
        Outcome { report: r, failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule() {
        let draw = |seed| {
            let mut r = Rng(seed);
            (0..20).map(|_| r.below(6)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let mut r = Rng(1);
        for _ in 0..1000 {
            let d = r.between(Duration::from_millis(300), Duration::from_millis(900));
            assert!((Duration::from_millis(300)..Duration::from_millis(900)).contains(&d));
        }
    }

    #[test]
    fn transitions_from_agent_logs() {
        let l = transition(
            r#"{"timestamp":"2026-11-22T03:39:00.550058Z","level":"INFO","fields":{"message":"BACKUP -> MASTER (master down timer expired (no advert from the master); priority 150, effective 150, master -)","instance":"VI_A","event":"transition","from":"BACKUP","to":"MASTER","reason":"master down timer expired (no advert from the master)","priority":150,"effective":150}}"#,
            2,
        )
        .unwrap();
        assert_eq!(
            l.text,
            "n2 VI_A BACKUP -> MASTER: master down timer expired (no advert from the master)"
        );
        assert!((l.t - 1_795_318_740.550_058).abs() < 1e-6, "{}", l.t);
        let warn = transition(
            r#"{"timestamp":"1970-01-01T00:00:00Z","level":"WARN","fields":{"message":"removed stale VIP","instance":"VI_A"}}"#,
            1,
        )
        .unwrap();
        assert_eq!((warn.t, warn.text.as_str()), (0.0, "n1 removed stale VIP"));
        assert!(
            transition(
                r#"{"timestamp":"2026-11-22T03:39:00.550058Z","level":"DEBUG","fields":{"message":"BACKUP -> MASTER (sent advert)"}}"#,
                1
            )
            .is_none(),
            "a message that reads like a transition is not one"
        );
        assert!(transition("2026-11-22T03:39:00.550058Z  INFO BACKUP -> MASTER (x)", 1).is_none());
    }

    #[test]
    fn the_report_repeats_the_options() {
        let mut o = Options::new(Duration::from_secs(60), 3);
        assert_eq!(reproduce_flags(&o), "");
        o.faults = vec![FaultKind::Partition, FaultKind::Stop];
        o.advert_int = Duration::from_millis(50);
        assert_eq!(
            reproduce_flags(&o),
            " --faults partition,stop --advert-int-ms 50"
        );
    }

    #[test]
    fn stalls_stretch_a_bound_only_where_they_overlap_it() {
        let s = |at: f64, ms: u64| (at, Duration::from_millis(ms));
        let bound = Duration::from_millis(1000);
        assert_eq!(stretched(&[], 10.0, bound), bound);
        // Before the event, and after the bound: not counted.
        assert_eq!(stretched(&[s(9.0, 200), s(11.5, 300)], 10.0, bound), bound);
        // Inside: counted; one just past the stretched end is then taken in too.
        let got = stretched(&[s(10.5, 200), s(11.1, 100)], 10.0, bound);
        assert_eq!(got, Duration::from_millis(1300));
    }

    #[test]
    fn fault_names_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::parse(k.name()).unwrap(), k);
        }
        assert!(FaultKind::parse("meteor").is_err());
    }
}

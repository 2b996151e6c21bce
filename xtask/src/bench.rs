//! `cargo xtask bench`: ha-agent beside keepalived 2.2.7 in the same lab, from the same
//! generated keepalived.conf, in the same run (issue #8).
//!
//! Failover scenarios alternate the two daemons trial by trial (keepalived first on even trials,
//! ha-agent first on odd ones), so slow drifts of the machine (other builds, thermal) fall on
//! both. Every number in the report is measured here; nothing is filled in.
//!
//! The results go to `bench/results/<date>-<host>.json` (raw samples and machine facts) and a
//! markdown report with SVG plots beside it (see [`report`]).

mod failback;
mod lvs;
mod packet_cost;
mod reload;
mod report;
mod scale1k;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use ha_tests::{Daemon, IFACE, Lab, Node, epoch_now, flood::FloodReport, wait_for};
use serde::Serialize;

use crate::setup;

/// The benchmark scenarios, numbered as in issue #8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 1. Crash failover: the master's link is cut.
    Crash,
    /// 2. Graceful handover: SIGTERM on the master (it sends priority 0).
    Graceful,
    /// 3. Tracked failure: the master's vrrp_script starts failing (weight -60).
    Tracked,
    /// 4. Crash failover while a third node floods forged adverts for a foreign VRID.
    Flood,
    /// 5. Per-packet cost of XDP `vrrp_rx` (BPF_PROG_TEST_RUN, repeat 10^6): valid adverts,
    ///    rejected ones, packets that are not VRRP, beside an empty program.
    PacketCost,
    /// 6. Scale and footprint: 1, 16 and 255 VRIDs at advert_int 0.01.
    Scale,
    /// 7. The XDP load balancer: packets per second against XDP_TX and the kernel forwarding,
    ///    health-check detection time.
    Lvs,
    /// 8. Failback: the priority 150 node starts beside the priority 100 master and preempts it.
    Failback,
    /// 9. Hitless reload: 255 instances, one instance's priorities changed, SIGHUP to both.
    Reload,
    /// 10. A thousand instances: 4 interfaces × 255 VRIDs at advert_int 0.1 (issue #17).
    #[value(name = "scale-1k")]
    #[serde(rename = "scale-1k")]
    Scale1k,
}

impl Scenario {
    /// Every scenario, in the order a full run takes them.
    pub const ALL: &[Scenario] = &[
        Scenario::Crash,
        Scenario::Graceful,
        Scenario::Tracked,
        Scenario::Flood,
        Scenario::PacketCost,
        Scenario::Scale,
        Scenario::Lvs,
        Scenario::Failback,
        Scenario::Reload,
        Scenario::Scale1k,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Crash => "crash",
            Scenario::Graceful => "graceful",
            Scenario::Tracked => "tracked",
            Scenario::Flood => "flood",
            Scenario::PacketCost => "packet-cost",
            Scenario::Scale => "scale",
            Scenario::Lvs => "lvs",
            Scenario::Failback => "failback",
            Scenario::Reload => "reload",
            Scenario::Scale1k => "scale-1k",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Crash => "1. Crash failover",
            Scenario::Graceful => "2. Graceful handover",
            Scenario::Tracked => "3. Tracked failure",
            Scenario::Flood => "4. Crash failover under flood",
            Scenario::PacketCost => "5. Per-packet cost of XDP vrrp_rx",
            Scenario::Scale => "6. Scale and footprint",
            Scenario::Lvs => "7. XDP load balancer (virtual_server)",
            Scenario::Failback => "8. Failback (preemption by a returning higher priority)",
            Scenario::Reload => "9. Hitless reload",
            Scenario::Scale1k => "10. A thousand instances",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Scenario::Crash => {
                "VRRPv3, advert_int 0.01, priorities 150/100. The master's bridge port goes down \
                 (its link is cut); outage = the longest gap between replies to a client pinging \
                 the VIP every 1 ms. Protocol floor: 3 × 10 ms + skew(100) = 36.1 ms."
            }
            Scenario::Graceful => {
                "Same pair; SIGTERM to the master's daemon, which resigns with a priority 0 \
                 advert. Outage as in the crash scenario; takeover = SIGTERM to the VIP being \
                 added on the backup (`ip -ts monitor address`). Skew time of the backup: 6.1 ms. \
                 Lost probes = the client's echo requests that got no reply (sequence numbers \
                 skipped between replies)."
            }
            Scenario::Failback => {
                "Node 1 (priority 100) is master alone; node 2 (priority 150, preempt by \
                 default) starts and takes over. Over the takeover (from 50 ms before the VIP is \
                 added on node 2, `ip -ts monitor address`): outage = the longest gap between \
                 replies to the client's 1 ms pings, lost probes = requests with no reply. \
                 Takeover after start = node 2's daemon started to the VIP added there."
            }
            Scenario::Tracked => {
                "Same pair; the master tracks a vrrp_script (interval 1, fall 1, rise 1, weight \
                 -60: 150 → 90, below the backup's 100). The check starts failing; the script \
                 records when it first failed. Takeover = first failed check to the VIP being \
                 added on the backup; outage as in the crash scenario."
            }
            Scenario::Flood => {
                "The crash scenario while a third node sends forged VRRPv3 adverts for VRID 99 \
                 (no instance has it) with `vrrp_flood` as fast as it can: XDP live frames \
                 (`BPF_PROG_TEST_RUN` in live mode on `lab_flood_tx`, which returns XDP_TX out \
                 of node 3's eth0; its bridge port runs an XDP_PASS program to take them). \
                 Generated = node 3's bridge port rx_packets, reaching = each node's eth0 \
                 rx_packets, over the CPU window. CPU = utime+stime of every process in the \
                 node's namespace (/proc/PID/stat) over a window of flood before the cut. \
                 Spurious transitions = state changes of either node in that window plus any of \
                 the backup's after the cut beyond its one takeover."
            }
            Scenario::PacketCost => {
                "ha-agent's XDP program `vrrp_rx` loaded detached, its maps written as the agent \
                 writes them for a backup (priority 100) of the failover scenarios' instance \
                 (VRID 51, v3, advert_int 0.01, one VIP) on an interface that also runs VRIDs \
                 1–16 (one VIP each), VRID 52 with 8 VIPs, VRID 53 as v2 with PASS auth and VRID \
                 51 over IPv6 (`ha-agent/examples/vrrp_rx_cost.rs`). Each case is one Ethernet \
                 frame run 10^6 times by one `BPF_PROG_TEST_RUN` call (`aya::TestRun`); a sample \
                 is the kernel's figure for the call: elapsed time / 10^6, in whole ns \
                 (truncated). The cases take turns call by call. Every call is checked: the \
                 verdict, and the counters moved by exactly 10^6 (ACCEPTED for a valid advert, \
                 STATS[vrid][reason] for a rejected one, nothing for a packet that is not VRRP). \
                 The kernel's figure includes its loop around the program: the empty XDP \
                 program `xdp_baseline` (returns XDP_PASS) run the same way measures it, and \
                 'minus baseline' = a case's median − the baseline's median is vrrp_rx's own \
                 cost. A second reference, `xdp_ktime`, reads the clock once \
                 (`bpf_ktime_get_ns()`, as every valid advert does for its peer record). 10G \
                 line rate (14.88 Mpps) leaves 67 ns a packet on one core."
            }
            Scenario::Scale => {
                "N instances (VRIDs 1..N, one /32 VIP each) at advert_int 0.01 on one interface, \
                 priorities 150/100. Once node 1 holds every VIP: CPU (% of one core, \
                 /proc/PID/stat; total, and user and system time apart: system time includes \
                 the kernel's delivery of the adverts on veth and bridge in the sender's \
                 context) and RSS (VmRSS) of every process in each node's namespace, over \
                 a fixed window, and the state transitions during it (0 for a stable pair). A \
                 pair that does not settle within 20 s is measured anyway, with a note. The \
                 lab turns the bridge's netfilter hooks off; where the kernel has br_netfilter, \
                 255 VRIDs run again with them on (metrics ', bridge netfilter on'), as a \
                 distribution leaves them (per network namespace: the host's setting is not \
                 touched)."
            }
            Scenario::Lvs => {
                "The LVS lab (ha_tests::lvs): director 1 runs the agent with `virtual_server \
                 192.0.2.200 9` (UDP, rr, DR, three real servers) and `virtual_server \
                 192.0.2.200 80` (TCP, rr, DR, HTTP_GET checks, delay_loop 1, retry 1). Each \
                 case runs 10^6 copies of one 60-byte UDP frame through `BPF_PROG_TEST_RUN` \
                 with BPF_F_TEST_XDP_LIVE_FRAMES as if director 1's eth0 had received them: \
                 the kernel really transmits what the program returns. Mpps = 1 / the kernel's \
                 time per frame. Cases: `xdp_bounce` (swap MACs, XDP_TX: the ceiling of any \
                 XDP forwarder on this interface), the kernel forwarding the frames \
                 (XDP_PASS into the stack, ip_forward to a real server), and the agent's \
                 attached `vrrp_rx` tail-calling `xdp_lb`. 'delivered' = frames counted at the \
                 real servers (nft netdev ingress). Health-check detection: a real server's \
                 /health starts answering 503 → 30 new connections in a row miss it. Flows \
                 moved: the share of that service's Maglev table (LB_RING of the running \
                 xdp_lb) that changed between before the failure and its detection; the \
                 leaving server's third must move, Maglev moves little else."
            }
            Scenario::Reload => {
                "255 VRRPv3 instances (VRIDs 1-255, one /32 VIP each) at advert_int 0.05, \
                 priorities 150/100; the same generated keepalived.conf for both daemons. The \
                 client pings the VIPs of VRIDs 1, 127 and 254 every 1 ms. VI_128's priorities \
                 change in both files (node 1 200 -> 190, node 2 100 -> 110, still below) and \
                 both daemons get SIGHUP. State changes = transitions logged by either node \
                 from the SIGHUP on (the untouched instances', the changed one's); lost probes \
                 and the longest gap between replies from 0.1 s before the SIGHUP to 1 s after; \
                 applied = SIGHUP to the first VI_128 advert with priority 190 that tcpdump on \
                 the client sees; CPU = utime and stime (10 ms ticks) of every process in each \
                 node's namespace over the second after the SIGHUP, and over the second \
                 before it (the pair's steady cost, for comparison)."
            }
            Scenario::Scale1k => {
                "Two nodes with four LANs each (eth0–eth3, one bridge per LAN), VRIDs 1–255 on \
                 every interface (1,020 instances, one /32 VIP each) at advert_int 0.1, \
                 priorities 150/100, the same generated file for both daemons. Start-up to \
                 all-stable: from starting both daemons until node 1 holds all 1,020 VIPs and \
                 node 2 none, held for 1 s: the time of the last VIP added or removed on either \
                 node (`ip -ts monitor address`, the same observable for both daemons). Then \
                 over the window: CPU of each node's processes (/proc/PID/stat utime and stime \
                 apart: system time includes the kernel's delivery of the adverts on veth and \
                 bridge in the sender's context), VmRSS, and the state transitions logged \
                 (spurious: the pair is stable). Run twice: with the bridge's netfilter hooks \
                 off (the lab's default) and on (`net.bridge.bridge-nf-call-iptables`, \
                 `-ip6tables`, `-arptables` = 1 in the LAN's namespace, as a distribution \
                 leaves them where br_netfilter is loaded; the host's own setting is not \
                 touched). On a kernel without br_netfilter only the first runs, with a note."
            }
        }
    }
}

/// What `cargo xtask bench` was asked to do.
pub struct Options {
    pub quick: bool,
    pub scenarios: Vec<Scenario>,
    pub trials: Option<usize>,
    pub scale_trials: Option<usize>,
}

/// The two daemons under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impl {
    Keepalived,
    HaAgent,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Keepalived => "keepalived",
            Impl::HaAgent => "ha-agent",
        }
    }

    /// Lines that mark a state change in the daemon's log.
    fn is_transition(self, line: &str) -> bool {
        match self {
            Impl::Keepalived => line.contains("Entering ") && line.contains(" STATE"),
            // Its `transition` events (`--log-format json`), not its wording.
            Impl::HaAgent => ha_tests::agent_log::parse(line).is_some_and(|e| e.is_transition()),
        }
    }

    fn start(self, lab: &Lab, node: usize, conf: &str) -> Result<Daemon> {
        match self {
            Impl::Keepalived => lab.keepalived(node, conf),
            // The default datapath (auto: XDP when it loads) at the default log level; JSON, so
            // that transitions are read by their fields.
            Impl::HaAgent => {
                lab.ha_agent(node, conf, &["--log-level", "info", "--log-format", "json"])
            }
        }
    }
}

/// One trial of one daemon: named measurements, or why it failed.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub daemon: Impl,
    pub trial: usize,
    /// Measurements by name (the name carries the unit).
    pub metrics: BTreeMap<String, f64>,
    /// What else was seen (datapath, flood rate, anomalies).
    pub notes: Vec<String>,
    /// Set when the trial could not complete; it has no metrics then.
    pub error: Option<String>,
}

/// A scenario's results.
#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub title: &'static str,
    pub description: &'static str,
    /// The configurations the trials ran (node → keepalived.conf), identical for both daemons.
    pub configs: BTreeMap<String, String>,
    pub trials: Vec<Trial>,
    /// Seconds the scenario took.
    pub wall_seconds: f64,
    /// packet-cost: what the measuring binary reported (cases, expected verdicts, both clocks'
    /// samples) and the machine's settings that bear on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_cost: Option<packet_cost::PacketCost>,
}

/// Durations and counts that `--quick` shortens.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Plan {
    pub trials: usize,
    /// Trials per VRID count in the scale scenario.
    pub scale_trials: usize,
    /// CPU measurement window (flood, scale), seconds.
    pub cpu_window_s: f64,
    /// scale-1k: the window for CPU and spurious transitions, seconds.
    pub stability_window_s: f64,
}

impl Plan {
    fn new(opts: &Options) -> Plan {
        let trials = opts
            .trials
            .unwrap_or(if opts.quick { 3 } else { 20 })
            .max(1);
        Plan {
            trials,
            scale_trials: opts
                .scale_trials
                .unwrap_or(if opts.quick { 1 } else { trials.min(5) })
                .max(1),
            cpu_window_s: if opts.quick { 2.0 } else { 5.0 },
            stability_window_s: if opts.quick { 10.0 } else { 60.0 },
        }
    }
}

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const VRID: u8 = 51;
const FOREIGN_VRID: u8 = 99;
const MASTER_PRIO: u8 = 150;
const BACKUP_PRIO: u8 = 100;
/// Generous bounds for a loaded 2-core machine; a trial that hits one fails, it is not retried.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(20);
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(opts: Options) -> Result<()> {
    ha_tests::require_privileges()
        .context("`cargo xtask bench` builds network namespaces and loads BPF programs")?;
    setup::debian_packages(setup::TEST_PACKAGES)?;
    crate::build_ebpf()?;
    // Release builds: keepalived is an optimised C build; the generator must not be the limit.
    // The per-packet measurement is an example of ha-agent's (xtask cannot depend on it).
    crate::run(Command::new("cargo").args([
        "build",
        "--release",
        "--package",
        "ha-agent",
        "--bin",
        "ha-agent",
        "--example",
        packet_cost::EXAMPLE,
        "--package",
        "ha-tests",
        "--bin",
        "vrrp_flood",
        "--bin",
        "icmp_prober",
        "--bin",
        "lvs_web",
    ]))?;
    let release = crate::root().join("target").join("release");
    let agent_bin = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| PathBuf::from(t).join("release"))
        .unwrap_or(release);
    // SAFETY: set_var before any thread is started (the bench is single-threaded up to here and
    // the lab's threads only read the environment after this).
    unsafe {
        std::env::set_var("HA_AGENT_BIN", agent_bin.join("ha-agent"));
        std::env::set_var("HA_PROBER_BIN", agent_bin.join("icmp_prober"));
        std::env::set_var("HA_LVS_WEB_BIN", agent_bin.join("lvs_web"));
    }
    let flood_bin = agent_bin.join("vrrp_flood");

    let plan = Plan::new(&opts);
    let scenarios = if opts.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        let mut s = opts.scenarios.clone();
        s.sort();
        s.dedup();
        s
    };
    let machine = report::Machine::probe()?;
    eprintln!(
        "bench: {} on {} ({} cores, kernel {}), ha-agent {}{}, {}; {} trials per daemon{}",
        scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        machine.cpu_model,
        machine.cores,
        machine.kernel,
        machine.ha_agent_commit,
        if machine.ha_agent_dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        machine.keepalived_version,
        plan.trials,
        if opts.quick { " (--quick)" } else { "" }
    );
    let mut results = Vec::new();
    for scenario in scenarios {
        let started = Instant::now();
        eprintln!("\n== {}", scenario.title());
        let mut result = ScenarioResult {
            scenario,
            title: scenario.title(),
            description: scenario.description(),
            configs: BTreeMap::new(),
            trials: Vec::new(),
            wall_seconds: 0.0,
            packet_cost: None,
        };
        run_scenario(scenario, &plan, &agent_bin, &flood_bin, &mut result)?;
        result.wall_seconds = started.elapsed().as_secs_f64();
        results.push(result);
    }
    let written = report::write(&machine, &plan, opts.quick, &results)?;
    eprintln!();
    for path in written {
        println!("bench: wrote {}", path.display());
    }
    Ok(())
}

fn run_scenario(
    scenario: Scenario,
    plan: &Plan,
    bin_dir: &Path,
    flood_bin: &Path,
    out: &mut ScenarioResult,
) -> Result<()> {
    match scenario {
        Scenario::Crash | Scenario::Graceful | Scenario::Tracked | Scenario::Flood => {
            let nodes = if scenario == Scenario::Flood { 3 } else { 2 };
            let lab = Lab::new(&format!("b{}", &scenario.name()[..3]), nodes)?;
            // The live-frame generator's bridge port needs NAPI to take its XDP_TX frames.
            let _napi = if scenario == Scenario::Flood {
                let object = std::fs::read(crate::ebpf_object()).context("the eBPF object")?;
                let object: &'static [u8] = Box::leak(object.into_boxed_slice());
                Some(ha_tests::flood::xdp_pass_on(
                    &lab.lan,
                    &lab.node(3).port,
                    object,
                )?)
            } else {
                None
            };
            let setup = Failover::new(scenario, &lab, flood_bin)?;
            out.configs = setup.configs();
            alternate(plan.trials, scenario, &mut out.trials, |imp, i| {
                setup.trial(imp, i, plan)
            });
            Ok(())
        }
        Scenario::PacketCost => packet_cost::run(plan, bin_dir, out),
        Scenario::Scale => scale(plan, out),
        Scenario::Lvs => lvs::run(plan, out),
        Scenario::Failback => failback::run(plan, out),
        Scenario::Reload => reload::run(plan, out),
        Scenario::Scale1k => scale1k::run(plan, out),
    }
}

/// Runs `trials` rounds of both daemons, alternating which goes first, recording failures as
/// failed trials (the report counts them) and printing progress.
fn alternate(
    trials: usize,
    scenario: Scenario,
    out: &mut Vec<Trial>,
    mut f: impl FnMut(Impl, usize) -> Result<Trial>,
) {
    for i in 0..trials {
        let order = if i % 2 == 0 {
            [Impl::Keepalived, Impl::HaAgent]
        } else {
            [Impl::HaAgent, Impl::Keepalived]
        };
        for imp in order {
            let t = f(imp, i).unwrap_or_else(|e| Trial {
                daemon: imp,
                trial: i,
                metrics: BTreeMap::new(),
                notes: Vec::new(),
                error: Some(format!("{e:#}")),
            });
            progress(scenario, trials, &t);
            out.push(t);
        }
    }
}

fn progress(scenario: Scenario, trials: usize, t: &Trial) {
    let what = match &t.error {
        Some(e) => format!("FAILED: {}", e.lines().next().unwrap_or_default()),
        None => t
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    eprintln!(
        "[{} {}/{}] {:<10} {what}",
        scenario.name(),
        t.trial + 1,
        trials,
        t.daemon.name()
    );
}

/// keepalived.conf for one node: `global_defs` both daemons accept, then the instances.
fn config(node: usize, instances: &str, scripts: &str) -> String {
    format!(
        "! generated by cargo xtask bench; the same file is given to keepalived and ha-agent\n\
         global_defs {{\n    router_id bench-n{node}\n    script_user root\n}}\n{scripts}{instances}"
    )
}

/// One VRRPv3 instance at advert_int 0.01.
fn instance(vrid: u8, priority: u8, vip: &str, extra: &str) -> String {
    format!(
        "vrrp_instance VI_{vrid} {{\n    state BACKUP\n    interface {IFACE}\n    \
         virtual_router_id {vrid}\n    version 3\n    priority {priority}\n    advert_int 0.01\n\
         {extra}    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
    )
}

/// The nodes (1-based) that hold `vip`.
fn holders(lab: &Lab, vip: IpAddr) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for n in &lab.nodes {
        if n.has_addr(vip)? {
            out.push(usize::from(n.index));
        }
    }
    Ok(out)
}

fn wait_holders(lab: &Lab, vip: IpAddr, want: &[usize], timeout: Duration) -> Result<Duration> {
    wait_for(
        &format!("{vip} on exactly node(s) {want:?}"),
        timeout,
        || Ok(holders(lab, vip)? == want),
    )
}

/// Replies the client's prober of `vip` has logged after wall-clock `after` (read while it runs).
fn replies_after(lab: &Lab, vip: IpAddr, after: f64) -> usize {
    let name = format!("prober-{}.log", vip.to_string().replace([':', '.'], "_"));
    std::fs::read_to_string(lab.dir.join(name))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse::<f64>().ok())
        .filter(|t| *t > after)
        .count()
}

fn wait_replies(lab: &Lab, vip: IpAddr, after: f64) -> Result<()> {
    wait_for(
        "the client's pings to be answered",
        FAILOVER_TIMEOUT,
        || Ok(replies_after(lab, vip, after) > 0),
    )
    .map(drop)
}

/// Stops daemons: SIGTERM to all at once, then each is reaped (SIGKILL after 2 s, see Daemon).
fn stop_all(daemons: Vec<Daemon>) {
    for d in &daemons {
        let _ = d.signal(libc::SIGTERM);
    }
    drop(daemons);
}

/// Removes `vip` from any node that still holds it (a daemon killed before it cleaned up);
/// returns the nodes it was removed from.
fn scrub(lab: &Lab, vips: &[String]) -> Vec<usize> {
    let mut scrubbed = Vec::new();
    for n in &lab.nodes {
        let Ok(addrs) = n.addrs() else { continue };
        for vip in vips {
            let addr: Option<IpAddr> = vip.split('/').next().and_then(|a| a.parse().ok());
            if addr.is_some_and(|a| addrs.contains(&a)) {
                let _ = n.run("ip", &["addr", "del", vip, "dev", IFACE]);
                scrubbed.push(usize::from(n.index));
            }
        }
    }
    scrubbed
}

/// The last lines each daemon logged, for a failed trial's error.
fn log_tails(daemons: &[Daemon]) -> String {
    let tails: Vec<String> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| {
            // A log written by two processes at once (a daemon of the previous trial that
            // outlived it) can hold megabytes of NULs: printable characters only, bounded.
            let log: String = d
                .log()
                .chars()
                .filter(|c| !c.is_control() || *c == '\n')
                .collect();
            // The agent's JSON lines as `LEVEL message`.
            let lines: Vec<String> = log
                .lines()
                .map(|l| match ha_tests::agent_log::parse(l) {
                    Some(e) => format!("{} {}", e.level, e.message()),
                    None => l.trim().to_owned(),
                })
                .collect();
            let tail: String = lines[lines.len().saturating_sub(4)..]
                .join(" | ")
                .chars()
                .take(600)
                .collect();
            format!("node {} log: {tail}", i + 1)
        })
        .collect();
    tails.join("; ")
}

/// Transitions in `log` after byte offset `from`.
fn transitions_since(imp: Impl, log: &str, from: usize) -> usize {
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| imp.is_transition(l))
        .count()
}

fn datapath_note(imp: Impl, log: &str) -> Option<String> {
    (imp == Impl::HaAgent).then(|| {
        // "ha-agent running: N instance(s), datapath xdp|socket"
        let dp = if log.contains("datapath xdp") {
            "xdp"
        } else if log.contains("datapath socket") {
            "socket"
        } else {
            "not logged"
        };
        format!("datapath: {dp}")
    })
}

/// `ip -ts monitor address` on a node: when an address appeared, to the microsecond.
struct AddrWatch {
    daemon: Daemon,
}

impl AddrWatch {
    fn start(node: &Node, dir: &Path, tag: &str) -> Result<AddrWatch> {
        // UTC, so the timestamps convert to epoch seconds without a time zone database.
        let daemon = node.spawn(
            tag,
            dir,
            "env",
            &["TZ=UTC", "ip", "-ts", "monitor", "address", "dev", IFACE],
        )?;
        // `ip monitor` subscribes at once; give it a moment to be scheduled.
        std::thread::sleep(Duration::from_millis(50));
        Ok(AddrWatch { daemon })
    }

    /// When `addr` was first added (epoch seconds), if it was.
    fn added(&self, addr: IpAddr) -> Option<f64> {
        let needle = format!(" {addr}/");
        self.daemon
            .log()
            .lines()
            .filter(|l| !l.contains("Deleted"))
            .find(|l| l.contains(&needle))
            .and_then(parse_monitor_ts)
    }
}

/// `[2026-11-22T03:36:02.803177] …` (UTC) → epoch seconds.
fn parse_monitor_ts(line: &str) -> Option<f64> {
    ha_tests::utc_epoch(line.strip_prefix('[')?.split(']').next()?)
}

/// The failover scenarios' lab and configurations.
struct Failover<'a> {
    scenario: Scenario,
    lab: &'a Lab,
    conf1: String,
    conf2: String,
    /// tracked: the file whose presence makes the check pass, and where it records its first
    /// failure.
    flag: PathBuf,
    failed_at: PathBuf,
    flood_bin: &'a Path,
}

impl<'a> Failover<'a> {
    fn new(scenario: Scenario, lab: &'a Lab, flood_bin: &'a Path) -> Result<Failover<'a>> {
        let flag = lab.dir.join("check-up");
        let failed_at = lab.dir.join("check-failed-at");
        let vip = format!("{VIP}/24");
        let (scripts, track) = if scenario == Scenario::Tracked {
            // Records the wall-clock time of its first failure, then keeps failing.
            let script = lab.write_file(
                "check.sh",
                &format!(
                    "#!/bin/sh\n[ -e {flag} ] && exit 0\nif [ ! -e {at} ]; then\n    \
                     date +%s.%N > {at}.tmp && mv {at}.tmp {at}\nfi\nexit 1\n",
                    flag = flag.display(),
                    at = failed_at.display()
                ),
            )?;
            (
                format!(
                    "vrrp_script chk_bench {{\n    script \"/bin/sh {}\"\n    interval 1\n    \
                     fall 1\n    rise 1\n}}\n",
                    script.display()
                ),
                "    track_script {\n        chk_bench weight -60\n    }\n",
            )
        } else {
            (String::new(), "")
        };
        Ok(Failover {
            scenario,
            lab,
            conf1: config(1, &instance(VRID, MASTER_PRIO, &vip, track), &scripts),
            conf2: config(2, &instance(VRID, BACKUP_PRIO, &vip, ""), ""),
            flag,
            failed_at,
            flood_bin,
        })
    }

    fn configs(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("node 1".to_owned(), self.conf1.clone()),
            ("node 2".to_owned(), self.conf2.clone()),
        ])
    }

    /// One trial: fresh daemons on nodes 1 and 2, node 1 master, the trigger, the measurements;
    /// the lab is put back as it was whatever happens.
    fn trial(&self, imp: Impl, i: usize, plan: &Plan) -> Result<Trial> {
        let lab = self.lab;
        if self.scenario == Scenario::Tracked {
            std::fs::write(&self.flag, "")?;
            let _ = std::fs::remove_file(&self.failed_at);
        }
        let mut daemons = vec![
            imp.start(lab, 1, &self.conf1)?,
            imp.start(lab, 2, &self.conf2)?,
        ];
        let mut flood: Option<Daemon> = None;
        let result = self
            .measure(imp, plan, &mut daemons, &mut flood)
            .map_err(|e| anyhow!("{e:#}; {}", log_tails(&daemons)));
        let mut notes = Vec::new();
        if let Some(n) = datapath_note(imp, &daemons[0].log()) {
            notes.push(n);
        }
        if let Some(f) = flood.take() {
            notes.extend(stop_flood(f));
        }
        stop_all(daemons);
        lab.restore(1)?;
        let scrubbed = scrub(lab, &[format!("{VIP}/24")]);
        if !scrubbed.is_empty() {
            notes.push(format!(
                "VIP left on node(s) {scrubbed:?} after the daemons stopped; removed"
            ));
        }
        let metrics = result?;
        Ok(Trial {
            daemon: imp,
            trial: i,
            metrics,
            notes,
            error: None,
        })
    }

    fn measure(
        &self,
        imp: Impl,
        plan: &Plan,
        daemons: &mut [Daemon],
        flood: &mut Option<Daemon>,
    ) -> Result<BTreeMap<String, f64>> {
        let lab = self.lab;
        let vip = IpAddr::V4(VIP);
        let mut m = BTreeMap::new();
        wait_holders(lab, vip, &[1], ELECTION_TIMEOUT).context("initial election")?;
        // Past the backup's Master_Down_Interval, and (tracked) past a first passing check.
        let settle = if self.scenario == Scenario::Tracked {
            Duration::from_millis(1500)
        } else {
            Duration::from_millis(300)
        };
        std::thread::sleep(settle);
        if holders(lab, vip)? != [1] {
            bail!(
                "the VIP left node 1 before the trigger: {:?}",
                holders(lab, vip)?
            );
        }

        if self.scenario == Scenario::Flood {
            *flood = Some(lab.node(3).spawn(
                "vrrp_flood",
                &lab.dir,
                &self.flood_bin.display().to_string(),
                &[
                    "--interface",
                    IFACE,
                    "--vrid",
                    &FOREIGN_VRID.to_string(),
                    "--src-ip",
                    "192.0.2.3",
                    "--duration",
                    "600",
                    "--object",
                    &crate::ebpf_object().display().to_string(),
                ],
            )?);
            // Let the flood reach steady state, then measure CPU over the window.
            std::thread::sleep(Duration::from_millis(500));
            let logs: Vec<usize> = daemons.iter().map(|d| d.log().len()).collect();
            // What the generator put into the LAN (its bridge port) and what reached each node.
            let port = &lab.node(3).port;
            let gen0 = ha_tests::lvs::rx_packets(&lab.lan, port)?;
            let rx0 = [rx_packets(lab.node(1))?, rx_packets(lab.node(2))?];
            let cpu = cpu_usage(&[lab.node(1), lab.node(2)], plan.cpu_window_s)?;
            let rx = [rx_packets(lab.node(1))?, rx_packets(lab.node(2))?];
            let kpps = |now: u64, then: u64| (now - then) as f64 / cpu.seconds / 1e3;
            let generated = kpps(ha_tests::lvs::rx_packets(&lab.lan, port)?, gen0);
            m.insert("master CPU (% of a core)".into(), cpu.percent[0]);
            m.insert("backup CPU (% of a core)".into(), cpu.percent[1]);
            m.insert("flood reaching master (kpps)".into(), kpps(rx[0], rx0[0]));
            m.insert("flood reaching backup (kpps)".into(), kpps(rx[1], rx0[1]));
            m.insert("flood generated (kpps)".into(), generated);
            let before_cut: usize = daemons
                .iter()
                .zip(&logs)
                .map(|(d, from)| transitions_since(imp, &d.log(), *from))
                .sum();
            m.insert("spurious transitions".into(), before_cut as f64);
            // A spurious takeover during the window is counted above; the cut needs node 1 as
            // master again.
            wait_holders(lab, vip, &[1], FAILOVER_TIMEOUT)
                .context("the VIP back on node 1 after the flood window")?;
        }

        let backup_log_from = daemons[1].log().len();
        let watch = AddrWatch::start(lab.node(2), &lab.dir, &format!("addrwatch-{}", imp.name()))?;
        let prober = lab.prober(vip)?;
        wait_replies(lab, vip, epoch_now())?;
        std::thread::sleep(Duration::from_millis(200));

        let trigger_at = match self.scenario {
            Scenario::Crash | Scenario::Flood => {
                let t = epoch_now();
                lab.cut(1)?;
                t
            }
            Scenario::Graceful => {
                let t = epoch_now();
                daemons[0].signal(libc::SIGTERM)?;
                t
            }
            Scenario::Tracked => {
                std::fs::remove_file(&self.flag)?;
                // keepalived 2.2.7 runs scripts on whole-second intervals: up to ~1 s to wait.
                wait_for("the first failed check", Duration::from_secs(5), || {
                    Ok(std::fs::read_to_string(&self.failed_at)
                        .is_ok_and(|s| s.trim().parse::<f64>().is_ok()))
                })?;
                std::fs::read_to_string(&self.failed_at)?.trim().parse()?
            }
            Scenario::PacketCost
            | Scenario::Scale
            | Scenario::Lvs
            | Scenario::Failback
            | Scenario::Reload
            | Scenario::Scale1k => {
                unreachable!("not a failover scenario")
            }
        };
        // Until the outage is over, wait by reading logs only: polling `ip addr` in the nodes
        // (a process and an rtnetlink dump each millisecond) competes for the CPU and the
        // kernel's RTNL lock with the daemon adding the VIP.
        wait_for(
            "the VIP added on node 2 (ip monitor)",
            FAILOVER_TIMEOUT,
            || Ok(watch.added(vip).is_some()),
        )
        .context("failover to node 2")?;
        wait_replies(lab, vip, epoch_now())?;
        wait_holders(lab, vip, &[2], FAILOVER_TIMEOUT).context("failover to node 2")?;
        std::thread::sleep(Duration::from_millis(100));
        let report = prober.stop()?;
        let added = watch.added(vip);
        drop(watch);

        if report.replies_after(trigger_at) == 0 {
            bail!("no reply from the VIP after the trigger");
        }
        m.insert(
            "outage (ms)".into(),
            report.longest_gap().as_secs_f64() * 1e3,
        );
        if matches!(self.scenario, Scenario::Graceful | Scenario::Tracked) {
            let added = added.context("ip monitor did not see the VIP added on node 2")?;
            let label = if self.scenario == Scenario::Tracked {
                "takeover after first failed check (ms)"
            } else {
                "takeover after SIGTERM (ms)"
            };
            m.insert(label.into(), (added - trigger_at) * 1e3);
        }
        if self.scenario == Scenario::Graceful {
            let (_, lost) = failback::losses(&report, trigger_at);
            m.insert("lost probes".into(), f64::from(lost));
        }
        if self.scenario == Scenario::Flood {
            let after = transitions_since(imp, &daemons[1].log(), backup_log_from);
            *m.entry("spurious transitions".into()).or_default() += after.saturating_sub(1) as f64;
        }
        Ok(m)
    }
}

/// Stops the flood generator and reads what it reports.
fn stop_flood(mut f: Daemon) -> Vec<String> {
    let _ = f.signal(libc::SIGTERM);
    let _ = f.wait_timeout(Duration::from_secs(5));
    let log = f.log();
    // The generator says so when live frames could not load: never a silent fallback.
    let fallback = log.lines().find(|l| l.starts_with("vrrp_flood: FALLBACK"));
    match FloodReport::parse(&log) {
        Some(r) => [format!(
            "flood ({}): {} frames in {:.1} s = {:.0} kpps sent ({} refusals: peer backlog full)",
            r.method.name(),
            r.sent,
            r.elapsed.as_secs_f64(),
            r.pps() / 1e3,
            r.refusals
        )]
        .into_iter()
        .chain(fallback.map(|l| format!("**{l}**")))
        .collect(),
        None => vec![format!(
            "flood generator printed no report: {}",
            f.log().lines().last().unwrap_or_default()
        )],
    }
}

fn rx_packets(node: &Node) -> Result<u64> {
    let s = node.run(
        "cat",
        &[&format!("/sys/class/net/{IFACE}/statistics/rx_packets")],
    )?;
    Ok(s.trim().parse()?)
}

/// CPU over a window, per namespace: percent of one core (user + system, and each apart), and
/// RSS at the end.
struct CpuUsage {
    percent: Vec<f64>,
    user: Vec<f64>,
    system: Vec<f64>,
    rss_mb: Vec<f64>,
    seconds: f64,
}

/// Pids of the processes in namespace `ns`.
fn ns_pids(ns: &str) -> Result<Vec<i32>> {
    let out = ha_tests::run(Command::new("ip").args(["netns", "pids", ns]))?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// utime and stime of a process (all its threads, live and exited), in clock ticks.
fn proc_ticks(pid: i32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

fn proc_rss_kb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Over `window_s`: CPU (total, user, system) and RSS of nodes 1 (master) and 2 (backup) as
/// metrics `master …{suffix}` / `backup …{suffix}`, and the transitions the daemons logged.
fn window(
    lab: &Lab,
    imp: Impl,
    daemons: &[Daemon],
    window_s: f64,
    suffix: &str,
) -> Result<(BTreeMap<String, f64>, usize)> {
    let from: Vec<usize> = daemons.iter().map(|d| d.log().len()).collect();
    let cpu = cpu_usage(&[lab.node(1), lab.node(2)], window_s)?;
    let moved = daemons
        .iter()
        .zip(&from)
        .map(|(d, from)| transitions_since(imp, &d.log(), *from))
        .sum();
    let mut m = BTreeMap::new();
    for (i, role) in ["master", "backup"].into_iter().enumerate() {
        m.insert(format!("{role} CPU (% of a core){suffix}"), cpu.percent[i]);
        m.insert(
            format!("{role} CPU user (% of a core){suffix}"),
            cpu.user[i],
        );
        m.insert(
            format!("{role} CPU system (% of a core){suffix}"),
            cpu.system[i],
        );
        m.insert(format!("{role} RSS (MB){suffix}"), cpu.rss_mb[i]);
    }
    Ok((m, moved))
}

fn cpu_usage(nodes: &[&Node], window_s: f64) -> Result<CpuUsage> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let pids: Vec<Vec<i32>> = nodes
        .iter()
        .map(|n| ns_pids(&n.ns))
        .collect::<Result<_>>()?;
    let sample = || -> Vec<BTreeMap<i32, (u64, u64)>> {
        pids.iter()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| Some((*p, proc_ticks(*p)?)))
                    .collect()
            })
            .collect()
    };
    let t0 = Instant::now();
    let before = sample();
    std::thread::sleep(Duration::from_secs_f64(window_s));
    let after = sample();
    let seconds = t0.elapsed().as_secs_f64();
    let mut percent = Vec::new();
    let (mut user, mut system) = (Vec::new(), Vec::new());
    let mut rss_mb = Vec::new();
    let pct = |ticks: u64| ticks as f64 / hz / seconds * 100.0;
    for (b, a) in before.iter().zip(&after) {
        let (u, s) = a
            .iter()
            .filter_map(|(p, (u, s))| {
                let (u0, s0) = b.get(p)?;
                Some((u.saturating_sub(*u0), s.saturating_sub(*s0)))
            })
            .fold((0, 0), |(tu, ts), (u, s)| (tu + u, ts + s));
        percent.push(pct(u + s));
        user.push(pct(u));
        system.push(pct(s));
        let rss: u64 = a.keys().filter_map(|p| proc_rss_kb(*p)).sum();
        rss_mb.push(rss as f64 / 1024.0);
    }
    if pids.iter().any(Vec::is_empty) {
        bail!("no process in a node's namespace to measure");
    }
    Ok(CpuUsage {
        percent,
        user,
        system,
        rss_mb,
        seconds,
    })
}

/// The VIP of instance `vrid` in the scale scenario: documentation addresses, /32.
fn scale_vip(vrid: u8) -> String {
    if vrid < 255 {
        format!("198.51.100.{vrid}/32")
    } else {
        "203.0.113.255/32".to_owned()
    }
}

const SCALE_SIZES: [u8; 3] = [1, 16, 255];

fn scale(plan: &Plan, out: &mut ScenarioResult) -> Result<()> {
    let lab = Lab::new("bsca", 2)?;
    let confs = |n: u8| {
        let inst = |prio| {
            (1..=n)
                .map(|v| instance(v, prio, &scale_vip(v), ""))
                .collect::<String>()
        };
        (
            config(1, &inst(MASTER_PRIO), ""),
            config(2, &inst(BACKUP_PRIO), ""),
        )
    };
    // The 16-VRID files show the shape; the others differ only in the number of instances.
    let (c1, c2) = confs(16);
    out.configs = BTreeMap::from([
        ("node 1 (16 VRIDs)".to_owned(), c1),
        ("node 2 (16 VRIDs)".to_owned(), c2),
    ]);
    // Every size with the bridge's netfilter hooks off (the lab's default), then 255 VRIDs with
    // them on, as a distribution leaves them where br_netfilter is loaded.
    let nf = ha_tests::bridge_netfilter_available();
    let runs = SCALE_SIZES
        .iter()
        .map(|n| (*n, false))
        .chain(nf.then_some((255, true)));
    for (n, nf_on) in runs {
        if nf {
            lab.bridge_netfilter(nf_on)?;
        }
        let label = format!("{n} VRIDs{}", if nf_on { BRIDGE_NF_ON } else { "" });
        let (c1, c2) = confs(n);
        let vips: Vec<String> = (1..=n).map(scale_vip).collect();
        let mut trials = Vec::new();
        alternate(plan.scale_trials, Scenario::Scale, &mut trials, |imp, i| {
            let daemons = vec![imp.start(&lab, 1, &c1)?, imp.start(&lab, 2, &c2)?];
            let result = scale_measure(&lab, imp, &daemons, &label, &vips, plan)
                .map_err(|e| anyhow!("{e:#}; {}", log_tails(&daemons)));
            let mut notes: Vec<String> =
                datapath_note(imp, &daemons[0].log()).into_iter().collect();
            let metrics = result.map(|(m, n)| {
                notes.extend(n);
                m
            });
            stop_all(daemons);
            let scrubbed = scrub(&lab, &vips);
            if !scrubbed.is_empty() {
                notes.push(format!(
                    "VIPs left on node(s) {scrubbed:?} after the daemons stopped; removed"
                ));
            }
            Ok(Trial {
                daemon: imp,
                trial: i,
                metrics: metrics?,
                notes,
                error: None,
            })
        });
        out.trials.extend(trials);
    }
    Ok(())
}

/// The suffix of the metrics measured with the bridge's netfilter hooks on.
const BRIDGE_NF_ON: &str = ", bridge netfilter on";

/// CPU and RSS of both nodes over the window, once node 1 holds every VIP. A pair that never
/// settles (the master cannot send in time, backups take over) is measured anyway: that is the
/// load it puts on the machine, and the transitions during the window say how unstable it was.
fn scale_measure(
    lab: &Lab,
    imp: Impl,
    daemons: &[Daemon],
    label: &str,
    vips: &[String],
    plan: &Plan,
) -> Result<(BTreeMap<String, f64>, Vec<String>)> {
    let n = vips.len();
    let count_on = |node: usize| -> Result<usize> {
        let addrs = lab.node(node).addrs()?;
        Ok(vips
            .iter()
            .filter_map(|v| v.split('/').next()?.parse::<IpAddr>().ok())
            .filter(|a| addrs.contains(a))
            .count())
    };
    let mut notes = Vec::new();
    let settled = wait_for(
        &format!("node 1 to hold all {n} VIPs ({label})"),
        ELECTION_TIMEOUT,
        || Ok(count_on(1)? == vips.len() && count_on(2)? == 0),
    );
    if settled.is_err() {
        notes.push(format!(
            "{label}: not settled after {ELECTION_TIMEOUT:?} (node 1 held {}, node 2 {} of {n} \
             VIPs); measured anyway",
            count_on(1)?,
            count_on(2)?
        ));
    }
    // Past every backup's Master_Down_Interval.
    std::thread::sleep(Duration::from_millis(500));
    let (mut m, moved) = window(lab, imp, daemons, plan.cpu_window_s, &format!(", {label}"))?;
    m.insert(
        format!("transitions during the window, {label}"),
        moved as f64,
    );
    Ok((m, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_timestamps_are_utc_epoch_seconds() {
        let line = "[2026-11-22T03:36:02.803177] 3: d0    inet 192.0.2.200/24 scope global d0";
        // `date -u -d 2026-11-22T03:36:02 +%s`
        let t = parse_monitor_ts(line).unwrap();
        assert!((t - 1_795_318_562.803177).abs() < 1e-6, "{t}");
        assert_eq!(ha_tests::days_from_civil(1970, 1, 1), 0);
        assert_eq!(ha_tests::days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn transitions_of_both_daemons() {
        let line = |level: &str, fields: &str| {
            format!(
                "{{\"timestamp\":\"2026-11-22T03:39:00.5Z\",\"level\":\"{level}\",\"fields\":{{{fields}}}}}\n"
            )
        };
        let agent = line(
            "INFO",
            r#""message":"BACKUP -> MASTER (x)","instance":"VI_51","event":"transition","from":"BACKUP","to":"MASTER""#,
        ) + &line(
            "INFO",
            r#""message":"sync group G: BACKUP -> MASTER","group":"G","event":"group_transition","from":"BACKUP","to":"MASTER""#,
        ) + &line(
            "WARN",
            r#""message":"MASTER -> FAULT (y)","instance":"VI_51","event":"transition","from":"MASTER","to":"FAULT""#,
        ) + &line("DEBUG", r#""message":"something -> MASTER (else)""#)
            + "2026 INFO BACKUP -> MASTER (a text line) instance=VI_51\n";
        assert_eq!(transitions_since(Impl::HaAgent, &agent, 0), 2);
        let ka = "Sun Nov 22 (VI_51) Entering BACKUP STATE (init)\n\
                  Sun Nov 22 (VI_51) received lower priority advert\n\
                  Sun Nov 22 (VI_51) Entering MASTER STATE\n";
        assert_eq!(transitions_since(Impl::Keepalived, ka, 0), 2);
        let from = ka.find("received").unwrap();
        assert_eq!(transitions_since(Impl::Keepalived, ka, from), 1);
    }

    #[test]
    fn proc_stat_and_status_of_this_process() {
        let pid = std::process::id() as i32;
        assert!(proc_ticks(pid).is_some());
        assert!(proc_rss_kb(pid).is_some_and(|kb| kb > 0));
    }

    #[test]
    fn configs_are_keepalived_syntax_with_one_vip_per_vrid() {
        let c = config(1, &instance(7, 150, &scale_vip(7), ""), "");
        assert!(c.contains("virtual_router_id 7\n"));
        assert!(c.contains("advert_int 0.01\n"));
        assert!(c.contains("198.51.100.7/32"));
        assert_eq!(scale_vip(255), "203.0.113.255/32");
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }
}

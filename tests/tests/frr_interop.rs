//! ha-agent and FRR 8.4's vrrpd (Debian's `frr`: zebra + vrrpd) as peers in the same virtual
//! router: VRRPv3 over IPv4, VRRPv3 over IPv6, VRRPv2 over IPv4; ha-agent master with FRR
//! backup and FRR master with ha-agent backup (priority decides), on the socket datapath and on
//! the XDP datapath. Node 1 runs ha-agent, node 2 runs FRR.
//!
//! FRR is not keepalived on the wire: it sends from a macvlan carrying the virtual MAC (source
//! MAC 00:00:5e:00:0x:VRID), over IPv6 from that macvlan's own link-local address; it keeps
//! intervals in centiseconds and VRRPv2 without authentication. vrrpd adds no address itself
//! (an operator puts the VIPs on the macvlan), so "FRR holds the VIP" here is vrrpd's state
//! `Master` (`show vrrp json`), and "ha-agent holds it" is the VIP on node 1's eth0.
//!
//! Each case:
//! 1. Both start; the higher priority is master and the other stays backup past its
//!    Master_Down_Interval (it accepts the master's adverts), exactly one master all along. The
//!    backup sees the master as it is: FRR learned the agent's interval in its units, the agent
//!    names FRR's priority.
//! 2. The master goes silent and the backup takes over within its Master_Down_Interval
//!    (learned from the master's adverts, so interval units agree); the master returns and
//!    preempts (each accepts the other's higher-priority adverts). ha-agent goes silent by
//!    losing its link (FAULT). FRR is killed (SIGKILL) and started again instead: vrrpd 8.4
//!    stays `Master` when its interface loses carrier (seen in this lab: no transition logged,
//!    `show vrrp json` says Master while the bridge port is down), so a cut-off FRR would
//!    count as a second master for as long as it is cut off.
//! 3. The master is stopped (SIGTERM): it resigns with a priority 0 advert and the backup takes
//!    over after its skew time.
//!
//! And: a VRRPv3 backup configured at 1 s behind a 0.1 s master, each way, learns the master's
//! interval (takes over in about 0.36 s, not 3.6 s); FRR's one virtual router with an IPv4 and
//! an IPv6 address against two ha-agent instances of that VRID; a client of the VIP (on FRR's
//! macvlan, as an operator puts it) follows it from FRR to ha-agent and back; at equal priority
//! after a split LAN joins, the higher primary address stays master (IPv4, and IPv6 where FRR's
//! is its macvlan's random link-local, so either may win).
//!
//! What FRR does that the agent must live with: when vrrpd preempts a lower-priority ha-agent
//! master, its gratuitous ARP / unsolicited NA reaches the agent before the advert it acts on
//! (vrrpd sends its first advert as master before zebra lifts protodown on the macvlan, so that
//! advert is lost; the next comes an interval later). The agent reports the address conflict of
//! that moment (a WARN), rightly; it is the only warning allowed.

mod common;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use common::{Kind, Scene, global_defs, partition};
use ha_tests::frr::{Frr, FrrRouter};

const VRID: u8 = 51;
const HIGH: u8 = 200;
const LOW: u8 = 100;
const AGENT: usize = 1;
const FRR: usize = 2;
/// What the agent logs when another host announces its VIP while it is master.
const ADDRESS_CONFLICT: &str = "address conflict: VIP";

/// The flavours of VRRP both speak (FRR has no authentication, so VRRPv2 runs without it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    V3Ipv4,
    V3Ipv6,
    V2Ipv4,
}

impl Flavour {
    fn version(self) -> u8 {
        match self {
            Flavour::V2Ipv4 => 2,
            Flavour::V3Ipv4 | Flavour::V3Ipv6 => 3,
        }
    }

    /// VRRPv2 has whole seconds only; v3 runs at 0.1 s.
    fn advert_int(self) -> Duration {
        match self {
            Flavour::V2Ipv4 => Duration::from_secs(1),
            Flavour::V3Ipv4 | Flavour::V3Ipv6 => Duration::from_millis(100),
        }
    }

    /// vrrpd's key in `show vrrp json`.
    fn family(self) -> &'static str {
        match self {
            Flavour::V3Ipv6 => "v6",
            Flavour::V2Ipv4 | Flavour::V3Ipv4 => "v4",
        }
    }

    fn vip(self) -> IpAddr {
        match self {
            Flavour::V3Ipv6 => "2001:db8::200".parse().unwrap(),
            Flavour::V2Ipv4 | Flavour::V3Ipv4 => "192.0.2.200".parse().unwrap(),
        }
    }

    /// Master_Down_Interval of a backup of `priority` (RFC 5798 §6.1; RFC 3768 §6.1 in seconds).
    fn master_down(self, priority: u8) -> Duration {
        let ai = self.advert_int();
        3 * ai + ai * (256 - u32::from(priority)) / 256
    }

    /// ha-agent's keepalived.conf at `priority`.
    fn agent_conf(self, priority: u8) -> String {
        global_defs("frr") + &self.agent_instance("VI_1", priority)
    }

    /// ha-agent's `vrrp_instance NAME` at `priority`.
    fn agent_instance(self, name: &str, priority: u8) -> String {
        let (prefix, advert_int) = match self {
            Flavour::V3Ipv6 => (64, "0.1"),
            Flavour::V3Ipv4 => (24, "0.1"),
            Flavour::V2Ipv4 => (24, "1"),
        };
        format!(
            "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id {VRID}\n    priority {priority}\n    version {}\n    \
             advert_int {advert_int}\n    virtual_ipaddress {{\n        {}/{prefix}\n    \
             }}\n}}\n",
            self.version(),
            self.vip()
        )
    }

    /// vrrpd's router at `priority`.
    fn frr_router(self, priority: u8) -> FrrRouter {
        FrrRouter {
            vrid: VRID,
            version: self.version(),
            priority,
            interval_ms: self.advert_int().as_millis() as u32,
            vips: vec![self.vip()],
        }
    }
}

/// Node 1's agent and node 2's vrrpd in one lab.
struct Pair {
    flavour: Flavour,
    // Dropped before the scene: vrrpd and zebra stop before the namespaces go.
    frr: Frr,
    s: Scene,
}

impl Pair {
    /// Fails with the scene's logs (the agent's) and FRR's.
    fn fail(&self, msg: &str) -> ! {
        self.s.fail(&format!("{msg}\n{}", self.frr.logs()))
    }

    /// The nodes that are master: node 1 if the agent holds the VIP, node 2 if vrrpd says Master.
    fn masters(&self) -> Vec<usize> {
        self.masters_of(self.flavour)
    }

    /// [`Pair::masters`] of `flavour`'s VIP and address family.
    fn masters_of(&self, flavour: Flavour) -> Vec<usize> {
        let mut out = Vec::new();
        if self.s.holders(flavour.vip()) == [AGENT] {
            out.push(AGENT);
        }
        if self.frr.is_master(VRID, flavour.family()) {
            out.push(FRR);
        }
        out
    }

    /// Polls until `cond` holds; fails with every log after `timeout`. Returns the time taken.
    fn wait(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&Pair) -> bool) -> Duration {
        let start = Instant::now();
        while !cond(self) {
            if start.elapsed() >= timeout {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    }

    /// Checks `cond` every 10 ms for `duration`; fails with every log the first time it is false.
    fn hold(&self, what: &str, duration: Duration, mut cond: impl FnMut(&Pair) -> bool) {
        let start = Instant::now();
        while start.elapsed() < duration {
            if !cond(self) {
                self.fail(&format!(
                    "{what} stopped holding after {:?} (should hold for {duration:?})",
                    start.elapsed()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Silences the master, node 1's agent if `agent_master` (its link is cut: FAULT) or else
    /// node 2's vrrpd (SIGKILL: it stays `Master` on a link without carrier).
    fn silence_master(&mut self, agent_master: bool) {
        if agent_master {
            self.s.lab.cut(AGENT).unwrap();
        } else {
            self.frr.signal_vrrpd(libc::SIGKILL).unwrap();
            if !self.frr.reap_vrrpd(Duration::from_secs(5)).unwrap() {
                self.fail("vrrpd did not die of SIGKILL");
            }
        }
    }

    /// Every instance of node 1's agent became master at most `md` (+ a scheduling margin)
    /// after the last advert it heard from the old master: its own measure
    /// (`last_takeover_seconds`), free of the test's polling.
    fn agent_took_over_within(&self, md: Duration) {
        // Its timers on a loaded 2-core machine; a misread interval is off by 10× or more.
        let margin = Duration::from_millis(500);
        for inst in self.s.report(AGENT).instances {
            let took = inst.last_takeover_seconds.map(Duration::from_secs_f64);
            if inst.state != "MASTER" || took.is_none_or(|t| t > md + margin) {
                self.fail(&format!(
                    "ha-agent's {} became {} {took:?} after the master's last advert: not \
                     within the Master_Down_Interval {md:?} (+{margin:?})",
                    inst.name, inst.state
                ));
            }
        }
    }

    /// Waits until exactly `masters` are master; returns the time taken.
    fn wait_masters(&self, masters: &[usize], timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let now = self.masters();
            if now == masters {
                return start.elapsed();
            }
            if start.elapsed() >= timeout {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting for node(s) {masters:?} to be master \
                     (now {now:?}; node 1 ha-agent, node 2 FRR)"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until FRR, master, is heard by the agent: vrrpd says Master before it can send
    /// (over IPv6 its macvlan has no link-local for a moment: "Failed to find address to bind"),
    /// and the agent, hearing nothing, rightly takes over until the first advert arrives. The
    /// one-master hold counts from FRR's first advert, then.
    fn wait_frr_advertising(&self, timeout: Duration) {
        self.s
            .wait("the agent to hear FRR's adverts", timeout, |s| {
                s.status(AGENT).is_some_and(|r| {
                    r.instances
                        .first()
                        .and_then(|i| i.master.as_ref())
                        .is_some_and(|m| !m.is_self)
                })
            });
        self.wait_masters(&[FRR], timeout);
    }

    /// Asserts that exactly `masters` are master for all of `duration`.
    fn hold_masters(&self, masters: &[usize], duration: Duration) {
        let start = Instant::now();
        loop {
            let now = self.masters();
            if now != masters {
                self.fail(&format!(
                    "node(s) {masters:?} stopped being the only master after {:?} (now {now:?}; \
                     should hold for {duration:?}; node 1 ha-agent, node 2 FRR)",
                    start.elapsed()
                ));
            }
            if start.elapsed() >= duration {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Node 1 runs ha-agent (`agent`), node 2 FRR; the agent is master (priority 200 against 100)
/// when `agent_master`, else FRR is. See the module doc for the steps.
fn interop(tag: &str, flavour: Flavour, agent: Kind, agent_master: bool) {
    let (agent_prio, frr_prio) = if agent_master {
        (HIGH, LOW)
    } else {
        (LOW, HIGH)
    };
    let (master, backup) = if agent_master {
        (AGENT, FRR)
    } else {
        (FRR, AGENT)
    };
    let md_backup = flavour.master_down(LOW);
    let ai = flavour.advert_int();
    // Generous: a loaded 2-core machine, link detection, netlink, vtysh.
    let timeout = 5 * md_backup + Duration::from_secs(5);
    // Seen from the test (polling vtysh and `ip addr`, spawning processes, link detection) on
    // a loaded 2-core machine, a coarse check; the precise ones are the backup's own: FRR's
    // learned Master_Down_Interval (check_peer_view) and the agent's takeover measure.
    let slack = Duration::from_secs(5);

    let mut s = Scene::new(tag, 2);
    s.start(AGENT, agent, &flavour.agent_conf(agent_prio));
    let frr = Frr::start(s.lab.node(FRR), &s.lab.dir, &[flavour.frr_router(frr_prio)])
        .unwrap_or_else(|e| s.fail(&format!("starting FRR on node {FRR}: {e:#}")));
    let mut p = Pair { flavour, frr, s };

    // 1. The higher priority is master, the other stays backup past its Master_Down_Interval.
    p.wait_masters(&[master], timeout);
    if !agent_master {
        p.wait_frr_advertising(timeout);
    }
    p.hold_masters(&[master], (md_backup * 3 / 2).max(5 * ai));
    check_peer_view(&p, agent_master);

    // 2. Failover to the backup: the master goes silent (the agent's link is cut: FAULT;
    // FRR's vrrpd is killed: vrrpd stays Master on a link without carrier, see the module doc).
    let silenced = Instant::now();
    p.silence_master(agent_master);
    p.wait_masters(&[backup], timeout);
    let takeover = silenced.elapsed();
    println!(
        "{flavour:?}: backup (node {backup}) master {takeover:?} after the master went silent"
    );
    if takeover > md_backup + slack {
        p.fail(&format!(
            "node {backup} took over {takeover:?} after node {master} went silent: not within \
             its Master_Down_Interval {md_backup:?} (+{slack:?})"
        ));
    }
    if !agent_master {
        p.agent_took_over_within(md_backup);
    }
    // ... and back: the higher priority preempts when it returns.
    if agent_master {
        p.s.lab.restore(AGENT).unwrap();
    } else {
        p.frr
            .start_vrrpd()
            .unwrap_or_else(|e| p.s.fail(&format!("restarting vrrpd: {e:#}")));
    }
    p.wait_masters(&[master], timeout);
    if !agent_master {
        p.wait_frr_advertising(timeout);
    }
    p.hold_masters(&[master], (md_backup * 3 / 2).max(5 * ai));

    // The agent rejected none of FRR's adverts (its counters, XDP's on that datapath) and warned of nothing but address conflicts:
    // FRR preempting a lower-priority ha-agent master (at start and on its return) announces
    // the VIP (GARP / unsolicited NA) while the agent is still master, which it rightly reports.
    p.s.assert_clean_logs_except(&[ADDRESS_CONFLICT]);
    let report = p.s.report(AGENT);
    let inst = &report.instances[0];
    if inst.adverts.received == 0
        || !inst.adverts.rejected.is_empty()
        || !report.rejected.is_empty()
    {
        p.fail(&format!(
            "ha-agent and FRR's adverts: received {}, rejected {:?}, rejected by the datapath {:?}",
            inst.adverts.received, inst.adverts.rejected, report.rejected
        ));
    }

    // 3. The master stops.
    let stopped = Instant::now();
    if agent_master {
        p.s.terminate(AGENT);
    } else {
        p.frr.signal_vrrpd(libc::SIGTERM).unwrap();
    }
    p.wait_masters(&[backup], timeout);
    let takeover = stopped.elapsed();
    println!("{flavour:?}: backup (node {backup}) master {takeover:?} after the master stopped");
    if takeover > md_backup + slack {
        p.fail(&format!(
            "node {backup} took over {takeover:?} after node {master} was stopped: not within \
             its Master_Down_Interval {md_backup:?} (+{slack:?})"
        ));
    }
    if !agent_master {
        p.agent_took_over_within(md_backup);
    }
    p.hold_masters(&[backup], 3 * ai);
    if !agent_master {
        let resigned = "BACKUP -> MASTER (skew time expired after the master resigned (priority 0)";
        if !p.s.log(AGENT).contains(resigned) {
            p.fail("ha-agent did not take over on vrrpd's priority 0 advert");
        }
    }
    let Pair { mut frr, mut s, .. } = p;
    if agent_master {
        s.reap(AGENT, Duration::from_secs(5));
    } else if !frr.reap_vrrpd(Duration::from_secs(5)).unwrap() {
        s.fail(&format!("vrrpd did not exit on SIGTERM\n{}", frr.logs()));
    }
    s.assert_clean_logs_except(&[ADDRESS_CONFLICT]);
}

/// Each side sees the other as the peer it is: ha-agent as backup names FRR's address and
/// priority as the master's; FRR as backup learned the agent's advert interval in its units.
fn check_peer_view(p: &Pair, agent_master: bool) {
    let family = p.flavour.family();
    if agent_master {
        let router = p.frr.router(VRID, family).unwrap_or_default();
        let learned = router["masterAdverInterval"].as_u64();
        let want = p.flavour.advert_int().as_millis() as u64;
        // FRR's Master_Down_Interval from the learned interval, in ms (whole centiseconds).
        let down = router["masterDownInterval"].as_u64().unwrap_or(0);
        let md = p.flavour.master_down(LOW).as_millis() as u64;
        if learned != Some(want)
            || !(3 * want..=md + 10).contains(&down)
            || router["stats"]["adverRx"].as_u64().unwrap_or(0) == 0
        {
            p.fail(&format!(
                "FRR's view of the ha-agent master: masterAdverInterval {learned:?} (want \
                 {want} ms), masterDownInterval {down} ms (want about {md}), adverRx {}",
                router["stats"]["adverRx"]
            ));
        }
    } else {
        let report = p.s.report(AGENT);
        let inst = &report.instances[0];
        let heard = inst
            .master
            .as_ref()
            .is_some_and(|m| !m.is_self && m.priority == HIGH);
        if inst.state != "BACKUP" || !heard || inst.adverts.received == 0 {
            p.fail(&format!(
                "ha-agent's view of the FRR master: state {}, master {:?}, adverts received {}, \
                 rejected {:?}",
                inst.state, inst.master, inst.adverts.received, inst.adverts.rejected
            ));
        }
    }
}

/// A VRRPv3 backup configured with a 1 s interval behind a master advertising every 0.1 s
/// learns Master_Adver_Interval from the master's adverts (RFC 5798 §6.4.2), whichever of
/// ha-agent and FRR it is: it holds back past its own Master_Down_Interval (3.6 s) and takes
/// over about 3 × 0.1 s after the master goes silent, not 3 × 1 s. Centiseconds read as
/// anything else on either side shows here.
fn learns_master_adver_interval(tag: &str, agent: Kind, agent_master: bool) {
    let flavour = Flavour::V3Ipv4;
    let (master, backup) = if agent_master {
        (AGENT, FRR)
    } else {
        (FRR, AGENT)
    };
    let mut agent_conf = flavour.agent_conf(if agent_master { HIGH } else { LOW });
    let mut router = flavour.frr_router(if agent_master { LOW } else { HIGH });
    if agent_master {
        router.interval_ms = 1000;
    } else {
        agent_conf = agent_conf.replace("advert_int 0.1", "advert_int 1");
    }
    let mut s = Scene::new(tag, 2);
    s.start(AGENT, agent, &agent_conf);
    let frr = Frr::start(s.lab.node(FRR), &s.lab.dir, &[router])
        .unwrap_or_else(|e| s.fail(&format!("starting FRR on node {FRR}: {e:#}")));
    let mut p = Pair { flavour, frr, s };
    p.wait_masters(&[master], Duration::from_secs(15));
    // The backup's own Master_Down_Interval is 3.6 s: past it, it still holds back.
    p.hold_masters(&[master], Duration::from_secs(4));
    check_peer_view(&p, agent_master);
    let silenced = Instant::now();
    p.silence_master(agent_master);
    let takeover = p.wait_masters(&[backup], Duration::from_secs(10));
    println!("node {backup} took over {takeover:?} after the 0.1 s master went silent");
    if !agent_master {
        p.agent_took_over_within(flavour.master_down(LOW));
    }
    // The precise checks are the backup's own: FRR's Master_Down_Interval (check_peer_view)
    // and the agent's takeover measure; from the test's side, on a loaded machine, only a
    // coarse one.
    if takeover >= Duration::from_secs(10) {
        p.fail(&format!(
            "node {backup} took over {:?} after the master went silent: it did not learn the \
             master's advert interval (0.1 s; learned Master_Down_Interval ≈ 0.36 s, own 3.6 s)",
            silenced.elapsed()
        ));
    }
    p.s.assert_clean_logs_except(&[ADDRESS_CONFLICT]);
}

/// FRR's usual layout: one virtual router with an IPv4 and an IPv6 address, which vrrpd runs as
/// two routers of the same VRID (one per family, each from its own macvlan); ha-agent runs them
/// as two instances of that VRID on the XDP datapath (a slot per family). FRR is master of both;
/// killed, the agent takes both within the Master_Down_Interval; restarted, FRR takes both back.
#[test]
fn one_vrid_both_families_agent_xdp_backup_of_frr() {
    let (v4, v6) = (Flavour::V3Ipv4, Flavour::V3Ipv6);
    let conf =
        global_defs("frr") + &v4.agent_instance("VI_4", LOW) + &v6.agent_instance("VI_6", LOW);
    let mut router = v4.frr_router(HIGH);
    router.vips.push(v6.vip());
    let mut s = Scene::new("frdual", 2);
    s.start(AGENT, Kind::AgentXdp, &conf);
    let frr = Frr::start(s.lab.node(FRR), &s.lab.dir, &[router])
        .unwrap_or_else(|e| s.fail(&format!("starting FRR on node {FRR}: {e:#}")));
    let mut p = Pair {
        flavour: v4,
        frr,
        s,
    };
    let both = |masters: &'static [usize]| {
        move |p: &Pair| p.masters_of(v4) == masters && p.masters_of(v6) == masters
    };
    let md = v4.master_down(LOW);
    p.wait(
        "FRR master of both families",
        Duration::from_secs(15),
        both(&[FRR]),
    );
    p.hold("FRR the only master of both", md * 3, both(&[FRR]));
    let report = p.s.report(AGENT);
    for inst in &report.instances {
        let heard = inst
            .master
            .as_ref()
            .is_some_and(|m| !m.is_self && m.priority == HIGH);
        if inst.state != "BACKUP" || !heard || !inst.adverts.rejected.is_empty() {
            p.fail(&format!("ha-agent's {} behind FRR: {inst:?}", inst.name));
        }
    }

    p.silence_master(false);
    let takeover = p.wait(
        "ha-agent master of both",
        Duration::from_secs(10),
        both(&[AGENT]),
    );
    p.agent_took_over_within(md);
    if takeover > md + Duration::from_secs(5) {
        p.fail(&format!(
            "ha-agent took both over {takeover:?} after vrrpd was killed: not within the \
             Master_Down_Interval {md:?}"
        ));
    }
    p.frr
        .start_vrrpd()
        .unwrap_or_else(|e| p.s.fail(&format!("restarting vrrpd: {e:#}")));
    p.wait(
        "FRR master of both again",
        Duration::from_secs(15),
        both(&[FRR]),
    );
    p.hold("FRR the only master of both", md * 3, both(&[FRR]));
    if !p.s.report(AGENT).rejected.is_empty() {
        p.fail("the XDP datapath rejected adverts");
    }
    p.s.assert_clean_logs_except(&[ADDRESS_CONFLICT]);
}

/// A client of the VIP follows it between FRR and ha-agent: FRR (master, the VIP on its macvlan
/// as an operator puts it there) is stopped and the agent's gratuitous ARP moves the client's
/// neighbour entry from the virtual MAC to the agent's MAC; vrrpd restarts, preempts, and its
/// gratuitous ARP (from the virtual MAC) moves it back. The client's pings (every millisecond)
/// are answered again within a second each time.
#[test]
fn client_follows_the_vip_between_frr_and_agent_xdp() {
    let flavour = Flavour::V3Ipv4;
    let vip = flavour.vip();
    let IpAddr::V4(vip4) = vip else {
        unreachable!()
    };
    let mut s = Scene::new("frclient", 2);
    s.start(AGENT, Kind::AgentXdp, &flavour.agent_conf(LOW));
    let frr = Frr::start(s.lab.node(FRR), &s.lab.dir, &[flavour.frr_router(HIGH)])
        .unwrap_or_else(|e| s.fail(&format!("starting FRR on node {FRR}: {e:#}")));
    let mut p = Pair { flavour, frr, s };
    p.frr
        .add_vip(VRID, vip4)
        .unwrap_or_else(|e| p.s.fail(&format!("the VIP on FRR's macvlan: {e:#}")));
    let virtual_mac = format!("00:00:5e:00:01:{VRID:02x}");
    let agent_mac = p.s.lab.node(AGENT).mac().unwrap();
    let client = p.s.lab.client.clone();
    let client_mac = |p: &Pair| {
        client
            .neighbour_mac(vip)
            .unwrap_or_else(|e| p.fail(&format!("ip neigh: {e:#}")))
    };
    let timeout = Duration::from_secs(10);
    p.wait_masters(&[FRR], timeout);
    let prober = p.s.lab.prober(vip).unwrap();
    common::wait_for_replies(&p.s, vip, common::epoch_now(), Duration::from_secs(3));
    if client_mac(&p).as_deref() != Some(virtual_mac.as_str()) {
        p.fail(&format!(
            "the client reaches the VIP at {:?}, not FRR's virtual MAC",
            client_mac(&p)
        ));
    }

    p.frr.signal_vrrpd(libc::SIGTERM).unwrap();
    let stopped = common::epoch_now();
    p.wait_masters(&[AGENT], timeout);
    p.wait(
        "the client's entry for the VIP at the agent's MAC",
        timeout,
        |p| client_mac(p).as_deref() == Some(agent_mac.as_str()),
    );
    common::wait_for_replies(&p.s, vip, common::epoch_now(), Duration::from_secs(3));
    if !p.frr.reap_vrrpd(Duration::from_secs(5)).unwrap() {
        p.fail("vrrpd did not exit on SIGTERM");
    }

    p.frr
        .start_vrrpd()
        .unwrap_or_else(|e| p.s.fail(&format!("restarting vrrpd: {e:#}")));
    let restarted = common::epoch_now();
    p.wait_masters(&[FRR], timeout);
    p.wait(
        "the client's entry for the VIP at the virtual MAC",
        timeout,
        |p| client_mac(p).as_deref() == Some(virtual_mac.as_str()),
    );
    common::wait_for_replies(&p.s, vip, common::epoch_now(), Duration::from_secs(3));
    let report = prober.stop().unwrap();
    // The longest time between replies from the last one before the stop on.
    let times: Vec<f64> = report
        .reply_times
        .iter()
        .copied()
        .filter(|t| *t > stopped - 1.0)
        .collect();
    let outage = Duration::from_secs_f64(times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max));
    println!(
        "client outage over FRR -> ha-agent (SIGTERM) and ha-agent -> FRR (restart, {:.1} s \
         later): at most {outage:?}",
        restarted - stopped
    );
    if report.replies_after(restarted) == 0 || outage >= Duration::from_secs(1) {
        p.fail(&format!(
            "client outage {outage:?} over the two failovers: want < 1 s"
        ));
    }
    p.s.assert_clean_logs_except(&[ADDRESS_CONFLICT]);
}

/// ha-agent and FRR at the same priority, both master while the LAN is split (bridge ports
/// isolated, no carrier change): when it joins, the one with the lower primary address steps
/// down (RFC 5798 §6.4.3), as both compare it: over IPv4 FRR's 192.0.2.2 beats 192.0.2.1; over
/// IPv6 the greater of the agent's eth0 link-local and FRR's source, its macvlan's link-local.
fn equal_priority_higher_address_wins(tag: &str, flavour: Flavour, agent: Kind) {
    let mut s = Scene::new(tag, 2);
    partition(&s.lab, true);
    s.start(AGENT, agent, &flavour.agent_conf(LOW));
    let frr = Frr::start(s.lab.node(FRR), &s.lab.dir, &[flavour.frr_router(LOW)])
        .unwrap_or_else(|e| s.fail(&format!("starting FRR on node {FRR}: {e:#}")));
    let p = Pair { flavour, frr, s };
    let timeout = Duration::from_secs(15);
    p.wait_masters(&[AGENT, FRR], timeout);
    // vrrpd's source, which it compares too: over IPv6 it is `::` until the macvlan's
    // link-local appears (it comes with carrier, after protodown is lifted).
    let mut frr_src = IpAddr::from([0u8; 16]);
    p.wait("FRR's primary address", timeout, |p| {
        let router = p.frr.router(VRID, flavour.family()).unwrap_or_default();
        let addr = router["primaryAddress"]
            .as_str()
            .and_then(|a| a.parse().ok());
        frr_src = addr.unwrap_or(frr_src);
        addr.is_some_and(|a: IpAddr| !a.is_unspecified())
    });
    let agent_src = match flavour {
        Flavour::V3Ipv6 => {
            p.s.lab
                .node(AGENT)
                .addrs()
                .unwrap()
                .into_iter()
                .find(|a| matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local()))
                .unwrap_or_else(|| p.fail("no link-local address on node 1"))
        }
        Flavour::V3Ipv4 | Flavour::V2Ipv4 => IpAddr::V4(p.s.lab.node(AGENT).ipv4),
    };
    let winner = if frr_src > agent_src { FRR } else { AGENT };
    println!("{flavour:?}: ha-agent {agent_src}, FRR {frr_src}: node {winner} stays master");
    partition(&p.s.lab, false);
    p.wait_masters(&[winner], timeout);
    p.hold_masters(&[winner], Duration::from_secs(1));
    p.s.assert_clean_logs_except(&[ADDRESS_CONFLICT]);
}

#[test]
fn equal_priority_ipv4_higher_address_wins_frr_agent() {
    equal_priority_higher_address_wins("freq4", Flavour::V3Ipv4, Kind::Agent);
}

#[test]
fn equal_priority_ipv6_higher_link_local_wins_frr_agent_xdp() {
    equal_priority_higher_address_wins("freq6", Flavour::V3Ipv6, Kind::AgentXdp);
}

#[test]
fn v3_agent_xdp_backup_learns_frr_master_interval() {
    learns_master_adver_interval("frlrna", Kind::AgentXdp, false);
}

#[test]
fn v3_frr_backup_learns_agent_master_interval() {
    learns_master_adver_interval("frlrnf", Kind::Agent, true);
}

#[test]
fn v3_ipv4_agent_master_frr_backup() {
    interop("fr34a", Flavour::V3Ipv4, Kind::Agent, true);
}

#[test]
fn v3_ipv4_frr_master_agent_backup() {
    interop("fr34f", Flavour::V3Ipv4, Kind::Agent, false);
}

#[test]
fn v3_ipv4_agent_xdp_master_frr_backup() {
    interop("fr34ax", Flavour::V3Ipv4, Kind::AgentXdp, true);
}

#[test]
fn v3_ipv4_frr_master_agent_xdp_backup() {
    interop("fr34fx", Flavour::V3Ipv4, Kind::AgentXdp, false);
}

#[test]
fn v3_ipv6_agent_master_frr_backup() {
    interop("fr36a", Flavour::V3Ipv6, Kind::Agent, true);
}

#[test]
fn v3_ipv6_frr_master_agent_backup() {
    interop("fr36f", Flavour::V3Ipv6, Kind::Agent, false);
}

#[test]
fn v3_ipv6_agent_xdp_master_frr_backup() {
    interop("fr36ax", Flavour::V3Ipv6, Kind::AgentXdp, true);
}

#[test]
fn v3_ipv6_frr_master_agent_xdp_backup() {
    interop("fr36fx", Flavour::V3Ipv6, Kind::AgentXdp, false);
}

#[test]
fn v2_ipv4_agent_master_frr_backup() {
    interop("fr24a", Flavour::V2Ipv4, Kind::Agent, true);
}

#[test]
fn v2_ipv4_frr_master_agent_backup() {
    interop("fr24f", Flavour::V2Ipv4, Kind::Agent, false);
}

#[test]
fn v2_ipv4_agent_xdp_master_frr_backup() {
    interop("fr24ax", Flavour::V2Ipv4, Kind::AgentXdp, true);
}

#[test]
fn v2_ipv4_frr_master_agent_xdp_backup() {
    interop("fr24fx", Flavour::V2Ipv4, Kind::AgentXdp, false);
}

//! The state of every `virtual_server` and `real_server` as keepalived's `check/ipwrapper.c`
//! keeps it, and what the load balancer's maps must hold because of it.
//!
//! Pure: the checkers' [`CheckEvent`]s, ownership of service addresses (`ha_suspend`) and the
//! next hops ([`Forwarding`], from `neigh.rs`) come in; the scripts to run and the log lines go
//! out through [`LvsManager::take_output`], the map writes through [`LvsManager::sync`]. The
//! runtime (`agent/runtime/lvs.rs`) runs the scripts and logs the lines, so nothing here blocks.
//!
//! keepalived's rules, in its words where it logs:
//! - a real server is up when all its checkers are (none: always up); a checker starts up
//!   unless `alpha`;
//! - up/down: "Adding/Removing service RS to/from VS" (with `inhibit_on_failure`:
//!   "Enabling/Disabling service RS of VS": kept with weight 0, its flows stay), then
//!   `notify_up`/`notify_down`;
//! - quorum over the sum of the up servers' weights, with hysteresis: "Gained quorum q+h=t <=
//!   sum", "Lost quorum q-h=t > sum", then `quorum_up`/`quorum_down`; below quorum the sorry
//!   server takes every new flow and the others leave the pool;
//! - on stop, down scripts only with `omega`; a service or real a reload removes runs them
//!   always (keepalived `clear_service_rs` with `stopping` false).

use std::{
    collections::BTreeSet,
    fmt,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use ha_common::lb::{
    LB_REALS, LB_SERVICES, RealEntry, ServiceEntry, ServiceKey, real_flags, service_flags,
};

use super::{
    CheckEvent, CheckId, LbDatapath, Verdict,
    maglev::{self, Backend},
};
use crate::config::{
    NotifyScript, ScriptUser,
    lvs::{Checker, LbAlgo, LbKind, Lvs, Protocol, RealServer, SorryServer, VirtualServer},
};

/// Where packets for a real server go: its next hop, resolved by `neigh.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    pub ifindex: u32,
    /// The real server's MAC (DR) or its gateway's (TUN, routed).
    pub dst_mac: [u8; 6],
    /// The output interface's MAC.
    pub src_mac: [u8; 6],
    /// The route's preferred source: the tunnel's outer source.
    pub tun_src: IpAddr,
}

/// The datapath of each service: the maps of the interface its address is on.
pub trait LbTargets {
    /// The balancer that serves `addr` (a VIP), or None (not attached yet: written later).
    fn lb(&mut self, addr: IpAddr) -> Option<&mut dyn LbDatapath>;
}

/// A script to run, as written on its line, with the user that line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub argv: Vec<String>,
    pub user: Option<ScriptUser>,
}

/// What the manager has to say since the last [`LvsManager::take_output`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub scripts: Vec<Script>,
    /// keepalived's log lines (INFO).
    pub log: Vec<String>,
}

/// A checker's last round, for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerState {
    pub up: bool,
    /// A round has reported (alpha's first down still notifies).
    pub has_run: bool,
    pub last: Option<Verdict>,
    pub latency: Option<Duration>,
    pub at: Option<Instant>,
    /// Down verdicts so far.
    pub failures: u64,
}

/// One real server of one service.
#[derive(Debug, Clone)]
pub struct RealState {
    pub config: RealServer,
    /// `LB_REALS` index.
    pub index: u32,
    pub checkers: Vec<CheckerState>,
    /// keepalived's `rs->alive`: every checker is up.
    pub healthy: bool,
    /// The weight now: the configured one, or a checker's (`misc_dynamic`, FILE_CHECK).
    pub weight: u32,
    pub forwarding: Option<Forwarding>,
    written: Option<RealEntry>,
}

/// A sorry server.
#[derive(Debug, Clone)]
pub struct SorryState {
    pub config: SorryServer,
    pub index: u32,
    pub forwarding: Option<Forwarding>,
    written: Option<RealEntry>,
}

/// One service.
#[derive(Debug, Clone)]
pub struct ServiceState {
    pub config: VirtualServer,
    /// `LB_SERVICES` / ring index.
    pub index: u32,
    pub reals: Vec<RealState>,
    pub sorry: Option<SorryState>,
    /// keepalived's `quorum_state_up`.
    pub quorum_up: bool,
    /// This node is master of the service's address (`ha_suspend`).
    pub owner: bool,
    written_entry: Option<ServiceEntry>,
    written_ring: Option<Vec<Backend>>,
}

impl ServiceState {
    /// The sorry server takes every new flow: below quorum, and there is one.
    pub fn sorry_active(&self) -> bool {
        !self.quorum_up && self.sorry.is_some()
    }

    /// Sum of the weights of the up real servers (keepalived `weigh_live_realservers`).
    pub fn live_weight(&self) -> u64 {
        let up = self.reals.iter().filter(|r| r.healthy);
        up.map(|r| u64::from(r.weight)).sum()
    }

    pub fn key(&self) -> ServiceKey {
        service_key(&self.config)
    }

    /// The checkers of this service run now (`ha_suspend`: only while master of its address).
    pub fn checking(&self) -> bool {
        !self.config.ha_suspend || self.owner
    }
}

/// keepalived's `FMT_VS`: `[10.0.0.100]:tcp:80`.
pub struct FmtVs<'a>(pub &'a VirtualServer);

impl fmt::Display for FmtVs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        trio(f, self.0.addr, self.0.protocol)
    }
}

fn trio(f: &mut fmt::Formatter<'_>, addr: SocketAddr, protocol: Protocol) -> fmt::Result {
    let proto = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    write!(f, "[{}]:{proto}:{}", addr.ip(), addr.port())
}

/// keepalived's `FMT_RS`.
struct FmtRs(SocketAddr, Protocol);

impl fmt::Display for FmtRs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        trio(f, self.0, self.1)
    }
}

/// The map key of a service.
pub fn service_key(vs: &VirtualServer) -> ServiceKey {
    ServiceKey {
        family: crate::config::lvs::family(&vs.addr.ip()),
        proto: match vs.protocol {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        },
        port_be: vs.addr.port().to_be(),
        addr: addr16(vs.addr.ip()),
    }
}

fn addr16(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// `persistence_granularity` as a mask over the client's address.
fn persist_mask(ip: IpAddr, prefix: Option<u8>) -> [u8; 16] {
    let bits = match ip {
        IpAddr::V4(_) => prefix.unwrap_or(32).min(32),
        IpAddr::V6(_) => prefix.unwrap_or(128).min(128),
    };
    let mut mask = [0u8; 16];
    for (i, byte) in mask.iter_mut().enumerate() {
        let left = u32::from(bits).saturating_sub(i as u32 * 8).min(8);
        *byte = if left == 0 { 0 } else { 0xffu8 << (8 - left) };
    }
    mask
}

/// Index allocation: the lowest free one.
#[derive(Debug, Default)]
struct Indexes {
    used: BTreeSet<u32>,
    limit: u32,
}

impl Indexes {
    fn new(limit: u32) -> Self {
        Self {
            used: BTreeSet::new(),
            limit,
        }
    }

    fn take(&mut self, what: &str) -> Result<u32> {
        let free = (0..self.limit).find(|i| !self.used.contains(i));
        let Some(i) = free else {
            bail!(
                "more than {} {what}: the load balancer's maps are full",
                self.limit
            )
        };
        self.used.insert(i);
        Ok(i)
    }

    fn free(&mut self, i: u32) {
        self.used.remove(&i);
    }
}

/// Every service's state; see the module's documentation.
#[derive(Debug)]
pub struct LvsManager {
    services: Vec<ServiceState>,
    service_indexes: Indexes,
    real_indexes: Indexes,
    /// Services a reload removed: (address, key) to remove from the maps.
    removed_services: Vec<(IpAddr, ServiceKey)>,
    /// Real indexes a reload freed: (service address, index) to clear (flows placed again).
    freed_reals: Vec<(IpAddr, u32)>,
    /// Next hops known, by real server address.
    forwarding: std::collections::HashMap<IpAddr, Forwarding>,
    output: Output,
}

fn initial_checkers(rs: &RealServer) -> Vec<CheckerState> {
    let state = |c: &Checker| CheckerState {
        up: !c.alpha,
        has_run: false,
        last: None,
        latency: None,
        at: None,
        failures: 0,
    };
    rs.checkers.iter().map(state).collect()
}

/// A checker's settings, wherever it is written (a line that moved is the same checker).
fn same_checker(a: &Checker, b: &Checker) -> bool {
    Checker {
        at: b.at.clone(),
        ..a.clone()
    } == *b
}

impl LvsManager {
    /// The services of `lvs`, every real server in its initial state (up, or down under
    /// `alpha`), quorum as keepalived starts it ("Starting with quorum down" and the sorry
    /// server when below).
    pub fn new(lvs: &Lvs) -> Result<Self> {
        let mut m = Self {
            services: Vec::new(),
            service_indexes: Indexes::new(LB_SERVICES),
            real_indexes: Indexes::new(LB_REALS),
            removed_services: Vec::new(),
            freed_reals: Vec::new(),
            forwarding: Default::default(),
            output: Output::default(),
        };
        for vs in &lvs.virtual_servers {
            let s = m.fresh_service(vs)?;
            m.services.push(s);
        }
        for s in 0..m.services.len() {
            m.init_quorum(s);
        }
        Ok(m)
    }

    fn fresh_real(&mut self, rs: &RealServer) -> Result<RealState> {
        let checkers = initial_checkers(rs);
        Ok(RealState {
            index: self.real_indexes.take("real servers")?,
            healthy: checkers.iter().all(|c| c.up),
            checkers,
            weight: rs.weight,
            forwarding: self.forwarding.get(&rs.addr.ip()).copied(),
            config: rs.clone(),
            written: None,
        })
    }

    fn fresh_sorry(&mut self, ss: &SorryServer) -> Result<SorryState> {
        Ok(SorryState {
            index: self.real_indexes.take("real servers")?,
            forwarding: self.forwarding.get(&ss.addr.ip()).copied(),
            config: ss.clone(),
            written: None,
        })
    }

    fn fresh_service(&mut self, vs: &VirtualServer) -> Result<ServiceState> {
        let index = self.service_indexes.take("virtual servers")?;
        let mut reals = Vec::new();
        for rs in &vs.real_servers {
            reals.push(self.fresh_real(rs)?);
        }
        let sorry = vs
            .sorry_server
            .as_ref()
            .map(|s| self.fresh_sorry(s))
            .transpose()?;
        let mut s = ServiceState {
            config: vs.clone(),
            index,
            reals,
            sorry,
            quorum_up: true,
            owner: false,
            written_entry: None,
            written_ring: None,
        };
        // keepalived set_quorum_states.
        s.quorum_up = s.live_weight() >= u64::from(vs.quorum) + u64::from(vs.hysteresis);
        Ok(s)
    }

    /// keepalived `update_quorum_state(vs, init = true)` for a new service.
    fn init_quorum(&mut self, s: usize) {
        let svc = &self.services[s];
        if svc.quorum_up || svc.sorry.is_none() {
            return;
        }
        let vs = &svc.config;
        let threshold = i64::from(vs.quorum) + i64::from(vs.hysteresis);
        let line = format!(
            "Starting with quorum down {}-{}={threshold} > {} for VS {}",
            vs.quorum,
            vs.hysteresis,
            svc.live_weight(),
            FmtVs(vs)
        );
        self.output.log.push(line);
        self.sorry_line(s, true);
        let script = self.services[s].config.quorum_down.clone();
        self.run(script.as_ref());
    }

    pub fn services(&self) -> &[ServiceState] {
        &self.services
    }

    /// What to run and log since the last call.
    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.output)
    }

    fn run(&mut self, script: Option<&NotifyScript>) {
        if let Some(s) = script {
            self.output.scripts.push(Script {
                argv: s.command.clone(),
                user: s.user.clone(),
            });
        }
    }

    fn sorry_line(&mut self, s: usize, adding: bool) {
        let svc = &self.services[s];
        let Some(sorry) = &svc.sorry else { return };
        let inhibit = sorry.config.inhibit;
        let verb = match (adding, inhibit) {
            (true, true) => "Enabling sorry server",
            (true, false) => "Adding sorry server",
            (false, true) => "Disabling sorry server",
            (false, false) => "Removing sorry server",
        };
        let line = format!(
            "{verb} {} {} VS {}",
            FmtRs(sorry.config.addr, svc.config.protocol),
            if adding { "to" } else { "from" },
            FmtVs(&svc.config)
        );
        self.output.log.push(line);
    }

    /// The checkers that must run now: every checker of every service, but those of an
    /// `ha_suspend` service only while this node is master of its address.
    pub fn wanted_checks(&self) -> Vec<CheckId> {
        let mut out = Vec::new();
        for (service, svc) in self.services.iter().enumerate() {
            if !svc.checking() {
                continue;
            }
            for (real, rs) in svc.reals.iter().enumerate() {
                for checker in 0..rs.checkers.len() {
                    out.push(CheckId {
                        service,
                        real,
                        checker,
                    });
                }
            }
        }
        out
    }

    /// This node became (`true`) or stopped being master of `addr`: `ha_suspend` services on
    /// it check (and are marked to forward) only while master.
    pub fn set_owner(&mut self, addr: IpAddr, master: bool) {
        for svc in self
            .services
            .iter_mut()
            .filter(|s| s.config.addr.ip() == addr)
        {
            if svc.owner != master && svc.config.ha_suspend {
                let what = if master { "Resuming" } else { "Suspending" };
                self.output
                    .log
                    .push(format!("{what} checkers of VS {}", FmtVs(&svc.config)));
            }
            svc.owner = master;
        }
    }

    /// The real server addresses (sorry servers included) that need a next hop, with the
    /// forwarding method: DR needs them on-link.
    pub fn next_hops(&self) -> Vec<(IpAddr, LbKind)> {
        let mut out: Vec<(IpAddr, LbKind)> = Vec::new();
        for svc in &self.services {
            let reals = svc
                .reals
                .iter()
                .map(|r| (r.config.addr.ip(), r.config.kind));
            let sorry = svc
                .sorry
                .iter()
                .map(|s| (s.config.addr.ip(), s.config.kind));
            for hop in reals.chain(sorry) {
                if !out.contains(&hop) {
                    out.push(hop);
                }
            }
        }
        out
    }

    /// `addr`'s next hop is (now) `fwd`; None: unknown (its servers are not placed).
    pub fn set_forwarding(&mut self, addr: IpAddr, fwd: Option<Forwarding>) {
        match fwd {
            Some(f) => self.forwarding.insert(addr, f),
            None => self.forwarding.remove(&addr),
        };
        for svc in &mut self.services {
            for r in svc.reals.iter_mut().filter(|r| r.config.addr.ip() == addr) {
                r.forwarding = fwd;
            }
            if let Some(s) = svc.sorry.as_mut().filter(|s| s.config.addr.ip() == addr) {
                s.forwarding = fwd;
            }
        }
    }

    /// A checker's round (keepalived `update_svr_checker_state`, `update_svr_wgt`). Events of
    /// a checker that no longer exists (a reload renumbered them) are ignored.
    pub fn on_check(&mut self, ev: &CheckEvent) {
        let CheckId {
            service,
            real,
            checker,
        } = ev.id;
        let Some(c) = self
            .services
            .get_mut(service)
            .and_then(|s| s.reals.get_mut(real))
            .and_then(|r| r.checkers.get_mut(checker))
        else {
            return;
        };
        c.last = Some(ev.verdict.clone());
        c.latency = ev.latency;
        c.at = Some(ev.at);
        let alive = !matches!(ev.verdict, Verdict::Down(_));
        if !alive {
            c.failures += 1;
        }
        if let Verdict::UpWeight(w) = ev.verdict {
            self.update_weight(service, real, w);
        }
        let c = &mut self.services[service].reals[real].checkers[checker];
        if c.up == alive {
            if !c.has_run {
                c.has_run = true;
                let alpha = self.services[service].reals[real].config.checkers[checker].alpha;
                if alpha || !alive {
                    self.rs_notifies(service, real);
                }
            }
            return;
        }
        c.has_run = true;
        c.up = alive;
        let rs = &self.services[service].reals[real];
        let healthy = rs.checkers.iter().all(|c| c.up);
        if healthy != rs.healthy {
            self.perform_svr_state(service, real, healthy);
        }
    }

    /// keepalived `perform_svr_state`.
    fn perform_svr_state(&mut self, s: usize, r: usize, alive: bool) {
        let svc = &self.services[s];
        let rs = &svc.reals[r];
        let inhibit = rs.config.inhibit_on_failure;
        let (verb, prep) = match (alive, inhibit) {
            (true, true) => ("Enabling", "of"),
            (true, false) => ("Adding", "to"),
            (false, true) => ("Disabling", "of"),
            (false, false) => ("Removing", "from"),
        };
        let line = format!(
            "{verb} service {} {prep} VS {}",
            FmtRs(rs.config.addr, svc.config.protocol),
            FmtVs(&svc.config)
        );
        self.output.log.push(line);
        self.services[s].reals[r].healthy = alive;
        self.rs_notifies(s, r);
        self.update_quorum(s);
    }

    /// `notify_up` or `notify_down`, after the real server's current state.
    fn rs_notifies(&mut self, s: usize, r: usize) {
        let rs = &self.services[s].reals[r];
        let script = if rs.healthy {
            rs.config.notify_up.clone()
        } else {
            rs.config.notify_down.clone()
        };
        self.run(script.as_ref());
    }

    /// keepalived `update_svr_wgt`.
    fn update_weight(&mut self, s: usize, r: usize, weight: u32) {
        let svc = &self.services[s];
        let rs = &svc.reals[r];
        if rs.weight == weight {
            return;
        }
        let line = format!(
            "Changing weight from {} to {weight} for {}active service {} of VS {}",
            rs.weight,
            if rs.healthy { "" } else { "in" },
            FmtRs(rs.config.addr, svc.config.protocol),
            FmtVs(&svc.config)
        );
        self.output.log.push(line);
        self.services[s].reals[r].weight = weight;
        self.update_quorum(s);
    }

    /// keepalived `update_quorum_state(vs, init = false)`.
    fn update_quorum(&mut self, s: usize) {
        let svc = &self.services[s];
        let vs = &svc.config;
        let sum = svc.live_weight() as i64;
        let (q, h) = (i64::from(vs.quorum), i64::from(vs.hysteresis));
        let threshold = if svc.quorum_up { q - h } else { q + h };
        if !svc.quorum_up && sum >= threshold {
            let line = format!(
                "Gained quorum {q}+{h}={threshold} <= {sum} for VS {}",
                FmtVs(vs)
            );
            self.output.log.push(line);
            if svc.sorry.is_some() {
                self.sorry_line(s, false);
            }
            self.services[s].quorum_up = true;
            let script = self.services[s].config.quorum_up.clone();
            self.run(script.as_ref());
        } else if svc.quorum_up && (sum == 0 || sum < threshold) {
            let line = format!(
                "Lost quorum {q}-{h}={threshold} > {sum} for VS {}",
                FmtVs(vs)
            );
            self.output.log.push(line);
            if svc.sorry.is_some() {
                self.sorry_line(s, true);
            }
            self.services[s].quorum_up = false;
            let script = self.services[s].config.quorum_down.clone();
            self.run(script.as_ref());
        }
    }

    /// The map entry of real `r` of service `s` now.
    fn real_entry(svc: &ServiceState, r: usize) -> RealEntry {
        let rs = &svc.reals[r];
        // In the pool (IPVS has it): up, or inhibited (weight 0); out of it below quorum
        // with a sorry server (keepalived `perform_quorum_state`), unless inhibited.
        let in_pool = rs.config.inhibit_on_failure || (rs.healthy && !svc.sorry_active());
        entry(rs.config.addr.ip(), rs.config.kind, rs.forwarding, in_pool)
    }

    fn sorry_entry(svc: &ServiceState) -> Option<RealEntry> {
        let s = svc.sorry.as_ref()?;
        let in_pool = svc.sorry_active() || s.config.inhibit;
        Some(entry(
            s.config.addr.ip(),
            s.config.kind,
            s.forwarding,
            in_pool,
        ))
    }

    /// The servers new flows go to, with their weights.
    fn backends(svc: &ServiceState) -> Vec<Backend> {
        if svc.sorry_active() {
            let s = svc.sorry.as_ref().expect("sorry_active");
            return s
                .forwarding
                .map(|_| Backend {
                    index: s.index,
                    key: s.config.addr,
                    weight: 1,
                })
                .into_iter()
                .collect();
        }
        let placed = svc
            .reals
            .iter()
            .filter(|r| r.healthy && r.weight > 0 && r.forwarding.is_some());
        placed
            .map(|r| Backend {
                index: r.index,
                key: r.config.addr,
                weight: r.weight,
            })
            .collect()
    }

    fn service_entry(svc: &ServiceState) -> ServiceEntry {
        let vs = &svc.config;
        let mut flags = 0;
        let source_only = matches!(vs.algo, LbAlgo::Sh | LbAlgo::Mh) && !vs.hash_port;
        if source_only {
            flags |= service_flags::HASH_SOURCE;
        }
        if vs.persistence_timeout.is_some() {
            flags |= service_flags::PERSIST;
        }
        if !svc.checking() {
            flags |= service_flags::SUSPENDED;
        }
        let timeout = vs.persistence_timeout.unwrap_or_default();
        ServiceEntry {
            index: svc.index,
            flags,
            persist_timeout_ns: u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
            persist_mask: persist_mask(vs.addr.ip(), vs.persistence_prefix),
        }
    }

    /// Writes what changed since the last sync to the maps: cleared reals and removed
    /// services first, then per service its reals, its ring (computed again only when its
    /// servers or their weights changed) and its entry. A write that fails is retried at
    /// the next sync.
    pub fn sync(&mut self, targets: &mut dyn LbTargets) {
        self.removed_services
            .retain(|(addr, key)| match targets.lb(*addr) {
                Some(dp) => dp
                    .remove_service(key)
                    .inspect_err(|e| tracing::warn!("virtual server: {e:#}"))
                    .is_err(),
                None => false,
            });
        self.freed_reals
            .retain(|(addr, index)| match targets.lb(*addr) {
                Some(dp) => dp
                    .set_real(*index, RealEntry::default())
                    .inspect_err(|e| tracing::warn!("virtual server: {e:#}"))
                    .is_err(),
                None => false,
            });
        for svc in &mut self.services {
            let Some(dp) = targets.lb(svc.config.addr.ip()) else {
                continue;
            };
            if let Err(e) = Self::sync_service(svc, dp) {
                tracing::warn!(
                    "VS {}: writing the load balancer: {e:#}",
                    FmtVs(&svc.config)
                );
            }
        }
    }

    fn sync_service(svc: &mut ServiceState, dp: &mut dyn LbDatapath) -> Result<()> {
        for r in 0..svc.reals.len() {
            let want = Self::real_entry(svc, r);
            if svc.reals[r].written != Some(want) {
                dp.set_real(svc.reals[r].index, want)?;
                svc.reals[r].written = Some(want);
            }
        }
        if let Some(want) = Self::sorry_entry(svc) {
            let sorry = svc.sorry.as_mut().expect("sorry_entry");
            if sorry.written != Some(want) {
                dp.set_real(sorry.index, want)?;
                sorry.written = Some(want);
            }
        }
        let backends = Self::backends(svc);
        if svc.written_ring.as_ref() != Some(&backends) {
            dp.set_ring(svc.index, &maglev::ring(&backends))?;
            svc.written_ring = Some(backends);
        }
        let want = Self::service_entry(svc);
        if svc.written_entry != Some(want) {
            dp.set_service(svc.key(), want)?;
            svc.written_entry = Some(want);
        }
        Ok(())
    }

    /// Everything is written again at the next sync (a datapath was attached again).
    pub fn forget_written(&mut self) {
        for svc in &mut self.services {
            svc.written_entry = None;
            svc.written_ring = None;
            for r in &mut svc.reals {
                r.written = None;
            }
            if let Some(s) = &mut svc.sorry {
                s.written = None;
            }
        }
    }

    /// A clean stop (keepalived `clear_services` with `stopping`): every up real server goes
    /// down, with `notify_down` and `quorum_down` only under `omega`; the services leave the
    /// maps at the next [`sync`](Self::sync).
    pub fn stop(&mut self) {
        for s in 0..self.services.len() {
            self.clear_service(s, true);
        }
        for svc in std::mem::take(&mut self.services) {
            self.forget_service(svc);
        }
    }

    /// keepalived `clear_service_vs`: its real servers, then its quorum.
    fn clear_service(&mut self, s: usize, stopping: bool) {
        for r in 0..self.services[s].reals.len() {
            self.clear_real(s, r, stopping);
        }
        let svc = &self.services[s];
        if stopping || (svc.quorum_up && svc.live_weight() == 0) {
            let was_up = svc.quorum_up;
            self.services[s].quorum_up = false;
            if (!stopping || self.services[s].config.omega) && (was_up || stopping) {
                let script = self.services[s].config.quorum_down.clone();
                self.run(script.as_ref());
            }
        }
    }

    /// keepalived `clear_service_rs`.
    fn clear_real(&mut self, s: usize, r: usize, stopping: bool) {
        let svc = &self.services[s];
        let rs = &svc.reals[r];
        let line = format!(
            "{} {}service {} from VS {}",
            if stopping {
                "Shutting down"
            } else {
                "Removing"
            },
            if rs.config.inhibit_on_failure && !rs.healthy {
                "(inhibited) "
            } else {
                ""
            },
            FmtRs(rs.config.addr, svc.config.protocol),
            FmtVs(&svc.config)
        );
        self.output.log.push(line);
        if !rs.healthy {
            return;
        }
        let omega = svc.config.omega;
        self.services[s].reals[r].healthy = false;
        if stopping && !omega {
            return;
        }
        self.rs_notifies(s, r);
    }

    /// Frees a service's indexes; its entry and reals are cleared at the next sync.
    fn forget_service(&mut self, svc: ServiceState) {
        let addr = svc.config.addr.ip();
        self.service_indexes.free(svc.index);
        self.removed_services.push((addr, svc.key()));
        for r in &svc.reals {
            self.real_indexes.free(r.index);
            self.freed_reals.push((addr, r.index));
        }
        if let Some(s) = &svc.sorry {
            self.real_indexes.free(s.index);
            self.freed_reals.push((addr, s.index));
        }
    }

    /// A reload (keepalived `clear_diff_services`): a service (same address, port, protocol)
    /// and a real server (same address and port) that stay keep their state, their indexes
    /// and the state of each checker whose settings did not change, so a reload does not flap
    /// a healthy server; the others are removed (with their down scripts) or start afresh.
    pub fn reload(&mut self, lvs: &Lvs) -> Result<()> {
        let mut old = std::mem::take(&mut self.services);
        let same = |a: &VirtualServer, b: &VirtualServer| {
            a.addr == b.addr && a.protocol == b.protocol && a.group == b.group
        };
        // Removed services first: their down scripts, their indexes freed for the new ones.
        let (kept, gone): (Vec<ServiceState>, Vec<ServiceState>) = old
            .drain(..)
            .partition(|o| lvs.virtual_servers.iter().any(|n| same(&o.config, n)));
        self.services = gone;
        for s in 0..self.services.len() {
            self.output.log.push(format!(
                "Removing Virtual Server {}",
                FmtVs(&self.services[s].config)
            ));
            self.clear_service(s, false);
        }
        for svc in std::mem::take(&mut self.services) {
            self.forget_service(svc);
        }
        let mut old = kept;
        let mut next = Vec::new();
        let mut fresh = Vec::new();
        for vs in &lvs.virtual_servers {
            let Some(pos) = old.iter().position(|o| same(&o.config, vs)) else {
                fresh.push(next.len());
                next.push(self.fresh_service(vs)?);
                continue;
            };
            let svc = old.swap_remove(pos);
            next.push(self.carry_service(svc, vs)?);
        }
        self.services = next;
        for s in fresh {
            self.init_quorum(s);
        }
        Ok(())
    }

    /// A service that stays: its reals matched by address, the rest as in [`reload`].
    fn carry_service(&mut self, mut svc: ServiceState, vs: &VirtualServer) -> Result<ServiceState> {
        let addr = vs.addr.ip();
        let mut reals = Vec::new();
        let mut old_reals = std::mem::take(&mut svc.reals);
        for rs in &vs.real_servers {
            let Some(pos) = old_reals.iter().position(|o| o.config.addr == rs.addr) else {
                reals.push(self.fresh_real(rs)?);
                continue;
            };
            let mut o = old_reals.swap_remove(pos);
            let mut checkers = initial_checkers(rs);
            for (new, state) in rs.checkers.iter().zip(checkers.iter_mut()) {
                let kept = o.config.checkers.iter().position(|c| same_checker(c, new));
                if let Some(k) = kept {
                    *state = o.checkers[k].clone();
                }
            }
            // A changed weight is the new configuration's; a checker's dynamic one stays.
            if o.config.weight != rs.weight {
                o.weight = rs.weight;
            }
            o.checkers = checkers;
            o.config = rs.clone();
            let healthy = o.checkers.iter().all(|c| c.up);
            if healthy != o.healthy {
                o.healthy = healthy;
                let rs_fmt = FmtRs(rs.addr, vs.protocol);
                let state = if healthy { "up" } else { "down" };
                self.output.log.push(format!(
                    "Reloaded service {rs_fmt} of VS {} is {state}",
                    FmtVs(vs)
                ));
                svc.reals.push(o);
                let r = svc.reals.len() - 1;
                self.services.push(svc);
                let s = self.services.len() - 1;
                self.rs_notifies(s, r);
                svc = self.services.pop().expect("pushed");
                o = svc.reals.pop().expect("pushed");
            }
            reals.push(o);
        }
        // Reals the new configuration drops: down (with notify_down), flows placed again.
        svc.reals = old_reals;
        self.services.push(svc);
        let s = self.services.len() - 1;
        for r in 0..self.services[s].reals.len() {
            self.clear_real(s, r, false);
            let index = self.services[s].reals[r].index;
            self.real_indexes.free(index);
            self.freed_reals.push((addr, index));
        }
        let mut svc = self.services.pop().expect("pushed");
        svc.reals = reals;
        match (svc.sorry.take(), &vs.sorry_server) {
            (Some(mut o), Some(n)) if o.config.addr == n.addr => {
                o.config = n.clone();
                svc.sorry = Some(o);
            }
            (o, n) => {
                if let Some(o) = o {
                    self.real_indexes.free(o.index);
                    self.freed_reals.push((addr, o.index));
                }
                svc.sorry = n.as_ref().map(|n| self.fresh_sorry(n)).transpose()?;
            }
        }
        svc.config = vs.clone();
        // A changed quorum or weights may cross the threshold (keepalived init_service_vs).
        self.services.push(svc);
        let s = self.services.len() - 1;
        self.update_quorum(s);
        Ok(self.services.pop().expect("pushed"))
    }
}

/// A `RealEntry` for a server at `addr`.
fn entry(addr: IpAddr, kind: LbKind, fwd: Option<Forwarding>, in_pool: bool) -> RealEntry {
    let Some(f) = fwd else {
        // No next hop: nothing can be sent there; its flows are placed again.
        return RealEntry {
            addr: addr16(addr),
            ..Default::default()
        };
    };
    let mut flags = 0;
    if in_pool {
        flags |= real_flags::ALIVE;
    }
    if kind == LbKind::Tun {
        flags |= real_flags::TUN;
        if addr.is_ipv6() {
            flags |= real_flags::TUN_V6;
        }
    }
    RealEntry {
        flags,
        ifindex: f.ifindex,
        dst_mac: f.dst_mac,
        src_mac: f.src_mac,
        addr: addr16(addr),
        tun_src: addr16(f.tun_src),
    }
}

#[cfg(test)]
mod tests;

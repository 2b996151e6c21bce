//! The userspace side of `xdp_lb` on one interface: its maps (services, real servers, Maglev
//! rings, flows, persistence templates, counters) and putting the program in `LB_PROG`, where
//! `vrrp_rx` tail-calls it. [`XdpLb`] is what `lvs::LbDatapath` writes to.
//!
//! Fails closed like the fence, by the same test: `xdp_lb` forwards only to a VIP the fence
//! leaves open, so a dead agent's balancer keeps forwarding while its heartbeat is fresh (it is
//! still the only master: its flows go on) and stops when the heartbeat goes stale, when the
//! fence drops what the stack would otherwise answer with resets. `LB_PROG` is pinned for
//! that: the kernel empties a program array when its last user reference goes, and the
//! director's own stack, which holds the VIP, would then reset every established flow until the
//! heartbeat goes stale. A restarted agent empties it on open. `LB_FLOWS` and
//! `LB_PERSIST` are not pinned (a restarted agent starts with none, as a director taking over
//! does: the deterministic rings place flows where they were), and the pinned `LB_SERVICES` is
//! emptied before the program is installed, so nothing a predecessor wrote is forwarded on
//! until the agent writes it again. Write a service's reals and ring before the service.

use std::collections::HashMap as StdHashMap;

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray, ProgramArray},
    programs::Xdp,
};
use ha_common::lb::{
    FlowEntry, FlowKey, LB_RING_SIZE, LbStats, MAP_LB_COUNTERS, MAP_LB_FLOWS, MAP_LB_PERSIST,
    MAP_LB_PROG, MAP_LB_REAL_STATS, MAP_LB_REALS, MAP_LB_RING, MAP_LB_SERVICE_STATS,
    MAP_LB_SERVICES, PROG_XDP_LB, PersistEntry, PersistKey, RealEntry, ServiceEntry, ServiceKey,
    lb_counter,
};

use super::{XdpDatapath, XdpError, map_err, maps::forget, program, program_err, take_map};

/// How many of `PINNED_MAPS` (the last ones) are the load balancer's.
pub(super) const LB_PINNED: usize = 7;

/// The load balancer's maps that take memory by size: one entry each on an interface opened
/// without [`super::XdpOptions::load_balancer`].
pub(super) const LB_SIZED: [&str; 7] = [
    MAP_LB_SERVICES,
    MAP_LB_REALS,
    MAP_LB_RING,
    MAP_LB_FLOWS,
    MAP_LB_PERSIST,
    MAP_LB_REAL_STATS,
    MAP_LB_SERVICE_STATS,
];
use crate::lvs::LbDatapath;

/// `xdp_lb`'s maps on one interface, and its place in `LB_PROG`.
pub struct XdpLb {
    services: HashMap<MapData, ServiceKey, ServiceEntry>,
    reals: Array<MapData, RealEntry>,
    ring: Array<MapData, u32>,
    flows: HashMap<MapData, FlowKey, FlowEntry>,
    persist: HashMap<MapData, PersistKey, PersistEntry>,
    real_stats: PerCpuArray<MapData, LbStats>,
    service_stats: PerCpuArray<MapData, LbStats>,
    counters: PerCpuArray<MapData, u64>,
    /// Held: our user reference keeps `LB_PROG[0]` filled.
    _prog: ProgramArray<MapData>,
    /// The rings as last written, by service index: a new ring writes only what changed
    /// (Maglev moves ~1/N of a ring when a server comes or goes).
    written: StdHashMap<u32, Vec<u32>>,
}

impl XdpDatapath {
    /// The load balancer of this interface: on first use, empties what a predecessor left in
    /// `LB_SERVICES`, loads `xdp_lb` and puts it in `LB_PROG` (an interface without virtual
    /// servers never runs it).
    /// Whether it was opened with the load balancer's tables at full size
    /// ([`super::XdpOptions::load_balancer`]).
    pub fn load_balancer(&self) -> bool {
        self.lb_sized
    }

    pub fn lb(&mut self) -> anyhow::Result<&mut XdpLb> {
        anyhow::ensure!(
            self.lb_sized,
            "{}: the XDP datapath was opened without its load balancer \
             (XdpOptions::load_balancer): no virtual_server was on this interface",
            self.interface
        );
        if self.lb.is_none() {
            let lb = XdpLb::open(&mut self.ebpf)
                .with_context(|| format!("{}: the load balancer (xdp_lb)", self.interface))?;
            self.lb = Some(lb);
        }
        self.lb
            .as_mut()
            .context("the load balancer was just opened")
    }

    /// Runs XDP program `name` (`vrrp_rx`, or `xdp_lb` once [`XdpDatapath::lb`] loaded it)
    /// once on `frame` with `BPF_PROG_TEST_RUN`: its verdict and the frame it left.
    pub fn test_run_frame(
        &self,
        name: &'static str,
        frame: &[u8],
    ) -> Result<(u32, Vec<u8>), XdpError> {
        use aya::programs::TestRun as _;
        let prog: &Xdp = self
            .ebpf
            .program(name)
            .ok_or(XdpError::Missing {
                kind: "program",
                name,
            })?
            .try_into()
            .map_err(program_err(name))?;
        // Room for an encapsulation's outer header.
        let mut out = vec![0u8; frame.len() + 256];
        let opts = aya::programs::TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat: 1,
            ..Default::default()
        };
        let result = prog.test_run(opts).map_err(program_err(name))?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }
}

impl XdpLb {
    fn open(ebpf: &mut Ebpf) -> Result<Self, XdpError> {
        let mut services: HashMap<MapData, ServiceKey, ServiceEntry> =
            take_map(ebpf, MAP_LB_SERVICES)?;
        // A predecessor's services (pinned) are not forwarded before the agent rewrites them.
        let stale: Vec<ServiceKey> = services.keys().filter_map(Result::ok).collect();
        for key in &stale {
            forget(&mut services, MAP_LB_SERVICES, key)?;
        }
        let mut lb = Self {
            services,
            reals: take_map(ebpf, MAP_LB_REALS)?,
            ring: take_map(ebpf, MAP_LB_RING)?,
            flows: take_map(ebpf, MAP_LB_FLOWS)?,
            persist: take_map(ebpf, MAP_LB_PERSIST)?,
            real_stats: take_map(ebpf, MAP_LB_REAL_STATS)?,
            service_stats: take_map(ebpf, MAP_LB_SERVICE_STATS)?,
            counters: take_map(ebpf, MAP_LB_COUNTERS)?,
            _prog: take_map(ebpf, MAP_LB_PROG)?,
            written: StdHashMap::new(),
        };
        let xdp: &mut Xdp = program(ebpf, PROG_XDP_LB)?;
        xdp.load().map_err(program_err(PROG_XDP_LB))?;
        let fd = xdp.fd().map_err(program_err(PROG_XDP_LB))?;
        lb._prog
            .set(ha_common::lb::LB_PROG_INDEX, fd, 0)
            .map_err(map_err(MAP_LB_PROG))?;
        Ok(lb)
    }

    /// The real server a flow is on, if the flow table holds it.
    pub fn flow_real(&self, key: &FlowKey) -> anyhow::Result<Option<u32>> {
        lookup(&self.flows, MAP_LB_FLOWS, key).map(|e| e.map(|e| e.real))
    }

    /// A client's persistence template, if there is one.
    pub fn persist_template(&self, key: &PersistKey) -> anyhow::Result<Option<PersistEntry>> {
        lookup(&self.persist, MAP_LB_PERSIST, key)
    }

    /// Writes a persistence template (tools, and tests that age one).
    pub fn set_persist_template(
        &mut self,
        key: &PersistKey,
        entry: PersistEntry,
    ) -> anyhow::Result<()> {
        self.persist
            .insert(key, entry, 0)
            .map_err(map_err(MAP_LB_PERSIST))?;
        Ok(())
    }
}

fn lookup<K: aya::Pod, V: aya::Pod>(
    map: &HashMap<MapData, K, V>,
    name: &'static str,
    key: &K,
) -> anyhow::Result<Option<V>> {
    match map.get(key, 0) {
        Ok(v) => Ok(Some(v)),
        Err(aya::maps::MapError::KeyNotFound) => Ok(None),
        Err(e) => Err(map_err(name)(e).into()),
    }
}

fn sum_stats(
    map: &PerCpuArray<MapData, LbStats>,
    name: &'static str,
    index: u32,
) -> anyhow::Result<LbStats> {
    let values = map.get(&index, 0).map_err(map_err(name))?;
    Ok(values.iter().fold(LbStats::default(), |a, s| LbStats {
        packets: a.packets + s.packets,
        bytes: a.bytes + s.bytes,
        new_flows: a.new_flows + s.new_flows,
    }))
}

impl LbDatapath for XdpLb {
    fn set_service(&mut self, key: ServiceKey, entry: ServiceEntry) -> anyhow::Result<()> {
        self.services
            .insert(key, entry, 0)
            .map_err(map_err(MAP_LB_SERVICES))?;
        Ok(())
    }

    fn remove_service(&mut self, key: &ServiceKey) -> anyhow::Result<()> {
        forget(&mut self.services, MAP_LB_SERVICES, key)?;
        Ok(())
    }

    fn set_real(&mut self, index: u32, entry: RealEntry) -> anyhow::Result<()> {
        self.reals
            .set(index, entry, 0)
            .map_err(map_err(MAP_LB_REALS))?;
        Ok(())
    }

    fn set_ring(&mut self, service_index: u32, ring: &[u32]) -> anyhow::Result<()> {
        anyhow::ensure!(
            ring.len() == LB_RING_SIZE as usize,
            "a ring of {} entries, not {LB_RING_SIZE}",
            ring.len()
        );
        let base = service_index
            .checked_mul(LB_RING_SIZE)
            .context("service index out of range")?;
        let old = self.written.remove(&service_index);
        for (i, real) in ring.iter().enumerate() {
            if old.as_ref().is_some_and(|o| o[i] == *real) {
                continue;
            }
            if let Err(e) = self.ring.set(base + i as u32, *real, 0) {
                // Not recorded: the next write rewrites the whole ring.
                return Err(map_err(MAP_LB_RING)(e).into());
            }
        }
        self.written.insert(service_index, ring.to_vec());
        Ok(())
    }

    fn real_stats(&self, index: u32) -> anyhow::Result<LbStats> {
        sum_stats(&self.real_stats, MAP_LB_REAL_STATS, index)
    }

    fn service_stats(&self, index: u32) -> anyhow::Result<LbStats> {
        sum_stats(&self.service_stats, MAP_LB_SERVICE_STATS, index)
    }

    fn counters(&self) -> anyhow::Result<Vec<u64>> {
        (0..lb_counter::COUNT)
            .map(|i| {
                let values = self.counters.get(&i, 0).map_err(map_err(MAP_LB_COUNTERS))?;
                Ok(values.iter().sum())
            })
            .collect()
    }
}

//! The eBPF data path: loads `vrrp_rx` (XDP) and `vip_fence_ingress` / `vip_fence_egress` (TC)
//! onto one interface, and reads and writes their maps.
//!
//! # Lifetime
//!
//! The programs are attached through netlink: XDP with `IFLA_XDP` (not a `bpf_link`), the fence
//! as `cls_bpf` filters on a `clsact` qdisc at a fixed priority and handle ([`TC_PRIORITY`],
//! [`TC_HANDLE`]). The kernel keeps such attachments with the interface whatever happens to the
//! process, pins or no pins: a crashed or killed agent leaves its programs attached and, its
//! heartbeat going stale, every VIP on the interface fenced.
//!
//! With [`XdpOptions::persist`] (the agent), dropping an [`XdpDatapath`] leaves them attached;
//! a restarted agent finds them (the XDP program's name, the filters' priority and handle) and
//! replaces them atomically with programs whose fence map already holds every VIP fenced, and
//! an XDP program that is not ours is refused. Only [`XdpDatapath::close`] (a clean exit)
//! detaches them and removes the pins. Without `persist` (tests, tools) dropping detaches.
//!
//! Maps are pinned under [`XdpOptions::pin_dir`] when there is one (a BPF filesystem: bpftool
//! can read them, and a restarted agent adopts them: counters carry on), but nothing depends on
//! a pin outliving the process.
//!
//! # Layout
//!
//! `attach` owns the lifecycle: loading, attaching through netlink (`IFLA_XDP`, `cls_bpf` on
//! `clsact`), replacing a predecessor's programs, detaching, the pin directory and the
//! interface lock under [`LOCK_DIR`]. `maps` owns what goes in and comes out of the maps: the
//! per-instance slots, state and fence, the peer records and the counters. `lb` owns the load
//! balancer's (`xdp_lb`, tail-called by `vrrp_rx`): [`XdpDatapath::lb`].

mod attach;
mod lb;
mod maps;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    Ebpf, EbpfError,
    maps::{Array, HashMap, MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, Xdp, XdpMode},
};
use ha_common::maps::{
    FenceEntry, Heartbeat, PeerRecord, PeerTtl, RxGlobal, RxInstance, SlotAddr, VipKey,
};

pub use attach::{InterfaceLock, LOCK_DIR, lock_interface, pin_dir};
pub use lb::XdpLb;
pub use maps::{SlotConfig, addr16, rx_global, vip_key};

/// Names of the kernel objects, as in `ha-ebpf`.
pub const PROG_VRRP_RX: &str = "vrrp_rx";
pub const PROG_FENCE_INGRESS: &str = "vip_fence_ingress";
pub const PROG_FENCE_EGRESS: &str = "vip_fence_egress";
pub const MAP_RX_ADVERTS: &str = "RX_ADVERTS";
pub const MAP_STATS: &str = "STATS";
pub const MAP_ACCEPTED: &str = "ACCEPTED";
pub const MAP_RX_GLOBAL: &str = "RX_GLOBAL";
pub const MAP_RX_INSTANCE: &str = "RX_INSTANCE";
pub const MAP_ADV_ADDRS: &str = "ADV_ADDRS";
pub const MAP_ALLOWED_PEERS: &str = "ALLOWED_PEERS";
pub const MAP_PEER: &str = "PEER";
pub const MAP_EVENTS: &str = "EVENTS";
pub const MAP_EVENTS_LOST: &str = "EVENTS_LOST";
pub const MAP_SLOT_FENCE: &str = "SLOT_FENCE";
pub const MAP_FENCE: &str = "FENCE";
pub const MAP_HEARTBEAT: &str = "HEARTBEAT";
pub const MAP_FENCE_DROPS: &str = "FENCE_DROPS";
pub const MAP_FOREIGN: &str = "FOREIGN";

/// The maps pinned (and adopted) by name; `EVENTS` is not: a restarted agent must not read a
/// dead one's events. Nor are `LB_FLOWS`, `LB_PERSIST` (see `lb.rs`); the load balancer's
/// (the last [`LB_PINNED`]) only with [`XdpOptions::load_balancer`].
const PINNED_MAPS: [&str; 21] = [
    MAP_RX_ADVERTS,
    MAP_STATS,
    MAP_ACCEPTED,
    MAP_RX_GLOBAL,
    MAP_RX_INSTANCE,
    MAP_ADV_ADDRS,
    MAP_ALLOWED_PEERS,
    MAP_PEER,
    MAP_EVENTS_LOST,
    MAP_SLOT_FENCE,
    MAP_FENCE,
    MAP_HEARTBEAT,
    MAP_FENCE_DROPS,
    MAP_FOREIGN,
    ha_common::lb::MAP_LB_SERVICES,
    ha_common::lb::MAP_LB_REALS,
    ha_common::lb::MAP_LB_RING,
    ha_common::lb::MAP_LB_REAL_STATS,
    ha_common::lb::MAP_LB_SERVICE_STATS,
    ha_common::lb::MAP_LB_COUNTERS,
    ha_common::lb::MAP_LB_PROG,
];

/// Version of the map layouts, part of the pin directory's name: a newer agent with other
/// layouts never adopts an older one's maps. 3: `RxInstance::vips`. 4: `RxGlobal`'s groups
/// and MAC, `RxInstance::unicast_any_ttl`. 5: `FenceEntry::no_accept`, `ALLOWED_PEERS` values
/// are TTL ranges. 6: the load balancer's maps (`xdp_lb`). 7: `LB_PROG` pinned, `NO_BALANCER`.
/// 8: `FenceEntry::quiet`, `SLOT_FENCE` values (`slot_fence`: `vrrp_rx` sets quiet).
pub const MAPS_ABI: u32 = 8;

/// Priority (`tc filter … pref`) and handle of the fence's filters on both hooks: fixed, so a
/// restarted agent finds its predecessor's and replaces them in place (112: VRRP's protocol).
pub const TC_PRIORITY: u16 = 112;
pub const TC_HANDLE: u16 = 112;

/// `FenceEntry::slot` of a VIP whose instance has no slot on the interface it is fenced on (it
/// lives on another `dev`): no `SLOT_FENCE` entry, so no other instance's slot fences it.
pub const NO_SLOT: u32 = u16::MAX as u32;

/// What went wrong, and on what.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("loading the eBPF object: {0}")]
    Load(#[from] Box<EbpfError>),
    #[error("eBPF object has no {kind} `{name}`: rebuild with `cargo xtask build-ebpf`")]
    Missing {
        kind: &'static str,
        name: &'static str,
    },
    #[error("program `{name}`: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("attaching `{name}` ({hook}) to interface {interface}: {source}")]
    Attach {
        name: &'static str,
        hook: &'static str,
        interface: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("interface {interface}: {what}: {source}")]
    Netlink {
        interface: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "interface {interface} is not Ethernet (link type {link_type}): the XDP datapath and its \
         fence parse Ethernet frames; use --datapath socket (or auto) on it"
    )]
    NotEthernet {
        interface: String,
        link_type: String,
    },
    #[error(
        "interface {interface} already runs XDP program `{name}` (id {id}), not ha-agent's \
         `vrrp_rx`: it is not replaced; remove it (`ip link set dev {interface} xdp off`) or \
         use --datapath socket"
    )]
    ForeignXdp {
        interface: String,
        id: u32,
        name: String,
    },
    #[error(
        "interface {interface} is already driven by ha-agent pid {pid} (lock {path}): stop that \
         agent first, or use --datapath socket"
    )]
    Locked {
        interface: String,
        pid: String,
        path: PathBuf,
    },
    #[error("map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("{what} {path}: {source}")]
    Pin {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not on a BPF filesystem: mount one (`mount -t bpf bpf {path}`) or pass another --bpf-dir"
    )]
    NotBpffs { path: PathBuf },
}

/// How to open the data path on an interface.
#[derive(Clone, Debug, Default)]
pub struct XdpOptions {
    pub mode: XdpMode,
    /// Where to pin the maps (see [Lifetime](self#lifetime)); `None`: nothing pinned.
    pub pin_dir: Option<PathBuf>,
    /// Leave the programs attached when dropped, and lock the interface against a second
    /// agent ([`LOCK_DIR`]): the agent. `false`: detach on drop (tests, tools).
    pub persist: bool,
    /// Only the fence (TC), no `vrrp_rx`: an interface that carries VIPs of instances that run
    /// on another one.
    pub fence_only: bool,
    /// The VIPs fenced (unconditionally) before the programs are attached, and the only ones
    /// left in the fence map: a replaced fence never lets a zombie VIP through, and VIPs no
    /// longer configured are forgotten.
    pub fence: Vec<IpAddr>,
    /// The interface may carry `virtual_server`s: the load balancer's tables get their full
    /// size (~46 MB of kernel memory, mostly the flow table) and are pinned. Without it they
    /// are created with one entry each and [`XdpDatapath::lb`] refuses.
    pub load_balancer: bool,
}

/// `vrrp_rx` and the fence on one interface (or loaded only, for `BPF_PROG_TEST_RUN`), with
/// their maps.
pub struct XdpDatapath {
    interface: String,
    pin_dir: Option<PathBuf>,
    /// Where the programs are attached; `None` when loaded detached or once detached.
    attached: Option<Attached>,
    /// The interface lock ([`XdpOptions::persist`]), released with the datapath.
    lock: Option<InterfaceLock>,
    // Holds the programs: their netlink attachments hold them too, so they outlive it.
    ebpf: Ebpf,
    rx_adverts: PerCpuArray<MapData, u64>,
    stats: PerCpuArray<MapData, u64>,
    accepted: PerCpuArray<MapData, u64>,
    rx_global: Array<MapData, RxGlobal>,
    rx_instance: Array<MapData, RxInstance>,
    adv_addrs: HashMap<MapData, SlotAddr, u8>,
    allowed_peers: HashMap<MapData, SlotAddr, PeerTtl>,
    peer: Array<MapData, PeerRecord>,
    events: Option<RingBuf<MapData>>,
    events_lost: PerCpuArray<MapData, u64>,
    slot_fence: Array<MapData, u32>,
    fence: HashMap<MapData, VipKey, FenceEntry>,
    heartbeat: Array<MapData, Heartbeat>,
    fence_drops: PerCpuArray<MapData, u64>,
    foreign: PerCpuArray<MapData, u64>,
    /// `xdp_lb` and its maps, once [`XdpDatapath::lb`] opened them.
    lb: Option<XdpLb>,
    /// Whether the load balancer's tables have their full size ([`XdpOptions::load_balancer`]).
    lb_sized: bool,
}

/// The netlink attachments of one interface.
#[derive(Clone, Copy, Debug)]
struct Attached {
    ifindex: u32,
    /// The XDP mode flag the program runs in (what removing it must say); `None`: fence only.
    xdp_mode: Option<u32>,
    /// Leave attached on drop.
    persist: bool,
}

impl XdpDatapath {
    fn with_maps(
        interface: String,
        pin_dir: Option<PathBuf>,
        mut ebpf: Ebpf,
    ) -> Result<Self, XdpError> {
        Ok(Self {
            interface,
            pin_dir,
            attached: None,
            lock: None,
            rx_adverts: take_map(&mut ebpf, MAP_RX_ADVERTS)?,
            stats: take_map(&mut ebpf, MAP_STATS)?,
            accepted: take_map(&mut ebpf, MAP_ACCEPTED)?,
            rx_global: take_map(&mut ebpf, MAP_RX_GLOBAL)?,
            rx_instance: take_map(&mut ebpf, MAP_RX_INSTANCE)?,
            adv_addrs: take_map(&mut ebpf, MAP_ADV_ADDRS)?,
            allowed_peers: take_map(&mut ebpf, MAP_ALLOWED_PEERS)?,
            peer: take_map(&mut ebpf, MAP_PEER)?,
            events: Some(take_map(&mut ebpf, MAP_EVENTS)?),
            events_lost: take_map(&mut ebpf, MAP_EVENTS_LOST)?,
            slot_fence: take_map(&mut ebpf, MAP_SLOT_FENCE)?,
            fence: take_map(&mut ebpf, MAP_FENCE)?,
            heartbeat: take_map(&mut ebpf, MAP_HEARTBEAT)?,
            fence_drops: take_map(&mut ebpf, MAP_FENCE_DROPS)?,
            foreign: take_map(&mut ebpf, MAP_FOREIGN)?,
            lb: None,
            lb_sized: true,
            ebpf,
        })
    }

    /// The interface the programs are attached to ("" when loaded detached).
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Where the maps are pinned, if they are.
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// Runs `vrrp_rx` on `frame` (an Ethernet frame) `repeat` times with `BPF_PROG_TEST_RUN`:
    /// its verdict (`XDP_PASS` 2, `XDP_DROP` 1) and the kernel's mean time per run.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<(u32, Duration), XdpError> {
        use aya::programs::TestRun as _;
        let prog: &Xdp = self
            .ebpf
            .program(PROG_VRRP_RX)
            .ok_or(XdpError::Missing {
                kind: "program",
                name: PROG_VRRP_RX,
            })?
            .try_into()
            .map_err(program_err(PROG_VRRP_RX))?;
        let mut out = vec![0u8; frame.len() + 256];
        let opts = aya::programs::TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..Default::default()
        };
        let result = prog.test_run(opts).map_err(program_err(PROG_VRRP_RX))?;
        Ok((result.return_value, result.duration))
    }
}

impl Drop for XdpDatapath {
    /// Detaches the programs unless they must outlive us ([`XdpOptions::persist`]).
    fn drop(&mut self) {
        if self.attached.is_some_and(|a| !a.persist)
            && let Err(e) = self.detach()
        {
            tracing::warn!("{}: detaching the XDP/TC programs: {e}", self.interface);
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `bpf_ktime_get_ns()` (and of
/// `std::time::Instant` on Linux).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The `std::time::Instant` of a `bpf_ktime_get_ns()` reading.
pub fn instant_of(ktime_ns: u64) -> std::time::Instant {
    let now = std::time::Instant::now();
    let ago = monotonic_ns().saturating_sub(ktime_ns);
    now.checked_sub(Duration::from_nanos(ago)).unwrap_or(now)
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, XdpError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(XdpError::Missing {
        kind: "program",
        name,
    })?;
    prog.try_into().map_err(program_err(name))
}

fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, XdpError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or(XdpError::Missing { kind: "map", name })?;
    T::try_from(map).map_err(map_err(name))
}

/// `map_err` adapter: program `name` failed (loading it, its fd, a test run).
fn program_err(name: &'static str) -> impl Fn(ProgramError) -> XdpError {
    move |source| XdpError::Program {
        name,
        source: Box::new(source),
    }
}

/// `map_err` adapter: an operation on map `name` failed.
fn map_err(name: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map { name, source }
}

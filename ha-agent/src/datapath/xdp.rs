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

use std::{
    fs::File,
    io::{Read as _, Seek as _, Write as _},
    net::IpAddr,
    os::{
        fd::{AsFd as _, AsRawFd as _},
        unix::fs::{MetadataExt, OpenOptionsExt as _},
    },
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{Array, HashMap, MapData, MapError, PerCpuArray, RingBuf},
    programs::{
        Link as _, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        tc::{NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle},
    },
};
use ha_common::{
    RejectReason,
    maps::{
        FenceEntry, Heartbeat, INSTANCE_SLOTS, PeerRecord, RX_INLINE_VIPS, RxGlobal, RxInstance,
        SlotAddr, VRID_SLOTS, VipKey, instance_slot, stats_index,
    },
};

use super::{EBPF_OBJECT, rtnl};
use crate::vrrp::packet::{Auth, Family, InstanceRules};

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
/// dead one's events.
const PINNED_MAPS: [&str; 14] = [
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
];

/// Version of the map layouts, part of the pin directory's name: a newer agent with other
/// layouts never adopts an older one's maps. 3: `RxInstance::vips`. 4: `RxGlobal`'s groups
/// and MAC, `RxInstance::unicast_any_ttl`.
pub const MAPS_ABI: u32 = 4;

/// Priority (`tc filter … pref`) and handle of the fence's filters on both hooks: fixed, so a
/// restarted agent finds its predecessor's and replaces them in place (112: VRRP's protocol).
pub const TC_PRIORITY: u16 = 112;
pub const TC_HANDLE: u16 = 112;

/// File names of the links an older ha-agent (TCX and `bpf_link` XDP) pinned in the pin
/// directory: removed (which detaches them) before attaching.
const LEGACY_LINKS: [&str; 3] = ["link_xdp", "link_tc_ingress", "link_tc_egress"];

/// `FenceEntry::slot` of a VIP whose instance has no slot on the interface it is fenced on (it
/// lives on another `dev`): no `SLOT_FENCE` entry, so no other instance's slot fences it.
pub const NO_SLOT: u32 = u16::MAX as u32;

/// Where the per-interface locks live (`xdp-<netns inode>-<interface>.lock`).
pub const LOCK_DIR: &str = "/run/ha-agent";

/// `statfs(2)` magic of the BPF filesystem (include/uapi/linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

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
}

/// One instance's rules for `vrrp_rx`: the slot and what goes in `RX_INSTANCE`, `ADV_ADDRS` and
/// `ALLOWED_PEERS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotConfig {
    pub slot: u32,
    /// Its `vips` need not be set: [`XdpDatapath::configure`] copies them from `vips`.
    pub rx: RxInstance,
    /// The VIPs the advert must list (their index in the list is their mask bit).
    pub vips: Vec<IpAddr>,
    /// Allowed unicast sources.
    pub peers: Vec<IpAddr>,
}

impl SlotConfig {
    /// What the agent writes for an instance that checks adverts by `rules`: its slot (VRID,
    /// +256 over IPv6), its state (`master`, effective `priority`), its `primary` address (the
    /// tie-break) and the `silence` after which an unchanged advert is news again. A VIP listed
    /// twice keeps its first index, as [`XdpDatapath::configure`] writes `ADV_ADDRS`.
    pub fn for_rules(
        rules: &InstanceRules,
        primary: IpAddr,
        master: bool,
        priority: u8,
        silence: Duration,
    ) -> SlotConfig {
        let vips = rules.vips.clone().unwrap_or_default();
        let vip_mask = vips.iter().enumerate().fold(0u64, |m, (k, v)| {
            let first = vips.iter().position(|w| w == v).unwrap_or(k);
            m | (1u64 << first)
        });
        let mut rx = RxInstance {
            configured: 1,
            version: rules.version.number(),
            master: u8::from(master),
            priority,
            auth_type: rules.auth.auth_type(),
            check_vips: u8::from(rules.vips.is_some()),
            vip_count: vips.len() as u8,
            check_peers: u8::from(!rules.unicast_peers.is_empty()),
            adver_int_cs: rules.adver_int_cs,
            unicast_any_ttl: u8::from(rules.unicast_any_ttl),
            vip_mask,
            silence_ns: silence.as_nanos() as u64,
            primary: addr16(primary),
            ..RxInstance::default()
        };
        if let Auth::Pass(p) = rules.auth {
            rx.auth = p;
        }
        SlotConfig {
            slot: instance_slot(rules.vrid, rules.family == Family::Ipv6),
            rx,
            vips,
            peers: rules.unicast_peers.clone(),
        }
    }
}

/// What the agent writes to `RX_GLOBAL`: the [`rx_flags`](ha_common::maps::rx_flags), the
/// interface's multicast groups (`vrrp_mcast_group4/6`) and its MAC, by which `vrrp_rx` tells
/// this interface's adverts from other speakers' (passed to the stack).
pub fn rx_global(
    flags: u32,
    group4: std::net::Ipv4Addr,
    group6: std::net::Ipv6Addr,
    mac: [u8; 6],
) -> RxGlobal {
    RxGlobal {
        flags,
        group4: group4.octets(),
        group6: group6.octets(),
        mac,
        _pad: [0; 2],
    }
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
    allowed_peers: HashMap<MapData, SlotAddr, u8>,
    peer: Array<MapData, PeerRecord>,
    events: Option<RingBuf<MapData>>,
    events_lost: PerCpuArray<MapData, u64>,
    slot_fence: Array<MapData, u32>,
    fence: HashMap<MapData, VipKey, FenceEntry>,
    heartbeat: Array<MapData, Heartbeat>,
    fence_drops: PerCpuArray<MapData, u64>,
    foreign: PerCpuArray<MapData, u64>,
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
    /// Loads the embedded programs and attaches them to `interface`: XDP in `mode`, the fence on
    /// TC ingress and egress; nothing pinned, detached on drop. Fails with the step and the
    /// kernel's reason.
    pub fn attach(interface: &str, mode: XdpMode) -> Result<Self, XdpError> {
        Self::open(
            interface,
            &XdpOptions {
                mode,
                ..XdpOptions::default()
            },
        )
    }

    /// Loads the programs without attaching them anywhere: for `BPF_PROG_TEST_RUN`
    /// ([`XdpDatapath::test_run`]) in tests and benchmarks.
    pub fn load_detached() -> Result<Self, XdpError> {
        let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(Box::new)?;
        load_programs(&mut ebpf)?;
        Self::with_maps(String::new(), None, ebpf)
    }

    /// Loads the programs and attaches them to `interface` (see [Lifetime](self#lifetime)):
    /// refuses an interface that is not Ethernet, one another agent holds, and one that runs
    /// another XDP program; replaces ha-agent's own programs left attached.
    pub fn open(interface: &str, options: &XdpOptions) -> Result<Self, XdpError> {
        let netlink = |what: &'static str| {
            let interface = interface.to_owned();
            move |source| XdpError::Netlink {
                interface,
                what,
                source,
            }
        };
        let ifindex = crate::net::link::if_index(interface).map_err(netlink("looking it up"))?;
        let state = rtnl::link_state(ifindex).map_err(netlink("reading its link"))?;
        if state.link_layer != rtnetlink::packet_route::link::LinkLayerType::Ether {
            return Err(XdpError::NotEthernet {
                interface: interface.to_owned(),
                link_type: format!("{:?}", state.link_layer),
            });
        }
        let lock = options
            .persist
            .then(|| lock_interface(interface))
            .transpose()?;
        // Whose XDP program is there: ours is replaced, anyone else's refused.
        let previous = match state.xdp.filter(|_| !options.fence_only) {
            Some((id, mode)) => {
                let info = aya::programs::loaded_programs()
                    .filter_map(Result::ok)
                    .find(|p| p.id() == id);
                let name = info
                    .as_ref()
                    .and_then(|p| p.name_as_str().map(str::to_owned))
                    .unwrap_or_default();
                if name != PROG_VRRP_RX {
                    return Err(XdpError::ForeignXdp {
                        interface: interface.to_owned(),
                        id,
                        name,
                    });
                }
                let fd = info
                    .map(|p| p.fd())
                    .transpose()
                    .map_err(|source| XdpError::Program {
                        name: PROG_VRRP_RX,
                        source: Box::new(source),
                    })?;
                fd.map(|fd| (id, mode, fd))
            }
            None => None,
        };

        let mut loader = EbpfLoader::new();
        if let Some(dir) = &options.pin_dir {
            std::fs::create_dir_all(dir).map_err(|source| XdpError::Pin {
                what: "creating the pin directory",
                path: dir.clone(),
                source,
            })?;
            remove_legacy_links(dir)?;
        }
        let paths: Vec<(&str, PathBuf)> = match &options.pin_dir {
            Some(dir) => PINNED_MAPS.iter().map(|m| (*m, dir.join(m))).collect(),
            None => Vec::new(),
        };
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(EBPF_OBJECT).map_err(Box::new)?;
        load_programs(&mut ebpf)?;
        let mut dp = Self::with_maps(interface.to_owned(), options.pin_dir.clone(), ebpf)?;
        dp.lock = lock;

        // Every VIP fenced before anything is attached: no unfenced window when replacing.
        dp.heartbeat()?;
        dp.prune_fence(&options.fence)?;
        for vip in &options.fence {
            dp.fence(*vip)?;
        }

        let attach_err = |hook: &'static str, name: &'static str| {
            let interface = interface.to_owned();
            move |source| XdpError::Attach {
                name,
                hook,
                interface,
                source: Box::new(source),
            }
        };
        let xdp_mode = previous
            .as_ref()
            .map_or(mode_flags(options.mode), |(_, m, _)| *m);
        if !options.fence_only {
            let xdp: &mut Xdp = program(&mut dp.ebpf, PROG_VRRP_RX)?;
            let fd = xdp.fd().map_err(attach_err("xdp", PROG_VRRP_RX))?;
            let result = match &previous {
                Some((id, _, old)) => {
                    tracing::info!(
                        "replacing {PROG_VRRP_RX} (program id {id}) on {interface}, left by an earlier ha-agent"
                    );
                    rtnl::set_xdp(ifindex, Some(fd.as_fd()), xdp_mode, Some(old.as_fd()))
                }
                None => rtnl::set_xdp(
                    ifindex,
                    Some(fd.as_fd()),
                    xdp_mode | rtnl::XDP_FLAGS_UPDATE_IF_NOEXIST,
                    None,
                ),
            };
            result.map_err(netlink("setting its XDP program (IFLA_XDP)"))?;
        }
        dp.attached = Some(Attached {
            ifindex,
            xdp_mode: (!options.fence_only).then_some(xdp_mode),
            persist: options.persist,
        });
        if let Err(e) = dp.attach_fence() {
            // Not half attached: no XDP without its fence.
            let _ = dp.detach();
            return Err(e);
        }
        Ok(dp)
    }

    /// Attaches the fence programs to TC ingress and egress of the interface.
    fn attach_fence(&mut self) -> Result<(), XdpError> {
        let interface = self.interface.clone();
        let attach_err = |hook: &'static str, name: &'static str| {
            let interface = interface.clone();
            move |source| XdpError::Attach {
                name,
                hook,
                interface,
                source: Box::new(source),
            }
        };

        // The fence's filters hang off a clsact qdisc; it may exist already.
        if let Err(e) = aya::programs::tc::qdisc_add_clsact(&interface) {
            tracing::debug!("clsact qdisc on {interface}: {e} (an existing one is fine)");
        }
        for (hook, attach_type, prog) in [
            ("tc ingress", TcAttachType::Ingress, PROG_FENCE_INGRESS),
            ("tc egress", TcAttachType::Egress, PROG_FENCE_EGRESS),
        ] {
            let tc: &mut SchedClassifier = program(&mut self.ebpf, prog)?;
            if attach_tc(tc, &interface, attach_type).map_err(attach_err(hook, prog))? {
                tracing::info!(
                    "replacing {prog} ({hook}) on {interface}, left by an earlier ha-agent"
                );
            }
        }
        Ok(())
    }

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
            ebpf,
        })
    }

    /// A clean exit: detaches the programs (XDP off if it is still ours, both TC filters
    /// deleted) and removes every pin (maps, the directory).
    pub fn close(mut self) -> Result<(), XdpError> {
        let mut first_err = self.detach().err();
        // Unlinked while still held: nothing is left in the lock directory after a clean exit.
        if let Some(lock) = &self.lock {
            let _ = std::fs::remove_file(&lock.path);
        }
        if let Some(dir) = self.pin_dir.take()
            && let Err(source) = std::fs::remove_dir_all(&dir)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            first_err.get_or_insert(XdpError::Pin {
                what: "removing the pin directory",
                path: dir,
                source,
            });
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Removes the programs from the interface; an interface that is gone took them with it.
    fn detach(&mut self) -> Result<(), XdpError> {
        let Some(a) = self.attached.take() else {
            return Ok(());
        };
        let gone = |e: &std::io::Error| {
            matches!(
                e.raw_os_error(),
                Some(libc::ENODEV | libc::ENOENT | libc::EINVAL)
            )
        };
        let mut first_err = None;
        let xdp: &mut Xdp = program(&mut self.ebpf, PROG_VRRP_RX)?;
        if let Some(mode) = a.xdp_mode
            && let Ok(fd) = xdp.fd()
            && let Err(source) = rtnl::set_xdp(a.ifindex, None, mode, Some(fd.as_fd()))
            && !gone(&source)
        {
            first_err = Some(XdpError::Netlink {
                interface: self.interface.clone(),
                what: "removing its XDP program",
                source,
            });
        }
        for (attach_type, prog) in [
            (TcAttachType::Ingress, PROG_FENCE_INGRESS),
            (TcAttachType::Egress, PROG_FENCE_EGRESS),
        ] {
            let Ok(link) = SchedClassifierLink::attached(
                &self.interface,
                attach_type,
                TC_PRIORITY,
                TcHandle::new(0, TC_HANDLE),
                None,
            ) else {
                continue;
            };
            if let Err(e) = link.detach() {
                let lost = match &e {
                    ProgramError::NetlinkError(n) => n.raw_os_error(),
                    ProgramError::TcError(TcError::NetlinkError(n)) => n.raw_os_error(),
                    _ => None,
                };
                if !lost.is_some_and(|errno| gone(&std::io::Error::from_raw_os_error(errno))) {
                    first_err.get_or_insert(XdpError::Attach {
                        name: prog,
                        hook: "removing the tc filter",
                        interface: self.interface.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        first_err.map_or(Ok(()), Err)
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
            .map_err(|source| XdpError::Program {
                name: PROG_VRRP_RX,
                source: Box::new(source),
            })?;
        let mut out = vec![0u8; frame.len() + 256];
        let opts = aya::programs::TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..Default::default()
        };
        let result = prog.test_run(opts).map_err(|source| XdpError::Program {
            name: PROG_VRRP_RX,
            source: Box::new(source),
        })?;
        Ok((result.return_value, result.duration))
    }

    /// Writes the interface settings and every instance slot: `slots` configured, every other
    /// slot cleared; `ADV_ADDRS` and `ALLOWED_PEERS` made to hold exactly what `slots` list.
    pub fn configure(&mut self, global: RxGlobal, slots: &[SlotConfig]) -> Result<(), XdpError> {
        self.rx_global
            .set(0, global, 0)
            .map_err(map_err(MAP_RX_GLOBAL))?;
        let mut adv = std::collections::HashMap::new();
        let mut peers = std::collections::HashMap::new();
        for slot in 0..INSTANCE_SLOTS {
            let rx = slots
                .iter()
                .find(|s| s.slot == slot)
                .map_or_else(RxInstance::default, |s| {
                    // The inline copy of the list `ADV_ADDRS` gets below.
                    let mut rx = s.rx;
                    rx.vips = [[0; 16]; RX_INLINE_VIPS];
                    for (inline, vip) in rx.vips.iter_mut().zip(&s.vips) {
                        *inline = addr16(*vip);
                    }
                    rx
                });
            self.rx_instance
                .set(slot, rx, 0)
                .map_err(map_err(MAP_RX_INSTANCE))?;
        }
        for s in slots {
            for (index, vip) in s.vips.iter().enumerate() {
                adv.entry(slot_addr(s.slot, *vip)).or_insert(index as u8);
            }
            for p in &s.peers {
                peers.insert(slot_addr(s.slot, *p), 1u8);
            }
        }
        sync_hash(&mut self.adv_addrs, MAP_ADV_ADDRS, &adv)?;
        sync_hash(&mut self.allowed_peers, MAP_ALLOWED_PEERS, &peers)?;
        Ok(())
    }

    /// Records the instance in `slot` as Master or not and its effective priority: what
    /// `vrrp_rx` compares adverts with to fence in the kernel.
    pub fn set_state(&mut self, slot: u32, master: bool, priority: u8) -> Result<(), XdpError> {
        let mut rx = self
            .rx_instance
            .get(&slot, 0)
            .map_err(map_err(MAP_RX_INSTANCE))?;
        rx.master = u8::from(master);
        rx.priority = priority;
        self.rx_instance
            .set(slot, rx, 0)
            .map_err(map_err(MAP_RX_INSTANCE))
    }

    /// The instance state `vrrp_rx` sees for `slot`.
    pub fn rx_instance(&self, slot: u32) -> Result<RxInstance, XdpError> {
        self.rx_instance
            .get(&slot, 0)
            .map_err(map_err(MAP_RX_INSTANCE))
    }

    /// Whether `vrrp_rx` fenced `slot` in the kernel (a preempting advert while Master).
    pub fn slot_fenced(&self, slot: u32) -> Result<bool, XdpError> {
        Ok(self
            .slot_fence
            .get(&slot, 0)
            .map_err(map_err(MAP_SLOT_FENCE))?
            != 0)
    }

    /// Clears the kernel fence of `slot` (on becoming Master).
    pub fn clear_slot_fence(&mut self, slot: u32) -> Result<(), XdpError> {
        self.slot_fence
            .set(slot, 0, 0)
            .map_err(map_err(MAP_SLOT_FENCE))
    }

    /// Tells `vip_fence` the agent is alive, now.
    pub fn heartbeat(&mut self) -> Result<(), XdpError> {
        let hb = Heartbeat {
            last_ns: monotonic_ns(),
        };
        self.heartbeat.set(0, hb, 0).map_err(map_err(MAP_HEARTBEAT))
    }

    /// The last valid advert `vrrp_rx` recorded for `slot`.
    pub fn peer(&self, slot: u32) -> Result<PeerRecord, XdpError> {
        self.peer.get(&slot, 0).map_err(map_err(MAP_PEER))
    }

    /// The ring buffer of peer events; `None` once taken.
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Events lost to a full ring buffer.
    pub fn events_lost(&self) -> Result<u64, XdpError> {
        sum_per_cpu(&self.events_lost, MAP_EVENTS_LOST, 0)
    }

    /// VRRP packets `vrrp_rx` has seen for `vrid` (valid or not), summed over CPUs.
    pub fn rx_adverts(&self, vrid: u8) -> Result<u64, XdpError> {
        sum_per_cpu(&self.rx_adverts, MAP_RX_ADVERTS, u32::from(vrid))
    }

    /// Valid adverts for `slot`.
    pub fn accepted(&self, slot: u32) -> Result<u64, XdpError> {
        sum_per_cpu(&self.accepted, MAP_ACCEPTED, slot)
    }

    /// Adverts rejected for `vrid` with `reason`.
    pub fn rejected(&self, vrid: u8, reason: RejectReason) -> Result<u64, XdpError> {
        sum_per_cpu(&self.stats, MAP_STATS, stats_index(vrid, reason as u8))
    }

    /// Every non-zero rejection counter: (VRID, reason, count). VRIDs whose total
    /// (`RX_ADVERTS`) equals their valid adverts are skipped without reading their reasons.
    pub fn rejections(&self) -> Result<Vec<(u8, RejectReason, u64)>, XdpError> {
        let mut out = Vec::new();
        for vrid in 0..VRID_SLOTS {
            let vrid = vrid as u8;
            let seen = self.rx_adverts(vrid)?;
            if seen == 0 {
                continue;
            }
            let valid = self.accepted(vrid.into())?
                + self.accepted(ha_common::maps::instance_slot(vrid, true))?;
            if seen == valid {
                continue;
            }
            for reason in RejectReason::ALL {
                let n = self.rejected(vrid, reason)?;
                if n > 0 {
                    out.push((vrid, reason, n));
                }
            }
        }
        Ok(out)
    }

    /// VRRP packets for `vrid` that `vrrp_rx` judged another speaker's (passed to the stack, or
    /// dropped with `DROP_FOREIGN`), summed over CPUs.
    pub fn foreign(&self, vrid: u8) -> Result<u64, XdpError> {
        sum_per_cpu(&self.foreign, MAP_FOREIGN, u32::from(vrid))
    }

    /// Every non-zero foreign counter: (VRID, count).
    pub fn foreigners(&self) -> Result<Vec<(u8, u64)>, XdpError> {
        let mut out = Vec::new();
        for vrid in 0..VRID_SLOTS {
            let n = self.foreign(vrid as u8)?;
            if n > 0 {
                out.push((vrid as u8, n));
            }
        }
        Ok(out)
    }

    /// Packets `vip_fence` has dropped, summed over CPUs.
    pub fn fence_drops(&self) -> Result<u64, XdpError> {
        sum_per_cpu(&self.fence_drops, MAP_FENCE_DROPS, 0)
    }

    /// Puts `vip` (of the instance in `slot`) under `vip_fence`: its traffic is dropped while
    /// `fenced`, while `SLOT_FENCE[slot]` is set, or while the heartbeat is older than
    /// `heartbeat_timeout` (zero: never).
    pub fn set_fence(
        &mut self,
        vip: IpAddr,
        slot: u32,
        fenced: bool,
        heartbeat_timeout: Duration,
    ) -> Result<(), XdpError> {
        let entry = FenceEntry {
            fenced: u8::from(fenced),
            slot: slot as u16,
            heartbeat_timeout_ns: heartbeat_timeout.as_nanos() as u64,
            ..FenceEntry::default()
        };
        self.fence
            .insert(vip_key(vip), entry, 0)
            .map_err(map_err(MAP_FENCE))
    }

    /// Fences `vip` unconditionally (slot 0, no heartbeat): a test and tool helper.
    pub fn fence(&mut self, vip: IpAddr) -> Result<(), XdpError> {
        self.set_fence(vip, 0, true, Duration::ZERO)
    }

    /// Stops fencing `vip` and forgets it. Forgetting an unknown address is not an error.
    pub fn unfence(&mut self, vip: IpAddr) -> Result<(), XdpError> {
        match self.fence.remove(&vip_key(vip)) {
            Ok(()) => Ok(()),
            Err(e) if is_absent(&e) => Ok(()),
            Err(source) => Err(XdpError::Map {
                name: MAP_FENCE,
                source,
            }),
        }
    }

    /// Forgets every VIP in the fence map but `keep`.
    pub fn prune_fence(&mut self, keep: &[IpAddr]) -> Result<(), XdpError> {
        let keep: Vec<VipKey> = keep.iter().map(|v| vip_key(*v)).collect();
        let stale: Vec<VipKey> = self
            .fence
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !keep.contains(k))
            .collect();
        for k in stale {
            match self.fence.remove(&k) {
                Ok(()) => {}
                Err(e) if is_absent(&e) => {}
                Err(source) => {
                    return Err(XdpError::Map {
                        name: MAP_FENCE,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// The VIPs under the fence on this interface.
    pub fn fenced_vips(&self) -> Vec<VipKey> {
        self.fence.keys().filter_map(Result::ok).collect()
    }

    /// Whether the agent has `vip` fenced (the `fenced` flag; the kernel and heartbeat fences
    /// are separate: [`XdpDatapath::slot_fenced`]).
    pub fn is_fenced(&self, vip: IpAddr) -> Result<bool, XdpError> {
        match self.fence.get(&vip_key(vip), 0) {
            Ok(e) => Ok(e.fenced != 0),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(source) => Err(XdpError::Map {
                name: MAP_FENCE,
                source,
            }),
        }
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

/// The pin directory for `interface` in this network namespace under `root`:
/// `ROOT/<netns inode>-<interface>-v<MAPS_ABI>`. Checks that `root` is on a BPF filesystem;
/// when `root` is under `/sys/fs/bpf` and nothing is mounted there, mounts one (as systemd does
/// at boot). The pins of another layout for the same interface (an older ha-agent that did not
/// exit cleanly before an upgrade) are removed first: their maps cannot be adopted, and the
/// links an agent before netlink attachment pinned there, left attached, would refuse our XDP
/// and keep a fence whose stale heartbeat drops the VIPs' traffic (programs attached through
/// netlink are replaced in place by [`XdpDatapath::open`]).
pub fn pin_dir(root: &Path, interface: &str) -> Result<PathBuf, XdpError> {
    ensure_bpffs(root)?;
    let ns = std::fs::metadata("/proc/self/ns/net").map_err(|source| XdpError::Pin {
        what: "reading the network namespace of",
        path: "/proc/self/ns/net".into(),
        source,
    })?;
    remove_other_layouts(root, ns.ino(), interface)?;
    Ok(root.join(format!("{}-{interface}-v{MAPS_ABI}", ns.ino())))
}

/// Removes `ROOT/<ino>-<interface>-v<N>` for every layout N but [`MAPS_ABI`] (unpinning their
/// links detaches the programs), with a warning for each.
fn remove_other_layouts(root: &Path, ino: u64, interface: &str) -> Result<(), XdpError> {
    let prefix = format!("{ino}-{interface}-v");
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(XdpError::Pin {
                what: "listing",
                path: root.to_owned(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(layout) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        // Only a number after the prefix: `eth0-v` must not match interface `eth0-v1`'s pins.
        if layout.is_empty()
            || !layout.bytes().all(|b| b.is_ascii_digit())
            || layout == MAPS_ABI.to_string()
        {
            continue;
        }
        let path = entry.path();
        tracing::warn!(
            "removing {}: the pins of another ha-agent layout (v{layout}, this one is \
             v{MAPS_ABI}) for {interface}, left by an agent that did not exit cleanly; its \
             programs are detached or replaced",
            path.display()
        );
        std::fs::remove_dir_all(&path).map_err(|source| XdpError::Pin {
            what: "removing the pins of another layout",
            path,
            source,
        })?;
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs(2) on a NUL-terminated path into a zeroed struct it fills.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == BPF_FS_MAGIC
    }
}

fn ensure_bpffs(root: &Path) -> Result<(), XdpError> {
    let sys = Path::new("/sys/fs/bpf");
    if root.starts_with(sys) && !is_bpffs(sys) {
        // SAFETY: mount(2) with NUL-terminated constant strings.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c"/sys/fs/bpf".as_ptr(),
                c"bpf".as_ptr(),
                0,
                c"mode=0700".as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(XdpError::Pin {
                what: "mounting the BPF filesystem on",
                path: sys.into(),
                source: std::io::Error::last_os_error(),
            });
        }
        tracing::info!("mounted the BPF filesystem on /sys/fs/bpf");
    }
    std::fs::create_dir_all(root).map_err(|source| XdpError::Pin {
        what: "creating",
        path: root.into(),
        source,
    })?;
    if !is_bpffs(root) {
        return Err(XdpError::NotBpffs { path: root.into() });
    }
    Ok(())
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

/// Attaches the fence program `tc` to `interface` at [`TC_PRIORITY`]/[`TC_HANDLE`], replacing in
/// place the filter an earlier agent left there (true). The kernel keeps the filter with the
/// interface: aya's link would delete it when dropped, so it is forgotten.
fn attach_tc(
    tc: &mut SchedClassifier,
    interface: &str,
    attach_type: TcAttachType,
) -> Result<bool, ProgramError> {
    let handle = TcHandle::new(0, TC_HANDLE);
    let options = TcAttachOptions::Netlink(NlOptions {
        priority: TC_PRIORITY,
        handle,
        classid: None,
    });
    let (id, replaced) = match tc.attach_with_options(interface, attach_type, options) {
        Ok(id) => (id, false),
        Err(ProgramError::TcError(TcError::NetlinkError(e)))
            if e.raw_os_error() == Some(libc::EEXIST) =>
        {
            let link =
                SchedClassifierLink::attached(interface, attach_type, TC_PRIORITY, handle, None)
                    .map_err(TcError::IoError)?;
            (tc.attach_to_link(link)?, true)
        }
        Err(e) => return Err(e),
    };
    // A netlink link is (ifindex, hook, priority, handle): forgetting it leaks nothing.
    std::mem::forget(tc.take_link(id)?);
    Ok(replaced)
}

/// `IFLA_XDP_FLAGS` mode bit of `mode` (0: the kernel chooses, native where the driver can).
fn mode_flags(mode: XdpMode) -> u32 {
    match mode {
        XdpMode::Default => 0,
        XdpMode::Skb => rtnl::XDP_FLAGS_SKB_MODE,
        XdpMode::Driver => rtnl::XDP_FLAGS_DRV_MODE,
        XdpMode::Hardware => rtnl::XDP_FLAGS_HW_MODE,
    }
}

/// An interface's lock: held while the file is open.
#[derive(Debug)]
pub struct InterfaceLock {
    _file: File,
    path: PathBuf,
}

/// Takes the lock of `interface` in this network namespace (`LOCK_DIR/xdp-<netns inode>-
/// <interface>.lock`, `flock`, holding our pid), so a second agent cannot fight over it;
/// refused with the pid of the holder.
pub fn lock_interface(interface: &str) -> Result<InterfaceLock, XdpError> {
    let ns = std::fs::metadata("/proc/self/ns/net").map_err(|source| XdpError::Pin {
        what: "reading the network namespace of",
        path: "/proc/self/ns/net".into(),
        source,
    })?;
    let dir = Path::new(LOCK_DIR);
    let path = dir.join(format!("xdp-{}-{interface}.lock", ns.ino()));
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| XdpError::Pin { what, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io("opening the interface lock", &path))?;
    // SAFETY: flock(2) on a file descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(XdpError::Pin {
                what: "locking",
                path,
                source: err,
            });
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(XdpError::Locked {
            interface: interface.to_owned(),
            pid: pid.trim().to_owned(),
            path,
        });
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io("writing our pid to", &path))?;
    Ok(InterfaceLock { _file: file, path })
}

/// Removes the links an older ha-agent pinned in `dir` (unpinning the last reference detaches
/// them): their `bpf_link` XDP would refuse ours, their fence would keep its own maps.
fn remove_legacy_links(dir: &Path) -> Result<(), XdpError> {
    for name in LEGACY_LINKS {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                "removed {} (a link an older ha-agent pinned): its program is detached",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(XdpError::Pin {
                    what: "removing an older agent's link",
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn load_programs(ebpf: &mut Ebpf) -> Result<(), XdpError> {
    let xdp: &mut Xdp = program(ebpf, PROG_VRRP_RX)?;
    xdp.load().map_err(|source| XdpError::Program {
        name: PROG_VRRP_RX,
        source: Box::new(source),
    })?;
    for name in [PROG_FENCE_INGRESS, PROG_FENCE_EGRESS] {
        let tc: &mut SchedClassifier = program(ebpf, name)?;
        tc.load().map_err(|source| XdpError::Program {
            name,
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// Makes the hash map hold exactly `want`.
fn sync_hash(
    map: &mut HashMap<MapData, SlotAddr, u8>,
    name: &'static str,
    want: &std::collections::HashMap<SlotAddr, u8>,
) -> Result<(), XdpError> {
    let stale: Vec<SlotAddr> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !want.contains_key(k))
        .collect();
    for k in stale {
        match map.remove(&k) {
            Ok(()) => {}
            Err(e) if is_absent(&e) => {}
            Err(source) => return Err(XdpError::Map { name, source }),
        }
    }
    for (k, v) in want {
        map.insert(k, v, 0).map_err(map_err(name))?;
    }
    Ok(())
}

/// Whether a map operation failed because the key is not there: aya reports a lookup's miss as
/// `KeyNotFound` but a delete's as the syscall's `ENOENT`.
fn is_absent(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map { name, source }
}

/// An address as the maps hold it: IPv4 in the first 4 bytes.
pub fn addr16(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut out = [0u8; 16];
            out[..4].copy_from_slice(&a.octets());
            out
        }
        IpAddr::V6(a) => a.octets(),
    }
}

fn slot_addr(slot: u32, addr: IpAddr) -> SlotAddr {
    SlotAddr {
        slot: slot as u16,
        _pad: 0,
        addr: addr16(addr),
    }
}

/// The fence map's key for an address.
pub fn vip_key(vip: IpAddr) -> VipKey {
    match vip {
        IpAddr::V4(a) => VipKey::v4(a.octets()),
        IpAddr::V6(a) => VipKey::v6(a.octets()),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, XdpError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(XdpError::Missing {
        kind: "program",
        name,
    })?;
    prog.try_into().map_err(|source| XdpError::Program {
        name,
        source: Box::new(source),
    })
}

fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, XdpError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or(XdpError::Missing { kind: "map", name })?;
    T::try_from(map).map_err(|source| XdpError::Map { name, source })
}

fn sum_per_cpu(
    map: &PerCpuArray<MapData, u64>,
    name: &'static str,
    index: u32,
) -> Result<u64, XdpError> {
    let values = map
        .get(&index, 0)
        .map_err(|source| XdpError::Map { name, source })?;
    Ok(values.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syscall_error(errno: i32) -> MapError {
        MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_delete_elem",
            io_error: std::io::Error::from_raw_os_error(errno),
        })
    }

    /// A delete of a key that is not there fails with ENOENT: "already absent", not an error
    /// (every reload logged one for each VIP missing from an interface's fence map).
    #[test]
    fn a_missing_key_is_absent_other_failures_are_errors() {
        assert!(is_absent(&MapError::KeyNotFound));
        assert!(is_absent(&syscall_error(libc::ENOENT)));
        assert!(!is_absent(&syscall_error(libc::EPERM)));
        assert!(!is_absent(&syscall_error(libc::EINVAL)));
    }
}

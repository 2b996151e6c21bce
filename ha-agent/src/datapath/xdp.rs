//! The eBPF data path: loads `vrrp_rx` (XDP) and `vip_fence` (TC ingress + egress, TCX on
//! kernels ≥ 6.6) onto one interface, and reads and writes their maps.
//!
//! Dropping an [`XdpDatapath`] detaches both programs (aya owns the links).

use std::net::IpAddr;

use aya::{
    Ebpf, EbpfError,
    maps::{HashMap, MapData, MapError, PerCpuArray},
    programs::{ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode},
};
use ha_common::maps::VipKey;

use super::EBPF_OBJECT;

/// Names of the kernel objects, as in `ha-ebpf`.
pub const PROG_VRRP_RX: &str = "vrrp_rx";
pub const PROG_VIP_FENCE: &str = "vip_fence";
pub const MAP_RX_ADVERTS: &str = "RX_ADVERTS";
pub const MAP_FENCE: &str = "FENCE";
pub const MAP_FENCE_DROPS: &str = "FENCE_DROPS";

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
    #[error("map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
}

/// `vrrp_rx` and `vip_fence` attached to one interface, with their maps.
pub struct XdpDatapath {
    interface: String,
    // Holds the programs and their links: dropping it detaches them.
    _ebpf: Ebpf,
    rx_adverts: PerCpuArray<MapData, u64>,
    fence: HashMap<MapData, VipKey, u8>,
    fence_drops: PerCpuArray<MapData, u64>,
}

impl XdpDatapath {
    /// Loads the embedded programs and attaches them to `interface`: XDP in `mode`, the fence on
    /// TC ingress and egress. Fails with the step and the kernel's reason (verifier log included).
    pub fn attach(interface: &str, mode: XdpMode) -> Result<Self, XdpError> {
        let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(Box::new)?;

        let xdp: &mut Xdp = program(&mut ebpf, PROG_VRRP_RX)?;
        xdp.load().map_err(|source| XdpError::Program {
            name: PROG_VRRP_RX,
            source: Box::new(source),
        })?;
        xdp.attach(interface, mode)
            .map_err(|source| XdpError::Attach {
                name: PROG_VRRP_RX,
                hook: "xdp",
                interface: interface.to_owned(),
                source: Box::new(source),
            })?;

        // Before TCX (Linux 6.6) TC programs hang off a clsact qdisc; it may exist already.
        let tcx = aya::util::KernelVersion::current()
            .is_ok_and(|v| v >= aya::util::KernelVersion::new(6, 6, 0));
        if !tcx && let Err(e) = aya::programs::tc::qdisc_add_clsact(interface) {
            tracing::debug!("clsact qdisc on {interface}: {e} (an existing one is fine)");
        }
        let tc: &mut SchedClassifier = program(&mut ebpf, PROG_VIP_FENCE)?;
        tc.load().map_err(|source| XdpError::Program {
            name: PROG_VIP_FENCE,
            source: Box::new(source),
        })?;
        for (hook, attach_type) in [
            ("tc ingress", TcAttachType::Ingress),
            ("tc egress", TcAttachType::Egress),
        ] {
            tc.attach(interface, attach_type)
                .map_err(|source| XdpError::Attach {
                    name: PROG_VIP_FENCE,
                    hook,
                    interface: interface.to_owned(),
                    source: Box::new(source),
                })?;
        }

        let rx_adverts = take_map(&mut ebpf, MAP_RX_ADVERTS)?;
        let fence = take_map(&mut ebpf, MAP_FENCE)?;
        let fence_drops = take_map(&mut ebpf, MAP_FENCE_DROPS)?;
        Ok(Self {
            interface: interface.to_owned(),
            _ebpf: ebpf,
            rx_adverts,
            fence,
            fence_drops,
        })
    }

    /// The interface the programs are attached to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// VRRP packets `vrrp_rx` has seen for `vrid`, summed over CPUs.
    pub fn rx_adverts(&self, vrid: u8) -> Result<u64, XdpError> {
        sum_per_cpu(&self.rx_adverts, MAP_RX_ADVERTS, u32::from(vrid))
    }

    /// Packets `vip_fence` has dropped, summed over CPUs.
    pub fn fence_drops(&self) -> Result<u64, XdpError> {
        sum_per_cpu(&self.fence_drops, MAP_FENCE_DROPS, 0)
    }

    /// Starts dropping traffic to and from `vip` on this interface.
    pub fn fence(&mut self, vip: IpAddr) -> Result<(), XdpError> {
        self.fence
            .insert(vip_key(vip), 1, 0)
            .map_err(|source| XdpError::Map {
                name: MAP_FENCE,
                source,
            })
    }

    /// Stops dropping traffic of `vip`. Unfencing an address that is not fenced is not an error.
    pub fn unfence(&mut self, vip: IpAddr) -> Result<(), XdpError> {
        match self.fence.remove(&vip_key(vip)) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(XdpError::Map {
                name: MAP_FENCE,
                source,
            }),
        }
    }

    /// Whether `vip` is fenced.
    pub fn is_fenced(&self, vip: IpAddr) -> Result<bool, XdpError> {
        match self.fence.get(&vip_key(vip), 0) {
            Ok(_) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(source) => Err(XdpError::Map {
                name: MAP_FENCE,
                source,
            }),
        }
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

//! What the agent knows about itself, published after every event for the control socket,
//! metrics and dumps (`tokio::sync::watch`: readers see the latest, never block the loop).
//! A top-level module so that `agent` (which writes it) and `control` (which reads it) both
//! import it from below.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, Instant, SystemTime},
};

use crate::vrrp::instance::State;

/// One instance as an operator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    /// The `use_vmac` macvlan the VIPs are on.
    pub vmac: Option<String>,
    pub vrid: u8,
    /// 2 or 3.
    pub version: u8,
    /// 4 or 6.
    pub family: u8,
    pub state: State,
    /// Since when (monotonic) and since when (wall clock) the instance is in `state`.
    pub state_since: Instant,
    pub state_since_wall: SystemTime,
    pub configured_priority: u8,
    pub effective_priority: u8,
    /// The master we hear (or ourselves), with its priority.
    pub master: Option<(IpAddr, u8)>,
    pub vips: Vec<IpAddr>,
    pub transitions: u64,
    /// Duration of the last takeover: from the last advert of the previous master (or the
    /// priority-0 advert) to our becoming master.
    pub last_takeover: Option<Duration>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Fault conditions now (interface down, tracker in fault).
    pub fault: bool,
    pub trackers: Vec<TrackerStatus>,
    /// Claims other hosts made (ARP, NA from another MAC) to each VIP while we were its master:
    /// address conflicts.
    pub vip_conflicts: BTreeMap<IpAddr, u64>,
}

/// A tracker reference and its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerStatus {
    /// `interface`, `script`, `file`, `process`; `vip`, `src_ip`, `config` for faults of their own.
    pub kind: &'static str,
    pub name: String,
    pub up: bool,
    pub weight: i32,
    /// A process: how many of its processes run.
    pub count: Option<u32>,
}

/// The whole agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// `xdp` or `socket`.
    pub datapath: &'static str,
    pub started: SystemTime,
    pub config_file: std::path::PathBuf,
    pub instances: Vec<InstanceStatus>,
    /// Adverts dropped, by (interface, VRID, reason name): from the receive sockets.
    pub rejected: BTreeMap<(String, u8, &'static str), u64>,
    /// Packets the TC fence dropped, by interface (empty on the socket datapath).
    pub fence_drops: BTreeMap<String, u64>,
    /// VRRP for other speakers (VRIDs, groups, VLANs, MACs not ours), by (interface, VRID):
    /// passed to the kernel by XDP, ignored by the receive sockets.
    pub foreign: BTreeMap<(String, u8), u64>,
    /// Times the event loop woke up (an advert, a timer, a tracker, a signal...). On the XDP
    /// datapath adverts that change nothing do not wake it.
    pub wakeups: u64,
    /// ARP/NA claims of our VIPs the kernel dropped unread (a flood beyond what the agent reads).
    pub claims_dropped: u64,
    /// XDP peer events lost to a full ring buffer, by interface (each loss is resynchronised
    /// from the peer records).
    pub events_lost: BTreeMap<String, u64>,
    /// The `virtual_server`s (empty without any).
    pub virtual_servers: Vec<VirtualServerStatus>,
}

/// One `virtual_server` as `ha-agent status` shows it (and the JSON's `virtual_servers`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VirtualServerStatus {
    pub address: std::net::SocketAddr,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// `lb_algo`: `rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`.
    pub algo: String,
    /// `lb_kind`: `DR` or `TUN`.
    pub kind: String,
    pub quorum_up: bool,
    /// The sorry server takes every new flow (below quorum).
    pub sorry_active: bool,
    pub sorry_server: Option<std::net::SocketAddr>,
    /// `ha_suspend` and this node is not master of the address: checkers stopped.
    pub suspended: bool,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
    pub reals: Vec<RealServerStatus>,
}

/// One real server of a virtual server.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RealServerStatus {
    pub address: std::net::SocketAddr,
    /// `DR` or `TUN` (`ipvsadm`'s Route, Tunnel).
    pub kind: String,
    /// `up`, `down`, `inhibited` (down, kept with weight 0), `no neighbour` (up, next hop not
    /// resolved: not placed).
    pub health: String,
    /// The weight new flows see now (0 when down or inhibited).
    pub weight: u32,
    pub configured_weight: u32,
    pub checkers: Vec<CheckerStatus>,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// One health checker's last round.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckerStatus {
    /// `TCP_CHECK`, `HTTP_GET`, …
    pub kind: String,
    pub up: bool,
    /// `up`, `up weight N`, or why it failed; None before the first round.
    pub last: Option<String>,
    pub latency_seconds: Option<f64>,
    pub failures: u64,
}

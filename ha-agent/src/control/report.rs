//! The status as operators and scripts read it: a stable JSON document (`ha-agent status
//! --json`, the `.json` dump, the control socket's answer), a table, and keepalived-style data
//! and stats dumps.
//!
//! # JSON schema (`"schema": 1`)
//!
//! Fields are only ever added within a schema number; a removal or a change of meaning bumps it.
//! Times are seconds (floats); absolute times are Unix epoch seconds.
//!
//! ```text
//! {
//!   "schema": 1,
//!   "agent": {
//!     "version": "0.1.0",            // ha-agent's version
//!     "pid": 1234,
//!     "config_file": "/etc/keepalived/keepalived.conf",
//!     "datapath": "xdp" | "socket",
//!     "started_unix": 1700000000.0,
//!     "uptime_seconds": 12.5,
//!     "wakeups": 340,                // event-loop wake-ups since start (adverts, timers, ...)
//!     "claims_dropped": 0            // ARP/NA claims of our VIPs the kernel dropped unread (a
//!                                    // flood beyond the 1000/s per interface the agent reads)
//!   },
//!   "instances": [{
//!     "name": "VI_1", "interface": "eth0", "vrid": 51,
//!     "version": 2 | 3,              // VRRP version
//!     "family": 4 | 6,
//!     "state": "INIT" | "BACKUP" | "MASTER" | "FAULT",
//!     "state_since_unix": 1700000001.0,
//!     "time_in_state_seconds": 11.5,
//!     "configured_priority": 150,
//!     "effective_priority": 130,     // configured ± tracker weights
//!     "master": {"address": "192.0.2.1", "priority": 150, "self": true} | null,
//!     "vips": ["192.0.2.200"],
//!     "transitions": 1,
//!     "last_takeover_seconds": 0.312 | null,  // last advert of the old master → we are master
//!     "fault": false,
//!     "adverts": {
//!       "sent": 120, "received": 3,
//!       "rejected": {"auth_mismatch": 2}      // this interface and VRID, by reason
//!     },
//!     "trackers": [{"kind": "interface" | "script" | "file" | "process", "name": "chk",
//!                   "up": true, "weight": -20, "count": 2 /* process: how many run */}],
//!     "vip_conflicts": {"192.0.2.200": 0}  // per VIP: claims (ARP/NA) by another MAC while we
//!                                          // were master: address conflicts
//!   }],
//!   "rejected": [{"interface": "eth0", "vrid": 51, "reason": "auth_mismatch", "count": 2}],
//!   "fence_drops": {"eth0": 0},      // packets the TC fence dropped; empty on the socket datapath
//!   "events_lost": {"eth0": 0},      // XDP peer events lost to a full ring buffer (each loss
//!                                    // resynchronised from the peer records); empty on socket
//!   "foreign": [{"interface": "eth0", "vrid": 52, "count": 7}]
//!                                    // VRRP for other speakers (VRID, group, VLAN or MAC not
//!                                    // ours): passed to the kernel by XDP, ignored by sockets
//!   "virtual_servers": [{            // keepalived's virtual_server blocks (absent: none)
//!     "address": "10.0.0.100:80", "protocol": "TCP" | "UDP", "algo": "wrr", "kind": "DR" | "TUN",
//!     "quorum_up": true, "sorry_active": false, "sorry_server": "10.0.0.99:80" | null,
//!     "suspended": false,            // ha_suspend and not master of the address
//!     "packets": 0, "bytes": 0, "new_flows": 0,
//!     "reals": [{"address": "10.0.0.11:80", "kind": "DR",
//!                "health": "up" | "down" | "inhibited" | "no neighbour" | "no route",
//!                "weight": 1, "configured_weight": 1, "packets": 0, "bytes": 0, "new_flows": 0,
//!                "checkers": [{"kind": "HTTP_GET", "up": true, "last": "up" | "HTTP status 503",
//!                              "latency_seconds": 0.002, "failures": 0}]}]
//!   }]
//! }
//! ```
//!
//! Rejected adverts are counted by the receive sockets by (interface, VRID found in the packet,
//! reason); `unknown_vrid` and malformed packets appear only in the top-level list. An IPv4 and
//! an IPv6 instance with the same VRID on one interface share their per-instance counts.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::IpAddr,
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};

use crate::{
    status::{InstanceStatus, Status},
    vrrp::instance::State,
};

/// The schema number of [`Report`]'s JSON.
pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub agent: AgentReport,
    pub instances: Vec<InstanceReport>,
    pub rejected: Vec<RejectedReport>,
    pub fence_drops: BTreeMap<String, u64>,
    #[serde(default)]
    pub events_lost: BTreeMap<String, u64>,
    #[serde(default)]
    pub foreign: Vec<ForeignReport>,
    #[serde(default)]
    pub virtual_servers: Vec<crate::status::VirtualServerStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignReport {
    pub interface: String,
    pub vrid: u8,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub version: String,
    pub pid: u32,
    pub config_file: String,
    pub datapath: String,
    pub started_unix: f64,
    pub uptime_seconds: f64,
    #[serde(default)]
    pub wakeups: u64,
    #[serde(default)]
    pub claims_dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub name: String,
    pub interface: String,
    /// The `use_vmac` macvlan the VIPs are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmac: Option<String>,
    pub vrid: u8,
    pub version: u8,
    pub family: u8,
    pub state: String,
    pub state_since_unix: f64,
    pub time_in_state_seconds: f64,
    pub configured_priority: u8,
    pub effective_priority: u8,
    pub master: Option<MasterReport>,
    pub vips: Vec<IpAddr>,
    pub transitions: u64,
    pub last_takeover_seconds: Option<f64>,
    pub fault: bool,
    pub adverts: AdvertsReport,
    pub trackers: Vec<TrackerReport>,
    #[serde(default)]
    pub vip_conflicts: BTreeMap<IpAddr, u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MasterReport {
    pub address: IpAddr,
    pub priority: u8,
    /// This node is the master.
    #[serde(rename = "self")]
    pub is_self: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdvertsReport {
    pub sent: u64,
    pub received: u64,
    pub rejected: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerReport {
    pub kind: String,
    pub name: String,
    pub up: bool,
    pub weight: i32,
    /// A `process` tracker: how many of its processes run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedReport {
    pub interface: String,
    pub vrid: u8,
    pub reason: String,
    pub count: u64,
}

/// The operator's name of a state: keepalived's words, `INIT` before the first event.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl Report {
    /// The report of `status` as of `now`.
    pub fn new(status: &Status, now: Instant, now_wall: SystemTime) -> Report {
        let instances = status
            .instances
            .iter()
            .map(|i| InstanceReport::new(i, status, now))
            .collect();
        Report {
            schema: SCHEMA,
            agent: AgentReport {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                pid: std::process::id(),
                config_file: status.config_file.display().to_string(),
                datapath: status.datapath.to_owned(),
                started_unix: unix(status.started),
                uptime_seconds: now_wall
                    .duration_since(status.started)
                    .unwrap_or_default()
                    .as_secs_f64(),
                wakeups: status.wakeups,
                claims_dropped: status.claims_dropped,
            },
            instances,
            rejected: status
                .rejected
                .iter()
                .map(|((interface, vrid, reason), &count)| RejectedReport {
                    interface: interface.clone(),
                    vrid: *vrid,
                    reason: (*reason).to_owned(),
                    count,
                })
                .collect(),
            fence_drops: status.fence_drops.clone(),
            events_lost: status.events_lost.clone(),
            foreign: status
                .foreign
                .iter()
                .map(|((interface, vrid), &count)| ForeignReport {
                    interface: interface.clone(),
                    vrid: *vrid,
                    count,
                })
                .collect(),
            virtual_servers: status.virtual_servers.clone(),
        }
    }

    /// Reads a report (what `ha-agent status --json` prints, or a `.json` dump).
    pub fn from_json(text: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Now, from the wall and monotonic clocks.
    pub fn now(status: &Status) -> Report {
        Report::new(status, Instant::now(), SystemTime::now())
    }

    /// One line for systemd's STATUS=: each instance's state, and the data path.
    pub fn summary(&self) -> String {
        if self.instances.is_empty() {
            return "starting".to_owned();
        }
        let states: Vec<String> = self
            .instances
            .iter()
            .map(|i| format!("{} {}", i.name, i.state))
            .collect();
        format!("{}; datapath {}", states.join(", "), self.agent.datapath)
    }
}

impl InstanceReport {
    fn new(i: &InstanceStatus, status: &Status, now: Instant) -> InstanceReport {
        let rejected = status
            .rejected
            .iter()
            .filter(|((interface, vrid, _), _)| *interface == i.interface && *vrid == i.vrid)
            .map(|((_, _, reason), &count)| ((*reason).to_owned(), count))
            .collect();
        InstanceReport {
            name: i.name.clone(),
            interface: i.interface.clone(),
            vmac: i.vmac.clone(),
            vrid: i.vrid,
            version: i.version,
            family: i.family,
            state: state_name(i.state).to_owned(),
            state_since_unix: unix(i.state_since_wall),
            time_in_state_seconds: now.saturating_duration_since(i.state_since).as_secs_f64(),
            configured_priority: i.configured_priority,
            effective_priority: i.effective_priority,
            master: i.master.map(|(address, priority)| MasterReport {
                address,
                priority,
                is_self: i.state == State::Master,
            }),
            vips: i.vips.clone(),
            transitions: i.transitions,
            last_takeover_seconds: i.last_takeover.map(|d| d.as_secs_f64()),
            fault: i.fault,
            adverts: AdvertsReport {
                sent: i.adverts_sent,
                received: i.adverts_received,
                rejected,
            },
            trackers: i
                .trackers
                .iter()
                .map(|t| TrackerReport {
                    kind: t.kind.to_owned(),
                    name: t.name.clone(),
                    up: t.up,
                    weight: t.weight,
                    count: t.count,
                })
                .collect(),
            vip_conflicts: i.vip_conflicts.clone(),
        }
    }
}

/// A duration as people read it: `850ms`, `42s`, `3m12s`, `5h03m`, `2d04h`.
pub fn human_duration(seconds: f64) -> String {
    let d = Duration::from_secs_f64(seconds.max(0.0));
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn master_cell(m: &Option<MasterReport>) -> String {
    match m {
        Some(m) if m.is_self => format!("{} (self)", m.address),
        Some(m) => format!("{} ({})", m.address, m.priority),
        None => "-".to_owned(),
    }
}

fn vips_cell(vips: &[IpAddr]) -> String {
    if vips.is_empty() {
        "-".to_owned()
    } else {
        vips.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `ha-agent status` without `--json`.
pub fn render_table(r: &Report) -> String {
    let mut out = format!(
        "ha-agent {} (pid {}), config {}, datapath {}, up {}\n\n",
        r.agent.version,
        r.agent.pid,
        r.agent.config_file,
        r.agent.datapath,
        human_duration(r.agent.uptime_seconds)
    );
    let mut rows = vec![
        [
            "INSTANCE", "IF", "VRID", "STATE", "PRIO", "EFF", "MASTER", "VIPS", "IN-STATE",
            "TRANS", "SENT", "RECV", "REJECTED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for i in &r.instances {
        let rejected: u64 = i.adverts.rejected.values().sum();
        rows.push(vec![
            i.name.clone(),
            i.interface.clone(),
            format!("{}{}", i.vrid, if i.family == 6 { "/v6" } else { "" }),
            i.state.clone(),
            i.configured_priority.to_string(),
            i.effective_priority.to_string(),
            master_cell(&i.master),
            vips_cell(&i.vips),
            human_duration(i.time_in_state_seconds),
            i.transitions.to_string(),
            i.adverts.sent.to_string(),
            i.adverts.received.to_string(),
            rejected.to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    let trackers: Vec<Vec<String>> = r
        .instances
        .iter()
        .flat_map(|i| {
            i.trackers.iter().map(|t| {
                vec![
                    format!("  {}", i.name),
                    t.kind.clone(),
                    t.name.clone(),
                    match t.count {
                        Some(n) => format!("{} ({n} running)", if t.up { "up" } else { "DOWN" }),
                        None => if t.up { "up" } else { "DOWN" }.to_owned(),
                    },
                    format!("weight {}", t.weight),
                ]
            })
        })
        .collect();
    if !trackers.is_empty() {
        out.push_str("\ntrackers:\n");
        out.push_str(&table(&trackers));
    }
    let conflicts: Vec<Vec<String>> = r
        .instances
        .iter()
        .flat_map(|i| {
            i.vip_conflicts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(vip, n)| vec![format!("  {}", i.name), vip.to_string(), n.to_string()])
        })
        .collect();
    if !conflicts.is_empty() {
        out.push_str("\naddress conflicts (claims by another host while master):\n");
        out.push_str(&table(&conflicts));
    }
    if !r.rejected.is_empty() {
        out.push_str("\nrejected adverts:\n");
        let rows: Vec<Vec<String>> = r
            .rejected
            .iter()
            .map(|x| {
                vec![
                    format!("  {}", x.interface),
                    format!("vrid {}", x.vrid),
                    x.reason.clone(),
                    x.count.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }
    if !r.fence_drops.is_empty() {
        out.push_str("\nfence drops:\n");
        let rows: Vec<Vec<String>> = r
            .fence_drops
            .iter()
            .map(|(i, n)| vec![format!("  {i}"), n.to_string()])
            .collect();
        out.push_str(&table(&rows));
    }
    // Only when something was lost: the usual answer is nothing.
    let lost: Vec<Vec<String>> = r
        .events_lost
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| vec![format!("  {i}"), n.to_string()])
        .collect();
    if !lost.is_empty() {
        out.push_str("\nXDP events lost (resynchronised from the peer records):\n");
        out.push_str(&table(&lost));
    }
    if r.agent.claims_dropped > 0 {
        let _ = writeln!(
            out,
            "\naddress claims dropped unread (a flood): {}",
            r.agent.claims_dropped
        );
    }
    if !r.foreign.is_empty() {
        out.push_str("\nother speakers' adverts (not for our instances; XDP passes them on):\n");
        let rows: Vec<Vec<String>> = r
            .foreign
            .iter()
            .map(|x| {
                vec![
                    format!("  {}", x.interface),
                    format!("vrid {}", x.vrid),
                    x.count.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }
    if !r.virtual_servers.is_empty() {
        out.push('\n');
        out.push_str(&render_ipvsadm(&r.virtual_servers));
    }
    out
}

/// The virtual servers as `ipvsadm -Ln` shows them, with each real server's health and the
/// load balancer's counters (ActiveConn/InActConn: XDP keeps no connection states; flows).
pub fn render_ipvsadm(vss: &[crate::status::VirtualServerStatus]) -> String {
    let mut rows = vec![
        [
            "Prot LocalAddress:Port",
            "Scheduler Flags",
            "",
            "",
            "",
            "",
            "",
        ]
        .map(String::from)
        .to_vec(),
        [
            "  -> RemoteAddress:Port",
            "Forward",
            "Weight",
            "Health",
            "Flows",
            "Packets",
            "Bytes",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let forward = |k: &str| if k == "TUN" { "Tunnel" } else { "Route" }.to_owned();
    for vs in vss {
        let mut flags = Vec::new();
        if !vs.quorum_up {
            flags.push("quorum down".to_owned());
        }
        if vs.sorry_active {
            flags.push("sorry server".to_owned());
        }
        if vs.suspended {
            flags.push("suspended".to_owned());
        }
        rows.push(vec![
            format!("{:<4} {}", vs.protocol, vs.address),
            format!("{} {}", vs.algo, flags.join(", "))
                .trim_end()
                .to_owned(),
            String::new(),
            String::new(),
            vs.new_flows.to_string(),
            vs.packets.to_string(),
            vs.bytes.to_string(),
        ]);
        for rs in &vs.reals {
            rows.push(vec![
                format!("  -> {}", rs.address),
                forward(&rs.kind),
                rs.weight.to_string(),
                rs.health.clone(),
                rs.new_flows.to_string(),
                rs.packets.to_string(),
                rs.bytes.to_string(),
            ]);
        }
        if let Some(sorry) = vs.sorry_server {
            let weight = if vs.sorry_active { "1" } else { "0" };
            rows.push(vec![
                format!("  -> {sorry}"),
                forward(&vs.kind),
                weight.into(),
                "sorry".into(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    table(&rows)
}

/// SIGUSR1's data dump (keepalived's `/tmp/keepalived.data`): the state of every instance.
pub fn render_data(r: &Report) -> String {
    let mut out = format!(
        "------< ha-agent data dump >------\nversion {}\npid {}\nconfig {}\ndatapath {}\nuptime {}\n",
        r.agent.version,
        r.agent.pid,
        r.agent.config_file,
        r.agent.datapath,
        human_duration(r.agent.uptime_seconds)
    );
    for i in &r.instances {
        let _ = write!(
            out,
            "\n VRRP Instance = {}\n   Interface = {}{}\n   Virtual Router ID = {}\n   \
             VRRP version = {}\n   Family = IPv{}\n   State = {}\n   Time in state = {}\n   \
             Configured priority = {}\n   Effective priority = {}\n   Master = {}\n   \
             Fault = {}\n   Last takeover = {}\n   Virtual IP = {}\n",
            i.name,
            i.interface,
            i.vmac
                .as_ref()
                .map(|v| format!(" (VIPs on use_vmac {v})"))
                .unwrap_or_default(),
            i.vrid,
            i.version,
            i.family,
            i.state,
            human_duration(i.time_in_state_seconds),
            i.configured_priority,
            i.effective_priority,
            master_cell(&i.master),
            i.fault,
            i.last_takeover_seconds
                .map(|s| format!("{s:.3}s"))
                .unwrap_or_else(|| "-".into()),
            i.vips.len(),
        );
        for v in &i.vips {
            let _ = writeln!(out, "     {v}");
        }
        for t in &i.trackers {
            let _ = writeln!(
                out,
                "   Tracked {} = {} {}{} weight {}",
                t.kind,
                t.name,
                if t.up { "UP" } else { "DOWN" },
                t.count.map_or(String::new(), |n| format!(" ({n} running)")),
                t.weight
            );
        }
    }
    out
}

/// SIGUSR2's stats dump (keepalived's `/tmp/keepalived.stats`): counters per instance.
pub fn render_stats(r: &Report) -> String {
    let mut out = String::from("------< ha-agent stats dump >------\n");
    for i in &r.instances {
        let _ = write!(
            out,
            "\nVRRP Instance: {}\n  Advertisements:\n    Received: {}\n    Sent: {}\n  \
             Transitions: {}\n  Packet errors:\n",
            i.name, i.adverts.received, i.adverts.sent, i.transitions,
        );
        if i.adverts.rejected.is_empty() {
            out.push_str("    none\n");
        }
        for (reason, n) in &i.adverts.rejected {
            let _ = writeln!(out, "    {reason}: {n}");
        }
        for (vip, n) in i.vip_conflicts.iter().filter(|(_, n)| **n > 0) {
            let _ = writeln!(out, "  Address conflicts for {vip}: {n}");
        }
    }
    if !r.rejected.is_empty() {
        out.push_str("\nRejected adverts (all):\n");
        for x in &r.rejected {
            let _ = writeln!(
                out,
                "  {} vrid {} {}: {}",
                x.interface, x.vrid, x.reason, x.count
            );
        }
    }
    for (interface, n) in &r.fence_drops {
        let _ = writeln!(out, "\nFence drops on {interface}: {n}");
    }
    for (interface, n) in r.events_lost.iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(out, "XDP events lost on {interface}: {n}");
    }
    if r.agent.claims_dropped > 0 {
        let _ = writeln!(
            out,
            "Address claims dropped unread: {}",
            r.agent.claims_dropped
        );
    }
    for x in &r.foreign {
        let _ = writeln!(
            out,
            "\nOther speakers' adverts on {} vrid {}: {}",
            x.interface, x.vrid, x.count
        );
    }
    out
}

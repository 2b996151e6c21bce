//! keepalived's LVS half: `virtual_server`s served by the XDP load balancer (`xdp_lb`).
//!
//! - `maglev.rs`: the lookup table of a service from its real servers' identities and weights
//!   (pure; identical on every director for the same configuration and health);
//! - `manager.rs`: per service and real server, the health state the checkers report, weights,
//!   quorum/hysteresis, sorry server, inhibit_on_failure, alpha/omega, the notify scripts, and
//!   what the datapath must hold ([`LbDatapath`]);
//! - `check/`: the health checkers (TCP, HTTP/SSL, MISC, PING, UDP, DNS, SMTP, FILE), tokio tasks
//!   that send a [`CheckEvent`] after each round;
//! - the datapath side is `datapath/xdp/lb.rs` (maps of `xdp_lb`).

pub mod check;
pub mod maglev;
pub mod manager;
pub mod neigh;
pub mod status;

use std::time::{Duration, Instant};

use ha_common::lb::{LbStats, RealEntry, ServiceEntry, ServiceKey};

/// Which checker: indexes into `Lvs::virtual_servers[service].real_servers[real].checkers[checker]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId {
    pub service: usize,
    pub real: usize,
    pub checker: usize,
}

/// A checker's verdict after a round (its retries included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Up,
    /// Up with this weight (`misc_dynamic` exit code − 2, FILE_CHECK with `weight`).
    UpWeight(u32),
    /// Down, with what failed ("connect: connection refused", "HTTP status 503", …).
    Down(String),
}

/// Sent by a checker task after each round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    pub id: CheckId,
    pub verdict: Verdict,
    /// How long the last attempt took (connect + request), when it got that far.
    pub latency: Option<Duration>,
    pub at: Instant,
}

/// What the manager tells the datapath. `datapath/xdp/lb.rs` implements it on the maps of each
/// interface that carries a service's address; tests use a recording fake.
pub trait LbDatapath {
    /// Adds or replaces a service.
    fn set_service(&mut self, key: ServiceKey, entry: ServiceEntry) -> anyhow::Result<()>;
    /// Removes a service (its ring is left; the index is free for reuse after `set_ring`).
    fn remove_service(&mut self, key: &ServiceKey) -> anyhow::Result<()>;
    /// Writes a real server's forwarding entry at `index`.
    fn set_real(&mut self, index: u32, entry: RealEntry) -> anyhow::Result<()>;
    /// Writes a service's whole lookup table (`ring.len() == LB_RING_SIZE`).
    fn set_ring(&mut self, service_index: u32, ring: &[u32]) -> anyhow::Result<()>;
    /// `LB_REAL_STATS[index]` summed over CPUs.
    fn real_stats(&self, index: u32) -> anyhow::Result<LbStats>;
    /// `LB_SERVICE_STATS[index]` summed over CPUs.
    fn service_stats(&self, index: u32) -> anyhow::Result<LbStats>;
    /// `LB_COUNTERS` summed over CPUs, by `ha_common::lb::lb_counter` index.
    fn counters(&self) -> anyhow::Result<Vec<u64>>;
}

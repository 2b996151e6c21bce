//! The status the agent publishes (`tokio::sync::watch`) for the control socket, the metrics and
//! the dumps: each instance's counters and state history, the agent's totals, and when it is
//! due to be published again.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::watch;

use crate::{
    agent::plan::Plan,
    status::{InstanceStatus, Status, TrackerStatus},
    vrrp::instance::State,
};

/// The longest the published status (counters, wake-ups) lags the loop without a state change.
const PUBLISH_PERIOD: Duration = Duration::from_millis(100);

/// One instance's history, as `status` shows it.
#[derive(Clone)]
pub(super) struct Counters {
    pub state_since: Instant,
    pub state_since_wall: SystemTime,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub last_takeover: Option<Duration>,
    pub trackers: Vec<TrackerStatus>,
}

/// What the loop knows of an instance now.
pub(super) struct Live {
    pub state: State,
    pub effective: u8,
    pub master: Option<(IpAddr, u8)>,
    pub fault: bool,
    pub received: u64,
}

/// The agent's totals.
pub(super) struct Totals {
    pub datapath: &'static str,
    pub rejected: BTreeMap<(String, u8, &'static str), u64>,
    pub fence_drops: BTreeMap<String, u64>,
    pub foreign: BTreeMap<(String, u8), u64>,
    pub claims_dropped: u64,
    pub events_lost: BTreeMap<String, u64>,
    pub virtual_servers: Vec<crate::status::VirtualServerStatus>,
}

pub(super) struct Board {
    tx: watch::Sender<Status>,
    started: SystemTime,
    config_file: PathBuf,
    /// When the status was last published, and whether a state changed since.
    published: Option<Instant>,
    dirty: bool,
    /// Event-loop wake-ups.
    pub wakeups: u64,
    per: Vec<Counters>,
}

impl Board {
    /// The board of `instances` instances; `previous` supplies the channel, the start time and
    /// the wake-ups on reload.
    pub fn new(config_file: &Path, instances: usize, previous: Option<&Board>) -> Board {
        let started = previous.map_or_else(SystemTime::now, |p| p.started);
        let tx = match previous {
            Some(p) => p.tx.clone(),
            None => {
                watch::channel(Status {
                    datapath: "socket",
                    started,
                    config_file: config_file.to_owned(),
                    instances: Vec::new(),
                    rejected: BTreeMap::new(),
                    fence_drops: BTreeMap::new(),
                    foreign: BTreeMap::new(),
                    wakeups: 0,
                    claims_dropped: 0,
                    events_lost: BTreeMap::new(),
                    virtual_servers: Vec::new(),
                })
                .0
            }
        };
        let now = (Instant::now(), SystemTime::now());
        Board {
            tx,
            started,
            config_file: config_file.to_owned(),
            published: None,
            dirty: true,
            wakeups: previous.map_or(0, |p| p.wakeups),
            per: vec![
                Counters {
                    state_since: now.0,
                    state_since_wall: now.1,
                    transitions: 0,
                    adverts_sent: 0,
                    last_takeover: None,
                    trackers: Vec::new(),
                };
                instances
            ],
        }
    }

    /// A receiver of the status.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.tx.subscribe()
    }

    /// Something an operator sees changed: publish at the end of this loop turn.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    pub fn counter(&self, i: usize) -> &Counters {
        &self.per[i]
    }

    pub fn counters(&mut self, i: usize) -> &mut Counters {
        &mut self.per[i]
    }

    /// Instance `i`'s counters carry over to index `to` of `next` (a reload that keeps it).
    pub fn carry(&self, i: usize, next: &mut Board, to: usize) {
        next.per[to] = self.per[i].clone();
    }

    /// Instance `i` went to `to` at `now`; `heard` is when it last heard the master (the start
    /// of the takeover, when it became master).
    pub fn transition(&mut self, i: usize, to: State, now: Instant, heard: Option<Instant>) {
        self.dirty = true;
        let c = &mut self.per[i];
        c.transitions += 1;
        c.state_since = now;
        c.state_since_wall = SystemTime::now();
        if to == State::Master {
            c.last_takeover = heard.map(|t| now.saturating_duration_since(t));
        }
    }

    /// Whether the status is due: after a state change, or when the last one is older than
    /// [`PUBLISH_PERIOD`] (building it for every instance on every loop turn cost a master of
    /// 255 instances more than the adverts did).
    pub fn due(&self) -> bool {
        self.dirty
            || self
                .published
                .is_none_or(|at| at.elapsed() >= PUBLISH_PERIOD)
    }

    /// Publishes the status of `plan`'s instances (`live`: what the loop knows of each now).
    pub fn publish(
        &mut self,
        plan: &Plan,
        live: Vec<Live>,
        conflicts: impl Fn(usize, IpAddr) -> u64,
        totals: Totals,
    ) {
        self.published = Some(Instant::now());
        self.dirty = false;
        let instances = plan
            .instances
            .iter()
            .zip(live)
            .enumerate()
            .map(|(i, (ip, now))| {
                let c = &self.per[i];
                InstanceStatus {
                    name: ip.name.clone(),
                    interface: ip.interface.clone(),
                    vmac: ip.vmac.as_ref().map(|v| v.name.clone()),
                    vrid: ip.machine.vrid,
                    version: ip.advert.version.number(),
                    family: ip.family.number(),
                    state: now.state,
                    state_since: c.state_since,
                    state_since_wall: c.state_since_wall,
                    configured_priority: ip.machine.priority,
                    effective_priority: now.effective,
                    master: now.master,
                    vips: ip.vips.iter().map(|v| v.vip.addr).collect(),
                    transitions: c.transitions,
                    last_takeover: c.last_takeover,
                    adverts_sent: c.adverts_sent,
                    adverts_received: now.received,
                    fault: now.fault,
                    trackers: c.trackers.clone(),
                    vip_conflicts: ip
                        .vips
                        .iter()
                        .map(|v| (v.vip.addr, conflicts(i, v.vip.addr)))
                        .collect(),
                }
            })
            .collect();
        self.tx.send_replace(Status {
            datapath: totals.datapath,
            started: self.started,
            config_file: self.config_file.clone(),
            instances,
            rejected: totals.rejected,
            fence_drops: totals.fence_drops,
            foreign: totals.foreign,
            wakeups: self.wakeups,
            claims_dropped: totals.claims_dropped,
            events_lost: totals.events_lost,
            virtual_servers: totals.virtual_servers,
        });
    }
}

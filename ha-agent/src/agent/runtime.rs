//! The event loop: one thread, one task per receive socket and per tracker, and the loop below
//! that owns every state machine and performs their actions in order.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    rc::Rc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, anyhow, bail};
use aya::programs::XdpMode;
use ha_common::maps::{PeerEvent, instance_slot, rx_flags};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
    task::{AbortHandle, spawn_local},
};
use tracing::{debug, error, info, warn};

use super::{
    DatapathChoice, RunOptions, conflict,
    plan::{self, IfFacts, Plan},
    preflight::{Checked, ScriptJob},
};
use crate::{
    config::Config,
    datapath::{
        socket::{Membership, VrrpSocket, v4s, v6s},
        xdp::{self, SlotConfig, XdpDatapath, XdpOptions},
    },
    net::{
        AddOutcome, AdvertSender, Claim, ClaimWatch, DelOutcome, GarpSender, LinkWatch, Netlink,
    },
    notify::{self, Subject},
    status::{InstanceStatus, Status, TrackerStatus},
    track::{
        self, Tracked,
        script::{self, RunAs, ScriptUpdate},
    },
    vrrp::{
        instance::{Action, Event, Instance, State},
        packet::{self, DecodeOptions, Family, InstanceRules},
        sync_group::{GroupAction, SyncGroup},
    },
};

/// A valid advert for one of our instances, with when it arrived.
struct Incoming {
    target: Target,
    at: Instant,
    src: IpAddr,
    priority: u8,
    adver_int_cs: u16,
}

/// Whom an advert is for.
enum Target {
    /// Socket datapath: the receive task resolved the instance.
    Instance(PlanIndex),
    /// XDP datapath: a ring-buffer event for a slot of an interface, with its
    /// `bpf_ktime_get_ns()`; the loop resolves the slot with the current plan (a reload may
    /// have changed it).
    Slot {
        interface: Rc<str>,
        slot: u32,
        seen_ns: u64,
    },
}

enum Unit {
    Single(Instance),
    Group(SyncGroup),
}

/// An instance's index in the plan of configuration `generation`: a reload renumbers the
/// instances, and what was queued before it is dropped rather than delivered to another one.
#[derive(Clone, Copy)]
struct PlanIndex {
    index: usize,
    generation: u64,
}

/// What a configuration's tasks need and can fail to open: opened before a reload stops or
/// swaps anything ([`Runtime::open_io`]), started by [`Runtime::start_io`], which cannot fail.
struct Io {
    /// Each listener (interface, family): its receive socket, and its groups joined on their
    /// own (what XDP needs); the one the datapath uses is kept.
    listeners: Vec<(String, Family, VrrpSocket, Option<Membership>)>,
    /// One per instance, in plan order.
    senders: Vec<Rc<AdvertSender>>,
    garp: HashMap<String, Rc<GarpSender>>,
}

/// Per-instance runtime state beside the state machine.
struct Node {
    unit: usize,
    member: usize,
    timer: Option<Instant>,
    garp: Option<AbortHandle>,
    /// The gratuitous ARPs of a Master reasserting itself over a lower priority.
    lower_garp: Option<AbortHandle>,
    /// When `lower_garp` started.
    lower_garp_at: Option<Instant>,
    /// The interface is running (carrier), as a tracker of the instance itself.
    link_running: bool,
    fault: bool,
    priority: u8,
    /// For status: counters and the time of the last state change.
    state: State,
    state_since: Instant,
    state_since_wall: SystemTime,
    transitions: u64,
    adverts_sent: u64,
    adverts_received: u64,
    /// When we last heard the master (the start of a takeover we may make).
    last_heard: Option<Instant>,
    last_takeover: Option<Duration>,
    trackers: Vec<TrackerStatus>,
    /// XDP: the newest peer record already delivered, and the (master, priority) last written
    /// to `RX_INSTANCE`.
    peer_seen_ns: u64,
    xdp_state: Option<(bool, u8)>,
    /// The adverts last encoded, reused while priority, interval and source stay the same.
    advert_cache: Option<AdvertCache>,
    /// Other hosts' claims to our VIPs while master.
    conflicts: super::conflict::Conflicts,
    /// VIPs whose add failed while master, retried with backoff ([`Runtime::retry_vips`]).
    vip_retry: Option<VipRetry>,
    /// Why the instance is in FAULT after a VIP could not be added, and until when.
    vip_fault: Option<(String, Instant)>,
}

/// VIPs of an instance that the kernel refused to add: indices into its plan's `vips`.
struct VipRetry {
    failed: Vec<usize>,
    /// Retries made so far.
    attempts: u32,
    at: Instant,
    error: String,
}

/// Retries of a VIP add before the instance goes to FAULT: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s.
const VIP_ADD_RETRIES: u32 = 5;
/// How long an instance stays in FAULT after its VIPs could not be added, before it tries
/// again (a FAULT forever would need an operator; a retry every advert would flap).
const VIP_FAULT_HOLD: Duration = Duration::from_secs(10);

/// The wait before retry `attempt` (0-based) of a VIP add.
fn vip_backoff(attempt: u32) -> Duration {
    Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(4))
}

/// An advert waiting in [`Runtime::batch`]: instance, destination, bytes.
type PendingAdvert = (usize, IpAddr, Rc<[u8]>);

/// An instance's encoded adverts, one per destination.
struct AdvertCache {
    priority: u8,
    adver_int_cs: u16,
    src: IpAddr,
    packets: Vec<(IpAddr, Rc<[u8]>)>,
}

/// Adverts dropped by the receive tasks, by (interface, VRID, reason).
type Rejected = Rc<RefCell<BTreeMap<(String, u8, &'static str), u64>>>;

/// Adverts for other speakers, by (interface, VRID): ignored by the receive tasks, passed on
/// by XDP.
type Foreign = Rc<RefCell<BTreeMap<(String, u8), u64>>>;

struct Runtime {
    config: Config,
    plan: Plan,
    units: Vec<Unit>,
    nodes: Vec<Node>,
    netlink: Netlink,
    facts: HashMap<String, IfFacts>,
    /// Interface name → whether it is running (for track_interface).
    running: HashMap<String, bool>,
    scripts_up: Vec<bool>,
    /// Each track_file's last reading, by name (read off the loop by `read_track_files`).
    track_values: HashMap<String, Result<i64, String>>,
    xdp: HashMap<String, XdpDatapath>,
    /// The ring-buffer reader of each XDP interface (kept across reloads with its datapath).
    event_tasks: HashMap<String, AbortHandle>,
    /// Where links and maps are pinned (`--bpf-dir`), and the debug switch that passes adverts
    /// on after XDP (`--xdp-pass-adverts`).
    bpf_dir: std::path::PathBuf,
    pass_adverts: bool,
    /// `--xdp-drop-foreign`: XDP drops other speakers' VRRP instead of passing it.
    drop_foreign: bool,
    /// Event-loop wake-ups, and the fence drop counters (read with the other map counters).
    wakeups: u64,
    fence_drops: BTreeMap<String, u64>,
    /// Each instance's advert socket; instances on one interface with one source share it.
    senders: Vec<Rc<AdvertSender>>,
    /// While timers are handled: the adverts due, sent together ([`Runtime::flush_adverts`]).
    batch: Option<Vec<PendingAdvert>>,
    garp: HashMap<String, Rc<GarpSender>>,
    run_as: Option<RunAs>,
    /// Who the notify lines that name a user run as.
    notify_users: notify::Users,
    rejected: Rejected,
    foreign: Foreign,
    channels: Channels,
    choice: DatapathChoice,
    scripts: Vec<ScriptJob>,
    /// Receive and tracker tasks, aborted on reload.
    tasks: Vec<AbortHandle>,
    /// The VRRP groups joined on the interfaces XDP reads (left when dropped).
    memberships: Vec<Membership>,
    status: watch::Sender<Status>,
    started: SystemTime,
    /// When the status was last published, and whether a state changed since.
    published: Option<Instant>,
    status_dirty: bool,
    config_file: std::path::PathBuf,
    /// The event being delivered and the instance it was delivered to: the reason in the
    /// transition log line.
    cause: Option<(usize, Event)>,
    /// The timer being delivered is a backup's Skew_Time after a priority-0 advert.
    resign_timer: bool,
    /// An interface we use that came back under a new index (name, index): reloads move us
    /// to it, and are retried at its link and address changes until one works (it needs its
    /// addresses first).
    rewiring: Option<(String, u32)>,
    /// The bound on address-conflict warnings (all instances).
    claim_log: conflict::LogBudget,
    /// `EVENTS_LOST` of each XDP interface when last read: a change means a resync.
    events_lost: BTreeMap<String, u64>,
    /// Which configuration this is (0 at start, +1 each reload): tags what tasks queue.
    generation: u64,
}

pub(super) async fn run(config: Config, options: RunOptions) -> Result<()> {
    // Subscribed before the interfaces are read: a link that changes while the agent starts
    // (XDP loads can take a second) is reported, not lost between the read and the
    // subscription (a cut link was missed that way and its instance never went to FAULT).
    let mut links = LinkWatch::subscribe().context("subscribing to link events")?;
    let netlink = Netlink::new().context("opening rtnetlink")?;
    // What `check-config` checks, with the same function: a refused configuration stops the
    // start before the pid file, the control socket or anything on the host.
    let checked = super::preflight(&config, &options.config, &netlink).await?;
    let _pid_file = options
        .pid_file
        .as_deref()
        .map(super::pidfile::PidFile::create)
        .transpose()?;
    // The control socket and the metrics port next: a collision stops the start untouched.
    let control = crate::control::Control::bind(&options.control)?;
    let (adverts_tx, mut adverts) = mpsc::unbounded_channel();
    let (scripts_tx, mut scripts) = mpsc::unbounded_channel();
    // Bounded: a flood of claims waits in (and overflows from) the kernel's socket queue.
    let (claims_tx, mut claims) = mpsc::channel(CLAIM_QUEUE);
    let (files_tx, mut files) = mpsc::unbounded_channel();
    let channels = Channels {
        adverts: adverts_tx,
        scripts: scripts_tx,
        claims: claims_tx,
        claims_dropped: Rc::default(),
        files: files_tx,
    };
    let mut rt = Runtime::prepare(
        config,
        checked,
        netlink,
        &options.config,
        options.datapath,
        channels,
        None,
    )?;
    rt.bpf_dir = options.bpf_dir.clone();
    rt.pass_adverts = options.xdp_pass_adverts;
    rt.drop_foreign = options.xdp_drop_foreign;
    // Checks are done: from here on the host is changed.
    let all: Vec<usize> = (0..rt.nodes.len()).collect();
    rt.check_interface_locks()?;
    rt.report_foreign_vips(&all, false).await;
    rt.remove_stale_vips(&[]).await;
    rt.attach_datapath(HashMap::new())?;
    rt.start_tasks()?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    // XDP counters (rejections, valid adverts, fence drops) are read from the maps once a second.
    let mut counters = tokio::time::interval(COUNTERS_PERIOD);
    counters.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    rt.startup(&[]).await;
    rt.publish();
    let control = control.start(rt.subscribe())?;
    info!(
        "ha-agent running: {} instance(s), datapath {}",
        rt.nodes.len(),
        if rt.xdp.is_empty() { "socket" } else { "xdp" }
    );

    loop {
        let deadline = rt.next_deadline();
        // Timers first, claims last: no input, however fast it comes, delays an advert or a
        // Master_Down_Timer (a claim flood once kept a master from advertising).
        tokio::select! {
            biased;
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => rt = rt.reload().await,
            _ = sleep_until(deadline) => {
                // After a stall longer than a master-down interval (a hung or starved agent)
                // the timer is due and the master's adverts wait unread: let the receive tasks
                // read them and deliver them first, so a live master is not taken over from.
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                // Bounded: a flood of adverts does not hold the timers back either.
                for _ in 0..ADVERT_DRAIN {
                    let Ok(inc) = adverts.try_recv() else {
                        break;
                    };
                    rt.on_advert(inc).await;
                }
                rt.on_timers().await
            }
            Some(inc) = adverts.recv() => rt.on_advert(inc).await,
            Some(update) = scripts.recv() => rt.on_script(update).await,
            Some(event) = links.next_event() => {
                if rt.on_link(event).await {
                    rt = rt.reload().await;
                }
            }
            Some(()) = files.recv() => {
                // One re-read for every change that waits (an editor writes several times).
                while files.try_recv().is_ok() {}
                rt.on_track_files().await
            }
            _ = counters.tick() => {
                rt.refresh_counters();
                rt.resync_lost_events().await;
                rt.flush_claim_warnings();
            }
            Some((interface, claim)) = claims.recv() => {
                // A new master's advert goes out before its gratuitous ARPs: read what waits,
                // so that a preemption (we step down) is not reported as a conflict.
                tokio::task::yield_now().await;
                for _ in 0..ADVERT_DRAIN {
                    let Ok(inc) = adverts.try_recv() else {
                        break;
                    };
                    rt.on_advert(inc).await;
                }
                rt.on_claim(&interface, claim);
                // The claims that wait too, a bounded number: one loop turn for many.
                for _ in 1..CLAIM_BATCH {
                    let Ok((more_on, more)) = claims.try_recv() else {
                        break;
                    };
                    rt.on_claim(&more_on, more);
                }
            }
        }
        rt.wakeups += 1;
        rt.sync_xdp_states();
        rt.heartbeat();
        rt.publish_if_due();
    }
    control.stopping();
    let resigned = rt.shutdown().await;
    // The XDP/TC detach below takes the kernel's RTNL lock (and, on veth, waits for an RCU
    // grace period under it): done at once, it delays a peer on the same kernel adding the
    // VIPs we just gave up. Wait for the new master first; a second signal stops the wait.
    tokio::select! {
        biased;
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
        () = rt.await_handover(resigned, &mut adverts) => {}
    }
    rt.close_datapaths();
    Ok(())
}

/// The longest a stopping agent waits for another router to take over the instances it resigned.
const HANDOVER_WAIT_MAX: Duration = Duration::from_secs(2);

/// The longest the published status (counters, wake-ups) lags the loop without a state change.
const PUBLISH_PERIOD: Duration = Duration::from_millis(100);

/// How often the XDP counters are read into the status.
const COUNTERS_PERIOD: Duration = Duration::from_secs(1);

/// Adverts read ahead of a due timer or a claim, at most (the rest in later loop turns).
const ADVERT_DRAIN: usize = 1024;

/// Claims waiting for the loop, at most; claims handled in one loop turn, at most.
const CLAIM_QUEUE: usize = 256;
const CLAIM_BATCH: usize = 64;

/// Claims read from one interface's socket per [`CLAIM_WINDOW`], at most (1000/s): more wait in
/// the kernel's socket queue, whose overflow the kernel drops and counts. Conflicts are news
/// at their first claim; a flood costs the agent this much and no more.
const CLAIMS_PER_WINDOW: u32 = 100;
const CLAIM_WINDOW: Duration = Duration::from_millis(100);

/// Where the receive and tracker tasks report; kept across reloads.
#[derive(Clone)]
struct Channels {
    adverts: mpsc::UnboundedSender<Incoming>,
    scripts: mpsc::UnboundedSender<ScriptUpdate>,
    /// ARP / NA claims other hosts make, by interface (address conflicts).
    claims: mpsc::Sender<(Rc<str>, Claim)>,
    /// Claims the kernel dropped because the agent did not read them (a flood), all interfaces.
    claims_dropped: Rc<std::cell::Cell<u64>>,
    /// A tracked file may have changed (`track::file::watch`).
    files: mpsc::UnboundedSender<()>,
}

/// Bursts of gratuitous ARPs / NAs: `repeat` now, `repeat` again after `delay` (0: not), then
/// `refresh_repeat` every `refresh` (0: never).
struct GarpBursts {
    repeat: u32,
    delay: Duration,
    refresh: Duration,
    refresh_repeat: u32,
}

/// Whether two sync groups are the same apart from where they are written.
fn same_group(a: &crate::config::SyncGroup, b: &crate::config::SyncGroup) -> bool {
    a.name == b.name
        && a.members == b.members
        && a.notify == b.notify
        && a.track_interfaces == b.track_interfaces
        && a.track_scripts == b.track_scripts
        && a.track_files == b.track_files
        && a.sync_group_tracking_weight == b.sync_group_tracking_weight
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Runtime {
    /// The runtime of a configuration that passed the checks (`checked`, from
    /// [`super::preflight`]): state machines and per-instance state, nothing opened yet.
    /// `previous` supplies the status channel on reload.
    fn prepare(
        config: Config,
        checked: Checked,
        netlink: Netlink,
        config_file: &std::path::Path,
        choice: DatapathChoice,
        channels: Channels,
        previous: Option<&Runtime>,
    ) -> Result<Runtime> {
        let Checked {
            facts,
            plan,
            run_as,
            scripts,
            notify_users,
            ..
        } = checked;
        let now = Instant::now();
        let mut nodes: Vec<Option<Node>> = (0..plan.instances.len()).map(|_| None).collect();
        let mut units = Vec::new();
        for (u, unit) in plan.units.iter().enumerate() {
            let mut members = Vec::new();
            for (m, &i) in unit.members.iter().enumerate() {
                let ip = &plan.instances[i];
                members.push(
                    Instance::new(ip.machine.clone())
                        .map_err(|e| anyhow!("vrrp_instance {}: {e}", ip.name))?,
                );
                let running = facts.get(&ip.interface).is_some_and(|f| f.running);
                nodes[i] = Some(Node {
                    unit: u,
                    member: m,
                    timer: None,
                    garp: None,
                    lower_garp: None,
                    lower_garp_at: None,
                    link_running: running,
                    fault: false,
                    priority: ip.machine.priority,
                    state: State::Initialize,
                    state_since: now,
                    state_since_wall: SystemTime::now(),
                    transitions: 0,
                    adverts_sent: 0,
                    adverts_received: 0,
                    last_heard: None,
                    last_takeover: None,
                    trackers: Vec::new(),
                    peer_seen_ns: 0,
                    xdp_state: None,
                    advert_cache: None,
                    conflicts: Default::default(),
                    vip_retry: None,
                    vip_fault: None,
                });
            }
            units.push(match unit.group {
                Some(_) => Unit::Group(SyncGroup::new(members)),
                None => Unit::Single(members.pop().expect("a unit has a member")),
            });
        }
        let running = facts.iter().map(|(n, f)| (n.clone(), f.running)).collect();
        let scripts_up = config.scripts.iter().map(|s| !s.init_fail).collect();
        // On reload the watchers, counters and start time carry over.
        let started = previous.map_or_else(SystemTime::now, |p| p.started);
        let status = match previous {
            Some(p) => p.status.clone(),
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
                })
                .0
            }
        };
        Ok(Runtime {
            config,
            plan,
            units,
            nodes: nodes
                .into_iter()
                .map(|n| n.expect("every instance is in a unit"))
                .collect(),
            netlink,
            facts,
            running,
            scripts_up,
            track_values: HashMap::new(),
            xdp: HashMap::new(),
            event_tasks: HashMap::new(),
            bpf_dir: previous.map_or_else(
                || std::path::PathBuf::from(super::DEFAULT_BPF_DIR),
                |p| p.bpf_dir.clone(),
            ),
            pass_adverts: previous.is_some_and(|p| p.pass_adverts),
            drop_foreign: previous.is_some_and(|p| p.drop_foreign),
            wakeups: previous.map_or(0, |p| p.wakeups),
            fence_drops: previous.map(|p| p.fence_drops.clone()).unwrap_or_default(),
            senders: Vec::new(),
            batch: None,
            garp: HashMap::new(),
            run_as,
            notify_users,
            rejected: previous.map(|p| p.rejected.clone()).unwrap_or_default(),
            foreign: previous.map(|p| p.foreign.clone()).unwrap_or_default(),
            channels,
            choice,
            scripts,
            tasks: Vec::new(),
            memberships: Vec::new(),
            status,
            started,
            published: None,
            status_dirty: true,
            config_file: config_file.to_owned(),
            cause: None,
            resign_timer: false,
            rewiring: None,
            claim_log: Default::default(),
            events_lost: previous.map(|p| p.events_lost.clone()).unwrap_or_default(),
            generation: previous.map_or(0, |p| p.generation + 1),
        })
    }

    /// A receiver of the status, updated after every event.
    pub(super) fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Publishes the current status to the watchers.
    /// Publishes the status after a state change, or when the last one is older than
    /// [`PUBLISH_PERIOD`]: building it for every instance on every loop turn cost a master
    /// of 255 instances more than the adverts did.
    fn publish_if_due(&mut self) {
        if self.status_dirty
            || self
                .published
                .is_none_or(|at| at.elapsed() >= PUBLISH_PERIOD)
        {
            self.publish();
        }
    }

    fn publish(&mut self) {
        self.published = Some(Instant::now());
        self.status_dirty = false;
        let instances = (0..self.nodes.len())
            .map(|i| {
                let (ip, n, inst) = (&self.plan.instances[i], &self.nodes[i], self.instance(i));
                InstanceStatus {
                    name: ip.name.clone(),
                    interface: ip.interface.clone(),
                    vrid: ip.machine.vrid,
                    version: ip.advert.version.number(),
                    family: match ip.family {
                        Family::Ipv4 => 4,
                        Family::Ipv6 => 6,
                    },
                    state: inst.state(),
                    state_since: n.state_since,
                    state_since_wall: n.state_since_wall,
                    configured_priority: ip.machine.priority,
                    effective_priority: inst.effective_priority(),
                    master: if inst.state() == State::Master {
                        Some((ip.src, inst.effective_priority()))
                    } else {
                        inst.master()
                    },
                    vips: ip.vips.iter().map(|v| v.vip.addr).collect(),
                    transitions: n.transitions,
                    last_takeover: n.last_takeover,
                    adverts_sent: n.adverts_sent,
                    adverts_received: n.adverts_received,
                    fault: n.fault,
                    trackers: n.trackers.clone(),
                    vip_conflicts: ip
                        .vips
                        .iter()
                        .map(|v| {
                            let n = n.conflicts.counts.get(&v.vip.addr).copied();
                            (v.vip.addr, n.unwrap_or(0))
                        })
                        .collect(),
                }
            })
            .collect();
        self.status.send_replace(Status {
            datapath: if self.xdp.is_empty() { "socket" } else { "xdp" },
            started: self.started,
            config_file: self.config_file.clone(),
            instances,
            rejected: self.rejected.borrow().clone(),
            fence_drops: self.fence_drops.clone(),
            foreign: self.foreign.borrow().clone(),
            wakeups: self.wakeups,
            claims_dropped: self.channels.claims_dropped.get(),
            events_lost: self.events_lost.clone(),
        });
    }

    fn ifindex(&self, name: &str) -> Option<u32> {
        self.facts.get(name).map(|f| f.index)
    }

    /// An address owner's VIP that is the interface's own primary address: never removed or
    /// fenced, in any state (it was there before us and must stay after us). Only for an
    /// instance of priority 255: a VIP a crashed run left as an interface's first address is
    /// not the host's own and must still be removed and fenced.
    fn is_own_address(&self, pv: &plan::PlacedVip) -> bool {
        self.facts
            .get(&pv.interface)
            .is_some_and(|f| Some(pv.vip.addr) == f.primary_v4.map(IpAddr::V4))
            && self
                .plan
                .instances
                .iter()
                .any(|i| i.machine.priority == 255 && i.vips.contains(pv))
    }

    /// The interfaces whose fence holds `pv` of instance `ip`, with the slot each entry is
    /// keyed to: the instance's interface (its slot: the kernel fences it on a preempting
    /// advert), and the VIP's own `dev` when it is another, keyed to no slot (the slots there
    /// are other instances'): traffic for the VIP may come in on either.
    fn fence_targets<'a>(
        ip: &'a plan::InstancePlan,
        pv: &'a plan::PlacedVip,
    ) -> impl Iterator<Item = (&'a str, u32)> {
        std::iter::once((ip.interface.as_str(), slot_of(ip)))
            .chain((pv.interface != ip.interface).then_some((pv.interface.as_str(), xdp::NO_SLOT)))
    }

    /// Every interface the datapath runs on: the instances' (XDP and fence), then those that
    /// only carry VIPs of instances running elsewhere (`dev`: the fence only).
    fn datapath_interfaces(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for (name, _) in self.plan.listeners() {
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, false));
            }
        }
        for ip in &self.plan.instances {
            for pv in &ip.vips {
                if !self.is_own_address(pv) && !out.iter().any(|(n, _)| *n == pv.interface) {
                    out.push((pv.interface.clone(), true));
                }
            }
        }
        out
    }

    /// The VIPs the fence on `name` holds: every configured VIP placed there.
    fn fence_vips(&self, name: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for ip in &self.plan.instances {
            for pv in &ip.vips {
                if !self.is_own_address(pv) && Self::fence_targets(ip, pv).any(|(n, _)| n == name) {
                    out.push(pv.vip.addr);
                }
            }
        }
        out
    }

    /// VIPs of this configuration left on the host by a run that crashed are removed before
    /// anything else, so a node that is not master does not answer for them.
    async fn remove_stale_vips(&self, kept: &[String]) {
        for ip in self
            .plan
            .instances
            .iter()
            .filter(|i| !kept.contains(&i.name))
        {
            for pv in &ip.vips {
                let Some(f) = self.facts.get(&pv.interface) else {
                    continue;
                };
                // An address owner's VIP is the interface's own address: never removed.
                if self.is_own_address(pv) {
                    continue;
                }
                match self.netlink.del_vip(f.index, &pv.vip).await {
                    Ok(DelOutcome::Removed) => {
                        warn!(instance = %ip.name, "removed stale VIP {} from {} (left by an earlier run)", pv.vip.addr, pv.interface)
                    }
                    Ok(DelOutcome::AlreadyAbsent) => {}
                    Err(e) => {
                        warn!(instance = %ip.name, "checking for a stale VIP {}: {e}", pv.vip.addr)
                    }
                }
            }
        }
    }

    /// Refuses to start, before the host is changed (stale VIPs removed), when another agent
    /// holds the XDP datapath of one of our interfaces: it would take our VIPs and programs.
    fn check_interface_locks(&self) -> Result<()> {
        if self.choice == DatapathChoice::Socket {
            return Ok(());
        }
        for (name, _) in self.datapath_interfaces() {
            // Released at once: the datapath takes it for good when it attaches.
            drop(xdp::lock_interface(&name)?);
        }
        Ok(())
    }

    /// Attaches XDP and TC to every VRRP interface (reusing `existing` attachments, pinned under
    /// `--bpf-dir`), writes the instances' rules to the maps, and fences every VIP whose
    /// instance is not master. `auto`: any failure closes what was opened and falls back to
    /// the socket datapath with one warning saying why.
    fn attach_datapath(&mut self, mut existing: HashMap<String, XdpDatapath>) -> Result<()> {
        let mut old_tasks = std::mem::take(&mut self.event_tasks);
        if self.choice == DatapathChoice::Socket {
            info!("datapath socket (--datapath socket): no XDP counters, no TC fence");
            close_all(existing, &mut old_tasks);
            return Ok(());
        }
        for n in &mut self.nodes {
            n.xdp_state = None;
        }
        let mut attached: HashMap<String, XdpDatapath> = HashMap::new();
        let mut failure = None;
        for (name, fence_only) in self.datapath_interfaces() {
            let opened = match existing.remove(&name) {
                Some(dp) => Ok(dp),
                None => self.open_xdp(&name, fence_only),
            };
            let configured = opened.and_then(|mut dp| {
                let written = if fence_only {
                    Ok(())
                } else {
                    self.configure_xdp(&name, &mut dp)
                };
                match written.and_then(|()| Ok(dp.prune_fence(&self.fence_vips(&name))?)) {
                    Ok(()) => Ok(dp),
                    Err(e) => {
                        // Not left attached: its fence would blackhole the socket datapath's VIPs.
                        close_all(HashMap::from([(name.clone(), dp)]), &mut HashMap::new());
                        Err(e)
                    }
                }
            });
            match configured {
                Ok(dp) => {
                    attached.insert(name, dp);
                }
                // A VIP's `dev` that cannot take the fence (lo, tun, WireGuard): its VIPs stay
                // fenced on their instance's interface, where the LAN's traffic comes in.
                Err(e)
                    if fence_only
                        && matches!(
                            e.downcast_ref::<xdp::XdpError>(),
                            Some(xdp::XdpError::NotEthernet { .. })
                        ) =>
                {
                    warn!("{e}; its VIPs are fenced only on their instances' interfaces");
                }
                Err(e) => {
                    failure = Some((name, e));
                    break;
                }
            }
        }
        if let Some((name, e)) = failure {
            close_all(attached, &mut old_tasks);
            close_all(existing, &mut old_tasks);
            if self.choice == DatapathChoice::Auto {
                warn!(
                    "XDP/TC could not be set up on {name} ({e:#}); running the socket datapath without the fence"
                );
                return Ok(());
            }
            bail!("--datapath xdp: {name}: {e:#}");
        }
        close_all(existing, &mut old_tasks);
        for (name, dp) in &mut attached {
            if let Some(task) = old_tasks.remove(name) {
                self.event_tasks.insert(name.clone(), task);
            } else if let Some(events) = dp.take_events() {
                let task = spawn_local(xdp_events(
                    Rc::from(name.as_str()),
                    events,
                    self.channels.adverts.clone(),
                ));
                self.event_tasks.insert(name.clone(), task.abort_handle());
            }
        }
        self.xdp = attached;
        self.heartbeat();
        for i in 0..self.plan.instances.len() {
            let master = self.instance(i).state() == State::Master;
            self.fence(i, !master);
        }
        Ok(())
    }

    /// Attaches the programs to `name` through netlink (they stay when the agent dies) with
    /// every VIP placed there fenced; maps pinned under `--bpf-dir` when it is (or can be made)
    /// a BPF filesystem, for bpftool and a restart: nothing depends on the pins.
    fn open_xdp(&self, name: &str, fence_only: bool) -> Result<XdpDatapath> {
        let pin_dir = match xdp::pin_dir(&self.bpf_dir, name) {
            Ok(dir) => Some(dir),
            Err(e) => {
                info!("{name}: XDP/TC maps not pinned ({e}); the fence does not need the pins");
                None
            }
        };
        let dp = XdpDatapath::open(
            name,
            &XdpOptions {
                mode: XdpMode::default(),
                pin_dir: pin_dir.clone(),
                persist: true,
                fence_only,
                fence: self.fence_vips(name),
            },
        )?;
        let what = if fence_only {
            "TC vip_fence_ingress/vip_fence_egress (VIPs of instances on other interfaces)"
        } else {
            "XDP vrrp_rx and TC vip_fence_ingress/vip_fence_egress"
        };
        match pin_dir {
            Some(dir) => info!(
                "{what} attached to {name}, maps pinned in {}",
                dir.display()
            ),
            None => info!("{what} attached to {name}"),
        }
        Ok(dp)
    }

    /// Writes the rules of the instances on `name` to its maps and records their slots.
    fn configure_xdp(&mut self, name: &str, dp: &mut XdpDatapath) -> Result<()> {
        let mut slots = Vec::new();
        for i in 0..self.plan.instances.len() {
            let ip = &self.plan.instances[i];
            if ip.interface != name {
                continue;
            }
            let r = &ip.rules;
            let checked = r.vips.as_ref().map_or(0, Vec::len);
            if checked > ha_common::maps::MAX_CHECKED_VIPS {
                bail!(
                    "vrrp_instance {}: {} VIPs in adverts; XDP checks at most {} (set vrrp_skip_check_adv_addr, or use --datapath socket)",
                    ip.name,
                    checked,
                    ha_common::maps::MAX_CHECKED_VIPS
                );
            }
            let inst = self.instance(i);
            let state = (inst.state() == State::Master, inst.effective_priority());
            slots.push(SlotConfig::for_rules(
                r,
                ip.machine.primary_address,
                state.0,
                state.1,
                heartbeat_timeout(ip),
            ));
            self.nodes[i].xdp_state = Some(state);
        }
        let v4 = self.plan.decode_options(name, Family::Ipv4);
        let mut flags = match v4.v3_ipv4_checksum {
            packet::V3Ipv4Checksum::PseudoHeader => rx_flags::V3_V4_PSEUDO,
            packet::V3Ipv4Checksum::AsV2 => rx_flags::V3_V4_AS_V2,
            packet::V3Ipv4Checksum::Either => rx_flags::V3_V4_PSEUDO | rx_flags::V3_V4_AS_V2,
        };
        if self.pass_adverts {
            flags |= rx_flags::PASS_ADVERTS;
        }
        if self.drop_foreign {
            flags |= rx_flags::DROP_FOREIGN;
        }
        // Without our MAC every unicast advert would look like another host's: refuse.
        let mac = self.facts.get(name).and_then(|f| f.mac).with_context(|| {
            format!(
                "{name} has no Ethernet address: XDP tells our unicast adverts from other \
                 hosts' by it (use --datapath socket on this interface)"
            )
        })?;
        let global = xdp::rx_global(
            flags,
            self.config.global.vrrp_mcast_group4,
            self.config.global.vrrp_mcast_group6,
            mac,
        );
        dp.configure(global, &slots)?;
        Ok(())
    }

    /// Writes (master, effective priority) of every instance whose values changed to
    /// `RX_INSTANCE`: what `vrrp_rx` compares adverts with to fence in the kernel.
    fn sync_xdp_states(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(slot) = self.slot(i) else {
                continue;
            };
            let inst = self.instance(i);
            let want = (inst.state() == State::Master, inst.effective_priority());
            if self.nodes[i].xdp_state == Some(want) {
                continue;
            }
            let ip = &self.plan.instances[i];
            if let Some(dp) = self.xdp.get_mut(&ip.interface) {
                match dp.set_state(slot, want.0, want.1) {
                    Ok(()) => self.nodes[i].xdp_state = Some(want),
                    Err(e) => error!(instance = %ip.name, "writing the XDP instance state: {e}"),
                }
            }
        }
    }

    /// Tells every `vip_fence` the loop is alive.
    fn heartbeat(&mut self) {
        for (name, dp) in &mut self.xdp {
            if let Err(e) = dp.heartbeat() {
                error!("{name}: XDP heartbeat: {e}");
            }
        }
    }

    /// Reads the XDP counters into the status: rejections, valid adverts, fence drops.
    fn refresh_counters(&mut self) {
        for (name, dp) in &self.xdp {
            match dp.rejections() {
                Ok(list) => {
                    let mut map = self.rejected.borrow_mut();
                    for (vrid, reason, n) in list {
                        map.insert((name.clone(), vrid, reason.as_str()), n);
                    }
                }
                Err(e) => debug!("{name}: reading XDP rejections: {e}"),
            }
            if let Ok(n) = dp.fence_drops() {
                self.fence_drops.insert(name.clone(), n);
            }
            match dp.foreigners() {
                Ok(list) => {
                    let mut map = self.foreign.borrow_mut();
                    for (vrid, n) in list {
                        map.insert((name.clone(), vrid), n);
                    }
                }
                Err(e) => debug!("{name}: reading XDP foreign counters: {e}"),
            }
        }
        for i in 0..self.nodes.len() {
            let Some(slot) = self.slot(i) else {
                continue;
            };
            if let Some(dp) = self.xdp.get(&self.plan.instances[i].interface)
                && let Ok(n) = dp.accepted(slot)
            {
                self.nodes[i].adverts_received = n;
            }
        }
    }

    /// A clean exit: detaches the programs and removes their pins.
    fn close_datapaths(&mut self) {
        let all = std::mem::take(&mut self.xdp);
        close_all(all, &mut self.event_tasks);
    }

    /// Instance `i`'s slot in the maps of its interface, when XDP runs there.
    fn slot(&self, i: usize) -> Option<u32> {
        let ip = &self.plan.instances[i];
        self.xdp.contains_key(&ip.interface).then(|| slot_of(ip))
    }

    /// The instance whose slot on `interface` is `slot`.
    fn slot_owner(&self, interface: &str, slot: u32) -> Option<usize> {
        (0..self.nodes.len())
            .find(|&i| self.plan.instances[i].interface == interface && self.slot(i) == Some(slot))
    }

    /// Delivers the peer record `peer` of instance `i` as the advert it records (a missed or
    /// unsent ring-buffer event, or a timer's re-read), and marks it seen.
    async fn deliver_peer(&mut self, i: usize, peer: ha_common::maps::PeerRecord) {
        let seen = xdp::instant_of(peer.last_seen_ns);
        let src = peer_src(peer.src, slot_of(&self.plan.instances[i]));
        let n = &mut self.nodes[i];
        n.peer_seen_ns = n.peer_seen_ns.max(peer.last_seen_ns);
        n.last_heard = Some(seen);
        let event = Event::Advert {
            src,
            priority: peer.priority,
            max_adver_int_cs: peer.adver_int_cs,
        };
        self.deliver(i, seen, event).await;
    }

    /// The peer record of a backup's slot when it holds an advert not yet delivered.
    fn fresh_peer(&self, i: usize) -> Option<ha_common::maps::PeerRecord> {
        let slot = self.slot(i)?;
        let dp = self.xdp.get(&self.plan.instances[i].interface)?;
        let peer = dp.peer(slot).ok()?;
        (peer.last_seen_ns != 0 && peer.last_seen_ns > self.nodes[i].peer_seen_ns).then_some(peer)
    }

    /// Opens the sockets and starts the receive and tracker tasks.
    fn start_tasks(&mut self) -> Result<()> {
        let io = self.open_io()?;
        self.start_io(io);
        Ok(())
    }

    /// Opens what the tasks need and can fail (receive sockets and group memberships, advert
    /// and GARP sockets), then writes the track files' `init_file`s. Nothing is started or
    /// swapped: on an error what was opened is closed and the host is as it was.
    fn open_io(&self) -> Result<Io> {
        let mut listeners = Vec::new();
        for (name, family) in self.plan.listeners() {
            let groups = self.plan.groups(&name, family);
            let socket = match family {
                Family::Ipv4 => VrrpSocket::open_v4(&name, &v4s(&groups)),
                Family::Ipv6 => VrrpSocket::open_v6(&name, &v6s(&groups)),
            }
            .with_context(|| format!("opening the VRRP receive socket on {name}"))?;
            // XDP reads the adverts, but the groups are still joined, or a NIC's multicast
            // filter may never pass them.
            let membership = (!groups.is_empty())
                .then(|| Membership::join(&name, &groups))
                .transpose()
                .with_context(|| format!("joining the VRRP multicast group on {name}"))?;
            listeners.push((name, family, socket, membership));
        }
        let mut senders = Vec::new();
        let mut shared: HashMap<(&str, IpAddr), Rc<AdvertSender>> = HashMap::new();
        for ip in &self.plan.instances {
            if let Some(sender) = shared.get(&(ip.interface.as_str(), ip.src)) {
                senders.push(sender.clone());
                continue;
            }
            let sender = match ip.src {
                IpAddr::V4(a) => AdvertSender::open_v4(&ip.interface, Some(a)),
                IpAddr::V6(a) => AdvertSender::open_v6(&ip.interface, Some(a)),
            }
            .with_context(|| {
                format!(
                    "vrrp_instance {}: opening the advert socket on {}",
                    ip.name, ip.interface
                )
            })?;
            let sender = Rc::new(sender);
            shared.insert((ip.interface.as_str(), ip.src), sender.clone());
            senders.push(sender);
        }
        let mut garp = HashMap::new();
        for ip in &self.plan.instances {
            for pv in &ip.vips {
                if garp.contains_key(&pv.interface) {
                    continue;
                }
                let mac = self.facts.get(&pv.interface).and_then(|f| f.mac);
                let Some(mac) = mac else { continue };
                let sender = GarpSender::open(&pv.interface, mac)
                    .with_context(|| format!("opening the GARP socket on {}", pv.interface))?;
                garp.insert(pv.interface.clone(), Rc::new(sender));
            }
        }
        // track_file `init_file`: create the file (or overwrite it) with its initial value.
        for f in &self.config.track_files {
            if let Some(init) = f.init_file
                && (init.overwrite || !f.file.exists())
            {
                track::file::write_init(&f.file, i64::from(init.value)).with_context(|| {
                    format!("track_file {}: init_file {}", f.name, f.file.display())
                })?;
            }
        }
        Ok(Io {
            listeners,
            senders,
            garp,
        })
    }

    /// Starts the receive, claim, script and track-file tasks on what [`Runtime::open_io`]
    /// opened, for the datapath attached now. Cannot fail.
    fn start_io(&mut self, io: Io) {
        let Io {
            listeners,
            senders,
            garp,
        } = io;
        for (name, family, socket, membership) in listeners {
            if self.xdp.contains_key(&name) {
                // vrrp_rx consumes the adverts; the ring buffer task reports the changes.
                self.memberships.extend(membership);
                continue;
            }
            let opts = self.plan.decode_options(&name, family);
            let (indices, rules): (Vec<usize>, Vec<InstanceRules>) = self
                .plan
                .instances
                .iter()
                .enumerate()
                .filter(|(_, i)| i.interface == name && i.family == family)
                .map(|(n, i)| (n, i.rules.clone()))
                .unzip();
            let task = spawn_local(listen(
                socket,
                family,
                Listener {
                    opts,
                    group4: self.config.global.vrrp_mcast_group4,
                    group6: self.config.global.vrrp_mcast_group6,
                    indices,
                    rules,
                },
                self.generation,
                self.channels.adverts.clone(),
                self.rejected.clone(),
                self.foreign.clone(),
            ));
            self.tasks.push(task.abort_handle());
        }
        self.senders = senders;
        self.garp = garp;
        // Address conflicts on the wire: where we may be master of VIPs.
        for name in self.garp.keys() {
            // Only claims of the VIPs placed on this interface pass its socket's filter.
            let vips: Vec<IpAddr> = self
                .plan
                .instances
                .iter()
                .flat_map(|ip| &ip.vips)
                .filter(|pv| pv.interface == *name)
                .map(|pv| pv.vip.addr)
                .collect();
            match ClaimWatch::open(name, &vips) {
                Ok(watch) => {
                    let task = spawn_local(watch_claims(
                        Rc::from(name.as_str()),
                        watch,
                        self.channels.claims.clone(),
                        self.channels.claims_dropped.clone(),
                    ));
                    self.tasks.push(task.abort_handle());
                }
                Err(e) => warn!(
                    "{name}: other hosts claiming our VIPs (address conflicts) will not be seen: {e}"
                ),
            }
        }
        // keepalived sets promote_secondaries so removing one VIP keeps the others.
        for (name, family) in self.plan.listeners() {
            if family == Family::Ipv4 {
                let path = format!("/proc/sys/net/ipv4/conf/{name}/promote_secondaries");
                if let Err(e) = std::fs::write(&path, "1") {
                    warn!("setting {path}: {e}");
                }
            }
        }
        for (index, script, run_as) in self.scripts.clone() {
            let task = spawn_local(script::supervise(
                index,
                self.generation,
                script,
                run_as,
                self.channels.scripts.clone(),
            ));
            self.tasks.push(task.abort_handle());
        }
        // The track files an instance or a sync group tracks: re-read when they change.
        let tracked: Vec<std::path::PathBuf> = self
            .config
            .track_files
            .iter()
            .filter(|f| {
                let uses = |t: &[crate::config::Tracker]| t.iter().any(|t| t.name == f.name);
                self.plan.instances.iter().any(|i| uses(&i.track_files))
                    || self.config.sync_groups.iter().any(|g| uses(&g.track_files))
            })
            .map(|f| f.file.clone())
            .collect();
        if !tracked.is_empty() {
            let task = spawn_local(crate::track::file::watch(
                tracked,
                self.channels.files.clone(),
            ));
            self.tasks.push(task.abort_handle());
        }
    }

    fn instance(&self, i: usize) -> &Instance {
        let n = &self.nodes[i];
        match &self.units[n.unit] {
            Unit::Single(inst) => inst,
            Unit::Group(g) => g.member(n.member),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .flat_map(|n| {
                let retry = n.vip_retry.as_ref().map(|r| r.at);
                [n.timer, retry, n.vip_fault.as_ref().map(|f| f.1)]
            })
            .flatten()
            .min()
    }

    /// Startup for every unit but the `kept` ones (which carry on their state after a reload).
    async fn startup(&mut self, kept: &[usize]) {
        let now = Instant::now();
        for u in (0..self.units.len()).filter(|u| !kept.contains(u)) {
            self.deliver_unit(u, now, Event::Startup).await;
        }
        // Trackers known at start (interfaces down, init_fail scripts, track files).
        self.read_track_files().await;
        for i in 0..self.nodes.len() {
            self.recompute(i, now).await;
        }
    }

    /// Shuts every unit down; returns the instances that were master (they sent priority 0)
    /// and when.
    async fn shutdown(&mut self) -> Vec<(usize, Instant)> {
        info!("shutting down: resigning mastership (priority 0) and removing VIPs");
        let now = Instant::now();
        let resigned = (0..self.nodes.len())
            .filter(|&i| self.instance(i).state() == State::Master)
            .map(|i| (i, now))
            .collect();
        for u in 0..self.units.len() {
            self.shutdown_unit(u).await;
        }
        resigned
    }

    /// After shutdown: waits until another router advertises (priority > 0) for each instance
    /// that resigned, at most one of its advert intervals (capped at [`HANDOVER_WAIT_MAX`]),
    /// and logs who took over and how long after our priority-0 advert. A backup takes over
    /// Skew_Time after our priority 0, always less than our advert interval, so a successor is
    /// heard within the wait, and the agent exits within one advert interval of resigning.
    async fn await_handover(
        &self,
        mut waiting: Vec<(usize, Instant)>,
        adverts: &mut mpsc::UnboundedReceiver<Incoming>,
    ) {
        let Some(deadline) = waiting
            .iter()
            .map(|&(i, at)| at + self.handover_wait(i))
            .max()
        else {
            return;
        };
        // XDP sends no event for an advert that changes nothing it knows of (the successor
        // may have been master moments ago): the peer records are read every millisecond too.
        let mut poll = tokio::time::interval(Duration::from_millis(1));
        while !waiting.is_empty() {
            let heard: Vec<(usize, IpAddr, u8, Instant)> = tokio::select! {
                biased;
                inc = adverts.recv() => {
                    let Some(inc) = inc else { break };
                    let i = match &inc.target {
                        Target::Instance(at) => {
                            (at.generation == self.generation).then_some(at.index)
                        }
                        Target::Slot { interface, slot, .. } => self.slot_owner(interface, *slot),
                    };
                    i.map(|i| (i, inc.src, inc.priority, inc.at)).into_iter().collect()
                }
                _ = poll.tick() => waiting
                    .iter()
                    .filter_map(|&(i, _)| {
                        let slot = self.slot(i)?;
                        let peer = self.xdp.get(&self.plan.instances[i].interface)?.peer(slot).ok()?;
                        (peer.last_seen_ns != 0).then(|| {
                            let src = peer_src(peer.src, slot);
                            (i, src, peer.priority, xdp::instant_of(peer.last_seen_ns))
                        })
                    })
                    .collect(),
                () = sleep_until(Some(deadline)) => break,
            };
            for (i, src, priority, seen) in heard {
                let Some(pos) = waiting
                    .iter()
                    .position(|&(w, at)| w == i && priority > 0 && seen > at)
                else {
                    continue;
                };
                let (i, at) = waiting.swap_remove(pos);
                info!(
                    instance = %self.plan.instances[i].name,
                    "handed over: {src} (priority {priority}) is master, {:.1} ms after our \
                     priority-0 advert",
                    seen.saturating_duration_since(at).as_secs_f64() * 1e3
                );
            }
        }
        for (i, _) in waiting {
            warn!(
                instance = %self.plan.instances[i].name,
                "no other router advertised within {} ms of our priority-0 advert: its VIPs \
                 have no master until one does",
                self.handover_wait(i).as_millis()
            );
        }
    }

    /// How long a resigned instance `i` waits for its successor's advert.
    fn handover_wait(&self, i: usize) -> Duration {
        self.instance(i).advert_interval().min(HANDOVER_WAIT_MAX)
    }

    /// Shutdown of one unit: priority 0 from a master, VIPs removed, notify STOP.
    async fn shutdown_unit(&mut self, u: usize) {
        self.deliver_unit(u, Instant::now(), Event::Shutdown).await;
        for &i in &self.plan.units[u].members {
            for h in [self.nodes[i].garp.take(), self.nodes[i].lower_garp.take()]
                .into_iter()
                .flatten()
            {
                h.abort();
            }
        }
    }

    /// SIGHUP: re-reads the configuration. Units (an instance, or a sync group with its
    /// members) whose configuration did not change keep their state, timers and VIPs; the
    /// others are shut down (priority 0, VIPs removed) and the new ones started. A
    /// configuration that does not load is refused and the running one stays.
    async fn reload(mut self) -> Runtime {
        info!("SIGHUP: reloading {}", self.config_file.display());
        let config = match crate::config::load(&self.config_file) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    warn!("{w}");
                }
                loaded.config
            }
            Err(e) => {
                error!("reload refused, the running configuration stays:\n{e}");
                return self;
            }
        };
        // The checks of `run` and `check-config`, except that a configuration without
        // instances is taken: it stops them all.
        // Everything that can fail (sockets, init files) is opened here, before any unit is
        // stopped: a reload is refused whole, with the running configuration untouched.
        let prepared = async {
            let netlink = Netlink::new().context("opening rtnetlink")?;
            let checked = super::preflight::check(&config, &netlink).await?;
            let new = Runtime::prepare(
                config,
                checked,
                netlink,
                &self.config_file,
                self.choice,
                self.channels.clone(),
                Some(&self),
            )?;
            let io = new.open_io()?;
            anyhow::Ok((new, io))
        };
        let (mut new, io) = match prepared.await {
            Ok(rt) => rt,
            Err(e) => {
                match &self.rewiring {
                    Some((name, index)) => warn!(
                        "reload deferred: interface {name} is back as index {index} but cannot be \
                         used yet ({e:#}); retrying at its next link or address change"
                    ),
                    None => error!("reload refused, the running configuration stays: {e:#}"),
                }
                return self;
            }
        };
        // Pair each new unit with an identical old one.
        let same_unit = |nu: &plan::UnitPlan, ou: &plan::UnitPlan| {
            let groups = match (&nu.group, &ou.group) {
                (None, None) => true,
                (Some(a), Some(b)) => same_group(a, b),
                _ => false,
            };
            groups
                && nu.members.len() == ou.members.len()
                && nu
                    .members
                    .iter()
                    .zip(&ou.members)
                    .all(|(&a, &b)| new.plan.instances[a] == self.plan.instances[b])
        };
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for (nu, nplan) in new.plan.units.iter().enumerate() {
            if let Some(ou) = (0..self.plan.units.len()).find(|&ou| {
                !pairs.iter().any(|p| p.1 == ou) && same_unit(nplan, &self.plan.units[ou])
            }) {
                pairs.push((nu, ou));
            }
        }
        // Units that go away or change: shut down, and their VIPs no longer fenced (not ours).
        for ou in (0..self.units.len()).filter(|ou| !pairs.iter().any(|p| p.1 == *ou)) {
            info!("reload: stopping {}", self.unit_name(ou));
            self.shutdown_unit(ou).await;
            for i in self.plan.units[ou].members.clone() {
                self.release(i);
            }
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        // Carry over the state machines and runtime state of the unchanged units.
        let mut old_units: Vec<Option<Unit>> = std::mem::take(&mut self.units)
            .into_iter()
            .map(Some)
            .collect();
        let mut old_nodes: Vec<Option<Node>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        for &(nu, ou) in &pairs {
            new.units[nu] = old_units[ou].take().expect("each old unit is paired once");
            for (m, (&ni, &oi)) in new.plan.units[nu]
                .members
                .iter()
                .zip(&self.plan.units[ou].members)
                .enumerate()
            {
                let mut node = old_nodes[oi]
                    .take()
                    .expect("each old instance is paired once");
                node.unit = nu;
                node.member = m;
                // The interface may be a new one (re-created): its carrier as read now.
                node.link_running = new
                    .facts
                    .get(&new.plan.instances[ni].interface)
                    .is_some_and(|f| f.running);
                new.nodes[ni] = node;
            }
        }
        // Scripts that did not change keep their state.
        for (n, script) in new.config.scripts.iter().enumerate() {
            if let Some(o) = self
                .config
                .scripts
                .iter()
                .position(|s| s.name == script.name && s.command == script.command)
            {
                new.scripts_up[n] = self.scripts_up[o];
            }
        }
        let kept_units: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let kept_names: Vec<String> = kept_units
            .iter()
            .flat_map(|&u| {
                new.plan.units[u]
                    .members
                    .iter()
                    .map(|&i| new.plan.instances[i].name.clone())
            })
            .collect();
        let started: Vec<usize> = (0..new.nodes.len())
            .filter(|&i| !kept_names.contains(&new.plan.instances[i].name))
            .collect();
        new.report_foreign_vips(&started, false).await;
        new.remove_stale_vips(&kept_names).await;
        let existing = std::mem::take(&mut self.xdp);
        new.event_tasks = std::mem::take(&mut self.event_tasks);
        if let Err(e) = new.attach_datapath(existing) {
            error!("reload: {e:#}");
        }
        new.start_io(io);
        drop(self);
        new.startup(&kept_units).await;
        info!(
            "reload done: {} unit(s) kept, {} started",
            kept_units.len(),
            new.units.len() - kept_units.len()
        );
        new
    }

    /// A name for log lines: the sync group's, or the instance's.
    fn unit_name(&self, u: usize) -> String {
        match &self.plan.units[u].group {
            Some(g) => format!("sync group {}", g.name),
            None => format!(
                "vrrp_instance {}",
                self.plan.instances[self.plan.units[u].members[0]].name
            ),
        }
    }

    /// Delivers `event` to every instance of unit `u` (Startup, Shutdown) and performs the actions.
    async fn deliver_unit(&mut self, u: usize, now: Instant, event: Event) {
        let actions = match &mut self.units[u] {
            Unit::Single(inst) => {
                let i = self.plan.units[u].members[0];
                inst.handle(now, event)
                    .into_iter()
                    .map(|a| (i, a))
                    .collect()
            }
            Unit::Group(g) => {
                let out = g.handle_all(now, event);
                self.group_actions(u, out)
            }
        };
        self.execute_all(actions).await;
    }

    /// Delivers `event` to instance `i` (through its sync group) and performs the actions.
    async fn deliver(&mut self, i: usize, now: Instant, event: Event) {
        self.cause = Some((i, event));
        let (u, m) = (self.nodes[i].unit, self.nodes[i].member);
        let actions = match &mut self.units[u] {
            Unit::Single(inst) => inst
                .handle(now, event)
                .into_iter()
                .map(|a| (i, a))
                .collect(),
            Unit::Group(g) => {
                let out = g.handle(now, m, event);
                self.group_actions(u, out)
            }
        };
        self.execute_all(actions).await;
        self.cause = None;
    }

    fn group_actions(&self, u: usize, out: Vec<GroupAction>) -> Vec<(usize, Action)> {
        let members = &self.plan.units[u].members;
        let mut actions = Vec::new();
        for ga in out {
            match ga {
                GroupAction::Member { member, action } => actions.push((members[member], action)),
                GroupAction::Notify { from, to } => {
                    if let Some(group) = &self.plan.units[u].group {
                        info!(group = %group.name, "sync group {}: {} -> {}", group.name, notify::state_word(from), notify::state_word(to));
                        for (argv, user) in
                            notify::commands(&group.notify, Subject::Group, &group.name, to, 0)
                        {
                            notify::spawn(argv, self.notify_users.run_as(user, self.run_as));
                        }
                    }
                }
            }
        }
        actions
    }

    async fn execute_all(&mut self, actions: Vec<(usize, Action)>) {
        for (i, action) in actions {
            self.execute(i, action).await;
        }
    }

    async fn execute(&mut self, i: usize, action: Action) {
        match action {
            Action::SendAdvert {
                priority,
                adver_int_cs,
            } => self.send_advert(i, priority, adver_int_cs).await,
            Action::AddVips => self.add_vips(i).await,
            Action::RemoveVips => self.remove_vips(i).await,
            Action::Fence => self.fence(i, true),
            Action::Unfence => self.fence(i, false),
            Action::SendGratuitous => self.send_gratuitous(i),
            Action::ReassertGratuitous => self.reassert_gratuitous(i),
            Action::Notify { from, to } => self.notify(i, from, to),
            Action::ArmTimer { at, .. } => self.nodes[i].timer = Some(at),
            Action::CancelTimer => self.nodes[i].timer = None,
        }
    }

    async fn send_advert(&mut self, i: usize, priority: u8, adver_int_cs: u16) {
        self.nodes[i].adverts_sent += 1;
        let Some(packets) = self.encoded_adverts(i, priority, adver_int_cs) else {
            return;
        };
        if let Some(batch) = &mut self.batch {
            batch.extend(packets.into_iter().map(|(dst, bytes)| (i, dst, bytes)));
            return;
        }
        for (dst, bytes) in packets {
            if let Err(e) = self.senders[i].send_to(&bytes, dst).await {
                // A down link makes sends fail; the link watch puts the instance in FAULT.
                debug!(instance = %self.plan.instances[i].name, "advert to {dst}: {e}");
            }
        }
    }

    /// Instance `i`'s adverts with `priority` and `adver_int_cs`, one per destination, from the
    /// cache when they were encoded last time.
    fn encoded_adverts(
        &mut self,
        i: usize,
        priority: u8,
        adver_int_cs: u16,
    ) -> Option<Vec<(IpAddr, Rc<[u8]>)>> {
        let ip = &self.plan.instances[i];
        if let Some(c) = &self.nodes[i].advert_cache
            && (c.priority, c.adver_int_cs, c.src) == (priority, adver_int_cs, ip.src)
        {
            return Some(c.packets.clone());
        }
        let packets: Vec<(IpAddr, Rc<[u8]>)> = match ip.encode_adverts(priority, adver_int_cs) {
            Ok(p) => p.into_iter().map(|(dst, b)| (dst, Rc::from(b))).collect(),
            Err(e) => {
                error!(instance = %ip.name, "cannot encode advert: {e}");
                return None;
            }
        };
        self.nodes[i].advert_cache = Some(AdvertCache {
            priority,
            adver_int_cs,
            src: ip.src,
            packets: packets.clone(),
        });
        Some(packets)
    }

    /// Sends the adverts batched while timers were handled: one `sendmmsg` per socket.
    async fn flush_adverts(&mut self) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        let mut groups: Vec<(Rc<AdvertSender>, Vec<usize>)> = Vec::new();
        for (k, (i, _, _)) in batch.iter().enumerate() {
            let sender = &self.senders[*i];
            match groups.iter_mut().find(|(g, _)| Rc::ptr_eq(g, sender)) {
                Some((_, ks)) => ks.push(k),
                None => groups.push((sender.clone(), vec![k])),
            }
        }
        for (sender, ks) in groups {
            let msgs: Vec<(&[u8], IpAddr)> =
                ks.iter().map(|&k| (&*batch[k].2, batch[k].1)).collect();
            for (j, e) in sender.send_each(&msgs).await {
                let (i, dst, _) = &batch[ks[j]];
                // A down link makes sends fail; the link watch puts the instance in FAULT.
                debug!(instance = %self.plan.instances[*i].name, "advert to {dst}: {e}");
            }
        }
    }

    async fn add_vips(&mut self, i: usize) {
        let ip = &self.plan.instances[i];
        let mut failed = Vec::new();
        for (k, pv) in ip.vips.iter().enumerate() {
            let Some(index) = self.ifindex(&pv.interface) else {
                continue;
            };
            match self.netlink.add_vip(index, &pv.vip).await {
                Ok(AddOutcome::Added) => {}
                // We removed it leaving master (and stale ones at start): someone put it back.
                Ok(AddOutcome::AlreadyPresent) if !self.is_own_address(pv) => warn!(
                    instance = %ip.name,
                    "address conflict: VIP {} was already on {} when this node became MASTER, not put there by this agent",
                    pv.vip.addr, pv.interface
                ),
                Ok(AddOutcome::AlreadyPresent) => {}
                Err(e) => {
                    error!(instance = %ip.name, "adding VIP {} on {}: {e}; retrying in {:?}", pv.vip.addr, pv.interface, vip_backoff(0));
                    failed.push((k, format!("VIP {} on {}: {e}", pv.vip.addr, pv.interface)));
                }
            }
        }
        if let Some((_, error)) = failed.last() {
            self.nodes[i].vip_retry = Some(VipRetry {
                error: error.clone(),
                failed: failed.iter().map(|f| f.0).collect(),
                attempts: 0,
                at: Instant::now() + vip_backoff(0),
            });
        }
        // The VIPs first (a takeover must not wait), then a look for copies elsewhere.
        self.report_foreign_vips(&[i], false).await;
        for route in &ip.routes {
            if let Err(e) = self.netlink.add_route(route).await {
                error!(instance = %ip.name, "adding virtual route to {}/{}: {e}", route.dst, route.prefix_len);
            }
        }
    }

    /// Warns about every address of the host equal to a VIP of `instances` that this agent did
    /// not put there (another interface, prefix or label): someone else configured the VIP.
    async fn report_foreign_vips(&self, instances: &[usize], exact_too: bool) {
        let host = match self.netlink.all_addresses().await {
            Ok(h) => h,
            Err(e) => {
                warn!("listing the host's addresses to look for VIP conflicts: {e}");
                return;
            }
        };
        for &i in instances {
            let ip = &self.plan.instances[i];
            for pv in ip.vips.iter().filter(|pv| !self.is_own_address(pv)) {
                let Some(index) = self.ifindex(&pv.interface) else {
                    continue;
                };
                for a in conflict::foreign_addresses(pv, index, &pv.interface, &host, exact_too) {
                    let ifname = crate::net::link::if_name(a.ifindex)
                        .unwrap_or_else(|| format!("#{}", a.ifindex));
                    warn!(
                        instance = %ip.name,
                        "address conflict: VIP {} (for {}) is already configured as {}, not by this agent",
                        pv.vip.addr,
                        pv.interface,
                        conflict::describe(a, &ifname)
                    );
                }
            }
        }
    }

    /// Another host said it has `claim.addr` (ARP, NA) on `interface`: a conflict when that is a
    /// VIP of an instance we are master of and the MAC is not one of ours. Reported, counted;
    /// the state does not change (as keepalived).
    fn on_claim(&mut self, interface: &str, claim: Claim) {
        if self.facts.values().any(|f| f.mac == Some(claim.mac)) {
            return;
        }
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            let ip = &self.plan.instances[i];
            if self.instance(i).state() != State::Master
                || !ip
                    .vips
                    .iter()
                    .any(|pv| pv.interface == interface && pv.vip.addr == claim.addr)
            {
                continue;
            }
            let Some(warning) = self.nodes[i].conflicts.record(claim.addr, claim.mac, now) else {
                continue;
            };
            let (allowed, suppressed) = self.claim_log.allow(now);
            if let Some(n) = suppressed {
                warn_suppressed(n);
            }
            if !allowed {
                continue;
            }
            let mac = crate::net::conflict::mac_string(claim.mac);
            let more = |since: u64, by: &str| {
                if since > 0 {
                    format!("; {since} more claims by {by} since the last warning")
                } else {
                    String::new()
                }
            };
            match warning {
                conflict::Warning::Claimant { since } => warn!(
                    instance = %ip.name,
                    "address conflict: VIP {} is claimed on {interface} by {mac} ({} from another host) while this node is MASTER for it{}",
                    claim.addr,
                    claim.kind,
                    more(since, "it")
                ),
                conflict::Warning::Others { since } => warn!(
                    instance = %ip.name,
                    "address conflict: VIP {} is claimed on {interface} by {mac} ({}) and more MACs than the {} named so far while this node is MASTER for it: a misconfigured or hostile host; further MACs are counted together, not named{}",
                    claim.addr,
                    claim.kind,
                    conflict::MAX_CLAIMANTS,
                    more(since, "them")
                ),
            }
        }
    }

    /// XDP: `vrrp_rx` sets `SLOT_FENCE[slot]` when an advert preempts a Master, and sends an
    /// event that makes us step down; if that event was lost (a full ring buffer) we would stay
    /// MASTER with our VIPs fenced. On each advert tick of a Master whose slot is fenced, the
    /// peer record decides: a preempting peer heard within the master-down interval is
    /// delivered (we step down, as its event would have made us), else the flag is cleared.
    async fn reconcile_slot_fence(&mut self, i: usize, now: Instant) {
        if self.instance(i).state() != State::Master {
            return;
        }
        let Some(slot) = self.slot(i) else {
            return;
        };
        let ip = &self.plan.instances[i];
        let Some(dp) = self.xdp.get(&ip.interface) else {
            return;
        };
        match dp.slot_fenced(slot) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                error!(instance = %ip.name, "reading the XDP slot fence: {e}");
                return;
            }
        }
        let peer = dp.peer(slot).ok().filter(|p| p.last_seen_ns != 0);
        let down = self.instance(i).master_down_interval();
        let ours = (
            self.instance(i).effective_priority(),
            ip.machine.primary_address,
        );
        if let Some(peer) = peer {
            let seen = xdp::instant_of(peer.last_seen_ns);
            let src = peer_src(peer.src, slot);
            let preempts = peer.priority > ours.0 || (peer.priority == ours.0 && src > ours.1);
            if preempts && now.saturating_duration_since(seen) < down {
                warn!(
                    instance = %ip.name,
                    "{}: XDP fenced this MASTER's VIPs on an advert from {src} (priority {}) whose event never reached the agent (ring buffer overflow?): stepping down as that advert requires",
                    ip.interface,
                    peer.priority
                );
                self.deliver_peer(i, peer).await;
                if self.instance(i).state() != State::Master {
                    return;
                }
            }
        }
        let ip = &self.plan.instances[i];
        let heard = match peer {
            Some(p) => format!(
                "the last advert was from {} with priority {}, {:.1}s ago",
                peer_src(p.src, slot),
                p.priority,
                now.saturating_duration_since(xdp::instant_of(p.last_seen_ns))
                    .as_secs_f64()
            ),
            None => "no advert was ever recorded".to_owned(),
        };
        let Some(dp) = self.xdp.get_mut(&ip.interface) else {
            return;
        };
        match dp.clear_slot_fence(slot) {
            Ok(()) => warn!(
                instance = %ip.name,
                "{}: XDP had fenced this MASTER's VIPs (SLOT_FENCE[{slot}]) but no higher-priority router was heard within the master-down interval ({:.1}s; {heard}): fence cleared, the VIPs answer again",
                ip.interface,
                down.as_secs_f64()
            ),
            Err(e) => error!(instance = %ip.name, "clearing the XDP slot fence: {e}"),
        }
    }

    /// XDP: when `EVENTS_LOST` of an interface moved, the ring buffer overflowed and some peer
    /// changes never reached us: every instance on it is brought up to date from its peer
    /// record (as if each had an event), and each Master's slot fence is reconciled.
    async fn resync_lost_events(&mut self) {
        let mut moved = Vec::new();
        for (name, dp) in &self.xdp {
            let lost = match dp.events_lost() {
                Ok(n) => n,
                Err(e) => {
                    debug!("{name}: reading XDP EVENTS_LOST: {e}");
                    continue;
                }
            };
            // The first reading is the baseline: maps adopted from an earlier run keep its count.
            let Some(before) = self.events_lost.insert(name.clone(), lost) else {
                self.status_dirty = true;
                continue;
            };
            if lost > before {
                warn!(
                    "{name}: {} XDP peer events lost (ring buffer full, {lost} in all): resynchronising every instance on {name} from the kernel's peer records",
                    lost - before
                );
                moved.push(name.clone());
            } else if lost < before {
                // A new map (the programs were attached again): a new count.
                self.status_dirty = true;
            }
        }
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            if !moved.contains(&self.plan.instances[i].interface) {
                continue;
            }
            if let Some(peer) = self.fresh_peer(i) {
                self.deliver_peer(i, peer).await;
            }
            self.reconcile_slot_fence(i, now).await;
        }
        if !moved.is_empty() {
            self.status_dirty = true;
        }
    }

    /// The summary of the conflict warnings held back in an interval that is over.
    fn flush_claim_warnings(&mut self) {
        if let Some(n) = self.claim_log.flush(Instant::now()) {
            warn_suppressed(n);
        }
    }

    async fn remove_vips(&mut self, i: usize) {
        self.nodes[i].vip_retry = None;
        for h in [self.nodes[i].garp.take(), self.nodes[i].lower_garp.take()]
            .into_iter()
            .flatten()
        {
            h.abort();
        }
        let ip = &self.plan.instances[i];
        for route in &ip.routes {
            if let Err(e) = self.netlink.del_route(route).await {
                error!(instance = %ip.name, "removing virtual route to {}/{}: {e}", route.dst, route.prefix_len);
            }
        }
        for pv in &ip.vips {
            let Some(index) = self.ifindex(&pv.interface) else {
                continue;
            };
            if self.is_own_address(pv) {
                continue;
            }
            if let Err(e) = self.netlink.del_vip(index, &pv.vip).await {
                error!(instance = %ip.name, "removing VIP {} from {}: {e}", pv.vip.addr, pv.interface);
            }
        }
    }

    /// Fences (or unfences) the instance's VIPs in the TC program of their interface, and tells
    /// `vrrp_rx` whether the instance is master. Unfencing refreshes the heartbeat and clears
    /// the kernel's slot fence first, so the GARPs that follow are not dropped.
    fn fence(&mut self, i: usize, on: bool) {
        let ip = &self.plan.instances[i];
        let slot = self.slot(i);
        let timeout = heartbeat_timeout(ip);
        let priority = self.instance(i).effective_priority();
        if let (Some(slot), Some(dp)) = (slot, self.xdp.get_mut(&ip.interface)) {
            let result = dp.set_state(slot, !on, priority).and_then(|()| {
                if on {
                    Ok(())
                } else {
                    dp.heartbeat()?;
                    dp.clear_slot_fence(slot)
                }
            });
            match result {
                Ok(()) => self.nodes[i].xdp_state = Some((!on, priority)),
                Err(e) => error!(instance = %ip.name, "writing the XDP instance state: {e}"),
            }
        }
        for pv in &ip.vips {
            if self.is_own_address(pv) {
                continue;
            }
            for (name, slot) in Self::fence_targets(ip, pv) {
                let Some(dp) = self.xdp.get_mut(name) else {
                    continue;
                };
                if let Err(e) = dp.set_fence(pv.vip.addr, slot, on, timeout) {
                    error!(instance = %ip.name, "{} {} on {name}: {e}", if on { "fencing" } else { "unfencing" }, pv.vip.addr);
                }
            }
        }
    }

    /// Takes the instance's VIPs out of the fence map (the instance goes away on a reload).
    fn release(&mut self, i: usize) {
        let ip = &self.plan.instances[i];
        for pv in &ip.vips {
            for dp in self.xdp.values_mut() {
                if let Err(e) = dp.unfence(pv.vip.addr) {
                    error!(instance = %ip.name, "releasing {}: {e}", pv.vip.addr);
                }
            }
        }
    }

    /// Gratuitous ARP / unsolicited NA: a burst now, another after `garp_master_delay`, then
    /// every `garp_master_refresh`. Runs as a task, so it starts after this batch of actions
    /// (after Unfence: the TC fence would drop GARPs for a fenced VIP).
    fn send_gratuitous(&mut self, i: usize) {
        let ip = &self.plan.instances[i];
        let bursts = GarpBursts {
            repeat: ip.garp_repeat,
            delay: ip.garp_delay,
            refresh: ip.garp_refresh,
            refresh_repeat: ip.garp_refresh_repeat,
        };
        let task = self.gratuitous_task(i, bursts);
        if let Some(old) = self.nodes[i].garp.replace(task) {
            old.abort();
        }
    }

    /// keepalived's `garp_lower_prio_repeat` GARPs of a Master that heard a lower-priority
    /// advert, and as many again after `garp_lower_prio_delay`: the neighbours that followed
    /// the other master (a healed partition) come back at once. One such pair per advert
    /// interval at most: a stream of lower-priority adverts does not become a stream of
    /// bursts; but a pair still waiting for its second burst does not swallow a later
    /// reassertion, which starts a new pair (after a second hang the neighbours followed a
    /// backup again meanwhile).
    fn reassert_gratuitous(&mut self, i: usize) {
        let every = Duration::from_millis(
            10 * u64::from(self.plan.instances[i].machine.advert_interval_cs),
        );
        let now = Instant::now();
        let n = &mut self.nodes[i];
        if n.lower_garp_at
            .is_some_and(|at| now.saturating_duration_since(at) < every)
        {
            return;
        }
        if let Some(old) = n.lower_garp.take() {
            old.abort();
        }
        n.lower_garp_at = Some(now);
        let ip = &self.plan.instances[i];
        info!(
            instance = %ip.name,
            "reasserting over a lower priority: {} gratuitous ARP/NA per VIP{}",
            ip.garp_lower_prio_repeat,
            if ip.garp_lower_prio_delay.is_zero() {
                String::new()
            } else {
                format!(", again in {:?}", ip.garp_lower_prio_delay)
            }
        );
        let bursts = GarpBursts {
            repeat: ip.garp_lower_prio_repeat,
            delay: ip.garp_lower_prio_delay,
            refresh: Duration::ZERO,
            refresh_repeat: 0,
        };
        let task = self.gratuitous_task(i, bursts);
        self.nodes[i].lower_garp = Some(task);
    }

    /// A task sending the instance's gratuitous ARPs / NAs as `bursts` says.
    fn gratuitous_task(&self, i: usize, bursts: GarpBursts) -> AbortHandle {
        let ip = &self.plan.instances[i];
        let mut by_if: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for pv in &ip.vips {
            by_if
                .entry(pv.interface.clone())
                .or_default()
                .push(pv.vip.addr);
        }
        let jobs: Vec<(Rc<GarpSender>, Vec<IpAddr>, Option<std::net::Ipv6Addr>)> = by_if
            .into_iter()
            .filter_map(|(name, vips)| {
                let sender = self.garp.get(&name)?.clone();
                let ll = self.facts.get(&name).and_then(|f| f.link_local_v6);
                Some((sender, vips, ll))
            })
            .collect();
        let spacing = ip.garp_spacing;
        let GarpBursts {
            repeat,
            delay,
            refresh,
            refresh_repeat,
        } = bursts;
        let name = ip.name.clone();
        let task = spawn_local(async move {
            let burst = |n: u32| {
                let jobs = &jobs;
                let name = &name;
                async move {
                    for (sender, vips, ll) in jobs {
                        if let Err(e) = sender.announce(vips, *ll, false, n, spacing).await {
                            warn!(instance = %name, "gratuitous ARP/NA: {e}");
                        }
                    }
                }
            };
            // keepalived: the burst, the same again `delay` after it, and `refresh_repeat`
            // every `refresh` counted from the transition (vrrp_state_become_master arms the
            // refresh timer then), not from the delayed burst.
            let start = tokio::time::Instant::now();
            burst(repeat).await;
            let mut delayed = (!delay.is_zero()).then(|| start + delay);
            let mut refreshed = (!refresh.is_zero()).then(|| start + refresh);
            loop {
                let next = match (delayed, refreshed) {
                    (None, None) => break,
                    (Some(d), Some(r)) => d.min(r),
                    (Some(t), None) | (None, Some(t)) => t,
                };
                tokio::time::sleep_until(next).await;
                if delayed == Some(next) {
                    delayed = None;
                    burst(repeat).await;
                } else {
                    refreshed = Some(next + refresh);
                    burst(refresh_repeat).await;
                }
            }
        });
        task.abort_handle()
    }

    fn notify(&mut self, i: usize, from: State, to: State) {
        let now = Instant::now();
        self.status_dirty = true;
        let n = &mut self.nodes[i];
        n.transitions += 1;
        n.state = to;
        n.state_since = now;
        n.state_since_wall = SystemTime::now();
        if to == State::Master {
            n.last_takeover = n.last_heard.map(|t| now.saturating_duration_since(t));
        }
        let ip = &self.plan.instances[i];
        let inst = self.instance(i);
        let master = inst
            .master()
            .map(|(a, p)| format!("{a} (priority {p})"))
            .unwrap_or_else(|| "-".into());
        // Startup and Shutdown are the only ways out of and into INIT; they go to whole units.
        let reason = match self.cause {
            Some((j, event)) => crate::control::transition_reason(
                &event,
                from,
                (j != i).then(|| self.plan.instances[j].name.as_str()),
                self.resign_timer,
            ),
            None if from == State::Initialize => "startup".to_owned(),
            None if to == State::Initialize => "shutdown".to_owned(),
            None => "-".to_owned(),
        };
        info!(
            instance = %ip.name,
            "{} -> {} ({reason}; priority {}, effective {}, master {master})",
            if from == State::Initialize { "INIT" } else { notify::state_word(from) },
            notify::state_word(to),
            ip.machine.priority,
            inst.effective_priority()
        );
        for (argv, user) in notify::commands(
            &ip.notify,
            Subject::Instance,
            &ip.name,
            to,
            inst.effective_priority(),
        ) {
            notify::spawn(argv, self.notify_users.run_as(user, self.run_as));
        }
    }

    async fn on_advert(&mut self, inc: Incoming) {
        let i = match &inc.target {
            Target::Instance(at) => {
                // Queued before a reload renumbered the instances: dropped (the next comes in
                // one advert interval).
                if at.generation != self.generation {
                    debug!("dropped an advert queued before the reload (the plan changed)");
                    return;
                }
                self.nodes[at.index].adverts_received += 1;
                at.index
            }
            Target::Slot {
                interface,
                slot,
                seen_ns,
            } => {
                let Some(i) = self.slot_owner(interface, *slot) else {
                    return;
                };
                let n = &mut self.nodes[i];
                n.peer_seen_ns = n.peer_seen_ns.max(*seen_ns);
                i
            }
        };
        let n = &mut self.nodes[i];
        n.last_heard = Some(inc.at);
        let event = Event::Advert {
            src: inc.src,
            priority: inc.priority,
            max_adver_int_cs: inc.adver_int_cs,
        };
        self.deliver(i, inc.at, event).await;
    }

    async fn on_timers(&mut self) {
        let now = Instant::now();
        self.retry_vips(now).await;
        // Adverts that fall due together go out together (one sendmmsg per socket).
        self.batch = Some(Vec::new());
        for i in 0..self.nodes.len() {
            if let Some(at) = self.nodes[i].timer
                && at <= now
            {
                // XDP: the Master_Down_Timer fires, but vrrp_rx may have seen the master since
                // (unchanged adverts send no event). Its last advert re-arms the timer from when
                // it arrived; only if that is due too does the timer really fire.
                if self.instance(i).state() == State::Backup
                    && let Some(peer) = self.fresh_peer(i)
                {
                    self.deliver_peer(i, peer).await;
                }
                let Some(at) = self.nodes[i].timer.filter(|&t| t <= now) else {
                    continue;
                };
                self.nodes[i].timer = None;
                self.resign_timer = self.instance(i).awaiting_resigned_master();
                // The deadline, not the wake-up time: the advert timer does not drift.
                self.deliver(i, at, Event::TimerFired).await;
                self.resign_timer = false;
                self.reconcile_slot_fence(i, now).await;
            }
        }
        self.flush_adverts().await;
    }

    /// VIP adds that failed are retried with backoff while the instance is master; after
    /// [`VIP_ADD_RETRIES`] the instance goes to FAULT (saying which VIP and why) for
    /// [`VIP_FAULT_HOLD`], then leaves it to try again.
    async fn retry_vips(&mut self, now: Instant) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].vip_fault.as_ref().is_some_and(|f| f.1 <= now) {
                self.nodes[i].vip_fault = None;
                info!(instance = %self.plan.instances[i].name, "leaving FAULT to try adding the VIPs again");
                self.recompute(i, now).await;
            }
            let due = self.nodes[i].vip_retry.as_ref().map(|r| r.at <= now);
            let Some(mut retry) = self.nodes[i].vip_retry.take_if(|_| due == Some(true)) else {
                continue;
            };
            if self.instance(i).state() != State::Master {
                continue;
            }
            let ip = &self.plan.instances[i];
            let mut still = Vec::new();
            for &k in &retry.failed {
                let pv = &ip.vips[k];
                let Some(index) = self.ifindex(&pv.interface) else {
                    continue;
                };
                match self.netlink.add_vip(index, &pv.vip).await {
                    Ok(_) => {
                        info!(instance = %ip.name, "VIP {} added on {} (retry {})", pv.vip.addr, pv.interface, retry.attempts + 1)
                    }
                    Err(e) => {
                        retry.error = format!("VIP {} on {}: {e}", pv.vip.addr, pv.interface);
                        still.push(k);
                    }
                }
            }
            if still.is_empty() {
                continue;
            }
            retry.attempts += 1;
            retry.failed = still;
            if retry.attempts < VIP_ADD_RETRIES {
                retry.at = now + vip_backoff(retry.attempts);
                warn!(instance = %ip.name, "adding {}; retry {} of {VIP_ADD_RETRIES} in {:?}", retry.error, retry.attempts + 1, vip_backoff(retry.attempts));
                self.nodes[i].vip_retry = Some(retry);
                continue;
            }
            error!(
                instance = %ip.name,
                "{} could not be added ({} attempts): going to FAULT for {VIP_FAULT_HOLD:?}, \
                 then trying again; check the address and the interface (`ip addr`)",
                retry.error,
                retry.attempts + 1
            );
            self.nodes[i].vip_fault = Some((retry.error, now + VIP_FAULT_HOLD));
            self.recompute(i, now).await;
        }
    }

    /// Re-reads track_file values (through [`Runtime::recompute`]): a tracked file may have
    /// changed (only the watch task `start_tasks` starts for the tracked files sends this).
    async fn on_track_files(&mut self) {
        self.read_track_files().await;
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            self.recompute(i, now).await;
        }
    }

    /// Reads every track_file on the blocking pool (a slow disk or NFS never stalls the loop;
    /// `read_value` never waits on a FIFO) into `track_values`. A file that cannot be read
    /// counts as 0, as keepalived; why is said once, when it starts.
    async fn read_track_files(&mut self) {
        let files: Vec<(String, std::path::PathBuf)> = self
            .config
            .track_files
            .iter()
            .map(|f| (f.name.clone(), f.file.clone()))
            .collect();
        if files.is_empty() {
            return;
        }
        let read = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|(name, path)| {
                    let value = track::file::read_value(&path);
                    (name, path, value)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let Ok(read) = read else {
            error!("track_file: the reader task failed; values unchanged");
            return;
        };
        for (name, path, value) in read {
            if let Err(why) = &value
                && self.track_values.get(&name) != Some(&value)
            {
                warn!(
                    "track_file {name}: {}: {why}; counted as 0 until it can be read",
                    path.display()
                );
            }
            self.track_values.insert(name, value);
        }
    }

    async fn on_script(&mut self, update: ScriptUpdate) {
        // From a script task a reload stopped: its index is the old configuration's (the new
        // task sends its first result anyway).
        if update.generation != self.generation {
            debug!("dropped a script result queued before the reload (the plan changed)");
            return;
        }
        self.scripts_up[update.index] = update.up;
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            self.recompute(i, now).await;
        }
    }

    /// A link changed, or an address was added. Returns true when an interface we use came
    /// back under a new index (it was deleted and re-created): sockets, VIPs and XDP must move
    /// to it, which a reload does. Until a reload works (the interface has its addresses) every
    /// change of it asks again.
    async fn on_link(&mut self, event: crate::net::LinkEvent) -> bool {
        if !event.removed
            && self
                .facts
                .get(&event.name)
                .is_some_and(|f| f.index != event.ifindex)
        {
            let back = (event.name.clone(), event.ifindex);
            if self.rewiring.as_ref() == Some(&back) {
                debug!(
                    "interface {} (index {}) changed: retrying the reload",
                    event.name, event.ifindex
                );
            } else {
                info!(
                    "interface {} is back as index {}: reloading to use it",
                    event.name, event.ifindex
                );
                self.rewiring = Some(back);
            }
            if let Some(dp) = self.xdp.remove(&event.name) {
                // Its programs went with the old interface; its pins are removed so the new
                // one gets fresh ones.
                close_all(
                    HashMap::from([(event.name.clone(), dp)]),
                    &mut self.event_tasks,
                );
            }
            return true;
        }
        if event.address.is_some() {
            return false;
        }
        let running = event.running && !event.removed;
        if self.running.get(&event.name) == Some(&running) {
            return false;
        }
        info!(
            "interface {} is {}",
            event.name,
            if running { "up" } else { "down" }
        );
        self.running.insert(event.name.clone(), running);
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            if self.plan.instances[i].interface == event.name {
                self.nodes[i].link_running = running;
            }
            self.recompute(i, now).await;
        }
        false
    }

    /// Recomputes instance `i`'s fault and effective priority from its trackers, and tells its
    /// state machine what changed.
    async fn recompute(&mut self, i: usize, now: Instant) {
        let ip = &self.plan.instances[i];
        let group = self.plan.units[self.nodes[i].unit].group.as_ref();
        let mut trackers = Vec::new();
        let up_down = |up: bool, t: &crate::config::Tracker| Tracked::UpDown {
            up,
            weight: t.weight,
            reverse: t.reverse,
        };
        let group_ifs = group
            .map(|g| g.track_interfaces.as_slice())
            .unwrap_or_default();
        let mut shown = Vec::new();
        let mut show = |kind: &'static str, t: &crate::config::Tracker, up: bool| {
            shown.push(TrackerStatus {
                kind,
                name: t.name.clone(),
                up,
                weight: t.weight,
            });
        };
        for t in ip.track_interfaces.iter().chain(group_ifs) {
            let up = self.running.get(&t.name).copied().unwrap_or(false);
            show("interface", t, up);
            trackers.push(up_down(up, t));
        }
        // The interfaces of VIPs on another `dev` (without `no_track`): weight 0, as keepalived.
        for name in &ip.vip_interfaces {
            let t = crate::config::Tracker {
                name: name.clone(),
                weight: 0,
                reverse: false,
            };
            let up = self.running.get(name).copied().unwrap_or(false);
            show("interface", &t, up);
            trackers.push(up_down(up, &t));
        }
        let group_scripts = group
            .map(|g| g.track_scripts.as_slice())
            .unwrap_or_default();
        for t in ip.track_scripts.iter().chain(group_scripts) {
            let up = self
                .config
                .scripts
                .iter()
                .position(|s| s.name == t.name)
                .map(|s| self.scripts_up[s])
                .unwrap_or(false);
            show("script", t, up);
            trackers.push(up_down(up, t));
        }
        let group_files = group.map(|g| g.track_files.as_slice()).unwrap_or_default();
        for t in ip.track_files.iter().chain(group_files) {
            let value = match self.track_values.get(&t.name) {
                Some(Ok(v)) => *v,
                _ => 0,
            };
            show("file", t, value == 0 || t.weight != 0);
            trackers.push(Tracked::File {
                value,
                weight: t.weight,
                reverse: t.reverse,
            });
        }
        let eff = track::effective(ip.machine.priority, &trackers);
        // A VIP the kernel would not add: FAULT, shown as a tracker that is down.
        let vip_fault = self.nodes[i].vip_fault.as_ref().map(|f| f.0.clone());
        if let Some(why) = &vip_fault {
            shown.push(TrackerStatus {
                kind: "vip",
                name: format!("{why} (cannot be added)"),
                up: false,
                weight: 0,
            });
        }
        self.nodes[i].trackers = shown;
        // keepalived's dont_track_primary: the instance's own link does not count.
        let fault = eff.fault
            || (!self.nodes[i].link_running && !ip.dont_track_primary)
            || vip_fault.is_some();
        if fault != self.nodes[i].fault {
            self.nodes[i].fault = fault;
            let event = if fault {
                Event::InterfaceDown
            } else {
                Event::InterfaceUp
            };
            self.deliver(i, now, event).await;
        }
        if eff.priority != self.nodes[i].priority {
            self.nodes[i].priority = eff.priority;
            info!(instance = %self.plan.instances[i].name, "effective priority {}", eff.priority);
            self.deliver(
                i,
                now,
                Event::PriorityChanged {
                    effective_priority: eff.priority,
                },
            )
            .await;
        }
    }
}

/// What a receive task checks adverts with: the interface's instances (their plan indices and
/// rules) and groups.
struct Listener {
    opts: DecodeOptions,
    group4: std::net::Ipv4Addr,
    group6: std::net::Ipv6Addr,
    indices: Vec<usize>,
    rules: Vec<InstanceRules>,
}

/// Receives, decodes and validates adverts on one socket; forwards the valid ones, counts the
/// rejected and other speakers' ones.
async fn listen(
    socket: VrrpSocket,
    family: Family,
    listener: Listener,
    generation: u64,
    tx: mpsc::UnboundedSender<Incoming>,
    rejected: Rejected,
    foreign: Foreign,
) {
    let receiver = packet::Receiver {
        group4: listener.group4,
        group6: listener.group6,
        instances: &listener.rules,
    };
    let opts = listener.opts;
    let mut buf = vec![0u8; 65536];
    loop {
        let received = match socket.recv(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                warn!("receiving on {}: {e}", socket.ifname());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let at = Instant::now();
        let bytes = &buf[..received.len];
        let arrival = packet::Arrival::SOCKET;
        let verdict = match family {
            Family::Ipv4 => packet::receive_ip(bytes, arrival, &receiver, &opts),
            Family::Ipv6 => packet::receive_vrrp(
                received.src,
                received.dst,
                received.ttl,
                bytes,
                arrival,
                &receiver,
                &opts,
            ),
        };
        match verdict {
            packet::Verdict::Valid { instance, received } => {
                let incoming = Incoming {
                    target: Target::Instance(PlanIndex {
                        index: listener.indices[instance],
                        generation,
                    }),
                    at,
                    src: received.src,
                    priority: received.advert.priority,
                    adver_int_cs: received.advert.adver_int_cs,
                };
                if tx.send(incoming).is_err() {
                    return;
                }
            }
            // Another speaker's (keepalived ignores VRIDs it does not run): counted only.
            packet::Verdict::Foreign { vrid } => {
                *foreign
                    .borrow_mut()
                    .entry((socket.ifname().to_owned(), vrid))
                    .or_insert(0) += 1;
            }
            packet::Verdict::NotVrrp => {}
            packet::Verdict::Rejected { vrid, reason } => {
                let n = {
                    let mut map = rejected.borrow_mut();
                    let n = map
                        .entry((socket.ifname().to_owned(), vrid, reason.as_str()))
                        .or_insert(0);
                    *n += 1;
                    *n
                };
                // The first of each kind at info, the rest at debug: a flood does not flood the log.
                if n == 1 {
                    info!(
                        "{}: dropped advert from {} (vrid {vrid}): {}",
                        socket.ifname(),
                        received.src,
                        reason.as_str()
                    );
                } else {
                    debug!(
                        "{}: dropped advert from {} (vrid {vrid}): {} (#{n})",
                        socket.ifname(),
                        received.src,
                        reason.as_str()
                    );
                }
            }
        }
    }
}

/// Forwards the claims other hosts make on one interface to the loop, at most
/// [`CLAIMS_PER_WINDOW`] per [`CLAIM_WINDOW`] and only when the channel has room: the rest wait
/// in the socket's queue, and what overflows it the kernel drops; those are counted in
/// `dropped` (read every [`COUNTERS_PERIOD`]).
async fn watch_claims(
    interface: Rc<str>,
    watch: ClaimWatch,
    tx: mpsc::Sender<(Rc<str>, Claim)>,
    dropped: Rc<std::cell::Cell<u64>>,
) {
    let mut stats = tokio::time::interval(COUNTERS_PERIOD);
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut window, mut taken) = (Instant::now(), 0u32);
    loop {
        if taken >= CLAIMS_PER_WINDOW {
            tokio::time::sleep_until((window + CLAIM_WINDOW).into()).await;
        }
        if window.elapsed() >= CLAIM_WINDOW {
            (window, taken) = (Instant::now(), 0);
        }
        let Ok(permit) = tx.reserve().await else {
            return;
        };
        tokio::select! {
            claim = watch.next() => match claim {
                Ok(claim) => {
                    taken += 1;
                    permit.send((interface.clone(), claim));
                }
                Err(e) => {
                    warn!("{e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = stats.tick() => match watch.dropped() {
                Ok(n) => dropped.set(dropped.get() + n),
                Err(e) => debug!("{e}"),
            },
        }
    }
}

/// The summary of the address-conflict warnings [`conflict::LogBudget`] held back.
fn warn_suppressed(n: u64) {
    warn!(
        "{n} more address-conflict warnings in the last {}s were not logged (at most {} per {}s); every claim is counted: `ha-agent status` (vip_conflicts), metric ha_agent_vip_conflicts_total",
        conflict::WARN_EVERY.as_secs(),
        conflict::WARN_LINES,
        conflict::WARN_EVERY.as_secs()
    );
}

/// How long `vip_fence` trusts a silent agent with an instance's VIPs: `down_timer_adverts`
/// advert intervals (3 by default). A healthy master's loop wakes at least once an interval to
/// advertise; a backup's VIPs are fenced anyway.
fn heartbeat_timeout(ip: &plan::InstancePlan) -> Duration {
    Duration::from_millis(10)
        * u32::from(ip.machine.advert_interval_cs)
        * u32::from(ip.machine.down_timer_adverts)
}

/// An instance's slot in the XDP maps: its VRID, +256 over IPv6.
fn slot_of(ip: &plan::InstancePlan) -> u32 {
    instance_slot(ip.machine.vrid, ip.family == Family::Ipv6)
}

/// A source address as the maps hold it (IPv4 in the first 4 bytes): IPv6 for slots 256 and up.
fn peer_src(src: [u8; 16], slot: u32) -> IpAddr {
    if slot >= ha_common::maps::VRID_SLOTS {
        IpAddr::from(src)
    } else {
        IpAddr::from([src[0], src[1], src[2], src[3]])
    }
}

/// Detaches and unpins every datapath (a clean exit, or interfaces no longer used) and stops
/// their ring-buffer readers.
fn close_all(datapaths: HashMap<String, XdpDatapath>, tasks: &mut HashMap<String, AbortHandle>) {
    for (name, dp) in datapaths {
        if let Some(task) = tasks.remove(&name) {
            task.abort();
        }
        if let Err(e) = dp.close() {
            warn!("{name}: removing the XDP/TC programs and pins: {e}");
        }
    }
}

/// Reads `vrrp_rx`'s ring buffer on one interface and forwards each event to the loop.
async fn xdp_events(
    interface: Rc<str>,
    events: aya::maps::RingBuf<aya::maps::MapData>,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    // SAFETY: the RingBuf owns its map fd, which stays open and the same until the AsyncFd
    // (which owns the RingBuf) is dropped.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(events, tokio::io::Interest::READABLE)
    };
    let mut fd = match registered.map_err(std::io::Error::from) {
        Ok(fd) => fd,
        Err(e) => {
            error!("{interface}: polling the XDP ring buffer: {e}; adverts are not received");
            return;
        }
    };
    let size = std::mem::size_of::<PeerEvent>();
    loop {
        let mut guard = match fd.readable_mut().await {
            Ok(g) => g,
            Err(e) => {
                error!("{interface}: polling the XDP ring buffer: {e}; adverts are not received");
                return;
            }
        };
        let ring = guard.get_inner_mut();
        while let Some(item) = ring.next() {
            let Some(bytes) = item.get(..size) else {
                continue;
            };
            let ev: PeerEvent = bytemuck::pod_read_unaligned(bytes);
            let slot = u32::from(ev.slot);
            let incoming = Incoming {
                target: Target::Slot {
                    interface: interface.clone(),
                    slot,
                    seen_ns: ev.at_ns,
                },
                at: xdp::instant_of(ev.at_ns),
                src: peer_src(ev.src, slot),
                priority: ev.priority,
                adver_int_cs: ev.adver_int_cs,
            };
            if tx.send(incoming).is_err() {
                return;
            }
        }
        guard.clear_ready();
    }
}

//! Everything that comes in: the receive sockets' tasks, the XDP ring-buffer readers, the claim
//! watchers, the tracker tasks, the channels they report on, and the kernel's peer records.
//! [`Intake`] is the only reader of the peer records: it turns one into the advert it records,
//! offers "an advert fresher than what was delivered" to the master-down timer, and "the first
//! advert after T" to the shutdown handover.

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::PathBuf,
    rc::Rc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use ha_common::maps::{PeerEvent, PeerRecord};
use tokio::{
    sync::mpsc,
    task::{AbortHandle, spawn_local},
};
use tracing::{debug, error, info, warn};

use super::datapaths::{Counts, Datapaths, Ring, peer_src};
use crate::{
    agent::{plan::Plan, preflight::ScriptJob},
    config::Config,
    datapath::{
        socket::{Membership, VrrpSocket, v4s, v6s},
        xdp,
    },
    net::{Claim, ClaimWatch},
    track::script::{self, ScriptUpdate},
    vrrp::{
        instance::Event,
        packet::{self, DecodeOptions, Family, InstanceRules},
    },
};

/// How often the XDP and claim counters are read.
pub(super) const COUNTERS_PERIOD: Duration = Duration::from_secs(1);

/// Adverts read ahead of a due timer or a claim, at most (the rest in later loop turns).
pub(super) const ADVERT_DRAIN: usize = 1024;

/// Claims waiting for the loop, at most; claims handled in one loop turn, at most.
const CLAIM_QUEUE: usize = 256;
pub(super) const CLAIM_BATCH: usize = 64;

/// Claims read from one interface's socket per [`CLAIM_WINDOW`], at most (1000/s): more wait in
/// the kernel's socket queue, whose overflow the kernel drops and counts. Conflicts are news
/// at their first claim; a flood costs the agent this much and no more.
const CLAIMS_PER_WINDOW: u32 = 100;
const CLAIM_WINDOW: Duration = Duration::from_millis(100);

/// A valid advert for one of our instances, with when it arrived.
pub(super) struct Incoming {
    target: Target,
    pub at: Instant,
    pub src: IpAddr,
    pub priority: u8,
    pub adver_int_cs: u16,
}

/// Whom an advert is for.
enum Target {
    /// Socket datapath: the receive task resolved the instance, in the plan of `generation`
    /// (a reload renumbers the instances: what was queued before it is dropped).
    Instance { index: usize, generation: u64 },
    /// XDP datapath: a ring-buffer event for a slot of an interface, with its
    /// `bpf_ktime_get_ns()`; resolved with the current plan (a reload may have changed it).
    Slot {
        interface: Rc<str>,
        slot: u32,
        seen_ns: u64,
    },
}

/// Adverts dropped by the receive tasks or XDP, by (interface, VRID, reason).
pub(super) type Rejected = Rc<RefCell<BTreeMap<(String, u8, &'static str), u64>>>;

/// Adverts for other speakers, by (interface, VRID): ignored by the receive tasks, passed on
/// by XDP.
pub(super) type Foreign = Rc<RefCell<BTreeMap<(String, u8), u64>>>;

/// Where the tasks report; kept across reloads.
#[derive(Clone)]
pub(super) struct Channels {
    adverts: mpsc::UnboundedSender<Incoming>,
    scripts: mpsc::UnboundedSender<ScriptUpdate>,
    /// ARP / NA claims other hosts make, by interface (address conflicts).
    claims: mpsc::Sender<(Rc<str>, Claim)>,
    /// A tracked file may have changed (`track::file::watch`).
    files: mpsc::UnboundedSender<()>,
    /// Tracked processes' counts and states (`track::process::monitor`).
    processes: mpsc::UnboundedSender<Vec<crate::track::process::Reading>>,
}

/// The loop's ends of the [`Channels`].
pub(super) struct Inboxes {
    pub adverts: mpsc::UnboundedReceiver<Incoming>,
    pub scripts: mpsc::UnboundedReceiver<ScriptUpdate>,
    pub claims: mpsc::Receiver<(Rc<str>, Claim)>,
    pub files: mpsc::UnboundedReceiver<()>,
    pub processes: mpsc::UnboundedReceiver<Vec<crate::track::process::Reading>>,
}

impl Channels {
    pub fn new() -> (Channels, Inboxes) {
        let (adverts_tx, adverts) = mpsc::unbounded_channel();
        let (scripts_tx, scripts) = mpsc::unbounded_channel();
        // Bounded: a flood of claims waits in (and overflows from) the kernel's socket queue.
        let (claims_tx, claims) = mpsc::channel(CLAIM_QUEUE);
        let (files_tx, files) = mpsc::unbounded_channel();
        let (processes_tx, processes) = mpsc::unbounded_channel();
        let channels = Channels {
            adverts: adverts_tx,
            scripts: scripts_tx,
            claims: claims_tx,
            files: files_tx,
            processes: processes_tx,
        };
        let inboxes = Inboxes {
            adverts,
            scripts,
            claims,
            files,
            processes,
        };
        (channels, inboxes)
    }
}

/// One receive socket, opened before anything is swapped (a reload is refused whole).
pub(super) struct Listening {
    name: String,
    family: Family,
    socket: VrrpSocket,
    /// Its groups joined on their own (what XDP needs: a NIC's multicast filter).
    membership: Option<Membership>,
}

/// Opens a receive socket on each (interface, family) of `plan` and joins its groups.
pub(super) fn open_listeners(plan: &Plan) -> Result<Vec<Listening>> {
    let mut listeners = Vec::new();
    for (name, family) in plan.listeners() {
        let groups = plan.groups(&name, family);
        let socket = match family {
            Family::Ipv4 => VrrpSocket::open_v4(&name, &v4s(&groups)),
            Family::Ipv6 => VrrpSocket::open_v6(&name, &v6s(&groups)),
        }
        .with_context(|| format!("opening the VRRP receive socket on {name}"))?;
        // XDP reads the adverts, but the groups are still joined, or a NIC's multicast filter
        // may never pass them.
        let membership = (!groups.is_empty())
            .then(|| Membership::join(&name, &groups))
            .transpose()
            .with_context(|| format!("joining the VRRP multicast group on {name}"))?;
        listeners.push(Listening {
            name,
            family,
            socket,
            membership,
        });
    }
    Ok(listeners)
}

/// Per instance: the adverts heard.
#[derive(Clone, Copy, Default)]
pub(super) struct Heard {
    /// XDP: the newest peer record already delivered (`bpf_ktime_get_ns()`).
    peer_seen_ns: u64,
    /// When we last heard the master (the start of a takeover we may make).
    pub last: Option<Instant>,
    /// Valid adverts received (the socket tasks' count, or XDP's `ACCEPTED`).
    pub received: u64,
    /// XDP: when the slot's kernel fence was last read; `None` once an advert was delivered.
    fence_read: Option<Instant>,
}

/// The inputs of one configuration.
pub(super) struct Intake {
    channels: Channels,
    generation: u64,
    heard: Vec<Heard>,
    /// Receive, claim and tracker tasks, aborted on reload.
    tasks: Vec<AbortHandle>,
    /// The ring-buffer reader of each XDP interface (kept across reloads with its datapath).
    readers: HashMap<String, AbortHandle>,
    pub rejected: Rejected,
    pub foreign: Foreign,
    /// Claims the kernel dropped because the agent did not read them (a flood), all interfaces.
    pub claims_dropped: Rc<Cell<u64>>,
}

impl Intake {
    /// For `instances` instances of configuration `generation`; `previous` supplies the
    /// counters on reload.
    pub fn new(
        channels: Channels,
        instances: usize,
        generation: u64,
        previous: Option<&Intake>,
    ) -> Intake {
        Intake {
            channels,
            generation,
            heard: vec![Heard::default(); instances],
            tasks: Vec::new(),
            readers: HashMap::new(),
            rejected: previous.map(|p| p.rejected.clone()).unwrap_or_default(),
            foreign: previous.map(|p| p.foreign.clone()).unwrap_or_default(),
            claims_dropped: previous
                .map(|p| p.claims_dropped.clone())
                .unwrap_or_default(),
        }
    }

    /// Which configuration this is (0 at start, +1 each reload): tags what tasks queue.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    pub fn heard(&self, i: usize) -> &Heard {
        &self.heard[i]
    }

    /// Instance `i`'s record carries over to index `to` of `next` (a reload that keeps it).
    pub fn carry(&self, i: usize, next: &mut Intake, to: usize) {
        next.heard[to] = self.heard[i];
    }

    /// The instance `inc` is for, and the advert event to deliver to it; `None` for one queued
    /// before a reload renumbered the instances (the next comes in one advert interval), or for
    /// a slot no instance has now.
    pub fn take(&mut self, inc: &Incoming, dps: &Datapaths) -> Option<(usize, Event)> {
        let i = match &inc.target {
            Target::Instance { index, generation } => {
                if *generation != self.generation {
                    debug!("dropped an advert queued before the reload (the plan changed)");
                    return None;
                }
                self.heard[*index].received += 1;
                *index
            }
            Target::Slot {
                interface,
                slot,
                seen_ns,
            } => {
                let i = dps.slot_owner(interface, *slot)?;
                let h = &mut self.heard[i];
                h.peer_seen_ns = h.peer_seen_ns.max(*seen_ns);
                h.fence_read = None;
                i
            }
        };
        self.heard[i].last = Some(inc.at);
        let event = Event::Advert {
            src: inc.src,
            priority: inc.priority,
            max_adver_int_cs: inc.adver_int_cs,
        };
        Some((i, event))
    }

    /// Whether instance `i`'s slot fence is to be read at `now`: an advert was delivered since
    /// the last read, or the last read is `period` old. Marks it read.
    pub fn fence_read_due(&mut self, i: usize, now: Instant, period: Duration) -> bool {
        let h = &mut self.heard[i];
        let due = h
            .fence_read
            .is_none_or(|at| now.saturating_duration_since(at) >= period);
        if due {
            h.fence_read = Some(now);
        }
        due
    }

    /// The advert `peer` records for instance `i` (a missed or unsent ring-buffer event, or a
    /// timer's re-read), with when it arrived; marks it delivered.
    pub fn take_peer(&mut self, i: usize, peer: PeerRecord, dps: &Datapaths) -> (Instant, Event) {
        let seen = xdp::instant_of(peer.last_seen_ns);
        let src = peer_src(peer.src, dps.slot(i).unwrap_or(0));
        let h = &mut self.heard[i];
        h.peer_seen_ns = h.peer_seen_ns.max(peer.last_seen_ns);
        h.last = Some(seen);
        let event = Event::Advert {
            src,
            priority: peer.priority,
            max_adver_int_cs: peer.adver_int_cs,
        };
        (seen, event)
    }

    /// XDP: the peer record of instance `i` when it holds an advert not yet delivered
    /// (`vrrp_rx` sends no event for an advert that changes nothing it knows of).
    pub fn fresh_peer(&self, i: usize, dps: &Datapaths) -> Option<PeerRecord> {
        let peer = dps.peer(i)?;
        (peer.last_seen_ns > self.heard[i].peer_seen_ns).then_some(peer)
    }

    /// XDP: the last advert recorded for instance `i`: (source, priority, when).
    pub fn last_peer(&self, i: usize, dps: &Datapaths) -> Option<(IpAddr, u8, Instant)> {
        let peer = dps.peer(i)?;
        let src = peer_src(peer.src, dps.slot(i)?);
        Some((src, peer.priority, xdp::instant_of(peer.last_seen_ns)))
    }

    /// The advert `inc` as (instance, source, priority, when), for the shutdown handover
    /// (nothing is delivered any more).
    pub fn peek(&self, inc: &Incoming, dps: &Datapaths) -> Option<(usize, IpAddr, u8, Instant)> {
        let i = match &inc.target {
            Target::Instance { index, generation } => {
                (*generation == self.generation).then_some(*index)
            }
            Target::Slot {
                interface, slot, ..
            } => dps.slot_owner(interface, *slot),
        }?;
        Some((i, inc.src, inc.priority, inc.at))
    }

    /// Starts the receive tasks of the interfaces XDP does not read, the claim watchers of the
    /// interfaces that announce VIPs, the scripts and the track-file watch. Cannot fail.
    pub fn start(
        &mut self,
        listeners: Vec<Listening>,
        dps: &mut Datapaths,
        plan: &Plan,
        config: &Config,
        garp_interfaces: Vec<String>,
        scripts: Vec<ScriptJob>,
    ) {
        for l in listeners {
            if dps.reads(&l.name) {
                // vrrp_rx consumes the adverts; the ring buffer task reports the changes.
                dps.keep_membership(l.membership);
                continue;
            }
            let opts = plan.decode_options(&l.name, l.family);
            let (indices, rules): (Vec<usize>, Vec<InstanceRules>) = plan
                .instances
                .iter()
                .enumerate()
                .filter(|(_, i)| i.interface == l.name && i.family == l.family)
                .map(|(n, i)| (n, i.rules.clone()))
                .unzip();
            let task = spawn_local(listen(
                l.socket,
                l.family,
                Listener {
                    opts,
                    group4: config.global.vrrp_mcast_group4,
                    group6: config.global.vrrp_mcast_group6,
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
        // Address conflicts on the wire: where we may be master of VIPs.
        for name in garp_interfaces {
            // Only claims of the VIPs placed on this interface pass its socket's filter.
            let vips: Vec<IpAddr> = plan
                .instances
                .iter()
                .flat_map(|ip| &ip.vips)
                .filter(|pv| pv.interface == name)
                .map(|pv| pv.vip.addr)
                .collect();
            match ClaimWatch::open(&name, &vips) {
                Ok(watch) => {
                    let task = spawn_local(watch_claims(
                        Rc::from(name.as_str()),
                        watch,
                        self.channels.claims.clone(),
                        self.claims_dropped.clone(),
                    ));
                    self.tasks.push(task.abort_handle());
                }
                Err(e) => warn!(
                    "{name}: other hosts claiming our VIPs (address conflicts) will not be seen: {e}"
                ),
            }
        }
        for (index, script, run_as) in scripts {
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
        let tracked: Vec<PathBuf> = config
            .track_files
            .iter()
            .filter(|f| {
                let uses = |t: &[crate::config::Tracker]| t.iter().any(|t| t.name == f.name);
                plan.instances.iter().any(|i| uses(&i.track_files))
                    || config.sync_groups.iter().any(|g| uses(&g.track_files))
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

    /// Follows the tracked processes from `connector`'s events (`track::process::monitor`).
    pub fn track_processes(
        &mut self,
        connector: crate::track::process::Connector,
        table: crate::track::process::Table,
    ) {
        let task = spawn_local(crate::track::process::monitor(
            connector,
            table,
            self.channels.processes.clone(),
        ));
        self.tasks.push(task.abort_handle());
    }

    /// Reads the ring buffers `fresh` of interfaces XDP was attached to anew; stops the readers
    /// of interfaces not in `attached` any more (a reader of a kept interface goes on).
    pub fn read_rings(&mut self, attached: &[String], fresh: Vec<(String, Ring)>) {
        self.readers.retain(|name, task| {
            let keep = attached.contains(name);
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, ring) in fresh {
            let task = spawn_local(xdp_events(
                Rc::from(name.as_str()),
                ring,
                self.channels.adverts.clone(),
            ));
            if let Some(old) = self.readers.insert(name, task.abort_handle()) {
                old.abort();
            }
        }
    }

    /// The ring-buffer readers go on for the next configuration (reload).
    pub fn hand_over_readers(&mut self, next: &mut Intake) {
        next.readers = std::mem::take(&mut self.readers);
    }

    /// Counts what XDP counted: into the same maps the socket tasks count in; a rejection
    /// count that appears or grows is logged as the socket tasks log theirs.
    pub fn count_xdp(&mut self, counts: Counts) {
        let mut rejected = self.rejected.borrow_mut();
        for ((interface, vrid, reason), n) in counts.rejected {
            crate::control::rejections::record(&mut rejected, &interface, vrid, reason, n);
        }
        drop(rejected);
        self.foreign.borrow_mut().extend(counts.foreign);
        for (i, n) in counts.accepted {
            self.heard[i].received = n;
        }
    }

    /// Whether a script result is from this configuration's tasks (a reload renumbers them).
    pub fn current(&self, update: &ScriptUpdate) -> bool {
        update.generation == self.generation
    }

    /// Stops the tasks (a reload starts the next configuration's).
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
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
                    target: Target::Instance {
                        index: listener.indices[instance],
                        generation,
                    },
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
    dropped: Rc<Cell<u64>>,
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

/// Reads `vrrp_rx`'s ring buffer on one interface and forwards each event to the loop.
async fn xdp_events(interface: Rc<str>, events: Ring, tx: mpsc::UnboundedSender<Incoming>) {
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

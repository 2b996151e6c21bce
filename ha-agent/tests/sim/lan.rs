//! A deterministic discrete-event simulator of N VRRP nodes on one LAN.
//!
//! Every node runs the real [`Instance`] (or a [`SyncGroup`] of them), one member per VRID
//! (member `i` of every node serves the same VRID). Adverts travel over per-directed-link delay
//! plus jitter, can be lost (LAN-wide loss bursts, or loss on one directed link) or cut
//! (partitions, link down). Events are ordered by time, ties by insertion order, and all
//! randomness comes from one seeded [`Rng`]: a seed replays exactly.
//!
//! While it runs, the simulator checks, independently of the state machine's own arithmetic:
//! - the fence order on every action list (AddVips before Unfence before SendGratuitous;
//!   Fence before RemoveVips) and that Master ⇔ VIPs added and unfenced;
//! - the RFC takeover bound: a Backup never becomes Master before Master_Down_Interval since it
//!   entered Backup or last accepted an advert, nor before Skew_Time after a priority 0 advert.
//!   A sync group member that the group takes to Master with it must have waited that long too,
//!   at some time since it last accepted an advert: the group only moves when every member
//!   wants Master (keepalived `vrrp_sync_can_goto_master`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ha_agent::vrrp::instance::{
    Action, Event, InitialState, Instance, InstanceConfig, PRIORITY_OWNER, State, Version,
};
use ha_agent::vrrp::sync_group::{GroupAction, SyncGroup};

use super::rng::Rng;

/// One node: its instances (member `i` serves the i-th VRID of the LAN).
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub instances: Vec<InstanceConfig>,
    /// All the node's instances form one sync group.
    pub sync_group: bool,
}

/// Things that happen to nodes and the LAN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Start a stopped (never started, crashed or shut down) node.
    Start(usize),
    /// kill -9: no goodbye, the node's state is lost.
    Crash(usize),
    /// Clean exit: Shutdown to every instance (priority 0 adverts), then stop.
    Shutdown(usize),
    /// The node's link goes down / up (nests).
    LinkDown(usize),
    LinkUp(usize),
    /// A tracked object of one instance faults / recovers (the link stays up).
    MemberDown(usize, usize),
    MemberUp(usize, usize),
    /// Trackers move the effective priority of one instance.
    SetPriority {
        node: usize,
        member: usize,
        priority: u8,
    },
    /// Nodes whose bit is set in the mask hear only each other.
    Partition(u64),
    Heal,
    /// Each advert is lost with this probability (permille) until the matching end.
    LossStart(u16),
    LossEnd(u16),
    /// Each advert from node `from` to node `to` (one direction) is lost with this probability
    /// (permille) until the matching end: a bad cable or a congested port, not the whole LAN.
    LinkLossStart {
        from: usize,
        to: usize,
        permille: u16,
    },
    LinkLossEnd {
        from: usize,
        to: usize,
        permille: u16,
    },
}

/// A state change seen by the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: Duration,
    pub node: usize,
    pub member: usize,
    pub from: State,
    pub to: State,
}

/// Per-link timing.
#[derive(Clone, Debug)]
pub struct LinkParams {
    /// `delay[from][to]`.
    pub delay: Vec<Vec<Duration>>,
    /// Uniform extra delay in `0..=jitter` per packet.
    pub jitter: Duration,
}

impl LinkParams {
    pub fn uniform(nodes: usize, delay: Duration) -> Self {
        Self {
            delay: vec![vec![delay; nodes]; nodes],
            jitter: Duration::ZERO,
        }
    }
}

enum Runner {
    Single(Vec<Instance>),
    Group(SyncGroup),
}

impl Runner {
    fn instance(&self, member: usize) -> &Instance {
        match self {
            Runner::Single(v) => &v[member],
            Runner::Group(g) => g.member(member),
        }
    }
}

/// Why a Backup's Master_Down_Timer last (re)started, kept by the simulator from the RFC rules.
#[derive(Clone, Copy, Debug)]
enum Basis {
    MasterDown,
    Skew,
}

#[derive(Clone, Debug)]
struct Oracle {
    /// When and why the current wait started; None: not in Backup.
    basis: Option<(Duration, Basis)>,
    /// Master_Adver_Interval as the RFC says the backup knows it.
    learned_cs: u16,
    /// keepalived's preempt_time: until when a lower-priority master is still accepted.
    preempt_until: Option<Duration>,
    /// The wait ran out at some event since the basis last came from an accepted advert (or
    /// the instance entered Backup): a sync group member held in Backup has waited.
    expired: bool,
}

struct Node {
    spec: NodeSpec,
    runner: Option<Runner>,
    /// Incremented at every stop and start: timers of an earlier life are dropped.
    epoch: u64,
    timer_gen: Vec<u64>,
    link_down: u32,
    member_down: Vec<bool>,
    partition_side: bool,
    /// The effective priority the trackers last reported (before clamping).
    fed_priority: Vec<u8>,
    fenced: Vec<bool>,
    vips: Vec<bool>,
    oracle: Vec<Oracle>,
}

enum Ev {
    Deliver {
        to: usize,
        member: usize,
        src: usize,
        priority: u8,
        adver_int_cs: u16,
    },
    Timer {
        node: usize,
        member: usize,
        generation: u64,
        epoch: u64,
    },
    Fault(Fault),
}

struct Scheduled {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Counters for the summary line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub adverts_sent: u64,
    pub adverts_lost: u64,
    pub transitions: u64,
    /// VRIDs whose final master was checked to be the incumbent (`scenario::run`).
    pub incumbent_checks: u64,
    /// Of those, how many had a nopreempt backup above the incumbent.
    pub nopreempt_checks: u64,
}

pub struct Sim {
    base: Instant,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<Node>,
    link: LinkParams,
    loss: Vec<u16>,
    /// `(from, to, permille)` of every directed link's running loss.
    link_loss: Vec<(usize, usize, u16)>,
    rng: Rng,
    /// Check the RFC takeover bound (sync group members: see the module documentation).
    pub check_takeover_bound: bool,
    pub transitions: Vec<Transition>,
    pub violations: Vec<String>,
    pub stats: Stats,
    trace: Vec<String>,
}

const TRACE_KEEP: usize = 400;

impl Sim {
    pub fn new(seed: u64, specs: Vec<NodeSpec>, link: LinkParams) -> Self {
        let members = specs[0].instances.len();
        assert!(specs.iter().all(|s| s.instances.len() == members));
        assert_eq!(link.delay.len(), specs.len());
        let nodes = specs
            .into_iter()
            .map(|spec| Node {
                runner: None,
                epoch: 0,
                timer_gen: vec![0; members],
                link_down: 0,
                member_down: vec![false; members],
                partition_side: false,
                fed_priority: spec.instances.iter().map(|c| c.priority).collect(),
                fenced: vec![true; members],
                vips: vec![false; members],
                oracle: spec
                    .instances
                    .iter()
                    .map(|c| Oracle {
                        basis: None,
                        learned_cs: c.advert_interval_cs,
                        preempt_until: None,
                        expired: false,
                    })
                    .collect(),
                spec,
            })
            .collect();
        Self {
            // Only ever offset from: the run does not depend on the wall clock.
            base: Instant::now(),
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            link,
            loss: Vec::new(),
            link_loss: Vec::new(),
            rng: Rng::new(seed),
            check_takeover_bound: true,
            transitions: Vec::new(),
            violations: Vec::new(),
            stats: Stats::default(),
            trace: Vec::new(),
        }
    }

    pub fn members(&self) -> usize {
        self.nodes[0].spec.instances.len()
    }

    pub fn schedule(&mut self, at: Duration, fault: Fault) {
        self.push(at, Ev::Fault(fault));
    }

    /// Runs every event up to and including `until`.
    pub fn run_until(&mut self, until: Duration) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Reverse(Scheduled { at, ev, .. }) = self.queue.pop().unwrap();
            self.now = at;
            self.stats.events += 1;
            self.dispatch(ev);
        }
        self.now = until;
    }

    /// The state of a running instance.
    pub fn state(&self, node: usize, member: usize) -> Option<State> {
        self.nodes[node]
            .runner
            .as_ref()
            .map(|r| r.instance(member).state())
    }

    pub fn instance(&self, node: usize, member: usize) -> Option<&Instance> {
        self.nodes[node].runner.as_ref().map(|r| r.instance(member))
    }

    pub fn masters(&self, member: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.state(n, member) == Some(State::Master))
            .collect()
    }

    /// Transitions of one instance to `to`, oldest first.
    pub fn transitions_to(&self, node: usize, member: usize, to: State) -> Vec<Duration> {
        self.transitions
            .iter()
            .filter(|t| t.node == node && t.member == member && t.to == to)
            .map(|t| t.at)
            .collect()
    }

    /// Whether an instance may take part in the election: running, link up, and no tracker
    /// fault of its own or, in a sync group, of any member (the group holds them all in Fault).
    pub fn eligible(&self, node: usize, member: usize) -> bool {
        let n = &self.nodes[node];
        n.runner.is_some()
            && n.link_down == 0
            && if n.spec.sync_group {
                !n.member_down.iter().any(|&d| d)
            } else {
                !n.member_down[member]
            }
    }

    /// The effective priority an instance elects with, per keepalived's clamping.
    pub fn effective_priority(&self, node: usize, member: usize) -> u8 {
        let n = &self.nodes[node];
        if n.spec.instances[member].priority == PRIORITY_OWNER {
            PRIORITY_OWNER
        } else {
            n.fed_priority[member].clamp(1, PRIORITY_OWNER - 1)
        }
    }

    /// The last trace lines, for a failure report.
    pub fn trace(&self) -> String {
        self.trace.join("\n")
    }

    fn log(&mut self, line: String) {
        if self.trace.len() == TRACE_KEEP {
            self.trace.remove(0);
        }
        self.trace
            .push(format!("{:>12.6}s {line}", self.now.as_secs_f64()));
    }

    fn violation(&mut self, what: String) {
        let line = format!("at {:.6}s: {what}", self.now.as_secs_f64());
        self.log(format!("VIOLATION {what}"));
        self.violations.push(line);
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver {
                to,
                member,
                src,
                priority,
                adver_int_cs,
            } => {
                let node = &self.nodes[to];
                if node.runner.is_none() || node.link_down > 0 {
                    return;
                }
                let event = Event::Advert {
                    src: self.nodes[src].spec.instances[member].primary_address,
                    priority,
                    max_adver_int_cs: adver_int_cs,
                };
                self.deliver(to, member, event);
            }
            Ev::Timer {
                node,
                member,
                generation,
                epoch,
            } => {
                let n = &self.nodes[node];
                if n.runner.is_some() && n.epoch == epoch && n.timer_gen[member] == generation {
                    self.deliver(node, member, Event::TimerFired);
                }
            }
            Ev::Fault(fault) => self.apply_fault(fault),
        }
    }

    fn apply_fault(&mut self, fault: Fault) {
        self.log(format!("fault {fault:?}"));
        match fault {
            Fault::Start(node) => self.start(node),
            Fault::Crash(node) => self.stop(node),
            Fault::Shutdown(node) => {
                if self.nodes[node].runner.is_some() {
                    for member in 0..self.members() {
                        self.deliver(node, member, Event::Shutdown);
                    }
                    self.stop(node);
                }
            }
            Fault::LinkDown(node) => {
                self.nodes[node].link_down += 1;
                if self.nodes[node].link_down == 1 {
                    self.deliver_to_all(node, Event::InterfaceDown);
                }
            }
            Fault::LinkUp(node) => {
                let n = &mut self.nodes[node];
                n.link_down = n.link_down.saturating_sub(1);
                if n.link_down == 0 {
                    // Members with a tracker fault stay down.
                    for member in 0..self.members() {
                        if !self.nodes[node].member_down[member] {
                            self.deliver_if_running(node, member, Event::InterfaceUp);
                        }
                    }
                }
            }
            Fault::MemberDown(node, member) => {
                if !self.nodes[node].member_down[member] {
                    self.nodes[node].member_down[member] = true;
                    if self.nodes[node].link_down == 0 {
                        self.deliver_if_running(node, member, Event::InterfaceDown);
                    }
                }
            }
            Fault::MemberUp(node, member) => {
                if self.nodes[node].member_down[member] {
                    self.nodes[node].member_down[member] = false;
                    if self.nodes[node].link_down == 0 {
                        self.deliver_if_running(node, member, Event::InterfaceUp);
                    }
                }
            }
            Fault::SetPriority {
                node,
                member,
                priority,
            } => {
                self.nodes[node].fed_priority[member] = priority;
                self.deliver_if_running(
                    node,
                    member,
                    Event::PriorityChanged {
                        effective_priority: priority,
                    },
                );
            }
            Fault::Partition(mask) => {
                for (i, n) in self.nodes.iter_mut().enumerate() {
                    n.partition_side = mask & (1 << i) != 0;
                }
            }
            Fault::Heal => {
                for n in &mut self.nodes {
                    n.partition_side = false;
                }
            }
            Fault::LossStart(permille) => self.loss.push(permille),
            Fault::LossEnd(permille) => {
                if let Some(i) = self.loss.iter().position(|&p| p == permille) {
                    self.loss.remove(i);
                }
            }
            Fault::LinkLossStart { from, to, permille } => {
                self.link_loss.push((from, to, permille));
            }
            Fault::LinkLossEnd { from, to, permille } => {
                if let Some(i) = self
                    .link_loss
                    .iter()
                    .position(|&l| l == (from, to, permille))
                {
                    self.link_loss.remove(i);
                }
            }
        }
    }

    fn deliver_to_all(&mut self, node: usize, event: Event) {
        for member in 0..self.members() {
            self.deliver_if_running(node, member, event);
        }
    }

    fn deliver_if_running(&mut self, node: usize, member: usize, event: Event) {
        if self.nodes[node].runner.is_some() {
            self.deliver(node, member, event);
        }
    }

    fn start(&mut self, node: usize) {
        if self.nodes[node].runner.is_some() {
            return;
        }
        let members = self.members();
        let n = &mut self.nodes[node];
        let instances: Vec<Instance> = n
            .spec
            .instances
            .iter()
            .map(|c| Instance::new(c.clone()).expect("valid config"))
            .collect();
        n.runner = Some(if n.spec.sync_group {
            Runner::Group(SyncGroup::new(instances))
        } else {
            Runner::Single(instances)
        });
        n.epoch += 1;
        n.fenced = vec![true; members];
        n.vips = vec![false; members];
        // What the trackers and the link say before the instances start.
        for member in 0..members {
            let n = &self.nodes[node];
            if n.fed_priority[member] != n.spec.instances[member].priority {
                let priority = n.fed_priority[member];
                self.deliver(
                    node,
                    member,
                    Event::PriorityChanged {
                        effective_priority: priority,
                    },
                );
            }
            let n = &self.nodes[node];
            if n.link_down > 0 || n.member_down[member] {
                self.deliver(node, member, Event::InterfaceDown);
            }
        }
        for member in 0..members {
            self.deliver(node, member, Event::Startup);
        }
    }

    fn stop(&mut self, node: usize) {
        let members = self.members();
        let n = &mut self.nodes[node];
        if n.runner.take().is_none() {
            return;
        }
        n.epoch += 1;
        // A dead agent's VIPs are fenced by the kernel (fail closed, DESIGN.md).
        n.fenced = vec![true; members];
        n.vips = vec![false; members];
        for o in &mut n.oracle {
            o.basis = None;
        }
    }

    /// Hands `event` to one instance and performs the resulting actions.
    fn deliver(&mut self, node: usize, member: usize, event: Event) {
        let now = self.base + self.now;
        let members = self.members();
        let before: Vec<State> = (0..members).map(|m| self.state(node, m).unwrap()).collect();
        let receiver_priority = self.effective_priority(node, member);
        if before[member] == State::Backup {
            // Has the wait run out by now (the instance's timer fires no earlier than this)?
            let cfg = &self.nodes[node].spec.instances[member];
            let o = &self.nodes[node].oracle[member];
            if let Some((since, basis)) = o.basis
                && self.now >= since + oracle_wait(cfg, receiver_priority, o.learned_cs, basis)
            {
                self.nodes[node].oracle[member].expired = true;
            }
        }
        let runner = self.nodes[node].runner.as_mut().unwrap();
        let actions: Vec<(usize, Action)> = match runner {
            Runner::Single(v) => v[member]
                .handle(now, event)
                .into_iter()
                .map(|a| (member, a))
                .collect(),
            Runner::Group(g) => {
                let mut out = Vec::new();
                for a in g.handle(now, member, event) {
                    match a {
                        GroupAction::Member { member, action } => out.push((member, action)),
                        GroupAction::Notify { from, to } => {
                            self.trace
                                .push(format!("node {node} group {from:?} -> {to:?}"));
                        }
                    }
                }
                out
            }
        };
        let after: Vec<State> = (0..members).map(|m| self.state(node, m).unwrap()).collect();

        // The oracle's view of the advert, from the RFC rules (RFC 5798 §6.4.2).
        if let Event::Advert {
            priority,
            max_adver_int_cs,
            ..
        } = event
        {
            let cfg = &self.nodes[node].spec.instances[member];
            let v3 = cfg.version == Version::V3;
            let v2_mismatch = !v3 && max_adver_int_cs != cfg.advert_interval_cs;
            let live = self.instance(node, member).unwrap().config();
            let (nopreempt, delay) = (!live.preempt, live.preempt_delay);
            let now = self.now;
            let o = &mut self.nodes[node].oracle[member];
            // keepalived's preempt_delay: a lower-priority master is accepted from its first
            // advert until the delay has run out; a master at least our priority resets it.
            let in_preempt_delay = !delay.is_zero()
                && priority < receiver_priority
                && o.preempt_until.is_none_or(|until| until > now);
            if !v2_mismatch && before[member] == State::Backup && priority != 0 && !delay.is_zero()
            {
                if priority >= receiver_priority {
                    o.preempt_until = None;
                } else if o.preempt_until.is_none() {
                    o.preempt_until = Some(now + delay);
                }
            }
            if !v2_mismatch && before[member] == State::Backup {
                if priority == 0 {
                    o.basis = Some((self.now, Basis::Skew));
                } else if nopreempt || priority >= receiver_priority || in_preempt_delay {
                    o.basis = Some((self.now, Basis::MasterDown));
                    o.expired = false;
                    if v3 {
                        o.learned_cs = max_adver_int_cs;
                    }
                }
            } else if !v2_mismatch
                && before[member] == State::Master
                && after[member] == State::Backup
                && v3
            {
                // A master stepping down for this advert learns the new master's interval (not
                // one that only hears a lower one, nor a sync group member taken along).
                o.learned_cs = max_adver_int_cs;
            }
        }

        for m in 0..members {
            if before[m] != after[m] {
                self.on_transition(node, m, before[m], after[m]);
            }
        }
        for (m, action) in actions {
            self.apply_action(node, m, action);
        }
        for m in 0..members {
            self.check_fence_state(node, m);
        }
    }

    fn on_transition(&mut self, node: usize, member: usize, from: State, to: State) {
        self.stats.transitions += 1;
        self.transitions.push(Transition {
            at: self.now,
            node,
            member,
            from,
            to,
        });
        let prio = self.effective_priority(node, member);
        self.log(format!(
            "node {node} vrid#{member} {from:?} -> {to:?} (prio {prio})"
        ));
        let cfg = self.nodes[node].spec.instances[member].clone();
        if to == State::Master && self.check_takeover_bound {
            match from {
                State::Backup => {
                    let o = self.nodes[node].oracle[member].clone();
                    // A sync group member may be taken along after its own wait ran out and it
                    // was held (it wanted Master); a lone instance goes at the end of its wait.
                    let waited = self.nodes[node].spec.sync_group && o.expired;
                    if let Some((since, basis)) = o.basis {
                        let wait = oracle_wait(&cfg, prio, o.learned_cs, basis);
                        if self.now < since + wait && !waited {
                            self.violation(format!(
                                "node {node} vrid#{member} became master {:?} after {basis:?} \
                                 basis at {:.6}s; the RFC wait is {wait:?}",
                                self.now - since,
                                since.as_secs_f64()
                            ));
                        }
                    } else {
                        self.violation(format!(
                            "node {node} vrid#{member} became master from Backup without a basis"
                        ));
                    }
                }
                State::Initialize | State::Fault => {
                    let owner_starts = cfg.priority == PRIORITY_OWNER
                        && cfg.initial_state.unwrap_or(InitialState::Master)
                            == InitialState::Master;
                    if !owner_starts {
                        self.violation(format!(
                            "node {node} vrid#{member} (not an owner) went {from:?} -> Master"
                        ));
                    }
                }
                State::Master => unreachable!(),
            }
        }
        let owner_starts = cfg.priority == PRIORITY_OWNER
            && cfg.initial_state.unwrap_or(InitialState::Master) == InitialState::Master;
        let o = &mut self.nodes[node].oracle[member];
        o.preempt_until = None;
        o.expired = false;
        match to {
            State::Backup => {
                if from != State::Master {
                    // Entering Backup from Initialize or Fault starts with our own interval.
                    o.learned_cs = cfg.advert_interval_cs;
                    // An address owner may go to Master at once there (RFC 5798 §6.4.1); held
                    // by its sync group, it wants Master from the start.
                    o.expired = owner_starts;
                }
                o.basis = Some((self.now, Basis::MasterDown));
            }
            State::Master | State::Fault | State::Initialize => {
                o.basis = None;
                o.learned_cs = cfg.advert_interval_cs;
            }
        }
    }

    fn apply_action(&mut self, node: usize, member: usize, action: Action) {
        match action {
            Action::SendAdvert {
                priority,
                adver_int_cs,
            } => self.send_advert(node, member, priority, adver_int_cs),
            Action::Fence => self.nodes[node].fenced[member] = true,
            Action::Unfence => {
                if !self.nodes[node].vips[member] {
                    self.violation(format!("node {node} vrid#{member} Unfence before AddVips"));
                }
                self.nodes[node].fenced[member] = false;
            }
            Action::AddVips => {
                if !self.nodes[node].fenced[member] {
                    self.violation(format!("node {node} vrid#{member} AddVips while unfenced"));
                }
                self.nodes[node].vips[member] = true;
            }
            Action::RemoveVips => {
                if !self.nodes[node].fenced[member] {
                    self.violation(format!("node {node} vrid#{member} RemoveVips before Fence"));
                }
                self.nodes[node].vips[member] = false;
            }
            // A planned handover: quiet at once (no ARP/ND from us), fenced and removed once the
            // successor is heard; for who answers ARP, the same as Fence then RemoveVips.
            Action::HandOver { .. } => {
                if self.nodes[node].fenced[member] || !self.nodes[node].vips[member] {
                    self.violation(format!(
                        "node {node} vrid#{member} HandOver of VIPs not held"
                    ));
                }
                self.nodes[node].fenced[member] = true;
                self.nodes[node].vips[member] = false;
            }
            Action::SendGratuitous | Action::ReassertGratuitous => {
                if self.nodes[node].fenced[member] || !self.nodes[node].vips[member] {
                    self.violation(format!(
                        "node {node} vrid#{member} gratuitous ARP while fenced or without VIPs"
                    ));
                }
            }
            Action::Notify { .. } | Action::HeardLowerPriority => {}
            Action::ArmTimer { at, .. } => {
                let n = &mut self.nodes[node];
                n.timer_gen[member] += 1;
                let (generation, epoch) = (n.timer_gen[member], n.epoch);
                let at = at.duration_since(self.base).max(self.now);
                self.push(
                    at,
                    Ev::Timer {
                        node,
                        member,
                        generation,
                        epoch,
                    },
                );
            }
            Action::CancelTimer => self.nodes[node].timer_gen[member] += 1,
        }
    }

    fn check_fence_state(&mut self, node: usize, member: usize) {
        let Some(state) = self.state(node, member) else {
            return;
        };
        let n = &self.nodes[node];
        let ok = match state {
            State::Master => n.vips[member] && !n.fenced[member],
            _ => !n.vips[member] && n.fenced[member],
        };
        if !ok {
            let (vips, fenced) = (n.vips[member], n.fenced[member]);
            self.violation(format!(
                "node {node} vrid#{member} in {state:?} with vips={vips} fenced={fenced}"
            ));
        }
    }

    fn send_advert(&mut self, src: usize, member: usize, priority: u8, adver_int_cs: u16) {
        if self.nodes[src].link_down > 0 {
            return;
        }
        self.stats.adverts_sent += 1;
        let lan_loss = self.loss.iter().copied().max().unwrap_or(0);
        let side = self.nodes[src].partition_side;
        for to in 0..self.nodes.len() {
            if to == src || self.nodes[to].partition_side != side {
                continue;
            }
            let loss = self
                .link_loss
                .iter()
                .filter(|&&(f, t, _)| (f, t) == (src, to))
                .map(|&(_, _, p)| p)
                .fold(lan_loss, u16::max);
            if loss > 0 && self.rng.chance(u64::from(loss)) {
                self.stats.adverts_lost += 1;
                continue;
            }
            let jitter = self.link.jitter.as_nanos() as u64;
            let extra = if jitter > 0 {
                Duration::from_nanos(self.rng.below(jitter + 1))
            } else {
                Duration::ZERO
            };
            let at = self.now + self.link.delay[src][to] + extra;
            self.push(
                at,
                Ev::Deliver {
                    to,
                    member,
                    src,
                    priority,
                    adver_int_cs,
                },
            );
        }
    }

    /// After convergence: per VRID exactly one master among the eligible nodes, and it is the
    /// one the election must produce; everyone else is Backup; the members of a sync group on
    /// a node are all in the same state.
    pub fn check_converged(&self) -> Result<(), String> {
        let mut report = String::new();
        for (node, n) in self.nodes.iter().enumerate() {
            if !n.spec.sync_group || n.runner.is_none() {
                continue;
            }
            let states: Vec<Option<State>> =
                (0..self.members()).map(|m| self.state(node, m)).collect();
            if states.iter().any(|s| *s != states[0]) {
                let _ = writeln!(
                    report,
                    "node {node}: sync group members in different states {states:?}"
                );
            }
        }
        for member in 0..self.members() {
            let eligible: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.eligible(n, member))
                .collect();
            if eligible.is_empty() {
                continue;
            }
            let masters = self.masters(member);
            if masters.len() != 1 {
                let _ = writeln!(
                    report,
                    "vrid#{member}: {} masters {masters:?} among {eligible:?}",
                    masters.len()
                );
                continue;
            }
            let master = masters[0];
            let prio = |n: usize| self.effective_priority(n, member);
            let preempts = |n: usize| self.instance(n, member).unwrap().config().preempt;
            // Anyone above the master must be nopreempt (RFC 5798 §6.4.2 Preempt_Mode);
            // equal priority keeps the incumbent (a backup accepts priority >= its own).
            for &n in &eligible {
                if prio(n) > prio(master) && preempts(n) {
                    let _ = writeln!(
                        report,
                        "vrid#{member}: master {master} (prio {}) but node {n} has prio {} \
                         and preempts",
                        prio(master),
                        prio(n)
                    );
                }
                if n != master && self.state(n, member) != Some(State::Backup) {
                    let _ = writeln!(
                        report,
                        "vrid#{member}: node {n} is {:?}, not Backup",
                        self.state(n, member)
                    );
                }
            }
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        }
    }
}

/// The RFC wait before a Backup may take over, computed here from RFC 5798 §6.1 / RFC 3768
/// §6.1 directly (not with the crate's helpers): Master_Down_Interval or Skew_Time.
fn oracle_wait(cfg: &InstanceConfig, priority: u8, learned_cs: u16, basis: Basis) -> Duration {
    let weight = 256 - u128::from(priority);
    let skew_ns = match cfg.version {
        // ((256 - Priority) * Master_Adver_Interval) / 256, Master_Adver_Interval in cs.
        Version::V3 => weight * u128::from(learned_cs) * 10_000_000 / 256,
        // (256 - Priority) / 256 seconds.
        Version::V2 => weight * 1_000_000_000 / 256,
    };
    let skew = Duration::from_nanos(skew_ns as u64);
    match basis {
        Basis::Skew => skew,
        Basis::MasterDown => {
            let interval_cs = match cfg.version {
                Version::V3 => learned_cs,
                Version::V2 => cfg.advert_interval_cs,
            };
            Duration::from_millis(10 * u64::from(interval_cs)) * u32::from(cfg.down_timer_adverts)
                + skew
        }
    }
}

/// The primary address of node `index` for a VRID of this family.
pub fn node_address(index: u8, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            0,
            0,
            0,
            u16::from(index),
        ))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, index))
    }
}

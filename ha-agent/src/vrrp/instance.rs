//! The VRRP state machine of one virtual router, sans-IO (RFC 5798 §6.4, RFC 3768 §6.4), with
//! keepalived's compatible behaviour where it differs from the RFCs.
//!
//! [`Instance::handle`] takes `(now, Event)` and returns the [`Action`]s to perform, in order.
//! Nothing here opens a socket, reads a clock or spawns a task: time is an input (as in
//! quinn-proto), so the same code runs in the daemon and in the deterministic LAN simulator
//! (`ha-agent/tests/simulator.rs`). Each [`Action::Notify`] carries the transition's [`Cause`],
//! decided here at the transition, so the driver keeps no copy of the event it delivered.
//!
//! # Timers
//!
//! An instance has at most one timer: the Adver_Timer while Master, the Master_Down_Timer while
//! Backup (RFC 5798 §6.1). [`Action::ArmTimer`] replaces whatever was armed before;
//! [`Action::CancelTimer`] leaves none. When it expires the driver feeds [`Event::TimerFired`];
//! a firing earlier than the armed deadline (a stale timer the driver failed to cancel) is
//! ignored. [`Instance::next_timeout`] gives the same deadline for a quinn-style poll loop.
//!
//! All intervals are kept as [`Duration`] computed in nanoseconds, so
//! Skew_Time = ((256 − priority) × Master_Adver_Interval) / 256 is never truncated: at
//! advert_int 0.01 s and priority 100 it is 6.09375 ms (keepalived floors to 6093 µs; holo-vrrp
//! reads v3 centiseconds as seconds and truncates the skew to zero).
//!
//! # Action order (the split-brain fence depends on it)
//!
//! - Becoming **Master** (from Initialize, Backup or Fault): `SendAdvert`, `AddVips`, `Unfence`,
//!   `SendGratuitous`, `Notify`, `ArmTimer(Advert)`. The advert goes first so that the old
//!   master releases the VIPs before our gratuitous ARPs (keepalived `vrrp_state_master_tx`);
//!   the VIPs are added while still fenced and the fence is lifted only once they are in place;
//!   the gratuitous ARP / unsolicited NA goes last because the TC fence drops ARP and NA that
//!   claim a fenced VIP, on egress too, so a GARP sent before `Unfence` would be lost.
//! - Leaving **Master** (to Backup, Fault or Initialize): `Fence` first, then (to Fault or
//!   Initialize) `SendAdvert { priority: 0 }`, then `RemoveVips`, `Notify`, and the timer action.
//!   Fencing first means that from the moment we decide to step down the kernel stops us
//!   answering for the VIPs, before the slower netlink removal.
//! - Entering **Backup** or **Fault** from Initialize: `Fence`, `RemoveVips` (clears leftovers of
//!   a previous run, as keepalived's `vrrp_restore_interface(.., force)` at startup), `Notify`,
//!   timer action.
//! - Backup ↔ Fault: `Notify` and the timer action only (already fenced, no VIPs).
//! - **Master** hearing a lower priority: `SendAdvert` (unless `lower_prio_advert` is off),
//!   `ArmTimer(Advert)`, then `ReassertGratuitous` (unless `garp_lower_prio` is off): the advert
//!   makes the other master step down, the gratuitous ARPs bring back the neighbours that
//!   followed it; last `HeardLowerPriority` (`notify_master_rx_lower_pri`).
//! - **Master** hearing a higher priority: as leaving Master, with `SendAdvert` of our priority
//!   right after `Fence` (unless `higher_prio_advert` is off), so that the new master hears a
//!   lower priority and reasserts itself as above.
//!
//! Invariant: outside Master an instance has asked for its VIPs to be fenced and removed;
//! in Master they are added and unfenced.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

// The one Version, re-exported at its historical path.
pub use super::types::Version;
use super::types::{NANOS_PER_CS, V3_MAX_ADVER_INT_CS, cs_to_duration};

/// The address owner's priority (RFC 5798 §5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// The priority a master sends when it resigns (RFC 5798 §5.2.4).
pub const PRIORITY_STOP: u8 = 0;
/// The "3" of Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time (RFC 5798 §6.1);
/// keepalived's `down_timer_adverts` replaces it.
pub const DEFAULT_DOWN_TIMER_ADVERTS: u8 = 3;
/// keepalived accepts `down_timer_adverts` in 1..=100 (vrrp_parser.c).
pub const MAX_DOWN_TIMER_ADVERTS: u8 = 100;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// keepalived's `state MASTER|BACKUP`: a hint, not a command (see [`Instance`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InitialState {
    Backup,
    Master,
}

/// The protocol parameters of one virtual router (no interface names, no scripts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Virtual Router ID, 1..=255.
    pub vrid: u8,
    pub version: Version,
    /// Configured priority, 1..=255; 255 is the address owner.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds; whole seconds (a multiple of 100) for v2.
    pub advert_interval_cs: u16,
    /// Preempt_Mode (RFC 5798 §6.1); keepalived's `nopreempt` sets it false.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: how long a backup keeps accepting a lower-priority master
    /// before it starts preempting. Zero disables it.
    pub preempt_delay: Duration,
    /// keepalived's `down_timer_adverts`: the multiplier in Master_Down_Interval (default 3).
    pub down_timer_adverts: u8,
    /// Our primary address on the interface: the source of our adverts and the tie breaker.
    pub primary_address: IpAddr,
    /// The virtual addresses; opaque here, they only travel in notifications to the driver.
    pub vips: Vec<IpAddr>,
    /// keepalived's `state`; `None` derives it from the priority (owner → Master).
    pub initial_state: Option<InitialState>,
    /// keepalived's `garp_lower_prio_repeat` > 0: a Master that hears a lower-priority advert
    /// (another master, after a partition heals) also sends gratuitous ARPs / NAs, so that
    /// neighbours which followed the other one come back ([`Action::ReassertGratuitous`]).
    pub garp_lower_prio: bool,
    /// Not keepalived's `lower_prio_no_advert`: a Master that hears a lower-priority advert
    /// answers with an advert at once (keepalived's default) instead of discarding it (RFC
    /// 5798 §6.4.3; strict mode).
    pub lower_prio_advert: bool,
    /// keepalived's `higher_prio_send_advert`: a Master that hears a higher priority sends one
    /// advert with its own priority before it steps down, so that the new master hears a lower
    /// priority and reasserts itself with gratuitous ARPs. On by default here (keepalived: off):
    /// when a partition heals and the winner's advert reaches the loser first, it is the only
    /// way the winner learns that neighbours may still point at the loser.
    pub higher_prio_advert: bool,
}

impl InstanceConfig {
    /// A configuration with keepalived's defaults: advert_int 1 s, preempt, no preempt delay,
    /// down_timer_adverts 3, no VIPs, initial state derived from the priority, an advert and
    /// gratuitous ARPs on a lower-priority advert; and ha-agent's: one advert before stepping
    /// down for a higher priority.
    pub fn new(vrid: u8, version: Version, priority: u8, primary_address: IpAddr) -> Self {
        Self {
            vrid,
            version,
            priority,
            advert_interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            down_timer_adverts: DEFAULT_DOWN_TIMER_ADVERTS,
            primary_address,
            vips: Vec::new(),
            initial_state: None,
            garp_lower_prio: true,
            lower_prio_advert: true,
            higher_prio_advert: true,
        }
    }

    /// The initial state keepalived would use: the configured one, else Master for the
    /// address owner and Backup otherwise (keepalived `vrrp_complete_instance`).
    pub fn resolved_initial_state(&self) -> InitialState {
        self.initial_state
            .unwrap_or(if self.priority == PRIORITY_OWNER {
                InitialState::Master
            } else {
                InitialState::Backup
            })
    }

    /// Checks the ranges the wire format and keepalived impose.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::Vrid);
        }
        if self.priority == PRIORITY_STOP {
            return Err(ConfigError::Priority);
        }
        if !self
            .version
            .is_valid_advert_interval(self.advert_interval_cs)
        {
            return Err(match self.version {
                Version::V2 => ConfigError::V2AdvertInterval(self.advert_interval_cs),
                Version::V3 => ConfigError::V3AdvertInterval(self.advert_interval_cs),
            });
        }
        if self.down_timer_adverts == 0 || self.down_timer_adverts > MAX_DOWN_TIMER_ADVERTS {
            return Err(ConfigError::DownTimerAdverts(self.down_timer_adverts));
        }
        Ok(())
    }
}

/// Why an [`InstanceConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("virtual_router_id 0 is reserved; use 1..=255")]
    Vrid,
    #[error("priority 0 is reserved for a master's resignation (RFC 5798 §5.2.4); use 1..=255")]
    Priority,
    #[error("VRRPv2 advert_int must be whole seconds 1..=255 (RFC 3768 §5.3.7), got {0} cs")]
    V2AdvertInterval(u16),
    #[error("VRRPv3 advert_int must be 1..=4095 centiseconds (RFC 5798 §5.2.7), got {0} cs")]
    V3AdvertInterval(u16),
    #[error("down_timer_adverts must be 1..=100, got {0}")]
    DownTimerAdverts(u8),
}

/// The RFC 5798 §6.4 states, plus keepalived's Fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    /// keepalived's FAULT: the interface or a tracked object is down; adverts are ignored and
    /// no timer runs until [`Event::InterfaceUp`].
    Fault,
}

/// What happened. The codec and the trackers live elsewhere; an event carries only what the
/// election needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// RFC 5798 §6.4.1 Startup event.
    Startup,
    /// RFC 5798 §6.4.2/§6.4.3 Shutdown event (clean exit or instance removed).
    Shutdown,
    /// A valid advert for our VRID (the codec has checked TTL, checksum, auth, type, VRID).
    Advert {
        /// The IP source address of the advert: the sender's primary address.
        src: IpAddr,
        priority: u8,
        /// The advert interval in centiseconds; v2's whole seconds converted by the caller.
        max_adver_int_cs: u16,
    },
    /// The armed timer expired.
    TimerFired,
    /// The trackers computed a new effective priority (configured priority ± weights).
    PriorityChanged { effective_priority: u8 },
    /// The fault condition cleared (link up, no tracked object in fault).
    InterfaceUp,
    /// A fault condition: link down or a tracked object with weight 0 down.
    InterfaceDown,
}

/// Why a transition happened, recorded by the state machine at the transition itself (as
/// holo-vrrp does), so the driver keeps no copy of the event it delivered. `Display` is the
/// log text; [`Cause::display_with`] names sync-group members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// RFC 5798 §6.4.1 Startup.
    Startup,
    /// Shutdown: a clean exit or the instance removed by a reload.
    Shutdown,
    /// A backup's Master_Down_Timer expired with no advert from the master (RFC 5798 §6.4.2);
    /// `master` is the one it last accepted, if any.
    MasterDown { master: Option<IpAddr> },
    /// A backup's Master_Down_Timer expired while it discarded a lower-priority master's
    /// adverts (Preempt_Mode, RFC 5798 §6.4.2): it takes over from `master`.
    Preempting {
        master: IpAddr,
        priority: u8,
        ours: u8,
    },
    /// A backup's Skew_Time expired after `master` resigned with a priority-0 advert (RFC 5798
    /// §6.4.2).
    MasterResigned { master: IpAddr },
    /// A master heard `master` with a higher priority, or an equal one and a greater primary
    /// address (RFC 5798 §6.4.3), and stepped down.
    PreemptedBy {
        master: IpAddr,
        priority: u8,
        ours: u8,
    },
    /// The interface went down or a tracked object with weight 0 failed.
    Fault,
    /// The fault condition cleared.
    FaultCleared,
    /// Moved by its sync group: member `member` (an index into the group) changed state for
    /// `cause`.
    SyncGroup { member: usize, cause: Box<Cause> },
}

impl Cause {
    /// The log text, with sync-group member `m` named `name(m)`.
    pub fn display_with<N: fmt::Display>(&self, name: impl Fn(usize) -> N) -> String {
        match self {
            Cause::SyncGroup { member, cause } => {
                format!("sync group: {cause} on {}", name(*member))
            }
            cause => cause.to_string(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Startup => f.write_str("startup"),
            Cause::Shutdown => f.write_str("shutdown"),
            Cause::MasterDown { master: None } => {
                f.write_str("master down timer expired (no advert from the master)")
            }
            Cause::MasterDown {
                master: Some(master),
            } => write!(f, "master down timer expired (no advert from {master})"),
            Cause::Preempting {
                master,
                priority,
                ours,
            } => write!(f, "preempting {master}, priority {priority} < {ours}"),
            Cause::MasterResigned { .. } => {
                f.write_str("skew time expired after the master resigned (priority 0)")
            }
            Cause::PreemptedBy {
                master,
                priority,
                ours,
            } if priority == ours => write!(
                f,
                "preempted by {master}, priority {priority} = {ours} from a greater address"
            ),
            Cause::PreemptedBy {
                master,
                priority,
                ours,
            } => write!(f, "preempted by {master}, priority {priority} > {ours}"),
            Cause::Fault => f.write_str("fault (interface down or a tracker in fault)"),
            Cause::FaultCleared => f.write_str("fault cleared (interface up, trackers up)"),
            Cause::SyncGroup { member, cause } => {
                write!(f, "sync group: {cause} on member {member}")
            }
        }
    }
}

/// Which RFC 5798 §6.1 timer an [`Action::ArmTimer`] arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Adver_Timer: send the next advert (Master).
    Advert,
    /// Master_Down_Timer: the master is presumed dead (Backup).
    MasterDown,
}

/// What the driver must do, in the order returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Multicast (or unicast to peers) an advert with our VIPs.
    SendAdvert { priority: u8, adver_int_cs: u16 },
    /// Add the VIPs ([`InstanceConfig::vips`]) to the interface.
    AddVips,
    /// Remove the VIPs from the interface.
    RemoveVips,
    /// Fence the VIPs in the kernel (TC `vip_fence`): drop traffic, ARP and NA for them.
    Fence,
    /// Lift the fence on the VIPs.
    Unfence,
    /// A planned step-down (shutdown, preempted, moved by the sync group): stop answering
    /// ARP/ND for the VIPs and announcing them (the fence's quiet state) but keep them and
    /// their traffic until the successor's gratuitous ARP/NA had time to reach the clients;
    /// then fence and remove them. `successor_heard`: the step-down is the successor's advert
    /// (a preemption), else the driver waits for one, bounded.
    HandOver { successor_heard: bool },
    /// Gratuitous ARP for IPv4 VIPs, unsolicited NA for IPv6 ones.
    SendGratuitous,
    /// The same for a Master that heard a lower-priority advert and reasserts itself
    /// (keepalived `vrrp_state_master_rx` with `garp_lower_prio_repeat`): the burst and the
    /// delayed second burst of `garp_lower_prio_repeat`/`garp_lower_prio_delay`.
    ReassertGratuitous,
    /// A Master heard a lower-priority advert (keepalived `send_event_notify` with
    /// `VRRP_EVENT_MASTER_RX_LOWER_PRI`): `notify_master_rx_lower_pri` and the FIFO hear it.
    HeardLowerPriority,
    /// Run the notify scripts for a state change (`to == Initialize` is keepalived's STOP), and
    /// log it with its `cause`.
    Notify {
        from: State,
        to: State,
        cause: Cause,
    },
    /// Arm the instance's single timer at `at`, replacing any armed one.
    ArmTimer { kind: TimerKind, at: Instant },
    /// Disarm the timer.
    CancelTimer,
}

/// Why the Master_Down_Timer was last (re)started: the deadline is recomputed from it when the
/// effective priority changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DownBasis {
    /// Master_Down_Interval from `since` (entered Backup, or accepted an advert).
    MasterDown,
    /// Skew_Time from `since` (a priority 0 advert from this master, RFC 5798 §6.4.2).
    Skew(IpAddr),
    /// keepalived's first timer of a sync-group member configured `state MASTER`:
    /// Master_Adver_Interval + the minimal skew (`vrrp_init_state`).
    SyncStartup,
}

/// What a sync group tells a member before it handles an event (see `super::sync_group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyncGates {
    /// keepalived `vrrp_sync_can_goto_master`: the group is Master or every other member
    /// wants to be.
    pub(crate) may_become_master: bool,
    /// Another member is in fault of its own: stay in (or go to) Fault.
    pub(crate) hold_fault: bool,
}

/// One VRRP virtual router (one VRID on one interface).
///
/// keepalived's `state MASTER` on a non-owner is only a hint: like keepalived 2.x
/// (`vrrp_init_state`) the instance starts as Backup with the full Master_Down_Interval, and the
/// hint clears `nopreempt` and `preempt_delay` (`vrrp_complete_instance`: "nopreempt will not
/// work with initial state MASTER"). Only the address owner (priority 255) with initial state
/// Master goes to Master directly (RFC 5798 §6.4.1).
#[derive(Clone, Debug)]
pub struct Instance {
    config: InstanceConfig,
    state: State,
    effective_priority: u8,
    /// Learned from the master's adverts (v3), our own interval otherwise.
    master_adver_int_cs: u16,
    /// False while a fault condition holds ([`Event::InterfaceDown`]).
    link_up: bool,
    timer: Option<(TimerKind, Instant)>,
    down_basis: Option<(DownBasis, Instant)>,
    /// keepalived `preempt_time`: until when a lower-priority master is still accepted.
    preempt_until: Option<Instant>,
    /// The master we last accepted an advert from, and its priority.
    master: Option<(IpAddr, u8)>,
    /// In Backup, the lower-priority master whose last advert we discarded to preempt it.
    lower_master: Option<(IpAddr, u8)>,
    /// keepalived `wantstate == MASTER`, read by the sync group.
    want_master: bool,
    /// Set while the instance is a sync group member.
    sync: Option<SyncGates>,
    /// keepalived's `vrrp_startup_delay`: no Master_Down_Timer counts from before this instant.
    start_hold: Option<Instant>,
}

impl Instance {
    /// A new instance in Initialize; nothing happens until [`Event::Startup`]. The interface is
    /// taken to be up: feed [`Event::InterfaceDown`] before Startup if it is not (the instance
    /// then starts in Fault), and [`Event::PriorityChanged`] if trackers already moved it.
    pub fn new(mut config: InstanceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let initial = config.resolved_initial_state();
        if initial == InitialState::Master {
            // keepalived vrrp_complete_instance: nopreempt and preempt_delay do not work with
            // initial state MASTER, and are cleared.
            config.preempt = true;
            config.preempt_delay = Duration::ZERO;
        }
        Ok(Self {
            effective_priority: config.priority,
            master_adver_int_cs: config.advert_interval_cs,
            want_master: initial == InitialState::Master,
            config,
            state: State::Initialize,
            link_up: true,
            timer: None,
            down_basis: None,
            preempt_until: None,
            master: None,
            lower_master: None,
            sync: None,
            start_hold: None,
        })
    }

    /// keepalived's `vrrp_startup_delay`: until `until`, a Master_Down_Timer counts from `until`
    /// rather than from now (vrrp_scheduler.c `vrrp_init_instance_sands`), so no backup takes
    /// over before `until` + Master_Down_Interval. Given before [`Event::Startup`], at the
    /// daemon's start only (not after a reload, as keepalived).
    pub fn delay_start(&mut self, until: Instant) {
        self.start_hold = Some(until);
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// A reload's in-place change: `config` replaces ours and the state, timers and learned
    /// master stay. The caller keeps the VRID, version, primary address and owner status (those
    /// restart the instance) and feeds a new priority as [`Event::PriorityChanged`]. A Master
    /// advertises at `now` (the next timer firing), so peers learn the change at once.
    pub fn reconfigure(
        &mut self,
        now: Instant,
        mut config: InstanceConfig,
    ) -> Result<(), ConfigError> {
        config.validate()?;
        if config.resolved_initial_state() == InitialState::Master {
            // As in `new`: keepalived clears them for initial state MASTER.
            config.preempt = true;
            config.preempt_delay = Duration::ZERO;
        }
        // A v3 Backup keeps the interval it learned from the master; ours otherwise.
        if self.state != State::Backup || config.version == Version::V2 {
            self.master_adver_int_cs = config.advert_interval_cs;
        }
        if !config.preempt || config.preempt_delay.is_zero() {
            self.preempt_until = None;
        }
        self.config = config;
        if self.state == State::Master {
            self.timer = Some((TimerKind::Advert, now));
        }
        Ok(())
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority we advertise and elect with (RFC 5798 §6.1 Priority).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Master_Adver_Interval: learned from the master's adverts in v3, ours otherwise.
    pub fn master_adver_interval(&self) -> Duration {
        cs_to_duration(self.master_adver_int_cs)
    }

    /// Skew_Time with the current effective priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        skew_time(
            self.config.version,
            self.effective_priority,
            self.master_adver_int_cs,
        )
    }

    /// Whether the armed timer is a backup's Skew_Time after a priority-0 advert (the master
    /// resigned), rather than a Master_Down_Interval.
    pub fn awaiting_resigned_master(&self) -> bool {
        self.state == State::Backup && matches!(self.down_basis, Some((DownBasis::Skew(_), _)))
    }

    /// Master_Down_Interval with the current effective priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.config.version,
            self.effective_priority,
            self.master_adver_int_cs,
            self.config.down_timer_adverts,
        )
    }

    /// The armed timer's deadline, if any.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timer.map(|(_, at)| at)
    }

    /// The armed timer, if any.
    pub fn timer(&self) -> Option<(TimerKind, Instant)> {
        self.timer
    }

    /// The current master as far as we know: ourselves in Master, else the source and priority
    /// of the last advert we accepted in Backup.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        match self.state {
            State::Master => Some((self.config.primary_address, self.effective_priority)),
            State::Backup => self.master,
            State::Initialize | State::Fault => None,
        }
    }

    fn is_owner(&self) -> bool {
        self.config.priority == PRIORITY_OWNER
    }

    fn owner_starts_master(&self) -> bool {
        self.is_owner() && self.config.resolved_initial_state() == InitialState::Master
    }

    /// Handles one event at `now` and returns the actions to perform, in order.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.handle_into(now, event, &mut out);
        out
    }

    /// [`Instance::handle`] appending to a caller's buffer.
    pub fn handle_into(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::Startup => self.on_startup(now, out),
            Event::Shutdown => self.on_shutdown(out),
            Event::Advert {
                src,
                priority,
                max_adver_int_cs,
            } => self.on_advert(now, src, priority, max_adver_int_cs, out),
            Event::TimerFired => self.on_timer(now, out),
            Event::PriorityChanged { effective_priority } => {
                self.on_priority_changed(effective_priority, out)
            }
            Event::InterfaceUp => self.on_interface_up(now, out),
            Event::InterfaceDown => self.on_interface_down(out),
        }
    }

    /// RFC 5798 §6.4.1; keepalived `vrrp_init_state`.
    fn on_startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_int_cs = self.config.advert_interval_cs;
        self.want_master = self.config.resolved_initial_state() == InitialState::Master;
        self.master = None;
        if !self.link_up || self.sync.is_some_and(|s| s.hold_fault) {
            self.enter_fault(State::Initialize, Cause::Startup, out);
        } else if self.owner_starts_master() && self.may_become_master() {
            // §6.4.1: "If the Priority = 255 ... transition to the {Master} state".
            self.enter_master(now, State::Initialize, Cause::Startup, out);
        } else if self.sync.is_some() && self.want_master {
            // keepalived vrrp_init_state: a sync-group member that wants MASTER while the
            // group is BACKUP waits one advert interval (plus minimal skew) for another master.
            self.enter_backup(
                now,
                State::Initialize,
                DownBasis::SyncStartup,
                Cause::Startup,
                out,
            );
        } else {
            // §6.4.1: Master_Down_Timer = Master_Down_Interval, transition to {Backup}.
            self.enter_backup(
                now,
                State::Initialize,
                DownBasis::MasterDown,
                Cause::Startup,
                out,
            );
        }
    }

    /// RFC 5798 §6.4.2/§6.4.3 Shutdown; keepalived `restore_vrrp_interfaces`.
    fn on_shutdown(&mut self, out: &mut Vec<Action>) {
        let from = self.state;
        match from {
            State::Initialize => return,
            // §6.4.3: send an advert with priority 0 so a backup takes over after Skew_Time;
            // a planned handover: the VIPs go quiet first and stay until the successor's GARP.
            State::Master => {
                out.push(Action::HandOver {
                    successor_heard: false,
                });
                self.send_priority_zero(out);
            }
            State::Backup | State::Fault => {}
        }
        self.state = State::Initialize;
        notify(out, from, State::Initialize, Cause::Shutdown);
        self.cancel_timer(out);
        self.forget_master();
    }

    fn on_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        max_adver_int_cs: u16,
        out: &mut Vec<Action>,
    ) {
        if self.config.version == Version::V2 && max_adver_int_cs != self.config.advert_interval_cs
        {
            // RFC 3768 §7.1: the receiver MUST discard a v2 advert whose interval differs from
            // ours (keepalived vrrp_check_packet: "to prevent concurrent VRID running").
            return;
        }
        match self.state {
            // keepalived vrrp_dispatcher_read ignores adverts in FAULT and INIT.
            State::Initialize | State::Fault => {}
            State::Backup => self.backup_rx(now, src, priority, max_adver_int_cs, out),
            State::Master => self.master_rx(now, src, priority, max_adver_int_cs, out),
        }
    }

    /// RFC 5798 §6.4.2 "If an ADVERTISEMENT is received"; keepalived `vrrp_state_backup`.
    fn backup_rx(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        max_adver_int_cs: u16,
        out: &mut Vec<Action>,
    ) {
        if priority == PRIORITY_STOP {
            // §6.4.2: Master_Down_Timer = Skew_Time. The interval is not learned from it.
            self.arm_master_down(now, DownBasis::Skew(src), out);
            return;
        }
        let preempt_delay_running = !self.config.preempt_delay.is_zero()
            && self.preempt_until.is_none_or(|until| until > now);
        if !self.config.preempt || priority >= self.effective_priority || preempt_delay_running {
            // §6.4.2: accept: learn Master_Adver_Interval (v3 only; v2 has none to learn),
            // recompute Master_Down_Interval, reset Master_Down_Timer.
            self.learn_master_adver_int(max_adver_int_cs);
            self.master = Some((src, priority));
            self.lower_master = None;
            self.want_master = false;
            if !self.config.preempt_delay.is_zero() {
                // keepalived vrrp_state_backup: the delay starts with the first lower-priority
                // advert and stops when the master is at least our priority again.
                if priority >= self.effective_priority {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.config.preempt_delay);
                }
            }
            self.arm_master_down(now, DownBasis::MasterDown, out);
        } else {
            // §6.4.2: discard; the Master_Down_Timer runs on and we preempt when it fires.
            self.lower_master = Some((src, priority));
        }
    }

    /// RFC 5798 §6.4.3 "If an ADVERTISEMENT is received"; keepalived `vrrp_state_master_rx`.
    fn master_rx(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        max_adver_int_cs: u16,
        out: &mut Vec<Action>,
    ) {
        let ours = self.effective_priority;
        let primary = self.config.primary_address;
        if priority == PRIORITY_STOP {
            // §6.4.3: a priority 0 advert: send an advert at once, reset the Adver_Timer.
            self.send_advert_and_rearm(now, out);
        } else if priority > ours || (priority == ours && src > primary) {
            // §6.4.3: higher priority, or equal priority and a greater primary address (compared
            // as unsigned integers, RFC 5798 §6.4.3): step down at once. keepalived's
            // higher_prio_send_advert: advertise our priority once first (the other master,
            // hearing a lower one, reasserts itself to the neighbours that followed us).
            self.learn_master_adver_int(max_adver_int_cs);
            self.master = Some((src, priority));
            let cause = Cause::PreemptedBy {
                master: src,
                priority,
                ours,
            };
            self.leave_master_to_backup(now, self.config.higher_prio_advert, true, cause, out);
        } else if priority < ours || src < primary {
            // keepalived: a lower priority master (a healed partition, a late backup) is told at
            // once: "received lower priority advert, forcing new election". RFC 5798 would
            // discard it and let the next periodic advert do it. keepalived also refreshes the
            // neighbours' caches, some of which point at the other master. With
            // lower_prio_no_advert (strict mode) the advert is discarded as the RFC says; the
            // gratuitous ARPs still go.
            if self.config.lower_prio_advert {
                self.send_advert_and_rearm(now, out);
            }
            if self.config.garp_lower_prio {
                out.push(Action::ReassertGratuitous);
            }
            out.push(Action::HeardLowerPriority);
        }
        // Else equal priority from our own address: our own advert looped back; ignore.
    }

    /// RFC 5798 §6.4.2 "If the Master_Down_Timer fires", §6.4.3 "If the Adver_Timer fires";
    /// keepalived `vrrp_dispatcher_read_timeout`.
    fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some((kind, at)) = self.timer else {
            return;
        };
        if now < at {
            return; // stale firing of a timer since re-armed
        }
        match (self.state, kind) {
            (State::Master, TimerKind::Advert) => self.send_advert_and_rearm(now, out),
            (State::Backup, TimerKind::MasterDown) => {
                self.want_master = true;
                if self.may_become_master() {
                    let cause = self.takeover_cause();
                    self.enter_master(now, State::Backup, cause, out);
                } else {
                    // keepalived vrrp_sync_can_goto_master: held in Backup by the sync group,
                    // wanting Master; give the other members another Master_Down_Interval.
                    self.arm_master_down(now, DownBasis::MasterDown, out);
                }
            }
            _ => {
                self.timer = None;
            }
        }
    }

    /// Why a Backup whose Master_Down_Timer fired takes over: the master resigned, we preempt a
    /// lower priority, or the master went silent.
    fn takeover_cause(&self) -> Cause {
        match (self.down_basis, self.lower_master) {
            (Some((DownBasis::Skew(master), _)), _) => Cause::MasterResigned { master },
            (_, Some((master, priority))) if priority < self.effective_priority => {
                Cause::Preempting {
                    master,
                    priority,
                    ours: self.effective_priority,
                }
            }
            _ => Cause::MasterDown {
                master: self.master.map(|(address, _)| address),
            },
        }
    }

    /// keepalived `vrrp_set_effective_priority`: the owner's priority never changes, others are
    /// clamped to 1..=254. A Backup's Master_Down_Timer moves with the new Skew_Time; a Master
    /// advertises the new priority with its next advert.
    fn on_priority_changed(&mut self, effective_priority: u8, out: &mut Vec<Action>) {
        if self.is_owner() {
            return;
        }
        let priority = effective_priority.clamp(1, PRIORITY_OWNER - 1);
        if priority == self.effective_priority {
            return;
        }
        self.effective_priority = priority;
        if self.state == State::Backup
            && let Some((basis, since)) = self.down_basis
        {
            // keepalived shifts `sands` by the change in ms_down_timer; recomputing from the
            // timer's start is the same for an accepted advert and also right after a priority
            // 0 advert (keepalived there jumps back to a full Master_Down_Interval).
            self.arm_master_down(since, basis, out);
        }
    }

    /// keepalived `down_instance`.
    fn on_interface_down(&mut self, out: &mut Vec<Action>) {
        self.link_up = false;
        match self.state {
            State::Master | State::Backup => self.enter_fault(self.state, Cause::Fault, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// keepalived `try_up_instance`, `vrrp_state_leave_fault`.
    fn on_interface_up(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.link_up = true;
        if self.state != State::Fault || self.sync.is_some_and(|s| s.hold_fault) {
            return;
        }
        self.leave_fault(
            now,
            self.owner_starts_master() && self.may_become_master(),
            Cause::FaultCleared,
            out,
        );
    }

    fn leave_fault(&mut self, now: Instant, to_master: bool, cause: Cause, out: &mut Vec<Action>) {
        self.master_adver_int_cs = self.config.advert_interval_cs;
        self.want_master = self.owner_starts_master();
        if to_master {
            self.enter_master(now, State::Fault, cause, out);
        } else {
            self.enter_backup(now, State::Fault, DownBasis::MasterDown, cause, out);
        }
    }

    /// A master going to Fault (not a planned handover): fenced first, then priority 0, then
    /// its VIPs removed.
    fn resign(&self, out: &mut Vec<Action>) {
        out.push(Action::Fence);
        self.send_priority_zero(out);
        out.push(Action::RemoveVips);
    }

    fn send_priority_zero(&self, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert {
            priority: PRIORITY_STOP,
            adver_int_cs: self.config.advert_interval_cs,
        });
    }

    /// Leaving Backup (for Master, Fault or Initialize): no master is heard, waited for or
    /// preempted any more.
    fn forget_master(&mut self) {
        self.down_basis = None;
        self.preempt_until = None;
        self.master = None;
        self.lower_master = None;
    }

    fn may_become_master(&self) -> bool {
        self.sync.is_none_or(|s| s.may_become_master)
    }

    /// keepalived `vrrp_state_goto_master` + `vrrp_state_master_tx` + `vrrp_state_become_master`.
    fn enter_master(&mut self, now: Instant, from: State, cause: Cause, out: &mut Vec<Action>) {
        self.state = State::Master;
        self.want_master = true;
        // RFC 5798 §6.4.1/§6.4.2: a master advertises its own Advertisement_Interval.
        self.master_adver_int_cs = self.config.advert_interval_cs;
        self.forget_master();
        out.push(Action::SendAdvert {
            priority: self.effective_priority,
            adver_int_cs: self.config.advert_interval_cs,
        });
        out.push(Action::AddVips);
        out.push(Action::Unfence);
        out.push(Action::SendGratuitous);
        notify(out, from, State::Master, cause);
        self.arm(TimerKind::Advert, now + self.advert_interval(), out);
    }

    fn enter_backup(
        &mut self,
        now: Instant,
        from: State,
        basis: DownBasis,
        cause: Cause,
        out: &mut Vec<Action>,
    ) {
        self.state = State::Backup;
        self.preempt_until = None;
        self.lower_master = None;
        if from == State::Initialize {
            out.push(Action::Fence);
            out.push(Action::RemoveVips);
        }
        notify(out, from, State::Backup, cause);
        self.arm_master_down(now, basis, out);
    }

    /// keepalived `vrrp_state_leave_master` with wantstate BACKUP, as a planned handover;
    /// `advert_first`: one last advert with our priority (`higher_prio_send_advert`), sent once
    /// we are quiet; `successor_heard`: the step-down is the successor's advert.
    fn leave_master_to_backup(
        &mut self,
        now: Instant,
        advert_first: bool,
        successor_heard: bool,
        cause: Cause,
        out: &mut Vec<Action>,
    ) {
        self.state = State::Backup;
        self.want_master = false;
        self.preempt_until = None;
        self.lower_master = None;
        out.push(Action::HandOver { successor_heard });
        if advert_first {
            out.push(Action::SendAdvert {
                priority: self.effective_priority,
                adver_int_cs: self.config.advert_interval_cs,
            });
        }
        notify(out, State::Master, State::Backup, cause);
        self.arm_master_down(now, DownBasis::MasterDown, out);
    }

    /// keepalived `vrrp_state_leave_master` / `vrrp_state_leave_fault` with wantstate FAULT.
    fn enter_fault(&mut self, from: State, cause: Cause, out: &mut Vec<Action>) {
        match from {
            // keepalived sends priority 0 on the way to FAULT so a backup takes over after
            // Skew_Time (useful when the fault is a tracker, not the link).
            State::Master => self.resign(out),
            State::Initialize => {
                out.push(Action::Fence);
                out.push(Action::RemoveVips);
            }
            State::Backup | State::Fault => {}
        }
        self.state = State::Fault;
        self.want_master = false;
        self.master_adver_int_cs = self.config.advert_interval_cs;
        self.forget_master();
        notify(out, from, State::Fault, cause);
        self.cancel_timer(out);
    }

    fn send_advert_and_rearm(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert {
            priority: self.effective_priority,
            adver_int_cs: self.config.advert_interval_cs,
        });
        self.arm(TimerKind::Advert, now + self.advert_interval(), out);
    }

    /// RFC 5798 §6.4.2: Master_Adver_Interval = the advert's Max Adver Interval (v3 only).
    fn learn_master_adver_int(&mut self, max_adver_int_cs: u16) {
        if self.config.version == Version::V3 {
            // An interval of 0 is invalid on the wire (§5.2.7); never let it collapse the
            // Master_Down_Interval to the skew alone.
            self.master_adver_int_cs = max_adver_int_cs.clamp(1, V3_MAX_ADVER_INT_CS);
        }
    }

    fn arm_master_down(&mut self, since: Instant, basis: DownBasis, out: &mut Vec<Action>) {
        let since = match (&basis, self.start_hold) {
            (DownBasis::MasterDown | DownBasis::SyncStartup, Some(hold)) => since.max(hold),
            _ => since,
        };
        let wait = match basis {
            DownBasis::MasterDown => self.master_down_interval(),
            DownBasis::Skew(_) => self.skew_time(),
            DownBasis::SyncStartup => {
                self.master_adver_interval()
                    + skew_time(
                        self.config.version,
                        PRIORITY_OWNER,
                        self.master_adver_int_cs,
                    )
            }
        };
        self.down_basis = Some((basis, since));
        self.arm(TimerKind::MasterDown, since + wait, out);
    }

    fn arm(&mut self, kind: TimerKind, at: Instant, out: &mut Vec<Action>) {
        self.timer = Some((kind, at));
        out.push(Action::ArmTimer { kind, at });
    }

    fn cancel_timer(&mut self, out: &mut Vec<Action>) {
        if self.timer.take().is_some() {
            out.push(Action::CancelTimer);
        }
    }

    /// Our own Advertisement_Interval (what we advertise as master).
    pub fn advert_interval(&self) -> Duration {
        cs_to_duration(self.config.advert_interval_cs)
    }

    // ----- sync group coupling (keepalived vrrp_sync.c), used by `super::sync_group` -----

    pub(crate) fn set_sync_gates(&mut self, gates: SyncGates) {
        self.sync = Some(gates);
    }

    /// keepalived `wantstate == VRRP_STATE_MAST`.
    pub(crate) fn wants_master(&self) -> bool {
        self.want_master
    }

    /// False while the instance's own fault condition holds.
    pub(crate) fn link_up(&self) -> bool {
        self.link_up
    }

    /// keepalived `vrrp_sync_master`: a Backup member follows the group to Master at once.
    pub(crate) fn force_master(&mut self, now: Instant, cause: Cause, out: &mut Vec<Action>) {
        self.want_master = true;
        if self.state == State::Backup {
            self.enter_master(now, State::Backup, cause, out);
        }
    }

    /// keepalived `vrrp_sync_backup`: Master steps down, Fault (held by the group) comes up.
    pub(crate) fn force_backup(&mut self, now: Instant, cause: Cause, out: &mut Vec<Action>) {
        match self.state {
            State::Master => self.leave_master_to_backup(now, false, false, cause, out),
            State::Fault if self.link_up => self.leave_fault(now, false, cause, out),
            State::Initialize | State::Backup | State::Fault => {}
        }
        self.want_master = false;
    }

    /// keepalived `vrrp_sync_fault`.
    pub(crate) fn force_fault(&mut self, cause: Cause, out: &mut Vec<Action>) {
        match self.state {
            State::Master | State::Backup => self.enter_fault(self.state, cause, out),
            State::Initialize | State::Fault => {}
        }
    }
}

/// Skew_Time: RFC 5798 §6.1 ((256 − Priority) × Master_Adver_Interval) / 256 for v3,
/// RFC 3768 §6.1 (256 − Priority) / 256 seconds for v2. Exact to the nanosecond, never zero.
pub fn skew_time(version: Version, priority: u8, master_adver_int_cs: u16) -> Duration {
    let weight = 256 - u64::from(priority);
    let nanos = match version {
        Version::V3 => weight * u64::from(master_adver_int_cs) * NANOS_PER_CS / 256,
        Version::V2 => weight * NANOS_PER_SEC / 256,
    };
    Duration::from_nanos(nanos)
}

/// Master_Down_Interval: `down_timer_adverts` × Master_Adver_Interval + Skew_Time (RFC 5798
/// §6.1 with keepalived's multiplier in place of the 3; keepalived `VRRP_MS_DOWN_TIMER`).
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_int_cs: u16,
    down_timer_adverts: u8,
) -> Duration {
    cs_to_duration(master_adver_int_cs) * u32::from(down_timer_adverts)
        + skew_time(version, priority, master_adver_int_cs)
}

/// A transition from `from` to `to`, told to the driver with its cause.
fn notify(out: &mut Vec<Action>, from: State, to: State, cause: Cause) {
    out.push(Action::Notify { from, to, cause });
}

#[cfg(test)]
mod tests;

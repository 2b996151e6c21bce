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
//!   followed it.
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
    /// Gratuitous ARP for IPv4 VIPs, unsolicited NA for IPv6 ones.
    SendGratuitous,
    /// The same for a Master that heard a lower-priority advert and reasserts itself
    /// (keepalived `vrrp_state_master_rx` with `garp_lower_prio_repeat`): the burst and the
    /// delayed second burst of `garp_lower_prio_repeat`/`garp_lower_prio_delay`.
    ReassertGratuitous,
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
        })
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.config
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
            State::Master => {
                // §6.4.3: send an advert with priority 0 so a backup takes over after Skew_Time.
                out.push(Action::Fence);
                out.push(Action::SendAdvert {
                    priority: PRIORITY_STOP,
                    adver_int_cs: self.config.advert_interval_cs,
                });
                out.push(Action::RemoveVips);
            }
            State::Backup | State::Fault => {}
        }
        self.state = State::Initialize;
        out.push(Action::Notify {
            from,
            to: State::Initialize,
            cause: Cause::Shutdown,
        });
        self.cancel_timer(out);
        self.down_basis = None;
        self.preempt_until = None;
        self.master = None;
        self.lower_master = None;
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
            self.leave_master_to_backup(now, self.config.higher_prio_advert, cause, out);
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

    fn may_become_master(&self) -> bool {
        self.sync.is_none_or(|s| s.may_become_master)
    }

    /// keepalived `vrrp_state_goto_master` + `vrrp_state_master_tx` + `vrrp_state_become_master`.
    fn enter_master(&mut self, now: Instant, from: State, cause: Cause, out: &mut Vec<Action>) {
        self.state = State::Master;
        self.want_master = true;
        // RFC 5798 §6.4.1/§6.4.2: a master advertises its own Advertisement_Interval.
        self.master_adver_int_cs = self.config.advert_interval_cs;
        self.down_basis = None;
        self.preempt_until = None;
        self.master = None;
        self.lower_master = None;
        out.push(Action::SendAdvert {
            priority: self.effective_priority,
            adver_int_cs: self.config.advert_interval_cs,
        });
        out.push(Action::AddVips);
        out.push(Action::Unfence);
        out.push(Action::SendGratuitous);
        out.push(Action::Notify {
            from,
            to: State::Master,
            cause,
        });
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
        out.push(Action::Notify {
            from,
            to: State::Backup,
            cause,
        });
        self.arm_master_down(now, basis, out);
    }

    /// keepalived `vrrp_state_leave_master` with wantstate BACKUP; `advert_first`: one last
    /// advert with our priority (`higher_prio_send_advert`), sent once we are fenced.
    fn leave_master_to_backup(
        &mut self,
        now: Instant,
        advert_first: bool,
        cause: Cause,
        out: &mut Vec<Action>,
    ) {
        self.state = State::Backup;
        self.want_master = false;
        self.preempt_until = None;
        self.lower_master = None;
        out.push(Action::Fence);
        if advert_first {
            out.push(Action::SendAdvert {
                priority: self.effective_priority,
                adver_int_cs: self.config.advert_interval_cs,
            });
        }
        out.push(Action::RemoveVips);
        out.push(Action::Notify {
            from: State::Master,
            to: State::Backup,
            cause,
        });
        self.arm_master_down(now, DownBasis::MasterDown, out);
    }

    /// keepalived `vrrp_state_leave_master` / `vrrp_state_leave_fault` with wantstate FAULT.
    fn enter_fault(&mut self, from: State, cause: Cause, out: &mut Vec<Action>) {
        match from {
            State::Master => {
                // keepalived sends priority 0 on the way to FAULT so a backup takes over after
                // Skew_Time (useful when the fault is a tracker, not the link).
                out.push(Action::Fence);
                out.push(Action::SendAdvert {
                    priority: PRIORITY_STOP,
                    adver_int_cs: self.config.advert_interval_cs,
                });
                out.push(Action::RemoveVips);
            }
            State::Initialize => {
                out.push(Action::Fence);
                out.push(Action::RemoveVips);
            }
            State::Backup | State::Fault => {}
        }
        self.state = State::Fault;
        self.want_master = false;
        self.master_adver_int_cs = self.config.advert_interval_cs;
        self.down_basis = None;
        self.preempt_until = None;
        self.master = None;
        self.lower_master = None;
        out.push(Action::Notify {
            from,
            to: State::Fault,
            cause,
        });
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
            State::Master => self.leave_master_to_backup(now, false, cause, out),
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn v3(priority: u8, last: u8, adver_int_cs: u16) -> InstanceConfig {
        let mut config = InstanceConfig::new(7, Version::V3, priority, ip(last));
        config.advert_interval_cs = adver_int_cs;
        config.vips = vec![ip(100)];
        config
    }

    fn advert(last: u8, priority: u8, max_adver_int_cs: u16) -> Event {
        Event::Advert {
            src: ip(last),
            priority,
            max_adver_int_cs,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn armed(actions: &[Action]) -> Option<(TimerKind, Instant)> {
        actions.iter().rev().find_map(|a| match a {
            Action::ArmTimer { kind, at } => Some((*kind, *at)),
            _ => None,
        })
    }

    /// Starts `config` as a Backup at `t0`.
    fn backup(config: InstanceConfig, t0: Instant) -> Instance {
        let mut instance = Instance::new(config).unwrap();
        instance.handle(t0, Event::Startup);
        assert_eq!(instance.state(), State::Backup);
        instance
    }

    /// Drives a Backup to Master by letting its Master_Down_Timer fire.
    fn master(config: InstanceConfig, t0: Instant) -> (Instance, Instant) {
        let mut instance = backup(config, t0);
        let at = instance.next_timeout().unwrap();
        instance.handle(at, Event::TimerFired);
        assert_eq!(instance.state(), State::Master);
        (instance, at)
    }

    #[test]
    fn skew_v3_10ms_priority_100_is_not_truncated() {
        // ((256 - 100) * 10 ms) / 256 = 6.09375 ms.
        let skew = skew_time(Version::V3, 100, 1);
        assert_eq!(skew.as_nanos(), 6_093_750);
        assert_eq!(skew.as_micros(), 6093);
        // 3 * 10 ms + 6.09375 ms.
        assert_eq!(
            master_down_interval(Version::V3, 100, 1, 3).as_nanos(),
            36_093_750
        );
        let instance = Instance::new(v3(100, 1, 1)).unwrap();
        assert_eq!(instance.skew_time(), skew);
        assert_eq!(
            instance.master_down_interval(),
            Duration::from_nanos(36_093_750)
        );
    }

    #[test]
    fn skew_v2_1s_priority_100() {
        // RFC 3768: (256 - 100) / 256 s = 609.375 ms; Master_Down_Interval 3.609375 s.
        assert_eq!(
            skew_time(Version::V2, 100, 100),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, 100, 3),
            Duration::from_micros(3_609_375)
        );
        // v2 skew does not scale with the advert interval.
        assert_eq!(
            skew_time(Version::V2, 100, 500),
            Duration::from_micros(609_375)
        );
        let mut config = InstanceConfig::new(1, Version::V2, 100, ip(1));
        config.advert_interval_cs = 100;
        let instance = Instance::new(config).unwrap();
        assert_eq!(
            instance.master_down_interval(),
            Duration::from_micros(3_609_375)
        );
    }

    #[test]
    fn skew_uses_effective_priority() {
        let t0 = Instant::now();
        let mut instance = backup(v3(100, 1, 100), t0);
        instance.handle(
            t0,
            Event::PriorityChanged {
                effective_priority: 200,
            },
        );
        assert_eq!(instance.effective_priority(), 200);
        // (256 - 200) * 1 s / 256 = 218.75 ms.
        assert_eq!(instance.skew_time(), Duration::from_micros(218_750));
    }

    #[test]
    fn down_timer_adverts_replaces_the_three() {
        let mut config = v3(100, 1, 100);
        config.down_timer_adverts = 5;
        let instance = Instance::new(config).unwrap();
        assert_eq!(
            instance.master_down_interval(),
            Duration::from_secs(5) + Duration::from_micros(609_375)
        );
        let mut config = v3(100, 1, 100);
        config.down_timer_adverts = 0;
        assert_eq!(
            Instance::new(config).unwrap_err(),
            ConfigError::DownTimerAdverts(0)
        );
    }

    #[test]
    fn config_validation() {
        assert_eq!(
            Instance::new(v3(0, 1, 100)).unwrap_err(),
            ConfigError::Priority
        );
        assert_eq!(
            Instance::new(v3(100, 1, 0)).unwrap_err(),
            ConfigError::V3AdvertInterval(0)
        );
        assert_eq!(
            Instance::new(v3(100, 1, 4096)).unwrap_err(),
            ConfigError::V3AdvertInterval(4096)
        );
        let mut config = InstanceConfig::new(1, Version::V2, 100, ip(1));
        config.advert_interval_cs = 150;
        assert_eq!(
            Instance::new(config).unwrap_err(),
            ConfigError::V2AdvertInterval(150)
        );
        let mut config = v3(100, 1, 100);
        config.vrid = 0;
        assert_eq!(Instance::new(config).unwrap_err(), ConfigError::Vrid);
    }

    #[test]
    fn startup_non_owner_goes_backup_with_master_down_timer() {
        let t0 = Instant::now();
        let mut instance = Instance::new(v3(100, 1, 100)).unwrap();
        let actions = instance.handle(t0, Event::Startup);
        let at = t0 + instance.master_down_interval();
        assert_eq!(
            actions,
            vec![
                Action::Fence,
                Action::RemoveVips,
                Action::Notify {
                    from: State::Initialize,
                    to: State::Backup,
                    cause: Cause::Startup
                },
                Action::ArmTimer {
                    kind: TimerKind::MasterDown,
                    at
                },
            ]
        );
        // Early firings (stale timers) do nothing.
        assert!(instance.handle(at - ms(1), Event::TimerFired).is_empty());
        assert_eq!(instance.state(), State::Backup);
        let actions = instance.handle(at, Event::TimerFired);
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert {
                    priority: 100,
                    adver_int_cs: 100
                },
                Action::AddVips,
                Action::Unfence,
                Action::SendGratuitous,
                Action::Notify {
                    from: State::Backup,
                    to: State::Master,
                    cause: Cause::MasterDown { master: None }
                },
                Action::ArmTimer {
                    kind: TimerKind::Advert,
                    at: at + ms(1000)
                },
            ]
        );
    }

    #[test]
    fn state_master_hint_on_non_owner_waits_like_a_backup() {
        // keepalived 2.x vrrp_init_state: only the address owner starts as master.
        let t0 = Instant::now();
        let mut config = v3(100, 1, 100);
        config.initial_state = Some(InitialState::Master);
        config.preempt = false;
        config.preempt_delay = ms(5000);
        let instance = backup(config, t0);
        assert_eq!(
            instance.next_timeout(),
            Some(t0 + instance.master_down_interval())
        );
        // ... and the hint clears nopreempt and preempt_delay (vrrp_complete_instance).
        assert!(instance.config().preempt);
        assert!(instance.config().preempt_delay.is_zero());
    }

    #[test]
    fn address_owner_starts_as_master() {
        let t0 = Instant::now();
        let mut instance = Instance::new(v3(255, 1, 100)).unwrap();
        let actions = instance.handle(t0, Event::Startup);
        assert_eq!(instance.state(), State::Master);
        assert_eq!(
            actions[0],
            Action::SendAdvert {
                priority: 255,
                adver_int_cs: 100
            }
        );
        assert_eq!(
            actions[4],
            Action::Notify {
                from: State::Initialize,
                to: State::Master,
                cause: Cause::Startup
            }
        );
        assert_eq!(armed(&actions), Some((TimerKind::Advert, t0 + ms(1000))));
        // The owner's priority is not moved by trackers.
        instance.handle(
            t0,
            Event::PriorityChanged {
                effective_priority: 50,
            },
        );
        assert_eq!(instance.effective_priority(), 255);
        // An owner configured `state BACKUP` waits like any backup.
        let mut config = v3(255, 1, 100);
        config.initial_state = Some(InitialState::Backup);
        let instance = backup(config, t0);
        // Skew for 255 at 1 s: 1/256 s = 3.90625 ms.
        assert_eq!(
            instance.next_timeout(),
            Some(t0 + Duration::from_secs(3) + Duration::from_nanos(3_906_250))
        );
    }

    #[test]
    fn owner_comes_back_from_fault_as_master() {
        let t0 = Instant::now();
        let mut instance = Instance::new(v3(255, 1, 100)).unwrap();
        instance.handle(t0, Event::Startup);
        let actions = instance.handle(t0 + ms(10), Event::InterfaceDown);
        assert_eq!(instance.state(), State::Fault);
        assert_eq!(
            actions,
            vec![
                Action::Fence,
                Action::SendAdvert {
                    priority: 0,
                    adver_int_cs: 100
                },
                Action::RemoveVips,
                Action::Notify {
                    from: State::Master,
                    to: State::Fault,
                    cause: Cause::Fault
                },
                Action::CancelTimer,
            ]
        );
        // Adverts are ignored in Fault.
        assert!(instance.handle(t0 + ms(20), advert(2, 100, 100)).is_empty());
        instance.handle(t0 + ms(30), Event::InterfaceUp);
        assert_eq!(instance.state(), State::Master);
    }

    #[test]
    fn fault_and_recovery_of_a_backup() {
        let t0 = Instant::now();
        let mut instance = backup(v3(100, 1, 100), t0);
        let actions = instance.handle(t0 + ms(10), Event::InterfaceDown);
        assert_eq!(
            actions,
            vec![
                Action::Notify {
                    from: State::Backup,
                    to: State::Fault,
                    cause: Cause::Fault
                },
                Action::CancelTimer
            ]
        );
        assert_eq!(instance.next_timeout(), None);
        let t1 = t0 + ms(500);
        let actions = instance.handle(t1, Event::InterfaceUp);
        assert_eq!(instance.state(), State::Backup);
        assert_eq!(
            armed(&actions),
            Some((TimerKind::MasterDown, t1 + instance.master_down_interval()))
        );
        // Interface down before startup: start in Fault.
        let mut instance = Instance::new(v3(100, 1, 100)).unwrap();
        instance.handle(t0, Event::InterfaceDown);
        instance.handle(t0, Event::Startup);
        assert_eq!(instance.state(), State::Fault);
    }

    #[test]
    fn backup_learns_master_adver_interval_v3() {
        let t0 = Instant::now();
        let mut instance = backup(v3(100, 1, 100), t0);
        let t1 = t0 + ms(100);
        // The master advertises every 50 cs; we learn it (RFC 5798 §6.4.2).
        let actions = instance.handle(t1, advert(2, 150, 50));
        assert_eq!(instance.master_adver_interval(), ms(500));
        let expected = ms(1500) + skew_time(Version::V3, 100, 50);
        assert_eq!(instance.master_down_interval(), expected);
        assert_eq!(
            armed(&actions),
            Some((TimerKind::MasterDown, t1 + expected))
        );
        assert_eq!(instance.master(), Some((ip(2), 150)));
        // Becoming master goes back to our own interval.
        let at = instance.next_timeout().unwrap();
        let actions = instance.handle(at, Event::TimerFired);
        assert_eq!(instance.master_adver_interval(), ms(1000));
        assert_eq!(
            actions[0],
            Action::SendAdvert {
                priority: 100,
                adver_int_cs: 100
            }
        );
    }

    #[test]
    fn v2_does_not_learn_and_drops_interval_mismatch() {
        let t0 = Instant::now();
        let mut config = InstanceConfig::new(1, Version::V2, 100, ip(1));
        config.advert_interval_cs = 100;
        let mut instance = backup(config, t0);
        let first = instance.next_timeout();
        // RFC 3768 §7.1: a different interval is discarded, the timer is untouched.
        assert!(
            instance
                .handle(t0 + ms(100), advert(2, 150, 200))
                .is_empty()
        );
        assert_eq!(instance.next_timeout(), first);
        let actions = instance.handle(t0 + ms(200), advert(2, 150, 100));
        assert_eq!(
            armed(&actions),
            Some((
                TimerKind::MasterDown,
                t0 + ms(200) + Duration::from_micros(3_609_375)
            ))
        );
        assert_eq!(instance.master_adver_interval(), ms(1000));
    }

    #[test]
    fn priority_zero_backup_waits_skew_only() {
        let t0 = Instant::now();
        let mut instance = backup(v3(100, 1, 100), t0);
        instance.handle(t0 + ms(100), advert(2, 150, 20));
        assert!(!instance.awaiting_resigned_master());
        let t1 = t0 + ms(200);
        let actions = instance.handle(t1, advert(2, 0, 20));
        assert!(instance.awaiting_resigned_master());
        // Skew with the learned 20 cs: 156 * 200 ms / 256 = 121.875 ms.
        assert_eq!(
            actions,
            vec![Action::ArmTimer {
                kind: TimerKind::MasterDown,
                at: t1 + Duration::from_micros(121_875)
            }]
        );
        let actions = instance.handle(t1 + Duration::from_micros(121_875), Event::TimerFired);
        assert_eq!(instance.state(), State::Master);
        assert!(!instance.awaiting_resigned_master());
        assert_eq!(actions[1], Action::AddVips);
    }

    #[test]
    fn priority_zero_master_readvertises_at_once() {
        let t0 = Instant::now();
        let (mut instance, at) = master(v3(100, 1, 100), t0);
        let t1 = at + ms(300);
        let actions = instance.handle(t1, advert(2, 0, 100));
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert {
                    priority: 100,
                    adver_int_cs: 100
                },
                Action::ArmTimer {
                    kind: TimerKind::Advert,
                    at: t1 + ms(1000)
                },
            ]
        );
        assert_eq!(instance.state(), State::Master);
    }

    #[test]
    fn master_shutdown_sends_priority_zero_after_fencing() {
        let t0 = Instant::now();
        let (mut instance, at) = master(v3(100, 1, 100), t0);
        let actions = instance.handle(at + ms(1), Event::Shutdown);
        assert_eq!(
            actions,
            vec![
                Action::Fence,
                Action::SendAdvert {
                    priority: 0,
                    adver_int_cs: 100
                },
                Action::RemoveVips,
                Action::Notify {
                    from: State::Master,
                    to: State::Initialize,
                    cause: Cause::Shutdown
                },
                Action::CancelTimer,
            ]
        );
        assert_eq!(instance.state(), State::Initialize);
        // A restart works.
        instance.handle(at + ms(2), Event::Startup);
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn master_steps_down_at_once_on_higher_priority() {
        let t0 = Instant::now();
        let (mut instance, at) = master(v3(100, 1, 100), t0);
        let t1 = at + ms(10);
        let actions = instance.handle(t1, advert(2, 101, 50));
        assert_eq!(instance.state(), State::Backup);
        let down = ms(1500) + skew_time(Version::V3, 100, 50);
        let step_down = |advert_first: bool| {
            let mut actions = vec![Action::Fence];
            if advert_first {
                // higher_prio_send_advert: our own priority, once, fenced already.
                actions.push(Action::SendAdvert {
                    priority: 100,
                    adver_int_cs: 100,
                });
            }
            actions.extend([
                Action::RemoveVips,
                Action::Notify {
                    from: State::Master,
                    to: State::Backup,
                    cause: Cause::PreemptedBy {
                        master: ip(2),
                        priority: 101,
                        ours: 100,
                    },
                },
                Action::ArmTimer {
                    kind: TimerKind::MasterDown,
                    at: t1 + down,
                },
            ]);
            actions
        };
        assert_eq!(actions, step_down(true));
        let mut config = v3(100, 1, 100);
        config.higher_prio_advert = false;
        let (mut instance, at) = master(config, t0);
        assert_eq!(at + ms(10), t1);
        assert_eq!(instance.handle(t1, advert(2, 101, 50)), step_down(false));
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn lower_prio_no_advert_keeps_the_gratuitous_arps_only() {
        let t0 = Instant::now();
        let mut config = v3(100, 1, 100);
        config.lower_prio_advert = false;
        let (mut instance, at) = master(config, t0);
        let actions = instance.handle(at + ms(10), advert(2, 99, 100));
        assert_eq!(instance.state(), State::Master);
        // No advert and no re-arm: the Adver_Timer armed when we became master runs on.
        assert_eq!(actions, vec![Action::ReassertGratuitous]);
        assert_eq!(instance.timer(), Some((TimerKind::Advert, at + ms(1000))));
    }

    #[test]
    fn master_reasserts_on_lower_priority() {
        let t0 = Instant::now();
        let (mut instance, at) = master(v3(100, 1, 100), t0);
        let t1 = at + ms(10);
        let actions = instance.handle(t1, advert(2, 99, 100));
        assert_eq!(instance.state(), State::Master);
        // keepalived vrrp_state_master_rx: an advert now, then garp_lower_prio_repeat GARPs.
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert {
                    priority: 100,
                    adver_int_cs: 100
                },
                Action::ArmTimer {
                    kind: TimerKind::Advert,
                    at: t1 + ms(1000)
                },
                Action::ReassertGratuitous,
            ]
        );
        // Equal priority from a lower address is lower too (RFC 5798 §6.4.3).
        let t2 = t1 + ms(10);
        let actions = instance.handle(t2, advert(0, 100, 100));
        assert_eq!(actions.last(), Some(&Action::ReassertGratuitous));
        // Our own advert looped back, priority 0 or a higher priority: no reassertion GARPs.
        let (mut instance, at) = master(v3(100, 1, 100), t0);
        let t1 = at + ms(10);
        for (src, prio) in [(1, 100), (2, 0)] {
            let actions = instance.handle(t1, advert(src, prio, 100));
            assert!(
                !actions.contains(&Action::ReassertGratuitous),
                "{actions:?}"
            );
        }
        let actions = instance.handle(t1, advert(2, 101, 100));
        assert_eq!(instance.state(), State::Backup);
        assert!(
            !actions.contains(&Action::ReassertGratuitous),
            "{actions:?}"
        );
    }

    #[test]
    fn no_gratuitous_on_lower_priority_when_garp_lower_prio_repeat_is_0() {
        let t0 = Instant::now();
        let mut config = v3(100, 1, 100);
        config.garp_lower_prio = false;
        let (mut instance, at) = master(config, t0);
        let t1 = at + ms(10);
        let actions = instance.handle(t1, advert(2, 99, 100));
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert {
                    priority: 100,
                    adver_int_cs: 100
                },
                Action::ArmTimer {
                    kind: TimerKind::Advert,
                    at: t1 + ms(1000)
                },
            ]
        );
    }

    #[test]
    fn tie_broken_by_higher_primary_address() {
        let t0 = Instant::now();
        // We are 10.0.0.5; equal priority from .9 wins, from .3 loses.
        let (mut instance, at) = master(v3(100, 5, 100), t0);
        let actions = instance.handle(at, advert(3, 100, 100));
        assert_eq!(instance.state(), State::Master);
        assert!(matches!(
            actions[0],
            Action::SendAdvert { priority: 100, .. }
        ));
        instance.handle(at, advert(9, 100, 100));
        assert_eq!(instance.state(), State::Backup);
        assert_eq!(instance.master(), Some((ip(9), 100)));
        // Our own advert looped back is ignored.
        let (mut instance, at) = master(v3(100, 5, 100), t0);
        assert!(instance.handle(at, advert(5, 100, 100)).is_empty());
        assert_eq!(instance.state(), State::Master);
        // IPv6 compares as a 128-bit unsigned integer.
        let lo: IpAddr = "fe80::1".parse().unwrap();
        let hi: IpAddr = "fe80::1:0".parse().unwrap();
        let mut config = InstanceConfig::new(7, Version::V3, 100, lo);
        config.advert_interval_cs = 100;
        let (mut instance, at) = master(config, t0);
        instance.handle(
            at,
            Event::Advert {
                src: hi,
                priority: 100,
                max_adver_int_cs: 100,
            },
        );
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn backup_with_equal_priority_accepts_the_incumbent() {
        // RFC 5798 §6.4.2: "greater than or equal to the local Priority": a backup with a higher
        // address does not preempt an equal-priority master.
        let t0 = Instant::now();
        let mut instance = backup(v3(100, 9, 100), t0);
        let t1 = t0 + ms(900);
        let actions = instance.handle(t1, advert(3, 100, 100));
        assert_eq!(
            armed(&actions),
            Some((TimerKind::MasterDown, t1 + instance.master_down_interval()))
        );
    }

    #[test]
    fn preempt_discards_lower_priority_and_takes_over_when_timer_fires() {
        let t0 = Instant::now();
        let mut instance = backup(v3(150, 1, 100), t0);
        let first = instance.next_timeout();
        assert!(
            instance
                .handle(t0 + ms(100), advert(2, 100, 100))
                .is_empty()
        );
        assert_eq!(instance.next_timeout(), first);
        instance.handle(first.unwrap(), Event::TimerFired);
        assert_eq!(instance.state(), State::Master);
    }

    #[test]
    fn nopreempt_accepts_lower_priority_master() {
        let t0 = Instant::now();
        let mut config = v3(150, 1, 100);
        config.preempt = false;
        let mut instance = backup(config, t0);
        for i in 1..=10u64 {
            let t = t0 + ms(1000 * i);
            let actions = instance.handle(t, advert(2, 100, 100));
            assert_eq!(
                armed(&actions),
                Some((TimerKind::MasterDown, t + instance.master_down_interval()))
            );
        }
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn preempt_delay_accepts_lower_master_until_it_expires() {
        // keepalived vrrp_state_backup: the delay starts at the first lower-priority advert.
        let t0 = Instant::now();
        let mut config = v3(150, 1, 100);
        config.preempt_delay = ms(5000);
        let mut instance = backup(config, t0);
        let mdi = instance.master_down_interval();
        // t0+1 s starts the delay: accepted until t0+6 s.
        for i in 1..=5u64 {
            let t = t0 + ms(1000 * i);
            let actions = instance.handle(t, advert(2, 100, 100));
            assert_eq!(armed(&actions), Some((TimerKind::MasterDown, t + mdi)));
        }
        // At t0+6 s the delay has expired: discarded, the timer from t0+5 s runs out.
        assert!(
            instance
                .handle(t0 + ms(6000), advert(2, 100, 100))
                .is_empty()
        );
        let at = instance.next_timeout().unwrap();
        assert_eq!(at, t0 + ms(5000) + mdi);
        instance.handle(at, Event::TimerFired);
        assert_eq!(instance.state(), State::Master);
    }

    #[test]
    fn preempt_delay_resets_when_master_is_not_lower() {
        let t0 = Instant::now();
        let mut config = v3(150, 1, 100);
        config.preempt_delay = ms(2500);
        let mut instance = backup(config, t0);
        instance.handle(t0 + ms(1000), advert(2, 100, 100)); // delay until t0+3.5 s
        instance.handle(t0 + ms(2000), advert(3, 200, 100)); // a higher master: delay stops
        let t = t0 + ms(4000);
        // A lower master again at t0+4 s starts a fresh delay, so it is accepted.
        let actions = instance.handle(t, advert(2, 100, 100));
        assert_eq!(
            armed(&actions),
            Some((TimerKind::MasterDown, t + instance.master_down_interval()))
        );
    }

    #[test]
    fn priority_change_moves_backup_timer_from_its_start() {
        let t0 = Instant::now();
        let mut instance = backup(v3(100, 1, 100), t0);
        let t1 = t0 + ms(400);
        instance.handle(t1, advert(2, 200, 100));
        let actions = instance.handle(
            t1 + ms(10),
            Event::PriorityChanged {
                effective_priority: 228,
            },
        );
        // Skew 28/256 s = 109.375 ms: the deadline is t1 + 3 s + skew.
        assert_eq!(
            actions,
            vec![Action::ArmTimer {
                kind: TimerKind::MasterDown,
                at: t1 + ms(3000) + Duration::from_micros(109_375)
            }]
        );
        // Clamped to 1..=254 for a non-owner (keepalived vrrp_set_effective_priority).
        instance.handle(
            t1,
            Event::PriorityChanged {
                effective_priority: 255,
            },
        );
        assert_eq!(instance.effective_priority(), 254);
        instance.handle(
            t1,
            Event::PriorityChanged {
                effective_priority: 0,
            },
        );
        assert_eq!(instance.effective_priority(), 1);
    }

    #[test]
    fn master_advertises_new_priority_on_next_advert() {
        let t0 = Instant::now();
        let (mut instance, at) = master(v3(100, 1, 100), t0);
        assert!(
            instance
                .handle(
                    at,
                    Event::PriorityChanged {
                        effective_priority: 80
                    }
                )
                .is_empty()
        );
        let actions = instance.handle(at + ms(1000), Event::TimerFired);
        assert_eq!(
            actions[0],
            Action::SendAdvert {
                priority: 80,
                adver_int_cs: 100
            }
        );
    }

    #[test]
    fn adverts_ignored_in_initialize() {
        let t0 = Instant::now();
        let mut instance = Instance::new(v3(100, 1, 100)).unwrap();
        assert!(instance.handle(t0, advert(2, 200, 100)).is_empty());
        assert!(instance.handle(t0, Event::TimerFired).is_empty());
        assert!(instance.handle(t0, Event::Shutdown).is_empty());
        assert_eq!(instance.state(), State::Initialize);
    }

    /// The transitions in `actions`, with their causes.
    fn transitions(actions: &[Action]) -> Vec<(State, State, Cause)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Notify { from, to, cause } => Some((*from, *to, cause.clone())),
                _ => None,
            })
            .collect()
    }

    /// Fires the armed timer at its deadline.
    fn fire(instance: &mut Instance) -> Vec<Action> {
        let at = instance.next_timeout().expect("a timer is armed");
        instance.handle(at, Event::TimerFired)
    }

    #[test]
    fn each_transition_carries_its_cause_v2_and_v3() {
        use State::{Backup, Fault, Initialize, Master};
        for version in [Version::V2, Version::V3] {
            let t0 = Instant::now();
            let mut config = InstanceConfig::new(7, version, 150, ip(5));
            config.advert_interval_cs = 100;
            let mut instance = Instance::new(config).unwrap();
            let at = |dt: u64| t0 + ms(dt);
            let only = |actions: Vec<Action>, from, to, cause| {
                assert_eq!(
                    transitions(&actions),
                    vec![(from, to, cause)],
                    "{version:?}"
                );
            };

            only(
                instance.handle(t0, Event::Startup),
                Initialize,
                Backup,
                Cause::Startup,
            );
            // Nobody heard since startup.
            only(
                fire(&mut instance),
                Backup,
                Master,
                Cause::MasterDown { master: None },
            );
            // A lower priority advert: we reassert, no transition.
            let actions = instance.handle(at(4000), advert(2, 100, 100));
            assert!(actions.contains(&Action::ReassertGratuitous));
            assert!(transitions(&actions).is_empty(), "{version:?}");
            // A higher priority: preempted by it.
            only(
                instance.handle(at(4100), advert(2, 200, 100)),
                Master,
                Backup,
                Cause::PreemptedBy {
                    master: ip(2),
                    priority: 200,
                    ours: 150,
                },
            );
            // Then it goes silent: the master down timer names it.
            only(
                fire(&mut instance),
                Backup,
                Master,
                Cause::MasterDown {
                    master: Some(ip(2)),
                },
            );
            // Equal priority from a greater address also preempts us (RFC 5798 §6.4.3).
            only(
                instance.handle(at(9000), advert(9, 150, 100)),
                Master,
                Backup,
                Cause::PreemptedBy {
                    master: ip(9),
                    priority: 150,
                    ours: 150,
                },
            );
            // It resigns: Skew_Time, not a master down timer.
            instance.handle(at(9100), advert(9, 0, 100));
            only(
                fire(&mut instance),
                Backup,
                Master,
                Cause::MasterResigned { master: ip(9) },
            );
            only(
                instance.handle(at(10_000), Event::InterfaceDown),
                Master,
                Fault,
                Cause::Fault,
            );
            only(
                instance.handle(at(10_100), Event::InterfaceUp),
                Fault,
                Backup,
                Cause::FaultCleared,
            );
            // A lower-priority master is discarded and preempted when the timer fires.
            assert!(
                instance.handle(at(10_200), advert(2, 100, 100)).is_empty(),
                "{version:?}"
            );
            only(
                fire(&mut instance),
                Backup,
                Master,
                Cause::Preempting {
                    master: ip(2),
                    priority: 100,
                    ours: 150,
                },
            );
            only(
                instance.handle(at(20_000), Event::Shutdown),
                Master,
                Initialize,
                Cause::Shutdown,
            );
            // A backup in fault, and a backup shutting down.
            instance.handle(at(20_100), Event::Startup);
            only(
                instance.handle(at(20_200), Event::InterfaceDown),
                Backup,
                Fault,
                Cause::Fault,
            );
            only(
                instance.handle(at(20_300), Event::Shutdown),
                Fault,
                Initialize,
                Cause::Shutdown,
            );
        }
    }

    #[test]
    fn the_address_owner_starts_and_recovers_as_master_with_its_cause() {
        let t0 = Instant::now();
        let mut instance = Instance::new(v3(255, 1, 100)).unwrap();
        let actions = instance.handle(t0, Event::Startup);
        assert_eq!(
            transitions(&actions),
            vec![(State::Initialize, State::Master, Cause::Startup)]
        );
        instance.handle(t0 + ms(10), Event::InterfaceDown);
        let actions = instance.handle(t0 + ms(20), Event::InterfaceUp);
        assert_eq!(
            transitions(&actions),
            vec![(State::Fault, State::Master, Cause::FaultCleared)]
        );
        // Down before startup: it starts in Fault, for the startup.
        let mut instance = Instance::new(v3(100, 1, 100)).unwrap();
        instance.handle(t0, Event::InterfaceDown);
        let actions = instance.handle(t0, Event::Startup);
        assert_eq!(
            transitions(&actions),
            vec![(State::Initialize, State::Fault, Cause::Startup)]
        );
    }

    #[test]
    fn a_preemption_is_told_from_a_master_down() {
        let t0 = Instant::now();
        // The lower master is accepted during preempt_delay: when it dies, that is a master
        // down, not a preemption.
        let mut config = v3(150, 1, 100);
        config.preempt_delay = ms(60_000);
        let mut instance = backup(config, t0);
        instance.handle(t0 + ms(100), advert(2, 100, 100));
        assert_eq!(
            transitions(&fire(&mut instance)),
            vec![(
                State::Backup,
                State::Master,
                Cause::MasterDown {
                    master: Some(ip(2))
                }
            )]
        );
        // Our priority fell below the master we were about to preempt: not a preemption.
        let mut instance = backup(v3(150, 1, 100), t0);
        instance.handle(t0 + ms(100), advert(2, 100, 100));
        instance.handle(
            t0 + ms(200),
            Event::PriorityChanged {
                effective_priority: 90,
            },
        );
        assert_eq!(
            transitions(&fire(&mut instance)),
            vec![(
                State::Backup,
                State::Master,
                Cause::MasterDown { master: None }
            )]
        );
        // A higher master heard after the lower one: accepted, the preemption is forgotten.
        let mut instance = backup(v3(150, 1, 100), t0);
        instance.handle(t0 + ms(100), advert(2, 100, 100));
        instance.handle(t0 + ms(200), advert(3, 200, 100));
        assert_eq!(
            transitions(&fire(&mut instance)),
            vec![(
                State::Backup,
                State::Master,
                Cause::MasterDown {
                    master: Some(ip(3))
                }
            )]
        );
    }

    #[test]
    fn cause_texts() {
        let other: IpAddr = "198.18.0.1".parse().unwrap();
        for (cause, text) in [
            (Cause::Startup, "startup"),
            (Cause::Shutdown, "shutdown"),
            (
                Cause::MasterDown { master: None },
                "master down timer expired (no advert from the master)",
            ),
            (
                Cause::MasterDown {
                    master: Some(other),
                },
                "master down timer expired (no advert from 198.18.0.1)",
            ),
            // The example: a preemption says so and names the master it replaced.
            (
                Cause::Preempting {
                    master: other,
                    priority: 150,
                    ours: 200,
                },
                "preempting 198.18.0.1, priority 150 < 200",
            ),
            (
                Cause::MasterResigned { master: other },
                "skew time expired after the master resigned (priority 0)",
            ),
            (
                Cause::PreemptedBy {
                    master: other,
                    priority: 200,
                    ours: 150,
                },
                "preempted by 198.18.0.1, priority 200 > 150",
            ),
            (
                Cause::PreemptedBy {
                    master: other,
                    priority: 150,
                    ours: 150,
                },
                "preempted by 198.18.0.1, priority 150 = 150 from a greater address",
            ),
            (Cause::Fault, "fault (interface down or a tracker in fault)"),
            (
                Cause::FaultCleared,
                "fault cleared (interface up, trackers up)",
            ),
        ] {
            assert_eq!(cause.to_string(), text);
            assert_eq!(cause.display_with(|_| "unused"), text);
        }
        let moved = Cause::SyncGroup {
            member: 1,
            cause: Box::new(Cause::Fault),
        };
        assert_eq!(
            moved.to_string(),
            "sync group: fault (interface down or a tracker in fault) on member 1"
        );
        assert_eq!(
            moved.display_with(|m| ["VI_A", "VI_B"][m]),
            "sync group: fault (interface down or a tracker in fault) on VI_B"
        );
    }

    proptest! {
        /// `next_timeout` is what a driver mirroring ArmTimer/CancelTimer would hold (the runtime
        /// drops its copy when it delivers a due timer, as here), whatever the event sequence.
        #[test]
        fn next_timeout_matches_the_timer_actions(
            events in proptest::collection::vec((0u8..8, 0u8..=255, 1u8..5, 0u64..3000), 1..60),
            owner in any::<bool>(),
            v2 in any::<bool>(),
        ) {
            let t0 = Instant::now();
            let mut config = v3(if owner { 255 } else { 100 }, 5, 100);
            if v2 {
                config.version = Version::V2;
            }
            let mut instance = Instance::new(config).unwrap();
            let mut mirror: Option<Instant> = None;
            let mut now = t0;
            for (kind, priority, src, dt) in events {
                now += ms(dt);
                let event = match kind {
                    0 => Event::Startup,
                    1 => Event::Shutdown,
                    2 | 3 => advert(src * 2, priority, 100),
                    4 => Event::TimerFired,
                    5 => Event::PriorityChanged { effective_priority: priority },
                    6 => Event::InterfaceDown,
                    _ => Event::InterfaceUp,
                };
                if kind == 4 && let Some(at) = mirror {
                    now = now.max(at);
                    mirror = None;
                }
                for action in instance.handle(now, event) {
                    match action {
                        Action::ArmTimer { at, .. } => mirror = Some(at),
                        Action::CancelTimer => mirror = None,
                        _ => {}
                    }
                }
                prop_assert_eq!(instance.next_timeout(), mirror);
            }
        }

        /// Skew is never zero, grows as priority falls, and Master_Down_Interval exceeds
        /// down_timer_adverts intervals by exactly the skew.
        #[test]
        fn skew_and_master_down_arithmetic(
            priority in 1u8..=255,
            cs in 1u16..=V3_MAX_ADVER_INT_CS,
            dta in 1u8..=MAX_DOWN_TIMER_ADVERTS,
        ) {
            for version in [Version::V2, Version::V3] {
                let skew = skew_time(version, priority, cs);
                prop_assert!(skew > Duration::ZERO);
                if priority > 1 {
                    prop_assert!(skew_time(version, priority - 1, cs) > skew);
                }
                let mdi = master_down_interval(version, priority, cs, dta);
                prop_assert_eq!(mdi, cs_to_duration(cs) * u32::from(dta) + skew);
            }
            // v3 skew is the exact rational (256 - p) * cs * 10 ms / 256, floored to a ns.
            let exact = (256 - u128::from(priority)) * u128::from(cs) * 10_000_000;
            prop_assert_eq!(skew_time(Version::V3, priority, cs).as_nanos(), exact / 256);
            prop_assert!(skew_time(Version::V3, priority, cs) < cs_to_duration(cs));
        }

        /// Whatever the event sequence: outside Master the last fence/VIP actions leave the
        /// VIPs fenced and removed, in Master added and unfenced, and a timer is armed exactly
        /// in Backup and Master.
        #[test]
        fn fence_and_vips_follow_the_state(
            events in proptest::collection::vec((0u8..8, 0u8..=255, 1u8..5, 0u64..3000), 1..60),
            owner in any::<bool>(),
        ) {
            let t0 = Instant::now();
            let mut instance = Instance::new(v3(if owner { 255 } else { 100 }, 5, 100)).unwrap();
            let (mut fenced, mut vips) = (true, false);
            let mut now = t0;
            for (kind, priority, src, dt) in events {
                now += ms(dt);
                let event = match kind {
                    0 => Event::Startup,
                    1 => Event::Shutdown,
                    2 | 3 => advert(src * 2, priority, 100),
                    4 => Event::TimerFired,
                    5 => Event::PriorityChanged { effective_priority: priority },
                    6 => Event::InterfaceDown,
                    _ => Event::InterfaceUp,
                };
                let event = if kind == 4 {
                    match instance.next_timeout() {
                        Some(at) => { now = now.max(at); event }
                        None => event,
                    }
                } else { event };
                for action in instance.handle(now, event) {
                    match action {
                        Action::Fence => fenced = true,
                        Action::Unfence => { prop_assert!(vips, "unfence before AddVips"); fenced = false }
                        Action::AddVips => { prop_assert!(fenced, "AddVips while unfenced"); vips = true }
                        Action::RemoveVips => { prop_assert!(fenced, "RemoveVips before Fence"); vips = false }
                        Action::SendGratuitous => prop_assert!(vips && !fenced),
                        _ => {}
                    }
                }
                match instance.state() {
                    State::Master => {
                        prop_assert!(vips && !fenced);
                        prop_assert_eq!(instance.timer().map(|t| t.0), Some(TimerKind::Advert));
                    }
                    State::Backup => {
                        prop_assert!(fenced && !vips);
                        prop_assert_eq!(instance.timer().map(|t| t.0), Some(TimerKind::MasterDown));
                    }
                    State::Fault => {
                        prop_assert!(fenced && !vips);
                        prop_assert!(instance.timer().is_none());
                    }
                    State::Initialize => prop_assert!(fenced && !vips),
                }
            }
        }
    }
}

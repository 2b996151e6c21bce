//! keepalived's `vrrp_sync_group`: instances that move together (keepalived vrrp_sync.c and the
//! `VRRP_TSM` table of vrrp_scheduler.c), sans-IO like [`Instance`].
//!
//! - A member becoming Master takes the others to Master at once (`vrrp_sync_master`); a member
//!   may only become Master when the group already is, or every other member wants to be
//!   (`vrrp_sync_can_goto_master`): until then it stays Backup, wanting Master.
//! - A Master member stepping down to Backup takes the others to Backup (`vrrp_sync_backup`).
//! - A member going to Fault takes the others to Fault (`vrrp_sync_fault`); the group leaves
//!   Fault, to Backup, only once no member has a fault of its own (`try_up_instance`'s
//!   `num_member_fault`).
//!
//! One deliberate difference: keepalived's `vrrp_sync_master` sends each member through
//! `vrrp_state_goto_master`, which re-checks `vrrp_sync_can_goto_master` against members not yet
//! marked, so with three or more members one can be left in Backup; here every member not yet
//! Master is moved unconditionally.

use std::time::Instant;

use super::instance::{Action, Cause, Event, Instance, State, SyncGates};

/// Output of [`SyncGroup::handle`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupAction {
    /// An action of one member (index into the group).
    Member { member: usize, action: Action },
    /// The group changed state: run the group's notify scripts.
    Notify { from: State, to: State },
}

/// A sync group owning its member instances.
#[derive(Clone, Debug)]
pub struct SyncGroup {
    members: Vec<Instance>,
    state: State,
}

impl SyncGroup {
    /// The group starts Backup, or Master when every member is an address owner starting as
    /// Master (keepalived `vrrp_sync_set_group`).
    pub fn new(members: Vec<Instance>) -> Self {
        let all_owners = !members.is_empty()
            && members.iter().all(|m| {
                m.config().priority == super::instance::PRIORITY_OWNER && m.wants_master()
            });
        Self {
            members,
            state: if all_owners {
                State::Master
            } else {
                State::Backup
            },
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn members(&self) -> &[Instance] {
        &self.members
    }

    pub fn member(&self, member: usize) -> &Instance {
        &self.members[member]
    }

    /// A member, for a reload's in-place change ([`Instance::reconfigure`]).
    pub fn member_mut(&mut self, member: usize) -> &mut Instance {
        &mut self.members[member]
    }

    /// [`Instance::delay_start`] for every member.
    pub fn delay_start(&mut self, until: Instant) {
        for m in &mut self.members {
            m.delay_start(until);
        }
    }

    /// The earliest deadline of the members' timers: when the driver must next feed
    /// [`Event::TimerFired`] to one of them ([`Instance::next_timeout`] says which).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.members.iter().filter_map(Instance::next_timeout).min()
    }

    /// Delivers `event` to `member`, then moves the other members as keepalived's sync
    /// handlers would. Panics if `member` is out of range.
    pub fn handle(&mut self, now: Instant, member: usize, event: Event) -> Vec<GroupAction> {
        let mut out = Vec::new();
        let gates = self.gates_for(member);
        let instance = &mut self.members[member];
        instance.set_sync_gates(gates);
        let prev = instance.state();
        let mut actions = Vec::new();
        instance.handle_into(now, event, &mut actions);
        let new = instance.state();
        // The others move for the member's own transition, and say so.
        let cause = actions.iter().find_map(|action| match action {
            Action::Notify { cause, .. } => Some(Cause::SyncGroup {
                member,
                cause: Box::new(cause.clone()),
            }),
            _ => None,
        });
        push_member(&mut out, member, actions);

        // keepalived VRRP_TSM (B→M, F→M: vrrp_sync_master; M→B: vrrp_sync_backup) plus the
        // fault handlers called from down_instance / try_up_instance.
        if let Some(cause) = cause {
            match (prev, new) {
                (p, State::Master) if p != State::Master => {
                    self.sync_master(now, member, cause, &mut out)
                }
                (State::Master | State::Fault, State::Backup) => {
                    self.sync_backup(now, member, cause, &mut out)
                }
                (p, State::Fault) if p != State::Fault => self.sync_fault(member, cause, &mut out),
                _ => {}
            }
        }
        out
    }

    /// Delivers the same event to every member in turn (Startup, Shutdown). The group says
    /// its own state as keepalived does: at Startup, Backup (or Fault) before its members
    /// (`vrrp_init_state`); at Shutdown, STOP after them (`notify_shutdown`).
    pub fn handle_all(&mut self, now: Instant, event: Event) -> Vec<GroupAction> {
        let mut out = Vec::new();
        if matches!(event, Event::Startup) && matches!(self.state, State::Backup | State::Fault) {
            out.push(GroupAction::Notify {
                from: State::Initialize,
                to: self.state,
            });
        }
        for member in 0..self.members.len() {
            out.extend(self.handle(now, member, event));
        }
        if matches!(event, Event::Shutdown) {
            self.set_state(State::Initialize, &mut out);
        }
        out
    }

    fn gates_for(&self, member: usize) -> SyncGates {
        let others = || {
            self.members
                .iter()
                .enumerate()
                .filter(move |(i, _)| *i != member)
                .map(|(_, m)| m)
        };
        SyncGates {
            may_become_master: self.state == State::Master || others().all(|m| m.wants_master()),
            hold_fault: others().any(|m| !m.link_up()),
        }
    }

    fn sync_master(
        &mut self,
        now: Instant,
        member: usize,
        cause: Cause,
        out: &mut Vec<GroupAction>,
    ) {
        if self.state == State::Master {
            return;
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != member && m.state() != State::Master {
                let mut actions = Vec::new();
                m.force_master(now, cause.clone(), &mut actions);
                push_member(out, i, actions);
            }
        }
        self.set_state(State::Master, out);
    }

    fn sync_backup(
        &mut self,
        now: Instant,
        member: usize,
        cause: Cause,
        out: &mut Vec<GroupAction>,
    ) {
        if self.state == State::Backup {
            return;
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != member && m.state() != State::Backup {
                let mut actions = Vec::new();
                m.force_backup(now, cause.clone(), &mut actions);
                push_member(out, i, actions);
            }
        }
        self.set_state(State::Backup, out);
    }

    fn sync_fault(&mut self, member: usize, cause: Cause, out: &mut Vec<GroupAction>) {
        if self.state == State::Fault {
            return;
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != member && m.state() != State::Fault {
                let mut actions = Vec::new();
                m.force_fault(cause.clone(), &mut actions);
                push_member(out, i, actions);
            }
        }
        self.set_state(State::Fault, out);
    }

    fn set_state(&mut self, to: State, out: &mut Vec<GroupAction>) {
        if self.state != to {
            out.push(GroupAction::Notify {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }
}

fn push_member(out: &mut Vec<GroupAction>, member: usize, actions: Vec<Action>) {
    out.extend(
        actions
            .into_iter()
            .map(|action| GroupAction::Member { member, action }),
    );
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::vrrp::instance::{InstanceConfig, TimerKind, Version};

    fn member(vrid: u8, priority: u8) -> Instance {
        let mut config = InstanceConfig::new(
            vrid,
            Version::V3,
            priority,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        );
        config.advert_interval_cs = 100;
        Instance::new(config).unwrap()
    }

    fn advert(priority: u8) -> Event {
        Event::Advert {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            priority,
            max_adver_int_cs: 100,
        }
    }

    fn states(group: &SyncGroup) -> Vec<State> {
        group.members().iter().map(Instance::state).collect()
    }

    fn fire(group: &mut SyncGroup, member: usize) -> Vec<GroupAction> {
        let at = group.member(member).next_timeout().unwrap();
        group.handle(at, member, Event::TimerFired)
    }

    fn started(priorities: &[u8], t0: Instant) -> SyncGroup {
        let members = priorities
            .iter()
            .enumerate()
            .map(|(i, p)| member(i as u8 + 1, *p))
            .collect();
        let mut group = SyncGroup::new(members);
        group.handle_all(t0, Event::Startup);
        group
    }

    #[test]
    fn member_held_in_backup_until_all_want_master() {
        let t0 = Instant::now();
        let mut group = started(&[100, 100], t0);
        // Member 1 still hears its master: member 0's timeout must not make it master alone.
        group.handle(t0 + Duration::from_millis(500), 1, advert(200));
        fire(&mut group, 0);
        assert_eq!(states(&group), vec![State::Backup, State::Backup]);
        assert!(group.member(0).wants_master());
        assert_eq!(
            group.member(0).timer().unwrap().0,
            TimerKind::MasterDown,
            "held member re-arms its Master_Down_Timer"
        );
        // Member 1 times out too: both go master together, the group notifies once.
        let out = fire(&mut group, 1);
        assert_eq!(states(&group), vec![State::Master, State::Master]);
        assert_eq!(group.state(), State::Master);
        let notifies: Vec<_> = out
            .iter()
            .filter(|a| matches!(a, GroupAction::Notify { .. }))
            .collect();
        assert_eq!(
            notifies,
            vec![&GroupAction::Notify {
                from: State::Backup,
                to: State::Master
            }]
        );
        assert!(out.contains(&GroupAction::Member {
            member: 0,
            action: Action::AddVips
        }));
    }

    #[test]
    fn one_member_stepping_down_takes_the_group_to_backup() {
        let t0 = Instant::now();
        let mut group = started(&[100, 100, 100], t0);
        fire(&mut group, 0);
        fire(&mut group, 1);
        assert_eq!(
            states(&group),
            vec![State::Backup, State::Backup, State::Backup]
        );
        fire(&mut group, 2);
        // All three at once (keepalived's one-at-a-time marking could leave one behind).
        assert_eq!(states(&group), vec![State::Master; 3]);
        let t = group.member(2).next_timeout().unwrap();
        let out = group.handle(t, 1, advert(150));
        assert_eq!(states(&group), vec![State::Backup; 3]);
        assert_eq!(group.state(), State::Backup);
        // Each former master hands over: the preempted one has heard its successor, the
        // others wait for theirs.
        for m in 0..3 {
            assert!(out.contains(&GroupAction::Member {
                member: m,
                action: Action::HandOver {
                    successor_heard: m == 1,
                },
            }));
        }
    }

    #[test]
    fn fault_of_one_member_faults_the_group_until_it_recovers() {
        let t0 = Instant::now();
        let mut group = started(&[100, 100], t0);
        fire(&mut group, 0);
        fire(&mut group, 1);
        assert_eq!(group.state(), State::Master);
        let t1 = t0 + Duration::from_secs(10);
        let out = group.handle(t1, 0, Event::InterfaceDown);
        assert_eq!(states(&group), vec![State::Fault, State::Fault]);
        assert_eq!(group.state(), State::Fault);
        // The healthy member resigned with priority 0 too.
        assert!(out.contains(&GroupAction::Member {
            member: 1,
            action: Action::SendAdvert {
                priority: 0,
                adver_int_cs: 100
            }
        }));
        // A second fault, then the first clears: still Fault (num_member_fault).
        group.handle(t1, 1, Event::InterfaceDown);
        group.handle(t1, 0, Event::InterfaceUp);
        assert_eq!(states(&group), vec![State::Fault, State::Fault]);
        // The last clears: the whole group comes up as Backup.
        group.handle(t1, 1, Event::InterfaceUp);
        assert_eq!(states(&group), vec![State::Backup, State::Backup]);
        assert_eq!(group.state(), State::Backup);
        assert!(group.members().iter().all(|m| m.timer().is_some()));
    }

    #[test]
    fn member_down_at_startup_holds_the_group_in_fault() {
        let t0 = Instant::now();
        let mut group = SyncGroup::new(vec![member(1, 100), member(2, 100)]);
        group.handle(t0, 1, Event::InterfaceDown);
        group.handle_all(t0, Event::Startup);
        assert_eq!(states(&group), vec![State::Fault, State::Fault]);
        group.handle(t0, 1, Event::InterfaceUp);
        assert_eq!(states(&group), vec![State::Backup, State::Backup]);
    }

    #[test]
    fn address_owners_start_master_together() {
        let t0 = Instant::now();
        let group = started(&[255, 255], t0);
        assert_eq!(states(&group), vec![State::Master, State::Master]);
        // A group with a non-owner starts Backup, the owner waits one interval (+ minimal skew).
        let group = started(&[255, 100], t0);
        assert_eq!(states(&group), vec![State::Backup, State::Backup]);
        assert_eq!(
            group.member(0).next_timeout(),
            Some(t0 + Duration::from_secs(1) + Duration::from_nanos(3_906_250))
        );
    }

    /// The transitions of `member` in `out`, with their causes.
    fn transitions_of(out: &[GroupAction], member: usize) -> Vec<(State, State, Cause)> {
        out.iter()
            .filter_map(|a| match a {
                GroupAction::Member {
                    member: m,
                    action: Action::Notify { from, to, cause },
                } if *m == member => Some((*from, *to, cause.clone())),
                _ => None,
            })
            .collect()
    }

    fn moved_by(member: usize, cause: Cause) -> Cause {
        Cause::SyncGroup {
            member,
            cause: Box::new(cause),
        }
    }

    #[test]
    fn members_moved_by_another_carry_its_index_and_cause() {
        let t0 = Instant::now();
        let mut group = started(&[100, 100], t0);
        fire(&mut group, 0);
        // Member 1's timer takes both to Master: member 1 for its own reason, member 0 for
        // member 1's.
        let out = fire(&mut group, 1);
        let down = Cause::MasterDown { master: None };
        assert_eq!(
            transitions_of(&out, 1),
            vec![(State::Backup, State::Master, down.clone())]
        );
        assert_eq!(
            transitions_of(&out, 0),
            vec![(State::Backup, State::Master, moved_by(1, down))]
        );
        // A higher priority on member 0 takes member 1 to Backup.
        let t1 = t0 + Duration::from_secs(10);
        let out = group.handle(t1, 0, advert(150));
        let preempted = Cause::PreemptedBy {
            master: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            priority: 150,
            ours: 100,
        };
        assert_eq!(
            transitions_of(&out, 1),
            vec![(State::Master, State::Backup, moved_by(0, preempted))]
        );
        // A fault on member 1 faults member 0; its recovery brings member 0 back.
        let out = group.handle(t1, 1, Event::InterfaceDown);
        assert_eq!(
            transitions_of(&out, 0),
            vec![(State::Backup, State::Fault, moved_by(1, Cause::Fault))]
        );
        let out = group.handle(t1, 1, Event::InterfaceUp);
        assert_eq!(
            transitions_of(&out, 1),
            vec![(State::Fault, State::Backup, Cause::FaultCleared)]
        );
        assert_eq!(
            transitions_of(&out, 0),
            vec![(
                State::Fault,
                State::Backup,
                moved_by(1, Cause::FaultCleared)
            )]
        );
        // Shutdown reaches every member itself.
        let out = group.handle_all(t1, Event::Shutdown);
        for m in 0..2 {
            assert_eq!(
                transitions_of(&out, m),
                vec![(State::Backup, State::Initialize, Cause::Shutdown)]
            );
        }
    }

    proptest! {
        /// Each member's `next_timeout` is what a driver mirroring its ArmTimer/CancelTimer
        /// actions would hold, and the group's is the earliest of them.
        #[test]
        fn next_timeout_matches_the_timer_actions(
            events in proptest::collection::vec((0usize..3, 0u8..8, 0u8..=255, 0u64..3000), 1..60),
        ) {
            let t0 = Instant::now();
            let mut group = SyncGroup::new(vec![member(1, 100), member(2, 150), member(3, 255)]);
            let mut mirror: Vec<Option<Instant>> = vec![None; 3];
            let mut now = t0;
            for (m, kind, priority, dt) in events {
                now += Duration::from_millis(dt);
                let event = match kind {
                    0 => Event::Startup,
                    1 => Event::Shutdown,
                    2 | 3 => advert(priority),
                    4 => Event::TimerFired,
                    5 => Event::PriorityChanged { effective_priority: priority },
                    6 => Event::InterfaceDown,
                    _ => Event::InterfaceUp,
                };
                if kind == 4 && let Some(at) = mirror[m] {
                    now = now.max(at);
                    mirror[m] = None;
                }
                let out = if kind <= 1 {
                    group.handle_all(now, event)
                } else {
                    group.handle(now, m, event)
                };
                for action in out {
                    match action {
                        GroupAction::Member { member, action: Action::ArmTimer { at, .. } } => {
                            mirror[member] = Some(at)
                        }
                        GroupAction::Member { member, action: Action::CancelTimer } => {
                            mirror[member] = None
                        }
                        _ => {}
                    }
                }
                for (i, armed) in mirror.iter().enumerate() {
                    prop_assert_eq!(group.member(i).next_timeout(), *armed);
                }
                prop_assert_eq!(group.next_timeout(), mirror.iter().flatten().min().copied());
            }
        }
    }
}

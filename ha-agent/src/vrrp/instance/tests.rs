//! The state machine fed typed inputs: every transition, action and cause it must make.

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
fn startup_delay_holds_the_master_down_timer() {
    let t0 = Instant::now();
    let hold = t0 + Duration::from_secs(5);
    let mut instance = Instance::new(v3(100, 1, 100)).unwrap();
    instance.delay_start(hold);
    let out = instance.handle(t0, Event::Startup);
    assert_eq!(instance.state(), State::Backup);
    // keepalived vrrp_init_instance_sands: counted from the end of the delay, not from now.
    let down = instance.master_down_interval();
    assert_eq!(armed(&out), Some((TimerKind::MasterDown, hold + down)));
    assert_eq!(instance.next_timeout(), Some(hold + down));
    // An advert within the delay re-arms from the delay's end too.
    let out = instance.handle(t0 + ms(100), advert(2, 150, 100));
    assert_eq!(armed(&out), Some((TimerKind::MasterDown, hold + down)));
    // Priority 0 is not held: the master resigned, take over after the skew.
    let out = instance.handle(t0 + ms(200), advert(2, 0, 100));
    let skew = instance.skew_time();
    assert_eq!(
        armed(&out),
        Some((TimerKind::MasterDown, t0 + ms(200) + skew))
    );
    // After the delay, from the advert as usual.
    let late = hold + ms(10);
    let out = instance.handle(late, advert(2, 150, 100));
    assert_eq!(armed(&out), Some((TimerKind::MasterDown, late + down)));
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
fn master_shutdown_hands_over_then_sends_priority_zero() {
    let t0 = Instant::now();
    let (mut instance, at) = master(v3(100, 1, 100), t0);
    let actions = instance.handle(at + ms(1), Event::Shutdown);
    // Quiet before priority 0 (no ARP answer from us once a backup may take over); the VIPs
    // stay until the successor is heard: no Fence, no RemoveVips here.
    assert_eq!(
        actions,
        vec![
            Action::HandOver {
                successor_heard: false
            },
            Action::SendAdvert {
                priority: 0,
                adver_int_cs: 100
            },
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
        // A planned handover: the preempting advert is the successor's, heard already.
        let mut actions = vec![Action::HandOver {
            successor_heard: true,
        }];
        if advert_first {
            // higher_prio_send_advert: our own priority, once, quiet already.
            actions.push(Action::SendAdvert {
                priority: 100,
                adver_int_cs: 100,
            });
        }
        actions.extend([
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
    assert_eq!(
        actions,
        vec![Action::ReassertGratuitous, Action::HeardLowerPriority]
    );
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
            Action::HeardLowerPriority,
        ]
    );
    // Equal priority from a lower address is lower too (RFC 5798 §6.4.3).
    let t2 = t1 + ms(10);
    let actions = instance.handle(t2, advert(0, 100, 100));
    assert!(actions.ends_with(&[Action::ReassertGratuitous, Action::HeardLowerPriority]));
    // Our own advert looped back, priority 0 or a higher priority: no reassertion GARPs.
    let (mut instance, at) = master(v3(100, 1, 100), t0);
    let t1 = at + ms(10);
    for (src, prio) in [(1, 100), (2, 0)] {
        let actions = instance.handle(t1, advert(src, prio, 100));
        assert!(
            !actions.contains(&Action::ReassertGratuitous)
                && !actions.contains(&Action::HeardLowerPriority),
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
            // The notify hook still runs: it is no gratuitous ARP.
            Action::HeardLowerPriority,
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
                    // What the driver ends a handover with: the VIPs fenced and removed.
                    Action::HandOver { .. } => { prop_assert!(vips && !fenced, "hand-over of VIPs not held"); fenced = true; vips = false }
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

#[test]
fn reconfigured_master_stays_master_and_advertises_the_new_priority_at_once() {
    let t0 = Instant::now();
    let (mut m, at) = master(v3(200, 1, 5), t0);
    let mut changed = v3(190, 1, 10);
    changed.preempt = false;
    let now = at + ms(7);
    m.reconfigure(now, changed).unwrap();
    let out = m.handle(
        now,
        Event::PriorityChanged {
            effective_priority: 190,
        },
    );
    assert!(
        out.is_empty(),
        "a priority still above the peer's changes nothing: {out:?}"
    );
    assert_eq!(m.state(), State::Master);
    assert_eq!(
        m.next_timeout(),
        Some(now),
        "the change is advertised at once"
    );
    let out = m.handle(now, Event::TimerFired);
    assert!(
        out.contains(&Action::SendAdvert {
            priority: 190,
            adver_int_cs: 10
        }),
        "{out:?}"
    );
    assert_eq!(armed(&out), Some((TimerKind::Advert, now + ms(100))));
    // Lowered below a preempting peer: it steps down the normal way, on the peer's advert.
    let out = m.handle(now + ms(1), advert(2, 195, 10));
    assert_eq!(m.state(), State::Backup, "{out:?}");
}

#[test]
fn reconfigured_backup_keeps_its_master_and_timer() {
    let t0 = Instant::now();
    let mut b = backup(v3(100, 1, 5), t0);
    b.handle(t0 + ms(10), advert(2, 200, 5));
    let timer = b.next_timeout();
    b.reconfigure(t0 + ms(11), v3(110, 1, 5)).unwrap();
    assert_eq!(b.state(), State::Backup);
    assert_eq!(b.master(), Some((ip(2), 200)));
    assert_eq!(
        b.next_timeout(),
        timer,
        "no timer restarts without a priority change"
    );
    assert!(
        b.reconfigure(t0 + ms(12), v3(110, 1, 0)).is_err(),
        "an invalid interval is refused"
    );
}

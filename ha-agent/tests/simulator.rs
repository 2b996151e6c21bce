//! The VRRP state machine on a simulated LAN: property tests over random fault sequences and
//! scenario tests per rule. Everything is deterministic from a seed.
//!
//! `SIM_CASES=n` runs n random seeds (default 500), `SIM_SEED=s` replays one seed,
//! `SIM_BASE_SEED=b` shifts the seed range.

mod sim;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ha_agent::vrrp::instance::{InitialState, InstanceConfig, State, Version};
use sim::lan::{Fault, LinkParams, NodeSpec, Sim, node_address};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be an integer, got {v:?}"))
    })
}

#[test]
fn random_fault_sequences() {
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let base = env_u64("SIM_BASE_SEED").unwrap_or(0);
            let cases = env_u64("SIM_CASES").unwrap_or(500);
            (base..base + cases).collect()
        }
    };
    let started = Instant::now();
    let (mut events, mut adverts, mut lost, mut transitions) = (0, 0, 0, 0);
    let (mut incumbents, mut nopreempt) = (0, 0);
    for &seed in &seeds {
        match sim::scenario::run(seed) {
            Ok(stats) => {
                events += stats.events;
                adverts += stats.adverts_sent;
                lost += stats.adverts_lost;
                transitions += stats.transitions;
                incumbents += stats.incumbent_checks;
                nopreempt += stats.nopreempt_checks;
            }
            Err(report) => panic!("{report}"),
        }
    }
    eprintln!(
        "{} seeds: {events} events, {adverts} adverts ({lost} lost), {transitions} transitions, \
         {incumbents} incumbents kept ({nopreempt} under a nopreempt backup) in {:?}",
        seeds.len(),
        started.elapsed()
    );
}

// ----- scenarios -----

const DELAY: Duration = Duration::from_micros(200);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(vrid: u8, version: Version, priority: u8, addr: u8, interval_cs: u16) -> InstanceConfig {
    let mut c = InstanceConfig::new(vrid, version, priority, node_address(addr, false));
    c.advert_interval_cs = interval_cs;
    c.vips = vec![node_address(200, false)];
    c
}

fn single(configs: Vec<InstanceConfig>) -> Vec<NodeSpec> {
    configs
        .into_iter()
        .map(|c| NodeSpec {
            instances: vec![c],
            sync_group: false,
        })
        .collect()
}

fn sim(specs: Vec<NodeSpec>) -> Sim {
    let n = specs.len();
    Sim::new(1, specs, LinkParams::uniform(n, DELAY))
}

fn assert_clean(sim: &Sim) {
    assert!(
        sim.violations.is_empty(),
        "{:#?}\n{}",
        sim.violations,
        sim.trace()
    );
    if let Err(e) = sim.check_converged() {
        panic!("{e}\n{}", sim.trace());
    }
}

fn last(v: Vec<Duration>) -> Duration {
    *v.last().expect("transition happened")
}

#[test]
fn equal_priority_simultaneous_start_highest_address_wins() {
    for (a, b) in [(10, 20), (20, 10)] {
        let mut sim = sim(single(vec![
            config(1, Version::V3, 100, a, 10),
            config(1, Version::V3, 100, b, 10),
        ]));
        sim.schedule(Duration::ZERO, Fault::Start(0));
        sim.schedule(Duration::ZERO, Fault::Start(1));
        sim.run_until(ms(2000));
        assert_clean(&sim);
        let winner = if a > b { 0 } else { 1 };
        assert_eq!(sim.masters(0), vec![winner]);
        // Both timed out together, so both were master for one advert's flight.
        assert_eq!(sim.transitions_to(1 - winner, 0, State::Master).len(), 1);
    }
}

#[test]
fn highest_priority_wins_and_master_crash_takes_master_down_interval() {
    let mut sim = sim(single(vec![
        config(1, Version::V3, 200, 1, 100),
        config(1, Version::V3, 150, 2, 100),
        config(1, Version::V3, 100, 3, 100),
    ]));
    for n in 0..3 {
        sim.schedule(Duration::ZERO, Fault::Start(n));
    }
    sim.run_until(ms(10_000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
    // Node 0 became master after exactly its Master_Down_Interval: 3 s + 56/256 s.
    assert_eq!(
        sim.transitions_to(0, 0, State::Master),
        vec![ms(3000) + Duration::from_micros(218_750)]
    );
    // Crash the master between adverts (sent at 3.21875 s + k s): node 1 takes over one
    // Master_Down_Interval (3 s + 106/256 s = 3.4140625 s) after the last one it received.
    let crash = ms(10_050);
    sim.schedule(crash, Fault::Crash(0));
    sim.run_until(ms(20_000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![1]);
    let took = last(sim.transitions_to(1, 0, State::Master));
    let last_advert_rx = ms(9_000) + Duration::from_micros(218_750) + DELAY;
    assert_eq!(
        took,
        last_advert_rx + ms(3000) + Duration::from_nanos(414_062_500)
    );
}

#[test]
fn v2_one_second_master_down_is_3_609375_s() {
    let mut sim = sim(single(vec![
        config(1, Version::V2, 100, 1, 100),
        config(1, Version::V2, 50, 2, 100),
    ]));
    sim.schedule(Duration::ZERO, Fault::Start(0));
    sim.schedule(Duration::ZERO, Fault::Start(1));
    sim.run_until(ms(8000));
    assert_eq!(
        sim.transitions_to(0, 0, State::Master),
        vec![Duration::from_micros(3_609_375)]
    );
    assert_clean(&sim);
}

#[test]
fn graceful_shutdown_hands_over_after_skew_time_only() {
    let mut sim = sim(single(vec![
        config(1, Version::V3, 200, 1, 100),
        config(1, Version::V3, 100, 2, 100),
    ]));
    sim.schedule(Duration::ZERO, Fault::Start(0));
    sim.schedule(Duration::ZERO, Fault::Start(1));
    let stop = ms(7_500);
    sim.schedule(stop, Fault::Shutdown(0));
    sim.run_until(ms(12_000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![1]);
    // Skew_Time at priority 100 and 1 s: 609.375 ms after the priority 0 advert arrived.
    let took = last(sim.transitions_to(1, 0, State::Master));
    assert_eq!(took, stop + DELAY + Duration::from_micros(609_375));
}

#[test]
fn backup_learns_the_masters_advert_interval() {
    // The master advertises every 50 ms, the backup is configured for 1 s: on a crash it must
    // take over after 3 × 50 ms + skew, not 3 s.
    let mut sim = sim(single(vec![
        config(1, Version::V3, 200, 1, 5),
        config(1, Version::V3, 100, 2, 100),
    ]));
    sim.schedule(ms(0), Fault::Start(0));
    sim.schedule(ms(1), Fault::Start(1));
    sim.run_until(ms(5000));
    assert_eq!(sim.masters(0), vec![0]);
    let crash = ms(5000);
    sim.schedule(crash, Fault::Crash(0));
    sim.run_until(ms(6000));
    assert_clean(&sim);
    let took = last(sim.transitions_to(1, 0, State::Master));
    let down = ms(150) + Duration::from_nanos(156 * 50_000_000 / 256);
    assert!(took - crash <= down, "took {:?}", took - crash);
    assert!(took - crash > down - ms(50), "took {:?}", took - crash);
}

#[test]
fn preempt_and_nopreempt_after_restart() {
    for preempt in [true, false] {
        let mut high = config(1, Version::V3, 200, 1, 10);
        high.preempt = preempt;
        let mut sim = sim(single(vec![high, config(1, Version::V3, 100, 2, 10)]));
        sim.schedule(ms(0), Fault::Start(0));
        sim.schedule(ms(0), Fault::Start(1));
        sim.schedule(ms(1000), Fault::Crash(0));
        sim.schedule(ms(2000), Fault::Start(0));
        sim.run_until(ms(4000));
        assert_clean(&sim);
        let expected = if preempt { 0 } else { 1 };
        assert_eq!(sim.masters(0), vec![expected], "preempt {preempt}");
        if preempt {
            // It preempted one Master_Down_Interval after its restart (lower adverts ignored).
            let took = last(sim.transitions_to(0, 0, State::Master));
            assert_eq!(took, ms(2000) + ms(300) + Duration::from_micros(21_875));
        }
    }
}

#[test]
fn preempt_delay_holds_the_takeover() {
    let mut high = config(1, Version::V3, 200, 1, 10);
    high.preempt_delay = ms(1000);
    let mut sim = sim(single(vec![high, config(1, Version::V3, 100, 2, 10)]));
    sim.schedule(ms(0), Fault::Start(1));
    sim.schedule(ms(2000), Fault::Start(0));
    sim.run_until(ms(5000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
    let took = last(sim.transitions_to(0, 0, State::Master));
    // The first lower advert (within 100 ms of the start) opens the 1 s delay; adverts are
    // accepted until it ends, then the Master_Down_Interval from the last accepted one runs.
    assert!(took >= ms(3000), "took over at {took:?}");
    assert!(
        took <= ms(2000) + ms(100) + ms(1000) + ms(100) + ms(322),
        "{took:?}"
    );
}

#[test]
fn address_owner_starts_master_and_the_other_steps_down() {
    let mut sim = sim(single(vec![
        config(1, Version::V3, 150, 1, 10),
        config(1, Version::V3, 255, 2, 10),
    ]));
    sim.schedule(ms(0), Fault::Start(0));
    sim.schedule(ms(1000), Fault::Start(1));
    sim.run_until(ms(3000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![1]);
    assert_eq!(sim.transitions_to(1, 0, State::Master), vec![ms(1000)]);
    // The old master stepped down as soon as the owner's first advert arrived.
    let backup = sim
        .transitions
        .iter()
        .find(|t| t.node == 0 && t.from == State::Master && t.to == State::Backup);
    assert_eq!(backup.map(|t| t.at), Some(ms(1000) + DELAY));
}

#[test]
fn priority_drop_makes_a_preempting_backup_take_over() {
    let mut sim = sim(single(vec![
        config(1, Version::V3, 200, 1, 10),
        config(1, Version::V3, 150, 2, 10),
    ]));
    sim.schedule(ms(0), Fault::Start(0));
    sim.schedule(ms(0), Fault::Start(1));
    sim.schedule(
        ms(1000),
        Fault::SetPriority {
            node: 0,
            member: 0,
            priority: 90,
        },
    );
    sim.run_until(ms(2000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![1]);
    // Back up: node 0 preempts again.
    sim.schedule(
        ms(2000),
        Fault::SetPriority {
            node: 0,
            member: 0,
            priority: 200,
        },
    );
    sim.run_until(ms(3000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
}

#[test]
fn partition_gives_two_masters_and_heal_gives_one() {
    let mut sim = sim(single(vec![
        config(1, Version::V3, 200, 1, 10),
        config(1, Version::V3, 100, 2, 10),
        config(1, Version::V3, 50, 3, 10),
    ]));
    for n in 0..3 {
        sim.schedule(ms(0), Fault::Start(n));
    }
    sim.schedule(ms(1000), Fault::Partition(0b001));
    sim.run_until(ms(1500));
    assert_eq!(sim.masters(0), vec![0, 1]);
    sim.schedule(ms(1500), Fault::Heal);
    sim.run_until(ms(1600));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
}

#[test]
fn loss_burst_then_one_master() {
    let mut sim = sim(single(vec![
        config(1, Version::V3, 200, 1, 10),
        config(1, Version::V3, 100, 2, 10),
        config(1, Version::V3, 100, 3, 10),
    ]));
    for n in 0..3 {
        sim.schedule(ms(0), Fault::Start(n));
    }
    sim.schedule(ms(500), Fault::LossStart(1000));
    sim.schedule(ms(900), Fault::LossEnd(1000));
    sim.run_until(ms(900));
    assert_eq!(sim.masters(0).len(), 3, "total loss: everyone is master");
    sim.run_until(ms(1200));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
}

#[test]
fn one_way_link_loss_gives_a_second_master_until_it_ends() {
    let mut sim = sim(single(vec![
        config(1, Version::V3, 200, 1, 10),
        config(1, Version::V3, 100, 2, 10),
        config(1, Version::V3, 50, 3, 10),
    ]));
    for n in 0..3 {
        sim.schedule(ms(0), Fault::Start(n));
    }
    // Node 1 stops hearing node 0; node 2 still does, and node 0 hears node 1.
    let (from, to, permille) = (0, 1, 1000);
    sim.schedule(ms(1000), Fault::LinkLossStart { from, to, permille });
    sim.schedule(ms(1500), Fault::LinkLossEnd { from, to, permille });
    sim.run_until(ms(1500));
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    // Node 0's answers to node 1's lower adverts are lost too: two masters.
    assert_eq!(sim.masters(0), vec![0, 1]);
    assert_eq!(sim.state(2, 0), Some(State::Backup));
    sim.run_until(ms(1600));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
}

#[test]
fn sync_group_moves_together_on_the_lan() {
    // Two nodes, VRIDs 1 and 2 in one sync group on each; node 0 has the higher priority.
    let node = |priority: u8, addr: u8| NodeSpec {
        instances: vec![
            config(1, Version::V3, priority, addr, 10),
            config(2, Version::V3, priority, addr, 10),
        ],
        sync_group: true,
    };
    let mut sim = sim(vec![node(200, 1), node(100, 2)]);
    sim.schedule(ms(0), Fault::Start(0));
    sim.schedule(ms(0), Fault::Start(1));
    sim.run_until(ms(1000));
    assert_clean(&sim);
    assert_eq!((sim.masters(0), sim.masters(1)), (vec![0], vec![0]));

    // A tracker faults VRID 1 on node 0: VRID 2 follows it to Fault, node 1 takes both after
    // the priority 0 adverts' Skew_Time.
    let fault = ms(1000);
    sim.schedule(fault, Fault::MemberDown(0, 0));
    sim.run_until(ms(1500));
    assert_eq!(sim.state(0, 0), Some(State::Fault));
    assert_eq!(sim.state(0, 1), Some(State::Fault));
    assert_eq!((sim.masters(0), sim.masters(1)), (vec![1], vec![1]));
    let took = last(sim.transitions_to(1, 0, State::Master));
    assert_eq!(
        took,
        fault + DELAY + Duration::from_nanos(156 * 100_000_000 / 256),
        "{}",
        sim.trace()
    );
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);

    // It recovers: both come back as Backup, then preempt node 1 together.
    sim.schedule(ms(1500), Fault::MemberUp(0, 0));
    sim.run_until(ms(2500));
    assert_clean(&sim);
    assert_eq!((sim.masters(0), sim.masters(1)), (vec![0], vec![0]));

    // Node 1's VRID 1 alone outranks node 0: it wants Master but its group holds it in
    // Backup while VRID 2 still accepts node 0 (vrrp_sync_can_goto_master, "prefer backup
    // state to avoid thrashing").
    sim.schedule(
        ms(2500),
        Fault::SetPriority {
            node: 1,
            member: 0,
            priority: 250,
        },
    );
    sim.run_until(ms(3500));
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    assert_eq!((sim.masters(0), sim.masters(1)), (vec![0], vec![0]));
    assert_eq!(sim.state(1, 0), Some(State::Backup));

    // Once VRID 2 outranks node 0 too, both move to node 1 at once, and node 0's VRID 2 steps
    // down with its VRID 1.
    sim.schedule(
        ms(3500),
        Fault::SetPriority {
            node: 1,
            member: 1,
            priority: 250,
        },
    );
    sim.run_until(ms(4500));
    assert_clean(&sim);
    assert_eq!((sim.masters(0), sim.masters(1)), (vec![1], vec![1]));
    let up = |m| last(sim.transitions_to(1, m, State::Master));
    assert_eq!(up(0), up(1));
}

#[test]
fn state_master_hint_on_non_owner_does_not_skip_the_wait() {
    let mut hinted = config(1, Version::V3, 100, 2, 10);
    hinted.initial_state = Some(InitialState::Master);
    let mut sim = sim(single(vec![config(1, Version::V3, 200, 1, 10), hinted]));
    sim.schedule(ms(0), Fault::Start(0));
    sim.schedule(ms(500), Fault::Start(1));
    sim.run_until(ms(2000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
    assert!(sim.transitions_to(1, 0, State::Master).is_empty());
}

#[test]
fn ipv6_tie_break_compares_whole_addresses() {
    let v6 = |last: u16| -> IpAddr { format!("fe80::{last:x}:0").parse().unwrap() };
    let mut a = InstanceConfig::new(1, Version::V3, 100, v6(1));
    a.advert_interval_cs = 10;
    let mut b = InstanceConfig::new(1, Version::V3, 100, v6(2));
    b.advert_interval_cs = 10;
    let mut sim = sim(single(vec![b, a]));
    sim.schedule(ms(0), Fault::Start(0));
    sim.schedule(ms(0), Fault::Start(1));
    sim.run_until(ms(1000));
    assert_clean(&sim);
    assert_eq!(sim.masters(0), vec![0]);
}

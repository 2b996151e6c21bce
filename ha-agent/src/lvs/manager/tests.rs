//! The manager against a recording datapath: keepalived's rules, one test each.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use ha_common::lb::{
    LB_NO_REAL, LB_RING_SIZE, LbStats, RealEntry, ServiceEntry, ServiceKey, real_flags,
    service_flags,
};

use super::*;
use crate::config::{
    NotifyScript, Source,
    lvs::{
        CheckKind, Checker, LbAlgo, LbKind, Lvs, Protocol, RealServer, SorryServer, VirtualServer,
    },
};

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Service(ServiceKey, ServiceEntry),
    Remove(ServiceKey),
    Real(u32, RealEntry),
    Ring(u32),
}

#[derive(Default)]
struct Fake {
    calls: Vec<Call>,
    services: HashMap<ServiceKey, ServiceEntry>,
    reals: HashMap<u32, RealEntry>,
    rings: HashMap<u32, Vec<u32>>,
}

impl LbDatapath for Fake {
    fn set_service(&mut self, key: ServiceKey, entry: ServiceEntry) -> anyhow::Result<()> {
        self.calls.push(Call::Service(key, entry));
        self.services.insert(key, entry);
        Ok(())
    }
    fn remove_service(&mut self, key: &ServiceKey) -> anyhow::Result<()> {
        self.calls.push(Call::Remove(*key));
        self.services.remove(key);
        Ok(())
    }
    fn set_real(&mut self, index: u32, entry: RealEntry) -> anyhow::Result<()> {
        self.calls.push(Call::Real(index, entry));
        self.reals.insert(index, entry);
        Ok(())
    }
    fn set_ring(&mut self, service_index: u32, ring: &[u32]) -> anyhow::Result<()> {
        assert_eq!(ring.len(), LB_RING_SIZE as usize);
        self.calls.push(Call::Ring(service_index));
        self.rings.insert(service_index, ring.to_vec());
        Ok(())
    }
    fn real_stats(&self, _: u32) -> anyhow::Result<LbStats> {
        Ok(LbStats::default())
    }
    fn service_stats(&self, _: u32) -> anyhow::Result<LbStats> {
        Ok(LbStats::default())
    }
    fn counters(&self) -> anyhow::Result<Vec<u64>> {
        Ok(vec![0; 6])
    }
}

impl LbTargets for Fake {
    fn lb(&mut self, _: IpAddr) -> Option<&mut dyn LbDatapath> {
        Some(self)
    }
}

impl Fake {
    /// Share of service `s`'s ring per real index.
    fn shares(&self, s: u32) -> HashMap<u32, usize> {
        let mut out = HashMap::new();
        for &e in &self.rings[&s] {
            *out.entry(e).or_default() += 1;
        }
        out
    }
    fn placed(&self, s: u32, real: u32) -> bool {
        self.rings[&s].contains(&real)
    }
    fn alive(&self, real: u32) -> bool {
        self.reals[&real].flags & real_flags::ALIVE != 0
    }
    fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }
}

fn at() -> Source {
    Source {
        file: "keepalived.conf".into(),
        line: 1,
        col: 1,
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn script(c: &str) -> Option<NotifyScript> {
    Some(NotifyScript {
        command: vec![c.to_owned()],
        user: None,
    })
}

fn checker(alpha: bool) -> Checker {
    Checker {
        at: at(),
        kind: CheckKind::Tcp,
        connect: sa("10.0.0.11:80"),
        bind: None,
        bind_if: None,
        connect_timeout: Duration::from_secs(5),
        retry: 1,
        delay_before_retry: Duration::from_secs(1),
        delay_loop: Duration::from_secs(6),
        warmup: None,
        alpha,
        log_all_failures: false,
    }
}

fn real(addr: &str, weight: u32, checkers: usize) -> RealServer {
    RealServer {
        at: at(),
        addr: sa(addr),
        weight,
        kind: LbKind::Dr,
        inhibit_on_failure: false,
        notify_up: script(&format!("up {addr}")),
        notify_down: script(&format!("down {addr}")),
        alpha: false,
        virtualhost: None,
        checkers: (0..checkers).map(|_| checker(false)).collect(),
    }
}

fn service(addr: &str, reals: Vec<RealServer>) -> VirtualServer {
    VirtualServer {
        protocol: Protocol::Tcp,
        delay_loop: Duration::from_secs(6),
        algo: LbAlgo::Wrr,
        quorum_up: script("quorum up"),
        quorum_down: script("quorum down"),
        real_servers: reals,
        ..VirtualServer::with_defaults(at(), sa(addr))
    }
}

fn three() -> VirtualServer {
    service(
        "10.0.0.100:80",
        vec![
            real("10.0.0.11:80", 1, 1),
            real("10.0.0.12:80", 1, 1),
            real("10.0.0.13:80", 1, 1),
        ],
    )
}

fn fwd(last: u8) -> Forwarding {
    Forwarding {
        ifindex: 2,
        dst_mac: [2, 0, 0, 0, 0, last],
        src_mac: [2, 0, 0, 0, 0, 1],
        tun_src: "10.0.0.1".parse().unwrap(),
    }
}

/// A manager for `vss` with every next hop resolved, synced once into a fresh fake.
fn start(vss: Vec<VirtualServer>) -> (LvsManager, Fake) {
    let mut m = LvsManager::new(&Lvs {
        virtual_servers: vss,
    })
    .unwrap();
    for (i, (addr, _)) in m.next_hops().into_iter().enumerate() {
        m.set_forwarding(addr, Some(fwd(10 + i as u8)));
    }
    let mut dp = Fake::default();
    m.sync(&mut dp);
    (m, dp)
}

fn check(m: &mut LvsManager, service: usize, real: usize, checker: usize, verdict: Verdict) {
    m.on_check(&CheckEvent {
        id: CheckId {
            service,
            real,
            checker,
        },
        verdict,
        latency: Some(Duration::from_millis(3)),
        at: Instant::now(),
    });
}

fn down(why: &str) -> Verdict {
    Verdict::Down(why.to_owned())
}

fn argvs(out: &Output) -> Vec<String> {
    out.scripts.iter().map(|s| s.argv.join(" ")).collect()
}

fn idx(m: &LvsManager, s: usize, r: usize) -> u32 {
    m.services()[s].reals[r].index
}

#[test]
fn reals_start_up_and_share_the_ring_by_weight() {
    let mut vs = three();
    vs.real_servers[0].weight = 2;
    let (m, dp) = start(vec![vs]);
    let shares = dp.shares(0);
    assert_eq!(shares.len(), 3);
    let r0 = shares[&idx(&m, 0, 0)] as f64 / f64::from(LB_RING_SIZE);
    assert!((r0 - 0.5).abs() < 0.01, "{r0}");
    assert!((0..3).all(|r| dp.alive(idx(&m, 0, r))));
    assert_eq!(dp.services.len(), 1);
}

/// keepalived "alpha": real servers start down until their checker succeeds; a first failure
/// still runs notify_down.
#[test]
fn alpha_starts_down_until_the_first_success() {
    let mut vs = three();
    for r in &mut vs.real_servers {
        r.checkers[0].alpha = true;
    }
    let (mut m, mut dp) = start(vec![vs]);
    assert!(dp.rings[&0].iter().all(|&e| e == LB_NO_REAL));
    m.take_output();
    check(&mut m, 0, 1, 0, down("connect: connection refused"));
    assert_eq!(argvs(&m.take_output()), vec!["down 10.0.0.12:80"]);
    check(&mut m, 0, 0, 0, Verdict::Up);
    let out = m.take_output();
    assert!(
        out.log
            .contains(&"Adding service [10.0.0.11]:tcp:80 to VS [10.0.0.100]:tcp:80".to_owned()),
        "{out:?}"
    );
    assert!(argvs(&out).contains(&"up 10.0.0.11:80".to_owned()));
    m.sync(&mut dp);
    assert!(dp.rings[&0].iter().all(|&e| e == idx(&m, 0, 0)));
}

/// A real server with no checker is always up.
#[test]
fn a_real_without_checkers_is_up() {
    let vs = service("10.0.0.100:80", vec![real("10.0.0.11:80", 1, 0)]);
    let (m, dp) = start(vec![vs]);
    assert!(m.services()[0].reals[0].healthy);
    assert!(dp.placed(0, idx(&m, 0, 0)));
}

/// A failing server leaves the pool: not ALIVE (its flows are placed again), out of the
/// ring, notify_down; and comes back.
#[test]
fn a_failed_real_is_removed_and_comes_back() {
    let (mut m, mut dp) = start(vec![three()]);
    m.take_output();
    check(&mut m, 0, 1, 0, down("HTTP status 503"));
    let out = m.take_output();
    assert_eq!(
        out.log[0],
        "Removing service [10.0.0.12]:tcp:80 from VS [10.0.0.100]:tcp:80"
    );
    assert_eq!(argvs(&out), vec!["down 10.0.0.12:80"]);
    m.sync(&mut dp);
    let gone = idx(&m, 0, 1);
    assert!(!dp.placed(0, gone) && !dp.alive(gone));
    check(&mut m, 0, 1, 0, Verdict::Up);
    assert_eq!(argvs(&m.take_output()), vec!["up 10.0.0.12:80"]);
    m.sync(&mut dp);
    assert!(dp.placed(0, gone) && dp.alive(gone));
}

/// inhibit_on_failure: weight 0 (no new flows) but still ALIVE, so established flows stay.
#[test]
fn inhibit_on_failure_keeps_flows_and_takes_no_new_ones() {
    let mut vs = three();
    vs.real_servers[0].inhibit_on_failure = true;
    let (mut m, mut dp) = start(vec![vs]);
    m.take_output();
    check(&mut m, 0, 0, 0, down("connect: timeout"));
    assert_eq!(
        m.take_output().log[0],
        "Disabling service [10.0.0.11]:tcp:80 of VS [10.0.0.100]:tcp:80"
    );
    m.sync(&mut dp);
    let r = idx(&m, 0, 0);
    assert!(!dp.placed(0, r) && dp.alive(r));
    check(&mut m, 0, 0, 0, Verdict::Up);
    assert_eq!(
        m.take_output().log[0],
        "Enabling service [10.0.0.11]:tcp:80 of VS [10.0.0.100]:tcp:80"
    );
}

/// keepalived 2.2: a real with several checkers is up when all are.
#[test]
fn a_real_is_up_only_when_all_its_checkers_are() {
    let vs = service("10.0.0.100:80", vec![real("10.0.0.11:80", 1, 2)]);
    let (mut m, _) = start(vec![vs]);
    check(&mut m, 0, 0, 0, down("x"));
    check(&mut m, 0, 0, 1, down("y"));
    check(&mut m, 0, 0, 0, Verdict::Up);
    assert!(!m.services()[0].reals[0].healthy);
    check(&mut m, 0, 0, 1, Verdict::Up);
    assert!(m.services()[0].reals[0].healthy);
}

/// misc_dynamic: the checker's weight replaces the configured one, and the ring follows.
#[test]
fn a_dynamic_weight_reshapes_the_ring() {
    let (mut m, mut dp) = start(vec![three()]);
    m.take_output();
    check(&mut m, 0, 2, 0, Verdict::UpWeight(2));
    assert_eq!(
        m.take_output().log,
        vec![
            "Changing weight from 1 to 2 for active service [10.0.0.13]:tcp:80 of VS [10.0.0.100]:tcp:80"
        ]
    );
    m.sync(&mut dp);
    let share = dp.shares(0)[&idx(&m, 0, 2)] as f64 / f64::from(LB_RING_SIZE);
    assert!((share - 0.5).abs() < 0.01, "{share}");
    check(&mut m, 0, 2, 0, Verdict::UpWeight(0));
    m.sync(&mut dp);
    assert!(!dp.placed(0, idx(&m, 0, 2)));
}

/// quorum 3, hysteresis 1: down below 2, up again at 4.
#[test]
fn quorum_with_hysteresis_runs_its_scripts() {
    let mut vs = service(
        "10.0.0.100:80",
        (11..15)
            .map(|i| real(&format!("10.0.0.{i}:80"), 1, 1))
            .collect(),
    );
    vs.quorum = 3;
    vs.hysteresis = 1;
    let (mut m, _) = start(vec![vs]);
    m.take_output();
    check(&mut m, 0, 0, 0, down("x"));
    check(&mut m, 0, 1, 0, down("x"));
    assert!(m.services()[0].quorum_up, "2 >= 3-1: still up");
    m.take_output();
    check(&mut m, 0, 2, 0, down("x"));
    let out = m.take_output();
    assert!(
        out.log
            .contains(&"Lost quorum 3-1=2 > 1 for VS [10.0.0.100]:tcp:80".to_owned())
    );
    assert!(argvs(&out).contains(&"quorum down".to_owned()));
    check(&mut m, 0, 0, 0, Verdict::Up);
    check(&mut m, 0, 1, 0, Verdict::Up);
    assert!(!m.services()[0].quorum_up, "3 < 3+1: still down");
    m.take_output();
    check(&mut m, 0, 2, 0, Verdict::Up);
    let out = m.take_output();
    assert!(
        out.log
            .contains(&"Gained quorum 3+1=4 <= 4 for VS [10.0.0.100]:tcp:80".to_owned())
    );
    assert!(argvs(&out).contains(&"quorum up".to_owned()));
}

/// Below quorum the sorry server takes every new flow; the reals come back with quorum and,
/// without sorry_server_inhibit, the sorry server's flows are placed again.
#[test]
fn the_sorry_server_takes_over_below_quorum() {
    let mut vs = three();
    vs.sorry_server = Some(SorryServer {
        at: at(),
        addr: sa("10.0.0.99:80"),
        kind: LbKind::Dr,
        inhibit: false,
    });
    let (mut m, mut dp) = start(vec![vs]);
    let sorry = m.services()[0].sorry.as_ref().unwrap().index;
    assert!(!dp.placed(0, sorry) && !dp.alive(sorry));
    m.take_output();
    for r in 0..3 {
        check(&mut m, 0, r, 0, down("x"));
    }
    let out = m.take_output();
    assert!(
        out.log.contains(
            &"Adding sorry server [10.0.0.99]:tcp:80 to VS [10.0.0.100]:tcp:80".to_owned()
        )
    );
    m.sync(&mut dp);
    assert!(dp.rings[&0].iter().all(|&e| e == sorry));
    assert!(dp.alive(sorry));
    check(&mut m, 0, 0, 0, Verdict::Up);
    let out = m.take_output();
    assert!(out.log.contains(
        &"Removing sorry server [10.0.0.99]:tcp:80 from VS [10.0.0.100]:tcp:80".to_owned()
    ));
    m.sync(&mut dp);
    assert!(dp.rings[&0].iter().all(|&e| e == idx(&m, 0, 0)));
    assert!(!dp.alive(sorry));
}

/// sorry_server_inhibit: the sorry server stays (weight 0) once quorum is back, its flows too.
#[test]
fn an_inhibited_sorry_server_keeps_its_flows() {
    let mut vs = three();
    vs.sorry_server = Some(SorryServer {
        at: at(),
        addr: sa("10.0.0.99:80"),
        kind: LbKind::Dr,
        inhibit: true,
    });
    let (mut m, mut dp) = start(vec![vs]);
    let sorry = m.services()[0].sorry.as_ref().unwrap().index;
    assert!(dp.alive(sorry) && !dp.placed(0, sorry));
    for r in 0..3 {
        check(&mut m, 0, r, 0, down("x"));
    }
    assert!(
        m.take_output()
            .log
            .iter()
            .any(|l| l.starts_with("Enabling sorry server"))
    );
    check(&mut m, 0, 0, 0, Verdict::Up);
    m.sync(&mut dp);
    assert!(dp.alive(sorry) && !dp.placed(0, sorry));
}

/// alpha with a sorry server: "Starting with quorum down", the sorry server in place at once.
#[test]
fn alpha_with_a_sorry_server_starts_on_the_sorry_server() {
    let mut vs = three();
    vs.sorry_server = Some(SorryServer {
        at: at(),
        addr: sa("10.0.0.99:80"),
        kind: LbKind::Dr,
        inhibit: false,
    });
    for r in &mut vs.real_servers {
        r.checkers[0].alpha = true;
    }
    let (mut m, dp) = start(vec![vs]);
    let out = m.take_output();
    assert_eq!(
        out.log[0],
        "Starting with quorum down 1-0=1 > 0 for VS [10.0.0.100]:tcp:80"
    );
    assert_eq!(argvs(&out), vec!["quorum down"]);
    let sorry = m.services()[0].sorry.as_ref().unwrap().index;
    assert!(dp.rings[&0].iter().all(|&e| e == sorry));
}

/// omega: a clean stop runs notify_down of the up reals and quorum_down; without omega, none.
#[test]
fn omega_runs_the_down_scripts_at_stop() {
    for omega in [false, true] {
        let mut vs = three();
        vs.omega = omega;
        let (mut m, mut dp) = start(vec![vs]);
        check(&mut m, 0, 2, 0, down("x"));
        m.take_output();
        m.stop();
        let out = m.take_output();
        assert!(out.log.contains(
            &"Shutting down service [10.0.0.11]:tcp:80 from VS [10.0.0.100]:tcp:80".to_owned()
        ));
        let want: Vec<String> = if omega {
            vec![
                "down 10.0.0.11:80".into(),
                "down 10.0.0.12:80".into(),
                "quorum down".into(),
            ]
        } else {
            vec![]
        };
        assert_eq!(argvs(&out), want, "omega {omega}");
        dp.take();
        m.sync(&mut dp);
        assert!(dp.services.is_empty(), "the service left the maps");
        assert!(dp.reals.values().all(|r| r.flags == 0));
    }
}

/// ha_suspend: checkers run only while this node is master of the address.
#[test]
fn ha_suspend_checks_only_while_master() {
    let mut vs = three();
    vs.ha_suspend = true;
    let (mut m, mut dp) = start(vec![
        vs,
        service("10.0.0.200:80", vec![real("10.0.0.11:80", 1, 1)]),
    ]);
    let only_other = |m: &LvsManager| m.wanted_checks().iter().all(|c| c.service == 1);
    assert!(only_other(&m));
    assert!(
        dp.services
            .values()
            .any(|e| e.flags & service_flags::SUSPENDED != 0)
    );
    m.set_owner("10.0.0.100".parse().unwrap(), true);
    assert_eq!(m.wanted_checks().len(), 4);
    m.sync(&mut dp);
    assert!(
        dp.services
            .values()
            .all(|e| e.flags & service_flags::SUSPENDED == 0)
    );
    m.set_owner("10.0.0.100".parse().unwrap(), false);
    assert!(only_other(&m));
}

/// A change in one service rewrites that service's ring only; nothing changed, nothing written.
#[test]
fn only_the_affected_ring_is_written() {
    let (mut m, mut dp) = start(vec![
        three(),
        service(
            "10.0.0.200:80",
            vec![real("10.0.0.21:80", 1, 1), real("10.0.0.22:80", 1, 1)],
        ),
    ]);
    dp.take();
    m.sync(&mut dp);
    assert!(dp.take().is_empty());
    check(&mut m, 1, 0, 0, down("x"));
    m.sync(&mut dp);
    let rings: Vec<Call> = dp
        .take()
        .into_iter()
        .filter(|c| matches!(c, Call::Ring(_)))
        .collect();
    assert_eq!(rings, vec![Call::Ring(m.services()[1].index)]);
}

/// A real without a next hop is not placed; placed once it resolves.
#[test]
fn a_real_without_a_neighbour_is_not_placed() {
    let (mut m, mut dp) = start(vec![three()]);
    let r = idx(&m, 0, 0);
    m.set_forwarding("10.0.0.11".parse().unwrap(), None);
    m.sync(&mut dp);
    assert!(!dp.placed(0, r) && !dp.alive(r));
    m.set_forwarding("10.0.0.11".parse().unwrap(), Some(fwd(77)));
    m.sync(&mut dp);
    assert!(dp.placed(0, r));
    assert_eq!(dp.reals[&r].dst_mac, [2, 0, 0, 0, 0, 77]);
}

/// A reload keeps the state and indexes of what stays (no flap, no ring rewrite for an
/// unchanged service), removes a dropped real with its notify_down, and adds a new one.
#[test]
fn a_reload_keeps_what_did_not_change() {
    let (mut m, mut dp) = start(vec![
        three(),
        service("10.0.0.200:80", vec![real("10.0.0.21:80", 1, 1)]),
    ]);
    check(&mut m, 0, 1, 0, down("x"));
    m.sync(&mut dp);
    m.take_output();
    dp.take();
    let (keep0, dropped) = (idx(&m, 0, 0), idx(&m, 0, 2));
    let mut vs = three();
    vs.real_servers.pop();
    vs.real_servers.push(real("10.0.0.14:80", 1, 1));
    // Reordered and moved lines: the same services and reals.
    let mut other = service("10.0.0.200:80", vec![real("10.0.0.21:80", 1, 1)]);
    other.at.line = 40;
    m.reload(&Lvs {
        virtual_servers: vec![other, vs],
    })
    .unwrap();
    m.set_forwarding("10.0.0.14".parse().unwrap(), Some(fwd(14)));
    let out = m.take_output();
    assert_eq!(argvs(&out), vec!["down 10.0.0.13:80"]);
    let svc = &m.services()[1];
    assert_eq!(svc.reals[0].index, keep0);
    assert!(
        !svc.reals[1].healthy,
        "a down server stays down across a reload"
    );
    assert!(svc.reals[2].healthy);
    let svc = svc.clone();
    m.sync(&mut dp);
    let calls = dp.take();
    assert!(
        calls.contains(&Call::Real(dropped, RealEntry::default())),
        "the dropped real's flows are placed again: {calls:?}"
    );
    let rings: Vec<&Call> = calls
        .iter()
        .filter(|c| matches!(c, Call::Ring(_)))
        .collect();
    assert_eq!(
        rings,
        vec![&Call::Ring(svc.index)],
        "the other service's ring is kept"
    );
    assert!(dp.placed(svc.index, svc.reals[2].index));
}

/// A reload that removes a service: its reals' notify_down and quorum_down (keepalived runs
/// them on reload whatever omega), and the service leaves the maps.
#[test]
fn a_reload_removes_a_service() {
    let (mut m, mut dp) = start(vec![three()]);
    m.take_output();
    let key = m.services()[0].key();
    m.reload(&Lvs::default()).unwrap();
    let out = m.take_output();
    assert_eq!(
        argvs(&out),
        vec![
            "down 10.0.0.11:80",
            "down 10.0.0.12:80",
            "down 10.0.0.13:80",
            "quorum down"
        ]
    );
    dp.take();
    m.sync(&mut dp);
    assert!(dp.take().contains(&Call::Remove(key)));
}

/// sh (and mh without mh-port) hash the client only; persistence sets its flag, timeout and mask.
#[test]
fn the_service_entry_says_how_to_hash_and_persist() {
    let mut vs = three();
    vs.algo = LbAlgo::Sh;
    vs.persistence_timeout = Some(Duration::from_secs(360));
    vs.persistence_prefix = Some(24);
    let (_, dp) = start(vec![vs]);
    let e = dp.services.values().next().unwrap();
    assert_eq!(e.flags, service_flags::HASH_SOURCE | service_flags::PERSIST);
    assert_eq!(e.persist_timeout_ns, 360_000_000_000);
    assert_eq!(&e.persist_mask[..5], &[255, 255, 255, 0, 0]);
    let key = dp.services.keys().next().unwrap();
    assert_eq!(key.port_be, 80u16.to_be());
    assert_eq!(&key.addr[..4], &[10, 0, 0, 100]);
}

/// TUN: the real's entry says to encapsulate.
#[test]
fn a_tun_real_is_encapsulated() {
    let mut vs = three();
    vs.real_servers[0].kind = LbKind::Tun;
    let (m, dp) = start(vec![vs]);
    let e = dp.reals[&idx(&m, 0, 0)];
    assert_eq!(e.flags, real_flags::ALIVE | real_flags::TUN);
    assert_eq!(&e.tun_src[..4], &[10, 0, 0, 1]);
}

/// A reload that changes a real's weight applies it; a checker whose settings changed starts
/// afresh (up, without alpha) while an unchanged one keeps its state.
#[test]
fn a_reload_applies_new_weights_and_restarts_changed_checkers() {
    let mut vs = three();
    vs.real_servers[0].checkers.push(checker(false));
    let (mut m, mut dp) = start(vec![vs.clone()]);
    check(&mut m, 0, 0, 0, down("x"));
    check(&mut m, 0, 1, 0, down("y"));
    m.take_output();
    let mut next = vs;
    next.real_servers[2].weight = 3;
    next.real_servers[1].checkers[0].connect_timeout = Duration::from_secs(2);
    m.reload(&Lvs {
        virtual_servers: vec![next],
    })
    .unwrap();
    let svc = &m.services()[0];
    assert!(!svc.reals[0].healthy, "unchanged checkers keep their state");
    assert!(svc.reals[1].healthy, "a changed checker starts afresh");
    assert_eq!(argvs(&m.take_output()), vec!["up 10.0.0.12:80"]);
    m.sync(&mut dp);
    let shares = dp.shares(0);
    let r2 = shares[&idx(&m, 0, 2)] as f64 / f64::from(LB_RING_SIZE);
    assert!((r2 - 0.75).abs() < 0.01, "{r2}");
}

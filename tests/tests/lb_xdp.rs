//! `xdp_lb`, the XDP load balancer of keepalived's `virtual_server`s, run with
//! `BPF_PROG_TEST_RUN` on crafted frames through `XdpDatapath::lb` (the agent's own loading and
//! map writing):
//!
//! - DR rewrites the Ethernet addresses only and transmits (`XDP_TX` behind the receiving
//!   interface, a redirect to another); TUN prepends a valid outer IPv4 or IPv6 header;
//! - a VIP this node does not own (fenced, preempted in the kernel, stale heartbeat, accept mode
//!   off, not a VIP of the interface) is passed to the stack and counted `NOT_OWNER`;
//! - a new flow goes where userspace predicts (`flow_hash % LB_RING_SIZE` in the ring), an
//!   established flow stays on its real when the ring changes, unless that real is no longer
//!   `ALIVE`; persistence holds a client within its timeout and lets go after it; `sh` sends
//!   every port of one client to one real;
//! - fragments, ICMP and an empty ring pass; `vrrp_rx` hands TCP to a service to `xdp_lb`
//!   (tail call) and keeps VRRP to itself; `xdp_bounce`, the bench's ceiling, swaps the MACs;
//! - TUN that would exceed the transmitting interface's MTU is dropped and counted `TOO_BIG`
//!   (run in a lab namespace whose `lo`, where `BPF_PROG_TEST_RUN` receives, has a small MTU);
//! - a restarted datapath adopting the pins forwards nothing before the agent rewrites its
//!   services (fails closed), and keeps the counters; one opened without
//!   `XdpOptions::load_balancer` (tables of one entry) refuses `lb()`.
//!
//! And in a lab on veth: a client's TCP connection to VIP:port is answered by a DR real server
//! (VIP on its `lo`, `arp_ignore=1`, `arp_announce=2`) through `XDP_TX` on the director; once
//! the agent is gone (its programs left attached), the director balances on until its heartbeat
//! goes stale, then the fence drops (no reset from its stack).

mod common;

use ha_common::wire::internet_checksum;
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use aya::programs::XdpMode;
use ha_agent::{
    datapath::xdp::{XdpDatapath, XdpOptions, addr16, monotonic_ns},
    lvs::LbDatapath,
};
use ha_common::lb::{
    FlowKey, LB_NO_REAL, LB_RING_SIZE, PROG_XDP_LB, PersistEntry, PersistKey, RealEntry,
    ServiceEntry, ServiceKey, flow_hash, lb_counter, real_flags, service_flags,
};
use ha_tests::{IFACE, Lab, in_netns, wait_for};

const XDP_PASS: u32 = 2;
const XDP_DROP: u32 = 1;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;
const TCP: u8 = 6;
const UDP: u8 = 17;
/// `BPF_PROG_TEST_RUN` runs XDP as received on the loopback device (ifindex 1).
const TEST_RUN_IFINDEX: u32 = 1;

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];
const PORT: u16 = 80;

fn real_mac(i: u32) -> [u8; 6] {
    [0x02, 0xaa, 0, 0, 0, i as u8]
}

/// An IPv4 frame from the client: `proto` with `l4` after the header; `frag` is the flags and
/// fragment offset field (0x4000: DF).
fn frame4(dst: Ipv4Addr, proto: u8, l4: &[u8], frag: u16) -> Vec<u8> {
    frame4_from(CLIENT4, dst, proto, l4, frag)
}

fn frame4_from(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8], frag: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DIRECTOR_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = 61;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

fn frame6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DIRECTOR_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    let mut ip = [0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
    ip[6] = next;
    ip[7] = 61;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// A TCP SYN (or a UDP datagram) from `sport` to `dport` with a recognisable payload.
fn l4(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    if proto == TCP {
        h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        h.extend_from_slice(&[0, 8 + 32, 0, 0]);
    }
    h.extend((0..32u8).map(|b| b.wrapping_mul(7)));
    h
}

fn tcp4(sport: u16) -> Vec<u8> {
    frame4(VIP4, TCP, &l4(TCP, sport, PORT), 0x4000)
}

fn service_key(vip: IpAddr, proto: u8) -> ServiceKey {
    ServiceKey {
        family: if vip.is_ipv4() { 4 } else { 6 },
        proto,
        port_be: PORT.to_be(),
        addr: addr16(vip),
    }
}

/// A detached datapath whose VIPs are owned (in `FENCE`, not fenced, no heartbeat timeout) with
/// `reals` DR real servers behind the receiving interface and, for each of TCP and UDP on both
/// VIPs, a service whose ring is `ring` (service indexes 0..4).
struct Director {
    dp: XdpDatapath,
}

impl Director {
    fn new(reals: u32, ring: &[u32], flags: u32) -> Director {
        ha_tests::require_privileges().expect("root");
        let mut dp = XdpDatapath::load_detached().expect("load the eBPF object");
        dp.heartbeat().unwrap();
        for vip in [IpAddr::V4(VIP4), IpAddr::V6(VIP6)] {
            dp.set_fence(vip, 0, false, false, Duration::ZERO).unwrap();
        }
        let mut d = Director { dp };
        for i in 0..reals {
            d.set_real(i, dr(i));
        }
        let keys = services();
        for (index, key) in keys.iter().enumerate() {
            d.lb().set_ring(index as u32, ring).unwrap();
            d.set_service(*key, index as u32, flags);
        }
        d
    }

    fn lb(&mut self) -> &mut ha_agent::datapath::xdp::XdpLb {
        self.dp.lb().expect("load xdp_lb")
    }

    fn set_real(&mut self, i: u32, entry: RealEntry) {
        self.lb().set_real(i, entry).unwrap();
    }

    fn set_service(&mut self, key: ServiceKey, index: u32, flags: u32) {
        let entry = ServiceEntry {
            index,
            flags,
            persist_timeout_ns: 1_000_000_000,
            persist_mask: addr16(IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255))),
        };
        self.lb().set_service(key, entry).unwrap();
    }

    fn run(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        self.dp
            .test_run_frame(PROG_XDP_LB, frame)
            .expect("test run")
    }

    fn counter(&mut self, which: u32) -> u64 {
        self.lb().counters().unwrap()[which as usize]
    }

    /// The real server a forwarded DR frame went to (by its destination MAC).
    fn sent_to(&self, frame: &[u8]) -> u32 {
        let (verdict, out) = self.run(frame);
        assert_eq!(verdict, XDP_TX, "forwarded");
        assert_eq!(out[6..12], DIRECTOR_MAC);
        assert_eq!(
            out[..4],
            [0x02, 0xaa, 0, 0],
            "a real's MAC: {:x?}",
            &out[..6]
        );
        u32::from(out[5])
    }
}

/// Services 0..4: TCP and UDP on the IPv4 VIP, TCP and UDP on the IPv6 VIP.
fn services() -> [ServiceKey; 4] {
    [
        service_key(IpAddr::V4(VIP4), TCP),
        service_key(IpAddr::V4(VIP4), UDP),
        service_key(IpAddr::V6(VIP6), TCP),
        service_key(IpAddr::V6(VIP6), UDP),
    ]
}

fn dr(i: u32) -> RealEntry {
    RealEntry {
        flags: real_flags::ALIVE,
        ifindex: TEST_RUN_IFINDEX,
        dst_mac: real_mac(i),
        src_mac: DIRECTOR_MAC,
        addr: addr16(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10 + i as u8))),
        tun_src: addr16(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
    }
}

/// A ring that spreads over `n` reals (slot i: real i mod n); the lvs part computes Maglev's.
fn spread(n: u32) -> Vec<u32> {
    (0..LB_RING_SIZE).map(|i| i % n).collect()
}

fn all(real: u32) -> Vec<u32> {
    vec![real; LB_RING_SIZE as usize]
}

fn predict(
    ring: &[u32],
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    source_only: bool,
) -> u32 {
    let h = flow_hash(
        &addr16(src),
        &addr16(dst),
        sport.to_be(),
        PORT.to_be(),
        proto,
        source_only,
    );
    ring[(h % LB_RING_SIZE) as usize]
}

#[test]
fn dr_rewrites_the_macs_only_and_transmits_counting_the_flow() {
    let mut d = Director::new(4, &spread(4), 0);
    let frame = tcp4(40000);
    let (verdict, out) = d.run(&frame);
    assert_eq!(verdict, XDP_TX, "behind the receiving interface: XDP_TX");
    let want = predict(&spread(4), CLIENT4.into(), VIP4.into(), TCP, 40000, false);
    assert_eq!(out[..6], real_mac(want), "destination MAC: the real's");
    assert_eq!(out[6..12], DIRECTOR_MAC, "source MAC: the director's");
    assert_eq!(out[12..], frame[12..], "IP header and payload untouched");
    assert_eq!(out.len(), frame.len());

    // The same flow again: no new flow, the counters add up.
    assert_eq!(d.run(&frame).0, XDP_TX);
    let s = d.lb().service_stats(0).unwrap();
    assert_eq!(
        (s.packets, s.bytes, s.new_flows),
        (2, 2 * frame.len() as u64, 1)
    );
    let r = d.lb().real_stats(want).unwrap();
    assert_eq!(
        (r.packets, r.bytes, r.new_flows),
        (2, 2 * frame.len() as u64, 1)
    );
    assert_eq!(d.counter(lb_counter::FORWARDED), 2);
    assert_eq!(d.counter(lb_counter::NOT_OWNER), 0);
}

#[test]
fn a_real_behind_another_interface_is_redirected() {
    let mut d = Director::new(1, &all(0), 0);
    d.set_real(
        0,
        RealEntry {
            ifindex: 7777,
            ..dr(0)
        },
    );
    let (verdict, out) = d.run(&tcp4(40000));
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out[..6], real_mac(0));
}

#[test]
fn new_flows_go_where_userspace_predicts_for_tcp_udp_ipv4_ipv6() {
    let ring = spread(7);
    let mut d = Director::new(7, &ring, 0);
    let mut seen = std::collections::BTreeSet::new();
    for sport in 1000..1064u16 {
        for (proto, frame4, frame6) in [
            (
                TCP,
                frame4(VIP4, TCP, &l4(TCP, sport, PORT), 0x4000),
                frame6(CLIENT6, VIP6, TCP, &l4(TCP, sport, PORT)),
            ),
            (
                UDP,
                frame4(VIP4, UDP, &l4(UDP, sport, PORT), 0),
                frame6(CLIENT6, VIP6, UDP, &l4(UDP, sport, PORT)),
            ),
        ] {
            let want4 = predict(&ring, CLIENT4.into(), VIP4.into(), proto, sport, false);
            assert_eq!(d.sent_to(&frame4), want4, "IPv4 proto {proto} port {sport}");
            let want6 = predict(&ring, CLIENT6.into(), VIP6.into(), proto, sport, false);
            assert_eq!(d.sent_to(&frame6), want6, "IPv6 proto {proto} port {sport}");
            seen.insert(want4);
        }
    }
    assert_eq!(seen.len(), 7, "flows spread over every real: {seen:?}");
    // Another port of the VIP is no service: passed, untouched, not counted.
    let other = frame4(VIP4, TCP, &l4(TCP, 1000, 443), 0x4000);
    assert_eq!(d.run(&other), (XDP_PASS, other.clone()));
    assert_eq!(d.counter(lb_counter::NOT_OWNER), 0);
}

#[test]
fn tun_ipv4_prepends_a_valid_ipip_header() {
    let mut d = Director::new(1, &all(0), 0);
    d.set_real(
        0,
        RealEntry {
            flags: real_flags::ALIVE | real_flags::TUN,
            ..dr(0)
        },
    );
    let frame = tcp4(40000);
    let (verdict, out) = d.run(&frame);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out.len(), frame.len() + 20);
    assert_eq!(out[..6], real_mac(0));
    assert_eq!(out[6..12], DIRECTOR_MAC);
    assert_eq!(out[12..14], [0x08, 0x00]);
    let outer = &out[14..34];
    assert_eq!(outer[0], 0x45, "IPv4, 20-byte header");
    let inner_len = frame.len() - 14;
    assert_eq!(
        u16::from_be_bytes([outer[2], outer[3]]) as usize,
        inner_len + 20,
        "total length"
    );
    assert_eq!(outer[6] & 0x40, 0x40, "DF copied from the inner header");
    assert_eq!(outer[8], 64, "TTL");
    assert_eq!(outer[9], 4, "protocol IPIP");
    assert_eq!(internet_checksum(outer), 0, "header checksum valid");
    assert_eq!(outer[12..16], [10, 0, 0, 1], "from tun_src");
    assert_eq!(outer[16..20], [10, 0, 0, 10], "to the real");
    assert_eq!(out[34..], frame[14..], "inner packet intact");

    // Without DF inside, none outside.
    let udp = frame4(VIP4, UDP, &l4(UDP, 5353, PORT), 0);
    let (verdict, out) = d.run(&udp);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out[14 + 6] & 0x40, 0, "no DF");
    assert_eq!(internet_checksum(&out[14..34]), 0);
    assert_eq!(d.counter(lb_counter::FORWARDED), 2);
}

#[test]
fn tun_ipv6_prepends_an_ip6ip6_header() {
    let mut d = Director::new(1, &all(0), 0);
    let real6 = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 10);
    let src6 = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
    d.set_real(
        0,
        RealEntry {
            flags: real_flags::ALIVE | real_flags::TUN | real_flags::TUN_V6,
            addr: real6.octets(),
            tun_src: src6.octets(),
            ..dr(0)
        },
    );
    let frame = frame6(CLIENT6, VIP6, TCP, &l4(TCP, 40000, PORT));
    let (verdict, out) = d.run(&frame);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out.len(), frame.len() + 40);
    assert_eq!(out[..6], real_mac(0));
    assert_eq!(out[12..14], [0x86, 0xdd]);
    let outer = &out[14..54];
    assert_eq!(outer[0] >> 4, 6);
    assert_eq!(
        u16::from_be_bytes([outer[4], outer[5]]) as usize,
        frame.len() - 14,
        "payload length: the whole inner packet"
    );
    assert_eq!(outer[6], 41, "next header IPv6");
    assert_eq!(outer[7], 64, "hop limit");
    assert_eq!(outer[8..24], src6.octets());
    assert_eq!(outer[24..40], real6.octets());
    assert_eq!(out[54..], frame[14..], "inner packet intact");
}

/// Takes the VIP from this node, one way.
type Unown<'a> = dyn Fn(&mut XdpDatapath) + 'a;

#[test]
fn a_vip_this_node_does_not_own_is_passed_and_counted() {
    let mut d = Director::new(2, &spread(2), 0);
    let frame = tcp4(40000);
    assert_eq!(d.run(&frame).0, XDP_TX, "owned: forwarded");
    let vip = IpAddr::V4(VIP4);
    let cases: [(&str, &Unown); 5] = [
        ("fenced by the agent", &|dp| {
            dp.set_fence(vip, 0, true, false, Duration::ZERO).unwrap()
        }),
        ("preempted (SLOT_FENCE)", &|dp| {
            dp.set_fence(vip, 3, false, false, Duration::ZERO).unwrap();
            dp.set_slot_fence(3).unwrap();
        }),
        ("stale heartbeat", &|dp| {
            dp.set_fence(vip, 0, false, false, Duration::from_nanos(1))
                .unwrap();
            dp.heartbeat().unwrap();
        }),
        ("accept mode off", &|dp| {
            dp.set_fence(vip, 0, false, true, Duration::ZERO).unwrap()
        }),
        ("not a VIP of this interface", &|dp| {
            dp.unfence(vip).unwrap()
        }),
    ];
    for (n, (what, fence)) in cases.iter().enumerate() {
        fence(&mut d.dp);
        let (verdict, out) = d.run(&frame);
        assert_eq!(verdict, XDP_PASS, "{what}: passed");
        assert_eq!(out, frame, "{what}: untouched");
        assert_eq!(
            d.counter(lb_counter::NOT_OWNER),
            n as u64 + 1,
            "{what}: counted"
        );
        // Owned again, and unpreempted.
        d.dp.set_fence(vip, 0, false, false, Duration::ZERO)
            .unwrap();
        d.dp.clear_slot_fence(3).unwrap();
        assert_eq!(d.run(&frame).0, XDP_TX, "after {what}: owned again");
    }
    assert_eq!(d.counter(lb_counter::FORWARDED), 6);
}

#[test]
fn an_established_flow_stays_when_the_ring_changes_unless_its_real_is_gone() {
    let mut d = Director::new(3, &all(0), 0);
    let first = tcp4(40000);
    assert_eq!(d.sent_to(&first), 0);
    // Server 1 takes the whole ring (0 inhibited): the flow stays, new flows go to 1.
    d.lb().set_ring(0, &all(1)).unwrap();
    assert_eq!(d.sent_to(&first), 0, "established flow stays on its real");
    assert_eq!(d.sent_to(&tcp4(40001)), 1, "a new flow takes the new ring");
    let flow = FlowKey {
        family: 4,
        proto: TCP,
        _pad: 0,
        sport_be: 40000u16.to_be(),
        dport_be: PORT.to_be(),
        src: addr16(CLIENT4.into()),
        dst: addr16(VIP4.into()),
    };
    assert_eq!(d.lb().flow_real(&flow).unwrap(), Some(0));
    // Server 0 fails (not ALIVE): its flow is placed again, on the ring's server.
    d.set_real(0, RealEntry { flags: 0, ..dr(0) });
    d.lb().set_ring(0, &all(2)).unwrap();
    assert_eq!(d.sent_to(&first), 2, "a flow on a dead real moves");
    assert_eq!(d.lb().flow_real(&flow).unwrap(), Some(2));
    assert_eq!(d.lb().service_stats(0).unwrap().new_flows, 3);
}

#[test]
fn persistence_holds_a_client_within_the_timeout_and_lets_go_after() {
    let mut d = Director::new(3, &all(0), service_flags::PERSIST);
    assert_eq!(d.sent_to(&tcp4(40000)), 0);
    d.lb().set_ring(0, &all(1)).unwrap();
    // Another connection of the same client, within the timeout: the template's real.
    assert_eq!(d.sent_to(&tcp4(40001)), 0, "persistent within the timeout");
    let template = PersistKey {
        service: 0,
        src: addr16(CLIENT4.into()),
    };
    let t = d
        .lb()
        .persist_template(&template)
        .unwrap()
        .expect("template");
    assert_eq!(t.real, 0);
    let age = monotonic_ns().saturating_sub(t.last_ns);
    assert!(
        age < 1_000_000_000,
        "refreshed by the last packet ({age} ns ago)"
    );
    // Another client goes by the ring.
    let other = frame4_from(
        Ipv4Addr::new(198, 51, 100, 8),
        VIP4,
        TCP,
        &l4(TCP, 40000, PORT),
        0,
    );
    assert_eq!(d.sent_to(&other), 1);
    // The template older than the timeout: a new connection goes by the ring, and renews it.
    d.lb()
        .set_persist_template(
            &template,
            PersistEntry {
                real: 0,
                _pad: 0,
                last_ns: monotonic_ns() - 2_000_000_000,
            },
        )
        .unwrap();
    assert_eq!(d.sent_to(&tcp4(40002)), 1, "after the timeout: the ring");
    assert_eq!(d.lb().persist_template(&template).unwrap().unwrap().real, 1);
    // The established flows keep their real all along.
    assert_eq!(d.sent_to(&tcp4(40000)), 0);
}

#[test]
fn persistence_granularity_groups_clients_by_mask() {
    let mut d = Director::new(2, &all(0), 0);
    let entry = ServiceEntry {
        index: 0,
        flags: service_flags::PERSIST,
        persist_timeout_ns: 60_000_000_000,
        persist_mask: addr16(IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0))),
    };
    d.lb().set_service(services()[0], entry).unwrap();
    assert_eq!(d.sent_to(&tcp4(40000)), 0);
    d.lb().set_ring(0, &all(1)).unwrap();
    let same_24 = frame4_from(
        Ipv4Addr::new(198, 51, 100, 99),
        VIP4,
        TCP,
        &l4(TCP, 1, PORT),
        0,
    );
    assert_eq!(
        d.sent_to(&same_24),
        0,
        "a client of the same /24 shares the template"
    );
    let other_24 = frame4_from(
        Ipv4Addr::new(198, 51, 101, 7),
        VIP4,
        TCP,
        &l4(TCP, 1, PORT),
        0,
    );
    assert_eq!(d.sent_to(&other_24), 1);
}

#[test]
fn source_hashing_sends_every_port_of_a_client_to_one_real() {
    let ring = spread(5);
    let d = Director::new(5, &ring, service_flags::HASH_SOURCE);
    for client in 1..=20u8 {
        let src = Ipv4Addr::new(198, 51, 100, client);
        let want = predict(&ring, src.into(), VIP4.into(), TCP, 0, true);
        for sport in [1000u16, 2000, 3000] {
            let frame = frame4_from(src, VIP4, TCP, &l4(TCP, sport, PORT), 0x4000);
            assert_eq!(d.sent_to(&frame), want, "client {src} port {sport}");
        }
    }
}

#[test]
fn fragments_icmp_and_an_empty_ring_pass() {
    let mut d = Director::new(1, &all(0), 0);
    let cases = [
        (
            "IPv4 first fragment (MF)",
            frame4(VIP4, TCP, &l4(TCP, 1, PORT), 0x2000),
            true,
        ),
        (
            "IPv4 later fragment",
            frame4(VIP4, TCP, &[0u8; 16], 0x0010),
            true,
        ),
        (
            "IPv6 fragment header",
            frame6(CLIENT6, VIP6, 44, &[6, 0, 0, 1, 0, 0, 0, 9, 0, 80, 0, 80]),
            true,
        ),
        (
            "ICMP echo",
            frame4(VIP4, 1, &[8, 0, 0, 0, 0, 1, 0, 1], 0),
            false,
        ),
        (
            "ICMPv6 echo",
            frame6(CLIENT6, VIP6, 58, &[128, 0, 0, 0, 0, 1, 0, 1]),
            false,
        ),
    ];
    let mut fragments = 0;
    for (what, frame, fragment) in cases {
        assert_eq!(d.run(&frame), (XDP_PASS, frame.clone()), "{what}");
        fragments += u64::from(fragment);
        assert_eq!(d.counter(lb_counter::FRAGMENT), fragments, "{what}");
    }
    d.lb().set_ring(0, &all(LB_NO_REAL)).unwrap();
    let frame = tcp4(40000);
    assert_eq!(
        d.run(&frame),
        (XDP_PASS, frame.clone()),
        "no server: the stack's"
    );
    assert_eq!(d.counter(lb_counter::NO_REAL), 1);
    assert_eq!(d.counter(lb_counter::FORWARDED), 0);
}

#[test]
fn vrrp_rx_hands_tcp_to_a_service_to_xdp_lb_and_keeps_vrrp() {
    ha_tests::require_privileges().expect("root");
    // Before any virtual server: vrrp_rx passes the TCP as it always did.
    let mut dp = XdpDatapath::load_detached().expect("load");
    dp.set_fence(VIP4.into(), 0, false, false, Duration::ZERO)
        .unwrap();
    let frame = tcp4(40000);
    let (verdict, out) = dp.test_run_frame("vrrp_rx", &frame).unwrap();
    assert_eq!(
        (verdict, &out),
        (XDP_PASS, &frame),
        "no load balancer: passed"
    );

    let mut d = Director { dp };
    d.set_real(0, dr(0));
    d.lb().set_ring(0, &all(0)).unwrap();
    d.set_service(services()[0], 0, 0);
    let (verdict, out) = d.dp.test_run_frame("vrrp_rx", &frame).unwrap();
    assert_eq!(verdict, XDP_TX, "vrrp_rx tail-called xdp_lb");
    assert_eq!(out[..6], real_mac(0));
    assert_eq!(d.counter(lb_counter::FORWARDED), 1);

    // A VRRP advert to the group is vrrp_rx's (another speaker's here: passed), never balanced.
    let mut advert = vec![0x31, 51, 100, 1, 0, 100, 0, 0];
    advert.extend_from_slice(&VIP4.octets());
    let vrrp = frame4(Ipv4Addr::new(224, 0, 0, 18), 112, &advert, 0);
    let (verdict, out) = d.dp.test_run_frame("vrrp_rx", &vrrp).unwrap();
    assert_eq!((verdict, out), (XDP_PASS, vrrp));
    assert_eq!(
        d.dp.foreign(51).unwrap(),
        1,
        "counted by vrrp_rx as another speaker's"
    );
    assert_eq!(d.counter(lb_counter::FORWARDED), 1);
}

#[test]
fn a_client_is_answered_by_a_dr_real_server_through_xdp_tx_on_veth() {
    const SERVICE_PORT: u16 = 8080;
    let lab = Lab::new("lbdr", 2).expect("building the lab");
    let (director, real) = (lab.node(1).clone(), lab.node(2).clone());
    // The real server: the VIP on lo, silent about it on the LAN (keepalived's DR recipe).
    real.sh(
        "ip addr add 192.0.2.200/32 dev lo && sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
         net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_ignore=1 \
         net.ipv4.conf.eth0.arp_announce=2",
    )
    .unwrap();
    let _server = real
        .spawn(
            "server",
            &lab.dir,
            "socat",
            &[
                &format!("TCP-LISTEN:{SERVICE_PORT},fork,reuseaddr"),
                "SYSTEM:echo served-by-real-2",
            ],
        )
        .expect("socat on the real server");
    // The director owns the VIP (it answers ARP for it); nothing listens on the port there, so
    // a connection its own stack took would be refused.
    director
        .run("ip", &["addr", "add", "192.0.2.200/32", "dev", IFACE])
        .unwrap();
    // What XDP_TX on veth needs (see the README): a NAPI context on the director's peer, and a
    // client that computes its own checksums.
    let _napi = common::veth_napi_on_port(&lab, 1);
    common::veth_tx_checksum_off(&lab.client);
    // As the agent opens it: pinned, left attached when dropped (a crash).
    let pins = lab.bpf_dir.join("lbveth");
    let mut dp = in_netns(&director.ns, {
        let pins = pins.clone();
        move || {
            let options = XdpOptions {
                mode: XdpMode::Driver,
                persist: true,
                pin_dir: Some(pins),
                load_balancer: true,
                ..XdpOptions::default()
            };
            Ok(XdpDatapath::open(IFACE, &options)?)
        }
    })
    .expect("attaching vrrp_rx and the fence in the director (needs root and BPF)");
    // The VIP fails closed 3 s after the agent's last heartbeat, as a dead agent's does.
    const HEARTBEAT: Duration = Duration::from_secs(3);
    dp.heartbeat().unwrap();
    dp.set_fence(VIP4.into(), 0, false, false, HEARTBEAT)
        .unwrap();
    let ifindex: u32 = director
        .sh(&format!("cat /sys/class/net/{IFACE}/ifindex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let lb = dp.lb().expect("xdp_lb");
    lb.set_real(
        0,
        RealEntry {
            flags: real_flags::ALIVE,
            ifindex,
            dst_mac: ha_tests::parse_mac(&real.mac().unwrap()).expect("a MAC"),
            src_mac: ha_tests::parse_mac(&director.mac().unwrap()).expect("a MAC"),
            addr: addr16(real.ipv4.into()),
            tun_src: addr16(director.ipv4.into()),
        },
    )
    .unwrap();
    lb.set_ring(0, &all(0)).unwrap();
    let key = ServiceKey {
        port_be: SERVICE_PORT.to_be(),
        ..service_key(VIP4.into(), TCP)
    };
    lb.set_service(
        key,
        ServiceEntry {
            index: 0,
            ..ServiceEntry::default()
        },
    )
    .unwrap();
    wait_for("the real server to listen", Duration::from_secs(5), || {
        Ok(!real
            .sh(&format!("ss -ltnH 'sport = :{SERVICE_PORT}'"))?
            .trim()
            .is_empty())
    })
    .unwrap();

    dp.heartbeat().unwrap();
    let reply = lab.client.sh(&format!(
        "socat -t 5 -T 5 - TCP:{VIP4}:{SERVICE_PORT},connect-timeout=5 </dev/null"
    ));
    let lb = dp.lb().unwrap();
    let reply = reply.unwrap_or_else(|e| {
        panic!(
            "the client's connection to the VIP: {e:#}; xdp_lb counters {:?}, real {:?}",
            lb.counters().unwrap(),
            lb.real_stats(0).unwrap()
        )
    });
    assert_eq!(reply.trim(), "served-by-real-2");
    let stats = lb.real_stats(0).unwrap();
    assert_eq!(stats.new_flows, 1, "one connection, one flow: {stats:?}");
    assert!(
        stats.packets >= 3,
        "SYN, ACK, FIN at least went through XDP: {stats:?}"
    );
    let counters = lb.counters().unwrap();
    assert_eq!(counters[lb_counter::FORWARDED as usize], stats.packets);
    assert_eq!(counters[lb_counter::NOT_OWNER as usize], 0);

    // The agent dies (SIGKILL): vrrp_rx, the fence and the pinned LB_PROG stay. Until its
    // heartbeat goes stale it is still the only master: the balancer goes on (the director's
    // own stack, which holds the VIP, would reset the flows).
    dp.heartbeat().unwrap();
    let died = Instant::now();
    drop(dp);
    assert!(
        director
            .run("ip", &["link", "show", IFACE])
            .unwrap()
            .contains("prog/xdp"),
        "vrrp_rx is still attached"
    );
    let after = lab.client.sh(&format!(
        "socat -t 2 -T 2 - TCP:{VIP4}:{SERVICE_PORT},connect-timeout=2 </dev/null"
    ));
    assert!(
        died.elapsed() < HEARTBEAT,
        "the test was too slow to try before the heartbeat went stale"
    );
    assert_eq!(
        after
            .expect("still balanced right after the agent died")
            .trim(),
        "served-by-real-2"
    );
    // Then the fence closes: what comes in is dropped, neither balanced nor reset.
    let mut last = None;
    wait_for(
        "the dead agent's VIP to fail closed",
        HEARTBEAT * 10,
        || {
            let r = lab.client.sh(&format!(
                "socat -t 1 -T 1 - TCP:{VIP4}:{SERVICE_PORT},connect-timeout=1 </dev/null"
            ));
            let closed = r.is_err();
            last = Some(r);
            Ok(closed)
        },
    )
    .unwrap();
    let err = format!("{:#}", last.unwrap().unwrap_err());
    assert!(
        !err.contains("refused"),
        "dropped by the fence, not reset by the director's stack: {err}"
    );
    assert!(
        died.elapsed() >= HEARTBEAT,
        "closed only once the heartbeat is stale"
    );
    std::fs::remove_dir_all(&pins).expect("removing the dead agent's pins");
}

#[test]
fn tun_beyond_the_mtu_is_dropped_and_counted() {
    let lab = Lab::new("lbmtu", 1).expect("building the lab");
    let ns = lab.node(1).ns.clone();
    // BPF_PROG_TEST_RUN receives on the namespace's lo: its MTU is the limit (1400).
    lab.node(1)
        .run("ip", &["link", "set", "lo", "mtu", "1400"])
        .unwrap();
    let (fits, too_big, counters) = in_netns(&ns, || {
        let mut d = Director::new(1, &all(0), 0);
        d.set_real(
            0,
            RealEntry {
                flags: real_flags::ALIVE | real_flags::TUN,
                ..dr(0)
            },
        );
        // Inner packets of 1380 and 1381 bytes: 1400 and 1401 once encapsulated.
        let sized = |len: usize| {
            let payload = vec![0u8; len - 20 - 8];
            let mut udp = l4(UDP, 5353, PORT)[..8].to_vec();
            udp.extend_from_slice(&payload);
            frame4(VIP4, UDP, &udp, 0x4000)
        };
        let fits = d.run(&sized(1380));
        let too_big = d.run(&sized(1381));
        Ok((fits, too_big, d.lb().counters()?))
    })
    .expect("running xdp_lb in the lab namespace");
    assert_eq!(fits.0, XDP_TX, "1400 bytes fit an MTU of 1400");
    assert_eq!(fits.1.len(), 14 + 1400);
    assert_eq!(too_big.0, 1, "1401 bytes: XDP_DROP");
    assert_eq!(counters[lb_counter::TOO_BIG as usize], 1);
    assert_eq!(counters[lb_counter::FORWARDED as usize], 1);
}

#[test]
fn a_restarted_datapath_forwards_nothing_until_its_services_are_rewritten() {
    let lab = Lab::new("lbadopt", 1).expect("building the lab");
    let ns = lab.node(1).ns.clone();
    let pins = lab.bpf_dir.join("lbadopt");
    let open = {
        let (ns, pins) = (ns.clone(), pins.clone());
        move || {
            let pins = pins.clone();
            in_netns(&ns, move || {
                let options = XdpOptions {
                    mode: XdpMode::Driver,
                    pin_dir: Some(pins),
                    load_balancer: true,
                    ..XdpOptions::default()
                };
                Ok(XdpDatapath::open(IFACE, &options)?)
            })
            .expect("attaching with a pin directory (needs root and BPF)")
        }
    };
    let frame = tcp4(40000);
    // An interface opened without virtual servers has no room for them.
    let refused = in_netns(&ns, || {
        let mut dp = XdpDatapath::open(IFACE, &XdpOptions::default())?;
        Ok(dp.lb().err().map(|e| format!("{e:#}")))
    })
    .unwrap();
    assert!(
        refused
            .as_ref()
            .is_some_and(|e| e.contains("load_balancer")),
        "lb() on a datapath opened without it: {refused:?}"
    );
    let mut first = open();
    first.heartbeat().unwrap();
    first
        .set_fence(VIP4.into(), 0, false, false, Duration::ZERO)
        .unwrap();
    {
        let lb = first.lb().unwrap();
        lb.set_real(0, dr(0)).unwrap();
        lb.set_ring(0, &all(0)).unwrap();
        lb.set_service(
            services()[0],
            ServiceEntry {
                index: 0,
                ..ServiceEntry::default()
            },
        )
        .unwrap();
    }
    assert_eq!(first.test_run_frame("vrrp_rx", &frame).unwrap().0, XDP_TX);
    // The agent dies (its programs detached here; what it pinned stays), another one starts.
    // Netlink detaches by ifindex: in the namespace.
    in_netns(&ns, move || {
        drop(first);
        Ok(())
    })
    .unwrap();
    let mut second = open();
    second
        .set_fence(VIP4.into(), 0, false, false, Duration::ZERO)
        .unwrap();
    assert_eq!(
        second.test_run_frame("vrrp_rx", &frame).unwrap(),
        (XDP_DROP, frame.clone()),
        "no xdp_lb in LB_PROG before the agent asks for it, and vrrp_rx drops what is addressed \
         to a predecessor's service rather than hand it to the stack"
    );
    let lb = second.lb().unwrap();
    assert_eq!(
        lb.counters().unwrap()[lb_counter::FORWARDED as usize],
        1,
        "the counters carry on"
    );
    assert_eq!(
        second.test_run_frame(PROG_XDP_LB, &frame).unwrap(),
        (XDP_PASS, frame.clone()),
        "the predecessor's services are gone"
    );
    let lb = second.lb().unwrap();
    lb.set_ring(0, &all(0)).unwrap();
    lb.set_service(
        services()[0],
        ServiceEntry {
            index: 0,
            ..ServiceEntry::default()
        },
    )
    .unwrap();
    assert_eq!(second.test_run_frame("vrrp_rx", &frame).unwrap().0, XDP_TX);
    in_netns(&ns, move || Ok(second.close()?)).expect("a clean exit");
    assert!(!pins.exists(), "a clean exit removes the pins");
}

#[test]
fn xdp_bounce_swaps_the_ethernet_addresses_and_transmits() {
    use aya::programs::{TestRun as _, TestRunOptions, Xdp};
    ha_tests::require_privileges().expect("root");
    let mut ebpf = aya::Ebpf::load(ha_agent::datapath::EBPF_OBJECT).expect("the eBPF object");
    let prog: &mut Xdp = ebpf
        .program_mut("xdp_bounce")
        .expect("xdp_bounce in the object")
        .try_into()
        .unwrap();
    prog.load().expect("xdp_bounce passes the verifier");
    let frame = tcp4(40000);
    let mut out = vec![0u8; frame.len()];
    let result = prog
        .test_run(TestRunOptions {
            data_in: Some(&frame),
            data_out: Some(&mut out),
            repeat: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(result.return_value, XDP_TX);
    assert_eq!(out[..6], CLIENT_MAC);
    assert_eq!(out[6..12], DIRECTOR_MAC);
    assert_eq!(out[12..], frame[12..]);
}

//! The XDP program and the userspace codec agree on every packet.
//!
//! One corpus (keepalived 2.2.7's captured adverts, adverts ha-agent encodes for six kinds of
//! instance, other speakers' adverts: VRIDs not configured, other multicast groups, unicast
//! frames to another MAC, VLAN-tagged frames; and seeded mutations of all of them: bit flips,
//! truncations, TTL, length, version and type changes) runs through `vrrp::packet::receive_ip`
//! and through `vrrp_rx` by `BPF_PROG_TEST_RUN` with the same rules written to its maps. For
//! each frame the verdict must be the same: passed on (not VRRP), passed on and counted as
//! another speaker's (`FOREIGN[vrid]`; dropped with `DROP_FOREIGN`), dropped and counted under
//! the same VRID and reason, or valid and counted for the same instance. 20,000 random frames
//! (any ethertype, random IP packets, half of them protocol 112) must only ever be passed or
//! dropped, every non-IP frame passed, and the IP ones judged as the codec does. Loading needs
//! root (CAP_BPF): without it these tests fail, never skip.
//!
//! `SEED=n` replays one mutation seed; `PARITY_MUTANTS=n` sets the mutants per packet.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use ha_agent::datapath::xdp::{
    SlotConfig, XdpDatapath, addr16, instant_of, monotonic_ns, rx_global,
};
use ha_agent::vrrp::packet::{
    Advert, Arrival, Auth, DecodeOptions, EncodeOptions, Family, InstanceRules, Receiver,
    V3Ipv4Checksum, Verdict, Version, receive_ip,
};
use ha_common::RejectReason;
use ha_common::maps::{PeerEvent, PeerTtl, RxGlobal, event_why, instance_slot, rx_flags};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const LOCAL4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const MCAST4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const SRC6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const MCAST6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Other speakers' groups (another `vrrp_mcast_group4/6` behind the same NIC).
const OTHER4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 19);
const OTHER6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x13);
/// The group of an instance with `mcast_dst_ip`.
const MCAST4_OWN: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 100);
/// The test interface's MAC, and a macvlan child's behind it.
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CHILD_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];

/// `RX_GLOBAL` for the test interface: `flags`, the default groups, [`OUR_MAC`].
fn global(flags: u32) -> RxGlobal {
    rx_global(flags, MCAST4, MCAST6, OUR_MAC)
}

/// The codec's view of the test interface.
fn receiver(rules: &[InstanceRules]) -> Receiver<'_> {
    Receiver {
        group4: MCAST4,
        group6: MCAST6,
        instances: rules,
    }
}

/// An instance of the test interface: its rules and how its peers send.
struct Inst {
    rules: InstanceRules,
    encode: EncodeOptions,
    src: IpAddr,
    dst: IpAddr,
}

fn v4(last: u8) -> IpAddr {
    Ipv4Addr::new(192, 0, 2, last).into()
}

fn v6(last: u16) -> IpAddr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last).into()
}

fn instances() -> Vec<Inst> {
    // A unicast instance (peers listed) waives the TTL check, as the agent's plan sets it.
    let rules = |vrid, version, family, auth, cs, vips: Option<Vec<IpAddr>>, peers: Vec<IpAddr>| {
        InstanceRules {
            vrid,
            version,
            family,
            auth,
            adver_int_cs: cs,
            vips,
            unicast_any_ttl: !peers.is_empty(),
            unicast_peers: peers,
            peer_ttl: vec![],
            group: None,
        }
    };
    vec![
        // keepalived's golden v2-pass and v3-ipv4 cases use VRIDs 51 and 52 too: their captures
        // are checked against these rules (valid or not, both sides must agree).
        Inst {
            rules: rules(
                51,
                Version::V2,
                Family::Ipv4,
                Auth::pass("secret"),
                100,
                Some(vec![v4(200), v4(201)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: MCAST4.into(),
        },
        Inst {
            rules: rules(
                52,
                Version::V3,
                Family::Ipv4,
                Auth::None,
                1,
                Some(vec![v4(210)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: MCAST4.into(),
        },
        Inst {
            rules: rules(
                53,
                Version::V3,
                Family::Ipv6,
                Auth::None,
                100,
                Some(vec![v6(0x200), v6(0x201)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC6.into(),
            dst: MCAST6.into(),
        },
        Inst {
            rules: rules(
                54,
                Version::V2,
                Family::Ipv6,
                Auth::None,
                100,
                Some(vec![v6(0x210)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC6.into(),
            dst: MCAST6.into(),
        },
        // Unicast with a peer list, the v3 checksum without pseudo-header.
        Inst {
            rules: rules(
                55,
                Version::V3,
                Family::Ipv4,
                Auth::None,
                10,
                Some(vec![v4(220), v4(221), v4(222)]),
                vec![SRC4.into()],
            ),
            encode: EncodeOptions {
                v3_checksum_as_v2: true,
            },
            src: SRC4.into(),
            dst: LOCAL4.into(),
        },
        // Unicast with a peer list, the default checksum.
        Inst {
            rules: rules(
                57,
                Version::V3,
                Family::Ipv4,
                Auth::None,
                100,
                Some(vec![v4(230)]),
                vec![SRC4.into()],
            ),
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: LOCAL4.into(),
        },
        // Unicast from a peer whose adverts must arrive with a TTL in 64..=254 (`unicast_peer
        // ADDR min_ttl 64 max_ttl 254`): the check after the peer check.
        Inst {
            rules: InstanceRules {
                peer_ttl: vec![(
                    SRC4.into(),
                    PeerTtl {
                        min_ttl: 64,
                        max_ttl: 254,
                    },
                )],
                ..rules(
                    58,
                    Version::V3,
                    Family::Ipv4,
                    Auth::None,
                    100,
                    Some(vec![v4(240)]),
                    vec![SRC4.into()],
                )
            },
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: LOCAL4.into(),
        },
        // mcast_dst_ip: its own group; adverts to the interface's group are another speaker's.
        Inst {
            rules: InstanceRules {
                group: Some(MCAST4_OWN.into()),
                ..rules(
                    59,
                    Version::V3,
                    Family::Ipv4,
                    Auth::None,
                    100,
                    Some(vec![v4(250)]),
                    vec![],
                )
            },
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: MCAST4_OWN.into(),
        },
        // skip_check_adv_addr.
        Inst {
            rules: rules(56, Version::V3, Family::Ipv4, Auth::None, 100, None, vec![]),
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: MCAST4.into(),
        },
        // FRR's golden frr-v3-ipv4, frr-v3-ipv6 and frr-v2-ipv4 cases (VRIDs 61 to 63): their
        // captures are checked against the rules of the backup that accepts them.
        Inst {
            rules: rules(
                61,
                Version::V3,
                Family::Ipv4,
                Auth::None,
                50,
                Some(vec![v4(110), v4(111)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: MCAST4.into(),
        },
        Inst {
            rules: rules(
                62,
                Version::V3,
                Family::Ipv6,
                Auth::None,
                100,
                Some(vec![v6(0x110), v6(0x111)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC6.into(),
            dst: MCAST6.into(),
        },
        Inst {
            rules: rules(
                63,
                Version::V2,
                Family::Ipv4,
                Auth::None,
                100,
                Some(vec![v4(120), v4(121)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC4.into(),
            dst: MCAST4.into(),
        },
        // Same VRID over IPv6: a slot of its own.
        Inst {
            rules: rules(
                52,
                Version::V3,
                Family::Ipv6,
                Auth::None,
                100,
                Some(vec![v6(0x252)]),
                vec![],
            ),
            encode: EncodeOptions::default(),
            src: SRC6.into(),
            dst: MCAST6.into(),
        },
    ]
}

fn slot_of(rules: &InstanceRules) -> u32 {
    instance_slot(rules.vrid, rules.family == Family::Ipv6)
}

/// What the agent writes for an instance (backup, priority 100).
fn slot_config(inst: &Inst) -> SlotConfig {
    SlotConfig::for_rules(
        &inst.rules,
        LOCAL4.into(),
        false,
        100,
        Duration::from_secs(1),
    )
}

/// The IP packet (header built here, as the kernel would) carrying `vrrp`.
fn ip_packet(src: IpAddr, dst: IpAddr, ttl: u8, vrrp: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + vrrp.len()) as u16;
            let mut p = vec![0x45, 0xc0];
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(vrrp);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
            p.extend_from_slice(&[112, ttl]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(vrrp);
            p
        }
        _ => unreachable!("families agree"),
    }
}

/// How a corpus packet is framed.
#[derive(Clone, Copy, Debug)]
enum Wrap {
    /// As a sender on the LAN frames it: the group's multicast MAC, or our MAC for unicast.
    Ours,
    /// To a macvlan child's MAC behind our NIC.
    Child,
    /// As `Ours`, with an 802.1Q tag (VLAN 100) in front of the IP ethertype.
    Tagged,
}

/// The Ethernet frame of IP packet `ip`.
fn frame_as(ip: &[u8], wrap: Wrap) -> Vec<u8> {
    let ipv6 = ip.first().map(|b| b >> 4) == Some(6);
    let ethertype: u16 = if ipv6 { 0x86dd } else { 0x0800 };
    // The destination MAC a sender derives from the IP destination (RFC 1112 §6.4, RFC 2464 §7).
    let dst = if ipv6 {
        ip.get(24..40)
            .filter(|d| d[0] == 0xff)
            .map(|d| [0x33, 0x33, d[12], d[13], d[14], d[15]])
    } else {
        ip.get(16..20)
            .filter(|d| d[0] >> 4 == 14)
            .map(|d| [0x01, 0x00, 0x5e, d[1] & 0x7f, d[2], d[3]])
    };
    let dst = match wrap {
        Wrap::Child => CHILD_MAC,
        Wrap::Ours | Wrap::Tagged => dst.unwrap_or(OUR_MAC),
    };
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0b]);
    if let Wrap::Tagged = wrap {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

fn frame(ip: &[u8]) -> Vec<u8> {
    frame_as(ip, Wrap::Ours)
}

/// The IP packets of a classic pcap file (link type Ethernet).
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    read_pcap_frames(path)
        .into_iter()
        .map(|f| f[14..].to_vec())
        .collect()
}

/// The Ethernet frames of a classic pcap file, as they were on the wire.
fn read_pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let le = data[..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |off: usize| {
        let b: [u8; 4] = data[off..off + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut out = vec![];
    let mut off = 24;
    while off + 16 <= data.len() {
        let caplen = u32_at(off + 8) as usize;
        out.push(data[off + 16..off + 16 + caplen].to_vec());
        off += 16 + caplen;
    }
    out
}

/// The well-formed part of the corpus.
fn seeds(insts: &[Inst]) -> Vec<Vec<u8>> {
    let mut out = vec![];
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for case in [
        "v2-pass",
        "v3-ipv4",
        "v3-ipv6",
        "v3-ipv4-unicast",
        "v2-ipv6",
        "frr-v3-ipv4",
        "frr-v3-ipv6",
        "frr-v2-ipv4",
    ] {
        out.extend(read_pcap(&golden.join(case).join("capture.pcap")));
    }
    for inst in insts {
        let r = &inst.rules;
        for priority in [0u8, 1, 100, 254, 255] {
            let advert = Advert {
                version: r.version,
                vrid: r.vrid,
                priority,
                adver_int_cs: r.adver_int_cs,
                addrs: r.vips.clone().unwrap_or_else(|| {
                    vec![match r.family {
                        Family::Ipv4 => v4(99),
                        Family::Ipv6 => v6(0x99),
                    }]
                }),
                auth: r.auth,
            };
            let vrrp = advert.encode(inst.src, inst.dst, &inst.encode).unwrap();
            out.push(ip_packet(inst.src, inst.dst, 255, &vrrp));
        }
        // A foreign source for the peer check, and the VIPs in another order.
        let mut addrs = r.vips.clone().unwrap_or_default();
        addrs.reverse();
        let advert = Advert {
            version: r.version,
            vrid: r.vrid,
            priority: 100,
            adver_int_cs: r.adver_int_cs,
            addrs,
            auth: r.auth,
        };
        let other: IpAddr = match r.family {
            Family::Ipv4 => v4(77),
            Family::Ipv6 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 77).into(),
        };
        for src in [inst.src, other] {
            if let Ok(vrrp) = advert.encode(src, inst.dst, &inst.encode) {
                out.push(ip_packet(src, inst.dst, 255, &vrrp));
            }
        }
        // Other speakers': VRIDs this interface does not run (0 is nobody's), and our VRID to
        // another group.
        for vrid in [0u8, 99, 255] {
            let a = Advert {
                vrid,
                ..advert.clone()
            };
            if let Ok(vrrp) = a.encode(inst.src, inst.dst, &inst.encode) {
                out.push(ip_packet(inst.src, inst.dst, 255, &vrrp));
            }
        }
        if inst.dst.is_multicast() {
            let group: IpAddr = match r.family {
                Family::Ipv4 => OTHER4.into(),
                Family::Ipv6 => OTHER6.into(),
            };
            if let Ok(vrrp) = advert.encode(inst.src, group, &inst.encode) {
                out.push(ip_packet(inst.src, group, 255, &vrrp));
            }
            // An instance with its own group (`mcast_dst_ip`): the interface's is another's.
            let default: IpAddr = match r.family {
                Family::Ipv4 => MCAST4.into(),
                Family::Ipv6 => MCAST6.into(),
            };
            if inst.dst != default
                && let Ok(vrrp) = advert.encode(inst.src, default, &inst.encode)
            {
                out.push(ip_packet(inst.src, default, 255, &vrrp));
            }
        }
        // Sent to our unicast address with TTL 254 (a router on the way): only a unicast
        // instance waives the TTL check; a multicast one beside it does not.
        let local: IpAddr = match r.family {
            Family::Ipv4 => LOCAL4.into(),
            Family::Ipv6 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).into(),
        };
        if let Ok(vrrp) = advert.encode(inst.src, local, &inst.encode) {
            out.push(ip_packet(inst.src, local, 254, &vrrp));
            out.push(ip_packet(inst.src, local, 255, &vrrp));
            // Across a peer's TTL bounds (`min_ttl` / `max_ttl`).
            for (_, range) in &r.peer_ttl {
                for ttl in [
                    range.min_ttl.saturating_sub(1),
                    range.min_ttl,
                    range.max_ttl,
                    range.max_ttl.saturating_add(1),
                ] {
                    out.push(ip_packet(inst.src, local, ttl, &vrrp));
                }
            }
        }
    }
    out
}

/// xorshift64*: the mutations are reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(p: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = p.to_vec();
    if m.is_empty() {
        return vec![rng.next() as u8];
    }
    let vrrp_at = match m.first().map(|b| b >> 4) {
        Some(4) => usize::from(m[0] & 0x0f) * 4,
        _ => 40,
    };
    match rng.below(9) {
        0 | 1 => {
            let i = rng.below(m.len());
            m[i] ^= 1 << rng.below(8);
        }
        2 => m.truncate(rng.below(m.len())),
        3 => m.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
        // TTL / hop limit.
        4 if m.len() > 8 => {
            let at = if m[0] >> 4 == 4 { 8 } else { 7 };
            m[at] = [254, 1, 0, 255][rng.below(4)];
        }
        // The IP length fields.
        5 if m.len() > 6 => {
            let at = if m[0] >> 4 == 4 { 2 } else { 4 };
            let v = u16::from_be_bytes([m[at], m[at + 1]]);
            let v = v.wrapping_add([1, 4, 0xfffc, 0xffff, 8][rng.below(5)]);
            m[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        // Version / type nibble, VRID, count.
        6 if m.len() > vrrp_at + 3 => {
            let at = vrrp_at + rng.below(4);
            m[at] = rng.next() as u8;
        }
        // IHL, fragment bits, protocol.
        7 if m.len() > 9 && m[0] >> 4 == 4 => match rng.below(3) {
            0 => m[0] = 0x40 | (rng.next() as u8 & 0x0f),
            1 => m[6] |= 0x20,
            _ => m[9] = [111, 113, 51, 112][rng.below(4)],
        },
        _ => {
            let i = rng.below(m.len());
            m[i] = rng.next() as u8;
        }
    }
    m
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Pass,
    Foreign(u8),
    Reject(u8, RejectReason),
    Valid(u32),
}

/// The codec's verdict on an Ethernet frame arriving on the test interface.
fn expected(frame: &[u8], opts: &DecodeOptions, rules: &[InstanceRules]) -> Expect {
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    // As `rx::l3_offset`: one tag skipped.
    let (ethertype, l3) = match be16(12) {
        Some(0x8100 | 0x88a8) => (be16(16), 18),
        t => (t, 14),
    };
    if !matches!(ethertype, Some(0x0800 | 0x86dd)) {
        return Expect::Pass;
    }
    let ip = frame.get(l3..).unwrap_or_default();
    let rx = receiver(rules);
    match receive_ip(ip, Arrival::of_frame(frame, OUR_MAC), &rx, opts) {
        Verdict::NotVrrp => Expect::Pass,
        Verdict::Foreign { vrid } => Expect::Foreign(vrid),
        Verdict::Rejected { vrid, reason } => Expect::Reject(vrid, reason),
        Verdict::Valid { instance, .. } => Expect::Valid(slot_of(&rules[instance])),
    }
}

fn observe(
    dp: &XdpDatapath,
    frame: &[u8],
    expect: &Expect,
    drop_foreign: bool,
) -> Result<(), String> {
    let before = |e: &Expect| match e {
        Expect::Pass => 0,
        Expect::Foreign(v) => dp.foreign(*v).unwrap() + (dp.rx_adverts(*v).unwrap() << 32),
        Expect::Reject(v, r) => dp.rejected(*v, *r).unwrap() + (dp.rx_adverts(*v).unwrap() << 32),
        Expect::Valid(s) => dp.accepted(*s).unwrap(),
    };
    let b = before(expect);
    let (verdict, _) = dp.test_run(frame, 1).map_err(|e| e.to_string())?;
    let a = before(expect);
    let want_verdict = match expect {
        Expect::Pass => XDP_PASS,
        Expect::Foreign(_) if !drop_foreign => XDP_PASS,
        _ => XDP_DROP,
    };
    let want_delta = match expect {
        Expect::Pass => 0,
        // Counted as another speaker's, not among the adverts seen.
        Expect::Foreign(_) => 1,
        Expect::Reject(..) => 1 + (1 << 32),
        Expect::Valid(_) => 1,
    };
    if verdict != want_verdict || a - b != want_delta {
        return Err(format!(
            "codec says {expect:?}; XDP returned {verdict} and moved the counters by {:#x}",
            a - b
        ));
    }
    Ok(())
}

fn load() -> XdpDatapath {
    XdpDatapath::load_detached()
        .expect("loading vrrp_rx and vip_fence (needs root/CAP_BPF and `cargo xtask build-ebpf`)")
}

/// Runs every frame through both and panics at the first disagreement; the verdicts seen.
fn judge_all(
    dp: &XdpDatapath,
    corpus: &[Vec<u8>],
    opts: &DecodeOptions,
    rules: &[InstanceRules],
    drop_foreign: bool,
    seed: u64,
) -> HashMap<String, usize> {
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for (n, f) in corpus.iter().enumerate() {
        let e = expected(f, opts, rules);
        *kinds
            .entry(match &e {
                Expect::Pass => "pass".into(),
                Expect::Foreign(_) => "foreign".into(),
                Expect::Reject(_, r) => r.as_str().to_owned(),
                Expect::Valid(_) => "valid".into(),
            })
            .or_default() += 1;
        if let Err(msg) = observe(dp, f, &e, drop_foreign) {
            panic!("frame #{n} (seed {seed}) {f:02x?}: {msg}");
        }
    }
    kinds
}

/// Frames for IP packets: each as its sender frames it, and every fourth also to a macvlan
/// child's MAC and VLAN-tagged.
fn frames(ips: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(ips.len() * 3 / 2);
    for (k, ip) in ips.iter().enumerate() {
        out.push(frame(ip));
        if k % 4 == 0 {
            out.push(frame_as(ip, Wrap::Child));
            out.push(frame_as(ip, Wrap::Tagged));
        }
    }
    out
}

fn run_corpus(opts: DecodeOptions, flags: u32) -> usize {
    let insts = instances();
    let mut dp = load();
    let slots: Vec<SlotConfig> = insts.iter().map(slot_config).collect();
    dp.configure(global(flags), &slots).unwrap();
    let rules: Vec<InstanceRules> = insts.iter().map(|i| i.rules.clone()).collect();
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234);
    let mutants: usize = std::env::var("PARITY_MUTANTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let mut rng = Rng(seed | 1);
    let mut corpus = seeds(&insts);
    for p in corpus.clone() {
        for _ in 0..mutants {
            let m = mutate(&p, &mut rng);
            // Mutants of mutants reach deeper (a fixed length field and then a bit flip).
            let m2 = mutate(&m, &mut rng);
            corpus.push(m);
            corpus.push(m2);
        }
    }
    corpus.push(vec![]);
    let corpus = frames(&corpus);
    let drop_foreign = flags & rx_flags::DROP_FOREIGN != 0;
    let kinds = judge_all(&dp, &corpus, &opts, &rules, drop_foreign, seed);
    eprintln!("{} frames: {kinds:?}", corpus.len());
    // The corpus reaches every verdict the rules can give, or the comparison proves little.
    // (`unknown_vrid` is no longer a rejection: another speaker's VRID is `foreign`.)
    for kind in [
        "pass",
        "foreign",
        "valid",
        "truncated",
        "ttl_not_255",
        "bad_version",
        "bad_type",
        "length_mismatch",
        "bad_checksum",
        "auth_mismatch",
        "address_list_mismatch",
        "peer_not_allowed",
        "ttl_out_of_range",
    ] {
        assert!(kinds.contains_key(kind), "no packet was {kind}: {kinds:?}");
    }
    corpus.len()
}

/// FRR's adverts as they were on the wire, from its macvlan (source MAC 00:00:5e:00:0x:VRID,
/// over IPv6 from the macvlan's link-local), are valid adverts for the codec and XDP alike.
#[test]
fn frr_adverts_from_the_virtual_mac_are_valid() {
    let insts = instances();
    let mut dp = load();
    let slots: Vec<SlotConfig> = insts.iter().map(slot_config).collect();
    dp.configure(global(rx_flags::V3_V4_PSEUDO), &slots)
        .unwrap();
    let rules: Vec<InstanceRules> = insts.iter().map(|i| i.rules.clone()).collect();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for case in ["frr-v3-ipv4", "frr-v3-ipv6", "frr-v2-ipv4"] {
        let frames = read_pcap_frames(&golden.join(case).join("capture.pcap"));
        assert!(frames.len() >= 2, "{case}: {} frames", frames.len());
        for (n, f) in frames.iter().enumerate() {
            assert_eq!(
                f[6..10],
                [0, 0, 0x5e, 0],
                "{case} #{n}: from the virtual MAC"
            );
            let e = expected(f, &DecodeOptions::default(), &rules);
            assert!(
                matches!(e, Expect::Valid(_)),
                "{case} #{n}: codec says {e:?}"
            );
            observe(&dp, f, &e, false).unwrap_or_else(|m| panic!("{case} #{n}: {m}"));
        }
    }
}

#[test]
fn xdp_and_codec_agree_on_every_packet() {
    let n = run_corpus(DecodeOptions::default(), rx_flags::V3_V4_PSEUDO);
    assert!(n > 10_000, "{n} packets");
}

/// Also `--xdp-drop-foreign`: other speakers' adverts are dropped, still counted as foreign.
#[test]
fn xdp_and_codec_agree_with_either_checksum_and_drop_foreign() {
    let opts = DecodeOptions {
        v3_ipv4_checksum: V3Ipv4Checksum::Either,
        unicast_any_ttl: false,
    };
    run_corpus(
        opts,
        rx_flags::V3_V4_PSEUDO | rx_flags::V3_V4_AS_V2 | rx_flags::DROP_FOREIGN,
    );
}

/// `vrrp_rx` checks an address list in one of three ways (up to `RX_INLINE_VIPS` VIPs compared
/// with the copy in `RX_INSTANCE`, up to 16 looked up in `ADV_ADDRS` in place, more in a
/// `bpf_loop`) and sums a message in place up to 64 words, in a `bpf_loop` beyond: lists of
/// every size across those limits, both families, v2 with PASS auth, a VIP listed twice and
/// lists that are not checked, with their mutants, get the codec's verdicts.
#[test]
fn xdp_and_codec_agree_on_address_lists_of_every_length() {
    let v4s = |vrid: u8, n: u8| -> Vec<IpAddr> {
        (0..n)
            .map(|k| Ipv4Addr::new(198, 18, vrid, k).into())
            .collect()
    };
    let v6s = |vrid: u16, n: u16| -> Vec<IpAddr> {
        (0..n)
            .map(|k| Ipv6Addr::new(0x2001, 0xdb8, vrid, 0, 0, 0, 0, k + 1).into())
            .collect()
    };
    let inst = |vrid, version, auth, cs, vips: Option<Vec<IpAddr>>, ipv6: bool| Inst {
        rules: InstanceRules {
            vrid,
            version,
            family: if ipv6 { Family::Ipv6 } else { Family::Ipv4 },
            auth,
            adver_int_cs: cs,
            vips,
            unicast_peers: vec![],
            unicast_any_ttl: false,
            peer_ttl: vec![],
            group: None,
        },
        encode: EncodeOptions::default(),
        src: if ipv6 { SRC6.into() } else { SRC4.into() },
        dst: if ipv6 { MCAST6.into() } else { MCAST4.into() },
    };
    let mut dup = v4s(60, 3);
    dup.push(dup[0]);
    let pw = Auth::pass("pw");
    let insts = vec![
        // Inline: one VIP, a full inline list, a VIP listed twice.
        inst(61, Version::V3, Auth::None, 1, Some(v4s(61, 1)), false),
        inst(62, Version::V3, Auth::None, 1, Some(v4s(62, 8)), false),
        inst(60, Version::V3, Auth::None, 1, Some(dup), false),
        inst(63, Version::V2, pw, 100, Some(v4s(63, 8)), false),
        inst(64, Version::V3, Auth::None, 1, Some(v6s(64, 8)), true),
        // ADV_ADDRS in place: 9 and 16 VIPs; IPv6 16 VIPs is 66 words (bpf_loop sum).
        inst(65, Version::V3, Auth::None, 1, Some(v4s(65, 9)), false),
        inst(66, Version::V3, Auth::None, 1, Some(v4s(66, 16)), false),
        inst(67, Version::V2, pw, 100, Some(v4s(67, 16)), false),
        inst(68, Version::V3, Auth::None, 1, Some(v6s(68, 16)), true),
        // bpf_loop: 17 VIPs (summed in place), 63 (65 words: summed in a loop too).
        inst(69, Version::V3, Auth::None, 1, Some(v4s(69, 17)), false),
        inst(70, Version::V3, Auth::None, 1, Some(v4s(70, 63)), false),
        inst(71, Version::V3, Auth::None, 1, Some(v6s(71, 17)), true),
        // Not checked (skip_check_adv_addr): long lists only summed.
        inst(72, Version::V3, Auth::None, 1, None, false),
        inst(73, Version::V3, Auth::None, 1, None, true),
    ];
    let mut dp = load();
    let slots: Vec<SlotConfig> = insts.iter().map(slot_config).collect();
    dp.configure(global(rx_flags::V3_V4_PSEUDO), &slots)
        .unwrap();
    let rules: Vec<InstanceRules> = insts.iter().map(|i| i.rules.clone()).collect();

    let mut corpus = vec![];
    for i in &insts {
        let r = &i.rules;
        let ours = r.vips.clone().unwrap_or_else(|| match r.family {
            Family::Ipv4 => v4s(r.vrid, 255),
            // 200 × 16 bytes: BPF_PROG_TEST_RUN takes one page of packet.
            Family::Ipv6 => v6s(u16::from(r.vrid), 200),
        });
        let foreign: IpAddr = match r.family {
            Family::Ipv4 => v4(99),
            Family::Ipv6 => v6(0x99),
        };
        let mut lists = vec![ours.clone()];
        let mut reversed = ours.clone();
        reversed.reverse();
        lists.push(reversed);
        for k in [0, ours.len() / 2, ours.len() - 1] {
            let mut l = ours.clone();
            l[k] = foreign;
            lists.push(l);
            let mut l = ours.clone();
            l[k] = ours[(k + 1) % ours.len()];
            lists.push(l);
        }
        let mut longer = ours.clone();
        longer.push(foreign);
        lists.push(longer);
        lists.push(ours[1..].to_vec());
        for addrs in lists {
            let advert = Advert {
                version: r.version,
                vrid: r.vrid,
                priority: 100,
                adver_int_cs: r.adver_int_cs,
                addrs,
                auth: r.auth,
            };
            if let Ok(vrrp) = advert.encode(i.src, i.dst, &i.encode) {
                corpus.push(ip_packet(i.src, i.dst, 255, &vrrp));
            }
        }
    }
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234);
    let mut rng = Rng(seed | 1);
    for p in corpus.clone() {
        for _ in 0..16 {
            let m = mutate(&p, &mut rng);
            let m2 = mutate(&m, &mut rng);
            corpus.push(m);
            corpus.push(m2);
        }
    }
    let corpus = frames(&corpus);
    let kinds = judge_all(&dp, &corpus, &DecodeOptions::default(), &rules, false, seed);
    eprintln!("{} frames: {kinds:?}", corpus.len());
    for kind in [
        "valid",
        "address_list_mismatch",
        "bad_checksum",
        "length_mismatch",
    ] {
        assert!(kinds.contains_key(kind), "no packet was {kind}: {kinds:?}");
    }
    // Every instance accepted its own list, so every path ran.
    for i in &insts {
        assert!(
            dp.accepted(slot_of(&i.rules)).unwrap() > 0,
            "VRID {} ({:?}): no valid advert",
            i.rules.vrid,
            i.rules.family
        );
    }
}

/// A valid advert updates the peer record and, when it changes something, sends an event; one
/// that preempts a slot we are Master of fences the slot in the kernel at once.
#[test]
fn valid_adverts_update_the_peer_record_events_and_kernel_fence() {
    let insts = instances();
    let inst = &insts[1]; // v3 IPv4, VRID 52
    let mut dp = load();
    let slots: Vec<SlotConfig> = insts.iter().map(slot_config).collect();
    dp.configure(global(rx_flags::V3_V4_PSEUDO), &slots)
        .unwrap();
    let slot = slot_of(&inst.rules);
    let mut events = dp.take_events().expect("the ring buffer");
    let send = |dp: &XdpDatapath, priority: u8| {
        let advert = Advert {
            version: Version::V3,
            vrid: 52,
            priority,
            adver_int_cs: 1,
            addrs: vec![v4(210)],
            auth: Auth::None,
        };
        let vrrp = advert.encode(inst.src, inst.dst, &inst.encode).unwrap();
        let (verdict, _) = dp
            .test_run(&frame(&ip_packet(inst.src, inst.dst, 255, &vrrp)), 1)
            .unwrap();
        assert_eq!(verdict, XDP_DROP, "a valid advert is consumed");
    };
    let mut drain = || {
        let mut out = vec![];
        while let Some(item) = events.next() {
            out.push(*bytemuck::from_bytes::<PeerEvent>(&item[..]));
        }
        out
    };

    let t0 = monotonic_ns();
    send(&dp, 90);
    let peer = dp.peer(slot).unwrap();
    assert!(peer.last_seen_ns >= t0, "{peer:?}");
    assert_eq!(
        (peer.src, peer.priority, peer.adver_int_cs),
        (addr16(inst.src), 90, 1)
    );
    assert!(instant_of(peer.last_seen_ns) <= std::time::Instant::now());
    let ev = drain();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].why & event_why::NEW_SOURCE, event_why::NEW_SOURCE);
    assert_eq!((ev[0].slot as u32, ev[0].priority), (slot, 90));

    // The same advert again: nothing the election cares about changed.
    send(&dp, 90);
    assert!(drain().is_empty(), "no event for an unchanged advert");
    assert!(dp.peer(slot).unwrap().last_seen_ns > peer.last_seen_ns);

    // A priority change is an event; priority 0 always is.
    send(&dp, 80);
    assert_eq!(drain()[0].why, event_why::PRIORITY);
    send(&dp, 0);
    send(&dp, 0);
    let ev = drain();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev.iter().all(|e| e.why & event_why::RESIGN != 0));

    // Master at priority 100: a lower advert is an event but no fence; a higher one fences.
    dp.set_state(slot, true, 100).unwrap();
    send(&dp, 99);
    assert!(!dp.slot_fenced(slot).unwrap());
    assert_eq!(
        drain()[0].why & event_why::WHILE_MASTER,
        event_why::WHILE_MASTER
    );
    send(&dp, 101);
    assert!(
        dp.slot_fenced(slot).unwrap(),
        "a preempting advert fences the slot"
    );
    assert_ne!(drain()[0].why & event_why::FENCED, 0);
    dp.clear_slot_fence(slot).unwrap();
    // Equal priority: the higher address wins (192.0.2.2 > our 192.0.2.1).
    send(&dp, 100);
    assert!(
        dp.slot_fenced(slot).unwrap(),
        "tie lost to the higher address"
    );
    dp.clear_slot_fence(slot).unwrap();
    // Not master: no kernel fence whatever the priority.
    dp.set_state(slot, false, 100).unwrap();
    send(&dp, 200);
    assert!(!dp.slot_fenced(slot).unwrap());
}

/// Random frames, not only mutants of adverts: whatever arrives, `vrrp_rx` returns PASS or
/// DROP (never ABORTED, TX or REDIRECT), passes every frame that is not IPv4 or IPv6 (ARP,
/// VLAN tags, junk ethertypes), and on random IP packets, half of them claiming protocol 112,
/// agrees with the codec as for the corpus.
#[test]
fn random_frames_only_pass_or_drop() {
    let insts = instances();
    let mut dp = load();
    let slots: Vec<SlotConfig> = insts.iter().map(slot_config).collect();
    dp.configure(global(rx_flags::V3_V4_PSEUDO), &slots)
        .unwrap();
    let rules: Vec<InstanceRules> = insts.iter().map(|i| i.rules.clone()).collect();
    let vrids: Vec<u8> = rules.iter().map(|r| r.vrid).collect();
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234);
    let mut rng = Rng(seed | 1);
    let bytes = |rng: &mut Rng, n: usize| (0..n).map(|_| rng.next() as u8).collect::<Vec<_>>();
    let (mut passed, mut dropped) = (0usize, 0usize);
    for n in 0..20_000 {
        // BPF_PROG_TEST_RUN wants at least an Ethernet header; up to a full MTU.
        let len = match rng.below(4) {
            0 => 14 + rng.below(40),
            1 | 2 => 14 + rng.below(200),
            _ => 14 + rng.below(1500),
        };
        let mut f = bytes(&mut rng, len);
        let ethertype = match rng.below(8) {
            0..=2 => 0x0800,
            3..=5 => 0x86dd,
            6 => [0x0806, 0x8100, 0x88a8, 0x88cc][rng.below(4)],
            _ => u16::from_be_bytes([f[12], f[13]]),
        };
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        let ip = f.len() > 14 && matches!(ethertype, 0x0800 | 0x86dd);
        if ip {
            // The version nibble to match the ethertype, and often protocol 112, or the
            // program never looks past the IP header.
            let v6 = ethertype == 0x86dd;
            f[14] = if v6 {
                0x60 | (f[14] & 0x0f)
            } else {
                0x40 | (f[14] & 0x0f)
            };
            let proto_at = 14 + if v6 { 6 } else { 9 };
            if rng.below(2) == 0 && f.len() > proto_at {
                f[proto_at] = 112;
                // Mostly ours (a VRID we run, to our group or our MAC), or nearly all of it
                // would be another speaker's and never reach the checks.
                let vrid_at =
                    14 + if v6 {
                        40
                    } else {
                        usize::from(f[14] & 0x0f) * 4
                    } + 1;
                if rng.below(4) != 0 && vrid_at < f.len() {
                    f[vrid_at] = vrids[rng.below(vrids.len())];
                    let (dst, group) = if v6 {
                        (38, MCAST6.octets().to_vec())
                    } else {
                        (30, MCAST4.octets().to_vec())
                    };
                    if rng.below(2) == 0 && f.len() >= dst + group.len() {
                        f[dst..dst + group.len()].copy_from_slice(&group);
                    } else {
                        f[..6].copy_from_slice(&OUR_MAC);
                    }
                }
            }
        }
        let (verdict, _) = dp.test_run(&f, 1).expect("BPF_PROG_TEST_RUN");
        assert!(
            verdict == XDP_PASS || verdict == XDP_DROP,
            "frame #{n} (seed {seed}) {f:02x?}: verdict {verdict}"
        );
        if verdict == XDP_PASS {
            passed += 1;
        } else {
            dropped += 1;
        }
        if !ip {
            assert_eq!(
                verdict, XDP_PASS,
                "frame #{n} (seed {seed}), ethertype {ethertype:#06x}, not IP: {f:02x?}"
            );
        } else {
            let expect = expected(&f, &DecodeOptions::default(), &rules);
            if let Err(msg) = observe(&dp, &f, &expect, false) {
                panic!("random frame #{n} (seed {seed}) {f:02x?}: {msg}");
            }
        }
    }
    eprintln!("20000 random frames: {passed} passed, {dropped} dropped");
    assert!(
        dropped > 1000,
        "random VRRP must reach the checks: {dropped} dropped"
    );
}

/// Issue 13 items 2 and 7, spelled out: each case's verdict is fixed here, and both sides must
/// give it. Other speakers' adverts (a VRID we do not run, another group, a unicast frame to a
/// macvlan child's MAC, a VLAN-tagged frame, even malformed) pass to the stack, counted; the TTL
/// waiver belongs to the unicast instance alone: a multicast instance on the same interface
/// still rejects TTL 254, even on an advert sent to our unicast address.
#[test]
fn other_speakers_pass_and_the_ttl_waiver_is_per_instance() {
    let insts = instances();
    let mut dp = load();
    let slots: Vec<SlotConfig> = insts.iter().map(slot_config).collect();
    dp.configure(global(rx_flags::V3_V4_PSEUDO), &slots)
        .unwrap();
    let rules: Vec<InstanceRules> = insts.iter().map(|i| i.rules.clone()).collect();
    let find = |vrid: u8| insts.iter().find(|i| i.rules.vrid == vrid).unwrap();
    let encode = |inst: &Inst, vrid: u8, dst: IpAddr, ttl: u8| {
        let r = &inst.rules;
        let advert = Advert {
            version: r.version,
            vrid,
            priority: 100,
            adver_int_cs: r.adver_int_cs,
            addrs: r.vips.clone().unwrap(),
            auth: r.auth,
        };
        ip_packet(
            inst.src,
            dst,
            ttl,
            &advert.encode(inst.src, dst, &inst.encode).unwrap(),
        )
    };
    let (m52, u57) = (find(52), find(57));
    let mut broken = encode(m52, 99, MCAST4.into(), 1);
    broken[20 + 6] ^= 0xff; // and a bad checksum: theirs to judge
    let slot52 = instance_slot(52, false);
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "our VRID, our group",
            frame(&encode(m52, 52, MCAST4.into(), 255)),
            Expect::Valid(slot52),
        ),
        (
            "a VRID we do not run",
            frame(&encode(m52, 99, MCAST4.into(), 255)),
            Expect::Foreign(99),
        ),
        (
            "another VRID, malformed",
            frame(&broken),
            Expect::Foreign(99),
        ),
        (
            "our VRID to another group",
            frame(&encode(m52, 52, OTHER4.into(), 255)),
            Expect::Foreign(52),
        ),
        (
            "our VRID, VLAN-tagged",
            frame_as(&encode(m52, 52, MCAST4.into(), 255), Wrap::Tagged),
            Expect::Foreign(52),
        ),
        (
            "our unicast VRID to a macvlan child's MAC",
            frame_as(&encode(u57, 57, LOCAL4.into(), 255), Wrap::Child),
            Expect::Foreign(57),
        ),
        (
            "unicast instance, unicast advert, TTL 64",
            frame(&encode(u57, 57, LOCAL4.into(), 64)),
            Expect::Valid(instance_slot(57, false)),
        ),
        (
            "multicast instance, multicast advert, TTL 254",
            frame(&encode(m52, 52, MCAST4.into(), 254)),
            Expect::Reject(52, RejectReason::TtlNot255),
        ),
        (
            "multicast instance beside a unicast one, unicast advert, TTL 254",
            frame(&encode(m52, 52, LOCAL4.into(), 254)),
            Expect::Reject(52, RejectReason::TtlNot255),
        ),
    ];
    for (what, f, want) in &cases {
        let codec = expected(f, &DecodeOptions::default(), &rules);
        assert_eq!(&codec, want, "{what}: the codec");
        observe(&dp, f, want, false).unwrap_or_else(|e| panic!("{what}: XDP: {e}"));
    }
    // --xdp-drop-foreign: the same frames, other speakers' dropped (still counted).
    dp.configure(
        global(rx_flags::V3_V4_PSEUDO | rx_flags::DROP_FOREIGN),
        &slots,
    )
    .unwrap();
    for (what, f, want) in &cases {
        observe(&dp, f, want, true)
            .unwrap_or_else(|e| panic!("{what}, --xdp-drop-foreign: XDP: {e}"));
    }
}

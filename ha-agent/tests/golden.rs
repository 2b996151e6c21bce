//! Golden vectors: adverts captured from keepalived 2.2.7 and FRR 8.4's vrrpd (see
//! `tests/golden/README.md`; an `frr-*` case's `keepalived.conf` is ha-agent's equivalent of its
//! `frr.conf`).
//!
//! Every case's `keepalived.conf` goes through the agent's own path: `config::load`, then
//! `agent::plan::build` (with the facts of `va`, keepalived's interface in `capture.sh`, so the
//! host's interfaces do not matter), then the state machine (`vrrp::Instance`) for the priority
//! and interval of each advert, then `InstancePlan::encode_adverts`, the runtime's encoder.
//! Every captured packet must
//! - be byte-identical, in its VRRP part, to what that path sends: the adverts as MASTER and
//!   the priority-0 one on shutdown (SIGTERM), checksum included (the IP header is the
//!   kernel's);
//! - decode (from the IP header) to the configured fields, from the planned source to a planned
//!   destination, and pass `validate` against the planned rules;
//! - be rejected after any single-bit change of its VRRP part.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ha_agent::agent::plan::{self, IfFacts, InstancePlan};
use ha_agent::config;
use ha_agent::vrrp::instance::{Action, Event, Instance, State};
use ha_agent::vrrp::packet::{
    Advert, Auth, DecodeOptions, Family, InstanceRules, Version, decode_ip, validate,
};
use ha_common::RejectReason;

/// The address of `va`, keepalived's interface in `capture.sh`.
const VA_IPV4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The link-local address of `va` (EUI-64 of its MAC 02:00:00:00:00:0a), keepalived's IPv6
/// source (RFC 5798 §5.1.2.1).
const VA_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a);
const VA_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];

const CASES: [&str; 8] = [
    "v2-pass",
    "v3-ipv4",
    "v3-ipv6",
    "v3-ipv4-unicast",
    "v2-ipv6",
    "frr-v3-ipv4",
    "frr-v3-ipv6",
    "frr-v2-ipv4",
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A case's only `vrrp_instance` as the agent plans it, with `va`'s facts for every interface
/// the file names.
fn load_plan(path: &Path) -> (config::VrrpInstance, InstancePlan) {
    let loaded = config::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let facts: HashMap<String, IfFacts> = plan::interfaces(&loaded.config)
        .into_iter()
        .map(|name| {
            let va = IfFacts {
                index: 2,
                mac: Some(VA_MAC),
                primary_v4: Some(VA_IPV4),
                link_local_v6: Some(VA_LINK_LOCAL),
                running: true,
            };
            (name, va)
        })
        .collect();
    let mut p =
        plan::build(&loaded.config, &facts).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    assert_eq!(
        p.instances.len(),
        1,
        "{}: one vrrp_instance",
        path.display()
    );
    (loaded.config.instances[0].clone(), p.instances.remove(0))
}

/// An `Action::SendAdvert`: priority and interval.
type Send = (u8, u16);

/// The `SendAdvert`s of the planned state machine from startup to its second advert as MASTER,
/// and then on shutdown.
fn machine_adverts(p: &InstancePlan) -> (Vec<Send>, Vec<Send>) {
    let sends = |actions: Vec<Action>| -> Vec<Send> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::SendAdvert {
                    priority,
                    adver_int_cs,
                } => Some((priority, adver_int_cs)),
                _ => None,
            })
            .collect()
    };
    let mut m = Instance::new(p.machine.clone()).unwrap();
    let mut now = Instant::now();
    let mut as_master = sends(m.handle(now, Event::Startup));
    // Alone on the link: the Master_Down_Timer fires, then one Adver_Timer.
    while as_master.len() < 2 {
        now = m.next_timeout().expect("a timer is armed");
        as_master.extend(sends(m.handle(now, Event::TimerFired)));
    }
    assert_eq!(m.state(), State::Master);
    (as_master, sends(m.handle(now, Event::Shutdown)))
}

/// The source and destination of an IP packet (the tests' own header arithmetic).
fn ip_addrs(ip: &[u8]) -> (IpAddr, IpAddr) {
    match ip[0] >> 4 {
        4 => {
            let a = |o: usize| IpAddr::from(<[u8; 4]>::try_from(&ip[o..o + 4]).unwrap());
            (a(12), a(16))
        }
        6 => {
            let a = |o: usize| IpAddr::from(<[u8; 16]>::try_from(&ip[o..o + 16]).unwrap());
            (a(8), a(24))
        }
        v => panic!("IP version {v}"),
    }
}

/// The packets of a classic pcap file (not pcapng), link type Ethernet, each returned from its
/// IP header on.
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let u32_at = |off: usize, le: bool| {
        let b: [u8; 4] = data[off..off + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let le = match &data[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("{}: not a pcap file (magic {m:02x?})", path.display()),
    };
    assert_eq!(u32_at(20, le), 1, "link type Ethernet");
    let mut packets = vec![];
    let mut off = 24;
    while off < data.len() {
        let caplen = u32_at(off + 8, le) as usize;
        let origlen = u32_at(off + 12, le) as usize;
        assert_eq!(caplen, origlen, "capture with -s 0");
        let frame = &data[off + 16..off + 16 + caplen];
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        assert!(
            ethertype == 0x0800 || ethertype == 0x86dd,
            "ethertype {ethertype:#06x}"
        );
        packets.push(frame[14..].to_vec());
        off += 16 + caplen;
    }
    packets
}

/// The VRRP part of an IP packet (the tests' own header arithmetic, independent of the codec).
fn vrrp_part(ip: &[u8]) -> &[u8] {
    match ip[0] >> 4 {
        4 => &ip[usize::from(ip[0] & 0x0f) * 4..usize::from(u16::from_be_bytes([ip[2], ip[3]]))],
        6 => &ip[40..40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))],
        v => panic!("IP version {v}"),
    }
}

struct Case {
    name: &'static str,
    /// The instance as the configuration parser read it.
    conf: config::VrrpInstance,
    plan: InstancePlan,
    packets: Vec<Vec<u8>>,
}

impl Case {
    fn family(&self) -> Family {
        self.plan.family
    }

    /// The advert the plan sends with `priority`.
    fn advert(&self, priority: u8) -> Advert {
        Advert {
            priority,
            ..self.plan.advert.clone()
        }
    }

    /// The planned rules, from a receiver's view: a unicast instance's adverts come from our
    /// source.
    fn rules(&self) -> InstanceRules {
        let unicast = !self.plan.destinations.iter().any(IpAddr::is_multicast);
        InstanceRules {
            unicast_peers: if unicast { vec![self.plan.src] } else { vec![] },
            ..self.plan.rules.clone()
        }
    }
}

fn cases() -> Vec<Case> {
    CASES
        .iter()
        .map(|name| {
            let dir = golden_dir().join(name);
            let (conf, plan) = load_plan(&dir.join("keepalived.conf"));
            Case {
                name,
                conf,
                plan,
                packets: read_pcap(&dir.join("capture.pcap")),
            }
        })
        .collect()
}

#[test]
fn every_case_directory_is_tested() {
    let mut dirs: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.to_string()).collect();
    cases.sort();
    assert_eq!(dirs, cases);
}

#[test]
fn keepalived_adverts_decode_to_the_configured_fields() {
    let opts = DecodeOptions::default();
    for case in cases() {
        assert!(
            case.packets.len() >= 2,
            "{}: adverts as MASTER and the shutdown one",
            case.name
        );
        let last = case.packets.len() - 1;
        for (i, ip) in case.packets.iter().enumerate() {
            let what = format!("{} packet {i}", case.name);
            let rx = decode_ip(ip, &opts).unwrap_or_else(|r| panic!("{what}: {}", r.as_str()));
            let priority = if i == last { 0 } else { case.conf.priority };
            assert_eq!(rx.advert, case.advert(priority), "{what}");
            assert_eq!((rx.src, rx.ttl), (case.plan.src, 255), "{what}");
            assert!(
                case.plan.destinations.contains(&rx.dst),
                "{what}: to {}, planned {:?}",
                rx.dst,
                case.plan.destinations
            );
            assert_eq!(
                validate(&rx.advert, rx.src, &case.rules()),
                Ok(()),
                "{what}"
            );
        }
    }
}

#[test]
fn ha_agent_encodes_the_same_bytes_as_keepalived() {
    for case in cases() {
        let (as_master, on_shutdown) = machine_adverts(&case.plan);
        // Every periodic advert is the same; the state machine sends one on shutdown.
        assert!(as_master.windows(2).all(|w| w[0] == w[1]), "{as_master:?}");
        assert_eq!(on_shutdown.len(), 1, "{}: {on_shutdown:?}", case.name);
        assert_eq!(
            on_shutdown[0].0, 0,
            "{}: resigns with priority 0",
            case.name
        );
        let last = case.packets.len() - 1;
        for (i, ip) in case.packets.iter().enumerate() {
            let what = format!("{} packet {i}", case.name);
            let (priority, adver_int_cs) = if i == last {
                on_shutdown[0]
            } else {
                as_master[0]
            };
            let ours = case
                .plan
                .encode_adverts(priority, adver_int_cs)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let (src, dst) = ip_addrs(ip);
            assert_eq!(src, case.plan.src, "{what}: source");
            let Some((_, bytes)) = ours.iter().find(|(d, _)| *d == dst) else {
                panic!("{what}: sent to {dst}, ha-agent sends to {ours:?}");
            };
            assert_eq!(bytes.as_slice(), vrrp_part(ip), "{what}");
        }
    }
}

#[test]
fn any_single_bit_flip_in_the_vrrp_part_is_rejected() {
    // The Internet checksum catches every single-bit error; some flips trip an earlier check.
    let opts = DecodeOptions::default();
    for case in cases() {
        let ip = &case.packets[0];
        let start = ip.len() - vrrp_part(ip).len();
        for byte in start..ip.len() {
            for bit in 0..8 {
                let mut p = ip.clone();
                p[byte] ^= 1 << bit;
                assert!(
                    decode_ip(&p, &opts).is_err(),
                    "{}: flip of bit {bit} of VRRP byte {} accepted",
                    case.name,
                    byte - start
                );
            }
        }
    }
}

#[test]
fn instance_mismatches_are_rejected_with_their_reason() {
    for case in cases() {
        let rx = decode_ip(&case.packets[0], &DecodeOptions::default()).unwrap();
        let check = |edit: &dyn Fn(&mut InstanceRules)| {
            let mut rules = case.rules();
            edit(&mut rules);
            validate(&rx.advert, rx.src, &rules)
        };
        let version = case.plan.advert.version;
        let other_version = match version {
            Version::V2 => Version::V3,
            Version::V3 => Version::V2,
        };
        assert_eq!(
            check(&|r| r.vrid ^= 1),
            Err(RejectReason::UnknownVrid),
            "{}",
            case.name
        );
        assert_eq!(
            check(&|r| r.version = other_version),
            Err(RejectReason::BadVersion)
        );
        let mut fewer = case.plan.advert.addrs.clone();
        fewer.pop();
        assert_eq!(
            check(&|r| r.vips = Some(fewer.clone())),
            Err(RejectReason::AddressListMismatch)
        );
        assert_eq!(
            check(&|r| r.unicast_peers = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99))]),
            Err(RejectReason::PeerNotAllowed)
        );
        if version == Version::V2 {
            assert_eq!(
                check(&|r| r.adver_int_cs += 100),
                Err(RejectReason::IntervalMismatch)
            );
            assert_eq!(
                check(&|r| r.auth = Auth::pass("hunter3")),
                Err(RejectReason::AuthMismatch)
            );
        }
    }
}

#[test]
fn v3_ipv4_captures_need_the_pseudo_header() {
    // keepalived 2.2.7 always includes it (v3_checksum_as_v2 came in 2.2.8).
    use ha_agent::vrrp::packet::V3Ipv4Checksum;
    let as_v2 = DecodeOptions {
        v3_ipv4_checksum: V3Ipv4Checksum::AsV2,
        ..Default::default()
    };
    let either = DecodeOptions {
        v3_ipv4_checksum: V3Ipv4Checksum::Either,
        ..Default::default()
    };
    for case in cases() {
        if case.plan.advert.version != Version::V3 || case.family() != Family::Ipv4 {
            continue;
        }
        for ip in &case.packets {
            assert_eq!(
                decode_ip(ip, &as_v2),
                Err(RejectReason::BadChecksum),
                "{}",
                case.name
            );
            assert!(decode_ip(ip, &either).is_ok());
        }
    }
}

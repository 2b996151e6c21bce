//! Golden vectors: adverts captured from keepalived 2.2.7 (see `tests/golden/README.md`).
//!
//! For every case, the expected advert comes from the `keepalived.conf` that produced the
//! capture, and every captured packet must
//! - decode (from the IP header) to exactly that advert, priority 0 for the last one (sent on
//!   SIGTERM), the others the configured priority;
//! - pass `validate` against the instance's rules;
//! - be byte-identical, in its VRRP part, to what ha-agent encodes for the same advert, source
//!   and destination (the IP header is the kernel's);
//! - be rejected after any single-bit change of its VRRP part.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ha_agent::vrrp::packet::{
    Advert, Auth, DecodeOptions, EncodeOptions, Family, InstanceRules, Version, decode_ip, validate,
};
use ha_common::RejectReason;

/// The address of `va`, keepalived's interface in `capture.sh`.
const VA_IPV4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The link-local address of `va` (EUI-64 of its MAC 02:00:00:00:00:0a), keepalived's IPv6
/// source (RFC 5798 §5.1.2.1).
const VA_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a);
const VRRP_MCAST4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const VRRP_MCAST6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

const CASES: [&str; 5] = [
    "v2-pass",
    "v3-ipv4",
    "v3-ipv6",
    "v3-ipv4-unicast",
    "v2-ipv6",
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// What a case's keepalived.conf configures, read by a line scanner that knows exactly the
/// keywords these files use (the real parser lives in `ha_agent::config`).
#[derive(Debug)]
struct Instance {
    version: Version,
    vrid: u8,
    priority: u8,
    adver_int_cs: u16,
    auth: Auth,
    vips: Vec<IpAddr>,
    unicast_src: Option<IpAddr>,
    unicast_peers: Vec<IpAddr>,
}

impl Instance {
    fn family(&self) -> Family {
        Family::of(&self.vips[0])
    }

    fn src(&self) -> IpAddr {
        self.unicast_src.unwrap_or(match self.family() {
            Family::Ipv4 => VA_IPV4.into(),
            Family::Ipv6 => VA_LINK_LOCAL.into(),
        })
    }

    fn dst(&self) -> IpAddr {
        match (self.unicast_peers.first(), self.family()) {
            (Some(peer), _) => *peer,
            (None, Family::Ipv4) => VRRP_MCAST4.into(),
            (None, Family::Ipv6) => VRRP_MCAST6.into(),
        }
    }

    fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.version,
            vrid: self.vrid,
            priority,
            adver_int_cs: self.adver_int_cs,
            addrs: self.vips.clone(),
            auth: self.auth,
        }
    }

    fn rules(&self) -> InstanceRules {
        InstanceRules {
            vrid: self.vrid,
            version: self.version,
            family: self.family(),
            auth: self.auth,
            adver_int_cs: self.adver_int_cs,
            vips: Some(self.vips.clone()),
            // The receiver's view: adverts come from the sender's address.
            unicast_peers: self.unicast_src.into_iter().collect(),
        }
    }
}

fn read_conf(path: &Path) -> Instance {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut global_version, mut version) = (None, None);
    let (mut vrid, mut priority, mut adver_int_cs) = (None, None, None);
    let (mut auth, mut vips, mut unicast_src, mut peers) = (Auth::None, vec![], None, vec![]);
    let mut block = "";
    for line in text.lines().map(|l| l.split('#').next().unwrap().trim()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["}"] => block = "",
            ["virtual_ipaddress", "{"] => block = "vips",
            ["unicast_peer", "{"] => block = "peers",
            [addr] if block == "vips" => {
                vips.push(addr.split('/').next().unwrap().parse().unwrap())
            }
            [addr] if block == "peers" => peers.push(addr.parse().unwrap()),
            ["vrrp_version", v] => global_version = Some(*v),
            ["version", v] => version = Some(*v),
            ["virtual_router_id", v] => vrid = Some(v.parse().unwrap()),
            ["priority", v] => priority = Some(v.parse().unwrap()),
            ["advert_int", v] => {
                adver_int_cs = Some((v.parse::<f64>().unwrap() * 100.0).round() as u16)
            }
            ["auth_pass", v] => auth = Auth::pass(v),
            ["unicast_src_ip", v] => unicast_src = Some(v.parse().unwrap()),
            _ => {}
        }
    }
    let ipv6 = matches!(vips.first(), Some(IpAddr::V6(_)));
    // keepalived applies the global vrrp_version to IPv4 instances only; IPv6 defaults to 3.
    let version = match version.or(if ipv6 { None } else { global_version }) {
        Some("2") => Version::V2,
        Some("3") | None => Version::V3,
        Some(v) => panic!("version {v}"),
    };
    Instance {
        version,
        vrid: vrid.expect("virtual_router_id"),
        priority: priority.expect("priority"),
        adver_int_cs: adver_int_cs.expect("advert_int"),
        auth,
        vips,
        unicast_src,
        unicast_peers: peers,
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
    instance: Instance,
    packets: Vec<Vec<u8>>,
}

fn cases() -> Vec<Case> {
    CASES
        .iter()
        .map(|name| {
            let dir = golden_dir().join(name);
            Case {
                name,
                instance: read_conf(&dir.join("keepalived.conf")),
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
        let inst = &case.instance;
        assert!(
            case.packets.len() >= 2,
            "{}: adverts as MASTER and the shutdown one",
            case.name
        );
        let last = case.packets.len() - 1;
        for (i, ip) in case.packets.iter().enumerate() {
            let what = format!("{} packet {i}", case.name);
            let rx = decode_ip(ip, &opts).unwrap_or_else(|r| panic!("{what}: {}", r.as_str()));
            let priority = if i == last { 0 } else { inst.priority };
            assert_eq!(rx.advert, inst.advert(priority), "{what}");
            assert_eq!(
                (rx.src, rx.dst, rx.ttl),
                (inst.src(), inst.dst(), 255),
                "{what}"
            );
            assert_eq!(
                validate(&rx.advert, rx.src, &inst.rules()),
                Ok(()),
                "{what}"
            );
        }
    }
}

#[test]
fn ha_agent_encodes_the_same_bytes_as_keepalived() {
    for case in cases() {
        let inst = &case.instance;
        let last = case.packets.len() - 1;
        for (i, ip) in case.packets.iter().enumerate() {
            let priority = if i == last { 0 } else { inst.priority };
            let ours = inst
                .advert(priority)
                .encode(inst.src(), inst.dst(), &EncodeOptions::default())
                .unwrap();
            assert_eq!(ours, vrrp_part(ip), "{} packet {i}", case.name);
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
        let inst = &case.instance;
        let rx = decode_ip(&case.packets[0], &DecodeOptions::default()).unwrap();
        let check = |edit: &dyn Fn(&mut InstanceRules)| {
            let mut rules = inst.rules();
            edit(&mut rules);
            validate(&rx.advert, rx.src, &rules)
        };
        let other_version = match inst.version {
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
        let mut fewer = inst.vips.clone();
        fewer.pop();
        assert_eq!(
            check(&|r| r.vips = Some(fewer.clone())),
            Err(RejectReason::AddressListMismatch)
        );
        assert_eq!(
            check(&|r| r.unicast_peers = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99))]),
            Err(RejectReason::PeerNotAllowed)
        );
        if inst.version == Version::V2 {
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
        if case.instance.version != Version::V3 || case.instance.family() != Family::Ipv4 {
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

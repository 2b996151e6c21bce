//! Each check of the decoding order, one packet that trips it, and the edges around it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ha_common::RejectReason::{self, *};

use super::*;

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const MCAST4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const PEER4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a));
const MCAST6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

fn v3_ipv4() -> Advert {
    Advert {
        version: Version::V3,
        vrid: 52,
        priority: 100,
        adver_int_cs: 50,
        addrs: vec![v4(110), v4(111)],
        auth: Auth::None,
    }
}

fn v2_pass() -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 150,
        adver_int_cs: 100,
        addrs: vec![v4(100), v4(101)],
        auth: Auth::pass("hunter2"),
    }
}

fn v3_ipv6() -> Advert {
    Advert {
        version: Version::V3,
        vrid: 53,
        priority: 200,
        adver_int_cs: 100,
        addrs: vec![v6(0x100), v6(0x101)],
        auth: Auth::None,
    }
}

/// An IPv4 header as Linux writes it for keepalived (TOS 0xc0, no options) around `payload`.
fn ipv4_packet(src: IpAddr, dst: IpAddr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 addresses")
    };
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0xc0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, ttl, IPPROTO_VRRP, 0, 0]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    let sum = Checksum::new().add(&p).finish();
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ipv6_packet(src: IpAddr, dst: IpAddr, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("IPv6 addresses")
    };
    let mut p = vec![0x6c, 0x00, 0x00, 0x00];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[IPPROTO_VRRP, hop_limit]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(payload);
    p
}

fn encode(a: &Advert, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    a.encode(src, dst, &EncodeOptions::default())
        .expect("encodable")
}

fn packet(a: &Advert, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let payload = encode(a, src, dst);
    match src {
        IpAddr::V4(_) => ipv4_packet(src, dst, 255, &payload),
        IpAddr::V6(_) => ipv6_packet(src, dst, 255, &payload),
    }
}

fn decode(p: &[u8]) -> Result<Advert, RejectReason> {
    decode_ip(p, &DecodeOptions::default()).map(|r| r.advert)
}

/// Rewrites the VRRP checksum of an IPv4 packet (20-byte header) after a field was changed, so
/// that the check under test is the one that fails.
fn fix_v4_checksum(p: &mut [u8], version: Version) {
    let (src, dst) = (
        IpAddr::from(<[u8; 4]>::try_from(&p[12..16]).unwrap()),
        IpAddr::from(<[u8; 4]>::try_from(&p[16..20]).unwrap()),
    );
    let vrrp = &mut p[20..];
    vrrp[6..8].fill(0);
    let pseudo = PseudoHeader::new(version, src, dst, vrrp.len(), true);
    let sum = Checksum::new().add(pseudo.as_slice()).add(vrrp).finish();
    vrrp[6..8].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn round_trips_each_kind() {
    for (a, src, dst) in [
        (v3_ipv4(), SRC4, MCAST4),
        (v2_pass(), SRC4, MCAST4),
        (v3_ipv6(), SRC6, MCAST6),
        (v3_ipv4(), SRC4, PEER4),
    ] {
        let p = packet(&a, src, dst);
        let r = decode_ip(&p, &DecodeOptions::default()).expect("decodes");
        assert_eq!(
            r,
            Received {
                src,
                dst,
                ttl: 255,
                advert: a.clone()
            }
        );
        assert_eq!(
            decode_vrrp(
                src,
                dst,
                255,
                &encode(&a, src, dst),
                &DecodeOptions::default()
            ),
            Ok(a)
        );
    }
}

#[test]
fn v2_over_ipv6_is_keepalived_shaped() {
    let a = Advert {
        version: Version::V2,
        vrid: 55,
        priority: 120,
        adver_int_cs: 200,
        addrs: vec![v6(0x200)],
        auth: Auth::None,
    };
    let payload = encode(&a, SRC6, MCAST6);
    // No authentication data after the address.
    assert_eq!(payload.len(), 8 + 16);
    assert_eq!(&payload[..6], &[0x21, 55, 120, 1, 0, 2]);
    assert_eq!(
        decode(&ipv6_packet(SRC6, MCAST6, 255, &payload)),
        Ok(a.clone())
    );
    // Auth type 1 cannot be honoured without room for the password.
    let with_pass = Advert {
        auth: Auth::pass("x"),
        ..a
    };
    assert_eq!(
        with_pass.encode(SRC6, MCAST6, &EncodeOptions::default()),
        Err(EncodeError::AuthNotSupported)
    );
}

#[test]
fn check_order_ip_level() {
    let good = packet(&v3_ipv4(), SRC4, MCAST4);
    assert_eq!(decode(&[]), Err(Truncated));
    assert_eq!(decode(&[0x55; 40]), Err(NotVrrp), "IP version 5");
    assert_eq!(decode(&good[..19]), Err(Truncated));
    let mut p = good.clone();
    p[0] = 0x44;
    assert_eq!(decode(&p), Err(NotVrrp), "IHL 4");
    let mut p = good.clone();
    p[9] = 51;
    assert_eq!(decode(&p), Err(NotVrrp), "AH");
    assert_eq!(
        decode(&good[..good.len() - 1]),
        Err(Truncated),
        "total length beyond the bytes"
    );
    let mut p = good.clone();
    p[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(decode(&p), Err(Truncated), "total length inside the header");
    for flags in [0x2000u16, 0x0001] {
        let mut p = good.clone();
        p[6..8].copy_from_slice(&flags.to_be_bytes());
        assert_eq!(decode(&p), Err(Truncated), "fragment {flags:#x}");
    }
    // DF is not a fragment.
    let mut p = good.clone();
    p[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    assert!(decode(&p).is_ok());

    let good6 = packet(&v3_ipv6(), SRC6, MCAST6);
    assert_eq!(decode(&good6[..39]), Err(Truncated));
    let mut p = good6.clone();
    p[6] = 0; // hop-by-hop options header first
    assert_eq!(decode(&p), Err(NotVrrp));
    assert_eq!(decode(&good6[..good6.len() - 1]), Err(Truncated));
}

#[test]
fn ethernet_padding_after_the_datagram_is_ignored() {
    let mut p = packet(&v3_ipv4(), SRC4, MCAST4);
    p.extend_from_slice(&[0xee; 14]);
    assert_eq!(decode(&p), Ok(v3_ipv4()));
    let mut p = packet(&v3_ipv6(), SRC6, MCAST6);
    p.extend_from_slice(&[0xee; 3]);
    assert_eq!(decode(&p), Ok(v3_ipv6()));
}

#[test]
fn ipv4_options_are_skipped() {
    let payload = encode(&v3_ipv4(), SRC4, MCAST4);
    let mut p = ipv4_packet(SRC4, MCAST4, 255, &[]);
    // Router alert (RFC 2113), IHL 6.
    p[0] = 0x46;
    p.extend_from_slice(&[0x94, 0x04, 0, 0]);
    p.extend_from_slice(&payload);
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    assert_eq!(decode(&p), Ok(v3_ipv4()));
}

#[test]
fn ttl_must_be_255() {
    let payload = encode(&v3_ipv4(), SRC4, MCAST4);
    assert_eq!(
        decode(&ipv4_packet(SRC4, MCAST4, 254, &payload)),
        Err(TtlNot255)
    );
    let unicast = encode(&v3_ipv4(), SRC4, PEER4);
    assert_eq!(
        decode(&ipv4_packet(SRC4, PEER4, 64, &unicast)),
        Err(TtlNot255)
    );
    // With unicast instances on the interface, unicast adverts may have crossed routers...
    let opts = DecodeOptions {
        unicast_any_ttl: true,
        ..DecodeOptions::default()
    };
    assert_eq!(
        decode_ip(&ipv4_packet(SRC4, PEER4, 64, &unicast), &opts).map(|r| r.ttl),
        Ok(64)
    );
    // ...but multicast ones still may not.
    assert_eq!(
        decode_ip(&ipv4_packet(SRC4, MCAST4, 64, &payload), &opts),
        Err(TtlNot255)
    );
    let payload6 = encode(&v3_ipv6(), SRC6, MCAST6);
    assert_eq!(
        decode(&ipv6_packet(SRC6, MCAST6, 1, &payload6)),
        Err(TtlNot255)
    );
    // TTL comes before anything in the VRRP header.
    assert_eq!(decode(&ipv4_packet(SRC4, MCAST4, 1, &[])), Err(TtlNot255));
}

#[test]
fn check_order_vrrp_header() {
    let good = packet(&v3_ipv4(), SRC4, MCAST4);
    assert_eq!(decode(&good[..27]), Err(Truncated), "7 bytes of VRRP");
    let with = |byte: usize, value: u8| {
        let mut p = good.clone();
        p[20 + byte] = value;
        decode(&p)
    };
    assert_eq!(with(0, 0x11), Err(BadVersion));
    assert_eq!(with(0, 0x41), Err(BadVersion));
    // Version is checked before type: v1 type 2 is a version error.
    assert_eq!(with(0, 0x12), Err(BadVersion));
    assert_eq!(with(0, 0x32), Err(BadType));
    assert_eq!(with(0, 0x30), Err(BadType));
    assert_eq!(with(1, 0), Err(BadVrid));
    assert_eq!(with(3, 1), Err(LengthMismatch));
    assert_eq!(with(3, 3), Err(LengthMismatch));
    // Every field above is checked before the checksum, which these edits all broke.
    assert_eq!(with(2, 99), Err(BadChecksum));
    assert_eq!(with(7, good[27] ^ 1), Err(BadChecksum));
    // Trailing bytes inside the IP datagram are a length error (keepalived: "packet too long").
    let mut long = encode(&v3_ipv4(), SRC4, MCAST4);
    long.extend_from_slice(&[0; 4]);
    assert_eq!(
        decode(&ipv4_packet(SRC4, MCAST4, 255, &long)),
        Err(LengthMismatch)
    );
}

#[test]
fn v2_length_includes_authentication_data() {
    let good = encode(&v2_pass(), SRC4, MCAST4);
    assert_eq!(good.len(), 8 + 2 * 4 + 8);
    assert_eq!(
        decode(&ipv4_packet(SRC4, MCAST4, 255, &good[..good.len() - 8])),
        Err(LengthMismatch)
    );
}

#[test]
fn v2_auth_types() {
    let mut p = packet(&v2_pass(), SRC4, MCAST4);
    p[24] = VRRP_AUTH_NONE;
    fix_v4_checksum(&mut p, Version::V2);
    // Type 0 ignores the authentication data.
    assert_eq!(decode(&p).map(|a| a.auth), Ok(Auth::None));
    for t in [2u8, 3, 255] {
        p[24] = t;
        fix_v4_checksum(&mut p, Version::V2);
        assert_eq!(decode(&p), Err(AuthMismatch), "auth type {t}");
    }
    // A bad checksum is reported before a bad auth type.
    p[25] ^= 1;
    assert_eq!(decode(&p), Err(BadChecksum));
}

#[test]
fn v2_interval_is_seconds_v3_centiseconds() {
    let mut a = v2_pass();
    a.adver_int_cs = 25500;
    let p = encode(&a, SRC4, MCAST4);
    assert_eq!(p[5], 255);
    assert_eq!(
        decode_vrrp(SRC4, MCAST4, 255, &p, &DecodeOptions::default()).map(|a| a.adver_int_cs),
        Ok(25500)
    );
    for bad in [150, 25600] {
        a.adver_int_cs = bad;
        assert_eq!(
            a.encode(SRC4, MCAST4, &EncodeOptions::default()),
            Err(EncodeError::IntervalNotRepresentable {
                version: Version::V2,
                adver_int_cs: bad
            })
        );
    }
    let mut a = v3_ipv4();
    a.adver_int_cs = 4095;
    let p = encode(&a, SRC4, MCAST4);
    assert_eq!(&p[4..6], &[0x0f, 0xff]);
    a.adver_int_cs = 4096;
    assert!(a.encode(SRC4, MCAST4, &EncodeOptions::default()).is_err());
}

#[test]
fn v3_reserved_bits_are_ignored() {
    let mut p = packet(&v3_ipv4(), SRC4, MCAST4);
    p[24] |= 0xf0;
    fix_v4_checksum(&mut p, Version::V3);
    assert_eq!(decode(&p), Ok(v3_ipv4()));
}

#[test]
fn v3_ipv4_checksum_variants() {
    let a = v3_ipv4();
    let as_v2 = EncodeOptions {
        v3_checksum_as_v2: true,
    };
    let with = encode(&a, SRC4, MCAST4);
    let without = a.encode(SRC4, MCAST4, &as_v2).unwrap();
    assert_ne!(with, without);
    // The v2 way: the message alone sums to zero.
    assert_eq!(Checksum::new().add(&without).finish(), 0);
    let opts = |v3_ipv4_checksum| DecodeOptions {
        v3_ipv4_checksum,
        ..DecodeOptions::default()
    };
    let dec = |p: &[u8], o| decode_vrrp(SRC4, MCAST4, 255, p, &opts(o));
    assert_eq!(dec(&with, V3Ipv4Checksum::PseudoHeader), Ok(a.clone()));
    assert_eq!(dec(&with, V3Ipv4Checksum::AsV2), Err(BadChecksum));
    assert_eq!(
        dec(&without, V3Ipv4Checksum::PseudoHeader),
        Err(BadChecksum)
    );
    assert_eq!(dec(&without, V3Ipv4Checksum::AsV2), Ok(a.clone()));
    assert_eq!(dec(&with, V3Ipv4Checksum::Either), Ok(a.clone()));
    assert_eq!(dec(&without, V3Ipv4Checksum::Either), Ok(a.clone()));
    assert_eq!(as_v2.accepted(), V3Ipv4Checksum::AsV2);
    // The pseudo-header binds the addresses: the same bytes from another source fail.
    assert_eq!(
        decode_vrrp(PEER4, MCAST4, 255, &with, &DecodeOptions::default()),
        Err(BadChecksum)
    );
    // IPv6 always has its pseudo-header, whatever the IPv4 setting.
    let p6 = encode(&v3_ipv6(), SRC6, MCAST6);
    assert_eq!(
        decode_vrrp(SRC6, MCAST6, 255, &p6, &opts(V3Ipv4Checksum::AsV2)),
        Ok(v3_ipv6())
    );
    assert_eq!(v3_ipv6().encode(SRC6, MCAST6, &as_v2).unwrap(), p6);
    assert_eq!(
        decode_vrrp(v6(1), MCAST6, 255, &p6, &DecodeOptions::default()),
        Err(BadChecksum)
    );
}

#[test]
fn families_must_agree() {
    let p = encode(&v3_ipv4(), SRC4, MCAST4);
    assert_eq!(
        decode_vrrp(SRC4, MCAST6, 255, &p, &DecodeOptions::default()),
        Err(FamilyMismatch)
    );
    assert!(matches!(
        v3_ipv4().encode(SRC6, MCAST6, &EncodeOptions::default()),
        Err(EncodeError::MixedFamilies { .. })
    ));
    assert!(matches!(
        v3_ipv4().encode(SRC4, MCAST6, &EncodeOptions::default()),
        Err(EncodeError::MixedFamilies { .. })
    ));
    let mut mixed = v3_ipv4();
    mixed.addrs.push(v6(1));
    assert!(matches!(
        mixed.encode(SRC4, MCAST4, &EncodeOptions::default()),
        Err(EncodeError::MixedFamilies { .. })
    ));
    let mut many = v3_ipv4();
    many.addrs = (0..256)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i)))
        .collect();
    assert_eq!(
        many.encode(SRC4, MCAST4, &EncodeOptions::default()),
        Err(EncodeError::TooManyAddresses(256))
    );
    many.addrs.pop();
    assert_eq!(decode(&packet(&many, SRC4, MCAST4)), Ok(many));
}

#[test]
fn zero_addresses_decode() {
    // v2 allows an instance without VIPs (keepalived warns); the codec carries it.
    let a = Advert {
        addrs: vec![],
        ..v2_pass()
    };
    assert_eq!(decode(&packet(&a, SRC4, MCAST4)), Ok(a));
}

fn rules_for(a: &Advert) -> InstanceRules {
    InstanceRules {
        vrid: a.vrid,
        version: a.version,
        family: a.family().unwrap(),
        auth: a.auth,
        adver_int_cs: a.adver_int_cs,
        vips: Some(a.addrs.clone()),
        unicast_peers: vec![],
        unicast_any_ttl: false,
        peer_ttl: vec![],
        group: None,
    }
}

#[test]
fn validate_order() {
    let a = v2_pass();
    let rules = rules_for(&a);
    assert_eq!(validate(&a, SRC4, &rules), Ok(()));
    let check = |edit: &dyn Fn(&mut InstanceRules)| {
        let mut r = rules.clone();
        edit(&mut r);
        validate(&a, SRC4, &r)
    };
    assert_eq!(check(&|r| r.vrid = 50), Err(UnknownVrid));
    // Each later check fails too in these edits; the earlier one decides.
    assert_eq!(
        check(&|r| {
            r.family = Family::Ipv6;
            r.version = Version::V3
        }),
        Err(FamilyMismatch)
    );
    assert_eq!(
        check(&|r| {
            r.version = Version::V3;
            r.auth = Auth::None
        }),
        Err(BadVersion)
    );
    assert_eq!(
        check(&|r| {
            r.auth = Auth::pass("hunter3");
            r.adver_int_cs = 200
        }),
        Err(AuthMismatch)
    );
    assert_eq!(check(&|r| r.auth = Auth::None), Err(AuthMismatch));
    // keepalived compares all 8 bytes: "hunter2\0" is not "hunter2x".
    assert_eq!(
        check(&|r| r.auth = Auth::pass("hunter2x")),
        Err(AuthMismatch)
    );
    assert_eq!(
        check(&|r| {
            r.adver_int_cs = 200;
            r.vips = Some(vec![])
        }),
        Err(IntervalMismatch)
    );
    assert_eq!(
        check(&|r| {
            r.vips = Some(vec![v4(100)]);
            r.unicast_peers = vec![PEER4]
        }),
        Err(AddressListMismatch)
    );
    assert_eq!(
        check(&|r| r.vips = Some(vec![v4(100), v4(102)])),
        Err(AddressListMismatch)
    );
    // Order of the VIPs does not matter; skipping the check accepts any list.
    assert_eq!(check(&|r| r.vips = Some(vec![v4(101), v4(100)])), Ok(()));
    assert_eq!(check(&|r| r.vips = None), Ok(()));
    assert_eq!(
        check(&|r| r.unicast_peers = vec![PEER4]),
        Err(PeerNotAllowed)
    );
    assert_eq!(check(&|r| r.unicast_peers = vec![PEER4, SRC4]), Ok(()));
}

#[test]
fn v3_validate_ignores_auth_and_interval() {
    let a = v3_ipv4();
    let mut rules = rules_for(&a);
    rules.adver_int_cs = 100;
    rules.auth = Auth::pass("ignored");
    assert_eq!(validate(&a, SRC4, &rules), Ok(()));
}

#[test]
fn vrid_slots() {
    let p = packet(&v3_ipv4(), SRC4, MCAST4);
    assert_eq!(vrid_slot_ip(&p), 52);
    assert_eq!(vrid_slot_ip(&p[..21]), 0);
    assert_eq!(vrid_slot_ip(&packet(&v3_ipv6(), SRC6, MCAST6)), 53);
    assert_eq!(vrid_slot_ip(&[]), 0);
    assert_eq!(vrid_slot_ip(&[0x4f]), 0);
    assert_eq!(vrid_slot(&p[20..]), 52);
}

/// The codec's check 5a (`receive_ip`): other speakers' adverts are `Foreign`, not rejected,
/// whatever else is wrong with them; ours go on to the checks, the TTL waiver per instance.
#[test]
fn receive_tells_other_speakers_from_ours() {
    let mac = [2, 0, 0, 0, 0, 1];
    let mcast = rules_for(&v3_ipv4());
    let unicast = InstanceRules {
        vrid: 51,
        unicast_any_ttl: true,
        ..rules_for(&v3_ipv4())
    };
    let rules = [mcast, unicast];
    let rx = Receiver {
        group4: Ipv4Addr::new(224, 0, 0, 18),
        group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
        instances: &rules,
    };
    let ours = Arrival::SOCKET;
    let opts = DecodeOptions::default();
    let advert = |vrid: u8| Advert { vrid, ..v3_ipv4() };
    let packet = |vrid: u8, dst: IpAddr, ttl: u8| {
        ipv4_packet(SRC4, dst, ttl, &encode(&advert(vrid), SRC4, dst))
    };
    let verdict = |p: &[u8], arrival| receive_ip(p, arrival, &rx, &opts);
    assert!(matches!(
        verdict(&packet(52, MCAST4, 255), ours),
        Verdict::Valid { instance: 0, .. }
    ));
    assert_eq!(
        verdict(&packet(99, MCAST4, 255), ours),
        Verdict::Foreign { vrid: 99 }
    );
    // Another VRID, broken everywhere else (TTL, checksum): still not ours to judge.
    let mut broken = packet(99, MCAST4, 1);
    broken[27] ^= 0xff;
    assert_eq!(verdict(&broken, ours), Verdict::Foreign { vrid: 99 });
    let other_group = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 19));
    assert_eq!(
        verdict(&packet(52, other_group, 255), ours),
        Verdict::Foreign { vrid: 52 }
    );
    let tagged = Arrival {
        tagged: true,
        to_our_mac: true,
    };
    assert_eq!(
        verdict(&packet(52, MCAST4, 255), tagged),
        Verdict::Foreign { vrid: 52 }
    );
    let child = Arrival {
        tagged: false,
        to_our_mac: false,
    };
    assert_eq!(
        verdict(&packet(51, PEER4, 255), child),
        Verdict::Foreign { vrid: 51 }
    );
    // The unicast instance waives TTL on unicast adverts; the multicast one beside it does not.
    assert!(matches!(
        verdict(&packet(51, PEER4, 64), ours),
        Verdict::Valid { instance: 1, .. }
    ));
    assert_eq!(
        verdict(&packet(52, PEER4, 64), ours),
        Verdict::Rejected {
            vrid: 52,
            reason: TtlNot255
        }
    );
    assert_eq!(
        verdict(&packet(51, MCAST4, 64), ours),
        Verdict::Rejected {
            vrid: 51,
            reason: TtlNot255
        }
    );
    // Arrival from a frame: the tag and the destination MAC.
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    assert_eq!(Arrival::of_frame(&frame, mac), Arrival::SOCKET);
    frame[12..14].copy_from_slice(&[0x81, 0x00]);
    frame[5] = 9;
    assert_eq!(
        Arrival::of_frame(&frame, mac),
        Arrival {
            tagged: true,
            to_our_mac: false
        }
    );
}

/// Check 27: a peer's `min_ttl` / `max_ttl` bound the TTL of its adverts, after the source
/// check (keepalived's `check_ttl_hl`); peers without a range and multicast take any.
#[test]
fn peer_ttl_range_after_the_peer_check() {
    let a = v3_ipv4();
    let range = PeerTtl {
        min_ttl: 64,
        max_ttl: 254,
    };
    let rules = InstanceRules {
        unicast_peers: vec![SRC4, PEER4],
        unicast_any_ttl: true,
        peer_ttl: vec![(SRC4, range)],
        ..rules_for(&a)
    };
    let rx = Receiver {
        group4: Ipv4Addr::new(224, 0, 0, 18),
        group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
        instances: std::slice::from_ref(&rules),
    };
    let to = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
    let verdict = |src: IpAddr, ttl: u8| {
        let p = ipv4_packet(src, to, ttl, &encode(&a, src, to));
        match receive_ip(&p, Arrival::SOCKET, &rx, &DecodeOptions::default()) {
            Verdict::Valid { .. } => Ok(()),
            Verdict::Rejected { reason, .. } => Err(reason),
            other => panic!("{other:?}"),
        }
    };
    for (ttl, want) in [
        (63, Err(TtlOutOfRange)),
        (64, Ok(())),
        (254, Ok(())),
        (255, Err(TtlOutOfRange)),
    ] {
        assert_eq!(verdict(SRC4, ttl), want, "TTL {ttl}");
    }
    // PEER4 has no range; an unknown source is refused by the peer check first.
    assert_eq!(verdict(PEER4, 1), Ok(()));
    assert_eq!(verdict(v4(77), 1), Err(PeerNotAllowed));
    // The same rule on the socket path's IPv6-style entry (header consumed).
    let payload = encode(&a, SRC4, to);
    let v = receive_vrrp(
        SRC4,
        to,
        255,
        &payload,
        Arrival::SOCKET,
        &rx,
        &DecodeOptions::default(),
    );
    assert!(
        matches!(
            v,
            Verdict::Rejected {
                reason: TtlOutOfRange,
                ..
            }
        ),
        "{v:?}"
    );
}

//! Property tests of the VRRP codec: what ha-agent builds it parses back to the same advert,
//! and no input makes the decoder panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ha_agent::vrrp::packet::{
    Advert, Auth, DecodeOptions, EncodeOptions, Family, V3Ipv4Checksum, Version, decode_ip,
    decode_vrrp, vrid_slot_ip,
};
use proptest::prelude::*;

fn addr(family: Family) -> BoxedStrategy<IpAddr> {
    match family {
        Family::Ipv4 => any::<[u8; 4]>()
            .prop_map(|a| IpAddr::from(Ipv4Addr::from(a)))
            .boxed(),
        Family::Ipv6 => any::<[u8; 16]>()
            .prop_map(|a| IpAddr::from(Ipv6Addr::from(a)))
            .boxed(),
    }
}

/// A valid advert with a source and destination it can be sent between.
fn sendable() -> impl Strategy<Value = (Advert, IpAddr, IpAddr)> {
    (
        prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)],
        prop_oneof![Just(Version::V2), Just(Version::V3)],
    )
        .prop_flat_map(|(family, version)| {
            let interval = match version {
                Version::V2 => (0u16..=255).prop_map(|s| s * 100).boxed(),
                Version::V3 => (0u16..=0x0fff).boxed(),
            };
            let auth = match (version, family) {
                (Version::V2, Family::Ipv4) => {
                    prop_oneof![Just(Auth::None), any::<[u8; 8]>().prop_map(Auth::Pass)].boxed()
                }
                _ => Just(Auth::None).boxed(),
            };
            (
                1u8..=255,
                any::<u8>(),
                interval,
                proptest::collection::vec(addr(family), 0..=255),
                auth,
                addr(family),
                addr(family),
            )
                .prop_map(
                    move |(vrid, priority, adver_int_cs, addrs, auth, src, dst)| {
                        let advert = Advert {
                            version,
                            vrid,
                            priority,
                            adver_int_cs,
                            addrs,
                            auth,
                        };
                        (advert, src, dst)
                    },
                )
        })
}

/// Recomputes the checksum of a (corrupted) VRRP message, independently of the codec: IPv4
/// pseudo-header for v3, IPv6 pseudo-header always (RFC 5798 §5.2.8, RFC 8200 §8.1).
fn fix_checksum(bytes: &mut [u8], src: IpAddr, dst: IpAddr) {
    bytes[6] = 0;
    bytes[7] = 0;
    let mut summed = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if bytes[0] >> 4 == 3 => {
            let mut p = [s.octets(), d.octets()].concat();
            p.extend_from_slice(&[0, 112]);
            p.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = [s.octets(), d.octets()].concat();
            p.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 112]);
            p
        }
        _ => vec![],
    };
    summed.extend_from_slice(bytes);
    let mut sum: u32 = summed
        .chunks(2)
        .map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    bytes[6..8].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// The IP header the kernel would put in front (TTL 255, protocol 112).
fn ip_packet(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let mut p = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = vec![0x45, 0xc0];
            p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 255, 112, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = vec![0x6c, 0, 0, 0];
            p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            p.extend_from_slice(&[112, 255]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p
        }
        _ => unreachable!("one family"),
    };
    p.extend_from_slice(payload);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn build_then_parse_is_identity((advert, src, dst) in sendable(), as_v2 in any::<bool>()) {
        let opts = EncodeOptions { v3_checksum_as_v2: as_v2 };
        let bytes = advert.encode(src, dst, &opts).unwrap();
        prop_assert_eq!(bytes.len(), advert.encoded_len(Family::of(&src)));
        let dec = DecodeOptions { v3_ipv4_checksum: opts.accepted(), ..Default::default() };
        prop_assert_eq!(decode_vrrp(src, dst, 255, &bytes, &dec), Ok(advert.clone()));
        let rx = decode_ip(&ip_packet(src, dst, &bytes), &dec).unwrap();
        prop_assert_eq!((rx.src, rx.dst, rx.ttl), (src, dst, 255));
        prop_assert_eq!(&rx.advert, &advert);
        prop_assert_eq!(vrid_slot_ip(&ip_packet(src, dst, &bytes)), advert.vrid);
        let either = DecodeOptions { v3_ipv4_checksum: V3Ipv4Checksum::Either, ..Default::default() };
        prop_assert_eq!(decode_vrrp(src, dst, 255, &bytes, &either), Ok(advert));
    }

    #[test]
    fn parse_then_build_is_identity(
        (advert, src, dst) in sendable(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        // Corrupt a valid advert and repair its checksum, so decoding gets past it; whatever
        // still decodes must re-encode to the same bytes, except those the decoder ignores.
        let mut bytes = advert.encode(src, dst, &EncodeOptions::default()).unwrap();
        for (i, bit) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        fix_checksum(&mut bytes, src, dst);
        if let Ok(decoded) = decode_vrrp(src, dst, 255, &bytes, &DecodeOptions::default()) {
            let again = decoded.encode(src, dst, &EncodeOptions::default()).unwrap();
            prop_assert_eq!(again.len(), bytes.len());
            let ignored = |i: usize| match decoded.version {
                // v3 reserved nibble (RFC 5798 §5.2.6).
                Version::V3 => i == 4,
                // v2 auth data with auth type 0 (RFC 3768 §5.3.10).
                Version::V2 => decoded.auth == Auth::None && i >= bytes.len() - 8 && Family::of(&src) == Family::Ipv4,
            };
            for i in (0..bytes.len()).filter(|&i| i != 6 && i != 7) {
                let mask = if ignored(i) { if i == 4 { 0x0f } else { 0 } } else { 0xff };
                prop_assert_eq!(again[i] & mask, bytes[i] & mask, "byte {}", i);
            }
            prop_assert_eq!(decode_vrrp(src, dst, 255, &again, &DecodeOptions::default()), Ok(decoded));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        ttl in any::<u8>(),
        unicast_any_ttl in any::<bool>(),
    ) {
        let opts = DecodeOptions { unicast_any_ttl, v3_ipv4_checksum: V3Ipv4Checksum::Either };
        let _ = decode_ip(&bytes, &opts);
        let _ = vrid_slot_ip(&bytes);
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        for (src, dst) in [(v4, v4), (v6, v6), (v4, v6)] {
            let _ = decode_vrrp(src, dst, ttl, &bytes, &opts);
        }
    }
}

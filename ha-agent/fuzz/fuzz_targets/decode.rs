//! Arbitrary bytes into the VRRP decoders: no input may panic, and whatever decodes must encode
//! again and decode to the same advert.
//!
//! Input: byte 0 selects options, byte 1 is the TTL for `decode_vrrp`, the rest is the packet
//! (from the IP header for `decode_ip`, from the VRRP header for `decode_vrrp`).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ha_agent::vrrp::packet::{
    Checksum, DecodeOptions, EncodeOptions, V3Ipv4Checksum, decode_ip, decode_vrrp, vrid_slot,
    vrid_slot_ip,
};
use libfuzzer_sys::fuzz_target;

const ADDRS: [(IpAddr, IpAddr); 4] = [
    (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
    ),
    (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    ),
    (
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a)),
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
    ),
    (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ),
];

fuzz_target!(|data: &[u8]| {
    let [flags, ttl, packet @ ..] = data else {
        return;
    };
    let opts = DecodeOptions {
        v3_ipv4_checksum: match flags & 3 {
            0 => V3Ipv4Checksum::PseudoHeader,
            1 => V3Ipv4Checksum::AsV2,
            _ => V3Ipv4Checksum::Either,
        },
        unicast_any_ttl: flags & 4 != 0,
    };
    let encode_opts = EncodeOptions {
        v3_checksum_as_v2: opts.v3_ipv4_checksum == V3Ipv4Checksum::AsV2,
    };

    let _ = vrid_slot_ip(packet);
    let _ = vrid_slot(packet);
    if let Ok(rx) = decode_ip(packet, &opts) {
        let again = rx
            .advert
            .encode(rx.src, rx.dst, &encode_opts)
            .expect("decoded adverts encode");
        assert_eq!(
            decode_vrrp(rx.src, rx.dst, 255, &again, &opts),
            Ok(rx.advert)
        );
    }

    let (src, dst) = ADDRS[usize::from(flags >> 3) % ADDRS.len()];
    let mut payload = packet.to_vec();
    if flags & 0x80 != 0 {
        // Repair the checksum so that the checks after it are reached too.
        repair_checksum(&mut payload, src, dst, encode_opts.v3_checksum_as_v2);
    }
    if let Ok(advert) = decode_vrrp(src, dst, *ttl, &payload, &opts) {
        let again = advert
            .encode(src, dst, &encode_opts)
            .expect("decoded adverts encode");
        assert_eq!(again.len(), payload.len());
        assert_eq!(decode_vrrp(src, dst, 255, &again, &opts), Ok(advert));
    }
});

/// Writes the checksum a VRRP message from `src` to `dst` should carry (RFC 5798 §5.2.8).
fn repair_checksum(payload: &mut [u8], src: IpAddr, dst: IpAddr, v3_as_v2: bool) {
    if payload.len() < 8 {
        return;
    }
    payload[6..8].fill(0);
    let len = payload.len();
    let mut sum = Checksum::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if payload[0] >> 4 == 3 && !v3_as_v2 => {
            sum.add(&s.octets())
                .add(&d.octets())
                .add(&[0, 112])
                .add(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum.add(&s.octets())
                .add(&d.octets())
                .add(&(len as u32).to_be_bytes())
                .add(&[0, 0, 0, 112]);
        }
        _ => {}
    }
    let value = sum.add(payload).finish();
    payload[6..8].copy_from_slice(&value.to_be_bytes());
}

//! The VRRP advert codec: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), over IPv4 and IPv6.
//!
//! Receiving is split in stages so that the XDP program (`ha-ebpf/src/rx.rs`) can mirror it
//! check for check, and so that both agree on the [`RejectReason`] a packet is counted under:
//!
//! 1. **Whose advert**, check 5a of [`receive_ip`] / [`receive_vrrp`]: an advert that is not for
//!    one of the receiving interface's instances ([`Receiver`]: another VRID or family, another
//!    VLAN, another multicast group, a unicast frame to another MAC) is [`Verdict::Foreign`],
//!    not a rejection: another speaker behind the same NIC (a keepalived in a macvlan container,
//!    on a VLAN sub-interface, for other VRIDs) must get it, whatever else is wrong with it.
//!    XDP passes it to the stack; the socket datapath ignores it, as keepalived ignores VRIDs it
//!    does not run. Both count it.
//! 2. **Stateless decoding**, [`decode_ip`] (from the IP header) or [`decode_vrrp`] (from the
//!    VRRP header, with addresses and TTL/hop limit given: the IPv6 raw socket, which gets the
//!    hop limit by `IPV6_HOPLIMIT` cmsg). Depends only on the bytes and on [`DecodeOptions`].
//! 3. **Per-instance validation**, [`validate`]: checks that depend on the instance configured
//!    for the advert's VRID ([`InstanceRules`]).
//!
//! [`receive_ip`] and [`receive_vrrp`] run the three in the order below; [`decode_ip`],
//! [`decode_vrrp`] and [`validate`] are the stages alone (fuzzing, golden captures).
//!
//! # Order of checks
//!
//! The first failing check decides the verdict. [`receive_ip`] runs steps 1–5a, then
//! [`decode_ip`] (steps 6–19), then [`validate`] (steps 22–26), then [`check_peer_ttl`] (27):
//!
//! | # | check | verdict |
//! |---|-------|--------|
//! | 1 | packet is empty | `NotVrrp` (the stateless [`decode_ip`]: `Truncated`) |
//! | 2 | IP version nibble is neither 4 nor 6 | `NotVrrp` |
//! | 5, 9 | the protocol / next header byte is missing or ≠ 112 (extension headers are not walked) | `NotVrrp` |
//! | 5a′ | the frame is VLAN-tagged (our instances live on the untagged interface) | `Foreign` (VRID byte, or 0) |
//! | | **IPv4** (RFC 791) | |
//! | 3 | fewer than 20 bytes | `Truncated` |
//! | 4 | IHL < 5 | `NotVrrp` |
//! | | **IPv6** (RFC 8200) | |
//! | 8 | fewer than 40 bytes | `Truncated` |
//! | | **whose advert** ([`Receiver`]) | |
//! | 5a | the VRID byte (IHL × 4 + 1, or 41) is past the end of the packet | `Truncated` (VRID 0) |
//! | 5a | no instance with this VRID and family on the interface (VRID 0 is none's) | `Foreign` |
//! | 5a | multicast destination ≠ the instance's group (`mcast_dst_ip`, else the interface's `vrrp_mcast_group4/6`) | `Foreign` |
//! | 5a | unicast destination and the frame was not sent to the interface's MAC | `Foreign` |
//! | | **IPv4** | |
//! | 6 | total length > bytes present, or total length < IHL × 4 | `Truncated` |
//! | 7 | a fragment: MF set or fragment offset ≠ 0 | `Truncated` |
//! | | VRRP part = bytes IHL × 4 .. total length (link padding after it is ignored) | |
//! | | **IPv6** | |
//! | 9a | 40 + payload length > bytes present | `Truncated` |
//! | | VRRP part = bytes 40 .. 40 + payload length | |
//! | | **VRRP** ([`decode_vrrp`]) | |
//! | 10 | source and destination are of different families (API misuse only) | `FamilyMismatch` |
//! | 11 | TTL / hop limit ≠ 255, unless the instance is unicast ([`InstanceRules::unicast_any_ttl`]) and the destination is not multicast | `TtlNot255` |
//! | 12 | VRRP part shorter than 8 bytes | `Truncated` |
//! | 13 | version ∉ {2, 3} | `BadVersion` |
//! | 14 | type ≠ 1 (ADVERTISEMENT) | `BadType` |
//! | 15 | VRID = 0 (only the stateless decoders reach it: 5a made it `Foreign`) | `BadVrid` |
//! | 16 | length ≠ 8 + count × (4 or 16) + (8 for v2 over IPv4) | `LengthMismatch` |
//! | 17 | checksum does not verify (see [Checksums](#checksums)) | `BadChecksum` |
//! | 18 | v2: auth type ∉ {0, 1} (2 is IPsec AH, never accepted) | `AuthMismatch` |
//! | 19 | v2 over IPv6: auth type ≠ 0 (there is no room for a password) | `AuthMismatch` |
//! | | **instance** ([`validate`]) | |
//! | 20 | VRID ≠ the instance's ([`validate`] alone; 5a decided it) | `UnknownVrid` |
//! | 21 | source family ≠ the instance's ([`validate`] alone; 5a decided it) | `FamilyMismatch` |
//! | 22 | version ≠ the instance's | `BadVersion` |
//! | 23 | v2: auth type or password ≠ the instance's | `AuthMismatch` |
//! | 24 | v2: Adver Int ≠ the instance's | `IntervalMismatch` |
//! | 25 | VIP check on: count ≠ number of VIPs, or a VIP missing from the advert | `AddressListMismatch` |
//! | 26 | unicast peers configured and the source is not one of them | `PeerNotAllowed` |
//! | 27 | the peer's TTL / hop limit outside its `min_ttl`..=`max_ttl` | `TtlOutOfRange` |
//!
//! Nothing is checked on priority (0 is a resignation, 255 the address owner: both valid on
//! the wire), on the v3 reserved bits (RFC 5798 §5.2.6: ignored on reception), on v3 Max Adver
//! Int (a backup learns it, RFC 5798 §6.4.2), or on the IPv4 header checksum (the kernel drops
//! those before a socket sees them; a forger computes them anyway).
//!
//! # Checksums
//!
//! RFC 5798 §5.2.8 and RFC 3768 §5.3.8: the 16-bit one's complement of the one's complement
//! sum of the VRRP message, checksum field zero.
//!
//! - **v2 over IPv4**: the VRRP message only (header, addresses, authentication data).
//! - **v3 over IPv4**: by default the IPv4 pseudo-header (source, destination, zero, protocol
//!   112, VRRP length; as RFC 768 for UDP) is included, as keepalived, FRR and tcpdump do.
//!   Cisco and Juniper leave it out (they read §5.2.8's RFC 2460 pseudo-header as IPv6 only, as
//!   RFC 9568 does), and keepalived ≥ 2.2.8 can too, with `v3_checksum_as_v2`.
//!   Sending picks one ([`EncodeOptions::v3_checksum_as_v2`]); receiving accepts what
//!   [`DecodeOptions::v3_ipv4_checksum`] says: one variant or [`V3Ipv4Checksum::Either`] when
//!   instances on the interface disagree (decoding is per interface, before the VRID is known).
//! - **IPv6, v3 and v2 alike**: the IPv6 pseudo-header (RFC 8200 §8.1: source, destination,
//!   32-bit length, three zero bytes, next header 112). keepalived leaves this to the kernel
//!   (`IPV6_CHECKSUM` at offset 6), which also verifies it on receive; we verify it again because
//!   XDP runs before the kernel does.
//!
//! # Where we differ from keepalived 2.2.7 (`vrrp_check_packet`)
//!
//! - keepalived checks length, TTL, version, auth and interval *before* the type and checksum;
//!   we look the instance up first (5a), then do every stateless check in the fixed order
//!   above, so XDP can do them in one pass. Apart from the points below, we accept what
//!   keepalived accepts; only the reason counted may differ.
//! - keepalived skips the TTL check for unicast instances and then checks a per-peer
//!   `min_ttl`/`max_ttl`; we skip it for unicast destinations of unicast instances
//!   ([`InstanceRules::unicast_any_ttl`]) and leave the per-peer range out.
//! - keepalived ≥ 2.2.8 with `v3_checksum_as_v2` accepts v3 IPv4 adverts whatever their
//!   checksum (the failed comparison is ignored when the flag is set); we verify the checksum
//!   without the pseudo-header, which is what the option says it does.
//! - keepalived's `old_unicast_checksum` (≤ 1.3.6 put 224.0.0.18 in the pseudo-header of
//!   unicast adverts) is not supported.
//! - keepalived checks that multicast instances get multicast adverts and unicast ones unicast;
//!   that is a property of the socket and lives in `datapath`.
//! - keepalived never sees fragments or link padding (the kernel reassembles and trims for raw
//!   sockets); XDP does, hence checks 6–7 and the use of the IP length fields, not the buffer's.
//! - VRID 0 is `Foreign` (no instance has it), as keepalived finds no instance for it.
//! - v2 over IPv6 with auth type 1: keepalived compares the last 8 bytes of the last address
//!   with its password; we reject it (`AuthMismatch`), there being no password field.
//! - IPsec AH authentication (v2 auth type 2, IP protocol 51) is not supported: such adverts
//!   are `NotVrrp` (protocol 51) or `AuthMismatch` (auth type 2 inside protocol 112).

mod checksum;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ha_common::RejectReason;
pub use ha_common::maps::PeerTtl;
use ha_common::wire::{
    IPPROTO_VRRP, IPV4_MIN_HLEN, IPV6_HLEN, VRRP_AUTH_NONE, VRRP_AUTH_PASS, VRRP_HEADER_LEN,
    VRRP_TTL, VRRP_TYPE_ADVERTISEMENT, VRRP_V2_AUTH_LEN, v2_adver_int_cs, v3_max_adver_int_cs,
};

pub use checksum::Checksum;

// The one Version and Family, re-exported at their historical path.
use super::types::CS_PER_SEC;
pub use super::types::{Family, Version};

/// v2 authentication (RFC 3768 §5.3.6, §5.3.10). v3 has none (RFC 5798 §9: removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Auth type 0. The authentication data is zero on transmission and ignored on reception.
    None,
    /// Auth type 1, "simple text password": 8 bytes, zero-padded (keepalived's `auth_pass`
    /// keeps the first 8 characters).
    Pass([u8; VRRP_V2_AUTH_LEN]),
}

impl Auth {
    /// A PASS password as keepalived stores `auth_pass`: the first 8 bytes, zero-padded.
    pub fn pass(password: &str) -> Auth {
        let mut data = [0u8; VRRP_V2_AUTH_LEN];
        for (d, s) in data.iter_mut().zip(password.bytes()) {
            *d = s;
        }
        Auth::Pass(data)
    }

    /// The Auth Type field.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Auth::None => VRRP_AUTH_NONE,
            Auth::Pass(_) => VRRP_AUTH_PASS,
        }
    }

    /// Equality that takes the same time wherever the passwords differ, as keepalived's
    /// `memcmp_constant_time`.
    fn matches(&self, other: &Auth) -> bool {
        match (self, other) {
            (Auth::None, Auth::None) => true,
            (Auth::Pass(a), Auth::Pass(b)) => {
                a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
            }
            _ => false,
        }
    }
}

/// One VRRP advertisement, as both versions carry it.
///
/// VRRPv2, RFC 3768 §5.1:
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (1)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            .                                  |
/// |                            .                                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (n)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// VRRPv3, RFC 5798 §5.1 (IPv4: 4-byte addresses; IPv6: 16-byte addresses):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       IPvX Address(es)                        |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// keepalived also sends v2 over IPv6 (`version 2` in an IPv6 instance, `vrrp_strict` off): the
/// v2 header with 16-byte addresses, no authentication data, and the IPv6 checksum. We decode
/// and encode it too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Advert {
    pub version: Version,
    /// Virtual Rtr ID, 1–255 (RFC 5798 §5.2.3).
    pub vrid: u8,
    /// 255: address owner; 1–254: backups; 0: the master resigns (RFC 5798 §5.2.4).
    pub priority: u8,
    /// Advertisement interval in centiseconds: v3 Max Adver Int (12 bits, RFC 5798 §5.2.7), or
    /// v2 Adver Int seconds × 100 (RFC 3768 §5.3.7).
    pub adver_int_cs: u16,
    /// The virtual addresses, all of the family of the IP header.
    pub addrs: Vec<IpAddr>,
    /// v2 authentication; always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// Why [`Advert::encode`] cannot put an advert on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("source {src}, destination {dst} and every virtual address must be of one family")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
    #[error("{0} virtual addresses do not fit the 8-bit count")]
    TooManyAddresses(usize),
    #[error("VRRPv{} cannot carry an interval of {adver_int_cs} centiseconds", .version.number())]
    IntervalNotRepresentable { version: Version, adver_int_cs: u16 },
    #[error("authentication is only carried by VRRPv2 over IPv4")]
    AuthNotSupported,
}

/// How a VRRPv3 IPv4 checksum is computed (see [Checksums](self#checksums)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum V3Ipv4Checksum {
    /// Over the IPv4 pseudo-header and the message: keepalived's default, FRR, tcpdump.
    #[default]
    PseudoHeader,
    /// Over the message only, as v2: keepalived's `v3_checksum_as_v2`.
    AsV2,
    /// Accept either (receiving only; when instances on an interface disagree).
    Either,
}

/// Per-interface knobs of stateless decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DecodeOptions {
    /// Which VRRPv3 IPv4 checksums verify.
    pub v3_ipv4_checksum: V3Ipv4Checksum,
    /// Accept any TTL / hop limit on adverts sent to a unicast address. Multicast adverts always
    /// need 255 (RFC 5798 §7.1). For the stateless [`decode_ip`] / [`decode_vrrp`] only:
    /// [`receive_ip`] and [`receive_vrrp`] take it from the instance
    /// ([`InstanceRules::unicast_any_ttl`]), as keepalived checks TTL per instance.
    pub unicast_any_ttl: bool,
}

/// Per-instance knobs of encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EncodeOptions {
    /// keepalived's `v3_checksum_as_v2`: leave the IPv4 pseudo-header out of the v3 checksum.
    pub v3_checksum_as_v2: bool,
}

impl EncodeOptions {
    /// The decode setting that accepts what these options send.
    pub const fn accepted(&self) -> V3Ipv4Checksum {
        if self.v3_checksum_as_v2 {
            V3Ipv4Checksum::AsV2
        } else {
            V3Ipv4Checksum::PseudoHeader
        }
    }
}

/// An advert decoded from an IP packet, with what the IP header said.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    pub advert: Advert,
}

/// What [`validate`] compares an advert with: the configuration of the instance with its VRID
/// on the receiving interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRules {
    pub vrid: u8,
    pub version: Version,
    pub family: Family,
    /// v2: the authentication expected (type and password). Ignored for v3.
    pub auth: Auth,
    /// v2: the configured interval, which adverts must carry (RFC 3768 §7.1). Ignored for v3.
    pub adver_int_cs: u16,
    /// When `Some`, the advert must list exactly these VIPs (count equal, each present), as
    /// keepalived checks unless `skip_check_adv_addr` (and the master is unchanged).
    pub vips: Option<Vec<IpAddr>>,
    /// When non-empty, adverts are accepted only from these sources (keepalived's
    /// `unicast_peer` with `check_unicast_src`).
    pub unicast_peers: Vec<IpAddr>,
    /// A unicast instance: any TTL / hop limit on adverts to a unicast address (keepalived
    /// checks TTL only for multicast instances). Multicast adverts always need 255.
    pub unicast_any_ttl: bool,
    /// The peers of `unicast_peers` whose adverts must arrive with a TTL / hop limit in a range
    /// (`min_ttl` / `max_ttl`); the others take any.
    pub peer_ttl: Vec<(IpAddr, PeerTtl)>,
    /// `mcast_dst_ip`: multicast adverts for this instance go to this group, not to the
    /// [`Receiver`]'s group of the family.
    pub group: Option<IpAddr>,
}

impl InstanceRules {
    /// The TTL range adverts from `src` must arrive with.
    pub fn ttl_range(&self, src: IpAddr) -> PeerTtl {
        self.peer_ttl
            .iter()
            .find(|(a, _)| *a == src)
            .map_or(PeerTtl::ANY, |(_, r)| *r)
    }
}

/// How a packet reached the codec, below IP: what XDP sees of the frame and a raw socket does
/// not (the kernel delivered the socket's packets untagged and to this interface's address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arrival {
    /// The frame carried an 802.1Q or 802.1ad tag.
    pub tagged: bool,
    /// The Ethernet destination was the receiving interface's MAC (a unicast advert to a
    /// macvlan child behind the same NIC carries the child's).
    pub to_our_mac: bool,
}

impl Arrival {
    /// What a raw socket on the interface receives.
    pub const SOCKET: Arrival = Arrival {
        tagged: false,
        to_our_mac: true,
    };

    /// What an Ethernet `frame` says, for an interface with MAC `mac`.
    pub fn of_frame(frame: &[u8], mac: [u8; 6]) -> Arrival {
        let ethertype = frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]));
        Arrival {
            tagged: matches!(ethertype, Some(0x8100 | 0x88a8)),
            to_our_mac: frame.get(..6) == Some(&mac[..]),
        }
    }
}

/// The receiving interface as check 5a sees it: which adverts are its instances' at all.
#[derive(Clone, Copy, Debug)]
pub struct Receiver<'r> {
    /// `vrrp_mcast_group4`: the group multicast instances here advertise to.
    pub group4: Ipv4Addr,
    /// `vrrp_mcast_group6`.
    pub group6: Ipv6Addr,
    /// The instances on the interface (one per VRID and family).
    pub instances: &'r [InstanceRules],
}

impl Receiver<'_> {
    /// The index of the instance with `vrid` in `family`.
    pub fn instance(&self, vrid: u8, family: Family) -> Option<usize> {
        self.instances
            .iter()
            .position(|r| r.vrid == vrid && r.family == family)
    }

    /// Whether an advert to `dst` for the instance `rules` is addressed to us: a multicast one
    /// to its group (`mcast_dst_ip`), else ours of its family, a unicast one in a frame to our
    /// MAC.
    fn for_us(&self, dst: IpAddr, arrival: Arrival, rules: &InstanceRules) -> bool {
        match dst {
            _ if dst.is_multicast() && rules.group.is_some() => rules.group == Some(dst),
            IpAddr::V4(d) if d.is_multicast() => d == self.group4,
            IpAddr::V6(d) if d.is_multicast() => d == self.group6,
            _ => arrival.to_our_mac,
        }
    }

    /// Check 5a, whose advert: the instance an advert for `vrid` in `family` to `dst` is for,
    /// its rules, and `opts` with its TTL rule; `None` when it is another speaker's.
    fn whose(
        &self,
        vrid: u8,
        family: Family,
        dst: IpAddr,
        arrival: Arrival,
        opts: &DecodeOptions,
    ) -> Option<(usize, &InstanceRules, DecodeOptions)> {
        let instance = self.instance(vrid, family)?;
        let rules = &self.instances[instance];
        if !self.for_us(dst, arrival, rules) {
            return None;
        }
        let opts = DecodeOptions {
            unicast_any_ttl: rules.unicast_any_ttl,
            ..*opts
        };
        Some((instance, rules, opts))
    }
}

/// What [`receive_ip`] and [`receive_vrrp`] make of a packet: the same verdicts as `vrrp_rx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not VRRP (XDP passes it, uncounted).
    NotVrrp,
    /// VRRP for another speaker (check 5a): not ours to judge. XDP passes it to the stack.
    Foreign { vrid: u8 },
    /// For us and wrong: counted under the VRID byte and the reason.
    Rejected { vrid: u8, reason: RejectReason },
    /// A valid advert for `Receiver::instances[instance]`.
    Valid { instance: usize, received: Received },
}

/// Judges an IP packet (from the IP header) that arrived on the interface `rx` describes, in
/// the [order of checks](self#order-of-checks): `vrrp_rx`'s verdict on the same frame.
pub fn receive_ip(
    packet: &[u8],
    arrival: Arrival,
    rx: &Receiver<'_>,
    opts: &DecodeOptions,
) -> Verdict {
    let Some(&first) = packet.first() else {
        return Verdict::NotVrrp;
    };
    let (family, hlen, min) = match first >> 4 {
        4 => (Family::Ipv4, usize::from(first & 0x0f) * 4, IPV4_MIN_HLEN),
        6 => (Family::Ipv6, IPV6_HLEN, IPV6_HLEN),
        _ => return Verdict::NotVrrp,
    };
    let proto_at = if family == Family::Ipv6 { 6 } else { 9 };
    if packet.get(proto_at) != Some(&IPPROTO_VRRP) {
        return Verdict::NotVrrp;
    }
    let vrid = packet.get(hlen + 1).copied();
    if arrival.tagged {
        return Verdict::Foreign {
            vrid: vrid.unwrap_or(0),
        };
    }
    if packet.len() < min {
        return Verdict::Rejected {
            vrid: vrid.unwrap_or(0),
            reason: RejectReason::Truncated,
        };
    }
    if hlen < IPV4_MIN_HLEN {
        return Verdict::NotVrrp;
    }
    let Some(vrid) = vrid else {
        return Verdict::Rejected {
            vrid: 0,
            reason: RejectReason::Truncated,
        };
    };
    let dst: IpAddr = match family {
        Family::Ipv4 => array_at::<4>(packet, 16).map(|d| Ipv4Addr::from(*d).into()),
        Family::Ipv6 => array_at::<16>(packet, 24).map(|d| Ipv6Addr::from(*d).into()),
    }
    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let Some((instance, rules, opts)) = rx.whose(vrid, family, dst, arrival, opts) else {
        return Verdict::Foreign { vrid };
    };
    match decode_ip(packet, &opts).and_then(|r| {
        validate(&r.advert, r.src, rules)?;
        check_peer_ttl(r.src, r.ttl, rules)?;
        Ok(r)
    }) {
        Ok(received) => Verdict::Valid { instance, received },
        Err(reason) => Verdict::Rejected { vrid, reason },
    }
}

/// [`receive_ip`] for a VRRP message whose IP header the kernel has consumed (the IPv6 raw
/// socket): `payload` from `src` to `dst` with TTL / hop limit `ttl`.
pub fn receive_vrrp(
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: &[u8],
    arrival: Arrival,
    rx: &Receiver<'_>,
    opts: &DecodeOptions,
) -> Verdict {
    let vrid = payload.get(1).copied();
    if arrival.tagged {
        return Verdict::Foreign {
            vrid: vrid.unwrap_or(0),
        };
    }
    let Some(vrid) = vrid else {
        return Verdict::Rejected {
            vrid: 0,
            reason: RejectReason::Truncated,
        };
    };
    let Some((instance, rules, opts)) = rx.whose(vrid, Family::of(&src), dst, arrival, opts) else {
        return Verdict::Foreign { vrid };
    };
    match decode_vrrp(src, dst, ttl, payload, &opts).and_then(|a| {
        validate(&a, src, rules)?;
        check_peer_ttl(src, ttl, rules)?;
        Ok(a)
    }) {
        Ok(advert) => Verdict::Valid {
            instance,
            received: Received {
                src,
                dst,
                ttl,
                advert,
            },
        },
        Err(reason) => Verdict::Rejected { vrid, reason },
    }
}

impl Advert {
    /// The family of the addresses, or `None` when there are none (v2 allows that).
    pub fn family(&self) -> Option<Family> {
        self.addrs.first().map(Family::of)
    }

    /// Length of the VRRP message for this advert over `family`.
    pub fn encoded_len(&self, family: Family) -> usize {
        vrrp_len(self.version, family, self.addrs.len())
    }

    /// The VRRP message (the IP payload) for this advert sent from `src` to `dst`, checksum
    /// included. The kernel writes the IP header: for IPv4 it must carry TTL 255 and protocol
    /// 112, for IPv6 hop limit 255 and next header 112 (RFC 5798 §5.1).
    pub fn encode(
        &self,
        src: IpAddr,
        dst: IpAddr,
        opts: &EncodeOptions,
    ) -> Result<Vec<u8>, EncodeError> {
        let family = Family::of(&src);
        if Family::of(&dst) != family || self.addrs.iter().any(|a| Family::of(a) != family) {
            return Err(EncodeError::MixedFamilies { src, dst });
        }
        let count = u8::try_from(self.addrs.len())
            .map_err(|_| EncodeError::TooManyAddresses(self.addrs.len()))?;
        if !self.version.carries_interval(self.adver_int_cs) {
            return Err(EncodeError::IntervalNotRepresentable {
                version: self.version,
                adver_int_cs: self.adver_int_cs,
            });
        }
        let word1: [u8; 2] = match self.version {
            Version::V2 => {
                if family == Family::Ipv6 && self.auth != Auth::None {
                    return Err(EncodeError::AuthNotSupported);
                }
                [
                    self.auth.auth_type(),
                    (self.adver_int_cs / CS_PER_SEC) as u8,
                ]
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::AuthNotSupported);
                }
                // Reserved nibble zero (RFC 5798 §5.2.6).
                self.adver_int_cs.to_be_bytes()
            }
        };

        let mut buf = Vec::with_capacity(self.encoded_len(family));
        buf.push((self.version.number() << 4) | VRRP_TYPE_ADVERTISEMENT);
        buf.extend_from_slice(&[self.vrid, self.priority, count]);
        buf.extend_from_slice(&word1);
        buf.extend_from_slice(&[0, 0]);
        for addr in &self.addrs {
            match addr {
                IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 && family == Family::Ipv4 {
            match self.auth {
                Auth::Pass(data) => buf.extend_from_slice(&data),
                Auth::None => buf.extend_from_slice(&[0; VRRP_V2_AUTH_LEN]),
            }
        }
        let pseudo = PseudoHeader::new(self.version, src, dst, buf.len(), !opts.v3_checksum_as_v2);
        let sum = Checksum::new().add(pseudo.as_slice()).add(&buf).finish();
        if let Some(field) = buf.get_mut(6..8) {
            field.copy_from_slice(&sum.to_be_bytes());
        }
        Ok(buf)
    }
}

/// Length of a VRRP message (RFC 3768 §5.1, RFC 5798 §5.1): v2 over IPv4 has 8 bytes of
/// authentication data after the addresses.
pub const fn vrrp_len(version: Version, family: Family, count: usize) -> usize {
    let auth = match (version, family) {
        (Version::V2, Family::Ipv4) => VRRP_V2_AUTH_LEN,
        _ => 0,
    };
    VRRP_HEADER_LEN + count * family.addr_len() + auth
}

/// Decodes an advert from an IPv4 or IPv6 packet, starting at the IP header (checks 1–19 of
/// the [module documentation](self#order-of-checks)). Bytes after the IP datagram (Ethernet
/// padding) are ignored.
pub fn decode_ip(packet: &[u8], opts: &DecodeOptions) -> Result<Received, RejectReason> {
    let (src, dst, ttl, payload) = split_ip(packet)?;
    let advert = decode_vrrp(src, dst, ttl, payload, opts)?;
    Ok(Received {
        src,
        dst,
        ttl,
        advert,
    })
}

/// The IP addresses, TTL and VRRP part of an IP packet carrying VRRP (checks 1–9).
fn split_ip(packet: &[u8]) -> Result<(IpAddr, IpAddr, u8, &[u8]), RejectReason> {
    let first = *packet.first().ok_or(RejectReason::Truncated)?;
    match first >> 4 {
        4 => {
            // RFC 791 §3.1.
            let hdr: &[u8; IPV4_MIN_HLEN] = array_at(packet, 0).ok_or(RejectReason::Truncated)?;
            let ihl = usize::from(hdr[0] & 0x0f) * 4;
            if ihl < IPV4_MIN_HLEN || hdr[9] != IPPROTO_VRRP {
                return Err(RejectReason::NotVrrp);
            }
            let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
            if total > packet.len() || total < ihl {
                return Err(RejectReason::Truncated);
            }
            // Flags (bit 2 of 3: MF) and 13-bit fragment offset.
            if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
                return Err(RejectReason::Truncated);
            }
            let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
            let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);
            let payload = packet.get(ihl..total).ok_or(RejectReason::Truncated)?;
            Ok((src.into(), dst.into(), hdr[8], payload))
        }
        6 => {
            // RFC 8200 §3.
            let hdr: &[u8; IPV6_HLEN] = array_at(packet, 0).ok_or(RejectReason::Truncated)?;
            if hdr[6] != IPPROTO_VRRP {
                return Err(RejectReason::NotVrrp);
            }
            let payload_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
            let payload = packet
                .get(IPV6_HLEN..IPV6_HLEN + payload_len)
                .ok_or(RejectReason::Truncated)?;
            let src: &[u8; 16] = array_at(hdr, 8).ok_or(RejectReason::Truncated)?;
            let dst: &[u8; 16] = array_at(hdr, 24).ok_or(RejectReason::Truncated)?;
            Ok((
                Ipv6Addr::from(*src).into(),
                Ipv6Addr::from(*dst).into(),
                hdr[7],
                payload,
            ))
        }
        _ => Err(RejectReason::NotVrrp),
    }
}

/// Decodes the VRRP message `payload` that arrived from `src` to `dst` with TTL / hop limit
/// `ttl` (checks 10–19 of the [module documentation](self#order-of-checks)). `payload` must be
/// exactly the IP payload.
pub fn decode_vrrp(
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: &[u8],
    opts: &DecodeOptions,
) -> Result<Advert, RejectReason> {
    let family = Family::of(&src);
    if Family::of(&dst) != family {
        return Err(RejectReason::FamilyMismatch);
    }
    // RFC 5798 §7.1 / RFC 3768 §7.1: a router on the way would have decremented it.
    let ttl_checked = dst.is_multicast() || !opts.unicast_any_ttl;
    if ttl_checked && ttl != VRRP_TTL {
        return Err(RejectReason::TtlNot255);
    }
    let hdr: &[u8; VRRP_HEADER_LEN] = array_at(payload, 0).ok_or(RejectReason::Truncated)?;
    let version = match hdr[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        _ => return Err(RejectReason::BadVersion),
    };
    if hdr[0] & 0x0f != VRRP_TYPE_ADVERTISEMENT {
        return Err(RejectReason::BadType);
    }
    let (vrid, priority, count) = (hdr[1], hdr[2], usize::from(hdr[3]));
    if vrid == 0 {
        return Err(RejectReason::BadVrid);
    }
    if payload.len() != vrrp_len(version, family, count) {
        return Err(RejectReason::LengthMismatch);
    }
    if !checksum_ok(version, src, dst, payload, opts.v3_ipv4_checksum) {
        return Err(RejectReason::BadChecksum);
    }

    let addr_bytes = payload
        .get(VRRP_HEADER_LEN..VRRP_HEADER_LEN + count * family.addr_len())
        .ok_or(RejectReason::LengthMismatch)?;
    let addrs: Vec<IpAddr> = match family {
        Family::Ipv4 => addr_bytes
            .chunks_exact(4)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok())
            .map(IpAddr::from)
            .collect(),
        Family::Ipv6 => addr_bytes
            .chunks_exact(16)
            .filter_map(|c| <[u8; 16]>::try_from(c).ok())
            .map(IpAddr::from)
            .collect(),
    };

    let (adver_int_cs, auth) = match version {
        Version::V2 => {
            let auth = match (hdr[4], family) {
                (VRRP_AUTH_NONE, _) => Auth::None,
                (VRRP_AUTH_PASS, Family::Ipv4) => {
                    let data = array_at(payload, payload.len().saturating_sub(VRRP_V2_AUTH_LEN))
                        .ok_or(RejectReason::LengthMismatch)?;
                    Auth::Pass(*data)
                }
                _ => return Err(RejectReason::AuthMismatch),
            };
            (v2_adver_int_cs(hdr[5]), auth)
        }
        Version::V3 => (v3_max_adver_int_cs([hdr[4], hdr[5]]), Auth::None),
    };
    Ok(Advert {
        version,
        vrid,
        priority,
        adver_int_cs,
        addrs,
        auth,
    })
}

/// Checks an advert that decoded against the instance configured for its VRID (checks 20–26
/// of the [module documentation](self#order-of-checks)). `src` is the advert's IP source.
pub fn validate(advert: &Advert, src: IpAddr, rules: &InstanceRules) -> Result<(), RejectReason> {
    // RFC 5798 §7.1: "MUST verify that the VRID is configured on the receiving interface".
    if advert.vrid != rules.vrid {
        return Err(RejectReason::UnknownVrid);
    }
    if Family::of(&src) != rules.family {
        return Err(RejectReason::FamilyMismatch);
    }
    if advert.version != rules.version {
        return Err(RejectReason::BadVersion);
    }
    if advert.version == Version::V2 {
        // RFC 3768 §7.1: "MUST perform authentication specified by Auth Type".
        if !advert.auth.matches(&rules.auth) {
            return Err(RejectReason::AuthMismatch);
        }
        // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as the
        // locally configured for this virtual router".
        if advert.adver_int_cs != rules.adver_int_cs {
            return Err(RejectReason::IntervalMismatch);
        }
    }
    if let Some(vips) = &rules.vips {
        // keepalived: count equal, and every configured VIP present (vrrp_in_chk_vips).
        if advert.addrs.len() != vips.len() || !vips.iter().all(|v| advert.addrs.contains(v)) {
            return Err(RejectReason::AddressListMismatch);
        }
    }
    if !rules.unicast_peers.is_empty() && !rules.unicast_peers.contains(&src) {
        return Err(RejectReason::PeerNotAllowed);
    }
    Ok(())
}

/// Check 27: an advert from a unicast peer arrived with a TTL / hop limit in the peer's range
/// (keepalived's `check_ttl_hl`, applied once the source is known to be a peer).
pub fn check_peer_ttl(src: IpAddr, ttl: u8, rules: &InstanceRules) -> Result<(), RejectReason> {
    if rules.unicast_peers.is_empty() || rules.ttl_range(src).contains(ttl) {
        Ok(())
    } else {
        Err(RejectReason::TtlOutOfRange)
    }
}

/// The VRID slot a rejection of this IP packet is counted under: the VRID byte when the packet
/// is long enough to hold it, else 0. The XDP program must count the same way.
pub fn vrid_slot_ip(packet: &[u8]) -> u8 {
    let offset = match packet.first().map(|b| b >> 4) {
        Some(4) => packet.first().map_or(0, |b| usize::from(b & 0x0f) * 4),
        Some(6) => IPV6_HLEN,
        _ => return 0,
    };
    vrid_slot(packet.get(offset..).unwrap_or_default())
}

/// The VRID slot a rejection of this VRRP message is counted under: its VRID byte, or 0.
pub fn vrid_slot(payload: &[u8]) -> u8 {
    payload.get(1).copied().unwrap_or(0)
}

fn checksum_ok(
    version: Version,
    src: IpAddr,
    dst: IpAddr,
    payload: &[u8],
    accept: V3Ipv4Checksum,
) -> bool {
    let verifies = |v3_ipv4_pseudo: bool| {
        let pseudo = PseudoHeader::new(version, src, dst, payload.len(), v3_ipv4_pseudo);
        Checksum::new().add(pseudo.as_slice()).add(payload).finish() == 0
    };
    match (version, Family::of(&src), accept) {
        (Version::V3, Family::Ipv4, V3Ipv4Checksum::AsV2) => verifies(false),
        (Version::V3, Family::Ipv4, V3Ipv4Checksum::Either) => verifies(true) || verifies(false),
        _ => verifies(true),
    }
}

/// The pseudo-header summed before the message, possibly empty: the IPv4 one (RFC 5798 §5.2.8,
/// laid out as RFC 768's: source, destination, zero, protocol, 16-bit length) for v3 when
/// `v3_ipv4`; the IPv6 one (RFC 8200 §8.1: source, destination, 32-bit length, three zero
/// bytes, next header) always; none for v2 over IPv4 (RFC 3768 §5.3.8).
struct PseudoHeader {
    bytes: [u8; 40],
    len: usize,
}

impl PseudoHeader {
    fn new(version: Version, src: IpAddr, dst: IpAddr, vrrp_len: usize, v3_ipv4: bool) -> Self {
        let mut bytes = [0u8; 40];
        let len = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) if version == Version::V3 && v3_ipv4 => {
                bytes[..4].copy_from_slice(&s.octets());
                bytes[4..8].copy_from_slice(&d.octets());
                bytes[9] = IPPROTO_VRRP;
                bytes[10..12].copy_from_slice(&(vrrp_len as u16).to_be_bytes());
                12
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                bytes[..16].copy_from_slice(&s.octets());
                bytes[16..32].copy_from_slice(&d.octets());
                bytes[32..36].copy_from_slice(&(vrrp_len as u32).to_be_bytes());
                bytes[39] = IPPROTO_VRRP;
                40
            }
            _ => 0,
        };
        PseudoHeader { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// `N` bytes of `buf` from `offset`, if present.
fn array_at<const N: usize>(buf: &[u8], offset: usize) -> Option<&[u8; N]> {
    buf.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

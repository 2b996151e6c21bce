//! XDP `vrrp_rx`: validates VRRP adverts at the NIC, check for check as the userspace codec
//! (`ha-agent/src/vrrp/packet.rs`, "Order of checks"), and counts the verdicts.
//!
//! - Not VRRP (not IP protocol 112 directly behind an IPv4/IPv6 header, one 802.1Q tag allowed),
//!   or too short to hold the protocol field: `XDP_PASS`, nothing counted; IPv4/IPv6 of another
//!   protocol is first tail-called into `xdp_lb` (`LB_PROG`), which passes it when it is no
//!   virtual server's (an empty `LB_PROG`, no virtual server on the interface: passed, but for
//!   a packet to a service still in `LB_SERVICES`, whose agent is gone: dropped, see
//!   `lb::orphaned`).
//! - Another speaker's (check 5a: VLAN-tagged, a VRID and family none of this interface's
//!   instances run, a multicast group other than `vrrp_mcast_group4/6`, a unicast frame to
//!   another MAC): `FOREIGN[vrid]++`, `XDP_PASS` to the stack (a keepalived on `eth0.100`, in a
//!   macvlan container or for other VRIDs on this host hears it), whatever else is wrong with
//!   it; `XDP_DROP` only with `RX_GLOBAL.flags & DROP_FOREIGN`.
//! - Rejected: `STATS[vrid][reason]++`, `XDP_DROP`.
//! - Valid: `ACCEPTED[slot]++`, `PEER[slot]` updated, an `EVENTS` record when the election must
//!   see it (new source, priority, interval, priority 0, first after a silence, or any while we
//!   are Master), `SLOT_FENCE[slot]` quiet when it preempts a slot we are Master of; `XDP_DROP`.
//!
//! `RX_GLOBAL.flags & PASS_ADVERTS` passes every VRRP packet on after counting (debugging with
//! tcpdump, which sees packets after XDP).

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    cty::c_void,
    helpers::{bpf_ktime_get_ns, bpf_loop, bpf_xdp_load_bytes},
    macros::xdp,
    programs::XdpContext,
};
use ha_common::{
    RejectReason,
    lb::LB_PROG_INDEX,
    maps::{
        PeerEvent, RX_INLINE_VIPS, RxGlobal, RxInstance, SlotAddr, event_why, instance_slot,
        rx_flags, slot_fence, stats_index,
    },
    wire::{
        ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, IPPROTO_VRRP, IPV4_MIN_HLEN,
        IPV6_HLEN, VRRP_AUTH_NONE, VRRP_AUTH_PASS, VRRP_HEADER_LEN, VRRP_TTL,
        VRRP_TYPE_ADVERTISEMENT, VRRP_V2_AUTH_LEN, v2_adver_int_cs, v3_max_adver_int_cs,
    },
};

use crate::{
    maps::{
        ACCEPTED, ADV_ADDRS, ALLOWED_PEERS, EVENTS, EVENTS_LOST, FOREIGN, LB_PROG, PEER,
        RX_ADVERTS, RX_GLOBAL, RX_INSTANCE, SLOT_FENCE, STATS, bump,
    },
    ptr::{read_at, read_be16},
};

/// Largest VRRP message: v3 over IPv6 with 255 addresses (8 + 255 × 16), in 32-bit words.
const MAX_VRRP_WORDS: usize = (VRRP_HEADER_LEN + 255 * 16) / 4;

#[xdp]
pub fn vrrp_rx(ctx: XdpContext) -> u32 {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let global = RX_GLOBAL.get(0).copied().unwrap_or_default();
    let verdict = classify(ctx.ctx, data, data_end, &global);
    let pass_all = global.flags & rx_flags::PASS_ADVERTS != 0;
    let consumed = if pass_all {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    };
    match verdict {
        Verdict::NotVrrp => xdp_action::XDP_PASS,
        Verdict::OtherIp => {
            // SAFETY: the context is this program's own; on success control never returns, on
            // failure (no load balancer on this interface) the packet passes as before.
            unsafe { LB_PROG.tail_call(&ctx, LB_PROG_INDEX) };
            if crate::lb::orphaned(&ctx) {
                xdp_action::XDP_DROP
            } else {
                xdp_action::XDP_PASS
            }
        }
        Verdict::Foreign { vrid } => {
            bump(&FOREIGN, vrid as u32);
            if global.flags & rx_flags::DROP_FOREIGN != 0 {
                consumed
            } else {
                xdp_action::XDP_PASS
            }
        }
        Verdict::Rejected { vrid, reason } => {
            bump(&RX_ADVERTS, vrid as u32);
            bump(&STATS, stats_index(vrid, reason as u8));
            consumed
        }
        Verdict::Valid { vrid } => {
            bump(&RX_ADVERTS, vrid as u32);
            consumed
        }
    }
}

enum Verdict {
    NotVrrp,
    /// IPv4 or IPv6 carrying another protocol: the load balancer's (`xdp_lb`), if any.
    OtherIp,
    /// Another speaker's advert (check 5a): the stack's to deliver.
    Foreign {
        vrid: u8,
    },
    Rejected {
        vrid: u8,
        reason: RejectReason,
    },
    Valid {
        vrid: u8,
    },
}

/// Offset of the L3 header and its ethertype, skipping one VLAN tag.
#[inline(always)]
pub fn l3_offset(data: usize, data_end: usize) -> Result<(u16, usize), ()> {
    let ethertype = read_be16(data, data_end, 12)?;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        return Ok((read_be16(data, data_end, 16)?, ETH_HLEN + 4));
    }
    Ok((ethertype, ETH_HLEN))
}

/// What the IP header says about a VRRP packet.
struct Ip {
    ipv6: bool,
    /// Offsets (from `data`) of the source and destination addresses.
    src: usize,
    dst: usize,
    ttl: u8,
    /// Offset and length of the VRRP message.
    vrrp: usize,
    len: usize,
}

#[inline(always)]
fn classify(xdp: *mut xdp_md, data: usize, data_end: usize, global: &RxGlobal) -> Verdict {
    let Ok((ethertype, l3)) = l3_offset(data, data_end) else {
        return Verdict::NotVrrp;
    };
    if ethertype != ETH_P_IP && ethertype != ETH_P_IPV6 {
        return Verdict::NotVrrp;
    }
    let Ok(first) = read_at::<u8>(data, data_end, l3) else {
        return Verdict::NotVrrp;
    };
    // 2, 5, 9: IPv4 or IPv6 carrying protocol 112.
    let ipv6 = match first >> 4 {
        4 => false,
        6 => true,
        _ => return Verdict::NotVrrp,
    };
    let proto_at = if ipv6 { l3 + 6 } else { l3 + 9 };
    if read_at::<u8>(data, data_end, proto_at) != Ok(IPPROTO_VRRP) {
        return Verdict::OtherIp;
    }
    let hlen = if ipv6 {
        IPV6_HLEN
    } else {
        ((first & 0x0f) as usize) * 4
    };
    let vrrp_at = l3 + hlen;
    // The VRID byte from the buffer, as the codec's `vrid_slot_ip`.
    let vrid = read_at::<u8>(data, data_end, vrrp_at + 1).ok();
    // 5a, first: our instances live on the untagged interface; a tagged frame is another VLAN's.
    if l3 != ETH_HLEN {
        return Verdict::Foreign {
            vrid: vrid.unwrap_or(0),
        };
    }
    // 3, 8: the fixed header.
    if !fits(
        data,
        data_end,
        l3 + if ipv6 { IPV6_HLEN } else { IPV4_MIN_HLEN },
    ) {
        return Verdict::Rejected {
            vrid: vrid.unwrap_or(0),
            reason: RejectReason::Truncated,
        };
    }
    // 4.
    if hlen < IPV4_MIN_HLEN {
        return Verdict::NotVrrp;
    }
    // 5a: whose advert is it? Decided before anything else is judged: a malformed advert for
    // another speaker is theirs to judge.
    let Some(vrid) = vrid else {
        return Verdict::Rejected {
            vrid: 0,
            reason: RejectReason::Truncated,
        };
    };
    let slot = instance_slot(vrid, ipv6);
    let cfg = match RX_INSTANCE.get(slot) {
        Some(cfg) if cfg.configured != 0 => cfg,
        _ => return Verdict::Foreign { vrid },
    };
    let dst = if ipv6 { l3 + 24 } else { l3 + 16 };
    if !for_us(data, data_end, dst, ipv6, global, cfg) {
        return Verdict::Foreign { vrid };
    }

    let parsed = if ipv6 {
        ipv6_rest(data, data_end, l3)
    } else {
        ipv4_rest(data, data_end, l3, hlen)
    };
    let ip = match parsed {
        Ok(ip) => ip,
        Err(reason) => return Verdict::Rejected { vrid, reason },
    };
    match vrrp(xdp, data, data_end, &ip, slot, cfg, global.flags) {
        Ok(()) => Verdict::Valid { vrid },
        Err(reason) => Verdict::Rejected { vrid, reason },
    }
}

/// Check 5a's destination test: a multicast advert must go to the instance's group
/// (`mcast_dst_ip`), else this interface's group of its family, a unicast one to this
/// interface's MAC. The caller checked the IP header is there.
#[inline(always)]
fn for_us(
    data: usize,
    data_end: usize,
    dst: usize,
    ipv6: bool,
    global: &RxGlobal,
    cfg: &RxInstance,
) -> bool {
    if ipv6 {
        let Ok(d) = read_at::<[u8; 16]>(data, data_end, dst) else {
            return false;
        };
        if d[0] == 0xff {
            let group = if cfg.has_group != 0 {
                cfg.group
            } else {
                global.group6
            };
            return u128::from_ne_bytes(d) == u128::from_ne_bytes(group);
        }
    } else {
        let Ok(d) = read_at::<[u8; 4]>(data, data_end, dst) else {
            return false;
        };
        if d[0] >> 4 == 14 {
            let group = if cfg.has_group != 0 {
                [cfg.group[0], cfg.group[1], cfg.group[2], cfg.group[3]]
            } else {
                global.group4
            };
            return u32::from_ne_bytes(d) == u32::from_ne_bytes(group);
        }
    }
    let Ok(mac) = read_at::<[u8; 6]>(data, data_end, 0) else {
        return false;
    };
    mac == global.mac
}

/// Whether the packet holds at least `len` bytes. A pointer comparison: the verifier refuses
/// `data_end - data` as a number.
#[inline(always)]
fn fits(data: usize, data_end: usize, len: usize) -> bool {
    data + len <= data_end
}

/// IPv4 (RFC 791 §3.1) after check 5a: checks 6–7. The caller checked 3–5.
#[inline(always)]
fn ipv4_rest(data: usize, data_end: usize, l3: usize, ihl: usize) -> Result<Ip, RejectReason> {
    let truncated = |_| RejectReason::Truncated;
    let total = read_be16(data, data_end, l3 + 2).map_err(truncated)? as usize;
    if !fits(data, data_end, l3 + total) || total < ihl {
        return Err(RejectReason::Truncated);
    }
    if read_be16(data, data_end, l3 + 6).map_err(truncated)? & 0x3fff != 0 {
        return Err(RejectReason::Truncated);
    }
    let ttl = read_at::<u8>(data, data_end, l3 + 8).map_err(truncated)?;
    Ok(Ip {
        ipv6: false,
        src: l3 + 12,
        dst: l3 + 16,
        ttl,
        vrrp: l3 + ihl,
        len: total - ihl,
    })
}

/// IPv6 (RFC 8200 §3) after check 5a: check 9a. The caller checked 8–9.
#[inline(always)]
fn ipv6_rest(data: usize, data_end: usize, l3: usize) -> Result<Ip, RejectReason> {
    let truncated = |_| RejectReason::Truncated;
    let payload = read_be16(data, data_end, l3 + 4).map_err(truncated)? as usize;
    if !fits(data, data_end, l3 + IPV6_HLEN + payload) {
        return Err(RejectReason::Truncated);
    }
    let ttl = read_at::<u8>(data, data_end, l3 + 7).map_err(truncated)?;
    Ok(Ip {
        ipv6: true,
        src: l3 + 8,
        dst: l3 + 24,
        ttl,
        vrrp: l3 + IPV6_HLEN,
        len: payload,
    })
}

/// Checks 11–26 on a VRRP message for the instance in `slot` (`cfg`), then records a valid one.
#[inline(always)]
fn vrrp(
    xdp: *mut xdp_md,
    data: usize,
    data_end: usize,
    ip: &Ip,
    slot: u32,
    cfg: &RxInstance,
    flags: u32,
) -> Result<(), RejectReason> {
    let truncated = |_| RejectReason::Truncated;
    let alen = if ip.ipv6 { 16 } else { 4 };

    // 11: TTL / hop limit (RFC 5798 §7.1), waived for unicast adverts to a unicast instance.
    let dst0 = read_at::<u8>(data, data_end, ip.dst).map_err(truncated)?;
    let multicast = if ip.ipv6 {
        dst0 == 0xff
    } else {
        dst0 >> 4 == 14
    };
    if (multicast || cfg.unicast_any_ttl == 0) && ip.ttl != VRRP_TTL {
        return Err(RejectReason::TtlNot255);
    }
    // 12–15: the fixed header.
    if ip.len < VRRP_HEADER_LEN {
        return Err(RejectReason::Truncated);
    }
    let hdr: [u8; VRRP_HEADER_LEN] = read_at(data, data_end, ip.vrrp).map_err(truncated)?;
    let version = hdr[0] >> 4;
    if version != 2 && version != 3 {
        return Err(RejectReason::BadVersion);
    }
    if hdr[0] & 0x0f != VRRP_TYPE_ADVERTISEMENT {
        return Err(RejectReason::BadType);
    }
    let (vrid, priority, count) = (hdr[1], hdr[2], hdr[3] as usize);
    // Unreachable (VRID 0 is no instance's: 5a passed it), kept as the codec's step.
    if vrid == 0 {
        return Err(RejectReason::BadVrid);
    }
    // 16: length.
    let auth_len = if version == 2 && !ip.ipv6 {
        VRRP_V2_AUTH_LEN
    } else {
        0
    };
    if ip.len != VRRP_HEADER_LEN + count * alen + auth_len {
        return Err(RejectReason::LengthMismatch);
    }
    // 17: checksum.
    let sum = sum_words(xdp, ip.vrrp, ip.len / 4);
    let ok = if ip.ipv6 {
        fold(sum + pseudo_v6(data, data_end, ip).map_err(truncated)?) == 0xffff
    } else if version == 2 {
        fold(sum) == 0xffff
    } else {
        let as_v2 = flags & rx_flags::V3_V4_AS_V2 != 0;
        let pseudo = flags & rx_flags::V3_V4_PSEUDO != 0 || !as_v2;
        let with = sum + pseudo_v4(data, data_end, ip).map_err(truncated)?;
        (pseudo && fold(with) == 0xffff) || (as_v2 && fold(sum) == 0xffff)
    };
    if !ok {
        return Err(RejectReason::BadChecksum);
    }
    // 18–19: v2 auth type.
    if version == 2 {
        let auth_type = hdr[4];
        if auth_type != VRRP_AUTH_NONE && (auth_type != VRRP_AUTH_PASS || ip.ipv6) {
            return Err(RejectReason::AuthMismatch);
        }
    }

    // 20–21 were decided by 5a (the slot is the VRID and family).
    // 22–24.
    if version != cfg.version {
        return Err(RejectReason::BadVersion);
    }
    if version == 2 {
        if hdr[4] != cfg.auth_type {
            return Err(RejectReason::AuthMismatch);
        }
        if hdr[4] == VRRP_AUTH_PASS {
            // After the addresses: check 16 made the length 8 + 4 × count + 8. Computed from the
            // length, not `count`: a count in packet arithmetic is tracked precisely by the
            // verifier, and the address loop's exits (one per count) then never merge. The mask
            // bounds the offset for the verifier; it changes nothing (4 × 255 < 1024).
            let addrs = ip.len.wrapping_sub(VRRP_HEADER_LEN + VRRP_V2_AUTH_LEN) & 0x3ff;
            let at = ip.vrrp + VRRP_HEADER_LEN + addrs;
            let got = u64::from_ne_bytes(read_at(data, data_end, at).map_err(truncated)?);
            // Every byte compared whatever the first difference, as keepalived.
            if got ^ u64::from_ne_bytes(cfg.auth) != 0 {
                return Err(RejectReason::AuthMismatch);
            }
        }
        if v2_adver_int_cs(hdr[5]) != cfg.adver_int_cs {
            return Err(RejectReason::IntervalMismatch);
        }
    }
    // 25: the address list.
    if cfg.check_vips != 0 {
        if count != cfg.vip_count as usize {
            return Err(RejectReason::AddressListMismatch);
        }
        let at = ip.vrrp + VRRP_HEADER_LEN;
        let mask = vip_mask(xdp, at, count, slot, cfg, ip.ipv6);
        if mask & cfg.vip_mask != cfg.vip_mask {
            return Err(RejectReason::AddressListMismatch);
        }
    }
    // 26: unicast peers, and 27: the peer's TTL range (keepalived's check_ttl_hl).
    let src = address(data, data_end, ip.src, ip.ipv6).map_err(truncated)?;
    if cfg.check_peers != 0 {
        let key = SlotAddr {
            slot: slot as u16,
            _pad: 0,
            addr: src,
        };
        // SAFETY: plain data read once; a concurrent update at worst gives the old range.
        let Some(ttl) = (unsafe { ALLOWED_PEERS.get(key) }) else {
            return Err(RejectReason::PeerNotAllowed);
        };
        if ip.ttl < ttl.min_ttl || ip.ttl > ttl.max_ttl {
            return Err(RejectReason::TtlOutOfRange);
        }
    }

    let adver_int_cs = if version == 2 {
        v2_adver_int_cs(hdr[5])
    } else {
        v3_max_adver_int_cs([hdr[4], hdr[5]])
    };
    record(slot, cfg, src, priority, adver_int_cs);
    Ok(())
}

/// Updates `PEER[slot]`, counts, fences and sends an event for a valid advert.
#[inline(always)]
fn record(slot: u32, cfg: &RxInstance, src: [u8; 16], priority: u8, adver_int_cs: u16) {
    bump(&ACCEPTED, slot);
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let mut why = 0u8;
    if let Some(peer) = PEER.get_ptr_mut(slot) {
        // SAFETY: a map value of this array; concurrent writers on other CPUs may interleave
        // fields (see `PeerRecord`), never fault.
        let peer = unsafe { &mut *peer };
        if peer.last_seen_ns == 0 || peer.src != src {
            why |= event_why::NEW_SOURCE;
        }
        if peer.priority != priority {
            why |= event_why::PRIORITY;
        }
        if peer.adver_int_cs != adver_int_cs {
            why |= event_why::INTERVAL;
        }
        if now.wrapping_sub(peer.last_seen_ns) > cfg.silence_ns {
            why |= event_why::AFTER_SILENCE;
        }
        peer.last_seen_ns = now;
        peer.src = src;
        peer.priority = priority;
        peer.adver_int_cs = adver_int_cs;
    }
    if priority == 0 {
        why |= event_why::RESIGN;
    }
    if cfg.master != 0 {
        why |= event_why::WHILE_MASTER;
        // RFC 5798 §6.4.3: a higher priority, or an equal one from a higher address, wins.
        if priority > cfg.priority || (priority == cfg.priority && greater(&src, &cfg.primary)) {
            if let Some(f) = SLOT_FENCE.get_ptr_mut(slot) {
                // Quiet, not fenced: the step-down is a planned handover (the agent fences
                // once the successor's gratuitous ARP had time to reach the clients).
                // SAFETY: a map value of this array; a u32 store.
                unsafe { *f = slot_fence::QUIET };
            }
            why |= event_why::FENCED;
        }
    }
    if why != 0 {
        let event = PeerEvent {
            at_ns: now,
            slot: slot as u16,
            priority,
            why,
            adver_int_cs,
            _pad: 0,
            src,
        };
        if EVENTS.output::<PeerEvent>(&event, 0).is_err() {
            bump(&EVENTS_LOST, 0);
        }
    }
}

/// Whether address `a` is greater than `b`, as unsigned big-endian numbers.
#[inline(always)]
fn greater(a: &[u8; 16], b: &[u8; 16]) -> bool {
    for i in 0..16 {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    false
}

/// The address at `at` (IPv4 in the first 4 bytes).
#[inline(always)]
fn address(data: usize, data_end: usize, at: usize, ipv6: bool) -> Result<[u8; 16], ()> {
    if ipv6 {
        return read_at(data, data_end, at);
    }
    let a: [u8; 4] = read_at(data, data_end, at)?;
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a);
    Ok(out)
}

/// State of the `bpf_loop` callbacks: the loops run in a callback the verifier checks once,
/// not unrolled per iteration and per exit (which exceeds its budget at 1022 words).
#[repr(C)]
struct LoopCtx {
    xdp: *mut xdp_md,
    /// Offset (from the start of the packet) of the first word / address.
    at: u32,
    slot: u16,
    ipv6: u8,
    _pad: u8,
    /// The running sum, or the VIP mask.
    acc: u64,
}

/// Messages up to this many 32-bit words (v3 IPv4 with 62 VIPs, IPv6 with 15) are summed by
/// direct packet access; longer ones in a `bpf_loop`.
const DIRECT_WORDS: usize = 64;

/// Adverts with up to this many addresses, when the instance has more than
/// [`RX_INLINE_VIPS`], are looked up by direct packet access; more in a `bpf_loop`.
const DIRECT_ADDRS: usize = 16;

/// The packet's bounds, loaded afresh from the context for a loop over packet offsets: the
/// pointers the loop checks then die with it. Checked on the caller's pointers, each exit of the
/// loop would leave them with another verified range, and the verifier would walk the rest of
/// the program once per exit.
#[inline(always)]
fn packet(xdp: *mut xdp_md) -> (usize, usize) {
    // SAFETY: the context the kernel passed to the program; volatile so the loads are not merged
    // with `XdpContext::data`'s.
    unsafe {
        (
            core::ptr::read_volatile(&(*xdp).data) as usize,
            core::ptr::read_volatile(&(*xdp).data_end) as usize,
        )
    }
}

/// The mask of our VIPs an advert lists: the OR, over its `count` addresses from `at`, of
/// `1 << i` where `i` is the address's first index in our list (nothing when not ours). The
/// caller has checked that `count` is our number of VIPs.
#[inline(always)]
fn vip_mask(
    xdp: *mut xdp_md,
    at: usize,
    count: usize,
    slot: u32,
    cfg: &RxInstance,
    ipv6: bool,
) -> u64 {
    if count <= RX_INLINE_VIPS
        && let Some(mask) = vip_mask_inline(xdp, at, count, cfg, ipv6)
    {
        return mask;
    }
    if count <= DIRECT_ADDRS
        && let Some(mask) = vip_mask_direct(xdp, at, count, slot, ipv6)
    {
        return mask;
    }
    vip_mask_loop(xdp, at, count, slot, ipv6)
}

/// [`vip_mask`] against the VIPs the instance carries inline (all of them: `count` ≤
/// [`RX_INLINE_VIPS`]), reading the addresses in place: no helper call, no map lookup. `None`
/// when the packet is shorter than the addresses (the IP length checks make that impossible).
#[inline(always)]
fn vip_mask_inline(
    xdp: *mut xdp_md,
    at: usize,
    count: usize,
    cfg: &RxInstance,
    ipv6: bool,
) -> Option<u64> {
    let (data, data_end) = packet(xdp);
    let mut mask = 0u64;
    // Every entry is compared, downwards, so that the first index of a VIP listed twice wins
    // (as in ADV_ADDRS). An unused entry (zero) is never the first match of one of our VIPs, and
    // its bit, at `count` or above, is cleared below. Not testing `j < count` keeps `count` out
    // of the entries' addressing, where the verifier would track it precisely.
    if ipv6 {
        for i in 0..RX_INLINE_VIPS {
            if i >= count {
                break;
            }
            let a = u128::from_ne_bytes(read_at(data, data_end, at + i * 16).ok()?);
            let mut bit = 0u64;
            for j in (0..RX_INLINE_VIPS).rev() {
                if a == u128::from_ne_bytes(cfg.vips[j]) {
                    bit = 1 << j;
                }
            }
            mask |= bit;
        }
    } else {
        for i in 0..RX_INLINE_VIPS {
            if i >= count {
                break;
            }
            let a = u32::from_ne_bytes(read_at(data, data_end, at + i * 4).ok()?);
            let mut bit = 0u64;
            for j in (0..RX_INLINE_VIPS).rev() {
                let v = &cfg.vips[j];
                if a == u32::from_ne_bytes([v[0], v[1], v[2], v[3]]) {
                    bit = 1 << j;
                }
            }
            mask |= bit;
        }
    }
    Some(mask & ((1u64 << count) - 1))
}

/// [`vip_mask`] looking each address up in `ADV_ADDRS`, reading them in place. `None` when
/// the packet is shorter than the addresses (the IP length checks make that impossible).
#[inline(always)]
fn vip_mask_direct(
    xdp: *mut xdp_md,
    at: usize,
    count: usize,
    slot: u32,
    ipv6: bool,
) -> Option<u64> {
    let (data, data_end) = packet(xdp);
    let mut key = SlotAddr {
        slot: slot as u16,
        _pad: 0,
        addr: [0; 16],
    };
    let mut mask = 0u64;
    if ipv6 {
        for i in 0..DIRECT_ADDRS {
            if i >= count {
                break;
            }
            key.addr = read_at(data, data_end, at + i * 16).ok()?;
            mask |= adv_addr_bit(&key);
        }
    } else {
        for i in 0..DIRECT_ADDRS {
            if i >= count {
                break;
            }
            let a: u32 = read_at(data, data_end, at + i * 4).ok()?;
            // The first 4 bytes as one store (the other 12 stay zero): no memset call.
            // SAFETY: `addr` is 16 bytes; an unaligned 4-byte store into its start.
            unsafe { core::ptr::write_unaligned(key.addr.as_mut_ptr() as *mut u32, a) };
            mask |= adv_addr_bit(&key);
        }
    }
    Some(mask)
}

/// `1 << ADV_ADDRS[key]`, or 0 when the address is none of the instance's VIPs.
#[inline(always)]
fn adv_addr_bit(key: &SlotAddr) -> u64 {
    // SAFETY: a u8 map value read once.
    match unsafe { ADV_ADDRS.get(key) } {
        Some(index) => 1u64 << (*index & 63),
        None => 0,
    }
}

/// [`vip_mask`] for long address lists: a `bpf_loop` copying each address out with
/// `bpf_xdp_load_bytes`.
#[inline(always)]
fn vip_mask_loop(xdp: *mut xdp_md, at: usize, count: usize, slot: u32, ipv6: bool) -> u64 {
    let mut c = LoopCtx {
        xdp,
        at: at as u32,
        slot: slot as u16,
        ipv6: ipv6 as u8,
        _pad: 0,
        acc: 0,
    };
    // SAFETY: bpf_loop calls `vip_bit` with a pointer to `c`, which outlives the call.
    unsafe {
        bpf_loop(
            count as u32,
            vip_bit as *mut c_void,
            &mut c as *mut LoopCtx as *mut c_void,
            0,
        )
    };
    c.acc
}

#[inline(never)]
extern "C" fn vip_bit(index: u64, c: *mut LoopCtx) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's LoopCtx.
    let c = unsafe { &mut *c };
    let mut key = SlotAddr {
        slot: c.slot,
        _pad: 0,
        addr: [0; 16],
    };
    let (len, step) = if c.ipv6 != 0 { (16, 16) } else { (4, 4) };
    let offset = c.at + (index as u32) * step;
    // SAFETY: copies at most 16 bytes of packet into the key's 16-byte array; the helper checks
    // the packet bounds.
    let rc =
        unsafe { bpf_xdp_load_bytes(c.xdp, offset, key.addr.as_mut_ptr() as *mut c_void, len) };
    if rc != 0 {
        return 1;
    }
    // SAFETY: a u8 map value read once.
    if let Some(i) = unsafe { ADV_ADDRS.get(key) } {
        c.acc |= 1u64 << (*i & 63);
    }
    0
}

/// The 32-bit-word sum of `words` words from `at` (RFC 1071: summed wide, folded later).
#[inline(always)]
fn sum_words(xdp: *mut xdp_md, at: usize, words: usize) -> u64 {
    if words <= DIRECT_WORDS
        && let Some(sum) = sum_words_direct(xdp, at, words)
    {
        return sum;
    }
    sum_words_loop(xdp, at, words)
}

/// [`sum_words`] reading the words in place, without a helper call. `None` when the packet is
/// shorter than the words (the IP length checks make that impossible).
#[inline(always)]
fn sum_words_direct(xdp: *mut xdp_md, at: usize, words: usize) -> Option<u64> {
    let (data, data_end) = packet(xdp);
    let mut sum = 0u64;
    for i in 0..DIRECT_WORDS {
        if i >= words {
            break;
        }
        let w: [u8; 4] = read_at(data, data_end, at + i * 4).ok()?;
        sum += u32::from_be_bytes(w) as u64;
    }
    Some(sum)
}

/// [`sum_words`] for long messages: a `bpf_loop` copying each word out with
/// `bpf_xdp_load_bytes`.
#[inline(always)]
fn sum_words_loop(xdp: *mut xdp_md, at: usize, words: usize) -> u64 {
    let mut c = LoopCtx {
        xdp,
        at: at as u32,
        slot: 0,
        ipv6: 0,
        _pad: 0,
        acc: 0,
    };
    // SAFETY: bpf_loop calls `add_word` with a pointer to `c`, which outlives the call.
    unsafe {
        bpf_loop(
            words.min(MAX_VRRP_WORDS) as u32,
            add_word as *mut c_void,
            &mut c as *mut LoopCtx as *mut c_void,
            0,
        )
    };
    c.acc
}

#[inline(never)]
extern "C" fn add_word(index: u64, c: *mut LoopCtx) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's LoopCtx.
    let c = unsafe { &mut *c };
    let mut w = [0u8; 4];
    // SAFETY: copies 4 bytes of packet into `w`; the helper checks the packet bounds.
    let rc = unsafe {
        bpf_xdp_load_bytes(
            c.xdp,
            c.at + (index as u32) * 4,
            w.as_mut_ptr() as *mut c_void,
            4,
        )
    };
    if rc != 0 {
        return 1;
    }
    c.acc += u32::from_be_bytes(w) as u64;
    0
}

/// The IPv4 pseudo-header sum for v3 (RFC 5798 §5.2.8, laid out as RFC 768's).
#[inline(always)]
fn pseudo_v4(data: usize, data_end: usize, ip: &Ip) -> Result<u64, ()> {
    let s: [u8; 4] = read_at(data, data_end, ip.src)?;
    let d: [u8; 4] = read_at(data, data_end, ip.dst)?;
    Ok(u32::from_be_bytes(s) as u64
        + u32::from_be_bytes(d) as u64
        + IPPROTO_VRRP as u64
        + ip.len as u64)
}

/// The IPv6 pseudo-header sum (RFC 8200 §8.1).
#[inline(always)]
fn pseudo_v6(data: usize, data_end: usize, ip: &Ip) -> Result<u64, ()> {
    // Both addresses read whole, then summed from the stack: a loop over packet offsets is
    // strength-reduced by LLVM into pointer arithmetic the verifier refuses.
    let s: [u8; 16] = read_at(data, data_end, ip.src)?;
    let d: [u8; 16] = read_at(data, data_end, ip.dst)?;
    let mut sum = ip.len as u64 + IPPROTO_VRRP as u64;
    for k in 0..4 {
        let w =
            |a: &[u8; 16]| u32::from_be_bytes([a[4 * k], a[4 * k + 1], a[4 * k + 2], a[4 * k + 3]]);
        sum += w(&s) as u64 + w(&d) as u64;
    }
    Ok(sum)
}

/// Folds a wide one's complement sum to 16 bits.
#[inline(always)]
fn fold(mut sum: u64) -> u64 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}

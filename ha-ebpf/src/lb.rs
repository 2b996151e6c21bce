//! XDP `xdp_lb`: keepalived's `virtual_server`s as a load balancer at the NIC (Katran's design),
//! tail-called by `vrrp_rx` (`LB_PROG`) for IPv4 and IPv6 that is not VRRP.
//!
//! - Not TCP or UDP directly behind an untagged IPv4/IPv6 header (ICMP, extension headers),
//!   or not to a service in `LB_SERVICES`: `XDP_PASS`, nothing counted.
//! - A fragment to one of this interface's VIPs: `FRAGMENT`, `XDP_PASS` (no ports to hash).
//! - To a service of a VIP this node does not own (the TC fence's test: fenced, `SLOT_FENCE`,
//!   stale heartbeat, accept mode off, or not in `FENCE` at all): `NOT_OWNER`, `XDP_PASS`
//!   (the fence drops it in the stack).
//! - Else the real server: the flow's in `LB_FLOWS` while that real is `ALIVE`, else the
//!   client's persistence template (`LB_PERSIST`, within `persist_timeout_ns`, refreshed on
//!   every packet), else the service's ring at `flow_hash(..) % LB_RING_SIZE` (a new flow,
//!   recorded). An empty ring slot: `NO_REAL`, `XDP_PASS`.
//! - DR: the Ethernet addresses are rewritten; TUN: an outer IPv4 (protocol 4 or 41) or IPv6
//!   (next header 4 or 41) header is prepended first (`TOO_BIG` and dropped when it would
//!   exceed the transmitting interface's MTU; `NO_HEADROOM` when the driver leaves no room).
//!   `XDP_TX` when the real is behind the receiving interface, else `bpf_redirect`; `FORWARDED`
//!   and the per-service and per-real counters.

use aya_ebpf::{
    bindings::xdp_action,
    cty::c_void,
    helpers::{bpf_check_mtu, bpf_ktime_get_ns, bpf_redirect, bpf_xdp_adjust_head},
    macros::xdp,
    programs::XdpContext,
};
use ha_common::{
    lb::{
        FlowEntry, FlowKey, LB_NO_REAL, LB_RING_SIZE, LbStats, PersistEntry, PersistKey, RealEntry,
        ServiceKey, flow_hash, lb_counter, real_flags, service_flags,
    },
    maps::VipKey,
    wire::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6},
};

use crate::{
    fence::{Guard, ownership},
    maps::{
        LB_COUNTERS, LB_FLOWS, LB_PERSIST, LB_REAL_STATS, LB_REALS, LB_RING, LB_SERVICE_STATS,
        LB_SERVICES, bump,
    },
    ptr::{ptr_at, read_at, read_be16},
};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// IPv4-in-IP (RFC 2003) and IPv6-in-IP (RFC 2473): the tunnel's protocol by inner family.
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
/// IPv6 Fragment extension header (RFC 8200 §4.5).
const IPV6_FRAGMENT: u8 = 44;
/// IPv4 flags and fragment offset: MF or a non-zero offset is a fragment; DF.
const IPV4_FRAG_MASK: u16 = 0x3fff;
const IPV4_DF: u16 = 0x4000;
/// Outer headers of TUN.
const IPV4_OUTER: usize = 20;
const IPV6_OUTER: usize = 40;
/// TTL and hop limit of the outer header (Linux's default `ip_default_ttl`).
const TUN_TTL: u8 = 64;

#[xdp]
pub fn xdp_lb(ctx: XdpContext) -> u32 {
    try_lb(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

/// For `vrrp_rx` when its tail call into `xdp_lb` failed (an empty `LB_PROG`): whether the
/// packet is to a service in `LB_SERVICES`, i.e. a balancer was set up here and its agent is
/// gone; then it is dropped and counted (`NO_BALANCER`) rather than reset by the stack.
#[inline(always)]
pub fn orphaned(ctx: &XdpContext) -> bool {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let parsed = match read_be16(data, data_end, 12) {
        Ok(ETH_P_IP) => parse_v4(data, data_end),
        Ok(ETH_P_IPV6) => parse_v6(data, data_end),
        _ => return false,
    };
    let Ok(Parsed::Flow(pkt)) = parsed else {
        return false;
    };
    let key = ServiceKey {
        family: pkt.family,
        proto: pkt.proto,
        port_be: pkt.dport_be,
        addr: pkt.dst,
    };
    // SAFETY: plain data, only tested for presence.
    if unsafe { LB_SERVICES.get(key) }.is_none() {
        return false;
    }
    bump(&LB_COUNTERS, lb_counter::NO_BALANCER);
    true
}

/// What the IP and L4 headers say.
struct Packet {
    family: u8,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    sport_be: u16,
    dport_be: u16,
    /// The IP packet's length (header included), from its header.
    ip_len: u16,
    /// IPv4 Don't Fragment (always set for IPv6, which routers never fragment).
    df: bool,
}

enum Parsed {
    /// Not ours to look at.
    Pass,
    /// A fragment to `dst` (family `family`).
    Fragment {
        family: u8,
        dst: [u8; 16],
    },
    Flow(Packet),
}

#[inline(always)]
fn try_lb(ctx: &XdpContext) -> Result<u32, ()> {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let parsed = match read_be16(data, data_end, 12)? {
        ETH_P_IP => parse_v4(data, data_end)?,
        ETH_P_IPV6 => parse_v6(data, data_end)?,
        _ => Parsed::Pass,
    };
    let pkt = match parsed {
        Parsed::Pass => return Ok(xdp_action::XDP_PASS),
        Parsed::Fragment { family, dst } => {
            // SAFETY: plain data read once.
            if unsafe { crate::maps::FENCE.get(vip(family, dst)) }.is_some() {
                bump(&LB_COUNTERS, lb_counter::FRAGMENT);
            }
            return Ok(xdp_action::XDP_PASS);
        }
        Parsed::Flow(pkt) => pkt,
    };
    let key = ServiceKey {
        family: pkt.family,
        proto: pkt.proto,
        port_be: pkt.dport_be,
        addr: pkt.dst,
    };
    // SAFETY: plain data, copied at once.
    let Some(service) = (unsafe { LB_SERVICES.get(key) }).copied() else {
        return Ok(xdp_action::XDP_PASS);
    };
    // Quiet (a planned handover) still owns the VIP for IP: its flows keep being served.
    if !matches!(
        ownership(&vip(pkt.family, pkt.dst)),
        Some(Guard::Open | Guard::Quiet { no_accept: false })
    ) {
        bump(&LB_COUNTERS, lb_counter::NOT_OWNER);
        return Ok(xdp_action::XDP_PASS);
    }
    if service.flags & service_flags::SUSPENDED != 0 {
        return Ok(xdp_action::XDP_PASS);
    }

    let flow = FlowKey {
        family: pkt.family,
        proto: pkt.proto,
        _pad: 0,
        sport_be: pkt.sport_be,
        dport_be: pkt.dport_be,
        src: pkt.src,
        dst: pkt.dst,
    };
    let persist = service.flags & service_flags::PERSIST != 0;
    let template = PersistKey {
        service: service.index,
        src: masked(&pkt.src, &service.persist_mask),
    };
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = if persist {
        unsafe { bpf_ktime_get_ns() }
    } else {
        0
    };

    // SAFETY: plain data, copied at once.
    let established = unsafe { LB_FLOWS.get(flow) }
        .map(|f| f.real)
        .filter(|r| alive(*r));
    let mut placed = false;
    let real_index = match established {
        Some(r) => {
            if persist {
                refresh(&template, r, now);
            }
            r
        }
        None => {
            let kept = if persist {
                reuse(&template, now, service.persist_timeout_ns)
            } else {
                None
            };
            let r = match kept {
                Some(r) => r,
                None => {
                    let source_only = service.flags & service_flags::HASH_SOURCE != 0;
                    let hash = flow_hash(
                        &pkt.src,
                        &pkt.dst,
                        pkt.sport_be,
                        pkt.dport_be,
                        pkt.proto,
                        source_only,
                    );
                    let slot = service
                        .index
                        .wrapping_mul(LB_RING_SIZE)
                        .wrapping_add(hash % LB_RING_SIZE);
                    let r = LB_RING.get(slot).copied().unwrap_or(LB_NO_REAL);
                    if r == LB_NO_REAL {
                        bump(&LB_COUNTERS, lb_counter::NO_REAL);
                        return Ok(xdp_action::XDP_PASS);
                    }
                    if persist {
                        let entry = PersistEntry {
                            real: r,
                            _pad: 0,
                            last_ns: now,
                        };
                        let _ = LB_PERSIST.insert(template, entry, 0);
                    }
                    r
                }
            };
            let _ = LB_FLOWS.insert(flow, FlowEntry { real: r, _pad: 0 }, 0);
            placed = true;
            r
        }
    };
    let Some(real) = LB_REALS.get(real_index).copied() else {
        bump(&LB_COUNTERS, lb_counter::NO_REAL);
        return Ok(xdp_action::XDP_PASS);
    };

    let bytes = (data_end - data) as u64;
    let action = if real.flags & real_flags::TUN != 0 {
        encapsulate(ctx, &real, &pkt)?
    } else {
        set_macs(data, data_end, &real)?;
        transmit(ctx, &real)
    };
    if action == xdp_action::XDP_DROP {
        return Ok(action);
    }
    account(&LB_SERVICE_STATS, service.index, bytes, placed);
    account(&LB_REAL_STATS, real_index, bytes, placed);
    bump(&LB_COUNTERS, lb_counter::FORWARDED);
    Ok(action)
}

#[inline(always)]
fn vip(family: u8, addr: [u8; 16]) -> VipKey {
    VipKey {
        family,
        _pad: [0; 3],
        addr,
    }
}

/// IPv4 (RFC 791 §3.1), untagged: TCP or UDP, not a fragment.
#[inline(always)]
fn parse_v4(data: usize, data_end: usize) -> Result<Parsed, ()> {
    let l3 = ETH_HLEN;
    let first = read_at::<u8>(data, data_end, l3)?;
    let ihl = ((first & 0x0f) as usize) * 4;
    if first >> 4 != 4 || ihl < 20 {
        return Ok(Parsed::Pass);
    }
    let proto = read_at::<u8>(data, data_end, l3 + 9)?;
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&read_at::<[u8; 4]>(data, data_end, l3 + 16)?);
    let frag = read_be16(data, data_end, l3 + 6)?;
    if frag & IPV4_FRAG_MASK != 0 {
        return Ok(Parsed::Fragment { family: 4, dst });
    }
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Ok(Parsed::Pass);
    }
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&read_at::<[u8; 4]>(data, data_end, l3 + 12)?);
    let l4 = l3 + ihl;
    Ok(Parsed::Flow(Packet {
        family: 4,
        proto,
        src,
        dst,
        sport_be: read_at::<u16>(data, data_end, l4)?,
        dport_be: read_at::<u16>(data, data_end, l4 + 2)?,
        ip_len: read_be16(data, data_end, l3 + 2)?,
        df: frag & IPV4_DF != 0,
    }))
}

/// IPv6 (RFC 8200 §3), untagged: TCP or UDP directly behind the fixed header; a Fragment
/// header is a fragment, any other extension header passes.
#[inline(always)]
fn parse_v6(data: usize, data_end: usize) -> Result<Parsed, ()> {
    let l3 = ETH_HLEN;
    if read_at::<u8>(data, data_end, l3)? >> 4 != 6 {
        return Ok(Parsed::Pass);
    }
    let next = read_at::<u8>(data, data_end, l3 + 6)?;
    let dst = read_at::<[u8; 16]>(data, data_end, l3 + 24)?;
    if next == IPV6_FRAGMENT {
        return Ok(Parsed::Fragment { family: 6, dst });
    }
    if next != IPPROTO_TCP && next != IPPROTO_UDP {
        return Ok(Parsed::Pass);
    }
    let l4 = l3 + IPV6_OUTER;
    Ok(Parsed::Flow(Packet {
        family: 6,
        proto: next,
        src: read_at::<[u8; 16]>(data, data_end, l3 + 8)?,
        dst,
        sport_be: read_at::<u16>(data, data_end, l4)?,
        dport_be: read_at::<u16>(data, data_end, l4 + 2)?,
        ip_len: read_be16(data, data_end, l3 + 4)?.wrapping_add(IPV6_OUTER as u16),
        df: true,
    }))
}

/// `addr & mask`, as the persistence granularity wants.
#[inline(always)]
fn masked(addr: &[u8; 16], mask: &[u8; 16]) -> [u8; 16] {
    (u128::from_ne_bytes(*addr) & u128::from_ne_bytes(*mask)).to_ne_bytes()
}

/// Whether real server `index` may keep its flows and templates.
#[inline(always)]
fn alive(index: u32) -> bool {
    LB_REALS
        .get(index)
        .is_some_and(|r| r.flags & real_flags::ALIVE != 0)
}

/// The template's server when the client was seen within `timeout_ns` and the server is alive;
/// the template is refreshed.
#[inline(always)]
fn reuse(template: &PersistKey, now: u64, timeout_ns: u64) -> Option<u32> {
    let p = LB_PERSIST.get_ptr_mut(template)?;
    // SAFETY: a map value the helper returned; a racing writer on another CPU at worst makes the
    // timestamp a packet older.
    unsafe {
        if now.saturating_sub((*p).last_ns) > timeout_ns || !alive((*p).real) {
            return None;
        }
        (*p).last_ns = now;
        Some((*p).real)
    }
}

/// An established flow keeps its client's template alive (IPVS keeps a template while it
/// controls connections).
#[inline(always)]
fn refresh(template: &PersistKey, real: u32, now: u64) {
    if let Some(p) = LB_PERSIST.get_ptr_mut(template) {
        // SAFETY: as in `reuse`.
        unsafe {
            if (*p).real == real {
                (*p).last_ns = now;
            }
        }
    }
}

#[inline(always)]
fn account(stats: &aya_ebpf::maps::PerCpuArray<LbStats>, index: u32, bytes: u64, placed: bool) {
    if let Some(s) = stats.get_ptr_mut(index) {
        // SAFETY: per-CPU slot: no other program instance touches it concurrently.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += bytes;
            (*s).new_flows += u64::from(placed);
        }
    }
}

/// Writes the real's next hop as destination and the transmitting interface as source.
#[inline(always)]
fn set_macs(data: usize, data_end: usize, real: &RealEntry) -> Result<(), ()> {
    let p = ptr_at::<[u8; 12]>(data, data_end, 0)? as *mut [u8; 12];
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&real.dst_mac);
    macs[6..].copy_from_slice(&real.src_mac);
    // SAFETY: ptr_at checked the 12 bytes lie inside the packet, which XDP may write.
    unsafe { core::ptr::write_unaligned(p, macs) };
    Ok(())
}

/// `XDP_TX` back out of the receiving interface, else a redirect to the real's.
#[inline(always)]
fn transmit(ctx: &XdpContext, real: &RealEntry) -> u32 {
    if real.ifindex as usize == ctx.ingress_ifindex() {
        xdp_action::XDP_TX
    } else {
        // SAFETY: bpf_redirect takes plain values; it returns XDP_REDIRECT or XDP_ABORTED.
        unsafe { bpf_redirect(real.ifindex, 0) as u32 }
    }
}

/// TUN: prepends the outer header (IPv4 or IPv6 by `TUN_V6`) from `tun_src` to `addr`, then
/// forwards as DR. `XDP_DROP` when the result would not fit the MTU or the buffer.
#[inline(always)]
fn encapsulate(ctx: &XdpContext, real: &RealEntry, pkt: &Packet) -> Result<u32, ()> {
    let outer_v6 = real.flags & real_flags::TUN_V6 != 0;
    let outer = if outer_v6 { IPV6_OUTER } else { IPV4_OUTER };
    let mut mtu_len: u32 = 0;
    // SAFETY: the context is this program's; mtu_len is a valid u32 to write the MTU into.
    let rc = unsafe {
        bpf_check_mtu(
            ctx.ctx as *mut c_void,
            real.ifindex,
            &mut mtu_len,
            outer as i32,
            0,
        )
    };
    if rc != 0 {
        bump(&LB_COUNTERS, lb_counter::TOO_BIG);
        return Ok(xdp_action::XDP_DROP);
    }
    // SAFETY: the context is this program's; a failure leaves the packet as it was.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(outer as i32)) } != 0 {
        bump(&LB_COUNTERS, lb_counter::NO_HEADROOM);
        return Ok(xdp_action::XDP_DROP);
    }
    // The old pointers are invalid after adjust_head.
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let inner = if pkt.family == 4 {
        IPPROTO_IPIP
    } else {
        IPPROTO_IPV6
    };
    set_macs(data, data_end, real)?;
    if outer_v6 {
        write_at(data, data_end, 12, ETH_P_IPV6.to_be_bytes())?;
        let mut h = [0u8; IPV6_OUTER];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&pkt.ip_len.to_be_bytes());
        h[6] = inner;
        h[7] = TUN_TTL;
        h[8..24].copy_from_slice(&real.tun_src);
        h[24..40].copy_from_slice(&real.addr);
        write_at(data, data_end, ETH_HLEN, h)?;
    } else {
        write_at(data, data_end, 12, ETH_P_IP.to_be_bytes())?;
        let mut h = [0u8; IPV4_OUTER];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&pkt.ip_len.wrapping_add(IPV4_OUTER as u16).to_be_bytes());
        if pkt.df {
            h[6] = (IPV4_DF >> 8) as u8;
        }
        h[8] = TUN_TTL;
        h[9] = inner;
        h[12..16].copy_from_slice(&real.tun_src[..4]);
        h[16..20].copy_from_slice(&real.addr[..4]);
        let sum = ipv4_checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        write_at(data, data_end, ETH_HLEN, h)?;
    }
    Ok(transmit(ctx, real))
}

/// The Internet checksum (RFC 1071) of an IPv4 header whose checksum field is zero.
#[inline(always)]
fn ipv4_checksum(h: &[u8; IPV4_OUTER]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < IPV4_OUTER {
        sum += u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Writes `value` at `offset` into the packet.
#[inline(always)]
fn write_at<T>(data: usize, data_end: usize, offset: usize, value: T) -> Result<(), ()> {
    let p = ptr_at::<T>(data, data_end, offset)? as *mut T;
    // SAFETY: ptr_at checked the bytes lie inside the packet, which XDP may write.
    unsafe { core::ptr::write_unaligned(p, value) };
    Ok(())
}

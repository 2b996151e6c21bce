//! TC `vip_fence_egress` and `vip_fence_ingress`: on a node that must not own a VIP, drop exactly
//! what would make it a second owner, and nothing else.
//!
//! - egress: IPv4/IPv6 whose source is a fenced VIP, ARP whose sender protocol address is one,
//!   ICMPv6 neighbour advertisements whose target is one (we never speak as the VIP);
//! - ingress: IPv4/IPv6 whose destination is a fenced VIP (a zombie VIP takes nothing).
//!
//! Everything else passes: a backup is still a client of the VIP (its ARP requests for it, the
//! master's replies from it, its own connections to it).
//!
//! A VIP in `FENCE` is fenced when the agent says so (`fenced`), when `vrrp_rx` saw its instance
//! preempted (`SLOT_FENCE[slot]`), or when the agent's `HEARTBEAT` is older than the VIP's
//! timeout: a dead or hung agent fails closed.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::classifier, programs::TcContext};
use ha_common::{
    maps::VipKey,
    wire::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPV6_HLEN},
};

use crate::{
    maps::{FENCE, FENCE_DROPS, HEARTBEAT, SLOT_FENCE, bump},
    ptr::read_at,
    rx::l3_offset,
};

/// Verdicts, the same values for cls_bpf direct-action and TCX (`TC_ACT_UNSPEC`/`TCX_NEXT`: the
/// next filter or the default; `TC_ACT_SHOT`/`TCX_DROP`).
const TC_NEXT: i32 = -1;
const TC_DROP: i32 = 2;
/// ICMPv6 Neighbor Advertisement (RFC 4861 §4.4).
const ND_NEIGHBOR_ADVERT: u8 = 136;

#[classifier]
pub fn vip_fence_egress(ctx: TcContext) -> i32 {
    verdict(try_egress(&ctx))
}

#[classifier]
pub fn vip_fence_ingress(ctx: TcContext) -> i32 {
    verdict(try_ingress(&ctx))
}

#[inline(always)]
fn verdict(drop: Result<bool, ()>) -> i32 {
    match drop {
        Ok(true) => {
            bump(&FENCE_DROPS, 0);
            TC_DROP
        }
        Ok(false) | Err(()) => TC_NEXT,
    }
}

#[inline(always)]
fn fenced(key: &VipKey) -> bool {
    // SAFETY: the entry is plain data read once; a concurrent update at worst gives stale data.
    let Some(entry) = (unsafe { FENCE.get(key) }) else {
        return false;
    };
    if entry.fenced != 0 || SLOT_FENCE.get(entry.slot as u32).is_some_and(|f| *f != 0) {
        return true;
    }
    if entry.heartbeat_timeout_ns == 0 {
        return false;
    }
    let last = HEARTBEAT.get(0).map_or(0, |h| h.last_ns);
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    now.saturating_sub(last) > entry.heartbeat_timeout_ns
}

#[inline(always)]
fn fenced_v4(addr: [u8; 4]) -> bool {
    fenced(&VipKey::v4(addr))
}

#[inline(always)]
fn fenced_v6(addr: [u8; 16]) -> bool {
    fenced(&VipKey::v6(addr))
}

/// Whether a packet leaving the node speaks as a fenced VIP.
#[inline(always)]
fn try_egress(ctx: &TcContext) -> Result<bool, ()> {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let (ethertype, l3) = l3_offset(data, data_end)?;
    match ethertype {
        // IPv4 source address at 12 (RFC 791).
        ETH_P_IP => Ok(fenced_v4(read_at(data, data_end, l3 + 12)?)),
        ETH_P_IPV6 => {
            // IPv6 source address at 8 (RFC 8200).
            if fenced_v6(read_at(data, data_end, l3 + 8)?) {
                return Ok(true);
            }
            // An NA for the VIP from another source (link-local) still claims it.
            let next = read_at::<u8>(data, data_end, l3 + 6)?;
            if next != IPPROTO_ICMPV6 {
                return Ok(false);
            }
            let icmp = l3 + IPV6_HLEN;
            if read_at::<u8>(data, data_end, icmp)? != ND_NEIGHBOR_ADVERT {
                return Ok(false);
            }
            // NA target address follows type, code, checksum and flags (RFC 4861 §4.4).
            Ok(fenced_v6(read_at(data, data_end, icmp + 8)?))
        }
        // ARP for IPv4 over Ethernet: sender protocol address at 14 (RFC 826).
        ETH_P_ARP => Ok(fenced_v4(read_at(data, data_end, l3 + 14)?)),
        _ => Ok(false),
    }
}

/// Whether a packet arriving at the node is addressed to a fenced VIP.
#[inline(always)]
fn try_ingress(ctx: &TcContext) -> Result<bool, ()> {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let (ethertype, l3) = l3_offset(data, data_end)?;
    match ethertype {
        // IPv4 destination address at 16 (RFC 791).
        ETH_P_IP => Ok(fenced_v4(read_at(data, data_end, l3 + 16)?)),
        // IPv6 destination address at 24 (RFC 8200).
        ETH_P_IPV6 => Ok(fenced_v6(read_at(data, data_end, l3 + 24)?)),
        _ => Ok(false),
    }
}

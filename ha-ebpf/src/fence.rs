//! TC `vip_fence` (ingress and egress): drops IPv4/IPv6 packets to or from a fenced VIP, ARP that
//! claims one (sender address), and neighbour advertisements for one. Everything else goes on.
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

/// TCX verdicts (include/uapi/linux/bpf.h `enum tcx_action_base`).
const TCX_NEXT: i32 = -1;
const TCX_DROP: i32 = 2;
/// ICMPv6 Neighbor Advertisement (RFC 4861 §4.4).
const ND_NEIGHBOR_ADVERT: u8 = 136;

#[classifier]
pub fn vip_fence(ctx: TcContext) -> i32 {
    match try_vip_fence(&ctx) {
        Ok(true) => {
            bump(&FENCE_DROPS, 0);
            TCX_DROP
        }
        Ok(false) | Err(()) => TCX_NEXT,
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

/// Whether the packet must be dropped.
#[inline(always)]
fn try_vip_fence(ctx: &TcContext) -> Result<bool, ()> {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let (ethertype, l3) = l3_offset(data, data_end)?;
    match ethertype {
        ETH_P_IP => Ok(fenced_v4(read_at(data, data_end, l3 + 12)?)
            || fenced_v4(read_at(data, data_end, l3 + 16)?)),
        ETH_P_IPV6 => {
            if fenced_v6(read_at(data, data_end, l3 + 8)?)
                || fenced_v6(read_at(data, data_end, l3 + 24)?)
            {
                return Ok(true);
            }
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

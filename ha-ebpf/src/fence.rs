//! TC `vip_fence` (ingress and egress): drops IPv4/IPv6 packets to or from a fenced VIP, ARP that
//! claims one (sender address), and neighbour advertisements for one. Everything else goes on.

use aya_ebpf::{macros::classifier, programs::TcContext};
use ha_common::{
    maps::VipKey,
    wire::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPV6_HLEN},
};

use crate::{
    maps::{FENCE, FENCE_DROPS, bump},
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
    // SAFETY: the value is a plain u8 read once; a concurrent delete at worst returns stale data.
    unsafe { FENCE.get(key).is_some() }
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

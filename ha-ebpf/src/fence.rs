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
//! Accept mode off (`FenceEntry::no_accept`: `no_accept`, or strict mode, on a non-owner): while
//! Master, IP to (ingress) and from (egress) the VIP is dropped but ICMPv6 Neighbor Solicitations
//! and Advertisements, what RFC 5798 §6.4.3 lets a non-owner answer; ARP is not IP and passes.
//! These are keepalived's nftables rules (vrrp_nftables.c: `ip daddr @vips drop`, `icmpv6 type
//! @neighbor-discovery accept`, `ip6 daddr @vips drop`, and the same for saddr on output).
//!
//! Quiet (`FenceEntry::quiet`, or `SLOT_FENCE[slot]` = `slot_fence::QUIET`): a planned handover.
//! The old master stops speaking for the VIP on the link layer (egress ARP with the VIP as
//! sender, ICMPv6 NS from it and NA for it are dropped: no answers, no announcements) but IP to
//! and from it passes both ways, so clients whose caches still hold our MAC lose nothing until
//! the successor's gratuitous ARP/NA reaches them.
//!
//! A VIP in `FENCE` is fenced when the agent says so (`fenced`), when `vrrp_rx` saw its instance
//! preempted (`SLOT_FENCE[slot]`), or when the agent's `HEARTBEAT` is older than the VIP's
//! timeout: a dead or hung agent fails closed.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::classifier, programs::TcContext};
use ha_common::{
    maps::{VipKey, slot_fence},
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
/// ICMPv6 Neighbor Solicitation and Advertisement (RFC 4861 §4.3, §4.4).
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;

/// What `vip_fence` does with IP to or from a VIP in `FENCE`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Not in the map, or accept mode on while Master: passes.
    Open,
    /// Master with accept mode off: only Neighbor Discovery passes.
    NoAccept,
    /// A planned handover: IP passes (all of it, or as `NoAccept` with `no_accept`), ARP and
    /// Neighbor Discovery for the VIP do not.
    Quiet { no_accept: bool },
    /// Fenced: nothing passes.
    Fenced,
}

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
fn guard(key: &VipKey) -> Guard {
    ownership(key).unwrap_or(Guard::Open)
}

/// The ownership test of a VIP, shared with `xdp_lb` (which forwards only on `Some(Open)`):
/// `None` when the VIP is not in `FENCE` (not one of this interface's).
#[inline(always)]
pub(crate) fn ownership(key: &VipKey) -> Option<Guard> {
    // SAFETY: the entry is plain data read once; a concurrent update at worst gives stale data.
    let entry = unsafe { FENCE.get(key) }?;
    let slot = SLOT_FENCE.get(entry.slot as u32).map_or(0, |f| *f);
    if entry.fenced != 0 || slot == slot_fence::FENCED {
        return Some(Guard::Fenced);
    }
    if entry.heartbeat_timeout_ns != 0 {
        let last = HEARTBEAT.get(0).map_or(0, |h| h.last_ns);
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        if now.saturating_sub(last) > entry.heartbeat_timeout_ns {
            return Some(Guard::Fenced);
        }
    }
    let no_accept = entry.no_accept != 0;
    Some(if entry.quiet != 0 || slot == slot_fence::QUIET {
        Guard::Quiet { no_accept }
    } else if no_accept {
        Guard::NoAccept
    } else {
        Guard::Open
    })
}

/// Whether the node must not speak for the VIP on the link layer (ARP, NS/NA): fenced or quiet.
#[inline(always)]
fn silenced(key: &VipKey) -> bool {
    matches!(guard(key), Guard::Fenced | Guard::Quiet { .. })
}

#[inline(always)]
fn silenced_v4(addr: [u8; 4]) -> bool {
    silenced(&VipKey::v4(addr))
}

#[inline(always)]
fn silenced_v6(addr: [u8; 16]) -> bool {
    silenced(&VipKey::v6(addr))
}

/// IPv4 to or from `addr`: dropped when fenced, or accept mode is off.
#[inline(always)]
fn guarded_v4(addr: [u8; 4]) -> bool {
    matches!(
        guard(&VipKey::v4(addr)),
        Guard::Fenced | Guard::NoAccept | Guard::Quiet { no_accept: true }
    )
}

/// IPv6 to or from `addr`: dropped when fenced, or accept mode is off and it is not Neighbor
/// Discovery (the ICMPv6 type at `l3 + IPV6_HLEN` when the next header is ICMPv6).
#[inline(always)]
fn guarded_v6(addr: [u8; 16], data: usize, data_end: usize, l3: usize) -> Result<bool, ()> {
    match guard(&VipKey::v6(addr)) {
        Guard::Open | Guard::Quiet { no_accept: false } => Ok(false),
        Guard::Fenced => Ok(true),
        Guard::NoAccept | Guard::Quiet { no_accept: true } => Ok(!is_nd(data, data_end, l3)?),
    }
}

/// Whether the IPv6 packet at `l3` is a Neighbor Solicitation or Advertisement.
#[inline(always)]
fn is_nd(data: usize, data_end: usize, l3: usize) -> Result<bool, ()> {
    if read_at::<u8>(data, data_end, l3 + 6)? != IPPROTO_ICMPV6 {
        return Ok(false);
    }
    let kind = read_at::<u8>(data, data_end, l3 + IPV6_HLEN)?;
    Ok(kind == ND_NEIGHBOR_SOLICIT || kind == ND_NEIGHBOR_ADVERT)
}

/// Whether a packet leaving the node speaks as a fenced VIP.
#[inline(always)]
fn try_egress(ctx: &TcContext) -> Result<bool, ()> {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let (ethertype, l3) = l3_offset(data, data_end)?;
    match ethertype {
        // IPv4 source address at 12 (RFC 791).
        ETH_P_IP => Ok(guarded_v4(read_at(data, data_end, l3 + 12)?)),
        ETH_P_IPV6 => {
            // IPv6 source address at 8 (RFC 8200).
            let src = read_at(data, data_end, l3 + 8)?;
            if guarded_v6(src, data, data_end, l3)? {
                return Ok(true);
            }
            // An NA for the VIP from another source (link-local) still claims it.
            let next = read_at::<u8>(data, data_end, l3 + 6)?;
            if next != IPPROTO_ICMPV6 {
                return Ok(false);
            }
            let icmp = l3 + IPV6_HLEN;
            match read_at::<u8>(data, data_end, icmp)? {
                // NA target address follows type, code, checksum and flags (RFC 4861 §4.4).
                ND_NEIGHBOR_ADVERT => Ok(silenced_v6(read_at(data, data_end, icmp + 8)?)),
                // An NS from the VIP carries our MAC as its source link-layer address (§7.2.3).
                ND_NEIGHBOR_SOLICIT => Ok(silenced_v6(src)),
                _ => Ok(false),
            }
        }
        // ARP for IPv4 over Ethernet: sender protocol address at 14 (RFC 826).
        ETH_P_ARP => Ok(silenced_v4(read_at(data, data_end, l3 + 14)?)),
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
        ETH_P_IP => Ok(guarded_v4(read_at(data, data_end, l3 + 16)?)),
        // IPv6 destination address at 24 (RFC 8200).
        ETH_P_IPV6 => guarded_v6(read_at(data, data_end, l3 + 24)?, data, data_end, l3),
        _ => Ok(false),
    }
}

//! TC `lab_tun_decap` (ingress), for the LVS lab's TUN real servers only, never attached by the
//! agent: it stands in for the `ipip`/`ip6tnl` device a real server of `lb_kind TUN` has, which
//! the lab's kernel lacks (`ip link add t type ipip`: "Unknown device type"). It strips an outer
//! IPv4 header of protocol 4 (IPIP) or an outer IPv6 header of next header 41 (IP6IP6)
//! addressed to `LAB_TUN_DST4`/`LAB_TUN_DST6` (the real server's own address, set at load), so
//! the inner packet, addressed to the VIP the real server holds on `lo`, is delivered as if the
//! tunnel device had decapsulated it. Everything else passes untouched.
//!
//! XDP `lab_live_reset`, for the `lvs` bench's kernel-forwarding case, never attached: it
//! writes `LAB_FRAME_HEAD` (the Ethernet and IPv4 headers of the frame the bench sends) over
//! the frame and returns `XDP_PASS`. `BPF_PROG_TEST_RUN` in live mode recycles its pages with
//! whatever the stack wrote into them (a forwarded frame's new MACs and TTL), so without this
//! every frame after the first batch is addressed to another host and dropped.
//!
//! XDP `lab_flood_tx`, for the `flood` bench's generator (`vrrp_flood`), never attached: it
//! writes `LAB_FLOOD_HEAD` (the Ethernet, IPv4 and VRRP headers of the forged advert) over the
//! frame and returns `XDP_TX`, so `BPF_PROG_TEST_RUN` in live mode sends the advert out of the
//! flooding node's interface at the kernel's rate; the reset again because pages are recycled.

use aya_ebpf::{
    bindings::{bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use ha_common::wire::{ETH_P_IP, ETH_P_IPV6, IPV6_HLEN};

use crate::ptr::ptr_at;

/// The real server's IPv4 address (network order bytes), set by the lab's loader.
#[unsafe(no_mangle)]
static LAB_TUN_DST4: [u8; 4] = [0; 4];
/// The real server's IPv6 address, set by the lab's loader.
#[unsafe(no_mangle)]
static LAB_TUN_DST6: [u8; 16] = [0; 16];

/// The Ethernet and IPv4 headers `lab_live_reset` restores, set by the bench's loader.
#[unsafe(no_mangle)]
static LAB_FRAME_HEAD: [u8; FRAME_HEAD] = [0; FRAME_HEAD];
const FRAME_HEAD: usize = 34;

/// The Ethernet, IPv4 and VRRP headers `lab_flood_tx` restores, set by the generator's loader.
#[unsafe(no_mangle)]
static LAB_FLOOD_HEAD: [u8; FLOOD_HEAD] = [0; FLOOD_HEAD];
/// Ethernet (14) + IPv4 without options (20) + VRRP header up to its checksum (8).
const FLOOD_HEAD: usize = 42;

/// `TC_ACT_UNSPEC`/`TCX_NEXT`: let the packet go on.
const TC_NEXT: i32 = -1;
const ETH_HLEN: usize = 14;
/// An outer IPv4 header without options: what an encapsulating director writes.
const IPV4_HLEN: usize = 20;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

#[classifier]
pub fn lab_tun_decap(ctx: TcContext) -> i32 {
    // A packet this cannot read or shrink goes on as it is: the stack drops what is not its.
    let _ = try_decap(&ctx);
    TC_NEXT
}

#[inline(always)]
fn try_decap(ctx: &TcContext) -> Result<(), ()> {
    let ethertype = u16::from_be(ctx.load::<u16>(12).map_err(|_| ())?);
    let strip = if ethertype == ETH_P_IP {
        let ver_ihl: u8 = ctx.load(ETH_HLEN).map_err(|_| ())?;
        let proto: u8 = ctx.load(ETH_HLEN + 9).map_err(|_| ())?;
        let dst: [u8; 4] = ctx.load(ETH_HLEN + 16).map_err(|_| ())?;
        // SAFETY: a read-only global the loader sets before the program is loaded.
        let ours = unsafe { core::ptr::read_volatile(&LAB_TUN_DST4) };
        if ver_ihl != 0x45 || proto != IPPROTO_IPIP || dst != ours {
            return Ok(());
        }
        IPV4_HLEN
    } else if ethertype == ETH_P_IPV6 {
        let next: u8 = ctx.load(ETH_HLEN + 6).map_err(|_| ())?;
        let dst: [u8; 16] = ctx.load(ETH_HLEN + 24).map_err(|_| ())?;
        // SAFETY: as above.
        let ours = unsafe { core::ptr::read_volatile(&LAB_TUN_DST6) };
        if next != IPPROTO_IPV6 || dst != ours {
            return Ok(());
        }
        IPV6_HLEN
    } else {
        return Ok(());
    };
    // The inner header has the outer's family (IPIP carries IPv4, IP6IP6 IPv6): the Ethernet
    // type stays right and the room between L2 and L3 is simply removed.
    ctx.adjust_room(-(strip as i32), BPF_ADJ_ROOM_MAC, 0)
        .map_err(|_| ())
}

#[xdp]
pub fn lab_live_reset(ctx: XdpContext) -> u32 {
    let Ok(head) = ptr_at::<[u8; FRAME_HEAD]>(ctx.data(), ctx.data_end(), 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at checked the header bytes lie in the packet; the global is read-only data
    // the loader set.
    unsafe {
        let template = core::ptr::read_volatile(&LAB_FRAME_HEAD);
        core::ptr::write_unaligned(head as *mut [u8; FRAME_HEAD], template);
    }
    xdp_action::XDP_PASS
}

#[xdp]
pub fn lab_flood_tx(ctx: XdpContext) -> u32 {
    let Ok(head) = ptr_at::<[u8; FLOOD_HEAD]>(ctx.data(), ctx.data_end(), 0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: ptr_at checked the header bytes lie in the packet; the global is read-only data
    // the loader set.
    unsafe {
        let template = core::ptr::read_volatile(&LAB_FLOOD_HEAD);
        core::ptr::write_unaligned(head as *mut [u8; FLOOD_HEAD], template);
    }
    xdp_action::XDP_TX
}

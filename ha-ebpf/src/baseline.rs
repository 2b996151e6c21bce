//! Reference programs for the per-packet benchmark (`ha-agent/examples/vrrp_rx_cost.rs`), never
//! attached by the agent; it runs them with `BPF_PROG_TEST_RUN` beside `vrrp_rx`.
//!
//! - `xdp_baseline` returns `XDP_PASS` and does nothing else: what the kernel's test loop costs
//!   around any program.
//! - `xdp_ktime` reads `bpf_ktime_get_ns()` once, then returns `XDP_PASS`: what the one
//!   timestamp every valid advert takes (the peer record's `last_seen_ns`) costs by itself.
//! - `xdp_bounce` swaps the Ethernet addresses and returns `XDP_TX`: the load balancer bench's
//!   ceiling (the least a program that transmits can do).

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_ns, macros::xdp, programs::XdpContext,
};

use crate::ptr::ptr_at;

#[xdp]
pub fn xdp_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[xdp]
pub fn xdp_ktime(_ctx: XdpContext) -> u32 {
    // SAFETY: bpf_ktime_get_ns has no preconditions. A helper call is never optimised away.
    let _now = unsafe { bpf_ktime_get_ns() };
    xdp_action::XDP_PASS
}

#[xdp]
pub fn xdp_bounce(ctx: XdpContext) -> u32 {
    let Ok(p) = ptr_at::<[u8; 12]>(ctx.data(), ctx.data_end(), 0) else {
        return xdp_action::XDP_ABORTED;
    };
    let p = p as *mut [u8; 12];
    // SAFETY: ptr_at checked the 12 bytes lie inside the packet, which XDP may write.
    unsafe {
        let mut macs = core::ptr::read_unaligned(p);
        let dst: [u8; 6] = [macs[0], macs[1], macs[2], macs[3], macs[4], macs[5]];
        macs.copy_within(6..12, 0);
        macs[6..12].copy_from_slice(&dst);
        core::ptr::write_unaligned(p, macs);
    }
    xdp_action::XDP_TX
}

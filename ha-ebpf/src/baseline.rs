//! Reference programs for the per-packet benchmark (`ha-agent/examples/vrrp_rx_cost.rs`), never
//! attached by the agent; it runs them with `BPF_PROG_TEST_RUN` beside `vrrp_rx`.
//!
//! - `xdp_baseline` returns `XDP_PASS` and does nothing else: what the kernel's test loop costs
//!   around any program.
//! - `xdp_ktime` reads `bpf_ktime_get_ns()` once, then returns `XDP_PASS`: what the one
//!   timestamp every valid advert takes (the peer record's `last_seen_ns`) costs by itself.
//! - `xdp_bounce` swaps the Ethernet addresses and returns `XDP_TX`: the ceiling of any XDP
//!   forwarder on an interface (the `lvs` bench; the LVS lab checks with it that XDP_TX works).

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
    let Ok(eth) = ptr_at::<[u8; 12]>(ctx.data(), ctx.data_end(), 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at checked the 12 bytes of the two Ethernet addresses lie in the packet.
    unsafe {
        let addrs = core::ptr::read_unaligned(eth);
        let mut swapped = [0u8; 12];
        swapped[..6].copy_from_slice(&addrs[6..]);
        swapped[6..].copy_from_slice(&addrs[..6]);
        core::ptr::write_unaligned(eth as *mut [u8; 12], swapped);
    }
    xdp_action::XDP_TX
}

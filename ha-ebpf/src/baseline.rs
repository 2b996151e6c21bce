//! Reference programs for the per-packet benchmark (`ha-agent/examples/vrrp_rx_cost.rs`), never
//! attached by the agent; it runs them with `BPF_PROG_TEST_RUN` beside `vrrp_rx`.
//!
//! - `xdp_baseline` returns `XDP_PASS` and does nothing else: what the kernel's test loop costs
//!   around any program.
//! - `xdp_ktime` reads `bpf_ktime_get_ns()` once, then returns `XDP_PASS`: what the one
//!   timestamp every valid advert takes (the peer record's `last_seen_ns`) costs by itself.

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_ns, macros::xdp, programs::XdpContext,
};

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

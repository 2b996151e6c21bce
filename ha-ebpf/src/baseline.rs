//! XDP `xdp_baseline`: returns `XDP_PASS` and does nothing else. Never attached by the agent:
//! the per-packet benchmark (`ha-agent/examples/vrrp_rx_cost.rs`) runs it with
//! `BPF_PROG_TEST_RUN` to measure what the kernel's test loop costs around any program.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn xdp_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

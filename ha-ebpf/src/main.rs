//! ha-agent's kernel programs.
//!
//! - `vrrp_rx` (XDP): validates VRRP adverts at the NIC, counts them per VRID and reason, feeds the
//!   election through a peer map and a ring buffer, and consumes them.
//! - `vip_fence_egress`, `vip_fence_ingress` (TC): on a node that must not own a VIP, drop what
//!   speaks as the VIP (egress) and what is addressed to it (ingress); a backup stays its client.
//! - `xdp_lb` (XDP, tail-called by `vrrp_rx` through `LB_PROG`): keepalived's `virtual_server`s,
//!   a Maglev load balancer forwarding (DR, TUN) to real servers while this node owns the VIP.
//! - `xdp_baseline`, `xdp_ktime`, `xdp_bounce` (XDP, never attached): reference programs of the
//!   per-packet benchmarks (the kernel's test loop; one clock read; swap MACs and transmit).
//! - `lab_tun_decap` (TC), `lab_live_reset`, `lab_flood_tx` (XDP), never attached by the agent:
//!   the LVS lab's stand-in for the ipip device its kernel lacks, the `lvs` bench's frame reset,
//!   and the `flood` bench's advert generator.
#![no_std]
#![no_main]
// Packet loads of their width (`ptr::read_at`).
#![feature(asm_experimental_arch)]

mod baseline;
mod fence;
mod lab;
mod lb;
mod maps;
mod ptr;
mod rx;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

//! ha-agent's kernel programs.
//!
//! - `vrrp_rx` (XDP): validates VRRP adverts at the NIC, counts them per VRID and reason, feeds the
//!   election through a peer map and a ring buffer, and consumes them.
//! - `vip_fence` (TC, ingress and egress): drops traffic to or from a VIP this node must not own.
//! - `xdp_baseline`, `xdp_ktime` (XDP, never attached): reference programs of the per-packet
//!   benchmark (the kernel's test loop; one clock read).
#![no_std]
#![no_main]
// Packet loads of their width (`ptr::read_at`).
#![feature(asm_experimental_arch)]

mod baseline;
mod fence;
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

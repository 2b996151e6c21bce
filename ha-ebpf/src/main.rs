//! ha-agent's kernel programs.
//!
//! - `vrrp_rx` (XDP): validates VRRP adverts at the NIC, counts them per VRID and reason, feeds the
//!   election through a peer map and a ring buffer, and consumes them.
//! - `vip_fence_egress`, `vip_fence_ingress` (TC): on a node that must not own a VIP, drop what
//!   speaks as the VIP (egress) and what is addressed to it (ingress); a backup stays its client.
//! - `xdp_baseline`, `xdp_ktime` (XDP, never attached): reference programs of the per-packet
//!   benchmark (the kernel's test loop; one clock read).
#![no_std]
#![no_main]
// Packet loads of their width (`ptr::read_at`).
#![feature(asm_experimental_arch)]

mod baseline;
mod fence;
mod lab;
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

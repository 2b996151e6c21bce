//! Types shared by the kernel programs (`ha-ebpf`) and the agent (`ha-agent`).
//!
//! Everything here is `#[repr(C)]`, free of padding and `bytemuck::Pod`, so the same bytes mean
//! the same thing on both sides of a BPF map. With the `user` feature the records also implement
//! `aya::Pod`.
#![no_std]

pub mod lb;
pub mod maps;
pub mod reject;
pub mod wire;

pub use reject::RejectReason;

//! How adverts come in and how the fence is applied: `xdp` loads and drives the eBPF programs.

mod rtnl;
pub mod socket;
pub mod xdp;

/// The datapaths this binary has, as `ha-agent --version` names them: both, always (the build
/// stops when the eBPF object of `xdp` is missing rather than leave it out).
pub const BUILT_IN: &[&str] = &["xdp", "socket"];

/// The eBPF object (`vrrp_rx`, `vip_fence_ingress`, `vip_fence_egress` and their maps), built by `cargo xtask build-ebpf`.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("HA_EBPF_OBJECT"));

//! Keys and values of the BPF maps that the agent and the programs share.

/// Number of VRIDs (1..=255; slot 0 is unused, kept so a VRID is its own index).
pub const VRID_SLOTS: u32 = 256;

/// Index of the per-VRID, per-reason drop counter in `STATS`.
pub const fn stats_index(vrid: u8, reason: u8) -> u32 {
    vrid as u32 * crate::RejectReason::COUNT as u32 + reason as u32
}

/// Size of the `STATS` per-CPU array.
pub const STATS_ENTRIES: u32 = VRID_SLOTS * crate::RejectReason::COUNT as u32;

/// Key of the `FENCE` hash: one virtual address. IPv4 addresses use the first four bytes of
/// `addr` and leave the rest zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct VipKey {
    /// 4 or 6.
    pub family: u8,
    pub _pad: [u8; 3],
    pub addr: [u8; 16],
}

impl VipKey {
    pub const fn v4(addr: [u8; 4]) -> Self {
        let mut a = [0u8; 16];
        a[0] = addr[0];
        a[1] = addr[1];
        a[2] = addr[2];
        a[3] = addr[3];
        VipKey {
            family: 4,
            _pad: [0; 3],
            addr: a,
        }
    }
    pub const fn v6(addr: [u8; 16]) -> Self {
        VipKey {
            family: 6,
            _pad: [0; 3],
            addr,
        }
    }
}

/// Maximum number of VIPs the fence map holds.
pub const FENCE_ENTRIES: u32 = 4096;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain old data: #[repr(C)], no padding (bytemuck::Pod is derived and checks it).
    unsafe impl aya::Pod for super::VipKey {}
}

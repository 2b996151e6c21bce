//! The maps the programs share with the agent. Names are the agent's too: keep them in sync with
//! `ha-agent/src/datapath/xdp.rs`.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use ha_common::maps::{FENCE_ENTRIES, VRID_SLOTS, VipKey};

/// Adverts (IP protocol 112) seen per VRID, per CPU.
#[map]
pub static RX_ADVERTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VRID_SLOTS, 0);

/// VIPs whose traffic `vip_fence` drops. Value unused (1).
#[map]
pub static FENCE: HashMap<VipKey, u8> = HashMap::with_max_entries(FENCE_ENTRIES, 0);

/// Packets `vip_fence` dropped, per CPU (index 0: ingress+egress total).
#[map]
pub static FENCE_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn bump(counter: &PerCpuArray<u64>, index: u32) {
    if let Some(p) = counter.get_ptr_mut(index) {
        // SAFETY: per-CPU slot: no other program instance touches it concurrently.
        unsafe { *p += 1 };
    }
}

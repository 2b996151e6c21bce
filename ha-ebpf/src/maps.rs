//! The maps the programs share with the agent. Names are the agent's too: keep them in sync with
//! `ha-agent/src/datapath/xdp/`.
//!
//! The agent pins every map but `EVENTS` under its pin directory for the interface (by name), so
//! the fence outlives a crashed agent and a restarted one adopts the state (and the counters).

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use ha_common::lb::{
    self, FlowEntry, FlowKey, LbStats, PersistEntry, PersistKey, RealEntry, ServiceEntry,
    ServiceKey,
};
use ha_common::maps::{
    EVENTS_BYTES, FENCE_ENTRIES, FenceEntry, Heartbeat, INSTANCE_SLOTS, PeerRecord, PeerTtl,
    RxGlobal, RxInstance, SLOT_ADDR_ENTRIES, STATS_ENTRIES, SlotAddr, VRID_SLOTS, VipKey,
};

/// Every VRRP packet (IP protocol 112) seen per VRID byte, valid or not, per CPU.
#[map]
pub static RX_ADVERTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VRID_SLOTS, 0);

/// Rejected adverts per (VRID, reason): index `stats_index(vrid, reason)`, per CPU.
#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_ENTRIES, 0);

/// VRRP packets passed to the stack (or dropped with `DROP_FOREIGN`) as another speaker's, per
/// VRID byte, per CPU: not counted in `RX_ADVERTS`.
#[map]
pub static FOREIGN: PerCpuArray<u64> = PerCpuArray::with_max_entries(VRID_SLOTS, 0);

/// Valid adverts per instance slot, per CPU.
#[map]
pub static ACCEPTED: PerCpuArray<u64> = PerCpuArray::with_max_entries(INSTANCE_SLOTS, 0);

/// Per-interface settings (one entry).
#[map]
pub static RX_GLOBAL: Array<RxGlobal> = Array::with_max_entries(1, 0);

/// Per-instance rules, by slot.
#[map]
pub static RX_INSTANCE: Array<RxInstance> = Array::with_max_entries(INSTANCE_SLOTS, 0);

/// The VIPs each instance expects in adverts: value is the VIP's index (bit in the mask).
#[map]
pub static ADV_ADDRS: HashMap<SlotAddr, u8> = HashMap::with_max_entries(SLOT_ADDR_ENTRIES, 0);

/// Allowed unicast sources per instance (when `RxInstance::check_peers`), with the TTL range
/// their adverts must arrive with.
#[map]
pub static ALLOWED_PEERS: HashMap<SlotAddr, PeerTtl> =
    HashMap::with_max_entries(SLOT_ADDR_ENTRIES, 0);

/// The last valid advert per slot.
#[map]
pub static PEER: Array<PeerRecord> = Array::with_max_entries(INSTANCE_SLOTS, 0);

/// Valid adverts the election must see (changes only). Not pinned: a restarted agent must not
/// read a dead one's events.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Events lost because the ring buffer was full (index 0), per CPU.
#[map]
pub static EVENTS_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Set by `vrrp_rx` when it sees an advert that preempts a slot we are Master of: every VIP of
/// the slot is fenced at once, before the agent reacts. Cleared by the agent on becoming Master.
#[map]
pub static SLOT_FENCE: Array<u32> = Array::with_max_entries(INSTANCE_SLOTS, 0);

/// VIPs on this interface and whether `vip_fence` drops their traffic.
#[map]
pub static FENCE: HashMap<VipKey, FenceEntry> = HashMap::with_max_entries(FENCE_ENTRIES, 0);

/// When the agent's loop last ran: stale means fenced (fail closed).
#[map]
pub static HEARTBEAT: Array<Heartbeat> = Array::with_max_entries(1, 0);

/// Packets `vip_fence` dropped, per CPU (index 0: ingress+egress total).
#[map]
pub static FENCE_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// `xdp_lb`, at `LB_PROG_INDEX`: `vrrp_rx` tail-calls it for IP that is not VRRP. Not pinned:
/// the kernel empties a program array when its last user reference goes, so a dead agent's
/// balancer stops at once (fails closed) and a restarted one fills it once it has rewritten
/// the services.
#[map]
pub static LB_PROG: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// The virtual servers of this interface, by what a packet is addressed to.
#[map]
pub static LB_SERVICES: HashMap<ServiceKey, ServiceEntry> =
    HashMap::with_max_entries(lb::LB_SERVICES, 0);

/// Real servers, by index.
#[map]
pub static LB_REALS: Array<RealEntry> = Array::with_max_entries(lb::LB_REALS, 0);

/// Every service's Maglev lookup table, `LB_RING_SIZE` entries from `index * LB_RING_SIZE`.
#[map]
pub static LB_RING: Array<u32> = Array::with_max_entries(lb::LB_SERVICES * lb::LB_RING_SIZE, 0);

/// Established flows: the real server each is on. Not pinned (a restarted agent starts empty,
/// as a director taking over does: the rings place the flows where they were).
#[map]
pub static LB_FLOWS: LruHashMap<FlowKey, FlowEntry> = LruHashMap::with_max_entries(lb::LB_FLOWS, 0);

/// Persistence templates: the real server a client is pinned to. Not pinned, as `LB_FLOWS`.
#[map]
pub static LB_PERSIST: LruHashMap<PersistKey, PersistEntry> =
    LruHashMap::with_max_entries(lb::LB_PERSIST, 0);

/// Forwarded packets, bytes and new flows per real server, per CPU.
#[map]
pub static LB_REAL_STATS: PerCpuArray<LbStats> = PerCpuArray::with_max_entries(lb::LB_REALS, 0);

/// Forwarded packets, bytes and new flows per service, per CPU.
#[map]
pub static LB_SERVICE_STATS: PerCpuArray<LbStats> =
    PerCpuArray::with_max_entries(lb::LB_SERVICES, 0);

/// What `xdp_lb` did with what it did not forward (`lb_counter`), and `FORWARDED`, per CPU.
#[map]
pub static LB_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(lb::lb_counter::COUNT, 0);

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn bump(counter: &PerCpuArray<u64>, index: u32) {
    if let Some(p) = counter.get_ptr_mut(index) {
        // SAFETY: per-CPU slot: no other program instance touches it concurrently.
        unsafe { *p += 1 };
    }
}

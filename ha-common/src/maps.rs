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

/// Slots of the per-instance maps: the VRID for IPv4, VRID + 256 for IPv6 (one interface may
/// run the same VRID over both families, as keepalived allows).
pub const INSTANCE_SLOTS: u32 = 2 * VRID_SLOTS;

/// The slot of the instance with `vrid` over IPv6 (`true`) or IPv4.
pub const fn instance_slot(vrid: u8, ipv6: bool) -> u32 {
    vrid as u32 + if ipv6 { VRID_SLOTS } else { 0 }
}

/// `RX_GLOBAL` flags: what `vrrp_rx` does on this interface.
pub mod rx_flags {
    /// Debug: pass every VRRP packet on to the stack after counting it (so tcpdump sees it).
    pub const PASS_ADVERTS: u32 = 1 << 0;
    /// VRRPv3 over IPv4: accept checksums over the pseudo-header (keepalived's default).
    pub const V3_V4_PSEUDO: u32 = 1 << 1;
    /// VRRPv3 over IPv4: accept checksums over the message only (`v3_checksum_as_v2`).
    pub const V3_V4_AS_V2: u32 = 1 << 2;
    // 1 << 3 was UNICAST_ANY_TTL: per instance since MAPS_ABI 4 (`RxInstance::unicast_any_ttl`).
    /// Drop VRRP that is not for one of this interface's instances instead of passing it to the
    /// stack (`--xdp-drop-foreign`: a dedicated VRRP LAN under attack). Counted either way.
    pub const DROP_FOREIGN: u32 = 1 << 4;
}

/// The one entry of `RX_GLOBAL`: per-interface knobs of `vrrp_rx` (the agent's `DecodeOptions`)
/// and what tells this interface's adverts from other speakers' (the agent's `Receiver`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RxGlobal {
    /// [`rx_flags`].
    pub flags: u32,
    /// `vrrp_mcast_group4`: a multicast advert to another group is another speaker's (unless
    /// its instance has a group of its own, `RxInstance::group`).
    pub group4: [u8; 4],
    /// `vrrp_mcast_group6`.
    pub group6: [u8; 16],
    /// The interface's MAC: a unicast advert to another (a macvlan child's) is another's.
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// `RX_INSTANCE[slot]`: what `vrrp_rx` checks an advert against (the agent's `InstanceRules`),
/// and what it needs to fence in the kernel. Written by the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RxInstance {
    /// 1 when an instance with this VRID and family runs on the interface.
    pub configured: u8,
    /// 2 or 3.
    pub version: u8,
    /// 1 while the instance is Master: a preempting advert then sets `SLOT_FENCE[slot]`.
    pub master: u8,
    /// Our effective priority (the preemption comparison).
    pub priority: u8,
    /// v2 auth type expected (0 or 1).
    pub auth_type: u8,
    /// 1: the advert must list exactly our VIPs (`ADV_ADDRS`).
    pub check_vips: u8,
    /// Number of our VIPs (at most 64: the check uses a 64-bit mask).
    pub vip_count: u8,
    /// 1: the source must be in `ALLOWED_PEERS`.
    pub check_peers: u8,
    /// v2: the Adver Int adverts must carry, in centiseconds.
    pub adver_int_cs: u16,
    /// 1: any TTL / hop limit on adverts to a unicast address (a unicast instance, as
    /// keepalived); multicast adverts always need 255.
    pub unicast_any_ttl: u8,
    /// 1: multicast adverts for this instance go to `group` (`mcast_dst_ip`), not to the
    /// interface's `RxGlobal` group of the family.
    pub has_group: u8,
    pub _pad: [u8; 4],
    /// The bits of `ADV_ADDRS` indexes of our VIPs: an advert passes the address check when
    /// its count is `vip_count` and the indexes of its addresses cover this mask.
    pub vip_mask: u64,
    /// After this long without a valid advert the next one is an event even if unchanged.
    pub silence_ns: u64,
    /// v2 PASS password (8 bytes, zero-padded).
    pub auth: [u8; 8],
    /// Our primary address (IPv4 in the first 4 bytes): the tie breaker.
    pub primary: [u8; 16],
    /// The instance's multicast group when `has_group` (IPv4 in the first 4 bytes).
    pub group: [u8; 16],
    /// Our first [`RX_INLINE_VIPS`] VIPs in order (IPv4 in the first 4 bytes, unused entries
    /// zero), written by the agent from the list it writes to `ADV_ADDRS`. When `vip_count` is
    /// at most [`RX_INLINE_VIPS`], `vrrp_rx` compares an advert's addresses with these instead of
    /// looking each one up: the same bits (an address's first index), no map lookup.
    pub vips: [[u8; 16]; RX_INLINE_VIPS],
}

/// VIPs an [`RxInstance`] carries inline for the advert address check.
pub const RX_INLINE_VIPS: usize = 8;

/// `PEER[slot]`: the last valid advert for the slot. Written by `vrrp_rx` (plain stores: a
/// reader racing two senders may see fields of both, and gets an event for each anyway).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PeerRecord {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when it arrived; 0: never.
    pub last_seen_ns: u64,
    /// Source address (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    pub priority: u8,
    pub _pad: u8,
    /// v3 Max Adver Int, or v2 Adver Int × 100, in centiseconds.
    pub adver_int_cs: u16,
    pub _pad2: u32,
}

/// Why `vrrp_rx` sent a [`PeerEvent`] (bits).
pub mod event_why {
    pub const NEW_SOURCE: u8 = 1 << 0;
    pub const PRIORITY: u8 = 1 << 1;
    pub const INTERVAL: u8 = 1 << 2;
    /// Priority 0: the master resigns.
    pub const RESIGN: u8 = 1 << 3;
    /// We are Master: every advert from another router matters.
    pub const WHILE_MASTER: u8 = 1 << 4;
    /// First advert after `silence_ns` without one.
    pub const AFTER_SILENCE: u8 = 1 << 5;
    /// The advert preempts us: `SLOT_FENCE[slot]` was set.
    pub const FENCED: u8 = 1 << 6;
}

/// A ring-buffer record: a valid advert the election must see.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PeerEvent {
    pub at_ns: u64,
    pub slot: u16,
    pub priority: u8,
    /// [`event_why`] bits.
    pub why: u8,
    pub adver_int_cs: u16,
    pub _pad: u16,
    pub src: [u8; 16],
}

/// Key of `ADV_ADDRS` (an instance's VIPs, for the advert address check) and `ALLOWED_PEERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SlotAddr {
    pub slot: u16,
    pub _pad: u16,
    /// IPv4 in the first 4 bytes, rest zero.
    pub addr: [u8; 16],
}

/// Value of `ALLOWED_PEERS[slot, source]`: the TTL / hop limit range the peer's adverts must
/// arrive with (keepalived's `unicast_peer ADDR min_ttl N max_ttl M`; 0..=255 unless set).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PeerTtl {
    pub min_ttl: u8,
    pub max_ttl: u8,
}

impl PeerTtl {
    /// Any TTL.
    pub const ANY: PeerTtl = PeerTtl {
        min_ttl: 0,
        max_ttl: 255,
    };

    pub const fn contains(&self, ttl: u8) -> bool {
        self.min_ttl <= ttl && ttl <= self.max_ttl
    }
}

/// Values of `SLOT_FENCE[slot]`.
pub mod slot_fence {
    /// The instance's VIPs are fenced (nothing passes).
    pub const FENCED: u32 = 1;
    /// `vrrp_rx` heard a preempting advert while we are Master: the VIPs go quiet at once (as
    /// [`super::FenceEntry::quiet`]) so two nodes never answer ARP/ND for them, and the agent
    /// steps down with a planned handover.
    pub const QUIET: u32 = 2;
}

/// Value of `FENCE[vip]`: a VIP on this interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FenceEntry {
    /// 1: fenced by the agent (the instance is not Master).
    pub fenced: u8,
    /// 1: accept mode off for a non-owner (`no_accept`, strict mode): even unfenced, IP to and
    /// from the VIP is dropped but ICMPv6 Neighbor Discovery (RFC 5798 §6.4.3, as keepalived's
    /// nftables rules).
    pub no_accept: u8,
    /// The instance's slot on its own interface; `SLOT_FENCE[slot]` fences it too.
    pub slot: u16,
    /// 1: quiet, a planned handover: ARP with the VIP as sender and ICMPv6 NA/NS for it are
    /// dropped on egress (no answers, no announcements) while IP to and from it still passes.
    pub quiet: u8,
    pub _pad2: [u8; 3],
    /// Fail closed: fenced while `HEARTBEAT` is older than this (0: never).
    pub heartbeat_timeout_ns: u64,
}

/// The one entry of `HEARTBEAT`: when the agent's event loop last ran.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Heartbeat {
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub last_ns: u64,
}

/// Bytes of the `EVENTS` ring buffer (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 64 * 1024;

/// Maximum VIPs per instance that `vrrp_rx` can check an advert's address list against.
pub const MAX_CHECKED_VIPS: usize = 64;

/// Maximum entries of `ADV_ADDRS` and `ALLOWED_PEERS`.
pub const SLOT_ADDR_ENTRIES: u32 = 4096;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain old data: #[repr(C)], no padding (bytemuck::Pod is derived and checks it).
    unsafe impl aya::Pod for super::VipKey {}
    // SAFETY: as above, for each record.
    unsafe impl aya::Pod for super::RxGlobal {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RxInstance {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PeerRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PeerEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SlotAddr {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FenceEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PeerTtl {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Heartbeat {}
}

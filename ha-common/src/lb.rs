//! Keys and values of the XDP load balancer's maps (`xdp_lb`, keepalived's `virtual_server`s),
//! shared by the program and the agent.
//!
//! The model is Katran's: per service a Maglev lookup table (`LB_RING`) places new flows on a
//! real server; an LRU flow table (`LB_FLOWS`) keeps established flows where they are; an LRU of
//! persistence templates (`LB_PERSIST`) pins a client to a server for `persistence_timeout`.
//! The agent computes the rings from the configuration and the health state alone, identically
//! on every director, so a director that takes over a VIP sends each flow to the server it was
//! already on, with no connection sync.
//!
//! Reals and services are referred to by index (`ServiceEntry::index`, the ring's values): the
//! agent allocates them; `LB_REALS[i]` and the ring slice `LB_RING[index * LB_RING_SIZE ..]`.

/// Entries of one service's Maglev lookup table (a prime, as Maglev needs). Maglev's excess
/// disruption grows with servers/size: at 16381 a server leaving one of N moves at most 1/N +
/// 2 % of the flows up to 100 servers (at 4093 only up to 20); 64 KiB per service.
pub const LB_RING_SIZE: u32 = 16381;
/// Services (`virtual_server`s, one per address:port:protocol) per interface.
pub const LB_SERVICES: u32 = 256;
/// Real servers (sorry servers included) per interface.
pub const LB_REALS: u32 = 4096;
/// Entries of the flow table (LRU).
pub const LB_FLOWS: u32 = 262_144;
/// Entries of the persistence table (LRU).
pub const LB_PERSIST: u32 = 65_536;
/// A ring entry with no server: the service has none up and no sorry server (the packet goes to
/// the stack, as IPVS with no destination: the director's own stack answers or resets).
pub const LB_NO_REAL: u32 = u32::MAX;

/// Map names, the same in `ha-ebpf` and the agent.
pub const MAP_LB_SERVICES: &str = "LB_SERVICES";
pub const MAP_LB_REALS: &str = "LB_REALS";
pub const MAP_LB_RING: &str = "LB_RING";
pub const MAP_LB_FLOWS: &str = "LB_FLOWS";
pub const MAP_LB_PERSIST: &str = "LB_PERSIST";
pub const MAP_LB_REAL_STATS: &str = "LB_REAL_STATS";
pub const MAP_LB_SERVICE_STATS: &str = "LB_SERVICE_STATS";
pub const MAP_LB_COUNTERS: &str = "LB_COUNTERS";
/// The program array `vrrp_rx` tail-calls into (index [`LB_PROG_INDEX`]) for packets that are
/// not VRRP; empty when the interface has no virtual server (the tail call then fails and
/// `vrrp_rx` passes the packet, as before).
pub const MAP_LB_PROG: &str = "LB_PROG";
pub const LB_PROG_INDEX: u32 = 0;
/// The load balancer's XDP program.
pub const PROG_XDP_LB: &str = "xdp_lb";

/// Key of `LB_SERVICES`: what a packet is addressed to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ServiceKey {
    /// 4 or 6.
    pub family: u8,
    /// IPPROTO_TCP (6) or IPPROTO_UDP (17).
    pub proto: u8,
    /// Destination port, network byte order (as in the packet).
    pub port_be: u16,
    /// IPv4 in the first 4 bytes, rest zero.
    pub addr: [u8; 16],
}

/// [`ServiceEntry::flags`].
pub mod service_flags {
    /// Hash the source address only (`sh`, and `mh` without `mh-port`): a client's flows all go
    /// to one server. Otherwise the 5-tuple (`rr`, `wrr`, `lc`, `wlc`, `mh` with `mh-port`).
    pub const HASH_SOURCE: u32 = 1 << 0;
    /// `persistence_timeout`: look up / refresh `LB_PERSIST` before the ring.
    pub const PERSIST: u32 = 1 << 1;
    /// `ha_suspend` or administratively off: forward nothing (pass to the stack).
    pub const SUSPENDED: u32 = 1 << 2;
}

/// Value of `LB_SERVICES[key]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ServiceEntry {
    /// The service's index: its ring is `LB_RING[index * LB_RING_SIZE ..][..LB_RING_SIZE]`, its
    /// counters `LB_SERVICE_STATS[index]`.
    pub index: u32,
    /// [`service_flags`].
    pub flags: u32,
    /// `persistence_timeout` in nanoseconds (with [`service_flags::PERSIST`]).
    pub persist_timeout_ns: u64,
    /// `persistence_granularity` as a mask applied to the client's address before the
    /// persistence lookup (IPv4 in the first 4 bytes; all ones: per address).
    pub persist_mask: [u8; 16],
}

/// [`RealEntry::flags`].
pub mod real_flags {
    /// Established flows and persistence templates may keep using this server. Cleared when it
    /// fails without `inhibit_on_failure` (its flows are placed again, as IPVS's
    /// `expire_nodest_conn`); kept while inhibited (weight 0: no new flows, as IPVS).
    pub const ALIVE: u32 = 1 << 0;
    /// `lb_kind TUN`: encapsulate (IPIP for IPv4, IP6IP6 for IPv6) to `addr` from `tun_src`.
    /// Otherwise DR: rewrite the Ethernet addresses only.
    pub const TUN: u32 = 1 << 1;
    /// The outer header of TUN is IPv6 (`addr`, `tun_src` are IPv6).
    pub const TUN_V6: u32 = 1 << 2;
}

/// Value of `LB_REALS[index]`: where and how to send a packet for this real server.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RealEntry {
    /// [`real_flags`].
    pub flags: u32,
    /// The interface to transmit on: the receiving interface means `XDP_TX`, another one
    /// `bpf_redirect`.
    pub ifindex: u32,
    /// Next hop's MAC (the real server's for DR; its gateway's for TUN when routed).
    pub dst_mac: [u8; 6],
    /// The transmitting interface's MAC.
    pub src_mac: [u8; 6],
    /// The real server's address (the tunnel's outer destination; IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// The tunnel's outer source: the director's address toward `addr`.
    pub tun_src: [u8; 16],
}

/// Key of `LB_FLOWS`: one flow, as the client sends it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FlowKey {
    pub family: u8,
    pub proto: u8,
    pub _pad: u16,
    /// Ports in network byte order.
    pub sport_be: u16,
    pub dport_be: u16,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// Value of `LB_FLOWS[flow]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FlowEntry {
    /// Index in `LB_REALS`.
    pub real: u32,
    pub _pad: u32,
}

/// Key of `LB_PERSIST`: a client (masked by `persist_mask`) of a service.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PersistKey {
    pub service: u32,
    pub src: [u8; 16],
}

/// Value of `LB_PERSIST[client]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PersistEntry {
    pub real: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_ns()` of the client's last packet: the template expires
    /// `persist_timeout_ns` after it.
    pub last_ns: u64,
}

/// Per-CPU counters of `LB_REAL_STATS[real]` and `LB_SERVICE_STATS[service]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LbStats {
    pub packets: u64,
    pub bytes: u64,
    /// Flows placed (a flow-table miss that inserted an entry).
    pub new_flows: u64,
}

/// Indexes of `LB_COUNTERS` (per CPU): what `xdp_lb` did with packets that are not forwarded.
pub mod lb_counter {
    /// To a service address of a VIP this node does not own (fenced, preempted, stale
    /// heartbeat, accept mode off): passed to the stack, where the TC fence drops it.
    pub const NOT_OWNER: u32 = 0;
    /// The service's ring has no server: passed to the stack.
    pub const NO_REAL: u32 = 1;
    /// TUN: `bpf_xdp_adjust_head` failed (no headroom): dropped.
    pub const NO_HEADROOM: u32 = 2;
    /// TUN: the encapsulated packet would exceed the interface MTU: dropped.
    pub const TOO_BIG: u32 = 3;
    /// IP fragments (no ports to hash; IPVS does not balance them either without a template):
    /// passed.
    pub const FRAGMENT: u32 = 4;
    /// Forwarded with `XDP_TX` or redirected.
    pub const FORWARDED: u32 = 5;
    /// Counted by `vrrp_rx`: to a service while `xdp_lb` is not in `LB_PROG` (the agent died
    /// and, its pins gone with it, the kernel emptied the program array): dropped, so that the
    /// director's own stack, which still holds the VIP until the fence closes, does not reset
    /// the flows a taking-over director will carry on.
    pub const NO_BALANCER: u32 = 6;
    pub const COUNT: u32 = 7;
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain old data: #[repr(C)], no padding (bytemuck::Pod is derived and checks it).
    unsafe impl aya::Pod for super::ServiceKey {}
    // SAFETY: as above, for each record.
    unsafe impl aya::Pod for super::ServiceEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RealEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FlowKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FlowEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PersistKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PersistEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LbStats {}
}

/// One round of MurmurHash3's 32-bit block mixing.
#[inline(always)]
const fn mix(h: u32, k: u32) -> u32 {
    let k = k
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// MurmurHash3's finalizer.
#[inline(always)]
const fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[inline(always)]
const fn word(a: &[u8; 16], i: usize) -> u32 {
    u32::from_le_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]])
}

/// The hash that places a new flow: `LB_RING[service * LB_RING_SIZE + flow_hash(..) %
/// LB_RING_SIZE]`. The same function in `xdp_lb` and the agent (tests predict placements with
/// it), with no per-boot seed: every director hashes a flow alike. `source_only`
/// ([`service_flags::HASH_SOURCE`]) hashes the client's address alone.
#[inline(always)]
pub const fn flow_hash(
    src: &[u8; 16],
    dst: &[u8; 16],
    sport_be: u16,
    dport_be: u16,
    proto: u8,
    source_only: bool,
) -> u32 {
    let mut h = mix(0x9747_b28c, word(src, 0));
    h = mix(h, word(src, 4));
    h = mix(h, word(src, 8));
    h = mix(h, word(src, 12));
    if !source_only {
        h = mix(h, word(dst, 0));
        h = mix(h, word(dst, 4));
        h = mix(h, word(dst, 8));
        h = mix(h, word(dst, 12));
        h = mix(h, ((sport_be as u32) << 16) | dport_be as u32);
        h = mix(h, proto as u32);
    }
    fmix(h)
}

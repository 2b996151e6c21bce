//! What the agent writes to and reads from the maps of `vrrp_rx` and `vip_fence`: the
//! interface settings and per-instance slots, the instance state and the fence, the peer
//! records and ring buffer, the counters.

use std::{net::IpAddr, time::Duration};

use aya::{
    Pod,
    maps::{HashMap, MapData, MapError, PerCpuArray, RingBuf},
};
use ha_common::{
    RejectReason,
    maps::{
        FenceEntry, Heartbeat, INSTANCE_SLOTS, PeerRecord, PeerTtl, RX_INLINE_VIPS, RxGlobal,
        RxInstance, SlotAddr, VRID_SLOTS, VipKey, instance_slot, stats_index,
    },
};

use super::{
    MAP_ACCEPTED, MAP_ADV_ADDRS, MAP_ALLOWED_PEERS, MAP_EVENTS_LOST, MAP_FENCE, MAP_FENCE_DROPS,
    MAP_FOREIGN, MAP_HEARTBEAT, MAP_PEER, MAP_RX_ADVERTS, MAP_RX_GLOBAL, MAP_RX_INSTANCE,
    MAP_SLOT_FENCE, MAP_STATS, XdpDatapath, XdpError, map_err, monotonic_ns,
};
use crate::vrrp::{
    packet::{Auth, InstanceRules},
    types::Family,
};

/// One instance's rules for `vrrp_rx`: the slot and what goes in `RX_INSTANCE`, `ADV_ADDRS` and
/// `ALLOWED_PEERS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotConfig {
    pub slot: u32,
    /// Its `vips` need not be set: [`XdpDatapath::configure`] copies them from `vips`.
    pub rx: RxInstance,
    /// The VIPs the advert must list (their index in the list is their mask bit).
    pub vips: Vec<IpAddr>,
    /// Allowed unicast sources, each with the TTL range its adverts must arrive with.
    pub peers: Vec<(IpAddr, PeerTtl)>,
}

impl SlotConfig {
    /// What the agent writes for an instance that checks adverts by `rules`: its slot (VRID,
    /// +256 over IPv6), its state (`master`, effective `priority`), its `primary` address (the
    /// tie-break) and the `silence` after which an unchanged advert is news again. A VIP listed
    /// twice keeps its first index, as [`XdpDatapath::configure`] writes `ADV_ADDRS`.
    pub fn for_rules(
        rules: &InstanceRules,
        primary: IpAddr,
        master: bool,
        priority: u8,
        silence: Duration,
    ) -> SlotConfig {
        let vips = rules.vips.clone().unwrap_or_default();
        let vip_mask = vips.iter().enumerate().fold(0u64, |m, (k, v)| {
            let first = vips.iter().position(|w| w == v).unwrap_or(k);
            m | (1u64 << first)
        });
        let mut rx = RxInstance {
            configured: 1,
            version: rules.version.number(),
            master: u8::from(master),
            priority,
            auth_type: rules.auth.auth_type(),
            check_vips: u8::from(rules.vips.is_some()),
            vip_count: vips.len() as u8,
            check_peers: u8::from(!rules.unicast_peers.is_empty()),
            adver_int_cs: rules.adver_int_cs,
            unicast_any_ttl: u8::from(rules.unicast_any_ttl),
            vip_mask,
            silence_ns: silence.as_nanos() as u64,
            primary: addr16(primary),
            has_group: u8::from(rules.group.is_some()),
            group: rules.group.map_or([0; 16], addr16),
            ..RxInstance::default()
        };
        if let Auth::Pass(p) = rules.auth {
            rx.auth = p;
        }
        SlotConfig {
            slot: instance_slot(rules.vrid, rules.family == Family::Ipv6),
            rx,
            vips,
            peers: rules
                .unicast_peers
                .iter()
                .map(|p| (*p, rules.ttl_range(*p)))
                .collect(),
        }
    }
}

/// What the agent writes to `RX_GLOBAL`: the [`rx_flags`](ha_common::maps::rx_flags), the
/// interface's multicast groups (`vrrp_mcast_group4/6`) and its MAC, by which `vrrp_rx` tells
/// this interface's adverts from other speakers' (passed to the stack).
pub fn rx_global(
    flags: u32,
    group4: std::net::Ipv4Addr,
    group6: std::net::Ipv6Addr,
    mac: [u8; 6],
) -> RxGlobal {
    RxGlobal {
        flags,
        group4: group4.octets(),
        group6: group6.octets(),
        mac,
        _pad: [0; 2],
    }
}

impl XdpDatapath {
    /// Writes the interface settings and every instance slot: `slots` configured, every other
    /// slot cleared; `ADV_ADDRS` and `ALLOWED_PEERS` made to hold exactly what `slots` list.
    pub fn configure(&mut self, global: RxGlobal, slots: &[SlotConfig]) -> Result<(), XdpError> {
        self.rx_global
            .set(0, global, 0)
            .map_err(map_err(MAP_RX_GLOBAL))?;
        let mut adv = std::collections::HashMap::new();
        let mut peers = std::collections::HashMap::new();
        for slot in 0..INSTANCE_SLOTS {
            let rx = slots
                .iter()
                .find(|s| s.slot == slot)
                .map_or_else(RxInstance::default, |s| {
                    // The inline copy of the list `ADV_ADDRS` gets below.
                    let mut rx = s.rx;
                    rx.vips = [[0; 16]; RX_INLINE_VIPS];
                    for (inline, vip) in rx.vips.iter_mut().zip(&s.vips) {
                        *inline = addr16(*vip);
                    }
                    rx
                });
            self.rx_instance
                .set(slot, rx, 0)
                .map_err(map_err(MAP_RX_INSTANCE))?;
        }
        for s in slots {
            for (index, vip) in s.vips.iter().enumerate() {
                adv.entry(slot_addr(s.slot, *vip)).or_insert(index as u8);
            }
            for (p, ttl) in &s.peers {
                peers.insert(slot_addr(s.slot, *p), *ttl);
            }
        }
        sync_hash(&mut self.adv_addrs, MAP_ADV_ADDRS, &adv)?;
        sync_hash(&mut self.allowed_peers, MAP_ALLOWED_PEERS, &peers)?;
        Ok(())
    }

    /// Records the instance in `slot` as Master or not and its effective priority: what
    /// `vrrp_rx` compares adverts with to fence in the kernel.
    pub fn set_state(&mut self, slot: u32, master: bool, priority: u8) -> Result<(), XdpError> {
        let mut rx = self
            .rx_instance
            .get(&slot, 0)
            .map_err(map_err(MAP_RX_INSTANCE))?;
        rx.master = u8::from(master);
        rx.priority = priority;
        self.rx_instance
            .set(slot, rx, 0)
            .map_err(map_err(MAP_RX_INSTANCE))
    }

    /// The instance state `vrrp_rx` sees for `slot`.
    pub fn rx_instance(&self, slot: u32) -> Result<RxInstance, XdpError> {
        self.rx_instance
            .get(&slot, 0)
            .map_err(map_err(MAP_RX_INSTANCE))
    }

    /// Whether `vrrp_rx` fenced `slot` in the kernel (a preempting advert while Master).
    pub fn slot_fenced(&self, slot: u32) -> Result<bool, XdpError> {
        Ok(self
            .slot_fence
            .get(&slot, 0)
            .map_err(map_err(MAP_SLOT_FENCE))?
            != 0)
    }

    /// Clears the kernel fence of `slot` (on becoming Master).
    pub fn clear_slot_fence(&mut self, slot: u32) -> Result<(), XdpError> {
        self.slot_fence
            .set(slot, 0, 0)
            .map_err(map_err(MAP_SLOT_FENCE))
    }

    /// Sets the kernel fence of `slot`, as `vrrp_rx` does on a preempting advert (tests).
    pub fn set_slot_fence(&mut self, slot: u32) -> Result<(), XdpError> {
        self.slot_fence
            .set(slot, 1, 0)
            .map_err(map_err(MAP_SLOT_FENCE))
    }

    /// Tells `vip_fence` the agent is alive, now.
    pub fn heartbeat(&mut self) -> Result<(), XdpError> {
        let hb = Heartbeat {
            last_ns: monotonic_ns(),
        };
        self.heartbeat.set(0, hb, 0).map_err(map_err(MAP_HEARTBEAT))
    }

    /// The last valid advert `vrrp_rx` recorded for `slot`.
    pub fn peer(&self, slot: u32) -> Result<PeerRecord, XdpError> {
        self.peer.get(&slot, 0).map_err(map_err(MAP_PEER))
    }

    /// The ring buffer of peer events; `None` once taken.
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Events lost to a full ring buffer.
    pub fn events_lost(&self) -> Result<u64, XdpError> {
        sum_per_cpu(&self.events_lost, MAP_EVENTS_LOST, 0)
    }

    /// VRRP packets `vrrp_rx` has seen for `vrid` (valid or not), summed over CPUs.
    pub fn rx_adverts(&self, vrid: u8) -> Result<u64, XdpError> {
        sum_per_cpu(&self.rx_adverts, MAP_RX_ADVERTS, u32::from(vrid))
    }

    /// Valid adverts for `slot`.
    pub fn accepted(&self, slot: u32) -> Result<u64, XdpError> {
        sum_per_cpu(&self.accepted, MAP_ACCEPTED, slot)
    }

    /// Adverts rejected for `vrid` with `reason`.
    pub fn rejected(&self, vrid: u8, reason: RejectReason) -> Result<u64, XdpError> {
        sum_per_cpu(&self.stats, MAP_STATS, stats_index(vrid, reason as u8))
    }

    /// Every non-zero rejection counter: (VRID, reason, count). VRIDs whose total
    /// (`RX_ADVERTS`) equals their valid adverts are skipped without reading their reasons.
    pub fn rejections(&self) -> Result<Vec<(u8, RejectReason, u64)>, XdpError> {
        let mut out = Vec::new();
        for vrid in 0..VRID_SLOTS {
            let vrid = vrid as u8;
            let seen = self.rx_adverts(vrid)?;
            if seen == 0 {
                continue;
            }
            let valid = self.accepted(vrid.into())?
                + self.accepted(ha_common::maps::instance_slot(vrid, true))?;
            if seen == valid {
                continue;
            }
            for reason in RejectReason::ALL {
                let n = self.rejected(vrid, reason)?;
                if n > 0 {
                    out.push((vrid, reason, n));
                }
            }
        }
        Ok(out)
    }

    /// VRRP packets for `vrid` that `vrrp_rx` judged another speaker's (passed to the stack, or
    /// dropped with `DROP_FOREIGN`), summed over CPUs.
    pub fn foreign(&self, vrid: u8) -> Result<u64, XdpError> {
        sum_per_cpu(&self.foreign, MAP_FOREIGN, u32::from(vrid))
    }

    /// Every non-zero foreign counter: (VRID, count).
    pub fn foreigners(&self) -> Result<Vec<(u8, u64)>, XdpError> {
        let mut out = Vec::new();
        for vrid in 0..VRID_SLOTS {
            let n = self.foreign(vrid as u8)?;
            if n > 0 {
                out.push((vrid as u8, n));
            }
        }
        Ok(out)
    }

    /// Packets `vip_fence` has dropped, summed over CPUs.
    pub fn fence_drops(&self) -> Result<u64, XdpError> {
        sum_per_cpu(&self.fence_drops, MAP_FENCE_DROPS, 0)
    }

    /// Puts `vip` (of the instance in `slot`) under `vip_fence`: its traffic is dropped while
    /// `fenced`, while `SLOT_FENCE[slot]` is set, or while the heartbeat is older than
    /// `heartbeat_timeout` (zero: never); otherwise, with `no_accept` (accept mode off), all
    /// but its Neighbor Discovery. Not fenced but `quiet` (a planned handover): its ARP and
    /// Neighbor Discovery are dropped, its IP passes.
    pub fn set_fence(
        &mut self,
        vip: IpAddr,
        slot: u32,
        fenced: bool,
        no_accept: bool,
        heartbeat_timeout: Duration,
    ) -> Result<(), XdpError> {
        self.set_fence_entry(vip, slot, fenced, false, no_accept, heartbeat_timeout)
    }

    /// Puts `vip` in the quiet state of a planned handover (see [`XdpDatapath::set_fence`]).
    pub fn set_quiet(
        &mut self,
        vip: IpAddr,
        slot: u32,
        no_accept: bool,
        heartbeat_timeout: Duration,
    ) -> Result<(), XdpError> {
        self.set_fence_entry(vip, slot, false, true, no_accept, heartbeat_timeout)
    }

    fn set_fence_entry(
        &mut self,
        vip: IpAddr,
        slot: u32,
        fenced: bool,
        quiet: bool,
        no_accept: bool,
        heartbeat_timeout: Duration,
    ) -> Result<(), XdpError> {
        let entry = FenceEntry {
            fenced: u8::from(fenced),
            quiet: u8::from(quiet),
            no_accept: u8::from(no_accept),
            slot: slot as u16,
            heartbeat_timeout_ns: heartbeat_timeout.as_nanos() as u64,
            ..FenceEntry::default()
        };
        self.fence
            .insert(vip_key(vip), entry, 0)
            .map_err(map_err(MAP_FENCE))
    }

    /// Fences `vip` unconditionally (slot 0, no heartbeat): a test and tool helper.
    pub fn fence(&mut self, vip: IpAddr) -> Result<(), XdpError> {
        self.set_fence(vip, 0, true, false, Duration::ZERO)
    }

    /// Stops fencing `vip` and forgets it. Forgetting an unknown address is not an error.
    pub fn unfence(&mut self, vip: IpAddr) -> Result<(), XdpError> {
        forget(&mut self.fence, MAP_FENCE, &vip_key(vip))
    }

    /// Forgets every VIP in the fence map but `keep`.
    pub fn prune_fence(&mut self, keep: &[IpAddr]) -> Result<(), XdpError> {
        let keep: Vec<VipKey> = keep.iter().map(|v| vip_key(*v)).collect();
        retain_keys(&mut self.fence, MAP_FENCE, |k| keep.contains(k))
    }

    /// The VIPs under the fence on this interface.
    pub fn fenced_vips(&self) -> Vec<VipKey> {
        self.fence.keys().filter_map(Result::ok).collect()
    }

    /// Whether the agent has `vip` fenced (the `fenced` flag; the kernel and heartbeat fences
    /// are separate: [`XdpDatapath::slot_fenced`]).
    pub fn is_fenced(&self, vip: IpAddr) -> Result<bool, XdpError> {
        match self.fence.get(&vip_key(vip), 0) {
            Ok(e) => Ok(e.fenced != 0),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(source) => Err(map_err(MAP_FENCE)(source)),
        }
    }
}

/// Makes the hash map hold exactly `want`.
fn sync_hash<V: Pod>(
    map: &mut HashMap<MapData, SlotAddr, V>,
    name: &'static str,
    want: &std::collections::HashMap<SlotAddr, V>,
) -> Result<(), XdpError> {
    retain_keys(map, name, |k| want.contains_key(k))?;
    for (k, v) in want {
        map.insert(k, v, 0).map_err(map_err(name))?;
    }
    Ok(())
}

/// Removes from `map` every key `keep` refuses.
fn retain_keys<K: Pod, V: Pod>(
    map: &mut HashMap<MapData, K, V>,
    name: &'static str,
    keep: impl Fn(&K) -> bool,
) -> Result<(), XdpError> {
    let stale: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !keep(k))
        .collect();
    for k in stale {
        forget(map, name, &k)?;
    }
    Ok(())
}

/// Removes `key` from `map`; a key that is not there is no error.
pub(super) fn forget<K: Pod, V: Pod>(
    map: &mut HashMap<MapData, K, V>,
    name: &'static str,
    key: &K,
) -> Result<(), XdpError> {
    match map.remove(key) {
        Err(e) if !is_absent(&e) => Err(map_err(name)(e)),
        _ => Ok(()),
    }
}

/// Whether a map operation failed because the key is not there: aya reports a lookup's miss as
/// `KeyNotFound` but a delete's as the syscall's `ENOENT`.
fn is_absent(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// An address as the maps hold it: IPv4 in the first 4 bytes.
pub fn addr16(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut out = [0u8; 16];
            out[..4].copy_from_slice(&a.octets());
            out
        }
        IpAddr::V6(a) => a.octets(),
    }
}

fn slot_addr(slot: u32, addr: IpAddr) -> SlotAddr {
    SlotAddr {
        slot: slot as u16,
        _pad: 0,
        addr: addr16(addr),
    }
}

/// The fence map's key for an address.
pub fn vip_key(vip: IpAddr) -> VipKey {
    match vip {
        IpAddr::V4(a) => VipKey::v4(a.octets()),
        IpAddr::V6(a) => VipKey::v6(a.octets()),
    }
}

fn sum_per_cpu(
    map: &PerCpuArray<MapData, u64>,
    name: &'static str,
    index: u32,
) -> Result<u64, XdpError> {
    let values = map.get(&index, 0).map_err(map_err(name))?;
    Ok(values.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syscall_error(errno: i32) -> MapError {
        MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_delete_elem",
            io_error: std::io::Error::from_raw_os_error(errno),
        })
    }

    /// A delete of a key that is not there fails with ENOENT: "already absent", not an error
    /// (every reload logged one for each VIP missing from an interface's fence map).
    #[test]
    fn a_missing_key_is_absent_other_failures_are_errors() {
        assert!(is_absent(&MapError::KeyNotFound));
        assert!(is_absent(&syscall_error(libc::ENOENT)));
        assert!(!is_absent(&syscall_error(libc::EPERM)));
        assert!(!is_absent(&syscall_error(libc::EINVAL)));
    }
}

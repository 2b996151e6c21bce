//! The XDP/TC datapaths of the interfaces: their handles, and the mirror
//! of what the kernel was told about each instance (its slot, master or not and priority, its
//! fenced VIPs). One [`Datapaths::set_instance`] writes an instance's state for configure, sync and
//! fence alike; an instance's slot is computed in one place ([`slot_of`]).

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use aya::programs::XdpMode;
use ha_common::maps::{PeerRecord, instance_slot, rx_flags};
use tracing::{debug, error, info, warn};

use super::vips::is_own_address;
use crate::{
    agent::{
        DatapathChoice,
        plan::{IfFacts, InstancePlan, Plan},
    },
    config::GlobalDefs,
    datapath::{
        socket::Membership,
        xdp::{self, SlotConfig, XdpDatapath, XdpOptions},
    },
    vrrp::{
        packet::{self, Family},
        types::cs_to_duration,
    },
};

/// How the operator asked the datapath to run (`--datapath`, `--bpf-dir`, `--xdp-*`).
#[derive(Clone)]
pub(super) struct Options {
    pub choice: DatapathChoice,
    /// Where maps are pinned (for bpftool and counters across restarts).
    pub bpf_dir: PathBuf,
    /// `--xdp-pass-adverts`: adverts go on to the kernel after XDP (debugging).
    pub pass_adverts: bool,
    /// `--xdp-drop-foreign`: XDP drops other speakers' VRRP instead of passing it.
    pub drop_foreign: bool,
}

/// What the kernel knows of one instance.
struct Told {
    /// The instance's name, for log lines.
    name: String,
    interface: String,
    slot: u32,
    /// (master, effective priority) last written to `RX_INSTANCE`.
    state: Option<(bool, u8)>,
    /// Its fenced VIPs: (VIP, interface, slot the entry is keyed to).
    fence: Vec<(IpAddr, String, u32)>,
    /// How long `vip_fence` trusts a silent agent with its VIPs.
    heartbeat: Duration,
    /// Accept mode off: `vip_fence` drops IP to its VIPs (but ND) while Master too.
    no_accept: bool,
}

/// An interface's ring buffer of peer events.
pub(super) type Ring = aya::maps::RingBuf<aya::maps::MapData>;

/// XDP counters as read: rejected adverts by (interface, VRID, reason), other speakers' by
/// (interface, VRID), and each XDP instance's valid adverts.
#[derive(Default)]
pub(super) struct Counts {
    pub rejected: Vec<((String, u8, &'static str), u64)>,
    pub foreign: Vec<((String, u8), u64)>,
    pub accepted: Vec<(usize, u64)>,
}

/// Every interface's XDP/TC datapath and what it was told.
pub(super) struct Datapaths {
    options: Options,
    xdp: HashMap<String, XdpDatapath>,
    told: Vec<Told>,
    /// The interfaces to attach: the instances' (XDP and fence), then those that only carry VIPs
    /// of instances running elsewhere (fence only), each with the VIPs its fence holds.
    interfaces: Vec<(String, bool, Vec<IpAddr>)>,
    /// The interfaces whose XDP datapath carries the load balancer (`virtual_server`s).
    balanced: Vec<String>,
    /// The VRRP groups joined on the interfaces XDP reads (left when dropped).
    memberships: Vec<Membership>,
    /// Fence drops and `EVENTS_LOST` by interface, as last read.
    pub fence_drops: BTreeMap<String, u64>,
    pub events_lost: BTreeMap<String, u64>,
}

/// An instance's slot in the XDP maps: its VRID, +256 over IPv6.
pub(super) fn slot_of(ip: &InstancePlan) -> u32 {
    instance_slot(ip.machine.vrid, ip.family == Family::Ipv6)
}

/// A source address as the maps hold it (IPv4 in the first 4 bytes): IPv6 for slots 256 and up.
pub(super) fn peer_src(src: [u8; 16], slot: u32) -> IpAddr {
    if slot >= ha_common::maps::VRID_SLOTS {
        IpAddr::from(src)
    } else {
        IpAddr::from([src[0], src[1], src[2], src[3]])
    }
}

/// How long `vip_fence` trusts a silent agent with an instance's VIPs: `down_timer_adverts`
/// advert intervals (3 by default). A healthy master's loop wakes at least once an interval to
/// advertise; a backup's VIPs are fenced anyway.
fn heartbeat_timeout(ip: &InstancePlan) -> Duration {
    cs_to_duration(ip.machine.advert_interval_cs) * u32::from(ip.machine.down_timer_adverts)
}

impl Datapaths {
    /// The datapaths of `plan`, nothing attached yet. `previous` supplies the counters on reload.
    /// `balanced`: the interfaces whose XDP datapath carries the load balancer (a
    /// `virtual_server`'s address is a VIP there).
    pub fn new(
        options: Options,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
        previous: Option<&Datapaths>,
        balanced: Vec<String>,
    ) -> Datapaths {
        let own = |pv| is_own_address(plan, facts, pv);
        let told = plan
            .instances
            .iter()
            .map(|ip| {
                let slot = slot_of(ip);
                let mut fence = Vec::new();
                for pv in ip.vips.iter().filter(|pv| !own(pv)) {
                    // The instance's interface (its slot: the kernel fences it on a preempting
                    // advert), and the VIP's own `dev` when it is another, keyed to no slot
                    // (the slots there are other instances'): traffic may come in on either.
                    fence.push((pv.vip.addr, ip.interface.clone(), slot));
                    let dev = ip.fence_interface(pv);
                    if dev != ip.interface {
                        fence.push((pv.vip.addr, dev.to_owned(), xdp::NO_SLOT));
                    }
                }
                Told {
                    name: ip.name.clone(),
                    interface: ip.interface.clone(),
                    slot,
                    state: None,
                    fence,
                    heartbeat: heartbeat_timeout(ip),
                    no_accept: !ip.accept,
                }
            })
            .collect::<Vec<_>>();
        let mut interfaces: Vec<(String, bool, Vec<IpAddr>)> = Vec::new();
        for (name, _) in plan.listeners() {
            if !interfaces.iter().any(|(n, _, _)| *n == name) {
                interfaces.push((name, false, Vec::new()));
            }
        }
        for ip in &plan.instances {
            for pv in ip.vips.iter().filter(|pv| !own(pv)) {
                let dev = ip.fence_interface(pv);
                if !interfaces.iter().any(|(n, _, _)| *n == dev) {
                    interfaces.push((dev.to_owned(), true, Vec::new()));
                }
            }
        }
        for (name, _, vips) in &mut interfaces {
            for t in &told {
                vips.extend(t.fence.iter().filter(|f| f.1 == *name).map(|f| f.0));
            }
        }
        Datapaths {
            options,
            xdp: HashMap::new(),
            told,
            interfaces,
            balanced,
            memberships: Vec::new(),
            fence_drops: previous.map(|p| p.fence_drops.clone()).unwrap_or_default(),
            events_lost: previous.map(|p| p.events_lost.clone()).unwrap_or_default(),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// "xdp" when XDP runs on some interface, else "socket".
    pub fn label(&self) -> &'static str {
        if self.xdp.is_empty() { "socket" } else { "xdp" }
    }

    /// Whether XDP reads the adverts on `name` (no receive socket is needed there).
    pub fn reads(&self, name: &str) -> bool {
        self.xdp.contains_key(name)
    }

    /// Keeps the group memberships of an interface XDP reads (a NIC's multicast filter).
    pub fn keep_membership(&mut self, membership: Option<Membership>) {
        self.memberships.extend(membership);
    }

    /// Refuses to start, before the host is changed, when another agent holds the XDP datapath of
    /// one of our interfaces: it would take our VIPs and programs.
    pub fn check_locks(&self) -> Result<()> {
        if self.options.choice == DatapathChoice::Socket {
            return Ok(());
        }
        for (name, _, _) in &self.interfaces {
            // Released at once: the datapath takes it for good when it attaches.
            drop(xdp::lock_interface(name)?);
        }
        Ok(())
    }

    /// Hands the attachments over to the next configuration (reload).
    pub fn hand_over(&mut self) -> HashMap<String, XdpDatapath> {
        std::mem::take(&mut self.xdp)
    }

    /// The interfaces XDP/TC runs on.
    pub fn attached(&self) -> Vec<String> {
        self.xdp.keys().cloned().collect()
    }

    /// Attaches XDP and TC to every VRRP interface (reusing `existing` attachments), writes the
    /// instances' rules to the maps, and fences every VIP whose instance is not master (`states`:
    /// each instance's (master, effective priority)). `auto`: any failure closes what was opened
    /// and falls back to the socket datapath with one warning saying why. Returns the ring
    /// buffers of the interfaces attached anew, for [`super::intake`] to read.
    pub fn attach(
        &mut self,
        mut existing: HashMap<String, XdpDatapath>,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
        global: &GlobalDefs,
        states: &[(bool, u8)],
    ) -> Result<Vec<(String, Ring)>> {
        if self.options.choice == DatapathChoice::Socket {
            info!("datapath socket (--datapath socket): no XDP counters, no TC fence");
            close_all(existing);
            self.warn_accept_unenforced();
            return Ok(Vec::new());
        }
        for t in &mut self.told {
            t.state = None;
        }
        let mut attached: HashMap<String, XdpDatapath> = HashMap::new();
        let mut failure = None;
        for (name, fence_only, vips) in self.interfaces.clone() {
            let balanced = !fence_only && self.balanced.contains(&name);
            let opened = match existing.remove(&name) {
                // Its load balancer's tables are one entry each: a reload that brings the
                // interface's first virtual_server replaces its programs (a restart's path:
                // every VIP fenced until its state is written again below).
                Some(dp) if balanced && !dp.load_balancer() => {
                    info!("{name}: the first virtual_server here: XDP/TC programs replaced");
                    drop(dp);
                    self.open(&name, fence_only, &vips)
                }
                Some(dp) => Ok(dp),
                None => self.open(&name, fence_only, &vips),
            };
            let configured = opened.and_then(|mut dp| {
                let written = if fence_only {
                    Ok(())
                } else {
                    self.configure(&name, &mut dp, plan, facts, global, states)
                };
                match written.and_then(|()| Ok(dp.prune_fence(&vips)?)) {
                    Ok(()) => Ok(dp),
                    Err(e) => {
                        // Not left attached: its fence would blackhole the socket datapath's VIPs.
                        close_all(HashMap::from([(name.clone(), dp)]));
                        Err(e)
                    }
                }
            });
            match configured {
                Ok(dp) => {
                    attached.insert(name, dp);
                }
                // A VIP's `dev` that cannot take the fence (lo, tun, WireGuard): its VIPs stay
                // fenced on their instance's interface, where the LAN's traffic comes in.
                Err(e)
                    if fence_only
                        && matches!(
                            e.downcast_ref::<xdp::XdpError>(),
                            Some(xdp::XdpError::NotEthernet { .. })
                        ) =>
                {
                    warn!("{e}; its VIPs are fenced only on their instances' interfaces");
                }
                Err(e) => {
                    failure = Some((name, e));
                    break;
                }
            }
        }
        if let Some((name, e)) = failure {
            close_all(attached);
            close_all(existing);
            for t in &mut self.told {
                t.state = None;
            }
            if self.options.choice == DatapathChoice::Auto {
                warn!(
                    "XDP/TC could not be set up on {name} ({e:#}); running the socket datapath without the fence"
                );
                self.warn_accept_unenforced();
                return Ok(Vec::new());
            }
            bail!("--datapath xdp: {name}: {e:#}");
        }
        close_all(existing);
        // A datapath kept from the last configuration gave its ring buffer away already.
        let rings = attached
            .iter_mut()
            .filter_map(|(name, dp)| Some((name.clone(), dp.take_events()?)))
            .collect();
        self.xdp = attached;
        self.heartbeat();
        for (i, &(master, priority)) in states.iter().enumerate() {
            self.fence(i, !master, priority);
        }
        Ok(rings)
    }

    /// Without `vip_fence` nothing drops IP to a no-accept instance's VIPs: say so, once each.
    fn warn_accept_unenforced(&self) {
        for t in self.told.iter().filter(|t| t.no_accept) {
            warn!(
                instance = %t.name,
                "accept mode is off (no_accept, or strict mode) but the socket datapath has no \
                 TC fence to enforce it: traffic addressed to the VIPs is accepted while MASTER"
            );
        }
    }

    /// Attaches the programs to `name` through netlink (they stay when the agent dies) with
    /// `vips` fenced; maps pinned under `--bpf-dir` when it is (or can be made) a BPF
    /// filesystem, for bpftool and a restart: nothing depends on the pins.
    fn open(&self, name: &str, fence_only: bool, vips: &[IpAddr]) -> Result<XdpDatapath> {
        let pin_dir = match xdp::pin_dir(&self.options.bpf_dir, name) {
            Ok(dir) => Some(dir),
            Err(e) => {
                info!("{name}: XDP/TC maps not pinned ({e}); the fence does not need the pins");
                None
            }
        };
        let dp = XdpDatapath::open(
            name,
            &XdpOptions {
                mode: XdpMode::default(),
                pin_dir: pin_dir.clone(),
                persist: true,
                fence_only,
                fence: vips.to_vec(),
                // Its tables cost ~60 MB of kernel memory: only where a virtual_server is.
                load_balancer: !fence_only && self.balanced.iter().any(|b| b == name),
            },
        )?;
        let what = if fence_only {
            "TC vip_fence_ingress/vip_fence_egress (VIPs of instances on other interfaces)"
        } else {
            "XDP vrrp_rx and TC vip_fence_ingress/vip_fence_egress"
        };
        match pin_dir {
            Some(dir) => info!(
                "{what} attached to {name}, maps pinned in {}",
                dir.display()
            ),
            None => info!("{what} attached to {name}"),
        }
        Ok(dp)
    }

    /// Writes the rules of the instances on `name` to its maps.
    fn configure(
        &mut self,
        name: &str,
        dp: &mut XdpDatapath,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
        global: &GlobalDefs,
        states: &[(bool, u8)],
    ) -> Result<()> {
        let mut slots = Vec::new();
        for (i, ip) in plan.instances.iter().enumerate() {
            if ip.interface != name {
                continue;
            }
            let r = &ip.rules;
            let checked = r.vips.as_ref().map_or(0, Vec::len);
            if checked > ha_common::maps::MAX_CHECKED_VIPS {
                bail!(
                    "vrrp_instance {}: {} VIPs in adverts; XDP checks at most {} (set vrrp_skip_check_adv_addr, or use --datapath socket)",
                    ip.name,
                    checked,
                    ha_common::maps::MAX_CHECKED_VIPS
                );
            }
            let (master, priority) = states[i];
            slots.push(SlotConfig::for_rules(
                r,
                ip.machine.primary_address,
                master,
                priority,
                self.told[i].heartbeat,
            ));
            self.told[i].state = Some((master, priority));
        }
        let v4 = plan.decode_options(name, Family::Ipv4);
        let mut flags = match v4.v3_ipv4_checksum {
            packet::V3Ipv4Checksum::PseudoHeader => rx_flags::V3_V4_PSEUDO,
            packet::V3Ipv4Checksum::AsV2 => rx_flags::V3_V4_AS_V2,
            packet::V3Ipv4Checksum::Either => rx_flags::V3_V4_PSEUDO | rx_flags::V3_V4_AS_V2,
        };
        if self.options.pass_adverts {
            flags |= rx_flags::PASS_ADVERTS;
        }
        if self.options.drop_foreign {
            flags |= rx_flags::DROP_FOREIGN;
        }
        // Without our MAC every unicast advert would look like another host's: refuse.
        let mac = facts.get(name).and_then(|f| f.mac).with_context(|| {
            format!(
                "{name} has no Ethernet address: XDP tells our unicast adverts from other \
                 hosts' by it (use --datapath socket on this interface)"
            )
        })?;
        let global = xdp::rx_global(
            flags,
            global.vrrp_mcast_group4,
            global.vrrp_mcast_group6,
            mac,
        );
        dp.configure(global, &slots)?;
        Ok(())
    }

    /// The load balancer of `name` (its `xdp_lb` loaded on first use); None without an XDP
    /// datapath there or when it cannot load (said in the log).
    pub fn lb(&mut self, name: &str) -> Option<&mut xdp::XdpLb> {
        match self.xdp.get_mut(name)?.lb() {
            Ok(lb) => Some(lb),
            Err(e) => {
                error!("virtual_server: {e:#}");
                None
            }
        }
    }

    /// Instance `i`'s slot in the maps of its interface, when XDP runs there.
    pub fn slot(&self, i: usize) -> Option<u32> {
        let t = self.told.get(i)?;
        self.xdp.contains_key(&t.interface).then_some(t.slot)
    }

    /// The instance whose slot on `interface` is `slot`.
    pub fn slot_owner(&self, interface: &str, slot: u32) -> Option<usize> {
        self.told
            .iter()
            .position(|t| t.interface == interface && t.slot == slot)
            .filter(|_| self.xdp.contains_key(interface))
    }

    fn instance_dp(&self, i: usize) -> Option<(u32, &XdpDatapath)> {
        let slot = self.slot(i)?;
        Some((slot, self.xdp.get(&self.told[i].interface)?))
    }

    /// Writes instance `i`'s (master, effective priority) to `RX_INSTANCE` when it changed: what
    /// `vrrp_rx` compares adverts with to fence in the kernel.
    pub fn set_instance(&mut self, i: usize, master: bool, priority: u8) -> Result<()> {
        // Called for every instance at each loop turn: the unchanged ones return before the
        // interface's hash lookup (a tenth of a backup's CPU at 255 VRIDs).
        if self
            .told
            .get(i)
            .is_some_and(|t| t.state == Some((master, priority)))
        {
            return Ok(());
        }
        let Some(slot) = self.slot(i) else {
            return Ok(());
        };
        let t = &mut self.told[i];
        if t.state == Some((master, priority)) {
            return Ok(());
        }
        if let Some(dp) = self.xdp.get_mut(&t.interface) {
            dp.set_state(slot, master, priority)?;
            t.state = Some((master, priority));
        }
        Ok(())
    }

    /// Fences (or unfences) instance `i`'s VIPs in the TC programs, and tells `vrrp_rx` whether
    /// the instance is master. Unfencing refreshes the heartbeat and clears the kernel's slot
    /// fence first, so the gratuitous ARPs that follow are not dropped. Errors are logged with
    /// `name` (the instance's).
    pub fn fence(&mut self, i: usize, on: bool, priority: u8) {
        self.told[i].state = None;
        let mut result = self.set_instance(i, !on, priority);
        if !on && let Some(slot) = self.slot(i) {
            let interface = self.told[i].interface.clone();
            if let Some(dp) = self.xdp.get_mut(&interface) {
                result = result.and_then(|()| {
                    dp.heartbeat()?;
                    Ok(dp.clear_slot_fence(slot)?)
                });
            }
        }
        let t = &self.told[i];
        if let Err(e) = result {
            error!(instance = %t.name, "writing the XDP instance state: {e}");
        }
        for (vip, name, slot) in &t.fence {
            let Some(dp) = self.xdp.get_mut(name) else {
                continue;
            };
            if let Err(e) = dp.set_fence(*vip, *slot, on, t.no_accept, t.heartbeat) {
                error!(
                    instance = %t.name,
                    "{} {vip} on {name}: {e}",
                    if on { "fencing" } else { "unfencing" }
                );
            }
        }
    }

    /// Puts instance `i`'s VIPs in the quiet state of a planned handover (no ARP/ND for them,
    /// IP still passes) and tells `vrrp_rx` it is not master. False, and nothing written, when
    /// not every VIP of it is under a TC fence (socket datapath, fence off): the caller then
    /// fences and removes them at once, as before.
    pub fn quiet(&mut self, i: usize, vips: usize, priority: u8) -> bool {
        let t = &self.told[i];
        if vips == 0
            || t.fence.len() < vips
            || t.fence
                .iter()
                .any(|(_, name, _)| !self.xdp.contains_key(name))
        {
            return false;
        }
        self.told[i].state = None;
        if let Err(e) = self.set_instance(i, false, priority) {
            error!(instance = %self.told[i].name, "writing the XDP instance state: {e}");
        }
        let t = &self.told[i];
        let mut quiet = true;
        for (vip, name, slot) in &t.fence {
            let Some(dp) = self.xdp.get_mut(name) else {
                continue;
            };
            if let Err(e) = dp.set_quiet(*vip, *slot, t.no_accept, t.heartbeat) {
                error!(instance = %t.name, "quieting {vip} on {name}: {e}");
                quiet = false;
            }
        }
        quiet
    }

    /// Takes instance `ip`'s VIPs out of every fence map (it goes away on a reload).
    pub fn release(&mut self, ip: &InstancePlan) {
        for pv in &ip.vips {
            for dp in self.xdp.values_mut() {
                if let Err(e) = dp.unfence(pv.vip.addr) {
                    error!(instance = %ip.name, "releasing {}: {e}", pv.vip.addr);
                }
            }
        }
    }

    /// How long `vip_fence` trusts a silent agent with instance `i`'s VIPs.
    pub fn heartbeat_timeout(&self, i: usize) -> Duration {
        self.told[i].heartbeat
    }

    /// Tells every `vip_fence` the loop is alive.
    pub fn heartbeat(&mut self) {
        for (name, dp) in &mut self.xdp {
            if let Err(e) = dp.heartbeat() {
                error!("{name}: XDP heartbeat: {e}");
            }
        }
    }

    /// The peer record of instance `i`'s slot, when XDP runs there and has recorded an advert.
    /// Only [`super::intake`] reads it (as an advert).
    pub fn peer(&self, i: usize) -> Option<PeerRecord> {
        let (slot, dp) = self.instance_dp(i)?;
        dp.peer(slot).ok().filter(|p| p.last_seen_ns != 0)
    }

    /// Whether `vrrp_rx` fenced instance `i`'s VIPs on a preempting advert (`SLOT_FENCE`).
    pub fn slot_fenced(&self, i: usize) -> Result<bool> {
        match self.instance_dp(i) {
            Some((slot, dp)) => Ok(dp.slot_fenced(slot)?),
            None => Ok(false),
        }
    }

    pub fn clear_slot_fence(&mut self, i: usize) -> Result<()> {
        let Some(slot) = self.slot(i) else {
            return Ok(());
        };
        match self.xdp.get_mut(&self.told[i].interface) {
            Some(dp) => Ok(dp.clear_slot_fence(slot)?),
            None => Ok(()),
        }
    }

    /// Reads the XDP counters: fence drops (kept here), and what [`Counts`] holds.
    pub fn read_counters(&mut self) -> Counts {
        let mut counts = Counts::default();
        for (name, dp) in &self.xdp {
            match dp.rejections() {
                Ok(list) => counts.rejected.extend(
                    list.into_iter()
                        .map(|(vrid, reason, n)| ((name.clone(), vrid, reason.as_str()), n)),
                ),
                Err(e) => debug!("{name}: reading XDP rejections: {e}"),
            }
            if let Ok(n) = dp.fence_drops() {
                self.fence_drops.insert(name.clone(), n);
            }
            match dp.foreigners() {
                Ok(list) => counts
                    .foreign
                    .extend(list.into_iter().map(|(vrid, n)| ((name.clone(), vrid), n))),
                Err(e) => debug!("{name}: reading XDP foreign counters: {e}"),
            }
        }
        for i in 0..self.told.len() {
            if let Some((slot, dp)) = self.instance_dp(i)
                && let Ok(n) = dp.accepted(slot)
            {
                counts.accepted.push((i, n));
            }
        }
        counts
    }

    /// The interfaces whose `EVENTS_LOST` grew since the last reading (their ring buffer
    /// overflowed), and whether any count changed at all (for the status).
    pub fn lost_events(&mut self) -> (Vec<String>, bool) {
        let (mut moved, mut changed) = (Vec::new(), false);
        for (name, dp) in &self.xdp {
            let lost = match dp.events_lost() {
                Ok(n) => n,
                Err(e) => {
                    debug!("{name}: reading XDP EVENTS_LOST: {e}");
                    continue;
                }
            };
            // The first reading is the baseline: maps adopted from an earlier run keep its count.
            match self.events_lost.insert(name.clone(), lost) {
                None => changed = true,
                Some(before) if lost > before => {
                    warn!(
                        "{name}: {} XDP peer events lost (ring buffer full, {lost} in all): resynchronising every instance on {name} from the kernel's peer records",
                        lost - before
                    );
                    moved.push(name.clone());
                    changed = true;
                }
                // A new map (the programs were attached again): a new count.
                Some(before) if lost < before => changed = true,
                Some(_) => {}
            }
        }
        (moved, changed)
    }

    /// Whether instance `i` runs on one of `interfaces`.
    pub fn on_any(&self, i: usize, interfaces: &[String]) -> bool {
        interfaces.contains(&self.told[i].interface)
    }

    /// Interface `name` went away (it came back under a new index): its programs went with it,
    /// and its pins are removed so the new one gets fresh ones.
    pub fn forget(&mut self, name: &str) {
        if let Some(dp) = self.xdp.remove(name) {
            close_all(HashMap::from([(name.to_owned(), dp)]));
        }
    }

    /// A clean exit: detaches the programs and removes their pins.
    pub fn close(&mut self) {
        close_all(std::mem::take(&mut self.xdp));
    }
}

/// Detaches and unpins every datapath (a clean exit, or interfaces no longer used).
fn close_all(datapaths: HashMap<String, XdpDatapath>) {
    for (name, dp) in datapaths {
        if let Err(e) = dp.close() {
            warn!("{name}: removing the XDP/TC programs and pins: {e}");
        }
    }
}

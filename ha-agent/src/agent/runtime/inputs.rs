//! The driver's reactions to each input of the loop: adverts, timers, tracker changes, links,
//! claims, and the counters read each second. Each finds the instances concerned and delivers
//! what changed to their state machines.

use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use super::{
    Runtime,
    board::{Live, Totals},
    debounce::Verdict,
    intake::Incoming,
    vips::Retried,
};
use crate::{
    net::{Claim, LinkEvent},
    notify::{
        Subject,
        fifo::{self, What},
    },
    status::TrackerStatus,
    track::{self, Tracks},
    vrrp::instance::{Event, State, TimerKind},
};

/// Timers due within this much of a wake-up are handled in it (tokio's timer resolution): a
/// Master_Down_Timer only to re-read the peer record, never to fire early.
const TIMER_COALESCE: Duration = Duration::from_millis(1);

/// How often a master re-reads its slot's kernel fence when no advert reached it.
const FENCE_READ_PERIOD: Duration = Duration::from_millis(100);

impl Runtime {
    pub(super) async fn on_advert(&mut self, inc: Incoming) {
        if let Some((i, event)) = self.intake.take(&inc, &self.datapaths) {
            self.deliver(i, inc.at, event).await;
        }
    }

    /// Delivers the advert instance `i`'s peer record holds (see [`super::intake::Intake`]).
    async fn deliver_peer(&mut self, i: usize, peer: ha_common::maps::PeerRecord) {
        let (seen, event) = self.intake.take_peer(i, peer, &self.datapaths);
        self.deliver(i, seen, event).await;
    }

    pub(super) async fn on_timers(&mut self) {
        let now = Instant::now();
        for (name, running) in self.debounce.due(now) {
            self.link_running(&name, running).await;
        }
        self.retry_vips(now).await;
        self.finish_handovers(now, false).await;
        // Adverts that fall due together go out together (one sendmmsg per socket).
        self.adverts.begin_batch();
        // One wake-up for every timer due within the millisecond: the timers index finds them
        // without a scan of every unit.
        let horizon = now + TIMER_COALESCE;
        let mut due: Vec<usize> = (self.deadlines.due(horizon).into_iter())
            .flat_map(|u| self.plan.units[u].members.iter().copied())
            .collect();
        due.sort_unstable();
        let adverts_at = self.aligned_adverts(&due, now);
        for i in due {
            // XDP: the Master_Down_Timer fires, but vrrp_rx may have seen the master since
            // (unchanged adverts send no event). Its last advert re-arms the timer from when
            // it arrived; only if that is due too does the timer really fire.
            if self.instance(i).state() == State::Backup
                && let Some(peer) = self.intake.fresh_peer(i, &self.datapaths)
            {
                self.deliver_peer(i, peer).await;
            }
            let at = match self.instance(i).timer() {
                Some((TimerKind::Advert, _)) if self.is_master(i) => match adverts_at {
                    Some(at) => at,
                    None => continue,
                },
                // The deadline, not the wake-up time: the timer does not drift.
                Some((_, at)) if at <= now => at,
                _ => continue,
            };
            self.deliver(i, at, Event::TimerFired).await;
            if self.fence_read_due(i, now) {
                self.reconcile_slot_fence(i, now).await;
            }
        }
        self.adverts.flush(&self.plan).await;
    }

    /// The deadline the masters' adverts among `due` fire with, when one of them is due at
    /// `now`: the latest of theirs (all within [`TIMER_COALESCE`]), so they go out in one
    /// `sendmmsg` and re-arm to one deadline. Instances that became master apart stay a tick
    /// apart otherwise (four to ten `sendmmsg` a tick at 255 VRIDs @ 0.01); aligned, each
    /// interval on the wire moves by at most [`TIMER_COALESCE`] once, then none.
    fn aligned_adverts(&self, due: &[usize], now: Instant) -> Option<Instant> {
        let adverts = due.iter().filter_map(|&i| match self.instance(i).timer() {
            Some((TimerKind::Advert, at)) if self.is_master(i) => Some(at),
            _ => None,
        });
        let (first, last) = adverts.fold(None, |acc: Option<(Instant, Instant)>, at| {
            Some(acc.map_or((at, at), |(lo, hi)| (lo.min(at), hi.max(at))))
        })?;
        (first <= now).then_some(last)
    }

    /// Whether master `i` reads its slot's kernel fence at this advert tick: after an advert
    /// reached it (what makes `vrrp_rx` fence), else once per [`FENCE_READ_PERIOD`]. One
    /// `bpf(2)` per master per tick was 25,500 a second at 255 VRIDs @ 0.01, a tenth of the
    /// master's CPU; a lost event is also caught by the resync of each second.
    fn fence_read_due(&mut self, i: usize, now: Instant) -> bool {
        self.intake.fence_read_due(i, now, FENCE_READ_PERIOD)
    }

    /// VIP adds that failed are retried while the instance is master; too many failures, or
    /// the end of the FAULT they caused, change its fault ([`super::vips::Vips::retry`]).
    async fn retry_vips(&mut self, now: Instant) {
        for i in 0..self.nodes.len() {
            if !self.vips.due(i, now) {
                continue;
            }
            let master = self.is_master(i);
            let ip = &self.plan.instances[i];
            let retried = self.vips.retry(i, ip, &self.facts, master, now).await;
            if retried != Retried::Nothing {
                self.recompute(i, now).await;
            }
        }
    }

    /// XDP: `vrrp_rx` sets `SLOT_FENCE[slot]` when an advert preempts a Master, and sends an
    /// event that makes us step down; if that event was lost (a full ring buffer) we would stay
    /// MASTER with our VIPs fenced. On each advert tick of a Master whose slot is fenced, the
    /// peer record decides: a preempting peer heard within the master-down interval is
    /// delivered (we step down, as its event would have made us), else the flag is cleared.
    async fn reconcile_slot_fence(&mut self, i: usize, now: Instant) {
        if !self.is_master(i) {
            return;
        }
        match self.datapaths.slot_fenced(i) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let name = &self.plan.instances[i].name;
                error!(instance = %name, "reading the XDP slot fence: {e}");
                return;
            }
        }
        let name = self.plan.instances[i].name.clone();
        let ip = &self.plan.instances[i];
        let last = self.intake.last_peer(i, &self.datapaths);
        let down = self.instance(i).master_down_interval();
        let ours = (
            self.instance(i).effective_priority(),
            ip.machine.primary_address,
        );
        if let Some((src, priority, seen)) = last {
            let preempts = priority > ours.0 || (priority == ours.0 && src > ours.1);
            if preempts && now.saturating_duration_since(seen) < down {
                warn!(
                    instance = %name,
                    "{}: XDP fenced this MASTER's VIPs on an advert from {src} (priority {priority}) whose event never reached the agent (ring buffer overflow?): stepping down as that advert requires",
                    ip.interface,
                );
                if let Some(peer) = self.datapaths.peer(i) {
                    self.deliver_peer(i, peer).await;
                }
                if !self.is_master(i) {
                    return;
                }
            }
        }
        let heard = match last {
            Some((src, priority, seen)) => format!(
                "the last advert was from {src} with priority {priority}, {:.1}s ago",
                now.saturating_duration_since(seen).as_secs_f64()
            ),
            None => "no advert was ever recorded".to_owned(),
        };
        let interface = &self.plan.instances[i].interface;
        let slot = self.datapaths.slot(i).unwrap_or_default();
        match self.datapaths.clear_slot_fence(i) {
            Ok(()) => warn!(
                instance = %name,
                "{interface}: XDP had fenced this MASTER's VIPs (SLOT_FENCE[{slot}]) but no higher-priority router was heard within the master-down interval ({:.1}s; {heard}): fence cleared, the VIPs answer again",
                down.as_secs_f64()
            ),
            Err(e) => error!(instance = %name, "clearing the XDP slot fence: {e}"),
        }
    }

    /// XDP: when `EVENTS_LOST` of an interface moved, the ring buffer overflowed and some peer
    /// changes never reached us: every instance on it is brought up to date from its peer
    /// record (as if each had an event), and each Master's slot fence is reconciled.
    pub(super) async fn resync_lost_events(&mut self) {
        let (moved, changed) = self.datapaths.lost_events();
        if changed {
            self.board.touch();
        }
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            if !self.datapaths.on_any(i, &moved) {
                continue;
            }
            if let Some(peer) = self.intake.fresh_peer(i, &self.datapaths) {
                self.deliver_peer(i, peer).await;
            }
            self.reconcile_slot_fence(i, now).await;
        }
    }

    /// Reads the XDP counters into the status: rejections, valid adverts, fence drops.
    pub(super) fn refresh_counters(&mut self) {
        let counts = self.datapaths.read_counters();
        self.intake.count_xdp(counts);
    }

    /// Writes (master, effective priority) of every instance whose values changed to the XDP
    /// maps: what `vrrp_rx` compares adverts with to fence in the kernel.
    pub(super) fn sync_states(&mut self) {
        for i in 0..self.nodes.len() {
            let inst = self.instance(i);
            let (master, priority) = (inst.state() == State::Master, inst.effective_priority());
            if let Err(e) = self.datapaths.set_instance(i, master, priority) {
                let name = &self.plan.instances[i].name;
                error!(instance = %name, "writing the XDP instance state: {e}");
            }
        }
    }

    /// Publishes the status now.
    pub(super) fn publish(&mut self) {
        let totals = Totals {
            datapath: self.datapaths.label(),
            rejected: self.intake.rejected.borrow().clone(),
            fence_drops: self.datapaths.fence_drops.clone(),
            foreign: self.intake.foreign.borrow().clone(),
            claims_dropped: self.intake.claims_dropped.get(),
            events_lost: self.datapaths.events_lost.clone(),
            virtual_servers: self.lvs.status(&mut self.datapaths, &self.plan),
        };
        let live: Vec<Live> = (0..self.nodes.len())
            .map(|i| {
                let (ip, inst) = (&self.plan.instances[i], self.instance(i));
                Live {
                    state: inst.state(),
                    effective: inst.effective_priority(),
                    master: if inst.state() == State::Master {
                        Some((ip.src, inst.effective_priority()))
                    } else {
                        inst.master()
                    },
                    fault: self.nodes[i].fault,
                    received: self.intake.heard(i).received,
                }
            })
            .collect();
        let claims = &self.claims;
        self.board
            .publish(&self.plan, live, |i, vip| claims.count(i, vip), totals);
    }

    pub(super) fn on_claim(&mut self, interface: &str, claim: Claim) {
        self.claim_during_handover(interface, &claim);
        let masters: Vec<bool> = (0..self.nodes.len()).map(|i| self.is_master(i)).collect();
        self.claims
            .on_claim(&self.plan, &self.facts, |i| masters[i], interface, claim);
    }

    /// Re-reads track_file values: a tracked file may have changed (only the watch task of the
    /// tracked files sends this).
    pub(super) async fn on_track_files(&mut self) {
        self.read_track_files().await;
        self.recompute_all().await;
    }

    /// Reads every track_file on the blocking pool (a slow disk or NFS never stalls the loop;
    /// `read_value` never waits on a FIFO). A file that cannot be read counts as 0, as
    /// keepalived; why is said once, when it starts.
    pub(super) async fn read_track_files(&mut self) {
        let files: Vec<(String, std::path::PathBuf)> = self
            .config
            .track_files
            .iter()
            .map(|f| (f.name.clone(), f.file.clone()))
            .collect();
        if files.is_empty() {
            return;
        }
        let Ok(read) = tokio::task::spawn_blocking(move || track::file::read_all(files)).await
        else {
            error!("track_file: the reader task failed; values unchanged");
            return;
        };
        for (name, path, value) in read {
            if let Some(why) = self.trackers.set_value(&name, value) {
                warn!(
                    "track_file {name}: {}: {why}; counted as 0 until it can be read",
                    path.display()
                );
            }
        }
    }

    /// Tracked processes' counts or states changed (only the process monitor task sends this).
    pub(super) async fn on_track_processes(&mut self, readings: &[track::process::Reading]) {
        self.trackers.set_processes(readings);
        self.recompute_all().await;
    }

    pub(super) async fn on_script(&mut self, update: crate::track::script::ScriptUpdate) {
        // From a script task a reload stopped: its index is the old configuration's (the new
        // task sends its first result anyway).
        if !self.intake.current(&update) {
            debug!("dropped a script result queued before the reload (the plan changed)");
            return;
        }
        self.trackers.set_script(update.index, update.up);
        self.recompute_all().await;
    }

    /// A link changed, or an address was added. Returns true when an interface we use came
    /// back under a new index (it was deleted and re-created): sockets, VIPs and XDP must move
    /// to it, which a reload does. Until a reload works (the interface has its addresses) every
    /// change of it asks again.
    pub(super) async fn on_link(&mut self, event: LinkEvent) -> bool {
        if !event.removed
            && self
                .facts
                .get(&event.name)
                .is_some_and(|f| f.index != event.ifindex)
        {
            let back = (event.name.clone(), event.ifindex);
            if self.rewiring.as_ref() == Some(&back) {
                debug!(
                    "interface {} (index {}) changed: retrying the reload",
                    event.name, event.ifindex
                );
            } else {
                info!(
                    "interface {} is back as index {}: reloading to use it",
                    event.name, event.ifindex
                );
                self.rewiring = Some(back);
            }
            self.datapaths.forget(&event.name);
            self.intake
                .read_rings(&self.datapaths.attached(), Vec::new());
            return true;
        }
        if self.our_vmac(&event.name) {
            // The one in use (not one this run replaced at start).
            let in_use = self.facts.get(&event.name).map(|f| f.index);
            if event.removed && in_use == Some(event.ifindex) {
                self.vmac_deleted(&event.name).await;
            }
            return false;
        }
        if event.address.is_some() {
            for i in self.check_sources(Some(&event.name)).await {
                self.recompute(i, Instant::now()).await;
            }
            return false;
        }
        let running = event.running && !event.removed;
        match self.debounce.observe(&event.name, running, Instant::now()) {
            Verdict::Act(running) => self.link_running(&event.name, running).await,
            Verdict::Wait(delay) => info!(
                "interface {} is {}: acted on if it stays so for {delay:?} (interface_up_down_delays)",
                event.name,
                if running { "up" } else { "down" }
            ),
            Verdict::Nothing => {}
        }
        false
    }

    /// Link `name`'s change, acted on: at once, or once its delay has passed.
    async fn link_running(&mut self, name: &str, running: bool) {
        if !self.trackers.set_running(name, running) {
            return;
        }
        info!(
            "interface {} is {}",
            name,
            if running { "up" } else { "down" }
        );
        for i in 0..self.nodes.len() {
            if self.plan.instances[i].interface == name {
                self.nodes[i].link_running = running;
            }
        }
        self.recompute_all().await;
    }

    /// keepalived's `track_src_ip`: reads whether each tracking instance's source address is on
    /// its interface (all, or those on `interface`); returns the instances whose answer changed.
    pub(super) async fn check_sources(&mut self, interface: Option<&str>) -> Vec<usize> {
        let mut changed = Vec::new();
        for i in 0..self.nodes.len() {
            let ip = &self.plan.instances[i];
            let Some(src) = ip.track_src else { continue };
            if interface.is_some_and(|name| name != ip.interface) {
                continue;
            }
            let Some(f) = self.facts.get(&ip.interface) else {
                continue;
            };
            let Some(present) = self.vips.has_address(f.index, src).await else {
                continue;
            };
            if self.nodes[i].src_missing == present {
                self.nodes[i].src_missing = !present;
                if present {
                    info!(
                        "{}: track_src_ip: {src} is back on {}",
                        ip.name, ip.interface
                    );
                } else {
                    warn!(
                        "{}: track_src_ip: {src} is not on {}: FAULT",
                        ip.name, ip.interface
                    );
                }
                changed.push(i);
            }
        }
        changed
    }

    /// keepalived re-creates a deleted macvlan of its own: the instances using it fault until
    /// the new one's index moves sockets and VIPs to it (the reload of [`Runtime::on_link`]).
    async fn vmac_deleted(&mut self, name: &str) {
        warn!("use_vmac: macvlan {name} was deleted: re-creating it");
        for i in 0..self.nodes.len() {
            let specs = self.plan.instances[i].vmac_specs(&self.facts);
            if specs.iter().any(|s| s.name == name) {
                self.nodes[i].link_running = false;
            }
        }
        self.recompute_all().await;
        // The facts keep the old index, so that the new one's link event asks for the reload.
        let mut facts = self.facts.clone();
        if let Err(e) = super::vmacs::ensure(&self.plan, &mut facts).await {
            error!("use_vmac: re-creating {name}: {e:#}");
        }
    }

    /// `name` is a macvlan of the plan's (`use_vmac`, `use_vmac_addr`).
    fn our_vmac(&self, name: &str) -> bool {
        (self.plan.instances.iter())
            .any(|ip| ip.vmac_specs(&self.facts).iter().any(|s| s.name == name))
    }

    pub(super) async fn recompute_all(&mut self) {
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            self.recompute(i, now).await;
        }
    }

    /// Recomputes instance `i`'s fault and effective priority from its trackers, and tells its
    /// state machine what changed.
    pub(super) async fn recompute(&mut self, i: usize, now: Instant) {
        let ip = &self.plan.instances[i];
        let own = Tracks {
            interfaces: &ip.track_interfaces,
            scripts: &ip.track_scripts,
            files: &ip.track_files,
            processes: &ip.track_processes,
        };
        let group = self.plan.units[self.nodes[i].unit]
            .group
            .as_ref()
            .map(|g| Tracks {
                interfaces: &g.track_interfaces,
                scripts: &g.track_scripts,
                files: &g.track_files,
                processes: &g.track_processes,
            })
            .unwrap_or_default();
        let eval = self
            .trackers
            .evaluate(ip.machine.priority, own, &ip.vip_interfaces, group);
        let mut shown: Vec<TrackerStatus> = eval
            .shown
            .into_iter()
            .map(|s| TrackerStatus {
                kind: s.kind,
                name: s.name,
                up: s.up,
                weight: s.weight,
                count: s.count,
            })
            .collect();
        // A VIP the kernel would not add: FAULT, shown as a tracker that is down.
        let vip_fault = self.vips.fault(i).map(str::to_owned);
        if let Some(why) = &vip_fault {
            shown.push(TrackerStatus {
                kind: "vip",
                name: format!("{why} (cannot be added)"),
                up: false,
                weight: 0,
                count: None,
            });
        }
        if let (Some(src), true) = (ip.track_src, self.nodes[i].src_missing) {
            shown.push(TrackerStatus {
                kind: "src_ip",
                name: format!("{src} on {}", ip.interface),
                up: false,
                weight: 0,
                count: None,
            });
        }
        if let Some(why) = ip.config_fault {
            shown.push(TrackerStatus {
                kind: "config",
                name: why.to_owned(),
                up: false,
                weight: 0,
                count: None,
            });
        }
        self.board.counters(i).trackers = shown;
        // keepalived's dont_track_primary: the instance's own link does not count.
        let fault = eval.fault
            || ip.config_fault.is_some()
            || self.nodes[i].src_missing
            || (!self.nodes[i].link_running && !ip.dont_track_primary)
            || vip_fault.is_some();
        if fault != self.nodes[i].fault {
            self.nodes[i].fault = fault;
            let event = if fault {
                Event::InterfaceDown
            } else {
                Event::InterfaceUp
            };
            self.deliver(i, now, event).await;
        }
        if eval.priority != self.nodes[i].priority {
            self.nodes[i].priority = eval.priority;
            info!(instance = %self.plan.instances[i].name, "effective priority {}", eval.priority);
            self.notify_priority_change(i, eval.priority);
            self.deliver(
                i,
                now,
                Event::PriorityChanged {
                    effective_priority: eval.priority,
                },
            )
            .await;
        }
    }

    /// `notify_priority_changes` (the instance's, else its sync group's, else global
    /// `vrrp_notify_priority_changes`): the FIFO hears the new effective priority, with the
    /// state it is in before the change takes effect (keepalived vrrp_track.c).
    fn notify_priority_change(&self, i: usize, priority: u8) {
        let ip = &self.plan.instances[i];
        let group = self.plan.units[self.nodes[i].unit].group.as_ref();
        let wanted = ip
            .notify
            .priority_changes
            .or_else(|| group?.notify.priority_changes);
        if wanted.unwrap_or(self.config.global.vrrp_notify_priority_changes) {
            let what = What::PriorityChange {
                master: self.is_master(i),
            };
            let line = fifo::line(Subject::Instance, &ip.name, what, priority);
            self.fifos.write(&line);
        }
    }
}

/// The `virtual_server` component's parts of the runtime, borrowed apart.
macro_rules! lvs_parts {
    ($rt:expr) => {{
        let Runtime {
            lvs,
            datapaths,
            plan,
            notify_users,
            run_as,
            ..
        } = $rt;
        let env = super::lvs::Env {
            datapaths,
            plan,
            users: notify_users,
            run_as: *run_as,
        };
        (lvs, env)
    }};
}

/// The `virtual_server` component's inputs (`lvs.rs`).
impl Runtime {
    /// Sets the services up (after the datapath is attached, before the instances start).
    pub(super) async fn start_lvs(&mut self) -> anyhow::Result<()> {
        let label = self.datapaths.label();
        self.lvs.start(&self.config, &self.plan, label).await?;
        let (lvs, env) = lvs_parts!(self);
        lvs.set_owner(&[], false, env);
        Ok(())
    }

    pub(super) fn on_lvs(&mut self, input: super::lvs::Input) {
        let (lvs, env) = lvs_parts!(self);
        lvs.on_input(input, env);
        self.board.touch();
    }

    /// Instance `i` became (left) MASTER: its VIPs' services (`ha_suspend`).
    pub(super) fn lvs_owner(&mut self, i: usize, master: bool) {
        let addrs: Vec<std::net::IpAddr> = self.plan.instances[i]
            .vips
            .iter()
            .map(|v| v.vip.addr)
            .collect();
        let (lvs, env) = lvs_parts!(self);
        lvs.set_owner(&addrs, master, env);
    }

    /// After a reload: the manager keeps what stays; the masters of service addresses again.
    pub(super) async fn reload_lvs(&mut self) {
        let label = self.datapaths.label();
        let masters: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_master(i))
            .collect();
        let config = &self.config;
        let (lvs, env) = lvs_parts!(self);
        let plan = env.plan;
        // The datapaths were attached again (some maybe afresh): everything is written again.
        lvs.datapath_replaced();
        lvs.reload(config, plan, label, env).await;
        for i in masters {
            self.lvs_owner(i, true);
        }
    }

    pub(super) fn stop_lvs(&mut self) {
        let (lvs, env) = lvs_parts!(self);
        lvs.stop(env);
    }
}

//! A configuration's life in the driver: prepared (state machines, nothing opened), its sockets
//! opened and tasks started, its units started; a reload that keeps what did not change; and the
//! shutdown that resigns and waits for a successor.

use std::{
    collections::HashMap,
    net::IpAddr,
    rc::Rc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{
    Node, Runtime, Unit, adverts, adverts::Adverts, board::Board, claims::Claims, datapaths,
    datapaths::Datapaths, garp, garp::Garp, intake, intake::Channels, intake::Incoming,
    intake::Intake, reload, sleep_until, vips::Vips, vmacs,
};
use crate::{
    agent::preflight::Checked,
    config::Config,
    control::{events, logging},
    datapath::xdp::XdpDatapath,
    net::{AdvertSender, Claim, GarpSender, Netlink},
    notify::{Subject, fifo},
    track::{self, Trackers},
    vrrp::{
        instance::{Event, Instance},
        packet::Family,
        sync_group::SyncGroup,
    },
};

/// The longest a stopping agent waits for another router to take over the instances it resigned.
const HANDOVER_WAIT_MAX: Duration = Duration::from_secs(2);

/// What a configuration's tasks need and can fail to open: opened before a reload stops or
/// swaps anything ([`Runtime::open_io`]), started by [`Runtime::start_io`], which cannot fail.
pub(super) struct Io {
    listeners: Vec<intake::Listening>,
    /// One per instance, in plan order.
    senders: Vec<Rc<AdvertSender>>,
    garp: HashMap<String, Rc<GarpSender>>,
    /// The process events connector and the processes running, when a process is tracked.
    processes: Option<(track::process::Connector, track::process::Table)>,
}

impl Runtime {
    /// The runtime of a configuration that passed the checks (`checked`, from
    /// [`crate::agent::preflight`]): state machines and components, nothing opened yet.
    /// `previous` supplies the status channel and counters on reload.
    pub(super) fn prepare(
        config: Config,
        checked: Checked,
        netlink: Netlink,
        config_file: &std::path::Path,
        datapath: datapaths::Options,
        channels: Channels,
        previous: Option<&Runtime>,
    ) -> Result<Runtime> {
        let Checked {
            mut facts,
            plan,
            run_as,
            scripts,
            notify_users,
            ..
        } = checked;
        let links = &config.global.link_delays;
        let debounce =
            super::debounce::LinkDebounce::reload(previous.map(|p| &p.debounce), links, &mut facts);
        let mut nodes: Vec<Option<Node>> = (0..plan.instances.len()).map(|_| None).collect();
        let mut units = Vec::new();
        for (u, unit) in plan.units.iter().enumerate() {
            let mut members = Vec::new();
            for (m, &i) in unit.members.iter().enumerate() {
                let ip = &plan.instances[i];
                members.push(
                    Instance::new(ip.machine.clone())
                        .map_err(|e| anyhow!("vrrp_instance {}: {e}", ip.name))?,
                );
                nodes[i] = Some(Node {
                    unit: u,
                    member: m,
                    link_running: facts.get(&ip.interface).is_some_and(|f| f.running),
                    src_missing: false,
                    fault: false,
                    priority: ip.machine.priority,
                });
            }
            units.push(match unit.group {
                Some(_) => Unit::Group(SyncGroup::new(members)),
                None => Unit::Single(members.pop().expect("a unit has a member")),
            });
        }
        let n = plan.instances.len();
        let running = facts.iter().map(|(n, f)| (n.clone(), f.running)).collect();
        let generation = previous.map_or(0, |p| p.intake.generation() + 1);
        Ok(Runtime {
            trackers: Trackers::new(running, &config.scripts),
            datapaths: Datapaths::new(
                datapath,
                &plan,
                &facts,
                previous.map(|p| &p.datapaths),
                super::lvs::balanced_interfaces(&config, &plan),
            ),
            vips: Vips::new(netlink, n),
            adverts: Adverts::new(n),
            garp: Garp::new(n),
            handovers: super::handover::Handovers::new(),
            debounce,
            claims: Claims::new(n),
            intake: Intake::new(channels, n, generation, previous.map(|p| &p.intake)),
            board: Board::new(config_file, n, previous.map(|p| &p.board)),
            config,
            plan,
            deadlines: super::deadlines::Deadlines::new(units.len()),
            units,
            nodes: nodes
                .into_iter()
                .map(|n| n.expect("every instance is in a unit"))
                .collect(),
            facts,
            run_as,
            notify_users,
            fifos: Default::default(),
            deleting: Vec::new(),
            scripts,
            config_file: config_file.to_owned(),
            rewiring: None,
            lvs: Default::default(),
        })
    }

    /// Attaches the datapath (reusing `existing` attachments) with each instance's state.
    pub(super) fn attach(&mut self, existing: HashMap<String, XdpDatapath>) -> Result<()> {
        let states: Vec<(bool, u8)> = (0..self.nodes.len())
            .map(|i| (self.is_master(i), self.instance(i).effective_priority()))
            .collect();
        let attached = self.datapaths.attach(
            existing,
            &self.plan,
            &self.facts,
            &self.config.global,
            &states,
        );
        // Readers of interfaces no longer attached stop even when the attach failed.
        let (rings, result) = match attached {
            Ok(fresh) => (fresh, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        };
        self.intake.read_rings(&self.datapaths.attached(), rings);
        result
    }

    /// Opens what the tasks need and can fail (receive sockets and group memberships, advert
    /// and GARP sockets), then writes the track files' `init_file`s. Nothing is started or
    /// swapped: on an error what was opened is closed and the host is as it was.
    pub(super) fn open_io(&self) -> Result<Io> {
        let listeners = intake::open_listeners(&self.plan)?;
        let senders = adverts::open(&self.plan)?;
        let garp = garp::open(&self.plan, &self.facts)?;
        crate::track::file::write_inits(&self.config.track_files)?;
        Ok(Io {
            listeners,
            senders,
            garp,
            processes: self.open_track_processes()?,
        })
    }

    /// The process events connector, subscribed, and the processes running now, when an
    /// instance or a sync group tracks a process.
    fn open_track_processes(
        &self,
    ) -> Result<Option<(track::process::Connector, track::process::Table)>> {
        let uses = |name: &str, t: &[crate::config::Tracker]| t.iter().any(|t| t.name == name);
        let tracked = |name: &str| {
            let instances = &self.plan.instances;
            instances.iter().any(|i| uses(name, &i.track_processes))
                || (self.config.sync_groups.iter()).any(|g| uses(name, &g.track_processes))
        };
        let used: Vec<_> = (self.config.track_processes.iter())
            .filter(|p| tracked(&p.name))
            .cloned()
            .collect();
        track::process::open(&used, &self.config.global)
    }

    /// Starts the receive, claim, script and track-file tasks on what [`Runtime::open_io`]
    /// opened, for the datapath attached now. Cannot fail.
    pub(super) fn start_io(&mut self, io: Io) {
        self.adverts.install(io.senders);
        self.garp.install(io.garp);
        let garp_interfaces = self.garp.interfaces().cloned().collect();
        if let Some((connector, table)) = io.processes {
            self.trackers.set_processes(&table.readings());
            self.intake.track_processes(connector, table);
        }
        self.intake.start(
            io.listeners,
            &mut self.datapaths,
            &self.plan,
            &self.config,
            garp_interfaces,
            self.scripts.clone(),
        );
        // keepalived sets promote_secondaries so removing one VIP keeps the others.
        for (name, family) in self.plan.listeners() {
            if family == Family::Ipv4 {
                let path = format!("/proc/sys/net/ipv4/conf/{name}/promote_secondaries");
                if let Err(e) = std::fs::write(&path, "1") {
                    warn!("setting {path}: {e}");
                }
            }
        }
    }

    /// keepalived's `vrrp_startup_delay`, at the daemon's start only: no backup takes over
    /// before the delay plus its Master_Down_Interval.
    pub(super) fn delay_start(&mut self) {
        let delay = self.config.global.vrrp_startup_delay;
        if delay.is_zero() {
            return;
        }
        info!(
            "delaying startup for {:.3} s (vrrp_startup_delay)",
            delay.as_secs_f64()
        );
        let until = Instant::now() + delay;
        for unit in &mut self.units {
            match unit {
                Unit::Single(m) => m.delay_start(until),
                Unit::Group(g) => g.delay_start(until),
            }
        }
    }

    /// Startup for every unit but the `kept` ones (which carry on their state after a reload).
    pub(super) async fn startup(&mut self, kept: &[usize]) {
        let now = Instant::now();
        for u in (0..self.units.len()).filter(|u| !kept.contains(u)) {
            self.deliver_unit(u, now, Event::Startup).await;
        }
        // Trackers known at start (interfaces down, init_fail scripts, track files, sources).
        self.read_track_files().await;
        self.check_sources(None).await;
        self.recompute_all().await;
    }

    /// Shuts every unit down; returns the instances that were master (they sent priority 0)
    /// and when.
    pub(super) async fn shutdown(&mut self) -> Vec<(usize, Instant)> {
        info!("shutting down: resigning mastership (priority 0), VIPs handed over");
        let now = Instant::now();
        let resigned = (0..self.nodes.len())
            .filter(|&i| self.is_master(i))
            .map(|i| (i, now))
            .collect();
        for u in 0..self.units.len() {
            self.shutdown_unit(u).await;
        }
        resigned
    }

    /// Shutdown of one unit: priority 0 from a master, VIPs removed, notify STOP.
    async fn shutdown_unit(&mut self, u: usize) {
        self.deliver_unit(u, Instant::now(), Event::Shutdown).await;
        for &i in &self.plan.units[u].members {
            self.garp.stop(i);
        }
    }

    /// After shutdown: waits until another router advertises (priority > 0) for each instance
    /// that resigned, at most one of its advert intervals (capped at [`HANDOVER_WAIT_MAX`]),
    /// and logs who took over and how long after our priority-0 advert. A backup takes over
    /// Skew_Time after our priority 0, always less than our advert interval, so a successor is
    /// heard within the wait, and the agent exits within one advert interval of resigning.
    /// Meanwhile the planned handovers ([`super::handover`]) end: the quiet VIPs are fenced and
    /// removed a grace after the successor is heard (bounded), and only then does it return.
    pub(super) async fn await_handover(
        &mut self,
        mut waiting: Vec<(usize, Instant)>,
        adverts: &mut mpsc::UnboundedReceiver<Incoming>,
        claims: &mut mpsc::Receiver<(Rc<str>, Claim)>,
    ) {
        let Some(deadline) = waiting
            .iter()
            .map(|&(i, at)| at + self.handover_wait(i))
            .max()
        else {
            return;
        };
        // XDP sends no event for an advert that changes nothing it knows of (the successor
        // may have been master moments ago): the peer records are read every millisecond too.
        let mut poll = tokio::time::interval(Duration::from_millis(1));
        while !waiting.is_empty() || !self.handovers.is_empty() {
            let wake = match (waiting.is_empty(), self.handovers.next_deadline()) {
                (false, Some(at)) => at.min(deadline),
                (false, None) => deadline,
                (true, at) => at.unwrap_or(deadline),
            };
            // Quiet VIPs are fenced when the agent looks dead: it is alive until it exits.
            self.datapaths.heartbeat();
            let heard: Vec<(usize, IpAddr, u8, Instant)> = tokio::select! {
                biased;
                inc = adverts.recv() => {
                    let Some(inc) = inc else { break };
                    self.intake.peek(&inc, &self.datapaths).into_iter().collect()
                }
                _ = poll.tick() => waiting
                    .iter()
                    .filter_map(|&(i, _)| {
                        let (src, priority, seen) = self.intake.last_peer(i, &self.datapaths)?;
                        Some((i, src, priority, seen))
                    })
                    .collect(),
                Some((interface, claim)) = claims.recv() => {
                    self.claim_during_handover(&interface, &claim);
                    continue;
                }
                () = sleep_until(Some(wake)) => {
                    let now = Instant::now();
                    self.finish_handovers(now, false).await;
                    if now >= deadline {
                        self.warn_unheard(&waiting);
                        waiting.clear();
                    }
                    continue;
                }
            };
            for (i, src, priority, seen) in heard {
                if priority > 0 {
                    self.handovers.heard(i, seen);
                }
                let Some(pos) = waiting
                    .iter()
                    .position(|&(w, at)| w == i && priority > 0 && seen > at)
                else {
                    continue;
                };
                let (i, at) = waiting.swap_remove(pos);
                let after = seen.saturating_duration_since(at);
                events::handed_over(&self.plan.instances[i].name, src, priority, after);
            }
        }
    }

    fn warn_unheard(&self, waiting: &[(usize, Instant)]) {
        for &(i, _) in waiting {
            warn!(
                instance = %self.plan.instances[i].name,
                "no other router advertised within {} ms of our priority-0 advert: its VIPs \
                 have no master until one does",
                self.handover_wait(i).as_millis()
            );
        }
    }

    /// How long a resigned instance `i` waits for its successor's advert.
    fn handover_wait(&self, i: usize) -> Duration {
        self.instance(i).advert_interval().min(HANDOVER_WAIT_MAX)
    }

    /// SIGHUP: re-reads the configuration. Units (an instance, or a sync group with its
    /// members) whose configuration did not change keep their state, timers and VIPs; the
    /// others are shut down (priority 0, VIPs removed) and the new ones started. A
    /// configuration that does not load is refused and the running one stays.
    pub(super) async fn reload(mut self) -> Runtime {
        info!("SIGHUP: reloading {}", self.config_file.display());
        let config = match crate::config::load_with(&self.config_file, &self.config.read_options) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    warn!("{w}");
                }
                loaded.config
            }
            Err(e) => {
                logging::error_lines("reload refused, the running configuration stays: ", &e);
                return self;
            }
        };
        // The checks of `run` and `check-config`, except that a configuration without
        // instances is taken: it stops them all.
        // Everything that can fail (sockets, init files) is opened here, before any unit is
        // stopped: a reload is refused whole, with the running configuration untouched.
        let prepared = async {
            // keepalived: "Cannot change network namespace at reload - please restart".
            let ns = |c: &Config| c.global.net_namespace.as_ref().map(|n| n.name.clone());
            if ns(&config) != ns(&self.config) {
                anyhow::bail!("net_namespace cannot change at reload: restart the agent");
            }
            let netlink = Netlink::new().context("opening rtnetlink")?;
            let checked = crate::agent::preflight::check(&config, &netlink).await?;
            let mut new = Runtime::prepare(
                config,
                checked,
                netlink,
                &self.config_file,
                self.datapaths.options().clone(),
                self.intake.channels().clone(),
                Some(&self),
            )?;
            vmacs::ensure(&new.plan, &mut new.facts).await?;
            let io = new.open_io()?;
            anyhow::Ok((new, io))
        };
        let (mut new, io) = match prepared.await {
            Ok(rt) => rt,
            Err(e) => {
                match &self.rewiring {
                    Some((name, index)) => warn!(
                        "reload deferred: interface {name} is back as index {index} but cannot be \
                         used yet ({e:#}); retrying at its next link or address change"
                    ),
                    None => logging::error_lines(
                        "reload refused, the running configuration stays: ",
                        format!("{e:#}"),
                    ),
                }
                return self;
            }
        };
        // Parsing and opening took this loop turn so far: `vip_fence` hears the loop is alive
        // (its timeout is down_timer_adverts advert intervals, 30 ms at advert_int 0.01).
        self.datapaths.heartbeat();
        let pairs = reload::pair_units(&self.plan, &new.plan);
        // Handovers are kept per instance index, which a reload renumbers: end them now.
        self.finish_handovers(Instant::now(), true).await;
        // Units that go away or change: shut down, and their VIPs no longer fenced (not ours).
        for ou in (0..self.units.len()).filter(|ou| !pairs.iter().any(|p| p.1 == *ou)) {
            match reload::unit_restart_reason(&self.plan, ou, &new.plan) {
                Some(why) => info!("reload: restarting {} ({why})", self.unit_name(ou)),
                None => info!("reload: stopping {}", self.unit_name(ou)),
            }
            // Members the new configuration does not name are deleted, not stopped.
            let plan = &self.plan;
            self.deleting = plan.units[ou].members.clone();
            let named = |i: usize| {
                new.plan
                    .instances
                    .iter()
                    .any(|n| n.name == plan.instances[i].name)
            };
            self.deleting.retain(|&i| !named(i));
            self.shutdown_unit(ou).await;
            // A stopped unit is restarted or gone: its VIPs leave now, as before handovers.
            self.finish_handovers(Instant::now(), true).await;
            self.deleting.clear();
            for &i in &self.plan.units[ou].members {
                self.datapaths.release(&self.plan.instances[i]);
            }
        }
        let scope = [(&self.plan, &self.facts), (&new.plan, &new.facts)];
        vmacs::remove_unused(Some(&new.plan), &scope).await;
        self.intake.stop();
        let changed = self.carry_over(&mut new, &pairs);
        let kept_units: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let kept_names: Vec<String> = kept_units
            .iter()
            .flat_map(|&u| {
                new.plan.units[u]
                    .members
                    .iter()
                    .map(|&i| new.plan.instances[i].name.clone())
            })
            .collect();
        let started: Vec<&_> = new
            .plan
            .instances
            .iter()
            .filter(|ip| !kept_names.contains(&ip.name))
            .collect();
        new.vips
            .report_foreign(&started, &new.plan, &new.facts, false)
            .await;
        new.vips
            .remove_stale(&new.plan, &new.facts, &kept_names)
            .await;
        let existing = self.datapaths.hand_over();
        self.intake.hand_over_readers(&mut new.intake);
        if let Err(e) = new.attach(existing) {
            error!("reload: {e:#}");
        }
        new.start_io(io);
        new.apply_in_place(&changed).await;
        new.lvs = std::mem::take(&mut self.lvs);
        new.reload_lvs().await;
        new.fifos = std::mem::take(&mut self.fifos);
        new.open_fifos().await;
        drop(self);
        new.startup(&kept_units).await;
        if new.config.global.fifo_write_vrrp_states_on_reload {
            new.write_fifo_states(&kept_units);
        }
        info!(
            "reload done: {} unit(s) kept ({} instance(s) changed in place), {} started",
            kept_units.len(),
            changed.len(),
            new.units.len() - kept_units.len()
        );
        new
    }

    /// Moves the state machines and the components' per-instance state of the kept units
    /// (`pairs`: new unit, old unit) into `new`, and the trackers' readings. A kept instance
    /// whose plan changed takes the new one in place ([`Instance::reconfigure`], one log line
    /// saying what changed); returned with its old plan for [`Runtime::apply_in_place`].
    fn carry_over(
        &mut self,
        new: &mut Runtime,
        pairs: &[(usize, usize)],
    ) -> Vec<(usize, crate::agent::plan::InstancePlan)> {
        let mut changed = Vec::new();
        let now = Instant::now();
        let mut old_units: Vec<Option<Unit>> = std::mem::take(&mut self.units)
            .into_iter()
            .map(Some)
            .collect();
        for &(nu, ou) in pairs {
            new.units[nu] = old_units[ou].take().expect("each old unit is paired once");
        }
        for (ni, oi, m) in reload::pair_instances(&self.plan, &new.plan, pairs) {
            let old = &self.nodes[oi];
            new.nodes[ni] = Node {
                unit: new.nodes[ni].unit,
                member: m,
                // The interface may be a new one (re-created): its carrier as read now.
                link_running: new.nodes[ni].link_running,
                src_missing: old.src_missing,
                fault: old.fault,
                priority: old.priority,
            };
            self.vips.carry(oi, &mut new.vips, ni);
            let (before, after) = (&self.plan.instances[oi], &new.plan.instances[ni]);
            if before != after {
                let what = reload::changes(before, after).join("; ");
                info!(instance = %after.name, "reload: {what} (applied in place)");
                let (name, machine) = (after.name.clone(), after.machine.clone());
                if let Err(e) = new.instance_mut(ni).reconfigure(now, machine) {
                    error!(instance = %name, "reload: {e}");
                }
                changed.push((ni, before.clone()));
            } else {
                // Encoded from an unchanged plan: still the adverts to send.
                self.adverts.carry(oi, &mut new.adverts, ni);
            }
            self.garp.carry(oi, &mut new.garp, ni);
            self.claims.carry(oi, &mut new.claims, ni);
            self.intake.carry(oi, &mut new.intake, ni);
            self.board.carry(oi, &mut new.board, ni);
        }
        // After `reconfigure`, which may re-arm a kept instance's timer.
        for &(nu, _) in pairs {
            new.deadlines.set(nu, new.unit_timeout(nu));
        }
        // Scripts that did not change keep their state.
        new.trackers.carry_over(std::mem::take(&mut self.trackers));
        changed
    }

    /// The host's side of the in-place changes (`changed`: instance, old plan), after the
    /// datapath was told the new VIPs: VIPs, routes and rules no longer named removed, new
    /// ones added on a master, which announces itself again when its VIPs or GARP settings
    /// changed.
    async fn apply_in_place(&mut self, changed: &[(usize, crate::agent::plan::InstancePlan)]) {
        for (i, old) in changed {
            let i = *i;
            let master = self.is_master(i);
            let ip = &self.plan.instances[i];
            let added = (self.vips)
                .apply_change(i, old, ip, master, &self.plan, &self.facts)
                .await;
            let garp = |p: &crate::agent::plan::InstancePlan| {
                (
                    p.garp_delay,
                    p.garp_repeat,
                    p.garp_refresh,
                    p.garp_refresh_repeat,
                )
            };
            if master && (added || garp(old) != garp(ip)) {
                self.garp.announce(i, ip, &self.facts);
            }
        }
    }

    /// `fifo_write_vrrp_states_on_reload` (keepalived vrrp_scheduler.c): the kept units'
    /// states written again, the groups' first, as keepalived.
    fn write_fifo_states(&self, kept: &[usize]) {
        for &u in kept {
            if let (Some(g), Unit::Group(group)) = (&self.plan.units[u].group, &self.units[u]) {
                let what = fifo::What::State(group.state());
                self.fifos
                    .write(&fifo::line(Subject::Group, &g.name, what, 0));
            }
        }
        for &u in kept {
            for &i in &self.plan.units[u].members {
                let inst = self.instance(i);
                let what = fifo::What::State(inst.state());
                let name = &self.plan.instances[i].name;
                let line = fifo::line(Subject::Instance, name, what, inst.effective_priority());
                self.fifos.write(&line);
            }
        }
    }

    /// A name for log lines: the sync group's, or the instance's.
    fn unit_name(&self, u: usize) -> String {
        match &self.plan.units[u].group {
            Some(g) => format!("sync group {}", g.name),
            None => format!(
                "vrrp_instance {}",
                self.plan.instances[self.plan.units[u].members[0]].name
            ),
        }
    }
}

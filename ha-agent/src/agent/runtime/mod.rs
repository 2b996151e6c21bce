//! The event loop: one thread, one task per receive socket and per tracker, and the loop below
//! that owns every state machine and performs their actions in order.
//!
//! The loop ([`run`]) waits for the next input and hands it on; [`Runtime::execute`] maps each
//! [`Action`] of a state machine to one call on one component. The components own their state
//! and import nothing from here:
//!
//! - [`intake`]: the receive sockets' tasks, the XDP ring-buffer readers, the claim watchers, the
//!   tracker tasks and their channels; the only reader of the kernel's peer records;
//! - [`datapaths`]: the XDP/TC handles and the mirror of what the kernel was told per instance;
//! - [`vips`]: VIPs and routes on the host (netlink), their retries, stale and foreign addresses;
//! - [`adverts`]: the advert sockets, the encoded-advert cache, batching;
//! - [`debounce`]: `interface_up_down_delays`, link changes held for their delay;
//! - [`garp`]: gratuitous ARP/NA schedules and the reassertion rate limit;
//! - [`handover`]: planned step-downs whose VIPs stay, quiet, until the successor's GARP;
//! - [`claims`]: other hosts claiming our VIPs;
//! - [`board`]: the published status and its counters;
//! - [`lvs`]: the `virtual_server`s: their manager, health checkers and load balancer maps;
//! - [`reload`]: which units a reload keeps;
//! - trackers: [`crate::track::Trackers`].
//!
//! The driver's reactions to each input are in `inputs.rs`; start, reload and stop in
//! `lifecycle.rs`.

mod adverts;
mod board;
mod claims;
mod datapaths;
mod deadlines;
mod debounce;
mod garp;
mod handover;
mod igmp;
mod inputs;
mod intake;
mod lifecycle;
mod lvs;
mod reload;
mod start_stop;
mod statics;
mod vips;
mod vmacs;

use std::{collections::HashMap, time::Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use self::{
    adverts::Adverts,
    board::Board,
    claims::Claims,
    datapaths::Datapaths,
    deadlines::Deadlines,
    debounce::LinkDebounce,
    garp::Garp,
    intake::{ADVERT_DRAIN, CLAIM_BATCH, COUNTERS_PERIOD, Channels, Intake},
    vips::Vips,
};
use super::{
    RunOptions,
    plan::{IfFacts, Plan},
    preflight::ScriptJob,
};
use crate::{
    config::Config,
    control::events,
    net::LinkWatch,
    notify::{
        self, Subject,
        fifo::{self, Fifos, What},
    },
    track::{Trackers, script::RunAs},
    vrrp::{
        instance::{Action, Cause, Event, Instance, State},
        sync_group::{GroupAction, SyncGroup},
    },
};

enum Unit {
    Single(Instance),
    Group(SyncGroup),
}

/// Per-instance driver state beside the state machine.
struct Node {
    unit: usize,
    member: usize,
    /// The interface is running (carrier), as a tracker of the instance itself.
    link_running: bool,
    /// keepalived's `track_src_ip`: the source address is not on the interface.
    src_missing: bool,
    /// The fault and effective priority last told to the state machine.
    fault: bool,
    priority: u8,
}

struct Runtime {
    config: Config,
    plan: Plan,
    units: Vec<Unit>,
    /// The units' timers by deadline (updated at each event a unit is handed).
    deadlines: Deadlines,
    nodes: Vec<Node>,
    facts: HashMap<String, IfFacts>,
    trackers: Trackers,
    datapaths: Datapaths,
    vips: Vips,
    adverts: Adverts,
    garp: Garp,
    handovers: handover::Handovers,
    debounce: LinkDebounce,
    claims: Claims,
    intake: Intake,
    board: Board,
    run_as: Option<RunAs>,
    /// Who the notify lines that name a user run as.
    notify_users: notify::Users,
    /// The notify FIFOs (`notify_fifo`, `vrrp_notify_fifo`), opened once the host is ours.
    fifos: Fifos,
    /// Instances a reload is removing: their STOP is keepalived's DELETED (or FAULT).
    deleting: Vec<usize>,
    scripts: Vec<ScriptJob>,
    config_file: std::path::PathBuf,
    /// An interface we use that came back under a new index (name, index): reloads move us
    /// to it, and are retried at its link and address changes until one works (it needs its
    /// addresses first).
    rewiring: Option<(String, u32)>,
    /// The `virtual_server`s (empty without any).
    lvs: lvs::Lvs,
}

pub(super) async fn run(config: Config, options: RunOptions) -> Result<()> {
    // First of all: a SIGTERM from here on (a `systemctl stop` right after the start) is a clean
    // stop once the agent can stop, never the default death that leaves the pid file and the
    // control socket behind (seen as exit -1 in check_config's tests).
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    // A SIGHUP during the start (a `systemctl reload` right after it) waits for the main loop.
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    // Subscribed before the interfaces are read: a link that changes while the agent starts
    // (XDP loads can take a second) is reported, not lost between the read and the
    // subscription (a cut link was missed that way and its instance never went to FAULT).
    let mut links = LinkWatch::subscribe().context("subscribing to link events")?;
    let netlink = crate::net::Netlink::new().context("opening rtnetlink")?;
    // What `check-config` checks, with the same function: a refused configuration stops the
    // start before the pid file, the control socket or anything on the host.
    let checked = super::preflight(&config, &options.config, &netlink).await?;
    let _pid_file = options
        .pid_file
        .as_deref()
        .map(super::pidfile::PidFile::create)
        .transpose()?;
    // The control socket and the metrics port next: a collision stops the start untouched.
    let control = crate::control::Control::bind(&options.control)?;
    let (channels, mut inbox) = Channels::new();
    let start_stop =
        start_stop::StartStop::new(&config.global, &checked.notify_users, checked.run_as);
    let datapath = datapaths::Options {
        choice: options.datapath,
        bpf_dir: options.bpf_dir.clone(),
        pass_adverts: options.xdp_pass_adverts,
        drop_foreign: options.xdp_drop_foreign,
    };
    let mut rt = Runtime::prepare(
        config,
        checked,
        netlink,
        &options.config,
        datapath,
        channels,
        None,
    )?;
    // Checks are done: from here on the host is changed.
    rt.datapaths.check_locks()?;
    let stop = async {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
        }
    };
    if !start_stop.startup(stop).await {
        start_stop.shutdown().await;
        return Ok(());
    }
    let local_igmp = igmp::LocalIgmp::apply(rt.config.global.disable_local_igmp)?;
    vmacs::ensure(&rt.plan, &mut rt.facts).await?;
    vmacs::remove_unused(Some(&rt.plan), &[(&rt.plan, &rt.facts)]).await;
    let all: Vec<&_> = rt.plan.instances.iter().collect();
    rt.vips
        .report_foreign(&all, &rt.plan, &rt.facts, false)
        .await;
    rt.vips.remove_stale(&rt.plan, &rt.facts, &[]).await;
    let mut statics =
        statics::Statics::new(crate::net::Netlink::new().context("opening rtnetlink")?);
    statics.apply(&rt.plan, &rt.facts).await;
    rt.attach(HashMap::new())?;
    // Before any instance may become master: a service is in the maps when its VIP comes.
    rt.start_lvs().await?;
    let io = rt.open_io()?;
    rt.start_io(io);
    rt.open_fifos().await;
    // XDP counters (rejections, valid adverts, fence drops) are read from the maps once a second.
    let mut counters = tokio::time::interval(COUNTERS_PERIOD);
    counters.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    rt.delay_start();
    rt.startup(&[]).await;
    rt.publish();
    let control = control.start(rt.board.subscribe())?;
    info!(
        "ha-agent running: {} instance(s), datapath {}",
        rt.nodes.len(),
        rt.datapaths.label()
    );

    loop {
        let deadline = rt.next_deadline();
        // Timers first, claims last: no input, however fast it comes, delays an advert or a
        // Master_Down_Timer (a claim flood once kept a master from advertising).
        tokio::select! {
            biased;
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                rt = rt.reload().await;
                statics.apply(&rt.plan, &rt.facts).await;
            }
            _ = sleep_until(deadline) => {
                // After a stall longer than a master-down interval (a hung or starved agent)
                // the timer is due and the master's adverts wait unread: let the receive tasks
                // read them and deliver them first, so a live master is not taken over from.
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                // Bounded: a flood of adverts does not hold the timers back either.
                for _ in 0..ADVERT_DRAIN {
                    let Ok(inc) = inbox.adverts.try_recv() else {
                        break;
                    };
                    rt.on_advert(inc).await;
                }
                rt.on_timers().await
            }
            Some(inc) = inbox.adverts.recv() => rt.on_advert(inc).await,
            Some(update) = inbox.scripts.recv() => rt.on_script(update).await,
            gone = statics.next_deletion() => statics.deleted(gone, &rt.facts).await,
            Some(event) = links.next_event() => {
                if rt.on_link(event).await {
                    rt = rt.reload().await;
                    statics.apply(&rt.plan, &rt.facts).await;
                }
            }
            Some(()) = inbox.files.recv() => {
                // One re-read for every change that waits (an editor writes several times).
                while inbox.files.try_recv().is_ok() {}
                rt.on_track_files().await
            }
            Some(readings) = inbox.processes.recv() => rt.on_track_processes(&readings).await,
            input = rt.lvs.next() => rt.on_lvs(input),
            _ = counters.tick() => {
                rt.refresh_counters();
                rt.resync_lost_events().await;
                rt.claims.flush_warnings();
            }
            Some((interface, claim)) = inbox.claims.recv() => {
                // A new master's advert goes out before its gratuitous ARPs: read what waits,
                // so that a preemption (we step down) is not reported as a conflict.
                tokio::task::yield_now().await;
                for _ in 0..ADVERT_DRAIN {
                    let Ok(inc) = inbox.adverts.try_recv() else {
                        break;
                    };
                    rt.on_advert(inc).await;
                }
                rt.on_claim(&interface, claim);
                // The claims that wait too, a bounded number: one loop turn for many.
                for _ in 1..CLAIM_BATCH {
                    let Ok((more_on, more)) = inbox.claims.try_recv() else {
                        break;
                    };
                    rt.on_claim(&more_on, more);
                }
            }
        }
        rt.board.wakeups += 1;
        rt.vips.report_added(&rt.plan, &rt.facts).await;
        rt.sync_states();
        rt.datapaths.heartbeat();
        if rt.board.due() {
            rt.publish();
        }
    }
    control.stopping();
    let resigned = rt.shutdown().await;
    rt.stop_lvs();
    // The XDP/TC detach below takes the kernel's RTNL lock (and, on veth, waits for an RCU
    // grace period under it): done at once, it delays a peer on the same kernel adding the
    // VIPs we just gave up. Wait for the new master first; a second signal stops the wait.
    tokio::select! {
        biased;
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
        () = rt.await_handover(resigned, &mut inbox.adverts, &mut inbox.claims) => {}
    }
    // A second signal, or successors never heard: what is still quiet is fenced and removed.
    rt.finish_handovers(Instant::now(), true).await;
    rt.fifos.close().await;
    statics.clear(&rt.facts).await;
    drop(local_igmp);
    rt.datapaths.close();
    vmacs::remove_unused(None, &[(&rt.plan, &rt.facts)]).await;
    // The configuration's at exit: a reload may have changed the shutdown script, as keepalived.
    start_stop::StartStop::new(&rt.config.global, &rt.notify_users, rt.run_as)
        .shutdown()
        .await;
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Runtime {
    fn instance(&self, i: usize) -> &Instance {
        let n = &self.nodes[i];
        match &self.units[n.unit] {
            Unit::Single(inst) => inst,
            Unit::Group(g) => g.member(n.member),
        }
    }

    fn instance_mut(&mut self, i: usize) -> &mut Instance {
        let n = &self.nodes[i];
        match &mut self.units[n.unit] {
            Unit::Single(inst) => inst,
            Unit::Group(g) => g.member_mut(n.member),
        }
    }

    fn is_master(&self, i: usize) -> bool {
        self.instance(i).state() == State::Master
    }

    /// The next timer of a state machine (each owns its timer), or of a VIP retry.
    fn next_deadline(&self) -> Option<Instant> {
        #[cfg(debug_assertions)]
        for u in 0..self.units.len() {
            assert_eq!(
                self.deadlines.of(u),
                self.unit_timeout(u),
                "unit {u}'s timer"
            );
        }
        self.deadlines
            .next()
            .into_iter()
            .chain(self.vips.next_deadline())
            .chain(self.debounce.next_deadline())
            .chain(self.handovers.next_deadline())
            .min()
    }

    fn unit_timeout(&self, u: usize) -> Option<Instant> {
        match &self.units[u] {
            Unit::Single(inst) => inst.next_timeout(),
            Unit::Group(g) => g.next_timeout(),
        }
    }

    /// Delivers `event` to every instance of unit `u` (Startup, Shutdown) and performs the actions.
    async fn deliver_unit(&mut self, u: usize, now: Instant, event: Event) {
        let (actions, group_lines) = match &mut self.units[u] {
            Unit::Single(inst) => {
                let i = self.plan.units[u].members[0];
                let actions = inst.handle(now, event).into_iter().map(|a| (i, a));
                (actions.collect(), Vec::new())
            }
            Unit::Group(g) => {
                let out = g.handle_all(now, event);
                self.group_actions(u, out)
            }
        };
        self.deadlines.set(u, self.unit_timeout(u));
        self.execute_all(actions).await;
        self.write_fifo(&group_lines);
    }

    /// Delivers `event` to instance `i` (through its sync group) and performs the actions.
    async fn deliver(&mut self, i: usize, now: Instant, event: Event) {
        if let Event::Advert { priority: 1.., .. } = event {
            self.handovers.heard(i, now);
        }
        let (u, m) = (self.nodes[i].unit, self.nodes[i].member);
        let (actions, group_lines) = match &mut self.units[u] {
            Unit::Single(inst) => {
                let actions = inst.handle(now, event).into_iter().map(|a| (i, a));
                (actions.collect(), Vec::new())
            }
            Unit::Group(g) => {
                let out = g.handle(now, m, event);
                self.group_actions(u, out)
            }
        };
        self.deadlines.set(u, self.unit_timeout(u));
        self.execute_all(actions).await;
        self.write_fifo(&group_lines);
    }

    /// The members' actions, and the group's FIFO lines that follow member actions: written
    /// after the members' own, as keepalived's `vrrp_sync_master` notifies the group once its
    /// members have moved.
    fn group_actions(
        &self,
        u: usize,
        out: Vec<GroupAction>,
    ) -> (Vec<(usize, Action)>, Vec<String>) {
        let members = &self.plan.units[u].members;
        let (mut actions, mut lines) = (Vec::new(), Vec::new());
        for ga in out {
            match ga {
                GroupAction::Member { member, action } => actions.push((members[member], action)),
                GroupAction::Notify { from, to } => {
                    if let Some(group) = &self.plan.units[u].group {
                        events::group_transition(&group.name, from, to);
                        for (argv, user) in
                            notify::commands(&group.notify, Subject::Group, &group.name, to, 0)
                        {
                            notify::spawn(argv, self.notify_users.run_as(user, self.run_as));
                        }
                        let line = fifo::line(Subject::Group, &group.name, What::State(to), 0);
                        // Before any member's (Startup) at once, else after the members'.
                        if actions.is_empty() {
                            self.fifos.write(&line);
                        } else {
                            lines.push(line);
                        }
                    }
                }
            }
        }
        (actions, lines)
    }

    fn write_fifo(&self, lines: &[String]) {
        for line in lines {
            self.fifos.write(line);
        }
    }

    async fn execute_all(&mut self, actions: Vec<(usize, Action)>) {
        for (i, action) in actions {
            self.execute(i, action).await;
        }
    }

    /// One action of instance `i`'s state machine: one call on one component.
    async fn execute(&mut self, i: usize, action: Action) {
        let ip = &self.plan.instances[i];
        match action {
            Action::SendAdvert {
                priority,
                adver_int_cs,
            } => {
                self.board.counters(i).adverts_sent += 1;
                self.adverts.send(i, ip, priority, adver_int_cs).await;
            }
            Action::AddVips => {
                self.handovers.cancel(i);
                self.vips.add(i, ip, &self.plan, &self.facts).await
            }
            Action::RemoveVips => {
                self.garp.stop(i);
                self.vips.remove(i, ip, &self.plan, &self.facts).await;
            }
            Action::Fence => {
                self.handovers.cancel(i);
                let priority = self.instance(i).effective_priority();
                self.datapaths.fence(i, true, priority);
            }
            Action::Unfence => {
                let priority = self.instance(i).effective_priority();
                self.datapaths.fence(i, false, priority);
            }
            Action::HandOver { successor_heard } => self.hand_over(i, successor_heard).await,
            Action::SendGratuitous => self.garp.announce(i, ip, &self.facts),
            Action::ReassertGratuitous => self.garp.reassert(i, ip, &self.facts),
            Action::HeardLowerPriority => self.heard_lower_priority(i),
            Action::Notify { from, to, cause } => self.notify(i, from, to, cause),
            // The state machine keeps its timer: the loop asks `next_timeout` (`next_deadline`).
            Action::ArmTimer { .. } | Action::CancelTimer => {}
        }
    }

    /// A transition: counted, logged with its reason, and the notify scripts run.
    fn notify(&mut self, i: usize, from: State, to: State, cause: Cause) {
        if from == State::Master || to == State::Master {
            self.lvs_owner(i, to == State::Master);
        }
        let now = Instant::now();
        self.board.transition(i, to, now, self.intake.heard(i).last);
        let ip = &self.plan.instances[i];
        let inst = self.instance(i);
        let members = &self.plan.units[self.nodes[i].unit].members;
        let reason = cause.display_with(|m| &self.plan.instances[members[m]].name);
        let n = &self.nodes[i];
        let fault = (to == State::Fault).then(|| {
            let link = !n.link_running && !ip.dont_track_primary;
            let trackers = &self.board.counter(i).trackers;
            let down = trackers.iter().filter(|t| !t.up && t.weight == 0);
            events::fault_text(
                link.then_some(ip.interface.as_str()),
                down.map(|t| (t.kind, t.name.as_str())),
            )
        });
        events::Transition {
            instance: &ip.name,
            from,
            to,
            reason: &reason,
            priority: ip.machine.priority,
            effective: inst.effective_priority(),
            master: inst.master(),
            fault: fault.flatten(),
        }
        .emit();
        let priority = inst.effective_priority();
        let (commands, what) = if to == State::Initialize && self.deleting.contains(&i) {
            notify::deleted(&ip.notify, &ip.name, from, priority)
        } else {
            let commands = notify::commands(&ip.notify, Subject::Instance, &ip.name, to, priority);
            (commands, Some(What::State(to)))
        };
        for (argv, user) in commands {
            notify::spawn(argv, self.notify_users.run_as(user, self.run_as));
        }
        if let Some(what) = what {
            self.fifos
                .write(&fifo::line(Subject::Instance, &ip.name, what, priority));
        }
    }

    /// A master heard a lower priority (keepalived `send_event_notify`): the
    /// `notify_master_rx_lower_pri` script, as written, and the FIFO line.
    fn heard_lower_priority(&self, i: usize) {
        let ip = &self.plan.instances[i];
        if let Some(s) = &ip.notify.master_rx_lower_pri {
            let run_as = self.notify_users.run_as(s.user.as_ref(), self.run_as);
            notify::spawn(s.command.clone(), run_as);
        }
        let priority = self.instance(i).effective_priority();
        let what = What::MasterRxLowerPri;
        self.fifos
            .write(&fifo::line(Subject::Instance, &ip.name, what, priority));
    }

    /// Opens the notify FIFOs the configuration names (kept across a reload if unchanged).
    async fn open_fifos(&mut self) {
        let (users, default) = (&self.notify_users, self.run_as);
        let run_as = |f: &crate::config::NotifyFifo| {
            let user = f.script.as_ref().and_then(|s| s.user.as_ref());
            users.run_as(user, default)
        };
        self.fifos.configure(&self.config.global, run_as).await;
    }
}

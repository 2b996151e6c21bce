//! The `virtual_server` component: owns the [`LvsManager`], the health checkers' tasks (started
//! and stopped as `ha_suspend` and reloads require), the next-hop watch (`lvs::neigh`), and
//! writes the manager's state to the load balancer of each service's interface.
//!
//! Inputs come through [`Lvs::next`] (checker rounds, next hops); masters of service
//! addresses through [`Lvs::set_owner`]. Scripts run in the background through the notify
//! runner: nothing here waits for them.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use anyhow::{Result, bail};
use tokio::{
    sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel},
    task::JoinHandle,
};
use tracing::{info, warn};

use super::datapaths::Datapaths;
use crate::{
    agent::plan::Plan,
    config::Config,
    lvs::{
        CheckEvent, CheckId, LbDatapath,
        manager::{LbTargets, LvsManager, Output},
        neigh::{self, Hop},
    },
    notify,
    status::VirtualServerStatus,
    track::script::RunAs,
};

/// Starts the checker `id` of `config`; its rounds go to `tx`. The checkers' part provides
/// `crate::lvs::check::spawn`; until it is plugged in ([`Lvs::new`]), no checker runs and every
/// real server keeps its initial state.
pub(crate) type Spawner =
    Box<dyn Fn(CheckId, &Config, UnboundedSender<CheckEvent>) -> JoinHandle<()>>;

/// An input of the component.
pub(super) enum Input {
    Check(CheckEvent),
    Hop(IpAddr, Hop),
}

pub(super) struct Lvs {
    manager: Option<LvsManager>,
    spawner: Option<Spawner>,
    running: BTreeMap<CheckId, JoinHandle<()>>,
    checks_tx: UnboundedSender<CheckEvent>,
    checks_rx: UnboundedReceiver<CheckEvent>,
    hops_tx: UnboundedSender<(IpAddr, Hop)>,
    hops_rx: UnboundedReceiver<(IpAddr, Hop)>,
    watch: Option<JoinHandle<()>>,
    /// The last next-hop result per real server address, for the status.
    hops: HashMap<IpAddr, Hop>,
}

impl Default for Lvs {
    fn default() -> Self {
        let (checks_tx, checks_rx) = unbounded_channel();
        let (hops_tx, hops_rx) = unbounded_channel();
        Self {
            manager: None,
            spawner: None,
            running: BTreeMap::new(),
            checks_tx,
            checks_rx,
            hops_tx,
            hops_rx,
            watch: None,
            hops: HashMap::new(),
        }
    }
}

/// THE MERGE POINT (lead: connect the XDP part here): the load balancer of `interface`, i.e.
/// `datapaths`' `XdpDatapath` for it and its `lb()` (`XdpDatapath::lb(&mut self) ->
/// anyhow::Result<&mut XdpLb>`, `XdpLb: LbDatapath`). None until then: the manager keeps its
/// state and writes everything once a datapath is there.
fn lb_datapath<'a>(
    datapaths: &'a mut Datapaths,
    interface: &str,
) -> Option<&'a mut dyn LbDatapath> {
    let _ = (datapaths, interface);
    None
}

/// Each service address's datapath: the interface of the instance that holds it as a VIP.
struct Targets<'a> {
    datapaths: &'a mut Datapaths,
    plan: &'a Plan,
}

impl LbTargets for Targets<'_> {
    fn lb(&mut self, addr: IpAddr) -> Option<&mut dyn LbDatapath> {
        let ip = self
            .plan
            .instances
            .iter()
            .find(|ip| ip.vips.iter().any(|v| v.vip.addr == addr))?;
        lb_datapath(self.datapaths, &ip.interface)
    }
}

/// The interface of the instance whose VIP is `addr`.
pub(super) fn vip_interface(plan: &Plan, addr: IpAddr) -> Option<&str> {
    let ip = plan
        .instances
        .iter()
        .find(|ip| ip.vips.iter().any(|v| v.vip.addr == addr))?;
    Some(&ip.interface)
}

impl Lvs {
    /// Plugs in the checkers (the lead: `Box::new(crate::lvs::check::spawn)`).
    #[expect(
        dead_code,
        reason = "the checkers' part plugs its spawner in at the merge"
    )]
    pub fn set_spawner(&mut self, spawner: Spawner) {
        self.spawner = Some(spawner);
    }

    /// Sets up the services of `config` (none: nothing runs), before any instance may become
    /// master: refuses what cannot be balanced (the socket datapath; a DR real server that is
    /// not on-link; a service address no instance holds), then starts the next-hop watch and
    /// the checkers.
    pub async fn start(
        &mut self,
        config: &Config,
        plan: &Plan,
        datapath: &'static str,
    ) -> Result<()> {
        let services = &config.lvs.virtual_servers;
        if services.is_empty() {
            return Ok(());
        }
        if datapath != "xdp" {
            bail!(
                "virtual_server needs the XDP datapath (the load balancer is an XDP program), \
                 and this agent runs the socket datapath: start with --datapath xdp, or remove \
                 the virtual_server blocks"
            );
        }
        for vs in services {
            if vip_interface(plan, vs.addr.ip()).is_none() {
                bail!(
                    "{}: virtual_server {}: no vrrp_instance has {} as a virtual_ipaddress; the \
                     load balancer serves only addresses this node is master of",
                    vs.at,
                    vs.addr,
                    vs.addr.ip()
                );
            }
        }
        let manager = LvsManager::new(&config.lvs)?;
        let netlink = crate::net::Netlink::new()?;
        for (addr, kind) in manager.next_hops() {
            let route = neigh::route_to(&netlink, addr).await?;
            neigh::check_kind(addr, kind, &route)?;
        }
        self.watch = Some(tokio::spawn(neigh::watch(
            manager.next_hops(),
            self.hops_tx.clone(),
        )));
        info!("{} virtual server(s) set up", services.len());
        self.manager = Some(manager);
        self.reconcile_checkers(config);
        Ok(())
    }

    /// The next checker round or next-hop change.
    pub async fn next(&mut self) -> Input {
        tokio::select! {
            Some(ev) = self.checks_rx.recv() => Input::Check(ev),
            Some((addr, hop)) = self.hops_rx.recv() => Input::Hop(addr, hop),
        }
    }

    /// Handles `input`; scripts run in the background, the maps are written.
    pub fn on_input(&mut self, input: Input, config: &Config, env: Env<'_>) {
        let Some(m) = self.manager.as_mut() else {
            return;
        };
        match input {
            Input::Check(ev) => m.on_check(&ev),
            Input::Hop(addr, hop) => {
                match &hop {
                    Hop::Ready(f) => m.set_forwarding(addr, Some(*f)),
                    Hop::Pending => m.set_forwarding(addr, None),
                    Hop::Failed(why) => {
                        warn!("real server {addr}: {why}");
                        m.set_forwarding(addr, None);
                    }
                }
                self.hops.insert(addr, hop);
            }
        }
        self.flush(config, env);
    }

    /// This node is (no longer) master of `addrs`: `ha_suspend` checkers start or stop.
    pub fn set_owner(&mut self, addrs: &[IpAddr], master: bool, config: &Config, env: Env<'_>) {
        let Some(m) = self.manager.as_mut() else {
            return;
        };
        for &a in addrs {
            m.set_owner(a, master);
        }
        self.reconcile_checkers(config);
        self.flush(config, env);
    }

    /// A reload: the manager keeps what did not change; every checker restarts with the new
    /// numbering (a round of an old one is never applied to a new one: new channel).
    pub async fn reload(
        &mut self,
        config: &Config,
        plan: &Plan,
        datapath: &'static str,
        env: Env<'_>,
    ) {
        self.stop_checkers();
        let (tx, rx) = unbounded_channel();
        (self.checks_tx, self.checks_rx) = (tx, rx);
        let Some(m) = self.manager.as_mut() else {
            // No services before: a plain start.
            if let Err(e) = self.start(config, plan, datapath).await {
                warn!("reload: virtual_server: {e:#}");
            }
            self.flush(config, env);
            return;
        };
        if let Err(e) = m.reload(&config.lvs) {
            warn!("reload: virtual_server: {e:#}");
        }
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        self.watch = Some(tokio::spawn(neigh::watch(
            m.next_hops(),
            self.hops_tx.clone(),
        )));
        self.reconcile_checkers(config);
        self.flush(config, env);
    }

    /// A clean stop: checkers stopped, down scripts as keepalived (`omega`), the services out
    /// of the maps.
    pub fn stop(&mut self, config: &Config, env: Env<'_>) {
        self.stop_checkers();
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        if let Some(m) = self.manager.as_mut() {
            m.stop();
            self.flush(config, env);
        }
    }

    fn stop_checkers(&mut self) {
        for (_, task) in std::mem::take(&mut self.running) {
            task.abort();
        }
    }

    /// Starts the checkers the manager wants and stops the others.
    fn reconcile_checkers(&mut self, config: &Config) {
        let Some(m) = &self.manager else { return };
        let wanted = m.wanted_checks();
        self.running.retain(|id, task| {
            let keep = wanted.contains(id);
            if !keep {
                task.abort();
            }
            keep
        });
        let Some(spawn) = &self.spawner else { return };
        for id in wanted {
            self.running
                .entry(id)
                .or_insert_with(|| spawn(id, config, self.checks_tx.clone()));
        }
    }

    /// Runs what the manager asked for and writes the maps.
    fn flush(&mut self, _config: &Config, env: Env<'_>) {
        let Some(m) = self.manager.as_mut() else {
            return;
        };
        let Output { scripts, log } = m.take_output();
        for line in log {
            info!("{line}");
        }
        for s in scripts {
            notify::spawn(s.argv, env.users.run_as(s.user.as_ref(), env.run_as));
        }
        let mut targets = Targets {
            datapaths: env.datapaths,
            plan: env.plan,
        };
        m.sync(&mut targets);
    }

    /// The services for the status, with the balancer's counters when it is attached.
    pub fn status(&self, datapaths: &mut Datapaths, plan: &Plan) -> Vec<VirtualServerStatus> {
        let Some(m) = &self.manager else {
            return Vec::new();
        };
        let mut targets = Targets { datapaths, plan };
        m.services()
            .iter()
            .map(|svc| {
                let dp = targets.lb(svc.config.addr.ip());
                crate::lvs::status::service(svc, dp.as_deref(), &self.hops)
            })
            .collect()
    }
}

/// What writing and running need from the runtime.
pub(super) struct Env<'a> {
    pub datapaths: &'a mut Datapaths,
    pub plan: &'a Plan,
    pub users: &'a notify::Users,
    pub run_as: Option<RunAs>,
}

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
use ha_common::lb::{LB_REALS, LB_SERVICES};
use tokio::{
    sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel},
    task::JoinHandle,
};
use tracing::{error, info, warn};

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

/// Starts the checker `id` of `config`; its rounds go to `tx`: `crate::lvs::check::spawn`,
/// which [`Lvs::start`] plugs in unless a test set its own.
pub(crate) type Spawner =
    Box<dyn Fn(CheckId, &Config, UnboundedSender<CheckEvent>) -> JoinHandle<()>>;

/// An input of the component.
pub(super) enum Input {
    Check(CheckEvent),
    Hop(IpAddr, Hop),
}

pub(super) struct Lvs {
    manager: Option<LvsManager>,
    /// The configuration the manager and the checkers run (the last one started or reloaded).
    config: Option<Box<Config>>,
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
            config: None,
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

/// The load balancer of `interface`: its XDP datapath's `xdp_lb` maps (loaded on first use).
fn lb_datapath<'a>(
    datapaths: &'a mut Datapaths,
    interface: &str,
) -> Option<&'a mut dyn LbDatapath> {
    datapaths.lb(interface).map(|lb| lb as &mut dyn LbDatapath)
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

/// The interfaces whose XDP datapath must carry the load balancer: those of the instances
/// holding a `virtual_server`'s address.
pub(super) fn balanced_interfaces(config: &Config, plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for vs in &config.lvs.virtual_servers {
        if let Some(name) = vip_interface(plan, vs.addr.ip())
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_owned());
        }
    }
    out
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
    /// Replaces the checkers (tests); [`Lvs::start`] plugs in `crate::lvs::check::spawn`
    /// otherwise.
    #[cfg_attr(not(test), expect(dead_code, reason = "tests drive fake checkers"))]
    pub fn set_spawner(&mut self, spawner: Spawner) {
        self.spawner = Some(spawner);
    }

    /// The datapath was attached again (a reload; maybe new, empty maps): everything is
    /// written again at the next event.
    pub fn datapath_replaced(&mut self) {
        if let Some(m) = self.manager.as_mut() {
            m.forget_written();
        }
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
        validate(config, plan, datapath).await?;
        if self.spawner.is_none() {
            self.spawner = Some(Box::new(crate::lvs::check::spawn));
        }
        let services = &config.lvs.virtual_servers;
        if services.is_empty() {
            return Ok(());
        }
        let manager = LvsManager::new(&config.lvs)?;
        self.watch = Some(tokio::spawn(neigh::watch(
            manager.next_hops(),
            self.hops_tx.clone(),
        )));
        info!("{} virtual server(s) set up", services.len());
        self.manager = Some(manager);
        self.config = Some(Box::new(config.clone()));
        self.reconcile_checkers();
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
    pub fn on_input(&mut self, input: Input, env: Env<'_>) {
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
        self.flush(env);
    }

    /// This node is (no longer) master of `addrs`: `ha_suspend` checkers start or stop.
    pub fn set_owner(&mut self, addrs: &[IpAddr], master: bool, env: Env<'_>) {
        let Some(m) = self.manager.as_mut() else {
            return;
        };
        for &a in addrs {
            m.set_owner(a, master);
        }
        self.reconcile_checkers();
        self.flush(env);
    }

    /// A reload: the manager keeps what did not change; every checker restarts with the new
    /// numbering (a round of an old one is never applied to a new one: new channel). A new
    /// configuration [`validate`] refuses leaves the services as they were.
    pub async fn reload(
        &mut self,
        config: &Config,
        plan: &Plan,
        datapath: &'static str,
        env: Env<'_>,
    ) {
        if let Err(e) = validate(config, plan, datapath).await {
            error!("reload: virtual_server: {e:#}; the virtual servers stay as they were");
            return;
        }
        self.stop_checkers();
        let (tx, rx) = unbounded_channel();
        (self.checks_tx, self.checks_rx) = (tx, rx);
        let Some(m) = self.manager.as_mut() else {
            // No services before: a plain start.
            if let Err(e) = self.start(config, plan, datapath).await {
                error!("reload: virtual_server: {e:#}");
            }
            self.flush(env);
            return;
        };
        if let Err(e) = m.reload(&config.lvs) {
            error!("reload: virtual_server: {e:#}");
        }
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        self.watch = Some(tokio::spawn(neigh::watch(
            m.next_hops(),
            self.hops_tx.clone(),
        )));
        self.config = Some(Box::new(config.clone()));
        self.reconcile_checkers();
        self.flush(env);
    }

    /// A clean stop: checkers stopped, down scripts as keepalived (`omega`), the services out
    /// of the maps.
    pub fn stop(&mut self, env: Env<'_>) {
        self.stop_checkers();
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        if let Some(m) = self.manager.as_mut() {
            m.stop();
            self.flush(env);
        }
    }

    fn stop_checkers(&mut self) {
        for (_, task) in std::mem::take(&mut self.running) {
            task.abort();
        }
    }

    /// Starts the checkers the manager wants and stops the others.
    fn reconcile_checkers(&mut self) {
        let (Some(m), Some(config)) = (&self.manager, &self.config) else {
            return;
        };
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
    fn flush(&mut self, env: Env<'_>) {
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

/// What start and reload refuse, before anything changes: a virtual_server on the socket
/// datapath, on an address no instance holds, more than the maps hold, a DR real server that
/// is not on-link.
async fn validate(config: &Config, plan: &Plan, datapath: &'static str) -> Result<()> {
    let services = &config.lvs.virtual_servers;
    if services.is_empty() {
        return Ok(());
    }
    if datapath != "xdp" {
        bail!(
            "virtual_server needs the XDP datapath (the load balancer is an XDP program), and \
             this agent runs the socket datapath: start with --datapath xdp, or remove the \
             virtual_server blocks"
        );
    }
    for vs in services {
        if vip_interface(plan, vs.addr.ip()).is_none() {
            bail!(
                "{}: virtual_server {}: no vrrp_instance has {} as a virtual_ipaddress; the load \
                 balancer serves only addresses this node is master of",
                vs.at,
                vs.addr,
                vs.addr.ip()
            );
        }
    }
    let reals: usize = services
        .iter()
        .map(|vs| vs.real_servers.len() + usize::from(vs.sorry_server.is_some()))
        .sum();
    if services.len() > LB_SERVICES as usize || reals > LB_REALS as usize {
        bail!(
            "{} virtual servers with {reals} real servers: the load balancer holds at most \
             {LB_SERVICES} and {LB_REALS}",
            services.len()
        );
    }
    let netlink = crate::net::Netlink::new()?;
    for (addr, kind) in LvsManager::new(&config.lvs)?.next_hops() {
        let route = neigh::route_to(&netlink, addr).await?;
        neigh::check_kind(addr, kind, &route)?;
    }
    Ok(())
}

/// What writing and running need from the runtime.
pub(super) struct Env<'a> {
    pub datapaths: &'a mut Datapaths,
    pub plan: &'a Plan,
    pub users: &'a notify::Users,
    pub run_as: Option<RunAs>,
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, rc::Rc, time::Duration};

    use super::*;
    use crate::{
        config::{
            Source,
            lvs::{
                CheckKind, Checker, LbAlgo, LbKind, Lvs as LvsConfig, Protocol, RealServer,
                VirtualServer,
            },
        },
        lvs::Verdict,
    };

    fn config(ha_suspend: bool) -> Config {
        let text = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n \
                    virtual_ipaddress {\n 10.0.0.100\n }\n}\n";
        let mut c = crate::config::parse_str(text, std::path::Path::new("t.conf"))
            .unwrap()
            .config;
        let at = Source {
            file: "t.conf".into(),
            line: 1,
            col: 1,
        };
        let checker = Checker {
            at: at.clone(),
            kind: CheckKind::Tcp,
            connect: "10.0.0.11:80".parse().unwrap(),
            bind: None,
            bind_if: None,
            connect_timeout: Duration::from_secs(1),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            delay_loop: Duration::from_secs(1),
            warmup: None,
            alpha: false,
            log_all_failures: false,
        };
        let real = RealServer {
            at: at.clone(),
            addr: "10.0.0.11:80".parse().unwrap(),
            weight: 1,
            kind: LbKind::Dr,
            inhibit_on_failure: false,
            notify_up: None,
            notify_down: None,
            alpha: false,
            virtualhost: None,
            checkers: vec![checker.clone(), checker],
        };
        c.lvs = LvsConfig {
            virtual_servers: vec![VirtualServer {
                protocol: Protocol::Tcp,
                delay_loop: Duration::from_secs(1),
                algo: LbAlgo::Rr,
                ha_suspend,
                real_servers: vec![real],
                ..VirtualServer::with_defaults(at, "10.0.0.100:80".parse().unwrap())
            }],
        };
        c
    }

    /// A component whose spawner records what it starts; each fake checker reports Down once.
    fn component(c: &Config) -> (Lvs, Rc<RefCell<Vec<CheckId>>>) {
        let mut lvs = Lvs::default();
        let started = Rc::new(RefCell::new(Vec::new()));
        let log = started.clone();
        lvs.set_spawner(Box::new(move |id, _config, tx| {
            log.borrow_mut().push(id);
            tokio::spawn(async move {
                let _ = tx.send(CheckEvent {
                    id,
                    verdict: Verdict::Down("connect: connection refused".into()),
                    latency: None,
                    at: std::time::Instant::now(),
                });
                std::future::pending::<()>().await
            })
        }));
        lvs.manager = Some(LvsManager::new(&c.lvs).unwrap());
        lvs.config = Some(Box::new(c.clone()));
        (lvs, started)
    }

    /// Every checker runs, once, and its rounds come out of `next` for the manager.
    #[tokio::test]
    async fn checkers_run_and_their_rounds_reach_the_manager() {
        let c = config(false);
        let (mut lvs, started) = component(&c);
        lvs.reconcile_checkers();
        assert_eq!(started.borrow().len(), 2);
        let Input::Check(ev) = lvs.next().await else {
            panic!("a checker round")
        };
        let m = lvs.manager.as_mut().unwrap();
        m.on_check(&ev);
        assert!(!m.services()[0].reals[0].healthy);
        lvs.reconcile_checkers();
        assert_eq!(started.borrow().len(), 2, "nothing started twice");
    }

    /// ha_suspend: no checker until this node is master of the address; stopped when it is
    /// no longer.
    #[tokio::test]
    async fn ha_suspend_starts_and_stops_the_checkers_with_mastership() {
        let c = config(true);
        let (mut lvs, started) = component(&c);
        lvs.reconcile_checkers();
        assert!(started.borrow().is_empty() && lvs.running.is_empty());
        let vip: IpAddr = "10.0.0.100".parse().unwrap();
        lvs.manager.as_mut().unwrap().set_owner(vip, true);
        lvs.reconcile_checkers();
        assert_eq!(lvs.running.len(), 2);
        let tasks: Vec<_> = lvs.running.values().map(|t| t.abort_handle()).collect();
        lvs.manager.as_mut().unwrap().set_owner(vip, false);
        lvs.reconcile_checkers();
        assert!(lvs.running.is_empty());
        tokio::task::yield_now().await;
        assert!(
            tasks.iter().all(|t| t.is_finished()),
            "the checkers' tasks are stopped"
        );
    }

    fn plan(c: &Config) -> Plan {
        let facts = std::collections::HashMap::from([(
            "eth0".to_owned(),
            crate::agent::plan::IfFacts {
                index: 2,
                mac: Some([2, 0, 0, 0, 0, 1]),
                primary_v4: Some("10.0.0.1".parse().unwrap()),
                link_local_v6: None,
                running: true,
            },
        )]);
        crate::agent::plan::build(c, &facts).unwrap()
    }

    /// No balancer without XDP; no service on an address no instance holds: both refused at
    /// start, saying why, before any checker runs.
    #[tokio::test]
    async fn start_refuses_the_socket_datapath_and_a_service_on_no_vip() {
        let c = config(false);
        let p = plan(&c);
        let (mut lvs, started) = component(&c);
        lvs.manager = None;
        let e = lvs.start(&c, &p, "socket").await.unwrap_err().to_string();
        assert!(
            e.contains("needs the XDP datapath") && e.contains("--datapath xdp"),
            "{e}"
        );
        let mut other = c.clone();
        other.lvs.virtual_servers[0].addr = "10.0.0.200:80".parse().unwrap();
        let e = lvs.start(&other, &p, "xdp").await.unwrap_err().to_string();
        assert!(
            e.starts_with("t.conf:1:1: virtual_server 10.0.0.200:80: no vrrp_instance"),
            "{e}"
        );
        assert!(started.borrow().is_empty() && lvs.manager.is_none());
    }
}

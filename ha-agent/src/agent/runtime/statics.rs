//! What the configuration puts on the host for the agent's whole run, whatever the VRRP states:
//! `static_ipaddress`, `static_routes`, `static_rules` (added at start, removed at stop, as
//! keepalived's vrrp_daemon.c `start_vrrp` / `vrrp_terminate_phase1`), and
//! `net.ipv4.conf.IF.promote_secondaries` for the interfaces of instances with
//! `promote_secondaries` (set at start, its old value put back at stop, as keepalived's
//! vrrp_if_config.c). A reload adds what the new plan has and removes what it dropped; a
//! tracked static entry someone deletes is put back.

use std::collections::HashMap;

use tracing::{error, info, warn};

use crate::{
    agent::plan::{IfFacts, PlacedVip, Plan, StaticPlan},
    net::{AddOutcome, DelOutcome, Deleted, DeletionWatch, Netlink, Route, Rule},
};

/// The sysctl file of `promote_secondaries` on `interface` (of this network namespace).
fn promote_path(interface: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{interface}/promote_secondaries")
}

/// The static entries and sysctls this run set.
pub(super) struct Statics {
    netlink: Netlink,
    applied: StaticPlan,
    /// Interfaces whose `promote_secondaries` we set, with the value found there.
    promoted: Vec<(String, String)>,
    /// Deletions the kernel announces, once there is a tracked static entry to put back (a
    /// host with a full routing table would otherwise wake the agent at each route change).
    watch: Option<DeletionWatch>,
}

impl Statics {
    pub fn new(netlink: Netlink) -> Statics {
        Statics {
            netlink,
            applied: StaticPlan::default(),
            promoted: Vec::new(),
            watch: None,
        }
    }

    /// The next deletion of a route, rule or address; never, without tracked static entries.
    pub async fn next_deletion(&mut self) -> Deleted {
        match self.watch.as_mut() {
            Some(watch) => match watch.next().await {
                Some(d) => d,
                None => {
                    warn!(
                        "the kernel's route and address notifications stopped: deleted static \
                         entries are no longer put back"
                    );
                    self.watch = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }

    /// Brings the host to `plan`'s static entries: removes what the last plan had and this one
    /// does not, adds what is new (addresses first: a route's gateway may be in their subnet).
    pub async fn apply(&mut self, plan: &Plan, facts: &HashMap<String, IfFacts>) {
        let new = &plan.statics;
        let tracked = new.addresses.iter().any(|a| a.track)
            || new.routes.iter().any(|r| r.track)
            || new.rules.iter().any(|r| r.track);
        if tracked && self.watch.is_none() {
            match DeletionWatch::subscribe() {
                Ok(w) => self.watch = Some(w),
                Err(e) => warn!(
                    "subscribing to route and address deletions: {e}; static entries someone \
                     deletes will not be put back"
                ),
            }
        }
        let old = std::mem::take(&mut self.applied);
        let gone = StaticPlan {
            addresses: diff(&old.addresses, &new.addresses),
            routes: diff(&old.routes, &new.routes),
            rules: diff(&old.rules, &new.rules),
        };
        self.remove(&gone, facts).await;
        for a in diff(&new.addresses, &old.addresses) {
            self.add_address(&a.entry, facts, "added").await;
        }
        for r in diff(&new.routes, &old.routes) {
            self.add_route(&r.entry, "added").await;
        }
        for r in diff(&new.rules, &old.rules) {
            self.add_rule(&r.entry, "added").await;
        }
        self.applied = new.clone();
        self.promote(plan);
    }

    /// Someone deleted `what`: if it is one of our tracked static entries, it is put back, as
    /// keepalived's netlink reflector does (`reinstate_static_*`).
    pub async fn deleted(&self, what: Deleted, facts: &HashMap<String, IfFacts>) {
        for a in self.applied.addresses.iter().filter(|a| a.track) {
            let Some(f) = facts.get(&a.entry.interface) else {
                continue;
            };
            let ours = Deleted::Address {
                ifindex: f.index,
                addr: a.entry.vip.addr,
            };
            if what == ours {
                self.add_address(&a.entry, facts, "deleted by someone: put back")
                    .await;
            }
        }
        for r in self.applied.routes.iter().filter(|r| r.track) {
            if what.is_route(&r.entry) {
                self.add_route(&r.entry, "deleted by someone: put back")
                    .await;
            }
        }
        for r in self.applied.rules.iter().filter(|r| r.track) {
            if what.is_rule(&r.entry) {
                self.add_rule(&r.entry, "deleted by someone: put back")
                    .await;
            }
        }
    }

    async fn add_address(&self, a: &PlacedVip, facts: &HashMap<String, IfFacts>, done: &str) {
        let Some(f) = facts.get(&a.interface) else {
            return;
        };
        match self.netlink.add_vip(f.index, &a.vip).await {
            Ok(AddOutcome::Added) => info!("static address {} on {}: {done}", a.vip, a.interface),
            Ok(AddOutcome::AlreadyPresent) => {}
            Err(e) => error!("static_ipaddress {} on {}: {e}", a.vip, a.interface),
        }
    }

    async fn add_route(&self, r: &Route, done: &str) {
        match self.netlink.add_route(r).await {
            Ok(AddOutcome::Added) => info!("static route {r}: {done}"),
            Ok(AddOutcome::AlreadyPresent) => {}
            Err(e) => error!("static_routes {r}: {e}"),
        }
    }

    async fn add_rule(&self, r: &Rule, done: &str) {
        match self.netlink.add_rule(r).await {
            Ok(AddOutcome::Added) => info!("static rule {r}: {done}"),
            Ok(AddOutcome::AlreadyPresent) => {}
            Err(e) => error!("static_rules {r}: {e}"),
        }
    }

    /// Removes every static entry this run added and puts `promote_secondaries` back (stop).
    pub async fn clear(&mut self, facts: &HashMap<String, IfFacts>) {
        let all = std::mem::take(&mut self.applied);
        self.remove(&all, facts).await;
        for (interface, value) in self.promoted.drain(..) {
            if let Err(e) = std::fs::write(promote_path(&interface), &value) {
                warn!("putting promote_secondaries of {interface} back to {value}: {e}");
            }
        }
    }

    /// Rules, then routes, then addresses: the reverse of the adds.
    async fn remove(&self, s: &StaticPlan, facts: &HashMap<String, IfFacts>) {
        for r in &s.rules {
            if let Err(e) = self.netlink.del_rule(&r.entry).await {
                error!("removing static rule {}: {e}", r.entry);
            }
        }
        for r in &s.routes {
            if let Err(e) = self.netlink.del_route(&r.entry).await {
                error!("removing static route {}: {e}", r.entry);
            }
        }
        for a in &s.addresses {
            let a = &a.entry;
            let Some(f) = facts.get(&a.interface) else {
                continue;
            };
            match self.netlink.del_vip(f.index, &a.vip).await {
                Ok(DelOutcome::Removed | DelOutcome::AlreadyAbsent) => {}
                Err(e) => error!(
                    "removing static address {} from {}: {e}",
                    a.vip, a.interface
                ),
            }
        }
    }

    /// Sets `promote_secondaries` to 1 on the interfaces of instances that ask for it, once
    /// each, keeping the value found to put back.
    fn promote(&mut self, plan: &Plan) {
        for ip in plan.instances.iter().filter(|i| i.promote_secondaries) {
            if self.promoted.iter().any(|(i, _)| *i == ip.interface) {
                continue;
            }
            let path = promote_path(&ip.interface);
            let was = match std::fs::read_to_string(&path) {
                Ok(v) => v.trim().to_owned(),
                Err(e) => {
                    warn!(instance = %ip.name, "reading {path}: {e}");
                    continue;
                }
            };
            if was == "1" {
                continue;
            }
            match std::fs::write(&path, "1") {
                Ok(()) => {
                    info!(instance = %ip.name, "promote_secondaries set on {}", ip.interface);
                    self.promoted.push((ip.interface.clone(), was));
                }
                Err(e) => warn!(instance = %ip.name, "setting {path}: {e}"),
            }
        }
    }
}

/// The entries of `a` that `b` lacks.
fn diff<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn a_reload_touches_only_what_changed() {
        assert_eq!(diff(&[1, 2, 3], &[2, 3, 4]), [1]);
        assert_eq!(diff(&[2, 3, 4], &[1, 2, 3]), [4]);
        assert!(diff(&[1, 2], &[2, 1]).is_empty());
    }
}

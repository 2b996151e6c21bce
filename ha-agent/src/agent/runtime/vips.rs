//! The VIPs, virtual routes and virtual rules on the host: netlink add and remove, the retries
//! of an add the kernel refused (and the FAULT they end in), stale VIPs, routes and rules an
//! earlier run left, VIPs someone else configured, and the "own address" rule.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use tracing::{error, info, warn};

use crate::{
    agent::{
        conflict,
        plan::{IfFacts, InstancePlan, PlacedVip, Plan},
    },
    net::{AddOutcome, DelOutcome, Netlink},
};

/// Retries of a VIP add before the instance goes to FAULT: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s.
const VIP_ADD_RETRIES: u32 = 5;
/// How long an instance stays in FAULT after its VIPs could not be added, before it tries
/// again (a FAULT forever would need an operator; a retry every advert would flap).
const VIP_FAULT_HOLD: Duration = Duration::from_secs(10);

/// The wait before retry `attempt` (0-based) of a VIP add.
fn vip_backoff(attempt: u32) -> Duration {
    Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(4))
}

/// An address owner's VIP that is the interface's own primary address: never removed or fenced,
/// in any state (it was there before us and must stay after us). Only for an instance of
/// priority 255: a VIP a crashed run left as an interface's first address is not the host's own
/// and must still be removed and fenced.
pub(super) fn is_own_address(
    plan: &Plan,
    facts: &HashMap<String, IfFacts>,
    pv: &PlacedVip,
) -> bool {
    facts
        .get(&pv.interface)
        .is_some_and(|f| Some(pv.vip.addr) == f.primary_v4.map(IpAddr::V4))
        && plan
            .instances
            .iter()
            .any(|i| i.machine.priority == 255 && i.vips.contains(pv))
}

/// VIPs of an instance that the kernel refused to add: indices into its plan's `vips`.
struct Retry {
    failed: Vec<usize>,
    /// Retries made so far.
    attempts: u32,
    at: Instant,
    error: String,
}

/// What a due retry came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Retried {
    /// Nothing changed for the state machine.
    Nothing,
    /// The adds failed too often: the instance goes to FAULT.
    Fault,
    /// The FAULT hold is over: the instance may leave FAULT to try again.
    FaultOver,
}

/// The VIPs of every instance and their pending retries.
pub(super) struct Vips {
    netlink: Netlink,
    /// Per instance: VIP adds being retried while master.
    retry: Vec<Option<Retry>>,
    /// Per instance: why it is in FAULT after a VIP could not be added, and until when.
    fault: Vec<Option<(String, Instant)>>,
    /// Instances whose VIPs were added this loop turn, to look for copies elsewhere.
    added: Vec<usize>,
}

impl Vips {
    /// Whether `addr` is on interface `ifindex`; `None` (said in the log) when the kernel would
    /// not tell.
    pub async fn has_address(&self, ifindex: u32, addr: IpAddr) -> Option<bool> {
        match self.netlink.addresses(ifindex).await {
            Ok(addrs) => Some(addrs.iter().any(|a| a.addr == addr)),
            Err(e) => {
                warn!("reading the addresses of interface {ifindex}: {e}");
                None
            }
        }
    }

    pub fn new(netlink: Netlink, instances: usize) -> Vips {
        Vips {
            netlink,
            retry: (0..instances).map(|_| None).collect(),
            fault: vec![None; instances],
            added: Vec::new(),
        }
    }

    /// Instance `i`'s pending retries and FAULT carry over to index `to` of `next` (reload).
    pub fn carry(&mut self, i: usize, next: &mut Vips, to: usize) {
        next.retry[to] = self.retry[i].take();
        next.fault[to] = self.fault[i].take();
    }

    /// Why instance `i` is in FAULT for its VIPs, if it is.
    pub fn fault(&self, i: usize) -> Option<&str> {
        self.fault[i].as_ref().map(|f| f.0.as_str())
    }

    /// Whether instance `i` has a retry or the end of a FAULT hold due at `now` (the loop asks
    /// for every instance at every timer: no future is made for the others).
    pub fn due(&self, i: usize, now: Instant) -> bool {
        self.retry[i].as_ref().is_some_and(|r| r.at <= now)
            || self.fault[i].as_ref().is_some_and(|f| f.1 <= now)
    }

    /// The next retry or end of a FAULT hold.
    pub fn next_deadline(&self) -> Option<Instant> {
        let retries = self.retry.iter().flatten().map(|r| r.at);
        let faults = self.fault.iter().flatten().map(|f| f.1);
        retries.chain(faults).min()
    }

    /// Adds instance `ip`'s VIPs and routes (it became master). An add the kernel refuses is
    /// retried with backoff ([`Vips::retry`]); a VIP already there (not the host's own) is an
    /// address conflict, said.
    pub async fn add(
        &mut self,
        i: usize,
        ip: &InstancePlan,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
    ) {
        let mut failed = Vec::new();
        for (k, pv) in ip.vips.iter().enumerate() {
            let Some(f) = facts.get(&pv.interface) else {
                continue;
            };
            match self.netlink.add_vip(f.index, &pv.vip).await {
                Ok(AddOutcome::Added) => {}
                // We removed it leaving master (and stale ones at start): someone put it back.
                Ok(AddOutcome::AlreadyPresent) if !is_own_address(plan, facts, pv) => warn!(
                    instance = %ip.name,
                    "address conflict: VIP {} was already on {} when this node became MASTER, not put there by this agent",
                    pv.vip.addr, pv.interface
                ),
                Ok(AddOutcome::AlreadyPresent) => {}
                Err(e) => {
                    error!(instance = %ip.name, "adding VIP {} on {}: {e}; retrying in {:?}", pv.vip.addr, pv.interface, vip_backoff(0));
                    failed.push((k, format!("VIP {} on {}: {e}", pv.vip.addr, pv.interface)));
                }
            }
        }
        if let Some((_, error)) = failed.last() {
            self.retry[i] = Some(Retry {
                error: error.clone(),
                failed: failed.iter().map(|f| f.0).collect(),
                attempts: 0,
                at: Instant::now() + vip_backoff(0),
            });
        }
        // The VIPs first (a takeover must not wait), the look for copies elsewhere at the
        // turn's end ([`Vips::report_added`]).
        self.added.push(i);
        for route in &ip.routes {
            if let Err(e) = self.netlink.add_route(route).await {
                error!(instance = %ip.name, "adding virtual route {route}: {e}");
            }
        }
        for rule in &ip.ip_rules {
            if let Err(e) = self.netlink.add_rule(rule).await {
                error!(instance = %ip.name, "adding virtual rule {rule}: {e}");
            }
        }
    }

    /// Looks for copies elsewhere of the VIPs added this loop turn: one address dump for a
    /// burst of takeovers (one per takeover made 1,020 master-down expiries O(n²)).
    pub async fn report_added(&mut self, plan: &Plan, facts: &HashMap<String, IfFacts>) {
        if self.added.is_empty() {
            return;
        }
        let added = std::mem::take(&mut self.added);
        let ips: Vec<&InstancePlan> = added.iter().map(|&i| &plan.instances[i]).collect();
        self.report_foreign(&ips, plan, facts, false).await;
    }

    /// Removes instance `ip`'s routes and VIPs (not the host's own) and stops its retries.
    pub async fn remove(
        &mut self,
        i: usize,
        ip: &InstancePlan,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
    ) {
        self.retry[i] = None;
        for rule in &ip.ip_rules {
            if let Err(e) = self.netlink.del_rule(rule).await {
                error!(instance = %ip.name, "removing virtual rule {rule}: {e}");
            }
        }
        for route in &ip.routes {
            if let Err(e) = self.netlink.del_route(route).await {
                error!(instance = %ip.name, "removing virtual route {route}: {e}");
            }
        }
        for pv in &ip.vips {
            let Some(f) = facts.get(&pv.interface) else {
                continue;
            };
            if is_own_address(plan, facts, pv) {
                continue;
            }
            if let Err(e) = self.netlink.del_vip(f.index, &pv.vip).await {
                error!(instance = %ip.name, "removing VIP {} from {}: {e}", pv.vip.addr, pv.interface);
            }
        }
    }

    /// A reload's in-place change of instance `i` from `old` to `new`: the VIPs, routes and
    /// rules `new` no longer names are removed, those it adds are added while `master`. Returns
    /// whether a VIP was added (the caller announces it).
    pub async fn apply_change(
        &mut self,
        i: usize,
        old: &InstancePlan,
        new: &InstancePlan,
        master: bool,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
    ) -> bool {
        let mut gone = old.clone();
        gone.vips.retain(|v| !new.vips.contains(v));
        gone.routes.retain(|r| !new.routes.contains(r));
        gone.ip_rules.retain(|r| !new.ip_rules.contains(r));
        let mut added = new.clone();
        added.vips.retain(|v| !old.vips.contains(v));
        added.routes.retain(|r| !old.routes.contains(r));
        added.ip_rules.retain(|r| !old.ip_rules.contains(r));
        if !(gone.vips.is_empty() && gone.routes.is_empty() && gone.ip_rules.is_empty()) {
            // Pending retries index the old list: a master's adds below start them afresh.
            self.remove(i, &gone, plan, facts).await;
        }
        if !master
            || (added.vips.is_empty() && added.routes.is_empty() && added.ip_rules.is_empty())
        {
            return false;
        }
        self.add(i, &added, plan, facts).await;
        // Retries index `added`'s VIPs: renumbered into the instance's own list.
        if let Some(r) = &mut self.retry[i] {
            for k in &mut r.failed {
                let vip = &added.vips[*k];
                *k = new.vips.iter().position(|v| v == vip).unwrap_or(*k);
            }
        }
        !added.vips.is_empty()
    }

    /// Instance `i`'s due retry or FAULT hold, while `master`: failed adds are retried with
    /// backoff; after [`VIP_ADD_RETRIES`] the instance goes to FAULT (saying which VIP and why)
    /// for [`VIP_FAULT_HOLD`], then leaves it to try again.
    pub async fn retry(
        &mut self,
        i: usize,
        ip: &InstancePlan,
        facts: &HashMap<String, IfFacts>,
        master: bool,
        now: Instant,
    ) -> Retried {
        if self.fault[i].as_ref().is_some_and(|f| f.1 <= now) {
            self.fault[i] = None;
            info!(instance = %ip.name, "leaving FAULT to try adding the VIPs again");
            return Retried::FaultOver;
        }
        let due = self.retry[i].as_ref().map(|r| r.at <= now);
        let Some(mut retry) = self.retry[i].take_if(|_| due == Some(true)) else {
            return Retried::Nothing;
        };
        if !master {
            return Retried::Nothing;
        }
        let mut still = Vec::new();
        for &k in &retry.failed {
            let pv = &ip.vips[k];
            let Some(f) = facts.get(&pv.interface) else {
                continue;
            };
            match self.netlink.add_vip(f.index, &pv.vip).await {
                Ok(_) => {
                    info!(instance = %ip.name, "VIP {} added on {} (retry {})", pv.vip.addr, pv.interface, retry.attempts + 1)
                }
                Err(e) => {
                    retry.error = format!("VIP {} on {}: {e}", pv.vip.addr, pv.interface);
                    still.push(k);
                }
            }
        }
        if still.is_empty() {
            return Retried::Nothing;
        }
        retry.attempts += 1;
        retry.failed = still;
        if retry.attempts < VIP_ADD_RETRIES {
            retry.at = now + vip_backoff(retry.attempts);
            warn!(instance = %ip.name, "adding {}; retry {} of {VIP_ADD_RETRIES} in {:?}", retry.error, retry.attempts + 1, vip_backoff(retry.attempts));
            self.retry[i] = Some(retry);
            return Retried::Nothing;
        }
        error!(
            instance = %ip.name,
            "{} could not be added ({} attempts): going to FAULT for {VIP_FAULT_HOLD:?}, \
             then trying again; check the address and the interface (`ip addr`)",
            retry.error,
            retry.attempts + 1
        );
        self.fault[i] = Some((retry.error, now + VIP_FAULT_HOLD));
        Retried::Fault
    }

    /// VIPs, virtual rules and routes of this configuration left on the host by a run that
    /// crashed are removed before anything else, so a node that is not master does not answer
    /// or route for them (`kept`: the instances a reload keeps, whose VIPs are theirs).
    pub async fn remove_stale(
        &self,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
        kept: &[String],
    ) {
        for ip in plan.instances.iter().filter(|i| !kept.contains(&i.name)) {
            for rule in &ip.ip_rules {
                match self.netlink.del_rule(rule).await {
                    Ok(DelOutcome::Removed) => {
                        warn!(instance = %ip.name, "removed stale virtual rule {rule} (left by an earlier run)")
                    }
                    Ok(DelOutcome::AlreadyAbsent) => {}
                    Err(e) => warn!(instance = %ip.name, "checking for a stale rule {rule}: {e}"),
                }
            }
            for route in &ip.routes {
                match self.netlink.del_route(route).await {
                    Ok(DelOutcome::Removed) => {
                        warn!(instance = %ip.name, "removed stale virtual route {route} (left by an earlier run)")
                    }
                    Ok(DelOutcome::AlreadyAbsent) => {}
                    Err(e) => warn!(instance = %ip.name, "checking for a stale route {route}: {e}"),
                }
            }
            for pv in &ip.vips {
                let Some(f) = facts.get(&pv.interface) else {
                    continue;
                };
                // An address owner's VIP is the interface's own address: never removed.
                if is_own_address(plan, facts, pv) {
                    continue;
                }
                match self.netlink.del_vip(f.index, &pv.vip).await {
                    Ok(DelOutcome::Removed) => {
                        warn!(instance = %ip.name, "removed stale VIP {} from {} (left by an earlier run)", pv.vip.addr, pv.interface)
                    }
                    Ok(DelOutcome::AlreadyAbsent) => {}
                    Err(e) => {
                        warn!(instance = %ip.name, "checking for a stale VIP {}: {e}", pv.vip.addr)
                    }
                }
            }
        }
    }

    /// Warns about every address of the host equal to a VIP of `instances` that this agent did
    /// not put there (another interface, prefix or label): someone else configured the VIP.
    pub async fn report_foreign(
        &self,
        instances: &[&InstancePlan],
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
        exact_too: bool,
    ) {
        let host = match self.netlink.all_addresses().await {
            Ok(h) => h,
            Err(e) => {
                warn!("listing the host's addresses to look for VIP conflicts: {e}");
                return;
            }
        };
        for ip in instances {
            for pv in ip.vips.iter().filter(|pv| !is_own_address(plan, facts, pv)) {
                let Some(f) = facts.get(&pv.interface) else {
                    continue;
                };
                for a in conflict::foreign_addresses(pv, f.index, &pv.interface, &host, exact_too) {
                    let ifname = crate::net::link::if_name(a.ifindex)
                        .unwrap_or_else(|| format!("#{}", a.ifindex));
                    warn!(
                        instance = %ip.name,
                        "address conflict: VIP {} (for {}) is already configured as {}, not by this agent",
                        pv.vip.addr,
                        pv.interface,
                        conflict::describe(a, &ifname)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_stays() {
        let waits: Vec<u64> = (0..7).map(|a| vip_backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 1600, 1600]);
        // The whole retry budget before FAULT: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s.
        let total: Duration = (0..VIP_ADD_RETRIES).map(vip_backoff).sum();
        assert_eq!(total, Duration::from_millis(3100));
    }
}

//! Other hosts claiming our VIPs on the wire (ARP, NA from a MAC not ours) while we are their
//! master: counted per instance and VIP, warned about within a budget. Reported, never acted on
//! (as keepalived).

use std::{collections::HashMap, net::IpAddr, time::Instant};

use tracing::warn;

use crate::{
    agent::{
        conflict::{self, Conflicts, LogBudget, Warning},
        plan::{IfFacts, Plan},
    },
    net::Claim,
};

pub(super) struct Claims {
    /// Per instance: the claims to its VIPs.
    per: Vec<Conflicts>,
    /// The bound on conflict warnings (all instances).
    log: LogBudget,
}

impl Claims {
    pub fn new(instances: usize) -> Claims {
        Claims {
            per: (0..instances).map(|_| Conflicts::default()).collect(),
            log: LogBudget::default(),
        }
    }

    /// Instance `i`'s claims carry over to index `to` of `next` (a reload that keeps it).
    pub fn carry(&mut self, i: usize, next: &mut Claims, to: usize) {
        next.per[to] = std::mem::take(&mut self.per[i]);
    }

    /// The claims counted for each VIP of instance `i`.
    pub fn count(&self, i: usize, vip: IpAddr) -> u64 {
        self.per[i].counts.get(&vip).copied().unwrap_or(0)
    }

    /// Another host said it has `claim.addr` on `interface`: a conflict when that is a VIP of
    /// an instance we are master of (`master`) and the MAC is not one of ours.
    pub fn on_claim(
        &mut self,
        plan: &Plan,
        facts: &HashMap<String, IfFacts>,
        master: impl Fn(usize) -> bool,
        interface: &str,
        claim: Claim,
    ) {
        if facts.values().any(|f| f.mac == Some(claim.mac)) {
            return;
        }
        let now = Instant::now();
        for (i, ip) in plan.instances.iter().enumerate() {
            if !master(i)
                || !ip
                    .vips
                    .iter()
                    .any(|pv| pv.interface == interface && pv.vip.addr == claim.addr)
            {
                continue;
            }
            let Some(warning) = self.per[i].record(claim.addr, claim.mac, now) else {
                continue;
            };
            let (allowed, suppressed) = self.log.allow(now);
            if let Some(n) = suppressed {
                warn_suppressed(n);
            }
            if !allowed {
                continue;
            }
            let mac = crate::net::conflict::mac_string(claim.mac);
            let more = |since: u64, by: &str| {
                if since > 0 {
                    format!("; {since} more claims by {by} since the last warning")
                } else {
                    String::new()
                }
            };
            match warning {
                Warning::Claimant { since } => warn!(
                    instance = %ip.name,
                    "address conflict: VIP {} is claimed on {interface} by {mac} ({} from another host) while this node is MASTER for it{}",
                    claim.addr,
                    claim.kind,
                    more(since, "it")
                ),
                Warning::Others { since } => warn!(
                    instance = %ip.name,
                    "address conflict: VIP {} is claimed on {interface} by {mac} ({}) and more MACs than the {} named so far while this node is MASTER for it: a misconfigured or hostile host; further MACs are counted together, not named{}",
                    claim.addr,
                    claim.kind,
                    conflict::MAX_CLAIMANTS,
                    more(since, "them")
                ),
            }
        }
    }

    /// The summary of the conflict warnings held back in an interval that is over.
    pub fn flush_warnings(&mut self) {
        if let Some(n) = self.log.flush(Instant::now()) {
            warn_suppressed(n);
        }
    }
}

/// The summary of the address-conflict warnings [`LogBudget`] held back.
fn warn_suppressed(n: u64) {
    warn!(
        "{n} more address-conflict warnings in the last {}s were not logged (at most {} per {}s); every claim is counted: `ha-agent status` (vip_conflicts), metric ha_agent_vip_conflicts_total",
        conflict::WARN_EVERY.as_secs(),
        conflict::WARN_LINES,
        conflict::WARN_EVERY.as_secs()
    );
}

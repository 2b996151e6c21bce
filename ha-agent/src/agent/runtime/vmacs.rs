//! The `use_vmac` macvlans of a plan: made to exist (created, or adopted from an earlier run)
//! before the VIPs, sockets and datapath that use them, and removed once no instance of the
//! running plan wants them (a reload that drops `use_vmac`, a clean exit, a crashed run's).

use std::collections::HashMap;

use anyhow::{Context, Result};
use tracing::{info, warn};

use crate::{
    agent::plan::{IfFacts, Plan},
    net::Netlink,
};

/// Creates or adopts every macvlan `plan` names, and records its index in `facts`.
pub(super) async fn ensure(plan: &Plan, facts: &mut HashMap<String, IfFacts>) -> Result<()> {
    let specs: Vec<_> = (plan.instances.iter())
        .flat_map(|ip| ip.vmac_specs(facts).into_iter().map(move |s| (ip, s)))
        .collect();
    if specs.is_empty() {
        return Ok(());
    }
    let netlink = Netlink::new().context("opening rtnetlink")?;
    for (ip, spec) in specs {
        let index = netlink.ensure_vmac(&spec).await.with_context(|| {
            format!(
                "vrrp_instance {}: use_vmac: macvlan {} on {}",
                ip.name, spec.name, spec.base
            )
        })?;
        if let Some(f) = facts.get_mut(&spec.name) {
            f.index = index;
        }
        info!(
            instance = %ip.name,
            "use_vmac: {} (index {index}, MAC {}) on {}",
            spec.name,
            fmt_mac(&spec.mac),
            spec.base
        );
    }
    Ok(())
}

/// An agent's view of its interfaces: a plan and the facts it was built on.
pub(super) type Scope<'a> = (&'a Plan, &'a HashMap<String, IfFacts>);

/// Deletes the macvlans of ours on the interfaces of `scope`'s instances that `plan` (none:
/// every one) does not name, and restores their base interfaces' ARP settings.
pub(super) async fn remove_unused(plan: Option<&Plan>, scope: &[Scope<'_>]) {
    let keep: Vec<String> = plan
        .into_iter()
        .flat_map(|p| &p.instances)
        .flat_map(|ip| {
            let addr = ip.addr_vmacs.iter().map(|a| a.name.clone());
            ip.vmac.iter().map(|v| v.name.clone()).chain(addr)
        })
        .collect();
    let bases: Vec<u32> = scope
        .iter()
        .flat_map(|(p, facts)| {
            p.instances.iter().flat_map(|ip| {
                let own = facts.get(&ip.interface).map(|f| f.index);
                let addr = ip.vmac_specs(facts).into_iter().map(|s| s.base_index);
                own.into_iter().chain(addr)
            })
        })
        .collect();
    let netlink = match Netlink::new() {
        Ok(n) => n,
        Err(e) => {
            warn!("use_vmac: cannot look for macvlans to remove: {e}");
            return;
        }
    };
    let (removed, errors) = netlink.remove_vmacs(&keep, &bases).await;
    for name in removed {
        info!("use_vmac: removed macvlan {name}");
    }
    for e in errors {
        warn!("use_vmac: {:#}", anyhow::Error::from(e));
    }
}

fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.map(|o| format!("{o:02x}")).join(":")
}

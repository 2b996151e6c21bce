//! What a reload keeps: each unit (an instance, or a sync group with its members) of the new
//! configuration paired with the running one of the same name. A kept unit carries its state
//! machines, timers, VIPs and counters over and takes what changed in place (priority, timers,
//! trackers, GARP, notify, preempt, accept, VIPs); the others stop and start. Only what names
//! the virtual router or where its VIPs live restarts an instance ([`restart_reason`]); a sync
//! group restarts when its membership changes or a member restarts (its members move as one),
//! and takes its own notify and trackers in place.

use std::{collections::HashMap, fmt::Display};

use crate::{
    agent::plan::{InstancePlan, Plan, UnitPlan},
    config::SyncGroup,
    vrrp::types::cs_to_duration,
};

/// Why `new` cannot take over the running `old` in place, or `None` when it can: what
/// identifies the virtual router on the wire (interface, VRID, family, version, source address,
/// address owner), how adverts travel (multicast or unicast: other sockets and receive path),
/// and the macvlans its VIPs go on.
pub(super) fn restart_reason(old: &InstancePlan, new: &InstancePlan) -> Option<String> {
    let (o, n) = (&old.machine, &new.machine);
    let unicast = |ip: &InstancePlan| !ip.destinations.iter().all(|d| d.is_multicast());
    let change = |what: &str, a: &dyn Display, b: &dyn Display| format!("{what} {a} -> {b}");
    if old.interface != new.interface {
        Some(change("interface", &old.interface, &new.interface))
    } else if o.vrid != n.vrid {
        Some(change("virtual_router_id", &o.vrid, &n.vrid))
    } else if old.family != new.family {
        Some(change(
            "family",
            &format!("{:?}", old.family),
            &format!("{:?}", new.family),
        ))
    } else if o.version != n.version {
        Some(change(
            "version",
            &format!("{:?}", o.version),
            &format!("{:?}", n.version),
        ))
    } else if unicast(old) != unicast(new) {
        Some("multicast <-> unicast peers".to_owned())
    } else if old.src != new.src {
        Some(change("source address", &old.src, &new.src))
    } else if (o.priority == 255) != (n.priority == 255) {
        Some(change(
            "address owner (priority 255): priority",
            &o.priority,
            &n.priority,
        ))
    } else if old.vmac != new.vmac || old.addr_vmacs != new.addr_vmacs {
        Some("use_vmac / use_vmac_addr".to_owned())
    } else {
        None
    }
}

/// What changed from `old` to `new` (restart_reason `None`), for the reload's log line:
/// "priority 200 -> 190; virtual_ipaddress +192.0.2.9/24". Empty when nothing did.
pub(super) fn changes(old: &InstancePlan, new: &InstancePlan) -> Vec<String> {
    let (o, n) = (&old.machine, &new.machine);
    let mut out = Vec::new();
    if o.priority != n.priority {
        out.push(format!("priority {} -> {}", o.priority, n.priority));
    }
    if o.advert_interval_cs != n.advert_interval_cs {
        let secs = |cs| cs_to_duration(cs).as_secs_f64();
        let (a, b) = (secs(o.advert_interval_cs), secs(n.advert_interval_cs));
        out.push(format!("advert_int {a} -> {b}"));
    }
    if (o.preempt, o.preempt_delay) != (n.preempt, n.preempt_delay) {
        out.push("preempt".to_owned());
    }
    if o.down_timer_adverts != n.down_timer_adverts {
        out.push("down_timer_adverts".to_owned());
    }
    let vips = |ip: &InstancePlan| -> Vec<String> {
        let at = |pv: &crate::agent::plan::PlacedVip| (pv.vip.addr, pv.vip.prefix_len);
        ip.vips
            .iter()
            .map(|pv| format!("{}/{}", at(pv).0, at(pv).1))
            .collect()
    };
    if old.vips != new.vips {
        let (a, b) = (vips(old), vips(new));
        let added = b.iter().filter(|v| !a.contains(v)).map(|v| format!("+{v}"));
        let removed = a.iter().filter(|v| !b.contains(v)).map(|v| format!("-{v}"));
        let mut list: Vec<String> = added.chain(removed).collect();
        if list.is_empty() {
            list.push("options".to_owned());
        }
        out.push(format!("virtual_ipaddress {}", list.join(" ")));
    }
    let mut named = |differs: bool, what: &str| {
        if differs {
            out.push(what.to_owned());
        }
    };
    named(old.routes != new.routes, "virtual_routes");
    named(old.ip_rules != new.ip_rules, "virtual_rules");
    let garp = |ip: &InstancePlan| {
        (
            ip.garp_delay,
            ip.garp_repeat,
            ip.garp_refresh,
            ip.garp_refresh_repeat,
            ip.garp_lower_prio_repeat,
            ip.garp_lower_prio_delay,
        )
    };
    named(garp(old) != garp(new), "garp settings");
    named(old.notify != new.notify, "notify scripts");
    let tracks = |ip: &InstancePlan| {
        (
            ip.track_interfaces.clone(),
            ip.track_scripts.clone(),
            ip.track_files.clone(),
            ip.track_processes.clone(),
            ip.track_src,
            ip.dont_track_primary,
        )
    };
    named(tracks(old) != tracks(new), "trackers");
    named(old.accept != new.accept, "accept mode");
    named(old.destinations != new.destinations, "unicast peers");
    if out.is_empty() && old != new {
        out.push("other settings".to_owned());
    }
    out
}

/// Whether two sync groups have the same name and members; their notify scripts and trackers
/// change in place.
fn same_group(a: &SyncGroup, b: &SyncGroup) -> bool {
    a.name == b.name && a.members == b.members
}

/// Whether unit `nu` of `new` can take over unit `ou` of `old`: the same group (or none) and
/// members of the same names, in order, none of which must restart.
fn same_unit(new: &Plan, nu: &UnitPlan, old: &Plan, ou: &UnitPlan) -> bool {
    let groups = match (&nu.group, &ou.group) {
        (None, None) => true,
        (Some(a), Some(b)) => same_group(a, b),
        _ => false,
    };
    groups
        && nu.members.len() == ou.members.len()
        && nu.members.iter().zip(&ou.members).all(|(&a, &b)| {
            let (a, b) = (&new.instances[a], &old.instances[b]);
            a.name == b.name && restart_reason(b, a).is_none()
        })
}

/// Each unit of `new` paired with the unit of `old` it takes over, (new index, old index);
/// each old unit is paired at most once.
pub(super) fn pair_units(old: &Plan, new: &Plan) -> Vec<(usize, usize)> {
    // By the first member's name: a quadratic search cost 2 ms of a 255-instance reload.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (ou, unit) in old.units.iter().enumerate() {
        by_name.insert(&old.instances[unit.members[0]].name, ou);
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (nu, nplan) in new.units.iter().enumerate() {
        let first = new.instances[nplan.members[0]].name.as_str();
        if let Some(&ou) = by_name.get(first)
            && same_unit(new, nplan, old, &old.units[ou])
        {
            by_name.remove(first);
            pairs.push((nu, ou));
        }
    }
    pairs
}

/// Why unit `ou` of `old`, not paired, restarts rather than stops: a member the new
/// configuration still names under another identity, or its sync group's membership. `None`:
/// none of its members is named any more (it stops).
pub(super) fn unit_restart_reason(old: &Plan, ou: usize, new: &Plan) -> Option<String> {
    let unit = &old.units[ou];
    for &oi in &unit.members {
        let o = &old.instances[oi];
        let Some(ni) = new.instances.iter().position(|n| n.name == o.name) else {
            continue;
        };
        if let Some(why) = restart_reason(o, &new.instances[ni]) {
            return Some(format!("{}: {why}", o.name));
        }
        let group = new.units.iter().find(|u| u.members.contains(&ni));
        let names = |g: &Option<SyncGroup>| g.as_ref().map(|g| (g.name.clone(), g.members.clone()));
        if group.is_some_and(|g| names(&g.group) != names(&unit.group)) {
            return Some("sync group membership".to_owned());
        }
    }
    None
}

/// Each instance of the kept units: (new index, old index, member position).
pub(super) fn pair_instances(
    old: &Plan,
    new: &Plan,
    pairs: &[(usize, usize)],
) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for &(nu, ou) in pairs {
        let members = new.units[nu].members.iter().zip(&old.units[ou].members);
        for (m, (&ni, &oi)) in members.enumerate() {
            out.push((ni, oi, m));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::plan::fixtures::plan;

    fn instance(name: &str, vrid: u8, priority: u8) -> String {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n priority {priority}\n \
             virtual_ipaddress {{\n 192.0.2.{vrid}/24\n }}\n}}\n"
        )
    }

    #[test]
    fn unchanged_units_pair_whatever_their_order() {
        let old = plan(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        let new = plan(&(instance("B", 2, 100) + &instance("A", 1, 100)));
        let mut pairs = pair_units(&old, &new);
        pairs.sort();
        assert_eq!(pairs, [(0, 1), (1, 0)]);
    }

    #[test]
    fn a_changed_priority_is_kept_in_place_and_a_new_instance_is_not_paired() {
        let old = plan(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        let new = plan(&(instance("A", 1, 100) + &instance("B", 2, 90) + &instance("C", 3, 100)));
        assert_eq!(pair_units(&old, &new), [(0, 0), (1, 1)]);
        let (o, n) = (&old.instances[1], &new.instances[1]);
        assert_eq!(restart_reason(o, n), None);
        assert_eq!(changes(o, n), ["priority 100 -> 90"]);
        assert!(changes(&old.instances[0], &new.instances[0]).is_empty());
    }

    #[test]
    fn where_an_instance_is_written_does_not_matter() {
        let old = plan(&instance("A", 1, 100));
        let new = plan(&format!("# a comment\n\n{}", instance("A", 1, 100)));
        assert_eq!(pair_units(&old, &new), [(0, 0)]);
    }

    #[test]
    fn a_sync_group_is_kept_whole_or_not_at_all() {
        let group =
            |members: &str| format!("vrrp_sync_group G {{\n group {{\n {members}\n }}\n}}\n");
        let old = plan(&(group("A B") + &instance("A", 1, 100) + &instance("B", 2, 100)));
        let same = plan(&(group("A B") + &instance("A", 1, 100) + &instance("B", 2, 100)));
        let pairs = pair_units(&old, &same);
        assert_eq!(pairs.len(), 1);
        let inst = pair_instances(&old, &same, &pairs);
        assert_eq!(inst.len(), 2);
        // A member's in-place change keeps the group.
        let changed = plan(&(group("A B") + &instance("A", 1, 100) + &instance("B", 2, 90)));
        assert_eq!(pair_units(&old, &changed), [(0, 0)]);
        // A member that must restart restarts the group, its unchanged member too.
        let moved = plan(&(group("A B") + &instance("A", 1, 100) + &instance("B", 3, 100)));
        assert!(pair_units(&old, &moved).is_empty());
        let why = unit_restart_reason(&old, 0, &moved);
        assert_eq!(why.as_deref(), Some("B: virtual_router_id 2 -> 3"));
        // Membership changes restart it.
        let fewer = plan(&(group("A") + &instance("A", 1, 100) + &instance("B", 2, 100)));
        assert!(!pair_units(&old, &fewer).iter().any(|p| p.1 == 0));
        let why = unit_restart_reason(&old, 0, &fewer);
        assert_eq!(why.as_deref(), Some("sync group membership"));
        // The same instances out of the group: different units.
        let apart = plan(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        assert!(pair_units(&old, &apart).is_empty());
    }

    /// Writes one instance block from its body lines.
    fn block(name: &str, body: &str) -> String {
        format!("vrrp_instance {name} {{\n interface eth0\n{body}}}\n")
    }

    #[test]
    fn what_changes_in_place_and_what_restarts() {
        let base = " virtual_router_id 5\n priority 200\n advert_int 1\n \
                    virtual_ipaddress {\n 192.0.2.5/24\n }\n";
        let old = plan(&block("A", base));
        let in_place = [
            ("priority 190", "priority 200 -> 190"),
            ("advert_int 2", "advert_int 1 -> 2"),
            ("nopreempt", "preempt"),
            ("preempt_delay 5", "preempt"),
            ("garp_master_delay 1", "garp settings"),
            ("garp_master_refresh 10", "garp settings"),
            ("notify_master /bin/true", "notify scripts"),
            ("dont_track_primary", "trackers"),
        ];
        for (line, said) in in_place {
            let new = plan(&block("A", &format!("{base} {line}\n")));
            let (o, n) = (&old.instances[0], &new.instances[0]);
            assert_eq!(restart_reason(o, n), None, "{line}");
            assert_eq!(changes(o, n), [said], "{line}");
            assert_eq!(pair_units(&old, &new), [(0, 0)], "{line}");
        }
        let vips = base.replace("192.0.2.5/24", "192.0.2.5/24\n 192.0.2.9/24");
        let new = plan(&block("A", &vips));
        let said = changes(&old.instances[0], &new.instances[0]);
        assert_eq!(said, ["virtual_ipaddress +192.0.2.9/24"]);
        let new = plan(&block("A", &base.replace("192.0.2.5/24", "192.0.2.6/24")));
        let said = changes(&old.instances[0], &new.instances[0]);
        assert_eq!(said, ["virtual_ipaddress +192.0.2.6/24 -192.0.2.5/24"]);
        let restarts = [
            (
                base.replace("router_id 5", "router_id 6"),
                "virtual_router_id 5 -> 6",
            ),
            (format!("{base} version 3\n"), "version V2 -> V3"),
            (
                base.replace("priority 200", "priority 255"),
                "address owner",
            ),
            (
                format!("{base} unicast_peer {{\n 192.0.2.99\n }}\n"),
                "multicast <-> unicast",
            ),
            (
                format!("{base} unicast_src_ip 192.0.2.7\n"),
                "source address",
            ),
        ];
        for (body, why) in restarts {
            let new = plan(&block("A", &body));
            let said = restart_reason(&old.instances[0], &new.instances[0]);
            assert!(
                said.as_deref().is_some_and(|s| s.starts_with(why)),
                "{body}: {said:?}"
            );
            assert!(pair_units(&old, &new).is_empty(), "{body}");
            let unit = unit_restart_reason(&old, 0, &new).unwrap();
            assert!(unit.starts_with(&format!("A: {why}")), "{unit}");
        }
        // Renamed: a new instance; the old one stops (no restart reason).
        let new = plan(&block("B", base));
        assert!(pair_units(&old, &new).is_empty());
        assert_eq!(unit_restart_reason(&old, 0, &new), None);
    }
}

//! What a reload keeps: each unit (an instance, or a sync group with its members) of the new
//! configuration paired with an identical one of the running configuration. A kept unit carries
//! its state machines, timers, VIPs and counters over; the others stop and start.

use crate::{
    agent::plan::{Plan, UnitPlan},
    config::SyncGroup,
};

/// Whether two sync groups are the same apart from where they are written.
fn same_group(a: &SyncGroup, b: &SyncGroup) -> bool {
    a.name == b.name
        && a.members == b.members
        && a.notify == b.notify
        && a.track_interfaces == b.track_interfaces
        && a.track_scripts == b.track_scripts
        && a.track_files == b.track_files
        && a.track_processes == b.track_processes
        && a.sync_group_tracking_weight == b.sync_group_tracking_weight
}

/// Whether unit `nu` of `new` is unit `ou` of `old` unchanged: the same group (or none) and
/// members whose plans are equal, in order.
fn same_unit(new: &Plan, nu: &UnitPlan, old: &Plan, ou: &UnitPlan) -> bool {
    let groups = match (&nu.group, &ou.group) {
        (None, None) => true,
        (Some(a), Some(b)) => same_group(a, b),
        _ => false,
    };
    groups
        && nu.members.len() == ou.members.len()
        && nu
            .members
            .iter()
            .zip(&ou.members)
            .all(|(&a, &b)| new.instances[a] == old.instances[b])
}

/// Each unit of `new` paired with an identical unit of `old`, (new index, old index); each old
/// unit is paired at most once.
pub(super) fn pair_units(old: &Plan, new: &Plan) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (nu, nplan) in new.units.iter().enumerate() {
        if let Some(ou) = (0..old.units.len()).find(|&ou| {
            !pairs.iter().any(|p| p.1 == ou) && same_unit(new, nplan, old, &old.units[ou])
        }) {
            pairs.push((nu, ou));
        }
    }
    pairs
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
    fn a_changed_instance_is_not_kept_and_a_new_one_is_not_paired() {
        let old = plan(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        let new = plan(&(instance("A", 1, 100) + &instance("B", 2, 90) + &instance("C", 3, 100)));
        assert_eq!(pair_units(&old, &new), [(0, 0)]);
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
        // One member changed: the group is not kept, nor is its unchanged member.
        let changed = plan(&(group("A B") + &instance("A", 1, 100) + &instance("B", 2, 90)));
        assert!(pair_units(&old, &changed).is_empty());
        // The same instances out of the group: different units.
        let apart = plan(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        assert!(pair_units(&old, &apart).is_empty());
    }
}

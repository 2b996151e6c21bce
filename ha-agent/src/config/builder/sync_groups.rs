//! `vrrp_sync_group`: its keywords, then its members (each an instance, in one group only)
//! and its trackers, resolved once the instances are complete (keepalived/vrrp/vrrp_sync.c
//! `vrrp_sync_set_group`, vrrp.c `sync_group_tracking_init`).

use std::collections::HashMap;

use super::trackers::TrackKind;
use super::{Builder, RawGroup, RawInstance, source};
use crate::config::keywords::Context;
use crate::config::model::{Notify, SyncGroup, VrrpInstance};
use crate::config::parser::Stmt;

/// The sync groups with the names of their valid members, and the group of each member.
pub(super) struct Members {
    pub(super) groups: Vec<(RawGroup, Vec<String>)>,
    member_of: HashMap<String, String>,
}

impl Members {
    /// The sync group `instance` is a member of.
    pub(super) fn group_of(&self, instance: &str) -> Option<&RawGroup> {
        let name = self.member_of.get(instance)?;
        self.groups.iter().map(|(g, _)| g).find(|g| &g.name == name)
    }
}

impl Builder<'_> {
    pub(super) fn sync_group(&mut self, st: &Stmt) {
        let Some((name, stmts)) =
            self.named_block(st, |b, name| b.groups.iter().any(|g| g.name == name))
        else {
            return;
        };
        let mut g = RawGroup {
            name: name.clone(),
            pos: st.pos().clone(),
            members: Vec::new(),
            had_group: false,
            notify: Notify::default(),
            track_if: Vec::new(),
            track_script: Vec::new(),
            track_file: Vec::new(),
            track_process: Vec::new(),
            tracking_weight: false,
        };
        let ctx = format!("vrrp_sync_group {name}: ");
        for x in stmts {
            match x.kw() {
                "group" => {
                    if g.had_group {
                        self.d
                            .error(x.pos(), format!("{ctx}group: already specified"));
                        continue;
                    }
                    g.had_group = true;
                    if let Some(lines) = self.block(x) {
                        for l in lines {
                            self.no_block(l);
                            g.members.push(l.keyword.clone());
                            g.members.extend(l.args.iter().cloned());
                        }
                    }
                }
                "track_interface" => {
                    let ctx = format!("vrrp_sync_group {}: track_interface", g.name);
                    self.track_interfaces(x, &mut g.track_if, ctx);
                }
                "track_script" => self.track_refs(x, &mut g.track_script),
                "track_file" => self.track_refs(x, &mut g.track_file),
                "track_process" => self.track_refs(x, &mut g.track_process),
                "notify" => self.notify_script(x, &mut g.notify.notify),
                "notify_master" => self.notify_script(x, &mut g.notify.master),
                "notify_backup" => self.notify_script(x, &mut g.notify.backup),
                "notify_fault" => self.notify_script(x, &mut g.notify.fault),
                "notify_stop" => self.notify_script(x, &mut g.notify.stop),
                "notify_priority_changes" => {
                    if let Some(b) = self.flag(x) {
                        g.notify.priority_changes = Some(b);
                    }
                }
                "sync_group_tracking_weight" => {
                    self.bare_flag(x);
                    g.tracking_weight = true;
                }
                "global_tracking" => {
                    self.bare_flag(x);
                    self.d.warn(
                        x.pos(),
                        "global_tracking is deprecated: use sync_group_tracking_weight",
                    );
                    g.tracking_weight = true;
                }
                _ => self.not_handled(x, Context::SyncGroup, &ctx),
            }
        }
        self.groups.push(g);
    }

    /// Every member must name an instance, and be in one group only.
    pub(super) fn sync_group_members(&mut self) -> Members {
        let mut member_of: HashMap<String, String> = HashMap::new();
        let mut groups = Vec::new();
        for g in std::mem::take(&mut self.groups) {
            let mut members = Vec::new();
            for m in &g.members {
                if !self.instances.iter().any(|i| i.name == m.text) {
                    self.d.error(
                        &m.pos,
                        format!(
                            "vrrp_sync_group {}: no vrrp_instance named \"{}\"",
                            g.name, m.text
                        ),
                    );
                    continue;
                }
                if let Some(other) = member_of.get(&m.text) {
                    self.d.error(
                        &m.pos,
                        format!(
                            "vrrp_sync_group {}: {} is already in sync group {other}",
                            g.name, m.text
                        ),
                    );
                    continue;
                }
                if members.contains(&m.text) {
                    self.d.error(
                        &m.pos,
                        format!("vrrp_sync_group {}: {} listed twice", g.name, m.text),
                    );
                    continue;
                }
                member_of.insert(m.text.clone(), g.name.clone());
                members.push(m.text.clone());
            }
            if !g.had_group || (g.members.is_empty()) {
                self.d.error(
                    &g.pos,
                    format!(
                        "vrrp_sync_group {}: no members (expected `group {{ INSTANCE … }}`)",
                        g.name
                    ),
                );
            } else if members.len() == 1 && g.members.len() == 1 {
                // vrrp_sync_set_group: "has only 1 virtual router(s) - this probably isn't what you want"
                self.d.warn(
                    &g.pos,
                    format!(
                        "vrrp_sync_group {}: only one instance ({}) - this probably isn't what you want",
                        g.name, members[0]
                    ),
                );
            }
            groups.push((g, members));
        }
        Members { groups, member_of }
    }

    /// A group as configured, once its members are complete: with a priority-255 member,
    /// tracker weights are cleared.
    pub(super) fn complete_sync_group(
        &mut self,
        g: &RawGroup,
        members: &[String],
        done: &[(VrrpInstance, &RawInstance)],
    ) -> SyncGroup {
        let has_owner = done
            .iter()
            .any(|(i, _)| members.contains(&i.name) && i.priority == 255);
        let ctx = format!("vrrp_sync_group {}", g.name);
        SyncGroup {
            name: g.name.clone(),
            source: source(&g.pos),
            members: members.to_vec(),
            notify: g.notify.clone(),
            track_interfaces: self.group_trackers(
                TrackKind::Interface,
                &g.track_if,
                has_owner,
                &ctx,
            ),
            track_scripts: self.group_trackers(TrackKind::Script, &g.track_script, has_owner, &ctx),
            track_files: self.group_trackers(TrackKind::File, &g.track_file, has_owner, &ctx),
            track_processes: self.group_trackers(
                TrackKind::Process,
                &g.track_process,
                has_owner,
                &ctx,
            ),
            sync_group_tracking_weight: g.tracking_weight,
        }
    }
}

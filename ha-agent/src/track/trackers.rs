//! What every tracker reads now (interfaces running, scripts succeeding, track_file values,
//! track_process counts) and
//! the pure evaluation of one instance's trackers against it: its FAULT, its effective priority,
//! and what `status` shows. The runtime feeds the readings in and delivers what changed.

use std::collections::HashMap;

use super::{Tracked, effective};
use crate::config::{Tracker, VrrpScript};

/// The trackers an instance (or its sync group) names.
#[derive(Clone, Copy, Default)]
pub struct Tracks<'a> {
    pub interfaces: &'a [Tracker],
    pub scripts: &'a [Tracker],
    pub files: &'a [Tracker],
    pub processes: &'a [Tracker],
}

/// One tracker as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub kind: &'static str,
    pub name: String,
    pub up: bool,
    pub weight: i32,
    /// A track_process: how many of its processes run.
    pub count: Option<u32>,
}

/// What the trackers make of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub fault: bool,
    pub priority: u8,
    pub shown: Vec<Shown>,
}

/// The readings of every tracked object.
#[derive(Default)]
pub struct Trackers {
    /// Interface name → running (carrier).
    running: HashMap<String, bool>,
    /// Each `vrrp_script` (in configuration order): its name, command and whether it succeeds.
    scripts: Vec<(String, Vec<String>, bool)>,
    /// Each track_file's last reading, by name.
    values: HashMap<String, Result<i64, String>>,
    /// Each vrrp_track_process: its processes running, and whether its quorum holds.
    processes: HashMap<String, (u32, bool)>,
}

impl Trackers {
    /// The readings at start: interfaces as read, scripts as their `init_fail` says.
    pub fn new(running: HashMap<String, bool>, scripts: &[VrrpScript]) -> Trackers {
        Self::with_scripts(
            running,
            scripts
                .iter()
                .map(|s| (s.name.clone(), s.command.clone(), !s.init_fail)),
        )
    }

    /// The readings at start, scripts given as (name, command, up).
    pub fn with_scripts(
        running: HashMap<String, bool>,
        scripts: impl IntoIterator<Item = (String, Vec<String>, bool)>,
    ) -> Trackers {
        Trackers {
            running,
            scripts: scripts.into_iter().collect(),
            values: HashMap::new(),
            processes: HashMap::new(),
        }
    }

    /// After a reload: scripts with the same name and command keep their last result (the
    /// track files are read again, and interfaces as read now).
    pub fn carry_over(&mut self, old: Trackers) {
        for (name, command, up) in &mut self.scripts {
            if let Some(o) = old.scripts.iter().find(|o| o.0 == *name && o.1 == *command) {
                *up = o.2;
            }
        }
    }

    /// Records whether interface `name` runs; false when that is what it was already.
    pub fn set_running(&mut self, name: &str, running: bool) -> bool {
        self.running.insert(name.to_owned(), running) != Some(running)
    }

    /// Records the result of script `index` (configuration order).
    pub fn set_script(&mut self, index: usize, up: bool) {
        if let Some(s) = self.scripts.get_mut(index) {
            s.2 = up;
        }
    }

    /// Records a track_file reading; returns why it cannot be read when that is news (a file
    /// that cannot be read counts as 0, as keepalived; why is said once, when it starts).
    pub fn set_value(&mut self, name: &str, value: Result<i64, String>) -> Option<String> {
        let news = match &value {
            Err(why) if self.values.get(name) != Some(&value) => Some(why.clone()),
            _ => None,
        };
        self.values.insert(name.to_owned(), value);
        news
    }

    /// Records the track_process readings (`track::process::monitor`).
    pub fn set_processes(&mut self, readings: &[super::process::Reading]) {
        for r in readings {
            self.processes.insert(r.name.clone(), (r.count, r.up));
        }
    }

    fn running(&self, name: &str) -> bool {
        self.running.get(name).copied().unwrap_or(false)
    }

    /// Instance trackers `own` and its sync group's `group`, plus the interfaces of its VIPs on
    /// another `dev` (`vip_interfaces`: weight 0, as keepalived), on configured `priority`.
    pub fn evaluate(
        &self,
        priority: u8,
        own: Tracks<'_>,
        vip_interfaces: &[String],
        group: Tracks<'_>,
    ) -> Evaluation {
        let mut trackers = Vec::new();
        let mut shown = Vec::new();
        let mut show = |kind: &'static str, t: &Tracker, up: bool| {
            shown.push(Shown {
                kind,
                name: t.name.clone(),
                up,
                weight: t.weight,
                count: None,
            });
        };
        let up_down = |up: bool, t: &Tracker| Tracked::UpDown {
            up,
            weight: t.weight,
            reverse: t.reverse,
        };
        let implicit: Vec<Tracker> = vip_interfaces
            .iter()
            .map(|name| Tracker {
                name: name.clone(),
                weight: 0,
                reverse: false,
            })
            .collect();
        for t in own
            .interfaces
            .iter()
            .chain(group.interfaces)
            .chain(&implicit)
        {
            let up = self.running(&t.name);
            show("interface", t, up);
            trackers.push(up_down(up, t));
        }
        for t in own.scripts.iter().chain(group.scripts) {
            let up = self
                .scripts
                .iter()
                .find(|s| s.0 == t.name)
                .is_some_and(|s| s.2);
            show("script", t, up);
            trackers.push(up_down(up, t));
        }
        for t in own.files.iter().chain(group.files) {
            let value = match self.values.get(&t.name) {
                Some(Ok(v)) => *v,
                _ => 0,
            };
            show("file", t, value == 0 || t.weight != 0);
            trackers.push(Tracked::File {
                value,
                weight: t.weight,
                reverse: t.reverse,
            });
        }
        // A process tracked by the instance and its group counts once, with the group's weight
        // unless the instance's is 0 (vrrp.c add_vrrp_to_track_process).
        let group_processes = group.processes.iter().filter(|g| {
            !own.processes
                .iter()
                .any(|o| o.name == g.name && o.weight == 0)
        });
        let own_processes = own
            .processes
            .iter()
            .filter(|o| o.weight == 0 || !group.processes.iter().any(|g| g.name == o.name));
        for t in own_processes.chain(group_processes) {
            let (count, up) = self.processes.get(&t.name).copied().unwrap_or((0, false));
            shown.push(Shown {
                kind: "process",
                name: t.name.clone(),
                up,
                weight: t.weight,
                count: Some(count),
            });
            trackers.push(up_down(up, t));
        }
        let eff = effective(priority, &trackers);
        Evaluation {
            fault: eff.fault,
            priority: eff.priority,
            shown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, weight: i32, reverse: bool) -> Tracker {
        Tracker {
            name: name.to_owned(),
            weight,
            reverse,
        }
    }

    fn script(name: &str, init_fail: bool) -> (String, Vec<String>, bool) {
        (name.to_owned(), vec![format!("/bin/{name}")], !init_fail)
    }

    #[test]
    fn an_interface_down_with_weight_0_is_fault_and_shown_down() {
        let tr = Trackers::with_scripts(
            HashMap::from([("eth0".into(), true), ("eth1".into(), false)]),
            [],
        );
        let ifs = [t("eth0", 0, false), t("eth1", 0, false)];
        let e = tr.evaluate(
            100,
            Tracks {
                interfaces: &ifs,
                ..Default::default()
            },
            &[],
            Tracks::default(),
        );
        assert!(e.fault);
        assert_eq!(e.priority, 100);
        assert_eq!(
            e.shown
                .iter()
                .map(|s| (s.name.as_str(), s.up))
                .collect::<Vec<_>>(),
            [("eth0", true), ("eth1", false)]
        );
    }

    #[test]
    fn weights_of_the_instance_and_its_group_add_up() {
        let mut tr =
            Trackers::with_scripts(HashMap::new(), [script("chk", false), script("db", true)]);
        let (own, group) = ([t("chk", 10, false)], [t("db", -20, false)]);
        let scripts = |s| Tracks {
            scripts: s,
            ..Default::default()
        };
        let e = tr.evaluate(100, scripts(&own), &[], scripts(&group));
        // chk succeeds (+10), db starts failed (init_fail: -20).
        assert_eq!((e.fault, e.priority), (false, 90));
        tr.set_script(1, true);
        let e = tr.evaluate(100, scripts(&own), &[], scripts(&group));
        assert_eq!(e.priority, 110);
    }

    #[test]
    fn a_vip_interface_down_is_fault_at_weight_0() {
        let tr = Trackers::with_scripts(HashMap::from([("eth1".into(), false)]), []);
        let e = tr.evaluate(100, Tracks::default(), &["eth1".into()], Tracks::default());
        assert!(e.fault);
        assert_eq!(e.shown[0].kind, "interface");
    }

    #[test]
    fn track_file_values_and_unreadable_files() {
        let mut tr = Trackers::with_scripts(HashMap::new(), []);
        let files = [t("f", -10, false)];
        let own = Tracks {
            files: &files,
            ..Default::default()
        };
        assert_eq!(tr.evaluate(100, own, &[], Tracks::default()).priority, 100);
        assert_eq!(tr.set_value("f", Ok(3)), None);
        assert_eq!(tr.evaluate(100, own, &[], Tracks::default()).priority, 70);
        // Unreadable: said once, counted as 0.
        assert_eq!(tr.set_value("f", Err("gone".into())), Some("gone".into()));
        assert_eq!(tr.set_value("f", Err("gone".into())), None);
        assert_eq!(tr.evaluate(100, own, &[], Tracks::default()).priority, 100);
        // reverse swaps the sign; 255 (the owner) is never changed.
        let rev = [t("f", -10, true)];
        tr.set_value("f", Ok(3));
        let own = Tracks {
            files: &rev,
            ..Default::default()
        };
        assert_eq!(tr.evaluate(100, own, &[], Tracks::default()).priority, 130);
        assert_eq!(tr.evaluate(255, own, &[], Tracks::default()).priority, 255);
    }

    #[test]
    fn a_reload_keeps_unchanged_scripts_results() {
        let mut old =
            Trackers::with_scripts(HashMap::new(), [script("a", false), script("b", false)]);
        old.set_script(0, false);
        old.set_script(1, false);
        let changed = ("b".to_owned(), vec!["/bin/other".to_owned()], true);
        let mut new = Trackers::with_scripts(HashMap::new(), [changed, script("a", false)]);
        new.carry_over(old);
        // b's command changed: starts over (up, no init_fail); a kept its failure.
        assert!(new.scripts[0].2);
        assert!(!new.scripts[1].2);
    }

    #[test]
    fn set_running_says_whether_it_changed() {
        let mut tr = Trackers::with_scripts(HashMap::from([("eth0".into(), true)]), []);
        assert!(!tr.set_running("eth0", true));
        assert!(tr.set_running("eth0", false));
        assert!(tr.set_running("eth9", true));
    }

    #[test]
    fn processes_count_like_scripts_and_once_when_the_group_tracks_them_too() {
        use crate::track::process::Reading;
        let mut tr = Trackers::with_scripts(HashMap::new(), []);
        let reading = |name: &str, count, up| Reading {
            name: name.into(),
            count,
            up,
        };
        tr.set_processes(&[reading("web", 0, false), reading("db", 2, true)]);
        let own = [t("web", 0, false), t("db", 10, false)];
        let tracks = |p| Tracks {
            processes: p,
            ..Default::default()
        };
        let e = tr.evaluate(100, tracks(&own), &[], Tracks::default());
        // web down at weight 0: FAULT; db up: +10.
        assert_eq!((e.fault, e.priority), (true, 110));
        assert_eq!(
            e.shown
                .iter()
                .map(|s| (s.kind, s.name.as_str(), s.up, s.count))
                .collect::<Vec<_>>(),
            [
                ("process", "web", false, Some(0)),
                ("process", "db", true, Some(2))
            ]
        );
        // The group's weight replaces the instance's (vrrp.c add_vrrp_to_track_process) ...
        let group = [t("db", 30, false)];
        let e = tr.evaluate(100, tracks(&own[1..]), &[], tracks(&group));
        assert_eq!((e.priority, e.shown.len()), (130, 1));
        // ... unless the instance's is 0.
        let unweighted = [t("db", 0, false)];
        tr.set_processes(&[reading("db", 0, false)]);
        let e = tr.evaluate(100, tracks(&unweighted), &[], tracks(&group));
        assert_eq!((e.fault, e.priority, e.shown.len()), (true, 100, 1));
    }
}

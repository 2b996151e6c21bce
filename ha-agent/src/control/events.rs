//! The agent's event stream: the log events that tools read (the chaos driver, the bench, an
//! operator's alerts), each one `tracing` event with typed fields beside its human message, so
//! that the wording can change without breaking what reads them. `--log-format json` writes the
//! fields (`{"timestamp":…,"level":…,"fields":{"message":…,"instance":…,"event":…,…}}`); the
//! text formats show the message and `instance=`/`group=` only.
//!
//! | `event` | level | fields |
//! |---|---|---|
//! | `transition` | INFO, WARN when `to` is FAULT | `instance`, `from` (INIT, BACKUP, MASTER, FAULT), `to` (BACKUP, MASTER, FAULT, STOP), `reason`, `priority` (configured), `effective`, `master` and `master_priority` (when one is known), `fault` (what is down, on the way to FAULT) |
//! | `group_transition` | INFO | `group`, `from` (INIT at start), `to` (STOP at exit) |
//! | `adverts_rejected` | INFO when a counter appears, DEBUG as it grows | `interface`, `vrid`, `reason`, `total` (XDP datapath; see [`super::rejections`]) |
//! | `handed_over` | INFO | `instance`, `successor`, `priority` (the successor's), `after_ms` (from our priority-0 advert to its first advert) |
//!
//! Fields after `event` are the event's; `instance` or `group` come before it.

use std::{fmt::Display, net::IpAddr, time::Duration};

use tracing::{Level, event};

use crate::vrrp::instance::State;

/// The field that names the event; the text formats hide the fields from it on.
pub const EVENT_FIELD: &str = "event";
/// `event` of an instance's state change.
pub const TRANSITION: &str = "transition";
/// `event` of a sync group's state change.
pub const GROUP_TRANSITION: &str = "group_transition";
/// `event` of a resigned master hearing its successor.
pub const HANDED_OVER: &str = "handed_over";

/// The word of a state as a transition's `from` (INIT for Initialize: the agent starts).
pub fn from_word(state: State) -> &'static str {
    match state {
        State::Initialize => "INIT",
        s => crate::notify::state_word(s),
    }
}

/// The word of a state as a transition's `to` (STOP for Initialize, as notify scripts hear it).
pub fn to_word(state: State) -> &'static str {
    crate::notify::state_word(state)
}

/// An instance's state change, as [`Transition::emit`] logs it.
pub struct Transition<'a> {
    pub instance: &'a str,
    pub from: State,
    pub to: State,
    /// Why, in words (the event that caused it).
    pub reason: &'a dyn Display,
    /// The configured priority.
    pub priority: u8,
    pub effective: u8,
    /// The master as the instance knows it, with its priority (ourselves in MASTER: "self",
    /// so that our address never reads as the master we replaced).
    pub master: Option<(IpAddr, u8)>,
    /// What is down, when `to` is FAULT (see [`fault_text`]).
    pub fault: Option<String>,
}

impl Transition<'_> {
    /// The human message: `BACKUP -> MASTER (reason; priority 100, effective 100, master
    /// 192.0.2.1 (priority 150))`, then `: interface eth0 down` on the way to FAULT.
    pub fn message(&self) -> String {
        let master = match self.master {
            Some(_) if self.to == State::Master => "self".to_owned(),
            Some((addr, priority)) => format!("{addr} (priority {priority})"),
            None => "-".to_owned(),
        };
        let mut line = format!(
            "{} -> {} ({}; priority {}, effective {}, master {master})",
            from_word(self.from),
            to_word(self.to),
            self.reason,
            self.priority,
            self.effective
        );
        if let Some(fault) = &self.fault {
            line.push_str(": ");
            line.push_str(fault);
        }
        line
    }

    /// Logs the transition: at WARN into FAULT (an operator alerts on it), else at INFO.
    pub fn emit(&self) {
        let master = self.master.map(|(a, _)| match self.to {
            State::Master => "self".to_owned(),
            _ => a.to_string(),
        });
        macro_rules! at {
            ($level:expr) => {
                event!(
                    $level,
                    instance = %self.instance,
                    event = TRANSITION,
                    from = from_word(self.from),
                    to = to_word(self.to),
                    reason = %self.reason,
                    priority = self.priority,
                    effective = self.effective,
                    master = master.as_deref(),
                    master_priority = self.master.map(|(_, p)| p),
                    fault = self.fault.as_deref(),
                    "{}",
                    self.message()
                )
            };
        }
        if self.to == State::Fault {
            at!(Level::WARN);
        } else {
            at!(Level::INFO);
        }
    }
}

/// What put an instance in FAULT, for [`Transition::fault`]: its own interface when down (and
/// tracked), then each tracker down that faults rather than lowers the priority (weight 0),
/// as `(kind, name)`: `interface eth0 down, script chk_web down`. None when nothing of its own
/// is down (a sync-group member's fault: the reason names it).
pub fn fault_text<'a>(
    own_interface_down: Option<&'a str>,
    down: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    let parts: Vec<String> = own_interface_down
        .map(|name| ("interface", name))
        .into_iter()
        .chain(down)
        .map(|(kind, name)| format!("{kind} {name} down"))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A sync group's state change: `sync group G: BACKUP -> MASTER`.
pub fn group_transition(group: &str, from: State, to: State) {
    event!(
        Level::INFO,
        group = %group,
        event = GROUP_TRANSITION,
        from = to_word(from),
        to = to_word(to),
        "sync group {group}: {} -> {}",
        to_word(from),
        to_word(to)
    );
}

/// A resigned master heard `successor` (at `priority`) advertise `after` its priority-0 advert.
pub fn handed_over(instance: &str, successor: IpAddr, priority: u8, after: Duration) {
    let after_ms = after.as_secs_f64() * 1e3;
    event!(
        Level::INFO,
        instance = %instance,
        event = HANDED_OVER,
        successor = %successor,
        priority,
        after_ms,
        "handed over: {successor} (priority {priority}) is master, {after_ms:.1} ms after our \
         priority-0 advert"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::logging::{Captured, LogFormat};

    fn fields(line: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["fields"].clone()
    }

    fn to_fault() -> Transition<'static> {
        Transition {
            instance: "VI_1",
            from: State::Master,
            to: State::Fault,
            reason: &"fault (interface down or a tracker in fault)",
            priority: 150,
            effective: 150,
            master: None,
            fault: fault_text(Some("eth0"), [("script", "chk_web")]),
        }
    }

    /// A node that becomes master is the master: "self", never its address, which would read
    /// as the master it replaced.
    #[test]
    fn a_new_master_names_itself_self() {
        let up = Transition {
            instance: "VI_1",
            from: State::Backup,
            to: State::Master,
            reason: &"master down timer expired (no advert from the master)",
            priority: 150,
            effective: 150,
            master: Some(("192.0.2.2".parse().unwrap(), 150)),
            fault: None,
        };
        assert!(up.message().ends_with("master self)"), "{}", up.message());
        let json = Captured::run("info", LogFormat::Json, false, || up.emit());
        assert_eq!(fields(json.trim())["master"], "self");
    }

    #[test]
    fn a_transition_carries_its_fields_in_json_and_only_its_message_in_text() {
        let up = Transition {
            instance: "VI_1",
            from: State::Master,
            to: State::Backup,
            reason: &"preempted by 192.0.2.1, priority 150 > 90",
            priority: 100,
            effective: 90,
            master: Some(("192.0.2.1".parse().unwrap(), 150)),
            fault: None,
        };
        let json = Captured::run("info", LogFormat::Json, false, || up.emit());
        let f = fields(json.trim());
        assert_eq!(f["event"], "transition");
        assert_eq!(f["instance"], "VI_1");
        assert_eq!(f["from"], "MASTER");
        assert_eq!(f["to"], "BACKUP");
        assert_eq!(f["reason"], "preempted by 192.0.2.1, priority 150 > 90");
        assert_eq!(f["priority"], 100);
        assert_eq!(f["effective"], 90);
        assert_eq!(f["master"], "192.0.2.1");
        assert_eq!(f["master_priority"], 150);
        assert!(f.get("fault").is_none(), "{f}");
        assert_eq!(
            f["message"],
            "MASTER -> BACKUP (preempted by 192.0.2.1, priority 150 > 90; priority 100, \
             effective 90, master 192.0.2.1 (priority 150))"
        );
        let text = Captured::run("info", LogFormat::Text, false, || up.emit());
        assert!(
            text.trim_end().ends_with(
                "INFO MASTER -> BACKUP (preempted by 192.0.2.1, priority 150 > 90; priority 100, \
                 effective 90, master 192.0.2.1 (priority 150)) instance=VI_1"
            ),
            "{text}"
        );
        let startup = Transition {
            from: State::Initialize,
            to: State::Backup,
            reason: &"startup",
            master: None,
            ..up
        };
        let f = fields(Captured::run("info", LogFormat::Json, false, || startup.emit()).trim());
        assert_eq!((&f["from"], &f["to"]), (&"INIT".into(), &"BACKUP".into()));
        assert!(f.get("master").is_none() && f.get("master_priority").is_none());
        assert!(f["message"].as_str().unwrap().ends_with("master -)"), "{f}");
    }

    #[test]
    fn fault_logs_at_warn_with_what_is_down() {
        let json = Captured::run("info", LogFormat::Json, false, || to_fault().emit());
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["fields"]["to"], "FAULT");
        assert_eq!(
            v["fields"]["fault"],
            "interface eth0 down, script chk_web down"
        );
        let journal = Captured::run("info", LogFormat::Text, true, || to_fault().emit());
        assert_eq!(
            journal,
            "<4> WARN MASTER -> FAULT (fault (interface down or a tracker in fault); priority \
             150, effective 150, master -): interface eth0 down, script chk_web down \
             instance=VI_1\n"
        );
        assert_eq!(fault_text(None, []), None);
        assert_eq!(
            fault_text(
                None,
                [("file", "f1"), ("vip", "192.0.2.9 (cannot be added)")]
            )
            .unwrap(),
            "file f1 down, vip 192.0.2.9 (cannot be added) down"
        );
    }

    #[test]
    fn group_transitions_and_handovers_are_events() {
        let json = Captured::run("info", LogFormat::Json, false, || {
            group_transition("G1", State::Backup, State::Master);
            handed_over(
                "VI_1",
                "192.0.2.2".parse().unwrap(),
                100,
                Duration::from_micros(3_456),
            );
        });
        let lines: Vec<&str> = json.lines().collect();
        let g = fields(lines[0]);
        assert_eq!(g["event"], "group_transition");
        assert_eq!(
            (&g["group"], &g["from"], &g["to"]),
            (&"G1".into(), &"BACKUP".into(), &"MASTER".into())
        );
        assert_eq!(g["message"], "sync group G1: BACKUP -> MASTER");
        let h = fields(lines[1]);
        assert_eq!(h["event"], "handed_over");
        assert_eq!(
            (&h["instance"], &h["successor"]),
            (&"VI_1".into(), &"192.0.2.2".into())
        );
        assert_eq!(h["priority"], 100);
        assert!(
            (h["after_ms"].as_f64().unwrap() - 3.456).abs() < 1e-9,
            "{h}"
        );
        assert_eq!(
            h["message"],
            "handed over: 192.0.2.2 (priority 100) is master, 3.5 ms after our priority-0 advert"
        );
        let text = Captured::run("info", LogFormat::Text, false, || {
            handed_over(
                "VI_1",
                "192.0.2.2".parse().unwrap(),
                100,
                Duration::from_millis(3),
            );
        });
        assert!(
            text.trim_end().ends_with(
                "handed over: 192.0.2.2 (priority 100) is master, 3.0 ms after our priority-0 \
                 advert instance=VI_1"
            ),
            "{text}"
        );
    }
}

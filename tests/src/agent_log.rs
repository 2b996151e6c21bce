//! Reads an ha-agent log written with `--log-format json`: one entry a line, and the typed
//! events of ha-agent's `control::events` (`transition`, `group_transition`, `handed_over`,
//! `adverts_rejected`) by their fields, so that what the chaos driver and the bench measure
//! does not depend on the wording of a message.

use serde_json::{Map, Value};

/// One line of the log.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Seconds since the epoch (`timestamp`).
    pub t: f64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The event's fields, the human `message` among them.
    pub fields: Map<String, Value>,
}

impl Entry {
    /// A string field (`from`, `to`, `reason`, `instance`…).
    pub fn str(&self, name: &str) -> Option<&str> {
        self.fields.get(name)?.as_str()
    }

    /// A number field (`priority`, `after_ms`…).
    pub fn num(&self, name: &str) -> Option<f64> {
        self.fields.get(name)?.as_f64()
    }

    /// The human message.
    pub fn message(&self) -> &str {
        self.str("message").unwrap_or_default()
    }

    /// The `event` field of a typed event.
    pub fn event(&self) -> Option<&str> {
        self.str("event")
    }

    /// An instance's state change.
    pub fn is_transition(&self) -> bool {
        self.event() == Some("transition")
    }
}

/// The entry of one JSON log line; None for anything else (a text line, a partial line).
pub fn parse(line: &str) -> Option<Entry> {
    let Value::Object(mut v) = serde_json::from_str(line.trim()).ok()? else {
        return None;
    };
    let t = crate::utc_epoch(v.get("timestamp")?.as_str()?.strip_suffix('Z')?)?;
    let level = v.get("level")?.as_str()?.to_owned();
    let Value::Object(fields) = v.remove("fields")? else {
        return None;
    };
    Some(Entry { t, level, fields })
}

/// The entries of a log, in order.
pub fn entries(log: &str) -> impl Iterator<Item = Entry> + '_ {
    log.lines().filter_map(parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_by_their_fields() {
        let log = r#"{"timestamp":"2026-11-22T03:39:00.550058Z","level":"INFO","fields":{"message":"BACKUP -> MASTER (whatever the words; priority 100, effective 100, master -)","instance":"VI_A","event":"transition","from":"BACKUP","to":"MASTER","reason":"whatever the words","priority":100,"effective":100}}
2026-11-22T03:39:00.550058Z  INFO BACKUP -> MASTER (text) instance=VI_A
{"timestamp":"2026-11-22T03:39:01.000000Z","level":"INFO","fields":{"message":"handed over: …","instance":"VI_A","event":"handed_over","successor":"192.0.2.2","priority":100,"after_ms":3.5}}
{"timestamp":"2026-11-22T03:39:0"#;
        let all: Vec<Entry> = entries(log).collect();
        assert_eq!(
            all.len(),
            2,
            "the text line and the cut line are not entries"
        );
        let t = &all[0];
        assert!(t.is_transition());
        assert_eq!(
            (t.str("from"), t.str("to")),
            (Some("BACKUP"), Some("MASTER"))
        );
        assert_eq!(t.str("instance"), Some("VI_A"));
        assert_eq!(t.num("priority"), Some(100.0));
        assert_eq!(t.level, "INFO");
        // `date -u -d 2026-11-22T03:39:00 +%s`
        assert!((t.t - 1_795_318_740.550058).abs() < 1e-6, "{}", t.t);
        let h = &all[1];
        assert_eq!(h.event(), Some("handed_over"));
        assert_eq!(h.num("after_ms"), Some(3.5));
        assert!(h.message().starts_with("handed over"));
    }
}

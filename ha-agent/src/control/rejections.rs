//! Log lines for the adverts the XDP datapath rejected. `vrrp_rx` only counts them (per VRID and
//! reason, read once a second); the socket datapath logs each one it drops. So that both tell
//! an operator the same, a counter that appears logs one line at info and a counter that grows
//! one at debug, per (interface, VRID, reason): a flood does not flood the log.

use std::collections::BTreeMap;

use tracing::{debug, info};

/// The rejection counts by (interface, VRID, reason), as the status shows them.
pub type Counts = BTreeMap<(String, u8, &'static str), u64>;

/// `event` of a rejection counter that appeared or grew (see [`super::events`]).
pub const ADVERTS_REJECTED: &str = "adverts_rejected";

/// How a counter changed between two reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Seen for the first time (its count may include a previous agent's, from pinned maps).
    First { total: u64 },
    /// Grew by `new` since the last read.
    More { new: u64, total: u64 },
}

impl Change {
    /// The change from `previous` (None: never seen; 0 counts as never) to `total`; None when
    /// it did not grow (a counter that fell was reset with its map: the next growth is logged).
    pub fn of(previous: Option<u64>, total: u64) -> Option<Change> {
        match previous.unwrap_or(0) {
            0 if total > 0 => Some(Change::First { total }),
            before if total > before => Some(Change::More {
                new: total - before,
                total,
            }),
            _ => None,
        }
    }
}

/// Stores the count XDP reports for (`interface`, `vrid`, `reason`) in `counts` and logs what
/// changed.
pub fn record(counts: &mut Counts, interface: &str, vrid: u8, reason: &'static str, total: u64) {
    let previous = counts.insert((interface.to_owned(), vrid, reason), total);
    match Change::of(previous, total) {
        Some(Change::First { total }) => info!(
            event = ADVERTS_REJECTED,
            interface,
            vrid,
            reason,
            total,
            "{interface}: dropped advert(s) (vrid {vrid}): {reason} ({total} counted at XDP)"
        ),
        Some(Change::More { new, total }) => debug!(
            event = ADVERTS_REJECTED,
            interface,
            vrid,
            reason,
            total,
            "{interface}: dropped advert(s) (vrid {vrid}): {reason} (+{new}, {total} counted at XDP)"
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::logging::{Captured, LogFormat};

    #[test]
    fn a_new_counter_is_one_line_at_info_growth_is_at_debug() {
        assert_eq!(Change::of(None, 0), None);
        assert_eq!(Change::of(None, 3), Some(Change::First { total: 3 }));
        assert_eq!(Change::of(Some(0), 1), Some(Change::First { total: 1 }));
        assert_eq!(Change::of(Some(3), 3), None);
        assert_eq!(
            Change::of(Some(3), 8),
            Some(Change::More { new: 5, total: 8 })
        );
        assert_eq!(Change::of(Some(8), 2), None, "a reset map");

        let mut counts = Counts::new();
        let info = Captured::run("info", LogFormat::Text, false, || {
            for total in [0, 1, 40, 900, 900] {
                record(&mut counts, "eth0", 52, "auth_mismatch", total);
            }
            record(&mut counts, "eth0", 52, "bad_ttl", 2);
            record(&mut counts, "eth1", 52, "auth_mismatch", 1);
        });
        let lines: Vec<&str> = info.lines().collect();
        assert_eq!(
            lines.len(),
            3,
            "one line per (interface, vrid, reason):\n{info}"
        );
        assert!(
            lines[0].ends_with(
                "INFO eth0: dropped advert(s) (vrid 52): auth_mismatch (1 counted at XDP)"
            ),
            "{info}"
        );
        assert!(lines[1].contains("eth0: dropped advert(s) (vrid 52): bad_ttl (2 counted"));
        assert!(lines[2].contains("eth1: dropped advert(s) (vrid 52): auth_mismatch"));
        assert_eq!(counts[&("eth0".to_owned(), 52, "auth_mismatch")], 900);

        let mut counts = Counts::new();
        let debug = Captured::run("debug", LogFormat::Json, false, || {
            record(&mut counts, "eth0", 7, "auth_mismatch", 1);
            record(&mut counts, "eth0", 7, "auth_mismatch", 41);
        });
        let more: serde_json::Value = serde_json::from_str(debug.lines().nth(1).unwrap()).unwrap();
        assert_eq!(more["level"], "DEBUG");
        assert_eq!(more["fields"]["event"], "adverts_rejected");
        assert_eq!(more["fields"]["reason"], "auth_mismatch");
        assert_eq!(more["fields"]["vrid"], 7);
        assert_eq!(more["fields"]["total"], 41);
        assert!(
            more["fields"]["message"]
                .as_str()
                .unwrap()
                .ends_with("(+40, 41 counted at XDP)")
        );
    }
}

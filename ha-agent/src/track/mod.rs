//! Trackers: `track_interface`, `track_script` (`vrrp_script`), `track_file`, `track_process`
//! (`vrrp_track_process`: up while its quorum holds, like a script), and how they make
//! an instance's effective priority or put it in FAULT, as keepalived does
//! (keepalived/vrrp/vrrp_track.c, `vrrp_set_effective_priority`).
//!
//! - weight 0: the tracked object being down (interface not running, script failing) puts the
//!   instance in FAULT.
//! - weight > 0: added while the object is up; weight < 0: added while it is down. `reverse`
//!   swaps up and down.
//! - track_file: the file's integer value × weight (a value × weight of -254 or less is FAULT).
//! - The result is clamped to 1..=254; the address owner (255) is never changed.

pub mod file;
pub mod process;
pub mod script;
mod trackers;

pub use trackers::{Evaluation, Shown, Trackers, Tracks};

/// The state of one tracker reference, as the priority computation needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracked {
    /// An interface or a script: up (running / succeeding) or not, with the reference's weight.
    UpDown {
        up: bool,
        weight: i32,
        reverse: bool,
    },
    /// A track_file: its current value and the reference's weight.
    File {
        value: i64,
        weight: i32,
        reverse: bool,
    },
}

/// What the trackers make of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effective {
    pub fault: bool,
    pub priority: u8,
}

/// The effective priority of an instance configured with `priority`, given its trackers.
pub fn effective(priority: u8, trackers: &[Tracked]) -> Effective {
    let mut fault = false;
    let mut delta: i64 = 0;
    for t in trackers {
        match *t {
            Tracked::UpDown {
                up,
                weight,
                reverse,
            } => {
                let up = up != reverse;
                match weight {
                    0 if !up => fault = true,
                    w if w > 0 && up => delta = delta.saturating_add(i64::from(w)),
                    w if w < 0 && !up => delta = delta.saturating_add(i64::from(w)),
                    _ => {}
                }
            }
            Tracked::File {
                value,
                weight,
                reverse,
            } => {
                let w = if reverse {
                    -i64::from(weight)
                } else {
                    i64::from(weight)
                };
                // vrrp_track.c process_update_track_file_status: value × weight within -254..=253.
                let v = value.saturating_mul(w).clamp(-254, 253);
                if weight != 0 && v <= -254 {
                    fault = true;
                } else if weight == 0 && value != 0 {
                    // keepalived: weight 0 and a non-zero value is FAULT.
                    fault = true;
                } else {
                    delta = delta.saturating_add(v);
                }
            }
        }
    }
    if priority == 255 {
        return Effective { fault, priority };
    }
    let p = i64::from(priority).saturating_add(delta).clamp(1, 254);
    Effective {
        fault,
        priority: p as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ud(up: bool, weight: i32) -> Tracked {
        Tracked::UpDown {
            up,
            weight,
            reverse: false,
        }
    }

    #[test]
    fn weights_as_keepalived() {
        assert_eq!(
            effective(100, &[]),
            Effective {
                fault: false,
                priority: 100
            }
        );
        // negative weight applies when down
        assert_eq!(effective(150, &[ud(false, -60)]).priority, 90);
        assert_eq!(effective(150, &[ud(true, -60)]).priority, 150);
        // positive weight applies when up
        assert_eq!(effective(100, &[ud(true, 20)]).priority, 120);
        assert_eq!(effective(100, &[ud(false, 20)]).priority, 100);
        // weight 0 down is FAULT
        assert!(effective(100, &[ud(false, 0)]).fault);
        assert!(!effective(100, &[ud(true, 0)]).fault);
        // reverse swaps
        assert_eq!(
            effective(
                100,
                &[Tracked::UpDown {
                    up: true,
                    weight: -30,
                    reverse: true
                }]
            )
            .priority,
            70
        );
        // clamped to 1..=254, owner untouched
        assert_eq!(effective(250, &[ud(true, 50)]).priority, 254);
        assert_eq!(effective(10, &[ud(false, -50)]).priority, 1);
        assert_eq!(effective(255, &[ud(false, -50)]).priority, 255);
    }

    #[test]
    fn track_file_values() {
        let f = |value, weight| Tracked::File {
            value,
            weight,
            reverse: false,
        };
        assert_eq!(effective(100, &[f(5, 2)]).priority, 110);
        assert_eq!(effective(100, &[f(-3, 10)]).priority, 70);
        assert!(effective(100, &[f(-254, 1)]).fault);
        assert!(effective(100, &[f(1, 0)]).fault);
        assert!(!effective(100, &[f(0, 0)]).fault);
    }

    #[test]
    fn huge_values_and_many_weights_saturate_instead_of_overflowing() {
        let f = |value, weight| Tracked::File {
            value,
            weight,
            reverse: false,
        };
        // Each file counts at most 253 (keepalived): two huge ones and a -200 give 100+506-200.
        let big = [f(i64::MAX, 254), f(i64::MAX, 254), f(-200, 1)];
        assert_eq!(effective(100, &big).priority, 254);
        let sum = [f(i64::MAX, 254), f(-200, 1)];
        assert_eq!(effective(1, &sum).priority, 54);
        assert!(effective(100, &[f(i64::MIN, 254), f(i64::MAX, 254)]).fault);
        // A million weights of 254 up: saturating, clamped.
        let many = vec![ud(true, 254); 1_000_000];
        assert_eq!(effective(100, &many).priority, 254);
    }
}

//! The state machines' timers by deadline: the next one, and the units due at a wake-up, without
//! a scan of every unit (255 instances at advert_int 0.01 wake the loop hundreds of times a
//! second). The state machines own their timers; this is an index of them, updated by the loop
//! each time it hands a unit an event ([`Deadlines::set`]).

use std::{collections::BTreeSet, time::Instant};

pub(super) struct Deadlines {
    /// Each unit's deadline as indexed.
    at: Vec<Option<Instant>>,
    /// The same, ordered by deadline (ties by unit).
    by_time: BTreeSet<(Instant, usize)>,
}

impl Deadlines {
    /// For `units` units, none with a timer.
    pub fn new(units: usize) -> Deadlines {
        Deadlines {
            at: vec![None; units],
            by_time: BTreeSet::new(),
        }
    }

    /// Unit `u`'s timer is now `at` (its `next_timeout`).
    pub fn set(&mut self, u: usize, at: Option<Instant>) {
        if self.at[u] == at {
            return;
        }
        if let Some(old) = self.at[u] {
            self.by_time.remove(&(old, u));
        }
        if let Some(new) = at {
            self.by_time.insert((new, u));
        }
        self.at[u] = at;
    }

    /// The earliest deadline of any unit.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|&(at, _)| at)
    }

    /// The units whose deadline is at or before `now`, in unit order: every timer that falls in
    /// one wake-up is handled in it.
    pub fn due(&self, now: Instant) -> Vec<usize> {
        let mut due: Vec<usize> = self
            .by_time
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .map(|&(_, u)| u)
            .collect();
        due.sort_unstable();
        due
    }

    /// What the index holds for unit `u` (the loop checks it against the state machines).
    #[cfg(debug_assertions)]
    pub fn of(&self, u: usize) -> Option<Instant> {
        self.at[u]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn next_and_due_follow_each_units_latest_deadline() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = Deadlines::new(4);
        assert_eq!(d.next(), None);
        d.set(2, Some(ms(30)));
        d.set(0, Some(ms(10)));
        d.set(3, Some(ms(10)));
        assert_eq!(d.next(), Some(ms(10)));
        assert_eq!(d.due(ms(9)), Vec::<usize>::new());
        // Every unit due in one wake-up, in unit order.
        assert_eq!(d.due(ms(10)), vec![0, 3]);
        // Re-armed: the old deadline is gone from the index.
        d.set(0, Some(ms(40)));
        d.set(3, None);
        assert_eq!(d.next(), Some(ms(30)));
        assert_eq!(d.due(ms(35)), vec![2]);
        assert_eq!(d.due(ms(40)), vec![0, 2]);
        d.set(2, Some(ms(40)));
        assert_eq!(d.due(ms(40)), vec![0, 2]);
        d.set(0, None);
        d.set(2, None);
        assert_eq!(d.next(), None);
        assert!(d.by_time.is_empty());
    }
}

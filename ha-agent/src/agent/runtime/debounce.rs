//! keepalived's `interface_up_down_delays` (core/keepalived_netlink.c `update_interface_flags`,
//! its `down_debounce_timer` / `up_debounce_timer`): a link change is acted on only once it has
//! lasted its delay, and a flap back within the delay is dropped. Pure: time is an argument.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{agent::plan::IfFacts, config::LinkDelay};

/// One delayed link: what was last acted on, and the change waiting for its delay.
#[derive(Clone, Copy, Debug)]
struct Link {
    acted: bool,
    /// keepalived's `seen_up`: a link never seen up comes up at once.
    seen_up: bool,
    pending: Option<(bool, Instant)>,
}

/// What to do with a link event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Act on the link's state now.
    Act(bool),
    /// The change waits this long.
    Wait(Duration),
    /// Nothing: no change, a change already waiting, or a flap dropped.
    Nothing,
}

pub(super) struct LinkDebounce {
    /// Down and up delay of each interface that has them.
    delays: HashMap<String, (Duration, Duration)>,
    links: HashMap<String, Link>,
}

impl LinkDebounce {
    /// `delays` as configured; `running` is each interface's state at start (acted on already).
    pub fn new<'a>(
        delays: &[LinkDelay],
        running: impl IntoIterator<Item = (&'a String, bool)>,
    ) -> LinkDebounce {
        let delays: HashMap<String, (Duration, Duration)> = delays
            .iter()
            .filter(|d| !(d.down.is_zero() && d.up.is_zero()))
            .map(|d| (d.interface.clone(), (d.down, d.up)))
            .collect();
        let links = running
            .into_iter()
            .filter(|(name, _)| delays.contains_key(*name))
            .map(|(name, up)| {
                let link = Link {
                    acted: up,
                    seen_up: up,
                    pending: None,
                };
                (name.clone(), link)
            })
            .collect();
        LinkDebounce { delays, links }
    }

    /// The debounce of a configuration (re)loaded with `facts`. On reload a change that waits
    /// in `previous` for a link still delayed keeps waiting, and `facts` show that link as last
    /// acted on, so a flap across a reload is still ignored.
    pub fn reload(
        previous: Option<&LinkDebounce>,
        delays: &[LinkDelay],
        facts: &mut HashMap<String, IfFacts>,
    ) -> LinkDebounce {
        let waiting: Vec<(&String, Link)> = previous
            .into_iter()
            .flat_map(|p| &p.links)
            .filter(|(_, l)| l.pending.is_some())
            .map(|(n, l)| (n, *l))
            .collect();
        let mut next = LinkDebounce::new(delays, facts.iter().map(|(n, f)| (n, f.running)));
        for (name, link) in waiting {
            if let (true, Some(f)) = (next.delays.contains_key(name), facts.get_mut(name)) {
                f.running = link.acted;
                next.links.insert(name.clone(), link);
            }
        }
        next
    }

    /// Link `name` is seen `running` at `now`.
    pub fn observe(&mut self, name: &str, running: bool, now: Instant) -> Verdict {
        let Some(&(down, up)) = self.delays.get(name) else {
            return Verdict::Act(running);
        };
        let link = self.links.entry(name.to_owned()).or_insert(Link {
            acted: !running,
            seen_up: false,
            pending: None,
        });
        if let Some((state, _)) = link.pending {
            if state == running {
                return Verdict::Nothing;
            }
            link.pending = None;
        }
        if running == link.acted {
            return Verdict::Nothing;
        }
        let delay = if running { up } else { down };
        if link.seen_up && !delay.is_zero() {
            link.pending = Some((running, now + delay));
            return Verdict::Wait(delay);
        }
        link.acted = running;
        link.seen_up |= running;
        Verdict::Act(running)
    }

    /// When the first waiting change falls due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| l.pending.map(|(_, at)| at))
            .min()
    }

    /// The waiting changes due at `now`, now acted on: (interface, running).
    pub fn due(&mut self, now: Instant) -> Vec<(String, bool)> {
        let mut due = Vec::new();
        for (name, link) in &mut self.links {
            if let Some((running, at)) = link.pending
                && at <= now
            {
                link.pending = None;
                link.acted = running;
                link.seen_up |= running;
                due.push((name.clone(), running));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// eth0 with a 1 s down delay and a 0.5 s up delay, up at start.
    fn eth0() -> LinkDebounce {
        let delay = LinkDelay {
            interface: "eth0".into(),
            down: ms(1000),
            up: ms(500),
        };
        LinkDebounce::new(&[delay], [(&"eth0".to_string(), true)])
    }

    #[test]
    fn a_flap_shorter_than_the_down_delay_is_ignored() {
        let mut d = eth0();
        let t0 = Instant::now();
        assert_eq!(d.observe("eth0", false, t0), Verdict::Wait(ms(1000)));
        assert_eq!(d.next_deadline(), Some(t0 + ms(1000)));
        assert_eq!(d.observe("eth0", true, t0 + ms(200)), Verdict::Nothing);
        assert_eq!(d.next_deadline(), None);
        assert!(d.due(t0 + ms(2000)).is_empty());
    }

    #[test]
    fn a_down_that_lasts_the_delay_is_acted_on_then_and_the_up_after_its_own() {
        let mut d = eth0();
        let t0 = Instant::now();
        assert_eq!(d.observe("eth0", false, t0), Verdict::Wait(ms(1000)));
        // A repeated event for the same state does not restart the delay.
        assert_eq!(d.observe("eth0", false, t0 + ms(600)), Verdict::Nothing);
        assert!(d.due(t0 + ms(999)).is_empty());
        assert_eq!(d.due(t0 + ms(1000)), [("eth0".to_string(), false)]);
        assert_eq!(
            d.observe("eth0", true, t0 + ms(2000)),
            Verdict::Wait(ms(500))
        );
        assert_eq!(d.next_deadline(), Some(t0 + ms(2500)));
        assert_eq!(d.due(t0 + ms(2500)), [("eth0".to_string(), true)]);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn other_links_and_a_link_never_seen_up_are_acted_on_at_once() {
        let delay = LinkDelay {
            interface: "eth0".into(),
            down: ms(1000),
            up: ms(1000),
        };
        let mut d = LinkDebounce::new(&[delay], [(&"eth0".to_string(), false)]);
        let t0 = Instant::now();
        assert_eq!(d.observe("eth1", false, t0), Verdict::Act(false));
        // keepalived's seen_up: the first up is not delayed, the next down is.
        assert_eq!(d.observe("eth0", true, t0), Verdict::Act(true));
        assert_eq!(d.observe("eth0", false, t0), Verdict::Wait(ms(1000)));
        assert_eq!(d.due(t0 + ms(1000)), [("eth0".to_string(), false)]);
    }

    #[test]
    fn a_change_waiting_at_a_reload_keeps_waiting_and_the_link_shows_as_before() {
        let mut d = eth0();
        let t0 = Instant::now();
        assert_eq!(d.observe("eth0", false, t0), Verdict::Wait(ms(1000)));
        let fact = |running| IfFacts {
            index: 2,
            mac: None,
            primary_v4: None,
            link_local_v6: None,
            running,
        };
        // The reload reads the link down; the instances must still see it up.
        let mut facts = HashMap::from([("eth0".to_string(), fact(false))]);
        let delays = [LinkDelay {
            interface: "eth0".into(),
            down: ms(1000),
            up: ms(0),
        }];
        let mut next = LinkDebounce::reload(Some(&d), &delays, &mut facts);
        assert!(facts["eth0"].running);
        assert_eq!(next.next_deadline(), Some(t0 + ms(1000)));
        // The flap ends after the reload: ignored.
        assert_eq!(next.observe("eth0", true, t0 + ms(300)), Verdict::Nothing);
        assert_eq!(next.next_deadline(), None);
        // Without delays any more, the reload's facts stand.
        let mut facts = HashMap::from([("eth0".to_string(), fact(false))]);
        LinkDebounce::reload(Some(&d), &[], &mut facts);
        assert!(!facts["eth0"].running);
    }
}

//! Root blocks about interfaces: `garp_group` (keepalived/vrrp/vrrp_parser.c
//! `garp_group_handler` and its sub-keywords, `garp_group_end_handler`) and
//! `interface_up_down_delays` (`alloc_if_up_down_delay`, with vrrp.c `check_debounce_timers`).

use std::time::Duration;

use super::{Builder, RawInstance, TIMER_HZ_DIGITS, US_PER_SEC, secs};
use crate::config::decimal::fmt_decimal;
use crate::config::model::{GarpGroup, LinkDelay, VrrpInstance};
use crate::config::parser::Stmt;

impl Builder<'_> {
    /// `garp_group { garp_interval N; gna_interval N; interface IF; interfaces { IF … } }`.
    pub(super) fn garp_group(&mut self, st: &Stmt) {
        self.extra_args(st, 0);
        let Some(stmts) = self.block(st) else {
            return;
        };
        let mut group = GarpGroup::default();
        let (mut have_garp, mut have_gna) = (false, false);
        for x in stmts {
            match x.kw() {
                "garp_interval" | "gna_interval" => {
                    let Some(v) = self.decimal(x, TIMER_HZ_DIGITS, 0, u64::from(u32::MAX)) else {
                        continue;
                    };
                    if v >= US_PER_SEC {
                        self.d.warn(
                            x.pos(),
                            format!(
                                "garp_group: {}: very large ({} seconds)",
                                x.kw(),
                                fmt_decimal(v, TIMER_HZ_DIGITS)
                            ),
                        );
                    }
                    if x.kw() == "garp_interval" {
                        (group.garp_interval, have_garp) = (secs(v), true);
                    } else {
                        (group.gna_interval, have_gna) = (secs(v), true);
                    }
                }
                "interface" => {
                    self.no_block(x);
                    if let Some(w) = self.arg(x, 0, "an interface name") {
                        self.extra_args(x, 1);
                        self.garp_group_member(&mut group, w);
                    }
                }
                "interfaces" => {
                    self.extra_args(x, 0);
                    let Some(lines) = self.block(x) else {
                        continue;
                    };
                    if lines.is_empty() {
                        self.d.warn(x.pos(), "garp_group: empty interfaces block");
                    }
                    for l in lines {
                        self.no_block(l);
                        for w in std::iter::once(&l.keyword).chain(&l.args) {
                            self.garp_group_member(&mut group, w);
                        }
                    }
                }
                _ => self.unknown_in(x, "garp_group", None),
            }
        }
        if !have_garp && !have_gna {
            // keepalived: "garp group N does not have any delay set - removing".
            self.d.warn(
                st.pos(),
                "garp_group: no garp_interval or gna_interval, the group is ignored",
            );
            return;
        }
        self.global.garp_groups.push(group);
    }

    /// One interface of a `garp_group`: in the first group that names it only, as keepalived.
    fn garp_group_member(&mut self, group: &mut GarpGroup, w: &crate::config::lexer::Word) {
        let taken = group.interfaces.contains(&w.text)
            || self
                .global
                .garp_groups
                .iter()
                .any(|g| g.interfaces.contains(&w.text));
        if taken {
            self.d.warn(
                &w.pos,
                format!("garp_group: already specified for {}, ignored", w.text),
            );
        } else {
            group.interfaces.push(w.text.clone());
        }
    }

    /// `interface_up_down_delays { IF DOWN_DELAY [UP_DELAY] … }`, each up to 255 s.
    pub(super) fn interface_up_down_delays(&mut self, st: &Stmt) {
        self.extra_args(st, 0);
        let Some(lines) = self.block(st) else {
            return;
        };
        for l in lines {
            self.no_block(l);
            let name = &l.keyword.text;
            self.interface_ref(name, &l.keyword.pos, "interface_up_down_delays".into());
            let Some(down_word) = l.args.first() else {
                self.d.warn(
                    l.pos(),
                    format!("interface_up_down_delays: no delay for {name}, ignored"),
                );
                continue;
            };
            if let Some(w) = l.args.get(2) {
                self.d.warn(
                    &w.pos,
                    format!(
                        "interface_up_down_delays: unexpected \"{}\" ignored",
                        w.text
                    ),
                );
            }
            let max = 255 * US_PER_SEC;
            let kw = "interface_up_down_delays";
            let Some(down) = self.decimal_word(kw, down_word, TIMER_HZ_DIGITS, 0, max) else {
                continue;
            };
            let up = match l.args.get(1) {
                Some(w) => match self.decimal_word(kw, w, TIMER_HZ_DIGITS, 0, max) {
                    Some(v) => v,
                    None => continue,
                },
                None => 0,
            };
            let delay = LinkDelay {
                interface: name.clone(),
                down: secs(down),
                up: secs(up),
            };
            // keepalived keeps the last line for an interface.
            let delays = &mut self.global.link_delays;
            delays.retain(|d| d.interface != delay.interface);
            delays.push(delay);
        }
    }

    /// keepalived vrrp.c `check_debounce_timers`: a delay on an instance's interface must be
    /// shorter than `(down_timer_adverts - 1) * advert_int - advert_int / 256`, or a backup would
    /// take over before the delayed FAULT; a longer one is cut to that (none with
    /// `down_timer_adverts 1`), with a warning.
    pub(super) fn clamp_link_delays(&mut self, done: &[(VrrpInstance, &RawInstance)]) {
        for (inst, raw) in done {
            let Some(ifname) = &inst.interface else {
                continue;
            };
            let Some(d) = self
                .global
                .link_delays
                .iter_mut()
                .find(|d| &d.interface == ifname)
            else {
                continue;
            };
            let adverts = u32::from(inst.down_timer_adverts);
            if adverts <= 1 {
                if !(d.down.is_zero() && d.up.is_zero()) {
                    (d.down, d.up) = (Duration::ZERO, Duration::ZERO);
                    self.d.warn(
                        &raw.pos,
                        format!(
                            "vrrp_instance {}: no interface_up_down_delays with down_timer_adverts 1, {ifname}'s delays are 0",
                            inst.name
                        ),
                    );
                }
                continue;
            }
            // In whole microseconds, as keepalived's timers.
            let ai = inst.advert_int.as_micros() as u64;
            let max = Duration::from_micros(ai * u64::from(adverts - 1) - ai / 256);
            if d.down > max {
                if d.up == d.down {
                    d.up = max;
                }
                d.down = max;
                self.d.warn(
                    &raw.pos,
                    format!(
                        "vrrp_instance {}: {ifname}'s down delay cut to {max:?} ({} adverts of {:?}, less 1/256)",
                        inst.name,
                        adverts - 1,
                        inst.advert_int
                    ),
                );
            }
        }
    }
}

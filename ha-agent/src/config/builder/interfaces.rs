//! Root blocks about interfaces: `garp_group` (keepalived/vrrp/vrrp_parser.c
//! `garp_group_handler` and its sub-keywords, `garp_group_end_handler`).

use super::{Builder, TIMER_HZ_DIGITS, US_PER_SEC, secs};
use crate::config::decimal::fmt_decimal;
use crate::config::model::GarpGroup;
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
}

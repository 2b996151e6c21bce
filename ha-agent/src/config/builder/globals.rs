//! `global_defs`: the defaults every instance inherits (keepalived/core/global_parser.c).

use std::net::IpAddr;
use std::time::Duration;

use super::{Builder, TIMER_HZ_DIGITS, US_PER_SEC, secs, source};
use crate::config::ScriptUser;
use crate::config::decimal::fmt_decimal;
use crate::config::keywords::Context;
use crate::config::parser::Stmt;

impl Builder<'_> {
    pub(super) fn global_def(&mut self, st: &Stmt) {
        // Work on a copy so the helpers can borrow `self`; stored back at the end.
        let mut g = self.global.clone();
        let max_secs = u64::from(u32::MAX) / US_PER_SEC;
        match st.kw() {
            "router_id" => {
                if let Some(v) = self.string(st, "a router id") {
                    g.router_id = Some(v);
                }
            }
            "vrrp_version" => {
                if let Some(v) = self.version_word(st) {
                    g.vrrp_version = v;
                }
            }
            "vrrp_mcast_group4" | "vrrp_mcast_group6" => {
                // global_parser.c vrrp_mcast_group4_handler / _group6_: that family and multicast.
                let six = st.kw() == "vrrp_mcast_group6";
                if let Some((a, pos)) = self.ip(st) {
                    match a {
                        IpAddr::V4(a) if !six && a.is_multicast() => g.vrrp_mcast_group4 = a,
                        IpAddr::V6(a) if six && a.is_multicast() => g.vrrp_mcast_group6 = a,
                        _ => self.d.error(
                            &pos,
                            format!(
                                "{}: expected an IPv{} multicast address, found \"{a}\"",
                                st.kw(),
                                if six { 6 } else { 4 }
                            ),
                        ),
                    }
                }
            }
            "disable_local_igmp" => {
                self.bare_flag(st);
                g.disable_local_igmp = true;
            }
            "vrrp_down_timer_adverts" => {
                // global_parser.c vrrp_down_timer_adverts_handler: 1-100.
                if let Some(n) = self.uint(st, 1, 100) {
                    g.vrrp_down_timer_adverts = n as u8;
                }
            }
            "vrrp_startup_delay" => {
                // global_parser.c vrrp_startup_delay_handler: seconds, at least 1 ms.
                if let Some(v) = self.decimal(st, TIMER_HZ_DIGITS, 1000, u64::from(u32::MAX)) {
                    if v >= 60 * US_PER_SEC {
                        self.d.warn(
                            st.pos(),
                            format!(
                                "vrrp_startup_delay: {} s is very large (as keepalived says)",
                                v / US_PER_SEC
                            ),
                        );
                    }
                    g.vrrp_startup_delay = Duration::from_micros(v);
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(v) = self.uint(st, 0, max_secs) {
                    g.vrrp_garp_master_delay = Duration::from_secs(v);
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(v) = self.uint(st, 0, u64::from(u32::MAX)) {
                    g.vrrp_garp_master_repeat = self.at_least_one(st, v);
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(v) = self.uint(st, 0, u64::from(u32::MAX)) {
                    g.vrrp_garp_master_refresh = Duration::from_secs(v);
                }
            }
            "vrrp_garp_master_refresh_repeat" => {
                if let Some(v) = self.uint(st, 0, u64::from(u32::MAX)) {
                    g.vrrp_garp_master_refresh_repeat = self.at_least_one(st, v);
                }
            }
            "vrrp_garp_lower_prio_delay" => {
                if let Some(v) = self.uint(st, 0, max_secs) {
                    g.vrrp_garp_lower_prio_delay = Some(Duration::from_secs(v));
                }
            }
            "vrrp_garp_lower_prio_repeat" => {
                if let Some(v) = self.uint(st, 0, i32::MAX as u64) {
                    g.vrrp_garp_lower_prio_repeat = Some(v as u32);
                }
            }
            "vrrp_garp_interval" | "vrrp_gna_interval" => {
                // global_parser.c vrrp_garp_interval_handler / vrrp_gna_interval_handler.
                // keepalived's minimum is 1 us, but its own sample keepalived.conf says `0` (the
                // default, "no delay"), so 0 is accepted rather than rejected.
                if let Some(v) = self.decimal(st, TIMER_HZ_DIGITS, 0, u64::from(u32::MAX)) {
                    if v >= US_PER_SEC {
                        self.d.warn(
                            st.pos(),
                            format!(
                                "{}: very large ({} seconds)",
                                st.kw(),
                                fmt_decimal(v, TIMER_HZ_DIGITS)
                            ),
                        );
                    }
                    if st.kw() == "vrrp_garp_interval" {
                        g.vrrp_garp_interval = secs(v);
                    } else {
                        g.vrrp_gna_interval = secs(v);
                    }
                }
            }
            "vmac_prefix" => {
                if let Some(p) = self.string(st, "a name prefix") {
                    g.vmac_prefix = Some(p);
                }
            }
            "vmac_addr_prefix" => {
                if let Some(p) = self.string(st, "a name prefix") {
                    g.vmac_addr_prefix = Some(p);
                }
            }
            // global_parser.c vrrp_min_garp_handler: one GARP/NA, no delayed burst, no refresh,
            // for each of these still at its default when the line is read.
            "vrrp_min_garp" => {
                if self.flag(st) == Some(true) {
                    let d = crate::config::model::GlobalDefs::default();
                    if g.vrrp_garp_master_repeat == d.vrrp_garp_master_repeat {
                        g.vrrp_garp_master_repeat = 1;
                    }
                    if g.vrrp_garp_master_refresh_repeat == d.vrrp_garp_master_refresh_repeat {
                        g.vrrp_garp_master_refresh_repeat = 0;
                    }
                    if g.vrrp_garp_master_delay == d.vrrp_garp_master_delay {
                        g.vrrp_garp_master_delay = Duration::ZERO;
                    }
                }
            }
            "vrrp_skip_check_adv_addr" => {
                self.bare_flag(st);
                g.vrrp_skip_check_adv_addr = true;
            }
            "vrrp_strict" => {
                self.bare_flag(st);
                g.vrrp_strict = true;
            }
            // global_parser.c vrrp_lower_prio_no_advert_handler / _higher_prio_send_advert_:
            // bare, or true/false.
            "vrrp_lower_prio_no_advert" => {
                if let Some(b) = self.flag(st) {
                    g.vrrp_lower_prio_no_advert = b;
                }
            }
            "vrrp_higher_prio_send_advert" => {
                if let Some(b) = self.flag(st) {
                    g.vrrp_higher_prio_send_advert = b;
                }
            }
            "vrrp_check_unicast_src" => {
                self.bare_flag(st);
                g.vrrp_check_unicast_src = true;
            }
            "script_user" => {
                if let Some(u) = self.script_user(st) {
                    g.script_user = Some(u);
                }
            }
            // global_parser.c process_monitor_rcv_bufs_handler: 0 leaves the default.
            "process_monitor_rcv_bufs" => {
                if let Some(v) = self.uint(st, 0, u64::from(u32::MAX)) {
                    g.process_monitor_rcv_bufs = (v != 0).then_some(v as u32);
                }
            }
            "process_monitor_rcv_bufs_force" => {
                if let Some(b) = self.flag(st) {
                    g.process_monitor_rcv_bufs_force = b;
                }
            }
            // core/global_parser.c startup_shutdown_script: the first one wins, an error for
            // a second; the timeout defaults to 10s, in 1-1000.
            "startup_script" => self.notify_script(st, &mut g.startup_script),
            "shutdown_script" => self.notify_script(st, &mut g.shutdown_script),
            "startup_script_timeout" | "shutdown_script_timeout" => {
                if let Some(v) = self.uint(st, 1, 1000) {
                    let slot = if st.kw() == "startup_script_timeout" {
                        &mut g.startup_script_timeout
                    } else {
                        &mut g.shutdown_script_timeout
                    };
                    *slot = Duration::from_secs(v);
                }
            }
            "default_interface" => {
                if let Some(name) = self.string(st, "an interface name") {
                    match super::addresses::bad_ifname(&name) {
                        Some(msg) => self
                            .d
                            .error(&st.args[0].pos, format!("default_interface: {msg}")),
                        None => g.default_interface = Some(name),
                    }
                }
            }
            "enable_script_security" => {
                self.bare_flag(st);
                g.enable_script_security = true;
            }
            // core/global_parser.c notify_fifo: PATH [USER [GROUP]], the first one wins.
            "notify_fifo" | "vrrp_notify_fifo" => {
                let fifo = if st.kw() == "notify_fifo" {
                    &mut g.notify_fifo
                } else {
                    &mut g.vrrp_notify_fifo
                };
                self.no_block(st);
                if let Some(w) = self.arg(st, 0, "a FIFO path") {
                    if fifo.path.is_some() {
                        self.d
                            .error(st.pos(), format!("{}: already specified", st.kw()));
                    } else {
                        fifo.path = Some(w.text.clone().into());
                        fifo.owner = st.args.get(1).map(|u| ScriptUser {
                            user: u.text.clone(),
                            group: st.args.get(2).map(|g| g.text.clone()),
                            at: source(&u.pos),
                        });
                        self.extra_args(st, 3);
                    }
                }
                // core/global_data.c: one FIFO for both would hear every line twice.
                if g.notify_fifo.path.is_some() && g.notify_fifo.path == g.vrrp_notify_fifo.path {
                    self.d.warn(
                        st.pos(),
                        "notify_fifo and vrrp_notify_fifo name the same FIFO: vrrp_notify_fifo \
                         ignored (as keepalived)",
                    );
                    g.vrrp_notify_fifo = Default::default();
                }
            }
            "notify_fifo_script" => self.notify_script(st, &mut g.notify_fifo.script),
            "vrrp_notify_fifo_script" => self.notify_script(st, &mut g.vrrp_notify_fifo.script),
            "vrrp_notify_priority_changes" => {
                if let Some(b) = self.flag(st) {
                    g.vrrp_notify_priority_changes = b;
                }
            }
            "fifo_write_vrrp_states_on_reload" => {
                self.bare_flag(st);
                g.fifo_write_vrrp_states_on_reload = true;
            }
            kw @ ("notification_email" | "notification_email_from" | "smtp_server") => {
                match kw {
                    "notification_email" => {
                        if let Some(lines) = self.block(st) {
                            for l in lines {
                                g.email.notification_email.push(l.keyword.text.clone());
                                g.email
                                    .notification_email
                                    .extend(l.args.iter().map(|w| w.text.clone()));
                            }
                        }
                    }
                    "notification_email_from" => {
                        g.email.notification_email_from = self.string(st, "an email address");
                    }
                    "smtp_server" => {
                        g.email.smtp_server =
                            self.arg(st, 0, "a server address").map(|w| w.text.clone());
                    }
                    _ => {}
                }
                self.not_handled(st, Context::Global, "global_defs: ");
            }
            _ => self.not_handled(st, Context::Global, "global_defs: "),
        }
        self.global = g;
    }

    /// keepalived: "must be greater than 0, setting to 1" for the GARP repeat counts.
    pub(super) fn at_least_one(&mut self, st: &Stmt, v: u64) -> u32 {
        if v == 0 {
            self.d.warn(
                &st.args[0].pos,
                format!(
                    "{}: must be greater than 0, using 1 (as keepalived)",
                    st.kw()
                ),
            );
            1
        } else {
            u32::try_from(v).unwrap_or(u32::MAX)
        }
    }
}

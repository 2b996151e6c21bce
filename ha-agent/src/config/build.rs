//! Statements -> typed [`Config`], with keepalived's defaults, fix-ups and semantic checks.
//!
//! Policy: input keepalived cannot read (bad syntax, a value out of range, an unknown keyword, a
//! name that refers to nothing, a conflict) is an error. Where keepalived reads the value but
//! adjusts it (rounds advert_int, truncates auth_pass, drops a VIP of the wrong family, clears
//! nopreempt on a MASTER…), ha-agent makes the same adjustment, so it behaves on the wire as
//! keepalived would, and says so in a warning. Keywords keepalived knows but ha-agent does not act
//! on are warnings ("not supported, ignored").

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::error::{Diags, Pos};
use super::keywords;
use super::lexer::{Word, split_command, split_words};
use super::model::*;
use super::parser::Stmt;
use crate::vrrp::types::{US_PER_CS, V3_MAX_ADVER_INT_CS, round_to_unit_us};

/// keepalived lib/timer.h TIMER_HZ_DIGITS: timers are read with up to 6 decimals (microseconds).
const TIMER_HZ_DIGITS: u32 = 6;
const US_PER_SEC: u64 = 1_000_000;

pub(crate) fn build(stmts: &[Stmt], diags: &mut Diags) -> Config {
    let mut b = Builder {
        d: diags,
        interface_refs: Vec::new(),
        global: GlobalDefs::default(),
        scripts: Vec::new(),
        track_files: Vec::new(),
        instances: Vec::new(),
        groups: Vec::new(),
    };
    for st in stmts {
        b.root(st);
    }
    b.finish()
}

fn source(pos: &Pos) -> Source {
    Source {
        file: pos.file.to_path_buf(),
        line: pos.line,
        col: pos.col,
    }
}

fn secs(us: u64) -> Duration {
    Duration::from_micros(us)
}

#[derive(Debug, Clone)]
struct TrackRef {
    name: String,
    pos: Pos,
    weight: Option<i32>,
    reverse: Option<bool>,
}

#[derive(Default)]
struct RawAuth {
    block_pos: Option<Pos>,
    auth_type: Option<(String, Pos)>,
    pass: Option<(Vec<u8>, Pos)>,
}

struct RawInstance {
    name: String,
    pos: Pos,
    state: Option<(State, Pos)>,
    interface: Option<(String, Pos)>,
    /// An `interface` line was present (even if invalid): no "interface required" cascade.
    interface_seen: bool,
    vrid_seen: bool,
    vrid: Option<(u8, Pos)>,
    priority: Option<(u8, Pos)>,
    advert_int: Option<(u64, Pos)>,
    version: Option<(Version, Pos)>,
    /// The family and the position of the address that set it.
    family: Option<(Family, Pos)>,
    nopreempt: Option<Pos>,
    preempt_delay: Option<(u64, Pos)>,
    auth: RawAuth,
    vips: Vec<(VirtualAddress, Pos)>,
    evips: Vec<(VirtualAddress, Pos)>,
    routes: Vec<VirtualRoute>,
    src_ip: Option<IpAddr>,
    peers: Vec<UnicastPeer>,
    unicast_configured: bool,
    check_unicast_src: bool,
    track_if: Vec<TrackRef>,
    track_script: Vec<TrackRef>,
    track_file: Vec<TrackRef>,
    dont_track_primary: bool,
    notify: Notify,
    garp_delay: Option<Duration>,
    garp_rep: Option<u32>,
    garp_refresh: Option<Duration>,
    garp_refresh_rep: Option<u32>,
    garp_lower_prio_delay: Option<(Duration, Pos)>,
    garp_lower_prio_rep: Option<(u32, Pos)>,
    lower_prio_no_advert: Option<(bool, Pos)>,
    higher_prio_send_advert: Option<(bool, Pos)>,
    v3_checksum_as_v2: bool,
    accept: Option<bool>,
    strict: Option<bool>,
    skip_check_adv_addr: Option<bool>,
}

struct RawGroup {
    name: String,
    pos: Pos,
    members: Vec<Word>,
    had_group: bool,
    notify: Notify,
    track_if: Vec<TrackRef>,
    track_script: Vec<TrackRef>,
    track_file: Vec<TrackRef>,
    tracking_weight: bool,
}

struct Builder<'d> {
    d: &'d mut Diags,
    interface_refs: Vec<InterfaceRef>,
    global: GlobalDefs,
    scripts: Vec<(VrrpScript, Pos)>,
    track_files: Vec<(TrackFile, Pos)>,
    instances: Vec<RawInstance>,
    groups: Vec<RawGroup>,
}

/// Reading one statement's arguments, reporting what is wrong at the word that is wrong.
impl Builder<'_> {
    fn arg<'a>(&mut self, st: &'a Stmt, i: usize, what: &str) -> Option<&'a Word> {
        let w = st.args.get(i);
        if w.is_none() {
            self.d.error(
                &st.end_pos(),
                format!("{}: expected {what}, found end of line", st.kw()),
            );
        }
        w
    }

    fn extra_args(&mut self, st: &Stmt, n: usize) {
        if let Some(w) = st.args.get(n) {
            self.d.warn(
                &w.pos,
                format!("{}: unexpected \"{}\" ignored", st.kw(), w.text),
            );
        }
    }

    fn no_block(&mut self, st: &Stmt) {
        if let Some(b) = &st.block {
            self.d
                .error(&b.open, format!("{}: takes no '{{' block", st.kw()));
        }
    }

    fn block<'a>(&mut self, st: &'a Stmt) -> Option<&'a [Stmt]> {
        match &st.block {
            Some(b) => Some(&b.stmts),
            None => {
                self.d
                    .error(&st.end_pos(), format!("{}: expected a '{{' block", st.kw()));
                None
            }
        }
    }

    fn string(&mut self, st: &Stmt, what: &str) -> Option<String> {
        self.no_block(st);
        let w = self.arg(st, 0, what)?.text.clone();
        self.extra_args(st, 1);
        Some(w)
    }

    fn uint_word(&mut self, kw: &str, w: &Word, min: u64, max: u64) -> Option<u64> {
        match w.text.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.d.error(
                    &w.pos,
                    format!(
                        "{kw}: expected an integer {min}-{max}, found \"{}\"",
                        w.text
                    ),
                );
                None
            }
        }
    }

    fn uint(&mut self, st: &Stmt, min: u64, max: u64) -> Option<u64> {
        self.no_block(st);
        let w = self.arg(st, 0, &format!("an integer {min}-{max}"))?;
        let v = self.uint_word(st.kw(), w, min, max);
        self.extra_args(st, 1);
        v
    }

    /// `version 2|3` / `vrrp_version 2|3`.
    fn version(&mut self, st: &Stmt) -> Option<Version> {
        let n = self.uint(st, 2, 3)?;
        u8::try_from(n).ok().and_then(Version::from_number)
    }

    fn int_word(&mut self, kw: &str, w: &Word, min: i64, max: i64) -> Option<i64> {
        match w.text.parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.d.error(
                    &w.pos,
                    format!(
                        "{kw}: expected an integer {min} to {max}, found \"{}\"",
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// A decimal number of seconds with up to `digits` decimals, returned in 10^-digits units
    /// (lib/parser.c `read_decimal_unsigned_long_func`).
    fn decimal_word(&mut self, kw: &str, w: &Word, digits: u32, min: u64, max: u64) -> Option<u64> {
        let range = format!("{}-{}", fmt_decimal(min, digits), fmt_decimal(max, digits));
        match parse_decimal(&w.text, digits) {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            Ok(_) | Err(DecimalError::Invalid) | Err(DecimalError::Negative) => {
                self.d.error(
                    &w.pos,
                    format!(
                        "{kw}: expected a number of seconds {range}, found \"{}\"",
                        w.text
                    ),
                );
                None
            }
            Err(DecimalError::TooPrecise) => {
                self.d.error(
                    &w.pos,
                    format!("{kw}: \"{}\" has more than {digits} decimal places", w.text),
                );
                None
            }
        }
    }

    fn decimal(&mut self, st: &Stmt, digits: u32, min: u64, max: u64) -> Option<u64> {
        self.no_block(st);
        let w = self.arg(st, 0, "a number of seconds")?;
        let v = self.decimal_word(st.kw(), w, digits, min, max);
        self.extra_args(st, 1);
        v
    }

    /// A flag with an optional `true|on|yes|false|off|no` (lib/parser.c `check_true_false`).
    fn flag(&mut self, st: &Stmt) -> Option<bool> {
        self.no_block(st);
        let Some(w) = st.args.first() else {
            return Some(true);
        };
        self.extra_args(st, 1);
        match w.text.as_str() {
            "true" | "on" | "yes" => Some(true),
            "false" | "off" | "no" => Some(false),
            _ => {
                self.d.error(
                    &w.pos,
                    format!(
                        "{}: expected nothing or one of true/on/yes/false/off/no, found \"{}\"",
                        st.kw(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// A flag keepalived sets whatever follows it.
    fn bare_flag(&mut self, st: &Stmt) {
        self.no_block(st);
        self.extra_args(st, 0);
    }

    fn ip_word(&mut self, kw: &str, w: &Word) -> Option<IpAddr> {
        match w.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.d.error(
                    &w.pos,
                    format!("{kw}: expected an IP address, found \"{}\"", w.text),
                );
                None
            }
        }
    }

    fn ip(&mut self, st: &Stmt) -> Option<(IpAddr, Pos)> {
        self.no_block(st);
        let w = self.arg(st, 0, "an IP address")?;
        let a = self.ip_word(st.kw(), w)?;
        self.extra_args(st, 1);
        Some((a, w.pos.clone()))
    }

    fn unsupported(&mut self, st: &Stmt, context: &str) {
        self.d.warn(
            st.pos(),
            format!("{}{}: not supported by ha-agent, ignored", context, st.kw()),
        );
    }

    fn unknown(&mut self, st: &Stmt, context: &str) {
        self.d.error(
            st.pos(),
            format!("{context}unknown keyword \"{}\"", st.kw()),
        );
    }

    fn script_user(&mut self, st: &Stmt) -> Option<ScriptUser> {
        self.no_block(st);
        let word = self.arg(st, 0, "a user name")?;
        let (user, at) = (word.text.clone(), source(&word.pos));
        let group = st.args.get(1).map(|w| w.text.clone());
        self.extra_args(st, 2);
        Some(ScriptUser { user, group, at })
    }

    /// `notify* "COMMAND ARGS" [USER [GROUP]]` (lib/notify.c `notify_script_init`).
    fn notify_script(&mut self, st: &Stmt, slot: &mut Option<NotifyScript>) {
        self.no_block(st);
        if self.arg(st, 0, "a command").is_none() {
            return;
        }
        if slot.is_some() {
            self.d.error(
                st.pos(),
                format!("{}: already specified in this block", st.kw()),
            );
            return;
        }
        let words = match split_words(st.raw_args(), false) {
            Ok(w) => w,
            Err(e) => {
                self.d.error(&st.args[0].pos, format!("{}: {e}", st.kw()));
                return;
            }
        };
        let command = match split_command(words.first().map_or("", String::as_str)) {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => {
                self.d
                    .error(&st.args[0].pos, format!("{}: empty command", st.kw()));
                return;
            }
            Err(e) => {
                self.d.error(&st.args[0].pos, format!("{}: {e}", st.kw()));
                return;
            }
        };
        let user = words.get(1).map(|u| ScriptUser {
            user: u.clone(),
            group: words.get(2).cloned(),
            at: source(st.pos()),
        });
        if words.len() > 3 {
            self.d.warn(
                &st.args[st.args.len() - 1].pos,
                format!(
                    "{}: words after COMMAND USER GROUP are ignored (quote the whole command)",
                    st.kw()
                ),
            );
        }
        *slot = Some(NotifyScript { command, user });
    }

    /// Lines of `track_interface`/`track_script`/`track_file`: `NAME [weight N [reverse|noreverse]]`
    /// (keepalived/vrrp/vrrp_track.c `alloc_track_if`, `alloc_track_script`).
    /// `track_interface { … }`: [`Builder::track_refs`], and each name an interface reference.
    fn track_interfaces(&mut self, st: &Stmt, out: &mut Vec<TrackRef>, what: String) {
        let before = out.len();
        self.track_refs(st, out);
        for t in &out[before..] {
            self.interface_refs.push(InterfaceRef {
                name: t.name.clone(),
                at: source(&t.pos),
                what: what.clone(),
            });
        }
    }

    /// Records where an interface is named.
    fn interface_ref(&mut self, name: &str, pos: &Pos, what: String) {
        self.interface_refs.push(InterfaceRef {
            name: name.to_owned(),
            at: source(pos),
            what,
        });
    }

    fn track_refs(&mut self, st: &Stmt, out: &mut Vec<TrackRef>) {
        let Some(lines) = self.block(st) else { return };
        for line in lines {
            self.no_block(line);
            let name = line.keyword.text.clone();
            if out.iter().any(|t| t.name == name) {
                self.d.error(
                    line.pos(),
                    format!("{}: duplicate entry \"{name}\"", st.kw()),
                );
                continue;
            }
            let mut weight = None;
            let mut reverse = None;
            if let Some(opt) = line.args.first() {
                if opt.text != "weight" {
                    self.d.error(
                        &opt.pos,
                        format!(
                            "{}: expected \"weight\" after {name}, found \"{}\"",
                            st.kw(),
                            opt.text
                        ),
                    );
                    continue;
                }
                let Some(w) = line.args.get(1) else {
                    self.d.error(
                        &line.end_pos(),
                        format!(
                            "{}: weight: expected an integer -253 to 253, found end of line",
                            st.kw()
                        ),
                    );
                    continue;
                };
                let Some(mut v) =
                    self.int_word(&format!("{} {name} weight", st.kw()), w, -254, 254)
                else {
                    continue;
                };
                if v.abs() == 254 {
                    // vrrp_track.c: "weight cannot be +/-254. Setting to +/-253"
                    v = v.signum() * 253;
                    self.d.warn(
                        &w.pos,
                        format!("{}: weight for {name} cannot be +/-254, using {v}", st.kw()),
                    );
                }
                weight = i32::try_from(v).ok();
                if let Some(r) = line.args.get(2) {
                    match r.text.as_str() {
                        "reverse" => reverse = Some(true),
                        "noreverse" => reverse = Some(false),
                        _ => {
                            self.d.error(
                                &r.pos,
                                format!(
                                    "{}: expected \"reverse\" or \"noreverse\", found \"{}\"",
                                    st.kw(),
                                    r.text
                                ),
                            );
                            continue;
                        }
                    }
                }
                self.extra_args(line, 3);
            }
            out.push(TrackRef {
                name,
                pos: line.pos().clone(),
                weight,
                reverse,
            });
        }
    }
}

/// Top-level blocks.
impl Builder<'_> {
    fn root(&mut self, st: &Stmt) {
        match st.kw() {
            "global_defs" => {
                self.extra_args(st, 0);
                if let Some(stmts) = self.block(st) {
                    for s in stmts {
                        self.global_def(s);
                    }
                }
            }
            "vrrp_script" => self.vrrp_script(st),
            "vrrp_instance" => self.vrrp_instance(st),
            "vrrp_sync_group" => self.sync_group(st),
            "track_file" | "vrrp_track_file" => self.track_file_def(st),
            kw if keywords::ROOT_UNSUPPORTED.contains(&kw) => {
                self.d.warn(
                    st.pos(),
                    format!("{kw}: not supported by ha-agent, ignored (the whole block)"),
                );
            }
            _ => self.unknown(st, ""),
        }
    }

    /// The NAME of `vrrp_instance NAME {`, `vrrp_script NAME {`, …
    fn block_name(&mut self, st: &Stmt) -> Option<String> {
        let name = self.arg(st, 0, "a name")?.text.clone();
        self.extra_args(st, 1);
        Some(name)
    }

    fn global_def(&mut self, st: &Stmt) {
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
                if let Some(v) = self.version(st) {
                    g.vrrp_version = v;
                }
            }
            "vrrp_mcast_group4" => {
                // global_parser.c vrrp_mcast_group4_handler: IPv4 and multicast.
                if let Some((a, pos)) = self.ip(st) {
                    match a {
                        IpAddr::V4(a) if a.is_multicast() => g.vrrp_mcast_group4 = a,
                        _ => self.d.error(
                            &pos,
                            format!("vrrp_mcast_group4: expected an IPv4 multicast address, found \"{a}\""),
                        ),
                    }
                }
            }
            "vrrp_mcast_group6" => {
                if let Some((a, pos)) = self.ip(st) {
                    match a {
                        IpAddr::V6(a) if a.is_multicast() => g.vrrp_mcast_group6 = a,
                        _ => self.d.error(
                            &pos,
                            format!("vrrp_mcast_group6: expected an IPv6 multicast address, found \"{a}\""),
                        ),
                    }
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
            "enable_script_security" => {
                self.bare_flag(st);
                g.enable_script_security = true;
            }
            kw if keywords::GLOBAL_EMAIL.contains(&kw) => {
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
                self.d.warn(
                    st.pos(),
                    format!("{kw}: parsed but not used: ha-agent sends no email notifications"),
                );
            }
            kw if keywords::GLOBAL_KNOWN.contains(&kw) => self.unsupported(st, "global_defs: "),
            _ => self.unknown(st, "global_defs: "),
        }
        self.global = g;
    }

    /// keepalived: "must be greater than 0, setting to 1" for the GARP repeat counts.
    fn at_least_one(&mut self, st: &Stmt, v: u64) -> u32 {
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

    fn vrrp_script(&mut self, st: &Stmt) {
        let Some(name) = self.block_name(st) else {
            return;
        };
        let Some(stmts) = self.block(st) else { return };
        if self.scripts.iter().any(|(s, _)| s.name == name) {
            self.d
                .error(st.pos(), format!("vrrp_script {name}: already defined"));
            return;
        }
        // Defaults: keepalived/vrrp/vrrp_data.c alloc_vrrp_script.
        let mut s = VrrpScript {
            name: name.clone(),
            source: source(st.pos()),
            command: Vec::new(),
            interval: Duration::from_secs(1),
            timeout: Duration::ZERO,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        };
        // vrrp_parser.c vrrp_vscript_interval_handler: milliseconds, 0 means 1 s.
        let max_ms = u64::from(u32::MAX) / US_PER_SEC * 1000;
        for x in stmts {
            match x.kw() {
                "script" => {
                    self.no_block(x);
                    if self.arg(x, 0, "a command").is_none() {
                        continue;
                    }
                    // vrrp_vscript_script_handler: only the first (quoted) word is the command.
                    match split_words(x.raw_args(), false).and_then(|w| {
                        Ok((
                            split_command(w.first().map_or("", String::as_str))?,
                            w.len(),
                        ))
                    }) {
                        Ok((cmd, n)) => {
                            if n > 1 {
                                self.d.warn(
                                    &x.args[1].pos,
                                    "script: words after the command are ignored, as keepalived \
                                     does: quote the whole command line",
                                );
                            }
                            if cmd.is_empty() {
                                self.d.error(&x.args[0].pos, "script: empty command");
                            }
                            s.command = cmd;
                        }
                        Err(e) => self.d.error(&x.args[0].pos, format!("script: {e}")),
                    }
                }
                "interval" | "timeout" => {
                    if let Some(mut ms) = x
                        .args
                        .first()
                        .and_then(|w| self.decimal_word(x.kw(), w, 3, 0, max_ms))
                    {
                        self.extra_args(x, 1);
                        if ms == 0 {
                            self.d.warn(
                                &x.args[0].pos,
                                format!(
                                    "{}: must be greater than 0, using 1 second (as keepalived)",
                                    x.kw()
                                ),
                            );
                            ms = 1000;
                        }
                        let d = Duration::from_millis(ms);
                        if x.kw() == "interval" {
                            s.interval = d;
                        } else {
                            s.timeout = d;
                        }
                    } else if x.args.is_empty() {
                        self.arg(x, 0, "a number of seconds");
                    }
                }
                "weight" => {
                    // vrrp_vscript_weight_handler: [-253, 253], optional "reverse".
                    self.no_block(x);
                    let Some(w) = self.arg(x, 0, "an integer -253 to 253") else {
                        continue;
                    };
                    if let Some(v) = self.int_word("weight", w, -253, 253) {
                        s.weight = v as i32;
                    }
                    if let Some(r) = x.args.get(1) {
                        if r.text == "reverse" {
                            s.weight_reverse = true;
                        } else {
                            self.d.error(
                                &r.pos,
                                format!("weight: expected \"reverse\", found \"{}\"", r.text),
                            );
                        }
                    }
                    self.extra_args(x, 2);
                }
                "rise" | "fall" => {
                    if let Some(v) = self.uint(x, 1, i32::MAX as u64) {
                        if x.kw() == "rise" {
                            s.rise = v as u32;
                        } else {
                            s.fall = v as u32;
                        }
                    }
                }
                "user" => s.user = self.script_user(x),
                "init_fail" => {
                    self.bare_flag(x);
                    s.init_fail = true;
                }
                _ => self.unknown(x, &format!("vrrp_script {name}: ")),
            }
        }
        if s.command.is_empty() && !stmts.iter().any(|x| x.kw() == "script") {
            // vrrp_vscript_end_handler: "No script set for vrrp_script - removing".
            self.d.error(
                st.pos(),
                format!("vrrp_script {name}: no script set (expected `script \"COMMAND\"`)"),
            );
        }
        if s.timeout.is_zero() {
            // keepalived/vrrp/vrrp_scheduler.c: a timeout of 0 means the interval.
            s.timeout = s.interval;
        }
        self.scripts.push((s, st.pos().clone()));
    }

    fn track_file_def(&mut self, st: &Stmt) {
        let Some(name) = self.block_name(st) else {
            return;
        };
        let Some(stmts) = self.block(st) else { return };
        if self.track_files.iter().any(|(f, _)| f.name == name) {
            self.d
                .error(st.pos(), format!("{} {name}: already defined", st.kw()));
            return;
        }
        // Defaults: keepalived/trackers/track_file.c track_file_handler (weight 1).
        let mut f = TrackFile {
            name: name.clone(),
            source: source(st.pos()),
            file: PathBuf::new(),
            weight: 1,
            weight_reverse: false,
            init_file: None,
        };
        let mut have_file = false;
        for x in stmts {
            match x.kw() {
                "file" => {
                    if let Some(p) = self.string(x, "a file path") {
                        f.file = PathBuf::from(p);
                        have_file = true;
                    }
                }
                "weight" => {
                    self.no_block(x);
                    let Some(w) = self.arg(x, 0, "an integer -254 to 254") else {
                        continue;
                    };
                    if let Some(v) = self.int_word("weight", w, -254, 254) {
                        f.weight = v as i32;
                    }
                    if let Some(r) = x.args.get(1) {
                        if r.text == "reverse" {
                            f.weight_reverse = true;
                        } else {
                            self.d.error(
                                &r.pos,
                                format!("weight: expected \"reverse\", found \"{}\"", r.text),
                            );
                        }
                    }
                    self.extra_args(x, 2);
                }
                "init_file" => {
                    // track_file.c track_file_init_handler: [VALUE] [overwrite].
                    self.no_block(x);
                    let mut init = TrackFileInit {
                        value: 0,
                        overwrite: false,
                    };
                    for w in &x.args {
                        if w.text == "overwrite" {
                            init.overwrite = true;
                        } else if let Some(v) = self.int_word("init_file", w, -254, 254) {
                            init.value = v as i32;
                        }
                    }
                    f.init_file = Some(init);
                }
                _ => self.unknown(x, &format!("{} {name}: ", st.kw())),
            }
        }
        if !have_file {
            self.d.error(
                st.pos(),
                format!("{} {name}: no file set (expected `file PATH`)", st.kw()),
            );
        }
        self.track_files.push((f, st.pos().clone()));
    }

    fn sync_group(&mut self, st: &Stmt) {
        let Some(name) = self.block_name(st) else {
            return;
        };
        let Some(stmts) = self.block(st) else { return };
        if self.groups.iter().any(|g| g.name == name) {
            self.d
                .error(st.pos(), format!("vrrp_sync_group {name}: already defined"));
            return;
        }
        let mut g = RawGroup {
            name: name.clone(),
            pos: st.pos().clone(),
            members: Vec::new(),
            had_group: false,
            notify: Notify::default(),
            track_if: Vec::new(),
            track_script: Vec::new(),
            track_file: Vec::new(),
            tracking_weight: false,
        };
        let ctx = format!("vrrp_sync_group {name}: ");
        for x in stmts {
            match x.kw() {
                "group" => {
                    if g.had_group {
                        self.d
                            .error(x.pos(), format!("{ctx}group: already specified"));
                        continue;
                    }
                    g.had_group = true;
                    if let Some(lines) = self.block(x) {
                        for l in lines {
                            self.no_block(l);
                            g.members.push(l.keyword.clone());
                            g.members.extend(l.args.iter().cloned());
                        }
                    }
                }
                "track_interface" => {
                    let ctx = format!("vrrp_sync_group {}: track_interface", g.name);
                    self.track_interfaces(x, &mut g.track_if, ctx);
                }
                "track_script" => self.track_refs(x, &mut g.track_script),
                "track_file" => self.track_refs(x, &mut g.track_file),
                "notify" => self.notify_script(x, &mut g.notify.notify),
                "notify_master" => self.notify_script(x, &mut g.notify.master),
                "notify_backup" => self.notify_script(x, &mut g.notify.backup),
                "notify_fault" => self.notify_script(x, &mut g.notify.fault),
                "notify_stop" => self.notify_script(x, &mut g.notify.stop),
                "sync_group_tracking_weight" => {
                    self.bare_flag(x);
                    g.tracking_weight = true;
                }
                "global_tracking" => {
                    self.bare_flag(x);
                    self.d.warn(
                        x.pos(),
                        "global_tracking is deprecated: use sync_group_tracking_weight",
                    );
                    g.tracking_weight = true;
                }
                kw if keywords::SYNC_GROUP_UNSUPPORTED.contains(&kw) => self.unsupported(x, &ctx),
                _ => self.unknown(x, &ctx),
            }
        }
        self.groups.push(g);
    }
}

/// `vrrp_instance` (keepalived/vrrp/vrrp_parser.c handlers, in the order keepalived reads them).
impl Builder<'_> {
    fn vrrp_instance(&mut self, st: &Stmt) {
        let Some(name) = self.block_name(st) else {
            return;
        };
        let Some(stmts) = self.block(st) else { return };
        if self.instances.iter().any(|i| i.name == name) {
            // vrrp_handler: "vrrp instance %s already defined"
            self.d
                .error(st.pos(), format!("vrrp_instance {name}: already defined"));
            return;
        }
        let mut v = RawInstance {
            name: name.clone(),
            pos: st.pos().clone(),
            state: None,
            interface: None,
            interface_seen: false,
            vrid_seen: false,
            vrid: None,
            priority: None,
            advert_int: None,
            version: None,
            family: None,
            nopreempt: None,
            preempt_delay: None,
            auth: RawAuth::default(),
            vips: Vec::new(),
            evips: Vec::new(),
            routes: Vec::new(),
            src_ip: None,
            peers: Vec::new(),
            unicast_configured: false,
            check_unicast_src: false,
            track_if: Vec::new(),
            track_script: Vec::new(),
            track_file: Vec::new(),
            dont_track_primary: false,
            notify: Notify::default(),
            garp_delay: None,
            garp_rep: None,
            garp_refresh: None,
            garp_refresh_rep: None,
            garp_lower_prio_delay: None,
            garp_lower_prio_rep: None,
            lower_prio_no_advert: None,
            higher_prio_send_advert: None,
            v3_checksum_as_v2: false,
            accept: None,
            strict: None,
            skip_check_adv_addr: None,
        };
        let ctx = format!("vrrp_instance {name}: ");
        for x in stmts {
            self.instance_keyword(&mut v, x, &ctx);
        }
        self.instances.push(v);
    }

    fn instance_keyword(&mut self, v: &mut RawInstance, x: &Stmt, ctx: &str) {
        let max_secs = u64::from(u32::MAX) / US_PER_SEC;
        match x.kw() {
            "state" => {
                let Some(s) = self.string(x, "MASTER or BACKUP") else {
                    return;
                };
                let state = match s.as_str() {
                    "MASTER" => State::Master,
                    "BACKUP" => State::Backup,
                    _ => {
                        // vrrp_state_handler: "unknown state, defaulting to BACKUP"
                        self.d.error(
                            &x.args[0].pos,
                            format!("state: expected MASTER or BACKUP, found \"{s}\""),
                        );
                        return;
                    }
                };
                if state == State::Backup && matches!(v.state, Some((State::Master, _))) {
                    // vrrp_state_handler: "state previously set as MASTER - ignoring BACKUP"
                    self.d.warn(
                        x.pos(),
                        "state: previously set as MASTER - ignoring BACKUP (as keepalived)",
                    );
                    return;
                }
                v.state = Some((state, x.pos().clone()));
            }
            "interface" => {
                v.interface_seen = true;
                let Some(ifname) = self.string(x, "an interface name") else {
                    return;
                };
                if let Some(msg) = bad_ifname(&ifname) {
                    self.d.error(&x.args[0].pos, format!("interface: {msg}"));
                    return;
                }
                if ifname == "lo" {
                    // vrrp_int_handler: "cannot use a loopback interface (%s) for vrrp"
                    self.d.error(
                        &x.args[0].pos,
                        "interface: the loopback interface cannot carry VRRP",
                    );
                    return;
                }
                self.interface_ref(
                    &ifname,
                    &x.args[0].pos,
                    format!("vrrp_instance {}: interface", v.name),
                );
                v.interface = Some((ifname, x.pos().clone()));
            }
            "virtual_router_id" => {
                v.vrid_seen = true;
                // vrrp_vrid_handler: read_unsigned_strvec(…, 1, 255)
                if let Some(id) = self.uint(x, 1, 255) {
                    v.vrid = Some((id as u8, x.pos().clone()));
                }
            }
            "priority" => {
                // vrrp_prio_handler: [1, VRRP_PRIO_OWNER]
                if let Some(p) = self.uint(x, 1, 255) {
                    v.priority = Some((p as u8, x.pos().clone()));
                }
            }
            "advert_int" => {
                // vrrp_adv_handler: [TIMER_HZ / 100, 255 * TIMER_HZ] with 6 decimals
                if let Some(us) =
                    self.decimal(x, TIMER_HZ_DIGITS, US_PER_SEC / 100, 255 * US_PER_SEC)
                {
                    v.advert_int = Some((us, x.args[0].pos.clone()));
                }
            }
            "version" => {
                if let Some(ver) = self.version(x) {
                    v.version = Some((ver, x.args[0].pos.clone()));
                }
            }
            "nopreempt" => {
                self.bare_flag(x);
                v.nopreempt = Some(x.pos().clone());
            }
            "preempt" => {
                self.bare_flag(x);
                v.nopreempt = None;
            }
            "preempt_delay" => {
                // vrrp_preempt_delay_handler: [0, TIMER_MAX_SEC]
                if let Some(us) = self.decimal(x, TIMER_HZ_DIGITS, 0, 1000 * US_PER_SEC) {
                    v.preempt_delay = Some((us, x.pos().clone()));
                }
            }
            "authentication" => {
                self.extra_args(x, 0);
                let Some(lines) = self.block(x) else { return };
                v.auth.block_pos = Some(x.pos().clone());
                for l in lines {
                    match l.kw() {
                        "auth_type" => {
                            if let Some(t) = self.string(l, "PASS or AH") {
                                v.auth.auth_type = Some((t, l.args[0].pos.clone()));
                            }
                        }
                        "auth_pass" => {
                            if let Some(p) = self.string(l, "a password") {
                                let mut bytes = p.into_bytes();
                                if bytes.len() > 8 {
                                    // vrrp_auth_pass_handler: "Truncating auth_pass to 8 characters"
                                    bytes.truncate(8);
                                    self.d.warn(
                                        &l.args[0].pos,
                                        format!(
                                            "auth_pass: longer than 8 characters, truncated to \"{}\" (as keepalived)",
                                            String::from_utf8_lossy(&bytes)
                                        ),
                                    );
                                }
                                v.auth.pass = Some((bytes, l.args[0].pos.clone()));
                            }
                        }
                        _ => self.unknown(l, &format!("{ctx}authentication: ")),
                    }
                }
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                self.extra_args(x, 0);
                let excluded = x.kw() == "virtual_ipaddress_excluded";
                let Some(lines) = self.block(x) else { return };
                for l in lines {
                    self.no_block(l);
                    let Some(addr) = self.vip(x.kw(), l) else {
                        continue;
                    };
                    self.add_vip(v, addr, l, excluded);
                }
            }
            "virtual_routes" => {
                self.extra_args(x, 0);
                let Some(lines) = self.block(x) else { return };
                for l in lines {
                    self.no_block(l);
                    if let Some(r) = self.route(l) {
                        v.routes.push(r);
                    }
                }
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                // vrrp_srcip_handler: sets the instance family; must match it.
                if x.kw() == "unicast_src_ip" {
                    v.unicast_configured = true;
                }
                let Some((a, pos)) = self.ip(x) else { return };
                if self.check_family(v, &a, &pos, x.kw()) {
                    v.src_ip = Some(a);
                }
            }
            "unicast_peer" => {
                v.unicast_configured = true;
                self.extra_args(x, 0);
                let Some(lines) = self.block(x) else { return };
                for l in lines {
                    self.no_block(l);
                    self.unicast_peer(v, l);
                }
            }
            "check_unicast_src" => {
                self.bare_flag(x);
                v.unicast_configured = true;
                v.check_unicast_src = true;
            }
            "track_interface" => {
                let ctx = format!("vrrp_instance {}: track_interface", v.name);
                self.track_interfaces(x, &mut v.track_if, ctx);
            }
            "track_script" => self.track_refs(x, &mut v.track_script),
            "track_file" => self.track_refs(x, &mut v.track_file),
            "dont_track_primary" => {
                self.bare_flag(x);
                v.dont_track_primary = true;
            }
            "notify" => self.notify_script(x, &mut v.notify.notify),
            "notify_master" => self.notify_script(x, &mut v.notify.master),
            "notify_backup" => self.notify_script(x, &mut v.notify.backup),
            "notify_fault" => self.notify_script(x, &mut v.notify.fault),
            "notify_stop" => self.notify_script(x, &mut v.notify.stop),
            "garp_master_delay" => {
                if let Some(s) = self.uint(x, 0, max_secs) {
                    v.garp_delay = Some(Duration::from_secs(s));
                }
            }
            "garp_master_refresh" => {
                if let Some(s) = self.uint(x, 0, u64::from(u32::MAX)) {
                    v.garp_refresh = Some(Duration::from_secs(s));
                }
            }
            "garp_master_repeat" => {
                if let Some(n) = self.uint(x, 0, u64::from(u32::MAX)) {
                    v.garp_rep = Some(self.at_least_one(x, n));
                }
            }
            "garp_master_refresh_repeat" => {
                if let Some(n) = self.uint(x, 0, u64::from(u32::MAX)) {
                    v.garp_refresh_rep = Some(self.at_least_one(x, n));
                }
            }
            // vrrp_parser.c vrrp_garp_lower_prio_delay_handler / _rep_handler.
            "garp_lower_prio_delay" => {
                if let Some(s) = self.uint(x, 0, max_secs) {
                    v.garp_lower_prio_delay = Some((Duration::from_secs(s), x.pos().clone()));
                }
            }
            "garp_lower_prio_repeat" => {
                if let Some(n) = self.uint(x, 0, i32::MAX as u64) {
                    v.garp_lower_prio_rep = Some((n as u32, x.pos().clone()));
                }
            }
            // vrrp_parser.c vrrp_lower_prio_no_advert_handler / _higher_prio_send_advert_.
            "lower_prio_no_advert" => {
                if let Some(b) = self.flag(x) {
                    v.lower_prio_no_advert = Some((b, x.pos().clone()));
                }
            }
            "higher_prio_send_advert" => {
                if let Some(b) = self.flag(x) {
                    v.higher_prio_send_advert = Some((b, x.pos().clone()));
                }
            }
            "v3_checksum_as_v2" => {
                if let Some(b) = self.flag(x) {
                    v.v3_checksum_as_v2 = b;
                }
            }
            "accept" => {
                self.bare_flag(x);
                v.accept = Some(true);
            }
            "no_accept" => {
                self.bare_flag(x);
                v.accept = Some(false);
            }
            "strict_mode" => {
                if let Some(b) = self.flag(x) {
                    v.strict = Some(b);
                }
            }
            "skip_check_adv_addr" => {
                // vrrp_skip_check_adv_addr_handler sets the flag for any valid argument.
                if self.flag(x).is_some() {
                    v.skip_check_adv_addr = Some(true);
                }
            }
            "auth_type" | "auth_pass" => {
                self.d.error(
                    x.pos(),
                    format!(
                        "{ctx}{} belongs inside an authentication {{ }} block",
                        x.kw()
                    ),
                );
            }
            kw if keywords::INSTANCE_UNSUPPORTED.contains(&kw) => self.unsupported(x, ctx),
            _ => self.unknown(x, ctx),
        }
    }

    /// Sets the instance family from its first address, or checks the address against it.
    fn check_family(&mut self, v: &mut RawInstance, a: &IpAddr, pos: &Pos, kw: &str) -> bool {
        let fam = Family::of(a);
        match &v.family {
            None => {
                v.family = Some((fam, pos.clone()));
                true
            }
            Some((f, _)) if *f == fam => true,
            Some((f, set_at)) => {
                self.d.error(
                    pos,
                    format!(
                        "{kw}: {a} is {} but the instance is {} (from {}:{}:{})",
                        fam,
                        f,
                        set_at.file.display(),
                        set_at.line,
                        set_at.col
                    ),
                );
                false
            }
        }
    }

    fn add_vip(&mut self, v: &mut RawInstance, addr: VirtualAddress, l: &Stmt, excluded: bool) {
        let pos = l.pos().clone();
        let dup = v
            .vips
            .iter()
            .chain(v.evips.iter())
            .find(|(o, _)| o.addr == addr.addr && (!excluded || o.dev == addr.dev));
        if let Some((_, at)) = dup {
            // vrrp_data.c vip_is_duplicate
            self.d.error(
                &pos,
                format!(
                    "{}: {} duplicates the address at line {}",
                    l.keyword.text, addr.addr, at.line
                ),
            );
            return;
        }
        if excluded {
            v.evips.push((addr, pos));
            return;
        }
        let fam = Family::of(&addr.addr);
        match &v.family {
            None => v.family = Some((fam, pos.clone())),
            Some((f, set_at)) if *f != fam => {
                // vrrp_data.c alloc_vrrp_vip: "address family must match VRRP instance [%s] - ignoring".
                // keepalived drops the address (it does not move it to the excluded list).
                self.d.warn(
                    &pos,
                    format!(
                        "virtual_ipaddress: {} is {} but the instance is {} (from line {}): \
                         address ignored, as keepalived does; list it under \
                         virtual_ipaddress_excluded to have it managed",
                        addr.addr, fam, f, set_at.line
                    ),
                );
                return;
            }
            Some(_) => {}
        }
        v.vips.push((addr, pos));
    }

    /// One `virtual_ipaddress` line (keepalived/vrrp/vrrp_ipaddress.c `alloc_ipaddress`):
    /// `ADDR[/LEN] [dev IF] [brd ADDR|+|-] [scope S] [label L] [peer ADDR] [no_track] …`
    fn vip(&mut self, block_kw: &str, l: &Stmt) -> Option<VirtualAddress> {
        let first = &l.keyword;
        let (addr, prefix_len) = self.addr_prefix(block_kw, first)?;
        let mut va = VirtualAddress {
            addr,
            prefix_len,
            dev: None,
            broadcast: None,
            scope: None,
            label: None,
            peer: None,
            no_track: false,
            flags: Vec::new(),
            preferred_lft: None,
        };
        let mut brd: Option<&Word> = None;
        let mut i = 0;
        let is6 = addr.is_ipv6();
        while i < l.args.len() {
            let w = &l.args[i];
            let takes_value = matches!(
                w.text.as_str(),
                "dev" | "scope" | "broadcast" | "brd" | "label" | "peer" | "preferred_lft"
            );
            let value = if takes_value {
                match l.args.get(i + 1) {
                    Some(v) => Some(v),
                    None => {
                        self.d.error(
                            &l.end_pos(),
                            format!(
                                "{block_kw}: {}: expected a value, found end of line",
                                w.text
                            ),
                        );
                        return None;
                    }
                }
            } else {
                None
            };
            match (w.text.as_str(), value) {
                ("dev", Some(val)) => {
                    if va.dev.is_some() {
                        self.d
                            .error(&w.pos, format!("{block_kw}: dev given twice for {addr}"));
                        return None;
                    }
                    if let Some(msg) = bad_ifname(&val.text) {
                        self.d.error(&val.pos, format!("{block_kw}: dev: {msg}"));
                        return None;
                    }
                    self.interface_ref(&val.text, &val.pos, format!("{block_kw} {addr}: dev"));
                    va.dev = Some(val.text.clone());
                }
                ("scope", Some(val)) => {
                    if is6 {
                        self.d.error(
                            &w.pos,
                            format!("{block_kw}: scope cannot be set on an IPv6 address"),
                        );
                        return None;
                    }
                    match scope_value(&val.text) {
                        Some(s) => va.scope = Some(s),
                        None => {
                            self.d.error(
                                &val.pos,
                                format!(
                                    "{block_kw}: scope: expected global, site, link, host, nowhere or 0-255, found \"{}\"",
                                    val.text
                                ),
                            );
                            return None;
                        }
                    }
                }
                ("broadcast" | "brd", Some(val)) => {
                    if is6 {
                        self.d.error(
                            &w.pos,
                            format!("{block_kw}: broadcast cannot be set on an IPv6 address"),
                        );
                        return None;
                    }
                    brd = Some(val);
                }
                ("label", Some(val)) => {
                    if is6 {
                        self.d.error(
                            &w.pos,
                            format!("{block_kw}: label cannot be set on an IPv6 address"),
                        );
                        return None;
                    }
                    if val.text.len() >= 16 {
                        self.d.error(
                            &val.pos,
                            format!(
                                "{block_kw}: label \"{}\" is longer than 15 characters",
                                val.text
                            ),
                        );
                        return None;
                    }
                    va.label = Some(val.text.clone());
                }
                ("peer", Some(val)) => {
                    let (p, len) = self.addr_prefix(block_kw, val)?;
                    if p.is_ipv6() != is6 {
                        self.d.error(
                            &val.pos,
                            format!("{block_kw}: peer {p} is not of the address's family"),
                        );
                        return None;
                    }
                    if first.text.contains('/') && prefix_len != len {
                        // vrrp_ipaddress.c: "Cannot specify address prefix when specifying peer
                        // address - ignoring".
                        self.d.warn(
                            &w.pos,
                            format!(
                                "{block_kw}: {addr}: prefix /{prefix_len} ignored: with a peer the \
                                 prefix is the peer's (/{len}), as keepalived does"
                            ),
                        );
                    }
                    va.peer = Some(p);
                    va.prefix_len = len;
                }
                ("preferred_lft", Some(_)) if !is6 => {
                    // keepalived sends address lifetimes for IPv6 VIPs only.
                    self.d.warn(
                        &w.pos,
                        format!(
                            "{block_kw}: preferred_lft on IPv4 address {addr} ignored \
                             (keepalived applies it to IPv6 addresses only)"
                        ),
                    );
                }
                ("preferred_lft", Some(val)) => {
                    if val.text == "forever" {
                        va.preferred_lft = Some(u32::MAX);
                    } else {
                        va.preferred_lft =
                            Some(
                                self.uint_word("preferred_lft", val, 0, u64::from(u32::MAX))?
                                    as u32,
                            );
                    }
                }
                ("no_track", None) => va.no_track = true,
                ("home" | "-nodad" | "mngtmpaddr", None) if !is6 => {
                    // IPv6 address flags: IPv4 has no DAD, home addresses or privacy addresses.
                    self.d.warn(
                        &w.pos,
                        format!(
                            "{block_kw}: {} is an IPv6 option: ignored on IPv4 address {addr}",
                            w.text
                        ),
                    );
                }
                ("home" | "-nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin", None) => {
                    if !va.flags.contains(&w.text) {
                        va.flags.push(w.text.clone());
                    }
                }
                ("use_vmac", None) => {
                    self.d.warn(
                        &w.pos,
                        format!("{block_kw}: use_vmac: not supported by ha-agent, ignored"),
                    );
                }
                _ => {
                    self.d.error(
                        &w.pos,
                        format!("{block_kw}: unknown option \"{}\" for {addr}", w.text),
                    );
                    return None;
                }
            }
            i += if takes_value { 2 } else { 1 };
        }
        if let (Some(b), IpAddr::V4(a4)) = (brd, addr) {
            let host_mask = if va.prefix_len >= 32 {
                0
            } else {
                u32::MAX >> va.prefix_len
            };
            let base = u32::from(match va.peer {
                Some(IpAddr::V4(p)) => p,
                _ => a4,
            });
            va.broadcast = match b.text.as_str() {
                "+" | "-" if va.prefix_len > 30 => {
                    self.d.error(
                        &b.pos,
                        format!(
                            "{block_kw}: brd {}: prefix /{} too long for a broadcast address",
                            b.text, va.prefix_len
                        ),
                    );
                    return None;
                }
                "+" => Some(Ipv4Addr::from(base | host_mask)),
                "-" => Some(Ipv4Addr::from(base & !host_mask)),
                t => {
                    match t.parse::<Ipv4Addr>() {
                        Ok(x) => Some(x),
                        Err(_) => {
                            self.d.error(
                            &b.pos,
                            format!("{block_kw}: brd: expected an IPv4 address, + or -, found \"{t}\""),
                        );
                            return None;
                        }
                    }
                }
            };
        }
        Some(va)
    }

    /// `ADDR[/LEN]` (vrrp_ipaddress.c `parse_ipaddress`).
    fn addr_prefix(&mut self, kw: &str, w: &Word) -> Option<(IpAddr, u8)> {
        let (a, len) = match w.text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (w.text.as_str(), None),
        };
        let Ok(addr) = a.parse::<IpAddr>() else {
            self.d.error(
                &w.pos,
                format!(
                    "{kw}: expected an IP address[/prefix], found \"{}\"",
                    w.text
                ),
            );
            return None;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    self.d.error(
                        &w.pos,
                        format!("{kw}: prefix length \"{l}\" of {a}: expected 0-{max}"),
                    );
                    return None;
                }
            },
        };
        Some((addr, prefix))
    }

    /// One `virtual_routes` line, `ip route` style (keepalived/vrrp/vrrp_iproute.c `alloc_route`).
    fn route(&mut self, l: &Stmt) -> Option<VirtualRoute> {
        let words: Vec<&Word> = std::iter::once(&l.keyword).chain(l.args.iter()).collect();
        let mut r = VirtualRoute {
            source: source(l.pos()),
            to: String::new(),
            via: None,
            dev: None,
            src: None,
            table: None,
            metric: None,
            options: Vec::new(),
        };
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let next = words.get(i + 1).copied();
            let need = |b: &mut Self| -> Option<&Word> {
                if next.is_none() {
                    b.d.error(
                        &l.end_pos(),
                        format!(
                            "virtual_routes: {}: expected a value, found end of line",
                            w.text
                        ),
                    );
                }
                next
            };
            match w.text.as_str() {
                "src" | "via" | "gw" => {
                    let val = need(self)?;
                    let a = self.ip_word(&format!("virtual_routes: {}", w.text), val)?;
                    if w.text == "src" {
                        r.src = Some(a);
                    } else {
                        r.via = Some(a);
                    }
                    i += 2;
                }
                "dev" | "oif" => {
                    let val = need(self)?;
                    self.interface_ref(&val.text, &val.pos, format!("virtual_routes: {}", w.text));
                    r.dev = Some(val.text.clone());
                    i += 2;
                }
                "table" => {
                    r.table = Some(need(self)?.text.clone());
                    i += 2;
                }
                "metric" | "priority" | "preference" => {
                    let val = need(self)?;
                    r.metric = Some(self.uint_word(
                        "virtual_routes: metric",
                        val,
                        0,
                        u64::from(u32::MAX),
                    )? as u32);
                    i += 2;
                }
                "to" => {
                    let val = need(self)?;
                    r.to = self.route_dest(val)?;
                    i += 2;
                }
                "blackhole" | "unreachable" | "prohibit" | "throw" | "onlink" | "no_track" => {
                    r.options.push(w.text.clone());
                    i += 1;
                }
                _ if r.to.is_empty() && i == 0 || (r.to.is_empty() && looks_like_dest(&w.text)) => {
                    r.to = self.route_dest(w)?;
                    i += 1;
                }
                _ => {
                    // Other `ip route` attributes (scope, proto, mtu, advmss, …) with their value.
                    r.options.push(w.text.clone());
                    if let Some(n) = next {
                        r.options.push(n.text.clone());
                    }
                    i += 2;
                }
            }
        }
        if r.to.is_empty() {
            self.d
                .error(l.pos(), "virtual_routes: no destination in route");
            return None;
        }
        Some(r)
    }

    fn route_dest(&mut self, w: &Word) -> Option<String> {
        if matches!(w.text.as_str(), "default" | "any" | "all" | "default6") {
            return Some(w.text.clone());
        }
        let (a, len) = self.addr_prefix("virtual_routes", w)?;
        Some(format!("{a}/{len}"))
    }

    /// One `unicast_peer` line: `ADDR [min_ttl N] [max_ttl N]` (vrrp_data.c `alloc_vrrp_unicast_peer`).
    fn unicast_peer(&mut self, v: &mut RawInstance, l: &Stmt) {
        let Some(addr) = self.ip_word("unicast_peer", &l.keyword) else {
            return;
        };
        if !self.check_family(v, &addr, l.pos(), "unicast_peer") {
            return;
        }
        let mut peer = UnicastPeer {
            addr,
            min_ttl: 0,
            max_ttl: 255,
        };
        let mut ttl_word = None;
        let mut i = 0;
        while i < l.args.len() {
            let k = &l.args[i];
            let Some(val) = l.args.get(i + 1) else {
                self.d.error(
                    &l.end_pos(),
                    format!(
                        "unicast_peer: {}: expected an integer 0-255, found end of line",
                        k.text
                    ),
                );
                return;
            };
            let Some(ttl) = self.uint_word(&format!("unicast_peer: {}", k.text), val, 0, 255)
            else {
                return;
            };
            match k.text.as_str() {
                "min_ttl" => peer.min_ttl = ttl as u8,
                "max_ttl" => peer.max_ttl = ttl as u8,
                _ => {
                    self.d.error(
                        &k.pos,
                        format!(
                            "unicast_peer: expected min_ttl or max_ttl, found \"{}\"",
                            k.text
                        ),
                    );
                    return;
                }
            }
            // A TTL check only makes sense with source checking (alloc_vrrp_unicast_peer).
            v.check_unicast_src = true;
            ttl_word.get_or_insert(k);
            i += 2;
        }
        if let Some(k) = ttl_word {
            // keepalived (vrrp_check_packet) drops an advert from this peer whose TTL / hop
            // limit is outside [min_ttl, max_ttl]. Neither datapath checks a per-peer range (XDP
            // would need it in ALLOWED_PEERS): say so rather than accept adverts silently.
            self.d.warn(
                &k.pos,
                format!(
                    "unicast_peer {addr}: min_ttl/max_ttl not supported by ha-agent, ignored: \
                     adverts from this peer are accepted whatever their TTL (the source is \
                     still checked)"
                ),
            );
        }
        if v.peers.iter().any(|p| p.addr == addr) {
            self.d
                .error(l.pos(), format!("unicast_peer: duplicate peer {addr}"));
            return;
        }
        if peer.min_ttl > peer.max_ttl {
            self.d.error(
                l.pos(),
                format!(
                    "unicast_peer: {addr}: min_ttl {} > max_ttl {} would discard every advert",
                    peer.min_ttl, peer.max_ttl
                ),
            );
            return;
        }
        v.peers.push(peer);
    }
}

/// Resolution of names and completion of instances (keepalived/vrrp/vrrp.c
/// `vrrp_complete_instance`, `check_vrid_conflicts`; vrrp_sync.c `vrrp_sync_set_group`).
impl Builder<'_> {
    fn finish(mut self) -> Config {
        // Sync groups: every member must exist, and be in one group only.
        let mut member_of: HashMap<String, String> = HashMap::new();
        let mut groups = Vec::new();
        for g in std::mem::take(&mut self.groups) {
            let mut members = Vec::new();
            for m in &g.members {
                if !self.instances.iter().any(|i| i.name == m.text) {
                    self.d.error(
                        &m.pos,
                        format!(
                            "vrrp_sync_group {}: no vrrp_instance named \"{}\"",
                            g.name, m.text
                        ),
                    );
                    continue;
                }
                if let Some(other) = member_of.get(&m.text) {
                    self.d.error(
                        &m.pos,
                        format!(
                            "vrrp_sync_group {}: {} is already in sync group {other}",
                            g.name, m.text
                        ),
                    );
                    continue;
                }
                if members.contains(&m.text) {
                    self.d.error(
                        &m.pos,
                        format!("vrrp_sync_group {}: {} listed twice", g.name, m.text),
                    );
                    continue;
                }
                member_of.insert(m.text.clone(), g.name.clone());
                members.push(m.text.clone());
            }
            if !g.had_group || (g.members.is_empty()) {
                self.d.error(
                    &g.pos,
                    format!(
                        "vrrp_sync_group {}: no members (expected `group {{ INSTANCE … }}`)",
                        g.name
                    ),
                );
            } else if members.len() == 1 && g.members.len() == 1 {
                // vrrp_sync_set_group: "has only 1 virtual router(s) - this probably isn't what you want"
                self.d.warn(
                    &g.pos,
                    format!(
                        "vrrp_sync_group {}: only one instance ({}) - this probably isn't what you want",
                        g.name, members[0]
                    ),
                );
            }
            groups.push((g, members));
        }

        let instances: Vec<RawInstance> = std::mem::take(&mut self.instances);
        let mut done = Vec::new();
        for raw in &instances {
            let group = member_of
                .get(&raw.name)
                .and_then(|gname| groups.iter().find(|(g, _)| &g.name == gname))
                .map(|(g, _)| g);
            if let Some(inst) = self.complete(raw, group) {
                done.push((inst, raw));
            }
        }
        self.vrid_conflicts(&done);

        let mut sync_groups = Vec::new();
        for (g, members) in &groups {
            let has_owner = done
                .iter()
                .any(|(i, _)| members.contains(&i.name) && i.priority == 255);
            let ctx = format!("vrrp_sync_group {}", g.name);
            let track_interfaces = self.resolve_plain(&g.track_if, has_owner, &ctx);
            let track_scripts = self.resolve_scripts(&g.track_script, &ctx, has_owner);
            let track_files = self.resolve_files(&g.track_file, &ctx, has_owner);
            sync_groups.push(SyncGroup {
                name: g.name.clone(),
                source: source(&g.pos),
                members: members.clone(),
                notify: g.notify.clone(),
                track_interfaces,
                track_scripts,
                track_files,
                sync_group_tracking_weight: g.tracking_weight,
            });
        }

        Config {
            global: self.global,
            scripts: self.scripts.into_iter().map(|(s, _)| s).collect(),
            track_files: self.track_files.into_iter().map(|(f, _)| f).collect(),
            instances: done.into_iter().map(|(i, _)| i).collect(),
            sync_groups,
            interface_refs: self.interface_refs,
        }
    }

    /// Sync group trackers: with a priority-255 member, weights are cleared (vrrp.c
    /// `sync_group_tracking_init`: "Cannot have weighted track … with member having priority 255").
    fn resolve_plain(&mut self, refs: &[TrackRef], has_owner: bool, ctx: &str) -> Vec<Tracker> {
        refs.iter()
            .map(|t| {
                let mut weight = t.weight.unwrap_or(0);
                if has_owner && weight != 0 {
                    self.d.warn(
                        &t.pos,
                        format!(
                            "{ctx}: weight of tracked {} cleared: a member has priority 255",
                            t.name
                        ),
                    );
                    weight = 0;
                }
                Tracker {
                    name: t.name.clone(),
                    weight,
                    reverse: t.reverse.unwrap_or(false),
                }
            })
            .collect()
    }

    fn resolve_scripts(&mut self, refs: &[TrackRef], ctx: &str, has_owner: bool) -> Vec<Tracker> {
        let mut out = Vec::new();
        for t in refs {
            let Some((s, _)) = self.scripts.iter().find(|(s, _)| s.name == t.name) else {
                self.d.error(
                    &t.pos,
                    format!("{ctx}: track_script: no vrrp_script named \"{}\"", t.name),
                );
                continue;
            };
            let (sw, sr) = (s.weight, s.weight_reverse);
            let mut weight = t.weight.unwrap_or(sw);
            if has_owner && weight != 0 {
                self.d.warn(
                    &t.pos,
                    format!(
                        "{ctx}: weight of track_script {} cleared: a member has priority 255",
                        t.name
                    ),
                );
                weight = 0;
            }
            out.push(Tracker {
                name: t.name.clone(),
                weight,
                reverse: t.reverse.unwrap_or(sr),
            });
        }
        out
    }

    fn resolve_files(&mut self, refs: &[TrackRef], ctx: &str, has_owner: bool) -> Vec<Tracker> {
        let mut out = Vec::new();
        for t in refs {
            let Some((f, _)) = self.track_files.iter().find(|(f, _)| f.name == t.name) else {
                self.d.error(
                    &t.pos,
                    format!("{ctx}: track_file: no track_file named \"{}\"", t.name),
                );
                continue;
            };
            let (fw, fr) = (f.weight, f.weight_reverse);
            let mut weight = t.weight.unwrap_or(fw);
            if has_owner && weight != 0 {
                self.d.warn(
                    &t.pos,
                    format!(
                        "{ctx}: weight of track_file {} set to 0: a member has priority 255",
                        t.name
                    ),
                );
                weight = 0;
            }
            out.push(Tracker {
                name: t.name.clone(),
                weight,
                reverse: t.reverse.unwrap_or(fr),
            });
        }
        out
    }

    fn complete(&mut self, raw: &RawInstance, group: Option<&RawGroup>) -> Option<VrrpInstance> {
        let g = self.global.clone();
        let name = &raw.name;
        let at = &raw.pos;
        let ctx = format!("vrrp_instance {name}");
        let errors_before = self.d.errors.len();

        let Some((vrid, _)) = raw.vrid.clone() else {
            if raw.vrid_seen {
                return None; // already reported where it was written
            }
            self.d
                .error(at, format!("{ctx}: virtual_router_id: required (1-255)"));
            return None;
        };
        let strict = raw.strict.unwrap_or(g.vrrp_strict);
        let family = raw.family.as_ref().map_or(Family::Ipv4, |(f, _)| *f);

        // Version: instance `version`, else 3 for IPv6, else global vrrp_version. VRRPv2 over
        // IPv6 is no RFC's but keepalived sends it outside strict mode (tests/golden/v2-ipv6);
        // in strict mode it says so and uses 3 (vrrp.c vrrp_complete_instance).
        let version = match (&raw.version, family) {
            (Some((Version::V2, pos)), Family::Ipv6) if strict => {
                self.d.warn(
                    pos,
                    format!(
                        "{ctx}: strict mode cannot use IPv6 with VRRP version 2: version 3 (as keepalived)"
                    ),
                );
                Version::V3
            }
            (Some((v, _)), _) => *v,
            (None, Family::Ipv6) => Version::V3,
            (None, Family::Ipv4) => g.vrrp_version,
        };

        // Priority from state, state from priority.
        let priority = match (&raw.priority, &raw.state) {
            (Some((p, _)), _) => *p,
            (None, Some((State::Master, _))) => 255,
            (None, _) => 100,
        };
        let mut state = match &raw.state {
            Some((s, _)) => *s,
            None if priority == 255 => State::Master,
            None => State::Backup,
        };
        if let Some((State::Backup, spos)) = &raw.state
            && priority == 255
        {
            self.d.warn(
                spos,
                format!(
                    "{ctx}: state BACKUP with priority 255: the address owner takes over as MASTER \
                     regardless (after the master down interval)"
                ),
            );
        }
        if strict && ((state == State::Master) != (priority == 255)) {
            let fixed = if priority == 255 {
                State::Master
            } else {
                State::Backup
            };
            self.d.warn(
                raw.state.as_ref().map_or(at, |(_, p)| p),
                format!(
                    "{ctx}: in strict mode state MASTER must match being address owner (priority 255): using {}",
                    state_name(fixed)
                ),
            );
            state = fixed;
        }

        // Authentication.
        let mut authentication = None;
        if let Some(block) = &raw.auth.block_pos {
            match (&raw.auth.auth_type, &raw.auth.pass) {
                (None, _) => self.d.warn(
                    block,
                    format!(
                        "{ctx}: authentication without auth_type: no authentication (as keepalived)"
                    ),
                ),
                (Some((t, tpos)), pass) => match t.as_str() {
                    "PASS" => {
                        if strict {
                            self.d.warn(tpos, format!("{ctx}: strict mode does not support authentication, ignored (as keepalived)"));
                        } else if version == Version::V3 {
                            self.d.warn(tpos, format!("{ctx}: VRRP version 3 does not support authentication, ignored (as keepalived)"));
                        } else if let Some((p, _)) = pass.as_ref().filter(|(p, _)| !p.is_empty()) {
                            authentication = Some(Authentication { pass: p.clone() });
                        } else {
                            self.d.warn(tpos, format!("{ctx}: auth_type PASS without auth_pass: no authentication (as keepalived)"));
                        }
                    }
                    "AH" => self.d.error(
                        tpos,
                        format!("{ctx}: auth_type AH (IPsec AH) is not supported by ha-agent"),
                    ),
                    other => self.d.error(
                        tpos,
                        format!("{ctx}: auth_type: expected PASS or AH, found \"{other}\""),
                    ),
                },
            }
        }

        // Unicast.
        let unicast = !raw.peers.is_empty();
        if raw.unicast_configured && !unicast {
            self.d.warn(
                at,
                format!("{ctx}: unicast keyword without any unicast_peer: using multicast (deprecated in keepalived)"),
            );
        }
        if strict && unicast {
            self.d.error(
                at,
                format!("{ctx}: unicast peers are not supported in strict mode"),
            );
        }
        let interface = raw.interface.as_ref().map(|(i, _)| i.clone());
        if interface.is_none() && !raw.interface_seen {
            match raw.src_ip {
                None => self.d.error(
                    at,
                    format!("{ctx}: interface: required (or unicast_src_ip with unicast peers)"),
                ),
                Some(IpAddr::V6(a)) if is_link_local6(&a) => self.d.error(
                    at,
                    format!("{ctx}: a link-local unicast_src_ip needs an interface"),
                ),
                Some(_) => {}
            }
        }

        // VIPs.
        let mut vips: Vec<VirtualAddress> = raw.vips.iter().map(|(v, _)| v.clone()).collect();
        let mut evips: Vec<VirtualAddress> = raw.evips.iter().map(|(v, _)| v.clone()).collect();
        if vips.is_empty() {
            if version == Version::V3 || family == Family::Ipv6 || strict {
                self.d.error(
                    at,
                    format!("{ctx}: no virtual_ipaddress: at least one is required"),
                );
            } else {
                self.d.warn(
                    at,
                    format!("{ctx}: no virtual_ipaddress: at least one is sensible"),
                );
            }
        }
        if family == Family::Ipv6
            && !unicast
            && let Some((first, fpos)) = raw.vips.first()
            && let IpAddr::V6(a) = first.addr
            && !is_link_local6(&a)
        {
            let msg = format!("{ctx}: the first IPv6 VIP {a} should be link-local (fe80::/10)");
            if strict {
                self.d.error(fpos, msg);
            } else {
                self.d.warn(fpos, msg);
            }
        }
        // The count field is 8 bits and the advert must fit a 1500-byte frame (DEFAULT_MTU).
        let max_addr = match family {
            Family::Ipv4 => 255,
            Family::Ipv6 => (1500 - 14 - 40 - 8) / 16,
        };
        if vips.len() > max_addr {
            self.d.warn(
                at,
                format!(
                    "{ctx}: {} VIPs exceed the {max_addr} an advert can carry: the excess is moved to virtual_ipaddress_excluded (as keepalived)",
                    vips.len()
                ),
            );
            let excess = vips.split_off(max_addr);
            evips.splice(0..0, excess);
        }

        // Preemption.
        let mut preempt = raw.nopreempt.is_none();
        let mut preempt_delay = raw.preempt_delay.as_ref().map_or(0, |(d, _)| *d);
        if let Some(np) = &raw.nopreempt {
            if priority == 255 {
                self.d.warn(np, format!("{ctx}: nopreempt is incompatible with priority 255: preempting (as keepalived)"));
                preempt = true;
            } else if state == State::Master {
                self.d.warn(np, format!("{ctx}: nopreempt does not work with state MASTER: preempting (as keepalived); use state BACKUP"));
                preempt = true;
            }
        }
        if let Some((_, dpos)) = &raw.preempt_delay
            && preempt_delay > 0
        {
            if state == State::Master {
                self.d.warn(dpos, format!("{ctx}: preempt_delay does not work with state MASTER: cleared (as keepalived)"));
                preempt_delay = 0;
            } else if strict {
                self.d.warn(dpos, format!("{ctx}: preempt_delay is incompatible with strict mode: cleared (as keepalived)"));
                preempt_delay = 0;
            } else if !preempt {
                self.d.warn(dpos, format!("{ctx}: preempt_delay is incompatible with nopreempt: cleared (as keepalived)"));
                preempt_delay = 0;
            }
        }

        // Accept mode default: on, unless strict and not the owner.
        let mut accept = raw.accept.unwrap_or(priority == 255 || !strict);
        if accept && priority != 255 && strict && version == Version::V2 {
            self.d.warn(at, format!("{ctx}: accept mode with VRRPv2 does not comply with RFC 3768 in strict mode: off (as keepalived)"));
            accept = false;
        }
        if !accept {
            // keepalived enforces accept mode off with firewall rules (iptables/nftables) that
            // drop what is addressed to the VIPs; ha-agent installs none.
            self.d.warn(
                at,
                format!(
                    "{ctx}: accept mode is off (no_accept, or strict mode for a non-owner), and \
                     ha-agent does not enforce it: traffic addressed to the VIPs is accepted \
                     while master (keepalived drops it with firewall rules); add your own \
                     filter if you rely on it"
                ),
            );
        }

        // Advert interval: whole seconds for v2, centiseconds for v3.
        let mut adv = raw.advert_int.as_ref().map_or(US_PER_SEC, |(a, _)| *a);
        let adv_pos = raw.advert_int.as_ref().map_or(at, |(_, p)| p);
        if version == Version::V2 {
            if !adv.is_multiple_of(US_PER_SEC) {
                let rounded = round_to_unit_us(adv, US_PER_SEC);
                self.d.warn(
                    adv_pos,
                    format!(
                        "{ctx}: advert_int {}: VRRPv2 advertises whole seconds, rounded to {} (as keepalived)",
                        fmt_decimal(adv, TIMER_HZ_DIGITS),
                        fmt_decimal(rounded, TIMER_HZ_DIGITS)
                    ),
                );
                adv = rounded;
            }
        } else if adv >= (u64::from(V3_MAX_ADVER_INT_CS) + 1) * US_PER_CS {
            self.d.warn(
                adv_pos,
                format!(
                    "{ctx}: advert_int {}: VRRPv3 maximum is 40.95 s, using 40.95 (as keepalived)",
                    fmt_decimal(adv, TIMER_HZ_DIGITS)
                ),
            );
            adv = u64::from(V3_MAX_ADVER_INT_CS) * US_PER_CS;
        } else if !adv.is_multiple_of(US_PER_CS) {
            let rounded = round_to_unit_us(adv, US_PER_CS);
            self.d.warn(
                adv_pos,
                format!(
                    "{ctx}: advert_int {}: VRRPv3 advertises centiseconds, rounded to {} (as keepalived)",
                    fmt_decimal(adv, TIMER_HZ_DIGITS),
                    fmt_decimal(rounded, TIMER_HZ_DIGITS)
                ),
            );
            adv = rounded;
        }

        // Trackers; weights are dropped for the address owner and for sync group members
        // without sync_group_tracking_weight (vrrp_complete_instance).
        let sync_no_weight = group.is_some_and(|g| !g.tracking_weight);
        let owner = priority == 255;
        let why = if sync_no_weight {
            "member of a sync group without sync_group_tracking_weight"
        } else {
            "address owner (priority 255)"
        };
        let mut track_interfaces = Vec::new();
        for t in &raw.track_if {
            if interface.as_deref() == Some(t.name.as_str()) {
                self.d.warn(
                    &t.pos,
                    format!(
                        "{ctx}: track_interface {}: own interface is always tracked, ignored",
                        t.name
                    ),
                );
                continue;
            }
            let mut weight = t.weight.unwrap_or(0);
            if weight != 0 && (sync_no_weight || owner) {
                if sync_no_weight {
                    self.d.warn(
                        &t.pos,
                        format!(
                            "{ctx}: weight of track_interface {} ignored: {why} (as keepalived)",
                            t.name
                        ),
                    );
                    weight = 0;
                } else {
                    self.d.warn(
                        &t.pos,
                        format!(
                            "{ctx}: weighted track_interface {} ignored: {why} (as keepalived)",
                            t.name
                        ),
                    );
                    continue;
                }
            }
            track_interfaces.push(Tracker {
                name: t.name.clone(),
                weight,
                reverse: t.reverse.unwrap_or(false),
            });
        }
        let mut track_scripts = Vec::new();
        for t in &raw.track_script {
            let Some((s, _)) = self.scripts.iter().find(|(s, _)| s.name == t.name) else {
                self.d.error(
                    &t.pos,
                    format!("{ctx}: track_script: no vrrp_script named \"{}\"", t.name),
                );
                continue;
            };
            let weight = t.weight.unwrap_or(s.weight);
            let reverse = t.reverse.unwrap_or(s.weight_reverse);
            if weight != 0 && (sync_no_weight || owner) {
                self.d.warn(
                    &t.pos,
                    format!(
                        "{ctx}: weighted track_script {} ignored: {why} (as keepalived)",
                        t.name
                    ),
                );
                continue;
            }
            track_scripts.push(Tracker {
                name: t.name.clone(),
                weight,
                reverse,
            });
        }
        let mut track_files = Vec::new();
        for t in &raw.track_file {
            let Some((f, _)) = self.track_files.iter().find(|(f, _)| f.name == t.name) else {
                self.d.error(
                    &t.pos,
                    format!("{ctx}: track_file: no track_file named \"{}\"", t.name),
                );
                continue;
            };
            let mut weight = t.weight.unwrap_or(f.weight);
            let reverse = t.reverse.unwrap_or(f.weight_reverse);
            if weight != 0 && (sync_no_weight || owner) {
                if weight == 1 {
                    self.d.warn(
                        &t.pos,
                        format!(
                            "{ctx}: track_file {}: weight set to 0: {why} (as keepalived)",
                            t.name
                        ),
                    );
                    weight = 0;
                } else {
                    self.d.warn(&t.pos, format!("{ctx}: track_file {} with weight {weight} ignored: {why} (as keepalived)", t.name));
                    continue;
                }
            }
            track_files.push(Tracker {
                name: t.name.clone(),
                weight,
                reverse,
            });
        }

        let mcast_group = if unicast {
            None
        } else {
            Some(match family {
                Family::Ipv4 => IpAddr::V4(g.vrrp_mcast_group4),
                Family::Ipv6 => IpAddr::V6(g.vrrp_mcast_group6),
            })
        };

        if self.d.errors.len() > errors_before {
            // Keep collecting errors elsewhere, but an instance with errors is not completed.
            return None;
        }
        // vrrp.c vrrp_complete_instance: unset, the global value (itself defaulting to the
        // vrrp_garp_master_* one, vrrp_complete_init); strict mode wants none.
        let mut lower_prio = |set: Option<u64>, global: u64, pos: Option<&Pos>, what: &str| {
            match set {
                _ if strict => {
                    if let (Some(n), Some(pos)) = (set, pos)
                        && n != 0
                    {
                        self.d.warn(
                        pos,
                        format!("{ctx}: {what}: strict mode sends no repeated gratuitous ARPs: 0 (as keepalived)"),
                    );
                    }
                    0
                }
                Some(n) => n,
                None => global,
            }
        };
        let garp_lower_prio_repeat = lower_prio(
            raw.garp_lower_prio_rep.as_ref().map(|(n, _)| u64::from(*n)),
            u64::from(
                g.vrrp_garp_lower_prio_repeat
                    .unwrap_or(g.vrrp_garp_master_repeat),
            ),
            raw.garp_lower_prio_rep.as_ref().map(|(_, p)| p),
            "garp_lower_prio_repeat",
        ) as u32;
        let garp_lower_prio_delay = Duration::from_secs(lower_prio(
            raw.garp_lower_prio_delay.as_ref().map(|(d, _)| d.as_secs()),
            g.vrrp_garp_lower_prio_delay
                .unwrap_or(g.vrrp_garp_master_delay)
                .as_secs(),
            raw.garp_lower_prio_delay.as_ref().map(|(_, p)| p),
            "garp_lower_prio_delay",
        ));
        // vrrp.c vrrp_complete_instance: strict mode forces no advert on a lower priority and
        // none before stepping down, with a message when the configuration asked otherwise.
        let lower_prio_no_advert = match raw.lower_prio_no_advert {
            _ if !strict => raw
                .lower_prio_no_advert
                .as_ref()
                .map_or(g.vrrp_lower_prio_no_advert, |(b, _)| *b),
            Some((false, ref pos)) => {
                self.d.warn(
                    pos,
                    format!(
                        "{ctx}: strict mode sends no advert in reply to a lower priority: \
                         lower_prio_no_advert on (as keepalived)"
                    ),
                );
                true
            }
            _ => true,
        };
        let higher_prio_send_advert = match raw.higher_prio_send_advert {
            _ if !strict => raw
                .higher_prio_send_advert
                .as_ref()
                .map_or(g.vrrp_higher_prio_send_advert, |(b, _)| *b),
            Some((true, ref pos)) => {
                self.d.warn(
                    pos,
                    format!(
                        "{ctx}: strict mode sends no advert before stepping down: \
                         higher_prio_send_advert off (as keepalived)"
                    ),
                );
                false
            }
            _ => false,
        };
        Some(VrrpInstance {
            name: name.clone(),
            source: source(at),
            state,
            interface,
            vrid,
            priority,
            advert_int: secs(adv),
            version,
            family,
            preempt,
            preempt_delay: secs(preempt_delay),
            authentication,
            virtual_ipaddress: vips,
            virtual_ipaddress_excluded: evips,
            virtual_routes: raw.routes.clone(),
            src_ip: raw.src_ip,
            unicast_peers: raw.peers.clone(),
            mcast_group,
            track_interfaces,
            track_scripts,
            track_files,
            dont_track_primary: raw.dont_track_primary,
            notify: raw.notify.clone(),
            garp_master_delay: raw.garp_delay.unwrap_or(g.vrrp_garp_master_delay),
            garp_master_repeat: raw.garp_rep.unwrap_or(g.vrrp_garp_master_repeat),
            garp_master_refresh: raw.garp_refresh.unwrap_or(g.vrrp_garp_master_refresh),
            garp_master_refresh_repeat: raw
                .garp_refresh_rep
                .unwrap_or(g.vrrp_garp_master_refresh_repeat),
            garp_lower_prio_delay,
            garp_lower_prio_repeat,
            lower_prio_no_advert,
            higher_prio_send_advert,
            v3_checksum_as_v2: raw.v3_checksum_as_v2,
            accept,
            strict_mode: strict,
            skip_check_adv_addr: raw
                .skip_check_adv_addr
                .unwrap_or(g.vrrp_skip_check_adv_addr),
            check_unicast_src: raw.check_unicast_src || g.vrrp_check_unicast_src,
        })
    }

    /// vrrp.c `check_vrid_conflicts`: one VRID per interface, family and multicast group; for
    /// unicast, per local address and shared peer. Stricter than keepalived: one VRID per
    /// interface and family whatever the destinations, since both datapaths (XDP's slots, the
    /// socket's table) find an advert's instance by (interface, family, VRID) alone.
    fn vrid_conflicts(&mut self, done: &[(VrrpInstance, &RawInstance)]) {
        for (j, (b, braw)) in done.iter().enumerate() {
            for (a, _) in &done[..j] {
                if a.family != b.family || a.vrid != b.vrid {
                    continue;
                }
                let one_slot = a.interface.is_some() && a.interface == b.interface;
                let keepalived = a.is_unicast() == b.is_unicast()
                    && if a.is_unicast() {
                        let same_if = a.interface.is_none()
                            || b.interface.is_none()
                            || a.interface == b.interface;
                        let same_src =
                            a.src_ip.is_none() || b.src_ip.is_none() || a.src_ip == b.src_ip;
                        let shared_peer = a
                            .unicast_peers
                            .iter()
                            .any(|p| b.unicast_peers.iter().any(|q| q.addr == p.addr));
                        same_if && same_src && shared_peer
                    } else {
                        a.interface.is_some()
                            && a.interface == b.interface
                            && a.mcast_group == b.mcast_group
                    };
                if keepalived || one_slot {
                    let pos = braw.vrid.as_ref().map_or(&braw.pos, |(_, p)| p);
                    // keepalived would run these two; say why ha-agent cannot.
                    let why = if keepalived {
                        ""
                    } else {
                        " (ha-agent runs one instance per VRID, family and interface, whatever \
                         their unicast peers or multicast: give one of them another VRID)"
                    };
                    self.d.error(
                        pos,
                        format!(
                            "virtual_router_id: {} and {} both use VRID {} with {} on interface {}{why}",
                            a.name,
                            b.name,
                            b.vrid,
                            b.family,
                            b.interface.as_deref().unwrap_or("(none)")
                        ),
                    );
                }
            }
        }
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
    }
}

fn is_link_local6(a: &std::net::Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

fn looks_like_dest(s: &str) -> bool {
    s.split('/')
        .next()
        .is_some_and(|a| a.parse::<IpAddr>().is_ok())
}

/// The kernel's rule for interface names (IFNAMSIZ 16; keepalived `vrrp_int_handler`).
fn bad_ifname(name: &str) -> Option<String> {
    if name.len() >= 16 {
        Some(format!(
            "interface name \"{name}\" is longer than 15 characters"
        ))
    } else if name.is_empty() || name == "." || name == ".." || name.contains(['/', ':']) {
        Some(format!("invalid interface name \"{name}\""))
    } else {
        None
    }
}

/// /etc/iproute2/rt_scopes names (keepalived `find_rttables_scope`).
fn scope_value(s: &str) -> Option<u8> {
    match s {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum DecimalError {
    Negative,
    Invalid,
    TooPrecise,
}

/// `digits` fixed decimals: "1.5" with 6 digits is 1_500_000.
fn parse_decimal(s: &str, digits: u32) -> Result<u64, DecimalError> {
    if s.starts_with('-') {
        return Err(DecimalError::Negative);
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::Invalid);
    }
    if frac.len() > digits as usize {
        return Err(DecimalError::TooPrecise);
    }
    let scale = 10u64.pow(digits);
    let int_v: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| DecimalError::Invalid)?
    };
    let frac_v: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().map_err(|_| DecimalError::Invalid)?
            * 10u64.pow(digits - frac.len() as u32)
    };
    int_v
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_v))
        .ok_or(DecimalError::Invalid)
}

/// `1500000` with 6 digits is "1.5"; whole numbers have no decimals.
pub(crate) fn fmt_decimal(v: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (i, f) = (v / scale, v % scale);
    if f == 0 {
        return i.to_string();
    }
    let frac = format!("{f:0width$}", width = digits as usize);
    format!("{i}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal("1", 6), Ok(1_000_000));
        assert_eq!(parse_decimal("0.01", 6), Ok(10_000));
        assert_eq!(parse_decimal(".5", 6), Ok(500_000));
        assert_eq!(parse_decimal("1.0000001", 6), Err(DecimalError::TooPrecise));
        assert_eq!(parse_decimal("-1", 6), Err(DecimalError::Negative));
        assert_eq!(parse_decimal("1e3", 6), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal(".", 6), Err(DecimalError::Invalid));
        assert_eq!(
            parse_decimal("99999999999999999999", 6),
            Err(DecimalError::Invalid)
        );
        assert_eq!(fmt_decimal(1_500_000, 6), "1.5");
        assert_eq!(fmt_decimal(2_000_000, 6), "2");
        assert_eq!(fmt_decimal(10_000, 6), "0.01");
    }
}

//! Reading one statement's arguments: integers, decimals, flags, addresses, users, notify
//! scripts. Each error is reported at the word that is wrong, in keepalived's terms.

use std::net::IpAddr;
use std::str::FromStr;

use super::{Builder, source};
use crate::config::Ignored;
use crate::config::decimal::{DecimalError, fmt_decimal, parse_decimal};
use crate::config::error::Pos;
use crate::config::keywords::{self, Context, Status};
use crate::config::lexer::{Word, split_command, split_words};
use crate::config::model::{InterfaceRef, NotifyScript, ScriptUser};
use crate::config::parser::Stmt;
use crate::vrrp::types::Version;

/// " in vrrp_instance VI_1" from the context prefix "vrrp_instance VI_1: " (empty at top level).
fn in_context(context: &str) -> String {
    let c = context.trim_end_matches([':', ' ']);
    if c.is_empty() {
        String::new()
    } else {
        format!(" (in {c})")
    }
}

impl Builder<'_> {
    pub(super) fn arg<'a>(&mut self, st: &'a Stmt, i: usize, what: &str) -> Option<&'a Word> {
        let w = st.args.get(i);
        if w.is_none() {
            self.d.error(
                &st.end_pos(),
                format!("{}: expected {what}, found end of line", st.kw()),
            );
        }
        w
    }

    pub(super) fn extra_args(&mut self, st: &Stmt, n: usize) {
        if let Some(w) = st.args.get(n) {
            self.d.warn(
                &w.pos,
                format!("{}: unexpected \"{}\" ignored", st.kw(), w.text),
            );
        }
    }

    pub(super) fn no_block(&mut self, st: &Stmt) {
        if let Some(b) = &st.block {
            self.d
                .error(&b.open, format!("{}: takes no '{{' block", st.kw()));
        }
    }

    pub(super) fn block<'a>(&mut self, st: &'a Stmt) -> Option<&'a [Stmt]> {
        match &st.block {
            Some(b) => Some(&b.stmts),
            None => {
                self.d
                    .error(&st.end_pos(), format!("{}: expected a '{{' block", st.kw()));
                None
            }
        }
    }

    pub(super) fn string(&mut self, st: &Stmt, what: &str) -> Option<String> {
        self.no_block(st);
        let w = self.arg(st, 0, what)?.text.clone();
        self.extra_args(st, 1);
        Some(w)
    }

    /// An integer in `min..=max`; `range` is how the message writes the bounds.
    fn integer<T: FromStr + PartialOrd>(
        &mut self,
        kw: &str,
        w: &Word,
        min: T,
        max: T,
        range: String,
    ) -> Option<T> {
        match w.text.parse::<T>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.d.error(
                    &w.pos,
                    format!("{kw}: expected an integer {range}, found \"{}\"", w.text),
                );
                None
            }
        }
    }

    pub(super) fn uint_word(&mut self, kw: &str, w: &Word, min: u64, max: u64) -> Option<u64> {
        self.integer(kw, w, min, max, format!("{min}-{max}"))
    }

    /// `version 2|3` / `vrrp_version 2|3`.
    pub(super) fn version_word(&mut self, st: &Stmt) -> Option<Version> {
        let n = self.uint(st, 2, 3)?;
        u8::try_from(n).ok().and_then(Version::from_number)
    }

    pub(super) fn uint(&mut self, st: &Stmt, min: u64, max: u64) -> Option<u64> {
        self.no_block(st);
        let w = self.arg(st, 0, &format!("an integer {min}-{max}"))?;
        let v = self.uint_word(st.kw(), w, min, max);
        self.extra_args(st, 1);
        v
    }

    pub(super) fn int_word(&mut self, kw: &str, w: &Word, min: i64, max: i64) -> Option<i64> {
        self.integer(kw, w, min, max, format!("{min} to {max}"))
    }

    /// A decimal number of seconds with up to `digits` decimals, returned in 10^-digits units
    /// (lib/parser.c `read_decimal_unsigned_long_func`).
    pub(super) fn decimal_word(
        &mut self,
        kw: &str,
        w: &Word,
        digits: u32,
        min: u64,
        max: u64,
    ) -> Option<u64> {
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

    pub(super) fn decimal(&mut self, st: &Stmt, digits: u32, min: u64, max: u64) -> Option<u64> {
        self.no_block(st);
        let w = self.arg(st, 0, "a number of seconds")?;
        let v = self.decimal_word(st.kw(), w, digits, min, max);
        self.extra_args(st, 1);
        v
    }

    /// A flag with an optional `true|on|yes|false|off|no` (lib/parser.c `check_true_false`).
    pub(super) fn flag(&mut self, st: &Stmt) -> Option<bool> {
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
    pub(super) fn bare_flag(&mut self, st: &Stmt) {
        self.no_block(st);
        self.extra_args(st, 0);
    }

    pub(super) fn ip_word(&mut self, kw: &str, w: &Word) -> Option<IpAddr> {
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

    pub(super) fn ip(&mut self, st: &Stmt) -> Option<(IpAddr, Pos)> {
        self.no_block(st);
        let w = self.arg(st, 0, "an IP address")?;
        let a = self.ip_word(st.kw(), w)?;
        self.extra_args(st, 1);
        Some((a, w.pos.clone()))
    }

    /// A keyword no arm of `ctx`'s builder took: what keywords.rs says of it. Messages say the
    /// cause first, then where, then what to do.
    pub(super) fn not_handled(&mut self, st: &Stmt, ctx: Context, context: &str) {
        let kw = st.kw();
        let whole = if st.block.is_some() && ctx == Context::Root {
            " (the whole block)"
        } else {
            ""
        };
        let Some(entry) = keywords::lookup(ctx, kw) else {
            return self.unknown_in(st, context, Some(ctx));
        };
        let changes_failover = match entry.status {
            // The table and the builder's arms disagree: a test keeps this from happening.
            Status::Supported => {
                return self.d.error(
                    st.pos(),
                    format!("{kw}: listed as supported but not read here (an ha-agent bug)"),
                );
            }
            Status::Replaced => {
                self.d.warn(
                    st.pos(),
                    format!(
                        "{kw}: parsed but not used by ha-agent, ignored{whole}: {}{}",
                        entry.reason,
                        in_context(context)
                    ),
                );
                false
            }
            Status::Unsupported | Status::Lvs if self.allow_unsupported => {
                self.d.warn(
                    st.pos(),
                    format!(
                        "{kw}: not supported by ha-agent, ignored{whole} as --allow-unsupported \
                         asks: {}{}",
                        entry.reason,
                        in_context(context)
                    ),
                );
                true
            }
            Status::Unsupported | Status::Lvs => {
                self.d.error(
                    st.pos(),
                    format!(
                        "{kw}: not supported by ha-agent, and ignoring it would change failover \
                         behaviour: {}{}; pass --allow-unsupported to run without it",
                        entry.reason,
                        in_context(context)
                    ),
                );
                true
            }
        };
        self.d.ignored.push(Ignored {
            keyword: kw.to_string(),
            changes_failover,
        });
    }

    pub(super) fn unknown(&mut self, st: &Stmt, context: &str) {
        self.unknown_in(st, context, None);
    }

    /// "unknown keyword", with the nearest keyword of `ctx` when one is near (a typo).
    pub(super) fn unknown_in(&mut self, st: &Stmt, context: &str, ctx: Option<Context>) {
        let hint = ctx
            .and_then(|c| keywords::nearest(c, st.kw()))
            .map(|n| format!(": did you mean `{n}`?"))
            .unwrap_or_default();
        self.d.error(
            st.pos(),
            format!(
                "unknown keyword \"{}\"{}{hint}",
                st.kw(),
                in_context(context)
            ),
        );
    }

    pub(super) fn script_user(&mut self, st: &Stmt) -> Option<ScriptUser> {
        self.no_block(st);
        let word = self.arg(st, 0, "a user name")?;
        let (user, at) = (word.text.clone(), source(&word.pos));
        let group = st.args.get(1).map(|w| w.text.clone());
        self.extra_args(st, 2);
        Some(ScriptUser { user, group, at })
    }

    /// `notify* "COMMAND ARGS" [USER [GROUP]]` (lib/notify.c `notify_script_init`).
    pub(super) fn notify_script(&mut self, st: &Stmt, slot: &mut Option<NotifyScript>) {
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

    /// Records where an interface is named.
    pub(super) fn interface_ref(&mut self, name: &str, pos: &Pos, what: String) {
        self.interface_refs.push(InterfaceRef {
            name: name.to_owned(),
            at: source(pos),
            what,
        });
    }
}

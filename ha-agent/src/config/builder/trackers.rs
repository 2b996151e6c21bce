//! Trackers: `vrrp_script`, `track_file` and `vrrp_track_process` definitions, the
//! `track_interface`, `track_script`, `track_file` and `track_process` references of instances
//! and sync groups with their `weight N [reverse]`, and the resolution of each reference against its definition, with
//! keepalived's rules for dropping weights.

use std::path::PathBuf;
use std::time::Duration;

use super::{Builder, TrackRef, US_PER_SEC, source};
use crate::config::lexer::{Word, split_command, split_words};
use crate::config::model::{
    ParamMatch, TrackFile, TrackFileInit, TrackProcess, Tracker, VrrpScript,
};
use crate::config::parser::Stmt;

/// What a `track_*` reference names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TrackKind {
    Interface,
    Script,
    File,
    Process,
}

impl TrackKind {
    /// The reference's keyword, and the block that defines what it names.
    fn keywords(self) -> (&'static str, &'static str) {
        match self {
            TrackKind::Interface => ("track_interface", "interface"),
            TrackKind::Script => ("track_script", "vrrp_script"),
            TrackKind::File => ("track_file", "track_file"),
            TrackKind::Process => ("track_process", "vrrp_track_process"),
        }
    }
}

/// Why an instance's tracker weights are dropped (vrrp.c `vrrp_complete_instance`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NoWeight {
    /// A sync group member without `sync_group_tracking_weight`.
    SyncGroup,
    /// The address owner (priority 255).
    Owner,
}

impl NoWeight {
    fn why(self) -> &'static str {
        match self {
            NoWeight::SyncGroup => "member of a sync group without sync_group_tracking_weight",
            NoWeight::Owner => "address owner (priority 255)",
        }
    }
}

/// References: `track_* { NAME [weight N [reverse|noreverse]] … }`.
impl Builder<'_> {
    /// `track_interface { … }`: [`Builder::track_refs`], and each name an interface reference.
    pub(super) fn track_interfaces(&mut self, st: &Stmt, out: &mut Vec<TrackRef>, what: String) {
        let before = out.len();
        self.track_refs(st, out);
        for t in &out[before..] {
            self.interface_ref(&t.name, &t.pos, what.clone());
        }
    }

    /// Lines of `track_interface`/`track_script`/`track_file`: `NAME [weight N [reverse|noreverse]]`
    /// (keepalived/vrrp/vrrp_track.c `alloc_track_if`, `alloc_track_script`).
    pub(super) fn track_refs(&mut self, st: &Stmt, out: &mut Vec<TrackRef>) {
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
            let Some((weight, reverse)) = self.ref_weight(st.kw(), line, &name) else {
                continue;
            };
            out.push(TrackRef {
                name,
                pos: line.pos().clone(),
                weight,
                reverse,
            });
        }
    }

    /// The `[weight N [reverse|noreverse]]` after a tracked name; `None` (reported) drops the line.
    fn ref_weight(
        &mut self,
        kw: &str,
        line: &Stmt,
        name: &str,
    ) -> Option<(Option<i32>, Option<bool>)> {
        let Some(opt) = line.args.first() else {
            return Some((None, None));
        };
        if opt.text != "weight" {
            self.d.error(
                &opt.pos,
                format!(
                    "{kw}: expected \"weight\" after {name}, found \"{}\"",
                    opt.text
                ),
            );
            return None;
        }
        let Some(w) = line.args.get(1) else {
            self.d.error(
                &line.end_pos(),
                format!("{kw}: weight: expected an integer -253 to 253, found end of line"),
            );
            return None;
        };
        let mut v = self.int_word(&format!("{kw} {name} weight"), w, -254, 254)?;
        if v.abs() == 254 && kw != "track_process" {
            // vrrp_track.c: "weight cannot be +/-254. Setting to +/-253"
            v = v.signum() * 253;
            self.d.warn(
                &w.pos,
                format!("{kw}: weight for {name} cannot be +/-254, using {v}"),
            );
        }
        let reverse = match line.args.get(2) {
            Some(r) => Some(self.reverse_word(kw, r, true)?),
            None => None,
        };
        self.extra_args(line, 3);
        Some((i32::try_from(v).ok(), reverse))
    }

    /// `weight N [reverse]` in a `vrrp_script` (N within ±253) or `track_file` (±254) block
    /// (vrrp_parser.c `vrrp_vscript_weight_handler`, track_file.c `track_file_weight_handler`).
    fn weight_stmt(&mut self, x: &Stmt, limit: i64, weight: &mut i32, reverse: &mut bool) {
        self.no_block(x);
        let Some(w) = self.arg(x, 0, &format!("an integer -{limit} to {limit}")) else {
            return;
        };
        if let Some(v) = self.int_word("weight", w, -limit, limit) {
            *weight = v as i32;
        }
        if let Some(r) = x.args.get(1)
            && self.reverse_word("weight", r, false).is_some()
        {
            *reverse = true;
        }
        self.extra_args(x, 2);
    }

    /// `reverse`, or where keepalived reads it (references) `noreverse`, after a weight.
    fn reverse_word(&mut self, kw: &str, r: &Word, noreverse: bool) -> Option<bool> {
        match r.text.as_str() {
            "reverse" => Some(true),
            "noreverse" if noreverse => Some(false),
            _ => {
                let expected = if noreverse {
                    "\"reverse\" or \"noreverse\""
                } else {
                    "\"reverse\""
                };
                self.d.error(
                    &r.pos,
                    format!("{kw}: expected {expected}, found \"{}\"", r.text),
                );
                None
            }
        }
    }
}

/// Definitions: `vrrp_script NAME { … }`, `track_file NAME { … }`.
impl Builder<'_> {
    pub(super) fn vrrp_script(&mut self, st: &Stmt) {
        let Some((name, stmts)) =
            self.named_block(st, |b, name| b.scripts.iter().any(|(s, _)| s.name == name))
        else {
            return;
        };
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
                // vrrp_vscript_weight_handler: [-253, 253], optional "reverse".
                "weight" => self.weight_stmt(x, 253, &mut s.weight, &mut s.weight_reverse),
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

    pub(super) fn track_file_def(&mut self, st: &Stmt) {
        let Some((name, stmts)) = self.named_block(st, |b, name| {
            b.track_files.iter().any(|(f, _)| f.name == name)
        }) else {
            return;
        };
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
                "weight" => self.weight_stmt(x, 254, &mut f.weight, &mut f.weight_reverse),
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
}

/// The longest comm the kernel keeps (TASK_COMM_LEN 16, with its NUL).
const COMM_MAX: usize = 15;

/// `vrrp_track_process NAME { … }` (vrrp_parser.c `vrrp_tprocess_*_handler`).
impl Builder<'_> {
    pub(super) fn track_process_def(&mut self, st: &Stmt) {
        let Some((name, stmts)) = self.named_block(st, |b, name| {
            b.track_processes.iter().any(|(p, _)| p.name == name)
        }) else {
            return;
        };
        let ctx = format!("vrrp_track_process {name}");
        // Defaults: vrrp_data.c alloc_vrrp_process.
        let mut p = TrackProcess {
            name: name.clone(),
            source: source(st.pos()),
            process: String::new(),
            params: Vec::new(),
            param_match: ParamMatch::None,
            full_command: false,
            weight: 0,
            weight_reverse: false,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        };
        let mut process_pos = None;
        let mut weight_seen = false;
        for x in stmts {
            match x.kw() {
                "process" => {
                    self.no_block(x);
                    if process_pos.is_some() {
                        self.d
                            .error(x.pos(), format!("{ctx}: process: already set"));
                        continue;
                    }
                    let Some(w) = self.arg(x, 0, "a process name") else {
                        continue;
                    };
                    p.process = w.text.clone();
                    process_pos = Some(w.pos.clone());
                    p.params = x.args[1..].iter().map(|w| w.text.clone()).collect();
                    if !p.params.is_empty() {
                        // Parameters: the command line is matched, exactly unless said otherwise.
                        if p.param_match == ParamMatch::None {
                            p.param_match = ParamMatch::Exact;
                        }
                        p.full_command = true;
                    }
                }
                "param_match" => {
                    self.no_block(x);
                    p.param_match = match x.args.first().map(|w| w.text.as_str()) {
                        None => ParamMatch::Exact,
                        Some("initial") => ParamMatch::Initial,
                        Some("partial") => ParamMatch::Partial,
                        Some(other) => {
                            self.d.error(
                                &x.args[0].pos,
                                format!(
                                    "{ctx}: param_match: expected \"initial\" or \"partial\" \
                                     (or nothing: exact), found \"{other}\""
                                ),
                            );
                            continue;
                        }
                    };
                    self.extra_args(x, 1);
                    p.full_command = true;
                }
                "weight" => {
                    if weight_seen {
                        self.d.error(x.pos(), format!("{ctx}: weight: already set"));
                        continue;
                    }
                    weight_seen = true;
                    self.weight_stmt(x, 254, &mut p.weight, &mut p.weight_reverse);
                }
                "quorum" => {
                    if let Some(q) = self.uint(x, 1, 65535) {
                        if q > u64::from(p.quorum_max) {
                            self.d.error(
                                x.pos(),
                                format!(
                                    "{ctx}: quorum {q} is greater than quorum_max {}",
                                    p.quorum_max
                                ),
                            );
                        } else {
                            p.quorum = q as u32;
                        }
                    }
                }
                "quorum_max" => {
                    if let Some(q) = self.uint(x, 0, 65535) {
                        let q = q as u32;
                        // quorum_max 0 (no process may run) is allowed when quorum is not set.
                        if (q != 0 || p.quorum > 1) && q < p.quorum {
                            self.d.error(
                                x.pos(),
                                format!("{ctx}: quorum_max {q} is less than quorum {}", p.quorum),
                            );
                        } else {
                            p.quorum_max = q;
                            if q == 0 {
                                p.quorum = 0;
                            } else if p.quorum == 0 {
                                p.quorum = 1;
                            }
                        }
                    }
                }
                "delay" | "fork_delay" | "terminate_delay" => {
                    // 0.000001 to 3600 seconds (vrrp_tprocess_delay_general).
                    let max = 3600 * US_PER_SEC;
                    if let Some(us) = self.decimal(x, super::TIMER_HZ_DIGITS, 1, max) {
                        let d = Duration::from_micros(us);
                        if x.kw() != "terminate_delay" {
                            p.fork_delay = d;
                        }
                        if x.kw() != "fork_delay" {
                            p.terminate_delay = d;
                        }
                    }
                }
                "full_command" => {
                    self.bare_flag(x);
                    p.full_command = true;
                }
                _ => self.unknown(x, &format!("{ctx}: ")),
            }
        }
        match process_pos {
            None => self.d.error(
                st.pos(),
                format!("{ctx}: no process set (expected `process NAME [PARAMETER…]`)"),
            ),
            Some(pos) if !p.full_command && p.process.len() > COMM_MAX => self.d.warn(
                &pos,
                format!(
                    "{ctx}: a process name (comm) has at most {COMM_MAX} characters, so \
                     \"{}\" never matches (as keepalived); use full_command to match the \
                     command line",
                    p.process
                ),
            ),
            Some(_) => {}
        }
        self.track_processes.push((p, st.pos().clone()));
    }
}

/// Resolution: each reference against its definition, with the weights keepalived keeps.
impl Builder<'_> {
    /// A reference's weight and reverse: its own, else its definition's (an interface has none);
    /// `None`, reported, when nothing of its name is defined.
    fn tracked(&mut self, kind: TrackKind, t: &TrackRef, ctx: &str) -> Option<(i32, bool)> {
        let defined = match kind {
            TrackKind::Interface => Some((0, false)),
            TrackKind::Script => self
                .scripts
                .iter()
                .find(|(s, _)| s.name == t.name)
                .map(|(s, _)| (s.weight, s.weight_reverse)),
            TrackKind::File => self
                .track_files
                .iter()
                .find(|(f, _)| f.name == t.name)
                .map(|(f, _)| (f.weight, f.weight_reverse)),
            TrackKind::Process => self
                .track_processes
                .iter()
                .find(|(p, _)| p.name == t.name)
                .map(|(p, _)| (p.weight, p.weight_reverse)),
        };
        let Some((weight, reverse)) = defined else {
            let (kw, definition) = kind.keywords();
            self.d.error(
                &t.pos,
                format!("{ctx}: {kw}: no {definition} named \"{}\"", t.name),
            );
            return None;
        };
        Some((t.weight.unwrap_or(weight), t.reverse.unwrap_or(reverse)))
    }

    /// A sync group's trackers: with a priority-255 member, weights are cleared (vrrp.c
    /// `sync_group_tracking_init`: "Cannot have weighted track … with member having priority 255").
    pub(super) fn group_trackers(
        &mut self,
        kind: TrackKind,
        refs: &[TrackRef],
        has_owner: bool,
        ctx: &str,
    ) -> Vec<Tracker> {
        let mut out = Vec::new();
        for t in refs {
            let Some((mut weight, reverse)) = self.tracked(kind, t, ctx) else {
                continue;
            };
            if has_owner && weight != 0 {
                let what = match kind {
                    TrackKind::Interface => format!("weight of tracked {} cleared", t.name),
                    TrackKind::Script => format!("weight of track_script {} cleared", t.name),
                    TrackKind::File => format!("weight of track_file {} set to 0", t.name),
                    TrackKind::Process => {
                        format!("weight of track_process {} set to 0", t.name)
                    }
                };
                self.d
                    .warn(&t.pos, format!("{ctx}: {what}: a member has priority 255"));
                weight = 0;
            }
            out.push(Tracker {
                name: t.name.clone(),
                weight,
                reverse,
            });
        }
        out
    }

    /// An instance's trackers. Its own `interface` is always tracked: naming it is ignored.
    /// Where weights are dropped (`no_weight`), keepalived keeps some references at weight 0 (an
    /// interface in a sync group, a file of weight 1) and drops the others.
    pub(super) fn instance_trackers(
        &mut self,
        kind: TrackKind,
        refs: &[TrackRef],
        no_weight: Option<NoWeight>,
        interface: Option<&str>,
        ctx: &str,
    ) -> Vec<Tracker> {
        let mut out = Vec::new();
        for t in refs {
            if kind == TrackKind::Interface && interface == Some(t.name.as_str()) {
                self.d.warn(
                    &t.pos,
                    format!(
                        "{ctx}: track_interface {}: own interface is always tracked, ignored",
                        t.name
                    ),
                );
                continue;
            }
            let Some((mut weight, reverse)) = self.tracked(kind, t, ctx) else {
                continue;
            };
            if let Some(no) = no_weight
                && weight != 0
                && kind == TrackKind::Process
            {
                // vrrp.c vrrp_complete_instance drops no weighted track_process: the man page
                // asks for weight 0, keepalived applies the weight (an owner's priority stays).
                self.d.warn(
                    &t.pos,
                    format!(
                        "{ctx}: track_process {} with weight {weight}: {} (keepalived's man page \
                         asks for weight 0; the weight applies, as keepalived)",
                        t.name,
                        no.why()
                    ),
                );
            } else if let Some(no) = no_weight
                && weight != 0
            {
                let why = no.why();
                let kept_at_zero = match kind {
                    TrackKind::Interface if no == NoWeight::SyncGroup => {
                        Some(format!("weight of track_interface {} ignored", t.name))
                    }
                    TrackKind::File if weight == 1 => {
                        Some(format!("track_file {}: weight set to 0", t.name))
                    }
                    _ => None,
                };
                if let Some(what) = kept_at_zero {
                    self.d
                        .warn(&t.pos, format!("{ctx}: {what}: {why} (as keepalived)"));
                    weight = 0;
                } else {
                    let what = match kind {
                        TrackKind::Interface => format!("weighted track_interface {}", t.name),
                        TrackKind::Script => format!("weighted track_script {}", t.name),
                        TrackKind::File => format!("track_file {} with weight {weight}", t.name),
                        TrackKind::Process => format!("track_process {}", t.name),
                    };
                    self.d.warn(
                        &t.pos,
                        format!("{ctx}: {what} ignored: {why} (as keepalived)"),
                    );
                    continue;
                }
            }
            out.push(Tracker {
                name: t.name.clone(),
                weight,
                reverse,
            });
        }
        out
    }
}

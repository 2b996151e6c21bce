//! keepalived's configuration language above words (lib/parser.c `read_line`): `@ID` / `@^ID`
//! conditional lines, `$NAME=VALUE` definitions (multi-line with a trailing `\`), `$NAME` and
//! `${NAME}` substitution, the predefined `${_PWD}`, `${_INSTANCE}`, `${_RANDOM [MIN [MAX]]}`,
//! `${_HASH}`, `${_BANG}`, and `~SEQ(VAR, [[START,] STEP,] END)` / `~SEQx` repetition.
//!
//! This file owns one logical line ([`Line`]: its characters, each with the column it came from,
//! so a diagnostic after substitution still points at the file's text: substituted text at the
//! `$` of its reference) and the definitions ([`Defs`]). The lexer drives it line by line, since
//! definitions, conditions and includes interleave in file order.

use std::hash::{BuildHasher as _, Hasher as _};
use std::path::{Path, PathBuf};

/// Bound on a line after substitution (a definition that refers to itself grows without end;
/// keepalived stops at its buffer size).
pub(crate) const MAX_LINE_CHARS: usize = 64 * 1024;
/// Bound on the lines made by ~SEQ and multi-line definitions in one configuration (keepalived's
/// man page makes 65024 instances with three nested ~SEQ).
pub(crate) const MAX_GENERATED_LINES: usize = 1 << 20;
/// Bound on nested expansions (a multi-line definition that names itself).
pub(crate) const MAX_EXPANSION_DEPTH: usize = 64;

/// One logical line: characters, each with its 1-based column in the file line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub chars: Vec<(char, u32)>,
}

impl Line {
    /// A line of the file as read (columns 1, 2, …).
    pub fn from_file(text: &str) -> Line {
        Line {
            chars: text
                .chars()
                .enumerate()
                .map(|(i, c)| (c, u32::try_from(i + 1).unwrap_or(u32::MAX)))
                .collect(),
        }
    }

    /// `text`, every character at column `col` (substituted or generated text).
    fn at(text: &str, col: u32) -> Line {
        Line {
            chars: text.chars().map(|c| (c, col)).collect(),
        }
    }

    pub fn text(&self) -> String {
        self.chars.iter().map(|&(c, _)| c).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    fn char(&self, i: usize) -> Option<char> {
        self.chars.get(i).map(|&(c, _)| c)
    }

    /// The column of character `i` (the last one's past the end).
    pub fn col(&self, i: usize) -> u32 {
        self.chars
            .get(i)
            .or(self.chars.last())
            .map_or(1, |&(_, c)| c)
    }

    fn skip_blanks(&self, mut i: usize) -> usize {
        while matches!(self.char(i), Some(' ' | '\t')) {
            i += 1;
        }
        i
    }

    fn drop_front(&mut self, n: usize) {
        self.chars.drain(..n.min(self.chars.len()));
    }

    /// keepalived's `decomment`: leading blanks, the comment from the first `!` or `#` outside
    /// double quotes and not `\`-escaped, and trailing blanks go; a trailing `\` (a continuation)
    /// stays, without the blanks before it. Escapes stay for the word splitter.
    pub fn decomment(&mut self) {
        let start = self.skip_blanks(0);
        self.drop_front(start);
        let (mut quote, mut cont, mut i) = (false, false, 0);
        let mut cut = self.chars.len();
        while i < self.chars.len() {
            match self.chars[i].0 {
                '"' => quote = !quote,
                '\\' if i + 1 < self.chars.len() => i += 1,
                '\\' => {
                    cont = true;
                    cut = i;
                    break;
                }
                '!' | '#' if !quote => {
                    cut = i;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let slash = self.chars.get(cut).copied();
        self.chars.truncate(cut);
        while matches!(self.chars.last(), Some((' ' | '\t', _))) {
            self.chars.pop();
        }
        if cont && let Some(s) = slash {
            self.chars.push(s);
        }
    }

    /// Ends with a continuation `\`: removes it and the blanks before it.
    fn take_continuation(&mut self) -> bool {
        if self.chars.last().is_some_and(|&(c, _)| c == '\\') {
            self.chars.pop();
            while matches!(self.chars.last(), Some((' ' | '\t', _))) {
                self.chars.pop();
            }
            true
        } else {
            false
        }
    }
}

/// What `@ID` / `@^ID` at the start of a line says.
pub(crate) enum Condition {
    /// Not a conditional line.
    None,
    /// For another configuration id: the line is dropped.
    Drop,
    /// For this one: the line without its `@ID` and the blanks after it.
    Keep,
}

/// lib/parser.c `read_line`: `@ID rest` is kept when ID is the configuration id, `@^ID rest`
/// when it is not; a line with nothing after the id is dropped.
pub(crate) fn condition(l: &mut Line, config_id: &str) -> Condition {
    if l.char(0) != Some('@') {
        return Condition::None;
    }
    let (rev, ofs) = if l.char(1) == Some('^') {
        (true, 2)
    } else {
        (false, 1)
    };
    let Some(end) = (ofs..l.chars.len()).find(|&i| matches!(l.char(i), Some(' ' | '\t'))) else {
        return Condition::Drop;
    };
    let id: String = l.chars[ofs..end].iter().map(|&(c, _)| c).collect();
    if (id == config_id) == rev {
        return Condition::Drop;
    }
    let rest = l.skip_blanks(end);
    l.drop_front(rest);
    Condition::Keep
}

/// A predefined definition computed when used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Pwd,
    Instance,
    Random,
}

#[derive(Debug, Clone)]
struct Def {
    name: String,
    /// The value's lines (one unless multi-line).
    lines: Vec<String>,
    multiline: bool,
    builtin: Option<Builtin>,
}

/// The definitions in force, in file order (a definition applies to the lines after it).
#[derive(Debug)]
pub(crate) struct Defs {
    defs: Vec<Def>,
    config_id: String,
    /// `${_PWD}`: the directory of the file being read.
    pub pwd: PathBuf,
    /// The multi-line definition being read (its lines end with `\`).
    open: Option<usize>,
}

/// A definition line: `$NAME=VALUE` (no blank before `=`; lib/parser.c `check_definition`).
fn definition_name(l: &Line) -> Option<(String, usize)> {
    if l.char(0) != Some('$') {
        return None;
    }
    let first = l.char(1)?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let mut i = 2;
    loop {
        match l.char(i)? {
            '=' => break,
            c if c.is_ascii_alphanumeric() || c == '_' => i += 1,
            _ => return None,
        }
    }
    Some((l.chars[1..i].iter().map(|&(c, _)| c).collect(), i + 1))
}

/// What `${NAME}` / `$NAME` at a `$` refers to.
struct Reference {
    /// Characters from the `$` to the end of the reference.
    len: usize,
    def: usize,
    /// `${_RANDOM MIN MAX}`'s numbers.
    params: Vec<u64>,
}

impl Defs {
    pub fn new(config_id: String, pwd: PathBuf) -> Defs {
        let builtin = |name: &str, value: &str, b: Option<Builtin>| Def {
            name: name.to_string(),
            lines: vec![value.to_string()],
            multiline: false,
            builtin: b,
        };
        Defs {
            defs: vec![
                builtin("_PWD", "", Some(Builtin::Pwd)),
                builtin("_INSTANCE", "", Some(Builtin::Instance)),
                builtin("_RANDOM", "", Some(Builtin::Random)),
                builtin("_HASH", "#", None),
                builtin("_BANG", "!", None),
            ],
            config_id,
            pwd,
            open: None,
        }
    }

    /// A multi-line definition is being read.
    pub fn reading_definition(&self) -> bool {
        self.open.is_some()
    }

    /// A line of the file while a multi-line definition is open (`raw_empty`: the line was
    /// empty before decommenting, which ends the definition as in keepalived).
    pub fn continue_definition(&mut self, mut l: Line, raw_empty: bool) {
        let Some(d) = self.open else { return };
        if raw_empty {
            self.close(d);
            return;
        }
        if l.is_empty() {
            // A comment-only line: keepalived reads on.
            return;
        }
        let more = l.take_continuation();
        if !l.is_empty() {
            self.defs[d].lines.push(l.text());
        }
        if !more {
            self.close(d);
        }
    }

    fn close(&mut self, d: usize) {
        self.open = None;
        let def = &mut self.defs[d];
        def.lines.retain(|s| !s.is_empty());
        if def.lines.is_empty() {
            def.multiline = false;
            def.lines.push(String::new());
        }
    }

    /// `$NAME=VALUE`: records the definition and returns true; false if `l` is not one.
    pub fn define(&mut self, l: &Line) -> bool {
        let Some((name, value_at)) = definition_name(l) else {
            return false;
        };
        let mut value = Line {
            chars: l.chars[l.skip_blanks(value_at)..].to_vec(),
        };
        let multiline = value.take_continuation();
        let def = Def {
            name: name.clone(),
            lines: vec![value.text()],
            multiline,
            builtin: None,
        };
        let at = match self.defs.iter().position(|d| d.name == name) {
            Some(i) => {
                self.defs[i] = def;
                i
            }
            None => {
                self.defs.push(def);
                self.defs.len() - 1
            }
        };
        if multiline {
            self.open = Some(at);
        }
        true
    }

    /// Sets `name` to a one-line `value` (a ~SEQ variable).
    fn set(&mut self, name: &str, value: String) {
        let def = Def {
            name: name.to_string(),
            lines: vec![value],
            multiline: false,
            builtin: None,
        };
        match self.defs.iter().position(|d| d.name == name) {
            Some(i) => self.defs[i] = def,
            None => self.defs.push(def),
        }
    }

    /// lib/parser.c `find_definition` for a reference at `l[at]` (a `$`).
    fn reference(&self, l: &Line, at: usize) -> Option<Reference> {
        let braces = l.char(at + 1) == Some('{');
        let start = at + 1 + usize::from(braces);
        let first = l.char(start)?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let mut end = start + 1;
        while l
            .char(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            end += 1;
        }
        let name: String = l.chars[start..end].iter().map(|&(c, _)| c).collect();
        let mut params = Vec::new();
        let len = if braces {
            let mut p = end;
            while matches!(l.char(p), Some(c) if c == ' ' || c.is_ascii_digit()) {
                p += 1;
            }
            if l.char(p) != Some('}') || (p > end && l.char(p - 1) == Some(' ')) {
                return None;
            }
            let text: String = l.chars[end..p].iter().map(|&(c, _)| c).collect();
            params = text
                .split_whitespace()
                .map(|n| n.parse().unwrap_or(u64::MAX))
                .collect();
            p + 1 - at
        } else {
            if !matches!(l.char(end), None | Some(' ' | '\t' | ',' | ')')) {
                return None;
            }
            end - at
        };
        // A multi-line value only where the reference ends the line.
        let ends_line = at + len == l.chars.len();
        let def = self
            .defs
            .iter()
            .position(|d| d.name == name && (ends_line || !d.multiline))?;
        if !params.is_empty() && self.defs[def].builtin != Some(Builtin::Random) {
            return None;
        }
        Some(Reference { len, def, params })
    }

    fn value(&self, r: &Reference) -> Vec<String> {
        let d = &self.defs[r.def];
        match d.builtin {
            Some(Builtin::Pwd) => vec![self.pwd.display().to_string()],
            Some(Builtin::Instance) => vec![self.config_id.clone()],
            Some(Builtin::Random) => {
                let min = r.params.first().copied().unwrap_or(0);
                let max = r.params.get(1).copied().unwrap_or(32767).max(min);
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u64(min);
                let span = (max - min).saturating_add(1);
                vec![(min + h.finish() % span.max(1)).to_string()]
            }
            None => d.lines.clone(),
        }
    }

    /// lib/parser.c `replace_param`: every reference to a definition replaced, the replaced
    /// text scanned again (so values may refer to definitions). Returns `None` when nothing
    /// was replaced, else the further lines of a multi-line value, to read after this one (each
    /// with the column of its reference).
    pub fn replace(&self, l: &mut Line) -> Result<Option<Vec<(String, u32)>>, String> {
        let mut i = 0;
        let mut found = false;
        let mut rest: Vec<(String, u32)> = Vec::new();
        let mut replaced = 0usize;
        while i + 1 < l.chars.len() {
            if l.chars[i].0 != '$' {
                i += 1;
                continue;
            }
            let Some(r) = self.reference(l, i) else {
                i += 1;
                continue;
            };
            found = true;
            replaced += 1;
            let mut lines = self.value(&r);
            let first = lines.remove(0);
            let col = l.chars[i].1;
            let tilde = first.trim_start_matches([' ', '\t']).starts_with('~');
            l.chars
                .splice(i..i + r.len, first.chars().map(|c| (c, col)));
            let mut lines: Vec<(String, u32)> = lines.into_iter().map(|s| (s, col)).collect();
            lines.append(&mut rest);
            rest = lines;
            if l.chars.len() > MAX_LINE_CHARS || replaced > MAX_LINE_CHARS {
                return Err(format!(
                    "more than {MAX_LINE_CHARS} characters after substituting definitions (a \
                     definition that refers to itself?)"
                ));
            }
            if tilde {
                break;
            }
        }
        Ok(found.then_some(rest))
    }
}

/// A parsed `~SEQ(VAR, …) TEXT`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Seq {
    pub var: String,
    pub values: Vec<String>,
    /// The text to repeat, with its columns.
    pub text: Line,
}

/// A parsed `~LST(…) TEXT`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Lst {
    pub vars: Vec<String>,
    /// One value for each variable, a set for each repetition.
    pub sets: Vec<Vec<String>>,
    pub text: Line,
}

/// `strtol(…, 0)`: optional blanks and sign, then decimal, `0x` hex or `0` octal; the number
/// and the characters read (0 and 0 when there is no number, as strtol).
fn strtol(s: &[char]) -> (i64, usize) {
    let mut i = 0;
    while matches!(s.get(i), Some(' ' | '\t')) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some('-') => {
            i += 1;
            true
        }
        Some('+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let (radix, mut j) = match (s.get(i), s.get(i + 1)) {
        (Some('0'), Some('x' | 'X')) if s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit()) => {
            (16, i + 2)
        }
        (Some('0'), _) => (8, i),
        _ => (10, i),
    };
    let from = j;
    let mut v: i64 = 0;
    while let Some(d) = s.get(j).and_then(|c| c.to_digit(radix)) {
        v = v
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
        j += 1;
    }
    if j == from {
        return (0, 0);
    }
    (if neg { -v } else { v }, j)
}

impl Defs {
    /// lib/parser.c `add_seq`, for a line starting `~SEQ`: `(var, end)`, `(var, start, end)` or
    /// `(var, start, step, end)`; the numbers may be definitions.
    pub fn seq(&self, l: &Line) -> Result<Seq, String> {
        let invalid = || format!("invalid ~SEQ specification '{}'", l.text());
        let mut p = 4;
        let hex = l.char(p) == Some('x');
        p = l.skip_blanks(p + usize::from(hex));
        if l.char(p) != Some('(') {
            return Err(invalid());
        }
        p = l.skip_blanks(p + 1);
        let var_start = p;
        while l
            .char(p)
            .is_some_and(|c| !matches!(c, ' ' | '\t' | ',' | ')'))
        {
            p += 1;
        }
        let var: String = l.chars[var_start..p].iter().map(|&(c, _)| c).collect();
        p = l.skip_blanks(p);
        if var.is_empty() || l.char(p) != Some(',') {
            return Err(invalid());
        }
        let Some(close) = (p..l.chars.len()).find(|&i| l.char(i) == Some(')')) else {
            return Err(invalid());
        };
        let mut params = Line {
            chars: l.chars[p + 1..=close].to_vec(),
        };
        if self
            .replace(&mut params)?
            .is_some_and(|rest| !rest.is_empty())
        {
            return Err(format!(
                "~SEQ parameter is a multi-line definition '{}'",
                l.text()
            ));
        }
        let s: Vec<char> = params.chars.iter().map(|&(c, _)| c).collect();
        let mut nums = Vec::new();
        let mut at = 0;
        loop {
            let (n, used) = strtol(&s[at..]);
            nums.push(n);
            at += used;
            while matches!(s.get(at), Some(' ' | '\t')) {
                at += 1;
            }
            match s.get(at) {
                Some(')') => break,
                Some(',') if nums.len() < 3 => at += 1,
                _ => return Err(invalid()),
            }
        }
        let (start, step, end) = match nums[..] {
            [end] => (
                if end < 0 { -1 } else { 1 },
                if end < 1 { -1 } else { 1 },
                end,
            ),
            [start, end] => (start, if start <= end { 1 } else { -1 }, end),
            [start, step, end] => {
                if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                    return Err(format!("invalid ~SEQ values '{}'", l.text()));
                }
                (start, step, end)
            }
            _ => return Err(invalid()),
        };
        if hex && (start < 0 || end < 0) {
            return Err(format!(
                "~SEQx is only valid for positive numbers '{}'",
                l.text()
            ));
        }
        let mut values = Vec::new();
        let mut v = start;
        while (step > 0 && v <= end) || (step < 0 && v >= end) {
            if values.len() >= MAX_GENERATED_LINES {
                return Err(format!(
                    "~SEQ makes more than {MAX_GENERATED_LINES} lines '{}'",
                    l.text()
                ));
            }
            values.push(if hex { format!("{v:x}") } else { v.to_string() });
            let Some(next) = v.checked_add(step) else {
                break;
            };
            v = next;
        }
        let text_at = l.skip_blanks(close + 1);
        Ok(Seq {
            var,
            values,
            text: Line {
                chars: l.chars[text_at..].to_vec(),
            },
        })
    }

    /// lib/parser.c `add_lst`, for a line starting `~LST`: `(VAR, V1, V2…)` or
    /// `({VAR1, VAR2}, {V1, V2}, {V3, V4}…)`; a missing value is empty.
    pub fn lst(&self, l: &Line) -> Result<Lst, String> {
        let invalid = || format!("invalid ~LST specification '{}'", l.text());
        let c = |i: usize| l.char(i);
        let word_end = |mut i: usize, stops: &[char]| {
            while c(i).is_some_and(|ch| !matches!(ch, ' ' | '\t') && !stops.contains(&ch)) {
                i += 1;
            }
            i
        };
        let text_of =
            |a: usize, b: usize| -> String { l.chars[a..b].iter().map(|&(ch, _)| ch).collect() };
        let mut p = l.skip_blanks(4);
        if c(p) != Some('(') {
            return Err(invalid());
        }
        p = l.skip_blanks(p + 1);
        let braced = c(p) == Some('{');
        if braced {
            p = l.skip_blanks(p + 1);
        }
        let mut vars = Vec::new();
        loop {
            let end = word_end(p, &[',', '}']);
            vars.push(text_of(p, end));
            p = l.skip_blanks(end);
            match c(p) {
                Some('}') if braced => break,
                Some(',') if !braced => break,
                Some(',') => p = l.skip_blanks(p + 1),
                _ => return Err(invalid()),
            }
        }
        if braced {
            p = l.skip_blanks(p + 1);
        }
        if c(p) != Some(',') {
            return Err(invalid());
        }
        p = l.skip_blanks(p + 1);
        let mut sets = Vec::new();
        loop {
            let braced = c(p) == Some('{');
            if braced {
                p = l.skip_blanks(p + 1);
            }
            let mut values = Vec::new();
            loop {
                let end = word_end(p, &[',', '}', ')']);
                values.push(text_of(p, end));
                p = l.skip_blanks(end);
                match c(p) {
                    Some('}') if braced => break,
                    Some(')') if !braced => break,
                    Some(',') if !braced => break,
                    Some(',') => p = l.skip_blanks(p + 1),
                    _ => return Err(invalid()),
                }
                if values.len() >= vars.len() {
                    return Err(format!(
                        "~LST specification has too many values '{}'",
                        l.text()
                    ));
                }
            }
            values.resize(vars.len(), String::new());
            sets.push(values);
            if braced {
                p = l.skip_blanks(p + 1);
            }
            match c(p) {
                Some(')') => break,
                Some(',') => p = l.skip_blanks(p + 1),
                _ => return Err(invalid()),
            }
        }
        let text_at = l.skip_blanks(p + 1);
        Ok(Lst {
            vars,
            sets,
            text: Line {
                chars: l.chars[text_at..].to_vec(),
            },
        })
    }

    /// Sets a ~SEQ variable for one repetition.
    pub fn set_seq_var(&mut self, var: &str, value: &str) {
        self.set(var, value.to_string());
    }
}

/// A further line of a multi-line definition, read at the reference's column.
pub(crate) fn generated(text: &str, col: u32) -> Line {
    let mut l = Line::at(text, col);
    l.decomment();
    l
}

/// keepalived's default configuration id: the host name up to its first dot (keepalived
/// main.c: `uname` nodename, which /proc/sys/kernel/hostname is).
pub(crate) fn default_config_id() -> String {
    let host = std::fs::read_to_string(Path::new("/proc/sys/kernel/hostname")).unwrap_or_default();
    let host = host.trim_end_matches('\n');
    host.split('.').next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Line {
        let mut l = Line::from_file(s);
        l.decomment();
        l
    }

    #[test]
    fn decomment_as_keepalived() {
        assert_eq!(line("  a b # c").text(), "a b");
        assert_eq!(line("a \"b # c\" ! d").text(), "a \"b # c\"");
        assert_eq!(line("a\\#b").text(), "a\\#b");
        assert_eq!(line("$X=a  \\").text(), "$X=a\\");
        assert_eq!(line("  x").col(0), 3);
    }

    #[test]
    fn conditions() {
        let mut l = line("@main router_id a");
        assert!(matches!(condition(&mut l, "main"), Condition::Keep));
        assert_eq!((l.text().as_str(), l.col(0)), ("router_id a", 7));
        assert!(matches!(
            condition(&mut line("@main router_id a"), "backup"),
            Condition::Drop
        ));
        assert!(matches!(
            condition(&mut line("@^main x"), "backup"),
            Condition::Keep
        ));
        assert!(matches!(
            condition(&mut line("@^main x"), "main"),
            Condition::Drop
        ));
        assert!(matches!(
            condition(&mut line("@main"), "main"),
            Condition::Drop
        ));
    }

    #[test]
    fn substitution_keeps_the_reference_column() {
        let mut d = Defs::new("n1".into(), PathBuf::from("/etc/keepalived"));
        assert!(d.define(&line("$BASE=10.2.${SUB}")));
        assert!(d.define(&line("$SUB=0")));
        assert!(!d.define(&line("$NOT DEF=1")));
        let mut l = line("x ${BASE}.100/32 $SUB $SUB. ${_INSTANCE} ${_PWD} $UNDEF");
        assert_eq!(d.replace(&mut l).unwrap(), Some(vec![]));
        assert_eq!(
            l.text(),
            "x 10.2.0.100/32 0 $SUB. n1 /etc/keepalived $UNDEF"
        );
        assert_eq!(l.col(2), 3, "substituted text is at its reference's $");
        let mut plain = line("no refs $HOME");
        assert_eq!(d.replace(&mut plain).unwrap(), None);
        let mut r = line("${_RANDOM 5 7}");
        d.replace(&mut r).unwrap();
        let n: u32 = r.text().parse().unwrap();
        assert!((5..=7).contains(&n), "{n}");
    }

    #[test]
    fn multiline_definitions() {
        let mut d = Defs::new("n1".into(), PathBuf::new());
        assert!(d.define(&line("$BLOCK= \\")));
        assert!(d.reading_definition());
        d.continue_definition(line("a ${N} \\"), false);
        d.continue_definition(line("# only a comment"), false);
        d.continue_definition(line("b"), false);
        assert!(!d.reading_definition());
        d.define(&line("$N=7"));
        let mut l = line("$BLOCK");
        assert_eq!(d.replace(&mut l).unwrap(), Some(vec![("b".to_string(), 1)]));
        assert_eq!(l.text(), "a 7");
        // Not at the end of a line: a multi-line definition is not replaced.
        let mut mid = line("$BLOCK x");
        assert_eq!(d.replace(&mut mid).unwrap(), None);
        // Self-reference stops at the bound.
        d.define(&line("$LOOP=${LOOP}x"));
        assert!(d.replace(&mut line("${LOOP}")).is_err());
        d.define(&line("$A=$B"));
        d.define(&line("$B=$A"));
        assert!(d.replace(&mut line("$A")).is_err(), "a cycle ends");
    }

    #[test]
    fn seq_forms() {
        let d = Defs::new("n".into(), PathBuf::new());
        let s = d.seq(&line("~SEQ(i, 0, 3) ip ${i}")).unwrap();
        assert_eq!(
            (s.var.as_str(), s.values.clone()),
            ("i", vec!["0".into(), "1".into(), "2".into(), "3".into()])
        );
        assert_eq!(s.text.text(), "ip ${i}");
        assert_eq!(d.seq(&line("~SEQ(i,3)")).unwrap().values, ["1", "2", "3"]);
        assert_eq!(d.seq(&line("~SEQ(i,-2)")).unwrap().values, ["-1", "-2"]);
        assert_eq!(d.seq(&line("~SEQ(i,3,1)")).unwrap().values, ["3", "2", "1"]);
        assert_eq!(
            d.seq(&line("~SEQx(a, 0x90, 0x10, 0xc0) x")).unwrap().values,
            ["90", "a0", "b0", "c0"]
        );
        assert!(d.seq(&line("~SEQ(i, 1, -1, 3)")).is_err());
        assert!(d.seq(&line("~SEQ(i)")).is_err());
        assert!(d.seq(&line("~SEQ i, 1")).is_err());
    }

    #[test]
    fn lst_forms() {
        let d = Defs::new("n".into(), PathBuf::new());
        let l = d.lst(&line("~LST(IP, 10, 20) 192.168.${IP}.1")).unwrap();
        assert_eq!(l.vars, ["IP"]);
        assert_eq!(l.sets, [vec!["10".to_string()], vec!["20".to_string()]]);
        assert_eq!(l.text.text(), "192.168.${IP}.1");
        let l = d
            .lst(&line(
                "~LST({IP, IP1}, {10,1},{20,4}, {5}) 192.168.${IP}.${IP1}",
            ))
            .unwrap();
        assert_eq!(l.vars, ["IP", "IP1"]);
        assert_eq!(
            l.sets,
            [["10", "1"], ["20", "4"], ["5", ""]].map(|s| s.map(String::from).to_vec())
        );
        assert!(
            d.lst(&line("~LST({A}, {1, 2}) x")).is_err(),
            "too many values"
        );
        assert!(d.lst(&line("~LST(A 1) x")).is_err());
    }
}

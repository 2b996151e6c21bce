//! keepalived.conf lexer: words, `{`, `}` and ends of lines, with `include` expanded in place
//! and keepalived's `@ID` lines, `$NAME` definitions, `~SEQ` and `~LST` applied line by line
//! (`expand`).
//!
//! keepalived reads its configuration line by line (lib/parser.c `read_line`): `decomment`
//! cuts a line at the first `!` or `#` outside double quotes (`\!` and `\#` stand for the
//! characters themselves), a `{` or `}` outside quotes splits the line (so braces behave as line
//! breaks), and `alloc_strvec_r` splits the rest into words at blanks, a double-quoted string
//! being one word without its quotes. `include PATTERN` (`check_include`) is replaced by the
//! files the glob matches, relative to the including file's directory (`open_conf_file` chdirs
//! there), with `{a,b}` brace expansion (GLOB_BRACE).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{Diags, Pos};
use super::expand::{self, Condition, Defs, Line};

/// Nesting limit for `include` (keepalived has none; a loop would never end).
const MAX_INCLUDE_DEPTH: usize = 32;
/// Bound on brace-expansion alternatives of one include pattern.
const MAX_BRACE_EXPANSIONS: usize = 1024;
/// Bound on the brace groups expanded in one include pattern (the expansion's recursion depth).
const MAX_BRACE_GROUPS: usize = 32;
/// Bound on the files read for one configuration, includes counted each time they are included:
/// a file included many times, at many levels, multiplies (2 includes a level, 32 levels).
pub(crate) const MAX_INCLUDED_FILES: usize = 4096;
/// Bound on the bytes read for one configuration, all included files together.
pub(crate) const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// One word of a line.
#[derive(Debug, Clone)]
pub(crate) struct Word {
    pub text: String,
    pub pos: Pos,
    /// The word was written as a double-quoted string.
    pub quoted: bool,
    /// The line it came from, and its byte span in that line (quotes included).
    pub line: Arc<str>,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Tok {
    Word(Word),
    Open(Pos),
    Close(Pos),
    Eol,
}

/// Lexes `text` (the contents of `path`), expanding includes, into one token stream.
pub(crate) fn lex(
    text: &str,
    path: &Path,
    options: &super::ReadOptions,
    diags: &mut Diags,
) -> Vec<Tok> {
    let config_id = options
        .config_id
        .clone()
        .unwrap_or_else(expand::default_config_id);
    let mut lexer = Lexer {
        diags,
        toks: Vec::new(),
        chain: vec![canonical(path)],
        files: 0,
        bytes: text.len() as u64,
        defs: Defs::new(config_id.clone(), PathBuf::new()),
        config_id,
        generated: 0,
        expanded: 0,
        max_generated: expand::MAX_GENERATED_LINES,
        max_expanded: MAX_TOTAL_BYTES,
    };
    lexer.lex_file(text, path);
    lexer.toks
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

struct Lexer<'d> {
    diags: &'d mut Diags,
    toks: Vec<Tok>,
    /// Files being read, outermost first: include loop detection.
    chain: Vec<PathBuf>,
    /// Files included so far (each time it is included), and bytes read, the main file's too.
    files: usize,
    bytes: u64,
    /// keepalived's `$NAME=` definitions, shared by every file read.
    defs: Defs,
    /// Which `@ID` lines are kept.
    config_id: String,
    /// Lines made by ~SEQ and multi-line definitions so far.
    generated: usize,
    /// Bytes of logical lines read so far, after expansion.
    expanded: u64,
    /// The bounds on `generated` and `expanded` (smaller in tests).
    max_generated: usize,
    max_expanded: u64,
}

impl Lexer<'_> {
    fn lex_file(&mut self, text: &str, path: &Path) {
        let file: Arc<Path> = Arc::from(path);
        // ${_PWD}: the directory of the file being read (keepalived chdirs to the directory
        // of the name it was given, then getcwd: symlinks in the directory resolved, not the file's).
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = canonical(parent);
        let outer_pwd = std::mem::replace(&mut self.defs.pwd, dir);
        for (idx, raw_line) in text.split('\n').enumerate() {
            let lineno = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            let line_text = raw_line.trim_end_matches(['\r', '\n']);
            let mut line = Line::from_file(line_text);
            line.decomment();
            if self.defs.reading_definition() {
                self.defs.continue_definition(line, line_text.is_empty());
                continue;
            }
            if !line.is_empty() {
                self.logical(line, &file, lineno, 0);
            }
        }
        self.defs.pwd = outer_pwd;
        // A file ends a statement even when its last line has no newline.
        if !matches!(self.toks.last(), None | Some(Tok::Eol)) {
            self.toks.push(Tok::Eol);
        }
    }

    /// One logical line (lib/parser.c `read_line`'s inner loop): its `@ID` condition, a
    /// definition, a ~SEQ, or substitution until nothing changes; then its words, and the
    /// further lines of a multi-line definition it named.
    fn logical(&mut self, mut line: Line, file: &Arc<Path>, lineno: u32, depth: usize) {
        let pos = |col: u32| Pos::new(file, lineno, col);
        if depth > expand::MAX_EXPANSION_DEPTH {
            self.diags.error(
                &pos(line.col(0)),
                format!(
                    "more than {} nested expansions (a multi-line definition that names itself?)",
                    expand::MAX_EXPANSION_DEPTH
                ),
            );
            return;
        }
        let mut rest = Vec::new();
        loop {
            match expand::condition(&mut line, &self.config_id) {
                Condition::Drop => return,
                Condition::Keep if line.is_empty() => return,
                Condition::Keep | Condition::None => {}
            }
            if self.defs.define(&line) {
                return;
            }
            if line.text().starts_with("~SEQ") {
                match self.defs.seq(&line) {
                    Ok(seq) => {
                        for value in &seq.values {
                            if !self.generate(&pos(line.col(0))) {
                                return;
                            }
                            self.defs.set_seq_var(&seq.var, value);
                            self.logical(seq.text.clone(), file, lineno, depth + 1);
                        }
                    }
                    Err(e) => self.diags.error(&pos(line.col(0)), e),
                }
                return;
            }
            if line.text().starts_with("~LST") {
                match self.defs.lst(&line) {
                    Ok(lst) => {
                        for set in &lst.sets {
                            if !self.generate(&pos(line.col(0))) {
                                return;
                            }
                            for (var, value) in lst.vars.iter().zip(set) {
                                self.defs.set_seq_var(var, value);
                            }
                            self.logical(lst.text.clone(), file, lineno, depth + 1);
                        }
                    }
                    Err(e) => self.diags.error(&pos(line.col(0)), e),
                }
                return;
            }
            if line.text().starts_with('~') {
                break;
            }
            match self.defs.replace(&mut line) {
                Ok(None) => break,
                Ok(Some(mut more)) => {
                    more.append(&mut rest);
                    rest = more;
                    line.decomment();
                    let text = line.text();
                    if !(text.starts_with('@') || text.contains('$')) {
                        break;
                    }
                }
                Err(e) => {
                    self.diags.error(&pos(line.col(0)), e);
                    return;
                }
            }
        }
        if !line.is_empty() {
            self.words(&line, file, lineno);
        }
        for (text, col) in rest {
            if !self.generate(&pos(col)) {
                return;
            }
            let more = expand::generated(&text, col);
            if !more.is_empty() {
                self.logical(more, file, lineno, depth + 1);
            }
        }
    }

    /// Counts one generated line; false once the bound is passed (said once, where it was).
    fn generate(&mut self, at: &Pos) -> bool {
        if self.generated == usize::MAX {
            return false;
        }
        self.generated += 1;
        if self.generated > self.max_generated {
            self.generated = usize::MAX;
            self.diags.error(
                at,
                format!(
                    "more than {} lines made by ~SEQ, ~LST and multi-line definitions; \
                     nothing more is read",
                    self.max_generated
                ),
            );
            return false;
        }
        true
    }

    /// The words of a logical line, or the files it includes.
    fn words(&mut self, line: &Line, file: &Arc<Path>, lineno: u32) {
        let text: Arc<str> = Arc::from(line.text());
        // What expansion makes counts with what files hold: 1 Mi lines of 64 Ki would not fit.
        self.expanded = self.expanded.saturating_add(text.len() as u64);
        if self.expanded > self.max_expanded {
            if self.generated != usize::MAX {
                self.generated = usize::MAX;
                self.diags.error(
                    &Pos::new(file, lineno, line.col(0)),
                    format!(
                        "more than {} bytes of configuration after ~SEQ, ~LST and definitions; \
                         nothing more is read",
                        self.max_expanded
                    ),
                );
            }
            return;
        }
        let cols: Vec<u32> = line.chars.iter().map(|&(_, c)| c).collect();
        let first = self.toks.len();
        lex_line(&text, &cols, file, lineno, self.diags, &mut self.toks);
        if let Some(Tok::Word(w)) = self.toks.get(first)
            && !w.quoted
            && is_include_keyword(&w.text)
        {
            let kw = w.clone();
            self.toks.truncate(first);
            let pattern = text[kw.end..].trim();
            let including = file.to_path_buf();
            self.include(&kw, pattern, &including);
            return;
        }
        if self.toks.len() > first {
            self.toks.push(Tok::Eol);
        }
    }

    fn include(&mut self, kw: &Word, pattern: &str, including: &Path) {
        let pattern = pattern
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .unwrap_or(pattern);
        if pattern.is_empty() {
            self.diags
                .error(&kw.pos, "include: expected a file name or glob pattern");
            return;
        }
        if self.chain.len() > MAX_INCLUDE_DEPTH {
            self.diags.error(
                &kw.pos,
                format!("include: more than {MAX_INCLUDE_DEPTH} nested includes"),
            );
            return;
        }
        let base = including.parent().unwrap_or_else(|| Path::new(""));
        let alternatives = match expand_braces(pattern) {
            Ok(a) => a,
            Err(e) => {
                self.diags
                    .error(&kw.pos, format!("include \"{pattern}\": {e}"));
                return;
            }
        };
        let mut matched = 0usize;
        for alternative in alternatives {
            let full = if Path::new(&alternative).is_absolute() {
                PathBuf::from(&alternative)
            } else {
                base.join(&alternative)
            };
            let has_wildcard = alternative.contains(['*', '?', '[']);
            let paths: Vec<PathBuf> = if has_wildcard {
                match glob::glob(&full.to_string_lossy()) {
                    Ok(paths) => paths.filter_map(Result::ok).collect(),
                    Err(e) => {
                        self.diags.error(
                            &kw.pos,
                            format!("include: invalid glob pattern \"{alternative}\": {e}"),
                        );
                        continue;
                    }
                }
            } else if full.exists() {
                vec![full]
            } else {
                Vec::new()
            };
            for p in paths {
                if p.is_dir() {
                    self.diags.warn(
                        &kw.pos,
                        format!("include: {} is a directory - skipping", p.display()),
                    );
                    continue;
                }
                if !is_plain_file(&p) && kw.text == "include" {
                    // lib/parser.c check_glob_file: not a regular file, or executable, is
                    // skipped; `includer` (and -a, -w, -m, -b) make it an error (read below).
                    self.diags.warn(
                        &kw.pos,
                        format!(
                            "include: {} is not a regular non-executable file - skipping",
                            p.display()
                        ),
                    );
                    continue;
                }
                matched += 1;
                if !self.include_file(kw, &p) {
                    return;
                }
            }
        }
        if matched == 0 {
            // keepalived only logs this unless `include_check` asks otherwise
            // (lib/parser.c open_and_check_glob).
            self.diags.warn(
                &kw.pos,
                format!("include: no configuration file matches \"{pattern}\" - nothing included"),
            );
        }
    }

    /// Reads and lexes one included file; false once the bounds on what is read are reached
    /// (said once, at the include that went past them: reading stops there).
    fn include_file(&mut self, kw: &Word, path: &Path) -> bool {
        let canon = canonical(path);
        if self.chain.contains(&canon) {
            self.diags.error(
                &kw.pos,
                format!("include: {} includes itself (include loop)", path.display()),
            );
            return true;
        }
        if self.files == usize::MAX {
            return false;
        }
        self.files += 1;
        if self.files > MAX_INCLUDED_FILES {
            self.files = usize::MAX;
            self.diags.error(
                &kw.pos,
                format!(
                    "include: more than {MAX_INCLUDED_FILES} files included in all (counting each \
                     time a file is included): a file included many times, or includes that \
                     fan out; nothing more is read"
                ),
            );
            return false;
        }
        match super::file::read_file(path) {
            Ok(bytes) => {
                self.bytes += bytes.len() as u64;
                if self.bytes > MAX_TOTAL_BYTES {
                    self.files = usize::MAX;
                    self.diags.error(
                        &kw.pos,
                        format!(
                            "include: {}: more than {} MiB read in all with the files included \
                             before it; nothing more is read",
                            path.display(),
                            MAX_TOTAL_BYTES / (1024 * 1024)
                        ),
                    );
                    return false;
                }
                let text = String::from_utf8_lossy(&bytes);
                self.chain.push(canon);
                self.lex_file(&text, path);
                self.chain.pop();
            }
            Err(e) => self.diags.error(
                &kw.pos,
                format!("include: cannot read {}: {e}", path.display()),
            ),
        }
        self.files != usize::MAX
    }
}

/// A regular file no one may execute (what keepalived includes).
fn is_plain_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 == 0)
}

fn is_include_keyword(word: &str) -> bool {
    // lib/parser.c is_include: `include`, and the include_check variants includer/m/w/b/a.
    matches!(
        word,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    )
}

/// Lexes one line into `out`; returns the byte offset where a comment starts (or the line length).
fn lex_line(
    line: &Arc<str>,
    cols: &[u32],
    file: &Arc<Path>,
    lineno: u32,
    diags: &mut Diags,
    out: &mut Vec<Tok>,
) -> usize {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    // Each character's column in the file (after substitution, its reference's).
    let col_of = |i: usize| {
        cols.get(i)
            .copied()
            .unwrap_or_else(|| u32::try_from(i + 1).unwrap_or(u32::MAX))
    };
    let byte_at = |i: usize| chars.get(i).map_or(line.len(), |&(b, _)| b);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '!' | '#' => return byte_at(i),
            '{' => {
                out.push(Tok::Open(Pos::new(file, lineno, col_of(i))));
                i += 1;
            }
            '}' => {
                out.push(Tok::Close(Pos::new(file, lineno, col_of(i))));
                i += 1;
            }
            '"' => {
                let start = i;
                let mut j = i + 1;
                while j < chars.len() && chars[j].1 != '"' {
                    j += 1;
                }
                let pos = Pos::new(file, lineno, col_of(start));
                if j >= chars.len() {
                    diags.error(&pos, "unterminated quoted string: missing closing '\"'");
                    return line.len();
                }
                let text: String = chars[start + 1..j].iter().map(|&(_, c)| c).collect();
                out.push(Tok::Word(Word {
                    text,
                    pos,
                    quoted: true,
                    line: Arc::clone(line),
                    start: byte_at(start),
                    end: byte_at(j + 1),
                }));
                i = j + 1;
            }
            _ => {
                let start = i;
                let mut text = String::new();
                while i < chars.len() {
                    let c = chars[i].1;
                    if c.is_whitespace() || matches!(c, '"' | '{' | '}' | '!' | '#') {
                        break;
                    }
                    if c == '\\' && matches!(chars.get(i + 1), Some((_, '!' | '#'))) {
                        text.push(chars[i + 1].1);
                        i += 2;
                        continue;
                    }
                    text.push(c);
                    i += 1;
                }
                out.push(Tok::Word(Word {
                    text,
                    pos: Pos::new(file, lineno, col_of(start)),
                    quoted: false,
                    line: Arc::clone(line),
                    start: byte_at(start),
                    end: byte_at(i),
                }));
            }
        }
    }
    line.len()
}

/// GLOB_BRACE expansion: `a{b,c}d` gives `abd`, `acd`; nested braces work; unbalanced braces
/// stay. More than [`MAX_BRACE_GROUPS`] brace groups or [`MAX_BRACE_EXPANSIONS`] alternatives
/// is an error: each group is a level of recursion, and their product is the work.
pub(crate) fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    expand_into(pattern, 0, &mut out)?;
    Ok(out)
}

fn expand_into(pattern: &str, depth: usize, out: &mut Vec<String>) -> Result<(), String> {
    let bytes = pattern.as_bytes();
    let Some(open) = find_unescaped(bytes, 0, b'{') else {
        if out.len() >= MAX_BRACE_EXPANSIONS {
            return Err(format!(
                "more than {MAX_BRACE_EXPANSIONS} file names from its {{a,b}} brace expansion"
            ));
        }
        out.push(pattern.to_string());
        return Ok(());
    };
    let mut level = 0usize;
    let mut commas = Vec::new();
    let mut close = None;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => level += 1,
            b'}' => {
                level -= 1;
                if level == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if level == 1 => commas.push(i),
            _ => {}
        }
        i += 1;
    }
    let Some(close) = close else {
        out.push(pattern.to_string());
        return Ok(());
    };
    if depth >= MAX_BRACE_GROUPS {
        return Err(format!(
            "more than {MAX_BRACE_GROUPS} {{a,b}} brace groups in one pattern"
        ));
    }
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    for w in bounds.windows(2) {
        let alt = &pattern[w[0] + 1..w[1]];
        expand_into(&format!("{prefix}{alt}{suffix}"), depth + 1, out)?;
    }
    Ok(())
}

fn find_unescaped(bytes: &[u8], from: usize, wanted: u8) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == wanted {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Splits a command line the way keepalived splits `script` and `notify*` commands
/// (lib/parser.c `alloc_strvec_quoted_escaped`): words at blanks, `'…'` and `"…"` quoting (quoted
/// parts join the word they touch), and `\n`, `\t`, `\\`, `\"`… escapes.
pub(crate) fn split_command(s: &str) -> Result<Vec<String>, String> {
    split_words(s, true)
}

/// Word splitting with `'`/`"` quoting; with `escapes`, backslash escapes are decoded, otherwise
/// kept as written (keepalived's `alloc_strvec_quoted` first pass).
pub(crate) fn split_words(s: &str, escapes: bool) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\\' => {
                    let Some(e) = chars.next() else {
                        return Err("missing character after '\\' at end of command".into());
                    };
                    if !escapes {
                        word.push('\\');
                        word.push(e);
                        continue;
                    }
                    word.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'a' => '\x07',
                        'b' => '\x08',
                        'f' => '\x0c',
                        'v' => '\x0b',
                        'E' => '\x1b',
                        other => other,
                    });
                }
                '"' | '\'' if quote == Some(c) => quote = None,
                '"' | '\'' if quote.is_none() => quote = Some(c),
                _ => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("missing terminating {q} in command"));
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut d = Diags::default();
        lex(
            text,
            Path::new("/nonexistent/t.conf"),
            &Default::default(),
            &mut d,
        )
        .into_iter()
        .map(|t| match t {
            Tok::Word(w) => w.text,
            Tok::Open(_) => "{".into(),
            Tok::Close(_) => "}".into(),
            Tok::Eol => ";".into(),
        })
        .collect()
    }

    #[test]
    fn comments_quotes_and_braces() {
        assert_eq!(
            words("a b # c\n! x\nd \"e f\" g!h\nx{y}z\n"),
            [
                "a", "b", ";", "d", "e f", "g", ";", "x", "{", "y", "}", "z", ";"
            ]
        );
        assert_eq!(words("a\\#b \"c # d\""), ["a#b", "c # d", ";"]);
    }

    /// Lexes with small bounds on what expansion makes.
    fn lex_bounded(text: &str, max_generated: usize, max_expanded: u64) -> Diags {
        let mut d = Diags::default();
        let mut lexer = Lexer {
            diags: &mut d,
            toks: Vec::new(),
            chain: Vec::new(),
            files: 0,
            bytes: 0,
            defs: Defs::new("n".into(), PathBuf::new()),
            config_id: "n".into(),
            generated: 0,
            expanded: 0,
            max_generated,
            max_expanded,
        };
        lexer.lex_file(text, Path::new("/nonexistent/t.conf"));
        d
    }

    #[test]
    fn expansion_is_bounded() {
        let lines = lex_bounded("~SEQ(A, 100) ~SEQ(B, 100) x $A $B\n", 1000, 1 << 20);
        assert_eq!(lines.errors.len(), 1, "said once: {:?}", lines.errors);
        assert!(
            lines.errors[0]
                .message
                .contains("more than 1000 lines made by ~SEQ")
        );
        let bytes = lex_bounded(
            "$L=0123456789\n$L4=$L$L$L$L\n~SEQ(A, 100) ${L4}\n",
            1000,
            1000,
        );
        assert_eq!(bytes.errors.len(), 1, "said once: {:?}", bytes.errors);
        assert!(
            bytes.errors[0]
                .message
                .contains("more than 1000 bytes of configuration")
        );
        assert_eq!((bytes.errors[0].line, bytes.errors[0].col), (3, 14));
        let depth = lex_bounded("$M= \\\nx \\\n$M\n\n$M\n", 1000, 1 << 20);
        assert!(
            depth.errors[0].message.contains("nested expansions"),
            "{:?}",
            depth.errors
        );
    }

    #[test]
    fn braces_expand() {
        assert_eq!(
            expand_braces("a{b,c{d,e}}f").unwrap(),
            ["abf", "acdf", "acef"]
        );
        assert_eq!(expand_braces("plain").unwrap(), ["plain"]);
        assert_eq!(expand_braces("x{y").unwrap(), ["x{y"]);
    }

    #[test]
    fn brace_expansion_is_bounded() {
        // 100k empty groups recursed once each: a stack overflow before the bound.
        let deep = "{}".repeat(100_000);
        let e = expand_braces(&deep).unwrap_err();
        assert!(e.contains("more than 32 {a,b} brace groups"), "{e}");
        let nested = format!("{}x{}", "{".repeat(50_000), "}".repeat(50_000));
        assert!(expand_braces(&nested).is_err());
        // 2^11 alternatives: refused, not silently cut.
        let wide = "{a,b}".repeat(11);
        let e = expand_braces(&wide).unwrap_err();
        assert!(e.contains("more than 1024 file names"), "{e}");
        assert_eq!(expand_braces(&"{a,b}".repeat(10)).unwrap().len(), 1024);
    }

    #[test]
    fn commands_split_like_keepalived() {
        assert_eq!(
            split_command(r#"/bin/check 'a b' c"d e"f \t"#).unwrap(),
            ["/bin/check", "a b", "cd ef", "\t"]
        );
        assert!(split_command("x 'y").is_err());
    }
}

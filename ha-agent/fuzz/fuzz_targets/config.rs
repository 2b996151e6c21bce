//! Arbitrary bytes as a keepalived.conf: reading must never panic, and what it says must hold up.
//!
//! - an accepted configuration renders (`check-config`'s summary) without panicking;
//! - a refused one carries at least one error, each in the fuzzed file at a line that exists in
//!   it and a column ≥ 1 (or in a file it included);
//! - reading is deterministic: the same text gives the same result twice.
//!
//! The text is read as the file `fuzz.conf` in `ha-agent/tests/config/includes`, so relative
//! `include`s reach that corpus's small tree (`conf.d/`, `shared/`). Inputs whose includes could
//! leave it (absolute paths, `..`) are skipped: `include /dev/stdin` would block the fuzzer, and
//! a glob over `/` would make it crawl the machine.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use ha_agent::config::{self, Loaded};
use libfuzzer_sys::{Corpus, fuzz_target};

/// Bigger inputs only make each run slower; the lexer and parser are line-oriented.
const MAX_LEN: usize = 16 * 1024;

static VIRTUAL_PATH: LazyLock<PathBuf> = LazyLock::new(|| {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/config/includes/fuzz.conf")
        .canonicalize()
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/config/includes/fuzz.conf")
        })
});

fuzz_target!(|data: &[u8]| -> Corpus {
    if data.len() > MAX_LEN {
        return Corpus::Reject;
    }
    let text = String::from_utf8_lossy(data);
    if text.lines().any(include_may_escape) {
        return Corpus::Reject;
    }
    let path = VIRTUAL_PATH.as_path();
    let first = config::parse_str(&text, path);
    match &first {
        Ok(Loaded { config, .. }) => {
            let _ = config::summary(config);
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "a refusal without an error");
            let lines = text.split('\n').count() as u32;
            for d in &e.errors {
                if d.file == path {
                    assert!(
                        d.line >= 1 && d.line <= lines && d.col >= 1,
                        "error outside the file ({lines} lines): {d}"
                    );
                }
            }
            let _ = e.to_string();
        }
    }
    assert_eq!(
        first,
        config::parse_str(&text, path),
        "reading is not deterministic"
    );
    Corpus::Keep
});

/// Whether a line that may be an include names a path outside the include corpus: `..`, or a
/// `/` that starts a path (also after `"`, or inside a `{a,/b}` alternative).
fn include_may_escape(line: &str) -> bool {
    if !line.contains("include") {
        return false;
    }
    if line.contains("..") {
        return true;
    }
    let mut prev = ' ';
    for c in line.chars() {
        if c == '/' && (prev.is_whitespace() || matches!(prev, '"' | '{' | ',' | '}')) {
            return true;
        }
        prev = c;
    }
    false
}

//! keepalived.conf, the VRRP part: lexer, parser, typed configuration.
//!
//! [`load`] reads a keepalived.conf (and what it includes) and returns the resolved
//! [`Config`] with keepalived's defaults and fix-ups applied, plus warnings; or every error found,
//! each at `file:line:col`. Reading is pure: files are read, nothing else is touched.
//!
//! The path of a file: `file` (bounded reads) -> `lexer` (words, includes in place) -> `parser`
//! (statements) -> `builder` (typed [`Config`], one file per concern) -> `model`; beside them
//! `error` (diagnostics), `keywords` (keepalived's tables), `decimal` (timer values), `escape`,
//! and `summary` (what `check-config` prints).

mod builder;
mod decimal;
mod error;
mod escape;
mod file;
mod keywords;
mod lexer;
mod model;
mod parser;
mod summary;

use std::path::Path;

pub use error::{ConfigError, Diagnostic, Warning};
pub use escape::{escape, escape_lines};
pub use file::MAX_FILE_BYTES;
use file::read_file;
pub use model::*;
pub use summary::summary;

/// A configuration that was read without errors, and what was said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// In file order (includes in place).
    pub warnings: Vec<Warning>,
}

/// Reads the configuration at `path`, following its includes.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = read_file(path).map_err(|e| ConfigError {
        errors: vec![Diagnostic::whole_file(
            path,
            format!("cannot read configuration: {e}"),
        )],
    })?;
    parse_str(&String::from_utf8_lossy(&bytes), path)
}

/// Parses `text` as if it were the file `virtual_path` (which names it in diagnostics, and
/// whose directory relative includes are resolved against).
pub fn parse_str(text: &str, virtual_path: &Path) -> Result<Loaded, ConfigError> {
    let mut diags = error::Diags::default();
    let toks = lexer::lex(text, virtual_path, &mut diags);
    let stmts = parser::parse(toks, &mut diags);
    let config = builder::build(&stmts, &mut diags);
    if diags.errors.is_empty() {
        Ok(Loaded {
            config,
            warnings: diags.warnings,
        })
    } else {
        let mut errors = diags.errors;
        errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        errors.dedup();
        Err(ConfigError { errors })
    }
}

//! keepalived.conf, the VRRP part: lexer, parser, typed configuration.
//!
//! [`load`] reads a keepalived.conf (and what it includes) and returns the resolved
//! [`Config`] with keepalived's defaults and fix-ups applied, plus warnings; or every error found,
//! each at `file:line:col`. Reading is pure: files are read, nothing else is touched.
//!
//! The path of a file: `file` (bounded reads) -> `lexer` (words, includes in place, with
//! `expand`: keepalived's `@ID` lines, `$NAME` definitions and `~SEQ`) -> `parser`
//! (statements) -> `builder` (typed [`Config`], one file per concern) -> `model`; beside them
//! `error` (diagnostics), `keywords` (keepalived's tables), `decimal` (timer values), `escape`,
//! and `summary` (what `check-config` prints).

mod builder;
mod decimal;
mod error;
mod escape;
mod expand;
mod file;
pub(crate) mod keywords;
mod lexer;
pub mod lvs;
mod model;
mod parser;
mod summary;

use std::path::Path;

pub use error::{ConfigError, Diagnostic, Warning};
pub use escape::{escape, escape_lines};
pub use file::MAX_FILE_BYTES;
use file::read_file;
pub use model::*;
pub use summary::{ignored_line, summary};

/// How a configuration is read: `run`'s and `check-config`'s flags that change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// `-i` / `--config-id`: which `@ID` lines are kept (keepalived's default: the host name
    /// up to its first dot).
    pub config_id: Option<String>,
    /// `--allow-unsupported`: a keyword that changes failover behaviour and that ha-agent does
    /// not act on is a warning instead of an error.
    pub allow_unsupported: bool,
}

/// A keyword keepalived knows that was read and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub keyword: String,
    /// It changes failover behaviour (run only with `--allow-unsupported`); otherwise it only
    /// configures what ha-agent replaces.
    pub changes_failover: bool,
}

/// A configuration that was read without errors, and what was said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// In file order (includes in place).
    pub warnings: Vec<Warning>,
    /// The keywords ignored, in file order.
    pub ignored: Vec<Ignored>,
}

/// Reads the configuration at `path`, following its includes.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, &ReadOptions::default())
}

/// [`load`] with `run`'s and `check-config`'s reading options.
pub fn load_with(path: &Path, options: &ReadOptions) -> Result<Loaded, ConfigError> {
    let bytes = read_file(path).map_err(|e| ConfigError {
        errors: vec![Diagnostic::whole_file(
            path,
            format!("cannot read configuration: {e}"),
        )],
    })?;
    parse_str_with(&String::from_utf8_lossy(&bytes), path, options)
}

/// Parses `text` as if it were the file `virtual_path` (which names it in diagnostics, and
/// whose directory relative includes are resolved against).
pub fn parse_str(text: &str, virtual_path: &Path) -> Result<Loaded, ConfigError> {
    parse_str_with(text, virtual_path, &ReadOptions::default())
}

/// [`parse_str`] with reading options.
pub fn parse_str_with(
    text: &str,
    virtual_path: &Path,
    options: &ReadOptions,
) -> Result<Loaded, ConfigError> {
    let mut diags = error::Diags::default();
    let toks = lexer::lex(text, virtual_path, options, &mut diags);
    let stmts = parser::parse(toks, &mut diags);
    let config = builder::build(&stmts, options, &mut diags);
    if diags.errors.is_empty() {
        Ok(Loaded {
            config,
            warnings: diags.warnings,
            ignored: diags.ignored,
        })
    } else {
        let mut errors = diags.errors;
        errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        errors.dedup();
        Err(ConfigError { errors })
    }
}

//! keepalived.conf, the VRRP part: lexer, parser, typed configuration.
//!
//! [`load`] reads a keepalived.conf (and what it includes) and returns the resolved
//! [`Config`] with keepalived's defaults and fix-ups applied, plus warnings; or every error found,
//! each at `file:line:col`. Reading is pure: files are read, nothing else is touched.

mod builder;
mod decimal;
mod error;
mod escape;
mod keywords;
mod lexer;
mod model;
mod parser;
mod summary;

use std::path::Path;

pub use error::{ConfigError, Diagnostic, Warning};
pub use escape::{escape, escape_lines};
pub use model::*;
pub use summary::summary;

/// A configuration that was read without errors, and what was said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// In file order (includes in place).
    pub warnings: Vec<Warning>,
}

/// The largest configuration file (the main one or an included one) that is read: far above
/// any real keepalived.conf, and a bound on what a mistaken path can make the reader swallow.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

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

/// Reads a configuration file: a regular file of at most [`MAX_FILE_BYTES`]. Anything else
/// (`/dev/zero`, `/dev/stdin` on a pipe or terminal, a FIFO, a socket, a directory) is refused
/// at once rather than read forever or waited on: the file is opened non-blocking (a FIFO
/// without a writer does not block the open), its type is checked on the open descriptor, and
/// at most one byte more than the limit is read.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};

    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "of an unknown kind"
        };
        return Err(format!(
            "{what}, not a regular file (a configuration is read from regular files only)"
        ));
    }
    let too_big = || {
        format!(
            "larger than {} MiB, the most a configuration file may be",
            MAX_FILE_BYTES / (1024 * 1024)
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        // It grew while being read.
        return Err(too_big());
    }
    Ok(bytes)
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

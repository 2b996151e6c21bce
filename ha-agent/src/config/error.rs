//! Diagnostics: every error and warning names `file:line:col`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a configuration file (1-based line and column, columns counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pos {
    pub file: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(file: &Arc<Path>, line: u32, col: u32) -> Self {
        Self {
            file: Arc::clone(file),
            line,
            col,
        }
    }
}

/// One finding about the configuration, at `file:line:col`.
///
/// `line` and `col` are 1-based; `0` means the finding is about the file as a whole (it could not
/// be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// A finding that does not stop the configuration from being used: something ignored, adjusted
/// the way keepalived adjusts it, or parsed but not acted on.
pub type Warning = Diagnostic;

impl Diagnostic {
    pub(crate) fn at(pos: &Pos, message: impl Into<String>) -> Self {
        Self {
            file: pos.file.to_path_buf(),
            line: pos.line,
            col: pos.col,
            message: printable(message.into()),
        }
    }

    pub(crate) fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
            message: printable(message.into()),
        }
    }
}

/// A message quoting configuration text, with what a terminal would act on escaped.
fn printable(message: String) -> String {
    match super::escape::escape_lines(&message) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        let file = super::escape::escape(&file);
        if self.line == 0 {
            write!(f, "{file}: {}", self.message)
        } else {
            write!(f, "{file}:{}:{}: {}", self.line, self.col, self.message)
        }
    }
}

/// The configuration was rejected. Carries every error found (in file order), not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub errors: Vec<Diagnostic>,
}

impl ConfigError {
    /// The first error (there is always at least one).
    pub fn first(&self) -> &Diagnostic {
        &self.errors[0]
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects errors and warnings while reading and checking a configuration.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Keywords keepalived knows that were ignored (for `check-config`'s last line).
    pub ignored: Vec<super::Ignored>,
}

impl Diags {
    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.errors.push(Diagnostic::at(pos, message));
    }

    pub fn warn(&mut self, pos: &Pos, message: impl Into<String>) {
        self.warnings.push(Diagnostic::at(pos, message));
    }
}

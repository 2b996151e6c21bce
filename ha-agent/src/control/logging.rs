//! Logs through `tracing` to stderr: a human format on a terminal (colours, timestamps); under
//! systemd's journal (`$JOURNAL_STREAM` names our stderr) no colours, no timestamp (the journal
//! stamps each line) and a `<N>` syslog priority prefix the journal turns into the entry's
//! priority; otherwise (a pipe, a file) plain text with timestamps. `--log-format json` writes
//! one JSON object a line.

use anyhow::{Result, anyhow};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Whether stderr is the journal's stream: `$JOURNAL_STREAM` is `DEV:INODE` of the stream
/// systemd connected (inherited by children whose stderr may differ, hence the check).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat(2) on fd 2 into a zeroed stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev == dev && st.st_ino == ino
}

/// Prefixes each line with `<N>` (sd-daemon(3)), N the syslog priority of the level.
struct JournalPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournalPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Stderr, with the control bytes of a log line escaped (`\r`, `\x0e`…, `\x1b` unless the line
/// is coloured): tracing escapes ESC in field values, not the other controls a config or a
/// packet can carry. Line breaks and tabs are kept.
#[derive(Clone, Copy)]
struct EscapingStderr {
    /// The formatter colours its output: its ESC bytes pass.
    ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapingStderr {
    type Writer = EscapingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl std::io::Write for EscapingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let escaped = escape_control_bytes(buf, self.ansi);
        std::io::Write::write_all(&mut std::io::stderr().lock(), &escaped)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(&mut std::io::stderr())
    }
}

/// `buf` with C0 controls and DEL as `\xNN`, but `\n`, `\t` and (when `keep_esc`) ESC. Byte by
/// byte is safe on UTF-8: no byte of a multi-byte character is below 0x80.
fn escape_control_bytes(buf: &[u8], keep_esc: bool) -> std::borrow::Cow<'_, [u8]> {
    let escaped =
        |b: u8| (b < 0x20 || b == 0x7f) && b != b'\n' && b != b'\t' && !(keep_esc && b == 0x1b);
    if !buf.iter().any(|&b| escaped(b)) {
        return std::borrow::Cow::Borrowed(buf);
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    for &b in buf {
        if escaped(b) {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Installs the global subscriber at `level` (a level or a filter directive).
pub fn init(level: &str, format: LogFormat) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| anyhow!("--log-level {level}: {e}"))?;
    let journal = stderr_is_journal();
    let ansi = format == LogFormat::Text
        && !journal
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(EscapingStderr { ansi })
        .with_target(false);
    let result = match (format, journal) {
        (LogFormat::Json, false) => builder.json().try_init(),
        (LogFormat::Json, true) => builder.json().without_time().try_init(),
        (LogFormat::Text, true) => {
            let inner = tracing_subscriber::fmt::format()
                .with_target(false)
                .with_ansi(false)
                .without_time();
            builder
                .with_ansi(false)
                .event_format(JournalPriority(inner))
                .try_init()
        }
        (LogFormat::Text, false) => builder.with_ansi(ansi).try_init(),
    };
    result.map_err(|e| anyhow!("logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_escape_control_bytes() {
        let line = "instance a\rb\x1b[2J\x0e: é\tok\n";
        assert_eq!(
            &*escape_control_bytes(line.as_bytes(), false),
            "instance a\\x0db\\x1b[2J\\x0e: é\tok\n".as_bytes()
        );
        // A coloured line keeps the formatter's ESC (tracing escapes those of field values).
        assert_eq!(
            &*escape_control_bytes(b"\x1b[1mI\x1b[0m\n", true),
            b"\x1b[1mI\x1b[0m\n"
        );
    }
}

//! Logs through `tracing` to stderr: a human format on a terminal (colours, timestamps); under
//! systemd's journal (`$JOURNAL_STREAM` names our stderr) no colours, no timestamp (the journal
//! stamps each line) and a `<N>` syslog priority prefix the journal turns into the entry's
//! priority; otherwise (a pipe, a file) plain text with timestamps. `--log-format json` writes
//! one JSON object a line, with the fields of the typed events ([`super::events`]) that the text
//! formats leave to the message. A bare `--log-level` holds aya's BPF loader at warn; an error
//! of several lines is logged as that many lines, each with its level ([`error_lines`]).

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

/// The filter `--log-level` means: a bare level is the agent's (and its other crates') level,
/// with aya's BPF loader held at warn (at debug it writes ~130 lines of relocations); a filter
/// directive (`debug,aya=debug`) is taken as written, to get aya's lines.
pub fn filter_directive(level: &str) -> String {
    match level.trim().parse::<tracing::level_filters::LevelFilter>() {
        Ok(l) if l > tracing::level_filters::LevelFilter::WARN => {
            format!("{l},aya=warn,aya_log=warn")
        }
        _ => level.to_owned(),
    }
}

/// Installs the global subscriber at `level` (a level or a filter directive).
pub fn init(level: &str, format: LogFormat) -> Result<()> {
    let journal = stderr_is_journal();
    let ansi = format == LogFormat::Text
        && !journal
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = subscriber(level, format, journal, ansi, EscapingStderr { ansi })?;
    tracing_subscriber::util::SubscriberInitExt::try_init(subscriber)
        .map_err(|e| anyhow!("logging: {e}"))
}

/// Logs `err` at ERROR after `prefix`, one event per line of it: a multi-line error (every
/// error of a configuration) is that many lines, each with its own level (the journal's
/// priority prefix), none a bare continuation line.
pub fn error_lines(prefix: &str, err: impl std::fmt::Display) {
    for line in err.to_string().lines() {
        tracing::error!("{prefix}{line}");
    }
}

/// The subscriber [`init`] installs, writing to `writer` (a buffer in tests).
fn subscriber<W>(
    level: &str,
    format: LogFormat,
    journal: bool,
    ansi: bool,
    writer: W,
) -> Result<Box<dyn Subscriber + Send + Sync>>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(filter_directive(level))
        .map_err(|e| anyhow!("--log-level {level}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    Ok(match (format, journal) {
        (LogFormat::Json, false) => Box::new(builder.json().finish()),
        (LogFormat::Json, true) => Box::new(builder.json().without_time().finish()),
        (LogFormat::Text, true) => {
            let inner = tracing_subscriber::fmt::format()
                .with_target(false)
                .with_ansi(false)
                .without_time();
            Box::new(
                builder
                    .with_ansi(false)
                    .fmt_fields(TextFields)
                    .event_format(JournalPriority(inner))
                    .finish(),
            )
        }
        (LogFormat::Text, false) => {
            Box::new(builder.with_ansi(ansi).fmt_fields(TextFields).finish())
        }
    })
}

/// The text formats' fields: tracing's default, but the fields of an [`events`](super::events)
/// event after its `event` field, which its message already says in words.
struct TextFields;

impl<'a> tracing_subscriber::field::MakeVisitor<Writer<'a>> for TextFields {
    type Visitor = TextVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        TextVisitor {
            inner: tracing_subscriber::fmt::format::DefaultVisitor::new(target, true),
            hiding: false,
        }
    }
}

/// [`DefaultVisitor`](tracing_subscriber::fmt::format::DefaultVisitor) that drops the fields
/// from `event` on.
struct TextVisitor<'a> {
    inner: tracing_subscriber::fmt::format::DefaultVisitor<'a>,
    hiding: bool,
}

impl TextVisitor<'_> {
    fn shows(&mut self, field: &tracing::field::Field) -> bool {
        self.hiding |= field.name() == super::events::EVENT_FIELD;
        !self.hiding
    }
}

impl tracing::field::Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if self.shows(field) {
            self.inner.record_str(field, value);
        }
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        if self.shows(field) {
            self.inner.record_error(field, value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if self.shows(field) {
            self.inner.record_debug(field, value);
        }
    }
}

impl tracing_subscriber::field::VisitOutput<std::fmt::Result> for TextVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.inner.finish()
    }
}

impl tracing_subscriber::field::VisitFmt for TextVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        self.inner.writer()
    }
}

/// A buffer the tests log into.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    /// Runs `f` with a subscriber of `format` at `level` writing here; returns what it wrote.
    pub(crate) fn run(level: &str, format: LogFormat, journal: bool, f: impl FnOnce()) -> String {
        let buf = Captured::default();
        let subscriber = subscriber(level, format, journal, false, buf.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }
}

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
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

    #[test]
    fn an_error_is_one_line_per_line_each_with_its_priority() {
        let journal = Captured::run("info", LogFormat::Text, true, || {
            error_lines(
                "reload refused: ",
                "a.conf:2:9: state: expected MASTER\na.conf:4:21: virtual_router_id: 300",
            );
        });
        assert_eq!(
            journal,
            "<3>ERROR reload refused: a.conf:2:9: state: expected MASTER\n\
             <3>ERROR reload refused: a.conf:4:21: virtual_router_id: 300\n"
        );
    }

    #[test]
    fn a_bare_level_holds_the_bpf_loader_at_warn_a_directive_is_kept() {
        assert_eq!(filter_directive("debug"), "debug,aya=warn,aya_log=warn");
        assert_eq!(filter_directive("trace"), "trace,aya=warn,aya_log=warn");
        assert_eq!(filter_directive("info"), "info,aya=warn,aya_log=warn");
        assert_eq!(filter_directive("warn"), "warn");
        assert_eq!(filter_directive("error"), "error");
        assert_eq!(filter_directive("debug,aya=debug"), "debug,aya=debug");
        let logged = Captured::run("debug", LogFormat::Text, false, || {
            tracing::debug!(target: "aya::bpf", "relocating");
            tracing::warn!(target: "aya::bpf", "aya warns");
            tracing::debug!("the agent's debug");
        });
        assert!(!logged.contains("relocating"), "{logged}");
        assert!(logged.contains("aya warns"), "{logged}");
        assert!(logged.contains("the agent's debug"), "{logged}");
        let asked = Captured::run("debug,aya=debug", LogFormat::Text, false, || {
            tracing::debug!(target: "aya::bpf", "relocating");
        });
        assert!(asked.contains("relocating"), "{asked}");
    }
}

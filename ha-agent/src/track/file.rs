//! `track_file`: tells the agent when a tracked file may have changed, as keepalived does with
//! inotify on the file's directory (the file itself may not exist yet, or be replaced by a
//! rename: `echo 1 > f`, `mv f.new f` and `rm f` are all seen).
//!
//! A directory that cannot be watched (it does not exist, or the inotify limits are reached)
//! is said once with a warning, and its files are then re-read every [`POLL_PERIOD`] instead.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use futures::StreamExt;
use inotify::{Inotify, WatchMask};
use tokio::sync::mpsc;
use tracing::warn;

/// How often the files of a directory that cannot be watched are re-read.
pub const POLL_PERIOD: Duration = Duration::from_millis(500);

/// The most of a tracked file that is read: keepalived reads 127 bytes and takes the number at
/// their start.
pub const MAX_VALUE_BYTES: u64 = 127;

/// Reads a tracked file's value as keepalived does (track_file.c `process_track_file`): a file
/// that does not exist or is empty is 0; otherwise the integer at its start (`strtol` base 0:
/// `12`, `-3`, `0x1f`, `017`), 0 when there is none. Blocking (run it off the event loop), but
/// never waits: opened `O_NONBLOCK`, at most [`MAX_VALUE_BYTES`] read. A path that is not a
/// regular file (a FIFO, a device, a directory) or cannot be read is an error: the caller
/// counts it as 0, as keepalived counts a file it cannot read, and says why.
pub fn read_value(path: &Path) -> Result<i64, String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a FIFO, a device or a directory is not read)".into());
    }
    let mut buf = Vec::with_capacity(MAX_VALUE_BYTES as usize);
    file.take(MAX_VALUE_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(strtol(&buf))
}

/// C's `strtol(s, NULL, 0)`, saturating: leading blanks, a sign, then a `0x` (hex), `0` (octal)
/// or decimal number; 0 when there are no digits.
fn strtol(s: &[u8]) -> i64 {
    let mut i = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = &s[i..];
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    let mut value: i64 = 0;
    for &b in digits {
        let Some(d) = (b as char).to_digit(radix) else {
            break;
        };
        value = value
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
    }
    if negative {
        value.saturating_neg()
    } else {
        value
    }
}

/// `init_file`: writes `value` to `path` through a new temporary file renamed over it, so a
/// symlink planted at the path (or beside it) is replaced, never followed.
pub fn write_init(path: &Path, value: i64) -> anyhow::Result<()> {
    crate::control::dump::write_atomic_mode(path, format!("{value}\n").as_bytes(), 0o644)
}

/// Writes the `init_file` of each track_file that has one: created, or overwritten when it
/// says `overwrite`.
pub fn write_inits(files: &[crate::config::TrackFile]) -> anyhow::Result<()> {
    use anyhow::Context;
    for f in files {
        if let Some(init) = f.init_file
            && (init.overwrite || !f.file.exists())
        {
            write_init(&f.file, i64::from(init.value)).with_context(|| {
                format!("track_file {}: init_file {}", f.name, f.file.display())
            })?;
        }
    }
    Ok(())
}

/// Reads each (name, path) with [`read_value`]: blocking, for the blocking pool.
pub fn read_all(files: Vec<(String, PathBuf)>) -> Vec<(String, PathBuf, Result<i64, String>)> {
    files
        .into_iter()
        .map(|(name, path)| {
            let value = read_value(&path);
            (name, path, value)
        })
        .collect()
}

/// What changes a tracked file: written and closed, created, removed, renamed to or from.
fn mask() -> WatchMask {
    WatchMask::CLOSE_WRITE
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
}

/// The files, by the directory they are in.
fn by_directory(files: &[PathBuf]) -> BTreeMap<PathBuf, Vec<OsString>> {
    let mut dirs: BTreeMap<PathBuf, Vec<OsString>> = BTreeMap::new();
    for f in files {
        let dir = match f.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if let Some(name) = f.file_name() {
            dirs.entry(dir).or_default().push(name.to_owned());
        }
    }
    dirs
}

/// Sends `()` on `changed` whenever one of `files` may have changed, until `changed` is
/// closed. Run it as a task.
pub async fn watch(files: Vec<PathBuf>, changed: mpsc::UnboundedSender<()>) {
    let dirs = by_directory(&files);
    let mut polled = false;
    let stream = match Inotify::init() {
        Ok(inotify) => {
            let mut watched = BTreeMap::new();
            for (dir, names) in &dirs {
                match inotify.watches().add(dir, mask()) {
                    Ok(wd) => {
                        watched.insert(wd, names.clone());
                    }
                    Err(e) => {
                        warn_polled(dir, &e);
                        polled = true;
                    }
                }
            }
            match inotify.into_event_stream([0u8; 4096]) {
                Ok(stream) => Some((stream, watched)),
                Err(e) => {
                    warn_polled(Path::new("(all)"), &e);
                    polled = true;
                    None
                }
            }
        }
        Err(e) => {
            warn_polled(Path::new("(all)"), &e);
            polled = true;
            None
        }
    };
    let mut poll = tokio::time::interval(POLL_PERIOD);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let Some((mut events, watched)) = stream else {
        return poll_forever(poll, &changed).await;
    };
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(e)) => {
                    let ours = e.name.as_ref().is_some_and(|n| {
                        watched.get(&e.wd).is_some_and(|names| names.iter().any(|f| f == n))
                    });
                    // IN_Q_OVERFLOW (no name, no watch): events were lost, re-read everything.
                    let overflow = e.mask.contains(inotify::EventMask::Q_OVERFLOW);
                    if (ours || overflow) && changed.send(()).is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    warn!("track_file: reading inotify events: {e}; re-reading the files every {POLL_PERIOD:?} instead");
                    break;
                }
                None => break,
            },
            _ = poll.tick(), if polled => {
                if changed.send(()).is_err() {
                    return;
                }
            }
        }
    }
    poll_forever(poll, &changed).await
}

/// Says "re-read" at every tick of `poll`, until `changed` is closed.
async fn poll_forever(mut poll: tokio::time::Interval, changed: &mpsc::UnboundedSender<()>) {
    loop {
        poll.tick().await;
        if changed.send(()).is_err() {
            return;
        }
    }
}

fn warn_polled(dir: &Path, e: &std::io::Error) {
    warn!(
        "track_file: cannot watch {} for changes ({e}); its files are re-read every {:?}",
        dir.display(),
        POLL_PERIOD
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_keepalived_reads_them() {
        assert_eq!(strtol(b"12\n"), 12);
        assert_eq!(strtol(b"  -3 # maintenance"), -3);
        assert_eq!(strtol(b"0x1f"), 31);
        assert_eq!(strtol(b"017"), 15);
        assert_eq!(strtol(b"abc"), 0);
        assert_eq!(strtol(b""), 0);
        assert_eq!(strtol(b"99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn fifos_devices_and_big_files_do_not_hang_or_swallow_the_reader() {
        let dir = std::env::temp_dir().join(format!("ha-agent-track-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_value(&dir.join("missing")), Ok(0));
        // A FIFO with no writer: a blocking open would wait forever.
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_value(&fifo).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        // A device that never ends.
        assert!(read_value(Path::new("/dev/zero")).is_err());
        // 8 MiB of digits: only the first 127 bytes are read.
        let big = dir.join("big");
        std::fs::write(&big, "7".repeat(8 << 20)).unwrap();
        assert_eq!(read_value(&big), Ok(i64::MAX));
        std::fs::write(&big, "5\n").unwrap();
        assert_eq!(read_value(&big), Ok(5));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn init_file_replaces_a_planted_symlink_instead_of_following_it() {
        let dir = std::env::temp_dir().join(format!("ha-agent-track-init-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let file = dir.join("maint");
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        write_init(&file, 7).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "7\n");
        assert!(!std::fs::symlink_metadata(&file).unwrap().is_symlink());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn writes_renames_and_removals_are_seen_other_files_are_not() {
        let dir = std::env::temp_dir().join(format!("ha-agent-track-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("maint");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch(vec![file.clone()], tx));
        // Let the watch be set up before the first change.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let seen = |rx: &mut mpsc::UnboundedReceiver<()>| {
            let mut n = 0;
            while rx.try_recv().is_ok() {
                n += 1;
            }
            n
        };
        let settle = || tokio::time::sleep(Duration::from_millis(50));

        std::fs::write(dir.join("other"), "1\n").unwrap();
        settle().await;
        assert_eq!(seen(&mut rx), 0, "another file in the directory");

        std::fs::write(&file, "1\n").unwrap();
        settle().await;
        assert!(seen(&mut rx) >= 1, "a write");

        std::fs::write(dir.join("maint.new"), "0\n").unwrap();
        settle().await;
        seen(&mut rx);
        std::fs::rename(dir.join("maint.new"), &file).unwrap();
        settle().await;
        assert!(seen(&mut rx) >= 1, "a rename onto the file");

        std::fs::remove_file(&file).unwrap();
        settle().await;
        assert!(seen(&mut rx) >= 1, "a removal");

        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_directory_that_cannot_be_watched_is_polled() {
        let file = PathBuf::from("/nonexistent/ha-agent/maint");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch(vec![file], tx));
        let got = tokio::time::timeout(POLL_PERIOD * 4, rx.recv()).await;
        assert_eq!(
            got.ok().flatten(),
            Some(()),
            "no re-read within {:?}",
            POLL_PERIOD * 4
        );
        task.abort();
    }
}

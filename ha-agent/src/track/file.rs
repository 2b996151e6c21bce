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

//! keepalived's notify FIFOs (`notify_fifo`, `vrrp_notify_fifo`, core/notify.c and
//! vrrp/vrrp_notify.c): the line format, the FIFO created if absent (removed at exit only if we
//! created it), opened read-write and non-blocking so that a write never fails for want of a
//! reader, and the `*_fifo_script` started with the FIFO's path as last argument (SIGTERM at
//! exit, as keepalived). Lines go through a bounded queue to one writer task per FIFO: the event
//! loop never waits for a reader; what a full queue refuses is counted and logged.

use std::{
    ffi::CString,
    fs::File,
    io,
    os::unix::{ffi::OsStrExt, fs::MetadataExt, fs::OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{io::AsyncWriteExt, net::unix::pipe, sync::mpsc, task::JoinHandle};

use super::Subject;
use crate::{
    config::{GlobalDefs, NotifyFifo},
    track::script::{self, RunAs},
    vrrp::instance::State,
};

/// Lines a FIFO queues while its reader is slow or absent (and the pipe's 64 KiB are full);
/// beyond that, lines are dropped and counted.
pub const QUEUE: usize = 1024;
/// How long a stopping agent waits for the queued lines (STOP among them) to reach the pipe.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// What a FIFO line reports (keepalived vrrp_notify.c `notify_fifo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// A state change: MASTER, BACKUP, FAULT, STOP.
    State(State),
    /// The instance was removed by a reload (`notify_deleted`).
    Deleted,
    /// A master heard a lower-priority advert.
    MasterRxLowerPri,
    /// The effective priority changed (`notify_priority_changes`), in MASTER or not.
    PriorityChange { master: bool },
}

impl What {
    fn word(self) -> &'static str {
        match self {
            What::State(s) => super::state_word(s),
            What::Deleted => "DELETED",
            What::MasterRxLowerPri => "MASTER_RX_LOWER_PRI",
            What::PriorityChange { master: true } => "MASTER_PRIORITY",
            What::PriorityChange { master: false } => "BACKUP_PRIORITY",
        }
    }
}

/// keepalived's line: `INSTANCE "VI_1" MASTER 100`; a group's priority is always 0.
pub fn line(subject: Subject, name: &str, what: What, priority: u8) -> String {
    let kind = match subject {
        Subject::Instance => "INSTANCE",
        Subject::Group => "GROUP",
    };
    format!("{kind} \"{name}\" {} {priority}\n", what.word())
}

/// The open FIFOs of `global_defs` (`notify_fifo`, then `vrrp_notify_fifo`), each written the
/// same lines.
#[derive(Default)]
pub struct Fifos {
    open: Vec<(NotifyFifo, Fifo)>,
}

impl Fifos {
    /// Opens the FIFOs `global` names; on reload, one whose settings did not change is kept
    /// (its reader sees no gap), the others closed first, so a path reused is ours again.
    /// `run_as`: who a FIFO script runs as. Failures are logged, as keepalived: no FIFO.
    pub async fn configure(
        &mut self,
        global: &GlobalDefs,
        run_as: impl Fn(&NotifyFifo) -> Option<RunAs>,
    ) {
        let wanted: Vec<&NotifyFifo> = [&global.notify_fifo, &global.vrrp_notify_fifo]
            .into_iter()
            .filter(|f| f.path.is_some())
            .collect();
        let mut kept = Vec::new();
        for (settings, fifo) in std::mem::take(&mut self.open) {
            if wanted.contains(&&settings) && !kept.iter().any(|(s, _)| *s == settings) {
                kept.push((settings, fifo));
            } else {
                fifo.close().await;
            }
        }
        for settings in wanted {
            if let Some(pos) = kept.iter().position(|(s, _)| s == settings) {
                self.open.push(kept.swap_remove(pos));
            } else if let Some(fifo) = Fifo::open(settings, run_as(settings)) {
                self.open.push((settings.clone(), fifo));
            }
        }
    }

    /// Queues `line` on every FIFO; never waits.
    pub fn write(&self, line: &str) {
        for (_, fifo) in &self.open {
            fifo.write(line);
        }
    }

    /// At exit: each FIFO flushed (for at most a second), removed if we created it, closed, and
    /// its script sent SIGTERM.
    pub async fn close(&mut self) {
        for (_, fifo) in std::mem::take(&mut self.open) {
            fifo.close().await;
        }
    }
}

/// One open FIFO: its writer task, and its script.
pub struct Fifo {
    path: PathBuf,
    created: bool,
    /// None once closing: the writer ends when the queue is empty.
    tx: Option<mpsc::Sender<String>>,
    writer: JoinHandle<()>,
    dropped: Arc<AtomicU64>,
    script: Option<tokio::process::Child>,
}

impl Fifo {
    /// keepalived `fifo_open`: mkfifo (0644, chowned to `owner`), the script started, then the
    /// FIFO opened O_RDWR|O_NONBLOCK|O_NOFOLLOW and refused unless it is a FIFO we or `owner`
    /// own (a planted file is not written to).
    pub fn open(settings: &NotifyFifo, script_as: Option<RunAs>) -> Option<Fifo> {
        let path = settings.path.clone()?;
        let owner = settings
            .owner
            .as_ref()
            .and_then(|u| match script::resolve_user(u) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!("notify fifo {}: owner: {e:#}", path.display());
                    None
                }
            });
        let created = match mkfifo(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                tracing::warn!("notify fifo {}: cannot create: {e}", path.display());
                return None;
            }
        };
        if let (true, Some(o)) = (created, owner)
            && let Err(e) = std::os::unix::fs::chown(&path, Some(o.uid), Some(o.gid))
        {
            tracing::warn!("notify fifo {}: chown: {e}", path.display());
        }
        let script = settings.script.as_ref().and_then(|s| {
            let mut argv = s.command.clone();
            argv.push(path.display().to_string());
            start_script(&argv, script_as)
        });
        let opened = open_ours(&path, owner.map(|o| o.uid)).and_then(pipe::Sender::from_file);
        let sender = match opened {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("notify fifo {}: not used: {e}", path.display());
                if created {
                    let _ = std::fs::remove_file(&path);
                }
                if let Some(child) = script {
                    terminate(&child);
                }
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_lines(sender, rx, path.clone()));
        tracing::info!("notify fifo {}: open", path.display());
        Some(Fifo {
            path,
            created,
            tx: Some(tx),
            writer,
            dropped: Arc::new(AtomicU64::new(0)),
            script,
        })
    }

    /// Queues `line`; a full queue drops it: the first drop is logged, the total at close.
    pub fn write(&self, line: &str) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(line.to_owned())
            && self.dropped.fetch_add(1, Ordering::Relaxed) == 0
        {
            tracing::warn!(
                "notify fifo {}: no reader keeps up ({QUEUE} lines queued): lines dropped",
                self.path.display()
            );
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    async fn close(mut self) {
        self.tx = None;
        if tokio::time::timeout(FLUSH_WAIT, &mut self.writer)
            .await
            .is_err()
        {
            self.writer.abort();
        }
        let dropped = self.dropped();
        if dropped > 0 {
            tracing::warn!(
                "notify fifo {}: {dropped} line(s) dropped",
                self.path.display()
            );
        }
        // Drop removes what we created and stops the script.
    }
}

/// Also when the agent stops on an error, without [`Fifos::close`]: nothing it created stays.
impl Drop for Fifo {
    fn drop(&mut self) {
        self.writer.abort();
        // Unlinked before the script hears SIGTERM: a script that reopens the path in a loop
        // (keepalived's sample does) does not find it again.
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some(child) = &self.script {
            terminate(child);
        }
    }
}

/// The writer task: lines in order; a full pipe (no reader) waits here, not in the event loop.
async fn write_lines(mut pipe: pipe::Sender, mut rx: mpsc::Receiver<String>, path: PathBuf) {
    while let Some(line) = rx.recv().await {
        // A line is under PIPE_BUF: written whole or not at all.
        if let Err(e) = pipe.write_all(line.as_bytes()).await {
            tracing::info!("notify fifo {}: write error: {e}", path.display());
        }
    }
}

fn mkfifo(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    // SAFETY: mkfifo(3) reads the NUL-terminated path, which lives across the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o644) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens `path` read-write (no reader needed), refusing a symlink, anything but a FIFO, and a
/// FIFO owned by someone else than us or `owner`.
fn open_ours(path: &Path, owner: Option<u32>) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    // SAFETY: geteuid(2) cannot fail.
    let us = unsafe { libc::geteuid() };
    let is_fifo = meta.mode() & libc::S_IFMT == libc::S_IFIFO;
    if !is_fifo || (meta.uid() != us && Some(meta.uid()) != owner) {
        return Err(io::Error::other("not a FIFO we own"));
    }
    Ok(file)
}

/// Starts a FIFO script: in its own process group, without the agent's `NOTIFY_SOCKET`.
fn start_script(argv: &[String], run_as: Option<RunAs>) -> Option<tokio::process::Child> {
    let mut cmd = script::command(argv, run_as)?;
    match cmd.spawn() {
        Ok(child) => Some(child),
        Err(e) => {
            tracing::warn!("notify fifo script `{}`: cannot start: {e}", argv.join(" "));
            None
        }
    }
}

/// SIGTERM to a FIFO script's process group (keepalived terminates it at exit).
fn terminate(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) on the group the unreaped child leads: the id cannot have been reused.
        unsafe { libc::kill(-pid, libc::SIGTERM) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn keepalived_line_format() {
        let l = |s, n, w, p| line(s, n, w, p);
        assert_eq!(
            l(Subject::Instance, "VI_1", What::State(State::Master), 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(
            l(
                Subject::Instance,
                "VI_1",
                What::State(State::Initialize),
                90
            ),
            "INSTANCE \"VI_1\" STOP 90\n"
        );
        assert_eq!(
            l(Subject::Group, "G1", What::State(State::Backup), 0),
            "GROUP \"G1\" BACKUP 0\n"
        );
        assert_eq!(
            l(Subject::Instance, "VI_1", What::Deleted, 100),
            "INSTANCE \"VI_1\" DELETED 100\n"
        );
        assert_eq!(
            l(Subject::Instance, "VI_1", What::MasterRxLowerPri, 150),
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150\n"
        );
        assert_eq!(
            l(
                Subject::Instance,
                "VI_1",
                What::PriorityChange { master: true },
                80
            ),
            "INSTANCE \"VI_1\" MASTER_PRIORITY 80\n"
        );
        assert_eq!(
            l(
                Subject::Instance,
                "VI_1",
                What::PriorityChange { master: false },
                80
            ),
            "INSTANCE \"VI_1\" BACKUP_PRIORITY 80\n"
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ha-agent-fifo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn settings(path: &Path) -> NotifyFifo {
        NotifyFifo {
            path: Some(path.to_owned()),
            ..Default::default()
        }
    }

    /// No reader at all: writes neither fail nor wait (O_RDWR), the lines wait in the pipe for a
    /// reader that comes later, in order; the FIFO we created is removed at close.
    #[tokio::test]
    async fn lines_wait_for_a_late_reader_in_order_and_the_fifo_is_removed() {
        let dir = temp_dir("late");
        let path = dir.join("fifo");
        let fifo = Fifo::open(&settings(&path), None).expect("opens");
        for i in 0..5 {
            fifo.write(&line(
                Subject::Instance,
                "VI_1",
                What::State(State::Master),
                i,
            ));
        }
        // The reader comes after the lines were written; O_NONBLOCK so that it cannot hang.
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let mut got = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.lines().count() < 5 {
            assert!(std::time::Instant::now() < deadline, "read {got:?}");
            let mut buf = [0u8; 512];
            match reader.read(&mut buf) {
                Ok(n) => got.push_str(std::str::from_utf8(&buf[..n]).unwrap()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let want: String = (0..5)
            .map(|i| format!("INSTANCE \"VI_1\" MASTER {i}\n"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(fifo.dropped(), 0);
        fifo.close().await;
        assert!(!path.exists(), "the FIFO we created outlived the agent");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reader that never reads: the pipe fills, then the queue; further lines are dropped and
    /// counted, and writing never blocks the caller.
    #[tokio::test]
    async fn a_stalled_reader_never_blocks_the_writer_and_drops_are_counted() {
        let dir = temp_dir("stall");
        let path = dir.join("fifo");
        let fifo = Fifo::open(&settings(&path), None).expect("opens");
        let long = format!("INSTANCE \"{}\" MASTER 100\n", "x".repeat(200));
        let started = std::time::Instant::now();
        // 64 KiB of pipe / ~220 bytes a line ≈ 300 lines, then QUEUE more: 3000 overflow.
        for _ in 0..3000 {
            fifo.write(&long);
            tokio::task::yield_now().await;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(fifo.dropped() > 0, "nothing dropped");
        assert!(fifo.dropped() < 3000, "everything dropped");
        let closing = std::time::Instant::now();
        fifo.close().await;
        assert!(closing.elapsed() < FLUSH_WAIT + Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An agent that stops on an error drops its FIFOs unclosed: what it created goes too.
    #[tokio::test]
    async fn a_dropped_fifo_removes_what_it_created() {
        let dir = temp_dir("drop");
        let path = dir.join("fifo");
        drop(Fifo::open(&settings(&path), None).expect("opens"));
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A FIFO that exists is used and left in place; a regular file planted at the path is
    /// refused and not written to.
    #[tokio::test]
    async fn an_existing_fifo_is_kept_and_a_planted_file_refused() {
        let dir = temp_dir("exist");
        let path = dir.join("fifo");
        mkfifo(&path).unwrap();
        let fifo = Fifo::open(&settings(&path), None).expect("opens");
        fifo.close().await;
        assert!(path.exists(), "a FIFO we did not create was removed");
        let file = dir.join("file");
        std::fs::write(&file, "").unwrap();
        assert!(Fifo::open(&settings(&file), None).is_none());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

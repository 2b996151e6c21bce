//! The control socket: a unix stream socket where `ha-agent status` asks for the [`Report`].
//!
//! Protocol: the client writes one line, `status`, and reads one JSON document (the report,
//! see [`super::report`]) up to end of file. Any other line is answered with
//! `{"error": "..."}`. The protocol is read-only, and stays so: `status` is its only request,
//! and nothing a client sends changes the agent, so opening the socket to a monitoring group
//! (`--control-socket-group`) lets that group read the state and nothing more.
//!
//! The socket file is owner-only (0600), or 0660 with the group of `--control-socket-group`;
//! it is replaced if a crashed run left it (nobody accepts on it), refused if a live agent
//! serves it, and removed at exit. Its directory is created owner-only (0700); with a group,
//! it is opened to that group (0750) and to no one else, as it holds the files of every agent
//! that shares it (their sockets, dumps, pid files and interface locks).

use std::{
    io::{self, Read as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::UnixListener,
    sync::watch,
};
use tracing::{debug, warn};

use super::report::Report;
use crate::status::Status;

/// How long a client may take to send its request line, and the client to get its answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The bound socket, before the event loop serves it.
pub struct ControlSocket {
    listener: std::os::unix::net::UnixListener,
    guard: SocketFile,
}

/// Removes the socket file on drop, if it is still the one we bound (a later agent may have
/// replaced it).
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `--control-socket-group`: the group whose members may read `ha-agent status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketGroup {
    pub name: String,
    pub gid: u32,
}

impl SocketGroup {
    /// Looks `name` up in the group database (/etc/group, or what nsswitch.conf says).
    pub fn lookup(name: &str) -> Result<SocketGroup> {
        let c = std::ffi::CString::new(name)
            .with_context(|| format!("--control-socket-group {name:?}: a NUL in the name"))?;
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: getgrnam_r(3) writes the entry into `group` and its strings into `buf`,
            // both ours and alive across the call; `found` points at `group` or is null.
            let mut group: libc::group = unsafe { std::mem::zeroed() };
            let mut found: *mut libc::group = std::ptr::null_mut();
            let rc = unsafe {
                libc::getgrnam_r(
                    c.as_ptr(),
                    &mut group,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut found,
                )
            };
            match rc {
                0 if found.is_null() => bail!(
                    "--control-socket-group {name}: no such group (create it with `groupadd \
                     {name}`, or name an existing one)"
                ),
                0 => {
                    return Ok(SocketGroup {
                        name: name.to_owned(),
                        gid: group.gr_gid,
                    });
                }
                libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
                e => {
                    return Err(io::Error::from_raw_os_error(e))
                        .with_context(|| format!("--control-socket-group {name}: looking it up"));
                }
            }
        }
    }
}

impl ControlSocket {
    /// Binds `path` (creating its directory, owner-only): replaces a stale socket file, refuses
    /// one a live agent accepts on, and refuses to remove anything that is not a socket. With
    /// `group`, the socket is 0660 and its directory opened to that group (see the module).
    pub fn bind(path: &Path, group: Option<&SocketGroup>) -> Result<ControlSocket> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            if let Some(group) = group {
                open_dir_to(dir, group)?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                match std::os::unix::net::UnixStream::connect(path) {
                    Ok(_) => bail!(
                        "control socket {}: another ha-agent is serving it (same configuration \
                         file?); stop it, or give this one --control-socket PATH",
                        path.display()
                    ),
                    Err(_) => {
                        warn!(
                            "control socket {}: replacing a stale socket (left by a run that \
                             did not exit cleanly)",
                            path.display()
                        );
                        std::fs::remove_file(path)
                            .with_context(|| format!("removing {}", path.display()))?;
                    }
                }
            }
            Ok(_) => bail!(
                "control socket {}: the path exists and is not a socket; not touching it",
                path.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("control socket {}", path.display())),
        }
        // The file is created by bind(2) with the umask's permissions: owner-only from the
        // start, not after a window where others could connect. Start-up runs on one thread.
        // SAFETY: umask(2) cannot fail; it is restored right after.
        let old = unsafe { libc::umask(0o177) };
        let bound = std::os::unix::net::UnixListener::bind(path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener =
            bound.with_context(|| format!("binding the control socket {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", path.display()))?;
        if let Some(group) = group {
            // The group first, then its bits: never a moment where root's group may connect.
            std::os::unix::fs::chown(path, None, Some(group.gid)).with_context(|| {
                format!(
                    "--control-socket-group {}: chown :{} {} (the agent needs CAP_CHOWN)",
                    group.name,
                    group.name,
                    path.display()
                )
            })?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .with_context(|| format!("chmod 0660 {}", path.display()))?;
        }
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("control socket {}", path.display()))?;
        Ok(ControlSocket {
            listener,
            guard: SocketFile {
                path: path.to_owned(),
                id: (meta.dev(), meta.ino()),
            },
        })
    }

    /// Serves the socket from a task on the current `LocalSet`. Returns the guard that removes
    /// the file, and the task (abort it to stop serving).
    pub fn serve(
        self,
        status: watch::Receiver<Status>,
    ) -> Result<(SocketFile, tokio::task::JoinHandle<()>)> {
        self.listener.set_nonblocking(true)?;
        let listener = UnixListener::from_std(self.listener)?;
        let task = tokio::task::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::task::spawn_local(answer(stream, status.clone()));
                    }
                    Err(e) => {
                        warn!("control socket: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok((self.guard, task))
    }
}

/// Lets `group` reach the sockets in `dir`: a directory of ours that root's group or `group`
/// owns becomes `group`'s, 0750 at most; one the group can already search is left as it is;
/// anything else is refused, naming the way out, rather than loosened.
fn open_dir_to(dir: &Path, group: &SocketGroup) -> Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    let searchable = mode & 0o001 != 0 || (meta.gid() == group.gid && mode & 0o010 != 0);
    if searchable {
        return Ok(());
    }
    // SAFETY: geteuid(2) cannot fail.
    let us = unsafe { libc::geteuid() };
    if meta.uid() != us {
        bail!(
            "--control-socket-group {}: the control socket's directory {} belongs to uid {}, \
             not to this agent, and {} cannot search it; give --control-socket a path in a \
             directory of the agent's",
            group.name,
            dir.display(),
            meta.uid(),
            group.name
        );
    }
    if meta.gid() != 0 && meta.gid() != group.gid {
        bail!(
            "--control-socket-group {}: the control socket's directory {} is open to group {} \
             (another agent's --control-socket-group?); agents sharing a directory share one \
             group: give this agent the same group, or a --control-socket in another directory",
            group.name,
            dir.display(),
            meta.gid()
        );
    }
    std::os::unix::fs::chown(dir, None, Some(group.gid)).with_context(|| {
        format!(
            "--control-socket-group {}: chown :{} {} (the agent needs CAP_CHOWN)",
            group.name,
            group.name,
            dir.display()
        )
    })?;
    let opened = (mode & 0o750) | 0o050;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(opened))
        .with_context(|| format!("chmod {opened:o} {}", dir.display()))
}

async fn answer(stream: tokio::net::UnixStream, status: watch::Receiver<Status>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(1024));
    let request = tokio::time::timeout(TIMEOUT, reader.read_line(&mut line)).await;
    let reply = match request {
        Ok(Ok(_)) if line.trim() == "status" => {
            let report = Report::now(&status.borrow());
            serde_json::to_string(&report).expect("a report serializes")
        }
        Ok(Ok(_)) => {
            serde_json::json!({ "error": format!("unknown request {:?}", line.trim()) }).to_string()
        }
        Ok(Err(e)) => {
            debug!("control socket: reading a request: {e}");
            return;
        }
        Err(_) => {
            debug!("control socket: no request within {TIMEOUT:?}");
            return;
        }
    };
    let _ = tokio::time::timeout(TIMEOUT, async {
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\n").await?;
        write.shutdown().await
    })
    .await;
}

/// The client: asks the agent at `path` for its status and returns the JSON text.
pub fn request_status(path: &Path) -> Result<String> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => format!(
                "no control socket at {}: is `ha-agent run` running with this configuration \
                 file? (or give the --control-socket it runs with)",
                path.display()
            ),
            io::ErrorKind::ConnectionRefused => format!(
                "{}: nobody answers (a stale socket: the agent that made it is gone)",
                path.display()
            ),
            io::ErrorKind::PermissionDenied => format!(
                "{}: permission denied (the socket is the agent's user's only, or open to a \
                 group you are not in: run as the agent's user, e.g. with sudo, or as a member \
                 of the group the agent's --control-socket-group names)",
                path.display()
            ),
            _ => format!("connecting to {}: {e}", path.display()),
        };
        anyhow::anyhow!(why)
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream
        .write_all(b"status\n")
        .with_context(|| format!("writing to {}", path.display()))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .with_context(|| format!("reading from {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&reply)
        .with_context(|| format!("{}: not a status reply: {reply:?}", path.display()))?;
    if let Some(error) = value.get("error") {
        bail!("{}: {error}", path.display());
    }
    Ok(reply)
}

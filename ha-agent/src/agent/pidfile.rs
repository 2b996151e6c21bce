//! The `--pid-file`: written at start, locked (`flock`) for the life of the process, removed at
//! exit. A file another process holds the lock on is refused; one no one locks is stale (its pid
//! may have been reused by another program) and taken over, whatever pid it names.

use std::{
    fs,
    io::{self, Read as _, Seek as _, Write as _},
    os::unix::{
        fs::{MetadataExt as _, OpenOptionsExt as _},
        io::AsRawFd as _,
    },
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// Holds the lock; removes the pid file when dropped.
pub struct PidFile {
    path: PathBuf,
    /// Open for the life of the process: closing it releases the lock.
    _lock: fs::File,
}

impl PidFile {
    /// Opens (or creates) `path` without following a symlink, takes an exclusive `flock` on it
    /// without waiting, and writes our pid into it in place (no temporary file beside it).
    pub fn create(path: &Path) -> Result<PidFile> {
        // The agent's own run directory (an `instance NAME`'s default pid file) is made as the
        // control socket's is: owner-only.
        if let Some(dir) = path.parent()
            && dir == Path::new(crate::control::RUN_DIR)
            && !dir.exists()
        {
            use std::os::unix::fs::DirBuilderExt as _;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        // A file removed by the agent that held it between our open and our lock is not the
        // pid file any more: open again.
        for _ in 0..8 {
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => anyhow::anyhow!(
                        "{}: is a symbolic link; the pid file is not written through one (remove \
                         it, or choose another --pid-file)",
                        path.display()
                    ),
                    _ => anyhow::Error::new(e).context(format!(
                        "opening the pid file {} (choose another --pid-file)",
                        path.display()
                    )),
                })?;
            // SAFETY: flock(2) on a descriptor `file` owns and keeps open.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let holder = match text.trim().parse::<u32>() {
                        Ok(pid) => format!("pid {pid}"),
                        Err(_) => "a process that has not written its pid yet".to_owned(),
                    };
                    bail!(
                        "{}: another ha-agent ({holder}) is running with this pid file (it holds \
                         its lock); stop it or choose another --pid-file",
                        path.display()
                    );
                }
                return Err(e).with_context(|| format!("locking the pid file {}", path.display()));
            }
            let ours = file.metadata()?;
            match fs::symlink_metadata(path) {
                Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {}
                _ => continue,
            }
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{}", std::process::id()))
                .and_then(|()| file.flush())
                .with_context(|| format!("writing the pid file {}", path.display()))?;
            return Ok(PidFile {
                path: path.to_owned(),
                _lock: file,
            });
        }
        bail!(
            "{}: the pid file keeps being replaced while this agent starts; is another starting?",
            path.display()
        )
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked: a starting agent that opened it sees it is gone.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("ha-pidfile-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_locked_pid_file_is_refused_naming_its_holder() {
        let dir = Dir::new("locked");
        let path = dir.0.join("agent.pid");
        let first = PidFile::create(&path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        // flock locks belong to the open file: a second open in this process conflicts.
        let err = PidFile::create(&path)
            .err()
            .expect("a held lock must be refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())) && msg.contains("agent.pid"),
            "{msg}"
        );
        drop(first);
        assert!(!path.exists(), "the pid file is removed at exit");
        let again = PidFile::create(&path).unwrap();
        drop(again);
    }

    #[test]
    fn a_stale_pid_file_naming_a_live_process_does_not_block_a_start() {
        let dir = Dir::new("stale");
        let path = dir.0.join("agent.pid");
        // pid 1 is alive (a reused pid), but no one holds the lock: stale.
        fs::write(&path, "1\n").unwrap();
        let pid_file = PidFile::create(&path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(pid_file);
    }

    #[test]
    fn symlinks_at_the_pid_file_or_beside_it_are_not_followed() {
        let dir = Dir::new("symlink");
        let victim = dir.0.join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let path = dir.0.join("agent.pid");
        // The temporary name the old writer used.
        std::os::unix::fs::symlink(&victim, dir.0.join("agent.tmp")).unwrap();
        let pid_file = PidFile::create(&path).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        drop(pid_file);
        // A symlink at the pid file's own path is refused, its target untouched.
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = PidFile::create(&path).err().expect("a symlink is refused");
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }
}

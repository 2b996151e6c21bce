//! keepalived's dump signals: SIGUSR1 writes the data dump, SIGUSR2 the stats dump; both also
//! write the JSON report. The files sit next to the control socket, with its name:
//! `/run/ha-agent/NAME.sock` → `NAME.data`, `NAME.stats`, `NAME.json` (keepalived writes
//! `/tmp/keepalived.data` and `/tmp/keepalived.stats`, which collide between agents).
//! Each is written to a temporary file in the same directory and renamed over the old one, so
//! a reader never sees half a dump. Owner-only (0600).

use std::{
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use super::report::{Report, render_data, render_stats};

/// Which dump a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dump {
    /// SIGUSR1.
    Data,
    /// SIGUSR2.
    Stats,
}

/// The paths of the dumps of the agent whose control socket is `socket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpPaths {
    pub data: PathBuf,
    pub stats: PathBuf,
    pub json: PathBuf,
}

impl DumpPaths {
    pub fn for_socket(socket: &Path) -> DumpPaths {
        let with = |ext: &str| {
            if socket.extension().is_some_and(|e| e == "sock") {
                socket.with_extension(ext)
            } else {
                let mut s = socket.as_os_str().to_owned();
                s.push(".");
                s.push(ext);
                PathBuf::from(s)
            }
        };
        DumpPaths {
            data: with("data"),
            stats: with("stats"),
            json: with("json"),
        }
    }

    /// Writes `dump` and the JSON report; returns the paths written.
    pub fn write(&self, dump: Dump, report: &Report) -> Result<[&Path; 2]> {
        let (path, text) = match dump {
            Dump::Data => (&self.data, render_data(report)),
            Dump::Stats => (&self.stats, render_stats(report)),
        };
        // Read with `cat` on a terminal: names from the configuration are escaped.
        write_atomic(path, crate::config::escape_lines(&text).as_bytes())?;
        let mut json = serde_json::to_string_pretty(report).expect("a report serializes");
        json.push('\n');
        write_atomic(&self.json, json.as_bytes())?;
        Ok([path, &self.json])
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`. The
/// temporary file has a name no one can guess and is created with `O_EXCL | O_NOFOLLOW`: a
/// symlink planted beside `path` (a predictable `.tmp`) is never followed to clobber its target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

/// [`write_atomic`] with the file's permissions `mode` (before the umask).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let (tmp, mut file) = create_temporary(path, mode)
        .with_context(|| format!("creating a temporary file beside {}", path.display()))?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Creates a new file `PATH.tmp.PID.RANDOM` with `mode` beside `path`, never an existing file or
/// a symlink's target.
fn create_temporary(path: &Path, mode: u32) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last = None;
    for _ in 0..16 {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}.{:016x}", std::process::id(), random_u64()));
        let tmp = PathBuf::from(tmp);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// 64 random bits from the kernel (getrandom(2)); the clock if it fails.
fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom(2) writes at most `buf.len()` bytes into the buffer we own.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        return u64::from_ne_bytes(buf);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_planted_at_the_temporary_path_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("ha-dump-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.join("agent.data");
        // Every name the old writer used (PATH.tmp.PID) and the plain PATH.tmp.
        for name in [
            format!("agent.data.tmp.{}", std::process::id()),
            "agent.data.tmp".to_owned(),
            "agent.tmp".to_owned(),
        ] {
            std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
        }
        write_atomic(&path, b"dump\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "dump\n");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Nothing is left beside it but the planted links.
        let left = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(left, 5, "victim, dump, 3 links");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

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
        write_atomic(path, text.as_bytes())?;
        let mut json = serde_json::to_string_pretty(report).expect("a report serializes");
        json.push('\n');
        write_atomic(&self.json, json.as_bytes())?;
        Ok([path, &self.json])
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

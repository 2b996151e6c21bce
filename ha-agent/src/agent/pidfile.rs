//! The `--pid-file`: written at start, removed at exit, refused while it names a live process.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// Removes the pid file when dropped.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Creates `path` with our pid. A file naming a live process is an error (another agent runs
    /// with this file); one naming a dead process is stale and replaced.
    pub fn create(path: &Path) -> Result<PidFile> {
        match fs::read_to_string(path) {
            Ok(text) => {
                if let Ok(pid) = text.trim().parse::<u32>()
                    && pid != std::process::id()
                    && Path::new(&format!("/proc/{pid}")).exists()
                {
                    bail!(
                        "{}: another ha-agent (pid {pid}) is running with this pid file; stop it or \
                         choose another --pid-file",
                        path.display()
                    );
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let tmp = path.with_extension("tmp");
        let mut file =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        writeln!(file, "{}", std::process::id())?;
        fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(PidFile {
            path: path.to_owned(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_live_pid_and_replaces_a_stale_one() {
        let dir = std::env::temp_dir().join(format!("ha-pidfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.pid");

        // pid 1 is always alive.
        fs::write(&path, "1\n").unwrap();
        let err = PidFile::create(&path)
            .err()
            .expect("a live pid must be refused");
        assert!(err.to_string().contains("pid 1"), "{err}");

        // No process has pid u32::MAX - 1: stale.
        fs::write(&path, format!("{}\n", u32::MAX - 1)).unwrap();
        let pid_file = PidFile::create(&path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(pid_file);
        assert!(!path.exists(), "the pid file is removed at exit");
        fs::remove_dir_all(&dir).unwrap();
    }
}

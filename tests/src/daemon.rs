//! A long-running process in a lab node, with its output in a log file, killed on drop.

use std::{
    fs::File,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

/// A process started in a lab node. Dropping it stops it and reaps it.
pub struct Daemon {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Daemon> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        // Its own process group, so that dropping it reaches the processes it forks too
        // (keepalived's VRRP child, scripts) when it does not stop them itself in time.
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Daemon {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process id (`ip netns exec` execs the program, so this is the program's pid).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) -> Result<()> {
        // SAFETY: kill(2) on our own child, not yet reaped.
        if unsafe { libc::kill(self.pid(), signal) } != 0 {
            return Err(std::io::Error::last_os_error()).context(format!(
                "kill {} {}",
                signal,
                self.pid()
            ));
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls the log until it contains `needle`, for at most `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return Ok(());
            }
            if !self.is_running() {
                anyhow::bail!(
                    "{} exited before logging {needle:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        anyhow::bail!(
            "{} did not log {needle:?} within {timeout:?}; log:\n{}",
            self.name,
            self.log()
        )
    }
}

impl Drop for Daemon {
    /// SIGTERM first, so daemons clean up what they own (ha-agent: VIPs, control socket), then
    /// SIGKILL to its whole process group after two seconds; always reaped. Returns once no
    /// process of the group is left (at most a second more): a keepalived whose VRRP child
    /// outlived its parent held the next bench trial's pid file ("daemon is already running")
    /// and wrote into its log.
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.signal(libc::SIGTERM);
            let _ = self.wait_timeout(Duration::from_secs(2));
        }
        let group = -self.pid();
        // SAFETY: kill(2) on the process group this daemon leads (spawned with process_group(0));
        // ESRCH when it is already empty.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(1);
        // SAFETY: signal 0 only checks whether a process of the group still exists.
        while unsafe { libc::kill(group, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

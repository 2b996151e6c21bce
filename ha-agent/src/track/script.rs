//! `vrrp_script`: run a check every `interval`, kill it at `timeout`, and report a change of
//! state after `rise` successes or `fall` failures in a row (keepalived vrrp_track.c).

use std::{os::unix::fs::MetadataExt, path::Path, process::Stdio, time::Duration};

use anyhow::{Context, Result, bail};
use tokio::{process::Command, sync::mpsc};

use crate::config::{ScriptUser, VrrpScript};

/// A script's state changed: `index` into `Config::scripts`, `up` = succeeding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptUpdate {
    pub index: usize,
    pub up: bool,
}

/// How one run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Killed at its timeout (and reaped); counts as a failure.
    TimedOut,
}

/// The uid and gid a script runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// Resolves `script_user USER [GROUP]` with the system's user database.
pub fn resolve_user(user: &ScriptUser) -> Result<RunAs> {
    let name = std::ffi::CString::new(user.user.as_str())?;
    // SAFETY: getpwnam with a valid C string; the returned record is read at once, before any
    // other passwd call on this thread.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!(
            "user `{}` does not exist on this host: create it, or name an existing user",
            user.user
        );
    }
    // SAFETY: non-null record from getpwnam (see above).
    let (uid, mut gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    if let Some(group) = &user.group {
        let gname = std::ffi::CString::new(group.as_str())?;
        // SAFETY: as getpwnam above.
        let gr = unsafe { libc::getgrnam(gname.as_ptr()) };
        if gr.is_null() {
            bail!(
                "group `{group}` does not exist on this host: create it, or name an existing group"
            );
        }
        // SAFETY: non-null record from getgrnam.
        gid = unsafe { (*gr).gr_gid };
    }
    Ok(RunAs { uid, gid })
}

/// keepalived's `enable_script_security`: a script (and the directories above it) must not be
/// writable by anyone but root when it runs as root.
pub fn check_secure(program: &Path) -> Result<()> {
    let mut path = Some(program);
    while let Some(p) = path {
        let meta = std::fs::metadata(p).with_context(|| format!("script {}", program.display()))?;
        let mode = meta.mode();
        let why = if meta.uid() != 0 {
            Some(format!("is owned by uid {}, not root", meta.uid()))
        } else if mode & 0o022 != 0 {
            Some(format!(
                "is writable by its group or others (mode {:o})",
                mode & 0o7777
            ))
        } else {
            None
        };
        if let Some(why) = why {
            bail!(
                "script {} is not secure: {} {why}, so a non-root user could change what runs \
                 as root; fix the permissions (root-owned, not group/other-writable, directories \
                 included) or remove enable_script_security",
                program.display(),
                p.display(),
            );
        }
        path = p.parent().filter(|p| !p.as_os_str().is_empty());
    }
    Ok(())
}

/// Runs `argv` once, killing it at `timeout`.
pub async fn run_once(argv: &[String], timeout: Duration, run_as: Option<RunAs>) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::Failure;
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        // Its own process group, so that a timeout kills what the script started too (a
        // `sleep` or `curl` under `sh`), as keepalived does; else they outlive it, one per run.
        .process_group(0);
    if let Some(r) = run_as {
        cmd.uid(r.uid).gid(r.gid);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(script = %program, "cannot start: {e}");
            return Outcome::Failure;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Outcome::Success,
        Ok(_) => Outcome::Failure,
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) on the process group this child leads; it is not reaped yet,
                // so the group id cannot have been reused.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            // Kill and reap: no zombie is left behind.
            let _ = child.kill().await;
            Outcome::TimedOut
        }
    }
}

/// Counts consecutive results into a state change, as keepalived's rise/fall.
#[derive(Clone, Debug)]
pub struct RiseFall {
    up: bool,
    rise: u32,
    fall: u32,
    streak: u32,
}

impl RiseFall {
    pub fn new(up: bool, rise: u32, fall: u32) -> Self {
        Self {
            up,
            rise: rise.max(1),
            fall: fall.max(1),
            streak: 0,
        }
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// Feeds one result; returns the new state when it changed.
    pub fn feed(&mut self, success: bool) -> Option<bool> {
        if success == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if success { self.rise } else { self.fall };
        if self.streak >= needed {
            self.up = success;
            self.streak = 0;
            Some(self.up)
        } else {
            None
        }
    }
}

/// Runs `script` forever, sending its state changes. The first result is always sent.
pub async fn supervise(
    index: usize,
    script: VrrpScript,
    run_as: Option<RunAs>,
    tx: mpsc::UnboundedSender<ScriptUpdate>,
) {
    let mut state = RiseFall::new(!script.init_fail, script.rise, script.fall);
    let mut first = true;
    let mut ticker = tokio::time::interval(script.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let outcome = run_once(&script.command, script.timeout, run_as).await;
        if outcome == Outcome::TimedOut {
            tracing::warn!(script = %script.name, "timed out after {:?}: killed", script.timeout);
        }
        let changed = state.feed(outcome == Outcome::Success);
        if changed.is_some() || first {
            first = false;
            tracing::info!(script = %script.name, "vrrp_script {} is {}", script.name, if state.up() { "up" } else { "down" });
            if tx
                .send(ScriptUpdate {
                    index,
                    up: state.up(),
                })
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_need_streaks() {
        let mut rf = RiseFall::new(true, 2, 3);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(true), None, "a success breaks the failure streak");
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), None);
        assert_eq!(rf.feed(false), Some(false));
        assert_eq!(rf.feed(true), None);
        assert_eq!(rf.feed(true), Some(true));
    }

    #[tokio::test]
    async fn a_hanging_script_is_killed_at_its_timeout() {
        let argv = vec!["sleep".to_owned(), "30".to_owned()];
        let started = std::time::Instant::now();
        assert_eq!(
            run_once(&argv, Duration::from_millis(100), None).await,
            Outcome::TimedOut
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let ok = vec!["true".to_owned()];
        assert_eq!(
            run_once(&ok, Duration::from_secs(5), None).await,
            Outcome::Success
        );
        let bad = vec!["false".to_owned()];
        assert_eq!(
            run_once(&bad, Duration::from_secs(5), None).await,
            Outcome::Failure
        );
        let missing = vec!["/nonexistent/check".to_owned()];
        assert_eq!(
            run_once(&missing, Duration::from_secs(5), None).await,
            Outcome::Failure
        );
    }

    /// Regression: only `sh` was killed at the timeout, and the `sleep` it started lived on
    /// (one more per run of a hanging check).
    #[tokio::test]
    async fn a_timeout_kills_what_the_script_started() {
        let dir = std::env::temp_dir().join(format!("ha-agent-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("child.pid");
        let argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("sleep 30 & echo $! > {}; wait", pid_file.display()),
        ];
        assert_eq!(
            run_once(&argv, Duration::from_millis(300), None).await,
            Outcome::TimedOut
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // Gone, or dead and waiting for init to reap it.
        let dead = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !dead() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            dead(),
            "the script's child {} outlived its timeout",
            pid.trim()
        );
    }
}

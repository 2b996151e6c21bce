//! `global_defs { startup_script, shutdown_script }`: each run once and waited for; at its
//! timeout its process group gets SIGTERM, then SIGKILL 2s later, and the start or the exit goes
//! on (keepalived core/main.c `run_startup_script`, `shutdown_script_completed`,
//! `handle_child_timeout`).

use std::{future::Future, time::Duration};

use tracing::{info, warn};

use crate::{
    config::{GlobalDefs, NotifyScript},
    notify,
    track::script::RunAs,
};

/// keepalived `handle_child_timeout`: how long a script has between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// One of the two scripts, with who it runs as.
#[derive(Debug, Clone)]
struct Job {
    argv: Vec<String>,
    run_as: Option<RunAs>,
    timeout: Duration,
}

/// The startup and shutdown scripts of a configuration, their users resolved.
#[derive(Debug, Clone, Default)]
pub(super) struct StartStop {
    startup: Option<Job>,
    shutdown: Option<Job>,
}

impl StartStop {
    /// `users` and `run_as` are preflight's: the users the lines name, and `script_user`.
    pub fn new(global: &GlobalDefs, users: &notify::Users, run_as: Option<RunAs>) -> StartStop {
        let job = |s: &Option<NotifyScript>, timeout: Duration| {
            s.as_ref().map(|s| Job {
                argv: s.command.clone(),
                run_as: users.run_as(s.user.as_ref(), run_as),
                timeout,
            })
        };
        StartStop {
            startup: job(&global.startup_script, global.startup_script_timeout),
            shutdown: job(&global.shutdown_script, global.shutdown_script_timeout),
        }
    }

    /// Before any instance, address or datapath is set up. False when `stop` (SIGTERM) came
    /// first: the script was stopped as at its timeout, and the agent must not start.
    pub async fn startup(&self, stop: impl Future<Output = ()>) -> bool {
        match &self.startup {
            Some(job) => run("startup", job, stop).await,
            None => true,
        }
    }

    /// After the instances stopped and their VIPs, routes and static addresses are removed.
    pub async fn shutdown(&self) {
        if let Some(job) = &self.shutdown {
            run("shutdown", job, std::future::pending()).await;
        }
    }
}

/// Runs `job` to its end, its timeout or `stop`; false if `stop` came first.
async fn run(kind: &str, job: &Job, stop: impl Future<Output = ()>) -> bool {
    let line = job.argv.join(" ");
    let Some(mut cmd) = crate::track::script::command(&job.argv, job.run_as) else {
        return true;
    };
    info!("running {kind} script `{line}`");
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            warn!("{kind} script `{line}`: cannot start: {e}");
            return true;
        }
    };
    // Some(true): `stop` came first; Some(false): timed out; None: it ended.
    let cut_short = tokio::select! {
        status = tokio::time::timeout(job.timeout, child.wait()) => match status {
            Ok(Ok(s)) if s.success() => {
                info!("{kind} script `{line}` done");
                None
            }
            Ok(Ok(s)) => {
                warn!("{kind} script `{line}` failed: {s}");
                None
            }
            Ok(Err(e)) => {
                warn!("{kind} script `{line}`: {e}");
                None
            }
            Err(_) => {
                warn!(
                    "{kind} script `{line}` timed out after {:?} ({kind}_script_timeout): \
                     stopped, with the processes it started; the {kind} goes on",
                    job.timeout
                );
                Some(false)
            }
        },
        () = stop => {
            warn!("{kind} script `{line}`: stopped, the agent was told to exit");
            Some(true)
        }
    };
    if cut_short.is_some() {
        terminate(&mut child).await;
    }
    cut_short != Some(true)
}

/// SIGTERM to the script's process group, SIGKILL after [`TERM_GRACE`], then reaped.
async fn terminate(child: &mut tokio::process::Child) {
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) on the process group this child leads; it is not reaped yet, so the
    // group id cannot have been reused.
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    if tokio::time::timeout(TERM_GRACE, child.wait())
        .await
        .is_err()
    {
        // SAFETY: as above; still not reaped.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    } else {
        // What the script started and left behind in its group goes too (keepalived
        // `startup_shutdown_script_completed`).
        // SAFETY: kill(2) on the group id of a leader just reaped: its members keep the id
        // from reuse while any remain; with none, ESRCH.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.wait().await;
}

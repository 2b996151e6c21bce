//! `global_defs { startup_script, shutdown_script }`: each run once and waited for, killed
//! with what it started at its timeout, after which the start or the exit goes on (keepalived
//! core/main.c `run_startup_script`, `shutdown_script_completed`, `handle_child_timeout`).

use std::time::Duration;

use tracing::{info, warn};

use crate::{
    config::{GlobalDefs, NotifyScript},
    notify,
    track::script::{self, Outcome, RunAs},
};

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

    /// Before any instance, address or datapath is set up.
    pub async fn startup(&self) {
        if let Some(job) = &self.startup {
            run("startup", job).await;
        }
    }

    /// After the instances stopped and their VIPs, routes and static addresses are removed.
    pub async fn shutdown(&self) {
        if let Some(job) = &self.shutdown {
            run("shutdown", job).await;
        }
    }
}

async fn run(kind: &str, job: &Job) {
    let line = job.argv.join(" ");
    info!("running {kind} script `{line}`");
    match script::run_once(&job.argv, job.timeout, job.run_as).await {
        Outcome::Success => info!("{kind} script `{line}` done"),
        Outcome::Failure => warn!("{kind} script `{line}` failed"),
        Outcome::TimedOut => warn!(
            "{kind} script `{line}` timed out after {:?} ({kind}_script_timeout): killed, with \
             the processes it started; the {kind} goes on",
            job.timeout
        ),
    }
}

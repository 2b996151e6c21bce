//! Notify scripts with keepalived's conventions: `notify` gets `INSTANCE|GROUP NAME STATE
//! PRIORITY`; `notify_master`, `notify_backup`, `notify_fault`, `notify_stop` run as written.
//! They run in the background: a slow or failing script never blocks the election. Each runs
//! in its own process group, without the agent's `NOTIFY_SOCKET`, and is killed with everything
//! it started after [`NOTIFY_TIMEOUT`] (ha-agent's default: no keepalived setting maps to it),
//! so a hung script does not stay forever, one more at each transition. The notify FIFOs are
//! in [`fifo`].

pub mod fifo;

use std::time::Duration;

/// How long a notify script may run before it and its process group are killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

use crate::{
    config::{Notify, NotifyScript, ScriptUser},
    track::script::RunAs,
    vrrp::instance::State,
};

/// Whose state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Instance,
    Group,
}

/// keepalived's word for a state in notify arguments; `Initialize` is STOP.
pub fn state_word(state: State) -> &'static str {
    match state {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "STOP",
    }
}

/// The commands to run for a transition to `to`: the state's own script, then `notify` with
/// its four arguments; each with the user its line names (`notify_master "…" USER [GROUP]`),
/// if any.
pub fn commands<'a>(
    notify: &'a Notify,
    subject: Subject,
    name: &str,
    to: State,
    priority: u8,
) -> Vec<(Vec<String>, Option<&'a ScriptUser>)> {
    let mut out = Vec::new();
    let specific = match to {
        State::Master => &notify.master,
        State::Backup => &notify.backup,
        State::Fault => &notify.fault,
        State::Initialize => &notify.stop,
    };
    if let Some(s) = specific {
        out.push((s.command.clone(), s.user.as_ref()));
    }
    if let Some(s) = &notify.notify {
        let mut argv = s.command.clone();
        argv.push(match subject {
            Subject::Instance => "INSTANCE".into(),
            Subject::Group => "GROUP".into(),
        });
        argv.push(name.to_owned());
        argv.push(state_word(to).to_owned());
        argv.push(priority.to_string());
        out.push((argv, s.user.as_ref()));
    }
    out
}

/// Commands to run, each with the user its line names.
pub type Commands<'a> = Vec<(Vec<String>, Option<&'a ScriptUser>)>;

/// The commands for an instance a reload removes (keepalived `clear_diff_vrrp`): with
/// `notify_deleted`, its script and `notify … DELETED PRIORITY`; without, FAULT's, as keepalived
/// always did, and nothing if it was in FAULT already. Also what the FIFO line says, if any.
pub fn deleted<'a>(
    notify: &'a Notify,
    name: &str,
    from: State,
    priority: u8,
) -> (Commands<'a>, Option<fifo::What>) {
    if !notify.notify_deleted {
        if from == State::Fault {
            return (Vec::new(), None);
        }
        let out = commands(notify, Subject::Instance, name, State::Fault, priority);
        return (out, Some(fifo::What::State(State::Fault)));
    }
    let mut out = Vec::new();
    if let Some(s) = &notify.deleted {
        out.push((s.command.clone(), s.user.as_ref()));
    }
    if let Some(s) = &notify.notify {
        let mut argv = s.command.clone();
        argv.extend([
            "INSTANCE".to_owned(),
            name.to_owned(),
            "DELETED".to_owned(),
            priority.to_string(),
        ]);
        out.push((argv, s.user.as_ref()));
    }
    (out, Some(fifo::What::Deleted))
}

/// The notify scripts of `notify`, each once.
pub fn scripts(notify: &Notify) -> impl Iterator<Item = &NotifyScript> {
    [
        &notify.notify,
        &notify.master,
        &notify.backup,
        &notify.fault,
        &notify.stop,
        &notify.deleted,
        &notify.master_rx_lower_pri,
    ]
    .into_iter()
    .flatten()
}

/// The users notify lines name, resolved at start: who a script with `user` runs as.
#[derive(Debug, Clone, Default)]
pub struct Users(Vec<(ScriptUser, RunAs)>);

impl Users {
    pub fn new(resolved: Vec<(ScriptUser, RunAs)>) -> Self {
        Self(resolved)
    }

    /// Who runs a script whose line names `user`: that user, else `default`
    /// (`global_defs { script_user }`).
    pub fn run_as(&self, user: Option<&ScriptUser>, default: Option<RunAs>) -> Option<RunAs> {
        match user {
            // preflight resolved every user a notify line names.
            Some(u) => self
                .0
                .iter()
                .find(|(k, _)| k == u)
                .map(|(_, r)| *r)
                .or(default),
            None => default,
        }
    }
}

/// Starts `argv` in the background; its exit is logged, and it is reaped; killed with its
/// process group after [`NOTIFY_TIMEOUT`].
pub fn spawn(argv: Vec<String>, run_as: Option<RunAs>) {
    spawn_with_timeout(argv, run_as, NOTIFY_TIMEOUT);
}

/// [`spawn`] with `timeout`; the task that waits for it, or None when it could not start.
pub fn spawn_with_timeout(
    argv: Vec<String>,
    run_as: Option<RunAs>,
    timeout: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    // Not killed when the agent exits: a notify_stop script runs to its end.
    let mut cmd = crate::track::script::command(&argv, run_as)?;
    match cmd.spawn() {
        Ok(mut child) => {
            let line = argv.join(" ");
            Some(tokio::spawn(async move {
                match tokio::time::timeout(timeout, child.wait()).await {
                    Ok(Ok(s)) if s.success() => tracing::debug!("notify `{line}` done"),
                    Ok(Ok(s)) => tracing::warn!("notify `{line}` failed: {s}"),
                    Ok(Err(e)) => tracing::warn!("notify `{line}`: {e}"),
                    Err(_) => {
                        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                            // SAFETY: kill(2) on the process group this child leads; it is not
                            // reaped yet, so the group id cannot have been reused.
                            unsafe { libc::kill(-pid, libc::SIGKILL) };
                        }
                        let _ = child.kill().await;
                        tracing::warn!(
                            "notify `{line}` still running after {timeout:?}: killed, with the \
                             processes it started"
                        );
                    }
                }
            }))
        }
        Err(e) => {
            tracing::warn!("notify `{}`: cannot start: {e}", argv.join(" "));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NotifyScript, Source};

    fn argvs(calls: Vec<(Vec<String>, Option<&ScriptUser>)>) -> Vec<Vec<String>> {
        calls.into_iter().map(|(argv, _)| argv).collect()
    }

    /// Regression: a hung notify script (and what it started) lived forever, in the agent's
    /// process group. (NOTIFY_SOCKET: the lab test operability::notify_scripts_...)
    #[tokio::test]
    async fn a_hung_notify_script_is_killed_with_its_group() {
        let dir = std::env::temp_dir().join(format!("ha-agent-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!(
                "sleep 30 & echo \"$! $(ps -o pgid= $$)\" > {}.tmp; mv {0}.tmp {0}; wait",
                out.display()
            ),
        ];
        // The timeout must leave a loaded CI machine time to start `sh` and `ps` and write the
        // file (500 ms did not, once, with 120 unit tests on two cores): killed before it
        // wrote, the script looked as if it never ran.
        let task = spawn_with_timeout(argv, None, Duration::from_secs(3)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while !out.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the script did not run"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let text = std::fs::read_to_string(&out).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        let (child, pgid) = (words[0], words[1]);
        // SAFETY: getpgrp(2) cannot fail.
        let ours = unsafe { libc::getpgrp() };
        assert_ne!(
            pgid,
            ours.to_string(),
            "the script runs in the agent's process group"
        );
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the timeout ends the wait")
            .unwrap();
        assert!(
            crate::testing::dies(child).await,
            "the script's child {child} outlived its timeout"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keepalived_argument_convention() {
        let script = |c: &str| {
            Some(NotifyScript {
                command: vec![c.to_owned()],
                user: None,
            })
        };
        let n = Notify {
            notify: script("/n.sh"),
            master: script("/m.sh"),
            stop: script("/s.sh"),
            ..Default::default()
        };
        assert_eq!(
            argvs(commands(&n, Subject::Instance, "VI_1", State::Master, 150)),
            vec![
                vec!["/m.sh".to_owned()],
                vec![
                    "/n.sh".into(),
                    "INSTANCE".into(),
                    "VI_1".into(),
                    "MASTER".into(),
                    "150".into()
                ]
            ]
        );
        assert_eq!(
            argvs(commands(&n, Subject::Group, "G", State::Initialize, 100))[1],
            vec![
                "/n.sh".to_owned(),
                "GROUP".into(),
                "G".into(),
                "STOP".into(),
                "100".into()
            ]
        );
        assert_eq!(
            commands(&n, Subject::Instance, "VI_1", State::Fault, 1).len(),
            1
        );
    }

    /// keepalived clear_diff_vrrp: DELETED with `notify_deleted`, else FAULT (none from FAULT).
    #[test]
    fn a_deleted_instance_reports_deleted_or_fault_as_keepalived() {
        let script = |c: &str| {
            Some(NotifyScript {
                command: vec![c.to_owned()],
                user: None,
            })
        };
        let mut n = Notify {
            notify: script("/n.sh"),
            fault: script("/f.sh"),
            deleted: script("/d.sh"),
            ..Default::default()
        };
        let (calls, what) = deleted(&n, "VI_1", State::Master, 100);
        assert_eq!(what, Some(fifo::What::State(State::Fault)));
        assert_eq!(argvs(calls)[0], vec!["/f.sh".to_owned()]);
        let (calls, what) = deleted(&n, "VI_1", State::Fault, 100);
        assert!(calls.is_empty() && what.is_none());
        n.notify_deleted = true;
        let (calls, what) = deleted(&n, "VI_1", State::Fault, 100);
        assert_eq!(what, Some(fifo::What::Deleted));
        assert_eq!(
            argvs(calls),
            vec![
                vec!["/d.sh".to_owned()],
                vec![
                    "/n.sh".to_owned(),
                    "INSTANCE".into(),
                    "VI_1".into(),
                    "DELETED".into(),
                    "100".into()
                ]
            ]
        );
    }

    /// A notify line's own user wins over `script_user`; a line without one runs as
    /// `script_user`.
    #[test]
    fn a_notify_line_runs_as_its_own_user() {
        let user = |name: &str| ScriptUser {
            user: name.to_owned(),
            group: None,
            at: Source {
                file: "keepalived.conf".into(),
                line: 1,
                col: 1,
            },
        };
        let n = Notify {
            master: Some(NotifyScript {
                command: vec!["/m.sh".into()],
                user: Some(user("www")),
            }),
            notify: Some(NotifyScript {
                command: vec!["/n.sh".into()],
                user: None,
            }),
            ..Default::default()
        };
        let www = RunAs { uid: 33, gid: 33 };
        let global = Some(RunAs { uid: 1, gid: 1 });
        let users = Users::new(vec![(user("www"), www)]);
        let calls = commands(&n, Subject::Instance, "VI_1", State::Master, 150);
        let who: Vec<Option<RunAs>> = calls
            .iter()
            .map(|(_, u)| users.run_as(*u, global))
            .collect();
        assert_eq!(who, vec![Some(www), global]);
        assert_eq!(scripts(&n).count(), 2);
    }
}

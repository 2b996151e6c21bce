//! Notify scripts with keepalived's conventions: `notify` gets `INSTANCE|GROUP NAME STATE
//! PRIORITY`; `notify_master`, `notify_backup`, `notify_fault`, `notify_stop` run as written.
//! They run in the background: a slow or failing script never blocks the election.

use std::process::Stdio;

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

/// The notify scripts of `notify`, each once.
pub fn scripts(notify: &Notify) -> impl Iterator<Item = &NotifyScript> {
    [
        &notify.notify,
        &notify.master,
        &notify.backup,
        &notify.fault,
        &notify.stop,
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

/// Starts `argv` in the background; its exit is logged, and it is reaped.
pub fn spawn(argv: Vec<String>, run_as: Option<RunAs>) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(r) = run_as {
        cmd.uid(r.uid).gid(r.gid);
    }
    match cmd.spawn() {
        Ok(mut child) => {
            let line = argv.join(" ");
            tokio::spawn(async move {
                match child.wait().await {
                    Ok(s) if s.success() => tracing::debug!("notify `{line}` done"),
                    Ok(s) => tracing::warn!("notify `{line}` failed: {s}"),
                    Err(e) => tracing::warn!("notify `{line}`: {e}"),
                }
            });
        }
        Err(e) => tracing::warn!("notify `{}`: cannot start: {e}", argv.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NotifyScript, Source};

    fn argvs(calls: Vec<(Vec<String>, Option<&ScriptUser>)>) -> Vec<Vec<String>> {
        calls.into_iter().map(|(argv, _)| argv).collect()
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

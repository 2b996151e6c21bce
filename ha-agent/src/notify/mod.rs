//! Notify scripts with keepalived's conventions: `notify` gets `INSTANCE|GROUP NAME STATE
//! PRIORITY`; `notify_master`, `notify_backup`, `notify_fault`, `notify_stop` run as written.
//! They run in the background: a slow or failing script never blocks the election.

use std::process::Stdio;

use crate::{config::Notify, track::script::RunAs, vrrp::instance::State};

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
/// its four arguments.
pub fn commands(
    notify: &Notify,
    subject: Subject,
    name: &str,
    to: State,
    priority: u8,
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let specific = match to {
        State::Master => &notify.master,
        State::Backup => &notify.backup,
        State::Fault => &notify.fault,
        State::Initialize => &notify.stop,
    };
    if let Some(s) = specific {
        out.push(s.command.clone());
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
        out.push(argv);
    }
    out
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
    use crate::config::NotifyScript;

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
            commands(&n, Subject::Instance, "VI_1", State::Master, 150),
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
            commands(&n, Subject::Group, "G", State::Initialize, 100)[1],
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
}

//! MISC_CHECK (check_misc.c): runs `misc_path` (as `user`, else `script_user`, as every
//! script: [`crate::track::script::command`]), killing its process group at `misc_timeout`
//! (default `delay_loop`). Exit 0 is up, anything else down; with `misc_dynamic`, 1 is down and
//! 2..=255 is up with weight code − 2.

use std::time::{Duration, Instant};

use super::Attempt;
use crate::config::Config;
use crate::config::lvs::MiscCheck;
use crate::lvs::Verdict;
use crate::track::script::{self, RunAs};

/// The user `misc_path` runs as: its `user`, else `script_user`, else keepalived's default
/// script user when it exists, else the agent's own (`Ok(None)`). A user that cannot be resolved
/// is an error: the script is not run as the agent instead.
pub(super) fn run_as(misc: &MiscCheck, config: &Config) -> Result<Option<RunAs>, String> {
    let resolve = |user| script::resolve_user(user).map_err(|e| format!("{e:#}"));
    if let Some(user) = &misc.user {
        return resolve(user).map(Some);
    }
    let global = config
        .global
        .script_user
        .as_ref()
        .map(resolve)
        .transpose()?;
    Ok(script::default_run_as(global, script::lookup_user))
}

pub(super) async fn check(
    misc: &MiscCheck,
    delay_loop: Duration,
    run_as: &Result<Option<RunAs>, String>,
) -> Attempt {
    let start = Instant::now();
    let timeout = misc.timeout.unwrap_or(delay_loop);
    let shown = misc.command.join(" ");
    let run_as = match run_as {
        Ok(r) => *r,
        Err(why) => return Attempt::down(format!("Misc script {shown} not run: {why}")),
    };
    let Some(mut cmd) = script::command(&misc.command, run_as) else {
        return Attempt::down("MISC_CHECK: empty misc_path");
    };
    // An aborted checker takes its script with it.
    cmd.kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Attempt::down(format!("Misc script {shown} cannot start: {e}")),
    };
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Attempt::down(format!("Misc script {shown}: wait: {e}")),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) on the process group this child leads; it is not reaped
                // yet, so the group id cannot have been reused.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            // Reaped: no zombie is left behind.
            let _ = child.kill().await;
            return Attempt::down(format!("Misc script {shown} timed out"));
        }
    };
    let latency = Some(start.elapsed());
    let verdict = match status.code() {
        Some(0) => Verdict::Up,
        Some(code @ 2..=255) if misc.dynamic => Verdict::UpWeight(code as u32 - 2),
        Some(code) => Verdict::Down(format!("Misc script {shown} exited with status {code}")),
        None => {
            use std::os::unix::process::ExitStatusExt as _;
            Verdict::Down(format!(
                "Misc script {shown} failed due to signal {}",
                status.signal().unwrap_or(0)
            ))
        }
    };
    Attempt { verdict, latency }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lvs::{CheckKind, MiscCheck};
    use crate::lvs::check::testing::{checker, round};

    fn misc(script: &str, dynamic: bool, timeout: Option<Duration>) -> MiscCheck {
        MiscCheck {
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout,
            dynamic,
            user: None,
        }
    }

    async fn verdict(m: MiscCheck) -> Verdict {
        check(&m, Duration::from_secs(5), &Ok(None)).await.verdict
    }

    #[tokio::test]
    async fn exit_codes_are_up_down_or_a_dynamic_weight() {
        assert_eq!(verdict(misc("exit 0", false, None)).await, Verdict::Up);
        assert!(matches!(
            verdict(misc("exit 3", false, None)).await,
            Verdict::Down(w) if w.contains("exited with status 3")
        ));
        // misc_dynamic: 0 up, 1 down, 2..=255 up with weight code - 2.
        assert_eq!(verdict(misc("exit 0", true, None)).await, Verdict::Up);
        assert!(matches!(
            verdict(misc("exit 1", true, None)).await,
            Verdict::Down(_)
        ));
        assert_eq!(
            verdict(misc("exit 2", true, None)).await,
            Verdict::UpWeight(0)
        );
        assert_eq!(
            verdict(misc("exit 12", true, None)).await,
            Verdict::UpWeight(10)
        );
        assert_eq!(
            verdict(misc("exit 255", true, None)).await,
            Verdict::UpWeight(253)
        );
    }

    #[tokio::test]
    async fn misc_timeout_kills_the_script_and_what_it_started() {
        let dir = std::env::temp_dir().join(format!("ha-misc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        // The script starts a child (its pid in the file) and waits for it.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let start = Instant::now();
        let v = verdict(misc(&script, false, Some(Duration::from_millis(300)))).await;
        assert!(
            matches!(&v, Verdict::Down(w) if w.contains("timed out")),
            "{v:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            crate::testing::dies(pid.trim()).await,
            "sleep {pid} survived"
        );
    }

    #[tokio::test]
    async fn a_user_that_does_not_exist_is_down_never_the_agent_s_own() {
        let mut m = misc("exit 0", false, None);
        m.user = Some(crate::config::ScriptUser {
            user: "no-such-user-ha-lvschk".into(),
            group: None,
            at: crate::config::Source {
                file: "t.conf".into(),
                line: 1,
                col: 1,
            },
        });
        let config = crate::config::parse_str("global_defs {\n}\n", std::path::Path::new("t.conf"))
            .unwrap()
            .config;
        let run_as = run_as(&m, &config);
        assert!(run_as.is_err());
        let a = check(&m, Duration::from_secs(5), &run_as).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("does not exist")),
            "{a:?}"
        );
    }

    #[tokio::test]
    async fn misc_timeout_defaults_to_delay_loop() {
        let mut c = checker(
            CheckKind::Misc(misc("sleep 30", false, None)),
            "127.0.0.1:1".parse().unwrap(),
        );
        c.delay_loop = Duration::from_millis(200);
        let start = Instant::now();
        let a = round(&c).await;
        assert!(
            matches!(&a.verdict, Verdict::Down(w) if w.contains("timed out")),
            "{a:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_script_that_fails_once_is_up_with_one_retry() {
        let dir = std::env::temp_dir().join(format!("ha-misc-retry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let flag = dir.join("failed-once");
        // Fails the first time (creating the flag), succeeds after.
        let script = format!("test -e {0} && exit 0; touch {0}; exit 1", flag.display());
        let mut c = checker(
            CheckKind::Misc(misc(&script, false, None)),
            "127.0.0.1:1".parse().unwrap(),
        );
        c.retry = 1;
        let a = round(&c).await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(a.verdict, Verdict::Up);
    }
}

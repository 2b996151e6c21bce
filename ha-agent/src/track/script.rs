//! `vrrp_script`: run a check every `interval`, kill it at `timeout`, and report a change of
//! state after `rise` successes or `fall` failures in a row (keepalived vrrp_track.c).

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{process::Command, sync::mpsc};

use crate::config::{ScriptUser, VrrpScript};

/// A script's state changed: `index` into `Config::scripts` of the configuration `generation`
/// (the runtime drops updates of an earlier one: a reload renumbers the scripts), `up` =
/// succeeding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptUpdate {
    pub index: usize,
    pub generation: u64,
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

/// keepalived's default script user (lib/notify.c `get_default_script_user`): scripts without
/// a user, when `script_user` is not set, run as it when it exists.
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// What runs a script with no user of its own: `script_user`, else [`DEFAULT_SCRIPT_USER`]
/// when `lookup` finds it, else the agent itself (None).
pub fn default_run_as(
    script_user: Option<RunAs>,
    lookup: impl FnOnce(&str) -> Option<RunAs>,
) -> Option<RunAs> {
    script_user.or_else(|| lookup(DEFAULT_SCRIPT_USER))
}

/// Looks a user up by name in the system's user database (None when absent).
pub fn lookup_user(name: &str) -> Option<RunAs> {
    resolve_user(&ScriptUser {
        user: name.to_owned(),
        group: None,
        at: crate::config::Source {
            file: std::path::PathBuf::new(),
            line: 0,
            col: 0,
        },
    })
    .ok()
}

/// What `enable_script_security` makes of a script (keepalived's `check_script_secure`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// It runs as neither uid 0 nor gid 0, and is not set-uid/gid root: nothing to protect.
    NotRoot,
    /// It runs as root, and no component of its path is writable by anyone but root.
    Secure,
    /// It runs as root and a non-root user could change what runs: why.
    Insecure(String),
}

/// The program a command runs, found the way it will be executed: a name with a `/` as is
/// (relative to the current directory), a bare name through `path_env` (`$PATH`; unset:
/// `/bin:/usr/bin`, as execvp), the first entry holding an executable regular file.
pub fn resolve_program(program: &str, path_env: Option<&std::ffi::OsStr>) -> Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let dirs = path_env.unwrap_or_else(|| std::ffi::OsStr::new("/bin:/usr/bin"));
    for dir in std::env::split_paths(dirs) {
        // An empty entry is the current directory (execvp).
        let candidate = if dir.as_os_str().is_empty() {
            PathBuf::from(program)
        } else {
            dir.join(program)
        };
        if std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0) {
            return Ok(candidate);
        }
    }
    bail!(
        "script {program}: not found in PATH ({}): write its full path, or install it",
        dirs.to_string_lossy()
    )
}

/// keepalived's `check_script_secure` for a script that runs as `run_as` (None: the agent's own
/// user): the program is found as it will be executed ([`resolve_program`]); when it runs as
/// root (uid or gid 0, or it is set-uid/set-gid root), every component of the path as written
/// and of its real path (symlinks resolved) must be root-owned and not writable by a non-root
/// group or by others (a directory with the sticky bit excepted), and be a directory, a
/// regular file or a symlink. Errors: the script cannot be found or read.
pub fn check_secure(
    program: &str,
    run_as: Option<RunAs>,
    path_env: Option<&std::ffi::OsStr>,
) -> Result<Security> {
    let found = resolve_program(program, path_env)?;
    let absolute = if found.is_absolute() {
        found.clone()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(&found)
    };
    let real =
        std::fs::canonicalize(&absolute).with_context(|| format!("script {}", found.display()))?;
    let meta = std::fs::metadata(&real).with_context(|| format!("script {}", found.display()))?;
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = run_as.map_or_else(
        || unsafe { (libc::geteuid(), libc::getegid()) },
        |r| (r.uid, r.gid),
    );
    let mode = meta.mode();
    let setuid_root = meta.uid() == 0 && mode & 0o4100 == 0o4100;
    let setgid_root = meta.gid() == 0 && mode & 0o2010 == 0o2010;
    if uid != 0 && gid != 0 && !setuid_root && !setgid_root {
        return Ok(Security::NotRoot);
    }
    for path in [&absolute, &real] {
        if let Some(why) = insecure_component(path) {
            let shown = if path == &real && real != absolute {
                format!(" (real path {})", real.display())
            } else {
                String::new()
            };
            return Ok(Security::Insecure(format!(
                "script {}{shown} is not secure: {why}, so a non-root user could change what \
                 runs as root; fix the permissions (root-owned, not writable by a non-root group \
                 or others, directories included), run it as another user (script_user, or the \
                 script's `user`), or remove enable_script_security",
                found.display(),
            )));
        }
    }
    Ok(Security::Secure)
}

/// The first component of `path` (from `/` down, not following symlinks) that a non-root user
/// can change, and why (keepalived's `check_security`).
fn insecure_component(path: &Path) -> Option<String> {
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part);
        let meta = match std::fs::symlink_metadata(&prefix) {
            Ok(m) => m,
            Err(e) => return Some(format!("{}: {e}", prefix.display())),
        };
        let kind = meta.file_type();
        let mode = meta.mode();
        if !(kind.is_dir() || kind.is_file() || kind.is_symlink()) {
            return Some(format!(
                "{} is neither a directory, a file nor a symlink",
                prefix.display()
            ));
        }
        if meta.uid() != 0 {
            return Some(format!(
                "{} is owned by uid {}, not root",
                prefix.display(),
                meta.uid()
            ));
        }
        let sticky_dir = kind.is_dir() && mode & 0o1000 != 0;
        let group_writable = meta.gid() != 0 && mode & 0o020 != 0;
        if (kind.is_file() || (kind.is_dir() && !sticky_dir))
            && (group_writable || mode & 0o002 != 0)
        {
            return Some(format!(
                "{} is writable by {} (mode {:o})",
                prefix.display(),
                if mode & 0o002 != 0 {
                    "others".to_owned()
                } else {
                    format!("group {}", meta.gid())
                },
                mode & 0o7777
            ));
        }
    }
    None
}

/// A script's command as the agent runs every script (check, notify, FIFO, start and stop):
/// no stdio; without the agent's `NOTIFY_SOCKET` (systemd's socket is not the script's to write
/// to); in its own process group, so that a timeout or a stop kills what it started too (a
/// `sleep` or `curl` under `sh`), as keepalived's kill(-pid); as `run_as`. `None` for an empty
/// command line.
pub fn command(argv: &[String], run_as: Option<RunAs>) -> Option<Command> {
    let (program, args) = argv.split_first()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("NOTIFY_SOCKET")
        .process_group(0);
    if let Some(r) = run_as {
        cmd.uid(r.uid).gid(r.gid);
    }
    Some(cmd)
}

/// Runs `argv` once, killing it at `timeout`.
pub async fn run_once(argv: &[String], timeout: Duration, run_as: Option<RunAs>) -> Outcome {
    let Some(mut cmd) = command(argv, run_as) else {
        return Outcome::Failure;
    };
    let program = &argv[0];
    cmd.kill_on_drop(true);
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
    generation: u64,
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
                    generation,
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

    /// A directory under the target directory (root-owned, not world-writable, unlike /tmp),
    /// removed when dropped.
    struct SecDir(PathBuf);

    impl SecDir {
        fn new(name: &str) -> SecDir {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target")
                .join(format!("ha-script-sec-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let dir = std::fs::canonicalize(dir).unwrap();
            chmod(&dir, 0o755);
            SecDir(dir)
        }

        fn script(&self, rel: &str, mode: u32) -> PathBuf {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
            chmod(&p, mode);
            p
        }
    }

    impl Drop for SecDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn check(p: &Path, run_as: Option<RunAs>) -> Security {
        check_secure(p.to_str().unwrap(), run_as, None).unwrap()
    }

    #[test]
    fn script_security_checks_every_component_as_keepalived() {
        let d = SecDir::new("components");
        let ok = d.script("ok/chk", 0o755);
        chmod(&d.0.join("ok"), 0o755);
        assert_eq!(check(&ok, None), Security::Secure);
        // The file writable by others, then its directory.
        chmod(&ok, 0o757);
        assert!(
            matches!(check(&ok, None), Security::Insecure(w) if w.contains("writable by others"))
        );
        chmod(&ok, 0o755);
        chmod(&d.0.join("ok"), 0o777);
        assert!(matches!(check(&ok, None), Security::Insecure(w) if w.contains("/ok is writable")));
        // A world-writable directory with the sticky bit (as /tmp) is fine.
        chmod(&d.0.join("ok"), 0o1777);
        assert_eq!(check(&ok, None), Security::Secure);
        // Group-writable with group root is fine (keepalived), as another group it is not.
        chmod(&d.0.join("ok"), 0o775);
        assert_eq!(check(&ok, None), Security::Secure);
        std::os::unix::fs::chown(&ok, None, Some(1234)).unwrap();
        chmod(&ok, 0o775);
        assert!(matches!(check(&ok, None), Security::Insecure(w) if w.contains("group 1234")));
        std::os::unix::fs::chown(&ok, Some(1234), Some(0)).unwrap();
        chmod(&ok, 0o755);
        assert!(matches!(check(&ok, None), Security::Insecure(w) if w.contains("uid 1234")));
        // Run as another user: nothing to protect.
        let user = Some(RunAs {
            uid: 1234,
            gid: 1234,
        });
        assert_eq!(check(&ok, user), Security::NotRoot);
        // ... unless it is set-uid root.
        std::os::unix::fs::chown(&ok, Some(0), Some(0)).unwrap();
        chmod(&ok, 0o4755);
        assert_eq!(check(&ok, user), Security::Secure);
    }

    #[test]
    fn script_security_checks_the_real_path_behind_a_symlink() {
        let d = SecDir::new("symlink");
        let real = d.script("open/real", 0o755);
        chmod(&d.0.join("open"), 0o777);
        std::fs::create_dir_all(d.0.join("safe")).unwrap();
        chmod(&d.0.join("safe"), 0o755);
        let link = d.0.join("safe/chk");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // The path as written is all root's; what it runs is in a directory anyone can write.
        match check(&link, None) {
            Security::Insecure(w) => {
                assert!(
                    w.contains("real path") && w.contains("/open is writable"),
                    "{w}"
                )
            }
            other => panic!("{other:?}"),
        }
        chmod(&d.0.join("open"), 0o755);
        assert_eq!(check(&link, None), Security::Secure);
        // A symlink in a writable directory is a component anyone could replace.
        let planted = d.0.join("open/chk");
        std::os::unix::fs::symlink(d.0.join("safe/chk"), &planted).unwrap();
        chmod(&d.0.join("open"), 0o777);
        assert!(matches!(check(&planted, None), Security::Insecure(_)));
    }

    #[test]
    fn a_bare_name_is_checked_where_path_finds_it() {
        let d = SecDir::new("path");
        // The first PATH entry holds a non-executable `chk` (skipped, as execvp), the second
        // an executable one in a world-writable directory: that is what would run.
        d.script("first/chk", 0o644);
        d.script("open/chk", 0o755);
        chmod(&d.0.join("open"), 0o777);
        d.script("safe/chk", 0o755);
        let path =
            std::env::join_paths([d.0.join("first"), d.0.join("open"), d.0.join("safe")]).unwrap();
        assert_eq!(
            resolve_program("chk", Some(&path)).unwrap(),
            d.0.join("open/chk")
        );
        match check_secure("chk", None, Some(&path)).unwrap() {
            Security::Insecure(w) => assert!(w.contains("open/chk"), "{w}"),
            other => panic!("{other:?}"),
        }
        let safe = std::env::join_paths([d.0.join("safe")]).unwrap();
        assert_eq!(
            check_secure("chk", None, Some(&safe)).unwrap(),
            Security::Secure
        );
        let e = check_secure("nonexistent-chk", None, Some(&safe)).unwrap_err();
        assert!(e.to_string().contains("not found in PATH"), "{e}");
    }

    #[test]
    fn keepalived_script_is_the_default_user_when_it_exists() {
        let ks = RunAs { uid: 990, gid: 990 };
        let configured = RunAs { uid: 33, gid: 33 };
        let found = |name: &str| (name == DEFAULT_SCRIPT_USER).then_some(ks);
        assert_eq!(default_run_as(Some(configured), found), Some(configured));
        assert_eq!(default_run_as(None, found), Some(ks));
        assert_eq!(default_run_as(None, |_| None), None);
    }

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
        // Long enough for a loaded machine to start `sh` and write the pid before the kill.
        assert_eq!(
            run_once(&argv, Duration::from_secs(2), None).await,
            Outcome::TimedOut
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            crate::testing::dies(pid.trim()).await,
            "the script's child {} outlived its timeout",
            pid.trim()
        );
    }
}

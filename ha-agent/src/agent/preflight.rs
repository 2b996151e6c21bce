//! Everything `run` checks before it changes anything on the host, in one place: `run` calls
//! [`preflight`] before its pid file, control socket and data path, and `check-config` calls
//! the same function through [`check_config`], so that `check-config` exits 0 exactly when
//! `run` would start with the file.
//!
//! Read-only: it reads the interfaces and their addresses (rtnetlink dumps), the user and
//! group databases, and the scripts' and track files' metadata. Nothing is added, bound,
//! loaded or written.

use std::{collections::HashMap, path::Path};

use anyhow::{Context, Result, anyhow, bail};

use super::plan::{self, IfFacts, Plan};
use crate::{
    config::{Config, ScriptUser, VrrpScript},
    net::Netlink,
    notify,
    track::script::{self, RunAs},
};

/// A `vrrp_script` to supervise: index into `Config::scripts`, the script, and who it runs as.
pub type ScriptJob = (usize, VrrpScript, Option<RunAs>);

/// What the checks found: what `run` goes on with.
#[derive(Debug)]
pub struct Checked {
    /// The interfaces the configuration names, as read from the host.
    pub facts: HashMap<String, IfFacts>,
    pub plan: Plan,
    /// `global_defs { script_user }`, resolved.
    pub run_as: Option<RunAs>,
    /// The scripts a tracker uses, with their users resolved and `enable_script_security`
    /// checked.
    pub scripts: Vec<ScriptJob>,
    /// The users notify lines name (`notify_master "…" USER [GROUP]`), resolved.
    pub notify_users: notify::Users,
}

/// The checks `run` makes before it touches the host, in the order it makes them: at least one
/// `vrrp_instance`, then [`check`]. `file` is the configuration's path (for the one error that
/// has no line).
pub async fn preflight(config: &Config, file: &Path, netlink: &Netlink) -> Result<Checked> {
    if config.instances.is_empty() {
        bail!(
            "{}: no vrrp_instance: nothing to run; add a `vrrp_instance NAME {{ … }}` block",
            file.display()
        );
    }
    check(config, netlink).await
}

/// [`preflight`] without the tokio runtime `run` has: for `check-config`.
pub fn check_config(config: &Config, file: &Path) -> Result<Checked> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        let netlink = Netlink::new().context("opening rtnetlink")?;
        preflight(config, file, &netlink).await
    })
}

/// The checks of a configuration that has instances (a reload may have none: it stops them
/// all): every interface exists, the plan builds from the interfaces' facts, the script users
/// exist, the scripts pass `enable_script_security`, and the track files can be created.
pub(super) async fn check(config: &Config, netlink: &Netlink) -> Result<Checked> {
    // Every missing interface at once, in file order.
    super::check_interfaces(config).map_err(|e| anyhow!("{e}"))?;
    let mut facts = HashMap::new();
    for name in plan::interfaces(config) {
        let info = netlink.interface(&name).await.map_err(|e| match e {
            crate::net::LinkError::NoSuchInterface { .. } => {
                anyhow!("{}", super::missing_interface(config, &name))
            }
            e => anyhow!("interface {name}: {e}"),
        })?;
        facts.insert(
            name,
            IfFacts {
                index: info.index,
                mac: info.mac,
                primary_v4: info.primary_v4,
                link_local_v6: info.link_local_v6,
                running: info.running,
            },
        );
    }
    let plan = plan::build(config, &facts)?;
    let run_as = config
        .global
        .script_user
        .as_ref()
        .map(|u| {
            script::resolve_user(u).with_context(|| format!("{}: global_defs script_user", u.at))
        })
        .transpose()?;
    let scripts = scripts(config, &plan, run_as)?;
    let notify_users = notify_users(config, run_as)?;
    track_files(config)?;
    Ok(Checked {
        facts,
        plan,
        run_as,
        scripts,
        notify_users,
    })
}

/// The scripts to supervise (those a tracker uses), with their users resolved and
/// `enable_script_security` checked.
fn scripts(config: &Config, plan: &Plan, run_as: Option<RunAs>) -> Result<Vec<ScriptJob>> {
    let used = |name: &str| {
        plan.instances
            .iter()
            .any(|i| i.track_scripts.iter().any(|t| t.name == name))
            || config
                .sync_groups
                .iter()
                .any(|g| g.track_scripts.iter().any(|t| t.name == name))
    };
    let mut jobs = Vec::new();
    for (index, s) in config.scripts.iter().enumerate() {
        if !used(&s.name) {
            continue;
        }
        let run_as = match &s.user {
            Some(u) => Some(
                script::resolve_user(u)
                    .with_context(|| format!("{}: vrrp_script {}", u.at, s.name))?,
            ),
            None => run_as,
        };
        check_secure_if_root(
            config,
            run_as,
            &s.command,
            &format!("{}: vrrp_script {}", s.source, s.name),
        )?;
        jobs.push((index, s.clone(), run_as));
    }
    Ok(jobs)
}

/// The notify scripts of every instance and sync group: the users their lines name resolved
/// (keepalived runs a notify script as its own user, else `script_user`), and those that run
/// as root checked by `enable_script_security`, as keepalived checks them.
fn notify_users(config: &Config, run_as: Option<RunAs>) -> Result<notify::Users> {
    let owners = config
        .instances
        .iter()
        .map(|i| (format!("vrrp_instance {}", i.name), &i.notify, &i.source))
        .chain(
            config
                .sync_groups
                .iter()
                .map(|g| (format!("vrrp_sync_group {}", g.name), &g.notify, &g.source)),
        );
    let mut resolved: Vec<(ScriptUser, RunAs)> = Vec::new();
    for (owner, n, at) in owners {
        for s in notify::scripts(n) {
            let runs_as = match &s.user {
                Some(u) => {
                    let r = match resolved.iter().find(|(k, _)| k == u) {
                        Some((_, r)) => *r,
                        None => {
                            let r = script::resolve_user(u)
                                .with_context(|| format!("{}: {owner}: notify user", u.at))?;
                            resolved.push((u.clone(), r));
                            r
                        }
                    };
                    Some(r)
                }
                None => run_as,
            };
            check_secure_if_root(
                config,
                runs_as,
                &s.command,
                &format!("{at}: {owner}: notify script"),
            )?;
        }
    }
    Ok(notify::Users::new(resolved))
}

/// `enable_script_security`: a script that runs as root (no user, or uid 0) must pass
/// `script::check_secure`; `what` names it in the error.
fn check_secure_if_root(
    config: &Config,
    run_as: Option<RunAs>,
    command: &[String],
    what: &str,
) -> Result<()> {
    if !config.global.enable_script_security || run_as.is_some_and(|r| r.uid != 0) {
        return Ok(());
    }
    let program = command
        .first()
        .map(Path::new)
        .ok_or_else(|| anyhow!("{what}: empty script"))?;
    script::check_secure(program).with_context(|| what.to_owned())
}

/// `track_file … init_file`: the file is written at start, so its directory must exist.
fn track_files(config: &Config) -> Result<()> {
    for f in &config.track_files {
        let Some(init) = f.init_file else { continue };
        if !init.overwrite && f.file.exists() {
            continue;
        }
        let dir = match f.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            bail!(
                "{}: track_file {}: init_file: {} is not a directory, so {} cannot be created: \
                 create the directory, or change `file`",
                f.source,
                f.name,
                dir.display(),
                f.file.display()
            );
        }
    }
    Ok(())
}

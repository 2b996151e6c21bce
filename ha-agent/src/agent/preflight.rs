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
    /// What does not stop a start but an operator must hear (keepalived's SECURITY VIOLATION).
    pub warnings: Vec<String>,
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
    // keepalived's config test enters it too: the interfaces are checked there.
    if let Some(ns) = &config.global.net_namespace {
        super::netns::enter(ns)?;
    }
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
    vmac_facts(config, &plan, netlink, &mut facts).await?;
    let script_user = config
        .global
        .script_user
        .as_ref()
        .map(|u| {
            script::resolve_user(u).with_context(|| format!("{}: global_defs script_user", u.at))
        })
        .transpose()?;
    let run_as = script::default_run_as(script_user, script::lookup_user);
    let mut audit = ScriptAudit::default();
    let scripts = scripts(config, &plan, run_as, &mut audit)?;
    let notify_users = notify_users(config, run_as, &mut audit)?;
    track_files(config)?;
    let warnings: Vec<String> = audit
        .violation(config.global.enable_script_security)
        .into_iter()
        .collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok(Checked {
        facts,
        plan,
        run_as,
        scripts,
        notify_users,
        warnings,
    })
}

/// The `use_vmac` macvlans' facts: as read when one of ours is there, else what it will be
/// once created (index 0 until then: [`crate::agent`]'s run fills it in). A name held by an
/// interface ha-agent did not create is refused here, before anything is touched.
async fn vmac_facts(
    config: &Config,
    plan: &Plan,
    netlink: &Netlink,
    facts: &mut HashMap<String, IfFacts>,
) -> Result<()> {
    for (ip, inst) in plan.instances.iter().zip(&config.instances) {
        for v in ip.vmac_specs(facts) {
            let at = format!("{}: vrrp_instance {}: use_vmac", inst.source, inst.name);
            let link = netlink
                .vmac_link(&v.name)
                .await
                .with_context(|| at.clone())?;
            if link.as_ref().is_some_and(|l| !l.ours()) {
                let e = crate::net::vmac::VmacError::NotOurs {
                    name: v.name.clone(),
                };
                bail!("{at}: {e}");
            }
            let base = &facts[&v.base];
            let fact = IfFacts {
                index: link.as_ref().map_or(0, |l| l.index),
                mac: Some(v.mac),
                primary_v4: None,
                // The source of unsolicited NAs from it: the base's, as its adverts' (no copy).
                link_local_v6: base.link_local_v6,
                running: base.running,
            };
            facts.insert(v.name.clone(), fact);
        }
    }
    Ok(())
}

/// What the script checks saw across every script: for keepalived's SECURITY VIOLATION warning.
#[derive(Debug, Default, PartialEq, Eq)]
struct ScriptAudit {
    /// A script runs as root (uid or gid 0, or set-uid/gid root).
    root: bool,
    /// A script running as root fails the check (not enforced: enable_script_security is off).
    insecure: bool,
}

impl ScriptAudit {
    /// keepalived's warning (core/main.c) when scripts run as root without
    /// `enable_script_security`.
    fn violation(&self, enable_script_security: bool) -> Option<String> {
        (self.root && !enable_script_security).then(|| {
            format!(
                "SECURITY VIOLATION - scripts are being executed but script_security not \
                 enabled{}: add enable_script_security to global_defs, and script_user (or \
                 create the user keepalived_script) so scripts do not run as root",
                if self.insecure {
                    " and there are insecure scripts"
                } else {
                    ""
                }
            )
        })
    }
}

/// The scripts to supervise (those a tracker uses), with their users resolved and
/// `enable_script_security` checked.
fn scripts(
    config: &Config,
    plan: &Plan,
    run_as: Option<RunAs>,
    audit: &mut ScriptAudit,
) -> Result<Vec<ScriptJob>> {
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
            audit,
        )?;
        jobs.push((index, s.clone(), run_as));
    }
    Ok(jobs)
}

/// The notify scripts of every instance and sync group: the users their lines name resolved
/// (keepalived runs a notify script as its own user, else `script_user`), and those that run
/// as root checked by `enable_script_security`, as keepalived checks them.
fn notify_users(
    config: &Config,
    run_as: Option<RunAs>,
    audit: &mut ScriptAudit,
) -> Result<notify::Users> {
    let lvs = lvs_scripts(config);
    let owners = config
        .instances
        .iter()
        .map(|i| {
            let owner = format!("vrrp_instance {}", i.name);
            let scripts: Vec<_> = notify::scripts(&i.notify).collect();
            (i.source.to_string(), owner, scripts)
        })
        .chain(config.sync_groups.iter().map(|g| {
            let owner = format!("vrrp_sync_group {}", g.name);
            (
                g.source.to_string(),
                owner,
                notify::scripts(&g.notify).collect(),
            )
        }))
        // So do the startup and shutdown scripts.
        .chain([
            (
                "global_defs".to_owned(),
                "startup_script".to_owned(),
                config.global.startup_script.iter().collect(),
            ),
            (
                "global_defs".to_owned(),
                "shutdown_script".to_owned(),
                config.global.shutdown_script.iter().collect(),
            ),
        ])
        // The FIFO scripts run as their line's user too.
        .chain(
            [&config.global.notify_fifo, &config.global.vrrp_notify_fifo]
                .into_iter()
                .filter(|f| f.path.is_some())
                .map(|f| {
                    let at = "global_defs".to_owned();
                    (at, "notify fifo".to_owned(), f.script.iter().collect())
                }),
        )
        .chain(
            lvs.iter()
                .map(|(at, owner, s)| (at.clone(), owner.clone(), s.iter().collect())),
        );
    let mut resolved: Vec<(ScriptUser, RunAs)> = Vec::new();
    for (at, owner, scripts) in owners {
        for s in scripts {
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
                audit,
            )?;
        }
    }
    Ok(notify::Users::new(resolved))
}

/// keepalived's LVS half: `quorum_up`/`quorum_down`, `notify_up`/`notify_down` and MISC_CHECK's
/// command, each with where it is written and whose it is, checked as notify scripts are.
fn lvs_scripts(config: &Config) -> Vec<(String, String, Vec<crate::config::NotifyScript>)> {
    let mut out = Vec::new();
    for vs in &config.lvs.virtual_servers {
        let quorum = [&vs.quorum_up, &vs.quorum_down];
        let owner = format!("virtual_server {}", vs.addr);
        out.push((
            vs.at.to_string(),
            owner,
            quorum.into_iter().flatten().cloned().collect(),
        ));
        for rs in &vs.real_servers {
            let owner = format!("real_server {}", rs.addr);
            let notify = [&rs.notify_up, &rs.notify_down];
            out.push((
                rs.at.to_string(),
                owner.clone(),
                notify.into_iter().flatten().cloned().collect(),
            ));
            for c in &rs.checkers {
                if let crate::config::lvs::CheckKind::Misc(m) = &c.kind {
                    let script = crate::config::NotifyScript {
                        command: m.command.clone(),
                        user: m.user.clone(),
                    };
                    out.push((
                        c.at.to_string(),
                        format!("MISC_CHECK of {owner}"),
                        vec![script],
                    ));
                }
            }
        }
    }
    out
}

/// `enable_script_security`: a script that runs as root must pass `script::check_secure`
/// (found through `$PATH` as it will be run, symlinks resolved, every component checked);
/// `what` names it in the error. Without it, what is found goes into `audit` (the warning).
fn check_secure_if_root(
    config: &Config,
    run_as: Option<RunAs>,
    command: &[String],
    what: &str,
    audit: &mut ScriptAudit,
) -> Result<()> {
    let program = command
        .first()
        .ok_or_else(|| anyhow!("{what}: empty script"))?;
    let enforce = config.global.enable_script_security;
    match script::check_secure(program, run_as, std::env::var_os("PATH").as_deref()) {
        Ok(script::Security::NotRoot) => {}
        Ok(script::Security::Secure) => audit.root = true,
        Ok(script::Security::Insecure(why)) if enforce => bail!("{what}: {why}"),
        Ok(script::Security::Insecure(_)) => {
            audit.root = true;
            audit.insecure = true;
        }
        Err(e) if enforce => return Err(e.context(what.to_owned())),
        // Not found: it fails when run; who would run it is what the warning needs.
        Err(_) => audit.root |= run_as.is_none_or(|r| r.uid == 0 || r.gid == 0),
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_as_root_without_script_security_warn_as_keepalived() {
        let none = ScriptAudit::default();
        assert_eq!(none.violation(false), None);
        let root = ScriptAudit {
            root: true,
            insecure: false,
        };
        let w = root.violation(false).unwrap();
        assert!(
            w.starts_with(
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled:"
            ),
            "{w}"
        );
        assert_eq!(root.violation(true), None);
        let insecure = ScriptAudit {
            root: true,
            insecure: true,
        };
        assert!(
            insecure
                .violation(false)
                .unwrap()
                .contains("not enabled and there are insecure scripts")
        );
    }
}

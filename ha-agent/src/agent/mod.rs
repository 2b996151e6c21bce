//! The daemon: reads the configuration, opens what it needs on the host, and drives the state
//! machines from adverts, timers, trackers, link events and signals.
//!
//! Start-up order, so that a bad configuration changes nothing and a crashed run leaves
//! nothing behind: parse → [`preflight`] (interfaces, plan, script users and permissions: the
//! checks `check-config` makes, with the same function) → pid file → control socket → remove
//! stale VIPs of this configuration → data path (XDP/TC, or sockets) with every VIP fenced →
//! sockets → Startup. An error before the pid file exits with nothing touched.

mod conflict;
pub mod netns;
pub mod pidfile;
pub mod plan;
pub mod preflight;
mod runtime;

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

pub use self::preflight::{Checked, check_config, preflight};
use crate::config;

/// How adverts come in (`--datapath`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatapathChoice {
    /// XDP + TC when they load, otherwise sockets with one warning saying why.
    Auto,
    /// XDP + TC, or fail.
    Xdp,
    /// Raw sockets only, no fence.
    Socket,
}

/// Options of `ha-agent run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    pub datapath: DatapathChoice,
    pub pid_file: Option<PathBuf>,
    /// Control socket and metrics.
    pub control: crate::control::ControlOptions,
    /// Where XDP/TC links and maps are pinned (a directory on a BPF filesystem).
    pub bpf_dir: PathBuf,
    /// Debug: XDP passes adverts on to the stack after counting them (tcpdump sees them).
    pub xdp_pass_adverts: bool,
    /// XDP drops VRRP for other speakers (other VRIDs, groups, VLANs, MACs) instead of passing it.
    pub xdp_drop_foreign: bool,
    /// `--config-id`, `--allow-unsupported`.
    pub read: config::ReadOptions,
}

/// Default `--bpf-dir`.
pub const DEFAULT_BPF_DIR: &str = "/sys/fs/bpf/ha-agent";

/// Logs to stderr with `tracing`, at `level` (a level or a filter directive), as text (human
/// on a terminal, journald-friendly under systemd) or JSON: see [`crate::control::logging`].
pub fn init_logging(level: &str, format: crate::control::logging::LogFormat) -> Result<()> {
    crate::control::logging::init(level, format)
}

/// Checks that every interface the configuration names exists on this host (read-only:
/// `if_nametoindex`), as keepalived's config test does. Each missing one is an error at the
/// position where it is first named, one a line.
pub fn check_interfaces(config: &config::Config) -> Result<(), String> {
    let mut missing: Vec<String> = plan::interfaces(config)
        .into_iter()
        .filter(|name| crate::net::link::if_index(name).is_err())
        .collect();
    // In file order, as the configuration's own errors.
    missing.sort_by_key(|name| {
        config
            .interface_ref(name)
            .map(|r| (r.at.file.clone(), r.at.line, r.at.col))
    });
    let missing: Vec<String> = missing
        .iter()
        .map(|name| missing_interface(config, name))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("\n"))
    }
}

/// The error for interface `name` that the host lacks, at the place the configuration names it.
fn missing_interface(config: &config::Config, name: &str) -> String {
    let what = format!(
        "no interface `{name}` on this host (`ip link show` lists them): fix the name, or \
         create the interface before starting"
    );
    match config.interface_ref(name) {
        Some(r) => format!("{}: {}: {what}", r.at, r.what),
        None => what,
    }
}

/// `ha-agent run`: returns after a clean shutdown (SIGTERM/SIGINT).
pub fn run(mut options: RunOptions) -> Result<()> {
    let loaded = config::load_with(&options.config, &options.read).map_err(|e| anyhow!("{e}"))?;
    // `instance NAME`: a pid file by default, named after it, as keepalived's.
    if let (None, Some(name)) = (&options.pid_file, &loaded.config.global.instance) {
        options.pid_file = Some(crate::control::instance_path(name, "pid"));
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    // Before the runtime and its threads: they start in the namespace.
    if let Some(ns) = &loaded.config.global.net_namespace {
        netns::enter(ns)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, runtime::run(loaded.config, options))
}

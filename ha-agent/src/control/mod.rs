//! The operator's side of the agent: the control socket that `ha-agent status` reads, the
//! keepalived dump signals (SIGUSR1/SIGUSR2), Prometheus metrics, systemd's readiness
//! protocol, and logging: its format ([`logging`]), the typed events tools read ([`events`]) and
//! the XDP datapath's rejection lines ([`rejections`]). Everything here reads the [`Status`]
//! the event loop publishes on a watch channel after every event: nothing here can block or
//! slow the loop.
//!
//! Paths: the control socket is `/run/ha-agent/<config-stem>-<hash>.sock` by default, the hash
//! taken over the configuration file's absolute path, so several agents (one per network
//! namespace, each with its own file) never collide and `ha-agent status -f FILE` finds the one
//! that runs FILE. `--control-socket PATH` on `run` and `status` overrides it. The dumps sit
//! beside it (see [`dump`]).

pub mod dump;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod rejections;
pub mod report;
pub mod sd_notify;
pub mod socket;
#[cfg(test)]
mod tests;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Result;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
    task::AbortHandle,
};
use tracing::{info, warn};

use crate::status::Status;
use dump::{Dump, DumpPaths};
use report::Report;

/// Where the default control sockets live.
pub const RUN_DIR: &str = "/run/ha-agent";

/// Options of `ha-agent run` for this module.
#[derive(Clone, Debug)]
pub struct ControlOptions {
    /// The control socket (`--control-socket`, or [`default_socket_path`]).
    pub socket: PathBuf,
    /// `--metrics-listen`: serve Prometheus metrics here.
    pub metrics_listen: Option<SocketAddr>,
    /// `--control-socket-group`: the group that may read the status (socket 0660, its
    /// directory 0750); `None`: owner-only.
    pub socket_group: Option<String>,
}

/// The default control socket of the agent that runs `config`: `/run/ha-agent/NAME.sock`
/// when the file says `instance NAME` (keepalived names its files after it), else
/// `/run/ha-agent/<stem>-<8 hex digits of FNV-1a over the absolute path>.sock`.
pub fn default_socket_path(config: &Path) -> PathBuf {
    if let Some(name) = crate::config::load(config)
        .ok()
        .and_then(|l| l.config.global.instance)
    {
        return instance_path(&name, "sock");
    }
    let absolute = std::fs::canonicalize(config).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(config))
            .unwrap_or_else(|_| config.to_owned())
    });
    // FNV-1a: stable across Rust releases (std's hasher is not), so run and status agree.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in absolute.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let stem: String = absolute
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let folded = (hash >> 32) ^ (hash & 0xffff_ffff);
    Path::new(RUN_DIR).join(format!("{stem}-{folded:08x}.sock"))
}

/// `/run/ha-agent/NAME.EXTENSION`: a file of the agent whose configuration says `instance NAME`.
pub fn instance_path(name: &str, extension: &str) -> PathBuf {
    Path::new(RUN_DIR).join(format!("{name}.{extension}"))
}

/// Bound before the agent touches the host, so a collision or a busy port stops the start.
pub struct Control {
    socket: socket::ControlSocket,
    dumps: DumpPaths,
    socket_path: PathBuf,
    metrics: Option<(SocketAddr, std::net::TcpListener)>,
}

/// The running control side. Dropping it stops serving and removes the control socket.
pub struct Running {
    _socket: socket::SocketFile,
    tasks: Vec<AbortHandle>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Running {
    /// Tells systemd that the agent is stopping (masters resign, VIPs go).
    pub fn stopping(&self) {
        let _ = sd_notify::notify("STOPPING=1\nSTATUS=stopping: resigning mastership");
    }
}

impl Control {
    pub fn bind(options: &ControlOptions) -> Result<Control> {
        let group = options
            .socket_group
            .as_deref()
            .map(socket::SocketGroup::lookup)
            .transpose()?;
        let socket = socket::ControlSocket::bind(&options.socket, group.as_ref())?;
        let metrics = options
            .metrics_listen
            .map(|addr| metrics::bind(addr).map(|l| (addr, l)))
            .transpose()?;
        Ok(Control {
            socket,
            dumps: DumpPaths::for_socket(&options.socket),
            socket_path: options.socket.clone(),
            metrics,
        })
    }

    /// Serves the socket and metrics, handles the dump signals, and tells systemd READY=1 with
    /// a STATUS= line, then a new STATUS= line whenever the summary changes. Call once the
    /// instances have started and the first status is published.
    pub fn start(self, status: watch::Receiver<Status>) -> Result<Running> {
        let mut tasks = Vec::new();
        let (file, task) = self.socket.serve(status.clone())?;
        tasks.push(task.abort_handle());
        info!("control socket {}", self.socket_path.display());
        if let Some((addr, listener)) = self.metrics {
            tasks.push(metrics::serve(listener, status.clone())?.abort_handle());
            info!("metrics on http://{addr}/metrics");
        }
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut usr2 = signal(SignalKind::user_defined2())?;
        let dumps = self.dumps;
        let watched = status.clone();
        tasks.push(
            tokio::task::spawn_local(async move {
                loop {
                    let (dump, name) = tokio::select! {
                        _ = usr1.recv() => (Dump::Data, "SIGUSR1"),
                        _ = usr2.recv() => (Dump::Stats, "SIGUSR2"),
                    };
                    let report = Report::now(&watched.borrow());
                    match dumps.write(dump, &report) {
                        Ok([a, b]) => info!("{name}: wrote {} and {}", a.display(), b.display()),
                        Err(e) => warn!("{name}: {e:#}"),
                    }
                }
            })
            .abort_handle(),
        );
        let mut watched = status;
        let mut last = Report::now(&watched.borrow_and_update()).summary();
        match sd_notify::notify(&format!("READY=1\n{}", sd_notify::status_line(&last))) {
            Ok(true) => info!("told systemd READY=1"),
            Ok(false) => {}
            Err(e) => warn!("sd_notify READY=1 to $NOTIFY_SOCKET: {e}"),
        }
        tasks.push(
            tokio::task::spawn_local(async move {
                while watched.changed().await.is_ok() {
                    let summary = Report::now(&watched.borrow_and_update()).summary();
                    if summary != last {
                        let _ = sd_notify::notify(&sd_notify::status_line(&summary));
                        last = summary;
                    }
                }
            })
            .abort_handle(),
        );
        Ok(Running {
            _socket: file,
            tasks,
        })
    }
}

/// `ha-agent status`: the table, or with `json` the JSON document (pretty-printed, every field
/// the agent sent), of the agent at `socket`.
pub fn status(socket: &Path, json: bool) -> Result<String> {
    let reply = socket::request_status(socket)?;
    if json {
        let value: serde_json::Value = serde_json::from_str(&reply)?;
        return Ok(serde_json::to_string_pretty(&value)? + "\n");
    }
    let report: Report = serde_json::from_str(&reply).map_err(|e| {
        anyhow::anyhow!(
            "{}: a status this client cannot read ({e})",
            socket.display()
        )
    })?;
    Ok(report::render_table(&report))
}

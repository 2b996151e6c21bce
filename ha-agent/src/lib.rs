//! ha-agent: a VRRP failover agent that reads keepalived.conf, speaks VRRPv2/v3 with keepalived,
//! and uses XDP and TC to count adverts in the kernel and fence VIPs it must not own.
//!
//! One module per concept (see DESIGN.md): `config` reads keepalived.conf, `vrrp` is the codec
//! and the pure state machine, `datapath` loads the eBPF programs.

pub mod agent;
pub mod config;
pub mod control;
pub mod datapath;
pub mod docs;
pub mod lvs;
pub mod net;
pub mod notify;
pub mod status;
pub mod track;
pub mod vrrp;

/// The commit this binary was built from, as build.rs found it: the short hash, with `-dirty`
/// when its sources differed from it, or `unknown` when built outside git (a crate tarball).
pub const COMMIT: &str = env!("HA_AGENT_COMMIT");

/// What `ha-agent --version` prints after the name: `0.1.0 (commit 3a08486, datapaths: xdp
/// socket)`. The status JSON's `agent.version` stays the plain version (a contract).
pub fn version_line() -> &'static str {
    static LINE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} (commit {COMMIT}, datapaths: {})",
            env!("CARGO_PKG_VERSION"),
            datapath::BUILT_IN.join(" ")
        )
    });
    LINE.as_str()
}

/// Helpers shared by the unit tests of several modules.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::{Duration, Instant};

    /// Whether process `pid` is gone, or dead and waiting for init to reap it (a zombie).
    fn dead(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    /// Waits up to 2 s for process `pid` to die; whether it did.
    pub async fn dies(pid: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !dead(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        dead(pid)
    }
}

//! ha-agent: a VRRP failover agent that reads keepalived.conf, speaks VRRPv2/v3 with keepalived,
//! and uses XDP and TC to count adverts in the kernel and fence VIPs it must not own.
//!
//! One module per concept (see DESIGN.md): `config` reads keepalived.conf, `vrrp` is the codec
//! and the pure state machine, `datapath` loads the eBPF programs.

pub mod agent;
pub mod config;
pub mod control;
pub mod datapath;
pub mod lvs;
pub mod net;
pub mod notify;
pub mod status;
pub mod track;
pub mod vrrp;

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

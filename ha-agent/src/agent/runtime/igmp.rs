//! keepalived's `disable_local_igmp`: no IGMP reports for link-local groups (224.0.0.0/24, the
//! VRRP group among them) while the agent runs; the kernel's setting is put back at exit
//! (vrrp_daemon.c `set_disable_local_igmp` / `reset_disable_local_igmp`).

use anyhow::{Context, Result};
use tracing::{info, warn};

/// The sysctl, per network namespace.
const REPORTS: &str = "/proc/sys/net/ipv4/igmp_link_local_mcast_reports";

/// The setting found at start, to put back.
pub(super) struct LocalIgmp {
    saved: Option<String>,
}

impl LocalIgmp {
    /// Turns the reports off when `disable` (saving what was there); an error if the kernel
    /// lacks the sysctl, before the VIPs or the datapath are touched.
    pub fn apply(disable: bool) -> Result<LocalIgmp> {
        if !disable {
            return Ok(LocalIgmp { saved: None });
        }
        let saved = std::fs::read_to_string(REPORTS)
            .with_context(|| format!("disable_local_igmp: reading {REPORTS}"))?;
        std::fs::write(REPORTS, "0")
            .with_context(|| format!("disable_local_igmp: writing 0 to {REPORTS}"))?;
        info!("disable_local_igmp: {REPORTS} = 0 (was {})", saved.trim());
        Ok(LocalIgmp { saved: Some(saved) })
    }
}

/// Puts the kernel's setting back, at exit and when the start fails after `apply`.
impl Drop for LocalIgmp {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take()
            && let Err(e) = std::fs::write(REPORTS, saved.trim())
        {
            warn!(
                "disable_local_igmp: restoring {REPORTS} to {}: {e}",
                saved.trim()
            );
        }
    }
}

//! `net_namespace NAME`: the agent enters the network namespace `ip netns add NAME` made
//! (/run/netns/NAME) before it reads or touches any interface, as keepalived's
//! `set_namespaces`. Entered by the main thread before the runtime starts, so every thread and
//! socket the agent opens afterwards is in it; `check-config` enters it too, to check the
//! interfaces there.

use std::{fs::File, os::fd::AsRawFd, path::PathBuf};

use anyhow::{Result, bail};

use crate::config::NetNamespace;

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Enters `ns`; an error names the line and the namespace.
pub fn enter(ns: &NetNamespace) -> Result<()> {
    let path = PathBuf::from(NETNS_DIR).join(&ns.name);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => bail!(
            "{}: net_namespace {}: cannot open {}: {e} (`ip netns add {}` creates it)",
            ns.at,
            ns.name,
            path.display(),
            ns.name
        ),
    };
    // SAFETY: setns(2) on a descriptor we own, open across the call; it changes only the
    // calling thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        bail!(
            "{}: net_namespace {}: setns {}: {e}",
            ns.at,
            ns.name,
            path.display()
        );
    }
    tracing::info!("entered network namespace {}", ns.name);
    Ok(())
}

//! A tcpdump capture to a pcap file in a lab namespace: ready (listening) before the test acts,
//! read back with `tcpdump -r` while it runs or after it stopped.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};

use crate::{Daemon, Node};

/// `tcpdump -w` on one interface of a node.
pub struct Capture {
    node: Node,
    daemon: Daemon,
    pcap: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -i INTERFACE FILTER` in `node`, writing `DIR/NAME.pcap`, and waits until
    /// it listens.
    pub fn start(
        node: &Node,
        dir: &Path,
        name: &str,
        interface: &str,
        filter: &str,
    ) -> Result<Capture> {
        let pcap = dir.join(format!("{name}.pcap"));
        let mut daemon = node
            .spawn(
                &format!("tcpdump-{name}"),
                dir,
                "tcpdump",
                &[
                    "-i",
                    interface,
                    "-n",
                    "-U",
                    // Each packet as it comes: with the default buffering a block still being
                    // filled when tcpdump is stopped is lost (the last second or two).
                    "--immediate-mode",
                    "-w",
                    &pcap.display().to_string(),
                    filter,
                ],
            )
            .context("starting tcpdump (apt-get install tcpdump)")?;
        daemon
            .wait_for_log("listening on", Duration::from_secs(10))
            .context("tcpdump ready")?;
        Ok(Capture {
            node: node.clone(),
            daemon,
            pcap,
        })
    }

    /// What was captured so far, printed by `tcpdump FLAGS -r` (e.g. `-tt -n`).
    pub fn read(&self, flags: &[&str]) -> Result<String> {
        let pcap = self.pcap.display().to_string();
        let mut args = flags.to_vec();
        args.extend(["-r", &pcap]);
        self.node.run("tcpdump", &args)
    }

    /// Stops tcpdump (SIGINT: it flushes the file).
    pub fn stop(&mut self) -> Result<()> {
        self.daemon.signal(libc::SIGINT)?;
        self.daemon.wait_timeout(Duration::from_secs(5))?;
        Ok(())
    }
}

//! `cargo xtask demo`: two ha-agent nodes in a lab, a failover and a failback, with timings.

use anyhow::{Result, bail};

pub fn run() -> Result<()> {
    bail!("the demo needs `ha-agent run`, which lands with the agent runtime")
}

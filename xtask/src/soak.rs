//! `cargo xtask soak`: the resource soak of `ha_tests::soak` (16 VRIDs at advert_int 0.01;
//! RSS, fds and threads sampled), its report on stdout and in a file with `--report`.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use ha_tests::soak::{SoakOptions, run_resource_soak};

#[derive(clap::Args)]
pub struct Args {
    /// Length of the soak in seconds (the issue asks for 600).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 2)]
    every: u64,
    /// VRIDs per node.
    #[arg(long, default_value_t = 16)]
    vrids: u8,
    /// The agents' --datapath: auto, xdp or socket.
    #[arg(long, default_value = "auto")]
    datapath: String,
    /// Also write the report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    ha_tests::require_privileges().context("`cargo xtask soak` builds network namespaces")?;
    crate::build_ebpf()?;
    crate::run(Command::new("cargo").args(crate::AGENT_AND_PROBER))?;
    let outcome = run_resource_soak(&SoakOptions {
        duration: Duration::from_secs(args.seconds),
        sample_every: Duration::from_secs(args.every.max(1)),
        vrids: args.vrids,
        datapath: args.datapath,
    })?;
    println!("{}", outcome.report);
    if let Some(path) = &args.report {
        std::fs::write(path, &outcome.report)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !outcome.failed.is_empty() {
        bail!("resource bounds broken: {}", outcome.failed.join("; "));
    }
    Ok(())
}

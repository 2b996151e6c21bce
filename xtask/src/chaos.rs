//! `cargo xtask chaos`: the chaos soak of `ha_tests::chaos` from the command line, with its
//! timeline report on stdout (and in a file with `--report`).

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use ha_tests::chaos::{FaultKind, Options, run_soak};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds of faults (the initial election and the final checks come on top).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the fault schedule (default: from the clock; the report names it).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Slack in milliseconds added to the master-down interval in every bound.
    #[arg(long, default_value_t = 1000)]
    margin_ms: u64,
    /// The agents' advert_int in milliseconds (VRRPv3, centiseconds).
    #[arg(long, default_value_t = 100)]
    advert_int_ms: u64,
    /// The agents' --datapath: auto, xdp or socket.
    #[arg(long, default_value = "auto")]
    datapath: String,
    /// Comma-separated faults to draw from: link, kill, stop, partition, flap, reload, arpflood,
    /// foreign (default all).
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Copy the lab's configs and agent logs to this directory before the lab is removed.
    #[arg(long)]
    keep_logs: Option<PathBuf>,
}

/// A seed from the clock (below a million, easy to type back).
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
}

/// The chaos soak of `cargo xtask test`: all faults but one, default bounds, `seconds` of faults; the
/// report (and the lab's configs and logs) under target/; fails when an invariant broke.
pub fn in_test(seconds: u64, seed: u64) -> Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    let report = target.join("chaos-test.txt");
    let logs = target.join("chaos-test-logs");
    // Logs of an earlier run would read as this one's (a restart's `.log.0`).
    if logs.exists() {
        std::fs::remove_dir_all(&logs).with_context(|| format!("removing {}", logs.display()))?;
    }
    let mut opts = Options::new(Duration::from_secs(seconds), seed);
    opts.keep_logs = Some(logs);
    // Every fault, the VRRP-only partition included: its heal raced (the lower master, hearing
    // the higher one first, stepped down silently and clients kept its MAC for seconds) until
    // the agent's default higher_prio_send_advert.
    eprintln!(
        "+ chaos soak: {seconds} s of faults ({}), seed {seed}",
        opts.faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let outcome = run_soak(&opts)?;
    std::fs::write(&report, &outcome.report)
        .with_context(|| format!("writing {}", report.display()))?;
    if !outcome.failed.is_empty() {
        println!("{}", outcome.report);
        bail!(
            "chaos seed {seed}: invariants broken: {} (report: {}; repeat: cargo xtask chaos \
             --seconds {seconds} --seed {seed})",
            outcome.failed.join(", "),
            report.display()
        );
    }
    let summary: Vec<&str> = outcome
        .report
        .lines()
        .filter(|l| l.starts_with('[') || l.starts_with("note: host stalls"))
        .collect();
    eprintln!(
        "chaos soak: seed {seed}, all invariants held ({}); report: {}",
        summary.join("; "),
        report.display()
    );
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    ha_tests::require_privileges().context("`cargo xtask chaos` builds network namespaces")?;
    crate::setup::debian_packages(crate::setup::TEST_PACKAGES)?;
    // The VRRP-only partition is an nftables bridge rule (kernels without TC's drop action).
    crate::setup::debian_packages(&["nftables"])?;
    crate::build_ebpf()?;
    crate::run(Command::new("cargo").args(crate::AGENT_AND_PROBER))?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    let mut opts = Options::new(Duration::from_secs(args.seconds), seed);
    opts.margin = Duration::from_millis(args.margin_ms);
    if args.advert_int_ms < 10 || !args.advert_int_ms.is_multiple_of(10) {
        bail!("--advert-int-ms: a multiple of 10 (VRRPv3 counts centiseconds)");
    }
    opts.advert_int = Duration::from_millis(args.advert_int_ms);
    opts.datapath = args.datapath;
    opts.keep_logs = args.keep_logs;
    if !args.faults.is_empty() {
        opts.faults = args
            .faults
            .iter()
            .map(|f| FaultKind::parse(f))
            .collect::<Result<_>>()?;
    }
    eprintln!(
        "chaos: {} s of faults, seed {seed} (the initial election and final checks add ~15 s)",
        args.seconds
    );
    let outcome = run_soak(&opts)?;
    println!("{}", outcome.report);
    if let Some(path) = &args.report {
        std::fs::write(path, &outcome.report)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if !outcome.failed.is_empty() {
        bail!(
            "chaos seed {seed}: invariants broken: {}",
            outcome.failed.join(", ")
        );
    }
    Ok(())
}

//! `cargo xtask`: the developer's and CI's entry points.
//!
//! - `build-ebpf [--release]`: installs what the eBPF build needs, then builds `ha-ebpf`.
//! - `test`: installs the Debian packages the lab needs, builds the eBPF, checks fmt and clippy,
//!   runs every test of the workspace, the demo, a bounded fuzz run and a 60 s chaos soak
//!   (report in target/chaos-test.txt), and fails if the run changed the working tree.
//! - `demo`: a two-node lab running ha-agent, a failover with timings.
//! - `bench [--quick] [--scenario NAME] [--trials N]`: ha-agent beside keepalived, report in
//!   bench/results/.
//! - `install [--destdir DIR] [--no-build]`: the binary, the systemd unit, man pages,
//!   completions, dashboard and alert rules onto this host, under /usr/local.
//! - `dist [--check]`: a .deb (cargo-deb); `--check` (and `test`) installs it into a scratch
//!   root and checks it.
//! - `chaos --seconds N --seed S [--report PATH]`: the chaos soak (`ha_tests::chaos`).
//! - `soak --seconds N [--report PATH]`: resource bounds (`ha_tests::soak`).
//! - `fuzz --seconds N [--target T]`: the bounded fuzz runs of `test`, longer.
//! - `keywords`: rewrites README.md's table "keepalived keyword → ha-agent" from the keyword
//!   table in ha-agent/src/config/keywords.rs.

/// `cargo build` arguments for what the labs run: the agent and the client's prober.
const AGENT_AND_PROBER: [&str; 9] = [
    "build",
    "--package",
    "ha-agent",
    "--package",
    "ha-tests",
    "--bin",
    "ha-agent",
    "--bin",
    "icmp_prober",
];

mod bench;
mod chaos;
mod demo;
mod dist;
mod fuzz_seeds;
mod install;
mod setup;
mod soak;
mod tree;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "ha-agent's build, test and demo entry points"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the eBPF programs (installs rust-src for nightly and bpf-linker when missing).
    /// The object is always built with the release profile (the verifier rejects what
    /// unoptimized builds emit), so there is no debug build to choose.
    BuildEbpf {
        /// Accepted for the usual cargo habit; the build is the release one either way.
        #[arg(long)]
        release: bool,
    },
    /// The full test run, as CI does it: packages, eBPF, fmt, clippy, tests, bounded fuzzing.
    Test {
        /// Seconds for each fuzz target (0 skips fuzzing; CI uses the default).
        #[arg(long, default_value_t = 20)]
        fuzz_seconds: u32,
        /// Seconds of the chaos soak's faults (0 skips it; CI uses the default).
        #[arg(long, default_value_t = 60)]
        chaos_seconds: u64,
        /// Seed of the chaos soak's schedule (default: from the clock, printed at the start).
        #[arg(long)]
        chaos_seed: Option<u64>,
    },
    /// Start two ha-agent nodes in a lab, fail the master over and back, show the timings.
    Demo {
        /// The LVS demo instead: two directors (dual-master), three web servers, a client; a
        /// web server stops, a director dies during a long download.
        #[arg(long)]
        lvs: bool,
    },
    /// Benchmark ha-agent beside keepalived in the lab (issue #8); writes bench/results/.
    Bench {
        /// 3 trials per daemon and short CPU windows: checks the harness, not numbers to quote.
        #[arg(long)]
        quick: bool,
        /// Run only these scenarios (repeatable); default: all.
        #[arg(long = "scenario", value_enum)]
        scenarios: Vec<bench::Scenario>,
        /// Trials per daemon in the failover scenarios (default 20, --quick 3).
        #[arg(long)]
        trials: Option<usize>,
        /// Trials per daemon (and size) in scale and scale-1k, whose trials take minutes each
        /// (default: trials up to 5, --quick 1).
        #[arg(long)]
        scale_trials: Option<usize>,
    },
    /// Build (release, eBPF included) and install ha-agent as a systemd service: the stripped
    /// binary to /usr/local/sbin, dist/ha-agent.service and its keepalived drop-in to
    /// /etc/systemd/system, /etc/default/ha-agent if absent, man pages, completions, dashboard
    /// and rules under /usr/local/share; `systemctl daemon-reload` when systemd runs.
    Install {
        /// Install under this directory instead of / (staging); no daemon-reload.
        #[arg(long)]
        destdir: Option<PathBuf>,
        /// Install the release binary already built.
        #[arg(long)]
        no_build: bool,
    },
    /// Build a .deb with cargo-deb (installed when missing) into target/debian/.
    Dist {
        /// Then install it into a scratch root and check it, as `cargo xtask test` does.
        #[arg(long)]
        check: bool,
    },
    /// Chaos soak: three agents, two VRIDs, seeded random faults, invariants and a timeline.
    Chaos(chaos::Args),
    /// Resource soak: 16 VRIDs at advert_int 0.01, RSS, fds and threads sampled over time.
    Soak(soak::Args),
    /// Bounded fuzz runs (as at the end of `test`), each target for `--seconds`.
    Fuzz {
        #[arg(long, default_value_t = 20)]
        seconds: u32,
        /// Only these targets (repeatable; default all).
        #[arg(long = "target")]
        targets: Vec<String>,
    },
    /// Rewrite README.md's table "keepalived keyword → ha-agent" (between its two marker
    /// comments) from ha-agent/src/config/keywords.rs; the unit test that checks it does this.
    Keywords,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::BuildEbpf { release: _ } => build_ebpf(),
        Cmd::Test {
            fuzz_seconds,
            chaos_seconds,
            chaos_seed,
        } => test(fuzz_seconds, chaos_seconds, chaos_seed),
        Cmd::Demo { lvs: false } => demo::run(),
        Cmd::Demo { lvs: true } => demo::run_lvs(),
        Cmd::Bench {
            quick,
            scenarios,
            trials,
            scale_trials,
        } => bench::run(bench::Options {
            quick,
            scenarios,
            trials,
            scale_trials,
        }),
        Cmd::Install { destdir, no_build } => install::run_install(destdir, no_build),
        Cmd::Dist { check: false } => dist::run_dist().map(|_| ()),
        Cmd::Dist { check: true } => dist::check(),
        Cmd::Chaos(args) => chaos::run(args),
        Cmd::Soak(args) => soak::run(args),
        Cmd::Fuzz { seconds, targets } => fuzz(seconds, &targets),
        Cmd::Keywords => run(Command::new("cargo")
            .args([
                "test",
                "-p",
                "ha-agent",
                "--lib",
                "config::keywords::tests::readme_keyword_table_is_generated",
            ])
            .env("HA_AGENT_UPDATE_README", "1")),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_owned()
}

/// Runs `cmd` in the workspace root, echoing it, and fails if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    cmd.current_dir(root());
    eprintln!("+ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A cargo command for the nightly toolchain, without the stable toolchain's environment leaking in.
pub fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly");
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "RUSTDOC",
        "CARGO",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Flags for every nightly cargo command that builds `ha-ebpf`.
const EBPF_ARGS: &[&str] = &[
    "--package",
    "ha-ebpf",
    "--release",
    "--target",
    "bpfel-unknown-none",
    "-Z",
    "build-std=core",
    "--config",
    // BTF for the loader and the verifier's messages; aya-ebpf needs the target arch cfg.
    r#"target.bpfel-unknown-none.rustflags=["--cfg=bpf_target_arch=\"x86_64\"", "-Cdebuginfo=2", "-Clink-arg=--btf"]"#,
];

pub fn build_ebpf() -> Result<()> {
    setup::ebpf_toolchain()?;
    run(nightly_cargo().arg("build").args(EBPF_ARGS))?;
    eprintln!("eBPF object: {}", ebpf_object().display());
    Ok(())
}

/// Where `build-ebpf` leaves the object (ha-agent's build.rs looks in the same place).
pub fn ebpf_object() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target
        .join("bpfel-unknown-none")
        .join("release")
        .join("ha-ebpf")
}

fn test(fuzz_seconds: u32, chaos_seconds: u64, chaos_seed: Option<u64>) -> Result<()> {
    ha_tests::require_privileges()
        .context("`cargo xtask test` runs network-namespace and BPF tests")?;
    // Before anything builds: the run must leave the tree as it found it (checked at the end).
    let tree = tree::TreeState::read()?;
    tree::lockfile_current(&root().join("Cargo.toml"), false)?;
    let chaos_seed = chaos_seed.unwrap_or_else(chaos::clock_seed);
    if chaos_seconds > 0 {
        // At the start, so that a run that fails anywhere can be repeated as it was.
        eprintln!(
            "xtask test: the chaos soak will run {chaos_seconds} s with seed {chaos_seed} \
             (repeat: --chaos-seed {chaos_seed})"
        );
    }
    setup::debian_packages(setup::TEST_PACKAGES)?;
    setup::frr_vty_group()?;
    build_ebpf()?;
    setup::stable_component("rustfmt")?;
    setup::stable_component("clippy")?;
    run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run(Command::new("cargo").args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    setup::nightly_component("clippy")?;
    run(nightly_cargo()
        .arg("clippy")
        .args(EBPF_ARGS)
        .args(["--", "-D", "warnings"]))?;
    // The agent binary is run by the lab tests of other packages: build it first.
    run(Command::new("cargo").args(crate::AGENT_AND_PROBER))?;
    // --no-fail-fast: one failing test binary must not hide the results of the ones after it.
    let totals = run_tests(Command::new("cargo").args([
        "test",
        "--workspace",
        "--exclude",
        "ha-ebpf",
        "--no-fail-fast",
    ]))?;
    // The README's "see it work" command, so that it keeps working: it fails when node 1 is
    // not elected, a failover or the handover does not happen.
    demo::run().context("cargo xtask demo")?;
    // And the LVS demo: it fails when a web server's check does not remove it or the download
    // does not survive the director's SIGKILL.
    demo::run_lvs().context("cargo xtask demo --lvs")?;
    // The .deb as a new user gets it: built on this machine, installed into a scratch root,
    // its binary, man pages, README links and unit checked.
    dist::check().context("cargo xtask dist, installed into a scratch root")?;
    if fuzz_seconds > 0 {
        fuzz(fuzz_seconds, &[])?;
    }
    if chaos_seconds > 0 {
        chaos::in_test(chaos_seconds, chaos_seed)?;
    }
    tree.check_unchanged()?;
    println!(
        "xtask test: {} passed, {} failed",
        totals.passed, totals.failed
    );
    Ok(())
}

#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
}

/// Runs `cargo test`, echoing its output, and adds up its `test result:` lines.
fn run_tests(cmd: &mut Command) -> Result<Totals> {
    use std::io::{BufRead, BufReader};
    cmd.current_dir(root()).stdout(std::process::Stdio::piped());
    eprintln!("+ {}", display(cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", display(cmd)))?;
    let mut totals = Totals::default();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            totals.passed += count("passed");
            totals.failed += count("failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}): {} passed, {} failed",
            display(cmd),
            totals.passed,
            totals.failed
        );
    }
    Ok(totals)
}

/// Bounded runs of the cargo-fuzz targets `only` (empty: all), `seconds` each.
fn fuzz(seconds: u32, only: &[String]) -> Result<()> {
    let fuzz_dir = root().join("ha-agent").join("fuzz");
    let targets = fuzz_dir.join("fuzz_targets");
    if !targets.is_dir() {
        bail!("no fuzz targets in {}", targets.display());
    }
    setup::cargo_fuzz()?;
    tree::lockfile_current(&fuzz_dir.join("Cargo.toml"), true)?;
    let mut names: Vec<String> = std::fs::read_dir(&targets)?
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .collect();
    names.sort();
    if let Some(unknown) = only.iter().find(|t| !names.contains(t)) {
        bail!("no fuzz target {unknown:?}; targets: {}", names.join(", "));
    }
    names.retain(|n| only.is_empty() || only.contains(n));
    for name in names {
        // The target's own corpus (kept between runs, git-ignored) first: libFuzzer writes new
        // inputs to the first directory and only reads the seed directories after it.
        let corpus = fuzz_dir.join("corpus").join(&name);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = nightly_cargo();
        cmd.args(["fuzz", "run", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg(&name)
            .arg(&corpus)
            .args(fuzz_seeds(&name)?)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1");
        if name == "config" {
            // Whole configuration files, not libFuzzer's 4 KiB default.
            cmd.arg("-max_len=16384");
        }
        run(&mut cmd)?;
    }
    Ok(())
}

/// Seed corpora of a fuzz target, read recursively by libFuzzer (`decode`: made from
/// keepalived's captures into target/fuzz-seeds/decode).
fn fuzz_seeds(target: &str) -> Result<Vec<PathBuf>> {
    Ok(match target {
        "config" => vec![
            root().join("examples"),
            root().join("ha-agent").join("tests").join("config"),
        ],
        "decode" => {
            let dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target"))
                .join("fuzz-seeds")
                .join("decode");
            let n = fuzz_seeds::decode(&dir)?;
            eprintln!(
                "{n} decode seeds from keepalived's captures in {}",
                dir.display()
            );
            vec![dir]
        }
        _ => Vec::new(),
    })
}

//! Installs what a fresh machine lacks, saying so in one line each time.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run;

/// Debian packages the tests, demo and benchmarks use.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "keepalived",
    "tcpdump",
    "arping",
    "iputils-ping",
    // The lab's VRRP-only partitions (nft output rules in a node).
    "nftables",
    // tests/tests/bad_input.rs: "run touched nothing" includes `bpftool net show`.
    "bpftool",
    // tests/tests/frr_interop.rs: FRR's zebra + vrrpd as a VRRP peer.
    "frr",
    // tests/tests/accept_mode.rs and lb_xdp.rs: a TCP service and its client in lab nodes.
    "socat",
    // ha-agent/tests/docs.rs: `man -l` renders the generated pages (groff) without warnings;
    // zsh checks the zsh completion.
    "man-db",
    "groff-base",
    "zsh",
    // tests/tests/dashboard.rs: promtool checks and unit-tests dist/ha-agent.rules.yml; the
    // server scrapes lab agents and answers the dashboard's queries. Its postinst succeeds
    // without systemd running; the test runs its own server, not the packaged service.
    "prometheus",
    // xtask install and dist: `strip` and `readelf` (binutils), gzipped man pages rendered
    // with `man -l` (man-db, above), the unit checked with `systemd-analyze` (systemd), the .deb
    // unpacked into a scratch root (dpkg).
    "binutils",
    "gzip",
    "systemd",
    "dpkg",
];

/// bpf-linker release built against the nightly's LLVM 22 (0.11+ wants LLVM 23).
const BPF_LINKER_VERSION: &str = "0.10.0";

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Nightly with rust-src (for `-Z build-std=core`) and bpf-linker.
pub fn ebpf_toolchain() -> Result<()> {
    let toolchains = output("rustup", &["toolchain", "list"])
        .context("rustup not found: the eBPF build needs rustup")?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        bail!(
            "the eBPF build needs a nightly toolchain: `rustup toolchain install nightly --component rust-src`"
        );
    }
    nightly_component("rust-src")?;
    let linker = output("bpf-linker", &["--version"]).unwrap_or_default();
    if !linker.contains(BPF_LINKER_VERSION) {
        eprintln!(
            "xtask: installing bpf-linker {BPF_LINKER_VERSION} (found: {})",
            if linker.is_empty() {
                "none"
            } else {
                linker.trim()
            }
        );
        run(Command::new("cargo").args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--force",
        ]))?;
    }
    Ok(())
}

/// Adds `component` (rust-src for -Z build-std, clippy for the eBPF lint) to nightly if missing.
pub fn nightly_component(component: &str) -> Result<()> {
    let installed = output(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with(component)) {
        eprintln!("xtask: adding {component} to the nightly toolchain");
        run(Command::new("rustup").args([
            "component",
            "add",
            component,
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

/// Installs the missing ones among `packages` with apt-get (after `apt-get update`).
pub fn debian_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !output("dpkg-query", &["-W", "-f=${Status}", p])
                .is_some_and(|s| s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

/// Adds root to group `frrvty` if it is not in it: FRR's daemons refuse to run as root (the FRR
/// interop tests run them so, in the lab's namespaces) unless the user is in their vty group.
pub fn frr_vty_group() -> Result<()> {
    let group = output("getent", &["group", "frrvty"]).unwrap_or_default();
    let members = group.trim().rsplit(':').next().unwrap_or_default();
    if members.split(',').any(|m| m == "root") {
        return Ok(());
    }
    eprintln!("xtask: adding root to group frrvty (FRR's daemons refuse to run as root otherwise)");
    run(Command::new("gpasswd").args(["-a", "root", "frrvty"]))
}

/// The cargo-fuzz release known to build with this machine's toolchains (a newer one may need
/// a newer rustc).
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// cargo-fuzz, for the bounded fuzz runs: any installed release is used; a missing one is
/// installed at the pinned version.
pub fn cargo_fuzz() -> Result<()> {
    if output("cargo", &["fuzz", "--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    run(Command::new("cargo").args([
        "install",
        &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
        "--locked",
    ]))
}

/// Adds `component` (rustfmt, clippy) to the default toolchain if missing, for the checks
/// `cargo xtask test` runs.
pub fn stable_component(component: &str) -> Result<()> {
    let installed = output("rustup", &["component", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with(component)) {
        eprintln!("xtask: adding {component} to the default toolchain");
        run(Command::new("rustup").args(["component", "add", component]))?;
    }
    Ok(())
}

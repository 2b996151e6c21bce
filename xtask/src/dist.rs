//! `cargo xtask dist`: a Debian package with cargo-deb (installed with `cargo install` when
//! missing). The package ships /usr/sbin/ha-agent, the unit (disabled: it replaces keepalived,
//! the operator enables it), /etc/default/ha-agent, the README and examples/ under
//! /usr/share/doc/ha-agent. cargo-deb reads `[package.metadata.deb]` in ha-agent/Cargo.toml.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run;

pub fn run_dist() -> Result<()> {
    crate::build_ebpf()?;
    let have = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("xtask dist: installing cargo-deb (cargo install cargo-deb --locked)");
        run(Command::new("cargo").args(["install", "cargo-deb", "--locked"]))?;
    }
    run(Command::new("cargo").args(["deb", "--package", "ha-agent"]))?;
    let dir = crate::install::target_dir().join("debian");
    let mut debs: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let Some(deb) = debs.last() else {
        bail!("cargo deb made no .deb in {}", dir.display());
    };
    eprintln!("xtask dist: {}", deb.display());
    if let Ok(out) = Command::new("dpkg-deb").arg("--contents").arg(deb).output() {
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

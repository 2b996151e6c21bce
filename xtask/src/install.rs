//! `cargo xtask install`: builds ha-agent (eBPF included, release) and installs it as a
//! systemd service: the binary to /usr/local/sbin, the unit (dist/ha-agent.service, its
//! binary path rewritten) to /etc/systemd/system, /etc/default/ha-agent if there is none, then
//! `systemctl daemon-reload` when systemd runs. Enabling the service is left to the operator
//! (it replaces keepalived: stop that first).

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::{root, run};

/// The binary path in dist/ha-agent.service (the .deb's) and the one `install` uses.
pub const PACKAGED_BIN: &str = "/usr/sbin/ha-agent";
pub const LOCAL_BIN: &str = "/usr/local/sbin/ha-agent";

/// What to install where: `destdir` prefixes every path (staging, tests); `None` is `/`.
pub struct Install {
    pub binary: PathBuf,
    pub destdir: Option<PathBuf>,
}

pub fn run_install(destdir: Option<PathBuf>, no_build: bool) -> Result<()> {
    if !no_build {
        crate::build_ebpf()?;
        run(Command::new("cargo").args(["build", "--release", "--package", "ha-agent"]))?;
    }
    let binary = target_dir().join("release").join("ha-agent");
    let install = Install {
        binary,
        destdir: destdir.clone(),
    };
    for line in install.apply()? {
        eprintln!("xtask install: {line}");
    }
    if destdir.is_none() {
        if systemd_running() {
            run(Command::new("systemctl").arg("daemon-reload"))?;
        } else {
            eprintln!("xtask install: systemd is not running here: no daemon-reload");
        }
    }
    eprintln!(
        "xtask install: next: `systemctl disable --now keepalived` (if it runs), then \
         `systemctl enable --now ha-agent`; `ha-agent status` shows the instances"
    );
    Ok(())
}

/// cargo's target directory (`$CARGO_TARGET_DIR` or the workspace's `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Whether systemd is the init system (sd_booted(3): /run/systemd/system exists).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

impl Install {
    fn path(&self, absolute: &str) -> PathBuf {
        match &self.destdir {
            Some(d) => d.join(absolute.trim_start_matches('/')),
            None => PathBuf::from(absolute),
        }
    }

    /// Copies the files; returns one line per file for the operator.
    pub fn apply(&self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let bin = self.path(LOCAL_BIN);
        let bytes = std::fs::read(&self.binary).with_context(|| {
            format!(
                "{}: build it first (drop --no-build)",
                self.binary.display()
            )
        })?;
        write_replacing(&bin, &bytes, 0o755)?;
        done.push(format!("{} (0755)", bin.display()));

        let unit_src = root().join("dist").join("ha-agent.service");
        let unit = std::fs::read_to_string(&unit_src)
            .with_context(|| format!("reading {}", unit_src.display()))?
            .replace(PACKAGED_BIN, LOCAL_BIN);
        let unit_dst = self.path("/etc/systemd/system/ha-agent.service");
        write_replacing(&unit_dst, unit.as_bytes(), 0o644)?;
        done.push(format!("{} (0644)", unit_dst.display()));

        let default = self.path("/etc/default/ha-agent");
        if default.exists() {
            done.push(format!("{} kept (yours)", default.display()));
        } else {
            let src = root().join("dist").join("ha-agent.default");
            let text = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
            write_replacing(&default, &text, 0o644)?;
            done.push(format!("{} (0644)", default.display()));
        }
        Ok(done)
    }
}

/// Writes `bytes` beside `path` and renames it over `path`: a running binary is replaced, not
/// overwritten in place (that fails with ETXTBSY), and nobody reads half a file.
fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("a path with a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.xtask-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path).with_context(|| format!("installing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_binary_unit_and_default_under_destdir() {
        let dest = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dest);
        let fake = dest.join("fake-ha-agent");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(&fake, b"#!/bin/sh\n").unwrap();
        let install = Install {
            binary: fake,
            destdir: Some(dest.clone()),
        };
        install.apply().unwrap();
        let bin = dest.join("usr/local/sbin/ha-agent");
        assert_eq!(std::fs::read(&bin).unwrap(), b"#!/bin/sh\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&bin), 0o755);
        let unit_path = dest.join("etc/systemd/system/ha-agent.service");
        assert_eq!(mode(&unit_path), 0o644);
        let unit = std::fs::read_to_string(&unit_path).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/local/sbin/ha-agent run -f"),
            "{unit}"
        );
        assert!(
            !unit.contains(PACKAGED_BIN),
            "every binary path rewritten:\n{unit}"
        );
        for line in [
            "Type=notify",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON",
        ] {
            assert!(
                unit.lines().any(|l| l.starts_with(line)),
                "no {line}:\n{unit}"
            );
        }
        // An operator's /etc/default/ha-agent is kept.
        let default = dest.join("etc/default/ha-agent");
        std::fs::write(&default, "HA_AGENT_OPTS=\"--datapath socket\"\n").unwrap();
        let lines = install.apply().unwrap();
        assert!(lines.iter().any(|l| l.contains("kept")), "{lines:?}");
        assert_eq!(
            std::fs::read_to_string(&default).unwrap(),
            "HA_AGENT_OPTS=\"--datapath socket\"\n"
        );
        std::fs::remove_dir_all(&dest).unwrap();
    }
}

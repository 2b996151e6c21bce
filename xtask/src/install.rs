//! `cargo xtask install`: builds ha-agent (eBPF included, release) and installs it as a
//! systemd service under /usr/local: the stripped binary to /usr/local/sbin, the unit
//! (dist/ha-agent.service, the binary path of its `Exec*=` lines rewritten) and its drop-in
//! `conflicts-keepalived.conf` to /etc/systemd/system, /etc/default/ha-agent if there is none,
//! the man pages and shell completions (`ha-agent generate-docs`), the Grafana dashboard and
//! the alert rules; then `systemctl daemon-reload` when systemd runs. Enabling the service is
//! left to the operator (it replaces keepalived: stop that first).

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{root, run};

/// The binary path in dist/ha-agent.service (the .deb's) and the one `install` uses.
pub const PACKAGED_BIN: &str = "/usr/sbin/ha-agent";
pub const LOCAL_BIN: &str = "/usr/local/sbin/ha-agent";

/// The drop-in that makes ha-agent and keepalived exclude each other (dist/ha-agent.service.d/).
pub const DROP_IN: &str = "ha-agent.service.d/conflicts-keepalived.conf";

/// The man pages `ha-agent generate-docs` writes (DIR/man/NAME), each installed gzipped in
/// share/man/man<section>.
pub const MAN_PAGES: [&str; 5] = [
    "ha-agent.8",
    "ha-agent-run.8",
    "ha-agent-status.8",
    "ha-agent-check-config.8",
    "ha-agent.conf.5",
];

/// One file to install: where it comes from, where it goes (absolute, before the destdir),
/// its mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub src: PathBuf,
    pub dst: String,
    pub mode: u32,
}

/// Under `prefix` (/usr/local for `install`, /usr for the .deb): the gzipped man pages in
/// `docs/man`, the completions in `docs/completions` (from `ha-agent generate-docs --out
/// DIR`, the man pages gzipped by [`generate_docs`]), the dashboard and the alert rules.
/// bash-completion and fish look under both prefixes; zsh reads vendor-completions under
/// /usr and site-functions under /usr/local (Debian's fpath).
pub fn doc_assets(docs: &Path, prefix: &str) -> Vec<Asset> {
    let mut assets: Vec<Asset> = MAN_PAGES
        .iter()
        .map(|page| {
            let section = page.rsplit('.').next().expect("NAME.SECTION");
            Asset {
                src: docs.join("man").join(format!("{page}.gz")),
                dst: format!("{prefix}/share/man/man{section}/{page}.gz"),
                mode: 0o644,
            }
        })
        .collect();
    let zsh = if prefix == "/usr" {
        "vendor-completions"
    } else {
        "site-functions"
    };
    let completions = docs.join("completions");
    for (src, dst) in [
        (
            "ha-agent.bash",
            "share/bash-completion/completions/ha-agent".to_owned(),
        ),
        ("_ha-agent", format!("share/zsh/{zsh}/_ha-agent")),
        (
            "ha-agent.fish",
            "share/fish/vendor_completions.d/ha-agent.fish".to_owned(),
        ),
    ] {
        assets.push(Asset {
            src: completions.join(src),
            dst: format!("{prefix}/{dst}"),
            mode: 0o644,
        });
    }
    let dist = root().join("dist");
    for (src, dst) in [
        (
            "grafana/ha-agent.json",
            "share/ha-agent/grafana/ha-agent.json",
        ),
        ("ha-agent.rules.yml", "share/ha-agent/ha-agent.rules.yml"),
    ] {
        assets.push(Asset {
            src: dist.join(src),
            dst: format!("{prefix}/{dst}"),
            mode: 0o644,
        });
    }
    assets
}

/// Runs `binary generate-docs --out out` and gzips the man pages in place (`gzip -9n`: no
/// name or time stamp inside, so the same pages give the same bytes).
pub fn generate_docs(binary: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    run(Command::new(binary)
        .args(["generate-docs", "--out"])
        .arg(out))
    .with_context(|| {
        format!(
            "{} generate-docs: the man pages and completions come from the binary",
            binary.display()
        )
    })?;
    for page in MAN_PAGES {
        let path = out.join("man").join(page);
        if !path.is_file() {
            bail!(
                "{} generate-docs wrote no {}: the pages installed are {MAN_PAGES:?}",
                binary.display(),
                path.display()
            );
        }
        run(Command::new("gzip").args(["-9nf"]).arg(&path))
            .context("gzip (Debian's gzip package) compresses the man pages")?;
    }
    Ok(())
}

pub fn run_install(destdir: Option<PathBuf>, no_build: bool) -> Result<()> {
    if !no_build {
        crate::build_ebpf()?;
        run(Command::new("cargo").args(["build", "--release", "--package", "ha-agent"]))?;
    }
    let binary = target_dir().join("release").join("ha-agent");
    let docs = target_dir().join("release").join("ha-agent-docs");
    generate_docs(&binary, &docs)?;
    let install = Install {
        binary,
        docs,
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
         `systemctl enable --now ha-agent`; `ha-agent status` shows the instances; \
         `man ha-agent`"
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

/// `unit` with the binary path of its `Exec*=` lines changed from `from` to `to`; comments
/// and every other line as they are.
pub fn rewrite_exec(unit: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for line in unit.split_inclusive('\n') {
        if line.starts_with("Exec") {
            out.push_str(&line.replace(from, to));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// What to install where: `destdir` prefixes every path (staging, tests); `None` is `/`.
pub struct Install {
    /// The release binary (stripped on the way).
    pub binary: PathBuf,
    /// What `generate_docs` wrote.
    pub docs: PathBuf,
    pub destdir: Option<PathBuf>,
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
        let bytes = stripped(&self.binary)?;
        write_replacing(&bin, &bytes, 0o755)?;
        done.push(format!("{} (0755, stripped)", bin.display()));

        let unit_src = root().join("dist").join("ha-agent.service");
        let unit = std::fs::read_to_string(&unit_src)
            .with_context(|| format!("reading {}", unit_src.display()))?;
        let unit = rewrite_exec(&unit, PACKAGED_BIN, LOCAL_BIN);
        let unit_dst = self.path("/etc/systemd/system/ha-agent.service");
        write_replacing(&unit_dst, unit.as_bytes(), 0o644)?;
        done.push(format!("{} (0644)", unit_dst.display()));

        // The operator masks the drop-in with a symlink to /dev/null to keep keepalived: kept.
        let drop_in = self.path(&format!("/etc/systemd/system/{DROP_IN}"));
        if drop_in.is_symlink() {
            done.push(format!("{} kept (masked)", drop_in.display()));
        } else {
            let src = root().join("dist").join(DROP_IN);
            let text = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
            write_replacing(&drop_in, &text, 0o644)?;
            done.push(format!("{} (0644)", drop_in.display()));
        }

        let default = self.path("/etc/default/ha-agent");
        if default.exists() {
            done.push(format!("{} kept (yours)", default.display()));
        } else {
            let src = root().join("dist").join("ha-agent.default");
            let text = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
            write_replacing(&default, &text, 0o644)?;
            done.push(format!("{} (0644)", default.display()));
        }

        for asset in doc_assets(&self.docs, "/usr/local") {
            let text = std::fs::read(&asset.src)
                .with_context(|| format!("reading {}", asset.src.display()))?;
            let dst = self.path(&asset.dst);
            write_replacing(&dst, &text, asset.mode)?;
            done.push(format!("{} ({:04o})", dst.display(), asset.mode));
        }
        Ok(done)
    }
}

/// The bytes of `binary` without its symbol table and debug sections (`strip`, binutils).
fn stripped(binary: &Path) -> Result<Vec<u8>> {
    if !binary.is_file() {
        bail!("{}: build it first (drop --no-build)", binary.display());
    }
    let out = std::env::temp_dir().join(format!("xtask-strip-{}", std::process::id()));
    let status = Command::new("strip")
        .arg("-o")
        .arg(&out)
        .arg(binary)
        .status()
        .context("strip (Debian's binutils package) removes the binary's symbols")?;
    if !status.success() {
        let _ = std::fs::remove_file(&out);
        bail!(
            "strip -o {} {} failed ({status})",
            out.display(),
            binary.display()
        );
    }
    let bytes = std::fs::read(&out).with_context(|| format!("reading {}", out.display()));
    let _ = std::fs::remove_file(&out);
    bytes
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

/// `systemd-analyze security --offline=true UNIT`'s overall exposure (0 to 10; lower is
/// safer), and `systemd-analyze verify UNIT`'s complaints (empty when it accepts the unit).
/// `man_path` is where verify looks for the pages `Documentation=` names.
pub fn analyze_unit(unit: &Path, man_path: &Path) -> Result<(f64, String)> {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .context("systemd-analyze (Debian's systemd package) scores the unit")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let score = text
        .lines()
        .find_map(|l| {
            let rest = l.split("Overall exposure level for ").nth(1)?;
            rest.split(": ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .with_context(|| {
            format!(
                "no overall exposure in `systemd-analyze security` of {}:\n{text}{}",
                unit.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .env("MANPATH", man_path)
        .output()
        .context("systemd-analyze verify")?;
    let mut complaints = String::from_utf8_lossy(&verify.stderr).into_owned();
    if !verify.status.success() {
        complaints.push_str(&format!("(exit {})\n", verify.status));
    }
    Ok((score, complaints))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A docs directory as `ha-agent generate-docs` writes it (the contract), pages gzipped.
    fn fake_docs(dir: &Path) {
        std::fs::create_dir_all(dir.join("man")).unwrap();
        std::fs::create_dir_all(dir.join("completions")).unwrap();
        for page in MAN_PAGES {
            let (name, section) = page.rsplit_once('.').unwrap();
            let path = dir.join("man").join(page);
            std::fs::write(
                &path,
                format!(".TH {name} {section}\n.SH NAME\n{name} \\- a test page\n"),
            )
            .unwrap();
            let status = Command::new("gzip")
                .arg("-9nf")
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
        }
        for name in ["ha-agent.bash", "_ha-agent", "ha-agent.fish"] {
            std::fs::write(dir.join("completions").join(name), "# completion\n").unwrap();
        }
    }

    fn has_symbols(path: &Path) -> bool {
        let out = Command::new("readelf")
            .args(["-S", "-W"])
            .arg(path)
            .output()
            .expect("readelf (binutils)");
        assert!(out.status.success(), "readelf -S {}", path.display());
        String::from_utf8_lossy(&out.stdout).contains(" .symtab ")
    }

    #[test]
    fn installs_stripped_binary_unit_drop_in_docs_and_default_under_destdir() {
        let dest = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest).unwrap();
        let docs = dest.join("docs");
        fake_docs(&docs);
        // This test's own executable: an ELF with a symbol table, as a release build has.
        let binary = std::env::current_exe().unwrap();
        assert!(has_symbols(&binary));
        let install = Install {
            binary: binary.clone(),
            docs,
            destdir: Some(dest.clone()),
        };
        install.apply().unwrap();
        let bin = dest.join("usr/local/sbin/ha-agent");
        assert!(!has_symbols(&bin), "{} is stripped", bin.display());
        assert!(std::fs::metadata(&bin).unwrap().len() < std::fs::metadata(&binary).unwrap().len());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&bin), 0o755);

        let unit_path = dest.join("etc/systemd/system/ha-agent.service");
        assert_eq!(mode(&unit_path), 0o644);
        let unit = std::fs::read_to_string(&unit_path).unwrap();
        let source = std::fs::read_to_string(root().join("dist/ha-agent.service")).unwrap();
        for (line, src) in unit.lines().zip(source.lines()) {
            if line.starts_with("Exec") {
                assert!(!line.contains(PACKAGED_BIN), "not rewritten: {line}");
            } else {
                // Comments (which name both paths) and every other line as written.
                assert_eq!(line, src);
            }
        }
        assert_eq!(unit.lines().count(), source.lines().count());
        for line in [
            "ExecStartPre=/usr/local/sbin/ha-agent check-config -f",
            "ExecStart=/usr/local/sbin/ha-agent run -f",
            "Type=notify",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON",
            "RuntimeDirectory=ha-agent",
            "UMask=0077",
            "ProtectSystem=strict",
            "LimitNOFILE=",
        ] {
            assert!(
                unit.lines().any(|l| l.starts_with(line)),
                "no {line}:\n{unit}"
            );
        }
        // Conflicts= lives in the drop-in only, so that masking it keeps keepalived.
        assert!(!unit.lines().any(|l| l.starts_with("Conflicts=")), "{unit}");
        assert!(
            unit.lines().next().unwrap().starts_with('#') && !unit.contains("a drop-in for"),
            "the header calls the unit a drop-in"
        );
        let drop_in = dest.join("etc/systemd/system").join(DROP_IN);
        let text = std::fs::read_to_string(&drop_in).unwrap();
        assert!(
            text.lines().any(|l| l == "Conflicts=keepalived.service"),
            "{text}"
        );

        for page in MAN_PAGES {
            let section = page.rsplit('.').next().unwrap();
            let p = dest.join(format!("usr/local/share/man/man{section}/{page}.gz"));
            assert_eq!(mode(&p), 0o644, "{}", p.display());
        }
        for p in [
            "usr/local/share/bash-completion/completions/ha-agent",
            "usr/local/share/zsh/site-functions/_ha-agent",
            "usr/local/share/fish/vendor_completions.d/ha-agent.fish",
            "usr/local/share/ha-agent/grafana/ha-agent.json",
            "usr/local/share/ha-agent/ha-agent.rules.yml",
        ] {
            assert_eq!(mode(&dest.join(p)), 0o644, "{p}");
        }

        // systemd accepts the staged unit (its binary and man pages where it looks for them)
        // and scores its sandbox below 5 (the unhardened unit scored 7.7, "EXPOSED").
        let check = dest.join("check");
        std::fs::create_dir_all(&check).unwrap();
        let staged = check.join("ha-agent.service");
        std::fs::write(
            &staged,
            rewrite_exec(&unit, LOCAL_BIN, bin.to_str().unwrap()),
        )
        .unwrap();
        let (score, complaints) = analyze_unit(&staged, &dest.join("usr/local/share/man")).unwrap();
        assert!(score < 5.0, "exposure {score}");
        assert!(
            complaints.is_empty(),
            "systemd-analyze verify:\n{complaints}"
        );

        // A masked drop-in and an operator's /etc/default/ha-agent are kept.
        std::fs::remove_file(&drop_in).unwrap();
        std::os::unix::fs::symlink("/dev/null", &drop_in).unwrap();
        let default = dest.join("etc/default/ha-agent");
        std::fs::write(&default, "HA_AGENT_OPTS=\"--datapath socket\"\n").unwrap();
        let lines = install.apply().unwrap();
        assert!(
            lines.iter().any(|l| l.contains("kept (masked)")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("kept (yours)")),
            "{lines:?}"
        );
        assert_eq!(
            std::fs::read_link(&drop_in).unwrap(),
            Path::new("/dev/null")
        );
        assert_eq!(
            std::fs::read_to_string(&default).unwrap(),
            "HA_AGENT_OPTS=\"--datapath socket\"\n"
        );
        std::fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn only_exec_lines_are_rewritten() {
        let unit = "# the .deb's /usr/sbin/ha-agent\nExecStart=/usr/sbin/ha-agent run\n\
                    Description=/usr/sbin/ha-agent\nExecReload=/bin/kill -HUP $MAINPID\n";
        assert_eq!(
            rewrite_exec(unit, PACKAGED_BIN, LOCAL_BIN),
            "# the .deb's /usr/sbin/ha-agent\nExecStart=/usr/local/sbin/ha-agent run\n\
             Description=/usr/sbin/ha-agent\nExecReload=/bin/kill -HUP $MAINPID\n"
        );
    }
}

//! `cargo xtask dist`: a Debian package with cargo-deb (installed with `cargo install --locked`
//! at [`CARGO_DEB_VERSION`] when missing). It builds the release binary, writes what the
//! package ships beside it in target/release/ha-agent-docs/ (the man pages and completions
//! from `ha-agent generate-docs`, and the README with its links rewritten to the files the
//! package ships), then runs cargo-deb, which reads `[package.metadata.deb]` in
//! ha-agent/Cargo.toml. The package ships /usr/sbin/ha-agent, the unit (disabled: it replaces
//! keepalived, the operator enables it) and its keepalived drop-in, /etc/default/ha-agent, the
//! man pages, completions, the Grafana dashboard and alert rules under /usr/share/ha-agent, and
//! the README, changelog and examples/ under /usr/share/doc/ha-agent.
//!
//! [`check`] (run by `cargo xtask test`) builds the package and installs it into a scratch
//! root the way a new user's host would see it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{install, root, run};

/// The cargo-deb release the package is built with (a fresh machine installs this one).
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Where the packaged README sits in the package.
const README_DIR: &str = "usr/share/doc/ha-agent";

/// Files of the source tree the package ships, and where (paths inside the package). A link
/// in the README to one of these points at the installed file; a link to anything else
/// becomes plain text naming the source path.
const SHIPPED: &[(&str, &str)] = &[
    (
        "dist/ha-agent.service",
        "usr/lib/systemd/system/ha-agent.service",
    ),
    (
        "dist/ha-agent.service.d/conflicts-keepalived.conf",
        "usr/lib/systemd/system/ha-agent.service.d/conflicts-keepalived.conf",
    ),
    ("dist/ha-agent.default", "etc/default/ha-agent"),
    (
        "dist/grafana/ha-agent.json",
        "usr/share/ha-agent/grafana/ha-agent.json",
    ),
    (
        "dist/ha-agent.rules.yml",
        "usr/share/ha-agent/ha-agent.rules.yml",
    ),
    ("examples/", "usr/share/doc/ha-agent/examples/"),
];

/// Builds the .deb and returns its path.
pub fn run_dist() -> Result<PathBuf> {
    crate::build_ebpf()?;
    run(Command::new("cargo").args(["build", "--release", "--package", "ha-agent"]))?;
    let release = install::target_dir().join("release");
    let docs = release.join("ha-agent-docs");
    install::generate_docs(&release.join("ha-agent"), &docs)?;
    let readme = std::fs::read_to_string(root().join("README.md")).context("reading README.md")?;
    std::fs::write(docs.join("README.md"), packaged_readme(&readme))
        .context("writing the packaged README")?;

    let version = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if !version
        .as_deref()
        .is_some_and(|v| v.split_whitespace().any(|w| w == CARGO_DEB_VERSION))
    {
        eprintln!(
            "xtask dist: installing cargo-deb {CARGO_DEB_VERSION} (had: {})",
            version.as_deref().unwrap_or("none").trim()
        );
        run(Command::new("cargo").args([
            "install",
            &format!("cargo-deb@{CARGO_DEB_VERSION}"),
            "--locked",
        ]))?;
    }
    // --no-build: the binary the docs were generated from is the one packaged.
    run(Command::new("cargo").args(["deb", "--package", "ha-agent", "--no-build"]))?;
    let dir = install::target_dir().join("debian");
    let mut debs: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let Some(deb) = debs.pop() else {
        bail!("cargo deb made no .deb in {}", dir.display());
    };
    eprintln!("xtask dist: {}", deb.display());
    Ok(deb)
}

/// One markdown link `[text](target)` outside fenced code: its byte range, text and target.
#[derive(Debug, PartialEq, Eq)]
struct Link {
    start: usize,
    end: usize,
    text: String,
    target: String,
}

fn links(markdown: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut fenced = false;
    for line in markdown.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            let mut i = 0;
            while let Some(open) = line[i..].find('[').map(|o| o + i) {
                let Some(close) = line[open..].find("](").map(|c| c + open) else {
                    break;
                };
                let Some(end) = line[close..].find(')').map(|e| e + close) else {
                    break;
                };
                let text = &line[open + 1..close];
                if text.contains('[') || open > 0 && line.as_bytes()[open - 1] == b'!' {
                    i = open + 1;
                    continue;
                }
                out.push(Link {
                    start: offset + open,
                    end: offset + end + 1,
                    text: text.to_owned(),
                    target: line[close + 2..end].to_owned(),
                });
                i = end + 1;
            }
        }
        offset += line.len();
    }
    out
}

/// Whether a link target is a path in the same tree (not a URL, an anchor or an absolute path).
fn is_relative(target: &str) -> bool {
    !(target.is_empty()
        || target.starts_with('#')
        || target.starts_with('/')
        || target.contains("://")
        || target.starts_with("mailto:"))
}

/// `target` (relative to the source tree's root) as a path relative to the packaged README,
/// when the package ships it.
fn shipped_link(target: &str) -> Option<String> {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, format!("#{a}")),
        None => (target, String::new()),
    };
    let installed = SHIPPED.iter().find_map(|(src, dst)| {
        if src.ends_with('/') {
            // A shipped directory: itself, or a file in it that exists in the source tree.
            let rest = path.strip_prefix(src)?;
            (rest.is_empty() || root().join(path).is_file()).then(|| format!("{dst}{rest}"))
        } else {
            (path == *src).then(|| (*dst).to_owned())
        }
    })?;
    let up = "../".repeat(README_DIR.split('/').count());
    let relative = match installed.strip_prefix(&format!("{README_DIR}/")) {
        Some(inside) => inside.to_owned(),
        None => format!("{up}{installed}"),
    };
    Some(format!("{relative}{anchor}"))
}

/// The README as the package ships it: links to files the package ships point at them where
/// they are installed; links to other source files (code, benchmark reports, docs/) become
/// plain text naming the source path, since the package has no copy to open.
pub fn packaged_readme(readme: &str) -> String {
    let mut out = String::with_capacity(readme.len());
    let mut last = 0;
    for link in links(readme) {
        if !is_relative(&link.target) {
            continue;
        }
        out.push_str(&readme[last..link.start]);
        match shipped_link(&link.target) {
            Some(target) => out.push_str(&format!("[{}]({target})", link.text)),
            None if link.text == format!("`{}`", link.target) => {
                out.push_str(&format!("{} (in the source repository)", link.text));
            }
            None => out.push_str(&format!(
                "{} (`{}` in the source repository)",
                link.text, link.target
            )),
        }
        last = link.end;
    }
    out.push_str(&readme[last..]);
    out
}

/// Builds the .deb with [`run_dist`], installs it into a scratch root and checks it as a new
/// user would find it: fails naming what is missing or wrong.
///
/// The scratch root gets `dpkg --root=DIR --unpack --force-depends`: dpkg's own installation
/// (files, conffiles, its database) without a base system. The maintainer scripts are not
/// run: `--configure` would run them chrooted into DIR, which has no shell, and
/// `--force-script-chrootless` would run their systemd snippets against this host's systemd.
pub fn check() -> Result<()> {
    let deb = run_dist()?;
    let scratch = install::target_dir().join("dist-check");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("removing {}", scratch.display()))?;
    }
    let result = check_in(&deb, &scratch);
    if result.is_ok() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("removing {}", scratch.display()))?;
    } else {
        eprintln!("xtask dist check: left {} to look at", scratch.display());
    }
    result
}

fn field(deb: &Path, name: &str) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(name)
        .output()
        .context("dpkg-deb (Debian's dpkg package)")?;
    if !out.status.success() {
        bail!(
            "dpkg-deb --field {} {name}: {}",
            deb.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_in(deb: &Path, scratch: &Path) -> Result<()> {
    let mut problems = Vec::new();

    // The control file, as `apt show` prints it.
    let maintainer = field(deb, "Maintainer")?;
    let address = maintainer
        .split_once('<')
        .and_then(|(_, a)| a.trim().strip_suffix('>'));
    if !address.is_some_and(|a| a.contains('@')) {
        problems.push(format!("Maintainer has no contact address: {maintainer:?}"));
    }
    let description = field(deb, "Description")?;
    let summary = description.lines().next().unwrap_or_default();
    if summary.is_empty() || summary.chars().count() >= 80 {
        problems.push(format!(
            "the summary must be 1 to 79 characters (apt cuts longer ones): {} {summary:?}",
            summary.chars().count()
        ));
    }
    if description.lines().count() < 2 {
        problems.push("no extended description".into());
    }
    let version = field(deb, "Version")?.trim().to_owned();

    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(scratch.join(dir))?;
    }
    for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(scratch.join(file), "")?;
    }
    run(Command::new("dpkg")
        .arg(format!("--root={}", scratch.display()))
        .args(["--unpack", "--force-depends"])
        .arg(deb))?;
    let status = Command::new("dpkg")
        .arg(format!("--root={}", scratch.display()))
        .args(["--status", "ha-agent"])
        .output()?;
    let status = String::from_utf8_lossy(&status.stdout);
    if !status.contains("Status: install ok unpacked") || !status.contains("/etc/default/ha-agent")
    {
        problems.push(format!(
            "dpkg does not list ha-agent unpacked with its conffile:\n{status}"
        ));
    }

    let mut expected: Vec<String> = vec![
        "usr/sbin/ha-agent".into(),
        "etc/default/ha-agent".into(),
        "usr/lib/systemd/system/ha-agent.service".into(),
        format!("usr/lib/systemd/system/{}", install::DROP_IN),
        "usr/share/doc/ha-agent/README.md".into(),
        "usr/share/doc/ha-agent/changelog.Debian.gz".into(),
        "usr/share/doc/ha-agent/copyright".into(),
    ];
    let docs = install::target_dir().join("release/ha-agent-docs");
    expected.extend(
        install::doc_assets(&docs, "/usr")
            .into_iter()
            .map(|a| a.dst.trim_start_matches('/').to_owned()),
    );
    for path in &expected {
        // A conffile waits as NAME.dpkg-new until --configure moves it into place.
        let conffile = scratch.join(format!("{path}.dpkg-new"));
        let unpacked =
            scratch.join(path).is_file() || path.starts_with("etc/") && conffile.is_file();
        if !unpacked {
            problems.push(format!("the package does not ship /{path}"));
        }
    }

    // The binary runs and says which build it is: version, commit, datapaths built in.
    let out = Command::new(scratch.join("usr/sbin/ha-agent"))
        .arg("--version")
        .output()
        .context("running the installed ha-agent --version")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success()
        || !text.starts_with("ha-agent ")
        || !text.contains("commit ")
        || !text.contains("datapaths: ")
    {
        problems.push(format!("ha-agent --version: {text}"));
    }

    // Every page renders, without a warning from groff.
    for page in install::MAN_PAGES {
        let section = page.rsplit('.').next().expect("NAME.SECTION");
        let path = scratch.join(format!("usr/share/man/man{section}/{page}.gz"));
        let out = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .context("man (Debian's man-db package) renders the pages")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || out.stdout.len() < 200 || !stderr.trim().is_empty() {
            problems.push(format!(
                "man -l {}: exit {}, {} bytes, stderr: {stderr}",
                path.display(),
                out.status,
                out.stdout.len()
            ));
        }
    }

    // The changelog is this version's.
    let changelog = Command::new("gzip")
        .arg("-dc")
        .arg(scratch.join("usr/share/doc/ha-agent/changelog.Debian.gz"))
        .output()?;
    let first = String::from_utf8_lossy(&changelog.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if !first.starts_with(&format!("ha-agent ({version})")) {
        problems.push(format!(
            "the changelog's first entry is not version {version} (dist/debian/changelog): \
             {first:?}"
        ));
    }

    // The README links only to what the package ships.
    let readme_dir = scratch.join(README_DIR);
    let readme = std::fs::read_to_string(readme_dir.join("README.md"))?;
    for link in links(&readme) {
        if is_relative(&link.target) {
            let path = link.target.split('#').next().unwrap_or_default();
            if !readme_dir.join(path).exists() {
                problems.push(format!(
                    "the packaged README links to {} ({}), not in the package",
                    link.target, link.text
                ));
            }
        }
    }

    // systemd accepts the unit as installed (its binary at the scratch root) and its
    // sandbox scores below 5.
    let unit = std::fs::read_to_string(scratch.join("usr/lib/systemd/system/ha-agent.service"))?;
    let staged_dir = scratch.join("verify");
    std::fs::create_dir_all(&staged_dir)?;
    let staged = staged_dir.join("ha-agent.service");
    let bin = scratch.join("usr/sbin/ha-agent");
    std::fs::write(
        &staged,
        install::rewrite_exec(&unit, install::PACKAGED_BIN, &bin.display().to_string()),
    )?;
    let (score, complaints) = install::analyze_unit(&staged, &scratch.join("usr/share/man"))?;
    if score >= 5.0 {
        problems.push(format!("systemd-analyze security scores the unit {score}"));
    }
    if !complaints.is_empty() {
        problems.push(format!("systemd-analyze verify: {complaints}"));
    }

    if !problems.is_empty() {
        bail!(
            "{}: {} problem(s):\n  {}",
            deb.display(),
            problems.len(),
            problems.join("\n  ")
        );
    }
    eprintln!(
        "xtask dist check: {} ({version}) installs {} checked files; --version, man -l, \
         README links, unit verified (exposure {score})",
        deb.display(),
        expected.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_readme_points_at_shipped_files_and_names_the_others() {
        let readme = "See [`dist/ha-agent.service`](dist/ha-agent.service) and the \
                      [`examples/`](examples/), [one](examples/unicast.conf#top), the \
                      [full report](bench/results/x.md), [`docs/fuzzing.md`](docs/fuzzing.md), \
                      [a section](#install), [a site](https://example.invalid/x).\n\
                      ```\nnot [a](link) in code\n```\n";
        let packaged = packaged_readme(readme);
        assert_eq!(
            packaged,
            "See [`dist/ha-agent.service`](../../../../usr/lib/systemd/system/ha-agent.service) \
             and the [`examples/`](examples/), [one](examples/unicast.conf#top), the \
             full report (`bench/results/x.md` in the source repository), \
             `docs/fuzzing.md` (in the source repository), \
             [a section](#install), [a site](https://example.invalid/x).\n\
             ```\nnot [a](link) in code\n```\n"
        );
    }

    /// Every relative link of the real README, once packaged, resolves to a file the package
    /// ships (as listed in SHIPPED) or inside the doc directory.
    #[test]
    fn every_link_of_the_packaged_readme_is_to_a_shipped_file() {
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        let packaged = packaged_readme(&readme);
        let shipped: Vec<String> = SHIPPED.iter().map(|(_, d)| (*d).to_owned()).collect();
        let relative: Vec<Link> = links(&packaged)
            .into_iter()
            .filter(|l| is_relative(&l.target))
            .collect();
        assert!(
            !relative.is_empty(),
            "the README links to the unit and examples"
        );
        for link in relative {
            let path = link.target.split('#').next().unwrap();
            // Resolve against usr/share/doc/ha-agent/.
            let mut parts: Vec<&str> = README_DIR.split('/').collect();
            for part in path.split('/') {
                match part {
                    ".." => {
                        parts.pop();
                    }
                    "" => {}
                    p => parts.push(p),
                }
            }
            let resolved = parts.join("/");
            assert!(
                shipped.iter().any(|s| resolved == s.trim_end_matches('/')
                    || s.ends_with('/') && resolved.starts_with(s.as_str())),
                "{} -> {resolved}: not shipped",
                link.target
            );
        }
    }
}

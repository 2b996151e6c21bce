//! The working tree's state, so that `cargo xtask test` fails when a run changes it: a run on
//! a fresh clone must leave the clone as it was (a lockfile resolved anew, a report written
//! into the tree, a generated file out of date all show up here), or the next build is not the
//! one that was tested, and the bench reports "with uncommitted changes".

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash as _, Hasher as _},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::root;

/// `git status` of the tracked and not-ignored files, and a hash of their differences to HEAD.
#[derive(Debug, PartialEq, Eq)]
pub struct TreeState {
    status: Vec<String>,
    diff_hash: u64,
}

fn git(args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root())
        .output()
        .context(
            "running git: `cargo xtask test` checks that a run leaves the tree as it found it",
        )?;
    if !out.status.success() {
        bail!(
            "`git {}` failed in {}: {} (`cargo xtask test` runs in a git checkout, to check that \
             a run leaves the tree as it found it)",
            args.join(" "),
            root().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

impl TreeState {
    pub fn read() -> Result<TreeState> {
        let status = String::from_utf8_lossy(&git(&["status", "--porcelain=v1"])?)
            .lines()
            .map(str::to_owned)
            .collect();
        let mut hasher = DefaultHasher::new();
        git(&["diff", "HEAD", "--binary"])?.hash(&mut hasher);
        Ok(TreeState {
            status,
            diff_hash: hasher.finish(),
        })
    }

    /// Fails, naming the files, when the tree is not as `self` found it.
    pub fn check_unchanged(&self) -> Result<()> {
        let now = TreeState::read()?;
        if now == *self {
            return Ok(());
        }
        let changed: Vec<&String> = now
            .status
            .iter()
            .filter(|l| !self.status.contains(l))
            .collect();
        bail!(
            "the run changed the working tree (a test must leave the checkout as it found it: \
             commit the regenerated file, or write it under target/ or a temporary directory):\n  \
             {}\n`git status` and `git diff` show the changes",
            if changed.is_empty() {
                "files that were already modified changed further".to_owned()
            } else {
                changed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            }
        )
    }
}

/// Fails, saying how to update it, when a lockfile does not hold what its manifest needs: cargo
/// would resolve the missing crates anew at build time (a build of versions nobody reviewed)
/// and rewrite the lockfile in the tree. `nightly` for the fuzz workspace, built with nightly.
pub fn lockfile_current(manifest: &std::path::Path, nightly: bool) -> Result<()> {
    let mut cmd = if nightly {
        crate::nightly_cargo()
    } else {
        Command::new("cargo")
    };
    let out = cmd
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .current_dir(root())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        let lock = manifest.with_file_name("Cargo.lock");
        bail!(
            "{} is not current for {} (a dependency changed without its lockfile): update it              with `cargo{} update --workspace --manifest-path {}` and commit it\n{}",
            lock.display(),
            manifest.display(),
            if nightly { " +nightly" } else { "" },
            manifest.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file written into the tree makes the check fail and names it; removed, it passes.
    #[test]
    fn a_file_left_in_the_tree_fails_the_check() {
        let before = TreeState::read().unwrap();
        let stray = root().join(format!("xtask-tree-check-{}.tmp", std::process::id()));
        std::fs::write(&stray, "left behind").unwrap();
        let err = before.check_unchanged();
        std::fs::remove_file(&stray).unwrap();
        let err = err.expect_err("a stray file is a change");
        assert!(
            err.to_string().contains("xtask-tree-check-"),
            "names the file: {err}"
        );
        before.check_unchanged().unwrap();
    }

    /// A manifest whose lockfile lacks one of its dependencies is refused with the command that
    /// updates it; with the lockfile current, it passes (and the lockfile is not rewritten).
    #[test]
    fn a_lockfile_missing_a_dependency_is_refused() {
        let dir = std::env::temp_dir().join(format!("xtask-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, deps) in [("a", "b = { path = \"../b\" }"), ("b", "")] {
            let src = dir.join(name).join("src");
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("lib.rs"), "").unwrap();
            std::fs::write(
                dir.join(name).join("Cargo.toml"),
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                     [workspace]\n[dependencies]\n{deps}\n"
                ),
            )
            .unwrap();
        }
        let manifest = dir.join("a").join("Cargo.toml");
        let lock = dir.join("a").join("Cargo.lock");
        // The lockfile of `a` alone, as if `b` had been added without updating it.
        std::fs::write(
            &lock,
            "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        let err = lockfile_current(&manifest, false).expect_err("b is not in the lockfile");
        assert!(err.to_string().contains("update --workspace"), "{err}");
        assert!(!std::fs::read_to_string(&lock).unwrap().contains("\"b\""));
        Command::new("cargo")
            .args(["generate-lockfile", "--offline", "--manifest-path"])
            .arg(&manifest)
            .status()
            .unwrap();
        lockfile_current(&manifest, false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

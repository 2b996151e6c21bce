//! Embeds the eBPF object built by `cargo xtask build-ebpf`. Without it the build stops with one
//! line saying so: a binary with an empty stub in place of the programs would fail later, at runtime.
//!
//! Also sets `HA_AGENT_COMMIT`, the commit `ha-agent --version` names: the short hash, with
//! `-dirty` when the sources the binary is built from differ from it, or `unknown` outside git
//! (a crate tarball).
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// The paths of the workspace the binary is built from (relative to the workspace root): a
/// change elsewhere (README, tests) neither makes it `-dirty` nor reruns this script.
const SOURCES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "ha-agent/Cargo.toml",
    "ha-agent/build.rs",
    "ha-agent/src",
    "ha-common",
    "ha-ebpf",
];

fn main() {
    println!("cargo:rerun-if-env-changed=HA_EBPF_OBJECT");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let object = match env::var_os("HA_EBPF_OBJECT") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| manifest.join("..").join("target"));
            target
                .join("bpfel-unknown-none")
                .join("release")
                .join("ha-ebpf")
        }
    };
    println!("cargo:rerun-if-changed={}", object.display());
    if !object.is_file() {
        eprintln!(
            "error: eBPF object {} not found: run `cargo xtask build-ebpf` first",
            object.display()
        );
        std::process::exit(1);
    }
    println!("cargo:rustc-env=HA_EBPF_OBJECT={}", object.display());
    let (commit, date) = commit(&manifest).unwrap_or_else(|| ("unknown".into(), String::new()));
    println!("cargo:rustc-env=HA_AGENT_COMMIT={commit}");
    println!("cargo:rustc-env=HA_AGENT_COMMIT_DATE={date}");
}

/// `git` in `dir`, its output if it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The short hash of HEAD, `-dirty` when [`SOURCES`] differ from it, and its date (YYYY-MM-DD,
/// the man pages' date); None outside a git checkout
/// of this workspace (no git, no repository, or a crate tarball unpacked inside someone else's
/// repository, where this build script is not a tracked file).
fn commit(manifest: &Path) -> Option<(String, String)> {
    git(manifest, &["ls-files", "--error-unmatch", "build.rs"])?;
    let root = manifest.parent()?;
    // Rerun when HEAD moves: HEAD itself (a checkout), its reflog (every commit, reset or
    // checkout of this worktree appends to it, and to it alone: other worktrees' commits do not
    // rebuild this one), the branch's file and packed-refs (where the branch lives without a
    // reflog). Only paths that exist: cargo reruns at every build for a missing one.
    let mut watched = vec!["HEAD".to_string(), "logs/HEAD".to_string()];
    watched.extend(git(root, &["symbolic-ref", "-q", "HEAD"]));
    watched.push("packed-refs".to_string());
    for path in &watched {
        if let Some(p) = git(
            root,
            &["rev-parse", "--path-format=absolute", "--git-path", path],
        ) && Path::new(&p).exists()
        {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    // And when a source changes: that is what makes the binary dirty or clean again.
    for source in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }
    let hash = git(root, &["rev-parse", "--short", "HEAD"])?;
    // Untracked files count: a new module not yet added is in the binary all the same.
    let mut status = vec!["status", "--porcelain", "--"];
    status.extend(SOURCES);
    let dirty = !git(root, &status)?.is_empty();
    let date = git(root, &["log", "-1", "--format=%cs", "HEAD"])?;
    Some((if dirty { format!("{hash}-dirty") } else { hash }, date))
}

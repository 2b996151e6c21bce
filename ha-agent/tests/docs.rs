//! What an operator gets from the packaged docs: `ha-agent generate-docs` writes pages that
//! `man` renders without a warning and a bash completion that completes, and `--version` names
//! the commit and the datapaths.
//!
//! `man`, `groff` and `zsh` must be installed (Debian: man-db, groff-base, zsh; `cargo xtask
//! test` installs them); the tests fail, never skip, without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ha-agent");

/// The output of `program args`, or a failure naming the Debian package that provides it.
fn run(program: &str, args: &[&str], package: &str) -> Output {
    Command::new(program)
        .args(args)
        // A locale every glibc has: man warns on stderr about one that is not installed.
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install it with `apt-get install {package}`")
        })
}

/// A scratch directory, removed on drop (also on panic).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ha-agent-docs-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ha-agent generate-docs --out DIR`, which must succeed.
fn generate(out: &Path) {
    let done = Command::new(BIN)
        .args(["generate-docs", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "generate-docs failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn man_renders_every_page_without_warnings() {
    let scratch = Scratch::new("man");
    generate(&scratch.0);
    // groff is what man runs: say which package lacks when it is man-db's groff that is missing.
    run("groff", &["--version"], "groff-base");
    let pages = [
        ("ha-agent.8", "ha-agent - VRRP failover agent"),
        ("ha-agent-run.8", "--allow-unsupported"),
        ("ha-agent-status.8", "--control-socket"),
        ("ha-agent-check-config.8", "--config-id"),
        ("ha-agent.conf.5", "vrrp_instance"),
    ];
    for (page, says) in pages {
        let path = scratch.0.join("man").join(page);
        let path = path.to_str().unwrap();
        let shown = run(
            "man",
            &["--warnings", "-E", "UTF-8", "-l", path],
            "man-db groff-base",
        );
        let stderr = String::from_utf8_lossy(&shown.stderr);
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.status.success(), "man -l {page} failed: {stderr}");
        assert!(stderr.is_empty(), "man -l {page} warns:\n{stderr}");
        assert!(
            text.contains(says),
            "man -l {page} does not show {says:?}:\n{text}"
        );
        // mandb reads the NAME line so (what `whatis` and `man -k` answer with).
        let name = page.rsplit_once('.').unwrap().0;
        let whatis = run("lexgrog", &[path], "man-db");
        let whatis = String::from_utf8_lossy(&whatis.stdout);
        assert!(
            whatis.contains(&format!("\"{name} - ")),
            "lexgrog does not read {page}'s NAME: {whatis}"
        );
    }
    // The conf page's keyword table, as an operator reads it: a refused keyword says so and how
    // to run anyway; a replaced one says it is ignored.
    let conf = run(
        "man",
        &[
            "-E",
            "UTF-8",
            "-l",
            scratch.0.join("man/ha-agent.conf.5").to_str().unwrap(),
        ],
        "man-db groff-base",
    );
    let text = String::from_utf8_lossy(&conf.stdout);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("track_bfd refused (ignored with a warning under --allow-unsupported)"),
        "{flat}"
    );
    assert!(
        flat.contains("smtp_server ignored, with a warning"),
        "{flat}"
    );
}

#[test]
fn bash_completion_completes_subcommands_and_options() {
    let scratch = Scratch::new("bash");
    generate(&scratch.0);
    let script = scratch.0.join("completions/ha-agent.bash");
    let script = script.to_str().unwrap();
    let checked = run("bash", &["-n", script], "bash");
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // As bash calls it on TAB: the function `complete -p ha-agent` names, with COMP_WORDS,
    // COMP_CWORD and (command, word, previous word); one line of candidates.
    let complete = |words: &[&str]| -> String {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let cword = words.len() - 1;
        let shell = format!(
            "source '{script}'\n\
             f=$(complete -p ha-agent | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')\n\
             [ -n \"$f\" ] || {{ echo 'no completion for ha-agent' >&2; exit 1; }}\n\
             COMP_WORDS=({})\nCOMP_CWORD={cword}\n\
             \"$f\" ha-agent '{}' '{}'\n\
             echo \"${{COMPREPLY[*]}}\"",
            quoted.join(" "),
            words[cword],
            words[cword - 1],
        );
        let done = run("bash", &["-c", &shell], "bash");
        assert!(
            done.status.success(),
            "completing {words:?}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        String::from_utf8_lossy(&done.stdout).trim().to_string()
    };
    assert_eq!(complete(&["ha-agent", "ru"]), "run");
    assert_eq!(complete(&["ha-agent", "check"]), "check-config");
    let top = complete(&["ha-agent", ""]);
    assert!(top.contains("status"), "{top}");
    assert!(
        !top.contains("generate-docs"),
        "the hidden subcommand is offered: {top}"
    );
    // A subcommand's options and an option's values (what clap_complete gets wrong for a
    // hyphenated binary name unless worked around).
    assert_eq!(complete(&["ha-agent", "run", "--datap"]), "--datapath");
    assert_eq!(
        complete(&["ha-agent", "run", "--datapath", ""]),
        "auto xdp socket"
    );
    assert_eq!(
        complete(&["ha-agent", "check-config", "--allow"]),
        "--allow-unsupported"
    );
}

#[test]
fn generate_docs_names_the_path_it_cannot_write() {
    let scratch = Scratch::new("unwritable");
    // A regular file where the output directory's man/ would go.
    std::fs::write(scratch.0.join("man"), "").unwrap();
    let done = Command::new(BIN)
        .args(["generate-docs", "--out"])
        .arg(&scratch.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&scratch.0.join("man").display().to_string()),
        "the error does not name the path: {stderr}"
    );
}

#[test]
fn version_names_the_commit_and_the_datapaths() {
    let done = Command::new(BIN).arg("--version").output().unwrap();
    assert!(done.status.success());
    let line = String::from_utf8(done.stdout).unwrap();
    let want_start = format!("ha-agent {} (commit ", env!("CARGO_PKG_VERSION"));
    let rest = line
        .strip_prefix(&want_start)
        .and_then(|r| r.strip_suffix(", datapaths: xdp socket)\n"))
        .unwrap_or_else(|| panic!("{line:?} is not `{want_start}HASH, datapaths: xdp socket)`"));
    // This test runs in the checkout the binary was built from: the hash is HEAD's, `-dirty`
    // exactly when the binary's sources (build.rs's SOURCES) differ from it.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let git = |args: &[&str]| {
        let out = run("git", &[&["-C", root], args].concat(), "git");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let (hash, dirty) = match rest.strip_suffix("-dirty") {
        Some(hash) => (hash, true),
        None => (rest, false),
    };
    assert!(
        hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{hash:?} is not a short hash"
    );
    assert!(
        git(&["rev-parse", "HEAD"]).starts_with(hash),
        "{hash} is not HEAD"
    );
    let changed = git(&[
        "status",
        "--porcelain",
        "--",
        "Cargo.toml",
        "Cargo.lock",
        "ha-agent/Cargo.toml",
        "ha-agent/build.rs",
        "ha-agent/src",
        "ha-common",
        "ha-ebpf",
    ]);
    assert_eq!(
        dirty,
        !changed.is_empty(),
        "--version says dirty: {dirty}, git status: {changed:?}"
    );
}

/// The zsh completion parses, and compinit finds it for `ha-agent` in a directory of `fpath`
/// (the distributions' vendor-completions directory is one).
#[test]
fn zsh_completion_is_found_by_compinit() {
    let scratch = Scratch::new("zsh");
    generate(&scratch.0);
    let dir = scratch.0.join("completions");
    let dir = dir.to_str().unwrap();
    let checked = run("zsh", &["-n", &format!("{dir}/_ha-agent")], "zsh");
    assert!(
        checked.status.success(),
        "zsh -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let dump = scratch.0.join("zcompdump");
    let found = run(
        "zsh",
        &[
            "-f",
            "-c",
            &format!(
                "fpath=('{dir}' $fpath); autoload -Uz compinit; compinit -u -d '{}'; \
                 print -r -- ${{_comps[ha-agent]}}",
                dump.display()
            ),
        ],
        "zsh",
    );
    assert_eq!(
        String::from_utf8_lossy(&found.stdout).trim(),
        "_ha-agent",
        "compinit does not bind _ha-agent to ha-agent: {}",
        String::from_utf8_lossy(&found.stderr)
    );
}

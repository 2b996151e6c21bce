//! The man pages and shell completions, generated from the code so they cannot drift from it:
//! ha-agent(8) and one page per subcommand from the clap definitions (clap_mangen), with the
//! sections clap cannot know (FILES, SIGNALS, EXIT STATUS, SEE ALSO); ha-agent.conf(5) from the
//! keyword table (`config/keywords.rs`); bash, zsh and fish completions (clap_complete).
//!
//! `ha-agent generate-docs --out DIR` writes them with [`write`] in the layout the packaging
//! installs from: `man/ha-agent.8`, `man/ha-agent-SUBCOMMAND.8`, `man/ha-agent.conf.5`,
//! `completions/ha-agent.bash`, `completions/_ha-agent` (zsh), `completions/ha-agent.fish`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap_complete::Shell;
use clap_mangen::Man;
use roff::{Roff, bold, italic, roman};

use crate::config::keywords;

/// The footer of every page: the plain version, so a page changes only when its text does.
const SOURCE: &str = concat!("ha-agent ", env!("CARGO_PKG_VERSION"));
/// The pages' date: the commit's (YYYY-MM-DD), a blank when built outside git. Never empty:
/// `.TH` drops an empty argument, which would shift the footer and header into the wrong places.
fn date() -> &'static str {
    match env!("HA_AGENT_COMMIT_DATE") {
        "" => " ",
        date => date,
    }
}
/// The manual section 8 pages belong to, as other daemons' pages name it.
const MANUAL_8: &str = "System Administration";
/// The manual section 5 pages belong to.
const MANUAL_5: &str = "File Formats";

/// Every file [`write`] writes: its path under the output directory and its contents.
pub fn files(cli: &clap::Command) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = man_pages(cli)
        .into_iter()
        .map(|(name, text)| (Path::new("man").join(name), text.into_bytes()))
        .collect();
    out.push((
        Path::new("man").join("ha-agent.conf.5"),
        conf_page().into_bytes(),
    ));
    for (name, text) in completions(cli) {
        out.push((Path::new("completions").join(name), text));
    }
    out
}

/// Writes [`files`] under `out` (created if missing); the paths written. An error names the path
/// that could not be created or written.
pub fn write(cli: &clap::Command, out: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (relative, contents) in files(cli) {
        let path = out.join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The command as the pages show it: built (so subcommands have their `ha-agent-run` display
/// names and `ha-agent run` usage), without clap's `help` subcommand, with the plain version.
fn for_pages(cli: &clap::Command) -> clap::Command {
    let mut cmd = cli
        .clone()
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// ha-agent.8 and one `ha-agent-SUBCOMMAND.8` per visible subcommand: file name and roff text.
pub fn man_pages(cli: &clap::Command) -> Vec<(String, String)> {
    let cmd = for_pages(cli);
    let subcommands: Vec<&clap::Command> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let mut pages = vec![(
        "ha-agent.8".to_string(),
        command_page(&cmd, |page| {
            files_section(page);
            signals_section(page);
            exit_status_section(page, None);
            let mut see_also: Vec<String> = subcommands
                .iter()
                .map(|s| format!("{}(8)", page_name(s)))
                .collect();
            see_also.extend(["ha-agent.conf(5)".into(), "keepalived.conf(5)".into()]);
            see_also_section(page, &see_also);
        }),
    )];
    for sub in &subcommands {
        let text = command_page(sub, |page| {
            exit_status_section(page, Some(sub.get_name()));
            see_also_section(
                page,
                &[
                    "ha-agent(8)".into(),
                    "ha-agent.conf(5)".into(),
                    "keepalived.conf(5)".into(),
                ],
            );
        });
        pages.push((format!("{}.8", page_name(sub)), text));
    }
    pages
}

/// `ha-agent-run` for `run`, `ha-agent` for the top command (clap's display name once built).
fn page_name(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// clap_mangen's page for `cmd` (NAME, SYNOPSIS, DESCRIPTION, OPTIONS, SUBCOMMANDS, VERSION),
/// then the sections `extra` adds.
fn command_page(cmd: &clap::Command, extra: impl FnOnce(&mut Roff)) -> String {
    let mut out = Vec::new();
    Man::new(cmd.clone())
        .section("8")
        .date(date())
        .source(SOURCE)
        .manual(MANUAL_8)
        .render(&mut out)
        .expect("rendering into a Vec cannot fail");
    let mut page = Roff::new();
    extra(&mut page);
    let mut text = String::from_utf8(out).expect("clap_mangen renders UTF-8 from UTF-8 help");
    text.push_str(&page.render());
    text
}

/// A paragraph of plain text, `code` spans in bold.
fn para(page: &mut Roff, text: &str) {
    page.control("PP", []);
    page.text(keywords::code_spans(text));
}

/// A tagged paragraph: `tag` in bold, then `text` (`code` spans in bold).
fn tagged(page: &mut Roff, tag: &str, text: &str) {
    page.control("TP", []);
    page.text([bold(tag)]);
    page.text(keywords::code_spans(text));
}

fn files_section(page: &mut Roff) {
    page.control("SH", ["FILES"]);
    tagged(
        page,
        "/etc/keepalived/keepalived.conf",
        "The configuration `run`, `status` and `check-config` read unless given `-f`: \
         keepalived's file, read as keepalived 2.2.7 does; see ha-agent.conf(5).",
    );
    tagged(
        page,
        "/etc/default/ha-agent",
        "Read by the systemd unit: `HA_AGENT_OPTS` holds options added to `ha-agent run` \
         (for example `--metrics-listen 127.0.0.1:9650`).",
    );
    tagged(
        page,
        "/run/ha-agent/*.sock",
        "The control socket `ha-agent status` reads, owner-only and removed at exit: \
         `/run/ha-agent/NAME.sock` when the configuration says `instance NAME`, else named \
         after the configuration file and a hash of its absolute path, so agents with \
         different files never collide (`--control-socket` chooses another path).",
    );
    tagged(
        page,
        "/run/ha-agent/*.data, *.stats, *.json",
        "The dumps SIGUSR1 and SIGUSR2 write beside the control socket and named after it \
         (keepalived's /tmp/keepalived.data and /tmp/keepalived.stats), each with the JSON \
         status; written to a temporary file and renamed, owner-only.",
    );
    tagged(
        page,
        "/sys/fs/bpf/ha-agent",
        "Where the XDP and TC maps are pinned (`--bpf-dir`), one directory per network \
         namespace and interface, for bpftool and for a restarted agent to carry the counters \
         on; a clean exit removes them. The fence does not depend on them.",
    );
}

fn signals_section(page: &mut Roff) {
    page.control("SH", ["SIGNALS"]);
    tagged(
        page,
        "SIGTERM, SIGINT",
        "A planned handover: masters stop answering ARP/ND for their VIPs, send priority 0 \
         and keep answering traffic to them until the successor's gratuitous ARP/NA is seen, \
         then the VIPs and virtual routes are removed, XDP and TC are detached, the control \
         socket is removed and the agent exits 0. A second signal ends the wait.",
    );
    tagged(
        page,
        "SIGHUP",
        "Reload the configuration, all or nothing: instances whose identity (interface, VRID, \
         family, version, addresses, unicast or multicast, use_vmac) is unchanged keep their \
         state and take the rest in place; others restart, saying why. A file that does not \
         load is refused and the running configuration stays. `systemctl reload ha-agent` \
         sends it.",
    );
    tagged(
        page,
        "SIGUSR1",
        "Data dump: every instance's state, priorities, master, VIPs and trackers to \
         NAME.data beside the control socket, and the JSON status to NAME.json.",
    );
    tagged(
        page,
        "SIGUSR2",
        "Stats dump: adverts sent and received, transitions and rejected adverts by reason to \
         NAME.stats beside the control socket, and the JSON status to NAME.json.",
    );
}

/// EXIT STATUS of the top page (`None`) or of one subcommand.
fn exit_status_section(page: &mut Roff, subcommand: Option<&str>) {
    page.control("SH", ["EXIT STATUS"]);
    let (ok, failed) = match subcommand {
        Some("run") => (
            "the agent stopped on SIGTERM or SIGINT, after its handover.",
            "the configuration was refused, the agent could not start (each error says \
             why), or it stopped on an error.",
        ),
        Some("status") => (
            "the agent answered; its status is printed.",
            "no agent answers on the control socket (missing, stale, or not permitted; the \
             message says which).",
        ),
        Some("check-config") => (
            "`run` would start with this configuration.",
            "it would not: every error is printed with its file:line:col where it has one.",
        ),
        _ => (
            "success: `run` stopped on SIGTERM or SIGINT, `status` printed the status, \
             `check-config` found a configuration `run` would start with.",
            "failure: the configuration was refused or the agent stopped on an error, no agent \
             answered `status`, or `check-config` found an error.",
        ),
    };
    tagged(page, "0", ok);
    tagged(page, "1", failed);
    let usage = if subcommand == Some("run") {
        "the command line is wrong (an unknown option, a missing value, an invalid \
         `--log-level`); clap's message says what."
    } else {
        "the command line is wrong (an unknown option or a missing value); the message says what."
    };
    tagged(page, "2", usage);
}

/// SEE ALSO: `refs` are `name(section)`.
fn see_also_section(page: &mut Roff, refs: &[String]) {
    page.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let (name, section) = r.split_once('(').expect("name(section)");
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(name));
        line.push(roman(format!("({section}")));
    }
    page.text(line);
}

/// ha-agent.conf(5): what the file is, then every keepalived keyword ha-agent reads, ignores or
/// refuses, with the reason, by context (the keyword table's roff rendering).
pub fn conf_page() -> String {
    let mut page = Roff::new();
    page.control("TH", ["ha-agent.conf", "5", date(), SOURCE, MANUAL_5]);
    page.control("SH", ["NAME"]);
    page.text([roman(
        "ha-agent.conf - the keepalived.conf ha-agent reads, keyword by keyword",
    )]);
    page.control("SH", ["SYNOPSIS"]);
    page.text([bold("/etc/keepalived/keepalived.conf")]);
    page.control("SH", ["DESCRIPTION"]);
    para(
        &mut page,
        "ha-agent has no configuration format of its own: it reads keepalived's \
         keepalived.conf(5), the VRRP half (`global_defs`, `vrrp_script`, `track_file`, \
         `vrrp_track_process`, `vrrp_instance`, `vrrp_sync_group`, `static_ipaddress`, \
         `static_routes`, `static_rules`) and the LVS half (`virtual_server`, \
         `virtual_server_group`), with keepalived 2.2.7's syntax: blocks in braces, one keyword \
         and its arguments a line, `#` and `!` comments.",
    );
    para(
        &mut page,
        "keepalived's configuration language works as in keepalived: `include` with globs \
         (each included file must be a regular file of at most 16 MiB; one that is executable \
         or not regular is skipped with a warning), `$NAME=VALUE` definitions used as `$NAME` \
         or `${NAME}`, the predefined `${_PWD}`, `${_INSTANCE}`, `${_RANDOM}`, `${_HASH}`, \
         `${_BANG}`, and `~SEQ` / `~LST` repetition. A line that starts with `@ID` is read only \
         by the node whose configuration id is ID, one that starts with `@^ID` by every other \
         node; the id is `-i` / `--config-id`, by default the host name up to its first dot, \
         as keepalived.",
    );
    para(
        &mut page,
        "An error is reported at its file:line:col, with what was expected, before anything \
         on the host changes; a word keepalived does not know is an error that suggests the \
         nearest keyword of its block. `ha-agent check-config` reads the file as `run` would \
         and ends with one line saying what it ignored.",
    );
    para(
        &mut page,
        "Below, every keyword of keepalived 2.2.7 that may appear in this file, by the block \
         it is written in, with what ha-agent does with it. supported: read and acted on as \
         keepalived does. refused: it changes failover (or, for LVS, what the director serves) \
         and ha-agent does not act on it, so the file is refused naming the keyword and its \
         line; with `--allow-unsupported` it is ignored with a warning instead. ignored: it \
         configures what ha-agent replaces (SNMP, D-Bus, email, process names, scheduling), \
         so it is read, warned about and has no effect.",
    );
    page.control("SH", ["KEYWORDS"]);
    keywords::render_roff(&mut page);
    page.control("SH", ["FILES"]);
    tagged(
        &mut page,
        "/etc/keepalived/keepalived.conf",
        "The file `ha-agent run`, `status` and `check-config` read unless given `-f`.",
    );
    page.control("SH", ["SEE ALSO"]);
    page.text([
        bold("ha-agent"),
        roman("(8), "),
        bold("ha-agent-check-config"),
        roman("(8), "),
        bold("keepalived.conf"),
        roman("(5), "),
        italic("/usr/share/doc/ha-agent/examples/"),
    ]);
    page.render()
}

/// The completion scripts: file name (as the distributions install them) and text.
pub fn completions(cli: &clap::Command) -> Vec<(String, Vec<u8>)> {
    [
        (Shell::Bash, "ha-agent.bash"),
        (Shell::Zsh, "_ha-agent"),
        (Shell::Fish, "ha-agent.fish"),
    ]
    .into_iter()
    .map(|(shell, name)| {
        let mut cmd = visible(cli);
        let mut out = Vec::new();
        if shell == Shell::Bash {
            // clap_complete's bash script spells the state of a subcommand of a hyphenated
            // binary two ways (`ha__agent__subcmd__run` in its loop, `ha__subcmd__agent__subcmd__run`
            // in its arms), so no subcommand option ever completes (clap-rs/clap#6421, open).
            // Generated for `ha_agent`, both agree; then the `complete` line names `ha-agent`.
            clap_complete::generate(shell, &mut cmd, "ha_agent", &mut out);
            let text = String::from_utf8(out).expect("clap_complete writes UTF-8");
            out = text.replace(" ha_agent\n", " ha-agent\n").into_bytes();
        } else {
            clap_complete::generate(shell, &mut cmd, "ha-agent", &mut out);
        }
        (name.to_string(), out)
    })
    .collect()
}

/// `cli` without its hidden subcommands (`generate-docs`), which clap_complete would offer:
/// the completions offer what `--help` shows.
fn visible(cli: &clap::Command) -> clap::Command {
    let mut cmd = clap::Command::new("ha-agent")
        .version(crate::version_line())
        .subcommand_required(true)
        .args(cli.get_arguments().cloned())
        .subcommands(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = cli.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}

//! `ha-agent`: the daemon and its command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use ha_agent::config::{ReadOptions, escape_lines, ignored_line};
use ha_agent::{
    agent::{self, DatapathChoice, RunOptions},
    control::{self, ControlOptions, logging::LogFormat},
};

/// keepalived's default configuration file; `-f` as keepalived.
const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// `version` is set at run time, to [`ha_agent::version_line`] (commit and datapaths).
#[derive(Parser)]
#[command(
    name = "ha-agent",
    about = "VRRP failover agent: reads keepalived.conf, speaks VRRPv2/v3 with keepalived, \
             counts adverts in XDP and fences VIPs in TC",
    long_about = "ha-agent reads the VRRP half of keepalived.conf (and its virtual_server blocks), \
                  speaks VRRPv2 and VRRPv3 with keepalived, FRR and routers, and moves virtual IPs \
                  between nodes. An XDP program validates and counts adverts in the kernel; a TC \
                  program fences the VIPs this node must not own, also when the agent has died.\n\n\
                  `check-config` says whether `run` would start with a file, `run` runs it (under \
                  systemd: ha-agent.service), `status` shows the instances of a running agent."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the VRRP instances of a keepalived.conf until SIGTERM or SIGINT.
    ///
    /// On SIGTERM/SIGINT every master sends priority 0 (its backups take over after skew
    /// time), VIPs are removed, and the agent exits 0. SIGHUP reloads the configuration.
    /// SIGUSR1 writes a data dump (NAME.data) and SIGUSR2 a stats dump (NAME.stats), each with
    /// NAME.json, beside the control socket (/run/ha-agent/NAME.sock by default). Under
    /// systemd (Type=notify) it reports READY=1 once the instances have started, and a STATUS=
    /// line with each instance's state.
    Run {
        /// Configuration file (keepalived.conf syntax).
        #[arg(short = 'f', long = "use-file", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// How adverts come in: `xdp` (XDP + TC fence; fails if BPF cannot load), `socket` (raw
        /// IPPROTO_VRRP sockets only), or `auto` (xdp when it loads, else socket with a warning).
        #[arg(long, value_enum, default_value_t = DatapathArg::Auto)]
        datapath: DatapathArg,
        /// Log level: error, warn, info, debug, trace: the agent's; aya's BPF loader stays at
        /// warn (its ~130 relocation lines need a filter directive, e.g. `debug,aya=debug`,
        /// which is taken as written).
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Write the process id here; refuse to start if it names a live process.
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Log format: `text` (human on a terminal; no colours or timestamps and a <N> priority
        /// prefix when stderr is systemd's journal) or `json` (one object a line; transitions,
        /// handovers and XDP rejections carry typed fields: `event`, `from`, `to`, `reason`,
        /// `priority`, `effective`, `master`…, see the README).
        #[arg(long, value_enum, default_value_t = LogFormatArg::Text)]
        log_format: LogFormatArg,
        /// Control socket for `ha-agent status` (owner-only; see --control-socket-group).
        /// Default: /run/ha-agent/<config name>-<hash of its absolute path>.sock, so agents
        /// with different files never collide. A stale socket is replaced; a live one is
        /// refused.
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
        /// Let the members of GROUP read `ha-agent status` without root: the control socket
        /// becomes 0660 root:GROUP and its directory 0750 root:GROUP. The socket answers only
        /// `status` (read-only). An unknown group stops the start.
        #[arg(long, value_name = "GROUP")]
        control_socket_group: Option<String>,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9650). Off by default.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Where the XDP/TC maps are pinned, one directory per network namespace and interface
        /// (`<netns inode>-<interface>-v<N>`), for bpftool and for a restarted agent to carry the
        /// counters on; a clean exit removes them. The fence does not depend on them: the
        /// programs are attached through netlink and stay with the interface when the agent
        /// dies. Under /sys/fs/bpf a BPF filesystem is mounted if missing; elsewhere, not on one,
        /// nothing is pinned.
        #[arg(long, value_name = "DIR", default_value = agent::DEFAULT_BPF_DIR)]
        bpf_dir: PathBuf,
        /// Debug: let XDP pass adverts on to the kernel after counting them, so tcpdump on the
        /// interface sees them (by default valid and rejected adverts are consumed at XDP).
        #[arg(long)]
        xdp_pass_adverts: bool,
        /// Drop VRRP adverts that are not for this agent's instances at XDP (counted as
        /// "foreign"). By default they are passed to the kernel, so another VRRP speaker behind
        /// the same NIC (a keepalived in a macvlan container, on a VLAN sub-interface, or
        /// running other VRIDs on this host) still hears its peers. Only for a LAN that carries
        /// no other VRRP: it silences every other speaker behind this interface.
        #[arg(long)]
        xdp_drop_foreign: bool,
        /// keepalived's `-i`: keep the `@ID` lines of this configuration id (and drop `@^ID`
        /// ones); default, as keepalived: the host name up to its first dot.
        #[arg(short = 'i', long = "config-id", value_name = "ID")]
        config_id: Option<String>,
        /// Run even with keywords that change failover behaviour and that ha-agent does not act
        /// on (track_bfd, vrf, uthreshold…): each becomes a warning and is ignored.
        /// Without it they are errors naming the keyword and its line.
        #[arg(long)]
        allow_unsupported: bool,
    },
    /// Show the state of a running agent: per instance state, priorities, master, VIPs, time in
    /// state, transitions, adverts sent/received/rejected by reason, trackers.
    ///
    /// Asks the agent over its control socket (the one `run` derives from the same -f, or
    /// --control-socket). Exits 0 with the status, 1 when no agent answers. --json prints the
    /// stable JSON document (schema 1, see the README's "Reading the status").
    Status {
        /// Configuration file the agent runs (to find its control socket).
        #[arg(short = 'f', long = "use-file", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The agent's control socket (overrides the one derived from -f).
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Parse and check a configuration: print the resolved instances and every warning.
    ///
    /// Exits 0 when `run` would start with this file, 1 otherwise: it makes the checks `run`
    /// makes before it changes anything (the same code): errors in the file, no vrrp_instance,
    /// an interface the host lacks or without the address adverts need, a virtual route or
    /// setting ha-agent cannot install, a script_user or script user the host lacks, a script
    /// enable_script_security refuses, a track_file init_file whose directory is missing (each
    /// at file:line:col where the file has one). Reads the interfaces, users and script files;
    /// touches nothing on the host. Not checked: what depends on run's options (--pid-file,
    /// the control socket, --datapath xdp loading). A keepalived keyword that changes failover
    /// and that ha-agent does not act on is an error unless --allow-unsupported; the last line
    /// says what was read and ignored.
    CheckConfig {
        /// Configuration file (keepalived.conf syntax).
        #[arg(short = 'f', long = "use-file", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// keepalived's `-i`: keep the `@ID` lines of this configuration id (and drop `@^ID`
        /// ones); default, as keepalived: the host name up to its first dot.
        #[arg(short = 'i', long = "config-id", value_name = "ID")]
        config_id: Option<String>,
        /// Run even with keywords that change failover behaviour and that ha-agent does not act
        /// on (track_bfd, vrf, uthreshold…): each becomes a warning and is ignored.
        /// Without it they are errors naming the keyword and its line.
        #[arg(long)]
        allow_unsupported: bool,
    },
    /// Write the man pages and shell completions into DIR (for packaging; hidden).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory: man/ and completions/ are written under it.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum DatapathArg {
    Auto,
    Xdp,
    Socket,
}

/// The command line as clap sees it, with the version line `--version` prints.
fn command() -> clap::Command {
    Cli::command().version(ha_agent::version_line())
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match cli.command {
        Command::GenerateDocs { out } => match ha_agent::docs::write(&command(), &out) {
            Ok(_) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ha-agent generate-docs: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Status {
            config,
            control_socket,
            json,
        } => {
            let socket = control_socket.unwrap_or_else(|| control::default_socket_path(&config));
            match control::status(&socket, json) {
                Ok(text) => {
                    print!("{}", escape_lines(&text));
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("ha-agent status: {}", escape_lines(&format!("{err:#}")));
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig {
            config,
            config_id,
            allow_unsupported,
        } => match ha_agent::config::load_with(
            &config,
            &ReadOptions {
                config_id,
                allow_unsupported,
            },
        ) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    eprintln!("warning: {warning}");
                }
                // The checks `run` makes before it touches the host, with the same function.
                match agent::check_config(&loaded.config, &config) {
                    Ok(checked) => {
                        for warning in &checked.warnings {
                            eprintln!("warning: {}", escape_lines(warning));
                        }
                    }
                    Err(err) => {
                        eprintln!("{}", escape_lines(&format!("{err:#}")));
                        return ExitCode::FAILURE;
                    }
                }
                print!(
                    "{}",
                    escape_lines(&ha_agent::config::summary(&loaded.config))
                );
                print!("{}", escape_lines(&ignored_line(&loaded.ignored)));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            config,
            datapath,
            log_level,
            pid_file,
            log_format,
            control_socket,
            control_socket_group,
            metrics_listen,
            bpf_dir,
            xdp_pass_adverts,
            xdp_drop_foreign,
            config_id,
            allow_unsupported,
        } => {
            let format = match log_format {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            };
            if let Err(err) = agent::init_logging(&log_level, format) {
                eprintln!("ha-agent: {err:#}");
                return ExitCode::from(2);
            }
            let options = RunOptions {
                datapath: match datapath {
                    DatapathArg::Auto => DatapathChoice::Auto,
                    DatapathArg::Xdp => DatapathChoice::Xdp,
                    DatapathArg::Socket => DatapathChoice::Socket,
                },
                pid_file,
                control: ControlOptions {
                    socket: control_socket.unwrap_or_else(|| control::default_socket_path(&config)),
                    metrics_listen,
                    socket_group: control_socket_group,
                },
                config,
                bpf_dir,
                xdp_pass_adverts,
                xdp_drop_foreign,
                read: ReadOptions {
                    config_id,
                    allow_unsupported,
                },
            };
            match agent::run(options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    // Once, through the log (stderr): its level is the journal's priority.
                    control::logging::error_lines("", format!("{err:#}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as roff writes it (`-` is `\-`).
    fn roff_escaped(text: &str) -> String {
        text.replace('-', "\\-")
    }

    /// Every subcommand has its page, which has every long option of the subcommand; the top
    /// page lists every subcommand; `generate-docs` is on no page and in no completion.
    #[test]
    fn every_subcommand_and_option_is_in_its_page() {
        let cli = command();
        let pages = ha_agent::docs::man_pages(&cli);
        let page = |name: &str| {
            pages
                .iter()
                .find(|(file, _)| file == name)
                .map(|(_, text)| text.as_str())
                .unwrap_or_else(|| panic!("no page {name}"))
        };
        let top = page("ha-agent.8");
        let subcommands: Vec<&clap::Command> =
            cli.get_subcommands().filter(|s| !s.is_hide_set()).collect();
        assert_eq!(
            subcommands.iter().map(|s| s.get_name()).collect::<Vec<_>>(),
            ["run", "status", "check-config"]
        );
        for sub in &subcommands {
            let name = format!("ha-agent-{}", sub.get_name());
            let text = page(&format!("{name}.8"));
            assert!(
                top.contains(&format!("{}(8)", roff_escaped(&name))),
                "ha-agent.8 does not list {name}(8)"
            );
            let mut longs = 0;
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                let Some(long) = arg.get_long() else { continue };
                longs += 1;
                let tag = format!("\\fB{}\\fR", roff_escaped(&format!("--{long}")));
                assert!(text.contains(&tag), "{name}.8 lacks {tag}");
            }
            assert!(longs > 0, "{name} has long options");
        }
        assert!(top.contains(".SH FILES") && top.contains(".SH SIGNALS"));
        for text in pages.iter().map(|(_, text)| text) {
            assert!(text.contains(".SH \"EXIT STATUS\"") && text.contains(".SH \"SEE ALSO\""));
            assert!(!text.contains("generate"), "a page shows generate-docs");
        }
        for (name, text) in ha_agent::docs::completions(&cli) {
            let text = String::from_utf8(text).unwrap();
            assert!(!text.contains("generate"), "{name} offers generate-docs");
            assert!(text.contains("check-config"), "{name} lacks check-config");
        }
    }

    /// The files and their layout, as the packaging installs them.
    #[test]
    fn generate_docs_writes_the_layout_packaging_installs() {
        let names: Vec<String> = ha_agent::docs::files(&command())
            .into_iter()
            .map(|(path, _)| path.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "man/ha-agent.8",
                "man/ha-agent-run.8",
                "man/ha-agent-status.8",
                "man/ha-agent-check-config.8",
                "man/ha-agent.conf.5",
                "completions/ha-agent.bash",
                "completions/_ha-agent",
                "completions/ha-agent.fish",
            ]
        );
    }
}

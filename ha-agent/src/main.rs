//! `ha-agent`: the daemon and its command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use ha_agent::agent::{self, DatapathChoice, RunOptions};

/// keepalived's default configuration file; `-f` as keepalived.
const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

#[derive(Parser)]
#[command(
    name = "ha-agent",
    version,
    about = "VRRP failover agent: reads keepalived.conf, speaks VRRPv2/v3 with keepalived, \
             counts adverts in XDP and fences VIPs in TC"
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
    /// time), VIPs are removed, and the agent exits 0.
    Run {
        /// Configuration file (keepalived.conf syntax).
        #[arg(short = 'f', long = "use-file", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// How adverts come in: `xdp` (XDP + TC fence; fails if BPF cannot load), `socket` (raw
        /// IPPROTO_VRRP sockets only), or `auto` (xdp when it loads, else socket with a warning).
        #[arg(long, value_enum, default_value_t = DatapathArg::Auto)]
        datapath: DatapathArg,
        /// Log level: error, warn, info, debug, trace (or a tracing filter directive).
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Write the process id here; refuse to start if it names a live process.
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
    /// Parse and check a configuration: print the resolved instances and every warning.
    ///
    /// Exits 0 when `run` would start with this file, 1 otherwise. Touches nothing on the host.
    CheckConfig {
        /// Configuration file (keepalived.conf syntax).
        #[arg(short = 'f', long = "use-file", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DatapathArg {
    Auto,
    Xdp,
    Socket,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match ha_agent::config::load(&config) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    eprintln!("warning: {warning}");
                }
                print!("{}", ha_agent::config::summary(&loaded.config));
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
        } => {
            if let Err(err) = agent::init_logging(&log_level) {
                eprintln!("ha-agent: {err:#}");
                return ExitCode::from(2);
            }
            let options = RunOptions {
                config,
                datapath: match datapath {
                    DatapathArg::Auto => DatapathChoice::Auto,
                    DatapathArg::Xdp => DatapathChoice::Xdp,
                    DatapathArg::Socket => DatapathChoice::Socket,
                },
                pid_file,
            };
            match agent::run(options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!("{err:#}");
                    eprintln!("ha-agent: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

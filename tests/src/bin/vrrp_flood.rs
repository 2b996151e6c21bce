//! `vrrp_flood`: sends forged VRRPv3 adverts out of one interface as fast as the kernel can
//! and prints what it achieved: with `--object` (the agent's eBPF object) by XDP live frames,
//! else, or if that object cannot load (said loudly, in a `vrrp_flood: FALLBACK` line), through
//! an AF_PACKET TX ring. For the lab only: run it inside a lab namespace, e.g.
//! `ip netns exec hal-…-n3 vrrp_flood --interface eth0 --vrid 99 --duration 5 --object
//! target/bpfel-unknown-none/release/ha-ebpf`.

use std::{
    net::Ipv4Addr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ha_tests::flood::{FloodSpec, LiveFlood, flood};

#[derive(Parser)]
#[command(
    name = "vrrp_flood",
    about = "Flood forged VRRPv3 adverts out of an interface (lab namespaces only)"
)]
struct Args {
    /// Interface to send from.
    #[arg(long, short = 'i')]
    interface: String,
    /// VRID the adverts claim (pick one no instance in the lab uses).
    #[arg(long, default_value_t = 99)]
    vrid: u8,
    /// Priority in the adverts.
    #[arg(long, default_value_t = 254)]
    priority: u8,
    /// Source MAC (default: the VRID's virtual MAC 00:00:5e:00:01:VRID).
    #[arg(long)]
    src_mac: Option<String>,
    /// Source IPv4 address.
    #[arg(long, default_value = "192.0.2.99")]
    src_ip: Ipv4Addr,
    /// VIP listed in the adverts (repeatable).
    #[arg(long = "vip", default_value = "192.0.2.250")]
    vips: Vec<Ipv4Addr>,
    /// Max_Adver_Int in centiseconds.
    #[arg(long, default_value_t = 1)]
    adver_int_cs: u16,
    /// Stop after this many frames.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many seconds (fractions allowed).
    #[arg(long)]
    duration: Option<f64>,
    /// The agent's eBPF object: send with XDP live frames (its `lab_flood_tx`), not the
    /// AF_PACKET ring. The peer of `--interface` must have NAPI (an XDP program) to take them.
    #[arg(long)]
    object: Option<std::path::PathBuf>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("MAC {s:?}: want six hex bytes separated by ':'"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("MAC {s:?}: want six bytes"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.count.is_none() && args.duration.is_none() {
        bail!("give --count or --duration (or both)");
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let spec = FloodSpec {
        interface: args.interface,
        vrid: args.vrid,
        priority: args.priority,
        src_mac: args.src_mac.as_deref().map(parse_mac).transpose()?,
        src_ip: args.src_ip,
        adver_int_cs: args.adver_int_cs,
        vips: args.vips,
        count: args.count,
        duration: args
            .duration
            .map(Duration::try_from_secs_f64)
            .transpose()
            .context("--duration")?,
    };
    let live = args.object.map(|path| {
        std::fs::read(&path)
            .with_context(|| format!("reading {}", path.display()))
            .and_then(|object| LiveFlood::load(&spec, &object))
    });
    let report = match live {
        Some(Ok(mut live)) => live.run(&spec, &STOP)?,
        Some(Err(e)) => {
            // Not silent: the bench reads this line into its report.
            println!("vrrp_flood: FALLBACK to the AF_PACKET ring: live frames did not load: {e:#}");
            flood(&spec, &STOP)?
        }
        None => flood(&spec, &STOP)?,
    };
    println!("{}", report.line());
    Ok(())
}

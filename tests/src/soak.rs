//! Resource soak: two nodes run ha-agent with 16 VRIDs at advert_int 0.01 (each agent master of
//! eight), and the agents' resident memory, open file descriptors and threads are sampled from
//! `/proc` for the whole run. After a warm-up, RSS must stay flat and fds and threads must not
//! grow; the samples are the report.

use std::{fmt::Write as _, net::IpAddr, time::Duration, time::Instant};

use anyhow::{Context, Result, bail};

use crate::{Lab, epoch_now};

/// What a soak does.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    pub duration: Duration,
    pub sample_every: Duration,
    pub vrids: u8,
    /// `--datapath` of the agents.
    pub datapath: String,
}

/// The report and whether the bounds held.
pub struct SoakOutcome {
    pub report: String,
    pub failed: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    t: f64,
    rss_kib: u64,
    fds: usize,
    threads: u64,
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
}

fn sample(pid: i32, t: f64) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (did the agent exit?)"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok(Sample {
        t,
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count(),
        cpu_ticks: cpu_ticks(pid)?,
    })
}

/// utime + stime of a process (`/proc/PID/stat` fields 14 and 15, after the command name).
fn cpu_ticks(pid: i32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .with_context(|| format!("/proc/{pid}/stat: {stat}"))?
        .1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime 15.
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Ok(field(14).unwrap_or(0) + field(15).unwrap_or(0))
}

fn vip(k: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, 150 + k])
}

fn conf(node: usize, vrids: u8) -> String {
    let mut c = format!("global_defs {{\n    router_id soak-n{node}\n}}\n");
    for k in 1..=vrids {
        // Each node is master of half of the VRIDs.
        let prio = if (usize::from(k) + node).is_multiple_of(2) {
            150
        } else {
            100
        };
        let _ = write!(
            c,
            "vrrp_instance VI_{k} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {k}\n    \
             version 3\n    priority {prio}\n    advert_int 0.01\n    virtual_ipaddress {{\n        {}/24\n    }}\n}}\n",
            vip(k)
        );
    }
    c
}

pub fn run_resource_soak(opts: &SoakOptions) -> Result<SoakOutcome> {
    crate::ha_agent_bin()?;
    if !(1..=100).contains(&opts.vrids) {
        bail!("1 to 100 VRIDs");
    }
    let lab = Lab::new("soak", 2)?;
    let baseline = lab.baseline()?;
    let mut agents = Vec::new();
    for node in 1..=2 {
        let mut a = lab.ha_agent(
            node,
            &conf(node, opts.vrids),
            &["--datapath", &opts.datapath],
        )?;
        a.wait_for_log("ha-agent running", Duration::from_secs(20))?;
        agents.push(a);
    }
    let converged = |lab: &Lab| -> Result<bool> {
        for k in 1..=opts.vrids {
            let holders = lab
                .nodes
                .iter()
                .filter(|n| n.has_addr(vip(k)).unwrap_or(false))
                .count();
            if holders != 1 {
                return Ok(false);
            }
        }
        Ok(true)
    };
    crate::wait_for(
        "every VRID to have one master",
        Duration::from_secs(20),
        || converged(&lab),
    )?;
    let t0 = epoch_now();
    let start = Instant::now();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(), Vec::new()];
    let mut split = 0usize;
    let mut checks = 0usize;
    while start.elapsed() < opts.duration {
        let t = epoch_now() - t0;
        for (i, a) in agents.iter_mut().enumerate() {
            if !a.is_running() {
                bail!(
                    "node {}'s agent exited during the soak:\n{}",
                    i + 1,
                    a.log()
                );
            }
            samples[i].push(sample(a.pid(), t)?);
        }
        checks += 1;
        if !converged(&lab)? {
            split += 1;
        }
        std::thread::sleep(opts.sample_every);
    }

    let mut r = String::new();
    let _ = writeln!(
        r,
        "resource soak: {} s, 2 nodes, {} VRIDs at advert_int 0.01 (VRRPv3), datapath {}, a sample every {:?}",
        opts.duration.as_secs(),
        opts.vrids,
        opts.datapath,
        opts.sample_every
    );
    let mut failed = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let node = i + 1;
        // Warm-up: the first fifth of the run (allocator arenas, first adverts of each peer).
        let warm: Vec<&Sample> = s
            .iter()
            .filter(|x| x.t >= s.last().map_or(0.0, |l| l.t) / 5.0)
            .collect();
        let (Some(first), Some(last)) = (warm.first(), warm.last()) else {
            bail!("no samples");
        };
        let max_rss = warm.iter().map(|x| x.rss_kib).max().unwrap_or(0);
        let (min_fd, max_fd) = (
            warm.iter().map(|x| x.fds).min().unwrap_or(0),
            warm.iter().map(|x| x.fds).max().unwrap_or(0),
        );
        let (min_th, max_th) = (
            warm.iter().map(|x| x.threads).min().unwrap_or(0),
            warm.iter().map(|x| x.threads).max().unwrap_or(0),
        );
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let cpu = (last.cpu_ticks - first.cpu_ticks) as f64 / hz / (last.t - first.t).max(1e-3);
        let _ = writeln!(
            r,
            "\nnode {node}: after warm-up RSS {} → {} KiB (max {max_rss}), fds {min_fd}..{max_fd}, threads {min_th}..{max_th}, CPU {:.1} % of a core",
            first.rss_kib,
            last.rss_kib,
            cpu * 100.0
        );
        // Flat: the last sample within 10 % + 1 MiB of the first after warm-up.
        if last.rss_kib > first.rss_kib + first.rss_kib / 10 + 1024 {
            failed.push(format!(
                "node {node}: RSS grew from {} to {} KiB",
                first.rss_kib, last.rss_kib
            ));
        }
        if max_fd > min_fd + 2 {
            failed.push(format!("node {node}: fds grew from {min_fd} to {max_fd}"));
        }
        if max_th > min_th + 2 {
            failed.push(format!(
                "node {node}: threads grew from {min_th} to {max_th}"
            ));
        }
        let _ = writeln!(
            r,
            "  {:>8}  {:>9}  {:>4}  {:>7}  {:>9}",
            "t (s)", "RSS KiB", "fds", "threads", "CPU s"
        );
        for x in s {
            let _ = writeln!(
                r,
                "  {:>8.1}  {:>9}  {:>4}  {:>7}  {:>9.2}",
                x.t,
                x.rss_kib,
                x.fds,
                x.threads,
                x.cpu_ticks as f64 / hz
            );
        }
    }
    let _ = writeln!(
        r,
        "\nVRIDs with other than one master at a sample: {split} of {checks} samples"
    );
    if split * 10 > checks {
        failed.push(format!(
            "{split} of {checks} samples found a VRID without exactly one master"
        ));
    }
    // SIGTERM: each agent exits 0 and leaves nothing behind.
    for (i, mut a) in agents.drain(..).enumerate() {
        a.signal(libc::SIGTERM)?;
        match a.wait_timeout(Duration::from_secs(10))? {
            Some(st) if st.success() => {}
            st => failed.push(format!("node {}'s agent on SIGTERM: {st:?}", i + 1)),
        }
    }
    let vips: Vec<IpAddr> = (1..=opts.vrids).map(vip).collect();
    let left = lab.leftovers(
        &baseline,
        &vips,
        std::path::Path::new(crate::leftover::SYS_BPF),
    );
    let _ = writeln!(
        r,
        "after SIGTERM: {}",
        if left.is_empty() {
            "nothing left (VIPs, routes, XDP/TC, pins, processes)".to_owned()
        } else {
            left.join("; ")
        }
    );
    failed.extend(left.into_iter().map(|l| format!("left behind: {l}")));
    let _ = writeln!(
        r,
        "{}",
        if failed.is_empty() {
            "bounds held".to_owned()
        } else {
            format!("bounds broken:\n  {}", failed.join("\n  "))
        }
    );
    Ok(SoakOutcome { report: r, failed })
}

//! What a bench run leaves behind: `bench/results/<date>-<host>[-quick].json` with every sample
//! and the machine's facts, a markdown report beside it with a table and the issue's targets per
//! scenario, and SVG plots (plotters, SVG backend only) in a directory of the same name.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use serde::Serialize;

use super::{
    BRIDGE_NF_ON, Impl, Plan, SCALE_SIZES, Scenario, ScenarioResult, Trial,
    packet_cost::{self, BASELINE, KTIME, LINE_RATE_NS, TARGET_CASE, TARGET_NS},
    scale1k,
};

/// Facts about the machine and the software under test.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cores: usize,
    pub ha_agent_commit: String,
    /// The working tree had uncommitted changes (the numbers may not match the commit).
    pub ha_agent_dirty: bool,
    pub keepalived_version: String,
    /// UTC date of the run, YYYY-MM-DD.
    pub date: String,
    pub started_unix: f64,
}

fn output(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(crate::root())
        .output()
        .with_context(|| format!("running {program}"))?;
    // keepalived prints its version on stderr.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

impl Machine {
    pub fn probe() -> Result<Machine> {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned());
        let cpuinfo = read("/proc/cpuinfo")?;
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let commit = output("git", &["rev-parse", "HEAD"])?.trim().to_owned();
        let dirty = !output("git", &["status", "--porcelain", "--untracked-files=no"])?
            .trim()
            .is_empty();
        let keepalived = output("keepalived", &["--version"])?
            .lines()
            .next()
            .unwrap_or("unknown")
            .trim()
            .to_owned();
        let now = ha_tests::epoch_now();
        Ok(Machine {
            hostname: read("/proc/sys/kernel/hostname")?,
            kernel: read("/proc/sys/kernel/osrelease")?,
            cpu_model,
            cores,
            ha_agent_commit: commit,
            ha_agent_dirty: dirty,
            keepalived_version: keepalived,
            date: utc_date(now),
            started_unix: now,
        })
    }
}

/// YYYY-MM-DD (UTC) of epoch seconds.
fn utc_date(epoch: f64) -> String {
    let days = (epoch / 86_400.0).floor() as i64;
    // Inverse of days_from_civil (Howard Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Order statistics of one metric of one daemon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    /// Nearest-rank 95th percentile.
    pub p95: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

pub fn stats(samples: &[f64]) -> Option<Stats> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
    Some(Stats {
        n,
        median,
        p95: s[rank - 1],
        min: s[0],
        max: s[n - 1],
        mean: s.iter().sum::<f64>() / n as f64,
    })
}

/// One row of a scenario's table.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub metric: String,
    pub daemon: Impl,
    pub stats: Option<Stats>,
    /// Trials of this daemon in the scenario that failed (they have no samples).
    pub failed: usize,
    /// This daemon's median over keepalived's (ha-agent rows only).
    pub ratio_to_keepalived: Option<f64>,
}

fn samples(trials: &[Trial], daemon: Impl, metric: &str) -> Vec<f64> {
    trials
        .iter()
        .filter(|t| t.daemon == daemon)
        .filter_map(|t| t.metrics.get(metric).copied())
        .collect()
}

/// Metric names in the order they first appear.
fn metric_names(trials: &[Trial]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for t in trials {
        for k in t.metrics.keys() {
            if seen.insert(k.clone()) {
                out.push(k.clone());
            }
        }
    }
    out
}

fn summarize(r: &ScenarioResult) -> Vec<Summary> {
    let mut out = Vec::new();
    // keepalived has no per-packet program: no rows of its own there.
    let daemons: &[Impl] = if matches!(r.scenario, Scenario::PacketCost | Scenario::Lvs) {
        &[Impl::HaAgent]
    } else {
        &[Impl::Keepalived, Impl::HaAgent]
    };
    for metric in metric_names(&r.trials) {
        let ka = stats(&samples(&r.trials, Impl::Keepalived, &metric));
        for &daemon in daemons {
            let st = stats(&samples(&r.trials, daemon, &metric));
            let ratio = match (daemon, &st, &ka) {
                (Impl::HaAgent, Some(a), Some(k)) if k.median != 0.0 => Some(a.median / k.median),
                _ => None,
            };
            // A failed trial has no metrics: count this daemon's failures in the scenario.
            let failed = r
                .trials
                .iter()
                .filter(|t| t.daemon == daemon && t.error.is_some())
                .count();
            out.push(Summary {
                metric: metric.clone(),
                daemon,
                stats: st,
                failed,
                ratio_to_keepalived: ratio,
            });
        }
    }
    out
}

#[derive(Serialize)]
struct ScenarioOut<'a> {
    #[serde(flatten)]
    result: &'a ScenarioResult,
    summary: Vec<Summary>,
    targets: Vec<Target>,
}

#[derive(Serialize)]
struct Output<'a> {
    schema: u32,
    command: String,
    quick: bool,
    plan: &'a Plan,
    machine: &'a Machine,
    scenarios: Vec<ScenarioOut<'a>>,
}

/// A target of issue #8, checked against this run's ha-agent numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub target: String,
    /// `None`: this run has no data for it.
    pub met: Option<bool>,
    pub detail: String,
}

fn median_of(r: &ScenarioResult, daemon: Impl, metric: &str) -> Option<f64> {
    stats(&samples(&r.trials, daemon, metric)).map(|s| s.median)
}

/// "at most `limit`": met, or by how much it is missed.
fn at_most(target: &str, value: Option<f64>, limit: Option<f64>, unit: &str) -> Target {
    match (value, limit) {
        (Some(v), Some(l)) => Target {
            target: target.to_owned(),
            met: Some(v <= l),
            detail: if v <= l {
                format!("{v:.2} {unit} ≤ {l:.2} {unit}")
            } else {
                format!("{v:.2} {unit}: missed by {:.2} {unit}", v - l)
            },
        },
        _ => Target {
            target: target.to_owned(),
            met: None,
            detail: "no data in this run".into(),
        },
    }
}

/// Issue #17's target for a planned handover: no lost probe at 1 ms probing (max gap ≤ 2 ms).
fn no_lost_probe(r: &ScenarioResult) -> Vec<Target> {
    let lost = stats(&samples(&r.trials, Impl::HaAgent, "lost probes"));
    vec![
        at_most(
            "#17: no lost probe at 1 ms probing (lost probes, max over trials)",
            lost.map(|s| s.max),
            Some(0.0),
            "",
        ),
        at_most(
            "#17: max gap ≤ 2 ms (median outage)",
            median_of(r, Impl::HaAgent, "outage (ms)"),
            Some(2.0),
            "ms",
        ),
    ]
}

/// The issues whose targets a scenario's report lists.
fn issues(s: Scenario) -> &'static str {
    match s {
        Scenario::Graceful | Scenario::Flood => "#8 and #17",
        Scenario::Failback | Scenario::Reload => "#17",
        Scenario::Lvs => "#16",
        Scenario::Scale => "#8 (bridge netfilter on: #17)",
        Scenario::Scale1k => "#17",
        _ => "#8",
    }
}

fn targets(r: &ScenarioResult, all: &[ScenarioResult]) -> Vec<Target> {
    let agent = |m: &str| median_of(r, Impl::HaAgent, m);
    let ka = |m: &str| median_of(r, Impl::Keepalived, m);
    let outage = "outage (ms)";
    match r.scenario {
        Scenario::Crash => vec![
            at_most(
                "median outage ≤ protocol floor + 2 ms (36.1 + 2)",
                agent(outage),
                Some(38.1),
                "ms",
            ),
            at_most(
                "median outage ≤ 0.9 × keepalived's in the same run",
                agent(outage),
                ka(outage).map(|k| 0.9 * k),
                "ms",
            ),
        ],
        Scenario::Graceful => {
            let mut t = vec![at_most(
                "median outage ≤ skew + 2 ms (6.1 + 2)",
                agent(outage),
                Some(8.1),
                "ms",
            )];
            t.extend(no_lost_probe(r));
            t
        }
        Scenario::Failback => no_lost_probe(r),
        Scenario::Tracked => Vec::new(),
        Scenario::Flood => {
            let idle = all
                .iter()
                .find(|s| s.scenario == Scenario::Crash)
                .and_then(|c| median_of(c, Impl::HaAgent, outage));
            let mut t = vec![
                match (agent(outage), idle) {
                    (Some(f), Some(i)) => Target {
                        target: "median outage unchanged from idle (crash scenario) ± 2 ms".into(),
                        met: Some((f - i).abs() <= 2.0),
                        detail: format!("{f:.2} ms under flood, {i:.2} ms idle: {:+.2} ms", f - i),
                    },
                    _ => Target {
                        target: "median outage unchanged from idle (crash scenario) ± 2 ms".into(),
                        met: None,
                        detail: "needs the crash scenario in the same run".into(),
                    },
                },
                at_most(
                    "master CPU ≤ 1 % of a core",
                    agent("master CPU (% of a core)"),
                    Some(1.0),
                    "%",
                ),
                at_most(
                    "backup CPU ≤ 1 % of a core",
                    agent("backup CPU (% of a core)"),
                    Some(1.0),
                    "%",
                ),
            ];
            let spurious = stats(&samples(&r.trials, Impl::HaAgent, "spurious transitions"));
            t.push(at_most(
                "zero spurious transitions (max over trials)",
                spurious.map(|s| s.max),
                Some(0.0),
                "",
            ));
            // Issue #17 §4: the flood that reaches the slower node, at least 1 Mpps.
            let reaching = ["master", "backup"]
                .map(|n| agent(&format!("flood reaching {n} (kpps)")))
                .into_iter()
                .collect::<Option<Vec<f64>>>()
                .and_then(|v| v.into_iter().reduce(f64::min));
            t.push(match reaching {
                Some(k) => Target {
                    target: "flood ≥ 1 Mpps reaching each node".into(),
                    met: Some(k >= 1000.0),
                    detail: if k >= 1000.0 {
                        format!("{k:.0} kpps ≥ 1000 kpps at the slower node")
                    } else {
                        format!(
                            "{k:.0} kpps at the slower node: missed by {:.0} kpps",
                            1000.0 - k
                        )
                    },
                },
                None => Target {
                    target: "flood ≥ 1 Mpps reaching each node".into(),
                    met: None,
                    detail: "no data in this run".into(),
                },
            });
            t
        }
        Scenario::PacketCost => {
            let median = |name: &str| {
                r.packet_cost
                    .as_ref()
                    .and_then(|pc| pc.case(name))
                    .and_then(|c| stats(&c.ns))
                    .map(|s| s.median)
            };
            let (valid, base) = (median(TARGET_CASE), median(BASELINE));
            vec![
                at_most(
                    "valid VRRPv3 IPv4 advert (1 VIP, checksum verified) ≤ 40 ns: vrrp_rx's own \
                     cost (median minus the empty program's)",
                    valid.zip(base).map(|(v, b)| v - b),
                    Some(TARGET_NS),
                    "ns",
                ),
                at_most(
                    "the same, as the kernel reports it (its test loop included) ≤ 40 ns",
                    valid,
                    Some(TARGET_NS),
                    "ns",
                ),
            ]
        }
        Scenario::Lvs => {
            let ratio = |m: &str, limit: f64, target: &str| match agent(m) {
                Some(v) => Target {
                    target: target.to_owned(),
                    met: Some(v >= limit),
                    detail: format!("{v:.2} (target ≥ {limit})"),
                },
                None => Target {
                    target: target.to_owned(),
                    met: None,
                    detail: "no data in this run".into(),
                },
            };
            vec![
                ratio(
                    "xdp_lb / xdp_bounce (%)",
                    80.0,
                    "xdp_lb ≥ 80 % of the XDP_TX bounce ceiling",
                ),
                ratio(
                    "xdp_lb / kernel forwarding (x)",
                    3.0,
                    "xdp_lb ≥ 3 × the kernel forwarding",
                ),
                at_most(
                    "flows moved when 1 of 3 servers leaves ≤ 1/3 + 2 %",
                    agent("flows moved when 1 of 3 servers leaves (%)"),
                    Some(100.0 / 3.0 + 2.0),
                    "%",
                ),
            ]
        }
        Scenario::Reload => {
            let max = |m: &str| stats(&samples(&r.trials, Impl::HaAgent, m)).map(|s| s.max);
            vec![
                at_most(
                    "0 state changes on the 254 untouched instances (max over trials)",
                    max("state changes, untouched instances"),
                    Some(0.0),
                    "",
                ),
                at_most(
                    "0 lost probes on the untouched VIPs (max over trials)",
                    max("lost probes, untouched VIPs"),
                    Some(0.0),
                    "",
                ),
                at_most(
                    "0 state changes of the changed instance (max over trials)",
                    max("state changes, changed instance"),
                    Some(0.0),
                    "",
                ),
                at_most(
                    "the change applied (on the wire) ≤ 50 ms after SIGHUP",
                    agent("SIGHUP to the new priority on the wire (ms)"),
                    Some(50.0),
                    "ms",
                ),
            ]
        }
        Scenario::Scale => vec![
            at_most(
                "255 VRIDs: master CPU ≤ 10 % of a core",
                agent("master CPU (% of a core), 255 VRIDs"),
                Some(10.0),
                "%",
            ),
            at_most(
                "255 VRIDs: backup CPU ≤ 2 % of a core",
                agent("backup CPU (% of a core), 255 VRIDs"),
                Some(2.0),
                "%",
            ),
            at_most(
                "255 VRIDs, bridge netfilter on: master CPU ≤ 10 % of a core",
                agent(&format!(
                    "master CPU (% of a core), 255 VRIDs{BRIDGE_NF_ON}"
                )),
                Some(10.0),
                "%",
            ),
            at_most(
                "255 VRIDs, bridge netfilter on: backup CPU ≤ 2 % of a core",
                agent(&format!(
                    "backup CPU (% of a core), 255 VRIDs{BRIDGE_NF_ON}"
                )),
                Some(2.0),
                "%",
            ),
            at_most(
                "255 VRIDs: master RSS ≤ keepalived's",
                agent("master RSS (MB), 255 VRIDs"),
                ka("master RSS (MB), 255 VRIDs"),
                "MB",
            ),
            at_most(
                "255 VRIDs: backup RSS ≤ keepalived's",
                agent("backup RSS (MB), 255 VRIDs"),
                ka("backup RSS (MB), 255 VRIDs"),
                "MB",
            ),
        ],
        Scenario::Scale1k => ["", BRIDGE_NF_ON]
            .into_iter()
            .flat_map(|nf| {
                let lab = if nf.is_empty() {
                    "bridge netfilter off"
                } else {
                    "bridge netfilter on"
                };
                let spurious = stats(&samples(
                    &r.trials,
                    Impl::HaAgent,
                    &format!("spurious transitions{nf}"),
                ));
                let m = |name: &str| format!("{name}{nf}");
                vec![
                    at_most(
                        &format!("{lab}: master CPU ≤ 5 % of a core"),
                        agent(&m("master CPU (% of a core)")),
                        Some(scale1k::MASTER_CPU_TARGET),
                        "%",
                    ),
                    at_most(
                        &format!("{lab}: backup CPU ≤ 1 % of a core"),
                        agent(&m("backup CPU (% of a core)")),
                        Some(scale1k::BACKUP_CPU_TARGET),
                        "%",
                    ),
                    at_most(
                        &format!("{lab}: zero spurious transitions (max over trials)"),
                        spurious.map(|s| s.max),
                        Some(0.0),
                        "",
                    ),
                    at_most(
                        &format!("{lab}: master RSS ≤ keepalived's"),
                        agent(&m("master RSS (MB)")),
                        ka(&m("master RSS (MB)")),
                        "MB",
                    ),
                    at_most(
                        &format!("{lab}: backup RSS ≤ keepalived's"),
                        agent(&m("backup RSS (MB)")),
                        ka(&m("backup RSS (MB)")),
                        "MB",
                    ),
                    at_most(
                        &format!("{lab}: start-up to all-stable ≤ 2 s"),
                        agent(&m(scale1k::STARTUP)),
                        Some(scale1k::STARTUP_TARGET_MS),
                        "ms",
                    ),
                ]
            })
            .collect(),
    }
}

/// The issue whose targets a scenario's report lists.
/// Writes the JSON, the markdown report and the plots; returns the JSON and markdown paths.
pub fn write(
    machine: &Machine,
    plan: &Plan,
    quick: bool,
    results: &[ScenarioResult],
) -> Result<Vec<PathBuf>> {
    let dir = crate::root().join("bench").join("results");
    let base = format!(
        "{}-{}{}",
        machine.date,
        machine.hostname,
        if quick { "-quick" } else { "" }
    );
    let plot_dir = dir.join(&base);
    std::fs::create_dir_all(&plot_dir)
        .with_context(|| format!("creating {}", plot_dir.display()))?;
    let command = std::iter::once("cargo xtask".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Output {
        schema: 1,
        command: command.clone(),
        quick,
        plan,
        machine,
        scenarios: results
            .iter()
            .map(|r| ScenarioOut {
                result: r,
                summary: summarize(r),
                targets: targets(r, results),
            })
            .collect(),
    };
    let json_path = dir.join(format!("{base}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(&out)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;

    let mut md = String::new();
    writeln!(
        md,
        "# ha-agent beside keepalived: benchmark of {} on {}\n",
        machine.date, machine.hostname
    )?;
    writeln!(
        md,
        "`{command}` — raw samples in [`{base}.json`]({base}.json). Both daemons ran in the same \
         lab, from the same generated keepalived.conf, alternating trial by trial.\n"
    )?;
    if quick {
        writeln!(
            md,
            "**Quick run** ({} trials per daemon): a smoke test of the harness, not numbers to \
             quote.\n",
            plan.trials
        )?;
    }
    writeln!(md, "| | |\n|---|---|")?;
    writeln!(
        md,
        "| CPU | {} ({} cores) |",
        machine.cpu_model, machine.cores
    )?;
    writeln!(md, "| kernel | {} |", machine.kernel)?;
    writeln!(
        md,
        "| ha-agent | {}{} |",
        machine.ha_agent_commit,
        if machine.ha_agent_dirty {
            " (uncommitted changes)"
        } else {
            ""
        }
    )?;
    writeln!(md, "| keepalived | {} |", machine.keepalived_version)?;
    writeln!(
        md,
        "| trials | {} per daemon (scale: {} per VRID count); CPU window {} s |\n",
        plan.trials, plan.scale_trials, plan.cpu_window_s
    )?;

    for (r, so) in results.iter().zip(&out.scenarios) {
        writeln!(md, "## {}\n\n{}\n", r.title, r.description)?;
        if r.scenario == Scenario::PacketCost {
            packet_cost_table(&mut md, r)?;
        } else {
            table(&mut md, &so.summary)?;
        }
        if !so.targets.is_empty() {
            let issues = issues(r.scenario);
            writeln!(md, "\nTargets of issue {issues} (ha-agent's medians):\n")?;
            for t in &so.targets {
                let mark = match t.met {
                    Some(true) => "met",
                    Some(false) => "**missed**",
                    None => "n/a",
                };
                writeln!(md, "- {}: {mark} — {}", t.target, t.detail)?;
            }
        }
        let plots = plot_scenario(r, &plot_dir)?;
        if !plots.is_empty() {
            writeln!(md)?;
        }
        for p in plots {
            let rel = p.strip_prefix(&dir).unwrap_or(&p);
            writeln!(md, "![{}]({})", r.scenario.name(), rel.display())?;
        }
        notes(&mut md, r)?;
        for (node, conf) in &r.configs {
            writeln!(
                md,
                "\n<details><summary>keepalived.conf, {node}</summary>\n\n```\n{conf}```\n</details>"
            )?;
        }
        writeln!(md, "\n_{:.0} s of wall time._\n", r.wall_seconds)?;
    }
    let md_path = dir.join(format!("{base}.md"));
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    Ok(vec![json_path, md_path])
}

fn table(md: &mut String, rows: &[Summary]) -> Result<()> {
    writeln!(
        md,
        "| metric | daemon | n | failed | median | p95 | min | max | ha-agent / keepalived |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for row in rows {
        let cells = match &row.stats {
            Some(s) => format!(
                "{} | {} | {:.2} | {:.2} | {:.2} | {:.2}",
                s.n, row.failed, s.median, s.p95, s.min, s.max
            ),
            None => format!("0 | {} | – | – | – | –", row.failed),
        };
        let ratio = row
            .ratio_to_keepalived
            .map_or(String::new(), |r| format!("{r:.2}×"));
        writeln!(
            md,
            "| {} | {} | {cells} | {ratio} |",
            row.metric,
            row.daemon.name()
        )?;
    }
    Ok(())
}

/// Packet cost: one row per case (ns per packet), its cost over the empty program's, and a row
/// saying why keepalived has none.
fn packet_cost_table(md: &mut String, r: &ScenarioResult) -> Result<()> {
    let Some(pc) = &r.packet_cost else {
        // The measurement failed: the notes below say why.
        return Ok(());
    };
    let median = |name: &str| pc.case(name).and_then(|c| stats(&c.ns)).map(|s| s.median);
    let base = median(BASELINE);
    writeln!(
        md,
        "| case | checked on every call | frame (bytes) | n | median (ns) | p95 | min | max | \
         minus baseline (ns) | wall clock, median (ns) |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for c in &pc.cases {
        let st = stats(&c.ns);
        let cells = match &st {
            Some(s) => format!(
                "{} | {:.1} | {:.0} | {:.0} | {:.0}",
                s.n, s.median, s.p95, s.min, s.max
            ),
            None => "0 | – | – | – | –".into(),
        };
        let minus = match (&st, base) {
            _ if c.name == BASELINE => "–".into(),
            (Some(s), Some(b)) => format!("{:.1}", s.median - b),
            _ => "–".into(),
        };
        let wall = stats(&c.wall_ns).map_or("–".into(), |s| format!("{:.1}", s.median));
        writeln!(
            md,
            "| {} | {} | {} | {cells} | {minus} | {wall} |",
            c.label, c.expect, c.frame_bytes
        )?;
    }
    writeln!(
        md,
        "| keepalived | no equivalent | | | – | – | – | – | – | – |\n\n\
         keepalived has no per-packet program to measure this way: each advert reaches it \
         through a raw IPPROTO_VRRP socket, a wake-up and a system call per advert and then its \
         userspace checks. No comparable isolated figure is measured here; the flood scenario \
         compares both daemons' CPU under the same forged-advert load.\n"
    )?;
    writeln!(
        md,
        "{} calls of {} packets per case, `{}` with {} instance slots configured; \
         wall clock = the userspace time around each call / packets (preemption included), a \
         cross-check of the kernel's figure.\n",
        pc.runs, pc.repeat, pc.program, pc.configured_slots
    )?;
    if let (Some(b), Some(k), Some(v)) = (base, median(KTIME), median(TARGET_CASE)) {
        writeln!(
            md,
            "Every valid advert reads the clock once (`bpf_ktime_get_ns()`, the peer record's \
             `last_seen_ns`, which the backup's master-down timer needs to the nanosecond): that \
             call alone costs {:.1} ns here (the reference minus the empty program); the valid \
             VRRPv3 IPv4 advert minus the reference, {:.1} ns, is the rest of `vrrp_rx`'s \
             work.\n",
            k - b,
            v - k
        )?;
    }
    if !pc.settings.is_empty() {
        let settings: Vec<String> = pc
            .settings
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        writeln!(
            md,
            "Settings that bear on these figures (a `ret` and an indirect call cost more under \
             some CPU mitigations): {}.",
            settings.join("; ")
        )?;
    }
    Ok(())
}

/// Notes and failures, grouped, so a reader sees what else happened.
fn notes(md: &mut String, r: &ScenarioResult) -> Result<()> {
    let mut grouped: BTreeMap<(Impl, String), usize> = BTreeMap::new();
    for t in &r.trials {
        for n in &t.notes {
            // Flood notes carry per-trial numbers: keep them apart.
            *grouped.entry((t.daemon, n.clone())).or_default() += 1;
        }
        if let Some(e) = &t.error {
            *grouped
                .entry((t.daemon, format!("FAILED trial: {}", e.replace('\n', " "))))
                .or_default() += 1;
        }
    }
    if grouped.is_empty() {
        return Ok(());
    }
    writeln!(md, "\nNotes:\n")?;
    for ((daemon, note), count) in grouped {
        let times = if count > 1 {
            format!(" (×{count})")
        } else {
            String::new()
        };
        writeln!(md, "- {}: {note}{times}", daemon.name())?;
    }
    Ok(())
}

const KEEPALIVED_COLOR: RGBColor = RGBColor(200, 70, 40);
const AGENT_COLOR: RGBColor = RGBColor(30, 100, 200);

fn color(daemon: Impl) -> RGBColor {
    match daemon {
        Impl::Keepalived => KEEPALIVED_COLOR,
        Impl::HaAgent => AGENT_COLOR,
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn plot_scenario(r: &ScenarioResult, dir: &Path) -> Result<Vec<PathBuf>> {
    if r.scenario == Scenario::Scale {
        return plot_scale(r, dir);
    }
    if r.scenario == Scenario::PacketCost {
        return plot_packet_cost(r, dir);
    }
    let mut out = Vec::new();
    for metric in metric_names(&r.trials) {
        if !(metric.ends_with("(ms)") || metric.contains("CPU")) {
            continue;
        }
        let series: Vec<(Impl, Vec<f64>)> = [Impl::Keepalived, Impl::HaAgent]
            .into_iter()
            .map(|d| (d, samples(&r.trials, d, &metric)))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        let path = dir.join(format!("{}-{}.svg", r.scenario.name(), slug(&metric)));
        ecdf(
            &path,
            &format!("{}: {metric}", r.scenario.name()),
            &metric,
            &series,
        )?;
        out.push(path);
    }
    Ok(out)
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e}")
}

/// Empirical distribution of each daemon's samples: x = value, y = fraction of trials ≤ x.
fn ecdf(path: &Path, title: &str, x_desc: &str, series: &[(Impl, Vec<f64>)]) -> Result<()> {
    let all: Vec<f64> = series.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.05).max(0.5);
    let (x0, x1) = ((lo - pad).max(0.0), hi + pad);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, 0f64..1.05f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("fraction of trials ≤ x")
        .draw()
        .map_err(plot_err)?;
    for (daemon, s) in series {
        let mut s = s.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        let c = color(*daemon);
        let mut steps = vec![(x0, 0.0)];
        for (i, x) in s.iter().enumerate() {
            steps.push((*x, i as f64 / n));
            steps.push((*x, (i + 1) as f64 / n));
        }
        steps.push((x1, 1.0));
        chart
            .draw_series(LineSeries::new(steps, c.stroke_width(2)))
            .map_err(plot_err)?
            .label(format!(
                "{} (n = {}, median {:.2})",
                daemon.name(),
                s.len(),
                stats(&s).map_or(f64::NAN, |st| st.median)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(
                s.iter()
                    .enumerate()
                    .map(|(i, x)| Circle::new((*x, (i + 1) as f64 / n), 3, c.filled())),
            )
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Packet cost: every sample of every case on one row per case, the median marked, the target
/// and the line-rate budget as vertical lines.
fn plot_packet_cost(r: &ScenarioResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let Some(pc) = &r.packet_cost else {
        return Ok(Vec::new());
    };
    let cases: Vec<&packet_cost::Case> = pc.cases.iter().filter(|c| !c.ns.is_empty()).collect();
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    let n = cases.len();
    let hi = cases
        .iter()
        .flat_map(|c| c.ns.iter().copied())
        .fold(LINE_RATE_NS, f64::max);
    let path = dir.join("packet-cost-ns-per-packet.svg");
    let root = SVGBackend::new(&path, (900, 90 + 30 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let labels: Vec<String> = cases.iter().map(|c| c.label.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "packet-cost: vrrp_rx per packet (BPF_PROG_TEST_RUN)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(290)
        .build_cartesian_2d(0f64..hi * 1.08, (0..n as i32).into_segmented())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("ns per packet (dots: calls of 10^6 packets; bar: median)")
        .y_labels(n)
        // Segment k is the row of case n - 1 - k (the first case on top).
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => (n as i32 - 1 - k)
                .try_into()
                .ok()
                .and_then(|i: usize| labels.get(i).cloned())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .disable_y_mesh()
        .draw()
        .map_err(plot_err)?;
    // The first case on top, in the example's order.
    let row = |i: usize| SegmentValue::CenterOf((n - 1 - i) as i32);
    for (x, color, what) in [
        (TARGET_NS, KEEPALIVED_COLOR, "target: 40 ns"),
        (LINE_RATE_NS, BLACK, "10G line rate: 67 ns"),
    ] {
        chart
            .draw_series(LineSeries::new(
                [(x, SegmentValue::Exact(0)), (x, SegmentValue::Last)],
                color.stroke_width(1),
            ))
            .map_err(plot_err)?
            .label(what)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    for (i, c) in cases.iter().enumerate() {
        chart
            .draw_series(
                c.ns.iter()
                    .map(|x| Circle::new((*x, row(i)), 3, AGENT_COLOR.mix(0.5).filled())),
            )
            .map_err(plot_err)?;
        if let Some(s) = stats(&c.ns) {
            let k = (n - 1 - i) as i32;
            let top = if k + 1 < n as i32 {
                SegmentValue::Exact(k + 1)
            } else {
                SegmentValue::Last
            };
            chart
                .draw_series(LineSeries::new(
                    [(s.median, SegmentValue::Exact(k)), (s.median, top)],
                    AGENT_COLOR.stroke_width(3),
                ))
                .map_err(plot_err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    drop(chart);
    drop(root);
    Ok(vec![path])
}

/// Scale: median CPU and RSS against the number of VRIDs, per daemon and role.
fn plot_scale(r: &ScenarioResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (what, unit) in [("CPU", "% of a core"), ("RSS", "MB")] {
        let mut lines = Vec::new();
        for daemon in [Impl::Keepalived, Impl::HaAgent] {
            for role in ["master", "backup"] {
                let pts: Vec<(f64, f64)> = SCALE_SIZES
                    .iter()
                    .filter_map(|n| {
                        let m = format!("{role} {what} ({unit}), {n} VRIDs");
                        Some((f64::from(*n), median_of(r, daemon, &m)?))
                    })
                    .collect();
                if !pts.is_empty() {
                    lines.push((daemon, role, pts));
                }
            }
        }
        if lines.is_empty() {
            continue;
        }
        let ymax = lines
            .iter()
            .flat_map(|(_, _, p)| p.iter().map(|(_, y)| *y))
            .fold(0.0, f64::max)
            * 1.15
            + 0.1;
        let path = dir.join(format!("scale-{}.svg", slug(what)));
        let root = SVGBackend::new(&path, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("scale: {what} (median) against VRIDs at advert_int 0.01"),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d((0.8f64..320f64).log_scale(), 0f64..ymax)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("VRIDs on one interface (log scale)")
            .y_desc(format!("{what} ({unit})"))
            .draw()
            .map_err(plot_err)?;
        for (daemon, role, pts) in lines {
            let c = color(daemon);
            let style = if role == "master" {
                c.stroke_width(3)
            } else {
                c.mix(0.55).stroke_width(2)
            };
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(plot_err)?
                .label(format!("{} {role}", daemon.name()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 4, style.filled())))
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
        drop(chart);
        drop(root);
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        let s = stats(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(
            (s.n, s.median, s.min, s.max, s.mean),
            (5, 3.0, 1.0, 5.0, 3.0)
        );
        assert_eq!(s.p95, 5.0);
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = stats(&twenty).unwrap();
        assert_eq!((s.median, s.p95), (10.5, 19.0));
        assert!(stats(&[]).is_none());
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0.0), "1970-01-01");
        assert_eq!(utc_date(1_795_318_562.8), "2026-11-22");
        assert_eq!(utc_date(951_782_400.0), "2000-02-29");
        for days in [0i64, 59, 60, 365, 11_016, 20_000, 24_000] {
            let d = utc_date(days as f64 * 86_400.0);
            let p: Vec<i64> = d.split('-').map(|x| x.parse().unwrap()).collect();
            assert_eq!(ha_tests::days_from_civil(p[0], p[1], p[2]), days, "{d}");
        }
    }

    #[test]
    fn targets_say_by_how_much() {
        let t = at_most("x", Some(40.0), Some(38.1), "ms");
        assert_eq!(t.met, Some(false));
        assert!(t.detail.contains("missed by 1.90 ms"), "{}", t.detail);
        assert_eq!(at_most("x", Some(1.0), Some(38.1), "ms").met, Some(true));
        assert_eq!(at_most("x", None, Some(1.0), "ms").met, None);
    }

    #[test]
    fn packet_cost_table_targets_and_plot() {
        let case = |name: &str, label: &str, ns: Vec<f64>| packet_cost::Case {
            name: name.into(),
            label: label.into(),
            expect: "XDP_DROP".into(),
            frame_bytes: 60,
            wall_ns: ns.iter().map(|x| x + 5.0).collect(),
            ns,
        };
        let r = ScenarioResult {
            scenario: Scenario::PacketCost,
            title: "5",
            description: "d",
            configs: BTreeMap::new(),
            trials: Vec::new(),
            wall_seconds: 1.0,
            packet_cost: Some(packet_cost::PacketCost {
                repeat: 1_000_000,
                runs: 3,
                program: "vrrp_rx".into(),
                baseline_program: "xdp_baseline".into(),
                ktime_program: "xdp_ktime".into(),
                configured_slots: 20,
                cases: vec![
                    case(BASELINE, "empty", vec![29.0, 30.0, 28.0]),
                    case(KTIME, "clock", vec![50.0, 50.0, 51.0]),
                    case(TARGET_CASE, "valid v3", vec![65.0, 70.0, 66.0]),
                ],
                settings: BTreeMap::from([("bpf_jit_enable".into(), "1".into())]),
            }),
        };
        let mut md = String::new();
        packet_cost_table(&mut md, &r).unwrap();
        assert!(
            md.contains("| valid v3 | XDP_DROP | 60 | 3 | 66.0 | 70 | 65 | 70 | 37.0 | 71.0 |"),
            "{md}"
        );
        assert!(md.contains("| keepalived | no equivalent |"), "{md}");
        assert!(md.contains("bpf_jit_enable: 1"), "{md}");
        assert!(md.contains("that call alone costs 21.0 ns here"), "{md}");
        assert!(md.contains("the reference, 16.0 ns, is the rest"), "{md}");
        let t = targets(&r, &[]);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].met, t[1].met), (Some(true), Some(false)));
        assert!(
            t[1].detail.contains("missed by 26.00 ns"),
            "{}",
            t[1].detail
        );

        let dir = std::env::temp_dir().join(format!("xtask-pc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plots = plot_scenario(&r, &dir).unwrap();
        let svg = std::fs::read_to_string(&plots[0]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.contains("valid v3") && svg.contains("target: 40 ns"));
    }

    #[test]
    fn ecdf_svg_has_both_daemons() {
        let dir = std::env::temp_dir().join(format!("xtask-ecdf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.svg");
        ecdf(
            &path,
            "t",
            "outage (ms)",
            &[
                (Impl::Keepalived, vec![41.0, 39.5, 44.0]),
                (Impl::HaAgent, vec![37.0, 36.8]),
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("keepalived (n = 3, median 41.00)"));
        assert!(svg.contains("ha-agent (n = 2, median 36.90)"));
    }
}

//! Scenario 5: the per-packet cost of XDP `vrrp_rx`. The measurement runs in
//! `ha-agent/examples/vrrp_rx_cost.rs` (it loads the programs embedded in ha-agent); this runs
//! it, keeps what it printed, and turns each of its runs into a trial.

use std::{collections::BTreeMap, path::Path, process::Command};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{Impl, Plan, ScenarioResult, Trial};

/// The example that measures.
pub const EXAMPLE: &str = "vrrp_rx_cost";

/// Packets per `BPF_PROG_TEST_RUN` call.
pub const REPEAT: u32 = 1_000_000;

/// The case whose cost is the kernel's loop around any program.
pub const BASELINE: &str = "baseline";

/// The case that reads the clock once and does nothing else.
pub const KTIME: &str = "ktime";

/// The case issue #8's target is about.
pub const TARGET_CASE: &str = "valid-v3-ipv4";

/// Issue #8: a valid advert, checksum included, in at most this many ns.
pub const TARGET_NS: f64 = 40.0;

/// 10G line rate (14.88 Mpps): ns a packet on one core.
pub const LINE_RATE_NS: f64 = 67.0;

/// One case as the example reports it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Case {
    pub name: String,
    pub label: String,
    /// The verdict and counter every call was checked against.
    pub expect: String,
    pub frame_bytes: usize,
    /// The kernel's figure per call: mean ns per packet, truncated to whole ns.
    pub ns: Vec<f64>,
    /// The userspace wall clock around each call / repeat (preemption included): a cross-check.
    pub wall_ns: Vec<f64>,
}

/// What the example printed, and the settings of this machine that bear on it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PacketCost {
    pub repeat: u32,
    pub runs: usize,
    pub program: String,
    pub baseline_program: String,
    #[serde(default)]
    pub ktime_program: String,
    pub configured_slots: usize,
    pub cases: Vec<Case>,
    /// Filled here, not by the example: JIT sysctls and CPU mitigations (a `ret` or an indirect
    /// call costs more with some of them).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

impl PacketCost {
    pub fn case(&self, name: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.name == name)
    }
}

/// The metric name of a case in the trials.
pub fn metric(label: &str) -> String {
    format!("{label} (ns)")
}

/// Files whose content is reported beside the figures.
const SETTINGS: &[(&str, &str)] = &[
    ("bpf_jit_enable", "/proc/sys/net/core/bpf_jit_enable"),
    ("bpf_jit_harden", "/proc/sys/net/core/bpf_jit_harden"),
    ("bpf_stats_enabled", "/proc/sys/kernel/bpf_stats_enabled"),
    (
        "spectre_v2",
        "/sys/devices/system/cpu/vulnerabilities/spectre_v2",
    ),
    (
        "spec_rstack_overflow",
        "/sys/devices/system/cpu/vulnerabilities/spec_rstack_overflow",
    ),
    (
        "retbleed",
        "/sys/devices/system/cpu/vulnerabilities/retbleed",
    ),
    (
        "clocksource",
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
    ),
];

/// Runs the example for `plan.trials` runs of every case; each run becomes a trial of
/// ha-agent's. A failed measurement (a wrong verdict or counter included) is one failed trial.
pub fn run(plan: &Plan, bin_dir: &Path, out: &mut ScenarioResult) -> Result<()> {
    let bin = bin_dir.join("examples").join(EXAMPLE);
    let runs = plan.trials.to_string();
    let repeat = REPEAT.to_string();
    eprintln!("+ {} --runs {runs} --repeat {repeat}", bin.display());
    let measured = Command::new(&bin)
        .args(["--runs", &runs, "--repeat", &repeat])
        // Progress (and errors) straight to the terminal.
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", bin.display()))
        .and_then(|o| {
            if !o.status.success() {
                bail!("{} failed ({}): see above", bin.display(), o.status);
            }
            serde_json::from_slice::<PacketCost>(&o.stdout)
                .with_context(|| format!("reading what {} printed", bin.display()))
        });
    let mut pc = match measured {
        Ok(pc) => pc,
        Err(e) => {
            out.trials.push(Trial {
                daemon: Impl::HaAgent,
                trial: 0,
                metrics: BTreeMap::new(),
                notes: Vec::new(),
                error: Some(format!("{e:#}")),
            });
            return Ok(());
        }
    };
    for (name, path) in SETTINGS {
        let value = std::fs::read_to_string(path).map_or_else(
            |e| format!("unreadable ({})", e.kind()),
            |s| s.trim().to_owned(),
        );
        pc.settings.insert((*name).to_owned(), value);
    }
    for run in 0..pc.runs {
        let metrics = pc
            .cases
            .iter()
            .filter_map(|c| Some((metric(&c.label), *c.ns.get(run)?)))
            .collect();
        out.trials.push(Trial {
            daemon: Impl::HaAgent,
            trial: run,
            metrics,
            notes: Vec::new(),
            error: None,
        });
    }
    out.packet_cost = Some(pc);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_example_prints() {
        let printed = r#"{"repeat":1000000,"runs":2,"program":"vrrp_rx","baseline_program":"xdp_baseline","configured_slots":20,"cases":[{"name":"baseline","label":"empty XDP program (baseline)","expect":"XDP_PASS (empty program)","frame_bytes":60,"ns":[29.0,30.0],"wall_ns":[41.5,39.9]}]}"#;
        let pc: PacketCost = serde_json::from_str(printed).unwrap();
        assert_eq!(pc.case(BASELINE).unwrap().ns, [29.0, 30.0]);
        assert!(pc.settings.is_empty());
        assert_eq!(
            metric(&pc.cases[0].label),
            "empty XDP program (baseline) (ns)"
        );
    }
}

//! What ships for Prometheus and Grafana works against a real scrape: the alert rules
//! (`dist/ha-agent.rules.yml`) pass `promtool check rules` and their unit tests, and Debian's
//! Prometheus server, scraping two lab agents (xdp datapath) every second under a default scrape
//! config (`honor_labels: false`, so the agent's `instance` label becomes `exported_instance`),
//! answers every panel query of the dashboard (`dist/grafana/ha-agent.json`) with data once the
//! lab has made the events the panels show (a failover, a rejected advert, a foreign advert,
//! fence drops), loads every alert rule without an evaluation error, and fires none of the
//! "not exactly one master" or fence alerts while the lab is healthy; a VRRP-only partition
//! (two masters) makes the split-brain alert pending.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use ha_tests::{Daemon, IFACE, Lab, Node, ha_agent_bin, v3_instance, wait_for, which};
use serde_json::Value;

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/ha-agent.rules.yml");
const RULE_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dist/ha-agent.rules.test.yml"
);
const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/grafana/ha-agent.json");

/// The job name the rules expect (`job="ha-agent"` in the agent-down rules).
const JOB: &str = "ha-agent";
const METRICS_PORT: u16 = 9650;
/// Prometheus listens on the client namespace's loopback.
const PROMETHEUS_PORT: u16 = 9090;
const VIP: &str = "192.0.2.200";
/// Long enough for Prometheus to start, scrape at 1 s and evaluate at 1 s on a loaded 2-core
/// machine.
const TIMEOUT: Duration = Duration::from_secs(60);
/// What Grafana puts for `$__rate_interval` at a 15 s scrape interval (4 × 15 s); the lab
/// scrapes every second, so a minute always holds enough samples.
const RATE_INTERVAL: &str = "1m";

/// `promtool` from Debian's `prometheus` package, or a failure that says how to get it.
fn promtool() -> PathBuf {
    which("promtool").unwrap_or_else(|_| {
        panic!(
            "promtool not found on PATH: `apt-get install prometheus` (Debian's package ships \
             promtool and the server; `cargo xtask test` installs it)"
        )
    })
}

/// Runs `promtool args…` and returns its output; fails the test with it unless it succeeds.
fn run_promtool(args: &[&str]) -> String {
    let out = Command::new(promtool())
        .args(args)
        .output()
        .expect("running promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let checked = run_promtool(&["check", "rules", RULES]);
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    // The unit tests name the rules file relative to themselves.
    let tested = run_promtool(&["test", "rules", RULE_TESTS]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).expect("reading the dashboard");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: not JSON: {e}"))
}

/// The dashboard's panels, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("a panels array") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// Every (panel title, target expression) of the dashboard.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        let title = p["title"].as_str().unwrap_or("?").to_owned();
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str();
            out.push((
                title.clone(),
                expr.unwrap_or_else(|| panic!("{title}: a target without expr"))
                    .to_owned(),
            ));
        }
    }
    out
}

/// A query as Grafana sends it with job `ha-agent`, every node selected ("All", whose value
/// is `.*`) and `$__rate_interval` at a 15 s scrape interval. Fails on a variable it does not
/// know, so a misspelt one cannot pass.
fn substitute(expr: &str) -> String {
    let out = expr
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("${job}", JOB)
        .replace("$job", JOB)
        .replace("${node}", ".*")
        .replace("$node", ".*");
    assert!(
        !out.contains('$'),
        "a variable the dashboard does not define: {expr}"
    );
    out
}

/// Importable as it is: a datasource variable every panel and target uses, the job and node
/// variables every per-node query filters on, unique panel ids, and the panels issue #18 asks
/// for, each reading its metric.
#[test]
fn dashboard_is_importable_and_its_queries_use_its_variables() {
    let d = dashboard();
    assert!(d["id"].is_null(), "an exported dashboard has no id");
    assert_eq!(d["uid"], "ha-agent");
    let vars = d["templating"]["list"]
        .as_array()
        .expect("template variables");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` variable"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("job")["type"], "query");
    assert_eq!(var("node")["allValue"], ".*");
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(ids.insert(p["id"].as_u64()), "{title}: duplicate id");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().expect("expr");
            assert!(expr.contains(r#"job=~"$job""#), "{title}: {expr}");
        }
    }
    let queries = panel_queries(&d);
    let panel_reading = |kind: &str, metric: &str| {
        panels(&d).iter().any(|p| {
            p["type"] == kind
                && p["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["expr"].as_str().unwrap_or("").contains(metric))
        })
    };
    assert!(panel_reading("state-timeline", "ha_agent_instance_state"));
    for metric in [
        "ha_agent_instance_transitions_total",
        "ha_agent_instance_adverts_sent_total",
        "ha_agent_instance_adverts_received_total",
        "ha_agent_adverts_rejected_total",
        "ha_agent_fence_drops_total",
        "ha_agent_instance_last_takeover_seconds",
    ] {
        assert!(
            queries.iter().any(|(_, q)| q.contains(metric)),
            "no panel reads {metric}"
        );
    }
    for (_, q) in &queries {
        substitute(q);
    }
}

/// Percent-encodes `s` for a query string.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus's HTTP API, reached inside the client namespace.
struct Prometheus {
    client: Node,
    daemon: Daemon,
}

impl Prometheus {
    /// `GET path` from the client namespace (HTTP/1.0: the answer is not chunked): (status
    /// code, body).
    fn get(&self, path: &str) -> Result<(u16, String)> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], PROMETHEUS_PORT));
        ha_tests::lvs::http_get(&self.client, addr, path, None)
    }

    /// The `data` of a successful API answer at `path`.
    fn api(&self, path: &str) -> Result<Value> {
        let (code, body) = self.get(path)?;
        let v: Value =
            serde_json::from_str(&body).with_context(|| format!("{path}: not JSON: {body}"))?;
        if code != 200 || v["status"] != "success" {
            bail!("{path}: HTTP {code}: {body}");
        }
        Ok(v["data"].clone())
    }

    /// The result vector of an instant query at the current time.
    fn query(&self, promql: &str) -> Result<Vec<Value>> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(promql)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until `promql` returns a result `cond` accepts; fails with the last result and
    /// Prometheus's log.
    fn wait(&self, what: &str, promql: &str, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut last = Ok(Vec::new());
        let found = wait_for(what, TIMEOUT, || {
            last = self.query(promql);
            Ok(last.as_ref().is_ok_and(|r| cond(r)))
        });
        if let Err(e) = found {
            panic!(
                "{e}: {promql} last returned {last:?}\nprometheus log:\n{}",
                self.daemon.log()
            );
        }
        last.unwrap()
    }
}

/// `label="value"` of a result series.
fn label<'a>(series: &'a Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

fn target(node: u8) -> String {
    format!("192.0.2.{node}:{METRICS_PORT}")
}

/// Starts Debian's Prometheus in the lab's client namespace: 1 s scrape and evaluation, the
/// rules file loaded, a default scrape config for job `ha-agent` over both nodes' agents,
/// storage in the lab directory (removed with the lab).
fn start_prometheus(lab: &Lab) -> Prometheus {
    let bin = which("prometheus").unwrap_or_else(|_| {
        panic!("prometheus not found on PATH: `apt-get install prometheus` (Debian's package)")
    });
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {RULES}\n\
         scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [\"{}\", \"{}\"]\n",
        target(1),
        target(2)
    );
    let config = lab.write_file("prometheus.yml", &config).unwrap();
    let storage = lab.dir.join("prometheus-data");
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", storage.display()),
        format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = lab
        .client
        .spawn("prometheus", &lab.dir, &bin.display().to_string(), &args)
        .expect("starting prometheus");
    let prometheus = Prometheus {
        client: lab.client.clone(),
        daemon,
    };
    let ready = wait_for("prometheus ready (/-/ready)", TIMEOUT, || {
        Ok(prometheus
            .get("/-/ready")
            .is_ok_and(|(code, _)| code == 200))
    });
    if let Err(e) = ready {
        panic!("{e}; prometheus log:\n{}", prometheus.daemon.log());
    }
    prometheus
}

/// Node `i`'s VRRP state (`VI_1`) from its status socket, "" while it does not answer.
fn state(lab: &Lab, i: usize) -> String {
    common::node_status(lab, i)
        .map(|r| r.instances[0].state.clone())
        .unwrap_or_default()
}

fn wait_states(lab: &Lab, what: &str, want: [&str; 2], agents: &[&Daemon]) {
    let found = wait_for(what, Duration::from_secs(20), || {
        Ok(state(lab, 1) == want[0] && state(lab, 2) == want[1])
    });
    if let Err(e) = found {
        let logs: Vec<String> = agents.iter().map(|a| a.log()).collect();
        panic!(
            "{e}: node 1 {}, node 2 {}\n{}",
            state(lab, 1),
            state(lab, 2),
            logs.join("\n---\n")
        );
    }
}

/// `vrrp_flood` from the client: `count` adverts for `vrid` listing `vip`.
fn forge_adverts(lab: &Lab, vrid: u8, vip: &str, count: u32) {
    let mac = lab.client.mac().unwrap();
    lab.client
        .run(
            env!("CARGO_BIN_EXE_vrrp_flood"),
            &[
                "--interface",
                IFACE,
                "--vrid",
                &vrid.to_string(),
                "--priority",
                "1",
                "--src-mac",
                &mac,
                "--src-ip",
                "192.0.2.99",
                "--vip",
                vip,
                "--count",
                &count.to_string(),
            ],
        )
        .unwrap();
}

#[test]
fn every_panel_and_alert_query_answers_from_a_scraped_lab() {
    run_promtool(&["check", "rules", RULES]);
    ha_agent_bin().expect("the ha-agent binary: run `cargo build -p ha-agent` first");
    which("prometheus").unwrap_or_else(|_| {
        panic!("prometheus not found on PATH: `apt-get install prometheus` (Debian's package)")
    });
    let lab = Lab::new("dash", 2).expect("building the lab");
    let agent = |i: u8, priority: u8| {
        let listen = format!("192.0.2.{i}:{METRICS_PORT}");
        let args = ["--datapath", "xdp", "--metrics-listen", &listen];
        let mut a = lab
            .ha_agent(usize::from(i), &v3_instance(priority, "0.1"), &args)
            .unwrap();
        lab.wait_agent_ready(usize::from(i), &mut a, common::AGENT_READY)
            .unwrap();
        a
    };
    let a1 = agent(1, 150);
    let a2 = agent(2, 100);
    let agents = [&a1, &a2];
    wait_states(
        &lab,
        "node 1 MASTER, node 2 BACKUP",
        ["MASTER", "BACKUP"],
        &agents,
    );
    let prometheus = start_prometheus(&lab);
    prometheus.wait(
        "both agents scraped",
        &format!("up{{job=\"{JOB}\"}} == 1"),
        |r| r.len() == 2,
    );

    // A failover (node 1 cut off: node 2 takes over) and the failback (node 1 preempts).
    lab.cut(1).unwrap();
    wait_states(
        &lab,
        "node 2 MASTER, node 1 FAULT",
        ["FAULT", "MASTER"],
        &agents,
    );
    // A scrape must see node 2 MASTER, or the takeover would be missed between two scrapes.
    prometheus.wait(
        "node 2 MASTER in Prometheus",
        &format!(
            "ha_agent_instance_state{{instance=\"{}\",state=\"MASTER\"}} == 1",
            target(2)
        ),
        |r| r.len() == 1,
    );
    lab.restore(1).unwrap();
    wait_states(&lab, "node 1 MASTER again", ["MASTER", "BACKUP"], &agents);

    // A forged advert for our VRID with another VIP list (rejected: address_list_mismatch),
    // and one for a VRID nobody here runs (foreign).
    forge_adverts(&lab, 51, "192.0.2.250", 5);
    forge_adverts(&lab, 99, "192.0.2.250", 5);

    // Fence drops: the client sends to the VIP at node 2's MAC (a stale ARP entry), which node
    // 2, the backup, fences.
    let n2_mac = lab.node(2).mac().unwrap();
    let neigh = [
        "neigh",
        "replace",
        VIP,
        "lladdr",
        &n2_mac,
        "dev",
        IFACE,
        "nud",
        "permanent",
    ];
    lab.client.run("ip", &neigh).unwrap();
    let prober = lab.prober(VIP.parse().unwrap()).unwrap();
    prometheus.wait(
        "node 2's fence drops",
        &format!(
            "ha_agent_fence_drops_total{{instance=\"{}\",interface=\"eth0\"}} >= 5",
            target(2)
        ),
        |r| r.len() == 1,
    );
    let probed = prober.stop().unwrap();
    assert_eq!(
        probed.replies, 0,
        "the backup answered pings to the VIP: the fence did not drop them"
    );
    lab.client
        .run("ip", &["neigh", "del", VIP, "dev", IFACE])
        .unwrap();

    // Every event is scraped before the panels are asked.
    prometheus.wait(
        "node 2's takeover time",
        &format!(
            "ha_agent_instance_last_takeover_seconds{{instance=\"{}\"}}",
            target(2)
        ),
        |r| r.len() == 1,
    );
    prometheus.wait(
        "both nodes' address_list_mismatch rejections",
        r#"ha_agent_adverts_rejected_total{vrid="51",reason="address_list_mismatch"} >= 5"#,
        |r| r.len() == 2,
    );
    prometheus.wait(
        "both nodes' foreign adverts for VRID 99",
        r#"ha_agent_adverts_foreign_total{vrid="99"} >= 5"#,
        |r| r.len() == 2,
    );
    // A counter's first sample is no increase: a second burst, once the series exist, is what
    // a rate (the panels, HaAgentAdvertsRejected) sees.
    forge_adverts(&lab, 51, "192.0.2.250", 5);
    forge_adverts(&lab, 99, "192.0.2.250", 5);
    prometheus.wait(
        "the second burst scraped",
        r#"ha_agent_adverts_rejected_total{vrid="51",reason="address_list_mismatch"} >= 10
           or ha_agent_adverts_foreign_total{vrid="99"} >= 10"#,
        |r| r.len() == 4,
    );

    // Every panel's query has data: a misspelt metric, label or function would return none.
    let d = dashboard();
    let queries = panel_queries(&d);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut empty = Vec::new();
    let mut answers: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (title, expr) in &queries {
        let promql = substitute(expr);
        match prometheus.query(&promql) {
            Ok(r) if !r.is_empty() => answers.entry(title).or_default().extend(r),
            Ok(_) => empty.push(format!("{title}: no data from {promql}")),
            Err(e) => empty.push(format!("{title}: {e:#}")),
        }
    }
    // The variables' label_values(METRIC, LABEL) queries list the job and both nodes.
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = substitute(v["query"].as_str().expect("a variable's query"));
        let (metric, label_name) = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.rsplit_once(", "))
            .unwrap_or_else(|| panic!("variable {}: not label_values(M, L): {q}", v["name"]));
        let r = prometheus
            .query(&format!("group by ({label_name}) ({metric})"))
            .unwrap();
        let values: BTreeSet<&str> = r.iter().map(|s| label(s, label_name)).collect();
        let want: BTreeSet<String> = match label_name {
            "job" => [JOB.to_owned()].into(),
            _ => [target(1), target(2)].into(),
        };
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        assert_eq!(values, want, "variable {}: {q}", v["name"]);
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );

    // The panels tell what the lab is. Under a default scrape config the node is `instance`
    // and the VRRP instance `exported_instance`: "Who is master" names node 1 and VI_1, and
    // the state timeline's value mappings turn its numbers into node 1 MASTER, node 2 BACKUP.
    let masters = &answers["Who is master"];
    assert_eq!(masters.len(), 1, "{masters:?}");
    assert_eq!(label(&masters[0], "instance"), target(1));
    assert_eq!(label(&masters[0], "exported_instance"), "VI_1");
    let timeline = panels(&d)
        .into_iter()
        .find(|p| p["type"] == "state-timeline")
        .expect("a state timeline");
    let mapping = &timeline["fieldConfig"]["defaults"]["mappings"][0]["options"];
    let shown: BTreeMap<&str, &str> = answers[timeline["title"].as_str().unwrap()]
        .iter()
        .map(|s| {
            let value = s["value"][1].as_str().unwrap_or("");
            let text = mapping[value]["text"].as_str();
            (label(s, "instance"), text.unwrap_or("no mapping"))
        })
        .collect();
    let (t1, t2) = (target(1), target(2));
    assert_eq!(
        shown,
        [(t1.as_str(), "MASTER"), (t2.as_str(), "BACKUP")].into(),
        "{mapping}"
    );

    // Every rule is loaded and evaluates without error against these series.
    let rules_of = || -> Vec<Value> {
        let data = prometheus.api("/api/v1/rules").unwrap();
        data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["name"] == "ha-agent")
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    wait_for("every rule evaluated", TIMEOUT, || {
        Ok(rules_of().iter().all(|r| r["health"] != "unknown"))
    })
    .unwrap();
    let rules = rules_of();
    assert_eq!(rules.len(), 8, "rules loaded from {RULES}");
    for r in &rules {
        assert_eq!(r["health"], "ok", "{r:#}");
        let expr = r["query"].as_str().expect("a rule's query");
        prometheus
            .query(expr)
            .unwrap_or_else(|e| panic!("{}: {e:#}", r["name"]));
    }
    let expr_of = |name: &str| -> String {
        rules
            .iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["query"].as_str())
            .unwrap_or_else(|| panic!("no rule {name}"))
            .to_owned()
    };
    // Healthy: one master per VRID, the fence drops only on the backup, every agent up.
    for name in [
        "HaAgentSplitBrain",
        "HaAgentNoMaster",
        "HaAgentFenceDroppingOnMaster",
        "HaAgentAllDown",
        "HaAgentTargetsMissing",
    ] {
        let r = prometheus.query(&expr_of(name)).unwrap();
        assert!(r.is_empty(), "{name} matches the healthy lab: {r:?}");
    }
    let rejected = prometheus
        .query(&expr_of("HaAgentAdvertsRejected"))
        .unwrap();
    let nodes: BTreeSet<&str> = rejected
        .iter()
        .filter(|s| label(s, "reason") == "address_list_mismatch" && label(s, "vrid") == "51")
        .map(|s| label(s, "instance"))
        .collect();
    assert_eq!(
        nodes,
        [target(1).as_str(), target(2).as_str()].into(),
        "{rejected:?}"
    );
    let alerts = prometheus.api("/api/v1/alerts").unwrap();
    assert!(
        !alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["alertname"] == "HaAgentSplitBrain"),
        "{alerts:#}"
    );

    // Two masters (VRRP blocked both ways): the split-brain expression names VRID 51 and the
    // alert is pending (it fires after a minute).
    lab.block_vrrp(1, true).unwrap();
    lab.block_vrrp(2, true).unwrap();
    wait_states(&lab, "two masters", ["MASTER", "MASTER"], &agents);
    let split = prometheus.wait(
        "the split-brain expression",
        &expr_of("HaAgentSplitBrain"),
        |r| !r.is_empty(),
    );
    assert_eq!(split.len(), 1, "{split:?}");
    let s = &split[0];
    assert_eq!(
        (
            label(s, "job"),
            label(s, "interface"),
            label(s, "vrid"),
            label(s, "family")
        ),
        (JOB, "eth0", "51", "ipv4"),
        "{s}"
    );
    assert_eq!(s["value"][1], "2", "{s}");
    wait_for("HaAgentSplitBrain pending", TIMEOUT, || {
        let alerts = prometheus.api("/api/v1/alerts")?;
        Ok(alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["alertname"] == "HaAgentSplitBrain" && a["state"] == "pending"))
    })
    .unwrap();
    lab.block_vrrp(1, false).unwrap();
    lab.block_vrrp(2, false).unwrap();
    wait_states(&lab, "one master again", ["MASTER", "BACKUP"], &agents);
    prometheus.wait(
        "the split-brain expression empty again",
        &expr_of("HaAgentSplitBrain"),
        <[Value]>::is_empty,
    );
}

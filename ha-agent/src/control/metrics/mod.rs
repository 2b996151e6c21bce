//! Metrics on `--metrics-listen ADDR`: `GET /metrics` (or `HEAD`), 404 for any other path, 405
//! for any other method.
//!
//! The exposition is the Prometheus project's client, `prometheus-client`: it writes the types,
//! HELP and label escaping of both formats. A scraper whose `Accept` prefers
//! `application/openmetrics-text` (Prometheus does) gets OpenMetrics 1.0.0, ending in `# EOF`;
//! anyone else (curl, an older scraper) the Prometheus text format 0.0.4. The samples are the
//! same in both; only the metadata differs: OpenMetrics names a counter's family without its
//! `_total` (`# TYPE ha_agent_wakeups counter`, then `ha_agent_wakeups_total 42`). The values
//! come from a [`Report`] taken when the scraper asks (a [`Collector`] over the status the loop
//! publishes on a watch channel): the loop that owns the state machines never waits on a
//! scraper.
//!
//! Metrics (labels `instance`, `interface`, `vrid`, `family` on every per-instance series). Their
//! names, labels and values are a contract with dashboards and alert rules: `contract.txt` holds
//! every sample of a rich report, and the tests serve exactly those in both formats.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `ha_agent_info{version,datapath}` | gauge | 1 |
//! | `ha_agent_instance_state{…,state}` | gauge | 1 for the current state (INIT, BACKUP, MASTER, FAULT), 0 for the others |
//! | `ha_agent_instance_configured_priority` | gauge | priority in the configuration |
//! | `ha_agent_instance_effective_priority` | gauge | configured ± tracker weights |
//! | `ha_agent_instance_state_since_seconds` | gauge | Unix time of the last state change |
//! | `ha_agent_instance_transitions_total` | counter | state changes |
//! | `ha_agent_instance_adverts_sent_total` | counter | adverts sent |
//! | `ha_agent_instance_adverts_received_total` | counter | valid adverts received |
//! | `ha_agent_instance_last_takeover_seconds` | gauge | last failover: old master's last advert → we are master (absent before the first) |
//! | `ha_agent_vip_conflicts_total{…,vip}` | counter | claims to the VIP (ARP, NA) by another MAC while this node was its master: address conflicts |
//! | `ha_agent_adverts_rejected_total{interface,vrid,reason}` | counter | adverts dropped, by reason |
//! | `ha_agent_fence_drops_total{interface}` | counter | packets the TC fence dropped (xdp datapath only) |
//! | `ha_agent_adverts_foreign_total{interface,vrid}` | counter | VRRP for other speakers (VRID, group, VLAN or MAC not ours): passed to the kernel by XDP, ignored by sockets |
//! | `ha_agent_wakeups_total` | counter | event-loop wake-ups (adverts, timers, trackers, signals) |
//! | `ha_agent_claims_dropped_total` | counter | ARP/NA claims of our VIPs the kernel dropped unread (a flood) |
//! | `ha_agent_xdp_events_lost_total{interface}` | counter | XDP peer events lost to a full ring buffer, each resynchronised from the peer records (xdp datapath only) |
//! | `ha_agent_lvs_quorum_up{service}`, `ha_agent_lvs_sorry_server_active{service}` | gauge | a virtual server (`service="TCP 10.0.0.100:80"`) has quorum; its sorry server takes every new flow |
//! | `ha_agent_lvs_service_{packets,bytes,new_flows}_total{service}` | counter | forwarded by the XDP load balancer for the service |
//! | `ha_agent_lvs_real_up{service,real}`, `ha_agent_lvs_real_weight{service,real}` | gauge | the real server's checkers all succeed; the weight new flows see |
//! | `ha_agent_lvs_real_{packets,bytes,new_flows}_total{service,real}` | counter | forwarded to the real server |
//! | `ha_agent_lvs_checker_up`, `_latency_seconds`, `_failures_total{service,real,checker,index}` | gauge, gauge, counter | each health checker's last round |
//! | `ha_agent_metrics_connections_refused_total` | counter | scrapes closed at once: [`MAX_CONNECTIONS`] were being served |
//!
//! The server ([`hyper`], HTTP/1.1 only, one request per connection) is bounded: at most
//! [`MAX_CONNECTIONS`] connections are served at a time, and more are closed as soon as they are
//! accepted (and counted); a request head must arrive within [`HEADER_TIMEOUT`] and be at most
//! [`MAX_REQUEST_HEAD`] bytes, and a connection is closed [`CONNECTION_TIMEOUT`] after it was
//! accepted whatever it is doing, so a flood of idle or slow (slowloris) connections costs a
//! bounded number of descriptors and tasks for a bounded time.

mod http;
#[cfg(test)]
mod tests;

use std::fmt;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric as _},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        gauge::ConstGauge,
    },
    registry::Registry,
};
use tokio::sync::watch;

pub use http::{
    CONNECTION_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_REQUEST_HEAD, bind, serve,
};

use super::report::{InstanceReport, Report};
use crate::status::{CheckerStatus, RealServerStatus, Status, VirtualServerStatus};

const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

/// The two text formats a scraper may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format a request's `Accept` header values ask for: OpenMetrics when
    /// `application/openmetrics-text` is accepted (q > 0) and no plain-text range (`text/plain`,
    /// `text/*`, `*/*`) has a higher q; the Prometheus text format otherwise, and without an
    /// `Accept`.
    pub fn negotiate<'a>(accept: impl IntoIterator<Item = &'a str>) -> Format {
        let (mut openmetrics, mut plain) = (0.0f32, 0.0f32);
        for range in accept.into_iter().flat_map(|v| v.split(',')) {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or_default().to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "text/*" | "*/*" => plain = plain.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= plain {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// What a scrape encodes: the agent's series from a fresh [`Report`], and the server's own
/// count of refused connections.
pub struct Metrics {
    registry: Registry,
    refused: Counter,
}

impl Metrics {
    /// The metrics of the status the loop publishes, taken at each scrape.
    pub fn of_status(status: watch::Receiver<Status>) -> Metrics {
        Metrics::new(move || Report::now(&status.borrow()))
    }

    /// The metrics of the report `report` returns at each scrape.
    pub fn new(report: impl Fn() -> Report + Send + Sync + 'static) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ReportCollector(Box::new(report))));
        let refused = Counter::default();
        registry.register(
            "ha_agent_metrics_connections_refused",
            format!("Metrics connections closed at once: {MAX_CONNECTIONS} were being served"),
            refused.clone(),
        );
        Metrics { registry, refused }
    }

    /// The whole exposition in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        let encoded = match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
        };
        // Writing into a String fails only if an encoder does; ours never do.
        encoded.expect("encoding metrics into a String");
        out
    }

    /// Counts a connection the cap closed; returns the count so far.
    fn refuse(&self) -> u64 {
        self.refused.inc() + 1
    }
}

/// The exposition of `report` alone (with no refused connections) in `format`.
pub fn render(report: &Report, format: Format) -> String {
    let report = report.clone();
    Metrics::new(move || report.clone()).encode(format)
}

/// Encodes the series of the report its function returns, when a scrape encodes the registry.
struct ReportCollector(Box<dyn Fn() -> Report + Send + Sync>);

impl fmt::Debug for ReportCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReportCollector")
    }
}

impl Collector for ReportCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        encode_report(&(self.0)(), &mut encoder)
    }
}

/// Label names and values of one sample, in the order they are written.
type Labels = Vec<(&'static str, String)>;

/// A gauge family: `name`, `help`, one sample per (labels, value).
fn gauges<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, N)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter family whose samples are named `name` (which ends in `_total`: the encoders add
/// the suffix to the family's name, so it is written here as scrapers see it).
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let family_name = name
        .strip_suffix("_total")
        .expect("a counter's samples end in _total");
    let mut family = encoder.encode_descriptor(family_name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn instance_labels(i: &InstanceReport) -> Labels {
    vec![
        ("instance", i.name.clone()),
        ("interface", i.interface.clone()),
        ("vrid", i.vrid.to_string()),
        ("family", format!("ipv{}", i.family)),
    ]
}

/// Labels of each instance, with `extra` appended.
fn labelled(i: &InstanceReport, extra: impl IntoIterator<Item = (&'static str, String)>) -> Labels {
    let mut labels = instance_labels(i);
    labels.extend(extra);
    labels
}

/// The agent's series for `r`.
fn encode_report(r: &Report, e: &mut DescriptorEncoder) -> fmt::Result {
    gauges(
        e,
        "ha_agent_info",
        "ha-agent's version and data path.",
        [(
            vec![
                ("version", r.agent.version.clone()),
                ("datapath", r.agent.datapath.clone()),
            ],
            1i64,
        )],
    )?;
    let per_seconds = |f: fn(&InstanceReport) -> Option<f64>| {
        r.instances
            .iter()
            .filter_map(move |i| f(i).map(|v| (instance_labels(i), v)))
    };
    let per =
        |f: fn(&InstanceReport) -> u64| r.instances.iter().map(move |i| (instance_labels(i), f(i)));
    gauges(
        e,
        "ha_agent_instance_state",
        "1 for the instance's current VRRP state, 0 for the others.",
        r.instances.iter().flat_map(|i| {
            STATES.iter().map(move |s| {
                (
                    labelled(i, [("state", (*s).to_owned())]),
                    i64::from(i.state == *s),
                )
            })
        }),
    )?;
    gauges(
        e,
        "ha_agent_instance_configured_priority",
        "Priority in the configuration.",
        per(|i| u64::from(i.configured_priority)),
    )?;
    gauges(
        e,
        "ha_agent_instance_effective_priority",
        "Priority after tracker weights, as advertised.",
        per(|i| u64::from(i.effective_priority)),
    )?;
    gauges(
        e,
        "ha_agent_instance_state_since_seconds",
        "Unix time of the instance's last state change.",
        per_seconds(|i| Some(i.state_since_unix)),
    )?;
    counters(
        e,
        "ha_agent_instance_transitions_total",
        "State changes of the instance.",
        per(|i| i.transitions),
    )?;
    counters(
        e,
        "ha_agent_instance_adverts_sent_total",
        "VRRP adverts sent.",
        per(|i| i.adverts.sent),
    )?;
    counters(
        e,
        "ha_agent_instance_adverts_received_total",
        "Valid VRRP adverts received.",
        per(|i| i.adverts.received),
    )?;
    gauges(
        e,
        "ha_agent_instance_last_takeover_seconds",
        "Duration of the last failover to this node: last advert of the old master to MASTER.",
        per_seconds(|i| i.last_takeover_seconds),
    )?;
    counters(
        e,
        "ha_agent_vip_conflicts_total",
        "Claims to the VIP (ARP, NA) by another host while this node was its master: address conflicts.",
        r.instances.iter().flat_map(|i| {
            i.vip_conflicts
                .iter()
                .map(move |(vip, n)| (labelled(i, [("vip", vip.to_string())]), *n))
        }),
    )?;
    counters(
        e,
        "ha_agent_adverts_rejected_total",
        "VRRP adverts dropped, by interface, VRID and reason.",
        r.rejected.iter().map(|x| {
            (
                vec![
                    ("interface", x.interface.clone()),
                    ("vrid", x.vrid.to_string()),
                    ("reason", x.reason.clone()),
                ],
                x.count,
            )
        }),
    )?;
    counters(
        e,
        "ha_agent_adverts_foreign_total",
        "VRRP adverts for other speakers (VRID, group, VLAN or MAC not ours), by interface and VRID: passed to the kernel by XDP, ignored by the receive sockets.",
        r.foreign.iter().map(|x| {
            (
                vec![
                    ("interface", x.interface.clone()),
                    ("vrid", x.vrid.to_string()),
                ],
                x.count,
            )
        }),
    )?;
    counters(
        e,
        "ha_agent_wakeups_total",
        "Event-loop wake-ups: adverts (every one on the socket datapath, changes only on XDP), timers, trackers, signals.",
        [(Labels::new(), r.agent.wakeups)],
    )?;
    counters(
        e,
        "ha_agent_claims_dropped_total",
        "ARP/NA claims of our VIPs the kernel dropped unread: a flood beyond what the agent reads.",
        [(Labels::new(), r.agent.claims_dropped)],
    )?;
    if r.agent.datapath == "xdp" {
        let per_interface = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(i, n)| (vec![("interface", i.clone())], *n))
                .collect::<Vec<_>>()
        };
        counters(
            e,
            "ha_agent_fence_drops_total",
            "Packets the TC fence dropped on the interface.",
            per_interface(&r.fence_drops),
        )?;
        counters(
            e,
            "ha_agent_xdp_events_lost_total",
            "XDP peer events lost to a full ring buffer; each loss is resynchronised from the peer records.",
            per_interface(&r.events_lost),
        )?;
    }
    if !r.virtual_servers.is_empty() {
        encode_lvs(&r.virtual_servers, e)?;
    }
    Ok(())
}

/// `service="TCP 10.0.0.100:80"`, as `ipvsadm` names a service.
fn service_labels(vs: &VirtualServerStatus) -> Labels {
    vec![("service", format!("{} {}", vs.protocol, vs.address))]
}

/// The `ha_agent_lvs_*` series: per service, per real server and per checker.
fn encode_lvs(vss: &[VirtualServerStatus], e: &mut DescriptorEncoder) -> fmt::Result {
    let per_vs =
        |f: fn(&VirtualServerStatus) -> u64| vss.iter().map(move |v| (service_labels(v), f(v)));
    let per_rs = |f: fn(&RealServerStatus) -> u64| {
        vss.iter().flat_map(move |v| {
            v.reals.iter().map(move |rs| {
                let mut labels = service_labels(v);
                labels.push(("real", rs.address.to_string()));
                (labels, f(rs))
            })
        })
    };
    gauges(
        e,
        "ha_agent_lvs_quorum_up",
        "1 while the virtual server has quorum.",
        per_vs(|v| u64::from(v.quorum_up)),
    )?;
    gauges(
        e,
        "ha_agent_lvs_sorry_server_active",
        "1 while the sorry server takes every new flow.",
        per_vs(|v| u64::from(v.sorry_active)),
    )?;
    counters(
        e,
        "ha_agent_lvs_service_packets_total",
        "Packets the load balancer forwarded for the service.",
        per_vs(|v| v.packets),
    )?;
    counters(
        e,
        "ha_agent_lvs_service_bytes_total",
        "Bytes the load balancer forwarded for the service.",
        per_vs(|v| v.bytes),
    )?;
    counters(
        e,
        "ha_agent_lvs_service_new_flows_total",
        "Flows the load balancer placed for the service.",
        per_vs(|v| v.new_flows),
    )?;
    gauges(
        e,
        "ha_agent_lvs_real_up",
        "1 while every checker of the real server succeeds.",
        per_rs(|rs| u64::from(rs.health == "up" || rs.health == "no neighbour")),
    )?;
    gauges(
        e,
        "ha_agent_lvs_real_weight",
        "The weight new flows see now (0: down, inhibited or not placed).",
        per_rs(|rs| u64::from(rs.weight)),
    )?;
    counters(
        e,
        "ha_agent_lvs_real_packets_total",
        "Packets forwarded to the real server.",
        per_rs(|rs| rs.packets),
    )?;
    counters(
        e,
        "ha_agent_lvs_real_bytes_total",
        "Bytes forwarded to the real server.",
        per_rs(|rs| rs.bytes),
    )?;
    counters(
        e,
        "ha_agent_lvs_real_new_flows_total",
        "Flows placed on the real server.",
        per_rs(|rs| rs.new_flows),
    )?;
    let checkers = || {
        vss.iter().flat_map(|v| {
            v.reals.iter().flat_map(move |rs| {
                rs.checkers.iter().enumerate().map(move |(n, c)| {
                    let mut labels = service_labels(v);
                    labels.extend([
                        ("real", rs.address.to_string()),
                        ("checker", c.kind.clone()),
                        ("index", n.to_string()),
                    ]);
                    (labels, c)
                })
            })
        })
    };
    gauges(
        e,
        "ha_agent_lvs_checker_up",
        "1 while the health checker succeeds.",
        checkers().map(|(l, c): (Labels, &CheckerStatus)| (l, u64::from(c.up))),
    )?;
    gauges(
        e,
        "ha_agent_lvs_checker_latency_seconds",
        "How long the checker's last attempt took.",
        checkers().filter_map(|(l, c)| c.latency_seconds.map(|s| (l, s))),
    )?;
    counters(
        e,
        "ha_agent_lvs_checker_failures_total",
        "Failed rounds of the checker.",
        checkers().map(|(l, c)| (l, c.failures)),
    )
}

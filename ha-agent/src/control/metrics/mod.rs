//! Prometheus text metrics on `--metrics-listen ADDR`: `GET /metrics`, 404 for any other path.
//!
//! A hand-written HTTP/1.1 responder (one route, `Connection: close`) rather than a framework:
//! the agent's dependency tree stays small and auditable, and a scraper needs no more. Requests
//! are read for at most 5 s and 8 KiB; the loop that owns the state machines never waits on a
//! scraper (the status comes from a watch channel).
//!
//! Metrics (labels `instance`, `interface`, `vrid`, `family` on every per-instance series):
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
//! At most [`MAX_CONNECTIONS`] connections are served at a time; more are closed as soon as
//! they are accepted (and counted), so a flood of idle connections costs a bounded number of
//! descriptors and tasks.

use std::{fmt::Write as _, time::Duration};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tracing::{debug, warn};

use super::report::{InstanceReport, Report};
use crate::status::Status;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; a scraper needs one.
pub const MAX_CONNECTIONS: usize = 32;
const MAX_REQUEST: usize = 8192;
const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

/// Binds `addr` now (so a busy port stops the start, before anything is touched on the host).
pub fn bind(addr: std::net::SocketAddr) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--metrics-listen {addr}: binding"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `/metrics` from a task on the current `LocalSet`.
pub fn serve(
    listener: std::net::TcpListener,
    status: watch::Receiver<Status>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::from_std(listener)?;
    let open = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let refused = std::rc::Rc::new(std::cell::Cell::new(0u64));
    Ok(tokio::task::spawn_local(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    if open.get() >= MAX_CONNECTIONS {
                        // Closed at once: the descriptor is not held for a slow client.
                        drop(stream);
                        refused.set(refused.get() + 1);
                        if refused.get().is_power_of_two() {
                            warn!(
                                "metrics: {MAX_CONNECTIONS} connections already open: closed one \
                                 from {peer} ({} so far)",
                                refused.get()
                            );
                        }
                        continue;
                    }
                    open.set(open.get() + 1);
                    let (open, refused, status) = (open.clone(), refused.clone(), status.clone());
                    tokio::task::spawn_local(async move {
                        answer(stream, status, refused.get()).await;
                        open.set(open.get() - 1);
                    });
                }
                Err(e) => {
                    warn!("metrics: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn answer(mut stream: TcpStream, status: watch::Receiver<Status>, refused: u64) {
    let head = match tokio::time::timeout(TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            debug!("metrics: reading a request: {e}");
            return;
        }
        Err(_) => return,
    };
    let request_line = head.lines().next().unwrap_or_default();
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (code, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&Report::now(&status.borrow())) + &render_refused(refused),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n".into(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    let _ = tokio::time::timeout(TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Reads up to the blank line that ends the request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_REQUEST {
            return Err(std::io::Error::other("request head too long"));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A label value, escaped as the text format wants (`\`, `"`, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(i: &InstanceReport) -> String {
    format!(
        "instance=\"{}\",interface=\"{}\",vrid=\"{}\",family=\"ipv{}\"",
        escape(&i.name),
        escape(&i.interface),
        i.vrid,
        i.family
    )
}

/// The counter of connections the cap closed.
fn render_refused(refused: u64) -> String {
    format!(
        "# HELP ha_agent_metrics_connections_refused_total Metrics connections closed at once: \
         {MAX_CONNECTIONS} were being served.\n\
         # TYPE ha_agent_metrics_connections_refused_total counter\n\
         ha_agent_metrics_connections_refused_total {refused}\n"
    )
}

/// The Prometheus text exposition of `r`.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    family(
        "ha_agent_info",
        "gauge",
        "ha-agent's version and data path.",
        vec![(
            format!(
                "version=\"{}\",datapath=\"{}\"",
                escape(&r.agent.version),
                escape(&r.agent.datapath)
            ),
            "1".into(),
        )],
    );
    let per = |f: &dyn Fn(&InstanceReport) -> Option<String>| -> Vec<(String, String)> {
        r.instances
            .iter()
            .filter_map(|i| f(i).map(|v| (labels(i), v)))
            .collect()
    };
    family(
        "ha_agent_instance_state",
        "gauge",
        "1 for the instance's current VRRP state, 0 for the others.",
        r.instances
            .iter()
            .flat_map(|i| {
                STATES.iter().map(move |s| {
                    (
                        format!("{},state=\"{s}\"", labels(i)),
                        u8::from(i.state == *s).to_string(),
                    )
                })
            })
            .collect(),
    );
    family(
        "ha_agent_instance_configured_priority",
        "gauge",
        "Priority in the configuration.",
        per(&|i| Some(i.configured_priority.to_string())),
    );
    family(
        "ha_agent_instance_effective_priority",
        "gauge",
        "Priority after tracker weights, as advertised.",
        per(&|i| Some(i.effective_priority.to_string())),
    );
    family(
        "ha_agent_instance_state_since_seconds",
        "gauge",
        "Unix time of the instance's last state change.",
        per(&|i| Some(format!("{:.3}", i.state_since_unix))),
    );
    family(
        "ha_agent_instance_transitions_total",
        "counter",
        "State changes of the instance.",
        per(&|i| Some(i.transitions.to_string())),
    );
    family(
        "ha_agent_instance_adverts_sent_total",
        "counter",
        "VRRP adverts sent.",
        per(&|i| Some(i.adverts.sent.to_string())),
    );
    family(
        "ha_agent_instance_adverts_received_total",
        "counter",
        "Valid VRRP adverts received.",
        per(&|i| Some(i.adverts.received.to_string())),
    );
    family(
        "ha_agent_instance_last_takeover_seconds",
        "gauge",
        "Duration of the last failover to this node: last advert of the old master to MASTER.",
        per(&|i| i.last_takeover_seconds.map(|s| format!("{s:.6}"))),
    );
    family(
        "ha_agent_vip_conflicts_total",
        "counter",
        "Claims to the VIP (ARP, NA) by another host while this node was its master: address conflicts.",
        r.instances
            .iter()
            .flat_map(|i| {
                i.vip_conflicts
                    .iter()
                    .map(move |(vip, n)| (format!("{},vip=\"{vip}\"", labels(i)), n.to_string()))
            })
            .collect(),
    );
    family(
        "ha_agent_adverts_rejected_total",
        "counter",
        "VRRP adverts dropped, by interface, VRID and reason.",
        r.rejected
            .iter()
            .map(|x| {
                (
                    format!(
                        "interface=\"{}\",vrid=\"{}\",reason=\"{}\"",
                        escape(&x.interface),
                        x.vrid,
                        escape(&x.reason)
                    ),
                    x.count.to_string(),
                )
            })
            .collect(),
    );
    family(
        "ha_agent_adverts_foreign_total",
        "counter",
        "VRRP adverts for other speakers (VRID, group, VLAN or MAC not ours), by interface and VRID: passed to the kernel by XDP, ignored by the receive sockets.",
        r.foreign
            .iter()
            .map(|x| {
                (
                    format!("interface=\"{}\",vrid=\"{}\"", escape(&x.interface), x.vrid),
                    x.count.to_string(),
                )
            })
            .collect(),
    );
    family(
        "ha_agent_wakeups_total",
        "counter",
        "Event-loop wake-ups: adverts (every one on the socket datapath, changes only on XDP), timers, trackers, signals.",
        vec![(String::new(), r.agent.wakeups.to_string())],
    );
    family(
        "ha_agent_claims_dropped_total",
        "counter",
        "ARP/NA claims of our VIPs the kernel dropped unread: a flood beyond what the agent reads.",
        vec![(String::new(), r.agent.claims_dropped.to_string())],
    );
    if r.agent.datapath == "xdp" {
        family(
            "ha_agent_fence_drops_total",
            "counter",
            "Packets the TC fence dropped on the interface.",
            r.fence_drops
                .iter()
                .map(|(i, n)| (format!("interface=\"{}\"", escape(i)), n.to_string()))
                .collect(),
        );
        family(
            "ha_agent_xdp_events_lost_total",
            "counter",
            "XDP peer events lost to a full ring buffer; each loss is resynchronised from the peer records.",
            r.events_lost
                .iter()
                .map(|(i, n)| (format!("interface=\"{}\"", escape(i)), n.to_string()))
                .collect(),
        );
    }
    if !r.virtual_servers.is_empty() {
        render_lvs(r, &mut family);
    }
    out
}

/// `service="TCP 10.0.0.100:80"`, as `ipvsadm` names a service.
fn service_label(vs: &crate::status::VirtualServerStatus) -> String {
    format!("service=\"{} {}\"", vs.protocol, vs.address)
}

/// Writes one metric family: name, type, help, (labels, value) samples.
type Family<'a> = dyn FnMut(&str, &str, &str, Vec<(String, String)>) + 'a;

/// The `ha_agent_lvs_*` series: per service and per real server.
fn render_lvs(r: &Report, family: &mut Family<'_>) {
    let vss = &r.virtual_servers;
    let per_vs = |f: &dyn Fn(&crate::status::VirtualServerStatus) -> String| {
        vss.iter().map(|v| (service_label(v), f(v))).collect()
    };
    let per_rs = |f: &dyn Fn(&crate::status::RealServerStatus) -> String| {
        vss.iter()
            .flat_map(|v| {
                v.reals.iter().map(move |rs| {
                    let labels = format!("{},real=\"{}\"", service_label(v), rs.address);
                    (labels, f(rs))
                })
            })
            .collect()
    };
    let b = |x: bool| u8::from(x).to_string();
    family(
        "ha_agent_lvs_quorum_up",
        "gauge",
        "1 while the virtual server has quorum.",
        per_vs(&|v| b(v.quorum_up)),
    );
    family(
        "ha_agent_lvs_sorry_server_active",
        "gauge",
        "1 while the sorry server takes every new flow.",
        per_vs(&|v| b(v.sorry_active)),
    );
    family(
        "ha_agent_lvs_service_packets_total",
        "counter",
        "Packets the load balancer forwarded for the service.",
        per_vs(&|v| v.packets.to_string()),
    );
    family(
        "ha_agent_lvs_service_bytes_total",
        "counter",
        "Bytes the load balancer forwarded for the service.",
        per_vs(&|v| v.bytes.to_string()),
    );
    family(
        "ha_agent_lvs_service_new_flows_total",
        "counter",
        "Flows the load balancer placed for the service.",
        per_vs(&|v| v.new_flows.to_string()),
    );
    family(
        "ha_agent_lvs_real_up",
        "gauge",
        "1 while every checker of the real server succeeds.",
        per_rs(&|rs| b(rs.health == "up" || rs.health == "no neighbour")),
    );
    family(
        "ha_agent_lvs_real_weight",
        "gauge",
        "The weight new flows see now (0: down, inhibited or not placed).",
        per_rs(&|rs| rs.weight.to_string()),
    );
    family(
        "ha_agent_lvs_real_packets_total",
        "counter",
        "Packets forwarded to the real server.",
        per_rs(&|rs| rs.packets.to_string()),
    );
    family(
        "ha_agent_lvs_real_bytes_total",
        "counter",
        "Bytes forwarded to the real server.",
        per_rs(&|rs| rs.bytes.to_string()),
    );
    family(
        "ha_agent_lvs_real_new_flows_total",
        "counter",
        "Flows placed on the real server.",
        per_rs(&|rs| rs.new_flows.to_string()),
    );
    let per_check = |f: &dyn Fn(&crate::status::CheckerStatus) -> Option<String>| {
        vss.iter()
            .flat_map(|v| {
                v.reals.iter().flat_map(move |rs| {
                    rs.checkers.iter().enumerate().filter_map(move |(n, c)| {
                        let labels = format!(
                            "{},real=\"{}\",checker=\"{}\",index=\"{n}\"",
                            service_label(v),
                            rs.address,
                            c.kind
                        );
                        f(c).map(|value| (labels, value))
                    })
                })
            })
            .collect()
    };
    family(
        "ha_agent_lvs_checker_up",
        "gauge",
        "1 while the health checker succeeds.",
        per_check(&|c| Some(b(c.up))),
    );
    family(
        "ha_agent_lvs_checker_latency_seconds",
        "gauge",
        "How long the checker's last attempt took.",
        per_check(&|c| c.latency_seconds.map(|s| format!("{s:.6}"))),
    );
    family(
        "ha_agent_lvs_checker_failures_total",
        "counter",
        "Failed rounds of the checker.",
        per_check(&|c| Some(c.failures.to_string())),
    );
}

#[cfg(test)]
mod tests;

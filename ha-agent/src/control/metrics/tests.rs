//! The metrics' contract (every sample a scraper saw before the exposition moved to
//! prometheus-client, `contract.txt`, captured from the hand-written encoder, is still served
//! with the same name, labels and value, in both formats), content negotiation, escaping, and
//! the server over a real socket on 127.0.0.1 (its connection cap is tested in
//! `control/tests.rs`, with GET and 404).

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::SocketAddr,
    rc::Rc,
    time::{Duration, Instant},
};

use super::{Format, Metrics, http::serve_metrics, render};
use crate::{
    control::report::{
        AdvertsReport, AgentReport, ForeignReport, InstanceReport, MasterReport, RejectedReport,
        Report,
    },
    status::{CheckerStatus, RealServerStatus, VirtualServerStatus},
};

/// The sample lines the hand-written encoder produced for [`rich_report`].
const CONTRACT: &str = include_str!("contract.txt");

/// An instance name with every character a label value must escape.
const AWKWARD_NAME: &str = "db \"primary\"\nC:\\vrrp";

fn instance(name: &str, interface: &str, vrid: u8, family: u8, state: &str) -> InstanceReport {
    let vip: std::net::IpAddr = if family == 4 {
        format!("192.0.2.{vrid}").parse().unwrap()
    } else {
        format!("2001:db8::{vrid}").parse().unwrap()
    };
    InstanceReport {
        name: name.into(),
        interface: interface.into(),
        vmac: None,
        vrid,
        version: 3,
        family,
        state: state.into(),
        state_since_unix: 1_700_000_000.25,
        time_in_state_seconds: 75.0,
        configured_priority: 150,
        effective_priority: 130,
        master: Some(MasterReport {
            address: "192.0.2.1".parse().unwrap(),
            priority: 150,
            is_self: state == "MASTER",
        }),
        vips: vec![vip],
        transitions: u64::from(vrid) % 7,
        last_takeover_seconds: (state == "MASTER").then_some(0.312),
        fault: state == "FAULT",
        adverts: AdvertsReport {
            sent: 40 + u64::from(vrid),
            received: 3,
            rejected: BTreeMap::new(),
        },
        trackers: Vec::new(),
        vip_conflicts: [(vip, u64::from(vrid) % 4)].into_iter().collect(),
    }
}

/// A report with every kind of series: several instances (v4 and v6, every state), rejected
/// reasons, foreign adverts, VIP conflicts, fence drops, lost events, a virtual server with
/// reals and checkers, and a label value with `"`, `\` and a newline.
pub(super) fn rich_report() -> Report {
    let real = |address: &str, up: bool, latency: Option<f64>| RealServerStatus {
        address: address.parse().unwrap(),
        kind: "DR".into(),
        health: if up { "up" } else { "down" }.into(),
        weight: u32::from(up) * 2,
        configured_weight: 2,
        checkers: vec![
            CheckerStatus {
                kind: "HTTP_GET".into(),
                up,
                last: Some(if up { "up" } else { "HTTP status 503" }.into()),
                latency_seconds: latency,
                failures: u64::from(!up) * 3,
            },
            CheckerStatus {
                kind: "TCP_CHECK".into(),
                up: true,
                last: None,
                latency_seconds: None,
                failures: 0,
            },
        ],
        packets: 10,
        bytes: 1500,
        new_flows: 2,
    };
    Report {
        schema: crate::control::report::SCHEMA,
        agent: AgentReport {
            version: "0.0.0-contract".into(),
            pid: 1,
            config_file: "/etc/keepalived/keepalived.conf".into(),
            datapath: "xdp".into(),
            started_unix: 1_699_999_900.0,
            uptime_seconds: 100.0,
            wakeups: 42,
            claims_dropped: 5,
        },
        instances: vec![
            instance("VI_1", "eth0", 51, 4, "MASTER"),
            instance("VI_6", "eth0", 51, 6, "BACKUP"),
            instance(AWKWARD_NAME, "eth1", 60, 4, "FAULT"),
            instance("VI_init", "eth1", 61, 6, "INIT"),
        ],
        rejected: vec![
            RejectedReport {
                interface: "eth0".into(),
                vrid: 51,
                reason: "auth_mismatch".into(),
                count: 2,
            },
            RejectedReport {
                interface: "eth0".into(),
                vrid: 52,
                reason: "interval_mismatch".into(),
                count: 5,
            },
            RejectedReport {
                interface: "eth1".into(),
                vrid: 0,
                reason: "unknown_vrid".into(),
                count: 7,
            },
        ],
        fence_drops: [("eth0".into(), 9), ("eth1".into(), 0)]
            .into_iter()
            .collect(),
        events_lost: [("eth0".into(), 4)].into_iter().collect(),
        foreign: vec![ForeignReport {
            interface: "eth0".into(),
            vrid: 52,
            count: 7,
        }],
        virtual_servers: vec![VirtualServerStatus {
            address: "10.0.0.100:80".parse().unwrap(),
            protocol: "TCP".into(),
            algo: "wrr".into(),
            kind: "DR".into(),
            quorum_up: true,
            sorry_active: false,
            sorry_server: Some("10.0.0.99:80".parse().unwrap()),
            suspended: false,
            packets: 20,
            bytes: 3000,
            new_flows: 4,
            reals: vec![
                real("10.0.0.11:80", true, Some(0.002)),
                real("[2001:db8::12]:80", false, None),
            ],
        }],
    }
}

/// One sample: metric name, labels in order (values unescaped), value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    /// The value as the shortest decimal of its f64 (`0.312000` and `0.312` are one value).
    value: String,
}

/// The samples of an exposition (Prometheus text or OpenMetrics), in order; panics on a line
/// it cannot read, so a malformed exposition fails the test that reads it.
pub(super) fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            // A label: name="value", then `,` or `}`.
            let start = chars.peek()?.0;
            if body[start..].starts_with('}') {
                rest = &body[start + 1..];
                break;
            }
            let eq = body[start..].find('=')? + start;
            let label = body[start..eq].to_owned();
            while chars.peek()?.0 <= eq {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        _ => return None,
                    },
                    c => value.push(c),
                }
            }
            labels.push((label, value));
            if chars.peek()?.1 == ',' {
                chars.next();
            }
        }
    }
    let value: f64 = rest.strip_prefix(' ')?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value: value.to_string(),
    })
}

/// The contract's samples, sorted.
pub(super) fn contract() -> Vec<Sample> {
    let mut v = samples(CONTRACT);
    v.sort();
    v
}

/// The samples of `text`, sorted, after checking each sample's family has HELP and TYPE lines
/// (named as `format` names them: OpenMetrics without a counter's `_total`).
fn checked_samples(text: &str, format: Format) -> Vec<Sample> {
    let mut served = samples(text);
    for s in &served {
        let family = match format {
            Format::OpenMetrics
                if text.contains(&format!(
                    "# TYPE {} counter\n",
                    s.name.trim_end_matches("_total")
                )) =>
            {
                s.name.trim_end_matches("_total")
            }
            _ => s.name.as_str(),
        };
        for meta in ["# HELP", "# TYPE"] {
            assert!(
                text.contains(&format!("{meta} {family} ")),
                "no {meta} {family} in\n{text}"
            );
        }
    }
    served.sort();
    served
}

fn assert_same_samples(served: &[Sample], contract: &[Sample]) {
    let missing: Vec<_> = contract.iter().filter(|s| !served.contains(s)).collect();
    let extra: Vec<_> = served.iter().filter(|s| !contract.contains(s)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    assert_eq!(served, contract, "every sample once");
}

/// Every sample of the contract, and no other, in both formats.
#[test]
fn both_formats_serve_exactly_the_contract_samples() {
    let contract = contract();
    assert_eq!(contract.len(), 80);
    let text = render(&rich_report(), Format::Prometheus);
    assert_same_samples(&checked_samples(&text, Format::Prometheus), &contract);
    assert!(
        text.contains("# TYPE ha_agent_wakeups_total counter\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let text = render(&rich_report(), Format::OpenMetrics);
    assert_same_samples(&checked_samples(&text, Format::OpenMetrics), &contract);
    // OpenMetrics names the counter family without `_total`; its samples keep it.
    assert!(text.contains("# TYPE ha_agent_wakeups counter\n"), "{text}");
    assert!(text.contains("\nha_agent_wakeups_total 42\n"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// A socket-datapath agent has no fence and no ring buffer: no such series.
#[test]
fn the_socket_datapath_has_no_fence_or_lost_event_series() {
    let mut report = rich_report();
    report.agent.datapath = "socket".into();
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&report, format);
        assert!(!text.contains("ha_agent_fence_drops"), "{text}");
        assert!(!text.contains("ha_agent_xdp_events_lost"), "{text}");
        assert!(text.contains("ha_agent_wakeups_total 42"), "{text}");
    }
}

/// `"`, `\` and a newline in a label value are escaped on the sample's line, in both formats.
#[test]
fn label_values_are_escaped() {
    let escaped = r#"instance="db \"primary\"\nC:\\vrrp""#;
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&rich_report(), format);
        let line = format!(
            r#"ha_agent_instance_state{{{escaped},interface="eth1",vrid="60",family="ipv4",state="FAULT"}} 1"#
        );
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        let parsed = samples(&text);
        assert!(
            parsed
                .iter()
                .any(|s| s.labels.first() == Some(&("instance".into(), AWKWARD_NAME.into()))),
            "the name reads back whole"
        );
    }
}

#[test]
fn accept_headers_choose_the_format() {
    use Format::{OpenMetrics, Prometheus};
    for (accept, want) in [
        (vec![], Prometheus),
        (vec!["*/*"], Prometheus),
        (vec!["text/plain"], Prometheus),
        (vec!["text/plain;version=0.0.4"], Prometheus),
        (vec!["application/json"], Prometheus),
        // Prometheus 2.x's scrape.
        (
            vec![
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ],
            OpenMetrics,
        ),
        // Prometheus 3.x's scrape.
        (
            vec![
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
            ],
            OpenMetrics,
        ),
        (
            vec!["Application/OpenMetrics-Text; Version=1.0.0"],
            OpenMetrics,
        ),
        (
            vec!["text/plain", "application/openmetrics-text"],
            OpenMetrics,
        ),
        (vec!["application/openmetrics-text;q=0"], Prometheus),
        (
            vec!["text/plain;q=1, application/openmetrics-text;q=0.5"],
            Prometheus,
        ),
    ] {
        assert_eq!(
            Format::negotiate(accept.iter().copied()),
            want,
            "{accept:?}"
        );
    }
    assert_eq!(
        Format::Prometheus.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        Format::OpenMetrics.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
}

fn local_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Serves [`rich_report`]'s metrics on a free loopback port while `client` runs against it.
fn with_server<F: std::future::Future<Output = ()>>(client: impl FnOnce(SocketAddr) -> F) {
    let listener = super::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Rc::new(Metrics::new(rich_report));
    let local = tokio::task::LocalSet::new();
    local.block_on(&local_runtime(), async {
        let task = serve_metrics(listener, metrics).unwrap();
        client(addr).await;
        task.abort();
    });
}

/// Sends `request` and reads the answer to EOF (a blocking client: run it off the server's
/// thread).
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

async fn http_async(addr: SocketAddr, request: &'static str) -> String {
    tokio::task::spawn_blocking(move || http(addr, request))
        .await
        .unwrap()
}

/// The head's value of `header` (case-insensitive name).
fn header<'a>(head: &'a str, header: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case(header).then(|| value.trim())
    })
}

/// Beyond `GET /metrics` and a 404 (`control/tests.rs`): HEAD has no body, a query string is
/// still `/metrics`, other methods are 405 with `Allow`, a head over the limit is 431, and
/// bytes that are not HTTP are refused.
#[test]
fn head_query_strings_other_methods_long_heads_and_garbage() {
    with_server(|addr| async move {
        let ok = http_async(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(header(head, "connection"), Some("close"), "{head}");
        assert!(body.contains("ha_agent_instance_state{"), "{body}");
        let q = http_async(addr, "GET /metrics?x=1 HTTP/1.1\r\n\r\n").await;
        assert!(q.starts_with("HTTP/1.1 200 "), "{q}");
        let head_only = http_async(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head_only.starts_with("HTTP/1.1 200 "), "{head_only}");
        assert!(head_only.ends_with("\r\n\r\n"), "no body: {head_only}");
        for method in ["POST", "PUT", "DELETE"] {
            let req: &'static str =
                format!("{method} /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").leak();
            let got = http_async(addr, req).await;
            assert!(got.starts_with("HTTP/1.1 405 "), "{got}");
            assert_eq!(header(&got, "allow"), Some("GET, HEAD"), "{got}");
        }
        let long: &'static str = format!(
            "GET /metrics HTTP/1.1\r\nX-Long: {}\r\n\r\n",
            "a".repeat(super::MAX_REQUEST_HEAD)
        )
        .leak();
        let too_long = http_async(addr, long).await;
        assert!(too_long.starts_with("HTTP/1.1 431 "), "{too_long}");
        let garbage = http_async(addr, "\x16\x03\x01 not http\r\n\r\n").await;
        assert!(
            garbage.is_empty() || garbage.starts_with("HTTP/1.1 400 "),
            "{garbage}"
        );
    });
}

/// A scraper that asks for OpenMetrics gets it; without asking, it gets the text format that
/// Debian's `promtool check metrics` accepts.
#[test]
fn openmetrics_when_asked_and_promtool_accepts_the_text_format() {
    with_server(|addr| async move {
        let om = http_async(
            addr,
            "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n",
        )
        .await;
        let (head, body) = om.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            header(head, "content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            "{head}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_same_samples(&checked_samples(body, Format::OpenMetrics), &contract());

        let plain = http_async(addr, "GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n").await;
        let (head, body) = plain.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            header(head, "content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{head}"
        );
        assert_same_samples(&checked_samples(body, Format::Prometheus), &contract());
        let (ok, report) = promtool_check_metrics(body);
        assert!(
            ok,
            "promtool check metrics refused the served body: {report}\n{body}"
        );
    });
}

/// Runs `promtool check metrics` on `body`: (accepted, its output).
fn promtool_check_metrics(body: &str) -> (bool, String) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool: {e}: this test checks the exposition with Debian's promtool: \
                 apt-get install prometheus"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), report)
}

/// promtool is a real judge: it refuses a body the text format does not allow.
#[test]
fn promtool_refuses_a_malformed_body() {
    let (ok, report) = promtool_check_metrics("ha_agent_x{a=\"1} 2\n");
    assert!(!ok, "{report}");
}

/// A slowloris client (a request head trickled a byte at a time, never finished) and a client
/// that connects and sends nothing are cut off within the server's bound, and scrapes are
/// served meanwhile.
#[test]
fn a_slowloris_client_is_cut_off_and_scrapes_go_on() {
    with_server(|addr| async move {
        let slow = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let started = Instant::now();
            let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            for byte in head.iter().chain(std::iter::repeat(&b'a')) {
                if started.elapsed() > Duration::from_secs(30) {
                    return None;
                }
                if s.write_all(&[*byte]).is_err() {
                    return Some(started.elapsed());
                }
                // The read timeout paces the trickle: a byte every 100 ms while the server
                // holds the connection open.
                match s.read(&mut [0u8; 256]) {
                    Ok(0) => return Some(started.elapsed()),
                    Err(e)
                        if !matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Some(started.elapsed());
                    }
                    // Still open, or an error answer before the close.
                    _ => {}
                }
            }
            unreachable!("the trickle is endless")
        });
        let silent = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let started = Instant::now();
            let closed = s.read(&mut [0u8; 256]);
            (closed.map_err(|e| e.kind()), started.elapsed())
        });
        // Meanwhile, scrapes are served.
        for _ in 0..3 {
            let ok = http_async(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
            assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (closed, silent) = silent.await.unwrap();
        assert!(
            matches!(closed, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)),
            "{closed:?}"
        );
        assert!(silent < Duration::from_secs(30), "{silent:?}");
        let cut = slow.await.unwrap();
        let cut = cut.expect("the slow client was still connected after 30 s");
        assert!(cut < Duration::from_secs(30), "{cut:?}");
        // It was held until a timeout, not refused at once.
        assert!(cut >= Duration::from_secs(3), "{cut:?}");
    });
}

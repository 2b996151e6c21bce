//! The metrics' contract: every sample a scraper saw before the exposition moved to
//! prometheus-client (`contract.txt`, captured from the hand-written encoder) is still served,
//! with the same name, labels and value.

use std::collections::BTreeMap;

use super::{render, render_refused};
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

#[test]
fn the_contract_fixture_is_what_the_encoder_serves() {
    let mut served = samples(&(render(&rich_report()) + &render_refused(0)));
    served.sort();
    let contract = contract();
    assert!(contract.len() == 80, "{} samples", contract.len());
    let missing: Vec<_> = contract.iter().filter(|s| !served.contains(s)).collect();
    let extra: Vec<_> = served.iter().filter(|s| !contract.contains(s)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    assert_eq!(served, contract, "every sample once");
}

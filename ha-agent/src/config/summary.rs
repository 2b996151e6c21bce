//! The resolved configuration as `ha-agent check-config` prints it.

use std::fmt::Write as _;
use std::time::Duration;

use super::decimal::fmt_decimal;
use super::model::*;

fn dur(d: Duration) -> String {
    format!(
        "{}s",
        fmt_decimal(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), 6)
    )
}

fn tracker(kind: &str, t: &Tracker) -> String {
    let mut s = format!("{kind} {}", t.name);
    if t.weight != 0 {
        let _ = write!(s, " weight {}", t.weight);
    }
    if t.reverse {
        s.push_str(" reverse");
    }
    s
}

/// The `track_*` lines of an instance or a sync group.
fn tracker_lines(out: &mut String, interfaces: &[Tracker], scripts: &[Tracker], files: &[Tracker]) {
    for (kind, list) in [
        ("track_interface", interfaces),
        ("track_script", scripts),
        ("track_file", files),
    ] {
        for t in list {
            let _ = writeln!(out, "  {}", tracker(kind, t));
        }
    }
}

/// The `track_process` lines of an instance or a sync group.
fn process_lines(out: &mut String, processes: &[Tracker]) {
    for t in processes {
        let _ = writeln!(out, "  {}", tracker("track_process", t));
    }
}

fn vip(v: &VirtualAddress) -> String {
    let mut s = format!("{}/{}", v.addr, v.prefix_len);
    if let Some(d) = &v.dev {
        let _ = write!(s, " dev {d}");
    }
    if let Some(b) = v.broadcast {
        let _ = write!(s, " brd {b}");
    }
    if let Some(sc) = v.scope {
        let _ = write!(s, " scope {sc}");
    }
    if let Some(l) = &v.label {
        let _ = write!(s, " label {l}");
    }
    if let Some(p) = v.peer {
        let _ = write!(s, " peer {p}");
    }
    for f in &v.flags {
        let _ = write!(s, " {f}");
    }
    match v.preferred_lft {
        Some(u32::MAX) => s.push_str(" preferred_lft forever"),
        Some(n) => {
            let _ = write!(s, " preferred_lft {n}");
        }
        None => {}
    }
    if v.no_track {
        s.push_str(" no_track");
    }
    s
}

fn command(c: &[String]) -> String {
    c.iter()
        .map(|w| {
            if w.is_empty() || w.contains(char::is_whitespace) {
                format!("'{w}'")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn notify_lines(out: &mut String, indent: &str, n: &Notify) {
    for (k, s) in [
        ("notify", &n.notify),
        ("notify_master", &n.master),
        ("notify_backup", &n.backup),
        ("notify_fault", &n.fault),
        ("notify_stop", &n.stop),
        ("notify_deleted", &n.deleted),
        ("notify_master_rx_lower_pri", &n.master_rx_lower_pri),
    ] {
        if let Some(s) = s {
            let _ = write!(out, "{indent}{k}: {}", command(&s.command));
            if let Some(u) = &s.user {
                let _ = write!(out, " (as {}", u.user);
                if let Some(g) = &u.group {
                    let _ = write!(out, ":{g}");
                }
                out.push(')');
            }
            out.push('\n');
        }
    }
}

/// Renders the resolved configuration: one paragraph per instance with interface, VRID, version,
/// priority, advert_int, VIPs and trackers, then sync groups and scripts.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let g = &config.global;
    let _ = writeln!(
        out,
        "global: router_id {}, vrrp_version {}, multicast groups {} / {}{}",
        g.router_id.as_deref().unwrap_or("(host name)"),
        g.vrrp_version,
        g.vrrp_mcast_group4,
        g.vrrp_mcast_group6,
        if g.vrrp_strict { ", strict" } else { "" }
    );
    if let Some(ns) = &g.net_namespace {
        let _ = writeln!(out, "net_namespace: {}", ns.name);
    }
    if let Some(name) = &g.instance {
        let _ = writeln!(out, "instance: {name}");
    }
    for (k, f) in [
        ("notify_fifo", &g.notify_fifo),
        ("vrrp_notify_fifo", &g.vrrp_notify_fifo),
    ] {
        if let Some(path) = &f.path {
            let _ = write!(out, "{k}: {}", path.display());
            if let Some(s) = &f.script {
                let _ = write!(out, ", script {}", command(&s.command));
            }
            out.push('\n');
        }
    }
    for (k, s, timeout) in [
        (
            "startup_script",
            &g.startup_script,
            g.startup_script_timeout,
        ),
        (
            "shutdown_script",
            &g.shutdown_script,
            g.shutdown_script_timeout,
        ),
    ] {
        if let Some(s) = s {
            let _ = writeln!(
                out,
                "{k}: {}, timeout {}",
                command(&s.command),
                dur(timeout)
            );
        }
    }
    for gg in &g.garp_groups {
        let _ = writeln!(
            out,
            "garp_group {}: a GARP every {}, an NA every {}",
            gg.interfaces.join(" "),
            dur(gg.garp_interval),
            dur(gg.gna_interval)
        );
    }
    for d in &g.link_delays {
        let _ = writeln!(
            out,
            "interface_up_down_delays {}: link down acted on after {}, up after {}",
            d.interface,
            dur(d.down),
            dur(d.up)
        );
    }
    let st = &config.statics;
    for a in &st.addresses {
        let _ = writeln!(out, "static address {}", vip(a));
    }
    for r in &st.routes {
        let _ = writeln!(out, "static route {}", route_line(r));
    }
    for r in &st.rules {
        let _ = writeln!(out, "static rule {}", rule_line(r));
    }
    for i in &config.instances {
        let _ = writeln!(
            out,
            "\nvrrp_instance {} ({}:{})",
            i.name,
            i.source.file.display(),
            i.source.line
        );
        let _ = writeln!(
            out,
            "  interface {}, VRID {}, {}, VRRPv{}, priority {}, advert_int {}, state {}",
            i.interface.as_deref().unwrap_or("(none)"),
            i.vrid,
            i.family,
            i.version,
            i.priority,
            dur(i.advert_int),
            match i.state {
                State::Master => "MASTER",
                State::Backup => "BACKUP",
            }
        );
        let mut pre = if i.preempt {
            "preempt".to_string()
        } else {
            "nopreempt".to_string()
        };
        if !i.preempt_delay.is_zero() {
            let _ = write!(pre, " (delay {})", dur(i.preempt_delay));
        }
        let _ = writeln!(
            out,
            "  {pre}, accept {}, garp delay {} x{}{}",
            match (i.accept, i.priority) {
                (true, _) => "on",
                (false, 255) => "on (address owner)",
                // Enforced by vip_fence; the socket datapath warns at start that it cannot.
                (false, _) => "off (TC fence drops IP to the VIPs but ND)",
            },
            dur(i.garp_master_delay),
            i.garp_master_repeat,
            if i.authentication.is_some() {
                ", auth PASS"
            } else {
                ""
            }
        );
        match (&i.mcast_group, i.unicast_peers.is_empty()) {
            (Some(m), _) => {
                let _ = write!(out, "  multicast to {m}");
                if let Some(s) = i.src_ip {
                    let _ = write!(out, " from {s}");
                }
                out.push('\n');
            }
            (None, _) => {
                let peers: Vec<String> = i
                    .unicast_peers
                    .iter()
                    .map(|p| match (p.min_ttl, p.max_ttl) {
                        (0, 255) => p.addr.to_string(),
                        (lo, hi) => format!("{} (TTL {lo}-{hi})", p.addr),
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "  unicast from {} to {}{}",
                    i.src_ip
                        .map_or("(interface address)".to_string(), |a| a.to_string()),
                    peers.join(", "),
                    i.unicast_ttl
                        .map_or(String::new(), |t| format!(", TTL {t}"))
                );
            }
        }
        for v in &i.virtual_ipaddress {
            let _ = writeln!(out, "  VIP {}", vip(v));
        }
        for v in &i.virtual_ipaddress_excluded {
            let _ = writeln!(out, "  excluded VIP {}", vip(v));
        }
        for r in &i.virtual_routes {
            let _ = writeln!(out, "  route {}", route_line(r));
        }
        for r in &i.virtual_rules {
            let _ = writeln!(out, "  rule {}", rule_line(r));
        }
        tracker_lines(
            &mut out,
            &i.track_interfaces,
            &i.track_scripts,
            &i.track_files,
        );
        process_lines(&mut out, &i.track_processes);
        notify_lines(&mut out, "  ", &i.notify);
    }
    for sg in &config.sync_groups {
        let _ = writeln!(
            out,
            "\nvrrp_sync_group {}: {}",
            sg.name,
            sg.members.join(", ")
        );
        tracker_lines(
            &mut out,
            &sg.track_interfaces,
            &sg.track_scripts,
            &sg.track_files,
        );
        process_lines(&mut out, &sg.track_processes);
        notify_lines(&mut out, "  ", &sg.notify);
    }
    for s in &config.scripts {
        let _ = writeln!(
            out,
            "\nvrrp_script {}: {} every {}, timeout {}, weight {}{}, rise {}, fall {}",
            s.name,
            command(&s.command),
            dur(s.interval),
            dur(s.timeout),
            s.weight,
            if s.weight_reverse { " reverse" } else { "" },
            s.rise,
            s.fall
        );
    }
    for f in &config.track_files {
        let _ = writeln!(
            out,
            "\ntrack_file {}: {} weight {}{}",
            f.name,
            f.file.display(),
            f.weight,
            if f.weight_reverse { " reverse" } else { "" }
        );
    }
    for p in &config.track_processes {
        let mut name = std::iter::once(p.process.as_str())
            .chain(p.params.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if p.full_command {
            name.push_str(" (command line");
            match p.param_match {
                ParamMatch::None => {}
                ParamMatch::Exact => name.push_str(", parameters exactly"),
                ParamMatch::Partial => name.push_str(", parameters partial"),
                ParamMatch::Initial => name.push_str(", parameters initial"),
            }
            name.push(')');
        }
        let quorum = if p.quorum_max == u32::MAX {
            format!("at least {}", p.quorum)
        } else {
            format!("{}..{}", p.quorum, p.quorum_max)
        };
        let _ = writeln!(
            out,
            "\nvrrp_track_process {}: {name}, quorum {quorum}, weight {}{}, fork_delay {}, \
             terminate_delay {}",
            p.name,
            p.weight,
            if p.weight_reverse { " reverse" } else { "" },
            dur(p.fork_delay),
            dur(p.terminate_delay)
        );
    }
    lvs_lines(&mut out, &config.lvs);
    out
}

/// The services as `ipvsadm -Ln` lists them, each real server with its checkers.
fn lvs_lines(out: &mut String, lvs: &super::lvs::Lvs) {
    use super::lvs::*;
    if lvs.virtual_servers.is_empty() {
        return;
    }
    let kind = |k: LbKind| match k {
        LbKind::Dr => "DR",
        LbKind::Tun => "TUN",
    };
    let _ = writeln!(
        out,
        "
virtual_server (as ipvsadm -Ln, with the checkers):"
    );
    for vs in &lvs.virtual_servers {
        let proto = match vs.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        };
        let algo = match vs.algo {
            LbAlgo::Rr => "rr",
            LbAlgo::Wrr => "wrr",
            LbAlgo::Lc => "lc",
            LbAlgo::Wlc => "wlc",
            LbAlgo::Sh => "sh",
            LbAlgo::Mh => "mh",
        };
        let mut line = format!("{proto}  {} {algo}", vs.addr);
        if vs.hash_port {
            line.push_str(" (port hashed)");
        }
        if let Some(t) = vs.persistence_timeout {
            let _ = write!(line, " persistent {}", t.as_secs());
            if let Some(p) = vs.persistence_prefix {
                let _ = write!(line, " mask /{p}");
            }
        }
        let _ = write!(line, " ({})", kind(vs.kind));
        if let Some(g) = &vs.group {
            let _ = write!(line, " group {g}");
        }
        let _ = write!(
            line,
            ", delay_loop {}, quorum {}",
            dur(vs.delay_loop),
            vs.quorum
        );
        if vs.hysteresis > 0 {
            let _ = write!(line, " hysteresis {}", vs.hysteresis);
        }
        for (set, word) in [
            (vs.alpha, "alpha"),
            (vs.omega, "omega"),
            (vs.ha_suspend, "ha_suspend"),
            (vs.inhibit_on_failure, "inhibit_on_failure"),
        ] {
            if set {
                let _ = write!(line, ", {word}");
            }
        }
        let _ = writeln!(out, "{line}");
        for (k, s) in [
            ("quorum_up", &vs.quorum_up),
            ("quorum_down", &vs.quorum_down),
        ] {
            if let Some(s) = s {
                let _ = writeln!(out, "  {k} {}", command(&s.command));
            }
        }
        for rs in &vs.real_servers {
            let mut line = format!("  -> {}  weight {}", rs.addr, rs.weight);
            if rs.kind != vs.kind {
                let _ = write!(line, " ({})", kind(rs.kind));
            }
            if rs.inhibit_on_failure {
                line.push_str(" inhibit_on_failure");
            }
            if rs.checkers.is_empty() {
                line.push_str("  no checker (always up)");
            }
            for c in &rs.checkers {
                let _ = write!(line, "  {}", checker_text(c));
            }
            let _ = writeln!(out, "{line}");
            for (k, s) in [
                ("notify_up", &rs.notify_up),
                ("notify_down", &rs.notify_down),
            ] {
                if let Some(s) = s {
                    let _ = writeln!(out, "       {k} {}", command(&s.command));
                }
            }
        }
        if let Some(s) = &vs.sorry_server {
            let _ = writeln!(
                out,
                "  -> {}  sorry server ({}){}",
                s.addr,
                kind(s.kind),
                if s.inhibit { " inhibit" } else { "" }
            );
        }
    }
}

/// `HTTP_GET /health status 200 (every 6s, 3 retries 3s apart, timeout 5s)`.
fn checker_text(c: &super::lvs::Checker) -> String {
    use super::lvs::CheckKind;
    let mut s = match &c.kind {
        CheckKind::Tcp => format!("TCP_CHECK {}", c.connect),
        CheckKind::Http(h) => {
            let mut s = String::from(if h.tls { "SSL_GET" } else { "HTTP_GET" });
            for u in &h.urls {
                let _ = write!(s, " {}", u.path);
                if !u.status_codes.is_empty() {
                    let _ = write!(s, " status {}", codes(&u.status_codes));
                }
                if let Some(d) = &u.digest {
                    let _ = write!(s, " digest {d}");
                }
                if let Some((r, no)) = &u.regex {
                    let _ = write!(s, " regex{} '{r}'", if *no { " no match" } else { "" });
                }
            }
            if let Some(v) = &h.virtualhost {
                let _ = write!(s, " host {v}");
            }
            s
        }
        CheckKind::Misc(m) => format!(
            "MISC_CHECK {}{}",
            command(&m.command),
            if m.dynamic { " (dynamic)" } else { "" }
        ),
        CheckKind::Ping => format!("PING_CHECK {}", c.connect.ip()),
        CheckKind::Udp(_) => format!("UDP_CHECK {}", c.connect),
        CheckKind::Dns(d) => {
            // check_dns.c DNS_TYPE, as written in the file.
            let t = [
                (1, "A"),
                (2, "NS"),
                (5, "CNAME"),
                (6, "SOA"),
                (15, "MX"),
                (16, "TXT"),
            ]
            .iter()
            .chain(&[(28, "AAAA")])
            .find(|(n, _)| *n == d.qtype)
            .map_or_else(|| d.qtype.to_string(), |(_, t)| (*t).to_string());
            format!("DNS_CHECK {} type {t}", d.name)
        }
        CheckKind::Smtp { helo_name } => format!("SMTP_CHECK helo {helo_name}"),
        CheckKind::File(f) => match f.weight {
            Some((w, r)) => format!(
                "FILE_CHECK {} weight {w}{}",
                f.track_file,
                if r { " reverse" } else { "" }
            ),
            None => format!("FILE_CHECK {}", f.track_file),
        },
    };
    // A tracked file is read on change, not polled.
    if matches!(c.kind, CheckKind::File(_)) {
        return s;
    }
    let timeout = match &c.kind {
        CheckKind::Misc(m) => m.timeout.unwrap_or(c.delay_loop),
        _ => c.connect_timeout,
    };
    let _ = write!(
        s,
        " (every {}, retry {} after {}, timeout {}",
        dur(c.delay_loop),
        c.retry,
        dur(c.delay_before_retry),
        dur(timeout)
    );
    if let Some(w) = c.warmup {
        let _ = write!(s, ", warmup {}", dur(w));
    }
    if c.alpha {
        s.push_str(", alpha");
    }
    s.push(')');
    s
}

/// `200-299 404`: runs of codes written as ranges.
fn codes(list: &[u16]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let mut j = i;
        while j + 1 < list.len() && list[j + 1] == list[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            list[i].to_string()
        } else {
            format!("{}-{}", list[i], list[j])
        });
        i = j + 1;
    }
    parts.join(" ")
}

/// `check-config`'s last line: what was read and ignored, in one line.
pub fn ignored_line(ignored: &[super::Ignored]) -> String {
    if ignored.is_empty() {
        return "ignored: nothing (every keyword is acted on)\n".to_string();
    }
    let list = |failover: bool| {
        let mut names: Vec<&str> = ignored
            .iter()
            .filter(|i| i.changes_failover == failover)
            .map(|i| i.keyword.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let (failover, replaced) = (list(true), list(false));
    let mut parts = Vec::new();
    if !failover.is_empty() {
        parts.push(format!(
            "{} that change failover, run without them by --allow-unsupported ({})",
            failover.len(),
            failover.join(", ")
        ));
    }
    if !replaced.is_empty() {
        parts.push(format!(
            "{} that only configure what ha-agent replaces ({})",
            replaced.len(),
            replaced.join(", ")
        ));
    }
    format!(
        "ignored: {} keywords: {}\n",
        failover.len() + replaced.len(),
        parts.join("; ")
    )
}

/// A route as `ip route` would write its main words.
fn route_line(r: &Route) -> String {
    let mut s = match r.kind {
        RouteKind::Unicast => String::new(),
        k => format!("{} ", format!("{k:?}").to_lowercase()),
    };
    let _ = write!(s, "{}/{}", r.dst, r.dst_len);
    if let Some(v) = r.via {
        let _ = write!(s, " via {v}");
    }
    if let Some(d) = &r.dev {
        let _ = write!(s, " dev {d}");
    }
    for n in &r.nexthops {
        let _ = write!(s, " nexthop");
        if let Some(v) = n.via {
            let _ = write!(s, " via {v}");
        }
        if let Some(w) = n.weight {
            let _ = write!(s, " weight {w}");
        }
    }
    if r.table != 254 {
        let _ = write!(s, " table {}", r.table);
    }
    s
}

/// A rule as `ip rule` would write its main words.
fn rule_line(r: &Rule) -> String {
    let mut s = format!("pref {}", r.priority);
    if r.invert {
        s.push_str(" not");
    }
    match r.from {
        Some((a, l)) => {
            let _ = write!(s, " from {a}/{l}");
        }
        None => s.push_str(" from all"),
    }
    if let Some((a, l)) = r.to {
        let _ = write!(s, " to {a}/{l}");
    }
    let _ = match r.action {
        RuleAction::Table(t) => write!(s, " lookup {t}"),
        RuleAction::Goto(t) => write!(s, " goto {t}"),
        a => write!(s, " {}", format!("{a:?}").to_lowercase()),
    };
    s
}

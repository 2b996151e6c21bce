//! keepalived's LVS half (check/check_parser.c and the check_*.c keyword handlers):
//! `virtual_server`, `virtual_server_group`, `real_server`, the health checkers and the root
//! `SSL` block, read into [`crate::config::lvs`]. Each block is read whole, then resolved as
//! keepalived's `check_data.c` does at the end (`vs_end_handler`, `validate_check_config`):
//! checker <- real_server <- virtual_server <- default for the timers, `alpha` and
//! `virtualhost`. What ha-agent's XDP balancer cannot do (NAT, fwmark, SCTP, the schedulers
//! that need connection counts) is an error saying why and what to write instead.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{Builder, TIMER_HZ_DIGITS, US_PER_SEC, secs, source};
use crate::config::error::Pos;
use crate::config::keywords::{self, Context};
use crate::config::lexer::{split_command, split_words};
use crate::config::lvs::*;
use crate::config::model::{NotifyScript, VrrpInstance};
use crate::config::parser::Stmt;

/// check_data.c `alloc_vs`: `connection_to = 5 * TIMER_HZ`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// libipvs `IPVS_SVC_PERSISTENT_TIMEOUT`: a bare `persistence_timeout`.
const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(360);
/// check_parser.c `LVS_MAX_TIMEOUT` (31 days).
const MAX_PERSISTENCE: u64 = 86400 * 31;
/// libipvs `IPVS_WEIGHT_LIMIT`.
const WEIGHT_LIMIT: u64 = 65535;
/// A group range expands to at most this many services (a /24): beyond, the table of services
/// would be mostly addresses nobody serves.
const MAX_GROUP_RANGE: u128 = 256;
/// check_smtp.h `SMTP_DEFAULT_HELO`.
const SMTP_DEFAULT_HELO: &str = "smtpchecker.keepalived.org";

const NAT_REASON: &str = "the replies of NAT return through the director's stack, which \
                          ha-agent's XDP balancer does not rewrite; use DR or TUN";

/// What the file says, before groups are expanded and addresses checked against the VIPs.
#[derive(Default)]
pub(super) struct RawLvs {
    services: Vec<RawService>,
    groups: Vec<RawVsGroup>,
}

struct RawVsGroup {
    name: String,
    pos: Pos,
    members: Vec<(SocketAddr, Pos)>,
}

enum Target {
    Addr(SocketAddr),
    Group(String, Pos),
}

/// The timers and flags a checker inherits from its real server and virtual server.
#[derive(Default, Clone)]
struct Timers {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
    delay_loop: Option<Duration>,
    alpha: Option<bool>,
    virtualhost: Option<String>,
}

struct RawService {
    pos: Pos,
    target: Target,
    /// Everything but the address, group and real servers.
    vs: VirtualServer,
    kind: Option<LbKind>,
    /// An `lb_kind` line was read, even one refused (no second error about the default).
    kind_seen: bool,
    timers: Timers,
    /// `weight` of the virtual server: the real servers' default.
    weight: u32,
    family: Option<(u8, Pos)>,
    /// A `protocol` line was read (keepalived's default is UDP, with a warning).
    protocol_set: bool,
    /// An `lb_algo` line was read (keepalived's default is wlc, with a warning).
    algo_set: bool,
    sorry: Option<RawSorry>,
    reals: Vec<RawReal>,
}

struct RawSorry {
    pos: Pos,
    ip: IpAddr,
    port: Option<u16>,
    kind: Option<LbKind>,
    inhibit: bool,
}

struct RawReal {
    pos: Pos,
    ip: IpAddr,
    port: Option<u16>,
    weight: Option<u32>,
    kind: Option<LbKind>,
    inhibit: Option<bool>,
    notify_up: Option<NotifyScript>,
    notify_down: Option<NotifyScript>,
    timers: Timers,
    checkers: Vec<RawChecker>,
}

struct RawChecker {
    pos: Pos,
    kind: CheckKind,
    connect_ip: Option<IpAddr>,
    connect_port: Option<u16>,
    bind_ip: Option<IpAddr>,
    bind_port: Option<u16>,
    bind_if: Option<String>,
    timers: Timers,
    log_all_failures: bool,
    /// FILE_CHECK's `track_file` line, resolved once every definition is read.
    track_file_at: Option<Pos>,
}

fn in_vs(pos: &Pos) -> String {
    format!("virtual_server at line {}", pos.line)
}

impl Builder<'_> {
    /// A timer in seconds with keepalived's 6 decimals (lib/parser.c `read_timer`).
    fn lvs_timer(&mut self, st: &Stmt, min_secs: u64) -> Option<Duration> {
        let max = u64::from(u32::MAX) * US_PER_SEC;
        self.decimal(st, TIMER_HZ_DIGITS, min_secs * US_PER_SEC, max)
            .map(secs)
    }

    fn port_word(&mut self, kw: &str, w: &crate::config::lexer::Word) -> Option<u16> {
        self.uint_word(kw, w, 1, 65535).map(|p| p as u16)
    }

    /// `lb_kind` / `lvs_method` / `sorry_server_lvs_method`: `DR`, `TUN [type ipip] [nocsum]`.
    fn lb_kind(&mut self, st: &Stmt) -> Option<LbKind> {
        self.no_block(st);
        let w = self.arg(st, 0, "DR or TUN")?;
        let kind = match w.text.as_str() {
            "DR" => LbKind::Dr,
            "TUN" => LbKind::Tun,
            "NAT" => {
                self.d
                    .error(&w.pos, format!("{}: NAT: {NAT_REASON}", st.kw()));
                return None;
            }
            other => {
                self.d.error(
                    &w.pos,
                    format!(
                        "{}: unknown routing method \"{other}\" (DR or TUN)",
                        st.kw()
                    ),
                );
                return None;
            }
        };
        let mut i = 1;
        while let Some(a) = st.args.get(i) {
            match (kind, a.text.as_str()) {
                (LbKind::Tun, "type") => match st.args.get(i + 1).map(|t| t.text.as_str()) {
                    Some("ipip") => i += 1,
                    Some(t) => {
                        self.d.error(
                            &st.args[i + 1].pos,
                            format!(
                                "{}: tunnel type {t}: ha-agent encapsulates in IPIP \
                                 (IPv4) and IP6IP6 (IPv6) only; write `type ipip`",
                                st.kw()
                            ),
                        );
                        return None;
                    }
                    None => {
                        self.d
                            .error(&st.end_pos(), format!("{}: missing tunnel type", st.kw()));
                        return None;
                    }
                },
                (LbKind::Tun, "nocsum") => {}
                (LbKind::Tun, "csum" | "remcsum") => {
                    self.d.error(
                        &a.pos,
                        format!("{}: ipip tunnels do not support checksum option", st.kw()),
                    );
                    return None;
                }
                (LbKind::Tun, "port") => {
                    self.d.error(
                        &a.pos,
                        format!(
                            "{}: gue tunnels require port, otherwise cannot have port",
                            st.kw()
                        ),
                    );
                    return None;
                }
                _ => {
                    self.d.error(
                        &a.pos,
                        format!("{}: invalid tunnel option \"{}\"", st.kw(), a.text),
                    );
                    return None;
                }
            }
            i += 1;
        }
        Some(kind)
    }

    /// `IP [PORT]` of real_server / sorry_server / a group member.
    fn ip_port(&mut self, st: &Stmt) -> Option<(IpAddr, Option<u16>)> {
        let w = self.arg(st, 0, "an IP address")?;
        let ip = self.ip_word(st.kw(), w)?;
        let port = match st.args.get(1) {
            Some(p) => Some(self.port_word(st.kw(), p)?),
            None => None,
        };
        self.extra_args(st, 2);
        Some((ip, port))
    }

    /// A keyword every block with timers shares; false when `st` is not one of them.
    fn timer_keyword(&mut self, st: &Stmt, t: &mut Timers) -> bool {
        match st.kw() {
            "connect_timeout" => t.connect_timeout = self.lvs_timer(st, 1).or(t.connect_timeout),
            "delay_loop" => t.delay_loop = self.lvs_timer(st, 1).or(t.delay_loop),
            "delay_before_retry" => {
                t.delay_before_retry = self.lvs_timer(st, 0).or(t.delay_before_retry)
            }
            "warmup" => t.warmup = self.lvs_timer(st, 0).or(t.warmup),
            "retry" => {
                if let Some(r) = self.uint(st, 1, u64::from(u32::MAX)) {
                    t.retry = Some(r as u32);
                }
            }
            "alpha" => t.alpha = self.flag(st).or(t.alpha),
            "virtualhost" => {
                if let Some(h) = self.string(st, "a host name") {
                    t.virtualhost = Some(h);
                }
            }
            _ => return false,
        }
        true
    }

    /// Root `virtual_server IP PORT { … }` / `virtual_server group NAME { … }`.
    pub(super) fn virtual_server(&mut self, st: &Stmt) {
        let Some(first) = self.arg(st, 0, "an IP address, `group NAME` or `fwmark N`") else {
            return;
        };
        let target = match first.text.as_str() {
            "fwmark" => {
                self.d.error(
                    &first.pos,
                    "virtual_server fwmark: ha-agent balances in XDP, before netfilter sets \
                     marks, so a fwmark service never sees its packets; write one \
                     `virtual_server IP PORT` per address and port (or a virtual_server_group \
                     of them)",
                );
                return;
            }
            "group" => {
                let Some(name) = self.arg(st, 1, "a virtual_server_group name") else {
                    return;
                };
                let t = Target::Group(name.text.clone(), name.pos.clone());
                self.extra_args(st, 2);
                t
            }
            _ => {
                let Some(ip) = self.ip_word("virtual_server", first) else {
                    return;
                };
                let Some(pw) = self.arg(st, 1, "a port") else {
                    return;
                };
                if pw.text.trim_start_matches('0').is_empty() {
                    self.d.error(
                        &pw.pos,
                        "virtual_server: port 0 (every port) is not served: ha-agent balances \
                         one address and port per service",
                    );
                    return;
                }
                let Some(port) = self.port_word("virtual_server", pw) else {
                    return;
                };
                self.extra_args(st, 2);
                Target::Addr(SocketAddr::new(ip, port))
            }
        };
        let Some(stmts) = self.block(st) else {
            return;
        };
        let mut raw = RawService {
            pos: st.pos().clone(),
            target,
            vs: VirtualServer::with_defaults(source(st.pos()), SocketAddr::from(([0, 0, 0, 0], 0))),
            kind: None,
            kind_seen: false,
            timers: Timers::default(),
            weight: 1,
            family: None,
            protocol_set: false,
            algo_set: false,
            sorry: None,
            reals: Vec::new(),
        };
        let mut sched: Option<String> = None;
        for s in stmts {
            self.vs_keyword(s, &mut raw, &mut sched);
        }
        raw.algo_set = sched.is_some();
        self.lvs.services.push(raw);
    }

    fn vs_keyword(&mut self, st: &Stmt, raw: &mut RawService, sched: &mut Option<String>) {
        let vs = &mut raw.vs;
        if !matches!(st.kw(), "alpha" | "virtualhost") && self.timer_keyword(st, &mut raw.timers) {
            return;
        }
        match st.kw() {
            "alpha" => {
                self.bare_flag(st);
                vs.alpha = true;
            }
            "virtualhost" => {
                if let Some(h) = self.string(st, "a host name") {
                    vs.virtualhost = Some(h);
                }
            }
            "omega" => {
                self.bare_flag(st);
                vs.omega = true;
            }
            "ha_suspend" => {
                self.bare_flag(st);
                vs.ha_suspend = true;
            }
            "inhibit_on_failure" => {
                self.bare_flag(st);
                vs.inhibit_on_failure = true;
            }
            "ip_family" => {
                self.no_block(st);
                if let Some(w) = self.arg(st, 0, "inet or inet6") {
                    let f = match w.text.as_str() {
                        "inet" => 4,
                        "inet6" => 6,
                        other => {
                            self.d.error(
                                &w.pos,
                                format!("ip_family: unknown address family {other}"),
                            );
                            return;
                        }
                    };
                    raw.family = Some((f, w.pos.clone()));
                    self.extra_args(st, 1);
                }
            }
            "lb_algo" | "lvs_sched" => {
                self.no_block(st);
                let Some(w) = self.arg(st, 0, "a scheduler") else {
                    return;
                };
                vs.algo = match w.text.as_str() {
                    "rr" => LbAlgo::Rr,
                    "wrr" => LbAlgo::Wrr,
                    "lc" => LbAlgo::Lc,
                    "wlc" => LbAlgo::Wlc,
                    "sh" => LbAlgo::Sh,
                    "mh" => LbAlgo::Mh,
                    s @ ("dh" | "lblc" | "lblcr" | "sed" | "nq" | "fo" | "ovf" | "twos") => {
                        self.d.error(
                            &w.pos,
                            format!(
                                "{}: {s} is not built: ha-agent places new flows with a \
                                 consistent-hash table per service, the same on both \
                                 directors, and {s} needs per-server state (connection counts, \
                                 destination history) the XDP path does not keep; use rr, wrr, \
                                 lc, wlc (weights), sh or mh",
                                st.kw()
                            ),
                        );
                        return;
                    }
                    other => {
                        self.d.error(
                            &w.pos,
                            format!("{}: invalid scheduler \"{other}\"", st.kw()),
                        );
                        return;
                    }
                };
                *sched = Some(w.text.clone());
                self.extra_args(st, 1);
            }
            // check_parser.c lbflags_handler: the port flags apply to sh and mh only.
            "sh-port" | "mh-port" | "flag-2" | "sh-fallback" | "mh-fallback" | "flag-1" => {
                self.bare_flag(st);
                let kw = st.kw();
                let fits = match sched.as_deref() {
                    Some("sh") => !kw.starts_with("mh"),
                    Some("mh") => !kw.starts_with("sh"),
                    _ => false,
                };
                if !fits {
                    self.d.warn(
                        st.pos(),
                        format!(
                            "{kw}: applies to the sh and mh schedulers only (after their \
                             lb_algo line), ignored"
                        ),
                    );
                } else if kw.ends_with("-port") || kw == "flag-2" {
                    vs.hash_port = true;
                }
            }
            "lb_kind" | "lvs_method" => {
                raw.kind_seen = true;
                if let Some(k) = self.lb_kind(st) {
                    raw.kind = Some(k);
                }
            }
            "persistence_timeout" => {
                self.no_block(st);
                match st.args.first() {
                    None => vs.persistence_timeout = Some(DEFAULT_PERSISTENCE),
                    Some(w) => {
                        if let Some(t) = self.uint_word(st.kw(), w, 1, MAX_PERSISTENCE) {
                            vs.persistence_timeout = Some(Duration::from_secs(t));
                        }
                        self.extra_args(st, 1);
                    }
                }
            }
            "persistence_granularity" => {
                self.no_block(st);
                let Some(w) = self.arg(st, 0, "a netmask or an IPv6 prefix length") else {
                    return;
                };
                self.extra_args(st, 1);
                let prefix = if w.text.contains('.') {
                    match w.text.parse::<std::net::Ipv4Addr>().map(u32::from) {
                        Ok(m) if m.leading_ones() + m.trailing_zeros() == 32 && m != 0 => {
                            Some(m.leading_ones() as u8)
                        }
                        Ok(_) => {
                            self.d.error(
                                &w.pos,
                                format!(
                                    "persistence_granularity: netmask {} is not contiguous: \
                                     ha-agent groups clients by prefix",
                                    w.text
                                ),
                            );
                            None
                        }
                        Err(_) => {
                            self.d.error(
                                &w.pos,
                                format!("persistence_granularity: invalid IPv4 netmask {}", w.text),
                            );
                            None
                        }
                    }
                } else {
                    self.uint_word(st.kw(), w, 1, 128).map(|p| p as u8)
                };
                if let Some(p) = prefix {
                    vs.persistence_prefix = Some(p);
                    vs.persistence_timeout.get_or_insert(DEFAULT_PERSISTENCE);
                }
            }
            "protocol" => {
                self.no_block(st);
                let Some(w) = self.arg(st, 0, "TCP or UDP") else {
                    return;
                };
                raw.protocol_set = true;
                match w.text.to_ascii_uppercase().as_str() {
                    "TCP" => vs.protocol = Protocol::Tcp,
                    "UDP" => vs.protocol = Protocol::Udp,
                    "SCTP" => self.d.error(
                        &w.pos,
                        "protocol SCTP: ha-agent's XDP balancer parses TCP and UDP only",
                    ),
                    _ => self
                        .d
                        .error(&w.pos, format!("protocol: unknown protocol {}", w.text)),
                }
                self.extra_args(st, 1);
            }
            "quorum" => {
                if let Some(q) = self.uint(st, 1, u64::from(u32::MAX)) {
                    vs.quorum = q as u32;
                }
            }
            "hysteresis" => {
                if let Some(h) = self.uint(st, 0, u64::from(u32::MAX)) {
                    vs.hysteresis = h as u32;
                }
            }
            "quorum_up" => self.notify_script(st, &mut vs.quorum_up),
            "quorum_down" => self.notify_script(st, &mut vs.quorum_down),
            "weight" => {
                if let Some(w) = self.uint(st, 1, WEIGHT_LIMIT) {
                    raw.weight = w as u32;
                }
            }
            "sorry_server" => {
                self.no_block(st);
                if let Some((ip, port)) = self.ip_port(st) {
                    raw.sorry = Some(RawSorry {
                        pos: st.pos().clone(),
                        ip,
                        port,
                        kind: None,
                        inhibit: false,
                    });
                }
            }
            "sorry_server_inhibit" => {
                self.bare_flag(st);
                match &mut raw.sorry {
                    Some(s) => s.inhibit = true,
                    None => self.d.warn(
                        st.pos(),
                        "sorry_server_inhibit: used before or without sorry_server, ignored",
                    ),
                }
            }
            "sorry_server_lvs_method" => {
                let k = self.lb_kind(st);
                match &mut raw.sorry {
                    Some(s) => s.kind = k.or(s.kind),
                    None => self.d.warn(
                        st.pos(),
                        "sorry_server_lvs_method: used before or without sorry_server, ignored",
                    ),
                }
            }
            "real_server" => {
                if let Some(r) = self.real_server(st) {
                    raw.reals.push(r);
                }
            }
            _ => self.not_handled(
                st,
                Context::VirtualServer,
                &format!("{}: ", in_vs(&raw.pos)),
            ),
        }
    }

    fn real_server(&mut self, st: &Stmt) -> Option<RawReal> {
        let (ip, port) = self.ip_port(st)?;
        let mut r = RawReal {
            pos: st.pos().clone(),
            ip,
            port,
            weight: None,
            kind: None,
            inhibit: None,
            notify_up: None,
            notify_down: None,
            timers: Timers::default(),
            checkers: Vec::new(),
        };
        let context = format!("real_server {} at line {}: ", ip, st.pos().line);
        // A real_server without a block is a server without checkers (always up).
        let Some(block) = &st.block else {
            return Some(r);
        };
        for s in &block.stmts {
            if self.timer_keyword(s, &mut r.timers) {
                continue;
            }
            match s.kw() {
                "weight" => r.weight = self.uint(s, 0, WEIGHT_LIMIT).map(|w| w as u32),
                "lvs_method" => r.kind = self.lb_kind(s).or(r.kind),
                "inhibit_on_failure" => r.inhibit = self.flag(s).or(r.inhibit),
                "notify_up" => self.notify_script(s, &mut r.notify_up),
                "notify_down" => self.notify_script(s, &mut r.notify_down),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "PING_CHECK"
                | "UDP_CHECK" | "DNS_CHECK" | "SMTP_CHECK" | "FILE_CHECK" => {
                    if let Some(c) = self.checker(s) {
                        r.checkers.push(c);
                    }
                }
                _ => self.not_handled(s, Context::RealServer, &context),
            }
        }
        Some(r)
    }

    /// One checker block (check_api.c `queue_checker` and each checker's handlers).
    fn checker(&mut self, st: &Stmt) -> Option<RawChecker> {
        self.extra_args(st, 0);
        let stmts = self.block(st)?;
        let kind = match st.kw() {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" | "SSL_GET" => CheckKind::Http(HttpCheck {
                tls: st.kw() == "SSL_GET",
                sni: false,
                http_protocol: HttpProtocol::V10,
                virtualhost: None,
                urls: Vec::new(),
            }),
            "MISC_CHECK" => CheckKind::Misc(MiscCheck {
                command: Vec::new(),
                timeout: None,
                dynamic: false,
                user: None,
            }),
            "PING_CHECK" => CheckKind::Ping,
            "UDP_CHECK" => CheckKind::Udp(UdpCheck {
                payload: Vec::new(),
                require_reply: None,
                min_reply_length: 0,
                max_reply_length: 255,
            }),
            "DNS_CHECK" => CheckKind::Dns(DnsCheck {
                qtype: 6,
                name: ".".into(),
            }),
            "SMTP_CHECK" => CheckKind::Smtp {
                helo_name: SMTP_DEFAULT_HELO.into(),
            },
            _ => CheckKind::File(FileCheck {
                track_file: String::new(),
                weight: None,
            }),
        };
        let mut c = RawChecker {
            pos: st.pos().clone(),
            kind,
            connect_ip: None,
            connect_port: None,
            bind_ip: None,
            bind_port: None,
            bind_if: None,
            timers: Timers::default(),
            log_all_failures: false,
            track_file_at: None,
        };
        let context = format!("{} at line {}: ", st.kw(), st.pos().line);
        let ctx = match &c.kind {
            CheckKind::Http(_) => Context::HttpGet,
            CheckKind::Misc(_) => Context::MiscCheck,
            CheckKind::Udp(_) => Context::UdpCheck,
            CheckKind::Dns(_) => Context::DnsCheck,
            CheckKind::Smtp { .. } => Context::SmtpCheck,
            CheckKind::File(_) => Context::FileCheck,
            CheckKind::Tcp | CheckKind::Ping => Context::Checker,
        };
        // MISC_CHECK and FILE_CHECK open no connection (check_api.c: no connection options).
        let connects = !matches!(c.kind, CheckKind::Misc(_) | CheckKind::File(_));
        let file = matches!(c.kind, CheckKind::File(_));
        for s in stmts {
            let kw = s.kw();
            // check_file.c installs no common checker keywords: a tracked file is not polled.
            if file {
                if !self.checker_keyword(s, &mut c) {
                    self.unknown_in(s, &context, Some(ctx));
                }
                continue;
            }
            if kw != "virtualhost"
                && kw != "connect_timeout"
                && self.timer_keyword(s, &mut c.timers)
            {
                continue;
            }
            if connects && self.connect_keyword(s, &mut c) {
                continue;
            }
            if self.checker_keyword(s, &mut c) {
                continue;
            }
            if keywords::lookup(ctx, kw).is_some() {
                self.not_handled(s, ctx, &context);
            } else if !connects && CONNECT_KEYWORDS.contains(&kw) {
                // check_api.c: MISC_CHECK and FILE_CHECK install no connection keywords.
                self.unknown_in(s, &context, Some(ctx));
            } else {
                self.not_handled(s, Context::Checker, &context);
            }
        }
        // Each checker's end handler.
        match &c.kind {
            CheckKind::Http(h) if h.urls.is_empty() => {
                self.d.error(
                    st.pos(),
                    format!("{}: no url {{ path … }} to check", st.kw()),
                );
                return None;
            }
            CheckKind::Misc(m) if m.command.is_empty() => {
                self.d.error(st.pos(), "MISC_CHECK: no misc_path to run");
                return None;
            }
            CheckKind::File(_) if c.track_file_at.is_none() => {
                self.d.error(st.pos(), "FILE_CHECK: no track_file to read");
                return None;
            }
            CheckKind::Udp(u) if u.min_reply_length > u.max_reply_length => self.d.warn(
                st.pos(),
                format!(
                    "UDP_CHECK: min_reply_length {} > max_reply_length {}: will always fail",
                    u.min_reply_length, u.max_reply_length
                ),
            ),
            _ => {}
        }
        Some(c)
    }

    /// check_api.c `install_checker_common_keywords(true)`: where a checker connects from/to.
    fn connect_keyword(&mut self, st: &Stmt, c: &mut RawChecker) -> bool {
        match st.kw() {
            "connect_ip" => c.connect_ip = self.ip(st).map(|(a, _)| a).or(c.connect_ip),
            "connect_port" => {
                if let Some(p) = self.uint(st, 1, 65535) {
                    c.connect_port = Some(p as u16);
                }
            }
            "bindto" => c.bind_ip = self.ip(st).map(|(a, _)| a).or(c.bind_ip),
            "bind_port" => {
                if let Some(p) = self.uint(st, 1, 65535) {
                    c.bind_port = Some(p as u16);
                }
            }
            "bind_if" => c.bind_if = self.string(st, "an interface name").or(c.bind_if.take()),
            "connect_timeout" => {
                c.timers.connect_timeout = self.lvs_timer(st, 1).or(c.timers.connect_timeout)
            }
            _ => return false,
        }
        true
    }

    /// The keywords of one kind of checker; false when `st` is none of them.
    fn checker_keyword(&mut self, st: &Stmt, c: &mut RawChecker) -> bool {
        if st.kw() == "log_all_failures" && !matches!(c.kind, CheckKind::File(_)) {
            c.log_all_failures = self.flag(st).unwrap_or(c.log_all_failures);
            return true;
        }
        match (&mut c.kind, st.kw()) {
            (CheckKind::Http(h), "virtualhost") => {
                if let Some(v) = self.string(st, "a host name") {
                    h.virtualhost = Some(v);
                }
            }
            (CheckKind::Http(_), "nb_get_retry") => {
                self.d
                    .warn(st.pos(), "nb_get_retry: deprecated, read as `retry`");
                if let Some(r) = self.uint(st, 0, u64::from(u32::MAX)) {
                    c.timers.retry = Some(r as u32);
                }
            }
            (CheckKind::Http(h), "http_protocol") => {
                self.no_block(st);
                if let Some(w) = self.arg(st, 0, "1.0, 1.0C or 1.1") {
                    match w.text.as_str() {
                        "1.0" => h.http_protocol = HttpProtocol::V10,
                        "1.0C" | "1.0c" => h.http_protocol = HttpProtocol::V10Close,
                        "1.1" => h.http_protocol = HttpProtocol::V11,
                        other => self.d.error(
                            &w.pos,
                            format!("http_protocol: invalid version {other} (1.0, 1.0C or 1.1)"),
                        ),
                    }
                    self.extra_args(st, 1);
                }
            }
            (CheckKind::Http(h), "enable_sni") => h.sni = self.flag(st).unwrap_or(h.sni),
            (CheckKind::Http(h), "url") => {
                self.extra_args(st, 0);
                if let Some(u) = self.url(st) {
                    h.urls.push(u);
                }
            }
            // lib/notify.c set_script_params_array: the first word, split again (quote a
            // command with arguments), as notify scripts.
            (CheckKind::Misc(m), "misc_path") => {
                self.no_block(st);
                if self.arg(st, 0, "a command").is_some() {
                    let first = split_words(st.raw_args(), false)
                        .map(|w| w.into_iter().next().unwrap_or_default());
                    match first.and_then(|f| split_command(&f)) {
                        Ok(cmd) if !cmd.is_empty() => m.command = cmd,
                        Ok(_) => self.d.error(&st.args[0].pos, "misc_path: empty command"),
                        Err(e) => self.d.error(&st.args[0].pos, format!("misc_path: {e}")),
                    }
                    if let Some(w) = st.args.get(1) {
                        self.d.warn(
                            &w.pos,
                            "misc_path: words after the command are ignored, as keepalived \
                             (quote the whole command)",
                        );
                    }
                }
            }
            (CheckKind::Misc(m), "misc_timeout") => {
                if let Some(t) = self.uint(st, 0, u64::from(u32::MAX) / 1000) {
                    m.timeout = (t > 0).then(|| Duration::from_secs(t));
                }
            }
            (CheckKind::Misc(m), "misc_dynamic") => {
                self.bare_flag(st);
                m.dynamic = true;
            }
            (CheckKind::Misc(m), "user") => m.user = self.script_user(st).or(m.user.take()),
            (CheckKind::Udp(u), "payload") => {
                if let Some(p) = self.hex(st) {
                    u.payload = p;
                }
            }
            (CheckKind::Udp(u), "require_reply") => {
                self.no_block(st);
                if st.args.is_empty() {
                    u.require_reply = Some(Vec::new());
                } else if let Some(p) = self.hex(st) {
                    u.require_reply = Some(p);
                }
            }
            (CheckKind::Udp(u), "min_reply_length") => {
                if let Some(n) = self.uint(st, 0, 65535) {
                    u.min_reply_length = n as u32;
                }
            }
            (CheckKind::Udp(u), "max_reply_length") => {
                if let Some(n) = self.uint(st, 0, 65535) {
                    u.max_reply_length = n as u32;
                }
            }
            (CheckKind::Dns(d), "type") => {
                if let Some(t) = self.string(st, "a DNS record type") {
                    match dns_type(&t) {
                        Some(q) => d.qtype = q,
                        None => self.d.error(
                            &st.args[0].pos,
                            format!(
                                "type: unknown DNS type {t} (A, NS, CNAME, SOA, MX, TXT, AAAA)"
                            ),
                        ),
                    }
                }
            }
            (CheckKind::Dns(d), "name") => {
                if let Some(n) = self.string(st, "a domain name") {
                    d.name = n;
                }
            }
            (CheckKind::Smtp { helo_name }, "helo_name") => {
                if let Some(n) = self.string(st, "a host name") {
                    *helo_name = n;
                }
            }
            (CheckKind::File(f), "track_file") => {
                if let Some(n) = self.string(st, "a track_file name") {
                    f.track_file = n;
                    c.track_file_at = Some(st.args[0].pos.clone());
                }
            }
            (CheckKind::File(f), "weight") => {
                self.no_block(st);
                if let Some(w) = self.arg(st, 0, "a weight")
                    && let Some(v) = self.int_word("weight", w, -65535, 65535)
                {
                    let reverse = match st.args.get(1).map(|w| w.text.as_str()) {
                        None | Some("noreverse") => Some(false),
                        Some("reverse") => Some(true),
                        Some(o) => {
                            self.d.error(
                                &st.args[1].pos,
                                format!("weight: unknown option {o} (reverse or noreverse)"),
                            );
                            None
                        }
                    };
                    if let Some(r) = reverse {
                        f.weight = Some((v as i32, r));
                    }
                    self.extra_args(st, 2);
                }
            }
            _ => return false,
        }
        true
    }

    /// `url { path digest status_code virtualhost regex regex_no_match }` (check_http.c).
    fn url(&mut self, st: &Stmt) -> Option<UrlCheck> {
        let stmts = self.block(st)?;
        let mut u = UrlCheck {
            path: String::new(),
            digest: None,
            status_codes: Vec::new(),
            virtualhost: None,
            regex: None,
        };
        let mut no_match = false;
        let context = format!("url at line {}: ", st.pos().line);
        for s in stmts {
            match s.kw() {
                "path" => {
                    if let Some(p) = self.string(s, "a path") {
                        u.path = p;
                    }
                }
                "digest" => {
                    if let Some(d) = self.string(s, "an MD5 digest") {
                        if u.digest.is_some() {
                            self.d.error(s.pos(), format!("digest: {d} is a duplicate"));
                        } else if d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                            u.digest = Some(d.to_ascii_lowercase());
                        } else {
                            self.d.error(
                                &s.args[0].pos,
                                format!("digest: \"{d}\" is not 32 hexadecimal digits (an MD5)"),
                            );
                        }
                    }
                }
                "status_code" => {
                    self.no_block(s);
                    if self.arg(s, 0, "a status code or range").is_none() {
                        continue;
                    }
                    for w in &s.args {
                        let (a, b) = w.text.split_once('-').unwrap_or((&w.text, &w.text));
                        match (a.parse::<u16>(), b.parse::<u16>()) {
                            (Ok(a), Ok(b))
                                if (100..=599).contains(&a) && (a..=599).contains(&b) =>
                            {
                                u.status_codes.extend(a..=b)
                            }
                            _ => self.d.error(
                                &w.pos,
                                format!(
                                    "status_code: \"{}\" is not a code or range in 100-599",
                                    w.text
                                ),
                            ),
                        }
                    }
                    u.status_codes.sort_unstable();
                    u.status_codes.dedup();
                }
                "virtualhost" => {
                    if let Some(v) = self.string(s, "a host name") {
                        u.virtualhost = Some(v);
                    }
                }
                "regex" => {
                    self.no_block(s);
                    if self.arg(s, 0, "a regular expression").is_none() {
                        continue;
                    }
                    match split_command(s.raw_args()) {
                        Ok(w) if w.len() == 1 => match regex::bytes::Regex::new(&w[0]) {
                            Ok(_) => u.regex = Some((w[0].clone(), false)),
                            // The checker matches with the regex crate, not PCRE.
                            Err(e) => self.d.error(
                                &s.args[0].pos,
                                format!(
                                    "regex: not a regular expression the checker can use: {}",
                                    e.to_string()
                                        .lines()
                                        .last()
                                        .unwrap_or_default()
                                        .trim_start_matches("error: ")
                                ),
                            ),
                        },
                        Ok(_) => self
                            .d
                            .error(&s.args[0].pos, "regex: expected one expression (quote it)"),
                        Err(e) => self.d.error(&s.args[0].pos, format!("regex: {e}")),
                    }
                }
                "regex_no_match" => {
                    self.bare_flag(s);
                    no_match = true;
                }
                _ => self.not_handled(s, Context::Url, &context),
            }
        }
        if let Some((_, n)) = &mut u.regex {
            *n = no_match;
        }
        if u.path.is_empty() {
            self.d.error(st.pos(), "url: no path");
            return None;
        }
        Some(u)
    }

    /// Hexadecimal bytes, blanks allowed between them (check_udp.c `read_hex_str`).
    fn hex(&mut self, st: &Stmt) -> Option<Vec<u8>> {
        self.no_block(st);
        self.arg(st, 0, "hexadecimal bytes")?;
        let digits: String = st.args.iter().map(|w| w.text.as_str()).collect();
        let bytes = (digits.len().is_multiple_of(2)
            && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| {
            (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap_or(0))
                .collect::<Vec<u8>>()
        });
        if bytes.is_none() {
            self.d.error(
                &st.args[0].pos,
                format!(
                    "{}: expected hexadecimal bytes, found \"{digits}\"",
                    st.kw()
                ),
            );
        }
        bytes
    }

    /// Root `virtual_server_group NAME { IP[-END|/MASK] PORT … }`.
    pub(super) fn virtual_server_group(&mut self, st: &Stmt) {
        let taken: Vec<String> = self.lvs.groups.iter().map(|g| g.name.clone()).collect();
        let Some((name, stmts)) = self.named_block(st, |_, n| taken.iter().any(|t| t == n)) else {
            return;
        };
        let mut members = Vec::new();
        let context = format!("virtual_server_group {name}: ");
        for s in stmts {
            if s.kw() == "fwmark" {
                self.not_handled(s, Context::VirtualServerGroup, &context);
                continue;
            }
            self.no_block(s);
            let Some(addrs) = self.group_range(s) else {
                continue;
            };
            let Some(pw) = s.args.first() else {
                self.d.error(
                    &s.end_pos(),
                    format!(
                        "virtual_server_group {name}: {} needs a port (ha-agent balances one \
                         address and port per service)",
                        s.kw()
                    ),
                );
                continue;
            };
            let Some(port) = self.port_word("virtual_server_group", pw) else {
                continue;
            };
            self.extra_args(s, 1);
            for a in addrs {
                members.push((SocketAddr::new(a, port), s.pos().clone()));
            }
        }
        if members.is_empty() {
            self.d
                .error(st.pos(), format!("virtual_server_group {name}: no entries"));
        }
        self.lvs.groups.push(RawVsGroup {
            name,
            pos: st.pos().clone(),
            members,
        });
    }

    /// `IP`, `IP-LAST` (keepalived: the last part of the address, `10.0.0.1-10`) or `IP/LEN`.
    fn group_range(&mut self, st: &Stmt) -> Option<Vec<IpAddr>> {
        let w = &st.keyword;
        let bad = |b: &mut Self, why: &str| {
            b.d.error(
                &w.pos,
                format!("virtual_server_group: {why}: \"{}\"", w.text),
            );
            None
        };
        let (start, end) = if let Some((a, len)) = w.text.split_once('/') {
            let Ok(ip) = a.parse::<IpAddr>() else {
                return bad(self, "invalid address");
            };
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            let Some(len) = len.parse::<u32>().ok().filter(|l| (1..=bits).contains(l)) else {
                return bad(self, "invalid netmask");
            };
            let host = if len == bits {
                0
            } else {
                (1u128 << (bits - len)) - 1
            };
            let s = to_u128(ip);
            if s & host != 0 {
                return bad(self, "address mask bits not empty");
            }
            (ip, s | host)
        } else if let Some((a, last)) = w.text.split_once('-') {
            let Ok(ip) = a.parse::<IpAddr>() else {
                return bad(self, "invalid address");
            };
            let (radix, width, max) = if ip.is_ipv4() {
                (10, 8, 255)
            } else {
                (16, 16, 0xffff)
            };
            let Some(l) = u128::from_str_radix(last, radix).ok().filter(|l| *l <= max) else {
                return bad(self, "invalid range end");
            };
            let s = to_u128(ip);
            let mask = (1u128 << width) - 1;
            if l < (s & mask) {
                return bad(self, "range end below its start");
            }
            (ip, (s & !mask) | l)
        } else {
            let Ok(ip) = w.text.parse::<IpAddr>() else {
                return bad(self, "invalid address");
            };
            (ip, to_u128(ip))
        };
        let s = to_u128(start);
        if end - s >= MAX_GROUP_RANGE {
            return bad(self, "more than 256 addresses in one entry");
        }
        Some(
            (s..=end)
                .map(|v| match start {
                    IpAddr::V4(_) => IpAddr::V4((v as u32).into()),
                    IpAddr::V6(_) => IpAddr::V6(v.into()),
                })
                .collect(),
        )
    }

    /// Expands the groups, resolves every service and checks it against the instances' VIPs.
    pub(super) fn finish_lvs(&mut self, instances: &[&VrrpInstance]) -> Lvs {
        let raw = std::mem::take(&mut self.lvs);
        let mut out: Vec<VirtualServer> = Vec::new();
        for s in &raw.services {
            // check_data.c validate_check_config, once per block (not per group member).
            let name = match &s.target {
                Target::Addr(a) => a.to_string(),
                Target::Group(g, _) => format!("group {g}"),
            };
            if s.reals.is_empty() {
                self.d.warn(
                    &s.pos,
                    format!("virtual server {name} has no real servers, ignored (as keepalived)"),
                );
                continue;
            }
            if !s.protocol_set {
                self.d.warn(
                    &s.pos,
                    format!(
                        "virtual server {name}: no protocol set, defaulting to UDP as keepalived \
                         does; write `protocol TCP` for a TCP service"
                    ),
                );
            }
            if !s.algo_set {
                self.d.warn(
                    &s.pos,
                    format!(
                        "virtual server {name}: no scheduler set, defaulting to wlc as keepalived \
                         does"
                    ),
                );
            }
            let members: Vec<(SocketAddr, Option<String>)> = match &s.target {
                Target::Addr(a) => vec![(*a, None)],
                Target::Group(name, pos) => match raw.groups.iter().find(|g| &g.name == name) {
                    Some(g) => g
                        .members
                        .iter()
                        .map(|(a, _)| (*a, Some(g.name.clone())))
                        .collect(),
                    None => {
                        self.d.error(
                            pos,
                            format!("virtual_server group {name}: no virtual_server_group {name}"),
                        );
                        continue;
                    }
                },
            };
            for (addr, group) in members {
                let Some(vs) = self.resolve_service(s, addr, group) else {
                    continue;
                };
                if let Some(prev) = out
                    .iter()
                    .find(|o| o.addr == vs.addr && o.protocol == vs.protocol)
                {
                    self.d.error(
                        &s.pos,
                        format!(
                            "virtual_server {} {}: already defined at line {}",
                            vs.addr.ip(),
                            vs.addr.port(),
                            prev.at.line
                        ),
                    );
                    continue;
                }
                let served = instances.iter().any(|i| {
                    i.virtual_ipaddress
                        .iter()
                        .chain(&i.virtual_ipaddress_excluded)
                        .any(|v| v.addr == vs.addr.ip())
                });
                if !served {
                    self.d.error(
                        &s.pos,
                        format!(
                            "virtual_server {}: {} is not a virtual_ipaddress of any \
                             vrrp_instance: ha-agent serves a service only on the node that is \
                             master of its address; add {} to the virtual_ipaddress of the \
                             vrrp_instance that should carry it",
                            vs.addr,
                            vs.addr.ip(),
                            vs.addr.ip()
                        ),
                    );
                    continue;
                }
                out.push(vs);
            }
        }
        for g in &raw.groups {
            if !raw
                .services
                .iter()
                .any(|s| matches!(&s.target, Target::Group(n, _) if n == &g.name))
            {
                self.d.warn(
                    &g.pos,
                    format!("virtual_server_group {}: no virtual_server uses it", g.name),
                );
            }
        }
        Lvs {
            virtual_servers: out,
        }
    }

    /// One service at `addr`: inheritance, forwarding methods, families, quorum (check_data.c
    /// `validate_check_config`).
    fn resolve_service(
        &mut self,
        s: &RawService,
        addr: SocketAddr,
        group: Option<String>,
    ) -> Option<VirtualServer> {
        let af = family(&addr.ip());
        if let Some((f, pos)) = &s.family
            && *f != af
        {
            self.d.error(
                pos,
                format!("ip_family: the virtual server {addr} is IPv{af}"),
            );
            return None;
        }
        if let Some(p) = vs_prefix_too_long(&s.vs, af) {
            self.d.error(
                &s.pos,
                format!(
                    "virtual_server {addr}: persistence_granularity /{p} is longer than an IPv{af} \
                     address"
                ),
            );
            return None;
        }
        let needs_default = s.reals.iter().any(|r| r.kind.is_none())
            || s.sorry.as_ref().is_some_and(|x| x.kind.is_none());
        let kind = match s.kind {
            Some(k) => k,
            None if needs_default && s.kind_seen => return None,
            None if needs_default => {
                self.d.error(
                    &s.pos,
                    format!(
                        "virtual_server {addr}: no lb_kind, and keepalived's default is NAT: \
                         {NAT_REASON}; add `lb_kind DR` (or `lb_kind TUN`)"
                    ),
                );
                return None;
            }
            None => s.reals[0].kind.unwrap_or(LbKind::Dr),
        };
        let mut vs = s.vs.clone();
        vs.addr = addr;
        vs.group = group;
        vs.kind = kind;
        vs.delay_loop = s.timers.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
        let mut ok = true;
        let what = |kind: LbKind| match kind {
            LbKind::Dr => "DR",
            LbKind::Tun => "TUN",
        };
        if let Some(x) = &s.sorry {
            let k = x.kind.unwrap_or(kind);
            // check_data.c: DR and TUN cannot change the port; keepalived resets it.
            let sorry = SocketAddr::new(x.ip, addr.port());
            if family(&x.ip) != af {
                self.d.error(
                    &x.pos,
                    format!(
                        "sorry_server {}: not IPv{af} like its virtual server {addr} \
                         (ha-agent forwards and encapsulates within one family)",
                        x.ip
                    ),
                );
                ok = false;
            } else {
                if let Some(p) = x.port.filter(|p| *p != addr.port()) {
                    self.d.warn(
                        &x.pos,
                        format!(
                            "virtual server {addr} and sorry server {}:{p} ports don't match: \
                             {} forwards to port {}, as keepalived resets it",
                            x.ip,
                            what(k),
                            addr.port()
                        ),
                    );
                }
                vs.sorry_server = Some(SorryServer {
                    at: source(&x.pos),
                    addr: sorry,
                    kind: k,
                    inhibit: x.inhibit,
                });
            }
        }
        let mut weight_sum: u64 = 0;
        for r in &s.reals {
            // The address the checkers reach (the port as written), and the one forwarded to.
            let rs_addr = SocketAddr::new(r.ip, r.port.unwrap_or(addr.port()));
            let fwd_addr = SocketAddr::new(r.ip, addr.port());
            let k = r.kind.unwrap_or(kind);
            if family(&r.ip) != af {
                self.d.error(
                    &r.pos,
                    format!(
                        "real_server {}: not IPv{af} like its virtual server {addr} \
                         (ha-agent forwards DR and encapsulates TUN within one family)",
                        r.ip
                    ),
                );
                ok = false;
                continue;
            }
            if vs.real_servers.iter().any(|o| o.addr == fwd_addr) {
                self.d.error(
                    &r.pos,
                    format!("real_server {}: already in virtual_server {addr}", r.ip),
                );
                ok = false;
                continue;
            }
            // check_data.c: IPVS DR and TUN cannot change the port; keepalived resets the real
            // server's port to the service's (its checkers keep the port written).
            if rs_addr.port() != addr.port() {
                self.d.warn(
                    &r.pos,
                    format!(
                        "virtual server {addr} and real server {rs_addr} ports don't match: {} \
                         forwards to port {}, as keepalived resets it; the checkers connect to {}",
                        what(k),
                        addr.port(),
                        rs_addr.port()
                    ),
                );
            }
            let alpha = r.timers.alpha.unwrap_or(vs.alpha);
            let virtualhost = r.timers.virtualhost.clone().or(vs.virtualhost.clone());
            let weight = r.weight.unwrap_or(s.weight);
            weight_sum += u64::from(weight);
            let mut checkers = Vec::new();
            for c in &r.checkers {
                checkers.push(self.resolve_checker(s, r, c, rs_addr, alpha, &virtualhost));
            }
            vs.real_servers.push(RealServer {
                at: source(&r.pos),
                addr: fwd_addr,
                weight,
                kind: k,
                inhibit_on_failure: r.inhibit.unwrap_or(vs.inhibit_on_failure),
                notify_up: r.notify_up.clone(),
                notify_down: r.notify_down.clone(),
                alpha,
                virtualhost,
                checkers: checkers.into_iter().flatten().collect(),
            });
        }
        if !ok {
            return None;
        }
        // check_data.c: a sorry server that is also a real server follows its inhibit setting.
        if let (Some(sorry), Some(raw)) = (&mut vs.sorry_server, &s.sorry)
            && let Some(rs) = vs.real_servers.iter().find(|r| r.addr == sorry.addr)
            && rs.inhibit_on_failure != sorry.inhibit
        {
            self.d.warn(
                &raw.pos,
                format!(
                    "virtual server {addr}: real server {} matches sorry server, but inhibit \
                     setting differs, {} on sorry server",
                    rs.addr,
                    if rs.inhibit_on_failure {
                        "setting"
                    } else {
                        "clearing"
                    }
                ),
            );
            sorry.inhibit = rs.inhibit_on_failure;
        }
        // check_data.c: a quorum above the total weight could never be reached.
        if u64::from(vs.quorum) > weight_sum && !vs.real_servers.is_empty() {
            self.d.warn(
                &s.pos,
                format!(
                    "quorum {} for {addr} exceeds total weight of real servers {weight_sum}, \
                     reducing quorum to {weight_sum}",
                    vs.quorum
                ),
            );
            vs.quorum = weight_sum as u32;
        }
        if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
            let h = vs.quorum.saturating_sub(1);
            self.d.warn(
                &s.pos,
                format!(
                    "virtual server {addr}: hysteresis {} >= quorum {}; setting hysteresis to {h}",
                    vs.hysteresis, vs.quorum
                ),
            );
            vs.hysteresis = h;
        }
        Some(vs)
    }

    fn resolve_checker(
        &mut self,
        s: &RawService,
        r: &RawReal,
        c: &RawChecker,
        rs_addr: SocketAddr,
        rs_alpha: bool,
        rs_virtualhost: &Option<String>,
    ) -> Option<Checker> {
        let t = &c.timers;
        let connect = SocketAddr::new(
            c.connect_ip.unwrap_or(rs_addr.ip()),
            c.connect_port.unwrap_or(rs_addr.port()),
        );
        let bind = match (c.bind_ip, c.bind_port) {
            (None, None) => None,
            (ip, port) => {
                let ip = ip.unwrap_or(match connect {
                    SocketAddr::V4(_) => IpAddr::from([0, 0, 0, 0]),
                    SocketAddr::V6(_) => IpAddr::from([0u16; 8]),
                });
                if family(&ip) != family(&connect.ip()) {
                    self.d.error(
                        &c.pos,
                        format!(
                            "{}: bindto {ip} and connect address {} are of different families",
                            c.kind.keyword(),
                            connect.ip()
                        ),
                    );
                    return None;
                }
                Some(SocketAddr::new(ip, port.unwrap_or(0)))
            }
        };
        let mut kind = c.kind.clone();
        if let CheckKind::Http(h) = &mut kind {
            h.virtualhost = h.virtualhost.take().or(rs_virtualhost.clone());
        }
        if let (CheckKind::File(f), Some(at)) = (&mut kind, &c.track_file_at) {
            match self
                .track_files
                .iter()
                .find(|(d, _)| d.name == f.track_file)
            {
                None => {
                    self.d.error(
                        at,
                        format!(
                            "FILE_CHECK: track_file {} is not defined (a root `track_file {} {{ \
                             file PATH }}` block)",
                            f.track_file, f.track_file
                        ),
                    );
                    return None;
                }
                // check_file.c file_end_handler: the definition's weight when the checker
                // sets none.
                Some((d, _)) if f.weight.is_none() && d.weight != 0 => {
                    f.weight = Some((d.weight, d.weight_reverse));
                }
                Some(_) => {}
            }
        }
        let delay_loop = t
            .delay_loop
            .or(r.timers.delay_loop)
            .or(s.timers.delay_loop)
            .unwrap_or(DEFAULT_DELAY_LOOP);
        // The checkers' own defaults per kind (check_api.c, check_http.c, check_dns.c).
        let default_retry = crate::lvs::check::default_retry(&kind);
        let default_delay = crate::lvs::check::default_delay_before_retry(&kind, delay_loop);
        Some(Checker {
            at: source(&c.pos),
            kind,
            connect,
            bind,
            bind_if: c.bind_if.clone(),
            connect_timeout: t
                .connect_timeout
                .or(r.timers.connect_timeout)
                .or(s.timers.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            retry: t
                .retry
                .or(r.timers.retry)
                .or(s.timers.retry)
                .unwrap_or(default_retry),
            delay_before_retry: t
                .delay_before_retry
                .or(r.timers.delay_before_retry)
                .or(s.timers.delay_before_retry)
                .unwrap_or(default_delay),
            delay_loop,
            // check_data.c: no warmup anywhere means a random delay up to delay_loop.
            warmup: Some(
                t.warmup
                    .or(r.timers.warmup)
                    .or(s.timers.warmup)
                    .unwrap_or(delay_loop),
            ),
            alpha: t.alpha.unwrap_or(rs_alpha),
            log_all_failures: c.log_all_failures,
        })
    }

    /// Root `SSL { … }`: the checkers' TLS client settings, none of which ha-agent uses.
    pub(super) fn ssl_block(&mut self, st: &Stmt) {
        self.extra_args(st, 0);
        if let Some(stmts) = self.block(st) {
            for s in stmts {
                self.not_handled(s, Context::Ssl, "SSL: ");
            }
        }
    }
}

/// check_api.c `install_checker_common_keywords(true)`: the checkers that open a connection.
const CONNECT_KEYWORDS: [&str; 7] = [
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "bind_if",
    "connect_timeout",
    "fwmark",
];

/// A persistence prefix longer than the service's addresses (a prefix length read for IPv6).
fn vs_prefix_too_long(vs: &VirtualServer, af: u8) -> Option<u8> {
    vs.persistence_prefix.filter(|p| af == 4 && *p > 32)
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// check_dns.c `DNS_TYPE`.
fn dns_type(t: &str) -> Option<u16> {
    Some(match t {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        _ => return None,
    })
}

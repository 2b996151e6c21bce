//! keepalived's LVS half as read from the file: `virtual_server` (and `virtual_server_group`),
//! its `real_server`s and their health checkers (keepalived's `check/`), resolved: defaults
//! applied, groups expanded, every checker's settings inherited from its real and virtual
//! server as keepalived does. The builder (`builder/lvs.rs`) fills these; `lvs/` runs them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::model::{NotifyScript, ScriptUser, Source};

/// One service the load balancer answers: an address:port:protocol. A `virtual_server group
/// NAME` becomes one `VirtualServer` per address (and port) of the group, sharing its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    /// Where the `virtual_server` line is.
    pub at: Source,
    /// `virtual_server IP PORT` / a group member's address and port.
    pub addr: SocketAddr,
    /// The group this service came from (`virtual_server group NAME`).
    pub group: Option<String>,
    /// `protocol` (default UDP, as keepalived 2.2.7's check_data.c, with a warning).
    pub protocol: Protocol,
    /// `delay_loop` (default 60 s): the checkers' interval unless a real server or checker
    /// sets its own.
    pub delay_loop: Duration,
    /// `lb_algo` / `lvs_sched` (default `wlc`, as keepalived).
    pub algo: LbAlgo,
    /// `mh-port` / `sh-port` (`lb_flags`): hash the port too.
    pub hash_port: bool,
    /// `lb_kind` / `lvs_method` (default NAT in keepalived, which ha-agent refuses: a
    /// `virtual_server` without `lb_kind` is an error naming DR and TUN).
    pub kind: LbKind,
    /// `persistence_timeout` (a bare keyword: 360 s, keepalived's default).
    pub persistence_timeout: Option<Duration>,
    /// `persistence_granularity`: a prefix length (IPv4 netmask converted; default all bits).
    pub persistence_prefix: Option<u8>,
    /// `virtualhost`: the HTTP_GET/SSL_GET Host header default.
    pub virtualhost: Option<String>,
    /// `sorry_server IP PORT`: takes every new flow while the service is below quorum.
    pub sorry_server: Option<SorryServer>,
    /// `inhibit_on_failure` (the real servers' default).
    pub inhibit_on_failure: bool,
    /// `quorum` (default 1): the sum of the weights of the real servers up below which the
    /// service is down (`quorum_down` runs, the sorry server takes over).
    pub quorum: u32,
    /// `hysteresis` (default 0): up again at `quorum + hysteresis`, down at `quorum - hysteresis`.
    pub hysteresis: u32,
    pub quorum_up: Option<NotifyScript>,
    pub quorum_down: Option<NotifyScript>,
    /// `alpha`: real servers start down until their checkers succeed (default: start up).
    pub alpha: bool,
    /// `omega`: run `notify_down` / `quorum_down` when the service is removed (stop, reload).
    pub omega: bool,
    /// `ha_suspend`: check and forward only while this node is master of the address (ha-agent
    /// forwards only then anyway; with `ha_suspend` the checkers stop too).
    pub ha_suspend: bool,
    pub real_servers: Vec<RealServer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Scheduler. All are placed by the Maglev table of the service; see the README for how each
/// approximates IPVS's (rr/wrr/lc/wlc hash the 5-tuple over a weighted table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbAlgo {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sh,
    Mh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbKind {
    /// Direct routing: rewrite the destination MAC.
    Dr,
    /// IP-in-IP (`tun_type ipip`, the only kind ha-agent builds).
    Tun,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SorryServer {
    pub at: Source,
    pub addr: SocketAddr,
    /// `sorry_server_lvs_method` (default the service's).
    pub kind: LbKind,
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    pub at: Source,
    /// `real_server IP PORT`, with the service's port: DR and TUN cannot change the port
    /// (keepalived resets it; the checkers keep the port written).
    pub addr: SocketAddr,
    /// `weight` (default 1; 0 is a server that takes no new flows).
    pub weight: u32,
    /// `lvs_method` on the real server (default the service's).
    pub kind: LbKind,
    /// `inhibit_on_failure`: on failure the weight goes to 0 (existing flows stay) instead of
    /// the server leaving.
    pub inhibit_on_failure: bool,
    pub notify_up: Option<NotifyScript>,
    pub notify_down: Option<NotifyScript>,
    /// `alpha` on the real server (default the service's).
    pub alpha: bool,
    /// `virtualhost` on the real server (default the service's).
    pub virtualhost: Option<String>,
    /// keepalived 2.2: a real server with several checkers is up when all are.
    pub checkers: Vec<Checker>,
}

/// One health checker of a real server, with every setting resolved (checker, then real
/// server, then virtual server, then keepalived's default).
#[derive(Debug, Clone, PartialEq)]
pub struct Checker {
    pub at: Source,
    pub kind: CheckKind,
    /// `connect_ip` / `connect_port` (default the real server's address and port).
    pub connect: SocketAddr,
    /// `bindto` / `bind_port`.
    pub bind: Option<SocketAddr>,
    /// `bind_if` (an IPv6 link-local `bindto`).
    pub bind_if: Option<String>,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Duration,
    /// `retry` / `nb_get_retry` (default 1 for TCP/PING/UDP/DNS/SMTP... as keepalived): failures
    /// in a row before the server is down.
    pub retry: u32,
    /// `delay_before_retry` (default 1 s).
    pub delay_before_retry: Duration,
    /// `delay_loop` (default the real server's, then the service's).
    pub delay_loop: Duration,
    /// `warmup`: a random delay up to this before the first check.
    pub warmup: Option<Duration>,
    /// `alpha` (default the real server's).
    pub alpha: bool,
    /// `log_all_failures`.
    pub log_all_failures: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// `TCP_CHECK`: a TCP connection opens within `connect_timeout`.
    Tcp,
    /// `HTTP_GET` / `SSL_GET`.
    Http(HttpCheck),
    /// `MISC_CHECK`.
    Misc(MiscCheck),
    /// `PING_CHECK`: an ICMP echo reply within `connect_timeout`.
    Ping,
    /// `UDP_CHECK`.
    Udp(UdpCheck),
    /// `DNS_CHECK`.
    Dns(DnsCheck),
    /// `SMTP_CHECK`: a 220 greeting, then `HELO` answered 250.
    Smtp { helo_name: String },
    /// `FILE_CHECK`: a `track_file`'s value (0: up; non-zero: down unless `weight` is set, when
    /// it adjusts the weight as a VRRP tracked file does).
    File(FileCheck),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// `SSL_GET`: TLS (no certificate verification, as keepalived without `ca`).
    pub tls: bool,
    /// `enable_sni` (SSL_GET).
    pub sni: bool,
    /// `http_protocol` (default 1.0; `1.0C` adds Connection: close; 1.1 sends Host).
    pub http_protocol: HttpProtocol,
    /// `virtualhost` of the checker (default the real server's, then the service's).
    pub virtualhost: Option<String>,
    pub urls: Vec<UrlCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpProtocol {
    V10,
    V10Close,
    V11,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UrlCheck {
    pub path: String,
    /// `digest`: MD5 of the body, lower-case hex.
    pub digest: Option<String>,
    /// `status_code`: accepted codes (ranges expanded); empty: any 2xx (keepalived's default).
    pub status_codes: Vec<u16>,
    /// `virtualhost` of the url.
    pub virtualhost: Option<String>,
    /// `regex` (PCRE in keepalived; a Rust regex here, refused if it does not compile), with
    /// `regex_no_match`.
    pub regex: Option<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MiscCheck {
    /// `misc_path`: the command, split as keepalived splits it.
    pub command: Vec<String>,
    /// `misc_timeout` (default `delay_loop`).
    pub timeout: Option<Duration>,
    /// `misc_dynamic`: exit 0 up, 1 down, 2..=255 up with weight code - 2.
    pub dynamic: bool,
    /// `user` (default `script_user`).
    pub user: Option<ScriptUser>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UdpCheck {
    /// `payload` (hex).
    pub payload: Vec<u8>,
    /// `require_reply [HEX]`: a reply is needed (matching HEX when given); otherwise only an
    /// ICMP port unreachable is a failure.
    pub require_reply: Option<Vec<u8>>,
    pub min_reply_length: u32,
    pub max_reply_length: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsCheck {
    /// `type` (default SOA).
    pub qtype: u16,
    /// `name` (default ".").
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileCheck {
    /// The `track_file` it reads (index in `Config::track_files`).
    pub track_file: String,
    /// `weight W [reverse]`: the value times W adjusts the weight instead of down/up.
    pub weight: Option<(i32, bool)>,
}

/// Every service in the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lvs {
    pub virtual_servers: Vec<VirtualServer>,
}

/// keepalived's `delay_loop` when none is written (check_data.c).
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);

impl VirtualServer {
    /// A service at `addr` with keepalived's defaults (check_data.c `alloc_vs`: UDP, `wlc`,
    /// `delay_loop` 60 s, quorum 1) and no real server; `lb_kind` DR (keepalived's NAT default
    /// is refused by the builder).
    pub fn with_defaults(at: Source, addr: SocketAddr) -> Self {
        VirtualServer {
            at,
            addr,
            group: None,
            protocol: Protocol::Udp,
            delay_loop: DEFAULT_DELAY_LOOP,
            algo: LbAlgo::Wlc,
            hash_port: false,
            kind: LbKind::Dr,
            persistence_timeout: None,
            persistence_prefix: None,
            virtualhost: None,
            sorry_server: None,
            inhibit_on_failure: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            alpha: false,
            omega: false,
            ha_suspend: false,
            real_servers: Vec::new(),
        }
    }
}

impl CheckKind {
    /// keepalived's keyword for the checker.
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http(h) if h.tls => "SSL_GET",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Misc(_) => "MISC_CHECK",
            CheckKind::Ping => "PING_CHECK",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Dns(_) => "DNS_CHECK",
            CheckKind::Smtp { .. } => "SMTP_CHECK",
            CheckKind::File(_) => "FILE_CHECK",
        }
    }
}

/// The address a checker reaches by default: the real server's.
pub fn default_connect(rs: &RealServer) -> SocketAddr {
    rs.addr
}

/// An address's family as 4 or 6.
pub fn family(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() { 4 } else { 6 }
}

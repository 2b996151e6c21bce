//! The LVS lab: keepalived's LVS-DR/TUN topology on the lab's one L2 (DR needs it), for the
//! load balancer's tests, demo and bench.
//!
//! ```text
//!   director 1 (node 1, .1)  ─┐
//!   director 2 (node 2, .2)  ─┤
//!   real server rs3 (node 3) ─┤
//!   real server rs4 (node 4) ─┼── br0 (LAN namespace)
//!   real server rs5 (node 5) ─┤
//!   sorry server (node 6)    ─┤
//!   client (.100)            ─┘
//! ```
//!
//! The directors run the agents (the test starts them). Every real server (and the sorry
//! server) holds the VIPs on `lo` with `arp_ignore=1`/`arp_announce=2`, as the LVS-DR tutorials
//! set them, so only the director answers ARP/ND for a VIP, and runs `lvs_web` on port 80 (and
//! UDP echo on 5353). The directors' bridge ports run an XDP_PASS program: that is what lets a
//! veth receive the `XDP_TX`/redirected frames of its peer (see [`LvsLab::bridge_port_xdp`]).

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    process::Command,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{Daemon, IFACE, Lab, Node, built_bin, in_netns, run, which};

#[path = "lvs_bench.rs"]
pub mod bench;

/// The services' addresses (VRRP VIPs of the directors).
pub const VIP1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
pub const VIP2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 201);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);
/// Node numbers of the directors, the real servers and the sorry server.
pub const DIRECTORS: [usize; 2] = [1, 2];
pub const REALS: [usize; 3] = [3, 4, 5];
pub const SORRY: usize = 6;
/// The web servers' TCP port and the UDP echo port.
pub const HTTP_PORT: u16 = 80;
pub const UDP_PORT: u16 = 5353;
/// How long `GET /stream` streams (long enough to outlast a director failover).
pub const STREAM_SECS: u64 = 20;
/// The checkers' settings of the lab's services ([`virtual_server`]): a failure is seen within
/// `DELAY_LOOP` + `RETRY` × (`DELAY_BEFORE_RETRY` + `CONNECT_TIMEOUT`) seconds.
pub const DELAY_LOOP: u64 = 1;
pub const RETRY: u64 = 1;
pub const DELAY_BEFORE_RETRY: u64 = 1;
pub const CONNECT_TIMEOUT: u64 = 1;
/// How long a web server may take to listen after it was started.
const WEB_READY: Duration = Duration::from_secs(10);

/// `lvs_web`: `$HA_LVS_WEB_BIN`, or the one cargo built beside this binary.
pub fn lvs_web_bin() -> Result<std::path::PathBuf> {
    built_bin(
        "lvs_web",
        "HA_LVS_WEB_BIN",
        "cargo build -p ha-tests --bin lvs_web",
    )
}

/// The name a real server's `GET /` answers: `rs3`, `rs4`, `rs5`, `sorry`.
pub fn server_name(node: usize) -> String {
    if node == SORRY {
        "sorry".into()
    } else {
        format!("rs{node}")
    }
}

/// A lab with two directors, three real servers, a sorry server and a client (see the module
/// documentation). Dropped: web servers stopped, TUN programs detached, namespaces removed.
pub struct LvsLab {
    // Dropped before the lab, so the namespaces go last.
    webs: BTreeMap<usize, Daemon>,
    tun: Vec<aya::Ebpf>,
    port_xdp: BTreeMap<usize, crate::flood::XdpPass>,
    /// The agent's eBPF object (`ha_agent::datapath::EBPF_OBJECT`): the lab's helper programs.
    object: &'static [u8],
    pub lab: Lab,
}

impl LvsLab {
    /// Builds the lab and starts the web servers; returns once every one answers on its own
    /// address. `object` is the agent's eBPF object (`ha_agent::datapath::EBPF_OBJECT`), whose
    /// `xdp_baseline` and `lab_tun_decap` the lab attaches.
    pub fn new(tag: &str, object: &'static [u8]) -> Result<LvsLab> {
        let lab = Lab::new(tag, 6)?;
        let mut lvs = LvsLab {
            webs: BTreeMap::new(),
            tun: Vec::new(),
            port_xdp: BTreeMap::new(),
            object,
            lab,
        };
        for d in DIRECTORS {
            lvs.bridge_port_xdp(d, true)?;
        }
        // The client's frames reach the real servers through XDP, which forwards a veth's
        // unfinished checksum as it is: the client computes its own, as a real NIC does.
        crate::veth_tx_checksum_off(&lvs.lab.client);
        for n in REALS.into_iter().chain([SORRY]) {
            real_server_setup(lvs.lab.node(n))?;
            lvs.start_web(n)?;
        }
        Ok(lvs)
    }

    /// Attaches (`on`) or detaches `xdp_baseline` (XDP_PASS) on director `d`'s bridge port. A
    /// veth takes the frames its peer's XDP program sends with `XDP_TX` or redirects only while
    /// it has NAPI (veth_xdp_xmit drops them otherwise, counted as the port's rx drops); an XDP
    /// program gives it NAPI. GRO on the port should too, but on this kernel (6.18) the frames
    /// then vanish (tests/tests/lvs.rs checks the program's effect).
    pub fn bridge_port_xdp(&mut self, d: usize, on: bool) -> Result<()> {
        if !on {
            self.port_xdp.remove(&d);
            return Ok(());
        }
        let pass = crate::flood::xdp_pass_on(&self.lab.lan, &self.lab.node(d).port, self.object)?;
        self.port_xdp.insert(d, pass);
        Ok(())
    }

    /// Node `i` (1-based).
    pub fn node(&self, i: usize) -> &Node {
        self.lab.node(i)
    }

    pub fn client(&self) -> &Node {
        &self.lab.client
    }

    /// Starts (again) node `n`'s web server and waits until it answers `GET /` on its address.
    pub fn start_web(&mut self, n: usize) -> Result<()> {
        let bin = lvs_web_bin()?;
        let name = server_name(n);
        let down = self.down_file(n).display().to_string();
        let udp = UDP_PORT.to_string();
        let web = self.lab.node(n).spawn(
            &format!("web-{name}"),
            &self.lab.dir,
            &bin.display().to_string(),
            &[
                &name,
                "--down-file",
                &down,
                "--stream-secs",
                &STREAM_SECS.to_string(),
                "--udp",
                &udp,
            ],
        )?;
        self.webs.insert(n, web);
        let addr = SocketAddr::new(IpAddr::V4(self.lab.node(n).ipv4), HTTP_PORT);
        let client = self.lab.client.clone();
        crate::wait_for(&format!("{name}'s web server"), WEB_READY, || {
            Ok(http_get(&client, addr, "/", None).is_ok_and(|(s, b)| s == 200 && b.trim() == name))
        })
        .map(drop)
    }

    /// Stops node `n`'s web server (the application dies: connections are refused).
    pub fn stop_web(&mut self, n: usize) {
        self.webs.remove(&n);
    }

    /// The file whose existence makes node `n`'s `GET /health` answer 503.
    pub fn down_file(&self, n: usize) -> std::path::PathBuf {
        self.lab.dir.join(format!("{}.down", server_name(n)))
    }

    /// Makes node `n`'s health URL fail (`true`) or pass again.
    pub fn set_health(&self, n: usize, healthy: bool) -> Result<()> {
        let file = self.down_file(n);
        if healthy {
            std::fs::remove_file(&file).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })?;
        } else {
            std::fs::write(&file, "down\n")?;
        }
        Ok(())
    }

    /// Attaches `lab_tun_decap` to every real server's and the sorry server's `eth0` ingress:
    /// their stand-in for the ipip/ip6tnl device of an LVS-TUN real server, which this kernel
    /// lacks. Detached when the lab is dropped.
    pub fn attach_tun_decap(&mut self) -> Result<()> {
        let object = self.object;
        for n in REALS.into_iter().chain([SORRY]) {
            let node = self.lab.node(n);
            let (v4, v6) = (node.ipv4.octets(), node.ipv6.octets());
            let ebpf = in_netns(&node.ns, move || {
                let mut ebpf = aya::EbpfLoader::new()
                    .override_global("LAB_TUN_DST4", &v4, true)
                    .override_global("LAB_TUN_DST6", &v6, true)
                    .load(object)
                    .context("loading the eBPF object for lab_tun_decap")?;
                let prog: &mut aya::programs::SchedClassifier = ebpf
                    .program_mut("lab_tun_decap")
                    .context("lab_tun_decap is not in the eBPF object")?
                    .try_into()?;
                prog.load().context("loading lab_tun_decap")?;
                prog.attach(IFACE, aya::programs::TcAttachType::Ingress)
                    .context("attaching lab_tun_decap to eth0 ingress")?;
                Ok(ebpf)
            })?;
            self.tun.push(ebpf);
        }
        Ok(())
    }

    /// Counts, at node `n`'s `eth0` ingress, packets to `vip` whose Ethernet source is `mac`
    /// (which director forwarded them): an nftables netdev counter, read by
    /// [`LvsLab::forwarded_from`].
    pub fn count_from(&self, n: usize, mac: &str, vip: IpAddr) -> Result<()> {
        which("nft")
            .context("counting at the real servers needs nft: `apt-get install nftables`")?;
        let node = self.lab.node(n);
        let family = if vip.is_ipv4() { "ip" } else { "ip6" };
        node.sh(&format!(
            "nft list table netdev lvslab >/dev/null 2>&1 || {{ nft add table netdev lvslab && \
             nft add chain netdev lvslab in '{{ type filter hook ingress device {IFACE} priority 0 ; }}'; }} && \
             nft add rule netdev lvslab in ether saddr {mac} {family} daddr {vip} counter comment \\\"{mac}-{vip}\\\""
        ))
        .map(drop)
    }

    /// Packets counted by [`LvsLab::count_from`]`(n, mac, vip)` so far.
    pub fn forwarded_from(&self, n: usize, mac: &str, vip: IpAddr) -> Result<u64> {
        let out = self
            .lab
            .node(n)
            .run("nft", &["list", "chain", "netdev", "lvslab", "in"])?;
        let needle = format!("\"{mac}-{vip}\"");
        let line = out
            .lines()
            .find(|l| l.contains(&needle))
            .with_context(|| format!("no counter {needle} on node {n}:\n{out}"))?;
        let mut words = line.split_whitespace();
        words
            .find(|w| *w == "packets")
            .and_then(|_| words.next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no packet count in {line:?}"))
    }
}

/// A VRRPv3 `vrrp_instance` on eth0 (advert_int 0.1) holding `vip` (a /24 or /64 on the LAN).
pub fn instance(name: &str, vrid: u8, priority: u8, vip: IpAddr) -> String {
    let prefix = if vip.is_ipv4() { 24 } else { 64 };
    format!(
        "vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {vrid}\n    \
         version 3\n    priority {priority}\n    advert_int 0.1\n    virtual_ipaddress {{\n        \
         {vip}/{prefix}\n    }}\n}}\n"
    )
}

/// Real server `n`'s address in the family of `vip`.
fn real_addr(lvs: &LvsLab, n: usize, vip: IpAddr) -> IpAddr {
    let node = lvs.node(n);
    if vip.is_ipv4() {
        node.ipv4.into()
    } else {
        node.ipv6.into()
    }
}

/// An HTTP_GET checker of `/health` as the tutorials write it.
fn http_get_check() -> String {
    format!(
        "        HTTP_GET {{\n            url {{\n                path /health\n                \
         status_code 200\n            }}\n            connect_timeout {CONNECT_TIMEOUT}\n            \
         retry {RETRY}\n            delay_before_retry {DELAY_BEFORE_RETRY}\n        }}\n"
    )
}

/// `virtual_server VIP 80` as the LVS tutorials write it, with `lb_algo`, `lb_kind`, `extra`
/// lines, and the real servers `reals` (node, weight) of `lvs`, each with an HTTP_GET check of
/// `/health`.
pub fn virtual_server(
    lvs: &LvsLab,
    vip: IpAddr,
    algo: &str,
    kind: &str,
    extra: &str,
    reals: &[(usize, u32)],
) -> String {
    let mut s = format!(
        "virtual_server {vip} {HTTP_PORT} {{\n    delay_loop {DELAY_LOOP}\n    lb_algo {algo}\n    \
         lb_kind {kind}\n    protocol TCP\n{extra}"
    );
    for &(n, weight) in reals {
        s += &format!(
            "    real_server {} {HTTP_PORT} {{\n        weight {weight}\n{}    }}\n",
            real_addr(lvs, n, vip),
            http_get_check()
        );
    }
    s + "}\n"
}

/// A real server as the LVS-DR/TUN tutorials set it up: the VIPs on `lo` (host routes, /32 and
/// /128), `arp_ignore=1` (answer ARP only for addresses of the receiving interface) and
/// `arp_announce=2` (never announce the VIP as a source), no reverse-path filter (the
/// decapsulated packets of TUN arrive on eth0 addressed to lo's VIP).
fn real_server_setup(node: &Node) -> Result<()> {
    node.sh(
        "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
         net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 \
         net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.lo.rp_filter=0",
    )?;
    for vip in [VIP1, VIP2] {
        node.run("ip", &["addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
    }
    node.run(
        "ip",
        &["-6", "addr", "add", &format!("{VIP6}/128"), "dev", "lo"],
    )
    .map(drop)
}

/// How long one request of the client may take (connect, answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens a TCP connection from `client` (from `bind` when given) to `addr`.
fn connect_in(client: &Node, addr: SocketAddr, bind: Option<IpAddr>) -> Result<TcpStream> {
    in_netns(&client.ns, move || connect(addr, bind))
}

/// A TCP connection to `addr` from the current namespace, from `bind` when given.
fn connect(addr: SocketAddr, bind: Option<IpAddr>) -> Result<TcpStream> {
    let Some(src) = bind else {
        return TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
            .with_context(|| format!("connecting to {addr}"));
    };
    // std cannot bind before connecting: a socket, bind(2), then a blocking connect(2).
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let stream = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let (sa, len) = sockaddr(SocketAddr::new(src, 0));
    // SAFETY: sa is a sockaddr_storage holding a sockaddr of length len.
    if unsafe { libc::bind(fd, (&raw const sa).cast(), len) } != 0 {
        bail!("bind {src}: {}", std::io::Error::last_os_error());
    }
    let (sa, len) = sockaddr(addr);
    // SAFETY: as above; a blocking connect bounded by the socket's send timeout.
    if unsafe { libc::connect(fd, (&raw const sa).cast(), len) } != 0 {
        bail!(
            "connecting to {addr} from {src}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(stream)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// One HTTP/1.0 request on a connection: the status and the body.
fn request(mut stream: TcpStream, addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .with_context(|| format!("reading the answer of {addr}"))?;
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status from {addr}: {reply:?}"))?;
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `GET path` from `client` (from `bind` when given) to `addr`: the status and the body.
pub fn http_get(
    client: &Node,
    addr: SocketAddr,
    path: &str,
    bind: Option<IpAddr>,
) -> Result<(u16, String)> {
    let stream = connect_in(client, addr, bind)?;
    request(stream, addr, path)
}

/// What N new connections to a service got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Answers of `GET /` per server name.
    pub by_server: BTreeMap<String, usize>,
    /// Connections that failed (refused, reset, timed out) or got no name.
    pub failed: usize,
    /// The first failure, for messages.
    pub first_failure: Option<String>,
}

impl Tally {
    pub fn answered(&self) -> usize {
        self.by_server.values().sum()
    }

    /// Answers from `name`.
    pub fn from(&self, name: &str) -> usize {
        self.by_server.get(name).copied().unwrap_or(0)
    }
}

/// `n` new TCP connections from `client` (from `bind` when given) to `addr`, one after the
/// other, each a `GET /`; counts the answers per server name. Each connection has a new source
/// port: a new flow for the balancer.
pub fn tally(client: &Node, addr: SocketAddr, n: usize, bind: Option<IpAddr>) -> Result<Tally> {
    in_netns(&client.ns, move || {
        let mut t = Tally::default();
        for _ in 0..n {
            match connect(addr, bind).and_then(|s| request(s, addr, "/")) {
                Ok((200, body)) if !body.trim().is_empty() => {
                    *t.by_server.entry(body.trim().to_owned()).or_default() += 1;
                }
                Ok((status, body)) => {
                    t.failed += 1;
                    t.first_failure
                        .get_or_insert(format!("HTTP {status}: {body:?}"));
                }
                Err(e) => {
                    t.failed += 1;
                    t.first_failure.get_or_insert(format!("{e:#}"));
                }
            }
        }
        Ok(t)
    })
}

/// What a streaming download (`GET /stream`) saw.
#[derive(Clone, Debug)]
pub struct DownloadReport {
    /// The server that answered (first line of the body).
    pub server: String,
    pub bytes: usize,
    /// The body ended with `END <server>` and the connection closed cleanly.
    pub completed: bool,
    /// What broke the connection (reset, timeout), if something did.
    pub error: Option<String>,
    /// The longest time without data.
    pub longest_stall: Duration,
}

/// A streaming download in progress (a thread reading it).
pub struct Download {
    started: mpsc::Receiver<String>,
    done: std::thread::JoinHandle<DownloadReport>,
}

/// How long the download may wait for data before it counts as broken: longer than any
/// failover the tests make, shorter than the stream.
const STALL_LIMIT: Duration = Duration::from_secs(15);

impl Download {
    /// Starts `GET /stream` from `client` to `addr`.
    pub fn start(client: &Node, addr: SocketAddr) -> Result<Download> {
        let stream = connect_in(client, addr, None)?;
        let (tx, started) = mpsc::channel();
        let done = std::thread::spawn(move || read_stream(stream, addr, &tx));
        Ok(Download { started, done })
    }

    /// Waits until the first line (the server's name) arrived; returns it.
    pub fn wait_started(&self, timeout: Duration) -> Result<String> {
        self.started
            .recv_timeout(timeout)
            .context("the download did not start")
    }

    /// Waits for the download to end (its server closes it after [`STREAM_SECS`]).
    pub fn finish(self) -> DownloadReport {
        self.done.join().unwrap_or_else(|_| DownloadReport {
            server: String::new(),
            bytes: 0,
            completed: false,
            error: Some("the download thread panicked".into()),
            longest_stall: Duration::ZERO,
        })
    }
}

fn read_stream(
    mut stream: TcpStream,
    addr: SocketAddr,
    started: &mpsc::Sender<String>,
) -> DownloadReport {
    let mut report = DownloadReport {
        server: String::new(),
        bytes: 0,
        completed: false,
        error: None,
        longest_stall: Duration::ZERO,
    };
    let _ = stream.set_read_timeout(Some(STALL_LIMIT));
    if let Err(e) = write!(stream, "GET /stream HTTP/1.0\r\nHost: {addr}\r\n\r\n") {
        report.error = Some(format!("sending the request: {e}"));
        return report;
    }
    let mut reader = BufReader::new(stream);
    let mut last = Instant::now();
    let mut in_body = false;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(n) => {
                report.bytes += n;
                report.longest_stall = report.longest_stall.max(last.elapsed());
                last = Instant::now();
                let text = line.trim_end();
                if !in_body {
                    in_body = text.is_empty();
                } else if report.server.is_empty() {
                    report.server = text.to_owned();
                    let _ = started.send(report.server.clone());
                } else if text.starts_with("END ") {
                    report.completed = text == format!("END {}", report.server);
                }
            }
            Err(e) => {
                report.error = Some(format!("{e} ({:?})", e.kind()));
                report.completed = false;
                break;
            }
        }
    }
    report
}

/// Sends one UDP datagram `payload` from `client` to `addr` and returns the answer and who sent
/// it, or fails after `timeout`.
pub fn udp_echo(
    client: &Node,
    addr: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<(String, SocketAddr)> {
    let payload = payload.to_vec();
    in_netns(&client.ns, move || {
        let any: IpAddr = if addr.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
        socket.set_read_timeout(Some(timeout))?;
        socket.send_to(&payload, addr)?;
        let mut buf = [0u8; 2048];
        let (n, from) = socket
            .recv_from(&mut buf)
            .with_context(|| format!("no UDP answer from {addr}"))?;
        Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
    })
}

/// `rx_packets` of `iface` in namespace `ns`.
pub fn rx_packets(ns: &str, iface: &str) -> Result<u64> {
    let out = run(Command::new("ip").args([
        "netns",
        "exec",
        ns,
        "cat",
        &format!("/sys/class/net/{iface}/statistics/rx_packets"),
    ]))?;
    out.trim().parse().context("rx_packets")
}

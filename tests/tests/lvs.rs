//! keepalived's LVS half served by ha-agent's XDP load balancer, end to end, as a keepalived user
//! runs it: a `keepalived.conf` with `virtual_server` blocks as the LVS-DR/TUN tutorials write
//! them, `ha-agent` started with plain `ip netns exec` on the directors, real servers with the
//! VIP on `lo` (`ha_tests::lvs`), and only what the client sees (and, for which director
//! forwarded, per-MAC counters at the real servers):
//!
//! - DR and TUN forward to three real servers with `rr`; `wrr` honours the weights; `sh` and
//!   `persistence_timeout` keep a client on one server;
//! - a real server whose HTTP_GET check fails leaves within `delay_loop` + retries, and comes
//!   back; the sorry server takes over when all are down and below `quorum`;
//! - a streaming download survives the SIGKILL of the master director with no reset; the backup
//!   forwards nothing for a VIP it does not own; dual-master directors each serve their VIP;
//!   IPv6 DR.
//!
//! The first tests check the lab itself against the kernel alone (no agent): XDP_TX on a veth
//! reaches the LAN only with GRO on its peer, and `lab_tun_decap` delivers an IPIP packet to the
//! VIP on a real server's `lo`.

mod common;

use ha_common::wire::internet_checksum;
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use ha_agent::datapath::EBPF_OBJECT;
use ha_tests::{
    Daemon, IFACE, ha_agent_bin,
    lvs::{
        self, CONNECT_TIMEOUT, DELAY_BEFORE_RETRY, DELAY_LOOP, Download, HTTP_PORT, LvsLab, REALS,
        RETRY, SORRY, Tally, UDP_PORT, VIP1, VIP2, VIP6, instance, server_name, virtual_server,
    },
    wait_for,
};

/// How long an agent may take to answer on its status socket (XDP loads take seconds on a
/// loaded 2-core machine).
const AGENT_READY: Duration = Duration::from_secs(30);
/// How long the first request through a new service may take: the master elected, its VIP
/// configured and announced, the checkers' first round (generous).
const SERVICE_READY: Duration = Duration::from_secs(30);
/// A test's LVS lab and the agents on its directors (stopped first when dropped).
struct Scene {
    agents: BTreeMap<usize, Daemon>,
    lvs: LvsLab,
}

impl Scene {
    fn new(tag: &str) -> Scene {
        ha_agent_bin().expect("ha-agent binary (cargo build -p ha-agent)");
        Scene {
            agents: BTreeMap::new(),
            lvs: LvsLab::new(tag, EBPF_OBJECT).expect("LVS lab"),
        }
    }

    /// Starts the agent on director `d` as users do (`ip netns exec NS ha-agent run -f FILE`)
    /// with `conf`, and waits until it answers on its status socket.
    fn start(&mut self, d: usize, conf: &str) {
        let mut agent = self
            .lvs
            .lab
            .ha_agent_as_deployed(d, conf, &[])
            .unwrap_or_else(|e| panic!("starting the agent on director {d}: {e:#}"));
        if let Err(e) = self.lvs.lab.wait_agent_ready(d, &mut agent, AGENT_READY) {
            panic!("director {d}: {e:#}\n{}", self.logs());
        }
        self.agents.insert(d, agent);
    }

    /// Each agent's log and `ha-agent status` (its services as ipvsadm shows them).
    fn logs(&self) -> String {
        self.agents
            .iter()
            .map(|(d, a)| {
                let conf = self.lvs.lab.dir.join(format!("ha-agent-n{d}.conf"));
                let status = std::process::Command::new(ha_agent_bin().expect("ha-agent"))
                    .args(["status", "-f"])
                    .arg(&conf)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_else(|e| format!("status: {e}"));
                format!(
                    "--- director {d}'s agent:\n{}\n--- its status:\n{status}\n",
                    a.log()
                )
            })
            .collect()
    }

    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.logs())
    }

    fn client(&self) -> &ha_tests::Node {
        self.lvs.client()
    }

    /// `n` new connections to `addr` from the client.
    fn tally(&self, addr: SocketAddr, n: usize) -> Tally {
        lvs::tally(self.client(), addr, n, None)
            .unwrap_or_else(|e| self.fail(&format!("tally to {addr}: {e:#}")))
    }

    /// Waits until a `GET /` to `addr` is answered by a server in `names`.
    fn wait_served(&self, addr: SocketAddr, names: &[&str], timeout: Duration) -> Duration {
        let client = self.client().clone();
        wait_for(
            &format!("{addr} answered by one of {names:?}"),
            timeout,
            || {
                Ok(lvs::http_get(&client, addr, "/", None)
                    .is_ok_and(|(s, b)| s == 200 && names.contains(&b.trim())))
            },
        )
        .unwrap_or_else(|e| self.fail(&format!("{e:#}")))
    }

    /// Polls batches of `batch` new connections to `addr` until `cond` holds for one.
    fn wait_tally(
        &self,
        what: &str,
        addr: SocketAddr,
        batch: usize,
        timeout: Duration,
        mut cond: impl FnMut(&Tally) -> bool,
    ) -> Duration {
        let start = Instant::now();
        let mut last = Tally::default();
        while start.elapsed() < timeout {
            last = self.tally(addr, batch);
            if cond(&last) {
                return start.elapsed();
            }
        }
        self.fail(&format!(
            "timed out after {timeout:?} waiting for {what}; last batch: {last:?}"
        ))
    }

    fn mac(&self, n: usize) -> String {
        self.lvs.node(n).mac().expect("MAC")
    }

    fn owns(&self, d: usize, vip: IpAddr) -> bool {
        self.lvs.node(d).has_addr(vip).unwrap_or(false)
    }

    fn wait_owner(&self, d: usize, vip: IpAddr, timeout: Duration) {
        if let Err(e) = wait_for(&format!("director {d} to own {vip}"), timeout, || {
            Ok(self.owns(d, vip))
        }) {
            self.fail(&format!("{e:#}"));
        }
    }
}

fn sock(ip: impl Into<IpAddr>) -> SocketAddr {
    SocketAddr::new(ip.into(), HTTP_PORT)
}

/// The three real servers, weight 1.
const THREE: [(usize, u32); 3] = [(3, 1), (4, 1), (5, 1)];

fn names(nodes: &[usize]) -> Vec<String> {
    nodes.iter().map(|&n| server_name(n)).collect()
}

/// One director (node 1), master of VI_1 (VIP1), with `services`.
fn one_director(s: &mut Scene, services: &str) {
    let conf = instance("VI_1", 51, 150, VIP1.into()) + services;
    s.start(1, &conf);
    s.wait_owner(1, VIP1.into(), SERVICE_READY);
}

/// The lab the other tests stand on, with no agent: the XDP_PASS program on the directors'
/// bridge ports is what makes XDP_TX on a director's veth reach the LAN (without it the frames
/// are dropped), the real servers answer on their own addresses and, sent to their MAC, for
/// the VIP on their `lo` (what DR does), and nobody answers ARP for that VIP.
#[test]
fn lab_xdp_tx_needs_xdp_on_the_bridge_port_and_vips_stay_silent_on_real_servers() {
    let mut lvs = LvsLab::new("lvslab", EBPF_OBJECT).expect("LVS lab");
    let d1 = lvs.node(1).clone();
    for n in REALS.into_iter().chain([SORRY]) {
        let (status, body) = lvs::http_get(lvs.client(), sock(lvs.node(n).ipv4), "/", None)
            .unwrap_or_else(|e| panic!("{} on its address: {e:#}", server_name(n)));
        assert_eq!((status, body.trim()), (200, server_name(n).as_str()));
    }
    let probe = lvs.lab.arp_probe(VIP1, 5).unwrap();
    assert!(
        probe.macs.is_empty(),
        "real servers (arp_ignore=1) answered ARP for the VIP on their lo: {:?}",
        probe.macs
    );

    // What DR does, by hand: the client sends to the VIP at rs3's MAC; rs3 answers from the
    // VIP on its lo, and the per-MAC counter at rs3 sees the frames.
    let client_mac = lvs.client().mac().unwrap();
    lvs.count_from(3, &client_mac, VIP1.into()).unwrap();
    let rs3_mac = lvs.node(3).mac().unwrap();
    let neigh = |mac: &str| {
        let vip = VIP1.to_string();
        let args = [
            "neigh",
            "replace",
            &vip,
            "lladdr",
            mac,
            "dev",
            IFACE,
            "nud",
            "permanent",
        ];
        lvs.client().run("ip", &args).unwrap();
    };
    neigh(&rs3_mac);
    let t = lvs::tally(lvs.client(), sock(VIP1), 5, None).unwrap();
    assert_eq!(t.from("rs3"), 5, "rs3 answers for the VIP on its lo: {t:?}");
    let counted = lvs.forwarded_from(3, &client_mac, VIP1.into()).unwrap();
    assert!(
        counted >= 15,
        "rs3 counted {counted} frames to the VIP from the client's MAC"
    );
    lvs.client()
        .run("ip", &["neigh", "del", &VIP1.to_string(), "dev", IFACE])
        .unwrap();

    // xdp_bounce (swap MACs, XDP_TX) on director 1: the client's frames to it come back to the
    // client through the bridge. The client knows director 1's MAC statically (the bounce
    // would return its ARP requests too).
    let _bounce = ha_tests::in_netns(&d1.ns, || {
        let mut ebpf = aya::Ebpf::load(EBPF_OBJECT)?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut("xdp_bounce")
            .expect("xdp_bounce in the object")
            .try_into()?;
        prog.load()?;
        prog.attach(IFACE, aya::programs::XdpMode::Driver)?;
        Ok(ebpf)
    })
    .expect("attaching xdp_bounce to director 1");
    let client = lvs.client().clone();
    client
        .run(
            "ip",
            &[
                "neigh",
                "replace",
                &d1.ipv4.to_string(),
                "lladdr",
                &d1.mac().unwrap(),
                "dev",
                IFACE,
                "nud",
                "permanent",
            ],
        )
        .unwrap();
    const FRAMES: u64 = 200;
    let bounced = || -> u64 {
        let before = lvs::rx_packets(&client.ns, IFACE).unwrap();
        let target = SocketAddr::new(d1.ipv4.into(), 9);
        ha_tests::in_netns(&client.ns, move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
            for _ in 0..FRAMES {
                socket.send_to(b"bounce", target)?;
            }
            Ok(())
        })
        .unwrap();
        // The frames come back within milliseconds; wait for them, bounded.
        let _ = wait_for("bounced frames", Duration::from_secs(2), || {
            Ok(lvs::rx_packets(&client.ns, IFACE)? - before >= FRAMES)
        });
        lvs::rx_packets(&client.ns, IFACE).unwrap() - before
    };
    let with = bounced();
    lvs.bridge_port_xdp(1, false).unwrap();
    let without = bounced();
    assert!(
        with >= FRAMES,
        "with XDP on the bridge port, {with} of {FRAMES} XDP_TX frames came back"
    );
    assert!(
        without < FRAMES / 10,
        "without XDP on the bridge port {without} of {FRAMES} XDP_TX frames came back: the lab's \
         bridge-port program and its comment are stale"
    );
}

/// `lab_tun_decap`, the stand-in for the ipip device this kernel lacks (`ip link add t type
/// ipip`: "Unknown device type"): an IPIP packet to a real server, carrying a UDP datagram to
/// the VIP, is answered by that real server's echo service as a TUN real server would; and
/// the same over IPv6 (IP6IP6).
#[test]
fn lab_tun_decap_delivers_ipip_to_the_vip_on_lo() {
    let mut lvs = LvsLab::new("lvstun", EBPF_OBJECT).expect("LVS lab");
    // Without it, the kernel has nothing that takes IPIP or IP6IP6: no answer.
    assert!(
        ipip_udp(&lvs, 3, b"before").is_err(),
        "IPIP answered without lab_tun_decap"
    );
    assert!(
        ip6ip6_udp(&lvs, 3, b"before").is_err(),
        "IP6IP6 answered without lab_tun_decap"
    );
    lvs.attach_tun_decap().expect("attaching lab_tun_decap");
    for n in REALS {
        let answer = ipip_udp(&lvs, n, b"hello").unwrap_or_else(|e| {
            panic!(
                "{} did not answer an IPIP datagram to the VIP: {e:#}",
                server_name(n)
            )
        });
        assert_eq!(answer, format!("{} hello", server_name(n)));
    }
    let answer = ip6ip6_udp(&lvs, 3, b"hello6")
        .unwrap_or_else(|e| panic!("rs3 did not answer an IP6IP6 datagram to the VIP: {e:#}"));
    assert_eq!(answer, "rs3 hello6");
}

/// As [`ipip_udp`] over IPv6: an IP6IP6 packet (raw socket of protocol 41) to real server `n`
/// carrying a UDP datagram from the client to VIP6:UDP_PORT; returns the echo.
fn ip6ip6_udp(lvs: &LvsLab, n: usize, payload: &[u8]) -> anyhow::Result<String> {
    let client = lvs.client().clone();
    let (src, outer_dst) = (client.ipv6, lvs.node(n).ipv6);
    let payload = payload.to_vec();
    ha_tests::in_netns(&client.ns, move || {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let reply = std::net::UdpSocket::bind("[::]:0")?;
        reply.set_read_timeout(Some(Duration::from_secs(3)))?;
        let sport = reply.local_addr()?.port();
        let udp_len = (8 + payload.len()) as u16;
        let mut inner = vec![0x60, 0, 0, 0];
        inner.extend_from_slice(&udp_len.to_be_bytes());
        inner.extend_from_slice(&[17, 64]);
        inner.extend_from_slice(&src.octets());
        inner.extend_from_slice(&VIP6.octets());
        let mut udp = Vec::new();
        udp.extend_from_slice(&sport.to_be_bytes());
        udp.extend_from_slice(&UDP_PORT.to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&payload);
        // The UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1), mandatory over IPv6.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&VIP6.octets());
        pseudo.extend_from_slice(&u32::from(udp_len).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        pseudo.extend_from_slice(&udp);
        udp[6..8].copy_from_slice(&internet_checksum(&pseudo).to_be_bytes());
        inner.extend_from_slice(&udp);
        // SAFETY: socket(2) with constant arguments; owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_IPV6) };
        anyhow::ensure!(
            fd >= 0,
            "raw IP6IP6 socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor nobody else owns.
        let raw = unsafe { OwnedFd::from_raw_fd(fd) };
        let to = libc::sockaddr_in6 {
            sin6_family: libc::AF_INET6 as libc::sa_family_t,
            sin6_port: 0,
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr {
                s6_addr: outer_dst.octets(),
            },
            sin6_scope_id: 0,
        };
        // SAFETY: inner and to live across the call; the lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                raw.as_raw_fd(),
                inner.as_ptr().cast(),
                inner.len(),
                0,
                (&raw const to).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        anyhow::ensure!(sent >= 0, "sendto: {}", std::io::Error::last_os_error());
        let mut buf = [0u8; 2048];
        let (len, _) = reply.recv_from(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
    })
}

/// Sends from the client, with a raw IPIP socket, an IPv4 packet to real server `n` carrying a
/// UDP datagram from the client to VIP1:UDP_PORT; returns the echo.
fn ipip_udp(lvs: &LvsLab, n: usize, payload: &[u8]) -> anyhow::Result<String> {
    let client = lvs.client().clone();
    let (src, outer_dst) = (client.ipv4, lvs.node(n).ipv4);
    let payload = payload.to_vec();
    ha_tests::in_netns(&client.ns, move || {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let reply = std::net::UdpSocket::bind("0.0.0.0:0")?;
        reply.set_read_timeout(Some(Duration::from_secs(3)))?;
        let sport = reply.local_addr()?.port();
        let inner = ipv4_udp(src, VIP1, sport, UDP_PORT, &payload);
        // SAFETY: socket(2) with constant arguments; owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_IPIP) };
        anyhow::ensure!(
            fd >= 0,
            "raw IPIP socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor nobody else owns.
        let raw = unsafe { OwnedFd::from_raw_fd(fd) };
        let to = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(outer_dst.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: inner and to live across the call; the lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                raw.as_raw_fd(),
                inner.as_ptr().cast(),
                inner.len(),
                0,
                (&raw const to).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        anyhow::ensure!(sent >= 0, "sendto: {}", std::io::Error::last_os_error());
        let mut buf = [0u8; 2048];
        let (len, _) = reply.recv_from(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
    })
}

/// An IPv4 header and a UDP datagram (UDP checksum 0: none, allowed over IPv4).
fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = internet_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Every config the tests below give the agent is one keepalived itself accepts
/// (`keepalived -t`): the tests speak the user's language, not a dialect.
#[test]
fn lab_configs_are_valid_keepalived_configs() {
    let lvs = LvsLab::new("lvsconf", EBPF_OBJECT).expect("LVS lab");
    let v4 = VIP1.into();
    let confs = [
        instance("VI_1", 51, 150, v4) + &virtual_server(&lvs, v4, "rr", "DR", "", &THREE),
        instance("VI_1", 51, 150, v4) + &virtual_server(&lvs, v4, "rr", "TUN", "", &THREE),
        instance("VI_1", 51, 150, v4) + &wrr_service(&lvs),
        instance("VI_1", 51, 150, v4) + &virtual_server(&lvs, v4, "sh", "DR", "", &THREE),
        instance("VI_1", 51, 150, v4) + &persistent_service(&lvs),
        instance("VI_1", 51, 150, v4) + &sorry_service(&lvs, 1),
        instance("VI_1", 51, 150, v4)
            + &quorum_service(&lvs, false, &lvs.lab.dir.join("quorum-down")),
        instance("VI_1", 51, 150, v4) + &quorum_service(&lvs, true, std::path::Path::new("/x")),
        dual_master(&lvs, 1),
        instance("VI_6", 61, 150, VIP6.into())
            + &virtual_server(&lvs, VIP6.into(), "rr", "DR", "", &THREE),
    ];
    for (i, conf) in confs.iter().enumerate() {
        let path = lvs
            .lab
            .write_file(&format!("check-{i}.conf"), conf)
            .unwrap();
        let out = lvs
            .node(1)
            .command("keepalived")
            .args(["-t", "-f"])
            .arg(&path)
            .output()
            .expect("keepalived -t");
        assert!(
            out.status.success(),
            "keepalived -t refused config {i}:\n{conf}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Asserts that `t` has no failure and each of `nodes` at least `min` answers, nobody else.
fn assert_spread(s: &Scene, t: &Tally, nodes: &[usize], min: usize) {
    let expected = names(nodes);
    if t.failed != 0
        || t.by_server.keys().any(|k| !expected.contains(k))
        || expected.iter().any(|n| t.from(n) < min)
    {
        s.fail(&format!(
            "expected answers from {expected:?}, each at least {min}, and no failure: {t:?}"
        ));
    }
}

/// `rr` over 300 new connections: each flow is hashed onto the service's table, where the three
/// servers hold a third each, so a server's count is binomial(300, 1/3): mean 100, σ 8.2; at
/// least 60 (4.9σ below) fails by chance with p < 1e-6.
fn rr_spreads(s: &Scene, addr: SocketAddr) {
    let t = s.tally(addr, 300);
    assert_spread(s, &t, &REALS, 60);
}

#[test]
fn dr_rr_forwards_to_three_real_servers() {
    let mut s = Scene::new("lvsdr");
    let svc = virtual_server(&s.lvs, VIP1.into(), "rr", "DR", "", &THREE);
    one_director(&mut s, &svc);
    s.wait_served(sock(VIP1), &["rs3", "rs4", "rs5"], SERVICE_READY);
    rr_spreads(&s, sock(VIP1));
}

#[test]
fn tun_rr_forwards_to_three_real_servers() {
    let mut s = Scene::new("lvstunrr");
    s.lvs
        .attach_tun_decap()
        .expect("lab_tun_decap on the real servers");
    let svc = virtual_server(&s.lvs, VIP1.into(), "rr", "TUN", "", &THREE);
    one_director(&mut s, &svc);
    s.wait_served(sock(VIP1), &["rs3", "rs4", "rs5"], SERVICE_READY);
    rr_spreads(&s, sock(VIP1));
}

/// Weights 1:2:3.
fn wrr_service(lvs: &LvsLab) -> String {
    virtual_server(lvs, VIP1.into(), "wrr", "DR", "", &[(3, 1), (4, 2), (5, 3)])
}

/// `wrr` 1:2:3: every server's share within 10 % of its weight's (1/6, 1/3, 1/2).
///
/// Why 10,000 connections and not 3,000: each new flow lands on a server with the probability
/// of its share of the Maglev table, so a count is binomial. With 3,000 flows the weight-1
/// server's count (mean 500, σ 20.4) leaves ±50 with p ≈ 1.4 %: a flaky test. With 10,000:
/// mean 1,667, σ 37.3, ±10 % = ±167 = 4.5σ (the table itself may be ~1 % off the weights,
/// which still leaves ≥ 4σ): p < 6e-5; the weight-2 and weight-3 servers are 6.7σ and 10σ
/// away. So the test fails by chance with p < 1e-4.
#[test]
fn wrr_shares_follow_the_weights() {
    let mut s = Scene::new("lvswrr");
    let svc = wrr_service(&s.lvs);
    one_director(&mut s, &svc);
    s.wait_served(sock(VIP1), &["rs3", "rs4", "rs5"], SERVICE_READY);
    const N: usize = 10_000;
    let t = s.tally(sock(VIP1), N);
    if t.failed != 0 {
        s.fail(&format!("failed connections: {t:?}"));
    }
    for (n, weight) in [(3, 1.0), (4, 2.0), (5, 3.0)] {
        let expected = N as f64 * weight / 6.0;
        let got = t.from(&server_name(n)) as f64;
        assert!(
            (got - expected).abs() <= 0.1 * expected,
            "{} (weight {weight}) got {got} of {N}, expected {expected:.0} ± 10 %: {t:?}",
            server_name(n)
        );
    }
}

/// Client addresses for the stickiness tests: the client's own and three more on its eth0.
fn client_addrs(s: &Scene) -> Vec<IpAddr> {
    let client = s.client();
    let mut addrs = vec![IpAddr::V4(client.ipv4)];
    for i in 101..=103u8 {
        let a = Ipv4Addr::new(192, 0, 2, i);
        client
            .run("ip", &["addr", "add", &format!("{a}/24"), "dev", IFACE])
            .expect("client address");
        addrs.push(a.into());
    }
    addrs
}

/// Each client address's 30 new connections all reach one server.
fn assert_sticky(s: &Scene, addrs: &[IpAddr]) {
    for &a in addrs {
        let t = lvs::tally(s.client(), sock(VIP1), 30, Some(a))
            .unwrap_or_else(|e| s.fail(&format!("from {a}: {e:#}")));
        if t.failed != 0 || t.by_server.len() != 1 {
            s.fail(&format!("client {a} did not stay on one server: {t:?}"));
        }
    }
}

#[test]
fn sh_keeps_a_client_on_one_server() {
    let mut s = Scene::new("lvssh");
    let svc = virtual_server(&s.lvs, VIP1.into(), "sh", "DR", "", &THREE);
    one_director(&mut s, &svc);
    s.wait_served(sock(VIP1), &["rs3", "rs4", "rs5"], SERVICE_READY);
    let addrs = client_addrs(&s);
    assert_sticky(&s, &addrs);
}

/// `rr` with `persistence_timeout`.
fn persistent_service(lvs: &LvsLab) -> String {
    virtual_server(
        lvs,
        VIP1.into(),
        "rr",
        "DR",
        "    persistence_timeout 60\n",
        &THREE,
    )
}

#[test]
fn persistence_timeout_keeps_a_client_on_one_server() {
    let mut s = Scene::new("lvspers");
    let svc = persistent_service(&s.lvs);
    one_director(&mut s, &svc);
    s.wait_served(sock(VIP1), &["rs3", "rs4", "rs5"], SERVICE_READY);
    let addrs = client_addrs(&s);
    assert_sticky(&s, &addrs);
}

/// The bound on a check's reaction: `delay_loop` + `retry` × (`delay_before_retry` +
/// `connect_timeout`), plus a generous 5 s for a loaded machine and the batch's own time.
fn check_bound() -> Duration {
    Duration::from_secs(DELAY_LOOP + RETRY * (DELAY_BEFORE_RETRY + CONNECT_TIMEOUT) + 5)
}

#[test]
fn failed_http_check_removes_the_real_server_and_it_comes_back() {
    let mut s = Scene::new("lvscheck");
    let svc = virtual_server(&s.lvs, VIP1.into(), "rr", "DR", "", &THREE);
    one_director(&mut s, &svc);
    s.wait_tally("all three serving", sock(VIP1), 60, SERVICE_READY, |t| {
        t.by_server.len() == 3
    });
    s.lvs.set_health(4, false).unwrap();
    // A batch of 60 misses a server holding a third of the table with p = (2/3)^60 ≈ 3e-11.
    let left = s.wait_tally("rs4 to leave", sock(VIP1), 60, check_bound(), |t| {
        t.failed == 0 && t.from("rs4") == 0 && t.answered() == 60
    });
    let t = s.tally(sock(VIP1), 300);
    assert_spread(&s, &t, &[3, 5], 100);
    s.lvs.set_health(4, true).unwrap();
    let back = s.wait_tally("rs4 to come back", sock(VIP1), 60, check_bound(), |t| {
        t.from("rs4") > 0
    });
    rr_spreads(&s, sock(VIP1));
    eprintln!("rs4 left in {left:?} (batches included), came back in {back:?}");
}

/// Three real servers and `sorry_server` (node 6), quorum `quorum`.
fn sorry_service(lvs: &LvsLab, quorum: u32) -> String {
    let extra = format!(
        "    sorry_server {} {HTTP_PORT}\n    quorum {quorum}\n",
        lvs.node(SORRY).ipv4
    );
    virtual_server(lvs, VIP1.into(), "rr", "DR", &extra, &THREE)
}

#[test]
fn sorry_server_takes_over_when_all_are_down() {
    let mut s = Scene::new("lvssorry");
    let svc = sorry_service(&s.lvs, 1);
    one_director(&mut s, &svc);
    s.wait_tally("all three serving", sock(VIP1), 60, SERVICE_READY, |t| {
        t.by_server.len() == 3
    });
    for n in REALS {
        s.lvs.set_health(n, false).unwrap();
    }
    s.wait_tally(
        "the sorry server alone",
        sock(VIP1),
        30,
        check_bound(),
        |t| t.from("sorry") == 30,
    );
    s.lvs.set_health(5, true).unwrap();
    s.wait_tally(
        "rs5 back instead of the sorry server",
        sock(VIP1),
        30,
        check_bound(),
        |t| t.from("rs5") == 30,
    );
}

/// Three real servers, `quorum 2`, with the sorry server, or else a `quorum_down` script that
/// creates `quorum_file` (and the `global_defs` scripts need).
fn quorum_service(lvs: &LvsLab, sorry: bool, quorum_file: &std::path::Path) -> String {
    let mut extra = "    quorum 2\n".to_owned();
    if sorry {
        extra += &format!("    sorry_server {} {HTTP_PORT}\n", lvs.node(SORRY).ipv4);
    } else {
        extra += &format!(
            "    quorum_down \"/usr/bin/touch {}\"\n",
            quorum_file.display()
        );
    }
    // keepalived -t refuses scripts without script security ("SECURITY VIOLATION").
    let globals = if sorry {
        ""
    } else {
        "global_defs {\n    script_user root\n    enable_script_security\n}\n"
    };
    globals.to_owned() + &virtual_server(lvs, VIP1.into(), "rr", "DR", &extra, &THREE)
}

/// `quorum 2` of three weight-1 servers: with one down the other two serve; with two down
/// (weight 1 < 2) the sorry server takes every new connection (keepalived removes the
/// remaining servers then); back at quorum, the servers again.
#[test]
fn below_quorum_the_sorry_server_serves() {
    let mut s = Scene::new("lvsquorum");
    let svc = quorum_service(&s.lvs, true, std::path::Path::new("/nonexistent"));
    one_director(&mut s, &svc);
    s.wait_tally("all three serving", sock(VIP1), 60, SERVICE_READY, |t| {
        t.by_server.len() == 3
    });
    s.lvs.set_health(3, false).unwrap();
    s.wait_tally("rs4 and rs5 only", sock(VIP1), 60, check_bound(), |t| {
        t.failed == 0
            && t.from("rs4") > 0
            && t.from("rs5") > 0
            && t.answered() == t.from("rs4") + t.from("rs5")
    });
    s.lvs.set_health(4, false).unwrap();
    s.wait_tally(
        "the sorry server alone",
        sock(VIP1),
        30,
        check_bound(),
        |t| t.from("sorry") == 30,
    );
    s.lvs.set_health(3, true).unwrap();
    s.wait_tally("rs3 and rs5 again", sock(VIP1), 60, check_bound(), |t| {
        t.failed == 0 && t.from("sorry") == 0 && t.from("rs3") > 0 && t.from("rs5") > 0
    });
}

/// Below quorum with no sorry server, keepalived only runs `quorum_down` (ipwrapper.c
/// `update_quorum_state`: it removes the remaining servers only to put the sorry server in):
/// the server still up keeps serving. With every server down nothing is forwarded: the
/// director's own stack answers (no listener on port 80: refused), no real server is reached.
#[test]
fn below_quorum_without_sorry_server_quorum_down_runs_and_the_rest_serve() {
    let mut s = Scene::new("lvsquorum0");
    let quorum_file = s.lvs.lab.dir.join("quorum-down");
    let svc = quorum_service(&s.lvs, false, &quorum_file);
    one_director(&mut s, &svc);
    s.wait_tally("all three serving", sock(VIP1), 60, SERVICE_READY, |t| {
        t.by_server.len() == 3
    });
    assert!(!quorum_file.exists(), "quorum_down ran with the quorum up");
    s.lvs.set_health(3, false).unwrap();
    s.lvs.set_health(4, false).unwrap();
    s.wait_tally("rs5 alone", sock(VIP1), 30, check_bound(), |t| {
        t.from("rs5") == 30
    });
    if let Err(e) = wait_for("quorum_down", check_bound(), || Ok(quorum_file.exists())) {
        s.fail(&format!("{e:#}"));
    }
    s.lvs.set_health(5, false).unwrap();
    s.wait_tally("no server answering", sock(VIP1), 30, check_bound(), |t| {
        t.answered() == 0 && t.failed == 30
    });
}

/// Both directors with VI_1 (VIP1), director 1 master (150), and the three real servers.
fn pair_conf(lvs: &LvsLab, d: usize) -> String {
    let priority = if d == 1 { 150 } else { 100 };
    instance("VI_1", 51, priority, VIP1.into())
        + &virtual_server(lvs, VIP1.into(), "rr", "DR", "", &THREE)
}

/// A streaming download through the master director goes on, with no reset, after that
/// director's agent is killed with SIGKILL: the backup takes the VIP over, builds the same
/// table from the same configuration and health, and sends the flow to the server it was on
/// (another server would reset it). New connections are served too.
#[test]
fn a_streaming_download_survives_sigkill_of_the_master_director() {
    let mut s = Scene::new("lvsfailover");
    let (c1, c2) = (pair_conf(&s.lvs, 1), pair_conf(&s.lvs, 2));
    s.start(1, &c1);
    s.wait_owner(1, VIP1.into(), SERVICE_READY);
    s.start(2, &c2);
    s.wait_served(sock(VIP1), &["rs3", "rs4", "rs5"], SERVICE_READY);
    let download = Download::start(s.client(), sock(VIP1))
        .unwrap_or_else(|e| s.fail(&format!("starting the download: {e:#}")));
    let server = download
        .wait_started(Duration::from_secs(5))
        .unwrap_or_else(|e| s.fail(&format!("{e:#}")));
    let killed = Instant::now();
    s.agents[&1].signal(libc::SIGKILL).unwrap();
    s.wait_owner(2, VIP1.into(), Duration::from_secs(10));
    let takeover = killed.elapsed();
    let report = download.finish();
    if !report.completed || report.error.is_some() || report.server != server {
        s.fail(&format!(
            "the download through the VIP broke when the master died (takeover after \
             {takeover:?}): {report:?}"
        ));
    }
    eprintln!(
        "takeover {takeover:?}; the download's longest stall {:?} ({} bytes from {server})",
        report.longest_stall, report.bytes
    );
    rr_spreads(&s, sock(VIP1));
}

/// The backup director forwards nothing for a VIP it does not own, even when packets for the
/// VIP reach it (here the client is told the backup's MAC for the VIP): no real server sees a
/// packet to the VIP from the backup's MAC, and the client gets no answer. The same counters see
/// the master's packets, so they do count.
#[test]
fn the_backup_director_forwards_nothing_for_a_vip_it_does_not_own() {
    let mut s = Scene::new("lvsbackup");
    let (c1, c2) = (pair_conf(&s.lvs, 1), pair_conf(&s.lvs, 2));
    s.start(1, &c1);
    s.wait_owner(1, VIP1.into(), SERVICE_READY);
    s.start(2, &c2);
    s.wait_served(sock(VIP1), &["rs3", "rs4", "rs5"], SERVICE_READY);
    let (m1, m2) = (s.mac(1), s.mac(2));
    for n in REALS {
        s.lvs.count_from(n, &m1, VIP1.into()).unwrap();
        s.lvs.count_from(n, &m2, VIP1.into()).unwrap();
    }
    rr_spreads(&s, sock(VIP1));
    let from = |mac: &str| -> u64 {
        REALS
            .iter()
            .map(|&n| s.lvs.forwarded_from(n, mac, VIP1.into()).unwrap())
            .sum()
    };
    assert!(from(&m1) >= 300, "the master's forwarding is counted");
    s.client()
        .run(
            "ip",
            &[
                "neigh",
                "replace",
                &VIP1.to_string(),
                "lladdr",
                &m2,
                "dev",
                IFACE,
                "nud",
                "permanent",
            ],
        )
        .unwrap();
    let t = s.tally(sock(VIP1), 3);
    assert_eq!(
        t.answered(),
        0,
        "the backup's path to the VIP answered: {t:?}"
    );
    assert_eq!(
        from(&m2),
        0,
        "the backup forwarded packets for a VIP it does not own"
    );
    assert!(!s.owns(2, VIP1.into()), "director 2 took the VIP meanwhile");
}

/// Dual-master: director 1 master of VIP1 (VI_1), director 2 of VIP2 (VI_2), both with both
/// services.
fn dual_master(lvs: &LvsLab, d: usize) -> String {
    let (p1, p2) = if d == 1 { (150, 100) } else { (100, 150) };
    instance("VI_1", 51, p1, VIP1.into())
        + &instance("VI_2", 52, p2, VIP2.into())
        + &virtual_server(lvs, VIP1.into(), "rr", "DR", "", &THREE)
        + &virtual_server(lvs, VIP2.into(), "rr", "DR", "", &THREE)
}

/// Each director forwards for the VIP it is master of, and only that one: at the real servers,
/// VIP1's packets come from director 1's MAC and VIP2's from director 2's.
#[test]
fn dual_master_directors_each_serve_their_vip() {
    let mut s = Scene::new("lvsdual");
    let (c1, c2) = (dual_master(&s.lvs, 1), dual_master(&s.lvs, 2));
    s.start(1, &c1);
    s.start(2, &c2);
    s.wait_owner(1, VIP1.into(), SERVICE_READY);
    s.wait_owner(2, VIP2.into(), SERVICE_READY);
    let (m1, m2) = (s.mac(1), s.mac(2));
    for n in REALS {
        for vip in [VIP1, VIP2] {
            s.lvs.count_from(n, &m1, vip.into()).unwrap();
            s.lvs.count_from(n, &m2, vip.into()).unwrap();
        }
    }
    for vip in [VIP1, VIP2] {
        s.wait_served(sock(vip), &["rs3", "rs4", "rs5"], SERVICE_READY);
        rr_spreads(&s, sock(vip));
    }
    let count = |mac: &str, vip: Ipv4Addr| -> u64 {
        REALS
            .iter()
            .map(|&n| s.lvs.forwarded_from(n, mac, vip.into()).unwrap())
            .sum()
    };
    assert!(count(&m1, VIP1) >= 300, "director 1 forwards VIP1");
    assert!(count(&m2, VIP2) >= 300, "director 2 forwards VIP2");
    assert_eq!(
        count(&m2, VIP1),
        0,
        "director 2 forwarded VIP1, which it does not own"
    );
    assert_eq!(
        count(&m1, VIP2),
        0,
        "director 1 forwarded VIP2, which it does not own"
    );
}

#[test]
fn ipv6_dr_forwards_to_three_real_servers() {
    let mut s = Scene::new("lvsdr6");
    let conf = instance("VI_6", 61, 150, VIP6.into())
        + &virtual_server(&s.lvs, VIP6.into(), "rr", "DR", "", &THREE);
    s.start(1, &conf);
    s.wait_owner(1, VIP6.into(), SERVICE_READY);
    s.wait_served(sock(VIP6), &["rs3", "rs4", "rs5"], SERVICE_READY);
    rr_spreads(&s, sock(VIP6));
}

/// The `lvs` bench's measurement, without the balancer: live frames (`BPF_PROG_TEST_RUN` with
/// `BPF_F_TEST_XDP_LIVE_FRAMES`) bounced by `xdp_bounce` on director 1 leave it for the LAN,
/// and passed to its stack with `ip_forward` on reach real server 3 (`lab_live_reset` restores
/// each recycled frame's headers, which the forwarding rewrote).
#[test]
fn lab_live_frames_bounce_and_kernel_forwarding() {
    let lvs = LvsLab::new("lvspps", EBPF_OBJECT).expect("LVS lab");
    let bounce = lvs::bench::bounce(&lvs).expect("bounce");
    let sent = u64::from(lvs::bench::REPEAT);
    assert!(
        bounce.transmitted >= sent / 2,
        "the director transmitted {} of {sent} bounced frames: {bounce:?}",
        bounce.transmitted
    );
    let forward = lvs::bench::kernel_forwarding(&lvs).expect("kernel forwarding");
    assert!(
        forward.received.unwrap_or(0) >= sent / 2,
        "real server 3 received {:?} of {sent} forwarded frames: {forward:?}",
        forward.received
    );
    eprintln!(
        "xdp_bounce {:.2} Mpps ({} on the wire), kernel forwarding {:.2} Mpps ({:?} received)",
        bounce.run.mpps(),
        bounce.transmitted,
        forward.run.mpps(),
        forward.received
    );
}

//! `vip_fence_ingress`/`vip_fence_egress` drop traffic to a VIP placed in their map, and stop
//! dropping once it is removed: seen from a client pinging the VIP every millisecond and asking
//! for it by ARP. A backup, whose VIPs are all fenced, is still a client of the VIP (ping, TCP),
//! and a killed master's VIP answers nothing. A quiet VIP (planned handover) answers IP but
//! never ARP/ND.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    time::Duration,
};

use aya::programs::XdpMode;
use ha_agent::datapath::xdp::XdpDatapath;
use ha_tests::{
    Capture, IFACE, Lab, Node, epoch_now, ha_agent_bin, in_netns, v3_instance, wait_for,
};

const WINDOW: Duration = Duration::from_millis(600);
/// Slack at each window edge for replies in flight.
const EDGE: f64 = 0.05;

#[test]
fn fence_drops_vip_traffic_while_fenced() {
    let lab = Lab::new("fence", 1).expect("building the lab");
    let n1 = lab.node(1).clone();
    let vip4: IpAddr = "192.0.2.200".parse().unwrap();
    let vip6: IpAddr = "2001:db8::200".parse().unwrap();
    n1.run("ip", &["addr", "add", "192.0.2.200/32", "dev", IFACE])
        .unwrap();
    n1.run(
        "ip",
        &[
            "-6",
            "addr",
            "add",
            "2001:db8::200/128",
            "dev",
            IFACE,
            "nodad",
        ],
    )
    .unwrap();
    let mut datapath = in_netns(&n1.ns, || Ok(XdpDatapath::attach(IFACE, XdpMode::Driver)?))
        .expect("attaching vrrp_rx and vip_fence in node 1 (needs root and BPF)");

    let IpAddr::V4(vip4_v4) = vip4 else {
        unreachable!()
    };
    assert_eq!(
        lab.arp_probe(vip4_v4, 2).unwrap().macs.len(),
        1,
        "the VIP answers ARP before the fence"
    );

    let probe4 = lab.prober(vip4).unwrap();
    let probe6 = lab.prober(vip6).unwrap();
    std::thread::sleep(WINDOW);
    let fenced_at = epoch_now();
    datapath.fence(vip4).unwrap();
    datapath.fence(vip6).unwrap();
    assert!(datapath.is_fenced(vip4).unwrap());
    std::thread::sleep(WINDOW);
    let arp_while_fenced = lab.arp_probe(vip4_v4, 2).unwrap();
    let unfenced_at = epoch_now();
    datapath.unfence(vip4).unwrap();
    datapath.unfence(vip6).unwrap();
    assert!(!datapath.is_fenced(vip4).unwrap());
    std::thread::sleep(WINDOW);
    let (r4, r6) = (probe4.stop().unwrap(), probe6.stop().unwrap());

    for (family, r) in [("IPv4", &r4), ("IPv6", &r6)] {
        let before = r.replies_between(0.0, fenced_at);
        let during = r.replies_between(fenced_at + EDGE, unfenced_at - EDGE);
        let after = r.replies_after(unfenced_at + EDGE);
        eprintln!(
            "{family}: replies before {before}, fenced {during}, after {after}; gap {:?}",
            r.longest_gap()
        );
        assert!(
            before > 50,
            "{family}: the VIP must answer before the fence ({before} replies)"
        );
        assert_eq!(during, 0, "{family}: the VIP answered while fenced");
        assert!(
            after > 50,
            "{family}: the VIP must answer again once unfenced ({after} replies)"
        );
    }
    assert!(
        arp_while_fenced.macs.is_empty(),
        "ARP answered for a fenced VIP: {arp_while_fenced:?}"
    );
    assert_eq!(
        lab.arp_probe(vip4_v4, 2).unwrap().macs.len(),
        1,
        "the VIP answers ARP after the fence"
    );
    assert!(datapath.fence_drops().unwrap() > 0);
}

/// Quiet, a planned handover's state: the node neither answers ARP/ND for the VIP nor announces
/// it (the client captures no ARP reply, no gratuitous ARP and no NA for it, and cannot resolve
/// it), while ICMP echo to the VIP from a client whose cache still holds the node's MAC is
/// answered, IPv4 and IPv6. Once out of quiet the same gratuitous ARP is captured.
#[test]
fn a_quiet_vip_answers_ip_but_never_arp_or_nd() {
    let lab = Lab::new("quiet", 1).expect("building the lab");
    let (n1, client) = (lab.node(1).clone(), lab.client.clone());
    let vip6: IpAddr = VIP6.parse().unwrap();
    n1.run("ip", &["addr", "add", "192.0.2.200/32", "dev", IFACE])
        .unwrap();
    n1.run(
        "ip",
        &[
            "-6",
            "addr",
            "add",
            "2001:db8::200/128",
            "dev",
            IFACE,
            "nodad",
        ],
    )
    .unwrap();
    let mut datapath = in_netns(&n1.ns, || Ok(XdpDatapath::attach(IFACE, XdpMode::Driver)?))
        .expect("attaching vrrp_rx and vip_fence in node 1 (needs root and BPF)");
    // Both ends know each other, as a master and its clients do.
    for vip in [IpAddr::V4(VIP), vip6] {
        assert_eq!(ping_replies_to(&client, vip, 5), 5, "{vip} answers before");
    }
    let mut capture =
        Capture::start(&client, &lab.dir, "quiet", IFACE, "arp or icmp6").expect("capture");

    for vip in [IpAddr::V4(VIP), vip6] {
        datapath.set_quiet(vip, 0, false, Duration::ZERO).unwrap();
    }
    let announce = |mode: &str| {
        // Thomas Habets' arping: -U gratuitous request, -A gratuitous reply, from the VIP.
        let vip = VIP.to_string();
        let args = [mode, "-c", "3", "-W", "0.01", "-i", IFACE, "-S", &vip, &vip];
        n1.command("arping")
            .args(args)
            .output()
            .expect("running arping");
    };
    announce("-U");
    announce("-A");
    let arp = lab.arp_probe(VIP, 3).unwrap();
    assert!(arp.macs.is_empty(), "ARP answered for a quiet VIP: {arp:?}");
    client
        .run("ip", &["-6", "neigh", "flush", "to", VIP6, "dev", IFACE])
        .unwrap();
    assert_eq!(
        ping_replies_to(&client, vip6, 3),
        0,
        "{vip6} was resolved (an NA for a quiet VIP left the node)"
    );
    let mac = n1.mac().unwrap();
    for vip in [IpAddr::V4(VIP), vip6] {
        let args = [
            "neigh",
            "replace",
            &vip.to_string(),
            "lladdr",
            &mac,
            "dev",
            IFACE,
        ];
        client
            .run("ip", &[&args[..], &["nud", "permanent"]].concat())
            .unwrap();
        assert_eq!(
            ping_replies_to(&client, vip, 20),
            20,
            "a client that still has the quiet VIP's MAC is answered ({vip})"
        );
    }
    let quiet_until = epoch_now();
    datapath.unfence(VIP.into()).unwrap();
    announce("-U");
    let vip_arp = |l: &&str| {
        l.contains(&format!("tell {VIP},"))
            || l.contains(&format!("Reply {VIP} is-at"))
            || l.contains(&format!("advertisement, tgt is {VIP6},"))
    };
    wait_for(
        "the gratuitous ARP out of quiet",
        Duration::from_secs(5),
        || Ok(capture.read(&["-tt", "-n"])?.lines().any(|l| vip_arp(&l))),
    )
    .unwrap();
    capture.stop().unwrap();
    let text = capture.read(&["-tt", "-n"]).unwrap();
    let while_quiet: Vec<&str> = text
        .lines()
        .filter(vip_arp)
        .filter(|l| {
            let at: f64 = l
                .split_whitespace()
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0.0);
            at < quiet_until
        })
        .collect();
    assert!(
        while_quiet.is_empty(),
        "the quiet node spoke for its VIP: {while_quiet:#?}\ncapture:\n{text}"
    );
    assert!(datapath.fence_drops().unwrap() > 0);
}

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const VIP6: &str = "2001:db8::200";
const PORT: u16 = 7000;

/// The lab's IPv4 instance `VI_1` and an IPv6 one, `VI_6` (VRID 52, VIP [`VIP6`]).
fn dual_stack(priority: u8) -> String {
    v3_instance(priority, "0.1")
        + &format!(
            "vrrp_instance VI_6 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 52\n    \
             version 3\n    priority {priority}\n    advert_int 0.1\n    virtual_ipaddress {{\n        \
             {VIP6}/64\n    }}\n}}\n"
        )
}

/// Every instance's state on node `i` ("-" when its status cannot be read).
fn states(lab: &Lab, i: usize) -> String {
    common::node_status(lab, i).map_or_else(
        || "-".into(),
        |r| {
            let all: Vec<&str> = r.instances.iter().map(|i| i.state.as_str()).collect();
            all.join(",")
        },
    )
}

/// The state of node `i`'s first instance ("-" when its status cannot be read).
fn state(lab: &Lab, i: usize) -> String {
    common::node_status(lab, i).map_or_else(|| "-".into(), |r| r.instances[0].state.clone())
}

fn wait(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(secs), || Ok(cond())).unwrap();
}

/// Echo replies `node` got from `ping -c count` to `target` within 2 s.
fn ping_replies_to(node: &Node, target: IpAddr, count: u32) -> u32 {
    let out = node
        .command("ping")
        .args(["-n", "-c", &count.to_string(), "-i", "0.01", "-w", "2"])
        .arg(target.to_string())
        .output()
        .expect("running ping");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ping summary: {text}"))
}

/// A line sent to the echo listener on `vip` from `node` comes back.
fn tcp_echo(node: &Node, vip: IpAddr) -> Result<String, String> {
    in_netns(&node.ns, move || {
        let to = SocketAddr::from((vip, PORT));
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"hello\n")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line)
    })
    .map_err(|e| format!("{e:#}"))
}

/// The most common keepalived deployment (an API server VIP every node talks to): the backup,
/// all its VIPs fenced, pings the VIPs (IPv4 and IPv6) and talks TCP to listeners bound on them
/// at the master. The master then dies by SIGKILL with its VIPs still configured: after the
/// takeover only the new master answers ARP for the VIP, and pings sent to the killed node's
/// MAC are not answered.
#[test]
fn a_backup_is_a_client_of_the_vip_and_a_killed_master_answers_nothing() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("client", 2).expect("lab");
    let xdp = ["--datapath", "xdp"];
    let mut a1 = lab.ha_agent(1, &dual_stack(150), &xdp).unwrap();
    let a2 = lab.ha_agent(2, &dual_stack(100), &xdp).unwrap();
    wait_for(
        "node 1 master, node 2 backup",
        Duration::from_secs(10),
        || Ok(states(&lab, 1) == "MASTER,MASTER" && states(&lab, 2) == "BACKUP,BACKUP"),
    )
    .unwrap_or_else(|e| panic!("{e}; n1 log:\n{}\nn2 log:\n{}", a1.log(), a2.log()));
    let (n1, n2) = (lab.node(1).clone(), lab.node(2).clone());

    let vip6: IpAddr = VIP6.parse().unwrap();
    for vip in [IpAddr::V4(VIP), vip6] {
        let listener = in_netns(&n1.ns, move || Ok(TcpListener::bind((vip, PORT))?)).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(&conn);
                if reader.read_line(&mut line).is_ok() {
                    let _ = (&conn).write_all(line.as_bytes());
                }
            }
        });
        let replies = ping_replies_to(&n2, vip, 5);
        assert_eq!(
            replies,
            5,
            "the backup's pings to {vip} are answered; n2 log:\n{}",
            a2.log()
        );
        assert_eq!(
            tcp_echo(&n2, vip).as_deref(),
            Ok("hello\n"),
            "the backup talks TCP to {vip}"
        );
    }

    // SIGKILL: the VIP stays on node 1; nothing it would answer for the VIP gets through.
    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(Duration::from_secs(5)).unwrap();
    wait("node 2 to take over", 5, || {
        states(&lab, 2) == "MASTER,MASTER"
    });
    assert!(n1.has_addr(VIP.into()).unwrap(), "the zombie VIP is there");
    assert!(n1.has_addr(vip6).unwrap(), "the zombie IPv6 VIP is there");
    let macs: Vec<String> = lab.arp_probe(VIP, 20).unwrap().macs.into_iter().collect();
    assert_eq!(macs, vec![n2.mac().unwrap()], "only node 2 answers ARP");
    let client = &lab.client;
    for vip in [IpAddr::V4(VIP), vip6] {
        let pin = |mac: &str| {
            client
                .run(
                    "ip",
                    &[
                        "neigh",
                        "replace",
                        &vip.to_string(),
                        "lladdr",
                        mac,
                        "dev",
                        IFACE,
                        "nud",
                        "permanent",
                    ],
                )
                .unwrap();
        };
        pin(&n1.mac().unwrap());
        assert_eq!(
            ping_replies_to(client, vip, 20),
            0,
            "the killed node answered pings to {vip}"
        );
        pin(&n2.mac().unwrap());
        assert!(
            ping_replies_to(client, vip, 20) > 0,
            "the new master answers {vip}"
        );
    }
}

/// A second link, `eth1` in `node` and in `client`, a veth pair made in the root namespace under
/// names unique to this process (`tag` keeps two tests' pairs apart), then moved and renamed.
fn eth1_to_client(node: &Node, client: &Node, tag: char) {
    let (a, b) = (
        format!("{tag}{}a", std::process::id()),
        format!("{tag}{}b", std::process::id()),
    );
    let root = |args: &[&str]| {
        ha_tests::run(Command::new("ip").args(args)).unwrap();
    };
    root(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
    root(&["link", "set", &a, "netns", &node.ns, "name", "eth1"]);
    root(&["link", "set", &b, "netns", &client.ns, "name", "eth1"]);
}

/// A VIP on another `dev` than its instance's interface (`198.51.100.200 dev eth1`, eth1 a
/// second link from node 1 to the client): the fence runs on eth1 too. The master answers for
/// it there; killed with SIGKILL (the VIP left configured), its stale heartbeat fences the VIP
/// on eth1, where before only eth0's fence held it and eth1 answered.
#[test]
fn a_vip_on_another_dev_is_fenced_on_that_dev() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("vipdev", 1).expect("lab");
    let (n1, client) = (lab.node(1).clone(), lab.client.clone());
    eth1_to_client(&n1, &client, 'v');
    for (node, addr) in [(&n1, "198.51.100.1/24"), (&client, "198.51.100.100/24")] {
        node.run("ip", &["addr", "add", addr, "dev", "eth1"])
            .unwrap();
        node.run("ip", &["link", "set", "eth1", "up"]).unwrap();
    }
    let conf = v3_instance(150, "0.1").replace(
        "192.0.2.200/24\n",
        "192.0.2.200/24\n        198.51.100.200/24 dev eth1\n",
    );
    let mut a1 = lab.ha_agent(1, &conf, &["--datapath", "xdp"]).unwrap();
    let vip2: IpAddr = "198.51.100.200".parse().unwrap();
    let answers = |count: &str| {
        client
            .command("ping")
            .args(["-n", "-c", count, "-i", "0.01", "-w", "1"])
            .arg(vip2.to_string())
            .output()
            .unwrap()
            .status
            .success()
    };
    wait_for(
        "the master to answer for the VIP on eth1",
        Duration::from_secs(10),
        || Ok(state(&lab, 1) == "MASTER" && answers("1")),
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", a1.log()));
    let filters = n1
        .run("tc", &["filter", "show", "dev", "eth1", "ingress"])
        .unwrap();
    assert!(filters.contains("vip_fence_ingress"), "{filters}");

    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(Duration::from_secs(5)).unwrap();
    let eth1 = n1
        .run("ip", &["-o", "addr", "show", "dev", "eth1"])
        .unwrap();
    assert!(
        eth1.contains("198.51.100.200"),
        "the zombie VIP is on eth1: {eth1}"
    );
    wait_for(
        "the killed master's VIP on eth1 to be fenced",
        Duration::from_secs(5),
        || Ok(!answers("1")),
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", a1.log()));
    assert_eq!(
        ping_replies_to(&client, vip2, 20),
        0,
        "the fenced VIP answered on eth1"
    );
}

/// The "own address" shortcut (an address owner's VIP that is the interface's primary address
/// is never removed nor fenced) is only for a priority-255 owner: a VIP a killed run left as
/// the first address of a `dev` with no address of its own is stale, and the restarted agent
/// removes it before anything else (it kept answering for it).
#[test]
fn a_stale_vip_that_became_an_interfaces_first_address_is_removed() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("ownaddr", 1).expect("lab");
    let (n1, client) = (lab.node(1).clone(), lab.client.clone());
    eth1_to_client(&n1, &client, 'o');
    for node in [&n1, &client] {
        node.run("ip", &["link", "set", "eth1", "up"]).unwrap();
    }
    let conf = |advert_int: &str| {
        v3_instance(150, advert_int).replace(
            "192.0.2.200/24\n",
            "192.0.2.200/24\n        198.51.100.200/24 dev eth1\n",
        )
    };
    let on_eth1 = || {
        n1.run("ip", &["-o", "-4", "addr", "show", "dev", "eth1"])
            .unwrap()
            .contains("198.51.100.200")
    };
    let mut a1 = lab
        .ha_agent(1, &conf("0.1"), &["--datapath", "xdp"])
        .unwrap();
    wait_for("the VIP on eth1", Duration::from_secs(10), || Ok(on_eth1()))
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", a1.log()));
    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(Duration::from_secs(5)).unwrap();
    drop(a1);
    assert!(
        on_eth1(),
        "the killed run left its VIP, eth1's only address"
    );

    // Restarted as a backup that waits 3 s before it may become master: the stale VIP is
    // removed at start.
    let mut a1 = lab.ha_agent(1, &conf("1"), &["--datapath", "xdp"]).unwrap();
    a1.wait_for_log("ha-agent running", Duration::from_secs(10))
        .unwrap();
    assert_eq!(state(&lab, 1), "BACKUP", "{}", a1.log());
    assert!(
        !on_eth1(),
        "the stale VIP is still on eth1; log:\n{}",
        a1.log()
    );
}

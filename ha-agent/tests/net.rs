//! Privileged integration tests of `net` and `datapath::socket`: each test builds two network
//! namespaces joined by a veth pair (see `net/lab.rs`) and checks what arrives on the other side.
//! They must run as root; they fail, never skip, otherwise.

#[path = "net/lab.rs"]
mod lab;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::time::Duration;

use ha_agent::datapath::socket::{Received, VrrpSocket};
use ha_agent::net::garp::{GARP_FRAME_LEN, NA_FRAME_LEN, Pacer, Spacing};
use ha_agent::net::link::if_index;
use ha_agent::net::{
    AddOutcome, AdvertSender, DelOutcome, GarpSender, LIFETIME_FOREVER, LinkWatch, Netlink,
    Nexthop, OperState, Route, RouteKind, Rule, RuleAction, Scope, VRRP_MCAST_V4, VRRP_MCAST_V6,
    Vip, VipFlags,
};
use lab::{IF, Lab, MAC_A, join};

const A_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const A_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const B_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// fe80:: + modified EUI-64 of MAC_A (02:00:00:00:00:0a).
const A_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a);
const WAIT: Duration = Duration::from_secs(5);

/// A VRRPv3 advert for VRID 51, priority 100, one address, with a checksum that is deliberately
/// wrong: the sockets must carry the codec's bytes unchanged, whatever they are.
fn advert(tag: u8) -> Vec<u8> {
    vec![0x31, 51, 100, 1, 0x00, 0x64, 0xbe, tag, 192, 0, 2, 100]
}

async fn recv_one(socket: &VrrpSocket) -> (Received, Vec<u8>) {
    let mut buf = [0u8; 1500];
    let got = tokio::time::timeout(WAIT, socket.recv(&mut buf))
        .await
        .expect("no VRRP packet within 5 s")
        .expect("recv");
    (got, buf[..got.len].to_vec())
}

/// Opens a receive socket in `ns`, signals `ready`, and collects `count` packets.
fn receiver(
    lab: &Lab,
    ns: &str,
    v6: bool,
    count: usize,
    ready: mpsc::Sender<()>,
) -> std::thread::JoinHandle<Vec<(Received, Vec<u8>)>> {
    lab.spawn_in(ns, move || async move {
        let socket = if v6 {
            VrrpSocket::open_v6(IF, &[VRRP_MCAST_V6]).expect("open v6 receive socket")
        } else {
            VrrpSocket::open_v4(IF, &[VRRP_MCAST_V4]).expect("open v4 receive socket")
        };
        ready.send(()).unwrap();
        let mut got = Vec::new();
        for _ in 0..count {
            got.push(recv_one(&socket).await);
        }
        got
    })
}

fn check_v4(got: &(Received, Vec<u8>), src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8], ifindex: u32) {
    let (r, bytes) = got;
    assert_eq!(r.ttl, 255, "TTL must be 255 (RFC 5798 §5.1.1.3)");
    assert_eq!(bytes[8], 255, "TTL byte of the IPv4 header");
    assert_eq!(bytes[9], 112, "IPv4 protocol must be VRRP (112)");
    assert_eq!(r.src, IpAddr::V4(src));
    assert_eq!(&bytes[12..16], &src.octets(), "source in the IP header");
    assert_eq!(r.dst, IpAddr::V4(dst));
    assert_eq!(r.payload_offset, 20);
    assert_eq!(
        &bytes[r.payload_offset..],
        payload,
        "advert bytes unchanged"
    );
    assert_eq!(r.ifindex, ifindex);
}

#[test]
fn advert_v4_multicast() {
    let lab = Lab::new("v4mc");
    // A second address on A, to send from it (mcast_src_ip).
    lab.ip(&lab.a, &["addr", "add", "192.0.2.11/24", "dev", IF]);
    let b_index = lab.run_in(&lab.b, || async { if_index(IF).unwrap() });

    let (ready_tx, ready_rx) = mpsc::channel();
    let b = receiver(&lab, &lab.b, false, 2, ready_tx);
    ready_rx.recv_timeout(WAIT).expect("B ready");

    let own_copies = lab.run_in(&lab.a, || async {
        // A listens too: with IP_MULTICAST_LOOP off it must not hear itself.
        let own = VrrpSocket::open_v4(IF, &[VRRP_MCAST_V4]).unwrap();
        let primary = AdvertSender::open_v4(IF, None).expect("open sender");
        assert_eq!(primary.group(), IpAddr::V4(VRRP_MCAST_V4));
        primary.send_multicast(&advert(1)).await.expect("send");
        let chosen = AdvertSender::open_v4(IF, Some(Ipv4Addr::new(192, 0, 2, 11))).unwrap();
        chosen.send_multicast(&advert(2)).await.expect("send");
        let mut buf = [0u8; 1500];
        tokio::time::timeout(Duration::from_millis(500), own.recv(&mut buf))
            .await
            .is_ok()
    });
    let got = join(b);
    check_v4(&got[0], A_V4, VRRP_MCAST_V4, &advert(1), b_index);
    check_v4(
        &got[1],
        Ipv4Addr::new(192, 0, 2, 11),
        VRRP_MCAST_V4,
        &advert(2),
        b_index,
    );
    assert!(
        !own_copies,
        "the sender's own host received its advert: loop not off"
    );
}

#[test]
fn advert_v4_unicast_peers() {
    let lab = Lab::new("v4uc");
    let b_index = lab.run_in(&lab.b, || async { if_index(IF).unwrap() });
    let (ready_tx, ready_rx) = mpsc::channel();
    let b = receiver(&lab, &lab.b, false, 6, ready_tx);
    ready_rx.recv_timeout(WAIT).expect("B ready");

    lab.run_in(&lab.a, || async {
        let sender = AdvertSender::open_v4(IF, Some(A_V4)).unwrap();
        // unicast_peer { 192.0.2.2 }: one advert per peer.
        sender
            .send_to_peers(&advert(1), &[IpAddr::V4(B_V4)])
            .await
            .expect("send to peers");
        // Many adverts due at once: one sendmmsg.
        let (p2, p3, p4) = (advert(2), advert(3), advert(4));
        let batch: Vec<(&[u8], IpAddr)> = vec![
            (&p2, IpAddr::V4(B_V4)),
            (&p3, IpAddr::V4(B_V4)),
            (&p4, IpAddr::V4(B_V4)),
        ];
        sender.send_batch(&batch).await.expect("sendmmsg");
        // Instances share the socket: a datagram the kernel refuses (too large for an IP
        // packet: EMSGSIZE) is reported with its index and does not stop the ones after it.
        let (p5, p7) = (advert(5), advert(7));
        let huge = vec![0u8; 70_000];
        let batch: Vec<(&[u8], IpAddr)> = vec![
            (&p5, IpAddr::V4(B_V4)),
            (&huge, IpAddr::V4(B_V4)),
            (&p7, IpAddr::V4(B_V4)),
        ];
        let failed = sender.send_each(&batch).await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, 1);
        assert!(
            failed[0].1.to_string().contains("sendmmsg"),
            "{}",
            failed[0].1
        );
        // A v6 destination on a v4 socket is refused before any syscall.
        assert!(sender.send_to(&p2, IpAddr::V6(B_V6)).await.is_err());
        // Errors name the call and the interface.
        let err = AdvertSender::open_v4("nosuch0", None)
            .err()
            .expect("no such interface");
        assert!(err.to_string().contains("nosuch0"), "{err}");
        let err = AdvertSender::open_v4(IF, Some(Ipv4Addr::new(192, 0, 2, 99)))
            .err()
            .expect("binding an address the host does not have");
        assert!(
            err.to_string().contains("bind") && err.to_string().contains(IF),
            "{err}"
        );
    });
    let got = join(b);
    for (g, tag) in got.iter().zip([1, 2, 3, 4, 5, 7]) {
        check_v4(g, A_V4, B_V4, &advert(tag), b_index);
    }
}

#[test]
fn advert_v6_multicast_and_unicast() {
    let lab = Lab::new("v6");
    let b_index = lab.run_in(&lab.b, || async { if_index(IF).unwrap() });
    let (ready_tx, ready_rx) = mpsc::channel();
    let b = receiver(&lab, &lab.b, true, 2, ready_tx);
    ready_rx.recv_timeout(WAIT).expect("B ready");

    lab.run_in(&lab.a, || async {
        // The kernel default the sockets rely on: no checksum offset on a raw IPv6 socket that
        // is not ICMPv6 (RFC 3542 §3.1), so the codec's checksum goes out as computed.
        let raw = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::RAW,
            Some(socket2::Protocol::from(112)),
        )
        .unwrap();
        assert_eq!(
            ipv6_checksum_offset(&raw),
            -1,
            "IPV6_CHECKSUM default for protocol 112"
        );
        // Default source: the kernel must pick the link-local address.
        let sender = AdvertSender::open_v6(IF, None).expect("open v6 sender");
        assert_eq!(sender.group(), IpAddr::V6(VRRP_MCAST_V6));
        sender.send_multicast(&advert(1)).await.expect("send");
        let global = AdvertSender::open_v6(IF, Some(A_V6)).expect("open v6 sender from global");
        global
            .send_to(&advert(2), IpAddr::V6(B_V6))
            .await
            .expect("send");
    });
    let got = join(b);
    let (r, bytes) = &got[0];
    assert_eq!(r.ttl, 255, "hop limit must be 255 (RFC 5798 §5.1.2.3)");
    assert_eq!(r.src, IpAddr::V6(A_LL), "source must be A's link-local");
    assert_eq!(r.dst, IpAddr::V6(VRRP_MCAST_V6));
    assert_eq!(r.ifindex, b_index);
    assert_eq!(r.payload_offset, 0);
    assert_eq!(
        bytes,
        &advert(1),
        "payload (and its checksum) unchanged: no IPV6_CHECKSUM"
    );
    let (r, bytes) = &got[1];
    assert_eq!(r.ttl, 255, "unicast hop limit must be 255");
    assert_eq!(r.src, IpAddr::V6(A_V6));
    assert_eq!(r.dst, IpAddr::V6(B_V6));
    assert_eq!(bytes, &advert(2));
}

fn ipv6_checksum_offset(socket: &socket2::Socket) -> i32 {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and writable, `len` is `value`'s size.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_CHECKSUM,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(
        rc,
        0,
        "getsockopt(IPV6_CHECKSUM): {}",
        std::io::Error::last_os_error()
    );
    value
}

#[test]
fn vip_add_del_idempotent_and_routes() {
    let lab = Lab::new("vip");
    let a = lab.a.clone();
    let check = move |args: &[&str]| lab::sh(&[&["ip", "-n", a.as_str()][..], args].concat());
    lab.run_in(&lab.a, move || async move {
        let nl = Netlink::new().unwrap();
        let ifindex = if_index(IF).unwrap();
        let v4 = Vip::new("192.0.2.100".parse().unwrap()).with_label("veth0:vip");
        assert_eq!(nl.add_vip(ifindex, &v4).await.unwrap(), AddOutcome::Added);
        assert_eq!(
            nl.add_vip(ifindex, &v4).await.unwrap(),
            AddOutcome::AlreadyPresent
        );
        // Same subnet as 192.0.2.1/24: a secondary address (which the kernel only accepts with
        // the primary's scope).
        let v4b = Vip::new("192.0.2.101".parse().unwrap())
            .with_prefix_len(24)
            .with_broadcast(Ipv4Addr::new(192, 0, 2, 255));
        assert_eq!(nl.add_vip(ifindex, &v4b).await.unwrap(), AddOutcome::Added);
        // A subnet of its own, so a primary, and link scope.
        let v4c = Vip::new("192.0.2.201".parse().unwrap())
            .with_prefix_len(25)
            .with_scope(Scope::Link);
        assert_eq!(nl.add_vip(ifindex, &v4c).await.unwrap(), AddOutcome::Added);
        let v6 = Vip::new("2001:db8::100".parse().unwrap());
        assert_eq!(nl.add_vip(ifindex, &v6).await.unwrap(), AddOutcome::Added);
        assert_eq!(
            nl.add_vip(ifindex, &v6).await.unwrap(),
            AddOutcome::AlreadyPresent
        );

        let shown = check(&["-o", "addr", "show", "dev", IF]);
        let line = |needle: &str| {
            shown
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("`{needle}` not in `ip addr`:\n{shown}"))
                .to_owned()
        };
        assert!(
            line("192.0.2.100/32").contains("veth0:vip"),
            "label:\n{shown}"
        );
        let l = line("192.0.2.101/24");
        assert!(l.contains("brd 192.0.2.255"), "{l}");
        assert!(l.contains("secondary"), "same subnet as .1: secondary: {l}");
        let l = line("192.0.2.201/25");
        assert!(l.contains("scope link") && !l.contains("secondary"), "{l}");
        assert!(!l.contains("brd"), "no broadcast unless asked: {l}");
        let l = line("2001:db8::100/128");
        assert!(l.contains("nodad"), "IPv6 VIP without IFA_F_NODAD: {l}");
        assert!(!l.contains("tentative"), "IPv6 VIP tentative: {l}");

        let listed = nl.addresses(ifindex).await.unwrap();
        let find = |a: &str| {
            listed
                .iter()
                .find(|x| x.addr == a.parse::<IpAddr>().unwrap())
        };
        let x = find("192.0.2.100").expect("listed");
        assert_eq!((x.prefix_len, x.label.as_deref()), (32, Some("veth0:vip")));
        let x = find("192.0.2.101").expect("listed");
        assert_eq!(x.broadcast, Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert!(x.secondary);
        let x = find("192.0.2.201").expect("listed");
        assert_eq!(
            (x.prefix_len, x.scope, x.broadcast),
            (25, Scope::Link, None)
        );
        assert!(find("2001:db8::100").expect("listed").nodad);
        assert!(!find("192.0.2.1").unwrap().secondary);

        // A label must fit IFNAMSIZ; IPv6 has none.
        assert!(
            nl.add_vip(
                ifindex,
                &Vip::new("192.0.2.102".parse().unwrap()).with_label("a-label-far-too-long")
            )
            .await
            .is_err()
        );
        assert!(
            nl.add_vip(
                ifindex,
                &Vip::new("2001:db8::102".parse().unwrap()).with_label("veth0:x")
            )
            .await
            .is_err()
        );

        for vip in [&v4, &v4b, &v4c, &v6] {
            assert_eq!(nl.del_vip(ifindex, vip).await.unwrap(), DelOutcome::Removed);
            assert_eq!(
                nl.del_vip(ifindex, vip).await.unwrap(),
                DelOutcome::AlreadyAbsent
            );
        }
        let shown = check(&["-o", "addr", "show", "dev", IF]);
        for gone in ["192.0.2.100", "192.0.2.101", "192.0.2.201", "2001:db8::100"] {
            assert!(!shown.contains(gone), "{gone} still there:\n{shown}");
        }
        assert!(
            shown.contains("192.0.2.1/24"),
            "the interface's own address was touched"
        );

        // virtual_routes: via a gateway with a metric, and dev-only in another table.
        let mut via = Route::new("192.0.2.192".parse().unwrap(), 26);
        via.via = Some(IpAddr::V4(B_V4));
        via.ifindex = Some(ifindex);
        via.metric = Some(50);
        let mut dev = Route::new("192.0.2.0".parse().unwrap(), 24);
        dev.ifindex = Some(ifindex);
        dev.table = 1000;
        let mut via6 = Route::new("2001:db8::8000".parse().unwrap(), 113);
        via6.via = Some(IpAddr::V6(B_V6));
        via6.metric = Some(70);
        for r in [&via, &dev, &via6] {
            assert_eq!(nl.add_route(r).await.unwrap(), AddOutcome::Added, "{r}");
            assert_eq!(
                nl.add_route(r).await.unwrap(),
                AddOutcome::AlreadyPresent,
                "{r}"
            );
        }
        let main = check(&["route", "show"]);
        assert!(
            main.contains("192.0.2.192/26 via 192.0.2.2 dev veth0 proto keepalived metric 50"),
            "{main}"
        );
        let t1000 = check(&["route", "show", "table", "1000"]);
        assert!(
            t1000.contains("192.0.2.0/24 dev veth0 proto keepalived scope link"),
            "{t1000}"
        );
        let main6 = check(&["-6", "route", "show"]);
        assert!(
            main6.contains(
                "2001:db8::8000/113 via 2001:db8::2 dev veth0 proto keepalived metric 70"
            ),
            "{main6}"
        );
        for r in [&via, &dev, &via6] {
            assert_eq!(nl.del_route(r).await.unwrap(), DelOutcome::Removed, "{r}");
            assert_eq!(
                nl.del_route(r).await.unwrap(),
                DelOutcome::AlreadyAbsent,
                "{r}"
            );
        }
        assert!(!check(&["route", "show"]).contains("192.0.2.192/26"));
        assert!(check(&["route", "show", "table", "1000"]).trim().is_empty());
        assert!(!check(&["-6", "route", "show"]).contains("2001:db8::8000"));

        // Multipath (IPv6: the kernel splits it into siblings), a blackhole and a rule: each
        // added once, found again, removed once, and absent after.
        let mut multi6 = Route::new("2001:db8:77::".parse().unwrap(), 48);
        // Two gateways on the link (not our own address: the kernel refuses that).
        multi6.nexthops = [B_V6, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3)]
            .into_iter()
            .map(|gw| Nexthop {
                via: Some(IpAddr::V6(gw)),
                ifindex: Some(ifindex),
                weight: Some(3),
                onlink: false,
            })
            .collect();
        let mut hole = Route::new("203.0.113.0".parse().unwrap(), 24);
        hole.kind = RouteKind::Blackhole;
        hole.table = 100;
        for r in [&multi6, &hole] {
            assert_eq!(nl.add_route(r).await.unwrap(), AddOutcome::Added, "{r}");
            assert_eq!(
                nl.add_route(r).await.unwrap(),
                AddOutcome::AlreadyPresent,
                "{r}"
            );
        }
        let m6 = check(&["-6", "route", "show", "2001:db8:77::/48"]);
        assert!(
            m6.contains("nexthop via 2001:db8::2 dev veth0 weight 3"),
            "{m6}"
        );
        let t100 = check(&["route", "show", "table", "100"]);
        assert!(
            t100.contains("blackhole 203.0.113.0/24 proto keepalived"),
            "{t100}"
        );
        let mut rule = Rule::new(false, RuleAction::Table(100), 100);
        rule.from = Some((IpAddr::V4(A_V4), 32));
        assert_eq!(nl.add_rule(&rule).await.unwrap(), AddOutcome::Added);
        assert_eq!(
            nl.add_rule(&rule).await.unwrap(),
            AddOutcome::AlreadyPresent
        );
        let rules = check(&["rule", "show"]);
        assert!(
            rules.contains("100:\tfrom 192.0.2.1 lookup 100 proto keepalived"),
            "{rules}"
        );
        assert_eq!(nl.del_rule(&rule).await.unwrap(), DelOutcome::Removed);
        assert_eq!(nl.del_rule(&rule).await.unwrap(), DelOutcome::AlreadyAbsent);
        // The selectors beyond addresses, as the kernel shows them back.
        let mut sel = Rule::new(false, RuleAction::Table(100), 110);
        sel.ip_proto = Some(6);
        sel.sport = Some((1000, 2000));
        sel.dport = Some((443, 443));
        sel.uid_range = Some((100, 200));
        sel.suppress_prefixlen = Some(0);
        sel.invert = true;
        sel.fwmark = Some(0x10);
        sel.fwmask = Some(0xff);
        assert_eq!(nl.add_rule(&sel).await.unwrap(), AddOutcome::Added);
        let rules = check(&["rule", "show", "pref", "110"]);
        for part in [
            "not from all fwmark 0x10/0xff",
            "ipproto tcp sport 1000-2000 dport 443",
            "uidrange 100-200",
            "lookup 100 suppress_prefixlength 0",
        ] {
            assert!(rules.contains(part), "{part}: {rules}");
        }
        assert_eq!(nl.del_rule(&sel).await.unwrap(), DelOutcome::Removed);
        // tos, IPv6 router preference, congestion control locked.
        let mut tuned = Route::new("2001:db8:78::".parse().unwrap(), 48);
        tuned.via = Some(IpAddr::V6(B_V6));
        tuned.pref = Some(1);
        tuned.metrics = vec![rtnetlink::packet_route::route::RouteMetric::CcAlgo(
            "cubic".into(),
        )];
        tuned.locked = 1 << 16;
        assert_eq!(nl.add_route(&tuned).await.unwrap(), AddOutcome::Added);
        let shown = check(&["-6", "route", "show", "2001:db8:78::/48"]);
        assert!(shown.contains("congctl lock cubic pref high"), "{shown}");
        assert_eq!(nl.del_route(&tuned).await.unwrap(), DelOutcome::Removed);

        // Realms, times and features (IPv4).
        let mut timed = Route::new("10.77.0.0".parse().unwrap(), 16);
        timed.via = Some(IpAddr::V4(B_V4));
        timed.realms = Some(2 << 16 | 3);
        timed.metrics = vec![
            rtnetlink::packet_route::route::RouteMetric::Rtt(2400),
            rtnetlink::packet_route::route::RouteMetric::Features(1),
        ];
        assert_eq!(nl.add_route(&timed).await.unwrap(), AddOutcome::Added);
        let shown = check(&["route", "show", "10.77.0.0/16"]);
        for part in ["realms 2/3", "rtt 300ms", "features ecn"] {
            assert!(shown.contains(part), "{part}: {shown}");
        }
        assert_eq!(nl.del_route(&timed).await.unwrap(), DelOutcome::Removed);
        let mut realm_rule = Rule::new(false, RuleAction::Table(100), 120);
        realm_rule.realms = Some(3);
        assert_eq!(nl.add_rule(&realm_rule).await.unwrap(), AddOutcome::Added);
        let shown = check(&["rule", "show", "pref", "120"]);
        assert!(shown.contains("lookup 100 realms 3"), "{shown}");
        assert_eq!(nl.del_rule(&realm_rule).await.unwrap(), DelOutcome::Removed);

        // keepalived prepends: a route to a destination someone else routes (same metric) goes
        // in front of theirs, and removing ours leaves theirs.
        check(&[
            "route",
            "add",
            "198.51.100.0/24",
            "via",
            "192.0.2.2",
            "proto",
            "static",
        ]);
        let mut ours = Route::new("198.51.100.0".parse().unwrap(), 24);
        ours.via = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)));
        assert_eq!(nl.add_route(&ours).await.unwrap(), AddOutcome::Added);
        assert_eq!(
            nl.add_route(&ours).await.unwrap(),
            AddOutcome::AlreadyPresent
        );
        let both = check(&["route", "show", "198.51.100.0/24"]);
        assert!(
            both.starts_with("198.51.100.0/24 via 192.0.2.3 dev veth0 proto keepalived")
                && both.contains("via 192.0.2.2 dev veth0 proto static"),
            "{both}"
        );
        // `add`: not beside theirs (EEXIST, taken as there).
        let mut exclusive = ours.clone();
        exclusive.via = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 4)));
        exclusive.exclusive = true;
        assert_eq!(
            nl.add_route(&exclusive).await.unwrap(),
            AddOutcome::AlreadyPresent
        );
        assert_eq!(nl.del_route(&ours).await.unwrap(), DelOutcome::Removed);
        let theirs = check(&["route", "show", "198.51.100.0/24"]);
        assert_eq!(
            theirs.trim(),
            "198.51.100.0/24 via 192.0.2.2 dev veth0 proto static"
        );
        assert_eq!(
            nl.del_route(&ours).await.unwrap(),
            DelOutcome::AlreadyAbsent
        );
        for r in [&multi6, &hole] {
            assert_eq!(nl.del_route(r).await.unwrap(), DelOutcome::Removed, "{r}");
            assert_eq!(
                nl.del_route(r).await.unwrap(),
                DelOutcome::AlreadyAbsent,
                "{r}"
            );
        }
        assert!(!check(&["-6", "route", "show"]).contains("2001:db8:77::"));
        assert!(!check(&["rule", "show"]).contains("lookup 100"));
    });
}

/// keepalived's `peer`, `preferred_lft` and `noprefixroute` reach the kernel as `ip address add`
/// sends them: `ip -d addr` shows them, the dump reads them back, and removal matches the
/// address with its peer.
#[test]
fn vip_peer_preferred_lft_and_noprefixroute() {
    let lab = Lab::new("vipopt");
    let a = lab.a.clone();
    let check = move |args: &[&str]| lab::sh(&[&["ip", "-n", a.as_str()][..], args].concat());
    lab.run_in(&lab.a, move || async move {
        let nl = Netlink::new().unwrap();
        let ifindex = if_index(IF).unwrap();
        let noprefixroute = VipFlags {
            noprefixroute: true,
            ..VipFlags::default()
        };
        // Point-to-point: IFA_LOCAL 10.9.0.1, IFA_ADDRESS (the peer) 10.9.0.2.
        let p4 = Vip::new("10.9.0.1".parse().unwrap()).with_peer("10.9.0.2".parse().unwrap());
        let n4 = Vip::new("10.9.1.1".parse().unwrap())
            .with_prefix_len(24)
            .with_flags(noprefixroute);
        // Deprecated at once (never a source), valid forever, no prefix route.
        let d6 = Vip::new("2001:db8:5::1".parse().unwrap())
            .with_prefix_len(64)
            .with_preferred_lft(0)
            .with_flags(noprefixroute);
        let p6 =
            Vip::new("2001:db8:6::1".parse().unwrap()).with_peer("2001:db8:6::2".parse().unwrap());
        for vip in [&p4, &n4, &d6, &p6] {
            assert_eq!(
                nl.add_vip(ifindex, vip).await.unwrap(),
                AddOutcome::Added,
                "{vip}"
            );
            assert_eq!(
                nl.add_vip(ifindex, vip).await.unwrap(),
                AddOutcome::AlreadyPresent,
                "{vip}"
            );
        }

        let shown = check(&["-d", "-o", "addr", "show", "dev", IF]);
        let line = |needle: &str| {
            shown
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("`{needle}` not in `ip -d addr`:\n{shown}"))
                .to_owned()
        };
        line("inet 10.9.0.1 peer 10.9.0.2/32 ");
        let l = line("inet 10.9.1.1/24 ");
        assert!(l.contains("noprefixroute"), "{l}");
        let l = line("inet6 2001:db8:5::1/64 ");
        assert!(l.contains("deprecated"), "preferred_lft 0: {l}");
        assert!(l.contains("noprefixroute"), "{l}");
        assert!(l.contains("nodad"), "{l}");
        assert!(
            l.contains("valid_lft forever preferred_lft 0sec"),
            "lifetimes: {l}"
        );
        let l = line("inet6 2001:db8:6::1 peer 2001:db8:6::2/128 ");
        assert!(l.contains("preferred_lft forever"), "{l}");

        // The routes the flags and peers make, or do not make.
        let routes = check(&["route", "show"]);
        assert!(routes.contains("10.9.0.2 dev veth0"), "{routes}");
        assert!(!routes.contains("10.9.1.0/24"), "noprefixroute:\n{routes}");
        let routes6 = check(&["-6", "route", "show"]);
        assert!(
            !routes6.contains("2001:db8:5::/64"),
            "noprefixroute:\n{routes6}"
        );
        assert!(routes6.contains("2001:db8:6::2 dev veth0"), "{routes6}");

        let listed = nl.addresses(ifindex).await.unwrap();
        let find = |a: &str| {
            listed
                .iter()
                .find(|x| x.addr == a.parse::<IpAddr>().unwrap())
                .unwrap_or_else(|| panic!("{a} not listed: {listed:?}"))
        };
        let x = find("10.9.0.1");
        assert_eq!(
            (x.peer, x.prefix_len),
            (Some("10.9.0.2".parse().unwrap()), 32)
        );
        assert!(find("10.9.1.1").noprefixroute);
        let x = find("2001:db8:5::1");
        assert_eq!((x.preferred_lft, x.peer), (Some(0), None));
        assert!(x.noprefixroute && x.nodad);
        assert_eq!(
            find("2001:db8:6::1").peer,
            Some("2001:db8:6::2".parse().unwrap())
        );
        assert_eq!(find("2001:db8:6::1").preferred_lft, Some(LIFETIME_FOREVER));

        // An IPv4 delete that does not name the peer does not match the address.
        let without_peer = Vip::new("10.9.0.1".parse().unwrap());
        assert_eq!(
            nl.del_vip(ifindex, &without_peer).await.unwrap(),
            DelOutcome::AlreadyAbsent
        );
        for vip in [&p4, &n4, &d6, &p6] {
            assert_eq!(
                nl.del_vip(ifindex, vip).await.unwrap(),
                DelOutcome::Removed,
                "{vip}"
            );
            assert_eq!(
                nl.del_vip(ifindex, vip).await.unwrap(),
                DelOutcome::AlreadyAbsent,
                "{vip}"
            );
        }
        let shown = check(&["-o", "addr", "show", "dev", IF]);
        for gone in ["10.9.0.1", "10.9.1.1", "2001:db8:5::1", "2001:db8:6::1"] {
            assert!(!shown.contains(gone), "{gone} still there:\n{shown}");
        }
        let routes = check(&["route", "show"]);
        assert!(!routes.contains("10.9.0.2"), "{routes}");
        assert!(!check(&["-6", "route", "show"]).contains("2001:db8:6::2"));
    });
}

/// Frames from A seen on B's veth by an `AF_PACKET` socket (all protocols, incoming only).
fn capture_from(
    lab: &Lab,
    count: usize,
    ready: mpsc::Sender<()>,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    lab.spawn_in(&lab.b, move || async move {
        use socket2::{Domain, Protocol, Socket, Type};
        let eth_p_all = (libc::ETH_P_ALL as u16).to_be();
        let s = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(eth_p_all))),
        )
        .unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        ready.send(()).unwrap();
        let mut frames = Vec::new();
        let mut buf = [0u8; 2048];
        while frames.len() < count {
            let n = std::io::Read::read(&mut &s, &mut buf).expect("no frame from A within 5 s");
            // Only A's frames of interest: source MAC A, ARP or IPv6/ICMPv6 NA.
            let f = &buf[..n];
            let is_arp = f[12..14] == [0x08, 0x06];
            let is_na = f[12..14] == [0x86, 0xdd] && f.len() > 54 && f[20] == 58 && f[54] == 136;
            if f[6..12] == MAC_A && (is_arp || is_na) {
                frames.push(f.to_vec());
            }
        }
        frames
    })
}

#[test]
fn garp_and_unsolicited_na() {
    let lab = Lab::new("garp");
    let (ready_tx, ready_rx) = mpsc::channel();
    let capture = capture_from(&lab, 4, ready_tx);
    ready_rx.recv_timeout(WAIT).expect("capture ready");

    let vip4 = Ipv4Addr::new(192, 0, 2, 100);
    let vip6: Ipv6Addr = "2001:db8::100".parse().unwrap();
    // vrrp_garp_interval 0.2 s between the two GARPs, vrrp_gna_interval 0 between the NAs.
    let spacing = Spacing {
        garp: Duration::from_millis(200),
        gna: Duration::ZERO,
    };
    let (sent, took) = lab.run_in(&lab.a, move || async move {
        let nl = Netlink::new().unwrap();
        let info = nl.interface(IF).await.unwrap();
        let garp = GarpSender::open(IF, info.mac.expect("veth has a MAC"))
            .unwrap()
            .paced(std::rc::Rc::new(Pacer::new(spacing)));
        let start = std::time::Instant::now();
        let sent = garp
            .announce(
                &[IpAddr::V4(vip4), IpAddr::V6(vip6)],
                info.link_local_v6,
                false,
                2,
            )
            .await
            .expect("announce");
        (sent, start.elapsed())
    });
    assert_eq!(sent, 4);
    assert!(took >= spacing.garp, "the second GARP came after {took:?}");
    let frames = join(capture);

    let arps: Vec<_> = frames
        .iter()
        .filter(|f| f[12..14] == [0x08, 0x06])
        .collect();
    let nas: Vec<_> = frames
        .iter()
        .filter(|f| f[12..14] == [0x86, 0xdd])
        .collect();
    assert_eq!(
        (arps.len(), nas.len()),
        (2, 2),
        "2 rounds of one GARP + one NA"
    );
    for f in arps {
        assert_eq!(f.len(), GARP_FRAME_LEN);
        assert_eq!(f[0..6], [0xff; 6], "broadcast destination");
        assert_eq!(f[6..12], MAC_A, "interface MAC as source");
        assert_eq!(f[20..22], [0, 1], "ARP request");
        assert_eq!(f[22..28], MAC_A, "sender hardware address");
        assert_eq!(f[28..32], vip4.octets(), "sender protocol address = VIP");
        assert_eq!(f[38..42], vip4.octets(), "target protocol address = VIP");
    }
    for f in nas {
        assert_eq!(f.len(), NA_FRAME_LEN);
        assert_eq!(f[0..6], [0x33, 0x33, 0, 0, 0, 1], "all-nodes multicast MAC");
        assert_eq!(f[6..12], MAC_A);
        assert_eq!(f[21], 255, "hop limit 255");
        assert_eq!(f[22..38], A_LL.octets(), "source = link-local");
        assert_eq!(f[38..54], "ff02::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!((f[54], f[55]), (136, 0), "ICMPv6 neighbour advertisement");
        assert_eq!(
            f[58] & 0xe0,
            0x20,
            "Override set, Solicited and Router clear"
        );
        assert_eq!(f[62..78], vip6.octets(), "target = VIP");
        assert_eq!(f[78..80], [2, 1], "target link-layer address option");
        assert_eq!(f[80..86], MAC_A);
        assert_eq!(
            independent_icmpv6_sum(&f[22..38], &f[38..54], &f[54..]),
            0xffff,
            "checksum"
        );
    }
    // The real proof: B's kernel accepted both and learnt the VIPs at A's MAC.
    let neigh = lab.ip(&lab.b, &["neigh", "show", "dev", IF]);
    for vip in ["192.0.2.100", "2001:db8::100"] {
        let l = neigh
            .lines()
            .find(|l| l.starts_with(&format!("{vip} ")))
            .unwrap_or_else(|| panic!("{vip} not learnt by B:\n{neigh}"));
        assert!(l.contains("02:00:00:00:00:0a"), "{l}");
    }
}

/// One's-complement sum over pseudo-header and message, checksum included: 0xffff when valid.
fn independent_icmpv6_sum(src: &[u8], dst: &[u8], msg: &[u8]) -> u16 {
    let mut words: Vec<u8> = Vec::new();
    words.extend_from_slice(src);
    words.extend_from_slice(dst);
    words.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    words.extend_from_slice(&[0, 0, 0, 58]);
    words.extend_from_slice(msg);
    let mut sum: u64 = words
        .chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn link_query_and_watch() {
    let lab = Lab::new("link");
    lab.ip(&lab.a, &["addr", "add", "192.0.2.11/24", "dev", IF]);
    let (tx, rx) = mpsc::channel::<&'static str>();
    let a = lab.spawn_in(&lab.a, move || async move {
        let nl = Netlink::new().unwrap();
        let info = nl.interface(IF).await.expect("query");
        assert_eq!(info.index, if_index(IF).unwrap());
        assert_eq!(info.name, IF);
        assert_eq!(info.mac, Some(MAC_A));
        assert!(info.up && info.running, "{info:?}");
        assert_eq!(info.oper_state, OperState::Up);
        assert_eq!(
            info.primary_v4,
            Some(A_V4),
            "the first, non-secondary address"
        );
        assert_eq!(info.link_local_v6, Some(A_LL));
        assert_eq!(nl.interface_by_index(info.index).await.unwrap(), info);
        assert!(nl.interface("nosuch0").await.is_err());

        let mut watch = LinkWatch::subscribe().expect("subscribe");
        tx.send("ready").unwrap();
        let mut wait_for = async |running: bool| loop {
            let ev = tokio::time::timeout(WAIT, watch.next_event())
                .await
                .unwrap_or_else(|_| panic!("no link event with running={running} within 5 s"))
                .expect("watch ended");
            if ev.ifindex == info.index && ev.address.is_none() && ev.running == running {
                return ev;
            }
        };
        let down = wait_for(false).await;
        assert_eq!(down.name, IF);
        assert!(down.up, "A's side is still admin up, it lost carrier");
        // No carrier: LOWERLAYERDOWN, or DOWN when the peer's ifindex (in its own namespace)
        // equals ours, as both veth0 here (the kernel compares ifindex with iflink).
        assert!(
            matches!(down.oper_state, OperState::LowerLayerDown | OperState::Down),
            "{down:?}"
        );
        let now = nl.interface(IF).await.unwrap();
        assert!(!now.running && now.oper_state == down.oper_state, "{now:?}");
        tx.send("down").unwrap();
        let up = wait_for(true).await;
        assert_eq!(up.oper_state, OperState::Up);
        assert!(!up.removed);
    });
    assert_eq!(rx.recv_timeout(WAIT), Ok("ready"));
    lab.ip(&lab.b, &["link", "set", IF, "down"]);
    // If A's thread panicked, recv fails: join to show its message.
    if rx.recv_timeout(WAIT * 2) != Ok("down") {
        join(a);
        panic!("A never saw the link go down");
    }
    lab.ip(&lab.b, &["link", "set", IF, "up"]);
    join(a);
}

/// `vrrp_gna_interval` spaces unsolicited NAs and only them; `vrrp_garp_interval` only GARPs.
#[test]
fn gna_interval_spaces_neighbour_adverts_only() {
    let lab = Lab::new("gnaint");
    let vip4 = Ipv4Addr::new(192, 0, 2, 101);
    let vip6: Ipv6Addr = "2001:db8::101".parse().unwrap();
    let second = Duration::from_secs(1);
    let (v6_took, v4_took) = lab.run_in(&lab.a, move || async move {
        let nl = Netlink::new().unwrap();
        let info = nl.interface(IF).await.unwrap();
        let na_only = Spacing {
            garp: Duration::ZERO,
            gna: second,
        };
        let garp = GarpSender::open(IF, info.mac.expect("veth has a MAC"))
            .unwrap()
            .paced(std::rc::Rc::new(Pacer::new(na_only)));
        let timed = |vip: IpAddr| {
            let garp = &garp;
            async move {
                let start = std::time::Instant::now();
                let sent = garp
                    .announce(&[vip], info.link_local_v6, false, 2)
                    .await
                    .expect("announce");
                assert_eq!(sent, 2);
                start.elapsed()
            }
        };
        (timed(IpAddr::V6(vip6)).await, timed(IpAddr::V4(vip4)).await)
    });
    assert!(v6_took >= second, "two NAs {v6_took:?} apart");
    assert!(
        v4_took < second,
        "two GARPs waited for the NA interval: {v4_took:?}"
    );
}

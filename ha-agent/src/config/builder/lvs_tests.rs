//! `virtual_server` and its blocks (`lvs.rs`): keepalived's defaults and inheritance, group
//! expansion, and each refusal with its position and wording, without root.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::lvs::*;
use crate::config::{ConfigError, Loaded, parse_str};

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    parse_str(text, Path::new("t.conf"))
}

/// Every diagnostic as `line:col: message`.
fn lines(list: &[crate::config::Diagnostic]) -> Vec<String> {
    list.iter()
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect()
}

/// Every error, in the order of the file (as `check-config` prints them).
fn errors(text: &str) -> Vec<String> {
    lines(&parse(text).expect_err("should fail").errors)
}

/// Lines 1-6: an instance carrying 10.0.0.100, 10.0.0.101 and 2001:db8::100.
const VI: &str = "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n \
                  virtual_ipaddress {\n 10.0.0.100\n 10.0.0.101\n }\n \
                  virtual_ipaddress_excluded { 2001:db8::100 }\n}\n";

/// `VI` then `body` from line 10.
fn conf(body: &str) -> String {
    format!("{VI}{body}")
}

fn services(text: &str) -> (Vec<VirtualServer>, Vec<String>) {
    let l = parse(text).unwrap_or_else(|e| panic!("{:?}", lines(&e.errors)));
    (l.config.lvs.virtual_servers, lines(&l.warnings))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn defaults_are_keepalived_s() {
    let (vs, warnings) = services(&conf(
        "virtual_server 10.0.0.100 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n  \
         TCP_CHECK {\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n  MISC_CHECK {\n   \
         misc_path /bin/true\n  }\n }\n}\n",
    ));
    let v = &vs[0];
    assert_eq!(v.addr, addr("10.0.0.100:80"));
    assert_eq!(
        v.protocol,
        Protocol::Udp,
        "keepalived 2.2.7 defaults to UDP"
    );
    assert_eq!(
        warnings,
        [
            "10:1: virtual server 10.0.0.100:80: no protocol set, defaulting to UDP as keepalived \
             does; write `protocol TCP` for a TCP service",
            "10:1: virtual server 10.0.0.100:80: no scheduler set, defaulting to wlc as \
             keepalived does",
        ]
    );
    assert_eq!(v.delay_loop, Duration::from_secs(60));
    assert_eq!(v.algo, LbAlgo::Wlc);
    assert_eq!(v.kind, LbKind::Dr);
    assert_eq!((v.quorum, v.hysteresis), (1, 0));
    assert_eq!(v.persistence_timeout, None);
    let rs = &v.real_servers[0];
    assert_eq!(
        (rs.addr, rs.weight, rs.kind),
        (addr("10.0.0.11:80"), 1, LbKind::Dr)
    );
    assert!(!rs.alpha && !rs.inhibit_on_failure);
    let [tcp, http, misc] = &rs.checkers[..] else {
        panic!("{:?}", rs.checkers)
    };
    assert_eq!(tcp.kind, CheckKind::Tcp);
    assert_eq!(tcp.connect, addr("10.0.0.11:80"));
    assert_eq!(tcp.connect_timeout, Duration::from_secs(5));
    assert_eq!(
        (tcp.retry, tcp.delay_before_retry),
        (1, Duration::from_secs(1))
    );
    assert_eq!(tcp.delay_loop, Duration::from_secs(60));
    // check_http.c: 3 s between retries; check_misc.c: no retry.
    assert_eq!(http.delay_before_retry, Duration::from_secs(3));
    assert_eq!(misc.retry, 0);
    let CheckKind::Http(h) = &http.kind else {
        panic!()
    };
    assert_eq!(h.http_protocol, HttpProtocol::V10);
    assert!(h.urls[0].status_codes.is_empty());
}

#[test]
fn checkers_inherit_from_the_real_then_the_virtual_server() {
    let (vs, _) = services(&conf(
        "virtual_server 10.0.0.100 80 {\n protocol TCP\n lb_kind DR\n connect_timeout 7\n \
         retry 2\n delay_loop 9\n warmup 4\n virtualhost vs.example\n weight 3\n alpha\n \
         real_server 10.0.0.11 80 {\n  retry 4\n  virtualhost rs.example\n  HTTP_GET {\n   \
         delay_loop 2.5\n   alpha off\n   url {\n    path /health\n    status_code 200-202 404\n   \
         }\n  }\n }\n real_server 10.0.0.12 {\n  weight 0\n  TCP_CHECK {\n   connect_port 8080\n  \
         }\n }\n}\n",
    ));
    let v = &vs[0];
    let (a, b) = (&v.real_servers[0], &v.real_servers[1]);
    assert_eq!(
        (a.weight, b.weight),
        (3, 0),
        "the virtual server's weight is the default"
    );
    assert!(a.alpha && b.alpha);
    let ha = &a.checkers[0];
    assert_eq!(ha.connect_timeout, Duration::from_secs(7));
    assert_eq!(ha.retry, 4);
    assert_eq!(ha.delay_loop, Duration::from_millis(2500));
    assert_eq!(ha.warmup, Some(Duration::from_secs(4)));
    assert!(!ha.alpha);
    let CheckKind::Http(h) = &ha.kind else {
        panic!()
    };
    assert_eq!(h.virtualhost.as_deref(), Some("rs.example"));
    assert_eq!(h.urls[0].path, "/health");
    assert_eq!(h.urls[0].status_codes, [200, 201, 202, 404]);
    let tb = &b.checkers[0];
    assert_eq!(
        b.addr,
        addr("10.0.0.12:80"),
        "the port defaults to the service's"
    );
    assert_eq!(tb.connect, addr("10.0.0.12:8080"));
    assert_eq!((tb.retry, tb.delay_loop), (2, Duration::from_secs(9)));
    assert!(tb.alpha);
}

#[test]
fn a_group_becomes_one_service_per_address_and_port() {
    let (vs, warnings) = services(&conf(
        "virtual_server_group G {\n 10.0.0.100-101 80\n 10.0.0.100 443\n}\n\
         virtual_server group G {\n protocol TCP\n lb_kind TUN\n lb_algo mh\n mh-port\n \
         real_server 10.0.0.21 {\n  TCP_CHECK {\n  }\n }\n}\n",
    ));
    assert_eq!(warnings, Vec::<String>::new());
    let got: Vec<_> = vs
        .iter()
        .map(|v| (v.addr, v.group.as_deref(), v.real_servers[0].addr))
        .collect();
    assert_eq!(
        got,
        [
            (addr("10.0.0.100:80"), Some("G"), addr("10.0.0.21:80")),
            (addr("10.0.0.101:80"), Some("G"), addr("10.0.0.21:80")),
            (addr("10.0.0.100:443"), Some("G"), addr("10.0.0.21:443")),
        ]
    );
    assert!(
        vs.iter()
            .all(|v| v.kind == LbKind::Tun && v.algo == LbAlgo::Mh && v.hash_port)
    );
    assert_eq!(
        vs[2].real_servers[0].checkers[0].connect,
        addr("10.0.0.21:443")
    );
}

#[test]
fn persistence_sorry_server_and_quorum_as_keepalived() {
    let (vs, warnings) = services(&conf(
        "virtual_server 10.0.0.100 80 {\n protocol TCP\n lb_kind DR\n persistence_timeout\n \
         persistence_granularity 255.255.255.0\n quorum 5\n hysteresis 9\n sorry_server \
         10.0.0.50 8080\n sorry_server_inhibit\n real_server 10.0.0.11 81 {\n  weight 2\n  \
         TCP_CHECK {\n  }\n }\n}\n\
         virtual_server 2001:db8::100 80 {\n protocol TCP\n lb_kind DR\n persistence_timeout 60\n \
         persistence_granularity 64\n real_server 2001:db8::11 80\n}\n",
    ));
    let v = &vs[0];
    assert_eq!(v.persistence_timeout, Some(Duration::from_secs(360)));
    assert_eq!(v.persistence_prefix, Some(24));
    assert_eq!((v.quorum, v.hysteresis), (2, 1));
    let s = v.sorry_server.as_ref().unwrap();
    assert_eq!(
        (s.addr, s.kind, s.inhibit),
        (addr("10.0.0.50:80"), LbKind::Dr, true)
    );
    // DR cannot change the port: forwarded to 80, checked on 81.
    assert_eq!(v.real_servers[0].addr, addr("10.0.0.11:80"));
    assert_eq!(v.real_servers[0].checkers[0].connect, addr("10.0.0.11:81"));
    assert_eq!(
        warnings,
        [
            "10:1: virtual server 10.0.0.100:80: no scheduler set, defaulting to wlc as \
             keepalived does",
            "17:2: virtual server 10.0.0.100:80 and sorry server 10.0.0.50:8080 ports don't \
             match: DR forwards to port 80, as keepalived resets it",
            "19:2: virtual server 10.0.0.100:80 and real server 10.0.0.11:81 ports don't match: \
             DR forwards to port 80, as keepalived resets it; the checkers connect to 81",
            "10:1: quorum 5 for 10.0.0.100:80 exceeds total weight of real servers 2, reducing \
             quorum to 2",
            "10:1: virtual server 10.0.0.100:80: hysteresis 9 >= quorum 2; setting hysteresis \
             to 1",
            "25:1: virtual server [2001:db8::100]:80: no scheduler set, defaulting to wlc as \
             keepalived does",
        ]
    );
    assert_eq!(vs[1].persistence_prefix, Some(64));
    assert_eq!(vs[1].persistence_timeout, Some(Duration::from_secs(60)));
    assert!(vs[1].real_servers[0].checkers.is_empty());
}

#[test]
fn what_the_xdp_balancer_cannot_do_is_refused_with_the_fix() {
    let e = errors(&conf(
        "virtual_server fwmark 1 {\n lb_kind DR\n}\n\
         virtual_server 10.0.0.100 80 {\n lb_kind NAT\n protocol SCTP\n lb_algo lblc\n \
         real_server 10.0.0.11 80\n}\n\
         virtual_server 10.0.0.101 80 {\n real_server 10.0.0.11 80\n}\n\
         virtual_server_group G {\n fwmark 3\n}\n",
    ));
    assert_eq!(
        e,
        [
            "10:16: virtual_server fwmark: ha-agent balances in XDP, before netfilter sets marks, so a fwmark service never sees its packets; write one `virtual_server IP PORT` per address and port (or a virtual_server_group of them)",
            "14:10: lb_kind: NAT: the replies of NAT return through the director's stack, which ha-agent's XDP balancer does not rewrite; use DR or TUN",
            "15:11: protocol SCTP: ha-agent's XDP balancer parses TCP and UDP only",
            "16:10: lb_algo: lblc is not built: ha-agent places new flows with a consistent-hash table per service, the same on both directors, and lblc needs per-server state (connection counts, destination history) the XDP path does not keep; use rr, wrr, lc, wlc (weights), sh or mh",
            "19:1: virtual_server 10.0.0.101:80: no lb_kind, and keepalived's default is NAT: the replies of NAT return through the director's stack, which ha-agent's XDP balancer does not rewrite; use DR or TUN; add `lb_kind DR` (or `lb_kind TUN`)",
            "22:1: virtual_server_group G: no entries",
            "23:2: fwmark: not supported by ha-agent, and ignoring it would change failover behaviour: XDP runs before netfilter sets marks, so a fwmark service never sees its packets: list the addresses and ports (`IP PORT`, `IP-LAST PORT`) (in virtual_server_group G); pass --allow-unsupported to run without it",
        ]
    );
}

#[test]
fn a_service_needs_a_vip_and_one_family_and_is_defined_once() {
    let e = errors(&conf(
        "virtual_server 10.0.0.9 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.11 80\n}\n\
         virtual_server 10.0.0.100 80 {\n protocol TCP\n lb_kind TUN type gue\n real_server \
         2001:db8::1 80\n}\n\
         virtual_server 10.0.0.101 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.11 80\n}\n\
         virtual_server 10.0.0.101 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.12 80\n}\n",
    ));
    assert_eq!(
        e,
        [
            "10:1: virtual_server 10.0.0.9:80: 10.0.0.9 is not a virtual_ipaddress of any vrrp_instance: ha-agent serves a service only on the node that is master of its address; add 10.0.0.9 to the virtual_ipaddress of the vrrp_instance that should carry it",
            "17:19: lb_kind: tunnel type gue: ha-agent encapsulates in IPIP (IPv4) and IP6IP6 (IPv6) only; write `type ipip`",
            "25:1: virtual_server 10.0.0.101 80: already defined at line 20",
        ]
    );
    let e = errors(&conf(
        "virtual_server 10.0.0.100 80 {\n protocol TCP\n lb_kind DR\n real_server 2001:db8::1 \
         80\n}\n",
    ));
    assert_eq!(
        e,
        [
            "13:2: real_server 2001:db8::1: not IPv4 like its virtual server 10.0.0.100:80 \
          (ha-agent forwards DR and encapsulates TUN within one family)"
        ]
    );
}

#[test]
fn checker_keywords_are_checked_where_keepalived_checks_them() {
    let e = errors(&conf(
        "virtual_server 10.0.0.100 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.11 80 \
         {\n  uthreshold 10\n  FILE_CHECK {\n   track_file nope\n   retry 2\n  }\n  MISC_CHECK {\n   \
         connect_timeout 3\n   misc_path /bin/true\n  }\n  HTTP_GET {\n   url {\n    path /\n    \
         status_code 200-99 700\n    digest abc\n   }\n  }\n  HTTP_GET {\n  }\n  HTTP_GET {\n   url {\n    \
         path /\n    regex \"(a\"\n   }\n  }\n }\n}\n",
    ));
    assert_eq!(
        e,
        [
            "14:3: uthreshold: not supported by ha-agent, and ignoring it would change failover behaviour: connection limits need per-server connection counts, which the XDP balancer does not keep: ignoring them would send the server more than its limit (in real_server 10.0.0.11 at line 13); pass --allow-unsupported to run without it",
            "16:15: FILE_CHECK: track_file nope is not defined (a root `track_file nope { file PATH }` block)",
            "17:4: unknown keyword \"retry\" (in FILE_CHECK at line 15)",
            "20:4: unknown keyword \"connect_timeout\" (in MISC_CHECK at line 19)",
            "26:17: status_code: \"200-99\" is not a code or range in 100-599",
            "26:24: status_code: \"700\" is not a code or range in 100-599",
            "27:12: digest: \"abc\" is not 32 hexadecimal digits (an MD5)",
            "30:3: HTTP_GET: no url { path … } to check",
            "35:11: regex: not a regular expression the checker can use: unclosed group",
        ]
    );
}

#[test]
fn the_other_checkers_read_their_keywords() {
    let (vs, _) = services(&format!(
        "track_file tf {{\n file /tmp/tf\n weight -2 reverse\n}}\n{}",
        conf(
            "virtual_server 10.0.0.100 53 {\n protocol UDP\n lb_kind DR\n real_server 10.0.0.11 \
             53 {\n  UDP_CHECK {\n   payload 01 02ff\n   require_reply\n   max_reply_length 9\n  \
             }\n  DNS_CHECK {\n   type AAAA\n   name example.org\n  }\n  SMTP_CHECK {\n   \
             helo_name me.example\n  }\n  PING_CHECK {\n  }\n  FILE_CHECK {\n   track_file tf\n  \
             }\n  MISC_CHECK {\n   misc_path \"/bin/check 'a b'\"\n   misc_timeout 3\n   \
             misc_dynamic\n   user nobody\n  }\n  SSL_GET {\n   enable_sni\n   http_protocol 1.1\n   \
             url {\n    path /\n    regex \"^ok\"\n    regex_no_match\n   }\n  }\n }\n}\n"
        )
    ));
    let kinds: Vec<_> = vs[0].real_servers[0]
        .checkers
        .iter()
        .map(|c| c.kind.clone())
        .collect();
    assert_eq!(
        kinds[0],
        CheckKind::Udp(UdpCheck {
            payload: vec![1, 2, 0xff],
            require_reply: Some(Vec::new()),
            min_reply_length: 0,
            max_reply_length: 9,
        })
    );
    assert_eq!(
        kinds[1],
        CheckKind::Dns(DnsCheck {
            qtype: 28,
            name: "example.org".into()
        })
    );
    assert_eq!(
        kinds[2],
        CheckKind::Smtp {
            helo_name: "me.example".into()
        }
    );
    assert_eq!(kinds[3], CheckKind::Ping);
    assert_eq!(
        kinds[4],
        CheckKind::File(FileCheck {
            track_file: "tf".into(),
            weight: Some((-2, true)),
        })
    );
    let CheckKind::Misc(m) = &kinds[5] else {
        panic!()
    };
    assert_eq!(m.command, ["/bin/check", "a b"]);
    assert_eq!(m.timeout, Some(Duration::from_secs(3)));
    assert!(m.dynamic);
    assert_eq!(m.user.as_ref().unwrap().user, "nobody");
    let CheckKind::Http(h) = &kinds[6] else {
        panic!()
    };
    assert!(h.tls && h.sni);
    assert_eq!(h.http_protocol, HttpProtocol::V11);
    assert_eq!(h.urls[0].regex, Some(("^ok".into(), true)));
}

#[test]
fn check_config_lists_the_services_as_ipvsadm() {
    let l = parse(&conf(
        "virtual_server 10.0.0.100 80 {\n protocol TCP\n lb_algo wrr\n lb_kind DR\n \
         persistence_timeout\n delay_loop 6\n real_server 10.0.0.11 80 {\n  HTTP_GET {\n   url \
         {\n    path /health\n   }\n   retry 3\n  }\n }\n}\n",
    ))
    .unwrap();
    let out = crate::config::summary(&l.config);
    assert!(
        out.contains(
            "TCP  10.0.0.100:80 wrr persistent 360 (DR), delay_loop 6s, quorum 1\n  -> \
             10.0.0.11:80  weight 1  HTTP_GET /health (every 6s, retry 3 after 3s, timeout 5s, warmup 6s)\n"
        ),
        "{out}"
    );
}

#[test]
fn group_ranges_masks_and_ipv6_and_one_warning_per_block() {
    let text = "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n \
                10.0.0.0/24\n 10.0.0.1/24\n 10.0.0.2/24\n 10.0.0.3/24\n }\n \
                virtual_ipaddress_excluded {\n 2001:db8::a\n 2001:db8::b\n }\n}\n\
                virtual_server_group V4 {\n 10.0.0.0/30 80\n}\n\
                virtual_server_group V6 {\n 2001:db8::a-b 80\n}\n\
                virtual_server group V4 {\n lb_kind DR\n real_server 10.0.0.11 80\n}\n\
                virtual_server group V6 {\n protocol TCP\n lb_kind DR\n real_server 2001:db8::11\n}\n";
    let l = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<String> = l
        .config
        .lvs
        .virtual_servers
        .iter()
        .map(|v| v.addr.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "10.0.0.0:80",
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "[2001:db8::a]:80",
            "[2001:db8::b]:80"
        ]
    );
    assert_eq!(
        lines(&l.warnings),
        [
            "21:1: virtual server group V4: no protocol set, defaulting to UDP as keepalived does; \
             write `protocol TCP` for a TCP service",
            "21:1: virtual server group V4: no scheduler set, defaulting to wlc as keepalived does",
            "25:1: virtual server group V6: no scheduler set, defaulting to wlc as keepalived does",
        ]
    );
    let e = errors(
        "virtual_server_group G {\n 10.0.0.3-2 80\n 10.0.0.0/8 80\n 10.0.0.1/30 80\n 10.0.0.1\n}\n",
    );
    assert_eq!(
        e,
        [
            "1:1: virtual_server_group G: no entries",
            "2:2: virtual_server_group: range end below its start: \"10.0.0.3-2\"",
            "3:2: virtual_server_group: more than 256 addresses in one entry: \"10.0.0.0/8\"",
            "4:2: virtual_server_group: address mask bits not empty: \"10.0.0.1/30\"",
            "5:11: virtual_server_group G: 10.0.0.1 needs a port (ha-agent balances one address \
             and port per service)",
        ]
    );
}

#[test]
fn a_sorry_server_that_is_a_real_server_follows_its_inhibit() {
    let (vs, warnings) = services(&conf(
        "virtual_server 10.0.0.100 80 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n sorry_server \
         10.0.0.11 80\n real_server 10.0.0.11 80 {\n  inhibit_on_failure\n }\n}\n",
    ));
    assert!(vs[0].sorry_server.as_ref().unwrap().inhibit);
    assert_eq!(
        warnings,
        [
            "14:2: virtual server 10.0.0.100:80: real server 10.0.0.11:80 matches sorry server, but \
          inhibit setting differs, setting on sorry server"
        ]
    );
}

//! `virtual_routes` / `virtual_rules` follow the VIP, `static_*` stay: a master gets its virtual
//! routes (a multipath default with weights, a blackhole, a route with the VIP as source and a
//! locked MTU, an IPv6 unreachable) and rules (the VIP's source to table 100, an fwmark rule),
//! read back with `ip -j route` / `ip -j rule`; after a failover they are gone from the old
//! master and on the new one, while each node's static address, route and rule stay, and are put
//! back when someone deletes them. A clean stop removes the statics and puts
//! `promote_secondaries` back; a master killed by SIGKILL and restarted as a backup removes the
//! virtual routes and rules it left; a reload applies changed static and virtual entries.

use std::{net::IpAddr, time::Duration};

use ha_tests::{Daemon, Lab, Node, ha_agent_bin};
use serde_json::Value;

/// How long an agent may take to answer on its status socket.
const READY: Duration = Duration::from_secs(20);
/// A takeover: master-down at advert_int 0.1 s, with slack for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(10);

fn conf(node: u8, priority: u8) -> String {
    format!(
        "static_ipaddress {{\n    198.18.0.{node}/24 dev eth0\n}}\n\
         static_routes {{\n    198.19.0.0/16 via 198.18.0.254 dev eth0\n}}\n\
         static_rules {{\n    from 198.18.0.{node} table 50 priority 90\n}}\n\
         vrrp_instance VI {{\n    interface eth0\n    virtual_router_id 61\n    version 3\n    \
         priority {priority}\n    advert_int 0.1\n    promote_secondaries\n    \
         virtual_ipaddress {{\n        192.0.2.200/24\n    }}\n    \
         virtual_routes {{\n        \
         default table 100 nexthop via 192.0.2.101 weight 2 nexthop via 192.0.2.102 weight 1\n        \
         blackhole 203.0.113.0/24 table 100\n        \
         198.51.100.0/24 via 192.0.2.254 src 192.0.2.200 mtu lock 1400\n        \
         inet6 unreachable 2001:db8:99::/48 table 100\n    }}\n    \
         virtual_rules {{\n        from 192.0.2.200 table 100 priority 100\n        \
         to 203.0.113.0/24 fwmark 0x10/0xff table 100 priority 101\n    }}\n}}\n"
    )
}

fn json(node: &Node, args: &[&str]) -> Vec<Value> {
    let done = node.command("ip").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    // A table that never had a route does not exist yet: it has no routes.
    if !done.status.success() && stderr.contains("table does not exist") {
        return Vec::new();
    }
    assert!(done.status.success(), "ip {args:?}: {stderr}");
    let out = String::from_utf8_lossy(&done.stdout);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip {args:?}: {e}: {out}"));
    v.as_array().cloned().unwrap_or_default()
}

fn routes(node: &Node, family: &str, table: &str) -> Vec<Value> {
    json(node, &["-j", family, "route", "show", "table", table])
}

fn rules(node: &Node) -> Vec<Value> {
    json(node, &["-j", "rule", "show"])
}

fn find<'a>(list: &'a [Value], key: &str, value: &str) -> Option<&'a Value> {
    list.iter().find(|r| r[key].as_str() == Some(value))
}

fn rule_at(node: &Node, priority: u64) -> Option<Value> {
    rules(node)
        .into_iter()
        .find(|r| r["priority"].as_u64() == Some(priority))
}

/// Which of what `virtual_routes` / `virtual_rules` put on a master are on `node`.
fn virtual_parts(node: &Node) -> [bool; 6] {
    let t100 = routes(node, "-4", "100");
    let main = routes(node, "-4", "main");
    let t100v6 = routes(node, "-6", "100");
    [
        find(&t100, "dst", "default").is_some(),
        find(&t100, "dst", "203.0.113.0/24").is_some(),
        find(&main, "dst", "198.51.100.0/24").is_some(),
        find(&t100v6, "dst", "2001:db8:99::/48").is_some(),
        rule_at(node, 100).is_some(),
        rule_at(node, 101).is_some(),
    ]
}

/// None of the virtual routes and rules is on `node`.
fn no_virtuals(node: &Node) -> bool {
    virtual_parts(node) == [false; 6]
}

/// All the virtual routes and rules are on `node`, each as configured (a panic when one is
/// there but not as configured). Read one at a time while the agent adds them: a `false` in a
/// wait may be a read between two adds.
fn virtuals(node: &Node) -> bool {
    if virtual_parts(node) != [true; 6] {
        return false;
    }
    let t100 = routes(node, "-4", "100");
    let main = routes(node, "-4", "main");
    let t100v6 = routes(node, "-6", "100");
    let default = find(&t100, "dst", "default").unwrap();
    let hops: Vec<(Option<&str>, Option<u64>)> = default["nexthops"]
        .as_array()
        .unwrap_or_else(|| panic!("multipath default: {default}"))
        .iter()
        .map(|h| (h["gateway"].as_str(), h["weight"].as_u64()))
        .collect();
    assert_eq!(
        hops,
        [
            (Some("192.0.2.101"), Some(2)),
            (Some("192.0.2.102"), Some(1))
        ],
        "{default}"
    );
    assert_eq!(default["protocol"], "keepalived", "{default}");
    let blackhole = find(&t100, "dst", "203.0.113.0/24").unwrap();
    assert_eq!(blackhole["type"], "blackhole", "{blackhole}");
    let via = find(&main, "dst", "198.51.100.0/24").unwrap();
    assert_eq!(via["gateway"], "192.0.2.254", "{via}");
    assert_eq!(via["prefsrc"], "192.0.2.200", "{via}");
    assert_eq!(via["metrics"][0]["mtu"], 1400, "{via}");
    // `ip -j` does not say whether a metric is locked; the text does.
    let text = node
        .run("ip", &["route", "show", "198.51.100.0/24"])
        .unwrap();
    assert!(text.contains("mtu lock 1400"), "{text}");
    let unreachable = find(&t100v6, "dst", "2001:db8:99::/48").unwrap();
    assert_eq!(unreachable["type"], "unreachable", "{unreachable}");
    let from_vip = rule_at(node, 100).unwrap();
    assert_eq!(
        (from_vip["src"].as_str(), from_vip["table"].as_str()),
        (Some("192.0.2.200"), Some("100")),
        "{from_vip}"
    );
    let mark = rule_at(node, 101).unwrap();
    assert_eq!(mark["dst"], "203.0.113.0", "{mark}");
    assert_eq!(mark["dstlen"], 24, "{mark}");
    assert_eq!(mark["fwmark"], "0x10", "{mark}");
    assert_eq!(mark["fwmask"], "0xff", "{mark}");
    true
}

/// Whether node `n`'s static address, route and rule are there.
fn static_parts(node: &Node, n: u8) -> [bool; 3] {
    let addr: IpAddr = format!("198.18.0.{n}").parse().unwrap();
    [
        node.has_addr(addr).unwrap(),
        find(&routes(node, "-4", "main"), "dst", "198.19.0.0/16").is_some(),
        rule_at(node, 90).is_some_and(|r| r["table"] == "50"),
    ]
}

/// Node `n`'s `static_*` entries: all there (true), none (false), or a panic.
fn statics(node: &Node, n: u8) -> bool {
    let found = static_parts(node, n);
    assert!(
        found.iter().all(|f| *f) || found.iter().all(|f| !f),
        "{}: some statics only: {found:?}",
        node.ns
    );
    found[0]
}

fn promote_secondaries(node: &Node) -> String {
    node.run("cat", &["/proc/sys/net/ipv4/conf/eth0/promote_secondaries"])
        .unwrap()
        .trim()
        .to_owned()
}

fn wait(what: &str, agents: &[&Daemon], mut cond: impl FnMut() -> bool) {
    let logs = || {
        let logs: Vec<String> = agents.iter().map(|a| a.log()).collect();
        logs.join("\n----\n")
    };
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ha_tests::wait_for(what, TAKEOVER, || Ok(cond()))
    }));
    match waited {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{e}\n{}", logs()),
        Err(cause) => {
            eprintln!("while waiting for {what}:\n{}", logs());
            std::panic::resume_unwind(cause)
        }
    }
}

#[test]
fn virtual_routes_and_rules_follow_the_vip_and_statics_stay() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("routes", 2).expect("lab");
    let (n1, n2) = (lab.node(1).clone(), lab.node(2).clone());
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let socket = ["--datapath", "socket"];
    assert_eq!(promote_secondaries(&n1), "0", "the lab's default");

    let mut a1 = lab.ha_agent(1, &conf(1, 150), &socket).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    let mut a2 = lab.ha_agent(2, &conf(2, 100), &socket).unwrap();
    lab.wait_agent_ready(2, &mut a2, READY).unwrap();
    wait("node 1 master with its virtual routes", &[&a1, &a2], || {
        n1.has_addr(vip).unwrap() && virtuals(&n1)
    });
    assert!(
        no_virtuals(&n2),
        "the backup has no virtual routes or rules"
    );
    assert!(statics(&n1, 1) && statics(&n2, 2), "statics on both");
    assert_eq!(promote_secondaries(&n1), "1");

    // Someone deletes node 2's static route and rule, then its static address: each is put
    // back (keepalived's netlink reflector does the same).
    n2.run("ip", &["route", "del", "198.19.0.0/16"]).unwrap();
    n2.run("ip", &["rule", "del", "priority", "90"]).unwrap();
    wait("node 2's static route and rule back", &[&a1, &a2], || {
        static_parts(&n2, 2) == [true; 3]
    });
    n2.run("ip", &["addr", "del", "198.18.0.2/24", "dev", "eth0"])
        .unwrap();
    wait("node 2's static address back", &[&a1, &a2], || {
        static_parts(&n2, 2)[0]
    });
    assert!(
        a2.log().contains("deleted by someone: put back"),
        "{}",
        a2.log()
    );

    // A clean stop: node 2 takes over with the virtuals; node 1's statics go, the sysctl is back.
    a1.signal(libc::SIGTERM).unwrap();
    a1.wait_timeout(TAKEOVER).unwrap().expect("node 1 stops");
    wait("node 2 master with the virtual routes", &[&a1, &a2], || {
        n2.has_addr(vip).unwrap() && virtuals(&n2)
    });
    assert!(
        no_virtuals(&n1),
        "the stopped node's virtual routes and rules are gone"
    );
    assert!(
        !statics(&n1, 1),
        "a clean stop removes the statics, as keepalived"
    );
    assert!(statics(&n2, 2));
    assert_eq!(promote_secondaries(&n1), "0", "put back at stop");

    // Node 1 back at the higher priority preempts: node 2, now backup, removes the virtuals.
    let mut a1 = lab.ha_agent(1, &conf(1, 150), &socket).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    wait(
        "node 1 to preempt with the virtual routes",
        &[&a1, &a2],
        || n1.has_addr(vip).unwrap() && virtuals(&n1) && no_virtuals(&n2),
    );
    assert!(statics(&n1, 1) && statics(&n2, 2), "statics on both");

    // SIGKILL: everything stays on node 1 while node 2 takes over; restarted as a backup, node
    // 1 removes the virtual routes and rules the killed run left.
    a1.signal(libc::SIGKILL).unwrap();
    a1.wait_timeout(TAKEOVER).unwrap();
    wait(
        "node 2 to take over from the killed master",
        &[&a1, &a2],
        || n2.has_addr(vip).unwrap() && virtuals(&n2),
    );
    assert!(virtuals(&n1), "a killed agent leaves its virtual routes");
    let mut a1 = lab.ha_agent(1, &conf(1, 50), &socket).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    wait(
        "the restarted backup to remove what it left",
        &[&a1, &a2],
        || !n1.has_addr(vip).unwrap() && no_virtuals(&n1),
    );
    assert!(
        a1.log().contains("removed stale virtual route"),
        "log:\n{}",
        a1.log()
    );
    assert!(virtuals(&n2) && statics(&n1, 1) && statics(&n2, 2));
    // No add or delete the kernel refused, on either node, in any state.
    for (n, a) in [(1, &a1), (2, &a2)] {
        let log = a.log();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert!(errors.is_empty(), "node {n}: {errors:#?}");
    }
}

/// SIGHUP: a static route and rule the new file drops are removed and the ones it adds are put
/// in; a changed `virtual_rules` block is in force on the master once the reload is done, and
/// the rule it dropped is gone.
#[test]
fn a_reload_applies_changed_static_and_virtual_entries() {
    ha_agent_bin().expect("ha-agent binary");
    let lab = Lab::new("routesrl", 1).expect("lab");
    let n1 = lab.node(1).clone();
    let vip: IpAddr = "192.0.2.200".parse().unwrap();
    let first = conf(1, 150);
    let mut a1 = lab.ha_agent(1, &first, &["--datapath", "socket"]).unwrap();
    lab.wait_agent_ready(1, &mut a1, READY).unwrap();
    wait("node 1 master with its virtual routes", &[&a1], || {
        n1.has_addr(vip).unwrap() && virtuals(&n1)
    });
    assert!(statics(&n1, 1));

    let second = first
        .replace("198.19.0.0/16 via", "198.20.0.0/16 via")
        .replace("table 50 priority 90", "table 51 priority 91")
        .replace(
            "to 203.0.113.0/24 fwmark 0x10/0xff table 100 priority 101",
            "to 203.0.113.0/24 fwmark 0x10/0xff table 100 priority 102",
        );
    std::fs::write(lab.dir.join("ha-agent-n1.conf"), second).unwrap();
    a1.signal(libc::SIGHUP).unwrap();
    a1.wait_for_log("reload done", TAKEOVER).unwrap();
    wait("the new entries in force", &[&a1], || {
        let main = routes(&n1, "-4", "main");
        find(&main, "dst", "198.20.0.0/16").is_some()
            && rule_at(&n1, 91).is_some_and(|r| r["table"] == "51")
            && rule_at(&n1, 102).is_some()
            && n1.has_addr(vip).unwrap()
    });
    assert!(
        find(&routes(&n1, "-4", "main"), "dst", "198.19.0.0/16").is_none(),
        "the dropped static route is gone"
    );
    assert!(
        rule_at(&n1, 90).is_none(),
        "the dropped static rule is gone"
    );
    assert!(
        rule_at(&n1, 101).is_none(),
        "the dropped virtual rule is gone"
    );
    assert!(
        n1.has_addr("198.18.0.1".parse().unwrap()).unwrap(),
        "the unchanged static address stays"
    );
}

//! keepalived's VRRP options that change when an instance may take over, measured on real
//! agents: `vrrp_startup_delay` holds a booting backup, `down_timer_adverts` stretches the
//! Master_Down_Interval, `unicast_fault_no_peer` keeps a unicast instance without peers in FAULT
//! instead of falling back to multicast, `track_src_ip` faults an instance whose source address
//! leaves its interface, `disable_local_igmp` silences link-local IGMP reports while it runs.

mod common;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use common::{Kind, Scene};

const VIP: &str = "192.0.2.200";

fn conf(global: &str, priority: u8, body: &str) -> String {
    format!(
        r#"
global_defs {{
{global}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    version 3
    priority {priority}
    advert_int 0.1
    virtual_ipaddress {{
        {VIP}/24
    }}
{body}
}}
"#
    )
}

fn state(s: &Scene, i: usize) -> String {
    s.report(i).instances[0].state.clone()
}

#[test]
fn vrrp_startup_delay_holds_a_lone_backup() {
    let mut s = Scene::new("sdelay", 1);
    let vip: IpAddr = VIP.parse().unwrap();
    s.start(1, Kind::Agent, &conf("vrrp_startup_delay 1.5", 100, ""));
    s.wait("node 1 to become MASTER", Duration::from_secs(15), |s| {
        state(s, 1) == "MASTER"
    });
    // From the agent's start to its MASTER transition, by its own clock. Without the delay a
    // lone backup takes over after 3 × 0.1 s + skew (0.36 s).
    let r = s.report(1);
    let took = r.instances[0].state_since_unix - r.agent.started_unix;
    assert!(
        took >= 1.5,
        "MASTER {took:.3} s after the start, before vrrp_startup_delay 1.5 s ran out\n{}",
        s.logs()
    );
    s.wait_vip(vip, &[1], Duration::from_secs(2));
    assert!(
        s.log(1).contains("delaying startup for 1.500 s"),
        "{}",
        s.logs()
    );
}

#[test]
fn down_timer_adverts_stretches_the_takeover() {
    let mut s = Scene::new("dtimer", 2);
    let vip: IpAddr = VIP.parse().unwrap();
    s.start(1, Kind::Agent, &conf("", 150, ""));
    s.wait_vip(vip, &[1], Duration::from_secs(5));
    s.start(2, Kind::Agent, &conf("", 100, "    down_timer_adverts 10"));
    let master: IpAddr = "192.0.2.1".parse().unwrap();
    s.wait("node 2 to hear node 1", Duration::from_secs(5), |s| {
        s.hears_master(2, master)
    });
    let cut = Instant::now();
    s.lab.cut(1).unwrap();
    s.wait("node 2 to become MASTER", Duration::from_secs(10), |s| {
        state(s, 2) == "MASTER"
    });
    let took = cut.elapsed();
    // 10 × 0.1 s + skew; the default 3 would take over in 0.36 s.
    assert!(
        took >= Duration::from_millis(1000),
        "node 2 took over {took:?} after the cut, before 10 advert intervals\n{}",
        s.logs()
    );
}

#[test]
fn unicast_fault_no_peer_stays_in_fault() {
    let mut s = Scene::new("ufault", 1);
    let vip: IpAddr = VIP.parse().unwrap();
    s.start(
        1,
        Kind::Agent,
        &conf(
            "",
            100,
            "    unicast_src_ip 192.0.2.1\n    unicast_fault_no_peer",
        ),
    );
    s.wait("node 1 in FAULT", Duration::from_secs(5), |s| {
        state(s, 1) == "FAULT"
    });
    let r = s.report(1);
    let t = &r.instances[0].trackers;
    assert!(
        t.iter().any(|t| t.kind == "config" && !t.up),
        "no config fault shown: {t:?}"
    );
    // A lone backup would be master after 0.36 s; a FAULT instance never is.
    s.hold(
        "node 1 in FAULT without the VIP",
        Duration::from_secs(1),
        |s| state(s, 1) == "FAULT" && s.holders(vip).is_empty(),
    );
}

#[test]
fn track_src_ip_faults_while_the_source_address_is_gone() {
    let mut s = Scene::new("tsrc", 1);
    let vip: IpAddr = VIP.parse().unwrap();
    s.lab
        .node(1)
        .run("ip", &["addr", "add", "192.0.2.50/24", "dev", "eth0"])
        .unwrap();
    s.start(
        1,
        Kind::Agent,
        &conf("", 100, "    mcast_src_ip 192.0.2.50\n    track_src_ip"),
    );
    s.wait("node 1 to become MASTER", Duration::from_secs(5), |s| {
        state(s, 1) == "MASTER"
    });
    s.wait_vip(vip, &[1], Duration::from_secs(2));
    s.lab
        .node(1)
        .run("ip", &["addr", "del", "192.0.2.50/24", "dev", "eth0"])
        .unwrap();
    s.wait("node 1 in FAULT", Duration::from_secs(5), |s| {
        state(s, 1) == "FAULT"
    });
    s.wait_vip(vip, &[], Duration::from_secs(2));
    let r = s.report(1);
    assert!(
        r.instances[0]
            .trackers
            .iter()
            .any(|t| t.kind == "src_ip" && t.name == "192.0.2.50 on eth0" && !t.up),
        "{:?}",
        r.instances[0].trackers
    );
    s.lab
        .node(1)
        .run("ip", &["addr", "add", "192.0.2.50/24", "dev", "eth0"])
        .unwrap();
    s.wait("node 1 back to MASTER", Duration::from_secs(5), |s| {
        state(s, 1) == "MASTER"
    });
    s.wait_vip(vip, &[1], Duration::from_secs(2));
}

#[test]
fn disable_local_igmp_turns_link_local_reports_off_and_back() {
    let mut s = Scene::new("igmp", 1);
    let read = |s: &Scene| {
        s.lab
            .node(1)
            .run("cat", &["/proc/sys/net/ipv4/igmp_link_local_mcast_reports"])
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read(&s), "1", "the kernel's default");
    s.start(1, Kind::Agent, &conf("disable_local_igmp", 100, ""));
    assert_eq!(read(&s), "0", "while the agent runs\n{}", s.logs());
    s.terminate(1);
    s.reap(1, Duration::from_secs(10));
    assert_eq!(read(&s), "1", "restored at exit\n{}", s.logs());
}

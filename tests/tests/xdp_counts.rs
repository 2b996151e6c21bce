//! `vrrp_rx` attached in one node counts, per VRID, every advert a real keepalived sends from
//! another node: the same count tcpdump sees on the same interface in the same window. With no
//! instance configured every one is another speaker's: counted in `FOREIGN` (not among our
//! `RX_ADVERTS`) and passed on, without any debug switch, so tcpdump, which sees packets after
//! XDP, sees them too.

use std::{collections::BTreeMap, time::Duration};

use aya::programs::XdpMode;
use ha_agent::datapath::xdp::{XdpDatapath, rx_global};
use ha_tests::{Capture, IFACE, Lab, in_netns};

const KEEPALIVED_CONF: &str = r#"
global_defs {
    router_id node2
    vrrp_version 3
}
vrrp_instance V4 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.05
    virtual_ipaddress {
        192.0.2.200/24
    }
}
vrrp_instance V6 {
    state MASTER
    interface eth0
    virtual_router_id 52
    priority 150
    advert_int 0.05
    virtual_ipaddress {
        2001:db8::200/64
    }
}
"#;

/// Counts tcpdump's decoded VRRP lines per VRID.
fn count_by_vrid(tcpdump_text: &str) -> BTreeMap<u8, u64> {
    let mut counts = BTreeMap::new();
    for line in tcpdump_text.lines() {
        let mut words = line.split([' ', ',']).filter(|w| !w.is_empty());
        if words.any(|w| w == "vrid")
            && let Some(vrid) = words.next().and_then(|v| v.parse::<u8>().ok())
        {
            *counts.entry(vrid).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn xdp_counts_keepalived_adverts_per_vrid() {
    let lab = Lab::new("xdpcount", 2).expect("building the lab");
    let n1 = lab.node(1).clone();
    let mut datapath = in_netns(&n1.ns, || Ok(XdpDatapath::attach(IFACE, XdpMode::Driver)?))
        .expect("attaching vrrp_rx and vip_fence in node 1 (needs root and BPF)");
    datapath
        .configure(
            rx_global(
                0,
                "224.0.0.18".parse().unwrap(),
                "ff02::12".parse().unwrap(),
                [0; 6],
            ),
            &[],
        )
        .unwrap();

    let mut capture = Capture::start(&n1, &lab.dir, "n1", IFACE, "ip proto 112 or ip6 proto 112")
        .expect("capture");

    let mut keepalived = lab
        .keepalived(2, KEEPALIVED_CONF)
        .expect("starting keepalived");
    std::thread::sleep(Duration::from_millis(1500));
    // SIGTERM: keepalived sends its priority-0 adverts and exits; they must be counted too.
    keepalived.signal(libc::SIGTERM).unwrap();
    let status = keepalived.wait_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        status.is_some(),
        "keepalived did not stop; log:\n{}",
        keepalived.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    capture.stop().unwrap();

    let seen = count_by_vrid(&capture.read(&["-n"]).unwrap());
    for vrid in [51u8, 52] {
        let by_tcpdump = seen.get(&vrid).copied().unwrap_or(0);
        let by_xdp = datapath.foreign(vrid).unwrap();
        eprintln!("vrid {vrid}: xdp {by_xdp}, tcpdump {by_tcpdump}");
        // 1.5 s at 50 ms is ~30 adverts; well above 10 unless keepalived never became master.
        assert!(
            by_tcpdump >= 10,
            "keepalived sent only {by_tcpdump} adverts for vrid {vrid}; log:\n{}",
            keepalived.log()
        );
        assert_eq!(by_xdp, by_tcpdump, "vrid {vrid}: XDP and tcpdump disagree");
        assert_eq!(
            datapath.rx_adverts(vrid).unwrap(),
            0,
            "vrid {vrid}: no instance here, so no advert is ours to judge"
        );
    }
    assert_eq!(
        datapath.foreign(53).unwrap(),
        0,
        "no adverts were sent for vrid 53"
    );
}

//! `vip_fence` drops traffic to a VIP placed in its map, and stops dropping once it is removed:
//! seen from a client pinging the VIP every millisecond and asking for it by ARP.

use std::{net::IpAddr, time::Duration};

use aya::programs::XdpMode;
use ha_agent::datapath::xdp::XdpDatapath;
use ha_tests::{IFACE, Lab, epoch_now, in_netns};

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

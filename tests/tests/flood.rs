//! The benchmark's flood generator: its frames are adverts ha-agent's own codec accepts, and
//! `vrrp_flood` delivers what it says it sent to a lab node, by XDP live frames and by its
//! AF_PACKET fallback, which it never takes silently.

use std::{net::Ipv4Addr, time::Duration};

use ha_agent::vrrp::packet::{Auth, DecodeOptions, Version, decode_ip};
use ha_tests::{
    IFACE, Lab,
    flood::{FloodReport, Method, virtual_mac, vrrp_v3_frame, xdp_pass_on},
};

#[test]
fn forged_frame_is_an_advert_the_agent_decodes() {
    let vips = [Ipv4Addr::new(192, 0, 2, 250), Ipv4Addr::new(192, 0, 2, 251)];
    let src = Ipv4Addr::new(192, 0, 2, 3);
    let frame = vrrp_v3_frame(virtual_mac(99), src, 99, 254, 7, &vips).unwrap();
    assert_eq!(&frame[12..14], &[0x08, 0x00], "EtherType IPv4");
    let got = decode_ip(&frame[14..], &DecodeOptions::default()).expect("a valid advert");
    assert_eq!(got.src, src);
    assert_eq!(got.dst, Ipv4Addr::new(224, 0, 0, 18));
    assert_eq!(got.ttl, 255);
    let a = got.advert;
    assert_eq!(
        (a.version, a.vrid, a.priority, a.adver_int_cs, a.auth),
        (Version::V3, 99, 254, 7, Auth::None)
    );
    assert_eq!(a.addrs, vips.map(std::net::IpAddr::from).to_vec());
    // One bit flipped anywhere in the VRRP part fails the checksum.
    let mut bad = frame.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(decode_ip(&bad[14..], &DecodeOptions::default()).is_err());
}

fn rx_packets(lab: &Lab, node: usize) -> u64 {
    lab.node(node)
        .run(
            "cat",
            &[&format!("/sys/class/net/{IFACE}/statistics/rx_packets")],
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn vrrp_flood_delivers_what_it_reports() {
    const COUNT: u64 = 200_000;
    let lab = Lab::new("flood", 2).unwrap();
    let before = rx_packets(&lab, 1);
    let out = lab
        .node(2)
        .run(
            env!("CARGO_BIN_EXE_vrrp_flood"),
            &[
                "--interface",
                IFACE,
                "--vrid",
                "99",
                "--count",
                &COUNT.to_string(),
            ],
        )
        .unwrap();
    let report = FloodReport::parse(&out).unwrap_or_else(|| panic!("no report in {out:?}"));
    assert_eq!(report.sent, COUNT, "{out}");
    assert_eq!(report.method, Method::Ring, "{out}");
    assert!(
        report.elapsed > Duration::ZERO && report.pps() > 0.0,
        "{out}"
    );
    // The bridge floods the multicast frames to node 1 (plus a few frames of the lab's own).
    let got = rx_packets(&lab, 1) - before;
    assert!(
        (COUNT..COUNT + 1000).contains(&got),
        "node 1 received {got} frames, vrrp_flood reports {out}"
    );
    println!("{}", report.line());
}

#[test]
fn live_frames_reach_the_other_node() {
    const COUNT: u64 = 1_000_000;
    let lab = Lab::new("floodlive", 2).unwrap();
    let object = lab.dir.join("ha-ebpf.o");
    std::fs::write(&object, ha_agent::datapath::EBPF_OBJECT).unwrap();
    // Node 2's bridge port takes its XDP_TX frames only with NAPI, which XDP gives it.
    let _napi = xdp_pass_on(&lab.lan, &lab.node(2).port, ha_agent::datapath::EBPF_OBJECT)
        .expect("xdp_baseline on node 2's bridge port");
    let before = rx_packets(&lab, 1);
    let out = lab
        .node(2)
        .run(
            env!("CARGO_BIN_EXE_vrrp_flood"),
            &[
                "--interface",
                IFACE,
                "--count",
                &COUNT.to_string(),
                "--object",
                &object.display().to_string(),
            ],
        )
        .unwrap();
    let report = FloodReport::parse(&out).unwrap_or_else(|| panic!("no report in {out:?}"));
    assert_eq!(report.method, Method::Live, "{out}");
    assert_eq!(report.sent, COUNT, "{out}");
    // A veth drops what its peer's full ring cannot take: most, not all, must arrive.
    let got = rx_packets(&lab, 1) - before;
    assert!(
        (COUNT / 2..COUNT + 1000).contains(&got),
        "node 1 received {got} frames, vrrp_flood reports {out}"
    );
    println!("{} (node 1 received {got})", report.line());
}

#[test]
fn live_frames_that_cannot_load_fall_back_loudly() {
    const COUNT: u64 = 1000;
    let lab = Lab::new("floodfb", 2).unwrap();
    let missing = lab.dir.join("no-such-object");
    let out = lab
        .node(2)
        .run(
            env!("CARGO_BIN_EXE_vrrp_flood"),
            &[
                "--interface",
                IFACE,
                "--count",
                &COUNT.to_string(),
                "--object",
                &missing.display().to_string(),
            ],
        )
        .unwrap();
    assert!(
        out.lines().any(|l| l.starts_with("vrrp_flood: FALLBACK")),
        "no FALLBACK line in {out:?}"
    );
    let report = FloodReport::parse(&out).unwrap_or_else(|| panic!("no report in {out:?}"));
    assert_eq!((report.method, report.sent), (Method::Ring, COUNT), "{out}");
}

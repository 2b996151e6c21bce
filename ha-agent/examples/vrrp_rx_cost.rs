//! Per-packet cost of XDP `vrrp_rx` (issue #8, scenario 5), measured with `BPF_PROG_TEST_RUN`.
//!
//! Loads the programs detached and writes the rules the agent would write for a backup (priority
//! 100) of the bench's instance (VRID 51, VRRPv3, advert_int 0.01, VIP 192.0.2.200) on an
//! interface that also runs VRIDs 1–16 (one /32 each, as the scale scenario), VRID 52 with 8
//! VIPs, VRID 53 as VRRPv2 with PASS auth and VRID 51 over IPv6. Then each case runs `--repeat`
//! times in one `BPF_PROG_TEST_RUN` call, `--runs` calls per case, the cases interleaved call
//! by call (each run starts at the next case) so a drift of the machine falls on all of them.
//!
//! A sample is the kernel's figure: the run's elapsed time divided by the repeat count, in whole
//! nanoseconds (truncated), per packet. It includes the kernel's loop around the program; the
//! `baseline` case runs `xdp_baseline` (returns `XDP_PASS`, nothing else) the same way, so the
//! program's own cost is a case's figure minus the baseline's. The `ktime` case runs `xdp_ktime`
//! (one `bpf_ktime_get_ns()`, the timestamp every valid advert takes): that call's cost by
//! itself. The userspace wall clock around each call, divided by the repeat count, is reported
//! beside it (`wall_ns`) as a cross-check.
//!
//! Every call is checked: the verdict, and the counters moved by exactly the repeat count
//! (`ACCEPTED[slot]` for a valid advert, `STATS[vrid][reason]` for a rejected one, `FOREIGN[vrid]`
//! and not `RX_ADVERTS` for another speaker's, nothing in `RX_ADVERTS` for a packet that is not
//! VRRP), so the benchmark cannot measure the wrong path.
//!
//! Prints JSON on stdout, progress on stderr. Needs root (CAP_BPF) and `cargo xtask build-ebpf`.
//! `cargo xtask bench --scenario packet-cost` builds it in release and runs it; alone:
//! `cargo build --release -p ha-agent --example vrrp_rx_cost && target/release/examples/vrrp_rx_cost --runs 5`

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aya::{
    Ebpf,
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use clap::Parser;
use ha_agent::{
    datapath::{
        EBPF_OBJECT,
        xdp::{SlotConfig, XdpDatapath, rx_global},
    },
    vrrp::packet::{Advert, Auth, EncodeOptions, Family, InstanceRules, Version},
};
use ha_common::{
    RejectReason,
    maps::{VRID_SLOTS, instance_slot, rx_flags},
};
use serde::Serialize;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
/// The reference programs in the eBPF object beside `vrrp_rx`.
const BASELINE_PROG: &str = "xdp_baseline";
const KTIME_PROG: &str = "xdp_ktime";

/// The bench's master (node 1) sends; we are node 2, its backup.
const MASTER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OURS4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const MCAST4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const MASTER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const MCAST6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
const BENCH_VRID: u8 = 51;
const BENCH_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
/// Our interface's MAC (unicast frames to it are ours).
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

#[derive(Parser)]
#[command(about = "Per-packet cost of XDP vrrp_rx with BPF_PROG_TEST_RUN; JSON on stdout")]
struct Args {
    /// Calls per case (the bench's trials).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Packets per call (BPF_PROG_TEST_RUN's repeat).
    #[arg(long, default_value_t = 1_000_000)]
    repeat: u32,
    /// Only these cases (repeatable; default: all).
    #[arg(long = "case")]
    cases: Vec<String>,
}

/// What a case must do, checked on every call.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A reference program (`xdp_baseline`, `xdp_ktime`): XDP_PASS, no counter of `vrrp_rx`
    /// moves.
    Reference(&'static str),
    /// Valid: XDP_DROP (consumed), `ACCEPTED[slot]` and `RX_ADVERTS[vrid]` + repeat.
    Valid { vrid: u8, slot: u32 },
    /// Rejected: XDP_DROP, `STATS[vrid][reason]` and `RX_ADVERTS[vrid]` + repeat.
    Rejected { vrid: u8, reason: RejectReason },
    /// Another speaker's VRRP: XDP_PASS, `FOREIGN[vrid]` + repeat, `RX_ADVERTS[vrid]` unmoved.
    Foreign { vrid: u8 },
    /// Not VRRP: XDP_PASS, no `RX_ADVERTS` counter moves.
    Pass,
}

impl Expect {
    fn describe(self) -> String {
        match self {
            Expect::Reference(prog) => format!("XDP_PASS ({prog})"),
            Expect::Valid { slot, .. } => format!("XDP_DROP, valid (ACCEPTED[{slot}])"),
            Expect::Rejected { vrid, reason } => {
                format!("XDP_DROP, rejected (STATS[{vrid}][{}])", reason.as_str())
            }
            Expect::Foreign { vrid } => format!("XDP_PASS, another speaker's (FOREIGN[{vrid}])"),
            Expect::Pass => "XDP_PASS, not counted".into(),
        }
    }

    fn verdict(self) -> u32 {
        match self {
            Expect::Reference(_) | Expect::Pass | Expect::Foreign { .. } => XDP_PASS,
            Expect::Valid { .. } | Expect::Rejected { .. } => XDP_DROP,
        }
    }
}

struct Case {
    name: &'static str,
    label: &'static str,
    frame: Vec<u8>,
    expect: Expect,
}

#[derive(Serialize)]
struct CaseOut {
    name: &'static str,
    label: &'static str,
    expect: String,
    frame_bytes: usize,
    /// Kernel figure per call: mean ns per packet, truncated to whole ns.
    ns: Vec<f64>,
    /// Userspace wall clock per call divided by the repeat count.
    wall_ns: Vec<f64>,
}

#[derive(Serialize)]
struct Output {
    repeat: u32,
    runs: usize,
    program: &'static str,
    baseline_program: &'static str,
    ktime_program: &'static str,
    configured_slots: usize,
    cases: Vec<CaseOut>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 || args.repeat == 0 {
        bail!("--runs and --repeat must be at least 1");
    }
    let mut dp = XdpDatapath::load_detached()
        .context("loading vrrp_rx (needs root/CAP_BPF and `cargo xtask build-ebpf`)")?;
    let instances = instances();
    let slots: Vec<SlotConfig> = instances.iter().map(slot_config).collect();
    dp.configure(
        // keepalived's default v3 IPv4 checksum (over the pseudo-header).
        rx_global(rx_flags::V3_V4_PSEUDO, MCAST4, MCAST6, OUR_MAC),
        &slots,
    )
    .context("writing the rules")?;

    let mut references = aya::Ebpf::load(EBPF_OBJECT).context("loading the eBPF object")?;
    for name in [BASELINE_PROG, KTIME_PROG] {
        let prog: &mut Xdp = references
            .program_mut(name)
            .with_context(|| {
                format!("no {name} in the eBPF object: rebuild with `cargo xtask build-ebpf`")
            })?
            .try_into()?;
        prog.load().with_context(|| format!("loading {name}"))?;
    }

    let mut cases = cases();
    if !args.cases.is_empty() {
        if let Some(unknown) = args
            .cases
            .iter()
            .find(|n| !cases.iter().any(|c| c.name == n.as_str()))
        {
            bail!(
                "no case {unknown}; cases: {}",
                cases.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            );
        }
        cases.retain(|c| args.cases.iter().any(|n| n == c.name));
    }
    let mut out: Vec<CaseOut> = cases
        .iter()
        .map(|c| CaseOut {
            name: c.name,
            label: c.label,
            expect: c.expect.describe(),
            frame_bytes: c.frame.len(),
            ns: Vec::with_capacity(args.runs),
            wall_ns: Vec::with_capacity(args.runs),
        })
        .collect();

    // Warm-up: caches, branch predictors, and the peer records (their first advert is an event).
    for c in &cases {
        measure(&dp, &references, c, args.repeat.min(10_000))
            .with_context(|| format!("case {} (warm-up)", c.name))?;
    }
    for run in 0..args.runs {
        for k in 0..cases.len() {
            let i = (run + k) % cases.len();
            let c = &cases[i];
            let (ns, wall) = measure(&dp, &references, c, args.repeat)
                .with_context(|| format!("case {}, run {}", c.name, run + 1))?;
            out[i].ns.push(ns);
            out[i].wall_ns.push(wall);
        }
        eprintln!(
            "[packet-cost {}/{}] {}",
            run + 1,
            args.runs,
            out.iter()
                .map(|c| format!("{} {:.0}", c.name, c.ns.last().copied().unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let output = Output {
        repeat: args.repeat,
        runs: args.runs,
        program: "vrrp_rx",
        baseline_program: BASELINE_PROG,
        ktime_program: KTIME_PROG,
        configured_slots: slots.len(),
        cases: out,
    };
    println!("{}", serde_json::to_string(&output)?);
    Ok(())
}

/// One `BPF_PROG_TEST_RUN` call of `repeat` packets: (kernel ns per packet, wall ns per packet),
/// after checking the verdict and the counters.
fn measure(dp: &XdpDatapath, references: &Ebpf, c: &Case, repeat: u32) -> Result<(f64, f64)> {
    let reference: Option<&Xdp> = match c.expect {
        Expect::Reference(name) => Some(
            references
                .program(name)
                .with_context(|| format!("no program {name}"))?
                .try_into()?,
        ),
        _ => None,
    };
    let before = Counters::read(dp, c.expect)?;
    let t0 = Instant::now();
    let (verdict, per_packet) = match reference {
        Some(prog) => run_prog(prog, &c.frame, repeat)?,
        None => dp.test_run(&c.frame, repeat)?,
    };
    let wall = t0.elapsed();
    let after = Counters::read(dp, c.expect)?;
    if verdict != c.expect.verdict() {
        bail!(
            "verdict {verdict}, expected {} ({})",
            c.expect.verdict(),
            c.expect.describe()
        );
    }
    let moved = after.delta(&before);
    let want = match c.expect {
        Expect::Reference(_) | Expect::Pass => (0, 0),
        Expect::Foreign { .. } => (u64::from(repeat), 0),
        Expect::Valid { .. } | Expect::Rejected { .. } => (u64::from(repeat), u64::from(repeat)),
    };
    if moved != want {
        bail!(
            "counters moved by {moved:?} (this case's counter, RX_ADVERTS), expected {want:?}: \
             the packet did not take the path of {}",
            c.expect.describe()
        );
    }
    Ok((
        per_packet.as_nanos() as f64,
        wall.as_nanos() as f64 / f64::from(repeat),
    ))
}

/// Runs a reference program as `XdpDatapath::test_run` runs `vrrp_rx`.
fn run_prog(prog: &Xdp, frame: &[u8], repeat: u32) -> Result<(u32, Duration)> {
    let mut out = vec![0u8; frame.len() + 256];
    let r = prog.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat,
        ..Default::default()
    })?;
    Ok((r.return_value, r.duration))
}

/// The counters a case must move: its own (accepted or rejected for the reason) and the
/// `RX_ADVERTS` total of its VRID (of every VRID for packets that are not VRRP).
#[derive(Debug)]
struct Counters {
    own: u64,
    rx_adverts: u64,
}

impl Counters {
    fn read(dp: &XdpDatapath, expect: Expect) -> Result<Counters> {
        Ok(match expect {
            Expect::Valid { vrid, slot } => Counters {
                own: dp.accepted(slot)?,
                rx_adverts: dp.rx_adverts(vrid)?,
            },
            Expect::Rejected { vrid, reason } => Counters {
                own: dp.rejected(vrid, reason)?,
                rx_adverts: dp.rx_adverts(vrid)?,
            },
            Expect::Foreign { vrid } => Counters {
                own: dp.foreign(vrid)?,
                rx_adverts: dp.rx_adverts(vrid)?,
            },
            Expect::Reference(_) | Expect::Pass => {
                let mut total = 0;
                for vrid in 0..VRID_SLOTS {
                    total += dp.rx_adverts(vrid as u8)?;
                }
                Counters {
                    own: 0,
                    rx_adverts: total,
                }
            }
        })
    }

    fn delta(&self, before: &Counters) -> (u64, u64) {
        (
            self.own.wrapping_sub(before.own),
            self.rx_adverts.wrapping_sub(before.rx_adverts),
        )
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    Ipv4Addr::new(a, b, c, d).into()
}

/// The instances on the measured interface.
fn instances() -> Vec<InstanceRules> {
    let v3 = |vrid, vips: Vec<IpAddr>| InstanceRules {
        vrid,
        version: Version::V3,
        family: Family::of(&vips[0]),
        auth: Auth::None,
        adver_int_cs: 1,
        vips: Some(vips),
        unicast_peers: vec![],
        unicast_any_ttl: false,
        peer_ttl: vec![],
        group: None,
    };
    let mut out = vec![
        v3(BENCH_VRID, vec![BENCH_VIP.into()]),
        v3(
            BENCH_VRID,
            vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200).into()],
        ),
        v3(52, (0..8).map(|k| v4(192, 0, 2, 210 + k)).collect()),
        InstanceRules {
            vrid: 53,
            version: Version::V2,
            family: Family::Ipv4,
            auth: Auth::pass("secret"),
            adver_int_cs: 100,
            vips: Some(vec![v4(192, 0, 2, 220)]),
            unicast_peers: vec![],
            unicast_any_ttl: false,
            peer_ttl: vec![],
            group: None,
        },
    ];
    out.extend((1..=16).map(|vrid| v3(vrid, vec![v4(198, 51, 100, vrid)])));
    out
}

/// What the agent writes for an instance (`Runtime::configure_xdp`): a backup at priority 100,
/// events after 3 silent advert intervals.
fn slot_config(r: &InstanceRules) -> SlotConfig {
    SlotConfig::for_rules(
        r,
        OURS4.into(),
        false,
        100,
        Duration::from_millis(30 * u64::from(r.adver_int_cs)),
    )
}

/// The VRRP message the master of `rules` sends (priority 150).
fn advert(rules: &InstanceRules, vrid: u8, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    Advert {
        version: rules.version,
        vrid,
        priority: 150,
        adver_int_cs: rules.adver_int_cs,
        addrs: rules.vips.clone().unwrap_or_default(),
        auth: rules.auth,
    }
    .encode(src, dst, &EncodeOptions::default())
    .expect("a well-formed advert")
}

fn cases() -> Vec<Case> {
    let insts = instances();
    let find = |vrid: u8, family: Family| {
        insts
            .iter()
            .find(|r| r.vrid == vrid && r.family == family)
            .expect("configured")
    };
    let bench = find(BENCH_VRID, Family::Ipv4);
    let (m4, d4) = (IpAddr::from(MASTER4), IpAddr::from(MCAST4));
    let (m6, d6) = (IpAddr::from(MASTER6), IpAddr::from(MCAST6));
    let valid_v3 = ipv4_frame(255, 112, m4, d4, &advert(bench, BENCH_VRID, m4, d4));
    let mut bad_checksum = advert(bench, BENCH_VRID, m4, d4);
    bad_checksum[7] ^= 0x01;
    // Another speaker's VRID (or the flood scenario's forged adverts): passed at the lookup.
    let unknown = advert(bench, 99, m4, d4);
    // Our VRID to another group (a keepalived with another vrrp_mcast_group4 behind the NIC).
    let other_group: IpAddr = Ipv4Addr::new(224, 0, 0, 19).into();
    let foreign_group = advert(bench, BENCH_VRID, m4, other_group);
    let valid = |vrid, slot| Expect::Valid { vrid, slot };
    let rejected = |vrid, reason| Expect::Rejected { vrid, reason };
    vec![
        Case {
            name: "baseline",
            label: "empty XDP program (baseline)",
            frame: valid_v3.clone(),
            expect: Expect::Reference(BASELINE_PROG),
        },
        Case {
            name: "ktime",
            label: "empty XDP program + one bpf_ktime_get_ns (reference)",
            frame: valid_v3.clone(),
            expect: Expect::Reference(KTIME_PROG),
        },
        Case {
            name: "valid-v3-ipv4",
            label: "valid VRRPv3 IPv4 advert, 1 VIP",
            frame: valid_v3.clone(),
            expect: valid(BENCH_VRID, instance_slot(BENCH_VRID, false)),
        },
        Case {
            name: "valid-v3-ipv4-8-vips",
            label: "valid VRRPv3 IPv4 advert, 8 VIPs",
            frame: ipv4_frame(
                255,
                112,
                m4,
                d4,
                &advert(find(52, Family::Ipv4), 52, m4, d4),
            ),
            expect: valid(52, instance_slot(52, false)),
        },
        Case {
            name: "valid-v2-pass",
            label: "valid VRRPv2 advert, PASS auth, 1 VIP",
            frame: ipv4_frame(
                255,
                112,
                m4,
                d4,
                &advert(find(53, Family::Ipv4), 53, m4, d4),
            ),
            expect: valid(53, instance_slot(53, false)),
        },
        Case {
            name: "valid-v3-ipv6",
            label: "valid VRRPv3 IPv6 advert, 1 VIP",
            frame: ipv6_frame(
                255,
                112,
                m6,
                d6,
                &advert(find(BENCH_VRID, Family::Ipv6), BENCH_VRID, m6, d6),
            ),
            expect: valid(BENCH_VRID, instance_slot(BENCH_VRID, true)),
        },
        Case {
            name: "bad-checksum",
            label: "rejected: bad checksum (v3 IPv4)",
            frame: ipv4_frame(255, 112, m4, d4, &bad_checksum),
            expect: rejected(BENCH_VRID, RejectReason::BadChecksum),
        },
        Case {
            name: "ttl-254",
            label: "rejected early: TTL 254 (v3 IPv4)",
            frame: ipv4_frame(254, 112, m4, d4, &advert(bench, BENCH_VRID, m4, d4)),
            expect: rejected(BENCH_VRID, RejectReason::TtlNot255),
        },
        Case {
            name: "foreign-vrid",
            label: "another speaker's: unconfigured VRID 99 (v3 IPv4), passed",
            frame: ipv4_frame(255, 112, m4, d4, &unknown),
            expect: Expect::Foreign { vrid: 99 },
        },
        Case {
            name: "foreign-group",
            label: "another speaker's: our VRID to 224.0.0.19 (v3 IPv4), passed",
            frame: ipv4_frame(255, 112, m4, other_group, &foreign_group),
            expect: Expect::Foreign { vrid: BENCH_VRID },
        },
        Case {
            name: "udp-ipv4",
            label: "not VRRP: UDP/IPv4 (DNS query)",
            frame: udp_ipv4_frame(),
            expect: Expect::Pass,
        },
        Case {
            name: "arp",
            label: "not VRRP: ARP request",
            frame: arp_frame(),
            expect: Expect::Pass,
        },
        Case {
            name: "tcp-ipv6",
            label: "not VRRP: TCP/IPv6 (SYN)",
            frame: tcp_ipv6_frame(),
            expect: Expect::Pass,
        },
    ]
}

/// An Ethernet frame from the master's MAC, padded to the 60-byte minimum as a NIC delivers it.
fn ethernet(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// RFC 1071 over the IPv4 header.
fn ipv4_header_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_frame(ttl: u8, proto: u8, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        unreachable!("IPv4 addresses")
    };
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0xc0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, ttl, proto, 0, 0]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    let sum = ipv4_header_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    let mac = if d.is_multicast() {
        let o = d.octets();
        [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
    } else {
        OUR_MAC
    };
    ethernet(mac, 0x0800, &p)
}

fn ipv6_frame(hop_limit: u8, next: u8, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        unreachable!("IPv6 addresses")
    };
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, hop_limit]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(payload);
    let mac = if d.is_multicast() {
        let o = d.octets();
        [0x33, 0x33, o[12], o[13], o[14], o[15]]
    } else {
        OUR_MAC
    };
    ethernet(mac, 0x86dd, &p)
}

/// A client's DNS query to the VIP (UDP checksum 0: none, allowed over IPv4).
fn udp_ipv4_frame() -> Vec<u8> {
    let query =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03org\x00\x00\x01\x00\x01";
    let mut udp = 40_000u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&53u16.to_be_bytes());
    udp.extend_from_slice(&((8 + query.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(query);
    ipv4_frame(64, 17, v4(192, 0, 2, 50), BENCH_VIP.into(), &udp)
}

/// Who has the VIP? (a client's ARP request, broadcast).
fn arp_frame() -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    a.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x32]);
    a.extend_from_slice(&[192, 0, 2, 50]);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&BENCH_VIP.octets());
    ethernet([0xff; 6], 0x0806, &a)
}

/// A client's TCP SYN to an IPv6 address (checksum left 0: nothing on this path reads it).
fn tcp_ipv6_frame() -> Vec<u8> {
    let mut tcp = 40_000u16.to_be_bytes().to_vec();
    tcp.extend_from_slice(&443u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    ipv6_frame(
        64,
        6,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50).into(),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200).into(),
        &tcp,
    )
}

//! Packets per second through a director's XDP for the `lvs` bench (`cargo xtask bench
//! --scenario lvs`): `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` runs a program on
//! frames as if the director's `eth0` had received them, and really sends what it returns:
//! `XDP_TX`/redirect through the veth to the LAN, `XDP_PASS` into the director's stack (which
//! forwards with `ip_forward`). One frame generator for every case, in the kernel: no userspace
//! sender is the limit, and the receiving side is counted too (the director's bridge port and
//! the real servers).

use ha_common::wire::internet_checksum;
use std::{net::Ipv4Addr, time::Duration};

use anyhow::{Context, Result, bail};
use aya::programs::{ProgramInfo, TestRun, TestRunAttrs, TestRunOptions, Xdp};

use super::{LvsLab, REALS, VIP1, rx_packets};
use crate::{IFACE, Node, in_netns};

/// The UDP port the bench's frames go to (the `virtual_server` of the bench's config).
pub const BENCH_PORT: u16 = 9;
/// Frames per `BPF_PROG_TEST_RUN` call.
pub const REPEAT: u32 = 1_000_000;
/// Frames the kernel builds and sends at a time in live mode.
const BATCH: u32 = 64;

/// Which program runs the frames.
pub enum Program<'a> {
    /// A program of the agent's eBPF object, loaded for the measurement (`xdp_bounce`,
    /// `xdp_baseline`); not attached anywhere.
    FromObject {
        object: &'static [u8],
        name: &'a str,
    },
    /// The XDP program attached to the node's `eth0` (the agent's `vrrp_rx`, which tail-calls
    /// `xdp_lb`), with the maps the agent fills.
    Attached,
}

/// One `BPF_PROG_TEST_RUN` of `REPEAT` live frames.
#[derive(Clone, Copy, Debug)]
pub struct LiveRun {
    /// The kernel's time per frame (its figure for the call divided by `REPEAT`; live mode
    /// reports no verdict: the frames' fate is counted on the receiving side).
    pub per_frame: Duration,
}

impl LiveRun {
    /// Million packets per second the program (and the transmission it asked for) sustained.
    pub fn mpps(&self) -> f64 {
        1e-6 / self.per_frame.as_secs_f64()
    }
}

/// A 60-byte Ethernet + IPv4 + UDP frame from `src` to `dst`:`BENCH_PORT`, Ethernet addresses
/// as given (the director's as destination).
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let payload = [0u8; 18];
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&BENCH_PORT.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    f
}

/// The id of the XDP program attached to `node`'s `eth0` (`ip -j -d link`).
fn attached_prog_id(node: &Node) -> Result<u32> {
    let out = node.run("ip", &["-j", "-d", "link", "show", "dev", IFACE])?;
    let json: serde_json::Value = serde_json::from_str(&out).context("ip -j link")?;
    json[0]["xdp"]["prog"]["id"]
        .as_u64()
        .map(|id| id as u32)
        .with_context(|| format!("no XDP program on {}'s {IFACE}: {out}", node.ns))
}

/// Runs `program` on `REPEAT` copies of `frame`, as received on `node`'s `eth0`, in live mode.
pub fn live_frames(node: &Node, program: Program<'_>, frame: &[u8]) -> Result<LiveRun> {
    let attached = match program {
        Program::Attached => Some(attached_prog_id(node)?),
        Program::FromObject { .. } => None,
    };
    let (object, name) = match program {
        Program::FromObject { object, name } => (Some(object), name.to_owned()),
        Program::Attached => (None, String::new()),
    };
    let frame = frame.to_vec();
    in_netns(&node.ns, move || {
        let ifindex = nix_ifindex(IFACE)?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex; live mode wants data 0 and data_end the frame's length.
        let ctx: Vec<u8> = [0, frame.len() as u32, 0, ifindex, 0, 0]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let run_on = |prog: &Xdp| -> Result<LiveRun> {
            let result = prog
                .test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ctx_in: Some(&ctx),
                    repeat: REPEAT,
                    attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
                    ..TestRunOptions::new()
                })
                .context("BPF_PROG_TEST_RUN with live frames")?;
            Ok(LiveRun {
                per_frame: result.duration,
            })
        };
        if let Some(id) = attached {
            let info = aya::programs::loaded_programs()
                .filter_map(Result::ok)
                .find(|p: &ProgramInfo| p.id() == id)
                .with_context(|| format!("program id {id} is not loaded"))?;
            let prog = Xdp::from_program_info(
                info,
                "attached".into(),
                aya_obj::programs::XdpAttachType::Interface,
            )
            .context("opening the attached XDP program")?;
            return run_on(&prog);
        }
        let Some(object) = object else {
            bail!("no program");
        };
        let mut head = [0u8; 34];
        head.copy_from_slice(&frame[..34]);
        let mut ebpf = aya::EbpfLoader::new()
            .override_global("LAB_FRAME_HEAD", &head, true)
            .load(object)
            .context("loading the eBPF object")?;
        let prog: &mut Xdp = ebpf
            .program_mut(&name)
            .with_context(|| format!("{name} is not in the eBPF object"))?
            .try_into()?;
        prog.load().with_context(|| format!("loading {name}"))?;
        run_on(prog)
    })
}

/// `if_nametoindex` in the current thread's namespace.
fn nix_ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: a valid NUL-terminated name; no other precondition.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        bail!(
            "if_nametoindex({name}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(index)
}

/// At `node`'s `eth0` ingress, counts and drops UDP to `BENCH_PORT` (the bench's frames must
/// not make the real servers answer): a netdev nftables rule, read by [`bench_received`].
pub fn count_and_drop_bench_frames(node: &Node) -> Result<()> {
    node.sh(&format!(
        "nft list table netdev lvsbench >/dev/null 2>&1 || {{ nft add table netdev lvsbench && \
         nft add chain netdev lvsbench in '{{ type filter hook ingress device {IFACE} priority -10 ; }}' && \
         nft add rule netdev lvsbench in udp dport {BENCH_PORT} counter drop ; }}"
    ))
    .map(drop)
}

/// Frames [`count_and_drop_bench_frames`] counted on `node` so far.
pub fn bench_received(node: &Node) -> Result<u64> {
    let out = node.run("nft", &["list", "chain", "netdev", "lvsbench", "in"])?;
    let mut words = out.split_whitespace();
    words
        .find(|w| *w == "packets")
        .and_then(|_| words.next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no packet count in {out}"))
}

/// One case of the bench: the director's rate and what reached the other side.
#[derive(Clone, Copy, Debug)]
pub struct PpsCase {
    pub run: LiveRun,
    /// Frames the director put on its link (its bridge port's `rx_packets`).
    pub transmitted: u64,
    /// Frames the real servers received (`None` for the bounce, whose frames go back to the
    /// client).
    pub received: Option<u64>,
}

/// The director (node 1) and the frame's fixed parts.
fn frame_to(lvs: &LvsLab, dst: Ipv4Addr) -> Result<Vec<u8>> {
    let d1 = lvs.node(1);
    Ok(udp_frame(
        crate::parse_mac(&d1.mac()?)?,
        crate::parse_mac(&lvs.client().mac()?)?,
        lvs.client().ipv4,
        dst,
        40000,
    ))
}

fn received(lvs: &LvsLab) -> Result<u64> {
    REALS.iter().map(|&n| bench_received(lvs.node(n))).sum()
}

/// Runs `program` on `frame` at director 1 and counts both sides.
fn case(lvs: &LvsLab, program: Program<'_>, frame: &[u8], count_reals: bool) -> Result<PpsCase> {
    for n in REALS {
        count_and_drop_bench_frames(lvs.node(n))?;
    }
    let port = lvs.node(1).port.clone();
    let (tx0, rx0) = (rx_packets(&lvs.lab.lan, &port)?, received(lvs)?);
    let run = live_frames(lvs.node(1), program, frame)?;
    // The receiving side drains its queues after the call; wait (bounded) until the counts
    // stop moving.
    let mut last = (u64::MAX, u64::MAX);
    let _ = crate::wait_for(
        "the receiving side to settle",
        Duration::from_secs(5),
        || {
            std::thread::sleep(Duration::from_millis(100));
            let now = (rx_packets(&lvs.lab.lan, &port)?, received(lvs)?);
            let settled = now == last;
            last = now;
            Ok(settled)
        },
    );
    Ok(PpsCase {
        run,
        transmitted: last.0.saturating_sub(tx0),
        received: count_reals.then(|| last.1.saturating_sub(rx0)),
    })
}

/// `xdp_bounce` (swap MACs, `XDP_TX`) on director 1: the ceiling of any XDP forwarder there.
pub fn bounce(lvs: &LvsLab) -> Result<PpsCase> {
    let frame = frame_to(lvs, VIP1)?;
    case(
        lvs,
        Program::FromObject {
            object: lvs.object,
            name: "xdp_bounce",
        },
        &frame,
        false,
    )
}

/// The kernel forwarding the same frames (`lab_live_reset`: `XDP_PASS` into director 1's stack,
/// `ip_forward` to real server 3, out of the same interface): what IPVS-less routing costs.
pub fn kernel_forwarding(lvs: &LvsLab) -> Result<PpsCase> {
    let d1 = lvs.node(1);
    let rs = lvs.node(REALS[0]);
    d1.sh(&format!(
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
         net.ipv4.conf.{IFACE}.send_redirects=0 && ping -c 1 -W 2 {} >/dev/null",
        rs.ipv4
    ))?;
    let frame = frame_to(lvs, rs.ipv4)?;
    let result = case(
        lvs,
        Program::FromObject {
            object: lvs.object,
            name: "lab_live_reset",
        },
        &frame,
        true,
    );
    d1.sh("sysctl -qw net.ipv4.ip_forward=0")?;
    result
}

/// The agent's XDP on director 1 (`vrrp_rx`, tail-calling `xdp_lb`) on frames to
/// `VIP1:BENCH_PORT`, a UDP `virtual_server` of the running agent's config.
pub fn xdp_lb(lvs: &LvsLab) -> Result<PpsCase> {
    let frame = frame_to(lvs, VIP1)?;
    case(lvs, Program::Attached, &frame, true)
}

/// The Maglev tables (`LB_RING`) of the `xdp_lb` the agent on `node` runs, one `Vec` per
/// service index up to `services`: found as the `xdp_lb` program that shares a map with the
/// program attached to `eth0` (`vrrp_rx`, the same object), and its map named `LB_RING`.
pub fn rings(node: &Node, services: u32) -> Result<Vec<Vec<u32>>> {
    use aya::maps::{Array, Map, MapData};
    let attached = attached_prog_id(node)?;
    let size = ha_common::lb::LB_RING_SIZE;
    in_netns(&node.ns, move || {
        let programs: Vec<ProgramInfo> = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .collect();
        let maps_of = |p: &ProgramInfo| p.map_ids().ok().flatten().unwrap_or_default();
        let rx = programs
            .iter()
            .find(|p| p.id() == attached)
            .with_context(|| format!("program {attached} is not loaded"))?;
        let rx_maps = maps_of(rx);
        let lb = programs
            .iter()
            .find(|p| {
                p.name_as_str() == Some(ha_common::lb::PROG_XDP_LB)
                    && maps_of(p).iter().any(|m| rx_maps.contains(m))
            })
            .context("no xdp_lb loaded beside the attached program")?;
        let ring_id = maps_of(lb)
            .into_iter()
            .find(|&id| {
                aya::maps::MapInfo::from_id(id)
                    .is_ok_and(|m| m.name_as_str() == Some(ha_common::lb::MAP_LB_RING))
            })
            .context("xdp_lb has no LB_RING")?;
        let map = Map::from_map_data(MapData::from_id(ring_id)?)?;
        let ring: Array<MapData, u32> = map.try_into()?;
        (0..services)
            .map(|s| {
                (0..size)
                    .map(|i| Ok(ring.get(&(s * size + i), 0)?))
                    .collect::<Result<Vec<u32>>>()
            })
            .collect()
    })
}

/// The share of a table's entries that point elsewhere in `after` than in `before` (the flows
/// a change of the table moves), for the services whose table changed; `None` if none did.
pub fn disruption(before: &[Vec<u32>], after: &[Vec<u32>]) -> Option<f64> {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| b.iter().zip(a).filter(|(x, y)| x != y).count() as f64 / b.len() as f64)
        .reduce(f64::max)
}

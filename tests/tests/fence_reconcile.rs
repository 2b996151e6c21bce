//! Issue 13, item 4: `vrrp_rx` sets `SLOT_FENCE[slot]` when an advert preempts a Master and
//! sends an event that makes the agent step down; a lost event (full ring buffer) must not
//! leave a MASTER whose VIPs are fenced. The lab sets the flag from outside (`bpftool` on the
//! maps the agent pins under `--bpf-dir`) as if the event had been lost:
//!
//! - no preempting peer in `PEER`: the agent clears the flag within an advert interval or two,
//!   the client's pings to the VIP are answered again, and the agent said so;
//! - `PEER` shows a higher priority heard just now: the agent steps down as the event would
//!   have made it.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::MetadataExt as _,
    path::PathBuf,
    process::Command,
    time::Duration,
};

use common::{Kind, Scene, epoch_now, global_defs, wait_for_replies};
use ha_tests::{run, v3_instance};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const VRID: u32 = 51;
const ADVERT_INT: Duration = Duration::from_millis(500);

/// Node `i`'s pinned map `name`: `BPF_DIR/<netns inode>-eth0-v<ABI>/name`.
fn pinned_map(s: &Scene, i: usize, name: &str) -> PathBuf {
    let ino = std::fs::metadata(format!("/run/netns/{}", s.lab.node(i).ns))
        .expect("the node's namespace")
        .ino();
    let prefix = format!("{ino}-eth0-v");
    let dir = std::fs::read_dir(&s.lab.bpf_dir)
        .expect("the lab's bpffs")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .unwrap_or_else(|| s.fail(&format!("no {prefix}* in {}", s.lab.bpf_dir.display())));
    dir.path().join(name)
}

/// `bpftool map update pinned PATH key … value …`, bytes in hex.
fn map_update(s: &Scene, map: &PathBuf, key: &[u8], value: &[u8]) {
    let hex = |b: &[u8]| b.iter().map(|x| format!("0x{x:02x}")).collect::<Vec<_>>();
    let mut cmd = Command::new("bpftool");
    cmd.args(["map", "update", "pinned"]).arg(map).arg("key");
    cmd.args(hex(key)).arg("value").args(hex(value));
    if let Err(e) = run(&mut cmd) {
        s.fail(&format!("bpftool: {e:#}"));
    }
}

/// `SLOT_FENCE[VRID]` (u32 index = VRID for IPv4, u32 value, little-endian) set to `on`.
fn set_slot_fence(s: &Scene, on: bool) {
    let map = pinned_map(s, 1, "SLOT_FENCE");
    map_update(s, &map, &VRID.to_le_bytes(), &u32::from(on).to_le_bytes());
}

/// A master of VRID 51 alone on the LAN, pinged by the client.
fn lone_master(tag: &str) -> Scene {
    let mut s = Scene::new(tag, 1);
    s.start(
        1,
        Kind::AgentXdp,
        &(global_defs("n1") + &v3_instance(150, "0.5")),
    );
    s.wait_vip(IpAddr::V4(VIP), &[1], Duration::from_secs(10));
    s.wait("node 1 to be MASTER", Duration::from_secs(5), |s| {
        s.report(1).instances[0].state == "MASTER"
    });
    s
}

#[test]
fn a_stale_kernel_fence_on_a_master_is_cleared() {
    let s = lone_master("fencerec");
    let prober = s.lab.prober(IpAddr::V4(VIP)).expect("pinging the VIP");
    wait_for_replies(&s, IpAddr::V4(VIP), epoch_now(), Duration::from_secs(5));
    let transitions = s.report(1).instances[0].transitions;

    let fenced_at = epoch_now();
    set_slot_fence(&s, true);
    // Replies sent before the flag was set may still arrive; two intervals later only an
    // unfenced VIP answers.
    let after = fenced_at + 2.0 * ADVERT_INT.as_secs_f64();
    wait_for_replies(
        &s,
        IpAddr::V4(VIP),
        after,
        6 * ADVERT_INT + Duration::from_secs(1),
    );
    s.wait_log(1, "fence cleared, the VIPs answer again", 1, ADVERT_INT);
    let report = prober.stop().expect("the prober");
    let st = s.report(1);
    println!(
        "longest gap in the client's pings: {:?}; state {} after {} transitions",
        report.longest_gap(),
        st.instances[0].state,
        st.instances[0].transitions
    );
    if st.instances[0].state != "MASTER" || st.instances[0].transitions != transitions {
        s.fail("clearing a stale fence changed the master's state");
    }
    if report.longest_gap() > 3 * ADVERT_INT {
        s.fail(&format!(
            "the VIP was fenced for {:?}, more than a few advert intervals",
            report.longest_gap()
        ));
    }
}

#[test]
fn a_kernel_fence_whose_event_was_lost_steps_the_master_down() {
    let s = lone_master("fencepeer");
    let transitions = s.report(1).instances[0].transitions;
    // PEER[51]: last_seen_ns (u64), src (16 bytes, IPv4 first), priority, pad, adver_int_cs
    // (u16), pad (u32): a router 192.0.2.9 of priority 200 heard now (CLOCK_MONOTONIC, as
    // bpf_ktime_get_ns).
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let ns = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64;
    let mut peer = Vec::new();
    peer.extend_from_slice(&ns.to_le_bytes());
    peer.extend_from_slice(&[192, 0, 2, 9]);
    peer.extend_from_slice(&[0; 12]);
    peer.extend_from_slice(&[200, 0]);
    peer.extend_from_slice(&50u16.to_le_bytes());
    peer.extend_from_slice(&[0; 4]);
    map_update(&s, &pinned_map(&s, 1, "PEER"), &VRID.to_le_bytes(), &peer);
    set_slot_fence(&s, true);
    s.wait_log(
        1,
        "stepping down as that advert requires",
        1,
        4 * ADVERT_INT,
    );
    s.wait("node 1 to leave MASTER", 2 * ADVERT_INT, |s| {
        s.report(1).instances[0].transitions > transitions
    });
    // The forged peer never advertises again: node 1 takes over once it is silent.
    s.wait_vip(IpAddr::V4(VIP), &[1], Duration::from_secs(10));
}

/// CPUs a per-CPU map holds a value for (`/sys/devices/system/cpu/possible`: `0-N` or `0`).
fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// A ring-buffer overflow the agent was not told about: `PEER[51]` changed to a priority-200
/// router heard now with no event, and `EVENTS_LOST` moved. The agent notices the count within
/// a second, re-reads every instance's peer record and steps down, and shows the loss.
#[test]
fn lost_events_resync_every_instance_from_the_peer_records() {
    let s = lone_master("evlost");
    let transitions = s.report(1).instances[0].transitions;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    // Heard 0.3 s from now: still fresh when the agent reads EVENTS_LOST (once a second),
    // within the master-down interval (1.5 s + skew) when it delivers it.
    let ns = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64 + 300_000_000;
    let mut peer = Vec::new();
    peer.extend_from_slice(&ns.to_le_bytes());
    peer.extend_from_slice(&[192, 0, 2, 9]);
    peer.extend_from_slice(&[0; 12]);
    peer.extend_from_slice(&[200, 0]);
    peer.extend_from_slice(&50u16.to_le_bytes());
    peer.extend_from_slice(&[0; 4]);
    map_update(&s, &pinned_map(&s, 1, "PEER"), &VRID.to_le_bytes(), &peer);
    // One value: bpftool writes it on every CPU of the per-CPU array.
    let events_lost = pinned_map(&s, 1, "EVENTS_LOST");
    map_update(&s, &events_lost, &0u32.to_le_bytes(), &3u64.to_le_bytes());
    s.wait_log(1, "XDP peer events lost", 1, Duration::from_secs(3));
    s.wait(
        "node 1 to step down on the resynchronised peer record",
        2 * ADVERT_INT,
        |s| s.report(1).instances[0].transitions > transitions,
    );
    let st = s.report(1);
    let expected = 3 * possible_cpus() as u64;
    if st.events_lost.get("eth0") != Some(&expected) {
        s.fail(&format!(
            "status events_lost {:?}, want eth0: {expected}",
            st.events_lost
        ));
    }
}

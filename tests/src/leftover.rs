//! What the agents of a lab may leave behind, found: the "nothing left behind" check of the
//! chaos soak (and of any test that wants it).
//!
//! [`Lab::baseline`] notes what a lab's nodes look like before any agent runs; after the agents
//! stopped, [`Lab::leftovers`] lists everything that differs: VIPs, routes, XDP/TC attachments
//! (`bpftool net`, `tc filter` and `ip link` in each node), processes in the nodes, and pinned BPF objects
//! both in the lab's own BPF filesystem (the agents' `--bpf-dir`) and under `/sys/fs/bpf` (an
//! agent that ignored `--bpf-dir` pins there, named after its network namespace's inode). After
//! the lab was dropped, [`gone`] checks that its namespaces, processes and BPF mount went too.
//!
//! Every check that cannot run is itself reported, so the check fails rather than passes when
//! a tool is missing.

use std::{
    net::IpAddr,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Result;

use crate::{IFACE, Lab, Node, run};

/// A lab's nodes before the agents ran.
pub struct Baseline {
    /// `ip route show table all` (v4 and v6) per node.
    routes: Vec<String>,
    /// Inode of each node's network namespace, as the agent names its pin directories.
    ns_inodes: Vec<u64>,
}

/// What a freshly mounted BPF filesystem holds by itself.
const BPFFS_OWN: [&str; 2] = ["maps.debug", "progs.debug"];

/// Where the agent pins when no `--bpf-dir` is given.
pub const SYS_BPF: &str = "/sys/fs/bpf";

impl Lab {
    /// Notes the nodes' routes and namespace inodes; call it before starting agents.
    pub fn baseline(&self) -> Result<Baseline> {
        Ok(Baseline {
            routes: self.nodes.iter().map(routes).collect::<Result<_>>()?,
            ns_inodes: self
                .nodes
                .iter()
                .map(|n| Ok(std::fs::metadata(format!("/run/netns/{}", n.ns))?.ino()))
                .collect::<Result<_>>()?,
        })
    }

    /// Everything the agents left in the lab compared to `base`, one line each: any of `vips`
    /// still on a node, changed routes, BPF programs attached (XDP or TC, also through links),
    /// processes in a node, pinned objects under [`Lab::bpf_dir`] or under `sys_bpf` for the
    /// lab's namespaces. Empty when nothing is left.
    pub fn leftovers(&self, base: &Baseline, vips: &[IpAddr], sys_bpf: &Path) -> Vec<String> {
        let mut left = Vec::new();
        for (k, node) in self.nodes.iter().enumerate() {
            let n = node.index;
            match node.addrs() {
                Ok(addrs) => left.extend(
                    vips.iter()
                        .filter(|v| addrs.contains(v))
                        .map(|v| format!("VIP {v} on n{n}")),
                ),
                Err(e) => left.push(format!("n{n}: cannot list its addresses: {e:#}")),
            }
            match routes(node) {
                Ok(after) if after != base.routes[k] => left.push(format!(
                    "n{n}'s routes changed:\nbefore:\n{}after:\n{after}",
                    base.routes[k]
                )),
                Ok(_) => {}
                Err(e) => left.push(format!("n{n}: cannot list its routes: {e:#}")),
            }
            left.extend(attachments(node).into_iter().map(|a| format!("n{n}: {a}")));
            match run(Command::new("ip").args(["netns", "pids", &node.ns])) {
                Ok(pids) => left.extend(pids.split_whitespace().map(|pid| {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                        .unwrap_or_default();
                    format!("process {pid} in n{n}: {}", cmd.trim())
                })),
                Err(e) => left.push(format!("n{n}: cannot list its processes: {e:#}")),
            }
        }
        match pins(&self.bpf_dir) {
            Ok(p) => left.extend(
                p.into_iter()
                    .map(|p| format!("pinned BPF object {}", p.display())),
            ),
            Err(e) => left.push(format!("cannot read {}: {e:#}", self.bpf_dir.display())),
        }
        // The agent's pin directories are `<netns inode>-<interface>-v<layout>`; anything
        // else named after the lab is its too.
        let ours = |name: &str| {
            name.contains(&self.name)
                || base
                    .ns_inodes
                    .iter()
                    .any(|ino| name.starts_with(&format!("{ino}-")))
        };
        if sys_bpf.is_dir() {
            match pins(sys_bpf) {
                Ok(p) => left.extend(
                    p.into_iter()
                        .filter(|p| {
                            p.strip_prefix(sys_bpf).is_ok_and(|rel| {
                                rel.components()
                                    .any(|c| ours(&c.as_os_str().to_string_lossy()))
                            })
                        })
                        .map(|p| format!("pinned BPF object {}", p.display())),
                ),
                Err(e) => left.push(format!("cannot read {}: {e:#}", sys_bpf.display())),
            }
        }
        left
    }
}

/// XDP and TC programs attached in `node`: `bpftool net show` (XDP, tc and tcx, links
/// included), `tc filter show` (netlink filters) and `ip link` (`prog/xdp`); a failing tool is
/// reported as such.
fn attachments(node: &Node) -> Vec<String> {
    let mut found = Vec::new();
    match node.run("bpftool", &["net", "show"]) {
        // Section headers (`xdp:`, `tc:`, `flow_dissector:`, …) and blank lines aside, every
        // line is an attachment: `eth0(2) driver id 42`,
        // `eth0(2) clsact/ingress vip_fence_ingress:[43] id 43`.
        Ok(out) => found.extend(
            out.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.ends_with(':'))
                .map(|l| format!("BPF program attached: {l}")),
        ),
        Err(e) => found.push(format!("cannot list BPF attachments: {e:#}")),
    }
    // The agent's fence: cls_bpf filters on clsact, attached through netlink.
    for hook in ["ingress", "egress"] {
        match node.run("tc", &["filter", "show", "dev", IFACE, hook]) {
            Ok(out) => found.extend(
                out.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("tc filter {hook} on {IFACE}: {l}")),
            ),
            // A node whose interface was deleted has no filter on it.
            Err(e) if e.to_string().contains("Cannot find device") => {}
            Err(e) => found.push(format!("cannot list tc filters ({hook}) on {IFACE}: {e:#}")),
        }
    }
    // bpftool 7.1 (Debian's) does not show TCX attachments: ask the kernel.
    for (hook, attach_type) in [("ingress", BPF_TCX_INGRESS), ("egress", BPF_TCX_EGRESS)] {
        match tcx_programs(&node.ns, attach_type) {
            Ok(ids) => found.extend(
                ids.iter()
                    .map(|id| format!("BPF program attached: {IFACE} tcx/{hook} prog_id {id}")),
            ),
            Err(e) => found.push(format!("cannot query tcx/{hook} on {IFACE}: {e:#}")),
        }
    }
    match node.run("ip", &["-d", "link", "show", "dev", IFACE]) {
        Ok(out) => {
            if let Some(l) = out.lines().find(|l| l.contains("prog/xdp")) {
                found.push(format!("XDP program on {IFACE}: {}", l.trim()));
            }
        }
        // A node whose interface was deleted has no attachment on it.
        Err(e) if e.to_string().contains("does not exist") => {}
        Err(e) => found.push(format!("cannot show {IFACE}: {e:#}")),
    }
    found
}

const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_TCX_INGRESS: u32 = 46;
const BPF_TCX_EGRESS: u32 = 47;

/// `union bpf_attr` for `BPF_PROG_QUERY` (up to `revision`, kernel 6.6+).
#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// Ids of the programs attached to [`IFACE`] of namespace `ns` at the TCX hook `attach_type`
/// (none when the interface is gone).
fn tcx_programs(ns: &str, attach_type: u32) -> Result<Vec<u32>> {
    crate::in_netns(ns, move || {
        let name = std::ffi::CString::new(IFACE)?;
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Ok(Vec::new());
        }
        let mut ids = [0u32; 64];
        let mut attr = ProgQuery {
            target_ifindex: ifindex,
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..ProgQuery::default()
        };
        // SAFETY: bpf(2) BPF_PROG_QUERY with an attr of the size given, whose prog_ids points
        // at `prog_cnt` u32s that live across the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_QUERY,
                &mut attr as *mut ProgQuery,
                std::mem::size_of::<ProgQuery>(),
            )
        };
        if rc != 0 {
            anyhow::bail!(
                "bpf(BPF_PROG_QUERY, ifindex {ifindex}, attach type {attach_type}): {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(ids[..(attr.prog_cnt as usize).min(ids.len())].to_vec())
    })
}

/// Every file under `dir` (pinned programs, maps and links; directories are walked, not
/// listed), less the iterators a BPF filesystem shows at its root (`maps.debug`, `progs.debug`).
fn pins(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                todo.push(entry.path());
            } else if !(d == dir && BPFFS_OWN.contains(&&*entry.file_name().to_string_lossy())) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// IPv4 and IPv6 routes of every table of a node.
pub(crate) fn routes(node: &Node) -> Result<String> {
    Ok(node.run("ip", &["-4", "route", "show", "table", "all"])?
        + &node.run("ip", &["-6", "route", "show", "table", "all"])?)
}

/// What is left of a dropped lab named `name` (with BPF filesystem `bpf_dir`): its namespaces,
/// any of `pids` still alive, its BPF filesystem still mounted.
pub fn gone(name: &str, bpf_dir: &Path, pids: &[i32]) -> Vec<String> {
    let mut left = Vec::new();
    match std::fs::read_dir("/run/netns") {
        Ok(d) => left.extend(
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(&format!("{name}-")))
                .map(|n| format!("namespace {n}")),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => left.push(format!("cannot read /run/netns: {e}")),
    }
    left.extend(
        pids.iter()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .map(|pid| format!("process {pid}")),
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let dir = bpf_dir.display().to_string();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&dir))
    {
        left.push(format!("BPF filesystem still mounted on {dir}"));
    }
    left
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use super::*;
    use crate::wait_for;

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 210);

    const CONF: &str = "vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    \
        virtual_router_id 71\n    version 3\n    priority 150\n    advert_int 0.1\n    \
        virtual_ipaddress {\n        192.0.2.210/24\n    }\n    virtual_routes {\n        \
        198.51.100.0/24 via 192.0.2.254 dev eth0\n    }\n}\n";

    fn master(lab: &Lab) -> crate::Daemon {
        let mut agent = lab
            .ha_agent(1, CONF, &["--datapath", "xdp", "--log-level", "info"])
            .unwrap();
        agent
            .wait_for_log("ha-agent running", Duration::from_secs(20))
            .unwrap();
        wait_for("the VIP", Duration::from_secs(10), || {
            lab.node(1).has_addr(VIP.into())
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", agent.log()));
        agent
    }

    /// The check passes after a clean exit, and finds what a SIGKILLed agent leaves (its VIP,
    /// route, pins and XDP/TC attachments), a stray process, pins named after the lab's namespaces in
    /// the system's BPF directory (and only those), and a lab that was not removed.
    #[test]
    fn finds_what_a_killed_agent_leaves_and_nothing_after_a_clean_exit() {
        crate::ha_agent_bin().expect("ha-agent binary: `cargo build -p ha-agent`");
        let lab = Lab::new("left", 1).expect("lab");
        let base = lab.baseline().unwrap();
        let vips = [IpAddr::V4(VIP)];
        let sys = lab.dir.join("sys-bpf");
        std::fs::create_dir_all(&sys).unwrap();
        let clean = |lab: &Lab| lab.leftovers(&base, &vips, &sys);
        assert_eq!(clean(&lab), Vec::<String>::new(), "a fresh lab is clean");

        let mut agent = master(&lab);
        agent.signal(libc::SIGTERM).unwrap();
        let status = agent.wait_timeout(Duration::from_secs(10)).unwrap();
        assert!(status.is_some_and(|s| s.success()), "{}", agent.log());
        assert_eq!(
            clean(&lab),
            Vec::<String>::new(),
            "a clean exit leaves nothing; log:\n{}",
            agent.log()
        );

        let mut agent = master(&lab);
        agent.signal(libc::SIGKILL).unwrap();
        agent.wait_timeout(Duration::from_secs(5)).unwrap();
        let _stray = lab
            .node(1)
            .spawn("stray", &lab.dir, "sleep", &["600"])
            .unwrap();
        // Pins an agent without `--bpf-dir` would have made for this lab's node, and one of
        // another namespace that is not the lab's business.
        let ino = base.ns_inodes[0];
        for dir in [
            format!("ha-agent/{ino}-eth0-v1"),
            "ha-agent/1-eth0-v1".into(),
        ] {
            std::fs::create_dir_all(sys.join(&dir)).unwrap();
            std::fs::write(sys.join(dir).join("FENCE"), "").unwrap();
        }
        let left = clean(&lab);
        let has = |what: &str| left.iter().any(|l| l.contains(what));
        let bpf_dir = lab.bpf_dir.display().to_string();
        for what in [
            "VIP 192.0.2.210 on n1",
            "n1's routes changed",
            "198.51.100.0/24",
            &format!("pinned BPF object {bpf_dir}/{ino}-eth0-v"),
            "BPF program attached: eth0",
            "tc filter ingress on eth0",
            "tc filter egress on eth0",
            "XDP program on eth0",
            "sleep 600",
            &format!(
                "pinned BPF object {}/ha-agent/{ino}-eth0-v1/FENCE",
                sys.display()
            ),
        ] {
            assert!(has(what), "{what:?} not found in {left:#?}");
        }
        assert!(!has("/1-eth0-v1"), "another namespace's pins: {left:#?}");

        let (name, bpf) = (lab.name.clone(), lab.bpf_dir.clone());
        let pid = agent.pid();
        let still = gone(&name, &bpf, &[std::process::id() as i32]);
        assert!(
            still.iter().any(|l| l.starts_with("namespace ")),
            "{still:?}"
        );
        assert!(
            still.iter().any(|l| l.contains("BPF filesystem")),
            "{still:?}"
        );
        assert!(still.iter().any(|l| l.starts_with("process ")), "{still:?}");
        drop(_stray);
        drop(agent);
        drop(lab);
        assert_eq!(gone(&name, &bpf, &[pid]), Vec::<String>::new());
    }
}

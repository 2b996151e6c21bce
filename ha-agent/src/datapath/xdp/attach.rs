//! The lifecycle of the programs on an interface: load, attach through netlink (XDP with
//! `IFLA_XDP`, the fence as `cls_bpf` filters on `clsact`), replace what an earlier agent left,
//! detach on a clean exit; the pin directory on a BPF filesystem and the interface lock.

use std::{
    fs::File,
    io::{Read as _, Seek as _, Write as _},
    os::{
        fd::{AsFd as _, AsRawFd as _},
        unix::fs::{MetadataExt, OpenOptionsExt as _},
    },
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        Link as _, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        tc::{NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle},
    },
};

use super::{
    Attached, MAPS_ABI, PINNED_MAPS, PROG_FENCE_EGRESS, PROG_FENCE_INGRESS, PROG_VRRP_RX,
    TC_HANDLE, TC_PRIORITY, XdpDatapath, XdpError, XdpOptions,
    lb::{LB_PINNED, LB_SIZED},
    program, program_err,
};
use crate::datapath::{EBPF_OBJECT, rtnl};

/// File names of the links an older ha-agent (TCX and `bpf_link` XDP) pinned in the pin
/// directory: removed (which detaches them) before attaching.
const LEGACY_LINKS: [&str; 3] = ["link_xdp", "link_tc_ingress", "link_tc_egress"];

/// Where the per-interface locks live (`xdp-<netns inode>-<interface>.lock`).
pub const LOCK_DIR: &str = "/run/ha-agent";

/// `statfs(2)` magic of the BPF filesystem (include/uapi/linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

impl XdpDatapath {
    /// Loads the embedded programs and attaches them to `interface`: XDP in `mode`, the fence on
    /// TC ingress and egress, the load balancer's tables at full size; nothing pinned, detached
    /// on drop. Fails with the step and the kernel's reason.
    pub fn attach(interface: &str, mode: XdpMode) -> Result<Self, XdpError> {
        Self::open(
            interface,
            &XdpOptions {
                mode,
                load_balancer: true,
                ..XdpOptions::default()
            },
        )
    }

    /// Loads the programs without attaching them anywhere: for `BPF_PROG_TEST_RUN`
    /// ([`XdpDatapath::test_run`]) in tests and benchmarks.
    pub fn load_detached() -> Result<Self, XdpError> {
        let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(Box::new)?;
        load_programs(&mut ebpf)?;
        Self::with_maps(String::new(), None, ebpf)
    }

    /// Loads the programs and attaches them to `interface` (see [Lifetime](super#lifetime)):
    /// refuses an interface that is not Ethernet, one another agent holds, and one that runs
    /// another XDP program; replaces ha-agent's own programs left attached.
    pub fn open(interface: &str, options: &XdpOptions) -> Result<Self, XdpError> {
        let ifindex = crate::net::link::if_index(interface)
            .map_err(netlink_err(interface, "looking it up"))?;
        let state =
            rtnl::link_state(ifindex).map_err(netlink_err(interface, "reading its link"))?;
        if state.link_layer != rtnetlink::packet_route::link::LinkLayerType::Ether {
            return Err(XdpError::NotEthernet {
                interface: interface.to_owned(),
                link_type: format!("{:?}", state.link_layer),
            });
        }
        let lock = options
            .persist
            .then(|| lock_interface(interface))
            .transpose()?;
        // Whose XDP program is there: ours is replaced, anyone else's refused.
        let previous = match state.xdp.filter(|_| !options.fence_only) {
            Some((id, mode)) => {
                let info = aya::programs::loaded_programs()
                    .filter_map(Result::ok)
                    .find(|p| p.id() == id);
                let name = info
                    .as_ref()
                    .and_then(|p| p.name_as_str().map(str::to_owned))
                    .unwrap_or_default();
                if name != PROG_VRRP_RX {
                    return Err(XdpError::ForeignXdp {
                        interface: interface.to_owned(),
                        id,
                        name,
                    });
                }
                let fd = info
                    .map(|p| p.fd())
                    .transpose()
                    .map_err(program_err(PROG_VRRP_RX))?;
                fd.map(|fd| (id, mode, fd))
            }
            None => None,
        };

        let mut loader = EbpfLoader::new();
        if let Some(dir) = &options.pin_dir {
            std::fs::create_dir_all(dir).map_err(|source| XdpError::Pin {
                what: "creating the pin directory",
                path: dir.clone(),
                source,
            })?;
            remove_legacy_links(dir)?;
        }
        let pinned = if options.load_balancer {
            &PINNED_MAPS[..]
        } else {
            &PINNED_MAPS[..PINNED_MAPS.len() - LB_PINNED]
        };
        let paths: Vec<(&str, PathBuf)> = match &options.pin_dir {
            Some(dir) => pinned.iter().map(|m| (*m, dir.join(m))).collect(),
            None => Vec::new(),
        };
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        if !options.load_balancer {
            for name in LB_SIZED {
                loader.map_max_entries(name, 1);
            }
        }
        if let (Some(dir), false) = (&options.pin_dir, options.load_balancer) {
            // A predecessor's balancer (no virtual_server here any more): its tables go.
            remove_pins(dir, &PINNED_MAPS[PINNED_MAPS.len() - LB_PINNED..])?;
        }
        let mut ebpf = loader.load(EBPF_OBJECT).map_err(Box::new)?;
        if options.load_balancer {
            // A predecessor's xdp_lb (pinned LB_PROG) runs nothing until `lb()` rewrote the
            // services (its VIPs are fenced below anyway).
            let map = ebpf
                .map_mut(ha_common::lb::MAP_LB_PROG)
                .ok_or(XdpError::Missing {
                    kind: "map",
                    name: ha_common::lb::MAP_LB_PROG,
                })?;
            let mut prog = aya::maps::ProgramArray::try_from(map)
                .map_err(super::map_err(ha_common::lb::MAP_LB_PROG))?;
            match prog.clear_index(&ha_common::lb::LB_PROG_INDEX) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                // Empty already (a fresh array, or the kernel emptied it).
                Err(aya::maps::MapError::SyscallError(e))
                    if e.io_error.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(super::map_err(ha_common::lb::MAP_LB_PROG)(e)),
            }
        }
        load_programs(&mut ebpf)?;
        let mut dp = Self::with_maps(interface.to_owned(), options.pin_dir.clone(), ebpf)?;
        dp.lock = lock;
        dp.lb_sized = options.load_balancer;

        // Every VIP fenced before anything is attached: no unfenced window when replacing.
        dp.heartbeat()?;
        dp.prune_fence(&options.fence)?;
        for vip in &options.fence {
            dp.fence(*vip)?;
        }

        let xdp_mode = previous
            .as_ref()
            .map_or(mode_flags(options.mode), |(_, m, _)| *m);
        if !options.fence_only {
            let xdp: &mut Xdp = program(&mut dp.ebpf, PROG_VRRP_RX)?;
            let fd = xdp
                .fd()
                .map_err(attach_err(interface, "xdp", PROG_VRRP_RX))?;
            let result = match &previous {
                Some((id, _, old)) => {
                    tracing::info!(
                        "replacing {PROG_VRRP_RX} (program id {id}) on {interface}, left by an earlier ha-agent"
                    );
                    rtnl::set_xdp(ifindex, Some(fd.as_fd()), xdp_mode, Some(old.as_fd()))
                }
                None => rtnl::set_xdp(
                    ifindex,
                    Some(fd.as_fd()),
                    xdp_mode | rtnl::XDP_FLAGS_UPDATE_IF_NOEXIST,
                    None,
                ),
            };
            result.map_err(netlink_err(interface, "setting its XDP program (IFLA_XDP)"))?;
        }
        dp.attached = Some(Attached {
            ifindex,
            xdp_mode: (!options.fence_only).then_some(xdp_mode),
            persist: options.persist,
        });
        if let Err(e) = dp.attach_fence() {
            // Not half attached: no XDP without its fence.
            let _ = dp.detach();
            return Err(e);
        }
        Ok(dp)
    }

    /// Attaches the fence programs to TC ingress and egress of the interface.
    fn attach_fence(&mut self) -> Result<(), XdpError> {
        let interface = self.interface.clone();

        // The fence's filters hang off a clsact qdisc; it may exist already.
        if let Err(e) = aya::programs::tc::qdisc_add_clsact(&interface) {
            tracing::debug!("clsact qdisc on {interface}: {e} (an existing one is fine)");
        }
        for (hook, attach_type, prog) in [
            ("tc ingress", TcAttachType::Ingress, PROG_FENCE_INGRESS),
            ("tc egress", TcAttachType::Egress, PROG_FENCE_EGRESS),
        ] {
            let tc: &mut SchedClassifier = program(&mut self.ebpf, prog)?;
            if attach_tc(tc, &interface, attach_type).map_err(attach_err(&interface, hook, prog))? {
                tracing::info!(
                    "replacing {prog} ({hook}) on {interface}, left by an earlier ha-agent"
                );
            }
        }
        Ok(())
    }

    /// A clean exit: detaches the programs (XDP off if it is still ours, both TC filters
    /// deleted) and removes every pin (maps, the directory).
    pub fn close(mut self) -> Result<(), XdpError> {
        let mut first_err = self.detach().err();
        // Unlinked while still held: nothing is left in the lock directory after a clean exit.
        if let Some(lock) = &self.lock {
            let _ = std::fs::remove_file(&lock.path);
        }
        if let Some(dir) = self.pin_dir.take()
            && let Err(source) = std::fs::remove_dir_all(&dir)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            first_err.get_or_insert(XdpError::Pin {
                what: "removing the pin directory",
                path: dir,
                source,
            });
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Removes the programs from the interface; an interface that is gone took them with it.
    pub(super) fn detach(&mut self) -> Result<(), XdpError> {
        let Some(a) = self.attached.take() else {
            return Ok(());
        };
        let gone = |e: &std::io::Error| {
            matches!(
                e.raw_os_error(),
                Some(libc::ENODEV | libc::ENOENT | libc::EINVAL)
            )
        };
        let mut first_err = None;
        let xdp: &mut Xdp = program(&mut self.ebpf, PROG_VRRP_RX)?;
        if let Some(mode) = a.xdp_mode
            && let Ok(fd) = xdp.fd()
            && let Err(source) = rtnl::set_xdp(a.ifindex, None, mode, Some(fd.as_fd()))
            && !gone(&source)
        {
            first_err = Some(netlink_err(&self.interface, "removing its XDP program")(
                source,
            ));
        }
        for (attach_type, prog) in [
            (TcAttachType::Ingress, PROG_FENCE_INGRESS),
            (TcAttachType::Egress, PROG_FENCE_EGRESS),
        ] {
            let Ok(link) = SchedClassifierLink::attached(
                &self.interface,
                attach_type,
                TC_PRIORITY,
                TcHandle::new(0, TC_HANDLE),
                None,
            ) else {
                continue;
            };
            if let Err(e) = link.detach() {
                let lost = match &e {
                    ProgramError::NetlinkError(n) => n.raw_os_error(),
                    ProgramError::TcError(TcError::NetlinkError(n)) => n.raw_os_error(),
                    _ => None,
                };
                if !lost.is_some_and(|errno| gone(&std::io::Error::from_raw_os_error(errno))) {
                    first_err.get_or_insert(attach_err(
                        &self.interface,
                        "removing the tc filter",
                        prog,
                    )(e));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The pin directory for `interface` in this network namespace under `root`:
/// `ROOT/<netns inode>-<interface>-v<MAPS_ABI>`. Checks that `root` is on a BPF filesystem;
/// when `root` is under `/sys/fs/bpf` and nothing is mounted there, mounts one (as systemd does
/// at boot). The pins of another layout for the same interface (an older ha-agent that did not
/// exit cleanly before an upgrade) are removed first: their maps cannot be adopted, and the
/// links an agent before netlink attachment pinned there, left attached, would refuse our XDP
/// and keep a fence whose stale heartbeat drops the VIPs' traffic (programs attached through
/// netlink are replaced in place by [`XdpDatapath::open`]).
pub fn pin_dir(root: &Path, interface: &str) -> Result<PathBuf, XdpError> {
    ensure_bpffs(root)?;
    let ns = std::fs::metadata("/proc/self/ns/net").map_err(|source| XdpError::Pin {
        what: "reading the network namespace of",
        path: "/proc/self/ns/net".into(),
        source,
    })?;
    remove_other_layouts(root, ns.ino(), interface)?;
    Ok(root.join(format!("{}-{interface}-v{MAPS_ABI}", ns.ino())))
}

/// Removes `ROOT/<ino>-<interface>-v<N>` for every layout N but [`MAPS_ABI`] (unpinning their
/// links detaches the programs), with a warning for each.
fn remove_other_layouts(root: &Path, ino: u64, interface: &str) -> Result<(), XdpError> {
    let prefix = format!("{ino}-{interface}-v");
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(XdpError::Pin {
                what: "listing",
                path: root.to_owned(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(layout) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        // Only a number after the prefix: `eth0-v` must not match interface `eth0-v1`'s pins.
        if layout.is_empty()
            || !layout.bytes().all(|b| b.is_ascii_digit())
            || layout == MAPS_ABI.to_string()
        {
            continue;
        }
        let path = entry.path();
        tracing::warn!(
            "removing {}: the pins of another ha-agent layout (v{layout}, this one is \
             v{MAPS_ABI}) for {interface}, left by an agent that did not exit cleanly; its \
             programs are detached or replaced",
            path.display()
        );
        std::fs::remove_dir_all(&path).map_err(|source| XdpError::Pin {
            what: "removing the pins of another layout",
            path,
            source,
        })?;
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs(2) on a NUL-terminated path into a zeroed struct it fills.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == BPF_FS_MAGIC
    }
}

fn ensure_bpffs(root: &Path) -> Result<(), XdpError> {
    let sys = Path::new("/sys/fs/bpf");
    if root.starts_with(sys) && !is_bpffs(sys) {
        // SAFETY: mount(2) with NUL-terminated constant strings.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c"/sys/fs/bpf".as_ptr(),
                c"bpf".as_ptr(),
                0,
                c"mode=0700".as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(XdpError::Pin {
                what: "mounting the BPF filesystem on",
                path: sys.into(),
                source: std::io::Error::last_os_error(),
            });
        }
        tracing::info!("mounted the BPF filesystem on /sys/fs/bpf");
    }
    std::fs::create_dir_all(root).map_err(|source| XdpError::Pin {
        what: "creating",
        path: root.into(),
        source,
    })?;
    if !is_bpffs(root) {
        return Err(XdpError::NotBpffs { path: root.into() });
    }
    Ok(())
}

/// Attaches the fence program `tc` to `interface` at [`TC_PRIORITY`]/[`TC_HANDLE`], replacing in
/// place the filter an earlier agent left there (true). The kernel keeps the filter with the
/// interface: aya's link would delete it when dropped, so it is forgotten.
fn attach_tc(
    tc: &mut SchedClassifier,
    interface: &str,
    attach_type: TcAttachType,
) -> Result<bool, ProgramError> {
    let handle = TcHandle::new(0, TC_HANDLE);
    let options = TcAttachOptions::Netlink(NlOptions {
        priority: TC_PRIORITY,
        handle,
        classid: None,
    });
    let (id, replaced) = match tc.attach_with_options(interface, attach_type, options) {
        Ok(id) => (id, false),
        Err(ProgramError::TcError(TcError::NetlinkError(e)))
            if e.raw_os_error() == Some(libc::EEXIST) =>
        {
            let link =
                SchedClassifierLink::attached(interface, attach_type, TC_PRIORITY, handle, None)
                    .map_err(TcError::IoError)?;
            (tc.attach_to_link(link)?, true)
        }
        Err(e) => return Err(e),
    };
    // A netlink link is (ifindex, hook, priority, handle): forgetting it leaks nothing.
    std::mem::forget(tc.take_link(id)?);
    Ok(replaced)
}

/// `IFLA_XDP_FLAGS` mode bit of `mode` (0: the kernel chooses, native where the driver can).
fn mode_flags(mode: XdpMode) -> u32 {
    match mode {
        XdpMode::Default => 0,
        XdpMode::Skb => rtnl::XDP_FLAGS_SKB_MODE,
        XdpMode::Driver => rtnl::XDP_FLAGS_DRV_MODE,
        XdpMode::Hardware => rtnl::XDP_FLAGS_HW_MODE,
    }
}

/// An interface's lock: held while the file is open.
#[derive(Debug)]
pub struct InterfaceLock {
    _file: File,
    path: PathBuf,
}

/// Takes the lock of `interface` in this network namespace (`LOCK_DIR/xdp-<netns inode>-
/// <interface>.lock`, `flock`, holding our pid), so a second agent cannot fight over it;
/// refused with the pid of the holder.
pub fn lock_interface(interface: &str) -> Result<InterfaceLock, XdpError> {
    let ns = std::fs::metadata("/proc/self/ns/net").map_err(|source| XdpError::Pin {
        what: "reading the network namespace of",
        path: "/proc/self/ns/net".into(),
        source,
    })?;
    let dir = Path::new(LOCK_DIR);
    let path = dir.join(format!("xdp-{}-{interface}.lock", ns.ino()));
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| XdpError::Pin { what, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io("opening the interface lock", &path))?;
    // SAFETY: flock(2) on a file descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(XdpError::Pin {
                what: "locking",
                path,
                source: err,
            });
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(XdpError::Locked {
            interface: interface.to_owned(),
            pid: pid.trim().to_owned(),
            path,
        });
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io("writing our pid to", &path))?;
    Ok(InterfaceLock { _file: file, path })
}

/// Removes the links an older ha-agent pinned in `dir` (unpinning the last reference detaches
/// them): their `bpf_link` XDP would refuse ours, their fence would keep its own maps.
/// Removes the pins of `maps` in `dir` that exist.
fn remove_pins(dir: &Path, maps: &[&str]) -> Result<(), XdpError> {
    for name in maps {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(
                "removed {} (a balancer no longer configured)",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(XdpError::Pin {
                    what: "removing a predecessor's load balancer map",
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn remove_legacy_links(dir: &Path) -> Result<(), XdpError> {
    for name in LEGACY_LINKS {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                "removed {} (a link an older ha-agent pinned): its program is detached",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(XdpError::Pin {
                    what: "removing an older agent's link",
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn load_programs(ebpf: &mut Ebpf) -> Result<(), XdpError> {
    let xdp: &mut Xdp = program(ebpf, PROG_VRRP_RX)?;
    xdp.load().map_err(program_err(PROG_VRRP_RX))?;
    for name in [PROG_FENCE_INGRESS, PROG_FENCE_EGRESS] {
        let tc: &mut SchedClassifier = program(ebpf, name)?;
        tc.load().map_err(program_err(name))?;
    }
    Ok(())
}

/// `map_err` adapter: attaching program `name` to `hook` of `interface` (or removing it) failed.
fn attach_err<'a>(
    interface: &'a str,
    hook: &'static str,
    name: &'static str,
) -> impl FnOnce(ProgramError) -> XdpError + 'a {
    move |source| XdpError::Attach {
        name,
        hook,
        interface: interface.to_owned(),
        source: Box::new(source),
    }
}

/// `map_err` adapter: a netlink request (`what`) on `interface` failed.
fn netlink_err<'a>(
    interface: &'a str,
    what: &'static str,
) -> impl FnOnce(std::io::Error) -> XdpError + 'a {
    move |source| XdpError::Netlink {
        interface: interface.to_owned(),
        what,
        source,
    }
}

//! `vrrp_track_process`: how many processes of a name run, from the kernel's process events
//! connector (netlink `NETLINK_CONNECTOR`, `CN_IDX_PROC`), as keepalived does
//! (keepalived/core/track_process.c): one scan of /proc at start (and after events were lost),
//! then only the kernel's EXEC, FORK, COMM and EXIT events; /proc is never polled.
//!
//! - [`matches`]: whether a process is one a `vrrp_track_process` counts (pure);
//! - [`Quorum`]: one tracker's count, its up/down and its fork/terminate delays (pure, time is
//!   an input);
//! - [`Table`]: the pids counted by each tracker, fed events (pure);
//! - [`Connector`] and [`monitor`]: the socket and the task that feeds the table and reports
//!   each change of a count or a state.

use std::{
    collections::HashMap,
    fs::File,
    io::Read as _,
    os::fd::AsRawFd as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_CONNECTOR};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tracing::{info, warn};

use crate::config::{GlobalDefs, ParamMatch, TrackProcess};

/// How long after lost events (ENOBUFS) /proc is scanned again: the burst that overflowed the
/// socket settles first (keepalived waits a second).
const RESCAN_AFTER: Duration = Duration::from_millis(200);

/// How long the kernel has to acknowledge the subscription (it does so before the send
/// returns; keepalived warns after 100 ms without one).
const ACK_WAIT: Duration = Duration::from_secs(1);

/// The receive buffer asked for at start unless `process_monitor_rcv_bufs` says (keepalived
/// leaves the kernel's default); doubled at each loss, as keepalived does.
const RCVBUF: usize = 1 << 20;

/// What the table knows of one process: its name (comm) and, when a tracker matches command
/// lines, the start of /proc/PID/cmdline (NUL-separated arguments).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proc {
    pub comm: Vec<u8>,
    pub cmdline: Option<Vec<u8>>,
}

/// Whether process `p` is one that `t` counts (track_process.c `check_process`): its comm
/// equals `process`, or with `full_command` its argv[0] does (exactly: no basename, no regex,
/// `pgrep -x`), and its parameters as `param_match` says.
pub fn matches(t: &TrackProcess, p: &Proc) -> bool {
    if !t.full_command {
        return p.comm == t.process.as_bytes();
    }
    let Some(cmdline) = &p.cmdline else {
        return false;
    };
    let argv0_len = cmdline
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(cmdline.len());
    if &cmdline[..argv0_len] != t.process.as_bytes() {
        return false;
    }
    if t.param_match == ParamMatch::None {
        return true;
    }
    let params = cmdline.get(argv0_len + 1..).unwrap_or_default();
    check_params(&configured_params(t), t.param_match, params)
}

/// The configured parameters as the kernel writes a command line: each one NUL-terminated.
fn configured_params(t: &TrackProcess) -> Vec<u8> {
    let mut out = Vec::new();
    for p in &t.params {
        out.extend_from_slice(p.as_bytes());
        out.push(0);
    }
    out
}

/// track_process.c `check_params`: `configured` and `params` NUL-terminated words.
fn check_params(configured: &[u8], mode: ParamMatch, params: &[u8]) -> bool {
    if params.len() < configured.len() {
        return false;
    }
    match mode {
        ParamMatch::None => true,
        ParamMatch::Exact => params == configured,
        ParamMatch::Partial => params.starts_with(configured),
        // The last configured parameter may be the start of the process's (its NUL not compared).
        ParamMatch::Initial => {
            params.starts_with(&configured[..configured.len().saturating_sub(1)])
        }
    }
}

/// Why a count changed: it decides which delay applies (track_process.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A counted process forked (`check_process_fork`): a gained quorum waits `fork_delay`.
    Fork,
    /// A counted process exited (`check_process_termination`): a lost one waits
    /// `terminate_delay`.
    Exit,
    /// A process exec'd into, or renamed itself to or from, a counted name (`check_process`,
    /// `check_process_comm_change`): at once.
    Exec,
}

/// One `vrrp_track_process`: its count, whether it is up (count within
/// `quorum..=quorum_max`, as delays allow), and the delay running, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    quorum: u32,
    quorum_max: u32,
    fork_delay: Duration,
    terminate_delay: Duration,
    count: u32,
    up: bool,
    /// Quorum gained by a fork, counted when this passes.
    fork_timer: Option<Instant>,
    /// Quorum lost by an exit, counted when this passes.
    terminate_timer: Option<Instant>,
}

impl Quorum {
    pub fn new(t: &TrackProcess) -> Quorum {
        Quorum {
            quorum: t.quorum,
            quorum_max: t.quorum_max,
            fork_delay: t.fork_delay,
            terminate_delay: t.terminate_delay,
            count: 0,
            up: t.quorum == 0,
            fork_timer: None,
            terminate_timer: None,
        }
    }

    fn in_range(&self, count: u32) -> bool {
        (self.quorum..=self.quorum_max).contains(&count)
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// The start: the count /proc shows, up or down at once (`initialise_process_tracking_priorities`).
    pub fn start(&mut self, count: u32) {
        self.count = count;
        self.up = self.in_range(count);
        self.fork_timer = None;
        self.terminate_timer = None;
    }

    /// The count is now `count`, for `cause`.
    pub fn set(&mut self, now: Instant, count: u32, cause: Cause) {
        let old = self.count;
        self.count = count;
        if self.in_range(old) == self.in_range(count) {
            return;
        }
        match cause {
            // A fork ends a pending terminate delay at once (the parent re-forked); else waits.
            Cause::Fork => {
                if self.terminate_timer.take().is_none() && !self.fork_delay.is_zero() {
                    self.fork_timer = Some(now + self.fork_delay);
                    return;
                }
            }
            // An exit ends a pending fork delay at once (the child is gone); else waits.
            Cause::Exit => {
                if self.fork_timer.take().is_none() && !self.terminate_delay.is_zero() {
                    self.terminate_timer = Some(now + self.terminate_delay);
                    return;
                }
            }
            // A process that came cancels a terminate delay, one that went a fork delay.
            Cause::Exec if count > old => self.terminate_timer = None,
            Cause::Exec => self.fork_timer = None,
        }
        self.up = self.in_range(count);
    }

    /// After lost events: the count /proc shows now; a change of state waits its delay
    /// (`reinitialise_track_processes`).
    pub fn rescan(&mut self, now: Instant, count: u32) {
        self.fork_timer = None;
        self.terminate_timer = None;
        self.count = count;
        let up = self.in_range(count);
        if up == self.up {
            return;
        }
        match (up, self.fork_delay, self.terminate_delay) {
            (true, d, _) | (false, _, d) if !d.is_zero() => {
                let timer = if up {
                    &mut self.fork_timer
                } else {
                    &mut self.terminate_timer
                };
                *timer = Some(now + d);
            }
            _ => self.up = up,
        }
    }

    /// The delay that runs, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.fork_timer
            .into_iter()
            .chain(self.terminate_timer)
            .min()
    }

    /// A delay that passed: up or down as the count is now.
    pub fn expire(&mut self, now: Instant) {
        let in_range = self.in_range(self.count);
        for timer in [&mut self.fork_timer, &mut self.terminate_timer] {
            if timer.is_some_and(|at| at <= now) {
                *timer = None;
                self.up = in_range;
            }
        }
    }
}

/// One tracker as the runtime sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub name: String,
    pub count: u32,
    pub up: bool,
}

/// Every `vrrp_track_process` and the pids each one counts.
pub struct Table {
    trackers: Vec<(TrackProcess, Quorum)>,
    /// Pid → the trackers (indices) that count it.
    pids: HashMap<i32, Vec<usize>>,
}

impl Table {
    pub fn new(config: &[TrackProcess]) -> Table {
        Table {
            trackers: config.iter().map(|t| (t.clone(), Quorum::new(t))).collect(),
            pids: HashMap::new(),
        }
    }

    /// Whether a process's command line must be read (some tracker matches it), and how much
    /// of it: the longest configured one and one byte more, as keepalived.
    pub fn cmdline_len(&self) -> Option<usize> {
        self.trackers
            .iter()
            .filter(|(t, _)| t.full_command)
            .map(|(t, _)| t.process.len() + 1 + configured_params(t).len() + 1)
            .max()
    }

    fn counted(&self, scan: &[(i32, Proc)]) -> (HashMap<i32, Vec<usize>>, Vec<u32>) {
        let mut pids: HashMap<i32, Vec<usize>> = HashMap::new();
        let mut counts = vec![0; self.trackers.len()];
        for (pid, p) in scan {
            for (i, (t, _)) in self.trackers.iter().enumerate() {
                if matches(t, p) {
                    pids.entry(*pid).or_default().push(i);
                    counts[i] += 1;
                }
            }
        }
        (pids, counts)
    }

    /// The processes running at start.
    pub fn start(&mut self, scan: &[(i32, Proc)]) {
        let (pids, counts) = self.counted(scan);
        self.pids = pids;
        for ((_, q), n) in self.trackers.iter_mut().zip(counts) {
            q.start(n);
        }
    }

    /// After lost events: the processes running now.
    pub fn rescan(&mut self, now: Instant, scan: &[(i32, Proc)]) {
        let (pids, counts) = self.counted(scan);
        self.pids = pids;
        for ((_, q), n) in self.trackers.iter_mut().zip(counts) {
            q.rescan(now, n);
        }
    }

    fn add(&mut self, now: Instant, pid: i32, i: usize, cause: Cause) {
        let list = self.pids.entry(pid).or_default();
        if !list.contains(&i) {
            list.push(i);
            let q = &mut self.trackers[i].1;
            q.set(now, q.count() + 1, cause);
        }
    }

    fn remove(&mut self, now: Instant, pid: i32, i: usize, cause: Cause) {
        let Some(list) = self.pids.get_mut(&pid) else {
            return;
        };
        if let Some(at) = list.iter().position(|&x| x == i) {
            list.swap_remove(at);
            if list.is_empty() {
                self.pids.remove(&pid);
            }
            let q = &mut self.trackers[i].1;
            q.set(now, q.count().saturating_sub(1), cause);
        }
    }

    /// Process `pid` exec'd: it is now `p` (a command line is not read again after this).
    pub fn exec(&mut self, now: Instant, pid: i32, p: &Proc) {
        for i in 0..self.trackers.len() {
            if matches(&self.trackers[i].0, p) {
                self.add(now, pid, i, Cause::Exec);
            } else {
                self.remove(now, pid, i, Cause::Exec);
            }
        }
    }

    /// Process `pid` renamed itself (`prctl(PR_SET_NAME)`): the trackers of comm look again.
    pub fn comm(&mut self, now: Instant, pid: i32, comm: &[u8]) {
        for i in 0..self.trackers.len() {
            let t = &self.trackers[i].0;
            if t.full_command {
                continue;
            }
            if comm == t.process.as_bytes() {
                self.add(now, pid, i, Cause::Exec);
            } else {
                self.remove(now, pid, i, Cause::Exec);
            }
        }
    }

    /// Process `parent` forked `child`: the child is counted where the parent is.
    pub fn fork(&mut self, now: Instant, parent: i32, child: i32) {
        let Some(list) = self.pids.get(&parent).cloned() else {
            return;
        };
        for i in list {
            self.add(now, child, i, Cause::Fork);
        }
    }

    /// Process `pid` exited.
    pub fn exit(&mut self, now: Instant, pid: i32) {
        let Some(list) = self.pids.get(&pid).cloned() else {
            return;
        };
        for i in list {
            self.remove(now, pid, i, Cause::Exit);
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.trackers.iter().filter_map(|(_, q)| q.deadline()).min()
    }

    pub fn expire(&mut self, now: Instant) {
        for (_, q) in &mut self.trackers {
            q.expire(now);
        }
    }

    /// Each tracker's count and state, cheap to compare (what a change is).
    fn states(&self) -> Vec<(u32, bool)> {
        self.trackers
            .iter()
            .map(|(_, q)| (q.count(), q.up()))
            .collect()
    }

    pub fn readings(&self) -> Vec<Reading> {
        self.trackers
            .iter()
            .map(|(t, q)| Reading {
                name: t.name.clone(),
                count: q.count(),
                up: q.up(),
            })
            .collect()
    }
}

/// Reads what the table needs of process `pid` at an event: /proc/PID/comm and, if
/// `cmdline_len`, that much of /proc/PID/cmdline. `None`: it is gone already.
fn read_proc(pid: i32, cmdline_len: Option<usize>) -> Option<Proc> {
    let mut comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    let cmdline = match cmdline_len {
        Some(n) => Some(read_start(&format!("/proc/{pid}/cmdline"), n)?),
        None => None,
    };
    Some(Proc { comm, cmdline })
}

fn read_start(path: &str, n: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    File::open(path)
        .ok()?
        .take(n as u64)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// Every process running now, zombies left out (they do not run), as track_process.c
/// `read_procs`: comm and state from /proc/PID/stat.
pub fn scan(cmdline_len: Option<usize>) -> Vec<(i32, Proc)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(stat) = read_start(&format!("/proc/{pid}/stat"), 128) else {
            continue;
        };
        // "PID (comm) S …": comm may hold ')' itself, the last one ends it.
        let (Some(open), Some(close)) = (
            stat.iter().position(|&b| b == b'('),
            stat.iter().rposition(|&b| b == b')'),
        ) else {
            continue;
        };
        if open >= close || stat.get(close + 2) == Some(&b'Z') {
            continue;
        }
        let comm = stat[open + 1..close].to_vec();
        let cmdline = match cmdline_len {
            Some(n) => match read_start(&format!("/proc/{pid}/cmdline"), n) {
                Some(c) => Some(c),
                None => continue,
            },
            None => None,
        };
        out.push((pid, Proc { comm, cmdline }));
    }
    out
}

/// `<linux/cn_proc.h>`: what a process event is.
const PROC_EVENT_NONE: u32 = 0x0000_0000;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_COMM: u32 = 0x0000_0200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// `<linux/connector.h>`: the process events' connector id (idx, val) and multicast group.
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// `enum proc_cn_mcast_op`.
const PROC_CN_MCAST_LISTEN: u32 = 1;
/// `sizeof(struct nlmsghdr)`, `sizeof(struct cn_msg)`: where `struct proc_event` starts.
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const EVENT_AT: usize = NLMSG_HDRLEN + CN_MSG_LEN;
/// `struct proc_event`: `what`, `cpu`, `timestamp_ns`, then `event_data`.
const EVENT_DATA_AT: usize = EVENT_AT + 16;

/// One event of the connector, as the table takes it (threads left out: only a process's own
/// events, pid == tgid, count).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Fork { parent: i32, child: i32 },
    Exec { pid: i32 },
    Comm { pid: i32, comm: Vec<u8> },
    Exit { pid: i32 },
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes one datagram of the connector (the kernel sends one `proc_event` per message):
/// `None` for what is not a process event the table takes.
pub fn decode(msg: &[u8]) -> Option<Event> {
    let (idx, val) = (u32_at(msg, NLMSG_HDRLEN)?, u32_at(msg, NLMSG_HDRLEN + 4)?);
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC) {
        return None;
    }
    let d = EVENT_DATA_AT;
    let (pid, tgid) = (i32_at(msg, d)?, i32_at(msg, d + 4)?);
    match u32_at(msg, EVENT_AT)? {
        // fork: parent_pid, parent_tgid, child_pid, child_tgid; a new thread is not a process.
        PROC_EVENT_FORK => {
            let (child_pid, child_tgid) = (i32_at(msg, d + 8)?, i32_at(msg, d + 12)?);
            (child_pid == child_tgid).then_some(Event::Fork {
                parent: tgid,
                child: child_tgid,
            })
        }
        PROC_EVENT_EXEC if pid == tgid => Some(Event::Exec { pid: tgid }),
        PROC_EVENT_COMM if pid == tgid => {
            let raw = msg.get(d + 8..d + 24)?;
            let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            Some(Event::Comm {
                pid: tgid,
                comm: raw[..len].to_vec(),
            })
        }
        PROC_EVENT_EXIT if pid == tgid => Some(Event::Exit { pid: tgid }),
        _ => None,
    }
}

/// The kernel's answer to a subscription (`PROC_EVENT_NONE`): its error number, 0 for none.
fn decode_ack(msg: &[u8]) -> Option<u32> {
    let (idx, val) = (u32_at(msg, NLMSG_HDRLEN)?, u32_at(msg, NLMSG_HDRLEN + 4)?);
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC) || u32_at(msg, EVENT_AT)? != PROC_EVENT_NONE {
        return None;
    }
    u32_at(msg, EVENT_DATA_AT)
}

/// The process events connector, subscribed.
pub struct Connector {
    socket: Socket,
    /// Its receive buffer, and whether it is set with SO_RCVBUFFORCE.
    rcvbuf: usize,
    force: bool,
}

/// Sets `socket`'s receive buffer to `size`, past net.core.rmem_max with `force`.
fn set_rcvbuf(socket: &Socket, size: usize, force: bool) -> std::io::Result<()> {
    if !force {
        return socket.set_rx_buf_sz(size);
    }
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt(2) on a socket we own, with a c_int option value and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Connector {
    /// Opens the connector and subscribes to process events. The kernel sends them only in
    /// its initial network namespace: an agent run with `ip netns exec` opens its socket in
    /// the namespace of the nearest ancestor process that is there (the shell or the service
    /// manager that started it), else of pid 1.
    pub fn open(rcvbuf: usize, force: bool) -> Result<Connector> {
        let mut tried = Vec::new();
        match Connector::subscribe(rcvbuf, force) {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(format!("in this network namespace: {e:#}")),
        }
        let mut seen: Vec<u64> = namespace_id("/proc/self/ns/net").into_iter().collect();
        for pid in ancestors().into_iter().chain([1]) {
            let path = format!("/proc/{pid}/ns/net");
            let id = match namespace_id(&path) {
                Ok(id) => id,
                Err(e) => {
                    tried.push(format!("{path}: {e}"));
                    continue;
                }
            };
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            match Connector::subscribe_in(&path, rcvbuf, force) {
                Ok(c) => {
                    info!("track_process: process events from the network namespace of {path}");
                    return Ok(c);
                }
                Err(e) => tried.push(format!("in the network namespace of {path}: {e:#}")),
            }
        }
        bail!(
            "no process events could be subscribed to (the kernel sends them only to its \
             initial network namespace, and answers only processes of its initial pid and user \
             namespaces): {}",
            tried.join("; ")
        )
    }

    /// [`Connector::subscribe`] in the network namespace `ns` (a /proc/PID/ns/net path).
    fn subscribe_in(ns: &str, rcvbuf: usize, force: bool) -> Result<Connector> {
        let ns = File::open(ns).with_context(|| format!("opening {ns}"))?;
        std::thread::spawn(move || -> Result<Connector> {
            // SAFETY: setns(2) on a namespace fd we own; it moves only this short-lived thread,
            // which exits once the socket is open (the socket keeps its namespace).
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setns(CLONE_NEWNET)");
            }
            Connector::subscribe(rcvbuf, force)
        })
        .join()
        .unwrap_or_else(|_| bail!("the thread opening the connector panicked"))
    }

    fn subscribe(rcvbuf: usize, force: bool) -> Result<Connector> {
        let mut socket = Socket::new(NETLINK_CONNECTOR).context(
            "socket(AF_NETLINK, NETLINK_CONNECTOR) (is CONFIG_PROC_EVENTS set in the kernel?)",
        )?;
        socket
            .bind(&SocketAddr::new(0, CN_IDX_PROC))
            .context("binding the connector socket to CN_IDX_PROC")?;
        if let Err(e) = set_rcvbuf(&socket, rcvbuf, force) {
            warn!("track_process: cannot set the connector's receive buffer to {rcvbuf}: {e}");
        }
        let mut msg = Vec::with_capacity(EVENT_AT + 4);
        let len = (EVENT_AT + 4) as u32;
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&3u16.to_ne_bytes()); // NLMSG_DONE, as the connector's messages
        msg.extend_from_slice(&[0; 10]); // flags, seq, pid
        msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        msg.extend_from_slice(&[0; 8]); // seq, ack
        msg.extend_from_slice(&4u16.to_ne_bytes()); // len of the data
        msg.extend_from_slice(&[0; 2]); // flags
        msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
        socket
            .send_to(&msg, &SocketAddr::new(0, 0), 0)
            .context("subscribing to process events (PROC_CN_MCAST_LISTEN)")?;
        Connector::await_ack(&socket)?;
        socket
            .set_non_blocking(true)
            .context("connector socket: O_NONBLOCK")?;
        Ok(Connector {
            socket,
            rcvbuf,
            force,
        })
    }
}

/// For `processes` (none: nothing is opened): the connector, subscribed, then the table of
/// the processes running now (subscribed first, so that no process starts unseen between).
pub fn open(processes: &[TrackProcess], global: &GlobalDefs) -> Result<Option<(Connector, Table)>> {
    if processes.is_empty() {
        return Ok(None);
    }
    let rcvbuf = global
        .process_monitor_rcv_bufs
        .map_or(RCVBUF, |n| n as usize);
    let connector = Connector::open(rcvbuf, global.process_monitor_rcv_bufs_force)
        .context("track_process: the process events connector")?;
    let mut table = Table::new(processes);
    table.start(&scan(table.cmdline_len()));
    for r in table.readings() {
        info!(
            "track_process {}: {} running, quorum {}",
            r.name,
            r.count,
            if r.up { "held" } else { "not held" }
        );
    }
    Ok(Some((connector, table)))
}

/// A namespace's identity: the inode of its /proc file.
fn namespace_id(path: &str) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).map(|m| m.ino())
}

/// This process's parent, its parent's, … up to (not including) pid 1.
fn ancestors() -> Vec<i32> {
    let parent = |pid: &str| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "PID (comm) S PPID …": after the last ')'.
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let mut out = Vec::new();
    let mut pid = parent("self");
    while let Some(p) = pid.filter(|&p| p > 1 && out.len() < 64) {
        out.push(p);
        pid = parent(&p.to_string());
    }
    out
}

impl Connector {
    /// Waits for the kernel's acknowledgement of the subscription: without one no event ever
    /// comes (the kernel ignores processes outside its initial pid and user namespaces).
    fn await_ack(socket: &Socket) -> Result<()> {
        let sock = socket2::SockRef::from(socket);
        sock.set_read_timeout(Some(ACK_WAIT))
            .context("connector socket: SO_RCVTIMEO")?;
        let deadline = Instant::now() + ACK_WAIT;
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        while Instant::now() < deadline {
            buf.clear();
            match socket.recv_from(&mut buf, 0) {
                Ok((_, from)) if from.port_number() == 0 => match decode_ack(&buf) {
                    Some(0) => return sock.set_read_timeout(None).context("SO_RCVTIMEO"),
                    Some(err) => bail!(
                        "the kernel refused the subscription: {}",
                        std::io::Error::from_raw_os_error(err as i32)
                    ),
                    // Another process's event, before the answer: the scan that follows sees it.
                    None => {}
                },
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e).context("reading the kernel's answer to the subscription"),
            }
        }
        bail!(
            "the kernel did not acknowledge the subscription within {ACK_WAIT:?} (it answers only \
             processes of its initial pid and user namespaces)"
        )
    }
}

/// Reads the connector's events into `table` and sends its readings on `readings` whenever a
/// count or a state changes, until `readings` is closed. Run it as a task.
pub async fn monitor(
    connector: Connector,
    mut table: Table,
    readings: mpsc::UnboundedSender<Vec<Reading>>,
) {
    let cmdline_len = table.cmdline_len();
    let (mut rcvbuf, force) = (connector.rcvbuf, connector.force);
    // SAFETY: the netlink `Socket` owns its fd, which stays open and the same until the
    // `AsyncFd` (which owns the `Socket`) is dropped.
    let socket = match unsafe { AsyncFd::register(connector.socket) }.map_err(std::io::Error::from)
    {
        Ok(s) => s,
        Err(e) => {
            warn!("track_process: cannot watch the connector socket: {e}; counts stay as read");
            return;
        }
    };
    let mut last = table.states();
    let mut rescan_at: Option<Instant> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let deadline = table.next_deadline().into_iter().chain(rescan_at).min();
        tokio::select! {
            ready = socket.readable() => {
                let Ok(mut guard) = ready else {
                    warn!("track_process: the connector socket failed; counts stay as read");
                    return;
                };
                loop {
                    buf.clear();
                    match guard.try_io(|s| s.get_ref().recv_from(&mut buf, 0)) {
                        Ok(Ok((_, from))) => {
                            // Only the kernel speaks here.
                            if from.port_number() != 0 {
                                continue;
                            }
                            let now = Instant::now();
                            match decode(&buf) {
                                Some(Event::Exec { pid }) => {
                                    if let Some(p) = read_proc(pid, cmdline_len) {
                                        table.exec(now, pid, &p);
                                    }
                                }
                                Some(Event::Comm { pid, comm }) => table.comm(now, pid, &comm),
                                Some(Event::Fork { parent, child }) => {
                                    table.fork(now, parent, child)
                                }
                                Some(Event::Exit { pid }) => table.exit(now, pid),
                                None => {}
                            }
                        }
                        Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                            // Once per burst: the rescan waits for the last loss of it.
                            if rescan_at.is_none() {
                                rcvbuf = rcvbuf.saturating_mul(2);
                                let _ = set_rcvbuf(guard.get_ref().get_ref(), rcvbuf, force);
                                warn!(
                                    "track_process: process events were lost (the socket's \
                                     buffer overflowed); reading /proc again, buffer now {rcvbuf} \
                                     bytes (process_monitor_rcv_bufs)"
                                );
                            }
                            rescan_at = Some(Instant::now() + RESCAN_AFTER);
                        }
                        Ok(Err(e)) => {
                            warn!("track_process: reading process events: {e}");
                            break;
                        }
                        Err(_would_block) => break,
                    }
                }
            }
            () = sleep_until(deadline) => {
                let now = Instant::now();
                if rescan_at.is_some_and(|at| at <= now) {
                    rescan_at = None;
                    let scanned = tokio::task::spawn_blocking(move || scan(cmdline_len)).await;
                    if let Ok(scanned) = scanned {
                        table.rescan(Instant::now(), &scanned);
                        for r in table.readings() {
                            info!("track_process {}: {} running after reading /proc again", r.name, r.count);
                        }
                    }
                }
                table.expire(now);
            }
        }
        let states = table.states();
        if states != last {
            let now = table.readings();
            for (r, old) in now.iter().zip(&last) {
                if r.up != old.1 {
                    info!(
                        "track_process {}: quorum {} ({} running)",
                        r.name,
                        if r.up { "gained" } else { "lost" },
                        r.count
                    );
                }
            }
            if readings.send(now).is_err() {
                return;
            }
            last = states;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn tracker(process: &str) -> TrackProcess {
        TrackProcess {
            name: format!("tp_{process}"),
            source: Source {
                file: "k.conf".into(),
                line: 1,
                col: 1,
            },
            process: process.into(),
            params: Vec::new(),
            param_match: ParamMatch::None,
            full_command: false,
            weight: 0,
            weight_reverse: false,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        }
    }

    fn comm(c: &str) -> Proc {
        Proc {
            comm: c.as_bytes().to_vec(),
            cmdline: None,
        }
    }

    fn cmd(comm: &str, argv: &[&str]) -> Proc {
        let mut cmdline = Vec::new();
        for a in argv {
            cmdline.extend_from_slice(a.as_bytes());
            cmdline.push(0);
        }
        Proc {
            comm: comm.as_bytes().to_vec(),
            cmdline: Some(cmdline),
        }
    }

    #[test]
    fn the_name_is_the_comm_exactly_as_pgrep_x() {
        let t = tracker("haproxy");
        assert!(matches(&t, &comm("haproxy")));
        assert!(!matches(&t, &comm("haproxy2")));
        assert!(!matches(&t, &comm("hapr")));
        // argv[0] does not count without full_command
        assert!(!matches(&t, &cmd("sh", &["haproxy"])));
    }

    #[test]
    fn full_command_is_argv0_exactly_and_params_as_param_match() {
        let mut t = tracker("/usr/sbin/haproxy");
        t.full_command = true;
        // argv[0] exactly: not its basename, any parameters.
        assert!(matches(
            &t,
            &cmd("haproxy", &["/usr/sbin/haproxy", "-f", "x.cfg"])
        ));
        assert!(!matches(&t, &cmd("haproxy", &["haproxy", "-f", "x.cfg"])));
        assert!(!matches(&t, &comm("/usr/sbin/haproxy")));

        t.params = vec!["-f".into(), "x.cfg".into()];
        t.param_match = ParamMatch::Exact;
        let argv = |rest: &[&str]| {
            let mut a = vec!["/usr/sbin/haproxy"];
            a.extend_from_slice(rest);
            cmd("haproxy", &a)
        };
        assert!(matches(&t, &argv(&["-f", "x.cfg"])));
        assert!(!matches(&t, &argv(&["-f", "x.cfg", "-D"])));
        assert!(!matches(&t, &argv(&["-f", "x.cf"])));
        assert!(!matches(&t, &argv(&["-f"])));

        t.param_match = ParamMatch::Partial;
        assert!(matches(&t, &argv(&["-f", "x.cfg", "-D"])));
        assert!(!matches(&t, &argv(&["-f", "x.cfgz"])));

        t.param_match = ParamMatch::Initial;
        assert!(matches(&t, &argv(&["-f", "x.cfgz", "-D"])));
        assert!(!matches(&t, &argv(&["-f", "y.cfg"])));

        // param_match with no parameters configured: the command has none.
        t.params.clear();
        t.param_match = ParamMatch::Exact;
        assert!(matches(&t, &argv(&[])));
        assert!(!matches(&t, &argv(&["-D"])));
    }

    fn quorum(q: u32, max: u32, fork: u64, term: u64) -> Quorum {
        let mut t = tracker("x");
        t.quorum = q;
        t.quorum_max = max;
        t.fork_delay = Duration::from_millis(fork);
        t.terminate_delay = Duration::from_millis(term);
        Quorum::new(&t)
    }

    #[test]
    fn quorum_and_quorum_max_bound_the_count() {
        let now = Instant::now();
        let mut q = quorum(2, 3, 0, 0);
        q.start(1);
        assert!(!q.up());
        q.set(now, 2, Cause::Exec);
        assert!(q.up());
        q.set(now, 3, Cause::Fork);
        assert!(q.up());
        q.set(now, 4, Cause::Fork);
        assert!(!q.up(), "more than quorum_max");
        q.set(now, 3, Cause::Exit);
        assert!(q.up());
        q.set(now, 1, Cause::Exit);
        assert!(!q.up());
        // quorum_max 0: up while none runs.
        let mut none = quorum(0, 0, 0, 0);
        none.start(0);
        assert!(none.up());
        none.set(now, 1, Cause::Exec);
        assert!(!none.up());
    }

    #[test]
    fn terminate_delay_holds_a_lost_quorum_and_a_refork_cancels_it() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q = quorum(1, u32::MAX, 0, 500);
        q.start(1);
        q.set(t0, 0, Cause::Exit);
        assert!(q.up(), "still up during terminate_delay");
        assert_eq!(q.deadline(), Some(t0 + ms(500)));
        q.expire(t0 + ms(499));
        assert!(q.up());
        q.expire(t0 + ms(500));
        assert!(!q.up());
        assert_eq!(q.deadline(), None);

        // Restarted within the delay (a supervisor re-execs it): never down.
        q.start(1);
        q.set(t0, 0, Cause::Exit);
        q.set(t0 + ms(100), 1, Cause::Exec);
        assert_eq!(q.deadline(), None);
        q.expire(t0 + ms(600));
        assert!(q.up());
    }

    #[test]
    fn fork_delay_holds_a_quorum_gained_by_fork_and_an_exit_cancels_it() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // quorum_max 1: a fork (two processes) is down only once fork_delay passed.
        let mut q = quorum(1, 1, 300, 0);
        q.start(1);
        q.set(t0, 2, Cause::Fork);
        assert!(q.up());
        q.set(t0 + ms(10), 1, Cause::Exit);
        assert!(q.up(), "the child exited within fork_delay");
        assert_eq!(q.deadline(), None);
        q.set(t0, 2, Cause::Fork);
        q.expire(t0 + ms(300));
        assert!(!q.up());
        // An exec into the name counts at once, whatever the delays.
        let mut e = quorum(1, u32::MAX, 300, 300);
        e.start(0);
        e.set(t0, 1, Cause::Exec);
        assert!(e.up());
    }

    #[test]
    fn a_rescan_after_lost_events_recounts_with_the_delays() {
        let t0 = Instant::now();
        let mut q = quorum(1, u32::MAX, 0, 200);
        q.start(2);
        q.rescan(t0, 0);
        assert!(q.up());
        q.expire(t0 + Duration::from_millis(200));
        assert!(!q.up());
        q.rescan(t0, 3);
        assert!(q.up(), "no fork_delay: up at once");
        assert_eq!(q.count(), 3);
    }

    #[test]
    fn the_table_follows_exec_fork_comm_and_exit() {
        let now = Instant::now();
        let mut table = Table::new(&[tracker("worker"), {
            let mut t = tracker("/bin/app");
            t.full_command = true;
            t
        }]);
        assert_eq!(table.cmdline_len(), Some("/bin/app".len() + 2));
        table.start(&[
            (10, comm("worker")),
            (11, comm("bash")),
            (12, comm("worker")),
        ]);
        let counts = |t: &Table| {
            t.readings()
                .iter()
                .map(|r| (r.count, r.up))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(&table), [(2, true), (0, false)]);
        // The same exec seen twice (the scan raced the event) counts once.
        table.exec(now, 10, &comm("worker"));
        assert_eq!(counts(&table), [(2, true), (0, false)]);
        table.exec(now, 20, &cmd("app", &["/bin/app", "-d"]));
        assert_eq!(counts(&table), [(2, true), (1, true)]);
        // A fork of a counted process counts; the child exec'ing something else does not.
        table.fork(now, 20, 21);
        assert_eq!(counts(&table), [(2, true), (2, true)]);
        table.exec(now, 21, &cmd("sh", &["/bin/sh", "-c", "true"]));
        assert_eq!(counts(&table), [(2, true), (1, true)]);
        // A fork of a process nobody counts is ignored.
        table.fork(now, 11, 22);
        table.exit(now, 22);
        // comm changes: away from the name, and back.
        table.comm(now, 10, b"renamed");
        assert_eq!(counts(&table), [(1, true), (1, true)]);
        table.comm(now, 10, b"worker");
        assert_eq!(counts(&table), [(2, true), (1, true)]);
        // A comm change does not touch a full_command tracker.
        table.comm(now, 20, b"other");
        assert_eq!(counts(&table), [(2, true), (1, true)]);
        table.exit(now, 10);
        table.exit(now, 12);
        table.exit(now, 20);
        table.exit(now, 20);
        assert_eq!(counts(&table), [(0, false), (0, false)]);
    }

    fn message(what: u32, data: &[i32], comm: Option<&[u8; 16]>) -> Vec<u8> {
        let mut m = vec![0u8; EVENT_DATA_AT];
        m[NLMSG_HDRLEN..NLMSG_HDRLEN + 4].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
        m[NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 8].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
        m[EVENT_AT..EVENT_AT + 4].copy_from_slice(&what.to_ne_bytes());
        for d in data {
            m.extend_from_slice(&d.to_ne_bytes());
        }
        if let Some(c) = comm {
            m.extend_from_slice(c);
        }
        m.resize(m.len().max(EVENT_DATA_AT + 24), 0);
        m
    }

    #[test]
    fn events_decode_and_threads_are_left_out() {
        assert_eq!(
            decode(&message(PROC_EVENT_FORK, &[5, 5, 9, 9], None)),
            Some(Event::Fork {
                parent: 5,
                child: 9
            })
        );
        // A new thread (child_pid != child_tgid) is not a process.
        assert_eq!(
            decode(&message(PROC_EVENT_FORK, &[5, 5, 10, 9], None)),
            None
        );
        assert_eq!(
            decode(&message(PROC_EVENT_EXEC, &[7, 7], None)),
            Some(Event::Exec { pid: 7 })
        );
        assert_eq!(decode(&message(PROC_EVENT_EXIT, &[8, 7], None)), None);
        assert_eq!(
            decode(&message(PROC_EVENT_EXIT, &[7, 7, 0, 17], None)),
            Some(Event::Exit { pid: 7 })
        );
        let mut name = [0u8; 16];
        name[..6].copy_from_slice(b"worker");
        assert_eq!(
            decode(&message(PROC_EVENT_COMM, &[7, 7], Some(&name))),
            Some(Event::Comm {
                pid: 7,
                comm: b"worker".to_vec()
            })
        );
        // The kernel's answer to a subscription, with its error.
        assert_eq!(decode_ack(&message(PROC_EVENT_NONE, &[0], None)), Some(0));
        assert_eq!(decode_ack(&message(PROC_EVENT_NONE, &[1], None)), Some(1));
        assert_eq!(decode_ack(&message(PROC_EVENT_EXEC, &[7, 7], None)), None);
        // The ack of the subscription, a short message, another connector: nothing.
        assert_eq!(decode(&message(0, &[0], None)), None);
        assert_eq!(decode(&[0u8; 20]), None);
        let mut other = message(PROC_EVENT_EXEC, &[7, 7], None);
        other[NLMSG_HDRLEN] = 9;
        assert_eq!(decode(&other), None);
    }
}

//! A flood of forged VRRPv3 adverts, for the benchmark "under flood" scenario: the same frame
//! sent again and again out of one interface. Two generators: [`LiveFlood`], XDP live frames
//! (`BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` on `lab_flood_tx`, which returns
//! `XDP_TX`: the kernel builds and transmits the frames in batches, no syscall per frame), and
//! [`flood`], an `AF_PACKET` TX ring (`TPACKET_V2`) with `PACKET_QDISC_BYPASS`, so one `sendto`
//! hands the kernel a whole ring of frames and no qdisc sits in the way: the fallback where the
//! eBPF object cannot load. Meant to run inside a lab namespace (`vrrp_flood` binary); it never
//! picks an interface by itself.

use std::{
    ffi::CString,
    net::Ipv4Addr,
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;

const ETH_HLEN: usize = 14;
const IPV4_HLEN: usize = 20;
const VRRP_HLEN: usize = 8;

/// What to send and for how long.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    /// Interface to send from (inside the caller's network namespace).
    pub interface: String,
    /// The VRID the forged adverts claim.
    pub vrid: u8,
    /// Priority in the adverts.
    pub priority: u8,
    /// Source MAC; `None`: the VRID's virtual MAC 00:00:5e:00:01:VRID, as a real master sends.
    pub src_mac: Option<[u8; 6]>,
    /// Source IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Max_Adver_Int in centiseconds.
    pub adver_int_cs: u16,
    /// The VIPs the advert lists.
    pub vips: Vec<Ipv4Addr>,
    /// Stop after this many frames (`None`: no limit).
    pub count: Option<u64>,
    /// Stop after this long (`None`: no limit).
    pub duration: Option<Duration>,
}

impl FloodSpec {
    /// The forged advert both generators send.
    fn frame(&self) -> Result<Vec<u8>> {
        vrrp_v3_frame(
            self.src_mac.unwrap_or_else(|| virtual_mac(self.vrid)),
            self.src_ip,
            self.vrid,
            self.priority,
            self.adver_int_cs,
            &self.vips,
        )
    }

    /// How many frames are still to send after `sent` since `start`; `None` once the count or
    /// the duration is reached or `stop` is set.
    fn left(&self, sent: u64, start: Instant, stop: &AtomicBool) -> Option<u64> {
        let left = self.count.map_or(u64::MAX, |c| c - sent);
        let done = left == 0
            || stop.load(Ordering::Relaxed)
            || self.duration.is_some_and(|d| start.elapsed() >= d);
        (!done).then_some(left)
    }
}

/// How a flood's frames were sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// XDP live frames ([`LiveFlood`]).
    Live,
    /// The `AF_PACKET` TX ring ([`flood`]).
    Ring,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Live => "live",
            Method::Ring => "ring",
        }
    }
}

/// What a flood achieved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodReport {
    /// Which generator sent the frames.
    pub method: Method,
    /// Frames the device accepted (ring), or the program transmitted (live: veth may still
    /// drop them when its peer's ring is full; count them on the receiving side).
    pub sent: u64,
    /// Times the device refused a frame (veth: the receiving side's backlog was full); the
    /// kernel keeps such a frame queued and sends it again, so this is back-pressure, not loss.
    pub refusals: u64,
    /// From the first `sendto` to the last one's return.
    pub elapsed: Duration,
    /// Bytes of one frame (Ethernet header included).
    pub frame_len: usize,
}

impl FloodReport {
    /// Frames per second.
    pub fn pps(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line a program can parse back with [`FloodReport::parse`].
    pub fn line(&self) -> String {
        format!(
            "vrrp_flood: method={} sent={} refusals={} elapsed_s={:.6} pps={:.0} frame_len={}",
            self.method.name(),
            self.sent,
            self.refusals,
            self.elapsed.as_secs_f64(),
            self.pps(),
            self.frame_len
        )
    }

    /// Reads a report from the last [`FloodReport::line`] in `text`.
    pub fn parse(text: &str) -> Option<FloodReport> {
        let line = text.lines().rev().find(|l| l.starts_with("vrrp_flood: "))?;
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        };
        let method = match field("method")? {
            "live" => Method::Live,
            "ring" => Method::Ring,
            _ => return None,
        };
        Some(FloodReport {
            method,
            sent: field("sent")?.parse().ok()?,
            refusals: field("refusals")?.parse().ok()?,
            elapsed: Duration::from_secs_f64(field("elapsed_s")?.parse().ok()?),
            frame_len: field("frame_len")?.parse().ok()?,
        })
    }
}

/// The Internet checksum (RFC 1071) of `chunks` concatenated; each chunk has even length except
/// possibly the last.
fn inet_checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in chunks {
        let mut words = chunk.chunks_exact(2);
        for w in &mut words {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame carrying a VRRPv3 advert over IPv4 to 224.0.0.18, TTL 255, with correct IP
/// and VRRP checksums (the v3 checksum covers the IPv4 pseudo-header, RFC 5798 §5.2.8).
pub fn vrrp_v3_frame(
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    vrid: u8,
    priority: u8,
    adver_int_cs: u16,
    vips: &[Ipv4Addr],
) -> Result<Vec<u8>> {
    if vrid == 0 {
        bail!("VRID 0 is not valid (1-255)");
    }
    if adver_int_cs > 0x0fff {
        bail!("Max_Adver_Int {adver_int_cs} cs does not fit in 12 bits");
    }
    let count = u8::try_from(vips.len()).context("at most 255 VIPs in an advert")?;
    let vrrp_len = VRRP_HLEN + 4 * vips.len();
    let ip_len = u16::try_from(IPV4_HLEN + vrrp_len)?;
    let dst = VRRP_GROUP_V4.octets();
    let mut frame = Vec::with_capacity(ETH_HLEN + usize::from(ip_len));
    // Ethernet: IPv4 multicast MAC of 224.0.0.18 (RFC 1112 §6.4).
    frame.extend_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4 (RFC 791): version 4, IHL 5, DSCP CS6 as keepalived sends, DF, TTL 255.
    let ip_start = frame.len();
    frame.extend_from_slice(&[0x45, 0xc0]);
    frame.extend_from_slice(&ip_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0x40, 0x00, 255, IPPROTO_VRRP, 0, 0]);
    frame.extend_from_slice(&src_ip.octets());
    frame.extend_from_slice(&dst);
    let ip_sum = inet_checksum(&[&frame[ip_start..]]);
    frame[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    // VRRPv3 (RFC 5798 §5.1): version 3, type 1, reserved nibble 0.
    let vrrp_start = frame.len();
    frame.extend_from_slice(&[0x31, vrid, priority, count]);
    frame.extend_from_slice(&adver_int_cs.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    for vip in vips {
        frame.extend_from_slice(&vip.octets());
    }
    let vrrp_len16 = u16::try_from(vrrp_len)?.to_be_bytes();
    let pseudo: [u8; 12] = {
        let s = src_ip.octets();
        [
            s[0],
            s[1],
            s[2],
            s[3],
            dst[0],
            dst[1],
            dst[2],
            dst[3],
            0,
            IPPROTO_VRRP,
            vrrp_len16[0],
            vrrp_len16[1],
        ]
    };
    let vrrp_sum = inet_checksum(&[&pseudo, &frame[vrrp_start..]]);
    frame[vrrp_start + 6..vrrp_start + 8].copy_from_slice(&vrrp_sum.to_be_bytes());
    Ok(frame)
}

/// The VRRP virtual router MAC of `vrid` over IPv4 (RFC 5798 §7.3).
pub fn virtual_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

/// Geometry of the TX ring: 4096 frames of 128 bytes in blocks of one page.
const FRAME_SIZE: usize = 128;
const BLOCK_SIZE: usize = 4096;
const BLOCK_NR: usize = 128;
const FRAME_NR: usize = BLOCK_SIZE / FRAME_SIZE * BLOCK_NR;
/// Where the frame's data starts in a slot: after the aligned `tpacket2_hdr` (TPACKET2_HDRLEN
/// minus the `sockaddr_ll` that only RX rings carry).
const DATA_OFFSET: usize = libc::TPACKET2_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>();
/// `struct virtio_net_hdr` (10 bytes) that precedes each frame with `PACKET_VNET_HDR`.
const VNET_HDR_LEN: usize = 10;

/// The `virtio_net_hdr` of a frame of `len` bytes: no checksum offload, no GSO, and `hdr_len`
/// = the whole frame, which makes the kernel copy the frame into the skb's linear part.
/// Without it the skb points into the ring's pages, and veth must then copy them into a freshly
/// allocated page for every frame (`skb_copy_ubufs`), which halves the rate.
fn vnet_header(len: usize) -> [u8; VNET_HDR_LEN] {
    let mut h = [0u8; VNET_HDR_LEN];
    // flags u8, gso_type u8, hdr_len __virtio16 (little-endian: virtio 1.0), gso_size,
    // csum_start, csum_offset.
    h[2..4].copy_from_slice(&(len as u16).to_le_bytes());
    h
}

/// An `AF_PACKET` socket bound to one interface with a mapped `TPACKET_V2` TX ring.
pub(crate) struct TxRing {
    fd: std::os::fd::OwnedFd,
    map: NonNull<u8>,
    len: usize,
}

impl TxRing {
    pub(crate) fn open(interface: &str) -> Result<TxRing> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let ifindex = ifindex(interface)?;
        // Protocol 0: this socket receives nothing, it only sends.
        // SAFETY: socket(2) with constant arguments; the fd is owned below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error())
                .context("socket(AF_PACKET, SOCK_RAW) (needs CAP_NET_RAW)");
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let setopt = |level: i32, opt: i32, val: &[u8], what: &str| -> Result<()> {
            // SAFETY: setsockopt(2) reads `val.len()` bytes from `val`, which lives through the call.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    level,
                    opt,
                    val.as_ptr().cast(),
                    val.len() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("setsockopt({what}) on {interface}"));
            }
            Ok(())
        };
        setopt(
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &1i32.to_ne_bytes(),
            "PACKET_VNET_HDR",
        )?;
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        setopt(
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &version.to_ne_bytes(),
            "PACKET_VERSION TPACKET_V2",
        )?;
        setopt(
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &1i32.to_ne_bytes(),
            "PACKET_QDISC_BYPASS",
        )?;
        // Enough send buffer for a whole ring of skbs in flight.
        let sndbuf = (FRAME_NR * 2048) as libc::c_int;
        setopt(
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            &sndbuf.to_ne_bytes(),
            "SO_SNDBUFFORCE",
        )?;
        let req = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: BLOCK_NR as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: FRAME_NR as u32,
        };
        // SAFETY: tpacket_req is plain old data (four u32); we view it as bytes for setsockopt.
        let req_bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw const req).cast::<u8>(),
                std::mem::size_of::<libc::tpacket_req>(),
            )
        };
        setopt(
            libc::SOL_PACKET,
            libc::PACKET_TX_RING,
            req_bytes,
            "PACKET_TX_RING",
        )?;
        let len = BLOCK_SIZE * BLOCK_NR;
        // SAFETY: mmap(2) of the ring the kernel just allocated for this fd, shared, at a
        // kernel-chosen address; the result is checked before use and unmapped in Drop.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mmap of the TX ring");
        }
        let map = NonNull::new(map.cast::<u8>()).context("mmap returned NULL")?;
        let ring = TxRing { fd, map, len };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value we then fill in.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: bind(2) reads a sockaddr_ll of the size we pass, which lives through the call.
        let rc = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("bind(AF_PACKET) to {interface}"));
        }
        Ok(ring)
    }

    /// The header of slot `i`.
    fn header(&self, i: usize) -> *mut libc::tpacket2_hdr {
        debug_assert!(i < FRAME_NR);
        // SAFETY: slot i starts at i * FRAME_SIZE (frames never straddle blocks: BLOCK_SIZE is
        // a multiple of FRAME_SIZE), inside the mapping of `len` bytes; slots are 16-aligned.
        unsafe { self.map.as_ptr().add(i * FRAME_SIZE).cast() }
    }

    /// Writes `frame` into every slot once; only the status words change afterwards.
    pub(crate) fn fill(&self, frame: &[u8]) -> Result<()> {
        let mut data = vnet_header(frame.len()).to_vec();
        data.extend_from_slice(frame);
        if DATA_OFFSET + data.len() > FRAME_SIZE {
            bail!("a {} byte frame does not fit a ring slot", frame.len());
        }
        for i in 0..FRAME_NR {
            let hdr = self.header(i);
            // SAFETY: the slot lies in our mapping (see `header`) and the kernel does not read
            // it until its status says SEND_REQUEST; the data fits the slot (checked above).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr(),
                    hdr.cast::<u8>().add(DATA_OFFSET),
                    data.len(),
                );
                (&raw mut (*hdr).tp_len).write(data.len() as u32);
            }
        }
        Ok(())
    }

    /// The status word of slot `i`, shared with the kernel.
    fn status(&self, i: usize) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: tp_status is an aligned u32 inside our mapping that lives as long as `self`;
        // the kernel and we access it concurrently, so only through an atomic.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(&raw mut (*self.header(i)).tp_status) }
    }

    /// Hands up to `n` free slots from `*next` on (wrapping) to the kernel, advancing `*next`
    /// past them; returns how many it handed over.
    pub(crate) fn queue(&self, next: &mut usize, n: usize) -> usize {
        self.queue_with(next, n, |_| {})
    }

    /// [`TxRing::queue`], calling `edit` on each slot's frame (as [`TxRing::fill`] wrote it)
    /// before it is handed over: frames that differ, from one ring.
    pub(crate) fn queue_with(
        &self,
        next: &mut usize,
        n: usize,
        mut edit: impl FnMut(&mut [u8]),
    ) -> usize {
        let mut k = 0;
        while k < n {
            let status = self.status(*next);
            // The kernel marks a slot AVAILABLE again once its skb is freed.
            if status.load(Ordering::Acquire) != libc::TP_STATUS_AVAILABLE {
                break;
            }
            let hdr = self.header(*next);
            // SAFETY: the slot is AVAILABLE, so the kernel does not read it until the status
            // store below; `tp_len` and the data were written by `fill` and lie in the slot.
            let frame = unsafe {
                let len = (&raw const (*hdr).tp_len).read() as usize;
                std::slice::from_raw_parts_mut(
                    hdr.cast::<u8>().add(DATA_OFFSET + VNET_HDR_LEN),
                    len - VNET_HDR_LEN,
                )
            };
            edit(frame);
            status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
            *next = (*next + 1) % FRAME_NR;
            k += 1;
        }
        k
    }

    /// Asks the kernel to transmit the queued slots. `Ok(true)`: it did; `Ok(false)`: the device
    /// refused a frame (veth: the peer's backlog was full, or no carrier); the kernel left that
    /// slot and the ones after it queued, and sends them on the next call.
    pub(crate) fn kick(&self) -> Result<bool> {
        use std::os::fd::AsRawFd;
        // SAFETY: sendto(2) with no buffer: the kernel transmits the slots marked SEND_REQUEST.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                0,
                std::ptr::null(),
                0,
            )
        };
        if rc >= 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOBUFS) => Ok(false),
            _ => Err(err).context("sendto on the TX ring"),
        }
    }
    /// Ends a flood of `queued` frames of `frame_len` bytes started at `start`: what is still
    /// queued goes out before we count, unless the device keeps refusing it (500 ms at most).
    pub(crate) fn finish(
        &self,
        queued: u64,
        mut refusals: u64,
        start: Instant,
        frame_len: usize,
    ) -> Result<FloodReport> {
        let drain_until = Instant::now() + Duration::from_millis(500);
        let mut pending = self.pending();
        while pending > 0 && Instant::now() < drain_until {
            if !self.kick()? {
                refusals += 1;
            }
            pending = self.pending();
        }
        Ok(FloodReport {
            method: Method::Ring,
            sent: queued - pending as u64,
            refusals,
            elapsed: start.elapsed(),
            frame_len,
        })
    }

    /// Slots still queued or in flight.
    pub(crate) fn pending(&self) -> usize {
        (0..FRAME_NR)
            .filter(|i| self.status(*i).load(Ordering::Acquire) != libc::TP_STATUS_AVAILABLE)
            .count()
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `open`; no reference into it outlives
        // `self`. The fd closes after this (OwnedFd).
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.len) };
    }
}

/// Sends `spec`'s advert as fast as this thread can until the count or duration is reached or
/// `stop` is set.
pub fn flood(spec: &FloodSpec, stop: &AtomicBool) -> Result<FloodReport> {
    let frame = spec.frame()?;
    let ring = TxRing::open(&spec.interface)?;
    ring.fill(&frame)?;
    let (mut queued, mut refusals, mut next) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    while let Some(left) = spec.left(queued, start, stop) {
        let n = FRAME_NR.min(usize::try_from(left).unwrap_or(usize::MAX));
        queued += ring.queue(&mut next, n) as u64;
        if !ring.kick()? {
            refusals += 1;
        }
    }
    ring.finish(queued, refusals, start, frame.len())
}

/// Frames per `BPF_PROG_TEST_RUN` call of [`LiveFlood`]: about 0.1 s at 1 Mpps, so a stop, a
/// count or a deadline is seen within that.
const LIVE_CHUNK: u32 = 100_000;
/// Frames the kernel builds and transmits at a time in live mode (its maximum is 256).
const LIVE_BATCH: u32 = 64;
/// The headers `lab_flood_tx` writes back over each frame (`LAB_FLOOD_HEAD`).
const LIVE_HEAD: usize = ETH_HLEN + IPV4_HLEN + VRRP_HLEN;

/// The XDP live-frame generator: `lab_flood_tx` of the agent's eBPF object, loaded (never
/// attached) with the advert's headers, run by `BPF_PROG_TEST_RUN` on frames "received" on the
/// interface, which it sends back out with `XDP_TX`. The veth's peer takes such frames only
/// while it has NAPI: see [`xdp_pass_on`].
pub struct LiveFlood {
    // Owns the loaded program.
    ebpf: aya::Ebpf,
    frame: Vec<u8>,
    /// `struct xdp_md` of the test run: the frame arrives on the flood's interface.
    ctx: Vec<u8>,
}

impl LiveFlood {
    /// Loads `lab_flood_tx` from `object` (the agent's eBPF object) for `spec`'s advert, out of
    /// `spec.interface` in the caller's network namespace.
    pub fn load(spec: &FloodSpec, object: &[u8]) -> Result<LiveFlood> {
        let frame = spec.frame()?;
        let ifindex = ifindex(&spec.interface)?;
        let mut head = [0u8; LIVE_HEAD];
        head.copy_from_slice(&frame[..LIVE_HEAD]);
        let mut ebpf = aya::EbpfLoader::new()
            .override_global("LAB_FLOOD_HEAD", &head, true)
            .load(object)
            .context("loading the eBPF object")?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut("lab_flood_tx")
            .context("lab_flood_tx is not in the eBPF object")?
            .try_into()?;
        prog.load().context("loading lab_flood_tx")?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex; live mode wants data 0 and data_end the frame's length.
        let ctx = [0, frame.len() as u32, 0, ifindex, 0, 0]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        Ok(LiveFlood { ebpf, frame, ctx })
    }

    /// Sends until `spec`'s count or duration is reached or `stop` is set (a signal that sets
    /// it also interrupts the running call, whose frames are then counted in neither `sent`
    /// nor `elapsed`).
    pub fn run(&mut self, spec: &FloodSpec, stop: &AtomicBool) -> Result<FloodReport> {
        use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};
        let prog: &mut Xdp = self
            .ebpf
            .program_mut("lab_flood_tx")
            .context("lab_flood_tx")?
            .try_into()?;
        let start = Instant::now();
        let (mut sent, mut elapsed) = (0u64, Duration::ZERO);
        while let Some(left) = spec.left(sent, start, stop) {
            let repeat = LIVE_CHUNK.min(u32::try_from(left).unwrap_or(u32::MAX));
            let run = prog.test_run(TestRunOptions {
                data_in: Some(&self.frame),
                ctx_in: Some(&self.ctx),
                repeat,
                attrs: TestRunAttrs::new().xdp_live_frames(LIVE_BATCH),
                ..TestRunOptions::new()
            });
            match run {
                Ok(_) => {
                    sent += u64::from(repeat);
                    elapsed = start.elapsed();
                }
                Err(_) if stop.load(Ordering::Relaxed) => break,
                Err(e) => return Err(e).context("BPF_PROG_TEST_RUN with live frames"),
            }
        }
        Ok(FloodReport {
            method: Method::Live,
            sent,
            refusals: 0,
            elapsed,
            frame_len: self.frame.len(),
        })
    }
}

/// `xdp_baseline` attached to a port by [`xdp_pass_on`]; detached when dropped.
pub struct XdpPass {
    _ebpf: aya::Ebpf,
}

/// Attaches `xdp_baseline` (`XDP_PASS`) of `object` to `port` in namespace `ns` and keeps it
/// there until the result is dropped. A veth takes the frames its peer sends with `XDP_TX`
/// only while it has NAPI (veth_xdp_xmit drops them otherwise, counted as its rx drops); an
/// XDP program gives it NAPI. For the live generator's bridge port and the LVS directors'.
pub fn xdp_pass_on(ns: &str, port: &str, object: &'static [u8]) -> Result<XdpPass> {
    let port = port.to_owned();
    crate::in_netns(ns, move || {
        let mut ebpf = aya::Ebpf::load(object).context("loading the eBPF object")?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut("xdp_baseline")
            .context("xdp_baseline is not in the eBPF object")?
            .try_into()?;
        prog.load().context("loading xdp_baseline")?;
        prog.attach(&port, aya::programs::XdpMode::Driver)
            .with_context(|| format!("attaching xdp_baseline to {port}"))?;
        Ok(XdpPass { _ebpf: ebpf })
    })
}

/// `if_nametoindex` in the calling thread's namespace.
fn ifindex(interface: &str) -> Result<u32> {
    let name = CString::new(interface)?;
    // SAFETY: if_nametoindex reads a NUL-terminated string we own.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("no interface {interface} in this network namespace"));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_checksums_verify() {
        let frame = vrrp_v3_frame(
            virtual_mac(99),
            Ipv4Addr::new(192, 0, 2, 3),
            99,
            254,
            1,
            &[Ipv4Addr::new(192, 0, 2, 250)],
        )
        .unwrap();
        assert_eq!(frame.len(), ETH_HLEN + IPV4_HLEN + VRRP_HLEN + 4);
        // A correct checksum makes the sum over the covered bytes come out as 0.
        assert_eq!(inet_checksum(&[&frame[ETH_HLEN..ETH_HLEN + IPV4_HLEN]]), 0);
        let vrrp = &frame[ETH_HLEN + IPV4_HLEN..];
        let pseudo = [192, 0, 2, 3, 224, 0, 0, 18, 0, 112, 0, vrrp.len() as u8];
        assert_eq!(inet_checksum(&[&pseudo, vrrp]), 0);
        assert_eq!(&frame[6..12], &[0, 0, 0x5e, 0, 1, 99]);
        assert_eq!(frame[ETH_HLEN + 8], 255, "TTL");
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is !ddf2.
        assert_eq!(
            inet_checksum(&[&[0x00, 0x01, 0xf2, 0x03], &[0xf4, 0xf5, 0xf6, 0xf7]]),
            !0xddf2
        );
    }

    #[test]
    fn rejects_what_does_not_fit() {
        let ip = Ipv4Addr::new(192, 0, 2, 3);
        assert!(vrrp_v3_frame(virtual_mac(1), ip, 0, 100, 1, &[]).is_err());
        assert!(vrrp_v3_frame(virtual_mac(1), ip, 1, 100, 0x1000, &[]).is_err());
    }

    #[test]
    fn report_line_round_trips() {
        let r = FloodReport {
            method: Method::Live,
            sent: 1_234_567,
            refusals: 7,
            elapsed: Duration::from_millis(1500),
            frame_len: 50,
        };
        let back = FloodReport::parse(&format!("noise\n{}\n", r.line())).unwrap();
        assert_eq!(back, r);
        assert!((back.pps() - 823_044.67).abs() < 1.0);
    }
}

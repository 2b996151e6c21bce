//! A two-host lab: network namespaces `hanet-<test>-<pid>-a` and `-b` joined by a veth pair
//! (`veth0` on each side), 192.0.2.1/24 + 2001:db8::1/64 on A and .2 / ::2 on B, fixed MACs,
//! DAD off. Dropping the [`Lab`] deletes both namespaces (and so the veth), also on panic.

use std::fs::File;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const IF: &str = "veth0";
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// Fails (never skips) when not root: these tests are the proof that the module works.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the net integration tests build network namespaces, veth pairs and raw sockets: \
         run them as root (CAP_SYS_ADMIN + CAP_NET_ADMIN + CAP_NET_RAW); euid is {euid}"
    );
}

/// Runs a command and returns its stdout; panics with its stderr if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mac_str(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub struct Lab {
    pub a: String,
    pub b: String,
}

impl Lab {
    pub fn new(test: &str) -> Lab {
        require_root();
        let pid = std::process::id();
        let lab = Lab {
            a: format!("hanet-{test}-{pid}-a"),
            b: format!("hanet-{test}-{pid}-b"),
        };
        // A leftover from a killed run with the same pid would make `netns add` fail.
        lab.remove();
        // From here on, `lab` is dropped (namespaces deleted) if anything panics.
        for ns in [&lab.a, &lab.b] {
            sh(&["ip", "netns", "add", ns]);
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.dad_transmits=0",
                "net.ipv6.conf.default.dad_transmits=0",
                // Let gratuitous ARP / unsolicited NA create neighbour entries: the tests read
                // them to prove the kernel accepted our frames.
                "net.ipv4.conf.all.arp_accept=1",
                "net.ipv4.conf.default.arp_accept=1",
                // (RFC 9131: an unsolicited NA creates an entry only on a router.)
                "net.ipv6.conf.all.accept_untracked_na=1",
                "net.ipv6.conf.default.accept_untracked_na=1",
                "net.ipv6.conf.all.forwarding=1",
            ] {
                sh(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", key]);
            }
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip",
            "-n",
            &lab.a,
            "link",
            "add",
            IF,
            "address",
            &mac_str(MAC_A),
            "type",
            "veth",
            "peer",
            "name",
            IF,
            "netns",
            &lab.b,
            "address",
            &mac_str(MAC_B),
        ]);
        for (ns, v4, v6) in [
            (&lab.a, "192.0.2.1/24", "2001:db8::1/64"),
            (&lab.b, "192.0.2.2/24", "2001:db8::2/64"),
        ] {
            sh(&["ip", "-n", ns, "addr", "add", v4, "dev", IF]);
            sh(&["ip", "-n", ns, "addr", "add", v6, "dev", IF, "nodad"]);
            sh(&["ip", "-n", ns, "link", "set", IF, "up"]);
        }
        lab.wait_ready();
        lab
    }

    /// Until both ends have carrier and a usable (non-tentative) link-local address: packets
    /// sent before that are dropped, IPv6 ones silently.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for ns in [&self.a, &self.b] {
            loop {
                let link = self.ip(ns, &["link", "show", "dev", IF]);
                let addrs = self.ip(ns, &["-6", "addr", "show", "dev", IF]);
                if link.contains("LOWER_UP")
                    && addrs.contains("scope link")
                    && !addrs.contains("tentative")
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{ns}: {IF} not ready:\n{link}{addrs}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn remove(&self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", ns];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Runs `f` on a new thread inside namespace `ns`, on a current-thread tokio runtime.
    pub fn spawn_in<F, Fut, R>(&self, ns: &str, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static,
    {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: `file` is an open network-namespace fd; setns only changes this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(f())
        })
    }

    /// [`Lab::spawn_in`] and wait, re-raising a panic of the namespaced thread.
    pub fn run_in<F, Fut, R>(&self, ns: &str, f: F) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static,
    {
        join(self.spawn_in(ns, f))
    }
}

pub fn join<R>(handle: JoinHandle<R>) -> R {
    match handle.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

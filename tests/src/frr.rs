//! FRR's vrrpd as a VRRP peer in a lab node: `zebra` and `vrrpd` (Debian's `frr`) started with
//! their own configuration, pid files, vty sockets and zebra socket in a directory of the lab,
//! the macvlans with the virtual MACs vrrpd sends from, and vrrpd's state read with `vtysh …
//! show vrrp json`. Everything is stopped and removed on drop, also when a test panics.
//!
//! vrrpd elects and advertises; it adds no address itself (an operator puts the virtual
//! addresses on the macvlan). The lab reads who is master from vrrpd, not from addresses.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{Daemon, IFACE, Node, which};

/// Where Debian's `frr` installs its daemons.
const FRR_DIR: &str = "/usr/lib/frr";

/// One virtual router of vrrpd on the node's `eth0`.
#[derive(Clone, Debug)]
pub struct FrrRouter {
    pub vrid: u8,
    /// 2 or 3.
    pub version: u8,
    pub priority: u8,
    /// `advertisement-interval`, in milliseconds (vrrpd keeps centiseconds).
    pub interval_ms: u32,
    pub vips: Vec<IpAddr>,
}

impl FrrRouter {
    /// vrrpd's configuration lines for this router (under `interface eth0`).
    fn config(&self) -> String {
        let v = self.vrid;
        let mut out = format!(
            " vrrp {v} version {}\n vrrp {v} priority {}\n vrrp {v} advertisement-interval {}\n",
            self.version, self.priority, self.interval_ms
        );
        for vip in &self.vips {
            let family = if vip.is_ipv4() { "ip" } else { "ipv6" };
            out.push_str(&format!(" vrrp {v} {family} {vip}\n"));
        }
        out
    }

    /// The macvlans vrrpd needs: (name, RFC 5798 §7.3 virtual MAC) per address family in use.
    fn macvlans(&self) -> Vec<(String, String)> {
        let v = self.vrid;
        let mut out = Vec::new();
        if self.vips.iter().any(IpAddr::is_ipv4) {
            out.push((format!("vrrp4-{v}"), format!("00:00:5e:00:01:{v:02x}")));
        }
        if self.vips.iter().any(IpAddr::is_ipv6) {
            out.push((format!("vrrp6-{v}"), format!("00:00:5e:00:02:{v:02x}")));
        }
        out
    }
}

/// zebra and vrrpd running in a lab node.
pub struct Frr {
    node: Node,
    /// Configuration, pid files, sockets and logs: `<lab dir>/frr-n<node index>`.
    dir: PathBuf,
    macvlans: Vec<String>,
    /// How many times vrrpd was started (each run has its own log).
    starts: u32,
    /// Logs of the vrrpd runs that ended, for failure messages.
    past_logs: String,
    vrrpd: Option<Daemon>,
    zebra: Option<Daemon>,
}

impl Frr {
    /// Starts zebra and vrrpd in `node` with `routers` on its `eth0`, after creating their
    /// macvlans (up, `addrgenmode random`: a link-local of their own, not eth0's). Fails with
    /// the reason when FRR cannot run here (not installed, root not in group `frrvty`).
    pub fn start(node: &Node, lab_dir: &Path, routers: &[FrrRouter]) -> Result<Frr> {
        let zebra_bin = Path::new(FRR_DIR).join("zebra");
        if !zebra_bin.is_file() || which("vtysh").is_err() {
            bail!(
                "FRR is needed for the FRR interop tests: `apt-get install frr` (`cargo xtask test` installs it)"
            );
        }
        let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
        let in_frrvty = groups
            .lines()
            .find(|l| l.starts_with("frrvty:"))
            .and_then(|l| l.rsplit(':').next())
            .is_some_and(|members| members.split(',').any(|m| m == "root"));
        if !in_frrvty {
            bail!(
                "FRR's daemons run as root here only if root is in group frrvty (they refuse \
                 otherwise): `gpasswd -a root frrvty` (`cargo xtask test` does it)"
            );
        }
        // Short: unix socket paths (vty, zserv.api) have at most 107 bytes.
        let dir = lab_dir.join(format!("frr-n{}", node.index));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut frr = Frr {
            node: node.clone(),
            dir,
            macvlans: Vec::new(),
            starts: 0,
            past_logs: String::new(),
            vrrpd: None,
            zebra: None,
        };
        for router in routers {
            for (name, mac) in router.macvlans() {
                node.run(
                    "ip",
                    &[
                        "link", "add", &name, "link", IFACE, "type", "macvlan", "mode", "bridge",
                    ],
                )?;
                frr.macvlans.push(name.clone());
                node.run(
                    "ip",
                    &[
                        "link",
                        "set",
                        &name,
                        "address",
                        &mac,
                        "addrgenmode",
                        "random",
                    ],
                )?;
                node.run("ip", &["link", "set", &name, "up"])?;
            }
        }
        let mut conf = format!("interface {IFACE}\n");
        for router in routers {
            conf.push_str(&router.config());
        }
        std::fs::write(frr.path("zebra.conf"), "")?;
        std::fs::write(frr.path("vrrpd.conf"), conf)?;
        frr.zebra = Some(frr.spawn("zebra", "zebra")?);
        // vrrpd learns interfaces and addresses from zebra: zebra's socket first.
        let api = frr.dir.join("zserv.api");
        frr.wait("zebra's socket", Duration::from_secs(10), |_| api.exists())?;
        frr.start_vrrpd()?;
        Ok(frr)
    }

    /// Starts vrrpd (again, after [`Frr::signal_vrrpd`] and [`Frr::reap_vrrpd`]) and waits
    /// until it answers on its vty.
    pub fn start_vrrpd(&mut self) -> Result<()> {
        self.starts += 1;
        let name = format!("vrrpd-{}", self.starts);
        self.vrrpd = Some(self.spawn("vrrpd", &name)?);
        self.wait("vrrpd's vty", Duration::from_secs(10), |f| {
            f.show_vrrp().is_ok()
        })
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `FRR_DIR/daemon` in the node, as root, its sockets and files in this FRR's directory,
    /// its output in `frr-<log>.log` there.
    fn spawn(&self, daemon: &str, log: &str) -> Result<Daemon> {
        let bin = Path::new(FRR_DIR).join(daemon).display().to_string();
        let (pid, conf) = (
            self.path(&format!("{daemon}.pid")),
            self.path(&format!("{daemon}.conf")),
        );
        let (api, vty) = (self.path("zserv.api"), self.dir.display().to_string());
        let args = [
            "-u",
            "root",
            "-g",
            "root",
            // No vty TCP port: vtysh talks to the unix socket in `vty`.
            "-P",
            "0",
            "-i",
            &pid,
            "-z",
            &api,
            "--vty_socket",
            &vty,
            "-f",
            &conf,
            "--log",
            "stdout",
            "--log-level",
            "debug",
        ];
        self.node
            .spawn(&format!("frr-{log}"), &self.dir, &bin, &args)
    }

    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Frr) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if cond(self) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "FRR in {}: no {what} after {timeout:?}:\n{}",
            self.node.ns,
            self.logs()
        )
    }

    /// Puts IPv4 `vip` on router `vrid`'s macvlan, as an operator does (vrrpd adds no address),
    /// with the sysctls that keep eth0 out of the VIP's ARP: `arp_ignore` 1 (eth0 answers only
    /// for its own addresses) and `arp_announce` 2 (eth0's requests say eth0's address, not the
    /// VIP a reply comes from, which would teach the client eth0's MAC for the VIP). The
    /// macvlan answers for the VIP, from the virtual MAC, while vrrpd is master; a backup's
    /// macvlan is protodown (no carrier), and so silent.
    pub fn add_vip(&self, vrid: u8, vip: std::net::Ipv4Addr) -> Result<()> {
        self.node.sh(&format!(
            "sysctl -qw net.ipv4.conf.{IFACE}.arp_ignore=1 net.ipv4.conf.{IFACE}.arp_announce=2"
        ))?;
        let dev = format!("vrrp4-{vrid}");
        self.node
            .run("ip", &["addr", "add", &format!("{vip}/32"), "dev", &dev])
            .map(drop)
    }

    /// `show vrrp json`: one object per virtual router.
    pub fn show_vrrp(&self) -> Result<serde_json::Value> {
        let vty = self.dir.display().to_string();
        let out = self
            .node
            .run("vtysh", &["--vty_socket", &vty, "-c", "show vrrp json"])?;
        serde_json::from_str(&out).with_context(|| format!("vtysh show vrrp json: {out}"))
    }

    /// Router `vrid`'s object for `family` ("v4" or "v6") in `show vrrp json` (`status`,
    /// `masterAdverInterval` in milliseconds, `stats`, …); `None` while vrrpd does not answer.
    pub fn router(&self, vrid: u8, family: &str) -> Option<serde_json::Value> {
        let mut all = self.show_vrrp().ok()?;
        let router = all
            .as_array_mut()?
            .iter_mut()
            .find(|r| r["vrid"].as_u64() == Some(u64::from(vrid)))?;
        Some(router[family].take())
    }

    /// vrrpd's state of router `vrid` for `family`: "Initialize", "Backup" or "Master".
    pub fn state(&self, vrid: u8, family: &str) -> Option<String> {
        self.router(vrid, family)?["status"]
            .as_str()
            .map(str::to_owned)
    }

    /// Whether vrrpd is master of router `vrid` for `family`.
    pub fn is_master(&self, vrid: u8, family: &str) -> bool {
        self.state(vrid, family).as_deref() == Some("Master")
    }

    /// Sends `signal` to vrrpd (SIGTERM: vrrpd shuts its routers down, a master with a
    /// priority 0 advert).
    pub fn signal_vrrpd(&self, signal: i32) -> Result<()> {
        self.vrrpd
            .as_ref()
            .context("vrrpd is not running")?
            .signal(signal)
    }

    /// Waits up to `timeout` for vrrpd to exit (after [`Frr::signal_vrrpd`]); `true` if it did
    /// (then it is gone: [`Frr::start_vrrpd`] starts it again).
    pub fn reap_vrrpd(&mut self, timeout: Duration) -> Result<bool> {
        let vrrpd = self.vrrpd.as_mut().context("vrrpd is not running")?;
        if vrrpd.wait_timeout(timeout)?.is_none() {
            return Ok(false);
        }
        let log = without_noise(&vrrpd.log());
        self.past_logs.push_str(&format!(
            "--- FRR vrrpd in {} (exited) ---\n{log}\n",
            self.node.ns
        ));
        self.vrrpd = None;
        Ok(true)
    }

    /// zebra's and vrrpd's logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = self.past_logs.clone();
        for (name, d) in [("zebra", &self.zebra), ("vrrpd", &self.vrrpd)] {
            if let Some(d) = d {
                out.push_str(&format!(
                    "--- FRR {name} in {} ---\n{}\n",
                    self.node.ns,
                    without_noise(&d.log())
                ));
            }
        }
        out
    }
}

/// A log without vrrpd's "Refusing to start Virtual Router" lines: it repeats them, many times,
/// on every interface or address zebra tells it of while a router cannot start or already runs.
fn without_noise(log: &str) -> String {
    log.lines()
        .filter(|l| !l.contains("Refusing to start"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Frr {
    /// Stops vrrpd then zebra (SIGTERM, then SIGKILL to their process groups), deletes the
    /// macvlans and FRR's directory.
    fn drop(&mut self) {
        self.vrrpd.take();
        self.zebra.take();
        for name in &self.macvlans {
            let _ = self.node.run("ip", &["link", "del", name]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_gives_vrrpd_lines_and_a_macvlan_per_family() {
        let router = FrrRouter {
            vrid: 51,
            version: 3,
            priority: 200,
            interval_ms: 100,
            vips: vec![
                "192.0.2.200".parse().unwrap(),
                "2001:db8::200".parse().unwrap(),
            ],
        };
        assert_eq!(
            router.config(),
            " vrrp 51 version 3\n vrrp 51 priority 200\n vrrp 51 advertisement-interval 100\n \
             vrrp 51 ip 192.0.2.200\n vrrp 51 ipv6 2001:db8::200\n"
        );
        // RFC 5798 §7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
        assert_eq!(
            router.macvlans(),
            vec![
                ("vrrp4-51".to_owned(), "00:00:5e:00:01:33".to_owned()),
                ("vrrp6-51".to_owned(), "00:00:5e:00:02:33".to_owned()),
            ]
        );
        let v4_only = FrrRouter {
            vips: vec!["192.0.2.200".parse().unwrap()],
            ..router
        };
        assert_eq!(v4_only.macvlans().len(), 1);
    }
}

//! Instruments run from the lab's client: a 1 ms reachability prober and an ARP probe.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result};

use crate::{Daemon, IFACE, Node, which};

/// An ICMP echo every millisecond from the client to a target (`icmp_prober`, which prints
/// `ping -D`'s lines without iputils ping's busy wait); stop it to get the reply gaps.
pub struct Prober {
    daemon: Daemon,
}

/// What the prober saw.
#[derive(Clone, Debug, PartialEq)]
pub struct ProberReport {
    /// Echo replies received.
    pub replies: usize,
    /// Highest ICMP sequence number sent (about the number of requests).
    pub last_seq: u64,
    /// Wall-clock time of each reply (seconds since the epoch, from `ping -D`).
    pub reply_times: Vec<f64>,
    /// The ICMP sequence number of each reply (as printed: 0..=65535, wrapping).
    pub reply_seqs: Vec<u16>,
}

impl ProberReport {
    /// The longest time between two consecutive replies: the outage a client saw.
    pub fn longest_gap(&self) -> Duration {
        let gap = self
            .reply_times
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(0.0, f64::max);
        Duration::from_secs_f64(gap.max(0.0))
    }

    /// Requests that went unanswered between reply `k` and reply `k + 1` (sequence numbers
    /// skipped). 0 means the prober itself sent nothing in between: a gap in the replies with
    /// no request lost is the client's process being starved, not an outage.
    pub fn lost_between(&self, k: usize) -> u16 {
        match (self.reply_seqs.get(k), self.reply_seqs.get(k + 1)) {
            (Some(a), Some(b)) => b.wrapping_sub(*a).saturating_sub(1),
            _ => 0,
        }
    }

    /// Replies received after wall-clock time `t` (seconds since the epoch).
    pub fn replies_after(&self, t: f64) -> usize {
        self.reply_times.iter().filter(|r| **r > t).count()
    }

    /// Replies received between wall-clock times `from` and `to`.
    pub fn replies_between(&self, from: f64, to: f64) -> usize {
        self.reply_times
            .iter()
            .filter(|r| **r > from && **r < to)
            .count()
    }
}

/// Seconds since the epoch, as `ping -D` prints them.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Seconds since the epoch of a UTC `YYYY-MM-DDTHH:MM:SS[.ffffff]` (`ip -ts monitor` with
/// `TZ=UTC`, tracing's timestamps without their `Z`).
pub fn utc_epoch(ts: &str) -> Option<f64> {
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    Some((days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Prober {
    pub(crate) fn start(client: &Node, target: IpAddr, log_dir: &Path) -> Result<Prober> {
        let bin = crate::prober_bin()?;
        let name = format!("prober-{}", target.to_string().replace([':', '.'], "_"));
        let daemon = client.spawn(
            &name,
            log_dir,
            &bin.to_string_lossy(),
            &[&target.to_string(), "1"],
        )?;
        Ok(Prober { daemon })
    }

    /// Waits until the prober has its first echo reply: it runs and the VIP answers (starting
    /// a process in a namespace can take seconds on a loaded host).
    pub fn wait_answered(&mut self, timeout: Duration) -> Result<()> {
        self.daemon.wait_for_log(" bytes from ", timeout)
    }

    /// Stops the prober and parses what it saw.
    pub fn stop(mut self) -> Result<ProberReport> {
        self.daemon.signal(libc::SIGINT)?;
        self.daemon.wait_timeout(Duration::from_secs(5))?;
        Ok(parse_ping(&self.daemon.log()))
    }
}

fn parse_ping(log: &str) -> ProberReport {
    let mut reply_times = Vec::new();
    let mut reply_seqs = Vec::new();
    let mut last_seq = 0;
    for line in log.lines() {
        if !line.contains("bytes from") {
            continue;
        }
        let Some(ts) = line.strip_prefix('[').and_then(|l| l.split(']').next()) else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        let Some(seq) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("icmp_seq="))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        last_seq = last_seq.max(seq);
        reply_times.push(ts);
        reply_seqs.push(seq as u16);
    }
    ProberReport {
        replies: reply_times.len(),
        last_seq,
        reply_times,
        reply_seqs,
    }
}

/// MACs that answered ARP requests for an address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArpProbe {
    pub macs: BTreeSet<String>,
    pub replies: usize,
}

impl ArpProbe {
    pub(crate) fn run(client: &Node, vip: Ipv4Addr, count: u32) -> Result<ArpProbe> {
        which("arping").context("the ARP probe needs arping: `apt-get install arping`")?;
        // Habets' arping: exit 1 when nobody answered, which is a result, not an error.
        let out = client
            .command("arping")
            .args([
                "-i",
                IFACE,
                "-c",
                &count.to_string(),
                "-W",
                "0.05",
                "-w",
                "2",
                &vip.to_string(),
            ])
            .output()
            .context("running arping")?;
        Ok(parse_arping(&String::from_utf8_lossy(&out.stdout)))
    }
}

fn parse_arping(out: &str) -> ArpProbe {
    let mut probe = ArpProbe::default();
    for line in out.lines() {
        // "60 bytes from 02:11:22:33:44:55 (192.0.2.200): index=0 time=1.234 usec"
        if let Some(rest) = line.split("bytes from ").nth(1)
            && let Some(mac) = rest.split_whitespace().next()
        {
            probe.macs.insert(mac.to_ascii_lowercase());
            probe.replies += 1;
        }
    }
    probe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_gaps() {
        let log = "PING 192.0.2.200 (192.0.2.200) 56(84) bytes of data.\n\
            [1000.000] 64 bytes from 192.0.2.200: icmp_seq=1 ttl=64 time=0.05 ms\n\
            [1000.001] 64 bytes from 192.0.2.200: icmp_seq=2 ttl=64 time=0.05 ms\n\
            [1000.041] 64 bytes from 192.0.2.200: icmp_seq=42 ttl=64 time=0.05 ms\n\
            [1000.042] 64 bytes from 192.0.2.200: icmp_seq=43 ttl=64 time=0.05 ms\n";
        let r = parse_ping(log);
        assert_eq!(r.replies, 4);
        assert_eq!(r.last_seq, 43);
        let gap = r.longest_gap().as_secs_f64();
        assert!((gap - 0.040).abs() < 1e-6, "{gap}");
        assert_eq!(r.lost_between(0), 0);
        assert_eq!(r.lost_between(1), 39);
        assert_eq!(r.lost_between(3), 0, "past the end");
    }

    #[test]
    fn a_starved_prober_is_not_an_outage_and_sequence_numbers_wrap() {
        let log = "[1000.000] 64 bytes from 192.0.2.200: icmp_seq=65534 ttl=64 time=0.05 ms\n\
            [1000.100] 64 bytes from 192.0.2.200: icmp_seq=65535 ttl=64 time=0.05 ms\n\
            [1000.101] 64 bytes from 192.0.2.200: icmp_seq=0 ttl=64 time=0.05 ms\n\
            [1000.200] 64 bytes from 192.0.2.200: icmp_seq=3 ttl=64 time=0.05 ms\n";
        let r = parse_ping(log);
        assert_eq!(r.lost_between(0), 0, "100 ms without a request sent");
        assert_eq!(r.lost_between(1), 0, "65535 -> 0");
        assert_eq!(r.lost_between(2), 2);
    }

    #[test]
    fn arping_macs() {
        let out = "ARPING 192.0.2.200\n\
            60 bytes from 02:AA:00:00:00:01 (192.0.2.200): index=0 time=1.1 usec\n\
            60 bytes from 02:aa:00:00:00:02 (192.0.2.200): index=1 time=1.2 usec\n\
            60 bytes from 02:aa:00:00:00:01 (192.0.2.200): index=2 time=1.1 usec\n";
        let p = parse_arping(out);
        assert_eq!(p.replies, 3);
        assert_eq!(p.macs.len(), 2);
    }
}

//! A flood of gratuitous ARPs claiming one address, each from a new random MAC: what a hostile
//! or broken host on the LAN can send (issue 13, item 3). Frames go out through `flood`'s
//! `TPACKET_V2` TX ring, the MAC rewritten in each slot before it is handed to the kernel, as
//! fast as the ring drains or at a bounded rate. Meant to run inside a lab namespace (call it
//! from [`crate::in_netns`]); it never picks an interface by itself.

use std::{
    net::Ipv4Addr,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::flood::{FloodReport, TxRing};

/// What to claim, from where, how fast and for how long.
#[derive(Clone, Debug)]
pub struct ArpFloodSpec {
    /// Interface to send from (inside the caller's network namespace).
    pub interface: String,
    /// The address every frame claims (sender and target protocol address: a gratuitous ARP).
    pub addr: Ipv4Addr,
    /// Destination MAC; `None`: broadcast, as a gratuitous ARP is. Unicast to one host claims
    /// the address at that host only (the LAN's other neighbour caches are left alone).
    pub dst_mac: Option<[u8; 6]>,
    /// ARP replies (op 2) instead of requests: the receiver does not answer each one.
    pub reply: bool,
    /// Seed of the MACs (xorshift; 0 is replaced by a constant).
    pub seed: u64,
    /// Frames per second at most (`None`: as fast as the device takes them).
    pub rate: Option<u64>,
    /// Stop after this long.
    pub duration: Duration,
}

/// A gratuitous ARP request (RFC 5227 §3 announcement): broadcast, `sha` = `mac`, `spa` = `tpa`
/// = `addr`.
pub fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    // Ethernet, IPv4, 6- and 4-byte addresses, request.
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&addr.octets());
    f[38..42].copy_from_slice(&addr.octets());
    f
}

/// The next MAC of the sequence: unicast, locally administered (never a real vendor's).
fn next_mac(state: &mut u64) -> [u8; 6] {
    // xorshift64 (Marsaglia): enough to make every frame's MAC new.
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let b = state.to_be_bytes();
    [(b[2] & 0xfe) | 0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// Sends `spec`'s claims until its duration is over or `stop` is set.
pub fn arp_flood(spec: &ArpFloodSpec, stop: &AtomicBool) -> Result<FloodReport> {
    let mut frame = garp_frame([2, 0, 0, 0, 0, 1], spec.addr);
    if let Some(dst) = spec.dst_mac {
        frame[0..6].copy_from_slice(&dst);
    }
    if spec.reply {
        frame[21] = 2;
    }
    let ring = TxRing::open(&spec.interface)?;
    ring.fill(&frame)?;
    let mut rng = if spec.seed == 0 {
        0x9e37_79b9_7f4a_7c15
    } else {
        spec.seed
    };
    let (mut queued, mut refusals, mut next) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < spec.duration {
        let n = match spec.rate {
            // What the rate allows by now, in steps of at most 1 ms of it.
            Some(rate) => {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                if due <= queued {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                (due - queued).min(rate / 1000 + 1) as usize
            }
            None => usize::MAX,
        };
        queued += ring.queue_with(&mut next, n, |f| {
            let mac = next_mac(&mut rng);
            f[6..12].copy_from_slice(&mac);
            f[22..28].copy_from_slice(&mac);
        }) as u64;
        if !ring.kick()? {
            refusals += 1;
        }
    }
    ring.finish(queued, refusals, start, frame.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_garp_claims_its_address_for_its_mac() {
        let f = garp_frame([2, 0, 0, 0, 0, 9], Ipv4Addr::new(192, 0, 2, 200));
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[22..28], &[2, 0, 0, 0, 0, 9], "sha");
        assert_eq!(&f[28..32], &[192, 0, 2, 200], "spa");
        assert_eq!(&f[38..42], &[192, 0, 2, 200], "tpa");
    }

    #[test]
    fn macs_are_new_unicast_and_local() {
        let mut s = 7;
        let macs: std::collections::HashSet<[u8; 6]> =
            (0..10_000).map(|_| next_mac(&mut s)).collect();
        assert_eq!(macs.len(), 10_000);
        assert!(macs.iter().all(|m| m[0] & 1 == 0 && m[0] & 2 == 2));
    }
}

//! Seed inputs of the `decode` fuzz target, made from keepalived's captured adverts
//! (`ha-agent/tests/golden/*/capture.pcap`) in the target's input format: byte 0 the options,
//! byte 1 the TTL, then the packet.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Writes the seeds into `dir` (replacing what is there) and returns how many.
pub fn decode(dir: &Path) -> Result<usize> {
    let golden = crate::root().join("ha-agent").join("tests").join("golden");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&golden)
        .with_context(|| format!("reading {}", golden.display()))?
        .filter_map(|e| Some(e.ok()?.path().join("capture.pcap")))
        .filter(|p| p.is_file())
        .collect();
    captures.sort();
    if captures.is_empty() {
        bail!("no capture.pcap under {}", golden.display());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let mut n = 0;
    for pcap in &captures {
        for ip in ip_packets(pcap)? {
            let (payload_at, addrs) = match ip.first().map(|b| b >> 4) {
                Some(4) => (usize::from(ip[0] & 0x0f) * 4, 0u8),
                // The target's address pair 2: fe80::… to ff02::12.
                Some(6) => (40, 2),
                _ => continue,
            };
            let Some(payload) = ip.get(payload_at..) else {
                continue;
            };
            // decode_ip on the whole packet (pseudo-header checksum, then "either"), and
            // decode_vrrp on its payload with the checksum repaired for the target's addresses.
            for (flags, body) in [
                (0x00, &ip[..]),
                (0x02, &ip[..]),
                (0x80 | (addrs << 3), payload),
                (0x82 | (addrs << 3), payload),
            ] {
                let mut input = vec![flags, 255];
                input.extend_from_slice(body);
                std::fs::write(dir.join(format!("golden-{n:03}")), input)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The IP packets of a classic pcap file with Ethernet frames.
fn ip_packets(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let le = match data.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) => true,
        Some([0xa1, 0xb2, 0xc3, 0xd4]) => false,
        _ => bail!("{}: not a classic pcap file", path.display()),
    };
    let u32_at = |off: usize| -> Option<usize> {
        let b: [u8; 4] = data.get(off..off + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as usize)
    };
    let mut out = Vec::new();
    let mut off = 24;
    while let Some(caplen) = u32_at(off + 8) {
        let frame = data
            .get(off + 16..off + 16 + caplen)
            .with_context(|| format!("{}: truncated record at {off}", path.display()))?;
        if let Some(ip) = frame.get(14..) {
            out.push(ip.to_vec());
        }
        off += 16 + caplen;
    }
    Ok(out)
}

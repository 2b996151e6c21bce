//! Maglev lookup tables (Eisenbud et al., NSDI 2016), weighted as Katran's `MaglevHashV2`: a
//! service's ring of [`LB_RING_SIZE`] entries, each the index of the real server that new flows
//! hashing there go to.
//!
//! A server's permutation (offset, skip) comes from a fixed hash of its address:port, never of
//! its index, and servers are filled in address:port order: two directors that allocated
//! indexes differently build the same table (same servers in the same places), so a flow keeps
//! its server when the other director takes over.

use std::net::SocketAddr;

use ha_common::lb::{LB_NO_REAL, LB_RING_SIZE};

/// A real server as the ring sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// What the ring's entries hold (`LB_REALS` index).
    pub index: u32,
    /// Its identity: where its permutation comes from, and its rank in the fill order.
    pub key: SocketAddr,
    /// Relative share of the table; 0: in no entry.
    pub weight: u32,
}

/// The lookup table of `backends`: `LB_RING_SIZE` entries, each a [`Backend::index`], or all
/// [`LB_NO_REAL`] when no backend has a weight.
pub fn ring(backends: &[Backend]) -> Vec<u32> {
    ring_of_size(backends, LB_RING_SIZE)
}

/// [`ring`] for any prime `size` (tests use small ones).
pub fn ring_of_size(backends: &[Backend], size: u32) -> Vec<u32> {
    let size_us = size as usize;
    let mut table = vec![LB_NO_REAL; size_us];
    let mut live: Vec<&Backend> = backends.iter().filter(|b| b.weight > 0).collect();
    // The fill order is part of the result: by identity, never by index or input order.
    live.sort_by_key(|b| b.key);
    live.dedup_by_key(|b| b.key);
    if live.is_empty() {
        return table;
    }
    let perms: Vec<(u64, u64)> = live.iter().map(|b| permutation(&b.key, size)).collect();
    let max_weight = u64::from(live.iter().map(|b| b.weight).max().unwrap_or(1));
    let mut next = vec![0u64; live.len()];
    let mut credit = vec![0u64; live.len()];
    let mut filled = 0usize;
    // Katran MaglevHashV2: each turn a server earns its weight and claims one entry per
    // max_weight earned, so its share of the table is its share of the weights.
    loop {
        for (i, b) in live.iter().enumerate() {
            credit[i] += u64::from(b.weight);
            if credit[i] < max_weight {
                continue;
            }
            credit[i] -= max_weight;
            let (offset, skip) = perms[i];
            let mut slot = ((offset + next[i] * skip) % u64::from(size)) as usize;
            while table[slot] != LB_NO_REAL {
                next[i] += 1;
                slot = ((offset + next[i] * skip) % u64::from(size)) as usize;
            }
            table[slot] = b.index;
            next[i] += 1;
            filled += 1;
            if filled == size_us {
                return table;
            }
        }
    }
}

/// Maglev's (offset, skip) of a server: offset in `0..size`, skip in `1..size` (size prime:
/// every skip visits every entry).
fn permutation(key: &SocketAddr, size: u32) -> (u64, u64) {
    let h = key_hash(key);
    let offset = fmix64(h ^ 0x9e37_79b9_7f4a_7c15) % u64::from(size);
    let skip = fmix64(h ^ 0xc2b2_ae3d_27d4_eb4f) % u64::from(size - 1) + 1;
    (offset, skip)
}

/// FNV-1a over the address (IPv4 as 4 bytes, IPv6 as 16) and the port: fixed forever, the
/// same on every director and every build (std's hashers promise neither).
fn key_hash(key: &SocketAddr) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match key {
        SocketAddr::V4(a) => eat(&a.ip().octets()),
        SocketAddr::V6(a) => eat(&a.ip().octets()),
    }
    eat(&key.port().to_be_bytes());
    h
}

/// MurmurHash3's 64-bit finalizer: spreads FNV's low-entropy high bits.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;

    fn backend(i: u32, weight: u32) -> Backend {
        Backend {
            index: i,
            key: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8)),
                80,
            ),
            weight,
        }
    }

    fn share(table: &[u32], index: u32) -> f64 {
        table.iter().filter(|&&e| e == index).count() as f64 / table.len() as f64
    }

    #[test]
    fn no_backend_or_no_weight_is_an_empty_ring() {
        assert!(ring(&[]).iter().all(|&e| e == LB_NO_REAL));
        assert!(ring(&[backend(1, 0)]).iter().all(|&e| e == LB_NO_REAL));
        assert_eq!(ring(&[]).len(), LB_RING_SIZE as usize);
    }

    #[test]
    fn one_backend_takes_every_entry_and_weight_zero_none() {
        let t = ring(&[backend(7, 3), backend(8, 0)]);
        assert!(t.iter().all(|&e| e == 7));
    }

    /// How many entries move when one of N equal servers leaves, beyond its own 1/N (printed
    /// with --nocapture): at most 2 % up to 100 servers at `LB_RING_SIZE` (Maglev's excess grows
    /// with N/size: at 4093 entries it was 2.5 % at 50 servers, 3.1 % at 100).
    #[test]
    fn disruption_when_one_of_n_leaves_is_at_most_its_share_plus_2_percent() {
        for n in [2u32, 3, 5, 10, 16, 20, 50, 100] {
            let all: Vec<Backend> = (0..n).map(|i| backend(i, 1)).collect();
            let before = ring(&all);
            let mut worst = 0.0f64;
            for gone in 0..n {
                let rest: Vec<Backend> = all.iter().copied().filter(|b| b.index != gone).collect();
                let after = ring(&rest);
                let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
                worst = worst.max(moved as f64 / before.len() as f64);
            }
            let bound = 1.0 / f64::from(n) + 0.02;
            println!("n={n}: worst moved {:.4} (bound {bound:.4})", worst);
            assert!(worst <= bound, "n={n}: {worst} > {bound}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Each server's share of the table is its share of the weights, within 1 %.
        #[test]
        fn shares_follow_the_weights(weights in prop::collection::vec(0u32..100, 1..30)) {
            let bs: Vec<Backend> =
                weights.iter().enumerate().map(|(i, &w)| backend(i as u32, w)).collect();
            let t = ring(&bs);
            let total: u32 = weights.iter().sum();
            for b in &bs {
                let s = share(&t, b.index);
                if total == 0 {
                    prop_assert_eq!(s, 0.0);
                } else {
                    let want = f64::from(b.weight) / f64::from(total);
                    prop_assert!((s - want).abs() <= 0.01, "{:?}: {} vs {}", b, s, want);
                }
            }
        }

        /// Two directors with the same servers, listed in another order and given other
        /// indexes, place every entry on the same server.
        #[test]
        fn the_table_depends_on_identities_not_on_order_or_indexes(
            weights in prop::collection::vec(1u32..10, 1..20),
            seed in any::<u64>(),
        ) {
            let a: Vec<Backend> =
                weights.iter().enumerate().map(|(i, &w)| backend(i as u32, w)).collect();
            // Director B: reversed, rotated order and indexes 1000 + a permutation.
            let mut b: Vec<Backend> = a
                .iter()
                .map(|x| Backend { index: 1000 + (x.index * 7 + seed as u32 % 13) , ..*x })
                .collect();
            b.reverse();
            let k = (seed as usize) % b.len();
            b.rotate_left(k);
            let ta = ring(&a);
            let tb = ring(&b);
            let key_of = |bs: &[Backend], i: u32| bs.iter().find(|x| x.index == i).map(|x| x.key);
            for (ea, eb) in ta.iter().zip(&tb) {
                prop_assert_eq!(key_of(&a, *ea), key_of(&b, *eb));
            }
        }

        /// A server that leaves (of up to 20) moves at most its own entries plus 2 % of the
        /// table.
        #[test]
        fn a_leaving_server_moves_little(n in 2u32..=20, gone in any::<prop::sample::Index>()) {
            let all: Vec<Backend> = (0..n).map(|i| backend(i, 1)).collect();
            let gone = gone.index(n as usize) as u32;
            let rest: Vec<Backend> = all.iter().copied().filter(|b| b.index != gone).collect();
            let (t0, t1) = (ring(&all), ring(&rest));
            let moved = t0.iter().zip(&t1).filter(|(a, b)| a != b).count() as f64;
            prop_assert!(moved / t0.len() as f64 <= 1.0 / f64::from(n) + 0.02);
            prop_assert!(t1.iter().all(|&e| e != gone));
        }
    }
}

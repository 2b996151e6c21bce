//! The protocol's vocabulary, one type per concept from `keepalived.conf` to the wire: the VRRP
//! [`Version`], the address [`Family`], and advert intervals (their bounds per version and the
//! centisecond ↔ [`Duration`] conversions). The configuration, the plan, the codec, the state
//! machine and the datapaths all speak these; the wire-field bounds themselves live in
//! [`ha_common::wire`] because the XDP parser decodes the same fields.

use std::{fmt, net::IpAddr, time::Duration};

pub use ha_common::wire::{CS_PER_SEC, V2_MAX_ADVER_INT_CS, V3_MAX_ADVER_INT_CS};

/// Nanoseconds in a centisecond, the unit of every advert interval in this crate.
pub const NANOS_PER_CS: u64 = 10_000_000;
/// Microseconds in a centisecond: keepalived's `TIMER_CENTI_HZ` (lib/timer.h), the unit the
/// configuration rounds a v3 `advert_int` to.
pub const US_PER_CS: u64 = 10_000;

/// VRRP protocol version: the high nibble of the first byte, keepalived's `version`.
///
/// Displays as its number, as `keepalived.conf` writes it (`version 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4, Adver Int in whole seconds, optional simple-text password, no interval
    /// learning.
    V2,
    /// RFC 5798: IPv4 and IPv6, Max Adver Int in centiseconds, no authentication; backups learn
    /// Master_Adver_Interval.
    V3,
}

impl Version {
    /// The number in the Version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version numbered `n`, if VRRP has one.
    pub const fn from_number(n: u8) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    /// The largest interval, in centiseconds, this version's interval field carries.
    pub const fn max_adver_int_cs(self) -> u16 {
        match self {
            Version::V2 => V2_MAX_ADVER_INT_CS,
            Version::V3 => V3_MAX_ADVER_INT_CS,
        }
    }

    /// Whether this version's interval field can carry `cs` centiseconds: whole seconds up to
    /// 255 s for v2 (RFC 3768 §5.3.7), 12 bits for v3 (RFC 5798 §5.2.7). Zero fits the field.
    pub const fn carries_interval(self, cs: u16) -> bool {
        cs <= self.max_adver_int_cs()
            && match self {
                Version::V2 => cs.is_multiple_of(CS_PER_SEC),
                Version::V3 => true,
            }
    }

    /// Whether `cs` centiseconds is an Advertisement_Interval an instance may be configured
    /// with: carried by the field, and not zero.
    pub const fn is_valid_advert_interval(self, cs: u16) -> bool {
        cs != 0 && self.carries_interval(cs)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// Address family of an instance and of its adverts: of the IP header and of every address in
/// it. Displays as `IPv4` / `IPv6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of `addr`.
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Bytes of one address.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }

    /// The IP version number: 4 or 6.
    pub const fn number(self) -> u8 {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// `cs` centiseconds as a [`Duration`], exactly.
pub const fn cs_to_duration(cs: u16) -> Duration {
    Duration::from_nanos(cs as u64 * NANOS_PER_CS)
}

/// `d` in whole centiseconds: the remainder below a centisecond is dropped, and a duration past
/// `u16::MAX` centiseconds (655.35 s) saturates (the version's bound then refuses it).
pub fn duration_to_cs(d: Duration) -> u16 {
    u16::try_from(d.as_nanos() / u128::from(NANOS_PER_CS)).unwrap_or(u16::MAX)
}

/// `us` microseconds rounded to the nearest multiple of `unit_us` (halves up), and at least one
/// unit: how keepalived fits an `advert_int` to whole seconds (v2) or centiseconds (v3).
pub const fn round_to_unit_us(us: u64, unit_us: u64) -> u64 {
    let rounded = us.saturating_add(unit_us / 2) / unit_us * unit_us;
    if rounded < unit_us { unit_us } else { rounded }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn version_numbers_round_trip() {
        for v in [Version::V2, Version::V3] {
            assert_eq!(Version::from_number(v.number()), Some(v));
            assert_eq!(v.to_string(), v.number().to_string());
        }
        for n in [0, 1, 4, 15, 255] {
            assert_eq!(Version::from_number(n), None);
        }
    }

    #[test]
    fn v2_interval_bounds_are_whole_seconds_to_255() {
        let v = Version::V2;
        assert!(v.carries_interval(0));
        assert!(!v.is_valid_advert_interval(0));
        assert!(v.is_valid_advert_interval(100));
        assert!(!v.carries_interval(150), "not whole seconds");
        assert!(!v.carries_interval(1));
        assert!(v.is_valid_advert_interval(25_500));
        assert!(!v.carries_interval(25_600), "past 8 bits of seconds");
        assert!(!v.carries_interval(u16::MAX));
        assert_eq!(v.max_adver_int_cs(), 25_500);
    }

    #[test]
    fn v3_interval_bounds_are_12_bits_of_centiseconds() {
        let v = Version::V3;
        assert!(v.carries_interval(0));
        assert!(!v.is_valid_advert_interval(0));
        assert!(v.is_valid_advert_interval(1));
        assert!(v.is_valid_advert_interval(150));
        assert!(v.is_valid_advert_interval(4095));
        assert!(!v.carries_interval(4096));
        assert!(!v.carries_interval(u16::MAX));
        assert_eq!(v.max_adver_int_cs(), 4095);
    }

    #[test]
    fn families_of_addresses() {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(Family::of(&v4), Family::Ipv4);
        assert_eq!(Family::of(&v6), Family::Ipv6);
        assert_eq!((Family::Ipv4.addr_len(), Family::Ipv6.addr_len()), (4, 16));
        assert_eq!((Family::Ipv4.number(), Family::Ipv6.number()), (4, 6));
        assert_eq!(
            (Family::Ipv4.to_string(), Family::Ipv6.to_string()),
            ("IPv4".to_owned(), "IPv6".to_owned())
        );
    }

    #[test]
    fn centiseconds_to_duration_is_exact() {
        assert_eq!(cs_to_duration(0), Duration::ZERO);
        assert_eq!(cs_to_duration(1), Duration::from_millis(10));
        assert_eq!(cs_to_duration(100), Duration::from_secs(1));
        assert_eq!(cs_to_duration(4095), Duration::from_millis(40_950));
        assert_eq!(cs_to_duration(u16::MAX), Duration::from_millis(655_350));
    }

    #[test]
    fn duration_to_centiseconds_truncates_and_saturates() {
        assert_eq!(duration_to_cs(Duration::ZERO), 0);
        assert_eq!(duration_to_cs(Duration::from_millis(9)), 0);
        assert_eq!(duration_to_cs(Duration::from_millis(10)), 1);
        assert_eq!(duration_to_cs(Duration::from_millis(19)), 1);
        assert_eq!(
            duration_to_cs(Duration::from_nanos(NANOS_PER_CS * 4095 + 1)),
            4095
        );
        assert_eq!(duration_to_cs(Duration::from_millis(655_350)), u16::MAX);
        assert_eq!(duration_to_cs(Duration::from_secs(10_000)), u16::MAX);
        assert_eq!(duration_to_cs(Duration::MAX), u16::MAX);
        for cs in [0, 1, 99, 100, 4095, 25_500, u16::MAX] {
            assert_eq!(duration_to_cs(cs_to_duration(cs)), cs);
        }
    }

    #[test]
    fn rounding_to_a_unit_is_nearest_and_at_least_one() {
        let sec = 1_000_000;
        assert_eq!(round_to_unit_us(0, sec), sec);
        assert_eq!(round_to_unit_us(1, sec), sec);
        assert_eq!(round_to_unit_us(1_499_999, sec), sec);
        assert_eq!(round_to_unit_us(1_500_000, sec), 2 * sec, "halves round up");
        assert_eq!(round_to_unit_us(3 * sec, sec), 3 * sec);
        assert_eq!(round_to_unit_us(0, US_PER_CS), US_PER_CS);
        assert_eq!(round_to_unit_us(14_999, US_PER_CS), US_PER_CS);
        assert_eq!(round_to_unit_us(15_000, US_PER_CS), 2 * US_PER_CS);
        assert_eq!(
            round_to_unit_us(u64::MAX, US_PER_CS),
            u64::MAX / US_PER_CS * US_PER_CS,
            "saturates instead of overflowing"
        );
    }
}

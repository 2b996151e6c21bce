//! On-the-wire constants and header layouts, shared by the XDP parser and the userspace codec.

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group for VRRP adverts (RFC 5798 §5.1.1.2).
pub const VRRP_MCAST_V4: [u8; 4] = [224, 0, 0, 18];
/// IPv6 multicast group for VRRP adverts (RFC 5798 §5.1.2.2).
pub const VRRP_MCAST_V6: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];
/// TTL / hop limit every advert must carry (RFC 5798 §5.1.1.3).
pub const VRRP_TTL: u8 = 255;
/// Type ADVERTISEMENT (RFC 5798 §5.2.2).
pub const VRRP_TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed VRRP header, before the addresses.
pub const VRRP_HEADER_LEN: usize = 8;
/// Length of the v2 authentication data (RFC 3768 §5.3.10).
pub const VRRP_V2_AUTH_LEN: usize = 8;
/// v2 authentication types (RFC 3768 §5.3.6; 2 is keepalived's AH, never accepted here).
pub const VRRP_AUTH_NONE: u8 = 0;
pub const VRRP_AUTH_PASS: u8 = 1;
pub const VRRP_AUTH_AH: u8 = 2;
/// Largest v3 Max Adver Int: 12 bits of centiseconds (RFC 5798 §5.2.7).
pub const V3_MAX_ADVER_INT_CS: u16 = 0x0fff;
/// Centiseconds in one unit of the v2 Adver Int, which counts seconds (RFC 3768 §5.3.7).
pub const CS_PER_SEC: u16 = 100;
/// Largest v2 Adver Int: 8 bits of seconds (RFC 3768 §5.3.7), in centiseconds.
pub const V2_MAX_ADVER_INT_CS: u16 = u8::MAX as u16 * CS_PER_SEC;

/// The v2 Adver Int byte (seconds) in centiseconds.
#[inline(always)]
pub const fn v2_adver_int_cs(adver_int: u8) -> u16 {
    adver_int as u16 * CS_PER_SEC
}

/// The v3 Max Adver Int in centiseconds from header bytes 4..6: the reserved nibble is ignored
/// on reception (RFC 5798 §5.2.6).
#[inline(always)]
pub const fn v3_max_adver_int_cs(word1: [u8; 2]) -> u16 {
    u16::from_be_bytes(word1) & V3_MAX_ADVER_INT_CS
}

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_HLEN: usize = 14;
pub const IPV4_MIN_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
pub const IPPROTO_ICMPV6: u8 = 58;

/// The fixed part of a VRRP header. Byte 4..8 is the v2 `Auth Type` + `Adver Int` (seconds) +
/// checksum, or the v3 `Rsvd` + 12-bit `Max Adver Int` (centiseconds) + checksum.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |   (v3, RFC 5798 §5.1)
/// |   Auth Type   |   Adver Int   |          Checksum             |   (v2, RFC 3768 §5.1)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct VrrpHeader {
    pub version_type: u8,
    pub vrid: u8,
    pub priority: u8,
    pub count_addrs: u8,
    pub word1: [u8; 2],
    pub checksum: [u8; 2],
}

impl VrrpHeader {
    pub const fn version(&self) -> u8 {
        self.version_type >> 4
    }
    pub const fn kind(&self) -> u8 {
        self.version_type & 0x0f
    }
    /// v3 Max Adver Int in centiseconds (12 bits).
    pub const fn max_adver_int_cs(&self) -> u16 {
        v3_max_adver_int_cs(self.word1)
    }
}

/// The Internet checksum (RFC 1071) of `data`, an odd last byte padded with zero: 0 over a
/// header whose checksum field is valid. For userspace (ICMP echo, test frames).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adver_int_fields_decode_to_centiseconds() {
        assert_eq!(v2_adver_int_cs(0), 0);
        assert_eq!(v2_adver_int_cs(1), 100);
        assert_eq!(v2_adver_int_cs(u8::MAX), V2_MAX_ADVER_INT_CS);
        assert_eq!(V2_MAX_ADVER_INT_CS, 25_500);
        assert_eq!(v3_max_adver_int_cs([0, 0]), 0);
        assert_eq!(v3_max_adver_int_cs([0x00, 0x64]), 100);
        assert_eq!(v3_max_adver_int_cs([0x0f, 0xff]), 4095);
        // The reserved nibble is not part of the interval.
        assert_eq!(v3_max_adver_int_cs([0xf0, 0x01]), 1);
        assert_eq!(v3_max_adver_int_cs([0xff, 0xff]), V3_MAX_ADVER_INT_CS);
    }
}

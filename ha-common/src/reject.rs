//! Why a VRRP advert was dropped. The userspace codec and the XDP program use the same reasons,
//! and the per-VRID counters are indexed by them.

/// Why an advert was rejected (RFC 5798 §7.1, RFC 3768 §7.1, plus what the agent's configuration
/// forbids). The discriminant is the counter index: keep it dense and never reorder.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Shorter than the IP header plus the fixed VRRP header, or a fragment.
    Truncated = 0,
    /// IPv4 TTL or IPv6 hop limit is not 255 (§7.1: the packet crossed a router).
    TtlNot255 = 1,
    /// Version is neither 2 nor 3, or not the version configured for the instance.
    BadVersion = 2,
    /// Type is not 1 (ADVERTISEMENT).
    BadType = 3,
    /// VRID 0, or a priority/count that can never be valid.
    BadVrid = 4,
    /// The address count does not match the VRRP payload length.
    LengthMismatch = 5,
    /// The VRRP checksum does not verify.
    BadChecksum = 6,
    /// v2: authentication type or password differs from ours.
    AuthMismatch = 7,
    /// v2: the advertisement interval differs from ours (RFC 3768 §7.1).
    IntervalMismatch = 8,
    /// No instance with this VRID is configured on the receiving interface.
    UnknownVrid = 9,
    /// Unicast peers are configured and the source is not one of them.
    PeerNotAllowed = 10,
    /// The address family of the advert does not match the instance.
    FamilyMismatch = 11,
    /// Not an IPv4/IPv6 packet carrying IP protocol 112 directly (other protocol, malformed IP
    /// header, IPv6 extension headers). The XDP program passes these on and counts nothing.
    NotVrrp = 12,
    /// The advert's address list differs from the instance's VIPs (count or a VIP missing):
    /// keepalived's default check (RFC 5798 §7.1 "MAY verify that the IP address(es) ... are
    /// valid"; RFC 3768 §7.1).
    AddressListMismatch = 13,
    /// A unicast peer's advert arrived with a TTL / hop limit outside the peer's
    /// `min_ttl`..=`max_ttl` (keepalived's `check_ttl_hl`).
    TtlOutOfRange = 14,
}

impl RejectReason {
    /// Number of reasons: the width of a per-VRID counter row.
    pub const COUNT: usize = 15;

    /// Every reason, in counter order.
    pub const ALL: [RejectReason; Self::COUNT] = [
        RejectReason::Truncated,
        RejectReason::TtlNot255,
        RejectReason::BadVersion,
        RejectReason::BadType,
        RejectReason::BadVrid,
        RejectReason::LengthMismatch,
        RejectReason::BadChecksum,
        RejectReason::AuthMismatch,
        RejectReason::IntervalMismatch,
        RejectReason::UnknownVrid,
        RejectReason::PeerNotAllowed,
        RejectReason::FamilyMismatch,
        RejectReason::NotVrrp,
        RejectReason::AddressListMismatch,
        RejectReason::TtlOutOfRange,
    ];

    /// Stable snake_case name, used in metrics labels, status output and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Truncated => "truncated",
            RejectReason::TtlNot255 => "ttl_not_255",
            RejectReason::BadVersion => "bad_version",
            RejectReason::BadType => "bad_type",
            RejectReason::BadVrid => "bad_vrid",
            RejectReason::LengthMismatch => "length_mismatch",
            RejectReason::BadChecksum => "bad_checksum",
            RejectReason::AuthMismatch => "auth_mismatch",
            RejectReason::IntervalMismatch => "interval_mismatch",
            RejectReason::UnknownVrid => "unknown_vrid",
            RejectReason::PeerNotAllowed => "peer_not_allowed",
            RejectReason::FamilyMismatch => "family_mismatch",
            RejectReason::NotVrrp => "not_vrrp",
            RejectReason::AddressListMismatch => "address_list_mismatch",
            RejectReason::TtlOutOfRange => "ttl_out_of_range",
        }
    }

    /// The reason with this counter index, if any.
    pub const fn from_index(index: usize) -> Option<RejectReason> {
        if index < Self::COUNT {
            Some(Self::ALL[index])
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminants_are_dense_counter_indices() {
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{} out of place", r.as_str());
            assert_eq!(RejectReason::from_index(i), Some(*r));
        }
        assert_eq!(RejectReason::from_index(RejectReason::COUNT), None);
    }
}

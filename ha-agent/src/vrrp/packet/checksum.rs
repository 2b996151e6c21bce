//! The Internet checksum (RFC 1071): the 16-bit one's complement of the one's complement sum of
//! the data taken as big-endian 16-bit words.

/// A running Internet checksum. Data may be added in pieces of any length; an odd byte at the
/// end of one piece pairs with the first byte of the next, as if they were one buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Sum of 16-bit words, folded lazily: 2^48 words before a u64 could overflow.
    sum: u64,
    /// The high byte of a word whose low byte has not been added yet.
    odd: Option<u8>,
}

impl Checksum {
    pub const fn new() -> Self {
        Checksum { sum: 0, odd: None }
    }

    /// Adds `data` to the sum.
    pub fn add(&mut self, data: &[u8]) -> &mut Self {
        let mut data = data;
        if let Some(high) = self.odd.take() {
            match data.split_first() {
                Some((low, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, *low]));
                    data = rest;
                }
                None => {
                    self.odd = Some(high);
                    return self;
                }
            }
        }
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            self.sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        self.odd = words.remainder().first().copied();
        self
    }

    /// The checksum of everything added: the value to put in the checksum field when that
    /// field was added as zero, or 0 when the data includes a correct checksum.
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum;
        if let Some(high) = self.odd {
            // An odd length is padded with a zero byte (RFC 1071 §4.1).
            sum += u64::from(high) << 8;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::Checksum;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement sum).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Checksum::new().add(&data).finish(), !0xddf2);
    }

    #[test]
    fn pieces_of_odd_length_sum_as_one_buffer() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let whole = Checksum::new().add(&data).finish();
        for split in [0, 1, 2, 3, 500, 999, 1000, 1001] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                Checksum::new().add(a).add(b).finish(),
                whole,
                "split at {split}"
            );
        }
        let mut bytewise = Checksum::new();
        for b in &data {
            bytewise.add(std::slice::from_ref(b));
        }
        assert_eq!(bytewise.finish(), whole);
    }

    #[test]
    fn data_with_its_checksum_sums_to_zero() {
        let mut data = vec![0x31, 0x34, 0x96, 0x01, 0x01, 0x01, 0, 0, 192, 0, 2, 100];
        let sum = Checksum::new().add(&data).finish();
        data[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Checksum::new().add(&data).finish(), 0);
    }
}

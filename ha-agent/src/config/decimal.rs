//! Fixed-point decimals as keepalived reads and prints timers: "1.5" with 6 digits is
//! 1_500_000 (lib/parser.c `read_decimal_unsigned_long_func`).

#[derive(Debug, PartialEq, Eq)]
pub(super) enum DecimalError {
    Negative,
    Invalid,
    TooPrecise,
}

/// `digits` fixed decimals: "1.5" with 6 digits is 1_500_000.
pub(super) fn parse_decimal(s: &str, digits: u32) -> Result<u64, DecimalError> {
    if s.starts_with('-') {
        return Err(DecimalError::Negative);
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::Invalid);
    }
    if frac.len() > digits as usize {
        return Err(DecimalError::TooPrecise);
    }
    let scale = 10u64.pow(digits);
    let int_v: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| DecimalError::Invalid)?
    };
    let frac_v: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().map_err(|_| DecimalError::Invalid)?
            * 10u64.pow(digits - frac.len() as u32)
    };
    int_v
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_v))
        .ok_or(DecimalError::Invalid)
}

/// `1500000` with 6 digits is "1.5"; whole numbers have no decimals.
pub(super) fn fmt_decimal(v: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (i, f) = (v / scale, v % scale);
    if f == 0 {
        return i.to_string();
    }
    let frac = format!("{f:0width$}", width = digits as usize);
    format!("{i}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn decimals() {
        assert_eq!(parse_decimal("1", 6), Ok(1_000_000));
        assert_eq!(parse_decimal("0.01", 6), Ok(10_000));
        assert_eq!(parse_decimal(".5", 6), Ok(500_000));
        assert_eq!(parse_decimal("1.0000001", 6), Err(DecimalError::TooPrecise));
        assert_eq!(parse_decimal("-1", 6), Err(DecimalError::Negative));
        assert_eq!(parse_decimal("1e3", 6), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal(".", 6), Err(DecimalError::Invalid));
        assert_eq!(
            parse_decimal("99999999999999999999", 6),
            Err(DecimalError::Invalid)
        );
        assert_eq!(fmt_decimal(1_500_000, 6), "1.5");
        assert_eq!(fmt_decimal(2_000_000, 6), "2");
        assert_eq!(fmt_decimal(10_000, 6), "0.01");
    }
}

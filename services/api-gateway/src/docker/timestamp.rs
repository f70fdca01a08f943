//! Docker's API timestamps (moby's `timetypes.ParseTimestamps`), for every `since`/`until`:
//! `<seconds>[.<fraction>]`, the fraction scaled to nanoseconds (`.5` is half a second; digits
//! past the ninth are dropped). The CLI turns `10m` or RFC 3339 into this form itself.

use crate::error::ApiError;

/// Nanoseconds since the epoch.
pub fn parse(value: &str) -> Result<i128, ApiError> {
    let bad = || ApiError::invalid(format!("invalid timestamp: {value:?}"));
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (value.contains('.') && frac.is_empty()) {
        return Err(bad());
    }
    let nanos: i128 = if frac.is_empty() {
        0
    } else {
        let nine: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nine.parse().map_err(|_| bad())?
    };
    Ok(i128::from(secs) * 1_000_000_000 + nanos)
}

/// [`parse`] for fields that hold nanoseconds in an i64; empty is 0 (unset).
pub fn parse_i64(value: &str) -> Result<i64, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(0);
    }
    i64::try_from(parse(value)?)
        .map_err(|_| ApiError::invalid(format!("invalid timestamp: {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobys_form() {
        assert_eq!(parse("1717000000").unwrap(), 1_717_000_000_000_000_000);
        assert_eq!(parse("1717000000.5").unwrap(), 1_717_000_000_500_000_000);
        assert_eq!(parse("1.000000001").unwrap(), 1_000_000_001);
        assert_eq!(parse("1.1234567891").unwrap(), 1_123_456_789);
        assert_eq!(parse("-1.5").unwrap(), -500_000_000);
        for bad in ["10m", "x", "1.x", "1.", "2023-11-14T22:13:20Z", "1.-5", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_i64("").unwrap(), 0);
        assert!(parse_i64("9223372037").is_err());
    }
}

//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2`, `1e3`, `500M`) as exact integers, and their
//! formatting back. Pure string handling, shared by the scheduler's and the autoscaler's Kubernetes
//! adapters.

/// The quantity times 1000, rounded up (kube rounds requests up, never down): milli-units, so CPU reads
/// as millicores and every other resource divides back by 1000.
pub fn parse_milli(text: &str) -> Result<i128, String> {
    let s = text.trim();
    let bad = || format!("invalid quantity {text:?}");
    if s.is_empty() {
        return Err(bad());
    }
    let (negative, s) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(bad());
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits: String = format!("{int_part}{frac_part}");
    if digits.len() > 30 {
        return Err(bad());
    }
    let mantissa: i128 = digits.parse().map_err(|_| bad())?;
    // value = mantissa * 10^(exp10 - frac) * 2^exp2, times 1000 for milli.
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other if other.starts_with(['e', 'E']) => {
            let e: i32 = other[1..].parse().map_err(|_| bad())?;
            if !(-30..=30).contains(&e) {
                return Err(bad());
            }
            (e, 0)
        }
        _ => return Err(bad()),
    };
    let exp = exp10 + 3 - frac_part.len() as i32;
    let scaled = mantissa.checked_mul(1i128 << exp2).ok_or_else(bad)?;
    let value = if exp >= 0 {
        scaled.checked_mul(10i128.checked_pow(exp as u32).ok_or_else(bad)?).ok_or_else(bad)?
    } else {
        let div = 10i128.checked_pow((-exp) as u32).ok_or_else(bad)?;
        (scaled + div - 1) / div
    };
    Ok(if negative { -value } else { value })
}

/// The quantity in whole units, rounded up, as `i64` (memory bytes, GPU count, extended resources).
pub fn parse_units(text: &str) -> Result<i64, String> {
    let milli = parse_milli(text)?;
    let units = if milli >= 0 { (milli + 999) / 1000 } else { milli / 1000 };
    i64::try_from(units).map_err(|_| format!("quantity {text:?} is out of range"))
}

/// Millicores (or milli-units) as `i64`.
pub fn parse_milli_i64(text: &str) -> Result<i64, String> {
    i64::try_from(parse_milli(text)?).map_err(|_| format!("quantity {text:?} is out of range"))
}

/// Millicores as a CPU quantity: `2` for whole cores, else `1500m`.
pub fn format_cpu(milli: i64) -> String {
    if milli % 1000 == 0 { format!("{}", milli / 1000) } else { format!("{milli}m") }
}

/// Bytes as a memory quantity: `Gi`/`Mi`/`Ki` when exact, else plain bytes.
pub fn format_memory(bytes: i64) -> String {
    for (suffix, unit) in [("Gi", 1i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    format!("{bytes}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for m in [0, 1, 250, 1000, 1500, 64000] {
            assert_eq!(parse_milli_i64(&format_cpu(m)).unwrap(), m);
        }
        for b in [0, 1, 1023, 1024, 3 << 20, 5 << 30, 123_456_789] {
            assert_eq!(parse_units(&format_memory(b)).unwrap(), b);
        }
        assert_eq!(format_memory(256 << 20), "256Mi");
        assert_eq!(format_cpu(1500), "1500m");
    }

    #[test]
    fn decimal_and_binary_suffixes() {
        assert_eq!(parse_milli("100m").unwrap(), 100);
        assert_eq!(parse_milli("2").unwrap(), 2000);
        assert_eq!(parse_milli("0.5").unwrap(), 500);
        assert_eq!(parse_milli("1.5").unwrap(), 1500);
        assert_eq!(parse_units("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_units("1.5Ki").unwrap(), 1536);
        assert_eq!(parse_units("500M").unwrap(), 500_000_000);
        assert_eq!(parse_units("1e3").unwrap(), 1000);
        assert_eq!(parse_units("2k").unwrap(), 2000);
        assert_eq!(parse_units("128974848").unwrap(), 128_974_848);
    }

    #[test]
    fn rounds_up() {
        assert_eq!(parse_milli("1n").unwrap(), 1);
        assert_eq!(parse_milli("0.0001").unwrap(), 1);
        assert_eq!(parse_units("100m").unwrap(), 1);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1x", "1.2.3", ".", "1Gii", "--1", "1e99"] {
            assert!(parse_milli(bad).is_err(), "{bad:?}");
        }
    }
}

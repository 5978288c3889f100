//! Money as integer micro-units: cost sources write decimals with many places (Cost Explorer
//! `"12.3456789012"`, FOCUS `0.000123`, sometimes `1.2E-5`); summing them as integers keeps
//! every total exact and every breakdown adding up to it.

/// Millionths of the currency unit (USD 1.00 = 1_000_000).
pub type Micros = i64;

pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// Parses a decimal amount into micro-units, rounding half away from zero at the sixth place.
/// Accepts an optional sign, digits with an optional fraction, and an exponent (`1.5E-3`).
/// `None` when the text is not a number or is too large (over about 9.2 trillion units).
pub fn parse_micros(text: &str) -> Option<Micros> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if t.contains(['e', 'E']) {
        return parse_scientific(t);
    }
    let (negative, digits) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut value: i64 = 0;
    for b in int.bytes() {
        value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    let mut places = 0;
    let mut fraction: i64 = 0;
    let mut round_up = false;
    for (i, b) in frac.bytes().enumerate() {
        if i < 6 {
            fraction = fraction * 10 + i64::from(b - b'0');
            places += 1;
        } else {
            round_up = b >= b'5';
            break;
        }
    }
    while places < 6 {
        fraction *= 10;
        places += 1;
    }
    let mut micros = value
        .checked_mul(MICROS_PER_UNIT)?
        .checked_add(fraction)?
        .checked_add(i64::from(round_up))?;
    if negative {
        micros = -micros;
    }
    Some(micros)
}

fn parse_scientific(t: &str) -> Option<Micros> {
    let v: f64 = t.parse().ok()?;
    let scaled = (v * MICROS_PER_UNIT as f64).round();
    (scaled.is_finite() && scaled.abs() < i64::MAX as f64).then_some(scaled as i64)
}

/// Micro-units as a decimal number for outputs (exact to the micro-unit for any real bill).
pub fn micros_to_amount(micros: Micros) -> f64 {
    micros as f64 / MICROS_PER_UNIT as f64
}

/// `1234.5` → `"1,234.50"` (two places, thousands separated), for text output.
pub fn format_amount(micros: Micros) -> String {
    let cents = (micros as i128 + if micros >= 0 { 5_000 } else { -5_000 }) / 10_000;
    let negative = cents < 0;
    let cents = cents.unsigned_abs();
    let grouped = crate::util::thousands(cents / 100);
    format!(
        "{}{grouped}.{:02}",
        if negative { "-" } else { "" },
        cents % 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_micros("12.3456789012"), Some(12_345_679));
        assert_eq!(parse_micros("0.000123"), Some(123));
        assert_eq!(parse_micros("0.0000004"), Some(0));
        assert_eq!(parse_micros("0.0000005"), Some(1));
        assert_eq!(parse_micros("-1.5"), Some(-1_500_000));
        assert_eq!(parse_micros("+2"), Some(2_000_000));
        assert_eq!(parse_micros("7."), Some(7_000_000));
        assert_eq!(parse_micros(".25"), Some(250_000));
        assert_eq!(parse_micros(" 3 "), Some(3_000_000));
        assert_eq!(parse_micros("1.2E-5"), Some(12));
        assert_eq!(parse_micros("-4e2"), Some(-400_000_000));
    }

    #[test]
    fn junk_is_refused() {
        for bad in [
            "",
            "-",
            ".",
            "abc",
            "1.2.3",
            "1,000",
            "12a",
            "--1",
            "1e",
            "99999999999999",
        ] {
            assert_eq!(parse_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_format_to_cents() {
        assert_eq!(format_amount(1_234_567_890), "1,234.57");
        assert_eq!(format_amount(-5_000), "-0.01");
        assert_eq!(format_amount(0), "0.00");
        assert_eq!(format_amount(999_994_999), "999.99");
        assert_eq!(format_amount(999_999_994), "1,000.00");
        assert_eq!(format_amount(100_000_000_000), "100,000.00");
        assert_eq!(micros_to_amount(1_500_000), 1.5);
    }
}

//! Money as integer micro-units: cost sources write decimals with many places (Cost Explorer
//! `"12.3456789012"`, FOCUS `0.000123`, sometimes `1.2E-5`); summing them as integers keeps
//! every total exact and every breakdown adding up to it.
//!
//! Exact only while the numbers fit: `i64` micro-units reach ±9,223,372,036,854.775807. A
//! wrapped sum would be a wrong figure that looks right, so the amounts of one answer are held
//! to one bound: the sum of their absolute values (`Magnitude`) must fit in `Micros`. Then
//! every sum of any of them, in any order, and every difference of two such sums fits too, so
//! the totals, groups, per-key and per-resource figures built from them need no further checks.
//! A source whose amounts break the bound is refused with an error, never summed.

/// Millionths of the currency unit (USD 1.00 = 1_000_000).
pub(crate) type Micros = i64;

pub(crate) const MICROS_PER_UNIT: i64 = 1_000_000;

/// The largest amount, and the largest sum of absolute values, kept exactly.
pub(crate) const MAX_MICROS: Micros = Micros::MAX;

/// Why a text is not an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AmountError {
    #[error("is not a number")]
    NotANumber,
    #[error(
        "is beyond ±{}, the largest amount kept exactly",
        format_amount(MAX_MICROS)
    )]
    TooLarge,
}

/// Parses a decimal amount into micro-units, rounding half away from zero at the sixth place.
/// Accepts an optional sign, digits with an optional fraction, and an exponent (`1.5E-3`).
/// `None` when the text is not a number or is too large (see `parse_amount`).
pub(crate) fn parse_micros(text: &str) -> Option<Micros> {
    parse_amount(text).ok()
}

/// As `parse_micros`, telling a number too large to hold (over ±9.2 trillion units) from text
/// that is not a number.
pub(crate) fn parse_amount(text: &str) -> Result<Micros, AmountError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(AmountError::NotANumber);
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
        return Err(AmountError::NotANumber);
    }
    let too_large = AmountError::TooLarge;
    let mut value: i64 = 0;
    for b in int.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or(too_large)?;
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
        .checked_mul(MICROS_PER_UNIT)
        .and_then(|v| v.checked_add(fraction))
        .and_then(|v| v.checked_add(i64::from(round_up)))
        .ok_or(too_large)?;
    if negative {
        micros = -micros;
    }
    Ok(micros)
}

fn parse_scientific(t: &str) -> Result<Micros, AmountError> {
    let v: f64 = t.parse().map_err(|_| AmountError::NotANumber)?;
    if v.is_nan() {
        return Err(AmountError::NotANumber);
    }
    let scaled = (v * MICROS_PER_UNIT as f64).round();
    // `i64::MAX as f64` is 2^63, one past the largest i64: `<` keeps the cast exact.
    if scaled.is_finite() && scaled.abs() < i64::MAX as f64 {
        Ok(scaled as i64)
    } else {
        Err(AmountError::TooLarge)
    }
}

/// The sum of the absolute values of the amounts added so far: while it fits in `Micros`,
/// every sum of any of those amounts is exact (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Magnitude(u64);

/// Amounts whose absolute values add up beyond `MAX_MICROS`: no total of them is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the amounts add up (in absolute value) beyond {}, the largest total kept exactly",
    format_amount(MAX_MICROS)
)]
pub(crate) struct TooLargeToSum;

impl Magnitude {
    /// The magnitude with `amount` added, or the error when it would pass the bound.
    pub(crate) fn plus(self, amount: Micros) -> Result<Magnitude, TooLargeToSum> {
        self.0
            .checked_add(amount.unsigned_abs())
            .filter(|&m| m <= MAX_MICROS as u64)
            .map(Magnitude)
            .ok_or(TooLargeToSum)
    }

    /// Adds `amount` in place.
    #[cfg(test)]
    pub(crate) fn add(&mut self, amount: Micros) -> Result<(), TooLargeToSum> {
        *self = self.plus(amount)?;
        Ok(())
    }

    /// The magnitude of all of `amounts`.
    pub(crate) fn of(
        amounts: impl IntoIterator<Item = Micros>,
    ) -> Result<Magnitude, TooLargeToSum> {
        amounts
            .into_iter()
            .try_fold(Magnitude::default(), Magnitude::plus)
    }
}

/// Micro-units as a decimal number for outputs (exact to the micro-unit for any real bill).
pub(crate) fn micros_to_amount(micros: Micros) -> f64 {
    micros as f64 / MICROS_PER_UNIT as f64
}

/// `1234.5` → `"1,234.50"` (two places, thousands separated), for text output.
pub(crate) fn format_amount(micros: Micros) -> String {
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
    fn too_large_is_told_from_not_a_number() {
        assert_eq!(parse_amount("abc"), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("NaN"), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("1e"), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("99999999999999"), Err(AmountError::TooLarge));
        assert_eq!(
            parse_amount("-9223372036854.775808"),
            Err(AmountError::TooLarge)
        );
        assert_eq!(parse_amount("1e300"), Err(AmountError::TooLarge));
        assert_eq!(parse_amount("-1E19"), Err(AmountError::TooLarge));
        // The bound itself is an amount; the README's example row is one too.
        assert_eq!(parse_amount("9223372036854.775807"), Ok(MAX_MICROS));
        assert_eq!(parse_amount("-9223372036854.775807"), Ok(-MAX_MICROS));
        assert_eq!(parse_amount("9000000000000"), Ok(9_000_000_000_000_000_000));
        let e = AmountError::TooLarge.to_string();
        assert!(e.contains("9,223,372,036,854.78"), "{e}");
    }

    #[test]
    fn magnitudes_bound_every_sum() {
        let nine_trillion = 9_000_000_000_000_000_000;
        // One amount near the bound is fine; two of them (the sum that used to wrap to a
        // negative total) are refused, whatever their signs.
        assert!(Magnitude::of([nine_trillion]).is_ok());
        assert_eq!(
            Magnitude::of([nine_trillion, nine_trillion]),
            Err(TooLargeToSum)
        );
        assert_eq!(
            Magnitude::of([nine_trillion, -nine_trillion]),
            Err(TooLargeToSum)
        );
        assert!(Magnitude::of([MAX_MICROS]).is_ok());
        assert!(Magnitude::of([-MAX_MICROS]).is_ok());
        assert_eq!(Magnitude::of([MAX_MICROS, 1]), Err(TooLargeToSum));
        assert_eq!(Magnitude::of([Micros::MIN]), Err(TooLargeToSum));
        let mut m = Magnitude::default();
        m.add(-5).unwrap();
        m.add(MAX_MICROS - 5).unwrap();
        assert!(m.add(1).is_err());
        assert_eq!(
            m,
            Magnitude(MAX_MICROS as u64),
            "a refused add leaves it unchanged"
        );
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

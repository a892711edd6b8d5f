//! Sample values and timestamps: checking that a token is a number of the right kind, and
//! writing it in text 0.0.4 spelling. No allocation; it never sees a whole line.

/// Whether `s` is `[+-]digits[.digits][(e|E)[+-]digits]` (with digits on at least one side of
/// the dot): the spelling almost every exporter uses, checked without a float parse.
fn is_plain_decimal(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let [b'+' | b'-', rest @ ..] = b {
        b = rest;
    }
    let int = digits(b);
    b = &b[int..];
    let mut frac = 0;
    if let [b'.', rest @ ..] = b {
        frac = digits(rest);
        b = &rest[frac..];
    }
    if int + frac == 0 {
        return false;
    }
    if let [b'e' | b'E', rest @ ..] = b {
        b = rest;
        if let [b'+' | b'-', rest @ ..] = b {
            b = rest;
        }
        let exp = digits(b);
        if exp == 0 {
            return false;
        }
        b = &b[exp..];
    }
    b.is_empty()
}

/// How many ASCII digits `b` starts with.
fn digits(b: &[u8]) -> usize {
    b.iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len())
}

/// Whether `s` is a float as Prometheus reads sample values (`1`, `-2.5e-3`, `NaN`, `+Inf`, ...).
pub(crate) fn is_float(s: &str) -> bool {
    is_plain_decimal(s) || s.parse::<f64>().is_ok()
}

/// Whether `s` is a text 0.0.4 timestamp: integer milliseconds, optionally negative.
pub(crate) fn is_int_timestamp(s: &str) -> bool {
    !s.starts_with('+') && s.parse::<i64>().is_ok()
}

/// An OpenMetrics timestamp (float seconds, finite) in whole milliseconds, rounded to the
/// nearest millisecond; `None` when `s` is not a finite float.
pub(crate) fn om_timestamp_millis(s: &str) -> Option<i64> {
    if !is_plain_decimal(s) {
        return None;
    }
    let secs: f64 = s.parse().ok()?;
    let ms = (secs * 1000.0).round();
    // `as` saturates; a timestamp outside ±292 million years is not worth an error of its own.
    ms.is_finite().then_some(ms as i64)
}

/// Appends a sample value in text 0.0.4 spelling: decimals as written, non-finite values as
/// `NaN`, `+Inf` or `-Inf`.
pub(crate) fn write_value(value: &str, out: &mut Vec<u8>) {
    if matches!(value.as_bytes().last(), Some(b'0'..=b'9' | b'.')) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    match value.parse::<f64>() {
        Ok(v) if v.is_nan() => out.extend_from_slice(b"NaN"),
        Ok(v) if v == f64::INFINITY => out.extend_from_slice(b"+Inf"),
        Ok(v) if v == f64::NEG_INFINITY => out.extend_from_slice(b"-Inf"),
        _ => out.extend_from_slice(value.as_bytes()),
    }
}

/// Appends `n` in decimal.
pub(crate) fn write_i64(n: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a text timestamp (integer milliseconds) as OpenMetrics seconds: `1520879607789`
/// becomes `1520879607.789`, `-5` becomes `-0.005`; `None` when `ms` is not an integer.
pub(crate) fn write_millis_as_seconds(ms: &str, out: &mut Vec<u8>) -> Option<()> {
    let ms: i64 = ms.parse().ok()?;
    if ms < 0 {
        out.push(b'-');
    }
    let abs = ms.unsigned_abs();
    write_i64((abs / 1000) as i64, out);
    let mut frac = abs % 1000;
    if frac != 0 {
        out.push(b'.');
        let mut digits = 3;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        let mut buf = [b'0'; 3];
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        out.extend_from_slice(&buf[..digits]);
    }
    Some(())
}

/// A sample value, label bound or timestamp as a float (`None` if it is not one).
pub(crate) fn to_f64(s: &str) -> Option<f64> {
    short_decimal(s).or_else(|| s.parse().ok())
}

/// `[+-]digits[.digits][(e|E)[+-]digits]` with at most 15 digits before the exponent and a
/// power of ten within ±22 once the fraction is counted in, computed exactly: such digits as an
/// integer are exact in an `f64`, so is the power of ten, and one multiplication or division
/// rounds correctly, which gives what a full float parse gives. `None` for anything else.
fn short_decimal(s: &str) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let mut b = s.as_bytes();
    let negative = b.first() == Some(&b'-');
    if matches!(b.first(), Some(b'+' | b'-')) {
        b = &b[1..];
    }
    let (mut mantissa, mut digits, mut fraction, mut dot) = (0u64, 0, 0i32, false);
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'0'..=b'9' if digits < 15 => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
                fraction += i32::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut exponent = -fraction;
    if let Some(rest) = b.get(i..).filter(|r| !r.is_empty()) {
        let [b'e' | b'E', rest @ ..] = rest else {
            return None;
        };
        let (sign, rest) = match rest {
            [b'-', rest @ ..] => (-1, rest),
            [b'+', rest @ ..] => (1, rest),
            _ => (1, rest),
        };
        if rest.is_empty() || rest.len() > 3 || !rest.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let e = rest.iter().fold(0i32, |e, d| e * 10 + i32::from(d - b'0'));
        exponent += sign * e;
    }
    let power = *POW10.get(exponent.unsigned_abs() as usize)?;
    let value = if exponent >= 0 {
        mantissa as f64 * power
    } else {
        mantissa as f64 / power
    };
    Some(if negative { -value } else { value })
}

/// A timestamp as written in `format`, in milliseconds (for ordering checks).
pub(crate) fn timestamp_millis(ts: &str, openmetrics: bool) -> Option<i64> {
    if openmetrics {
        om_timestamp_millis(ts)
    } else {
        ts.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_prometheus_accepts() {
        for ok in [
            "1", "-1", "+1", "1.5", ".5", "5.", "1e3", "1.5E-3", "-2e+10", "NaN", "nan", "+Inf",
            "-Inf", "Inf", "inf", "+inf",
        ] {
            assert!(is_float(ok), "{ok}");
        }
        for bad in [
            "", ".", "e3", "1e", "1.2.3", "abc", "1,5", "--1", "0x10", "1_000",
        ] {
            assert!(!is_float(bad), "{bad}");
        }
    }

    #[test]
    fn short_decimals_read_as_a_full_parse_reads_them() {
        let cases = "0 7 0.005 123.456 999999999999999 0.1 0.3 1. .5 12345678.9012345 5e3 -1 +1 \
            1.2.3 . 0.000000000000001 -0 1234.567e+06 1.5E-3 -2e+10 1e22 1e23 9e-22 1.5e-20 \
            123456789012345678 1e 1e+ e5 1e1000 -.5e1 +Inf NaN 0x10 0.1e-21 7e-23";
        for s in cases.split_whitespace().chain([""]) {
            let full: Option<f64> = s.parse().ok();
            assert_eq!(to_f64(s).map(f64::to_bits), full.map(f64::to_bits), "{s}");
        }
    }

    #[test]
    fn text_timestamps_are_integers() {
        for ok in ["0", "1700000000000", "-5"] {
            assert!(is_int_timestamp(ok), "{ok}");
        }
        for bad in ["", "-", "+5", "1.5", "1e3", "-+5", "abc"] {
            assert!(!is_int_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn om_timestamps_become_milliseconds() {
        assert_eq!(
            om_timestamp_millis("1520879607.789"),
            Some(1_520_879_607_789)
        );
        assert_eq!(om_timestamp_millis("1520879607"), Some(1_520_879_607_000));
        assert_eq!(om_timestamp_millis("1.5e9"), Some(1_500_000_000_000));
        assert_eq!(om_timestamp_millis("-0.001"), Some(-1));
        assert_eq!(om_timestamp_millis("NaN"), None);
        assert_eq!(om_timestamp_millis("+Inf"), None);
        assert_eq!(om_timestamp_millis("x"), None);
    }

    #[test]
    fn values_keep_spelling_except_non_finite() {
        let cases = [
            ("1.50", "1.50"),
            ("1e3", "1e3"),
            ("5.", "5."),
            ("nan", "NaN"),
            ("Inf", "+Inf"),
            ("+inf", "+Inf"),
            ("-Infinity", "-Inf"),
        ];
        for (value, want) in cases {
            let mut out = Vec::new();
            write_value(value, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), want, "{value}");
        }
    }

    #[test]
    fn millis_become_seconds() {
        for (ms, want) in [
            ("1520879607789", "1520879607.789"),
            ("1520879607000", "1520879607"),
            ("1520879607100", "1520879607.1"),
            ("1520879607010", "1520879607.01"),
            ("0", "0"),
            ("-5", "-0.005"),
            ("-1500", "-1.5"),
        ] {
            let mut out = Vec::new();
            assert_eq!(write_millis_as_seconds(ms, &mut out), Some(()));
            assert_eq!(String::from_utf8_lossy(&out), want, "{ms}");
        }
        assert_eq!(write_millis_as_seconds("1.5", &mut Vec::new()), None);
    }

    #[test]
    fn writes_integers() {
        for n in [0, 7, -7, 1_520_879_607_789, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_i64(n, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), n.to_string());
        }
    }
}

//! Human durations as written in inventories and runbooks: `500ms`, `5s`, `2m`, `1h`.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses `500ms`, `5s`, `2m`, `1h` (and combinations such as `1m30s`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration `{text}`: expected a number, e.g. `5s`, `500ms`, `2m`"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let too_large = || format!("invalid duration `{text}`: number too large");
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(too_large)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(too_large)?),
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: missing unit (ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}` (use ms, s, m, h)"
                ))
            }
        };
        total = total.checked_add(d).ok_or_else(too_large)?;
    }
    Ok(total)
}

/// Formats a duration the way it is written: `1m30s`, `500ms`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        if ms < 1000 {
            return format!("{ms}ms");
        }
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Serde adapter: `Option<Duration>` from a human string.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_are_an_error_not_a_panic() {
        for t in [
            "18446744073709551615h",
            "18446744073709551615m",
            "18446744073709551615s18446744073709551615s",
            "99999999999999999999s",
        ] {
            let e = parse(t).unwrap_err();
            assert!(e.contains("number too large"), "{t}: {e}");
        }
        assert_eq!(
            parse("5124095576030431h").unwrap(),
            Duration::from_secs(5_124_095_576_030_431 * 3600)
        );
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse("5").unwrap_err().contains("missing unit"));
        assert!(parse("5x").unwrap_err().contains("unknown unit"));
        assert!(parse("").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["500ms", "5s", "2m", "1m30s", "1h"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}

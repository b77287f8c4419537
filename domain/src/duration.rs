//! Lengths of time as people type them on a command line or in an environment variable: `30`
//! (seconds), `30s`, `10m`, `2h`, `1d`, or `30秒`, `10分钟`, `2小时`, `1天`.

use std::time::Duration;

/// A length of time that does not read, or is zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "「{0}」不是一段时间：写作 30（秒）、30s、10m、2h 或 1d，且大于 0 (a duration such as 30, 30s, 10m, 2h, 1d)"
)]
pub struct DurationError(pub String);

/// Parses a positive length of time.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let bad = || DurationError(s.to_owned());
    let split = t
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(t.len(), |(i, _)| i);
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds_per = match unit.trim() {
        "" | "s" | "秒" => 1,
        "m" | "min" | "分" | "分钟" => 60,
        "h" | "小时" | "时" => 3600,
        "d" | "天" | "日" => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(seconds_per) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_minutes_hours_and_days_in_either_language() {
        for (s, secs) in [
            ("30", 30),
            ("30s", 30),
            ("10m", 600),
            ("2h", 7200),
            ("1d", 86_400),
            ("10分钟", 600),
            ("30秒", 30),
            (" 5 ", 5),
        ] {
            assert_eq!(parse(s), Ok(Duration::from_secs(secs)), "{s}");
        }
        for s in [
            "",
            "0",
            "0s",
            "ten",
            "5x",
            "-5",
            "1.5h",
            "99999999999999999999",
        ] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}

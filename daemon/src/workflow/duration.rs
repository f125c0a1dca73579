//! Durations as authors write them: `30s`, `15m`, `4h`, `72h`, `5d`, `2w`,
//! and combinations such as `1h30m` or `1d 12h`.
//!
//! Parsed once at load time into [`Duration`]; the engine never sees text.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer};

/// A non-negative span of calendar time, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    secs: u64,
}

/// The largest duration a workflow may name: ten years. Longer is a typo.
pub const MAX_SECS: u64 = 10 * 366 * 86_400;

impl Duration {
    pub const ZERO: Duration = Duration { secs: 0 };

    pub const fn from_secs(secs: u64) -> Self {
        Duration { secs }
    }

    pub const fn as_secs(&self) -> u64 {
        self.secs
    }

    pub fn as_millis(&self) -> u64 {
        self.secs.saturating_mul(1000)
    }

    pub fn is_zero(&self) -> bool {
        self.secs == 0
    }

    /// Parses `4h`, `1h30m`, `1d 12h`, `90s`. Units: s, m, h, d, w.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("empty duration: write a number and a unit, such as `4h` or `30m`".into());
        }
        let mut total: u64 = 0;
        let mut chars = trimmed.chars().peekable();
        let mut saw_part = false;
        while chars.peek().is_some() {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let mut digits = String::new();
            while let Some(c) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(c);
                chars.next();
            }
            if digits.is_empty() {
                return Err(format!(
                    "`{trimmed}` is not a duration: write a number and a unit, such as `4h`, `30m` or `1h30m`"
                ));
            }
            while chars.peek().is_some_and(|c| *c == ' ') {
                chars.next();
            }
            let mut unit = String::new();
            while let Some(c) = chars.peek().copied().filter(|c| c.is_alphabetic()) {
                unit.push(c);
                chars.next();
            }
            let factor = match unit.as_str() {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                "w" => 7 * 86_400,
                "" => {
                    return Err(format!(
                        "`{trimmed}` has no unit: add one of s, m, h, d, w (for example `{digits}h`)"
                    ));
                }
                other => {
                    return Err(format!(
                        "`{other}` in `{trimmed}` is not a unit: use s, m, h, d or w (for example `{digits}{}`)",
                        other
                            .chars()
                            .next()
                            .filter(|c| "smhdw".contains(*c))
                            .unwrap_or('h')
                    ));
                }
            };
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("`{trimmed}` is too large to be a duration"))?;
            total = n
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("`{trimmed}` is too large to be a duration"))?;
            saw_part = true;
        }
        if !saw_part {
            return Err(format!("`{trimmed}` is not a duration"));
        }
        if total > MAX_SECS {
            return Err(format!("`{trimmed}` is longer than ten years"));
        }
        Ok(Duration { secs: total })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secs == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.secs;
        for (unit, size) in [
            ("w", 7 * 86_400),
            ("d", 86_400),
            ("h", 3_600),
            ("m", 60),
            ("s", 1),
        ] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `30m`, `4h` or `1h30m`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit: write `{v}s`, `{v}m`, `{v}h` or `{v}d`"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "`{v}` is not a duration: write it as `4h`, `30m`"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit (s, m, h, d, w), possibly combined: `30m`, `4h`, `72h`, `1h30m`, `2w`.",
            "pattern": "^\\s*([0-9]+\\s*[smhdw]\\s*)+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(Duration::parse("4h").unwrap().as_secs(), 4 * 3600);
        assert_eq!(Duration::parse("72h").unwrap().as_secs(), 72 * 3600);
        assert_eq!(Duration::parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(Duration::parse("1d 12h").unwrap().as_secs(), 36 * 3600);
        assert_eq!(Duration::parse("2w").unwrap().as_secs(), 14 * 86_400);
        assert_eq!(Duration::parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_bad_input_with_a_hint() {
        assert!(Duration::parse("4").unwrap_err().contains("no unit"));
        assert!(
            Duration::parse("4 hours")
                .unwrap_err()
                .contains("not a unit")
        );
        assert!(Duration::parse("h").unwrap_err().contains("not a duration"));
        assert!(Duration::parse("").unwrap_err().contains("empty"));
        assert!(Duration::parse("99999999999999999999h").is_err());
        assert!(Duration::parse("11000d").unwrap_err().contains("ten years"));
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(Duration::parse("90m").unwrap().to_string(), "1h30m");
        assert_eq!(Duration::parse("1d 12h").unwrap().to_string(), "1d12h");
    }
}

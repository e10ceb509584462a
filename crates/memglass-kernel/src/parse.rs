//! Parsers for the shapes kernel files come in. Pure functions over text: the readers
//! attach the path to any error.

/// Why a file's text could not be parsed (the reader adds the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    fn new(reason: impl Into<String>) -> ParseError {
        ParseError(reason.into())
    }
}

/// A single unsigned integer, as in `memory.current` or `memory.usage_in_bytes`.
pub fn single_u64(text: &str) -> Result<u64, ParseError> {
    let value = text.trim();
    if value.is_empty() {
        return Err(ParseError::new("empty file"));
    }
    value
        .parse()
        .map_err(|_| ParseError::new(format!("expected an unsigned integer, found {value:?}")))
}

/// A value that is an integer or the word `max` (cgroup v2 limits). `max` is `None`.
pub fn u64_or_max(text: &str) -> Result<Option<u64>, ParseError> {
    if text.trim() == "max" {
        Ok(None)
    } else {
        single_u64(text).map(Some)
    }
}

/// Lines of `key value` (memory.stat, memory.events, memory.oom_control, /proc/vmstat).
/// Lines whose value is not an unsigned integer are skipped, so new kernel fields of
/// another shape never break a reader; an empty file is an error.
pub fn flat_keyed(text: &str) -> Result<Vec<(&str, u64)>, ParseError> {
    let mut entries = Vec::with_capacity(64);
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        if let Ok(value) = value.parse::<u64>() {
            entries.push((key, value));
        }
    }
    if entries.is_empty() {
        return Err(ParseError::new("no `key value` lines"));
    }
    Ok(entries)
}

/// Lines of `Key:   value [kB]` (/proc/meminfo). Values with a `kB` unit are converted
/// to bytes (the kernel's kB means KiB), saturating instead of wrapping.
pub fn colon_keyed(text: &str) -> Result<Vec<(&str, u64)>, ParseError> {
    let mut entries = Vec::with_capacity(64);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_ascii_whitespace();
        let Some(Ok(value)) = words.next().map(str::parse::<u64>) else {
            continue;
        };
        let value = match words.next() {
            Some("kB") => value.saturating_mul(1024),
            _ => value,
        };
        entries.push((key.trim(), value));
    }
    if entries.is_empty() {
        return Err(ParseError::new("no `key: value` lines"));
    }
    Ok(entries)
}

/// One line of a PSI file: `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PressureLine {
    /// Share of wall time stalled, averaged over 10 s (percent).
    pub avg10: f64,
    /// Averaged over 60 s (percent).
    pub avg60: f64,
    /// Averaged over 300 s (percent).
    pub avg300: f64,
    /// Total stall time in microseconds (a counter).
    pub total_usec: u64,
}

/// A PSI file (`memory.pressure`, `/proc/pressure/memory`): the `some` and `full` lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Pressure {
    /// At least one task stalled on memory.
    pub some: PressureLine,
    /// All non-idle tasks stalled on memory at once.
    pub full: Option<PressureLine>,
}

/// Parse a PSI file.
pub fn pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(kind) = words.next() else { continue };
        let mut parsed = PressureLine::default();
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                return Err(ParseError::new(format!("unexpected word {word:?}")));
            };
            let bad = || ParseError::new(format!("bad value in {word:?}"));
            match key {
                "avg10" => parsed.avg10 = value.parse().map_err(|_| bad())?,
                "avg60" => parsed.avg60 = value.parse().map_err(|_| bad())?,
                "avg300" => parsed.avg300 = value.parse().map_err(|_| bad())?,
                "total" => parsed.total_usec = value.parse().map_err(|_| bad())?,
                _ => {}
            }
        }
        match kind {
            "some" => some = Some(parsed),
            "full" => full = Some(parsed),
            _ => {}
        }
    }
    let some = some.ok_or_else(|| ParseError::new("no `some` line"))?;
    Ok(Pressure { some, full })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values() {
        assert_eq!(single_u64("42\n"), Ok(42));
        assert!(single_u64("").is_err());
        assert!(single_u64("-1\n").is_err());
        assert!(single_u64("99999999999999999999999").is_err());
        assert_eq!(u64_or_max("max\n"), Ok(None));
        assert_eq!(u64_or_max("1048576\n"), Ok(Some(1048576)));
    }

    #[test]
    fn flat_keyed_skips_odd_lines() {
        let parsed = flat_keyed("anon 10\nweird\nnew_key abc\nfile 20\n").unwrap();
        assert_eq!(parsed, vec![("anon", 10), ("file", 20)]);
        assert!(flat_keyed("").is_err());
        assert!(flat_keyed("\n\n").is_err());
    }

    #[test]
    fn colon_keyed_converts_kb() {
        let parsed = colon_keyed("MemTotal:  1000 kB\nHugePages_Total:   2\n").unwrap();
        assert_eq!(
            parsed,
            vec![("MemTotal", 1_024_000), ("HugePages_Total", 2)]
        );
        let huge = colon_keyed("X: 18446744073709551615 kB\n").unwrap();
        assert_eq!(huge, vec![("X", u64::MAX)]);
    }

    #[test]
    fn pressure_lines() {
        let text = "some avg10=1.50 avg60=0.00 avg300=0.00 total=123\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=7\n";
        let parsed = pressure(text).unwrap();
        assert_eq!(parsed.some.avg10, 1.5);
        assert_eq!(parsed.some.total_usec, 123);
        assert_eq!(parsed.full.map(|f| f.total_usec), Some(7));
        assert!(pressure("").is_err());
        assert!(pressure("some avg10=x").is_err());
    }
}

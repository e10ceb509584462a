//! Sizes for narrow table cells ("512.0M"); the detail view uses `render::human::bytes`.

/// Bytes with a one-letter binary unit: "0", "812K", "64.0M", "1.5G"; "-" when unknown.
pub fn size(value: Option<u64>) -> String {
    match value {
        None => "-".into(),
        Some(value) => scaled(value as f64),
    }
}

/// A rate in bytes per second marked by its direction: "▲1.2M/s", "▼64.0K/s"; blank when
/// nothing moved.
pub fn rate(value: Option<f64>) -> String {
    match value {
        Some(rate) if rate.abs() >= 1.0 => {
            let sign = if rate < 0.0 { "▼" } else { "▲" };
            format!("{sign}{}/s", scaled(rate.abs()))
        }
        _ => String::new(),
    }
}

/// A signed change in bytes: "+4.0M", "−1.0K", "0".
pub fn change(value: i128) -> String {
    if value == 0 {
        return "0".into();
    }
    let sign = if value < 0 { "−" } else { "+" };
    format!("{sign}{}", scaled(value.unsigned_abs() as f64))
}

fn scaled(value: f64) -> String {
    const UNITS: [&str; 6] = ["", "K", "M", "G", "T", "P"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{scaled:.0}"),
        _ if scaled >= 100.0 => format!("{scaled:.0}{}", UNITS[unit]),
        _ => format!("{scaled:.1}{}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_sizes() {
        assert_eq!(size(None), "-");
        assert_eq!(size(Some(0)), "0");
        assert_eq!(size(Some(1023)), "1023");
        assert_eq!(size(Some(64 << 20)), "64.0M");
        assert_eq!(size(Some(812 << 10)), "812K");
        assert_eq!(size(Some(3 << 29)), "1.5G");
        assert_eq!(rate(Some(0.2)), "");
        assert_eq!(rate(Some(-65536.0)), "▼64.0K/s");
        assert_eq!(rate(Some(3.0 * 1048576.0)), "▲3.0M/s");
        assert_eq!(change(4 << 20), "+4.0M");
        assert_eq!(change(0), "0");
    }
}

//! The two exposition formats, written straight into a `String` (and, for the exposition
//! rendered once per collection, spilled in chunks into a gzip stream as it grows).
//!
//! Prometheus text 0.0.4 names a counter family by its sample name (`x_total`);
//! OpenMetrics names the family without the suffix, adds `# UNIT` and ends with `# EOF`.
//! One encoder writes both so the formats cannot drift apart.

use std::fmt::{Display, Write};

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The Content-Type header of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// OpenMetrics when the `Accept` header asks for it (Prometheus servers do), else text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only grows (samples get `_total`).
    Counter,
    /// Constant 1 with descriptive labels (samples get `_info`).
    Info,
}

/// Writes families and samples in one format.
pub struct Encoder<'a> {
    out: &'a mut String,
    format: Format,
    /// The current family's sample name (with `_total`/`_info`).
    sample_name: String,
    /// Where `out` is emptied into once it holds [`SPILL_AT`] bytes (None: keep it all).
    spill: Option<&'a mut dyn std::io::Write>,
}

/// Bytes of text held before they go to the spill.
const SPILL_AT: usize = 64 << 10;

impl<'a> Encoder<'a> {
    /// An encoder appending to `out`.
    pub fn new(out: &'a mut String, format: Format) -> Encoder<'a> {
        Encoder {
            out,
            format,
            sample_name: String::new(),
            spill: None,
        }
    }

    /// An encoder that writes into `spill` (a gzip stream) through `buffer`, so the whole
    /// text never sits in memory at once.
    pub fn spilling(
        buffer: &'a mut String,
        format: Format,
        spill: &'a mut dyn std::io::Write,
    ) -> Encoder<'a> {
        Encoder {
            out: buffer,
            format,
            sample_name: String::new(),
            spill: Some(spill),
        }
    }

    fn maybe_spill(&mut self, force: bool) {
        if let Some(spill) = self.spill.as_mut() {
            if force || self.out.len() >= SPILL_AT {
                // Writing to memory (a Vec behind the gzip stream) cannot fail.
                let _ = spill.write_all(self.out.as_bytes());
                self.out.clear();
            }
        }
    }

    /// Start a family. `name` is the family name without `_total`/`_info`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.maybe_spill(false);
        let (type_name, suffix) = match kind {
            Kind::Gauge => ("gauge", ""),
            Kind::Counter => ("counter", "_total"),
            Kind::Info => ("info", "_info"),
        };
        self.sample_name.clear();
        self.sample_name.push_str(name);
        self.sample_name.push_str(suffix);
        let (declared, type_name) = match self.format {
            // Prometheus text has no info type: a gauge that is always 1.
            Format::Prometheus if kind == Kind::Info => (self.sample_name.as_str(), "gauge"),
            Format::Prometheus => (self.sample_name.as_str(), type_name),
            Format::OpenMetrics => (name, type_name),
        };
        let _ = writeln!(self.out, "# HELP {declared} {help}");
        let _ = writeln!(self.out, "# TYPE {declared} {type_name}");
        if self.format == Format::OpenMetrics && kind != Kind::Info {
            for unit in ["bytes", "seconds"] {
                if name.ends_with(&format!("_{unit}")) {
                    let _ = writeln!(self.out, "# UNIT {name} {unit}");
                }
            }
        }
    }

    /// One sample of the current family. `labels` is an already-escaped label list
    /// (`a="x",b="y"`, possibly empty); `extra` adds one more label.
    pub fn sample(&mut self, labels: &str, extra: Option<(&str, &str)>, value: impl Display) {
        self.out.push_str(&self.sample_name);
        if !labels.is_empty() || extra.is_some() {
            self.out.push('{');
            self.out.push_str(labels);
            if let Some((name, label_value)) = extra {
                if !labels.is_empty() {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape_into(self.out, label_value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        if self.out.len() >= SPILL_AT {
            self.maybe_spill(false);
        }
    }

    /// End the exposition (OpenMetrics needs `# EOF`).
    pub fn finish(mut self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.maybe_spill(true);
    }
}

/// Build an escaped label list from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(64);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_into(&mut out, value);
        out.push('"');
    }
    out
}

/// Label values escape `\`, `"` and newlines (both formats agree).
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_in_both_formats() {
        let mut text = String::new();
        let mut e = Encoder::new(&mut text, Format::Prometheus);
        e.family("memglass_x_bytes", Kind::Gauge, "X.");
        e.sample(
            &labels(&[("cgroup", "/a\"b\\c\nd")]),
            Some(("type", "anon")),
            5,
        );
        e.family("memglass_y", Kind::Counter, "Y.");
        e.sample("", None, 7);
        e.finish();
        assert_eq!(
            text,
            "# HELP memglass_x_bytes X.\n# TYPE memglass_x_bytes gauge\n\
             memglass_x_bytes{cgroup=\"/a\\\"b\\\\c\\nd\",type=\"anon\"} 5\n\
             # HELP memglass_y_total Y.\n# TYPE memglass_y_total counter\nmemglass_y_total 7\n"
        );
        let mut om = String::new();
        let mut e = Encoder::new(&mut om, Format::OpenMetrics);
        e.family("memglass_x_bytes", Kind::Gauge, "X.");
        e.family("memglass_y", Kind::Counter, "Y.");
        e.sample("", None, 7);
        e.family("memglass_build", Kind::Info, "B.");
        e.sample(&labels(&[("version", "1")]), None, 1);
        e.finish();
        assert_eq!(
            om,
            "# HELP memglass_x_bytes X.\n# TYPE memglass_x_bytes gauge\n# UNIT memglass_x_bytes bytes\n\
             # HELP memglass_y Y.\n# TYPE memglass_y counter\nmemglass_y_total 7\n\
             # HELP memglass_build B.\n# TYPE memglass_build info\nmemglass_build_info{version=\"1\"} 1\n# EOF\n"
        );
    }

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
    }
}

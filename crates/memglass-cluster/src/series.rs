//! One sample of an instant vector, and the node each one belongs to.

use std::collections::BTreeMap;

/// One element of an instant query's vector: its labels (`__name__` included when the store
/// kept it) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Label name → value. A label the store treats as empty is absent (Prometheus drops
    /// empty labels), so read through [`Series::label`].
    pub labels: BTreeMap<String, String>,
    /// The sample's value.
    pub value: f64,
}

impl Series {
    /// A label's value, `""` when absent (as PromQL sees it).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    /// The value as whole bytes (negative, NaN and infinite values are 0; fractions are
    /// rounded).
    pub fn bytes(&self) -> u64 {
        if self.value.is_finite() && self.value > 0.0 {
            self.value.round() as u64
        } else {
            0
        }
    }
}

/// Which node each scrape target (`instance`) describes.
#[derive(Debug, Clone, Default)]
pub struct NodeNames {
    by_instance: BTreeMap<String, String>,
}

impl NodeNames {
    /// From the answer to `memglass_node_info`: its `node` label per `instance`. When the
    /// scrape config sets a `node` target label of its own, the agent's label arrives as
    /// `exported_node`; the target's wins, as it does on every other series.
    pub fn from_info(info: &[Series]) -> NodeNames {
        let mut by_instance = BTreeMap::new();
        for series in info {
            let node = match series.label("node") {
                "" => series.label("exported_node"),
                node => node,
            };
            if !node.is_empty() {
                by_instance
                    .entry(series.label("instance").to_owned())
                    .or_insert_with(|| node.to_owned());
            }
        }
        NodeNames { by_instance }
    }

    /// The node a series is from: its own `node` label, else the agent's name for its
    /// `instance`, else the instance itself.
    pub fn of(&self, series: &Series) -> String {
        match series.label("node") {
            "" => {
                let instance = series.label("instance");
                self.by_instance
                    .get(instance)
                    .cloned()
                    .unwrap_or_else(|| instance.to_owned())
            }
            node => node.to_owned(),
        }
    }
}

/// A string as a PromQL double-quoted literal's content (backslash and quote escaped).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) fn series(labels: &[(&str, &str)], value: f64) -> Series {
    Series {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_prefer_the_target_label_then_the_agent_then_the_instance() {
        let names = NodeNames::from_info(&[
            series(&[("instance", "10.0.0.1:9850"), ("node", "worker-1")], 1.0),
            series(
                &[
                    ("instance", "10.0.0.2:9850"),
                    ("node", "w2-target"),
                    ("exported_node", "w2-agent"),
                ],
                1.0,
            ),
            series(
                &[("instance", "10.0.0.4:9850"), ("exported_node", "w4")],
                1.0,
            ),
        ]);
        let of = |labels: &[(&str, &str)]| names.of(&series(labels, 0.0));
        assert_eq!(of(&[("instance", "10.0.0.1:9850")]), "worker-1");
        assert_eq!(of(&[("instance", "10.0.0.2:9850")]), "w2-target");
        assert_eq!(of(&[("instance", "10.0.0.4:9850")]), "w4");
        assert_eq!(of(&[("instance", "10.0.0.1:9850"), ("node", "own")]), "own");
        assert_eq!(of(&[("instance", "10.0.0.3:9850")]), "10.0.0.3:9850");
    }

    #[test]
    fn escapes_promql_strings() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }

    #[test]
    fn bytes_round_and_floor_at_zero() {
        assert_eq!(series(&[], 1.6).bytes(), 2);
        assert_eq!(series(&[], -3.0).bytes(), 0);
        assert_eq!(series(&[], f64::NAN).bytes(), 0);
    }
}

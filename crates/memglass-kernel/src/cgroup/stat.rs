//! `memory.stat` (v1 and v2) and other flat `key value` files, kept whole.
//!
//! Every key the kernel prints is kept, in the kernel's order, so a newer kernel's fields
//! reach the JSON output without a code change. The normalised figures are taken from
//! it by name in [`crate::cgroup::normalize`].

use crate::parse::{self, ParseError};

/// The entries of a `key value` file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedValues {
    entries: Vec<(Box<str>, u64)>,
}

impl KeyedValues {
    /// Parse `key value` lines (an empty file is an error).
    pub fn parse(text: &str) -> Result<KeyedValues, ParseError> {
        Ok(KeyedValues::from_entries(parse::flat_keyed(text)?))
    }

    /// Build from already-parsed entries.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, u64)>) -> KeyedValues {
        KeyedValues {
            entries: entries
                .into_iter()
                .map(|(key, value)| (Box::from(key), value))
                .collect(),
        }
    }

    /// The value of `key`, if the kernel printed it.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|(name, _)| &**name == key)
            .map(|&(_, value)| value)
    }

    /// The sum of `keys`, or `None` if none of them is present.
    pub fn sum(&self, keys: &[&str]) -> Option<u64> {
        keys.iter()
            .filter_map(|key| self.get(key))
            .fold(None, |acc: Option<u64>, v| {
                Some(acc.unwrap_or(0).saturating_add(v))
            })
    }

    /// All entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.entries.iter().map(|(key, value)| (&**key, *value))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Serialised as a JSON object in file order (`{"anon": 4096, ...}`).
impl serde::Serialize for KeyedValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(&**key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_keys_and_sums() {
        let stat = KeyedValues::parse("anon 4096\nbrand_new_key 7\nfile 8192\n").unwrap();
        assert_eq!(stat.get("anon"), Some(4096));
        assert_eq!(stat.get("brand_new_key"), Some(7));
        assert_eq!(stat.get("missing"), None);
        assert_eq!(stat.sum(&["anon", "file", "missing"]), Some(12288));
        assert_eq!(stat.sum(&["missing"]), None);
        assert_eq!(stat.len(), 3);
    }

    #[test]
    fn huge_values_saturate_in_sums() {
        let stat = KeyedValues::parse("a 18446744073709551615\nb 10\n").unwrap();
        assert_eq!(stat.sum(&["a", "b"]), Some(u64::MAX));
    }
}

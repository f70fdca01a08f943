//! The `filters` query parameter (moby's api/types/filters): both the current map-of-bool form
//! and the legacy map-of-list form, with moby's matching rules.

use std::collections::{BTreeMap, BTreeSet};

/// A `filters` value or key the endpoint does not accept (400 in the Docker API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidFilter {
    pub message: String,
}

impl InvalidFilter {
    pub fn new(message: impl Into<String>) -> InvalidFilter {
        InvalidFilter {
            message: message.into(),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, BTreeSet<String>>);

impl Filters {
    /// Parses the JSON text of `filters`; an empty string means no filters.
    pub fn parse(text: &str) -> Result<Filters, InvalidFilter> {
        if text.trim().is_empty() {
            return Ok(Filters::default());
        }
        let bad = |e: &dyn std::fmt::Display| InvalidFilter::new(format!("invalid filter: {e}"));
        if let Ok(map) = serde_json::from_str::<BTreeMap<String, BTreeMap<String, bool>>>(text) {
            return Ok(Filters(
                map.into_iter()
                    .map(|(k, vs)| {
                        (
                            k,
                            vs.into_iter()
                                .filter(|(_, on)| *on)
                                .map(|(v, _)| v)
                                .collect(),
                        )
                    })
                    .collect(),
            ));
        }
        let map: BTreeMap<String, Vec<String>> = serde_json::from_str(text).map_err(|e| bad(&e))?;
        Ok(Filters(
            map.into_iter()
                .map(|(k, vs)| (k, vs.into_iter().collect()))
                .collect(),
        ))
    }

    /// 400 `invalid filter '<key>'` for a key outside `accepted`.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), InvalidFilter> {
        match self.0.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(InvalidFilter::new(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn values(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }

    /// `key`'s boolean value (`true`/`1`, `false`/`0`); conflicting values are an error.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>, InvalidFilter> {
        let mut out = None;
        for v in self.values(key) {
            let b = match v {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(InvalidFilter::new(format!(
                        "invalid filter '{key}={other}'"
                    )));
                }
            };
            if out.is_some_and(|o| o != b) {
                return Err(InvalidFilter::new(format!(
                    "invalid filter '{key}': conflicting values"
                )));
            }
            out = Some(b);
        }
        Ok(out)
    }

    /// True when `key` is absent, or `source` is one of its values.
    pub fn exact_match(&self, key: &str, source: &str) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vs) if vs.is_empty() => true,
            Some(vs) => vs.contains(source),
        }
    }

    /// True when `key` is absent, or a value equals `source` or is a prefix of it.
    pub fn fuzzy_match(&self, key: &str, source: &str) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vs) if vs.is_empty() => true,
            Some(vs) => vs.contains(source) || vs.iter().any(|v| source.starts_with(v.as_str())),
        }
    }

    /// `label` matching: `key` requires the key, `key=value` requires equality; all must hold.
    pub fn match_kv_list(&self, key: &str, attrs: &BTreeMap<String, String>) -> bool {
        let Some(vs) = self.0.get(key) else {
            return true;
        };
        vs.iter().all(|v| match v.split_once('=') {
            Some((k, val)) => attrs.get(k).is_some_and(|a| a == val),
            None => attrs.contains_key(v.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings() {
        let a = Filters::parse(r#"{"label":{"a=1":true},"type":{"container":true}}"#).unwrap();
        let b = Filters::parse(r#"{"label":["a=1"],"type":["container"]}"#).unwrap();
        assert_eq!(a, b);
        assert!(Filters::parse("").unwrap().0.is_empty());
        assert!(Filters::parse("[1]").is_err());
        assert!(Filters::parse(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn matching_rules() {
        let f =
            Filters::parse(r#"{"container":["abc"],"event":["start","die"],"label":["k","x=1"]}"#)
                .unwrap();
        assert!(f.fuzzy_match("container", "abcdef"));
        assert!(!f.fuzzy_match("container", "xabc"));
        assert!(f.exact_match("event", "die") && !f.exact_match("event", "stop"));
        assert!(f.exact_match("image", "anything"));
        let mut attrs = BTreeMap::new();
        attrs.insert("k".to_owned(), "v".to_owned());
        assert!(!f.match_kv_list("label", &attrs));
        attrs.insert("x".to_owned(), "1".to_owned());
        assert!(f.match_kv_list("label", &attrs));
        assert!(f.validate(&["container", "event", "label"]).is_ok());
        assert_eq!(
            f.validate(&["event"]).unwrap_err().message,
            "invalid filter 'container'"
        );
    }
}

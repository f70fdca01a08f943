//! Go's `encoding/json` matches an object's keys onto a struct's fields case-insensitively
//! (`{"restartpolicy": {"name": "always"}}` sets `RestartPolicy.Name`); serde matches them
//! exactly. So that a key sent in another case is honored or refused like any other, never
//! dropped, a Docker body is first rewritten with every key that names a known field in the
//! field's own case, at every level. The known fields come from the serde definitions
//! themselves: [`Schema::of`] walks a `Deserialize` type once (see `trace.rs`) and records the
//! field names each struct asks for, and what each field holds. A field given twice in two
//! cases is refused, naming both.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

#[path = "keys_trace.rs"]
mod trace;

/// What a body's value is made of, as far as its keys go.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Schema {
    /// A value with no struct inside (a string, a number, anything read untyped).
    #[default]
    Leaf,
    /// A struct: its fields, by their serde names, and what each holds.
    Struct(BTreeMap<&'static str, Schema>),
    /// A list of values of one schema.
    Seq(Box<Schema>),
    /// A map whose keys are data (labels, network names), and its values' schema.
    Map(Box<Schema>),
}

impl Schema {
    /// The schema of a serde type (`Option`, lists, maps and newtypes seen through).
    pub fn of<T: DeserializeOwned>() -> Schema {
        trace::schema::<T>()
    }

    /// A struct of the given fields.
    pub fn fields<const N: usize>(fields: [(&'static str, Schema); N]) -> Schema {
        Schema::Struct(fields.into_iter().collect())
    }

    /// This schema with `other`'s fields added (`other` wins where both describe a field
    /// that is not a struct on one side): for bodies read by several types, or with fields
    /// that the table knows and no type reads.
    #[must_use]
    pub fn merge(self, other: Schema) -> Schema {
        match (self, other) {
            (Schema::Struct(mut a), Schema::Struct(b)) => {
                for (name, s) in b {
                    let merged = match a.remove(name) {
                        Some(old) => old.merge(s),
                        None => s,
                    };
                    a.insert(name, merged);
                }
                Schema::Struct(a)
            }
            (Schema::Seq(a), Schema::Seq(b)) => Schema::Seq(Box::new(a.merge(*b))),
            (Schema::Map(a), Schema::Map(b)) => Schema::Map(Box::new(a.merge(*b))),
            (a, Schema::Leaf) => a,
            (_, b) => b,
        }
    }

    /// The schema with `inner` at a dotted path of struct fields (`HostConfig.Mounts`).
    #[must_use]
    pub fn with(self, path: &'static str, inner: Schema) -> Schema {
        let nested = path
            .rsplit('.')
            .fold(inner, |acc, key| Schema::fields([(key, acc)]));
        self.merge(nested)
    }

    /// The fields of a struct schema, by name.
    pub fn field(&self, name: &str) -> Option<&Schema> {
        match self {
            Schema::Struct(f) => f.get(name),
            _ => None,
        }
    }

    /// Renames, in place and at every level, the keys of `v` that name one of the schema's
    /// fields in another case to the field's own name. Values of another shape than the
    /// schema's are left as they are: the typed parse reports them.
    pub fn canonicalize(&self, v: &mut Value) -> Result<(), String> {
        match (self, v) {
            (Schema::Struct(fields), Value::Object(map)) => {
                let renames: Vec<(String, &'static str)> = map
                    .keys()
                    .filter(|k| !fields.contains_key(k.as_str()))
                    .filter_map(|k| {
                        let name = fields.keys().find(|n| n.eq_ignore_ascii_case(k))?;
                        Some((k.clone(), *name))
                    })
                    .collect();
                for (key, name) in renames {
                    if map.contains_key(name) {
                        return Err(format!(
                            "both {name:?} and {key:?} are set: they name one field"
                        ));
                    }
                    if let Some(value) = map.remove(&key) {
                        map.insert(name.to_owned(), value);
                    }
                }
                for (name, s) in fields {
                    if let Some(x) = map.get_mut(*name) {
                        s.canonicalize(x)?;
                    }
                }
                Ok(())
            }
            (Schema::Seq(s), Value::Array(list)) => {
                list.iter_mut().try_for_each(|x| s.canonicalize(x))
            }
            (Schema::Map(s), Value::Object(map)) => {
                map.values_mut().try_for_each(|x| s.canonicalize(x))
            }
            _ => Ok(()),
        }
    }
}

/// `body` parsed as `T` after its keys were put in `T`'s case, its nulls read as Go reads
/// them (the zero value, as an absent key); errors as the gateway words a bad body
/// (`invalid JSON: <path>: <what>`).
pub fn parse<T: DeserializeOwned>(mut body: Value) -> Result<T, String> {
    Schema::of::<T>()
        .canonicalize(&mut body)
        .map_err(|e| format!("invalid JSON: {e}"))?;
    strip_nulls(&mut body);
    serde_path_to_error::deserialize(body)
        .map_err(|e| format!("invalid JSON: {}: {}", e.path(), e.inner()))
}

/// The value without its null members, recursively.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;

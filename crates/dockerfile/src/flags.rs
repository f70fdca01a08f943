//! An instruction's `--flag[=value]` words (buildkit's `BFlags`), with its error messages.

use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Bool,
    String,
    Strings,
}

/// The flags an instruction declares, then reads.
pub(crate) struct Flags<'a> {
    args: &'a [String],
    declared: Vec<(&'static str, Kind)>,
    values: BTreeMap<&'static str, Vec<String>>,
    used: Vec<String>,
}

impl<'a> Flags<'a> {
    pub(crate) fn new(args: &'a [String]) -> Flags<'a> {
        Flags {
            args,
            declared: Vec::new(),
            values: BTreeMap::new(),
            used: Vec::new(),
        }
    }

    pub(crate) fn declare(mut self, name: &'static str, kind: Kind) -> Self {
        self.declared.push((name, kind));
        self
    }

    /// Reads the words; errors as buildkit's.
    pub(crate) fn parse(mut self) -> Result<Self, String> {
        for a in self.args {
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(decl, kind)) = self.declared.iter().find(|(n, _)| *n == name) else {
                return Err(format!("unknown flag: {name}"));
            };
            if kind != Kind::Strings && self.values.contains_key(decl) {
                return Err(format!("duplicate flag specified: {name}"));
            }
            let v = match kind {
                Kind::Bool => match value.map(str::to_lowercase).as_deref() {
                    None | Some("true") => "true".to_owned(),
                    Some("false") => "false".to_owned(),
                    Some(_) => {
                        return Err(format!(
                            "expecting boolean value for flag {name}, not: {}",
                            value.unwrap_or_default()
                        ));
                    }
                },
                Kind::String | Kind::Strings => match value {
                    Some(v) => v.to_owned(),
                    None => return Err(format!("missing a value on flag: {name}")),
                },
            };
            self.values.entry(decl).or_default().push(v);
            if !self.used.iter().any(|u| u == name) {
                self.used.push(name.to_owned());
            }
        }
        Ok(self)
    }

    pub(crate) fn string(&self, name: &str) -> String {
        self.values
            .get(name)
            .and_then(|v| v.last().cloned())
            .unwrap_or_default()
    }

    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|v| v == "true")
    }

    /// The flags given, in order.
    pub(crate) fn used(&self) -> Vec<String> {
        self.used.clone()
    }
}

//! Build arguments as the classic builder scopes them (moby's `BuildArgs`): `--build-arg`
//! values, ARGs before the first FROM (for FROM lines, and as defaults of a stage's ARG of
//! the same name), each stage's declared ARGs, and the predefined proxy arguments, usable
//! without an ARG and never reported as unused.

use std::collections::{BTreeMap, BTreeSet};

const BUILTIN: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

#[derive(Debug, Clone, Default)]
pub(crate) struct BuildArgs {
    /// `--build-arg`: a value, or none (declared without one: the ARG's default applies).
    options: BTreeMap<String, Option<String>>,
    meta: BTreeMap<String, Option<String>>,
    allowed: BTreeMap<String, Option<String>>,
    referenced: BTreeSet<String>,
}

impl BuildArgs {
    pub(crate) fn new(options: BTreeMap<String, Option<String>>) -> BuildArgs {
        BuildArgs {
            options,
            ..BuildArgs::default()
        }
    }

    /// A new stage: its ARGs are declared afresh.
    pub(crate) fn reset_allowed(&mut self) {
        self.allowed.clear();
    }

    pub(crate) fn add_arg(&mut self, key: &str, value: Option<String>) {
        self.allowed.insert(key.to_owned(), value);
        self.referenced.insert(key.to_owned());
    }

    pub(crate) fn add_meta_arg(&mut self, key: &str, value: Option<String>) {
        self.meta.insert(key.to_owned(), value);
    }

    fn value(&self, key: &str, source: &BTreeMap<String, Option<String>>) -> Option<String> {
        if let Some(Some(v)) = self.options.get(key) {
            return Some(v.clone());
        }
        match source.get(key) {
            Some(Some(default)) => Some(default.clone()),
            _ => self.meta.get(key).cloned().flatten(),
        }
    }

    fn all_from(&self, source: &BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
        source
            .keys()
            .map(String::as_str)
            .chain(BUILTIN.iter().copied())
            .filter_map(|k| self.value(k, source).map(|v| (k.to_owned(), v)))
            .collect()
    }

    /// The stage's declared arguments (and the proxy ones given) with their values.
    pub(crate) fn all_allowed(&self) -> BTreeMap<String, String> {
        self.all_from(&self.allowed)
    }

    /// The meta ARGs with their values (what FROM lines expand with).
    pub(crate) fn all_meta(&self) -> Vec<String> {
        self.all_from(&self.meta)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// `KEY=VALUE` of the allowed arguments that the config's Env does not set.
    pub(crate) fn filter_allowed(&self, env: &[String]) -> Vec<String> {
        let set: BTreeSet<&str> = env
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
            .collect();
        self.all_allowed()
            .into_iter()
            .filter(|(k, _)| !set.contains(k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// Whether a build argument shows in a RUN's cache key and history (moby's
    /// `IsReferencedOrNotBuiltin`): declared, or not a proxy one.
    pub(crate) fn is_referenced_or_not_builtin(&self, key: &str) -> bool {
        self.allowed.contains_key(key) || !BUILTIN.contains(&key)
    }

    /// Keeps what this stage referenced, for the unused-arguments warning.
    pub(crate) fn merge_referenced(&mut self, other: &BuildArgs) {
        self.referenced.extend(other.referenced.iter().cloned());
    }

    /// `[Warning] One or more build-args [a b] were not consumed`, if any.
    pub(crate) fn unused_warning(&self) -> Option<String> {
        let left: Vec<&str> = self
            .options
            .keys()
            .map(String::as_str)
            .filter(|k| !self.referenced.contains(*k) && !BUILTIN.contains(k))
            .collect();
        (!left.is_empty()).then(|| {
            format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                left.join(" ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoping_follows_moby() {
        let mut opts = BTreeMap::new();
        opts.insert("V".to_owned(), Some("cli".to_owned()));
        opts.insert("HTTP_PROXY".to_owned(), Some("p".to_owned()));
        opts.insert("UNUSED".to_owned(), Some("x".to_owned()));
        opts.insert("NOVAL".to_owned(), None);
        let mut a = BuildArgs::new(opts);
        a.add_arg("M", Some("meta".to_owned()));
        a.add_meta_arg("M", Some("meta".to_owned()));
        assert!(a.all_meta().contains(&"M=meta".to_owned()));
        a.reset_allowed();
        // Not declared in the stage: only the proxy argument is visible.
        assert_eq!(
            a.all_allowed().into_iter().collect::<Vec<_>>(),
            [("HTTP_PROXY".to_owned(), "p".to_owned())]
        );
        a.add_arg("M", None);
        a.add_arg("V", Some("default".to_owned()));
        a.add_arg("NOVAL", Some("d".to_owned()));
        let all = a.all_allowed();
        assert_eq!(all["M"], "meta", "a meta ARG is the default of a stage ARG");
        assert_eq!(all["V"], "cli");
        assert_eq!(all["NOVAL"], "d");
        assert_eq!(a.filter_allowed(&["V=env".to_owned()]).len(), 3);
        assert_eq!(
            a.unused_warning().unwrap(),
            "[Warning] One or more build-args [UNUSED] were not consumed\n"
        );
    }
}

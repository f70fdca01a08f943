//! Unit and slice names, and the cgroup a scope gets, by systemd's naming rules.

use crate::Error;

/// The slice containers go to when `--cgroup-parent` names none: Berth's own (dockerd's is
/// `system.slice`), so that Berth's containers are one subtree apart from the host's services.
pub const DEFAULT_SLICE: &str = "berth.slice";

/// A container's scope: `berth-<id>.scope` (dockerd's is `docker-<id>.scope`).
pub fn scope_name(id: &str) -> String {
    format!("berth-{id}.scope")
}

/// dockerd's check of `--cgroup-parent` under the systemd driver: a slice name `x.slice`.
/// Empty: the default slice.
pub fn parent_slice(cgroup_parent: &str) -> Result<&str, Error> {
    if cgroup_parent.is_empty() {
        return Ok(DEFAULT_SLICE);
    }
    if cgroup_parent.len() <= 6 || !cgroup_parent.ends_with(".slice") {
        return Err(Error::InvalidSlice(
            "cgroup-parent for systemd cgroup should be a valid slice named as \"xxx.slice\""
                .to_owned(),
        ));
    }
    Ok(cgroup_parent)
}

/// The cgroup of `slice`, relative to a hierarchy's root: each dash is a level, so
/// `a-b.slice` is `a.slice/a-b.slice` (systemd's `slice_build_subslice` rules; `-.slice` is
/// the root).
pub fn expand_slice(slice: &str) -> Result<String, Error> {
    let bad = || Error::InvalidSlice(format!("invalid slice name {slice:?}"));
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(bad());
    };
    if stem == "-" {
        return Ok(String::new());
    }
    if stem.is_empty()
        || stem.contains('/')
        || stem.starts_with('-')
        || stem.ends_with('-')
        || stem.contains("--")
    {
        return Err(bad());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// The scope's cgroup relative to a hierarchy's root: `berth.slice/berth-<id>.scope`.
pub fn scope_cgroup(slice: &str, id: &str) -> Result<String, Error> {
    let parent = expand_slice(slice)?;
    let scope = scope_name(id);
    Ok(if parent.is_empty() {
        scope
    } else {
        format!("{parent}/{scope}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_by_their_dashes() {
        assert_eq!(expand_slice("system.slice").unwrap(), "system.slice");
        assert_eq!(
            expand_slice("my-app-web.slice").unwrap(),
            "my.slice/my-app.slice/my-app-web.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        for bad in [
            "x",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_scope_and_its_cgroup() {
        assert_eq!(scope_name("abc"), "berth-abc.scope");
        assert_eq!(
            scope_cgroup("berth.slice", "abc").unwrap(),
            "berth.slice/berth-abc.scope"
        );
        assert_eq!(
            scope_cgroup("a-b.slice", "abc").unwrap(),
            "a.slice/a-b.slice/berth-abc.scope"
        );
        assert_eq!(scope_cgroup("-.slice", "abc").unwrap(), "berth-abc.scope");
    }

    #[test]
    fn cgroup_parent_must_be_a_slice_as_dockerd_says() {
        assert_eq!(parent_slice("").unwrap(), "berth.slice");
        assert_eq!(parent_slice("web.slice").unwrap(), "web.slice");
        for bad in ["/mygroup", ".slice", "x.slic", "berth"] {
            assert_eq!(
                parent_slice(bad).unwrap_err().to_string(),
                "cgroup-parent for systemd cgroup should be a valid slice named as \"xxx.slice\"",
                "{bad}"
            );
        }
    }
}

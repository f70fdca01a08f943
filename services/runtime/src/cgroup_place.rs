//! Where a container's cgroup lives and which cgroup namespace it gets, as dockerd decides.
//! With the cgroupfs driver: `<parent>/<id>` below every hierarchy's root, the parent being
//! `--cgroup-parent` (relative to the root; `..` cannot climb above it) or Berth's own
//! `berth`. With the systemd driver: the scope `berth-<id>.scope` in the `--cgroup-parent`
//! slice (which must be one, as dockerd checks) or `berth.slice`, its cgroup the slice
//! expanded as systemd does (`a-b.slice` is `a.slice/a-b.slice`) plus the scope. The
//! namespace: `--cgroupns`, by default `host` on cgroup v1 and `private` on v2 (moby's
//! default cgroupns mode).

use berth_cgroup::{CgroupDriver, CgroupInfo, CgroupVersion};
use berth_proto::runtime::v1 as pb;

use crate::container::Container;

/// Berth's parent when the container names none (dockerd's `/docker`).
const DEFAULT_PARENT: &str = "berth";

/// Where a run's cgroup goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Below every hierarchy's root.
    pub(crate) path: String,
    /// Its parents are not Berth's to remove: a `--cgroup-parent` the user named (dockerd
    /// leaves it), systemd's slices.
    pub(crate) keep_parents: bool,
    /// With the systemd driver: the scope that owns `path`.
    pub(crate) scope: Option<Scope>,
}

/// A container's transient systemd scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) unit: String,
    pub(crate) slice: String,
}

fn parent_of(c: &Container) -> &str {
    c.spec
        .resources
        .as_ref()
        .map(|r| r.cgroup_parent.as_str())
        .unwrap_or_default()
}

/// Where the driver puts a new run of `c`; dockerd's error for a `--cgroup-parent` that is
/// no slice under the systemd driver.
pub(crate) fn placement(c: &Container, driver: CgroupDriver) -> Result<Placement, String> {
    match driver {
        CgroupDriver::Cgroupfs => {
            let (path, keep_parents) = cgroup_path(c);
            Ok(Placement {
                path,
                keep_parents,
                scope: None,
            })
        }
        CgroupDriver::Systemd => {
            let slice = berth_systemd::parent_slice(parent_of(c)).map_err(|e| e.to_string())?;
            let path = berth_systemd::scope_cgroup(slice, &c.id).map_err(|e| e.to_string())?;
            Ok(Placement {
                path,
                keep_parents: true,
                scope: Some(Scope {
                    unit: berth_systemd::scope_name(&c.id),
                    slice: slice.to_owned(),
                }),
            })
        }
    }
}

/// At create: the `--cgroup-parent` the driver can use (under systemd a valid slice).
pub(crate) fn check_parent(spec: &pb::ContainerSpec, driver: CgroupDriver) -> Result<(), String> {
    let parent = spec
        .resources
        .as_ref()
        .map(|r| r.cgroup_parent.as_str())
        .unwrap_or_default();
    if driver == CgroupDriver::Systemd {
        let slice = berth_systemd::parent_slice(parent).map_err(|e| e.to_string())?;
        berth_systemd::expand_slice(slice).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The cgroup of the container's last run, as recorded at its start (records from before it
/// was kept ran with the cgroupfs driver).
pub(crate) fn recorded(c: &Container) -> (String, bool) {
    if c.state.cgroup_path.is_empty() {
        cgroup_path(c)
    } else {
        (c.state.cgroup_path.clone(), true)
    }
}

/// The container's cgroup path below the hierarchies' roots, and whether its parents are the
/// user's (left in place at removal, as dockerd leaves them).
fn cgroup_path(c: &Container) -> (String, bool) {
    let parent = parent_of(c);
    if parent.is_empty() {
        return (format!("{DEFAULT_PARENT}/{}", c.id), false);
    }
    let clean = clean(parent);
    if clean.is_empty() {
        (c.id.clone(), true)
    } else {
        (format!("{clean}/{}", c.id), true)
    }
}

/// `parent` as a path below the root: as runc's CleanPath on `/` + parent, without the
/// leading slash (`a/../../b` is `b`, `/` is empty).
fn clean(parent: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in parent.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The `--cgroupns` of a new container: what it asked for, else the host's default.
pub(crate) fn cgroupns_mode(requested: &str, host: &CgroupInfo) -> Result<String, String> {
    match requested {
        "private" | "host" => Ok(requested.to_owned()),
        "" if host.version == CgroupVersion::V2 => Ok("private".to_owned()),
        "" => Ok("host".to_owned()),
        other => Err(format!("invalid cgroup namespace mode: {other}")),
    }
}

/// Fills in the cgroup namespace mode of a spec at create, as dockerd stores it in the
/// container's HostConfig.
pub(crate) fn resolve(spec: &mut pb::ContainerSpec, host: &CgroupInfo) -> Result<(), String> {
    let ns = spec.namespaces.get_or_insert_with(Default::default);
    ns.cgroup = cgroupns_mode(&ns.cgroup, host)?;
    Ok(())
}

/// Whether the container has its own cgroup namespace. Records from before the mode was
/// stored have an empty one: they ran with a private namespace.
pub(crate) fn private_cgroupns(c: &Container) -> bool {
    c.spec
        .namespaces
        .as_ref()
        .is_none_or(|ns| ns.cgroup != "host")
}

/// Refuses `native.cgroupdriver=systemd` where systemd is not running (no `<systemd_dir>`,
/// sd_booted's test: `/run/systemd/system`).
pub(crate) fn check_systemd(systemd_dir: &std::path::Path) -> Result<(), String> {
    if !systemd_dir.is_dir() {
        return Err(format!(
            "exec-opts native.cgroupdriver=systemd: systemd is not running on this host \
             ({} is missing), cannot use the systemd cgroup driver; use \
             native.cgroupdriver=cgroupfs",
            systemd_dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(parent: &str) -> Container {
        let mut c = crate::container::tests::sample('a', "c");
        c.id = "abc".to_owned();
        c.spec.resources = Some(pb::Resources {
            cgroup_parent: parent.to_owned(),
            ..Default::default()
        });
        c
    }

    #[test]
    fn parents_stay_below_the_root() {
        assert_eq!(cgroup_path(&container("")), ("berth/abc".to_owned(), false));
        assert_eq!(
            cgroup_path(&container("mine")),
            ("mine/abc".to_owned(), true)
        );
        assert_eq!(
            cgroup_path(&container("/a//b/./")),
            ("a/b/abc".to_owned(), true)
        );
        assert_eq!(
            cgroup_path(&container("../../etc")),
            ("etc/abc".to_owned(), true)
        );
        assert_eq!(cgroup_path(&container("/")), ("abc".to_owned(), true));
    }

    #[test]
    fn the_systemd_driver_needs_systemd_running() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("systemd/system");
        let e = check_systemd(&dir).unwrap_err();
        assert!(e.contains("systemd is not running on this host"), "{e}");
        assert!(e.contains("native.cgroupdriver=systemd"), "{e}");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(check_systemd(&dir), Ok(()));
    }

    #[test]
    fn systemd_places_a_scope_in_the_parent_slice() {
        let p = placement(&container(""), CgroupDriver::Systemd).unwrap();
        assert_eq!(p.path, "berth.slice/berth-abc.scope");
        assert!(p.keep_parents, "slices are systemd's");
        assert_eq!(
            p.scope,
            Some(Scope {
                unit: "berth-abc.scope".to_owned(),
                slice: "berth.slice".to_owned()
            })
        );
        let p = placement(&container("web-api.slice"), CgroupDriver::Systemd).unwrap();
        assert_eq!(p.path, "web.slice/web-api.slice/berth-abc.scope");
        assert_eq!(p.scope.unwrap().slice, "web-api.slice");
        // cgroupfs: no scope.
        let p = placement(&container(""), CgroupDriver::Cgroupfs).unwrap();
        assert_eq!((p.path.as_str(), p.scope), ("berth/abc", None));
    }

    #[test]
    fn a_parent_that_is_no_slice_is_refused_as_dockerd_refuses_it() {
        let msg = "cgroup-parent for systemd cgroup should be a valid slice named as \"xxx.slice\"";
        for bad in ["foo", "/foo", ".slice"] {
            assert_eq!(
                placement(&container(bad), CgroupDriver::Systemd).unwrap_err(),
                msg
            );
            let spec = container(bad).spec;
            assert_eq!(check_parent(&spec, CgroupDriver::Systemd).unwrap_err(), msg);
            assert_eq!(check_parent(&spec, CgroupDriver::Cgroupfs), Ok(()));
        }
        let spec = container("a--b.slice").spec;
        let e = check_parent(&spec, CgroupDriver::Systemd).unwrap_err();
        assert!(e.contains("invalid slice name"), "{e}");
        assert_eq!(
            check_parent(&container("ok.slice").spec, CgroupDriver::Systemd),
            Ok(())
        );
    }

    #[test]
    fn the_recorded_path_wins() {
        let mut c = container("");
        assert_eq!(recorded(&c).0, "berth/abc");
        c.state.cgroup_path = "berth.slice/berth-abc.scope".to_owned();
        assert_eq!(recorded(&c).0, "berth.slice/berth-abc.scope");
    }

    #[test]
    fn cgroupns_defaults_follow_the_cgroup_version() {
        let mut host = CgroupInfo::detect(std::path::Path::new("/nonexistent"));
        host.version = CgroupVersion::V1;
        assert_eq!(cgroupns_mode("", &host).unwrap(), "host");
        assert_eq!(cgroupns_mode("private", &host).unwrap(), "private");
        host.version = CgroupVersion::V2;
        assert_eq!(cgroupns_mode("", &host).unwrap(), "private");
        assert_eq!(cgroupns_mode("host", &host).unwrap(), "host");
        assert_eq!(
            cgroupns_mode("shared", &host).unwrap_err(),
            "invalid cgroup namespace mode: shared"
        );
        let mut old = container("");
        assert!(private_cgroupns(&old));
        old.spec.namespaces = Some(pb::NamespaceSpec {
            cgroup: "host".to_owned(),
            ..Default::default()
        });
        assert!(!private_cgroupns(&old));
    }
}

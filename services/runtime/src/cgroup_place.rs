//! Where a container's cgroup lives and which cgroup namespace it gets, as dockerd decides
//! with the cgroupfs driver: `<parent>/<id>` below every hierarchy's root, the parent being
//! `--cgroup-parent` (relative to the root; `..` cannot climb above it) or Berth's own
//! `berth`; the namespace `--cgroupns`, by default `host` on cgroup v1 and `private` on v2
//! (moby's default cgroupns mode).

use berth_cgroup::{CgroupInfo, CgroupVersion};
use berth_proto::runtime::v1 as pb;

use crate::container::Container;

/// Berth's parent when the container names none (dockerd's `/docker`).
const DEFAULT_PARENT: &str = "berth";

/// The container's cgroup path below the hierarchies' roots, and whether its parents are the
/// user's (left in place at removal, as dockerd leaves them).
pub(crate) fn cgroup_path(c: &Container) -> (String, bool) {
    let parent = c
        .spec
        .resources
        .as_ref()
        .map(|r| r.cgroup_parent.as_str())
        .unwrap_or_default();
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

/// Refuses `native.cgroupdriver=systemd` with the reason: systemd is not running here (no
/// `<systemd_dir>`, sd_booted's test), or Berth has no systemd driver yet.
pub(crate) fn check_driver(
    driver: berth_config::CgroupDriver,
    systemd_dir: &std::path::Path,
) -> Result<(), String> {
    if driver == berth_config::CgroupDriver::Cgroupfs {
        return Ok(());
    }
    if !systemd_dir.is_dir() {
        return Err(format!(
            "exec-opts native.cgroupdriver=systemd: systemd is not running on this host \
             ({} is missing), cannot use the systemd cgroup driver; use \
             native.cgroupdriver=cgroupfs",
            systemd_dir.display()
        ));
    }
    Err(
        "exec-opts native.cgroupdriver=systemd is not supported by Berth yet; use \
         native.cgroupdriver=cgroupfs"
            .to_owned(),
    )
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
    fn the_systemd_driver_is_refused_with_its_reason() {
        use berth_config::CgroupDriver;
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("systemd/system");
        assert_eq!(check_driver(CgroupDriver::Cgroupfs, &dir), Ok(()));
        let e = check_driver(CgroupDriver::Systemd, &dir).unwrap_err();
        assert!(e.contains("systemd is not running on this host"), "{e}");
        std::fs::create_dir_all(&dir).unwrap();
        let e = check_driver(CgroupDriver::Systemd, &dir).unwrap_err();
        assert!(e.contains("not supported by Berth yet"), "{e}");
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

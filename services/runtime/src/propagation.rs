//! dockerd's checks of a bind mount's propagation against the mount its source is on
//! (`ensureShared`, `ensureSharedOrSlave` of moby's oci_linux.go): `shared`/`rshared` need a
//! shared source mount, `slave`/`rslave` a shared or slave one, or mounts could not travel.

use std::path::Path;

use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;

use crate::container_error::ContainerError;

/// The mount point `path` is on and that mount's optional fields (`shared:N master:M`): the
/// longest mount point above it, the later of two at one path.
fn source_mount(mountinfo: &str, path: &Path) -> Option<(String, String)> {
    let mut best: Option<(String, String)> = None;
    for l in mountinfo.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let (Some(mp), Some(sep)) = (f.get(4), f.iter().position(|x| *x == "-")) else {
            continue;
        };
        let mp = mp.replace("\\040", " ");
        let longer = best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len());
        if Path::new(path).starts_with(&mp) && longer {
            best = Some((mp, f.get(6..sep).unwrap_or_default().join(" ")));
        }
    }
    best
}

/// The error for a source whose mount cannot carry the asked propagation, if it cannot.
fn check_one(mountinfo: &str, source: &str, propagation: &str) -> Option<String> {
    let (need, words): (&[&str], &str) = match propagation {
        "shared" | "rshared" => (&["shared:"], "a shared mount"),
        "slave" | "rslave" => (&["shared:", "master:"], "a shared or slave mount"),
        _ => return None,
    };
    let real = std::fs::canonicalize(source).unwrap_or_else(|_| source.into());
    let Some((mp, optional)) = source_mount(mountinfo, &real) else {
        return Some(format!("Can't find mount point of {source}"));
    };
    let ok = optional
        .split(' ')
        .any(|o| need.iter().any(|n| o.starts_with(n)));
    (!ok).then(|| format!("path {source} is mounted on {mp} but it is not {words}"))
}

/// Checks each bind mount point's propagation; dockerd's error (a 500) for the first that
/// its source's mount cannot carry.
pub(crate) fn check(points: &[pb::MountPoint]) -> Result<(), ContainerError> {
    let binds = points.iter().filter(|p| {
        p.r#type == pb::mount_spec::Type::Bind as i32
            && !matches!(p.propagation.as_str(), "" | "private" | "rprivate")
    });
    let mut info = None;
    for p in binds {
        let info = info.get_or_insert_with(|| {
            std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
        });
        if let Some(e) = check_one(info, &p.source, &p.propagation) {
            return Err(ContainerError::new(ErrorKind::Internal, e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
        30 22 0:5 / /srv/shared rw shared:7 - tmpfs t rw\n\
        31 22 0:6 / /srv/slave rw master:7 - tmpfs t rw\n\
        32 22 0:7 / /srv/private rw - tmpfs t rw\n\
        33 22 0:8 / /srv/a\\040b rw - tmpfs t rw\n";

    #[test]
    fn propagation_needs_a_mount_that_carries_it() {
        assert_eq!(check_one(INFO, "/srv/shared/x", "rshared"), None);
        assert_eq!(check_one(INFO, "/srv/shared/x", "rslave"), None);
        assert_eq!(check_one(INFO, "/srv/slave/x", "slave"), None);
        assert_eq!(
            check_one(INFO, "/srv/slave/x", "shared").unwrap(),
            "path /srv/slave/x is mounted on /srv/slave but it is not a shared mount"
        );
        assert_eq!(
            check_one(INFO, "/srv/private/x", "rslave").unwrap(),
            "path /srv/private/x is mounted on /srv/private but it is not a shared or slave mount"
        );
        assert_eq!(check_one(INFO, "/srv/private/x", "rprivate"), None);
        assert_eq!(check_one(INFO, "/elsewhere", "rshared"), None);
        assert_eq!(
            source_mount(INFO, Path::new("/srv/a b/c")).unwrap().0,
            "/srv/a b"
        );
    }
}

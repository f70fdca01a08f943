//! The devices a container gets: Docker's default rules, `--device` nodes copied from the
//! host with their rule, `--device-cgroup-rule` rules, and for `--privileged` every host
//! device with every access.

use std::{os::unix::fs::MetadataExt, path::Path};

use berth_bundle::{DeviceKind, DeviceNode, DeviceRule};
use berth_proto::runtime::v1 as pb;
use nix::sys::stat::{major, minor};

use crate::container_error::ContainerError;

/// Host directories whose content is no device for a container.
const SKIPPED: &[&str] = &[
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/dev/fd",
    "/dev/.udev",
];

/// The node of the host device at `host`, made at `inside`; None when it is no device.
fn node(host: &Path, inside: &str) -> std::io::Result<Option<DeviceNode>> {
    let meta = std::fs::metadata(host)?;
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        DeviceKind::Char
    } else if ft.is_block_device() {
        DeviceKind::Block
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    Ok(Some(DeviceNode {
        path: inside.to_owned(),
        kind,
        major: u32::try_from(major(rdev)).unwrap_or(u32::MAX),
        minor: u32::try_from(minor(rdev)).unwrap_or(u32::MAX),
        file_mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

/// The devices under `dir` (recursively, links not followed), made at the same place below
/// `inside`.
fn walk(dir: &Path, inside: &str, out: &mut Vec<DeviceNode>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let ft = e.file_type()?;
        let name = e.file_name().to_string_lossy().into_owned();
        let target = format!("{}/{name}", inside.trim_end_matches('/'));
        if ft.is_symlink() || SKIPPED.iter().any(|s| path == Path::new(s)) {
            continue;
        }
        if ft.is_dir() {
            walk(&path, &target, out)?;
        } else if let Some(n) = node(&path, &target)? {
            out.push(n);
        }
    }
    Ok(())
}

fn rule_for(n: &DeviceNode, access: &str) -> DeviceRule {
    DeviceRule::allow(n.kind, Some(n.major), Some(n.minor), access)
}

/// The nodes to make and the rules to apply for a container.
pub(crate) fn for_container(
    sec: &pb::SecuritySpec,
    res: &pb::Resources,
) -> Result<(Vec<DeviceNode>, Vec<DeviceRule>), ContainerError> {
    let mut nodes = Vec::new();
    if sec.privileged {
        walk(Path::new("/dev"), "/dev", &mut nodes)?;
        return Ok((
            nodes,
            vec![DeviceRule::allow(DeviceKind::All, None, None, "rwm")],
        ));
    }
    let mut rules = berth_bundle::default_device_rules();
    for d in &res.devices {
        let gathering = |e: std::io::Error| {
            // Go's errno text, as dockerd's (the CLI exits 127 on "no such file or directory").
            let why = e.raw_os_error().map_or_else(
                || e.to_string(),
                |n| {
                    let desc = nix::errno::Errno::from_raw(n).desc();
                    let mut c = desc.chars();
                    c.next()
                        .map_or_else(String::new, |f| f.to_lowercase().chain(c).collect())
                },
            );
            ContainerError::invalid(format!(
                "error gathering device information while adding custom device {:?}: {why}",
                d.path_on_host
            ))
        };
        let inside = if d.path_in_container.is_empty() {
            d.path_on_host.as_str()
        } else {
            d.path_in_container.as_str()
        };
        let access = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        let host = Path::new(&d.path_on_host);
        let mut found = Vec::new();
        if std::fs::metadata(host).map_err(gathering)?.is_dir() {
            walk(host, inside, &mut found).map_err(gathering)?;
        } else {
            match node(host, inside).map_err(gathering)? {
                Some(n) => found.push(n),
                None => {
                    return Err(ContainerError::invalid(format!(
                        "error gathering device information while adding custom device {:?}: \
                         not a device node",
                        d.path_on_host
                    )));
                }
            }
        }
        for n in found {
            rules.push(rule_for(&n, access));
            nodes.push(n);
        }
    }
    for r in &res.device_cgroup_rules {
        rules.push(DeviceRule::parse(r).map_err(ContainerError::invalid)?);
    }
    Ok((nodes, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_and_a_rule() {
        let res = pb::Resources {
            devices: vec![pb::DeviceMapping {
                path_on_host: "/dev/null".to_owned(),
                path_in_container: "/dev/mynull".to_owned(),
                cgroup_permissions: "rw".to_owned(),
            }],
            device_cgroup_rules: vec!["c 42:* rmw".to_owned()],
            ..Default::default()
        };
        let (nodes, rules) = for_container(&pb::SecuritySpec::default(), &res).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!((nodes[0].major, nodes[0].minor), (1, 3));
        assert_eq!(nodes[0].path, "/dev/mynull");
        let n = rules.len();
        assert_eq!(rules[n - 2].cgroup_v1(), "c 1:3 rw");
        assert_eq!(rules[n - 1].cgroup_v1(), "c 42:* rmw");
        let missing = pb::Resources {
            devices: vec![pb::DeviceMapping {
                path_on_host: "/dev/nope".to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = for_container(&pb::SecuritySpec::default(), &missing).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error gathering device information while adding custom device \"/dev/nope\": \
             no such file or directory"
        );
    }

    #[test]
    fn privileged_gets_the_hosts_devices() {
        let sec = pb::SecuritySpec {
            privileged: true,
            ..Default::default()
        };
        let (nodes, rules) = for_container(&sec, &pb::Resources::default()).unwrap();
        assert!(nodes.iter().any(|n| n.path == "/dev/null"));
        assert!(!nodes.iter().any(|n| n.path.starts_with("/dev/pts/")));
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].cgroup_v1(), "a *:* rwm");
    }
}

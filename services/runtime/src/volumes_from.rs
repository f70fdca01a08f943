//! `--volumes-from <container>[:ro|:rw]`: the other container's mounts (volumes, binds,
//! tmpfs) at the same destinations, read-only when either says so, as moby's
//! `registerMountPoints` takes them: a later container's mount replaces an earlier one's at
//! the same destination, and the new container's own mounts replace both. Nothing is copied
//! from the image into them.

use std::collections::BTreeSet;

use berth_errors::HasKind;
use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;

use crate::{container_error::ContainerError, lifecycle::Containers};

/// `container[:mode]` → the container and whether the mode says read-only.
fn parse(spec: &str) -> (&str, bool) {
    match spec.split_once(':') {
        Some((id, mode)) => (id, mode.split(',').any(|m| m == "ro")),
        None => (spec, false),
    }
}

/// The inherited mount points: `from` holds each container's points and whether it was named
/// read-only, in the order given; `own` the destinations the container mounts itself (cleaned).
pub(crate) fn inherit(
    from: &[(Vec<pb::MountPoint>, bool)],
    own: &BTreeSet<String>,
    clean: impl Fn(&str) -> String,
) -> Vec<pb::MountPoint> {
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    // The last container wins a destination: walk them backwards, the first seen kept.
    for (points, read_only) in from.iter().rev() {
        for p in points {
            let dest = clean(&p.destination);
            if own.contains(&dest) || !taken.insert(dest) {
                continue;
            }
            out.push(pb::MountPoint {
                read_only: p.read_only || *read_only,
                // dockerd does not carry the mode text over.
                mode: String::new(),
                ..p.clone()
            });
        }
    }
    out.sort_by(|a, b| a.destination.cmp(&b.destination));
    out
}

impl Containers {
    /// The mount points of the containers `spec` names, each looked up as dockerd does
    /// (a missing one is a 400 `No such container: x`).
    pub(crate) fn volumes_from(
        &self,
        spec: &pb::ContainerSpec,
    ) -> Result<Vec<(Vec<pb::MountPoint>, bool)>, ContainerError> {
        spec.volumes_from
            .iter()
            .map(|v| {
                let (id, read_only) = parse(v);
                let c = self.find(id).map_err(|e| {
                    if e.kind() == ErrorKind::NotFound {
                        ContainerError::invalid(e.to_string())
                    } else {
                        e
                    }
                })?;
                Ok((c.mount_points, read_only))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(dest: &str, name: &str, read_only: bool) -> pb::MountPoint {
        pb::MountPoint {
            r#type: pb::mount_spec::Type::Volume as i32,
            name: name.to_owned(),
            destination: dest.to_owned(),
            read_only,
            mode: "z".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn later_containers_and_own_mounts_win_and_ro_sticks() {
        assert_eq!(parse("db:ro"), ("db", true));
        assert_eq!(parse("db:rw"), ("db", false));
        assert_eq!(parse("db:z,ro"), ("db", true));
        assert_eq!(parse("db"), ("db", false));
        let first = vec![
            point("/a", "a1", false),
            point("/b/", "b1", false),
            point("/own", "o1", false),
        ];
        let second = vec![point("/b", "b2", true), point("/c", "c2", false)];
        let own: BTreeSet<String> = ["/own".to_owned()].into();
        let clean = |p: &str| p.trim_end_matches('/').to_owned();
        let got = inherit(&[(first, true), (second, false)], &own, clean);
        let summary: Vec<(&str, &str, bool, &str)> = got
            .iter()
            .map(|p| {
                (
                    p.destination.as_str(),
                    p.name.as_str(),
                    p.read_only,
                    p.mode.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("/a", "a1", true, ""),
                ("/b", "b2", true, ""),
                ("/c", "c2", false, "")
            ]
        );
    }
}

//! How a read-only bind or volume is made read-only, as dockerd's `WithMounts` decides: down
//! to every submount (runc's `rro`, mount_setattr with AT_RECURSIVE, Linux 5.12) unless the
//! mount asks for the top only (`bind-recursive=writable`, and every read-only bind of a
//! client before API 1.44); where the kernel cannot (found by trying, once), only the top,
//! unless the mount insists (`bind-recursive=readonly`), which then fails the start.

use std::sync::OnceLock;

use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;

use crate::container_error::ContainerError;

/// Why this host cannot make a mount recursively read-only, if it cannot: found once by
/// trying (`berth-shim probe rro`, which mounts a tmpfs in a private mount namespace and
/// calls mount_setattr on it, as moby's `kernelSupportsRecursivelyReadOnly`), and kept.
fn host_rro_unsupported() -> Option<&'static str> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| unsupported_because(probe())).as_deref()
}

/// Probes ahead of a start that needs the answer, off the async threads (the probe runs a
/// process once).
pub(crate) async fn probe_once() {
    let _ = tokio::task::spawn_blocking(host_rro_unsupported).await;
}

/// Whether making `p` read-only needs the probe's answer.
pub(crate) fn asks_recursion(p: &pb::MountPoint) -> bool {
    p.read_only && !p.read_only_non_recursive && p.r#type != pb::mount_spec::Type::Tmpfs as i32
}

/// Runs the shim's probe: its error text when the kernel cannot.
fn probe() -> Result<(), String> {
    #[allow(clippy::disallowed_methods)]
    let out = std::process::Command::new(crate::shim::shim_binary())
        .args(["probe", "rro"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("failed to run the shim's probe: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
}

/// moby's `supportsRecursivelyReadOnly` message for a probe that failed.
fn unsupported_because(probe: Result<(), String>) -> Option<String> {
    probe
        .err()
        .map(|why| format!("rro is not supported: {why} (kernel is older than 5.12?)"))
}

/// The bundle option that makes the read-only mount `p` read-only: `rro` or `ro`.
pub(crate) fn option(p: &pb::MountPoint) -> Result<&'static str, ContainerError> {
    option_on(p, host_rro_unsupported())
}

fn option_on(
    p: &pb::MountPoint,
    unsupported: Option<&str>,
) -> Result<&'static str, ContainerError> {
    if p.read_only_non_recursive {
        if p.read_only_force_recursive {
            return Err(ContainerError::new(
                ErrorKind::Internal,
                "mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive",
            ));
        }
        return Ok("ro");
    }
    match unsupported {
        None => Ok("rro"),
        Some(why) if p.read_only_force_recursive => {
            Err(ContainerError::new(ErrorKind::Internal, why))
        }
        Some(_) => Ok("ro"),
    }
}

#[cfg(test)]
mod tests {
    use berth_errors::HasKind;

    use super::*;

    fn point(non_recursive: bool, force: bool) -> pb::MountPoint {
        pb::MountPoint {
            read_only: true,
            read_only_non_recursive: non_recursive,
            read_only_force_recursive: force,
            ..Default::default()
        }
    }

    #[test]
    fn recursive_where_the_kernel_can_unless_asked_otherwise() {
        // What a kernel without mount_setattr answers the probe.
        let old = unsupported_because(Err(
            "failed to call mount_setattr: function not implemented".to_owned(),
        ));
        assert_eq!(
            old.as_deref(),
            Some(
                "rro is not supported: failed to call mount_setattr: function not implemented \
                 (kernel is older than 5.12?)"
            )
        );
        assert_eq!(unsupported_because(Ok(())), None);

        assert_eq!(option_on(&point(false, false), None).unwrap(), "rro");
        assert_eq!(option_on(&point(false, true), None).unwrap(), "rro");
        assert_eq!(option_on(&point(true, false), None).unwrap(), "ro");
        // Falls back to the top only, unless forced.
        assert_eq!(
            option_on(&point(false, false), old.as_deref()).unwrap(),
            "ro"
        );
        let e = option_on(&point(false, true), old.as_deref()).unwrap_err();
        assert!(e.to_string().starts_with("rro is not supported: "), "{e}");
        let e = option_on(&point(true, true), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(
            e.to_string(),
            "mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive"
        );
    }
}

//! How a read-only bind or volume is made read-only, as dockerd's `WithMounts` decides: down
//! to every submount (runc's `rro`, mount_setattr with AT_RECURSIVE, Linux 5.12) unless the
//! mount asks for the top only (`bind-recursive=writable`, and every read-only bind of a
//! client before API 1.44); where the kernel cannot, only the top, unless the mount insists
//! (`bind-recursive=readonly`), which then fails the start.

use std::sync::OnceLock;

use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;

use crate::container_error::ContainerError;

/// Linux 5.12 brought mount_setattr(2).
const RRO_KERNEL: (u32, u32) = (5, 12);

/// `release` (uname -r: "6.1.0-13-amd64") as major and minor.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Why this host cannot make a mount recursively read-only, if it cannot.
fn rro_unsupported(release: &str) -> Option<String> {
    match kernel_version(release) {
        Some(v) if v >= RRO_KERNEL => None,
        _ => Some(format!(
            "rro is not supported: kernel {release} has no mount_setattr (kernel is older than 5.12?)"
        )),
    }
}

fn host_rro_unsupported() -> Option<&'static str> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        rro_unsupported(&release)
    })
    .as_deref()
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
        let old = rro_unsupported("5.10.0-28-amd64");
        assert!(
            old.as_deref()
                .is_some_and(|w| w.contains("older than 5.12"))
        );
        assert_eq!(rro_unsupported("5.12.0"), None);
        assert_eq!(rro_unsupported("6.18.44-fc-v1272"), None);
        assert!(rro_unsupported("").is_some());

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

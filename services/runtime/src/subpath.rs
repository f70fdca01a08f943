//! `--mount type=volume,volume-subpath=...`: at start the subpath must exist below the volume's
//! data and not leave it through a symlink, as moby's safepath checks it (`cannot access
//! path ...`, a 404; `path concatenation escapes the base directory ...`, a 400). The shim
//! then opens it again without following any symlink for the bind itself.

use std::path::{Path, PathBuf};

use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;

use crate::container_error::ContainerError;

/// Go's error for a path that does not resolve: `lstat <first missing prefix>: <errno>`.
fn lstat_error(path: &Path, e: &std::io::Error) -> String {
    let mut prefix = PathBuf::new();
    for c in path.components() {
        prefix.push(c);
        if std::fs::symlink_metadata(&prefix).is_err() {
            break;
        }
    }
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    let lower: String = chars
        .next()
        .map(|f| f.to_lowercase().chain(chars).collect())
        .unwrap_or_default();
    format!("lstat {}: {lower}", prefix.display())
}

/// moby's `evaluatePath`.
fn evaluate(base: &Path, sub: &str) -> Result<(), (ErrorKind, String)> {
    let not_found = |p: &Path, e: &std::io::Error| {
        (
            ErrorKind::NotFound,
            format!("cannot access path {}: {}", p.display(), lstat_error(p, e)),
        )
    };
    let base_real = std::fs::canonicalize(base).map_err(|e| not_found(base, &e))?;
    let combined = base_real.join(sub);
    let real = std::fs::canonicalize(&combined).map_err(|e| not_found(&combined, &e))?;
    if !real.starts_with(&base_real) {
        return Err((
            ErrorKind::InvalidArgument,
            format!(
                "path concatenation escapes the base directory, base: {}, subpath: {sub}",
                base_real.display()
            ),
        ));
    }
    Ok(())
}

/// Checks the subpath of each volume mount point.
pub(crate) fn check(points: &[pb::MountPoint]) -> Result<(), ContainerError> {
    for p in points.iter().filter(|p| !p.subpath.is_empty()) {
        evaluate(Path::new(&p.source), &p.subpath)
            .map_err(|(kind, msg)| ContainerError::new(kind, msg))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subpath_must_exist_below_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("_data");
        std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
        std::os::unix::fs::symlink("/etc", data.join("out")).unwrap();
        std::os::unix::fs::symlink("sub", data.join("in")).unwrap();
        evaluate(&data, "sub").unwrap();
        evaluate(&data, "in/deeper").unwrap();
        let (kind, msg) = evaluate(&data, "missing/x").unwrap_err();
        assert_eq!(kind, ErrorKind::NotFound);
        let d = data.display();
        assert_eq!(
            msg,
            format!(
                "cannot access path {d}/missing/x: lstat {d}/missing: no such file or directory"
            )
        );
        let (kind, msg) = evaluate(&data, "out").unwrap_err();
        assert_eq!(kind, ErrorKind::InvalidArgument);
        assert_eq!(
            msg,
            format!("path concatenation escapes the base directory, base: {d}, subpath: out")
        );
    }
}

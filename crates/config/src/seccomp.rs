//! `seccomp-profile`: the seccomp profile of containers that name none (dockerd's
//! `setupSeccompProfile`). The file is read and checked when the configuration is loaded, so
//! that an engine with a profile it cannot use refuses to start rather than failing every
//! container.

use std::path::{Path, PathBuf};

/// The daemon's default seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompProfile {
    /// Docker's default profile (`builtin`, or the key absent or empty).
    #[default]
    Builtin,
    /// No filter (`unconfined`).
    Unconfined,
    /// A profile file in Docker's format: its path and its text as read at load.
    File { path: PathBuf, json: String },
}

impl SeccompProfile {
    /// What `docker info` shows after `profile=` (moby: `builtin`, `unconfined` or the path).
    pub fn info_name(&self) -> String {
        match self {
            SeccompProfile::Builtin => "builtin".to_owned(),
            SeccompProfile::Unconfined => "unconfined".to_owned(),
            SeccompProfile::File { path, .. } => path.display().to_string(),
        }
    }
}

/// The value of `seccomp-profile`: `builtin`, `unconfined` or a path, whose file must read and
/// hold a profile Berth can use. The error is the reason, without the key.
pub(crate) fn parse(value: Option<&str>) -> Result<SeccompProfile, String> {
    let path = match value {
        None | Some("" | "builtin") => return Ok(SeccompProfile::Builtin),
        Some("unconfined") => return Ok(SeccompProfile::Unconfined),
        Some(path) => Path::new(path),
    };
    // dockerd's words for a file it cannot read.
    let json = std::fs::read_to_string(path)
        .map_err(|e| format!("opening seccomp profile ({}) failed: {e}", path.display()))?;
    berth_seccomp::Profile::parse(&json)
        .map_err(|e| format!("seccomp profile ({}): {e}", path.display()))?;
    Ok(SeccompProfile::File {
        path: path.to_owned(),
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_file_or_a_mode() {
        assert_eq!(parse(None).unwrap(), SeccompProfile::Builtin);
        assert_eq!(parse(Some("builtin")).unwrap(), SeccompProfile::Builtin);
        assert_eq!(parse(Some("")).unwrap(), SeccompProfile::Builtin);
        assert_eq!(
            parse(Some("unconfined")).unwrap(),
            SeccompProfile::Unconfined
        );
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("p.json");
        let text = r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#;
        std::fs::write(&good, text).unwrap();
        let p = parse(good.to_str()).unwrap();
        assert_eq!(
            p,
            SeccompProfile::File {
                path: good.clone(),
                json: text.to_owned()
            }
        );
        assert_eq!(p.info_name(), good.display().to_string());

        let missing = dir.path().join("missing.json");
        let err = parse(missing.to_str()).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "opening seccomp profile ({}) failed: ",
                missing.display()
            )),
            "{err}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_NOPE"}"#).unwrap();
        let err = parse(bad.to_str()).unwrap_err();
        assert!(err.contains("unknown action"), "{err}");
        std::fs::write(&bad, "{").unwrap();
        let err = parse(bad.to_str()).unwrap_err();
        assert!(err.contains("Decoding seccomp profile failed"), "{err}");
    }
}

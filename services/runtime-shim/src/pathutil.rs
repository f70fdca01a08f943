//! Paths inside the container: joining under the root filesystem without letting a symlink
//! in the image escape it, and finding `args[0]` through the container's PATH.

use std::{
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use nix::unistd::AccessFlags;

use crate::{
    config::DEFAULT_PATH,
    error::{StartError, StartErrorKind},
};

pub use berth_bundle::secure_join;

/// The value of `key` in a `KEY=VALUE` environment.
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// Finds the executable for `arg0` as the current user, in the current root: a path with a
/// slash is taken as it is, a bare name is looked up in the environment's PATH. The error
/// says whether the file is missing (Docker's 127) or cannot be executed (126).
pub fn find_executable(arg0: &str, env: &[String], cwd: &Path) -> Result<PathBuf, StartError> {
    if arg0.contains('/') {
        let p = if arg0.starts_with('/') {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        };
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(kind) => Err(StartError {
                kind,
                message: describe(arg0, kind),
            }),
        };
    }
    let path = env_value(env, "PATH").unwrap_or(DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        match check(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(StartErrorKind::Permission) => denied = true,
            Err(_) => {}
        }
    }
    let kind = if denied {
        StartErrorKind::Permission
    } else {
        StartErrorKind::NotFound
    };
    let message = match kind {
        StartErrorKind::NotFound => {
            format!("exec: \"{arg0}\": executable file not found in $PATH")
        }
        _ => describe(arg0, kind),
    };
    Err(StartError { kind, message })
}

fn describe(arg0: &str, kind: StartErrorKind) -> String {
    match kind {
        // runc's words (dockerd's message): the path's stat failed.
        StartErrorKind::NotFound => {
            format!("exec: \"{arg0}\": stat {arg0}: no such file or directory")
        }
        StartErrorKind::Permission => format!("exec: \"{arg0}\": permission denied"),
        StartErrorKind::Other => format!("exec: \"{arg0}\": cannot execute"),
    }
}

fn check(p: &Path) -> Result<(), StartErrorKind> {
    match std::fs::metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StartErrorKind::NotFound),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => Err(StartErrorKind::NotFound),
        Err(_) => Err(StartErrorKind::Permission),
        Ok(m) if m.is_dir() => Err(StartErrorKind::Permission),
        Ok(_) => nix::unistd::access(p.as_os_str().as_bytes(), AccessFlags::X_OK)
            .map_err(|_| StartErrorKind::Permission),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(secure_join(root, "/a/abs/passwd"), root.join("etc/passwd"));
        assert_eq!(secure_join(root, "/a/b/up/x"), root.join("x"));
        assert_eq!(secure_join(root, "/../../x"), root.join("x"));
        assert_eq!(secure_join(root, "/a/rel/c"), root.join("a/b/c"));
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(secure_join(root, "/loop/x").starts_with(root));
    }

    #[test]
    fn path_lookup_classifies() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("data"), "x").unwrap();
        std::fs::set_permissions(bin.join("data"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", bin.display())];
        let cwd = Path::new("/");
        assert_eq!(
            find_executable("tool", &env, cwd).unwrap(),
            bin.join("tool")
        );
        let e = find_executable("nope", &env, cwd).unwrap_err();
        assert_eq!(e.kind, StartErrorKind::NotFound);
        assert!(e.message.contains("executable file not found"));
        let abs = bin.join("data").display().to_string();
        assert_eq!(
            find_executable(&abs, &env, cwd).unwrap_err().kind,
            StartErrorKind::Permission
        );
        assert_eq!(
            find_executable("/no/such", &env, cwd).unwrap_err().kind,
            StartErrorKind::NotFound
        );
    }

    #[test]
    fn env_lookup_takes_last() {
        let env = vec!["PATH=/a".to_owned(), "PATHX=1".into(), "PATH=/b".into()];
        assert_eq!(env_value(&env, "PATH"), Some("/b"));
        assert_eq!(env_value(&env, "HOME"), None);
    }
}

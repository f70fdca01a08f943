use std::path::Path;

use berth_types::EngineId;

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
/// the directory. Readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    berth_bundle::write_atomic_mode(path, bytes, mode)
}

/// The engine's ID, kept in `<data-root>/engine-id`; made once, on first use.
pub fn engine_id(data_root: &Path) -> std::io::Result<EngineId> {
    let path = data_root.join("engine-id");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(id) = text.parse()
    {
        return Ok(id);
    }
    std::fs::create_dir_all(data_root)?;
    // Several services may start at once: create under a private name and link it into place,
    // which fails if another got there first; everyone then reads the winner.
    let tmp = data_root.join(format!(".engine-id.{}", uuid::Uuid::new_v4()));
    write_atomic(&tmp, uuid::Uuid::new_v4().to_string().as_bytes(), 0o644)?;
    if std::fs::read_to_string(&path).is_ok_and(|t| t.parse::<EngineId>().is_err()) {
        std::fs::rename(&tmp, &path)?;
    } else {
        let linked = std::fs::hard_link(&tmp, &path);
        std::fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    std::fs::read_to_string(&path)?
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Bytes a directory tree occupies (apparent size of regular files and symlinks, each inode
/// counted once), as `docker system df` reports. A missing path is 0.
pub fn disk_usage(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p)? {
                stack.push(entry?.path());
            }
        } else if seen.insert((meta.dev(), meta.ino())) {
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_hardlinks_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(disk_usage(&dir.path().join("absent")).unwrap(), 0);
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), [0u8; 1000]).unwrap();
        std::fs::hard_link(dir.path().join("a/f"), dir.path().join("g")).unwrap();
        std::fs::write(dir.path().join("h"), [0u8; 24]).unwrap();
        assert_eq!(disk_usage(dir.path()).unwrap(), 1024);
    }

    #[test]
    fn engine_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = engine_id(dir.path()).unwrap();
        let b = engine_id(dir.path()).unwrap();
        assert_eq!(a, b);
        std::fs::write(dir.path().join("engine-id"), "garbage").unwrap();
        let c = engine_id(dir.path()).unwrap();
        assert_ne!(c, a, "a corrupt id is replaced");
    }

    #[test]
    fn write_atomic_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        write_atomic(&p, b"first version", 0o600).unwrap();
        write_atomic(&p, b"2", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}

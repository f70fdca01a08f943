//! A read-only view of a file tree made of directories stacked like overlay layers (the top
//! first): the build context (one directory), or an image's unpacked layers. Whiteouts hide
//! what is below them; symlinks are followed inside the view, never out of it.

use std::{
    collections::BTreeMap,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Component, Path, PathBuf},
};

#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// Top layer first.
    dirs: Vec<PathBuf>,
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn opaque(dir: &Path) -> bool {
    matches!(
        xattr_get(dir, "trusted.overlay.opaque").as_deref(),
        Some(b"y")
    )
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 16];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

impl Tree {
    pub(crate) fn new(dirs: Vec<PathBuf>) -> Tree {
        Tree { dirs }
    }

    /// The host path of `rel` in the top-most layer that has it, unless a whiteout (or an
    /// opaque directory above) hides it. No symlink is followed.
    fn entry(&self, parts: &[String]) -> Option<PathBuf> {
        let rel: PathBuf = parts.iter().collect();
        for d in &self.dirs {
            let p = d.join(&rel);
            if let Ok(m) = std::fs::symlink_metadata(&p) {
                return (!is_whiteout(&m)).then_some(p);
            }
            // An opaque parent directory in this layer hides the layers below.
            if (1..parts.len()).any(|n| {
                let dir = d.join(parts[..n].iter().collect::<PathBuf>());
                dir.is_dir() && opaque(&dir)
            }) {
                return None;
            }
        }
        None
    }

    /// Resolves `rel` (symlinks followed inside the tree, `..` stopping at its root) to its
    /// path in the tree and the host path holding it; `None` when it does not exist.
    pub(crate) fn resolve(&self, rel: &str) -> Option<(String, PathBuf)> {
        let mut parts: Vec<String> = Vec::new();
        let mut pending: Vec<String> = rel.split('/').rev().map(str::to_owned).collect();
        let mut links = 0;
        while let Some(p) = pending.pop() {
            match p.as_str() {
                "" | "." => continue,
                ".." => {
                    parts.pop();
                    continue;
                }
                _ => {}
            }
            parts.push(p);
            let host = self.entry(&parts)?;
            let m = std::fs::symlink_metadata(&host).ok()?;
            if m.file_type().is_symlink() {
                links += 1;
                if links > 255 {
                    return None;
                }
                parts.pop();
                let target = std::fs::read_link(&host).ok()?;
                if target.is_absolute() {
                    parts.clear();
                }
                let t: Vec<String> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                        Component::ParentDir => Some("..".to_owned()),
                        _ => None,
                    })
                    .collect();
                pending.extend(t.into_iter().rev());
            }
        }
        let host = if parts.is_empty() {
            self.dirs.first()?.clone()
        } else {
            self.entry(&parts)?
        };
        Some((parts.join("/"), host))
    }

    /// Whether `rel` is a directory in the tree.
    pub(crate) fn is_dir(&self, rel: &str) -> bool {
        self.resolve(rel).is_some_and(|(_, h)| h.is_dir())
    }

    /// Everything under the directory `rel` (tree path), by path relative to it, with the host
    /// path that holds it; symlinks below it are entries, not followed.
    pub(crate) fn walk(&self, rel: &str) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        let base: Vec<String> = rel
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        self.walk_into(&base, "", &mut out);
        out
    }

    fn walk_into(&self, base: &[String], sub: &str, out: &mut BTreeMap<String, PathBuf>) {
        let mut names = std::collections::BTreeSet::new();
        let sub_parts: Vec<String> = sub
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let full: Vec<String> = base.iter().chain(&sub_parts).cloned().collect();
        let rel: PathBuf = full.iter().collect();
        for d in &self.dirs {
            let dir = d.join(&rel);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                // A file or whiteout here hides the layers below.
                Ok(_) => break,
                Err(_) => continue,
            }
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    names.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
            if opaque(&dir) {
                break;
            }
        }
        for n in names {
            let mut parts = full.clone();
            parts.push(n.clone());
            let Some(host) = self.entry(&parts) else {
                continue;
            };
            let key = if sub.is_empty() {
                n
            } else {
                format!("{sub}/{n}")
            };
            let is_dir = std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir());
            out.insert(key.clone(), host);
            if is_dir {
                self.walk_into(base, &key, out);
            }
        }
    }

    /// A file's content, by tree path (`/etc/passwd`).
    pub(crate) fn read(&self, rel: &str) -> Option<Vec<u8>> {
        let (_, host) = self.resolve(rel)?;
        std::fs::read(host).ok()
    }
}

//! docker diff from a snapshot's overlay upper directory, with dockerd's answer: dockerd
//! compares the container's merged tree with the image's (go-archive `ChangesDirs`); the upper
//! directory holds exactly what differs, so it is walked and each entry compared with the
//! image's merged layers. A whiteout (character device 0:0) is a deletion; an opaque directory
//! deletes what the image had in it and the upper directory does not; an entry the image lacks
//! is an addition (with everything under it); one it has is a modification when its mode,
//! owner, device, capability xattr or, for non-directories, size or mtime differ. A directory
//! with a change under it is listed as modified before its contents, the root never.
//! (overlayfs `redirect_dir` renames are not read: Berth's mounts leave it off.)

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use berth_treetar::{capability, is_opaque, is_whiteout};

/// Docker's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Modified,
    Added,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) path: String,
    pub(crate) kind: Kind,
}

/// What one layer says about a path.
enum Probe {
    Found(PathBuf, fs::Metadata),
    /// Not in this layer; lower layers may have it.
    Missing,
    /// Not in this layer, and lower layers are hidden (a whiteout, an opaque or non-directory
    /// parent).
    Hidden,
}

/// An image's layers (top first) read as one merged tree, never following a symlink.
pub(crate) struct Lowers {
    pub(crate) dirs: Vec<PathBuf>,
}

impl Lowers {
    fn probe(layer: &Path, rel: &Path) -> Probe {
        let comps: Vec<_> = rel.components().collect();
        let mut cur = layer.to_owned();
        let mut opaque_above = false;
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            let Ok(m) = fs::symlink_metadata(&cur) else {
                return if opaque_above {
                    Probe::Hidden
                } else {
                    Probe::Missing
                };
            };
            if is_whiteout(&m) {
                return Probe::Hidden;
            }
            if i + 1 == comps.len() {
                return Probe::Found(cur, m);
            }
            if !m.is_dir() {
                return Probe::Hidden;
            }
            opaque_above |= is_opaque(&cur);
        }
        Probe::Missing
    }

    /// The path (relative, not empty) in the image, with where it is found.
    fn stat(&self, rel: &Path) -> Option<(PathBuf, fs::Metadata)> {
        for dir in &self.dirs {
            match Self::probe(dir, rel) {
                Probe::Found(p, m) => return Some((p, m)),
                Probe::Hidden => return None,
                Probe::Missing => {}
            }
        }
        None
    }

    /// The names in the image's directory `rel` (empty: the root).
    fn children(&self, rel: &Path) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = std::collections::BTreeSet::new();
        for dir in &self.dirs {
            let (path, opaque) = if rel.as_os_str().is_empty() {
                (dir.clone(), false)
            } else {
                match Self::probe(dir, rel) {
                    Probe::Found(p, m) if m.is_dir() => {
                        let o = is_opaque(&p);
                        (p, o)
                    }
                    Probe::Missing => continue,
                    _ => break,
                }
            };
            if let Ok(rd) = fs::read_dir(&path) {
                for e in rd.flatten() {
                    let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                        continue;
                    };
                    if !seen.insert(name.clone()) {
                        continue;
                    }
                    if e.metadata().is_ok_and(|m| !is_whiteout(&m)) {
                        out.insert(name);
                    }
                }
            }
            if opaque {
                break;
            }
        }
        out.into_iter().collect()
    }
}

/// go-archive's `sameFsTime`: equal, or the same second with one side's nanoseconds zero.
fn same_time(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    (a.mtime(), a.mtime_nsec()) == (b.mtime(), b.mtime_nsec())
        || (a.mtime() == b.mtime() && (a.mtime_nsec() == 0 || b.mtime_nsec() == 0))
}

/// go-archive's `statDifferent` plus the capability comparison.
fn differs(old_path: &Path, old: &fs::Metadata, new_path: &Path, new: &fs::Metadata) -> bool {
    old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
        || (!old.is_dir() && (!same_time(old, new) || old.len() != new.len()))
        || capability(old_path) != capability(new_path)
}

fn abs(rel: &Path) -> String {
    format!("/{}", rel.display())
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The changes in `upper` against `lowers`, in dockerd's order.
pub(crate) fn changes(upper: &Path, lowers: &Lowers) -> Vec<Change> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers, true, &mut out);
    out
}

/// Adds the changes under the upper directory `rel`; `recorded`: the directory itself is
/// listed already (or is the root).
fn walk(upper: &Path, rel: &Path, lowers: &Lowers, recorded: bool, out: &mut Vec<Change>) {
    let start = out.len();
    let dir = upper.join(rel);
    let names = sorted_names(&dir);
    for name in &names {
        let child = rel.join(name);
        let path = upper.join(&child);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let lower = lowers.stat(&child);
        if is_whiteout(&meta) {
            if lower.is_some() {
                out.push(Change {
                    path: abs(&child),
                    kind: Kind::Deleted,
                });
            }
            continue;
        }
        match lower {
            None => {
                out.push(Change {
                    path: abs(&child),
                    kind: Kind::Added,
                });
                if meta.is_dir() {
                    added(upper, &child, out);
                }
            }
            Some((lpath, lmeta)) => {
                let changed = differs(&lpath, &lmeta, &path, &meta);
                if changed {
                    out.push(Change {
                        path: abs(&child),
                        kind: Kind::Modified,
                    });
                }
                if meta.is_dir() {
                    walk(upper, &child, lowers, changed, out);
                }
            }
        }
    }
    if !rel.as_os_str().is_empty() && is_opaque(&dir) {
        for name in lowers.children(rel) {
            if !names.contains(&name) {
                out.push(Change {
                    path: abs(&rel.join(name)),
                    kind: Kind::Deleted,
                });
            }
        }
    }
    if out.len() > start && !recorded {
        out.insert(
            start,
            Change {
                path: abs(rel),
                kind: Kind::Modified,
            },
        );
    }
}

/// Everything under a directory the image lacks is added (whiteouts in it hide nothing).
fn added(upper: &Path, rel: &Path, out: &mut Vec<Change>) {
    for name in sorted_names(&upper.join(rel)) {
        let child = rel.join(name);
        let Ok(meta) = fs::symlink_metadata(upper.join(&child)) else {
            continue;
        };
        if is_whiteout(&meta) {
            continue;
        }
        out.push(Change {
            path: abs(&child),
            kind: Kind::Added,
        });
        if meta.is_dir() {
            added(upper, &child, out);
        }
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;

//! Paths inside a container's root, resolved as the container would resolve them.

use std::{
    collections::VecDeque,
    ffi::OsString,
    path::{Component, Path, PathBuf},
};

/// `root` joined with `path`, every symlink on the way resolved as if `root` were `/`
/// (filepath-securejoin's rule): the result never leaves `root`. Missing components are kept
/// as they are.
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut todo: VecDeque<OsString> = components(Path::new(path));
    let mut cur: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        let full = join_all(root, &cur);
        let Ok(target) = std::fs::read_link(&full) else {
            continue;
        };
        links += 1;
        if links > 255 {
            break;
        }
        cur.pop();
        if target.is_absolute() {
            cur.clear();
        }
        for (i, t) in components(&target).into_iter().enumerate() {
            todo.insert(i, t);
        }
    }
    join_all(root, &cur)
}

fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn join_all(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_owned();
    for c in parts {
        p.push(c);
    }
    p
}

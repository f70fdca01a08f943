//! Test helpers: layers built in memory, and snapshots of directory trees.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// The mtime most test entries get.
pub(super) const T: u64 = 1_600_000_000;

/// Fails the test unless it runs as root (CI does): owners, device nodes and `trusted.*` xattrs
/// need it.
pub(super) fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the unpack tests need root (CI runs as root); run them with sudo"
    );
}

/// A name no other test or run uses, for canaries outside the destination.
pub(super) fn unique(stem: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("berth-unpack-{stem}-{}-{n}", std::process::id())
}

pub(super) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A layer under construction.
pub(super) struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Layer {
    pub(super) fn new() -> Self {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: EntryType, mode: u32, uid: u64, gid: u64, mtime: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_size(0);
        h
    }

    pub(super) fn file(
        &mut self,
        path: &str,
        mode: u32,
        owner: (u64, u64),
        data: &[u8],
    ) -> &mut Self {
        self.file_at(path, mode, owner, T, data)
    }

    pub(super) fn file_at(
        &mut self,
        path: &str,
        mode: u32,
        (uid, gid): (u64, u64),
        mtime: u64,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Self::header(EntryType::Regular, mode, uid, gid, mtime);
        h.set_size(data.len() as u64);
        self.builder.append_data(&mut h, path, data).unwrap();
        self
    }

    pub(super) fn dir(
        &mut self,
        path: &str,
        mode: u32,
        (uid, gid): (u64, u64),
        mtime: u64,
    ) -> &mut Self {
        let mut h = Self::header(EntryType::Directory, mode, uid, gid, mtime);
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub(super) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(EntryType::Symlink, path, target, (0, 0), T)
    }

    pub(super) fn link(
        &mut self,
        kind: EntryType,
        path: &str,
        target: &str,
        (uid, gid): (u64, u64),
        mtime: u64,
    ) -> &mut Self {
        let mut h = Self::header(kind, 0o777, uid, gid, mtime);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    pub(super) fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(EntryType::Link, path, target, (0, 0), T)
    }

    pub(super) fn node(
        &mut self,
        path: &str,
        kind: EntryType,
        dev: (u32, u32),
        mode: u32,
        owner: (u64, u64),
    ) -> &mut Self {
        let mut h = Self::header(kind, mode, owner.0, owner.1, T);
        h.set_device_major(dev.0).unwrap();
        h.set_device_minor(dev.1).unwrap();
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    /// PAX records for the next entry.
    pub(super) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    /// An entry whose name and link name bytes are written straight into the header, bypassing
    /// the tar crate's checks (`..`, absolute names).
    pub(super) fn raw(
        &mut self,
        kind: EntryType,
        name: &[u8],
        link: &[u8],
        data: &[u8],
    ) -> &mut Self {
        let mut h = Self::header(kind, 0o644, 0, 0, T);
        h.set_size(data.len() as u64);
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    /// A GNU long-name record carrying `name` for the next entry.
    pub(super) fn gnu_long_name(&mut self, name: &[u8]) -> &mut Self {
        let mut data = name.to_vec();
        data.push(0);
        self.raw(EntryType::GNULongName, b"././@LongLink", b"", &data)
    }

    /// The layer's bytes (the end blocks written).
    pub(super) fn finish(&mut self) -> Vec<u8> {
        self.builder.finish().unwrap();
        self.builder.get_ref().clone()
    }
}

/// Everything about every node under `root` that unpacking sets (or that an escape would
/// change), keyed by relative path. `with_identity` adds inode, link count and ctime, to see
/// that nothing outside was replaced, linked to, chmod-ed or chown-ed.
pub(super) fn snapshot(
    root: &Path,
    skip: Option<&Path>,
    with_identity: bool,
) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, root, skip, with_identity, &mut out);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    skip: Option<&Path>,
    ident: bool,
    out: &mut BTreeMap<PathBuf, String>,
) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if Some(path.as_path()) == skip {
            continue;
        }
        let md = fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let mut desc = format!(
            "mode={:o} uid={} gid={} mtime={}.{:09} xattrs={:?}",
            md.mode(),
            md.uid(),
            md.gid(),
            md.mtime(),
            md.mtime_nsec(),
            xattrs(&path)
        );
        if ident {
            desc += &format!(
                " ino={} nlink={} ctime={}.{}",
                md.ino(),
                md.nlink(),
                md.ctime(),
                md.ctime_nsec()
            );
        }
        if ft.is_symlink() {
            desc += &format!(" -> {:?}", fs::read_link(&path).unwrap());
        } else if ft.is_file() {
            desc += &format!(
                " size={} nlink={} {}",
                md.len(),
                md.nlink(),
                sha256(&fs::read(&path).unwrap())
            );
        } else if ft.is_char_device() || ft.is_block_device() {
            desc += &format!(" rdev={:x}", md.rdev());
        }
        out.insert(path.strip_prefix(root).unwrap().to_owned(), desc);
        if ft.is_dir() {
            walk(root, &path, skip, ident, out);
        }
    }
}

/// The node's xattrs (not followed), sorted.
pub(super) fn xattrs(path: &Path) -> Vec<(String, String)> {
    let mut list = vec![0u8; 64 * 1024];
    let n = rustix::fs::llistxattr(path, &mut list[..]).unwrap();
    let mut out: Vec<_> = list[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let mut value = vec![0u8; 64 * 1024];
            let len = rustix::fs::lgetxattr(path, name, &mut value[..]).unwrap();
            (
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(&value[..len]).into_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// One xattr of `path` (not followed), if set.
pub(super) fn xattr(path: &Path, name: &str) -> Option<String> {
    xattrs(path)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

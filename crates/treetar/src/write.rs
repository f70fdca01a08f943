//! A directory tree written as a tar stream the way moby's go-archive writes one: entries in
//! lexical order, a directory before its contents and named with a trailing `/`, owners and
//! modes as they are (with the file type bits, as Go's), mtimes in whole seconds, hard links
//! as link entries to the first name written, `security.capability` as a PAX xattr, sockets
//! left out. Symlinks are never followed.
//!
//! With [`Whiteouts::Oci`] (a committed layer), overlayfs whiteouts become OCI ones: a
//! character device 0:0 becomes an empty `.wh.<name>` file (mode 0600), and a directory with
//! `trusted.overlay.opaque=y` is followed by a `.wh..wh..opq` entry.

use std::{
    collections::HashMap,
    fs,
    io::{self, Write},
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::Path,
};

/// What to do with overlayfs whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Write them as they are (a merged view has none).
    Keep,
    /// Convert them to OCI whiteouts (a layer made from an overlay upper directory).
    Oci,
}

pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const CAPABILITY_XATTR: &str = "security.capability";

/// Whether `meta` is an overlayfs whiteout: a character device 0:0.
pub fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `path` is an opaque overlayfs directory.
pub fn is_opaque(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    matches!(rustix::fs::lgetxattr(path, OPAQUE_XATTR, &mut buf), Ok(1) if buf[0] == b'y')
}

/// The `security.capability` xattr of `path`, if it has one.
pub fn capability(path: &Path) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, CAPABILITY_XATTR, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// `value` in a fixed header field, truncated, the rest zeroed.
fn raw(field: &mut [u8], value: &str) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value.as_bytes()[..n]);
}

/// A tar stream being written.
pub struct TreeTar<W: Write> {
    builder: tar::Builder<W>,
    whiteouts: Whiteouts,
    /// The first name written for each inode with more than one link.
    links: HashMap<(u64, u64), String>,
    entries: u64,
}

impl<W: Write> TreeTar<W> {
    pub fn new(out: W, whiteouts: Whiteouts) -> TreeTar<W> {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        TreeTar {
            builder,
            whiteouts,
            links: HashMap::new(),
            entries: 0,
        }
    }

    /// How many entries were written.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes `src` as `name` (a directory with everything under it), or, with `name` empty,
    /// only what is under the directory `src`, named relative to it. Entries that vanish while
    /// the tree is read are left out.
    pub fn append_tree(&mut self, src: &Path, name: &str) -> io::Result<()> {
        let meta = fs::symlink_metadata(src)?;
        if !name.is_empty() {
            self.append_entry(src, &meta, name)?;
        }
        if meta.is_dir() {
            self.append_children(src, name)?;
        }
        Ok(())
    }

    fn append_children(&mut self, dir: &Path, name: &str) -> io::Result<()> {
        let mut children: Vec<_> = match fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.file_name()).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        children.sort();
        for child in children {
            let Some(child_name) = child.to_str() else {
                return Err(io::Error::other(format!(
                    "{}: a file name that is not UTF-8",
                    dir.join(&child).display()
                )));
            };
            let path = dir.join(&child);
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let full = if name.is_empty() {
                child_name.to_owned()
            } else {
                format!("{}/{child_name}", name.trim_end_matches('/'))
            };
            self.append_entry(&path, &meta, &full)?;
            if meta.is_dir() {
                self.append_children(&path, &full)?;
            }
        }
        Ok(())
    }

    /// One entry for `path` (whose metadata is `meta`) named `name`.
    fn append_entry(&mut self, path: &Path, meta: &fs::Metadata, name: &str) -> io::Result<()> {
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let mut h = tar::Header::new_gnu();
        // As Go's tar.FileInfoHeader: the permission bits with the file type's (0100644).
        h.set_mode(meta.mode());
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        h.set_size(0);
        if self.whiteouts == Whiteouts::Oci && is_whiteout(meta) {
            let (dir, base) = match name.rsplit_once('/') {
                Some((d, b)) => (format!("{d}/"), b),
                None => (String::new(), name),
            };
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            return self.data(&mut h, &format!("{dir}.wh.{base}"), io::empty());
        }
        if let Some(cap) = capability(path) {
            self.builder
                .append_pax_extensions([("SCHILY.xattr.security.capability", cap.as_slice())])?;
        }
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            let dir_name = format!("{}/", name.trim_end_matches('/'));
            self.data(&mut h, &dir_name, io::empty())?;
            if self.whiteouts == Whiteouts::Oci && is_opaque(path) {
                let mut o = tar::Header::new_gnu();
                o.set_entry_type(tar::EntryType::Regular);
                o.set_mode(meta.mode() & 0o777);
                o.set_uid(u64::from(meta.uid()));
                o.set_gid(u64::from(meta.gid()));
                o.set_mtime(0);
                o.set_size(0);
                self.data(&mut o, &format!("{dir_name}.wh..wh..opq"), io::empty())?;
            }
            return Ok(());
        }
        if ft.is_symlink() {
            let target = fs::read_link(path)?;
            h.set_entry_type(tar::EntryType::Symlink);
            let target = target.to_str().ok_or_else(|| {
                io::Error::other(format!(
                    "{}: a link target that is not UTF-8",
                    path.display()
                ))
            })?;
            return self.named(&mut h, name, Some(target), io::empty());
        }
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return self.named(&mut h, name, Some(&first), io::empty());
            }
            self.links.insert(key, name.to_owned());
        }
        if ft.is_file() {
            let file = match fs::File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            // A file that grows or shrinks meanwhile still fills exactly its header's size.
            let body = io::Read::take(io::Read::chain(file, io::repeat(0)), meta.len());
            return self.data(&mut h, name, body);
        }
        let kind = if ft.is_fifo() {
            tar::EntryType::Fifo
        } else if ft.is_char_device() {
            tar::EntryType::Char
        } else {
            tar::EntryType::Block
        };
        h.set_entry_type(kind);
        if kind != tar::EntryType::Fifo {
            let dev = meta.rdev();
            h.set_device_major(rustix::fs::major(dev))?;
            h.set_device_minor(rustix::fs::minor(dev))?;
        }
        self.data(&mut h, name, io::empty())
    }

    fn data(&mut self, h: &mut tar::Header, name: &str, body: impl io::Read) -> io::Result<()> {
        self.named(h, name, None, body)
    }

    /// Writes an entry under exactly `name` (and `link`): go-archive's names keep `./` and
    /// a directory's trailing `/`, which the tar crate's path setters normalize away. Names
    /// longer than the header's field go in GNU long name (and long link) entries.
    fn named(
        &mut self,
        h: &mut tar::Header,
        name: &str,
        link: Option<&str>,
        body: impl io::Read,
    ) -> io::Result<()> {
        if name.len() > 100 {
            self.long(tar::EntryType::GNULongName, name)?;
        }
        if let Some(l) = link
            && l.len() > 100
        {
            self.long(tar::EntryType::GNULongLink, l)?;
        }
        let old = h.as_old_mut();
        raw(&mut old.name, name);
        if let Some(l) = link {
            raw(&mut old.linkname, l);
        }
        h.set_cksum();
        self.builder.append(h, body)?;
        self.entries += 1;
        Ok(())
    }

    fn long(&mut self, kind: tar::EntryType, value: &str) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        raw(&mut h.as_old_mut().name, "././@LongLink");
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, data.as_slice())
    }

    /// Writes the end of the archive and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

//! COPY and ADD as the classic builder does them, built directly as a layer: sources (context
//! paths, globs, another stage's or image's files with `--from`, heredoc files), Docker's
//! destination rules (a directory's contents are copied; several sources need a destination
//! ending in `/`), `--chown` (numbers or names from the image's `/etc/passwd` and
//! `/etc/group`), ADD's local archive extraction, and the checksum that keys the cache.

use std::{
    collections::BTreeMap,
    io::{self, Read, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::{
    checksum::{Checksum, Hasher},
    fs::Tree,
    hashed::{Digests, file_digest},
};
use crate::ImagesError;

fn invalid(msg: impl Into<String>) -> ImagesError {
    ImagesError::InvalidArgument(msg.into())
}

/// What one source contributes.
enum Source {
    /// A file or symlink, copied to `target`.
    File { host: PathBuf, target: String },
    /// A directory's contents, copied under `target`.
    Dir { tree_path: String, target: String },
    /// An archive ADD extracts under `target`.
    Archive { host: PathBuf, target: String },
    /// A heredoc file.
    Inline { data: Vec<u8>, target: String },
}

/// A planned COPY/ADD: what goes where, and its checksum.
pub(crate) struct CopyPlan {
    sources: Vec<Source>,
    /// `file:<hex>`, `dir:<hex>` or `multi:<hex>`, as in the step's history.
    pub(crate) checksum: String,
    /// The owner of what is copied; `None` keeps the source's (COPY --from).
    owner: Option<(u64, u64)>,
    dest_dir: String,
}

/// The Dockerfile side of a COPY/ADD, expanded.
pub(crate) struct CopyRequest<'a> {
    pub(crate) add: bool,
    pub(crate) sources: &'a [String],
    pub(crate) inline: Vec<(String, Vec<u8>)>,
    /// ADD's downloaded URLs: the file name and where it was saved (never extracted).
    pub(crate) downloads: Vec<(String, PathBuf)>,
    pub(crate) dest: &'a str,
    pub(crate) workdir: &'a str,
    pub(crate) owner: Option<(u64, u64)>,
}

pub(super) fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `filepath.Match` of a whole relative path.
pub(super) fn glob_match(pattern: &str, path: &str) -> bool {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let mut class = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    class.push(n);
                }
                let class = class
                    .strip_prefix('^')
                    .map_or(class.clone(), |r| format!("^{r}"));
                re.push('[');
                re.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                re.push(']');
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(path))
}

/// The normalized destination: relative ones are under the working directory; a trailing
/// `/` is kept.
pub(crate) fn normalize_dest(workdir: &str, dest: &str) -> String {
    let slash = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    let joined = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        format!("/{workdir}/{dest}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if slash && out != "/" {
        out.push('/');
    }
    out
}

fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 262];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// Hashes a host path's metadata and content (not its times), as the cache key needs: a
/// file's content by its digest, `known` when it was hashed as the context was unpacked.
fn hash_entry(d: &mut Hasher, name: &str, host: &Path, known: Option<&Digests>) -> io::Result<()> {
    let m = std::fs::symlink_metadata(host)?;
    d.update(format!("{name}\0{:o}\0{}\0", m.mode(), m.len()).as_bytes());
    if m.file_type().is_symlink() {
        d.update(std::fs::read_link(host)?.to_string_lossy().as_bytes());
    } else if m.is_file() {
        d.update(file_digest(host, &m, known)?.hex().as_bytes());
    }
    Ok(())
}

impl CopyPlan {
    /// Resolves the sources in `src` and where each goes in an image whose files are
    /// `image`. `known`: the digests of `src`'s files (the context's), if taken already.
    pub(crate) fn new(
        req: CopyRequest<'_>,
        src: &Tree,
        image: &Tree,
        known: Option<&Digests>,
    ) -> Result<CopyPlan, ImagesError> {
        let cmd = if req.add { "ADD" } else { "COPY" };
        let dest = normalize_dest(req.workdir, req.dest);
        let mut resolved: Vec<(String, String, PathBuf)> = Vec::new(); // (name, tree path, host)
        for s in req.sources {
            if s.starts_with("http://") || s.starts_with("https://") {
                // ADD downloads them before the plan (`downloads`).
                return Err(invalid("source can't be a URL for COPY"));
            }
            if is_glob(s) {
                let pattern = s.trim_start_matches('/').trim_start_matches("./");
                let matches: Vec<(String, PathBuf)> = src
                    .walk("")
                    .into_iter()
                    .filter(|(p, _)| glob_match(pattern, p))
                    .collect();
                for (p, _) in matches {
                    if let Some((tp, host)) = src.resolve(&p) {
                        resolved.push((p.rsplit('/').next().unwrap_or(&p).to_owned(), tp, host));
                    }
                }
                continue;
            }
            match src.resolve(s) {
                Some((tp, host)) => {
                    let name = tp.rsplit('/').next().unwrap_or(&tp).to_owned();
                    resolved.push((name, tp, host));
                }
                None => {
                    return Err(invalid(format!(
                        "{cmd} failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
                    )));
                }
            }
        }
        let count = resolved.len() + req.inline.len() + req.downloads.len();
        if count == 0 {
            return Err(invalid(format!(
                "{cmd} failed: no source files were specified"
            )));
        }
        let dest_is_dir = dest.ends_with('/') || image.is_dir(dest.trim_end_matches('/'));
        if count > 1 && !dest.ends_with('/') {
            return Err(invalid(format!(
                "When using {cmd} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let dest_dir = dest.trim_end_matches('/').to_owned();
        let into = |name: &str| -> String {
            if dest_is_dir {
                format!("{}/{name}", dest_dir.trim_end_matches('/'))
            } else {
                dest_dir.clone()
            }
        };
        let mut sources = Vec::new();
        let mut hashes = Vec::new();
        for (name, tp, host) in resolved {
            let mut d = Hasher::new();
            let m = std::fs::metadata(&host).map_err(|e| ImagesError::io(&host, e))?;
            if m.is_dir() {
                for (rel, h) in src.walk(&tp) {
                    hash_entry(&mut d, &rel, &h, known).map_err(|e| ImagesError::io(&h, e))?;
                }
                hashes.push(format!("dir:{}", d.finish().hex()));
                sources.push(Source::Dir {
                    tree_path: tp,
                    target: if dest_dir.is_empty() {
                        "/".to_owned()
                    } else {
                        dest_dir.clone()
                    },
                });
            } else if req.add && is_archive(&host) {
                hash_entry(&mut d, "", &host, known).map_err(|e| ImagesError::io(&host, e))?;
                hashes.push(format!("file:{}", d.finish().hex()));
                sources.push(Source::Archive {
                    host,
                    target: dest_dir.clone(),
                });
            } else {
                hash_entry(&mut d, "", &host, known).map_err(|e| ImagesError::io(&host, e))?;
                hashes.push(format!("file:{}", d.finish().hex()));
                sources.push(Source::File {
                    host,
                    target: into(&name),
                });
            }
        }
        for (name, host) in req.downloads {
            let mut d = Hasher::new();
            hash_entry(&mut d, "", &host, None).map_err(|e| ImagesError::io(&host, e))?;
            hashes.push(format!("file:{}", d.finish().hex()));
            sources.push(Source::File {
                host,
                target: into(&name),
            });
        }
        for (name, data) in req.inline {
            let mut d = Hasher::new();
            d.update(&data);
            hashes.push(format!("file:{}", d.finish().hex()));
            sources.push(Source::Inline {
                data,
                target: into(&name),
            });
        }
        let checksum = if hashes.len() == 1 {
            hashes.remove(0)
        } else {
            let joined: Vec<&str> = hashes.iter().map(String::as_str).collect();
            format!("multi:{}", Checksum::of(joined.join(",")).hex())
        };
        Ok(CopyPlan {
            sources,
            checksum,
            owner: req.owner,
            dest_dir,
        })
    }

    /// The destination as the history shows it.
    pub(crate) fn dest(&self) -> &str {
        &self.dest_dir
    }

    /// Writes the layer tar to `out`: the destination's parent directories (with the image's
    /// metadata where they exist), then the copied entries.
    pub(crate) fn write_layer(
        &self,
        src: &Tree,
        image: &Tree,
        out: impl Write,
    ) -> Result<(), ImagesError> {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let mut dirs_done: BTreeMap<String, ()> = BTreeMap::new();
        let io_err = |e: io::Error| ImagesError::io(Path::new("layer"), e);
        for s in &self.sources {
            let target = match s {
                Source::File { target, .. } | Source::Inline { target, .. } => {
                    parent_of(target).to_owned()
                }
                Source::Dir { target, .. } | Source::Archive { target, .. } => target.clone(),
            };
            self.parents(&target, image, &mut tar, &mut dirs_done)
                .map_err(io_err)?;
            match s {
                Source::File { host, target } => {
                    self.append(&mut tar, host, target).map_err(io_err)?;
                }
                Source::Inline { data, target } => {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    let (u, g) = self.owner.unwrap_or((0, 0));
                    h.set_uid(u);
                    h.set_gid(g);
                    h.set_mtime(now());
                    tar.append_data(&mut h, target.trim_start_matches('/'), data.as_slice())
                        .map_err(io_err)?;
                }
                Source::Dir { tree_path, target } => {
                    for (rel, host) in src.walk(tree_path) {
                        let t = format!("{}/{rel}", target.trim_end_matches('/'));
                        self.append(&mut tar, &host, &t).map_err(io_err)?;
                    }
                }
                Source::Archive { host, target } => {
                    extract(&mut tar, host, target)?;
                }
            }
        }
        tar.finish().map_err(io_err)?;
        Ok(())
    }

    /// Directory entries for `dir` and its parents that this layer has not written yet.
    fn parents<W: Write>(
        &self,
        dir: &str,
        image: &Tree,
        tar: &mut tar::Builder<W>,
        done: &mut BTreeMap<String, ()>,
    ) -> io::Result<()> {
        let mut path = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            path.push_str(part);
            if done.insert(path.clone(), ()).is_some() {
                continue;
            }
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            match image
                .resolve(&path)
                .and_then(|(_, host)| std::fs::metadata(host).ok())
            {
                Some(m) if m.is_dir() => {
                    h.set_mode(m.mode() & 0o7777);
                    h.set_uid(u64::from(m.uid()));
                    h.set_gid(u64::from(m.gid()));
                    h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
                }
                _ => {
                    h.set_mode(0o755);
                    let (u, g) = self.owner.unwrap_or((0, 0));
                    h.set_uid(u);
                    h.set_gid(g);
                    h.set_mtime(now());
                }
            }
            tar.append_data(
                &mut h,
                format!("{}/", path.trim_start_matches('/')),
                io::empty(),
            )?;
        }
        Ok(())
    }

    /// One file, directory or symlink at `target`, owned as the COPY says.
    fn append<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        host: &Path,
        target: &str,
    ) -> io::Result<()> {
        let m = std::fs::symlink_metadata(host)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        if let Some((u, g)) = self.owner {
            h.set_uid(u);
            h.set_gid(g);
        }
        let name = target.trim_start_matches('/');
        let ft = m.file_type();
        if ft.is_symlink() {
            let link = std::fs::read_link(host)?;
            h.set_size(0);
            tar.append_link(&mut h, name, link)
        } else if ft.is_dir() {
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), io::empty())
        } else if ft.is_file() {
            tar.append_data(&mut h, name, std::fs::File::open(host)?)
        } else {
            // Devices, fifos and sockets are not copied from a context.
            Ok(())
        }
    }
}

fn parent_of(p: &str) -> &str {
    p.rsplit_once('/')
        .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// ADD of a local archive: its entries, under `target`, with their own metadata.
fn extract<W: Write>(
    tar: &mut tar::Builder<W>,
    host: &Path,
    target: &str,
) -> Result<(), ImagesError> {
    let file = std::fs::File::open(host).map_err(|e| ImagesError::io(host, e))?;
    let spill = host.with_extension("berth-xz");
    let reader = super::context::decompress(file, &spill)?;
    let mut archive = tar::Archive::new(reader);
    let bad = |e: io::Error| invalid(format!("failed to extract {}: {e}", host.display()));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let rel: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        if rel.is_empty()
            || path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            continue;
        }
        let name = format!("{}/{}", target.trim_matches('/'), rel.join("/"));
        let name = name.trim_start_matches('/').to_owned();
        let mut h = entry.header().clone();
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(bad)?
                    .unwrap_or_default()
                    .into_owned();
                tar.append_link(&mut h, &name, link).map_err(bad)?;
            }
            _ => {
                tar.append_data(&mut h, &name, &mut entry).map_err(bad)?;
            }
        }
    }
    let _ = std::fs::remove_file(&spill);
    Ok(())
}

/// `--chown=user[:group]`: numbers, or names looked up in the image's `/etc/passwd` and
/// `/etc/group`; a user alone is also the group.
pub(crate) fn parse_chown(spec: &str, image: &Tree) -> Result<(u64, u64), ImagesError> {
    let (user, group) = spec.split_once(':').unwrap_or((spec, spec));
    let lookup = |name: &str, file: &str, what: &str| -> Result<u64, ImagesError> {
        if let Ok(n) = name.parse::<u64>() {
            return Ok(n);
        }
        let text = image
            .read(file)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[0] == name).then(|| f[2].parse::<u64>().ok()).flatten()
            })
            .next()
            .ok_or_else(|| {
                invalid(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find {what} for {}: no such {}: {name}",
                    if what == "uid" { "user" } else { "group" },
                    if what == "uid" { "user" } else { "group" },
                ))
            })
    };
    Ok((
        lookup(user, "/etc/passwd", "uid")?,
        lookup(group, "/etc/group", "gid")?,
    ))
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;

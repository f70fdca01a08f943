//! The build context: the request body (a tar, plain or gzip, bzip2 or xz, told from its first
//! bytes), with `.dockerignore` applied. A plain context is read into memory first: a
//! [`Model`] of its files (modes, sizes, content digests) answers what a fully cached rebuild
//! needs (the Dockerfile, the checksum of each COPY), and the received bytes are kept so that
//! the context is unpacked into a directory under the service's root only when a step needs
//! its files ([`Context::dir`]). A context the model does not represent, or one larger than
//! [`IN_MEMORY`], is unpacked as it arrives. The directory is removed when the build ends (the
//! [`Context`] is dropped).

use std::{
    io::{self, Read},
    path::{Component, Path, PathBuf},
    sync::{Mutex, OnceLock},
};

use bytes::Bytes;

use super::{hashed::Digests, ignore::Ignore, model::Model};
use crate::{
    ImagesError,
    pipe::{ChunkReader, ChunkSource, Replay},
};

/// The most bytes of a context kept in memory; a larger one is unpacked as it arrives.
pub(crate) const IN_MEMORY: usize = 128 << 20;

/// The context unpacked on disk.
pub(crate) struct Unpacked {
    /// The unpacked context.
    pub(crate) dir: PathBuf,
    /// The content digests of its files, taken as they were unpacked.
    pub(crate) digests: Digests,
}

pub(crate) struct Context {
    /// The build's scratch directory (removed on drop; made when first needed).
    scratch: PathBuf,
    /// Where the free-space reserve is checked.
    base: PathBuf,
    /// The model of a plain context (`None`: the context was unpacked as it arrived).
    model: Option<Model>,
    /// The request body in the chunks it was received in, until it is unpacked.
    raw: Mutex<Option<Vec<Bytes>>>,
    /// The `.dockerignore` applied to the model, applied to the directory as it is unpacked.
    ignore: Option<Ignore>,
    unpacked: OnceLock<Unpacked>,
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.scratch)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.scratch.display(), error = %e, "removing a build context");
        }
    }
}

fn bad(e: impl std::fmt::Display) -> ImagesError {
    ImagesError::InvalidArgument(format!("failed to read the build context: {e}"))
}

/// An unreadable context, unless the disk reached Berth's free-space reserve while it was
/// unpacked.
fn bad_io(e: io::Error) -> ImagesError {
    ImagesError::unless_full(e, bad)
}

/// The first bytes of `input` (up to 6), and `input` with them put back.
fn peek<'a>(mut input: impl Read + 'a) -> Result<(Vec<u8>, impl Read + 'a), ImagesError> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad(e)),
        }
    }
    let head = head[..n].to_vec();
    Ok((head.clone(), io::Cursor::new(head).chain(input)))
}

fn is_xz(head: &[u8]) -> bool {
    head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
}

/// The uncompressed tar of `input`: gzip, bzip2 and xz are recognised by their magic bytes.
/// xz is decompressed into `spill` first (its decoder writes rather than reads).
pub(crate) fn decompress<'a>(
    input: impl Read + 'a,
    spill: &Path,
) -> Result<Box<dyn Read + 'a>, ImagesError> {
    let (head, whole) = peek(input)?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(whole))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(whole))
    } else if is_xz(&head) {
        let out = std::fs::File::create(spill).map_err(|e| ImagesError::io(spill, e))?;
        let mut out = berth_service::FreeSpace::new(spill.parent().unwrap_or(spill)).bound(out);
        lzma_rs::xz_decompress(&mut io::BufReader::new(whole), &mut out).map_err(bad)?;
        Box::new(std::fs::File::open(spill).map_err(|e| ImagesError::io(spill, e))?)
    } else {
        Box::new(whole)
    })
}

/// The input, with its failure (the upload broke off) noted: the stream cannot be read again
/// then, and the build fails with it.
struct Noted<S> {
    src: S,
    broken: Option<String>,
}

impl<S: ChunkSource> ChunkSource for Noted<S> {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        self.src
            .next_chunk()
            .inspect_err(|e| self.broken = Some(e.to_string()))
    }
}

/// The input while its model is read: every chunk is kept (not copied), up to a limit; past
/// it (after the chunk that crosses it, kept whole) reading fails, and the chunks read are
/// kept all the same, so that the stream can be read again from its start.
struct Kept<S> {
    inner: Noted<S>,
    chunks: Vec<Bytes>,
    len: usize,
    limit: usize,
    over: bool,
}

impl<S: ChunkSource> ChunkSource for Kept<S> {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.over {
            return Err(io::Error::other("over the in-memory limit"));
        }
        let Some(chunk) = self.inner.next_chunk()? else {
            return Ok(None);
        };
        self.len += chunk.len();
        self.chunks.push(chunk.clone());
        self.over = self.len > self.limit;
        Ok(Some(chunk))
    }
}

impl Context {
    /// Receives the context stream: into memory and a [`Model`] when it is plain and small
    /// enough, else unpacked into a new directory under `base` as it arrives.
    pub(crate) fn receive(base: &Path, input: impl ChunkSource) -> Result<Context, ImagesError> {
        Context::receive_within(base, input, IN_MEMORY)
    }

    pub(crate) fn receive_within(
        base: &Path,
        input: impl ChunkSource,
        limit: usize,
    ) -> Result<Context, ImagesError> {
        let scratch = base.join(format!("build-{}", uuid::Uuid::new_v4()));
        let mut ctx = Context {
            scratch,
            base: base.to_owned(),
            model: None,
            raw: Mutex::new(None),
            ignore: None,
            unpacked: OnceLock::new(),
        };
        let mut kept = Kept {
            inner: Noted {
                src: input,
                broken: None,
            },
            chunks: Vec::new(),
            len: 0,
            limit,
            over: false,
        };
        let (head, whole) = peek(ChunkReader::new(&mut kept))?;
        if !is_xz(&head) {
            let scanned = decompress(whole, &ctx.scratch.join("context.tar"))
                .map(|tar| super::model::scan(Padded::new(tar)));
            // The upload broke off: nothing more will come.
            if let Some(e) = kept.inner.broken.take() {
                return Err(bad(e));
            }
            match scanned {
                Ok(Ok(model)) if !kept.over => {
                    ctx.model = Some(model);
                    *ctx.raw
                        .get_mut()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(kept.chunks);
                    return Ok(ctx);
                }
                // Read whole, but more than is kept in memory.
                Ok(Ok(_)) => tracing::debug!("context over the in-memory limit unpacked to disk"),
                // The disk path reads it again, and reports what is wrong with it.
                Ok(Err(super::model::NoModel::Read(e))) => {
                    tracing::debug!(error = %e, over = kept.over, "context unpacked to disk");
                }
                Ok(Err(super::model::NoModel::Unsupported)) => {
                    tracing::debug!("context with links or special files unpacked to disk");
                }
                Err(e) => tracing::debug!(error = %e, "context unpacked to disk"),
            }
        } else {
            drop(whole);
        }
        // Unpacked as it arrives: what was read already, then the rest.
        let chunks = std::mem::take(&mut kept.chunks);
        let unpacked = ctx.unpack(ChunkReader::new(Replay::new(chunks, Some(&mut kept.inner))));
        if let Some(e) = kept.inner.broken.take() {
            return Err(bad(e));
        }
        let unpacked = unpacked?;
        let _ = ctx.unpacked.set(unpacked);
        Ok(ctx)
    }

    /// Unpacks the stream `input` into the scratch directory, hashing each file on the way
    /// (its digest keys the cache of a COPY); it stops at the free-space reserve of the disk.
    fn unpack(&self, input: impl Read) -> Result<Unpacked, ImagesError> {
        let dir = self.scratch.join("context");
        std::fs::create_dir_all(&dir).map_err(|e| ImagesError::io(&dir, e))?;
        let mut out = Unpacked {
            dir,
            digests: Digests::default(),
        };
        let tar = decompress(input, &self.scratch.join("context.tar"))?;
        let (tap, hashing) = super::hashed::tap(Padded::new(
            berth_service::FreeSpace::new(&self.base).bound(tar),
        ));
        let mut archive = tar::Archive::new(tap);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        for entry in archive.entries().map_err(bad_io)? {
            let mut entry = entry.map_err(bad_io)?;
            // A path that would leave the directory is skipped (unpack_in refuses it).
            hashing
                .unpack(&mut entry, &out.dir, &mut out.digests)
                .map_err(bad_io)?;
        }
        Ok(out)
    }

    /// The model of a plain context, which keys its COPY steps.
    pub(crate) fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    /// The context unpacked on disk: unpacked now if it was kept in memory.
    pub(crate) fn unpacked(&self) -> Result<&Unpacked, ImagesError> {
        if let Some(u) = self.unpacked.get() {
            return Ok(u);
        }
        let raw = self
            .raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        let u = self.unpack(ChunkReader::new(Replay::new(raw, None)))?;
        if let Some(ignore) = &self.ignore {
            prune(&u.dir, "", ignore)?;
        }
        Ok(self.unpacked.get_or_init(|| u))
    }

    /// The build's scratch directory (removed with the context).
    pub(crate) fn scratch(&self) -> Result<&Path, ImagesError> {
        std::fs::create_dir_all(&self.scratch).map_err(|e| ImagesError::io(&self.scratch, e))?;
        Ok(&self.scratch)
    }

    /// A file's bytes from the model; `None` when the disk must answer (a large file, or no
    /// model). `Some(None)`: not a file of the context.
    fn model_file(&self, rel: &str) -> Option<Option<&[u8]>> {
        let model = self.model.as_ref()?;
        match model.get(rel) {
            None => Some(None),
            Some(e) if e.dir => None,
            Some(e) => e.data.as_deref().map(Some),
        }
    }

    /// Reads the Dockerfile named `name` (a path in the context), falling back to
    /// `dockerfile` for the default name, as moby does.
    pub(crate) fn dockerfile(&self, name: &str) -> Result<(String, String), ImagesError> {
        let mut candidates = vec![name.to_owned()];
        if name == "Dockerfile" {
            candidates.push("dockerfile".to_owned());
        }
        for n in &candidates {
            let read = match self.model_file(n) {
                Some(None) => continue,
                Some(Some(bytes)) => Ok(bytes.to_vec()),
                None => {
                    let Ok(path) = self.resolve(n) else { continue };
                    std::fs::read(&path)
                }
            };
            match read {
                Ok(bytes) if bytes.is_empty() => {
                    return Err(ImagesError::InvalidArgument(format!(
                        "the Dockerfile ({name}) cannot be empty"
                    )));
                }
                Ok(bytes) => return Ok((n.clone(), String::from_utf8_lossy(&bytes).into_owned())),
                Err(_) => continue,
            }
        }
        Err(ImagesError::InvalidArgument(format!(
            "Cannot locate specified Dockerfile: {name}"
        )))
    }

    /// Removes what `.dockerignore` excludes (the Dockerfile, read already, included).
    pub(crate) fn apply_dockerignore(&mut self) -> Result<(), ImagesError> {
        let text = match self.model_file(".dockerignore") {
            Some(None) => return Ok(()),
            Some(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            None => {
                // Not one the model can read: the context's steps are keyed from disk.
                self.model = None;
                let path = self.unpacked()?.dir.join(".dockerignore");
                match std::fs::read(&path) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(ImagesError::io(&path, e)),
                }
            }
        };
        let ignore = Ignore::parse(&text).map_err(ImagesError::InvalidArgument)?;
        if ignore.is_empty() {
            return Ok(());
        }
        if let Some(m) = &mut self.model {
            m.prune(&ignore);
        }
        if let Some(u) = self.unpacked.get() {
            prune(&u.dir, "", &ignore)?;
        }
        // For the directory unpacked later.
        self.ignore = Some(ignore);
        Ok(())
    }

    /// The host path of `rel` (a context path), which must stay inside the context: symlinks
    /// are followed within it, `..` cannot leave it.
    pub(crate) fn resolve(&self, rel: &str) -> Result<PathBuf, ImagesError> {
        let dir = &self.unpacked()?.dir;
        scoped(dir, rel).ok_or_else(|| {
            ImagesError::InvalidArgument(format!(
                "forbidden path outside the build context: {rel} ()"
            ))
        })
    }
}

/// A tar stream that may end without its last block's padding and the end-of-archive blocks:
/// the docker CLI (28) sends such a context when the Dockerfile is outside it (`-f`), and
/// dockerd reads it. At the end of the input, a length that is not a whole number of blocks is
/// completed with zeros up to the block and two empty blocks.
struct Padded<R> {
    inner: R,
    read: u64,
    pad: Option<u64>,
}

impl<R> Padded<R> {
    fn new(inner: R) -> Padded<R> {
        Padded {
            inner,
            read: 0,
            pad: None,
        }
    }
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pad.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            let partial = self.read % 512;
            self.pad = Some(if partial == 0 {
                0
            } else {
                512 - partial + 1024
            });
        }
        let left = self.pad.unwrap_or(0);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        buf[..n].fill(0);
        self.pad = Some(left - n as u64);
        Ok(n)
    }
}

/// Removes the excluded entries under `dir` (`rel` is its context path).
fn prune(dir: &Path, rel: &str, ignore: &Ignore) -> Result<(), ImagesError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ImagesError::io(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| ImagesError::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let excluded = ignore.excludes(&r);
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let gone = if is_dir {
            if excluded && !ignore.has_exceptions() {
                std::fs::remove_dir_all(&path)
            } else {
                prune(&path, &r, ignore)?;
                if excluded {
                    // Kept only if an exception brought something back under it.
                    match std::fs::remove_dir(&path) {
                        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(()),
                        other => other,
                    }
                } else {
                    Ok(())
                }
            }
        } else if excluded {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        gone.map_err(|e| ImagesError::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn prune_for_tests(dir: &Path, ignore: &Ignore) {
    prune(dir, "", ignore).unwrap();
}

/// `root/rel` with symlinks resolved inside `root` (an absolute link target is taken from
/// `root`; `..` stops at `root`). `None` when the path cannot be resolved inside `root`
/// (too many links).
pub(crate) fn scoped(root: &Path, rel: &str) -> Option<PathBuf> {
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
        let candidate: PathBuf = root.join(parts.iter().collect::<PathBuf>()).join(&p);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return None;
                }
                let target = std::fs::read_link(&candidate).ok()?;
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
            _ => parts.push(p),
        }
    }
    Some(root.join(parts.iter().collect::<PathBuf>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::ReadChunks;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn an_unreadable_context_unless_the_disk_is_full() {
        let full = io::Error::new(io::ErrorKind::StorageFull, "down to the reserve");
        assert!(matches!(bad_io(full), ImagesError::NoSpace(m) if m == "down to the reserve"));
        assert_eq!(
            bad_io(io::Error::other("truncated")).to_string(),
            "failed to read the build context: truncated"
        );
    }

    #[test]
    fn compressions_ignore_and_cleanup() {
        let base = tempfile::tempdir().unwrap();
        let tar = tar_of(&[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "*.log\nsub\n!sub/keep\n.dockerfile.abc\n"),
            ("a.log", "x"),
            ("a.txt", "y"),
            ("sub/x", "1"),
            ("sub/keep", "2"),
            (".dockerfile.abc", "FROM busybox\n"),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        io::Write::write_all(&mut bz, &tar).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(&tar), &mut xz).unwrap();
        for (i, body) in [tar.clone(), gz.finish().unwrap(), bz.finish().unwrap(), xz]
            .into_iter()
            .enumerate()
        {
            let mut ctx = Context::receive(base.path(), ReadChunks(io::Cursor::new(body))).unwrap();
            // Kept in memory (xz is decompressed to disk: unpacked as it arrives).
            assert_eq!(ctx.model().is_some(), i < 3);
            assert_eq!(ctx.unpacked.get().is_some(), i == 3);
            // The Dockerfile outside the context, sent under a random name the CLI ignores.
            let (_, text) = ctx.dockerfile(".dockerfile.abc").unwrap();
            assert_eq!(text, "FROM busybox\n");
            ctx.apply_dockerignore().unwrap();
            if let Some(m) = ctx.model() {
                assert!(m.get("a.log").is_none() && m.get("sub/x").is_none());
                assert!(m.get("a.txt").is_some() && m.get("sub/keep").is_some());
            }
            // Unpacked when a step needs the files, with .dockerignore applied.
            let dir = ctx.unpacked().unwrap().dir.clone();
            assert!(!dir.join("a.log").exists());
            assert!(dir.join("a.txt").exists());
            assert!(!dir.join("sub/x").exists());
            assert!(dir.join("sub/keep").exists());
            assert!(!dir.join(".dockerfile.abc").exists());
            let scratch = ctx.scratch.clone();
            drop(ctx);
            assert!(!scratch.exists(), "the context is removed with the build");
        }
        // Without the last entry's padding and the end blocks, as the CLI sends with -f.
        let mut short = tar_of(&[("Dockerfile", "FROM scratch\n")]);
        short.truncate(512 + 13);
        let ctx = Context::receive(base.path(), ReadChunks(io::Cursor::new(short))).unwrap();
        assert!(ctx.model().is_some());
        assert_eq!(ctx.dockerfile("Dockerfile").unwrap().1, "FROM scratch\n");
        let ctx = Context::receive(
            base.path(),
            ReadChunks(io::Cursor::new(tar_of(&[("x", "")]))),
        )
        .unwrap();
        assert_eq!(
            ctx.dockerfile("Dockerfile").unwrap_err().to_string(),
            "Cannot locate specified Dockerfile: Dockerfile"
        );
        assert_eq!(
            ctx.dockerfile("x").unwrap_err().to_string(),
            "the Dockerfile (x) cannot be empty"
        );
        let dir = ctx.unpacked().unwrap().dir.clone();
        std::os::unix::fs::symlink("/../../etc", dir.join("up")).unwrap();
        assert_eq!(ctx.resolve("up/passwd").unwrap(), dir.join("etc/passwd"));
        assert_eq!(ctx.resolve("../../x").unwrap(), dir.join("x"));
    }

    /// Chunks of a tar, then the upload breaking off.
    struct BrokenOff(Vec<Bytes>);

    impl ChunkSource for BrokenOff {
        fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
            if self.0.is_empty() {
                return Err(io::Error::other("the upload broke off: client gone"));
            }
            Ok(Some(self.0.remove(0)))
        }
    }

    #[test]
    fn a_context_whose_upload_broke_off_is_an_error_not_a_shorter_context() {
        let base = tempfile::tempdir().unwrap();
        let big = "z".repeat(64 << 10);
        let tar = tar_of(&[("Dockerfile", "FROM scratch\n"), ("big", &big)]);
        let half = Bytes::from(tar[..tar.len() / 2].to_vec());
        for limit in [IN_MEMORY, 16 << 10] {
            let e = Context::receive_within(base.path(), BrokenOff(vec![half.clone()]), limit)
                .err()
                .expect("an error");
            assert!(e.to_string().contains("client gone"), "{e}");
        }
    }

    #[test]
    fn a_context_over_the_limit_or_with_a_symlink_is_unpacked_as_it_arrives() {
        let base = tempfile::tempdir().unwrap();
        let big = "y".repeat(64 << 10);
        let tar = tar_of(&[("Dockerfile", "FROM scratch\n"), ("big", &big)]);
        let ctx = Context::receive_within(
            base.path(),
            ReadChunks(io::Cursor::new(tar.clone())),
            32 << 10,
        )
        .unwrap();
        assert!(ctx.model().is_none() && ctx.unpacked.get().is_some());
        let dir = &ctx.unpacked().unwrap().dir;
        assert_eq!(std::fs::read_to_string(dir.join("big")).unwrap(), big);
        assert_eq!(ctx.dockerfile("Dockerfile").unwrap().1, "FROM scratch\n");
        let ctx = Context::receive(base.path(), ReadChunks(io::Cursor::new(tar))).unwrap();
        assert!(ctx.model().is_some() && ctx.unpacked.get().is_none());

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, "link", "Dockerfile").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(13);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "Dockerfile", &b"FROM scratch\n"[..])
            .unwrap();
        let ctx = Context::receive(
            base.path(),
            ReadChunks(io::Cursor::new(b.into_inner().unwrap())),
        )
        .unwrap();
        assert!(ctx.model().is_none());
        assert_eq!(ctx.dockerfile("link").unwrap().1, "FROM scratch\n");
    }
}

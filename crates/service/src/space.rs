//! Free space kept for the engine: streamed uploads (`docker load`, `import`, `cp`) and pulls
//! stop with a clear error before they fill the filesystem under the data root, instead of
//! running it to zero and failing every other write of the host.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

/// The reserve: 5% of the filesystem, at least 16 MiB and at most 1 GiB.
const RESERVE_SHARE: u64 = 20;
const RESERVE_MIN: u64 = 16 << 20;
const RESERVE_MAX: u64 = 1 << 30;
/// Bytes written between two checks: the reserve absorbs what is written in between.
const CHECK_EVERY: u64 = 4 << 20;

/// The filesystem holding `path` and the free space writes must leave on it.
#[derive(Debug, Clone)]
pub struct FreeSpace {
    path: PathBuf,
}

/// Available and total bytes of the filesystem holding `path`.
fn usage(path: &Path) -> io::Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let frag = st.fragment_size().max(1);
    Ok((
        st.blocks_available().saturating_mul(frag),
        st.blocks().saturating_mul(frag),
    ))
}

/// The reserve kept on a filesystem of `total` bytes.
fn reserve_for(total: u64) -> u64 {
    (total / RESERVE_SHARE).clamp(RESERVE_MIN, RESERVE_MAX)
}

fn mib(n: u64) -> u64 {
    n >> 20
}

impl FreeSpace {
    pub fn new(path: impl Into<PathBuf>) -> FreeSpace {
        FreeSpace { path: path.into() }
    }

    /// Fails (`StorageFull`) when the filesystem has less than its reserve free. A path that
    /// cannot be examined passes: the write itself then reports what is wrong.
    pub fn check(&self) -> io::Result<()> {
        let Ok((available, total)) = usage(&self.path) else {
            return Ok(());
        };
        let reserve = reserve_for(total);
        if available < reserve {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "no space left on device: {} has {} MiB free and Berth keeps {} MiB free there",
                    self.path.display(),
                    mib(available),
                    mib(reserve)
                ),
            ));
        }
        Ok(())
    }

    /// `inner`, checked against this reserve every few MiB written (or, for a reader whose
    /// bytes are written under this path as they come, read).
    pub fn bound<T>(&self, inner: T) -> Bounded<T> {
        Bounded {
            inner,
            space: self.clone(),
            unchecked: CHECK_EVERY,
        }
    }
}

/// The message of the out-of-space error `e` is or wraps (a tar or decompression layer may wrap
/// the write's error): Berth's reserve or the kernel's ENOSPC. None for any other error.
pub fn storage_full(e: &io::Error) -> Option<String> {
    let mut inner: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    let mut found = (e.kind() == io::ErrorKind::StorageFull).then(|| e.to_string());
    while let Some(err) = inner {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::StorageFull
        {
            found = Some(io.to_string());
        }
        inner = err.source();
    }
    found
}

/// A writer (or reader) that stops with `StorageFull` once the filesystem is down to its
/// reserve.
pub struct Bounded<W> {
    inner: W,
    space: FreeSpace,
    /// Bytes written since the last check; starts full so that the first write checks.
    unchecked: u64,
}

impl<W> Bounded<W> {
    pub fn into_inner(self) -> W {
        self.inner
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<T> Bounded<T> {
    /// Checks the reserve when enough bytes went through since the last check.
    fn due(&mut self) -> io::Result<()> {
        if self.unchecked >= CHECK_EVERY {
            self.space.check()?;
            self.unchecked = 0;
        }
        Ok(())
    }

    fn passed(&mut self, n: usize) -> usize {
        self.unchecked = self.unchecked.saturating_add(n as u64);
        n
    }
}

impl<R: io::Read> io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.due()?;
        let n = self.inner.read(buf)?;
        Ok(self.passed(n))
    }
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.due()?;
        let n = self.inner.write(buf)?;
        Ok(self.passed(n))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_full_is_found_when_wrapped() {
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("failed to unpack entry")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let full = || io::Error::new(io::ErrorKind::StorageFull, "full");
        assert_eq!(storage_full(&full()).as_deref(), Some("full"));
        let wrapped = io::Error::other(Wrapper(full()));
        assert_eq!(storage_full(&wrapped).as_deref(), Some("full"));
        assert_eq!(storage_full(&io::Error::other("bad tar")), None);
        assert_eq!(
            storage_full(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            None
        );
    }

    #[test]
    fn reserve_is_a_share_within_bounds() {
        assert_eq!(reserve_for(0), RESERVE_MIN);
        assert_eq!(reserve_for(100 << 20), RESERVE_MIN);
        assert_eq!(reserve_for(1 << 30), (1 << 30) / 20);
        assert_eq!(reserve_for(u64::MAX), RESERVE_MAX);
    }

    /// A small tmpfs (root only; skipped otherwise): writes stop at the reserve with
    /// `StorageFull`, and the filesystem keeps at least the reserve minus one check interval.
    #[test]
    fn writes_stop_at_the_reserve() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root to mount a tmpfs");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=48m"),
        )
        .unwrap();
        let result = (|| {
            let space = FreeSpace::new(dir.path());
            let file = std::fs::File::create(dir.path().join("big"))?;
            let mut w = space.bound(file);
            let chunk = vec![7u8; 1 << 20];
            for _ in 0..64 {
                w.write_all(&chunk)?;
            }
            Ok::<_, io::Error>(())
        })();
        let (available, _) = usage(dir.path()).unwrap();
        nix::mount::umount(dir.path()).unwrap();
        let err = result.expect_err("48 MiB cannot take 64 MiB");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
        assert!(err.to_string().contains("Berth keeps 16 MiB free"), "{err}");
        assert!(available >= RESERVE_MIN - CHECK_EVERY, "{available}");
    }
}

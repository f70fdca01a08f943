//! Uploads handed to the images service in a spool file when it runs on this host. A build
//! context of 20 MiB sent as gRPC messages costs both services more CPU than anything else in a
//! cached rebuild: framing, flow control, and a copy into and out of every message on each side.
//! Instead the gateway writes the body into a file of the spool directory (`<exec-root>/spool`,
//! tmpfs under `/run` in production), names the file in the first message, and says every
//! [`ANNOUNCE`] bytes how many bytes the file holds; the service reads the file as it grows
//! (berth-images' `spool`). Past [`LIMIT`], or when writing fails (a full `/run`), the rest of
//! the body goes as messages, as it does to a service on another host.

use std::{
    fs::File,
    io::{self, IoSlice, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::PathBuf,
};

use berth_config::{DaemonConfig, ServiceAddress};
use berth_types::ServiceName;
use bytes::Bytes;

/// The most bytes of one upload that go through its spool file.
pub(crate) const LIMIT: u64 = 64 << 20;
/// How many more spooled bytes make the service be told.
pub(crate) const ANNOUNCE: u64 = 512 << 10;

/// The spool directory.
#[derive(Debug)]
pub struct SpoolDir {
    dir: PathBuf,
}

impl SpoolDir {
    /// The spool directory, emptied of what a gateway that stopped mid-upload left, when the
    /// images service listens on a unix socket (on this host); `None` when it does not or the
    /// directory cannot be made: uploads then go as messages.
    pub fn open(cfg: &DaemonConfig) -> Option<SpoolDir> {
        if !matches!(
            cfg.service_address(ServiceName::Images),
            ServiceAddress::Unix(_)
        ) {
            return None;
        }
        let dir = cfg.spool_dir();
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "emptying the spool directory")
            }
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Some(SpoolDir { dir }),
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "no spool directory: uploads go to the images service as messages"
                );
                None
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests(dir: &std::path::Path) -> SpoolDir {
        SpoolDir {
            dir: dir.to_owned(),
        }
    }

    /// A new spool file: the writer, and the guard that removes the file when dropped.
    pub(crate) fn create(&self) -> io::Result<(Writer, Guard)> {
        self.create_within(LIMIT)
    }

    /// [`SpoolDir::create`], spooling at most `limit` bytes.
    pub(crate) fn create_within(&self, limit: u64) -> io::Result<(Writer, Guard)> {
        let name = uuid::Uuid::new_v4().to_string();
        let path = self.dir.join(&name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let guard = Guard { path, name };
        Ok((Writer::new(file, limit), guard))
    }
}

/// Removes its spool file when dropped: once the service has answered the call, it has opened
/// (and unlinked) the file, or never will.
#[derive(Debug)]
pub(crate) struct Guard {
    path: PathBuf,
    name: String,
}

impl Guard {
    /// The file's name in the spool directory, for the first message.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "removing a spool file")
            }
        }
    }
}

/// Appends an upload's bytes to its spool file: the chunks are taken as they come and written
/// together (one `writev`) every [`ANNOUNCE`] bytes, when the service is told.
#[derive(Debug)]
pub(crate) struct Writer {
    /// `None` once a write failed.
    file: Option<File>,
    /// No more is taken (past the limit, or a write failed).
    over: bool,
    /// Chunks taken and not written yet, and their bytes.
    pending: Vec<Bytes>,
    pending_len: u64,
    /// Bytes written.
    len: u64,
    /// The most bytes spooled.
    limit: u64,
}

impl Writer {
    fn new(file: File, limit: u64) -> Writer {
        Writer {
            file: Some(file),
            over: false,
            pending: Vec::new(),
            pending_len: 0,
            len: 0,
            limit,
        }
    }

    /// Takes `data` for the file; gives it back when spooling is over (past the limit, or after
    /// a failed write): it and the rest of the body go as messages.
    pub(crate) fn take(&mut self, data: Bytes) -> Result<(), Bytes> {
        self.over |=
            self.file.is_none() || self.len + self.pending_len + data.len() as u64 > self.limit;
        if self.over {
            return Err(data);
        }
        self.pending_len += data.len() as u64;
        self.pending.push(data);
        Ok(())
    }

    /// A writer whose every write fails.
    #[cfg(test)]
    pub(crate) fn failing() -> Writer {
        Writer::new(File::open("/dev/null").expect("/dev/null"), LIMIT)
    }

    /// Whether enough is taken to write it and tell the service.
    pub(crate) fn due(&self) -> bool {
        self.pending_len >= ANNOUNCE
    }

    /// Writes the chunks taken: the file's length to tell the service, or `None` when none
    /// were taken. When writing fails, spooling is over and the chunks are given back, in
    /// order, to go as messages (part of them may be in the file, past the length the service
    /// was told, which is all it reads).
    pub(crate) fn flush(&mut self) -> Result<Option<u64>, Vec<Bytes>> {
        let pending = std::mem::take(&mut self.pending);
        let len = std::mem::take(&mut self.pending_len);
        if pending.is_empty() {
            return Ok(None);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(pending);
        };
        let mut slices: Vec<IoSlice<'_>> = pending.iter().map(|b| IoSlice::new(b)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match file.write_vectored(rest) {
                Ok(0) => {
                    return self.failed(pending, &io::Error::from(io::ErrorKind::WriteZero));
                }
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.failed(pending, &e),
            }
        }
        self.len += len;
        Ok(Some(self.len))
    }

    fn failed(&mut self, pending: Vec<Bytes>, e: &io::Error) -> Result<Option<u64>, Vec<Bytes>> {
        tracing::warn!(error = %e, "writing a spool file: the rest of the upload goes as messages");
        self.file = None;
        Err(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, SpoolDir) {
        let t = tempfile::tempdir().unwrap();
        let d = SpoolDir::for_tests(t.path());
        (t, d)
    }

    #[test]
    fn writes_what_it_took_when_due_or_flushed() {
        let (_t, d) = dir();
        let (mut w, g) = d.create().unwrap();
        let half = Bytes::from(vec![7u8; (ANNOUNCE / 2) as usize]);
        w.take(half.clone()).unwrap();
        assert!(!w.due(), "half of ANNOUNCE");
        w.take(half).unwrap();
        assert!(w.due());
        assert_eq!(w.flush(), Ok(Some(ANNOUNCE)));
        assert_eq!(w.flush(), Ok(None), "nothing taken since");
        w.take(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(w.flush(), Ok(Some(ANNOUNCE + 3)));
        let path = d.dir.join(g.name());
        let file = std::fs::read(&path).unwrap();
        assert_eq!(file.len() as u64, ANNOUNCE + 3);
        assert_eq!(&file[file.len() - 3..], b"abc");
        drop(g);
        assert!(!path.exists(), "the guard removes the file");
    }

    #[test]
    fn past_the_limit_spooling_is_over() {
        let (_t, d) = dir();
        let (mut w, _g) = d.create_within(4).unwrap();
        w.take(Bytes::from_static(b"ab")).unwrap();
        assert_eq!(
            w.take(Bytes::from_static(b"abc")),
            Err(Bytes::from_static(b"abc"))
        );
        assert_eq!(w.flush(), Ok(Some(2)), "what was taken is written");
        assert!(w.take(Bytes::from_static(b"a")).is_err(), "over for good");
    }

    #[test]
    fn a_failed_write_gives_the_chunks_back() {
        let mut w = Writer::failing();
        w.take(Bytes::from_static(b"ab")).unwrap();
        assert_eq!(
            w.flush(),
            Err(vec![Bytes::from_static(b"ab")]),
            "read-only: EBADF"
        );
    }

    #[test]
    fn only_a_local_images_service_gets_a_spool_directory() {
        let t = tempfile::tempdir().unwrap();
        let parse = |extra: &str| {
            let json = format!(
                r#"{{"exec-root": {:?}{extra}}}"#,
                t.path().display().to_string()
            );
            DaemonConfig::parse(std::path::Path::new("daemon.json"), &json).unwrap()
        };
        let cfg = parse("");
        std::fs::create_dir(cfg.spool_dir()).unwrap();
        std::fs::write(cfg.spool_dir().join("left"), b"x").unwrap();
        let d = SpoolDir::open(&cfg).unwrap();
        assert!(!d.dir.join("left").exists(), "emptied");
        assert!(d.dir.is_dir());
        let remote = parse(concat!(
            r#", "berth": {"services": {"images": {"address": "tcp://10.0.0.2:7000"}}, "#,
            r#""tls": {"ca": "/c", "cert": "/c", "key": "/k"}}"#
        ));
        assert!(SpoolDir::open(&remote).is_none());
    }
}

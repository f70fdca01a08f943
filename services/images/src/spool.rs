//! Uploads handed over in a spool file. On one host the gateway does not send a large upload (a
//! build context) as gRPC messages: it writes the bytes into a file of the spool directory
//! (`<exec-root>/spool`, tmpfs under `/run` in production), names the file in the first message
//! and then says, message by message, how many bytes the file holds. The messages' framing, and
//! the copies into and out of them on both sides, are saved. This service reads the file as it
//! grows; once the file is open it is unlinked (the gateway removes it too when the call ends,
//! whether or not it was opened).

use std::{
    fs::File,
    io,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use bytes::Bytes;

use crate::ImagesError;

/// The longest name a spool file is given (a UUID is 36 characters).
const NAME_MAX: usize = 64;

/// A spool file being read: bytes up to what the gateway said it holds.
#[derive(Debug)]
pub(crate) struct Reader {
    file: File,
    path: PathBuf,
    /// Bytes read so far.
    read: u64,
    /// Bytes the file holds, as last said.
    written: u64,
    /// The spooled part is over: the rest of the upload comes in messages.
    closed: bool,
}

impl Reader {
    /// Opens `name` in `dir`, and unlinks it. Only a plain name (letters, digits, `-`) of a
    /// regular file is opened: a caller cannot point the service at any other file.
    pub(crate) fn open(dir: &Path, name: &str) -> Result<Reader, ImagesError> {
        let plain = !name.is_empty()
            && name.len() <= NAME_MAX
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !plain {
            return Err(ImagesError::InvalidArgument(format!(
                "invalid spool file name {name:?}"
            )));
        }
        let path = dir.join(name);
        // Not through a symlink, and never waiting on a FIFO.
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(&path)
            .map_err(|e| {
                let hint = match e.kind() {
                    io::ErrorKind::NotFound => {
                        " (the gateway writes it in its exec-root's spool directory: the images \
                         service must see the same exec-root)"
                    }
                    _ => "",
                };
                ImagesError::io(&path, io::Error::new(e.kind(), format!("{e}{hint}")))
            })?;
        let meta = file.metadata().map_err(|e| ImagesError::io(&path, e))?;
        if !meta.is_file() {
            return Err(ImagesError::InvalidArgument(format!(
                "spool file {}: not a regular file",
                path.display()
            )));
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::debug!(path = %path.display(), error = %e, "unlinking a spool file");
        }
        Ok(Reader {
            file,
            path,
            read: 0,
            written: 0,
            closed: false,
        })
    }

    /// The file holds `n` bytes now.
    pub(crate) fn written(&mut self, n: u64) -> io::Result<()> {
        if self.closed || n < self.written {
            return Err(io::Error::other(format!(
                "the upload's spool file {} was said to hold {n} bytes after {} bytes{}",
                self.path.display(),
                self.written,
                if self.closed { " and data" } else { "" }
            )));
        }
        self.written = n;
        Ok(())
    }

    /// The rest of the upload comes in messages.
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// What the file holds and was not read yet, as one piece; `None` when all of it was
    /// read.
    pub(crate) fn next(&mut self) -> io::Result<Option<Bytes>> {
        let left = self.written - self.read;
        if left == 0 {
            return Ok(None);
        }
        // The whole of what is written and unread, mapped: read where it lies in the page
        // cache, neither copied nor faulted into fresh memory first.
        let size = self.file.metadata()?.len();
        if size < self.written {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the upload's spool file {} holds {size} bytes, {} were said",
                    self.path.display(),
                    self.written
                ),
            ));
        }
        // SAFETY: the range lies within the file (checked just above), which only grows: the
        // gateway appends to it and never truncates it, and no one else can open it once it
        // is unlinked (done in `open`). The map is read-only and owned by the `Bytes`.
        #[allow(unsafe_code)]
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(self.read)
                .len((self.written - self.read) as usize)
                .map(&self.file)?
        };
        self.read = self.written;
        Ok(Some(Bytes::from_owner(map)))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_what_the_file_was_said_to_hold_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = File::create(dir.path().join("a-1")).unwrap();
        let data: Vec<u8> = (0..100_000).map(|i| i as u8).collect();
        w.write_all(&data[..100]).unwrap();
        let mut r = Reader::open(dir.path(), "a-1").unwrap();
        assert!(!dir.path().join("a-1").exists(), "unlinked once open");
        assert!(r.next().unwrap().is_none(), "nothing said yet");
        r.written(60).unwrap();
        assert_eq!(&r.next().unwrap().unwrap()[..], &data[..60]);
        assert!(r.next().unwrap().is_none());
        w.write_all(&data[100..]).unwrap();
        r.written(data.len() as u64).unwrap();
        let mut got = data[..60].to_vec();
        while let Some(c) = r.next().unwrap() {
            got.extend_from_slice(&c);
        }
        assert_eq!(got, data);
        r.close();
        assert!(
            r.written(data.len() as u64 + 1).is_err(),
            "nothing after data"
        );
    }

    #[test]
    fn a_file_shorter_than_said_or_a_length_going_back_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b"), b"abc").unwrap();
        let mut r = Reader::open(dir.path(), "b").unwrap();
        r.written(2).unwrap();
        assert!(r.written(1).is_err());
        r.written(5).unwrap();
        let e = r.next().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn only_plain_names_of_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("f"), dir.path().join("link")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for name in [
            "",
            "../f",
            "/etc/passwd",
            ".",
            "a/b",
            "link",
            "fifo",
            "d",
            "missing",
        ] {
            assert!(Reader::open(dir.path(), name).is_err(), "{name:?} opened");
        }
        assert!(dir.path().join("f").exists());
        assert!(dir.path().join("link").exists(), "a refused file stays");
    }

    #[test]
    fn an_upload_reads_the_spooled_part_then_its_messages() {
        use crate::pipe::{ChunkSource, Piece, Received};
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c"), b"spooled-").unwrap();
        let spool = Reader::open(dir.path(), "c").unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        for p in [
            Piece::Spooled(4),
            Piece::Spooled(8),
            Piece::Data(Bytes::from_static(b"then ")),
            Piece::Data(Bytes::from_static(b"data")),
        ] {
            tx.try_send(Ok(p)).unwrap();
        }
        drop(tx);
        let mut r = Received::new(rx, Some(spool));
        let mut got = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            got.extend_from_slice(&c);
        }
        assert_eq!(got, b"spooled-then data");
    }

    #[test]
    fn spooled_bytes_after_data_or_without_a_file_are_an_error() {
        use crate::pipe::{ChunkSource, Piece, Received};
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c"), b"abc").unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tx.try_send(Ok(Piece::Data(Bytes::from_static(b"x"))))
            .unwrap();
        tx.try_send(Ok(Piece::Spooled(3))).unwrap();
        let mut r = Received::new(rx, Some(Reader::open(dir.path(), "c").unwrap()));
        assert_eq!(&r.next_chunk().unwrap().unwrap()[..], b"x");
        assert!(r.next_chunk().is_err());
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tx.try_send(Ok(Piece::Spooled(3))).unwrap();
        assert!(Received::new(rx, None).next_chunk().is_err());
    }
}

//! The checksums that key the build cache: a file's content, and a COPY/ADD's sources
//! (`file:`, `dir:`, `multi:`). They are BLAKE3, not SHA-256: they are never content addresses
//! (no blob or image is named by them; they appear only in a step's cache key and in the
//! `COPY dir:<hex> in /dest` line of its history, where dockerd's are its own tarsums), and a
//! fully cached rebuild hashes the whole context, which BLAKE3 does several times as fast as
//! SHA-256 even with the CPU's SHA extensions, while staying collision-resistant, so that a
//! crafted context cannot take another's cached layer.

use std::io;

/// A content checksum (32 bytes of BLAKE3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checksum([u8; 32]);

impl Checksum {
    /// The checksum of `data`.
    pub(crate) fn of(data: impl AsRef<[u8]>) -> Checksum {
        Checksum(*blake3::hash(data.as_ref()).as_bytes())
    }

    /// The checksum in lowercase hex (64 characters).
    pub(crate) fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

/// Hashes what it is fed, counting the bytes.
#[derive(Default)]
pub(crate) struct Hasher {
    inner: blake3::Hasher,
    len: u64,
}

impl Hasher {
    pub(crate) fn new() -> Hasher {
        Hasher::default()
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    /// How many bytes were fed.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn finish(self) -> Checksum {
        Checksum(*self.inner.finalize().as_bytes())
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fed_in_pieces_is_the_checksum_of_the_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = Hasher::new();
        for piece in data.chunks(4093) {
            h.update(piece);
        }
        assert_eq!(h.len(), data.len() as u64);
        assert_eq!(h.finish(), Checksum::of(&data));
        // BLAKE3 of the empty input, as its reference implementation gives it.
        assert_eq!(
            Checksum::of(b"").hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_ne!(Checksum::of(b"a"), Checksum::of(b"b"));
    }
}

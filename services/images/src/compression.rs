//! Compression of tars and layer blobs, told from their first bytes (as Docker does for `load`,
//! `import` and layer blobs), and the layer media types that name it.

use std::io::{self, Cursor, Read};

use crate::ImagesError;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

pub(crate) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub(crate) const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub(crate) const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub(crate) const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// What the first bytes of a stream say. bzip2 and xz, which Docker also reads, are refused
    /// with a clear error rather than taken for a tar.
    pub(crate) fn sniff(head: &[u8]) -> Result<Compression, ImagesError> {
        if head.starts_with(GZIP_MAGIC) {
            Ok(Compression::Gzip)
        } else if head.starts_with(ZSTD_MAGIC) {
            Ok(Compression::Zstd)
        } else if head.starts_with(BZIP2_MAGIC) || head.starts_with(XZ_MAGIC) {
            Err(ImagesError::InvalidArgument(
                "unsupported compression: bzip2 and xz archives are not supported; use gzip, zstd or a plain tar".to_owned(),
            ))
        } else {
            Ok(Compression::None)
        }
    }

    /// The compression a layer media type names.
    pub(crate) fn of_media_type(media_type: &str) -> Compression {
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The layer media type of this compression, in the OCI or the Docker family.
    pub(crate) fn layer_media_type(self, docker: bool) -> &'static str {
        match (self, docker) {
            (Compression::None, false) => OCI_LAYER,
            (Compression::Gzip, false) => OCI_LAYER_GZIP,
            (Compression::Zstd, false) => OCI_LAYER_ZSTD,
            (Compression::None, true) => DOCKER_LAYER,
            (Compression::Gzip, true) => DOCKER_LAYER_GZIP,
            (Compression::Zstd, true) => DOCKER_LAYER_ZSTD,
        }
    }
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; n];
    let mut len = 0;
    while len < n {
        match r.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(k) => len += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(len);
    Ok(head)
}

/// The uncompressed bytes of `input`, whatever its compression, and which one it was. `empty`
/// tells whether the input had no byte at all.
pub(crate) struct Decompressed<'a> {
    pub(crate) reader: Box<dyn Read + 'a>,
    pub(crate) compression: Compression,
    pub(crate) empty: bool,
}

pub(crate) fn decompressed<'a>(mut input: impl Read + 'a) -> Result<Decompressed<'a>, ImagesError> {
    let head = read_head(&mut input, XZ_MAGIC.len())
        .map_err(|e| ImagesError::InvalidArgument(format!("reading the archive: {e}")))?;
    let compression = Compression::sniff(&head)?;
    let empty = head.is_empty();
    let whole = Cursor::new(head).chain(input);
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(whole)
                .map_err(|e| ImagesError::InvalidArgument(format!("reading zstd: {e}")))?,
        ),
    };
    Ok(Decompressed {
        reader,
        compression,
        empty,
    })
}

/// The compression of a stored blob, from its first bytes.
pub(crate) fn of_file(path: &std::path::Path) -> Result<Compression, ImagesError> {
    let mut f = std::fs::File::open(path).map_err(|e| ImagesError::io(path, e))?;
    let head = read_head(&mut f, XZ_MAGIC.len()).map_err(|e| ImagesError::io(path, e))?;
    Compression::sniff(&head)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn sniffs_and_decompresses() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"plain text").unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&b"plain text"[..], 1).unwrap();
        for (bytes, want) in [
            (&b"plain text"[..], Compression::None),
            (&gz[..], Compression::Gzip),
            (&zst[..], Compression::Zstd),
        ] {
            let mut d = decompressed(bytes).unwrap();
            assert_eq!(d.compression, want);
            let mut s = String::new();
            d.reader.read_to_string(&mut s).unwrap();
            assert_eq!(s, "plain text");
        }
        assert!(decompressed(&b""[..]).unwrap().empty);
        assert!(decompressed(&b"BZh91AY"[..]).is_err());
        assert_eq!(
            Compression::of_media_type(OCI_LAYER_ZSTD),
            Compression::Zstd
        );
        assert_eq!(
            Compression::of_media_type(DOCKER_LAYER_GZIP),
            Compression::Gzip
        );
        assert_eq!(Compression::Gzip.layer_media_type(true), DOCKER_LAYER_GZIP);
        assert_eq!(Compression::None.layer_media_type(false), OCI_LAYER);
    }
}

//! Content digests (`sha256:<hex>`), as the OCI image spec and `github.com/opencontainers/go-digest`
//! define them. Image IDs, manifest and blob digests are all `Digest`s.

use std::{fmt, io, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A digest algorithm Berth accepts. go-digest also knows `sha384`; Berth does not (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    /// The name used in the digest string: `sha256`, `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// The length of the lowercase hex encoding: 64 for sha256, 128 for sha512.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<DigestAlgorithm> {
        match name {
            "sha256" => Some(DigestAlgorithm::Sha256),
            "sha512" => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a [`Digest`]. The messages are go-digest's, which the Docker API returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDigest {
    /// Not `algorithm:hex`, or the hex part is not lowercase hex.
    #[error("invalid checksum digest format")]
    Format,
    /// The hex part has the wrong length for the algorithm.
    #[error("invalid checksum digest length")]
    Length,
    /// A well-formed digest whose algorithm Berth does not support (e.g. `sha384`, `md5`).
    #[error("unsupported digest algorithm")]
    Unsupported { algorithm: String },
}

impl InvalidDigest {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

/// A validated content digest: a supported algorithm and its lowercase hex encoding.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// The digest of `algorithm` with this hex encoding.
    pub fn new(algorithm: DigestAlgorithm, hex: &str) -> Result<Digest, InvalidDigest> {
        if hex.len() != algorithm.hex_len() {
            return Err(InvalidDigest::Length);
        }
        if !is_lower_hex(hex) {
            return Err(InvalidDigest::Format);
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: impl AsRef<[u8]>) -> Digest {
        let sum = sha2::Sha256::digest(data.as_ref());
        Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex: to_hex(&sum),
        }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lowercase hex encoding, without the `algorithm:` prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as `docker images` shows image IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Whether `s` is this digest's hex, or a prefix of it (at least one character), as Docker
    /// accepts truncated image IDs; a leading `algorithm:` is allowed.
    pub fn matches_prefix(&self, s: &str) -> bool {
        let s = s
            .strip_prefix(self.algorithm.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or(s);
        !s.is_empty() && self.hex.starts_with(s)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    /// Parses `algorithm:hex` as go-digest's `Parse` does, accepting only `sha256` and `sha512`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(InvalidDigest::Format);
        };
        if algorithm.is_empty() || hex.is_empty() {
            return Err(InvalidDigest::Format);
        }
        match DigestAlgorithm::from_name(algorithm) {
            Some(algorithm) => Digest::new(algorithm, hex),
            None if is_digest_syntax(s) => Err(InvalidDigest::Unsupported {
                algorithm: algorithm.to_owned(),
            }),
            None => Err(InvalidDigest::Format),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Computes a sha256 [`Digest`] over data fed in pieces (e.g. a layer being downloaded).
/// Also an [`io::Write`], so `io::copy` can feed it.
#[derive(Clone, Default)]
pub struct Sha256Digester {
    hasher: sha2::Sha256,
    len: u64,
}

impl Sha256Digester {
    pub fn new() -> Sha256Digester {
        Sha256Digester::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
    }

    /// How many bytes have been fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex: to_hex(&self.hasher.finalize()),
        }
    }
}

impl fmt::Debug for Sha256Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha256Digester")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl io::Write for Sha256Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    out
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// go-digest's `DigestRegexp`, `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`: a digest of some
/// algorithm, perhaps one Berth does not support. Tells "unsupported" apart from "malformed".
fn is_digest_syntax(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['.', '+', '_', '-']).all(|component| {
        !component.is_empty()
            && component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    algorithm_ok
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_known_vectors() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            format!("sha256:{EMPTY_SHA256}")
        );
        assert_eq!(
            Digest::sha256_of("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn streaming_matches_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut d = Sha256Digester::new();
        assert!(d.is_empty());
        for chunk in data.chunks(777) {
            d.update(chunk);
        }
        assert_eq!(d.len(), 10_000);
        assert_eq!(d.finish(), Digest::sha256_of(&data));

        let mut w = Sha256Digester::default();
        w.write_all(b"abc").unwrap();
        assert_eq!(w.finish(), Digest::sha256_of(b"abc"));
    }

    #[test]
    fn parse_valid() {
        let s = format!("sha256:{EMPTY_SHA256}");
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(d.algorithm().as_str(), "sha256");
        assert_eq!(d.hex(), EMPTY_SHA256);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(d.to_string(), s);

        let s512 = format!("sha512:{}", "ab".repeat(64));
        let d: Digest = s512.parse().unwrap();
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha512);
        assert_eq!(d.to_string(), s512);
        assert_eq!(d.short(), "abababababab");
    }

    #[test]
    fn parse_invalid() {
        let hex64 = "a".repeat(64);
        let cases: Vec<(String, InvalidDigest)> = vec![
            (String::new(), InvalidDigest::Format),
            (hex64.clone(), InvalidDigest::Format),
            (":".to_owned(), InvalidDigest::Format),
            (format!(":{hex64}"), InvalidDigest::Format),
            ("sha256:".to_owned(), InvalidDigest::Format),
            ("sha256:abc".to_owned(), InvalidDigest::Length),
            (format!("sha256:{}", "a".repeat(63)), InvalidDigest::Length),
            (format!("sha256:{}", "a".repeat(65)), InvalidDigest::Length),
            (format!("sha256:{}", "a".repeat(128)), InvalidDigest::Length),
            (format!("sha512:{hex64}"), InvalidDigest::Length),
            (format!("sha256:{}", "A".repeat(64)), InvalidDigest::Format),
            (format!("sha256:{}", "g".repeat(64)), InvalidDigest::Format),
            (format!("SHA256:{hex64}"), InvalidDigest::Format),
            (format!("sha384:{}", "a".repeat(96)), unsupported("sha384")),
            (format!("md5:{}", "a".repeat(32)), unsupported("md5")),
            ("md5:abc".to_owned(), unsupported("md5")),
            ("md5:a/c".to_owned(), InvalidDigest::Format),
            (format!("sha256+b64:{hex64}"), unsupported("sha256+b64")),
            (format!("sha 256:{hex64}"), InvalidDigest::Format),
            (format!("sha256:{hex64}:"), InvalidDigest::Length),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Digest>(), Err(want), "input {input:?}");
        }
        assert_eq!(
            InvalidDigest::Length.to_string(),
            "invalid checksum digest length"
        );
        assert_eq!(
            unsupported("md5").to_string(),
            "unsupported digest algorithm"
        );
        assert_eq!(
            InvalidDigest::Format.to_string(),
            "invalid checksum digest format"
        );
    }

    fn unsupported(algorithm: &str) -> InvalidDigest {
        InvalidDigest::Unsupported {
            algorithm: algorithm.to_owned(),
        }
    }

    #[test]
    fn new_validates() {
        assert!(Digest::new(DigestAlgorithm::Sha256, EMPTY_SHA256).is_ok());
        assert_eq!(
            Digest::new(DigestAlgorithm::Sha512, EMPTY_SHA256),
            Err(InvalidDigest::Length)
        );
    }

    #[test]
    fn prefix_matching() {
        let d = Digest::sha256_of(b"");
        assert!(d.matches_prefix("e3b0c4"));
        assert!(d.matches_prefix("sha256:e3b0c4"));
        assert!(d.matches_prefix(EMPTY_SHA256));
        assert!(!d.matches_prefix(""));
        assert!(!d.matches_prefix("sha256:"));
        assert!(!d.matches_prefix("e3b0c5"));
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::sha256_of(b"");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"sha256:{EMPTY_SHA256}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        let err = serde_json::from_str::<Digest>("\"sha256:abc\"").unwrap_err();
        assert!(err.to_string().contains("invalid checksum digest length"));
    }
}

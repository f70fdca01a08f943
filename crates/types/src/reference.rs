//! Image references (`busybox`, `localhost:5000/a/b:tag`, `example.com/x@sha256:…`), parsed and
//! normalized the way Docker does it (`github.com/distribution/reference`: `ParseNormalizedNamed`,
//! `ParseDockerRef`, `ParseAnyReference`, `FamiliarName`, `FamiliarString`, `TagNameOnly`), so
//! that names, error messages and the familiar forms the CLI prints are the same.
//!
//! The grammar (from distribution's `regexp.go`):
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain-and-port "/" ] path-component [ "/" path-component ]*
//! domain-and-port:= ( domain-name | "[" ipv6-chars "]" ) [ ":" [0-9]+ ]
//! domain-name    := domain-comp [ "." domain-comp ]*      domain-comp := [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag            := [\w][\w.-]{0,127}
//! digest         := [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" [0-9a-fA-F]{32,}
//! ```

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{Digest, DigestAlgorithm, InvalidDigest};

/// The registry domain that names without one belong to (Docker Hub).
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The old name of Docker Hub's domain, normalized to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The host actually contacted for [`DEFAULT_DOMAIN`].
pub const DOCKER_HUB_REGISTRY_HOST: &str = "registry-1.docker.io";
/// The namespace of Docker Hub's official images (`busybox` is `library/busybox`).
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag implied when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest a full repository name (`domain/path`) may be.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a valid reference or tag. The messages are distribution's and moby's, which
/// the Docker API returns verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not fit the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository path has uppercase letters (`Busybox` → `library/Busybox`).
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    NotLowercase { name: String },
    /// The string would fit the grammar if it were lowercase (distribution's
    /// `ErrNameContainsUppercase`; only reachable for oddities the check above misses).
    #[error("repository name must be lowercase")]
    ContainsUppercase,
    /// `domain/path` is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A bare 64-hex string, which Docker reserves for image IDs.
    #[error("invalid repository name ({value}), cannot specify 64-byte hexadecimal strings")]
    HexName { value: String },
    /// A tag that does not fit `[\w][\w.-]{0,127}`.
    #[error("invalid tag format")]
    InvalidTag,
    /// The digest part is well formed for a reference but not a valid digest.
    #[error(transparent)]
    Digest(#[from] InvalidDigest),
}

impl ReferenceError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

/// A parsed, normalized image reference: registry domain, repository path, and an optional tag
/// and/or digest. `Display` gives the fully qualified form (`docker.io/library/busybox:latest`);
/// [`ImageRef::familiar_string`] the short one the CLI prints (`busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// What [`AnyReference::parse`] found: an image ID or a named reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyReference {
    /// A bare 64-hex ID (taken as sha256) or an `algorithm:hex` digest.
    Id(Digest),
    Named(ImageRef),
}

impl AnyReference {
    /// distribution's `ParseAnyReference`: a 64-hex string or a valid digest is an ID, anything
    /// else is parsed with [`ImageRef::parse_normalized`].
    pub fn parse(s: &str) -> Result<AnyReference, ReferenceError> {
        if is_identifier(s) {
            return Ok(AnyReference::Id(Digest::new(DigestAlgorithm::Sha256, s)?));
        }
        if let Ok(digest) = s.parse::<Digest>() {
            return Ok(AnyReference::Id(digest));
        }
        ImageRef::parse_normalized(s).map(AnyReference::Named)
    }
}

impl FromStr for AnyReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AnyReference::parse(s)
    }
}

impl ImageRef {
    /// distribution's `ParseNormalizedNamed`: adds `docker.io` and `library/` where Docker would,
    /// maps `index.docker.io` to `docker.io`, and keeps the tag as given (`None` if there was
    /// none; see [`ImageRef::with_default_tag`]).
    pub fn parse_normalized(s: &str) -> Result<ImageRef, ReferenceError> {
        if is_identifier(s) {
            return Err(ReferenceError::HexName {
                value: s.to_owned(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::NotLowercase {
                name: remote_name.to_owned(),
            });
        }
        parse_qualified(&format!("{domain}/{remainder}"))
    }

    /// distribution's `ParseDockerRef`: like [`ImageRef::parse_normalized`], then drops the tag
    /// when there is a digest (the digest wins) and adds `latest` when there is neither.
    pub fn parse_docker_ref(s: &str) -> Result<ImageRef, ReferenceError> {
        let r = ImageRef::parse_normalized(s)?;
        Ok(if r.digest.is_some() {
            r.without_tag()
        } else {
            r.with_default_tag()
        })
    }

    /// Whether `s` is an image ID rather than a name: 64 lowercase hex characters, optionally
    /// prefixed with `sha256:`.
    pub fn looks_like_id(s: &str) -> bool {
        is_identifier(s.strip_prefix("sha256:").unwrap_or(s))
    }

    /// The registry domain, with its port if any: `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry: `library/busybox`, `user/repo`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The full repository name, `domain/path`: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// distribution's `FamiliarName`: the name without `docker.io/`, and without `library/` for
    /// single-component official images: `busybox`, `user/repo`, `localhost:5000/repo`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// distribution's `FamiliarString`: the familiar name with `:tag` and/or `@digest`, as the CLI
    /// prints it (`busybox:latest`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_and_digest(&mut s);
        s
    }

    /// The same reference with `tag` (any digest is kept, as distribution's `WithTag` does).
    pub fn with_tag(self, tag: &str) -> Result<ImageRef, ReferenceError> {
        validate_tag(tag)?;
        Ok(ImageRef {
            tag: Some(tag.to_owned()),
            ..self
        })
    }

    /// The same reference with `digest` (any tag is kept).
    pub fn with_digest(self, digest: Digest) -> ImageRef {
        ImageRef {
            digest: Some(digest),
            ..self
        }
    }

    /// The same reference without its tag (any digest is kept).
    pub fn without_tag(self) -> ImageRef {
        ImageRef { tag: None, ..self }
    }

    /// The same reference without its digest (any tag is kept).
    pub fn without_digest(self) -> ImageRef {
        ImageRef {
            digest: None,
            ..self
        }
    }

    /// distribution's `TrimNamed`: the repository alone, without tag or digest.
    pub fn name_only(self) -> ImageRef {
        ImageRef {
            tag: None,
            digest: None,
            ..self
        }
    }

    /// distribution's `TagNameOnly`: adds the `latest` tag if there is neither tag nor digest.
    pub fn with_default_tag(self) -> ImageRef {
        if self.is_name_only() {
            ImageRef {
                tag: Some(DEFAULT_TAG.to_owned()),
                ..self
            }
        } else {
            self
        }
    }

    /// Whether the registry is Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.domain == DEFAULT_DOMAIN
    }

    /// The `host[:port]` to contact: `registry-1.docker.io` for Docker Hub, else the domain.
    pub fn registry_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_REGISTRY_HOST
        } else {
            &self.domain
        }
    }

    /// The repository name used in registry API URLs (`/v2/<name>/manifests/…`): the path.
    pub fn repository_for_registry(&self) -> &str {
        &self.path
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    /// [`ImageRef::parse_normalized`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse_normalized(s)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a bare tag (as in `docker tag busybox repo:TAG` or the `tag` query parameter) against
/// `[\w][\w.-]{0,127}`; the error is distribution's `ErrTagInvalidFormat`.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    if is_tag(tag) {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag)
    }
}

/// distribution's `anchoredIdentifierRegexp`: `^[a-f0-9]{64}$`.
fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// distribution's `splitDockerDomain`: returns the domain and the rest (path, tag, digest).
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((maybe_domain, maybe_rest)) = name.split_once('/') else {
        // A single element ("busybox", "busybox:tag", even "localhost:5000") is an official image.
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, rest) = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_rest)
    } else if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        (maybe_domain, maybe_rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{rest}"))
    } else {
        (domain, rest.to_owned())
    }
}

/// distribution's `Parse` on an already-qualified string (`domain/path[:tag][@digest]`).
fn parse_qualified(s: &str) -> Result<ImageRef, ReferenceError> {
    let Some(m) = match_reference(s) else {
        return Err(if match_reference(&s.to_lowercase()).is_some() {
            ReferenceError::ContainsUppercase
        } else {
            ReferenceError::InvalidFormat
        });
    };
    if m.name_len > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    // distribution would accept e.g. `a_b.c/x` as a domain-less name (the first element is not a
    // valid host but is a valid path component); such a reference names no registry, so refuse.
    let Some(domain) = m.domain else {
        return Err(ReferenceError::InvalidFormat);
    };
    let digest = m.digest.map(str::parse::<Digest>).transpose()?;
    Ok(ImageRef {
        domain: domain.to_owned(),
        path: m.path.to_owned(),
        tag: m.tag.map(str::to_owned),
        digest,
    })
}

/// The parts of a string that matches distribution's `ReferenceRegexp`.
#[derive(Debug, PartialEq, Eq)]
struct Match<'a> {
    name_len: usize,
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// distribution's anchored `ReferenceRegexp`, with `anchoredNameRegexp` splitting the name into
/// domain and path. Neither name nor tag can hold `@`, so the first `@` starts the digest; the
/// name holds `:` only in its domain, which is followed by `/`, so a `:` after the last `/` starts
/// the tag.
fn match_reference(s: &str) -> Option<Match<'_>> {
    let (left, digest) = match s.split_once('@') {
        Some((left, digest)) => (left, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_reference_digest(d)) {
        return None;
    }
    let last_elem_start = left.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match left[last_elem_start..].find(':') {
        Some(i) => {
            let colon = last_elem_start + i;
            (&left[..colon], Some(&left[colon + 1..]))
        }
        None => (left, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    // The regexp tries the optional domain first.
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain_and_port(first) && is_remote_name(rest) => {
            (Some(first), rest)
        }
        _ if is_remote_name(name) => (None, name),
        _ => return None,
    };
    Some(Match {
        name_len: name.len(),
        domain,
        path,
        tag,
        digest,
    })
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    match bytes.split_first() {
        Some((&first, rest)) => {
            word(first)
                && rest.len() <= 127
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        None => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`.
fn is_reference_digest(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|component| {
        let mut bytes = component.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `remoteName`: path components separated by `/`.
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `(?:domainName|\[[a-fA-F0-9:]+\])(?::[0-9]+)?`.
fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (addr_ok, after)
    } else {
        let colon = s.find(':').unwrap_or(s.len());
        (is_domain_name(&s[..colon]), &s[colon..])
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// Components of `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, separated by `.`.
fn is_domain_name(s: &str) -> bool {
    s.split('.').all(|component| {
        let b = component.as_bytes();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn d(hex: &str) -> Digest {
        format!("sha256:{hex}").parse().unwrap()
    }

    struct Valid {
        input: String,
        domain: &'static str,
        path: &'static str,
        tag: Option<&'static str>,
        digest: Option<String>,
        full: String,
        familiar: String,
    }

    fn valid(
        input: &str,
        domain: &'static str,
        path: &'static str,
        tag: Option<&'static str>,
        digest: Option<String>,
        full: &str,
        familiar: &str,
    ) -> Valid {
        Valid {
            input: input.to_owned(),
            domain,
            path,
            tag,
            digest,
            full: full.to_owned(),
            familiar: familiar.to_owned(),
        }
    }

    fn valid_cases() -> Vec<Valid> {
        let sha = format!("sha256:{HEX}");
        let sha512 = format!("sha512:{}", "0f".repeat(64));
        let hub = "docker.io";
        vec![
            valid(
                "busybox",
                hub,
                "library/busybox",
                None,
                None,
                "docker.io/library/busybox",
                "busybox",
            ),
            valid(
                "library/busybox",
                hub,
                "library/busybox",
                None,
                None,
                "docker.io/library/busybox",
                "busybox",
            ),
            valid(
                "docker.io/busybox",
                hub,
                "library/busybox",
                None,
                None,
                "docker.io/library/busybox",
                "busybox",
            ),
            valid(
                "docker.io/library/busybox",
                hub,
                "library/busybox",
                None,
                None,
                "docker.io/library/busybox",
                "busybox",
            ),
            valid(
                "index.docker.io/busybox",
                hub,
                "library/busybox",
                None,
                None,
                "docker.io/library/busybox",
                "busybox",
            ),
            valid(
                "index.docker.io/library/busybox:1",
                hub,
                "library/busybox",
                Some("1"),
                None,
                "docker.io/library/busybox:1",
                "busybox:1",
            ),
            valid(
                "busybox:1.36",
                hub,
                "library/busybox",
                Some("1.36"),
                None,
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            valid(
                "busybox:Latest",
                hub,
                "library/busybox",
                Some("Latest"),
                None,
                "docker.io/library/busybox:Latest",
                "busybox:Latest",
            ),
            valid(
                "busybox:_x.Y-z",
                hub,
                "library/busybox",
                Some("_x.Y-z"),
                None,
                "docker.io/library/busybox:_x.Y-z",
                "busybox:_x.Y-z",
            ),
            valid(
                "user/repo",
                hub,
                "user/repo",
                None,
                None,
                "docker.io/user/repo",
                "user/repo",
            ),
            valid(
                "docker.io/user/repo:v1",
                hub,
                "user/repo",
                Some("v1"),
                None,
                "docker.io/user/repo:v1",
                "user/repo:v1",
            ),
            valid(
                "library/a/b",
                hub,
                "library/a/b",
                None,
                None,
                "docker.io/library/a/b",
                "library/a/b",
            ),
            valid(
                "a/b/c/d",
                hub,
                "a/b/c/d",
                None,
                None,
                "docker.io/a/b/c/d",
                "a/b/c/d",
            ),
            valid(
                "localhost/foo",
                "localhost",
                "foo",
                None,
                None,
                "localhost/foo",
                "localhost/foo",
            ),
            valid(
                "localhost:5000/a/b:tag",
                "localhost:5000",
                "a/b",
                Some("tag"),
                None,
                "localhost:5000/a/b:tag",
                "localhost:5000/a/b:tag",
            ),
            // A single element is always an official image name, even when shaped like a host.
            valid(
                "localhost",
                hub,
                "library/localhost",
                None,
                None,
                "docker.io/library/localhost",
                "localhost",
            ),
            valid(
                "localhost:5000",
                hub,
                "library/localhost",
                Some("5000"),
                None,
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
            valid(
                "example.com",
                hub,
                "library/example.com",
                None,
                None,
                "docker.io/library/example.com",
                "example.com",
            ),
            valid(
                "[::1]:5000/x",
                "[::1]:5000",
                "x",
                None,
                None,
                "[::1]:5000/x",
                "[::1]:5000/x",
            ),
            valid("[::1]/x", "[::1]", "x", None, None, "[::1]/x", "[::1]/x"),
            valid(
                "[2001:DB8::1]:443/a/b:c",
                "[2001:DB8::1]:443",
                "a/b",
                Some("c"),
                None,
                "[2001:DB8::1]:443/a/b:c",
                "[2001:DB8::1]:443/a/b:c",
            ),
            valid(
                "host.example/repo",
                "host.example",
                "repo",
                None,
                None,
                "host.example/repo",
                "host.example/repo",
            ),
            valid(
                "127.0.0.1:5000/repo",
                "127.0.0.1:5000",
                "repo",
                None,
                None,
                "127.0.0.1:5000/repo",
                "127.0.0.1:5000/repo",
            ),
            valid(
                "myhost:5000/repo",
                "myhost:5000",
                "repo",
                None,
                None,
                "myhost:5000/repo",
                "myhost:5000/repo",
            ),
            valid(
                "ghcr.io/owner/repo:1.0",
                "ghcr.io",
                "owner/repo",
                Some("1.0"),
                None,
                "ghcr.io/owner/repo:1.0",
                "ghcr.io/owner/repo:1.0",
            ),
            // Only index.docker.io is folded into docker.io.
            valid(
                "registry-1.docker.io/library/x",
                "registry-1.docker.io",
                "library/x",
                None,
                None,
                "registry-1.docker.io/library/x",
                "registry-1.docker.io/library/x",
            ),
            // Uppercase is allowed in the domain, and an uppercase first element is a domain.
            valid(
                "EXAMPLE.com/foo",
                "EXAMPLE.com",
                "foo",
                None,
                None,
                "EXAMPLE.com/foo",
                "EXAMPLE.com/foo",
            ),
            valid("UPPER/x", "UPPER", "x", None, None, "UPPER/x", "UPPER/x"),
            valid(
                "a-b.c-d.e:1/p-q/r__s/t.u/v_w/x---y:T_a.g-1",
                "a-b.c-d.e:1",
                "p-q/r__s/t.u/v_w/x---y",
                Some("T_a.g-1"),
                None,
                "a-b.c-d.e:1/p-q/r__s/t.u/v_w/x---y:T_a.g-1",
                "a-b.c-d.e:1/p-q/r__s/t.u/v_w/x---y:T_a.g-1",
            ),
            valid(
                "foo_bar",
                hub,
                "library/foo_bar",
                None,
                None,
                "docker.io/library/foo_bar",
                "foo_bar",
            ),
            valid(
                "foo__bar--baz.qux",
                hub,
                "library/foo__bar--baz.qux",
                None,
                None,
                "docker.io/library/foo__bar--baz.qux",
                "foo__bar--baz.qux",
            ),
            valid("0/1", hub, "0/1", None, None, "docker.io/0/1", "0/1"),
            valid(
                &format!("example.com/x@{sha}"),
                "example.com",
                "x",
                None,
                Some(sha.clone()),
                &format!("example.com/x@{sha}"),
                &format!("example.com/x@{sha}"),
            ),
            valid(
                &format!("x:tag@{sha}"),
                hub,
                "library/x",
                Some("tag"),
                Some(sha.clone()),
                &format!("docker.io/library/x:tag@{sha}"),
                &format!("x:tag@{sha}"),
            ),
            valid(
                &format!("busybox@{sha}"),
                hub,
                "library/busybox",
                None,
                Some(sha.clone()),
                &format!("docker.io/library/busybox@{sha}"),
                &format!("busybox@{sha}"),
            ),
            valid(
                &format!("example.com:5000/x:1@{sha512}"),
                "example.com:5000",
                "x",
                Some("1"),
                Some(sha512.clone()),
                &format!("example.com:5000/x:1@{sha512}"),
                &format!("example.com:5000/x:1@{sha512}"),
            ),
            // "sha256:abc" is not a digest, so it is a name with a tag.
            valid(
                "sha256:abc",
                hub,
                "library/sha256",
                Some("abc"),
                None,
                "docker.io/library/sha256:abc",
                "sha256:abc",
            ),
        ]
    }

    #[test]
    fn normalizes_like_docker() {
        for case in valid_cases() {
            let input = &case.input;
            let r = ImageRef::parse_normalized(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(r.domain(), case.domain, "domain of {input:?}");
            assert_eq!(r.path(), case.path, "path of {input:?}");
            assert_eq!(r.tag(), case.tag, "tag of {input:?}");
            assert_eq!(
                r.digest().map(ToString::to_string),
                case.digest,
                "digest of {input:?}"
            );
            assert_eq!(r.to_string(), case.full, "full form of {input:?}");
            assert_eq!(
                r.familiar_string(),
                case.familiar,
                "familiar form of {input:?}"
            );
            assert_eq!(r.name(), format!("{}/{}", case.domain, case.path));
            assert_eq!(r.repository_for_registry(), case.path);
            assert_eq!(r.is_docker_hub(), case.domain == DEFAULT_DOMAIN);
            assert_eq!(input.parse::<ImageRef>().as_ref(), Ok(&r));
        }
    }

    #[test]
    fn round_trips() {
        for case in valid_cases() {
            let r = ImageRef::parse_normalized(&case.input).unwrap();
            let full = r.to_string();
            assert_eq!(
                full.parse::<ImageRef>(),
                Ok(r.clone()),
                "reparse of {full:?}"
            );
            let familiar = r.familiar_string();
            assert_eq!(
                familiar.parse::<ImageRef>(),
                Ok(r.clone()),
                "reparse of {familiar:?}"
            );
            let named = r.clone().with_default_tag();
            assert_eq!(named.to_string().parse::<ImageRef>(), Ok(named));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{full}\""));
            assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), r);
        }
    }

    #[test]
    fn familiar_names() {
        let cases = [
            ("busybox:1", "busybox"),
            ("docker.io/library/busybox", "busybox"),
            ("docker.io/library/a/b", "library/a/b"),
            ("user/repo:tag", "user/repo"),
            ("localhost:5000/repo", "localhost:5000/repo"),
            ("example.com/library/busybox", "example.com/library/busybox"),
        ];
        for (input, want) in cases {
            let r = ImageRef::parse_normalized(input).unwrap();
            assert_eq!(r.familiar_name(), want, "familiar name of {input:?}");
        }
    }

    fn err(input: &str) -> ReferenceError {
        match ImageRef::parse_normalized(input) {
            Ok(r) => panic!("{input:?} should not parse, got {r}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rejects_like_docker() {
        use ReferenceError::*;
        let not_lower = |name: &str| NotLowercase {
            name: name.to_owned(),
        };
        let cases: Vec<(String, ReferenceError)> = vec![
            ("Busybox".to_owned(), not_lower("library/Busybox")),
            ("Busybox:Tag".to_owned(), not_lower("library/Busybox")),
            ("Busybox:".to_owned(), not_lower("library/Busybox")),
            ("foo/Bar".to_owned(), not_lower("foo/Bar")),
            ("example.com/Foo:1".to_owned(), not_lower("Foo")),
            ("localhost/A".to_owned(), not_lower("A")),
            ("Ä".to_owned(), not_lower("library/Ä")),
            ("busybox:".to_owned(), InvalidFormat),
            (":tag".to_owned(), InvalidFormat),
            ("".to_owned(), InvalidFormat),
            ("/".to_owned(), InvalidFormat),
            ("a//b".to_owned(), InvalidFormat),
            ("a/b/".to_owned(), InvalidFormat),
            ("/a".to_owned(), InvalidFormat),
            ("-a".to_owned(), InvalidFormat),
            ("a-".to_owned(), InvalidFormat),
            ("a..b".to_owned(), InvalidFormat),
            ("a___b".to_owned(), InvalidFormat),
            ("a._b".to_owned(), InvalidFormat),
            (".a".to_owned(), InvalidFormat),
            ("a:b:c".to_owned(), InvalidFormat),
            ("a:-b".to_owned(), InvalidFormat),
            ("a:.b".to_owned(), InvalidFormat),
            ("a:b/c".to_owned(), InvalidFormat),
            ("example.com/foo:bar:baz".to_owned(), InvalidFormat),
            ("foo bar".to_owned(), InvalidFormat),
            ("ümlaut".to_owned(), InvalidFormat),
            ("busybox@".to_owned(), InvalidFormat),
            ("busybox@sha256:abc".to_owned(), InvalidFormat),
            (format!("busybox@@sha256:{HEX}"), InvalidFormat),
            (format!("busybox@sha256:{HEX}@sha256:{HEX}"), InvalidFormat),
            (format!("busybox@{HEX}"), InvalidFormat),
            (format!("busybox@sha256:{HEX}:latest"), InvalidFormat),
            (format!("busybox:{}", "a".repeat(129)), InvalidFormat),
            ("example.com:port/x".to_owned(), InvalidFormat),
            ("example.com:/x".to_owned(), InvalidFormat),
            ("-example.com/x".to_owned(), InvalidFormat),
            ("example-.com/x".to_owned(), InvalidFormat),
            ("example.com./x".to_owned(), InvalidFormat),
            ("[::1/x".to_owned(), InvalidFormat),
            ("[]:5000/x".to_owned(), InvalidFormat),
            ("[::g]/x".to_owned(), InvalidFormat),
            ("[::1]x/y".to_owned(), InvalidFormat),
            ("::1/x".to_owned(), InvalidFormat),
            ("[::1]:5000".to_owned(), InvalidFormat),
            ("localhost:5000/".to_owned(), InvalidFormat),
            // distribution would take these as domain-less names; Berth refuses them.
            ("a_b.c/foo".to_owned(), InvalidFormat),
            ("A_b.c/foo".to_owned(), ContainsUppercase),
            ("a".repeat(256), NameTooLong),
            (format!("example.com/{}", "a".repeat(244)), NameTooLong),
            (
                HEX.to_owned(),
                HexName {
                    value: HEX.to_owned(),
                },
            ),
            (
                format!("busybox@sha256:{}", "a".repeat(40)),
                Digest(InvalidDigest::Length),
            ),
            (
                format!("busybox@sha256:{}", HEX.to_uppercase()),
                Digest(InvalidDigest::Format),
            ),
            (
                format!("busybox@md5:{}", "a".repeat(32)),
                Digest(InvalidDigest::Unsupported {
                    algorithm: "md5".to_owned(),
                }),
            ),
            (
                format!("busybox:1@sha384:{}", "a".repeat(96)),
                Digest(InvalidDigest::Unsupported {
                    algorithm: "sha384".to_owned(),
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(err(&input), want, "error for {input:?}");
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            err("Busybox").to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(err("a//b").to_string(), "invalid reference format");
        assert_eq!(
            err(&"a".repeat(256)).to_string(),
            "repository name must not be more than 255 characters"
        );
        assert_eq!(
            err(HEX).to_string(),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(
            err(&format!("x@sha256:{}", "a".repeat(40))).to_string(),
            "invalid checksum digest length"
        );
        assert_eq!(
            err("A_b.c/foo").to_string(),
            "repository name must be lowercase"
        );
        assert_eq!(err("X").kind(), crate::ErrorKind::InvalidArgument);
    }

    #[test]
    fn name_length_limit_counts_the_domain() {
        // "docker.io/library/" is 18 characters.
        let at_limit = "a".repeat(NAME_TOTAL_LENGTH_MAX - 18);
        let r = ImageRef::parse_normalized(&format!("{at_limit}:tag")).unwrap();
        assert_eq!(r.name().len(), NAME_TOTAL_LENGTH_MAX);
        let over = "a".repeat(NAME_TOTAL_LENGTH_MAX - 17);
        assert_eq!(err(&over), ReferenceError::NameTooLong);
        // The tag does not count.
        assert!(ImageRef::parse_normalized(&format!("{at_limit}:{}", "t".repeat(128))).is_ok());
    }

    #[test]
    fn tags_and_defaults() {
        let r = ImageRef::parse_normalized("busybox").unwrap();
        assert!(r.is_name_only());
        assert_eq!(r.tag(), None);
        let latest = r.clone().with_default_tag();
        assert_eq!(latest.tag(), Some("latest"));
        assert_eq!(latest.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(latest.familiar_string(), "busybox:latest");

        let tagged = ImageRef::parse_normalized("busybox:1").unwrap();
        assert_eq!(tagged.clone().with_default_tag(), tagged);
        let digested = ImageRef::parse_normalized(&format!("busybox@sha256:{HEX}")).unwrap();
        assert_eq!(digested.clone().with_default_tag(), digested);

        let both = ImageRef::parse_normalized(&format!("busybox:1@sha256:{HEX}")).unwrap();
        assert_eq!(both.clone().without_tag(), digested);
        assert_eq!(both.clone().without_digest(), tagged);
        assert_eq!(both.clone().name_only(), r);
        assert_eq!(digested.clone().with_tag("1").unwrap(), both);
        assert_eq!(tagged.clone().with_digest(d(HEX)), both);
        assert_eq!(
            r.clone().with_tag("2.0").unwrap().to_string(),
            "docker.io/library/busybox:2.0"
        );
        assert_eq!(
            r.clone().with_tag("bad tag"),
            Err(ReferenceError::InvalidTag)
        );
        assert_eq!(r.clone().with_tag(""), Err(ReferenceError::InvalidTag));
    }

    #[test]
    fn parse_docker_ref() {
        let cases = [
            (
                "busybox".to_owned(),
                "docker.io/library/busybox:latest".to_owned(),
            ),
            (
                "busybox:1".to_owned(),
                "docker.io/library/busybox:1".to_owned(),
            ),
            (
                format!("busybox:1@sha256:{HEX}"),
                format!("docker.io/library/busybox@sha256:{HEX}"),
            ),
            (
                format!("localhost:5000/x@sha256:{HEX}"),
                format!("localhost:5000/x@sha256:{HEX}"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                ImageRef::parse_docker_ref(&input).unwrap().to_string(),
                want
            );
        }
        assert!(ImageRef::parse_docker_ref("Busybox").is_err());
    }

    #[test]
    fn registry_host() {
        let hub = ImageRef::parse_normalized("busybox").unwrap();
        assert_eq!(hub.registry_host(), DOCKER_HUB_REGISTRY_HOST);
        assert_eq!(hub.repository_for_registry(), "library/busybox");
        let legacy = ImageRef::parse_normalized("index.docker.io/user/x").unwrap();
        assert!(legacy.is_docker_hub());
        assert_eq!(legacy.registry_host(), "registry-1.docker.io");
        let local = ImageRef::parse_normalized("localhost:5000/a/b").unwrap();
        assert!(!local.is_docker_hub());
        assert_eq!(local.registry_host(), "localhost:5000");
        assert_eq!(local.repository_for_registry(), "a/b");
        let v6 = ImageRef::parse_normalized("[::1]:5000/x").unwrap();
        assert_eq!(v6.registry_host(), "[::1]:5000");
    }

    #[test]
    fn ids() {
        let cases = [
            (HEX.to_owned(), true),
            (format!("sha256:{HEX}"), true),
            (HEX.to_uppercase(), false),
            (HEX[..63].to_owned(), false),
            (format!("{HEX}0"), false),
            (format!("sha512:{HEX}{HEX}"), false),
            (format!("sha256:{}", &HEX[..12]), false),
            ("busybox".to_owned(), false),
            (String::new(), false),
        ];
        for (input, want) in cases {
            assert_eq!(ImageRef::looks_like_id(&input), want, "{input:?}");
        }
    }

    #[test]
    fn any_reference() {
        let sha512 = format!("sha512:{HEX}{HEX}");
        assert_eq!(AnyReference::parse(HEX), Ok(AnyReference::Id(d(HEX))));
        assert_eq!(
            format!("sha256:{HEX}").parse::<AnyReference>(),
            Ok(AnyReference::Id(d(HEX)))
        );
        assert_eq!(
            AnyReference::parse(&sha512),
            Ok(AnyReference::Id(sha512.parse().unwrap()))
        );
        assert_eq!(
            AnyReference::parse("busybox:1"),
            Ok(AnyReference::Named(
                ImageRef::parse_normalized("busybox:1").unwrap()
            ))
        );
        assert_eq!(
            AnyReference::parse("Busybox"),
            Err(ReferenceError::NotLowercase {
                name: "library/Busybox".to_owned()
            })
        );
    }

    #[test]
    fn tag_validation() {
        let max = "a".repeat(128);
        for ok in ["latest", "1.36", "_x", "A", "a-b.c_D", "0", max.as_str()] {
            assert_eq!(validate_tag(ok), Ok(()), "{ok:?}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            ".a",
            "-a",
            "a:b",
            "a/b",
            "a@b",
            "a b",
            "ä",
            long.as_str(),
        ] {
            assert_eq!(
                validate_tag(bad),
                Err(ReferenceError::InvalidTag),
                "{bad:?}"
            );
        }
        assert_eq!(ReferenceError::InvalidTag.to_string(), "invalid tag format");
    }

    #[test]
    fn serde_rejects_bad_strings() {
        let e = serde_json::from_str::<ImageRef>("\"Busybox\"").unwrap_err();
        assert!(e.to_string().contains("must be lowercase"), "{e}");
        let r: ImageRef = serde_json::from_str("\"busybox:1\"").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:1");
    }
}

//! Platforms (`linux/amd64`, `linux/arm64/v8`) and choosing one from an index.

use std::fmt;

use crate::ImagesError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Platform {
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) variant: Option<String>,
}

impl Platform {
    /// This machine's platform, in Go's names.
    pub(crate) fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "arm" => "arm",
            "s390x" => "s390x",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".to_owned(),
            arch: arch.to_owned(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]`; empty means the host's.
    pub(crate) fn parse(s: &str) -> Result<Platform, ImagesError> {
        if s.trim().is_empty() {
            return Ok(Platform::host());
        }
        let lower = s.trim().to_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let bad = || {
            ImagesError::InvalidArgument(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        match parts.as_slice() {
            [os] if !os.is_empty() => Ok(Platform {
                os: (*os).to_owned(),
                ..Platform::host()
            }),
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: (*os).to_owned(),
                arch: normalize_arch(arch).to_owned(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: (*os).to_owned(),
                    arch: normalize_arch(arch).to_owned(),
                    variant: Some((*variant).to_owned()),
                })
            }
            _ => Err(bad()),
        }
    }

    /// Whether an index entry's platform fits this one.
    pub(crate) fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.arch == normalize_arch(arch)
            && match (&self.variant, variant) {
                (Some(want), Some(v)) => want == v,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "arm64", None));
        let p = Platform::parse("linux/x86_64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert!(p.matches("linux", "amd64", None));
        assert!(p.matches("linux", "amd64", Some("v3")));
        assert!(Platform::parse("linux//").is_err());
        assert_eq!(Platform::parse("").unwrap(), Platform::host());
    }
}

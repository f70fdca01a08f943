use std::{fmt, str::FromStr};

/// A malformed identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {what}: {value:?}")]
pub struct InvalidId {
    pub what: &'static str,
    pub value: String,
}

/// The engine's identity, shown as `ID` in `/info`: a UUID kept under the data root so it is
/// stable across restarts (dockerd keeps its own in `engine-id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineId(String);

impl EngineId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EngineId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == lens.len()
            && groups.iter().zip(lens).all(|(g, n)| {
                g.len() == n
                    && g.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            });
        if ok {
            Ok(EngineId(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "engine id",
                value: s.to_owned(),
            })
        }
    }
}

impl fmt::Display for EngineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_id_is_a_lowercase_uuid() {
        let id: EngineId = "0b7c5b52-1d3a-4f8e-9a55-0c0d7e7f1a2b".parse().unwrap();
        assert_eq!(id.as_str(), "0b7c5b52-1d3a-4f8e-9a55-0c0d7e7f1a2b");
        assert!(
            "0B7C5B52-1d3a-4f8e-9a55-0c0d7e7f1a2b"
                .parse::<EngineId>()
                .is_err()
        );
        assert!("not-a-uuid".parse::<EngineId>().is_err());
        assert!("".parse::<EngineId>().is_err());
    }
}

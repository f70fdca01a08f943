//! The seccomp filter the runtime compiled for a container (Docker's default profile or the
//! one given with `--security-opt seccomp=`), which the shim only loads: classic BPF
//! instructions, in the JSON as one hex string of `struct sock_filter`s (8 bytes each,
//! little-endian fields: code u16, jt u8, jf u8, k u32).
//!
//! ```json
//! "seccomp": {"filter": "200000000400000015000100…", "flags": 0}
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub const MAX_FILTER_LEN: usize = 4096;

/// `SECCOMP_FILTER_FLAG_TSYNC | _LOG | _SPEC_ALLOW`: the flags a profile may ask for.
pub const KNOWN_FLAGS: u32 = 1 | 2 | 4;

/// One `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A compiled filter and the `SECCOMP_FILTER_FLAG_*` to load it with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    #[serde(serialize_with = "to_hex", deserialize_with = "from_hex")]
    pub filter: Vec<BpfInsn>,
    #[serde(default)]
    pub flags: u32,
}

impl Seccomp {
    pub fn validate(&self) -> Result<(), String> {
        if self.filter.is_empty() || self.filter.len() > MAX_FILTER_LEN {
            return Err(format!(
                "seccomp filter of {} instructions (1 to {MAX_FILTER_LEN})",
                self.filter.len()
            ));
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(format!("unknown seccomp flags {:#x}", self.flags));
        }
        Ok(())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn to_hex<S: Serializer>(filter: &[BpfInsn], s: S) -> Result<S::Ok, S::Error> {
    let mut out = Vec::with_capacity(filter.len() * 16);
    for i in filter {
        let mut bytes = [0u8; 8];
        bytes[..2].copy_from_slice(&i.code.to_le_bytes());
        bytes[2] = i.jt;
        bytes[3] = i.jf;
        bytes[4..].copy_from_slice(&i.k.to_le_bytes());
        for b in bytes {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
    }
    s.serialize_str(std::str::from_utf8(&out).map_err(serde::ser::Error::custom)?)
}

fn from_hex<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BpfInsn>, D::Error> {
    use serde::de::Error;
    let s = String::deserialize(d)?;
    let s = s.as_bytes();
    if !s.len().is_multiple_of(16) {
        return Err(D::Error::custom(
            "a seccomp filter is 16 hex digits per instruction",
        ));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(D::Error::custom("invalid hex in the seccomp filter")),
    };
    s.chunks_exact(16)
        .map(|c| {
            let mut b = [0u8; 8];
            for (j, out) in b.iter_mut().enumerate() {
                *out = nibble(c[2 * j])? << 4 | nibble(c[2 * j + 1])?;
            }
            Ok(BpfInsn {
                code: u16::from_le_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_round_trips_as_hex() {
        let s = Seccomp {
            filter: vec![
                BpfInsn {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 4,
                },
                BpfInsn {
                    code: 0x15,
                    jt: 1,
                    jf: 255,
                    k: 0xc000_003e,
                },
                BpfInsn {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000,
                },
            ],
            flags: 2,
        };
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(
            j["filter"],
            "20000000040000001500 01ff3e0000c0060000000000ff7f".replace(' ', "")
        );
        assert_eq!(serde_json::from_value::<Seccomp>(j).unwrap(), s);
        assert!(s.validate().is_ok());
        let bad = |v| serde_json::from_value::<Seccomp>(v).is_err();
        assert!(bad(serde_json::json!({"filter": "2000"})));
        assert!(bad(serde_json::json!({"filter": "zz00000004000000"})));
        assert!(
            Seccomp {
                filter: vec![],
                flags: 0
            }
            .validate()
            .is_err()
        );
        assert!(Seccomp { flags: 8, ..s }.validate().is_err());
    }
}

//! Device cgroup rules: which device nodes a container may create (`m`), read (`r`) and write
//! (`w`). The list is applied in order, a later rule overriding an earlier one for the devices
//! both match; it starts from nothing allowed.

use serde::{Deserialize, Serialize};

/// `c`, `b` or `a` (both).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum DeviceKind {
    #[serde(rename = "a")]
    All,
    #[serde(rename = "c")]
    Char,
    #[serde(rename = "b")]
    Block,
}

/// One rule: `allow` or deny `access` (a subset of `rwm`) to the devices of `kind` with this
/// major and minor number (None: any).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type")]
    pub kind: DeviceKind,
    #[serde(default)]
    pub major: Option<u32>,
    #[serde(default)]
    pub minor: Option<u32>,
    pub access: String,
}

impl DeviceRule {
    /// An allowing rule.
    pub fn allow(kind: DeviceKind, major: Option<u32>, minor: Option<u32>, access: &str) -> Self {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access: access.to_owned(),
        }
    }

    /// The v1 devices controller's form: `c 1:3 rwm`, `b *:* m`, `a`.
    pub fn cgroup_v1(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_owned(), |v| v.to_string());
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        format!("{kind} {}:{} {}", n(self.major), n(self.minor), self.access)
    }

    /// The access as bits: m 1, r 2, w 4 (the kernel's BPF_DEVCG_ACC_*).
    pub fn access_bits(&self) -> u32 {
        self.access.chars().fold(0, |acc, c| {
            acc | match c {
                'm' => 1,
                'r' => 2,
                'w' => 4,
                _ => 0,
            }
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        let ok = !self.access.is_empty()
            && self.access.len() <= 3
            && self.access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
        if !ok {
            return Err(format!(
                "device rule {}: access must be a subset of rwm",
                self.cgroup_v1()
            ));
        }
        if self.kind == DeviceKind::All && (self.major.is_some() || self.minor.is_some()) {
            return Err(format!(
                "device rule {}: type a takes no numbers",
                self.cgroup_v1()
            ));
        }
        Ok(())
    }
}

/// Docker's default device rules (moby's default spec with runc's allowed devices): any device
/// node may be created, and null, zero, full, random, urandom, tty, console, ptmx and the
/// container's pseudo-terminals used.
pub fn default_device_rules() -> Vec<DeviceRule> {
    use DeviceKind::{Block, Char};
    let mut rules = vec![
        DeviceRule::allow(Char, None, None, "m"),
        DeviceRule::allow(Block, None, None, "m"),
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(DeviceRule::allow(Char, Some(major), Some(minor), "rwm"));
    }
    rules.push(DeviceRule::allow(Char, Some(136), None, "rwm"));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let r = default_device_rules();
        assert_eq!(r[0].cgroup_v1(), "c *:* m");
        assert_eq!(r[2].cgroup_v1(), "c 1:3 rwm");
        assert_eq!(r.last().unwrap().cgroup_v1(), "c 136:* rwm");
        assert_eq!(r[2].access_bits(), 7);
        assert_eq!(r[0].access_bits(), 1);
        assert!(r.iter().all(|r| r.validate().is_ok()));
        let bad = DeviceRule::allow(DeviceKind::Char, None, None, "x");
        assert!(bad.validate().is_err());
        let json = serde_json::to_string(&r[2]).unwrap();
        assert_eq!(
            json,
            r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}"#
        );
    }
}

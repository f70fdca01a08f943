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

    /// Docker's `--device-cgroup-rule` form, `c 42:* rmw` (type, major:minor, access); an
    /// allowing rule.
    pub fn parse(rule: &str) -> Result<DeviceRule, String> {
        let bad = || format!("invalid device cgroup format '{rule}'");
        let mut parts = rule.split(' ');
        let (Some(kind), Some(nums), Some(access), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let kind = match kind {
            "a" => DeviceKind::All,
            "c" => DeviceKind::Char,
            "b" => DeviceKind::Block,
            _ => return Err(bad()),
        };
        let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
        let num = |n: &str| -> Result<Option<u32>, String> {
            match n {
                "*" => Ok(None),
                n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    n.parse().map(Some).map_err(|_| bad())
                }
                _ => Err(bad()),
            }
        };
        let ok_access = !access.is_empty()
            && access.len() <= 3
            && access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
        if !ok_access {
            return Err(bad());
        }
        Ok(DeviceRule {
            allow: true,
            kind,
            // Docker's `a *:* rwm` names every device: the numbers are dropped for type a.
            major: if kind == DeviceKind::All {
                None
            } else {
                num(major)?
            },
            minor: if kind == DeviceKind::All {
                None
            } else {
                num(minor)?
            },
            access: access.to_owned(),
        })
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

/// A device node made in the container (`--device`, `--privileged`), as it is on the host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceNode {
    /// Absolute, in the container.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits (0o660).
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl DeviceNode {
    pub fn validate(&self) -> Result<(), String> {
        let ok = self.path.starts_with('/')
            && !self.path.split('/').any(|c| c == "..")
            && !self.path.contains('\0');
        if !ok {
            return Err(format!(
                "device path {:?} is not absolute and plain",
                self.path
            ));
        }
        if self.kind == DeviceKind::All {
            return Err(format!("device {:?}: type must be c or b", self.path));
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
    fn docker_rule_strings() {
        let r = DeviceRule::parse("c 42:* rmw").unwrap();
        assert_eq!(r.cgroup_v1(), "c 42:* rmw");
        assert_eq!(
            DeviceRule::parse("a *:* rwm").unwrap().kind,
            DeviceKind::All
        );
        for bad in [
            "c 42 rwm",
            "x 1:1 r",
            "c 1:1 rwx",
            "c 1:1",
            "c -1:1 r",
            "c 1:1 r extra",
        ] {
            assert_eq!(
                DeviceRule::parse(bad).unwrap_err(),
                format!("invalid device cgroup format '{bad}'")
            );
        }
    }

    #[test]
    fn nodes_are_checked() {
        let n = DeviceNode {
            path: "/dev/xvdc".to_owned(),
            kind: DeviceKind::Block,
            major: 8,
            minor: 0,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
        };
        assert!(n.validate().is_ok());
        let bad = DeviceNode {
            path: "/dev/../etc/x".to_owned(),
            ..n.clone()
        };
        assert!(bad.validate().is_err());
    }

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

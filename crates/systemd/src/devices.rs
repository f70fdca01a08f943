//! A container's device rules as systemd's `DevicePolicy` and `DeviceAllow` (as runc's
//! systemd managers send them): systemd writes the devices controller of the scopes it
//! manages, so it must be told the same allow list that the engine writes, or it would open
//! every device the next time it applies the unit's properties.

use berth_bundle::{DeviceKind, DeviceRule};

use crate::{Error, properties::Prop};

/// `DevicePolicy` and `DeviceAllow` for `rules` (applied in order from nothing allowed):
/// `strict` with one entry per rule, or `auto` with no entry when a rule allows everything
/// (`--privileged`). A rule systemd cannot express is refused by name.
pub fn device_properties(rules: &[DeviceRule]) -> Result<Vec<(&'static str, Prop)>, Error> {
    let all = rules.iter().any(|r| {
        r.allow
            && r.kind == DeviceKind::All
            && r.major.is_none()
            && r.minor.is_none()
            && ['r', 'w', 'm'].iter().all(|c| r.access.contains(*c))
    });
    if all {
        return Ok(vec![
            ("DevicePolicy", Prop::Str("auto".to_owned())),
            ("DeviceAllow", Prop::DeviceAllow(Vec::new())),
        ]);
    }
    let mut allow = Vec::new();
    for r in rules {
        let text = r.cgroup_v1();
        let refuse = |why: &str| {
            Err(Error::Unsupported(format!(
                "device cgroup rule {text:?}: {why} with the systemd cgroup driver \
                 (native.cgroupdriver=systemd)"
            )))
        };
        if !r.allow {
            return refuse("systemd's DeviceAllow has no deny rules");
        }
        let kinds: &[&str] = match r.kind {
            DeviceKind::Char => &["char"],
            DeviceKind::Block => &["block"],
            DeviceKind::All => &["char", "block"],
        };
        for kind in kinds {
            let path = match (r.major, r.minor) {
                (None, None) => format!("{kind}-*"),
                (Some(major), None) => format!("{kind}-{major}"),
                (Some(major), Some(minor)) => format!("/dev/{kind}/{major}:{minor}"),
                (None, Some(_)) => {
                    return refuse("systemd cannot allow one minor number of every major");
                }
            };
            allow.push((path, r.access.clone()));
        }
    }
    Ok(vec![
        ("DevicePolicy", Prop::Str("strict".to_owned())),
        ("DeviceAllow", Prop::DeviceAllow(allow)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_defaults_become_an_allow_list() {
        let p = device_properties(&berth_bundle::default_device_rules()).unwrap();
        assert_eq!(p[0], ("DevicePolicy", Prop::Str("strict".into())));
        let ("DeviceAllow", Prop::DeviceAllow(list)) = &p[1] else {
            panic!("{p:?}")
        };
        let has = |path: &str, perms: &str| list.contains(&(path.to_owned(), perms.to_owned()));
        assert!(has("char-*", "m") && has("block-*", "m"), "{list:?}");
        assert!(has("/dev/char/1:3", "rwm"), "{list:?}");
        assert!(has("char-136", "rwm"), "{list:?}");
        assert_eq!(list.len(), 11);
    }

    #[test]
    fn privileged_allows_all_and_the_inexpressible_is_refused() {
        let all = [DeviceRule::allow(DeviceKind::All, None, None, "rwm")];
        assert_eq!(
            device_properties(&all).unwrap(),
            vec![
                ("DevicePolicy", Prop::Str("auto".into())),
                ("DeviceAllow", Prop::DeviceAllow(Vec::new())),
            ]
        );
        let e = device_properties(&[DeviceRule::parse("c *:5 rwm").unwrap()]).unwrap_err();
        assert!(e.to_string().contains("\"c *:5 rwm\""), "{e}");
        assert!(e.to_string().contains("native.cgroupdriver=systemd"), "{e}");
        let mut deny = DeviceRule::allow(DeviceKind::Char, Some(1), Some(3), "w");
        deny.allow = false;
        assert!(device_properties(&[deny]).is_err());
    }
}

//! Capabilities: Docker's default set (or the config's list) in the bounding set; root in the
//! container also gets it as effective and permitted; another user gets none effective, as
//! setuid(2) clears them. Inheritable and ambient are empty (Docker since 23.0,
//! CVE-2022-24769).

use caps::{CapSet, Capability, CapsHashSet};

use crate::{config::DEFAULT_CAPABILITIES, error::StartError};

/// The set to keep: the configured names, or Docker's default; of those, the ones the shim's
/// own bounding set has (`--cap-add ALL` and `--privileged` give what the host has).
pub(crate) fn wanted(configured: Option<&[String]>) -> CapsHashSet {
    let names: Vec<&str> = match configured {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_CAPABILITIES.to_vec(),
    };
    names
        .iter()
        .filter_map(|n| n.parse::<Capability>().ok())
        .filter(|c| caps::has_cap(None, CapSet::Bounding, *c).unwrap_or(true))
        .collect()
}

fn fail(what: &str, e: caps::errors::CapsError) -> StartError {
    StartError::other(format!("{what}: {}", crate::error::GoText::go_text(&e)))
}

/// Drops everything outside `keep` from the bounding set. Needs CAP_SETPCAP: call it before
/// changing user.
pub(crate) fn limit_bounding(keep: &CapsHashSet) -> Result<(), StartError> {
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| fail("dropping from the bounding set", e))?;
        }
    }
    Ok(())
}

/// After the user change: effective and permitted become `keep` for root (a no-op for other
/// users, who have none left), inheritable and ambient empty.
pub(crate) fn apply(keep: &CapsHashSet, uid: u32) -> Result<(), StartError> {
    if uid == 0 {
        caps::set(None, CapSet::Effective, keep).map_err(|e| fail("effective set", e))?;
        caps::set(None, CapSet::Permitted, keep).map_err(|e| fail("permitted set", e))?;
    }
    caps::clear(None, CapSet::Inheritable).map_err(|e| fail("inheritable set", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| fail("ambient set", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_dockers() {
        let set = wanted(None);
        assert_eq!(set.len(), 14);
        assert!(set.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(!set.contains(&Capability::CAP_SYS_ADMIN));
        let custom = wanted(Some(&["CAP_SYS_ADMIN".to_owned()]));
        assert_eq!(custom.len(), 1);
    }
}

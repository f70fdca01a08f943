//! `config.json`: what the runtime writes into the bundle directory before running
//! `berth-shim start --bundle DIR`. The types, their JSON and the structural checks are
//! `berth_bundle`'s (shared with the runtime); here are the checks only the shim can make
//! (capability names, rlimit resources) and [`load`], which runs them all.

use std::path::Path;

pub use berth_bundle::config::{
    BindMount, CONFIG_FILE, Config, ConsoleSize, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS,
    DEFAULT_PATH, DEFAULT_READONLY_PATHS, EtcFiles, LogConfig, Mount, Namespaces, NetNs, Process,
    Rlimit, SOCKET_FILE, TmpfsMount, User, config_path, validate_cgroup_path, validate_process,
};
pub use berth_bundle::seccomp::Seccomp;

use crate::error::ShimError;

/// Reads `<bundle>/config.json` and validates it: [`Config::read`]'s structural checks, then
/// [`validate`]'s.
pub fn load(bundle: &Path) -> Result<Config, ShimError> {
    let cfg = Config::read(bundle)?;
    validate(&cfg).map_err(|reason| ShimError::Config {
        path: config_path(bundle),
        reason,
    })?;
    Ok(cfg)
}

/// Everything [`Config::validate`] checks, and the names the shim resolves: capabilities
/// (`caps`) and rlimit resources (`rlimits::resource`).
pub fn validate(cfg: &Config) -> Result<(), String> {
    cfg.validate()?;
    if let Some(caps) = &cfg.capabilities {
        for c in caps {
            c.parse::<caps::Capability>()
                .map_err(|_| format!("unknown capability {c:?}"))?;
        }
    }
    for r in &cfg.rlimits {
        crate::rlimits::resource(&r.kind)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "id": "abc123def4567890",
            "rootfs": {"type": "overlay", "source": "overlay", "options": ["lowerdir=/a"]},
            "process": {"args": ["sh"]},
            "cgroup_path": "berth/abc123def4567890"
        })
    }

    #[test]
    fn rejects_bad_names() {
        for (key, val) in [
            ("capabilities", serde_json::json!(["CAP_NOPE"])),
            (
                "rlimits",
                serde_json::json!([{"type": "bogus", "soft": 1, "hard": 1}]),
            ),
            // The structural checks too.
            (
                "rlimits",
                serde_json::json!([{"type": "nofile", "soft": 2, "hard": 1}]),
            ),
            ("cgroup_path", serde_json::json!("a/../b")),
        ] {
            let mut j = minimal();
            j[key] = val.clone();
            let cfg: Config = serde_json::from_value(j).unwrap();
            assert!(validate(&cfg).is_err(), "{key}={val} accepted");
        }
        let mut j = minimal();
        j["capabilities"] = serde_json::json!(["CAP_CHOWN", "CAP_NET_RAW"]);
        j["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}]);
        validate(&serde_json::from_value(j).unwrap()).unwrap();
    }

    #[test]
    fn load_reports_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ShimError::Io { .. }), "{e}");
        let mut j = minimal();
        j["capabilities"] = serde_json::json!(["CAP_NOPE"]);
        std::fs::write(dir.path().join(CONFIG_FILE), j.to_string()).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ShimError::Config { .. }), "{e}");
        assert!(e.to_string().contains("unknown capability"), "{e}");
        j = minimal();
        std::fs::write(dir.path().join(CONFIG_FILE), j.to_string()).unwrap();
        assert_eq!(load(dir.path()).unwrap().id, "abc123def4567890");
    }
}

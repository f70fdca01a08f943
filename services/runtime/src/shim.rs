//! Talking to berth-shim: the bundle's config.json, `berth-shim start`, and the client on the
//! shim's socket (`berth_shim_proto`).

use std::path::{Path, PathBuf};

use berth_shim_proto::ShimClient;
use serde_json::{Value, json};

use crate::container_error::ContainerError;

/// Where the shim binary is: `BERTH_SHIM_BIN`, or beside our own executable.
pub(crate) fn shim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM_BIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("berth-shim")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("berth-shim"))
}

/// A client on the shim's socket; fails when the shim does not accept connections.
pub(crate) async fn connect(address: &str) -> Result<ShimClient, ContainerError> {
    ShimClient::connect(address)
        .await
        .map_err(|e| ContainerError::Internal(anyhow::anyhow!("connect to the shim: {e}")))
}

/// The address a running shim wrote into its bundle.
pub(crate) fn address(bundle: &Path) -> Option<String> {
    std::fs::read_to_string(bundle.join("address"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The exit the shim recorded in `exit.json`: (exit code, exited at, oom killed).
pub(crate) fn exit_file(bundle: &Path) -> Option<(i64, String, bool)> {
    let v: Value = serde_json::from_slice(&std::fs::read(bundle.join("exit.json")).ok()?).ok()?;
    Some((
        v["exit_code"].as_i64()?,
        v["exited_at"].as_str().unwrap_or_default().to_owned(),
        v["oom_killed"].as_bool().unwrap_or(false),
    ))
}

/// Why `berth-shim start` failed: (kind, message) from `start-error.json`.
pub(crate) fn start_error(bundle: &Path) -> Option<(String, String)> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("start-error.json")).ok()?).ok()?;
    Some((
        v["kind"].as_str().unwrap_or("other").to_owned(),
        v["message"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// Runs `berth-shim start --bundle DIR`: the address, or (kind, message).
pub(crate) async fn start(bundle: &Path) -> Result<String, (String, String)> {
    let out = tokio::process::Command::new(shim_binary())
        .args(["start", "--bundle"])
        .arg(bundle)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| ("other".to_owned(), format!("running berth-shim: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    Err(start_error(bundle).unwrap_or_else(|| {
        let kind = match out.status.code() {
            Some(127) => "not-found",
            Some(126) => "permission",
            _ => "other",
        };
        (
            kind.to_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )
    }))
}

/// What goes into config.json besides the process.
pub(crate) struct BundleSpec<'a> {
    pub(crate) id: &'a str,
    pub(crate) rootfs: &'a Value,
    /// The shim's process JSON: args, env, cwd, user, terminal, stdin, console_size.
    pub(crate) process: Value,
    pub(crate) hostname: String,
    /// docker run --init.
    pub(crate) init: bool,
    pub(crate) net: Value,
    pub(crate) log_path: &'a Path,
    pub(crate) max_size: u64,
    pub(crate) max_file: u32,
    pub(crate) stop_signal: String,
    /// Short, as unix socket paths must be.
    pub(crate) socket: PathBuf,
}

/// Writes the bundle: the etc files and config.json.
pub(crate) fn write_bundle(bundle: &Path, spec: &BundleSpec<'_>) -> Result<(), ContainerError> {
    std::fs::create_dir_all(bundle)?;
    for f in ["exit.json", "start-error.json", "address"] {
        let _ = std::fs::remove_file(bundle.join(f));
    }
    let hostname = &spec.hostname;
    let etc = bundle.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(etc.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(
        etc.join("hosts"),
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
        ),
    )?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(etc.join("resolv.conf"), resolv)?;
    if let Some(dir) = spec.log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let config = json!({
        "id": spec.id,
        "rootfs": spec.rootfs,
        "process": spec.process,
        "init": spec.init,
        "hostname": hostname,
        "namespaces": {"net": spec.net},
        "etc_files": {
            "hostname": etc.join("hostname"),
            "hosts": etc.join("hosts"),
            "resolv_conf": etc.join("resolv.conf"),
        },
        "cgroup_path": format!("berth/{}", spec.id),
        "log": {"path": spec.log_path, "max_size": spec.max_size, "max_file": spec.max_file},
        "stop_signal": spec.stop_signal,
        "socket": spec.socket,
        // Held before exec until the Start call, so that attachers miss no output.
        "wait_for_start": true,
    });
    if let Some(dir) = spec.socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    berth_service::write_atomic(
        &bundle.join("config.json"),
        &serde_json::to_vec_pretty(&config).map_err(anyhow::Error::from)?,
        0o600,
    )?;
    Ok(())
}

/// Docker's size strings: `10m`, `1g`, `512k`, `100`.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_lowercase();
    let s = s.trim_end_matches('b');
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }
}

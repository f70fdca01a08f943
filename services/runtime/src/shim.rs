//! Talking to berth-shim: the bundle's config.json, `berth-shim start`, and the client on the
//! shim's socket (`berth_shim_proto`).

use std::path::{Path, PathBuf};

use berth_shim_proto::ShimClient;

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
    let e = berth_bundle::ExitStatus::read(bundle).ok()??;
    Some((i64::from(e.exit_code), e.exited_at, e.oom_killed))
}

/// Why `berth-shim start` failed: (kind, message) from `start-error.json`.
pub(crate) fn start_error(bundle: &Path) -> Option<(String, String)> {
    let e = berth_bundle::StartError::read(bundle).ok()??;
    Some((e.kind.as_str().to_owned(), e.message))
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
        let kind = berth_bundle::StartErrorKind::from_exit_code(out.status.code().unwrap_or(1));
        (
            kind.as_str().to_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )
    }))
}

/// Writes the bundle: the etc files, the log and socket directories, and config.json. `etc`:
/// the resolv.conf and hosts the network service made for the container; None: the host's
/// resolv.conf and a hosts file with loopback only (networks none and host).
pub(crate) fn write_bundle(
    bundle: &Path,
    mut config: berth_bundle::Config,
    etc_files: Option<&crate::network::EtcContent>,
) -> Result<(), ContainerError> {
    std::fs::create_dir_all(bundle)?;
    for f in [
        berth_bundle::EXIT_FILE,
        berth_bundle::START_ERROR_FILE,
        berth_bundle::ADDRESS_FILE,
    ] {
        let _ = std::fs::remove_file(bundle.join(f));
    }
    let hostname = config.effective_hostname().to_owned();
    let etc = bundle.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(etc.join("hostname"), format!("{hostname}\n"))?;
    match etc_files {
        Some(f) => {
            std::fs::write(etc.join("hosts"), &f.hosts)?;
            std::fs::write(etc.join("resolv.conf"), &f.resolv_conf)?;
        }
        None => {
            std::fs::write(
                etc.join("hosts"),
                format!(
                    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
                ),
            )?;
            let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            std::fs::write(etc.join("resolv.conf"), resolv)?;
        }
    }
    config.etc_files = berth_bundle::EtcFiles {
        hostname: Some(etc.join("hostname")),
        hosts: Some(etc.join("hosts")),
        resolv_conf: Some(etc.join("resolv.conf")),
    };
    if let Some(dir) = config.log.as_ref().and_then(|l| l.path.parent()) {
        std::fs::create_dir_all(dir)?;
    }
    if let Some(dir) = config.socket.as_ref().and_then(|s| s.parent()) {
        std::fs::create_dir_all(dir)?;
    }
    config
        .write(bundle)
        .map_err(|e| ContainerError::Internal(e.into()))?;
    Ok(())
}

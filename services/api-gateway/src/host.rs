//! Facts about the host for `/info` and `/version`, read once at start.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub operating_system: String,
    pub os_version: String,
    pub ncpu: usize,
    pub mem_total: u64,
}

impl HostFacts {
    pub fn read() -> HostFacts {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let (operating_system, os_version) = parse_os_release(&os_release);
        HostFacts {
            hostname: field(|u| u.nodename()),
            kernel: field(|u| u.release()),
            arch: field(|u| u.machine()),
            operating_system,
            os_version,
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(Path::new("/proc/meminfo")).unwrap_or(0),
        }
    }

    /// Go's GOARCH name for this machine (`/version` reports it).
    pub fn go_arch(&self) -> &str {
        match self.arch.as_str() {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "armv7l" => "arm",
            other => other,
        }
    }
}

/// `PRETTY_NAME` and `VERSION_ID` of os-release.
fn parse_os_release(text: &str) -> (String, String) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
    };
    (
        get("PRETTY_NAME").unwrap_or_else(|| "Linux".to_owned()),
        get("VERSION_ID").unwrap_or_default(),
    )
}

fn mem_total(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let (name, version) = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(version, "12");
        assert_eq!(parse_os_release("").0, "Linux");
    }

    #[test]
    fn meminfo() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meminfo");
        std::fs::write(&p, "MemTotal:       24575772 kB\nMemFree: 1 kB\n").unwrap();
        assert_eq!(mem_total(&p), Some(24_575_772 * 1024));
    }

    #[test]
    fn this_host() {
        let h = HostFacts::read();
        assert!(!h.kernel.is_empty() && h.ncpu >= 1 && h.mem_total > 0);
    }
}

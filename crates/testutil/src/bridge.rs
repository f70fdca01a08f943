//! A bridge of the test's own for the reference dockerd: started with `--bridge none`, dockerd
//! deletes the host's `docker0` (another engine's), so it gets a bridge named `berthdk<pid>`
//! with an address of its own instead, removed on drop. Made with iproute2's `ip`, as a test
//! may.

use std::process::{Command, Stdio};

pub struct TestBridge {
    pub name: String,
}

fn ip(args: &[&str]) -> std::io::Result<()> {
    let st = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()?;
    if st.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("ip {args:?}: {st}")))
    }
}

impl TestBridge {
    /// `berthdk<n>` with 10.254.<n>.1/24, n from the process ID.
    pub fn create() -> std::io::Result<TestBridge> {
        let n = std::process::id() % 250 + 1;
        let name = format!("berthdk{n}");
        let _ = ip(&["link", "del", &name]);
        ip(&["link", "add", &name, "type", "bridge"])?;
        let b = TestBridge { name };
        ip(&["addr", "add", &format!("10.254.{n}.1/24"), "dev", &b.name])?;
        Ok(b)
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.name]);
    }
}

/// Whether the host has a link of this name.
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

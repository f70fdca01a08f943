//! What the benchmark reads from (and does to) the host: processes and mounts under a
//! directory, peak RSS, the page cache, the machine's description, and the host state the
//! engines must leave as they found it (network links, `ip_forward`, iptables).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

/// Polls `done` (with the workspace's backoff) until it is true or `timeout` has passed;
/// returns whether it became true. `timeout` must stay under the test patience (30 s).
pub(crate) fn poll_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    berth_testutil::eventually(what, || {
        if done() {
            Some(true)
        } else if Instant::now() >= deadline {
            Some(false)
        } else {
            None
        }
    })
}

pub(crate) use berth_testutil::processes_with;

/// Whether a process is still there (and not a zombie).
pub(crate) fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // pid (comm) S ...: the state follows the last ')'.
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// A process's parent's pid.
pub(crate) fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) S ppid ...
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `sig` to every process mentioning `needle`, then SIGKILL to those still there after
/// `grace`; returns the argv of every process it had to signal.
pub(crate) fn kill_processes_with(needle: &str, sig: Signal, grace: Duration) -> Vec<String> {
    let procs = processes_with(needle);
    for (pid, _) in &procs {
        let _ = nix::sys::signal::kill(Pid::from_raw(*pid), sig);
    }
    let gone = poll_until("processes to exit", grace, || {
        procs.iter().all(|(pid, _)| !alive(*pid))
    });
    if !gone {
        for (pid, _) in &procs {
            let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }
    procs
        .into_iter()
        .map(|(pid, argv)| format!("{pid} {}", argv.join(" ")))
        .collect()
}

/// Undoes the octal escapes of /proc/self/mountinfo (`\040` for a space, ...).
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push((v & 0xff) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or under `dir`, deepest first.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mount_path(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    out.dedup();
    out
}

/// Lazily unmounts everything at or under `dir` (`umount -R -l`); returns what was mounted.
pub(crate) fn unmount_under(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    // Stacked mounts need several passes.
    for _ in 0..8 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
            all.push(m);
        }
    }
    all.sort();
    all.dedup();
    all
}

/// A `VmHWM`/`VmRSS`-style field of /proc/<pid>/status, in KiB.
pub(crate) fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The memory of one process, in KiB: from /proc/<pid>/status and /proc/<pid>/smaps_rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcMem {
    /// `VmRSS`: every resident page it maps, shared ones (code, libc) counted in full.
    pub(crate) rss: u64,
    /// `VmHWM`: the peak of `VmRSS` since it started.
    pub(crate) hwm: u64,
    /// `RssAnon`: heap, stacks, written data.
    pub(crate) anon: u64,
    /// `RssFile`: mapped files (the binary's code and data, the shared libraries).
    pub(crate) file: u64,
    /// `Pss`: shared pages divided among the processes mapping them.
    pub(crate) pss: Option<u64>,
    /// `Private_Clean` + `Private_Dirty` (USS): what exiting would free.
    pub(crate) private: Option<u64>,
}

/// The memory of `pid` (`None` if it is gone).
pub(crate) fn proc_mem(pid: i32) -> Option<ProcMem> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let private = match (field("Private_Clean"), field("Private_Dirty")) {
        (Some(c), Some(d)) => Some(c + d),
        _ => None,
    };
    Some(ProcMem {
        rss: status_kib(pid, "VmRSS")?,
        hwm: status_kib(pid, "VmHWM")?,
        anon: status_kib(pid, "RssAnon")?,
        file: status_kib(pid, "RssFile")?,
        pss: field("Pss"),
        private,
    })
}

/// `sync; echo 3 > /proc/sys/vm/drop_caches`.
pub(crate) fn drop_caches() -> anyhow::Result<()> {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
        .map_err(|e| anyhow::anyhow!("writing /proc/sys/vm/drop_caches: {e} (run as root)"))
}

/// The machine the numbers were taken on.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) nproc: usize,
    pub(crate) cpu: String,
    pub(crate) mem_total_kib: u64,
    pub(crate) kernel: String,
    pub(crate) os: String,
    pub(crate) loadavg: String,
    pub(crate) filesystem: String,
}

impl Machine {
    pub(crate) fn read(tmp: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let os = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map_or_else(|| "unknown".to_owned(), |v| v.trim_matches('"').to_owned());
        let filesystem = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T"])
            .arg(tmp)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu,
            mem_total_kib,
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            os,
            loadavg: read_trimmed("/proc/loadavg"),
            filesystem,
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Host state that neither engine may change: network links, IP forwarding, iptables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostState {
    pub(crate) links: BTreeSet<String>,
    pub(crate) ip_forward: String,
    /// `iptables-save` without comments and counters, if iptables is installed.
    pub(crate) iptables: Option<String>,
}

impl HostState {
    pub(crate) fn read() -> HostState {
        let links = std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let iptables = Command::new("iptables-save")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(|l| match l.split_once(" [") {
                        // ":CHAIN POLICY [packets:bytes]"
                        Some((head, _)) if l.starts_with(':') => head.to_owned(),
                        _ => l.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        HostState {
            links,
            ip_forward: read_trimmed("/proc/sys/net/ipv4/ip_forward"),
            iptables,
        }
    }

    /// What changed between `self` (before) and `after`, in words.
    pub(crate) fn changes(&self, after: &HostState) -> Vec<String> {
        let mut out = Vec::new();
        let added: Vec<_> = after.links.difference(&self.links).collect();
        let removed: Vec<_> = self.links.difference(&after.links).collect();
        if !added.is_empty() {
            out.push(format!("network links added: {added:?}"));
        }
        if !removed.is_empty() {
            out.push(format!("network links removed: {removed:?}"));
        }
        if self.ip_forward != after.ip_forward {
            out.push(format!(
                "net.ipv4.ip_forward changed from {} to {}",
                self.ip_forward, after.ip_forward
            ));
        }
        if self.iptables != after.iptables {
            out.push("iptables rules changed".to_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path(r"/x\134y"), r"/x\y");
        assert_eq!(unescape_mount_path(r"/plain"), "/plain");
        assert_eq!(unescape_mount_path(r"/end\04"), r"/end\04");
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        assert!(status_kib(me, "VmHWM").is_some_and(|k| k > 0));
        let m = proc_mem(me).expect("own memory");
        // The kernel's RSS counters are per-thread caches summed at read time, and the test
        // harness's other threads allocate meanwhile: the parts may disagree by a little.
        let slack = 1024;
        assert!(m.rss > 0, "{m:?}");
        assert!(m.hwm + slack >= m.rss, "{m:?}");
        assert!(m.anon + m.file <= m.rss + slack, "{m:?}");
        assert!(m.pss.is_some_and(|p| p > 0));
        assert!(alive(me));
        assert_eq!(parent(me), Some(nix::unistd::getppid().as_raw()));
        assert!(
            mounts_under(Path::new("/"))
                .iter()
                .any(|m| m == Path::new("/"))
        );
    }
}

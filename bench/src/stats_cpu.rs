//! The CPU an engine spends while `docker stats` streams: utime + stime (from
//! `/proc/<pid>/stat`) of the engine's processes that take part in a stats stream, summed
//! over a fixed window while the docker CLI streams the stats of every running container.
//!
//! - Berth: `berth-api-gateway` (the HTTP streams, the JSON), `berth-runtime` (samples the
//!   cgroups) and every `berth-shim` (not in the stats path; counted anyway).
//! - dockerd: `dockerd` (the collector, the JSON), its `containerd` (the tasks' Metrics calls)
//!   and every `containerd-shim-runc-v2` (reads each container's cgroup for containerd).
//!
//! The CLI itself is not counted (the same binary drives both engines).

use std::{
    io::Read,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};

use crate::{Target, host};

/// The processes of one engine whose CPU is counted.
#[derive(Debug, Clone)]
pub(crate) struct Counted {
    /// The daemons, by name.
    pub(crate) daemons: Vec<(String, i32)>,
    /// A directory every shim of this engine names on its command line.
    pub(crate) shim_root: PathBuf,
    /// The shims' binary name.
    pub(crate) shim: &'static str,
}

impl Counted {
    /// The daemons and the shims running now.
    fn pids(&self) -> Vec<i32> {
        let shims = host::processes_with(&self.shim_root.to_string_lossy())
            .into_iter()
            .filter(|(_, argv)| {
                argv.first().is_some_and(|a| {
                    std::path::Path::new(a)
                        .file_name()
                        .is_some_and(|n| n == self.shim)
                })
            })
            .map(|(pid, _)| pid);
        self.daemons.iter().map(|(_, p)| *p).chain(shims).collect()
    }

    /// What the row counts, for the method text.
    pub(crate) fn describe(&self) -> String {
        let names: Vec<&str> = self.daemons.iter().map(|(n, _)| n.as_str()).collect();
        format!("`{}` and every `{}`", names.join("`, `"), self.shim)
    }
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat).
pub(crate) fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // After the comm: state is field 3, so utime (14) is the 12th from here.
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_of(pids: &[i32]) -> Vec<(i32, u64)> {
    pids.iter()
        .filter_map(|p| {
            let s = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            Some((*p, cpu_ticks(&s)?))
        })
        .collect()
}

/// The CPU seconds `counted` used between two snapshots (processes in both).
fn used(before: &[(i32, u64)], after: &[(i32, u64)]) -> f64 {
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let ticks: u64 = after
        .iter()
        .filter_map(|(p, a)| {
            let (_, b) = before.iter().find(|(q, _)| q == p)?;
            Some(a.saturating_sub(*b))
        })
        .sum();
    ticks as f64 / tck
}

/// Streams `docker stats` of every running container (`expect` of them) for `window` once
/// the first table is printed; returns the CPU seconds `counted` used in the window.
pub(crate) fn measure(
    t: &Target<'_>,
    counted: &Counted,
    expect: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    let mut cli = t
        .cmd()
        .args(["stats", "--format", "{{.ID}} {{.CPUPerc}}"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning docker stats")?;
    let mut out = cli.stdout.take().context("docker stats' stdout")?;
    let lines = Arc::new(AtomicUsize::new(0));
    let seen = lines.clone();
    // Drains the CLI's output (a table every 500 ms), counting its lines.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            let nl = buf[..n].iter().filter(|b| **b == b'\n').count();
            seen.fetch_add(nl, Ordering::Relaxed);
        }
    });
    let r = (|| {
        let first = host::poll_until("docker stats' first table", Duration::from_secs(25), || {
            lines.load(Ordering::Relaxed) >= expect
        });
        ensure!(
            first,
            "{}: docker stats printed {} lines of {expect}",
            t.kind.name(),
            lines.load(Ordering::Relaxed)
        );
        let pids = counted.pids();
        let before = ticks_of(&pids);
        let until = Instant::now() + window;
        host::poll_until("the stats window", window + Duration::from_secs(1), || {
            Instant::now() >= until
        });
        let after = ticks_of(&pids);
        ensure!(
            lines.load(Ordering::Relaxed) >= expect * 2,
            "{}: docker stats stopped printing",
            t.kind.name()
        );
        Ok(used(&before, &after))
    })();
    let _ = cli.kill();
    let _ = cli.wait();
    let _ = reader.join();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime() {
        // A comm with spaces and parentheses; utime 250, stime 50.
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 10 1 1";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn only_processes_seen_twice_count() {
        let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let before = [(1, 100), (2, 50)];
        let after = [(1, 150), (3, 999)];
        assert!((used(&before, &after) - 50.0 / tck).abs() < 1e-12);
    }

    #[test]
    fn this_process_has_a_stat() {
        let s = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&s).is_some());
    }
}

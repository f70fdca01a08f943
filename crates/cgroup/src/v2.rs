//! The v2 backend: the unified hierarchy, where a controller works in a cgroup once its
//! parents enable it (`cgroup.subtree_control`), and freezing and killing are core files of
//! every cgroup (`cgroup.freeze`, `cgroup.kill`), with or without controllers.

use std::{path::Path, time::Duration};

use berth_bundle::Resources;

use crate::{
    Error, read, read_u64,
    stats::{Blkio, BlkioEntry, Cpu, Memory, Pids, flat_keyed},
    write,
};

/// The v2 controllers `r` needs.
fn needs(r: &Resources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.memory > 0 || r.memory_swap != 0 || r.memory_reservation > 0 {
        out.push("memory");
    }
    if r.cpu_shares > 0 || r.cpu_quota != 0 || r.cpu_period > 0 {
        out.push("cpu");
    }
    if !r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty() {
        out.push("cpuset");
    }
    if r.pids_limit.is_some() {
        out.push("pids");
    }
    if r.blkio_weight > 0 || r.has_device_io() {
        out.push("io");
    }
    out
}

/// Enables what `r` needs from the hierarchy's root down to `dir`'s parent (`levels`
/// components below the root), then writes the files. A controller the hierarchy does not
/// offer (a hybrid host keeps them on v1) is left to the v1 side. Zero values are left alone.
pub fn apply(dir: &Path, levels: usize, r: &Resources) -> Result<(), Error> {
    let root = dir.ancestors().nth(levels).unwrap_or(dir);
    let offered = read(root, "cgroup.controllers").unwrap_or_default();
    let wanted: Vec<&str> = needs(r)
        .into_iter()
        .filter(|c| offered.split_whitespace().any(|o| o == *c))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let enable = wanted
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut parents: Vec<&Path> = dir.ancestors().skip(1).take(levels).collect();
    parents.reverse();
    for p in parents {
        write(p, "cgroup.subtree_control", &enable)?;
    }
    let on = |c: &str| wanted.contains(&c);
    if on("memory") {
        // v2 limits swap alone: memory+swap minus memory.
        match r.memory_swap {
            -1 => write(dir, "memory.swap.max", "max")?,
            s if s > 0 => {
                let swap = s.saturating_sub(r.memory.max(0)).max(0);
                write(dir, "memory.swap.max", &swap.to_string())?;
            }
            _ => {}
        }
        if r.memory > 0 {
            write(dir, "memory.max", &r.memory.to_string())?;
        }
        if r.memory_reservation > 0 {
            write(dir, "memory.low", &r.memory_reservation.to_string())?;
        }
    }
    if on("cpu") {
        if r.cpu_shares > 0 {
            let w = berth_bundle::shares_to_weight(r.cpu_shares);
            write(dir, "cpu.weight", &w.to_string())?;
        }
        if r.cpu_quota != 0 || r.cpu_period > 0 {
            let quota = if r.cpu_quota > 0 {
                r.cpu_quota.to_string()
            } else {
                "max".to_owned()
            };
            let period = if r.cpu_period > 0 {
                r.cpu_period
            } else {
                100_000
            };
            write(dir, "cpu.max", &format!("{quota} {period}"))?;
        }
    }
    if on("cpuset") {
        if !r.cpuset_cpus.is_empty() {
            write(dir, "cpuset.cpus", &r.cpuset_cpus)?;
        }
        if !r.cpuset_mems.is_empty() {
            write(dir, "cpuset.mems", &r.cpuset_mems)?;
        }
    }
    if on("pids") {
        let max = match r.pids_limit {
            Some(n) if n > 0 => n.to_string(),
            _ => "max".to_owned(),
        };
        write(dir, "pids.max", &max)?;
    }
    if on("io") && r.blkio_weight > 0 {
        // blkio weights (10..1000) map onto io.weight (1..10000) as runc maps them.
        let w = berth_bundle::blkio_to_io_weight(r.blkio_weight);
        let file = if dir.join("io.bfq.weight").exists() {
            "io.bfq.weight"
        } else {
            "io.weight"
        };
        write(dir, file, &w.to_string())?;
    }
    if on("io") {
        apply_device_io(dir, r)?;
    }
    Ok(())
}

/// The per-device weights (io.bfq.weight takes blkio's 10..1000 as they are, io.weight its
/// own scale) and the throttles in `io.max`.
fn apply_device_io(dir: &Path, r: &Resources) -> Result<(), Error> {
    let bfq = dir.join("io.bfq.weight").exists();
    for d in &r.blkio_weight_device {
        let (file, w) = if bfq {
            ("io.bfq.weight", u64::from(d.weight))
        } else {
            ("io.weight", berth_bundle::blkio_to_io_weight(d.weight))
        };
        write(dir, file, &format!("{}:{} {w}", d.major, d.minor))?;
    }
    // One line per device with all its keys (the kernel keeps the keys a line leaves out).
    let mut lines: std::collections::BTreeMap<(u64, u64), String> = Default::default();
    for (list, _, key) in r.throttles() {
        for d in list {
            let line = lines.entry((d.major, d.minor)).or_default();
            line.push_str(&format!(" {key}={}", d.rate));
        }
    }
    for ((major, minor), keys) in lines {
        write(dir, "io.max", &format!("{major}:{minor}{keys}"))?;
    }
    Ok(())
}

/// cpu.stat, in nanoseconds (no per-CPU usage on v2).
pub fn cpu(dir: &Path) -> Cpu {
    let s = flat_keyed(&read(dir, "cpu.stat").unwrap_or_default());
    let us = |k: &str| s.get(k).copied().unwrap_or(0).saturating_mul(1000);
    Cpu {
        total: us("usage_usec"),
        kernel: us("system_usec"),
        user: us("user_usec"),
        percpu: Vec::new(),
        periods: s.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: s.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    }
}

/// memory.current, memory.max, memory.stat as it is, and the OOM count of memory.events as
/// the failure count.
pub fn memory(dir: &Path) -> Memory {
    Memory {
        usage: read_u64(dir, "memory.current").unwrap_or(0),
        max_usage: read_u64(dir, "memory.peak").unwrap_or(0),
        limit: read_u64(dir, "memory.max").unwrap_or(0),
        failcnt: flat_keyed(&read(dir, "memory.events").unwrap_or_default())
            .get("oom")
            .copied()
            .unwrap_or(0),
        stats: flat_keyed(&read(dir, "memory.stat").unwrap_or_default()),
    }
}

/// pids.current and pids.max (0 when unlimited).
pub fn pids(dir: &Path) -> Pids {
    Pids {
        current: read_u64(dir, "pids.current").unwrap_or(0),
        limit: read_u64(dir, "pids.max")
            .filter(|n| *n != u64::MAX)
            .unwrap_or(0),
    }
}

/// io.stat: bytes read and written per device.
pub fn blkio(dir: &Path) -> Blkio {
    let mut out = Blkio::default();
    for line in read(dir, "io.stat").unwrap_or_default().lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        let kv: std::collections::BTreeMap<&str, u64> = f
            .filter_map(|p| p.split_once('='))
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        for (key, op) in [("rbytes", "read"), ("wbytes", "write")] {
            out.service_bytes.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value: kv.get(key).copied().unwrap_or(0),
            });
        }
    }
    out
}

/// How long a freeze may take before it is given up (the cgroup is thawed again).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Freezes (1) or thaws (0) the cgroup `dir` through `cgroup.freeze` and waits until
/// `cgroup.events` reports it (the kernel wakes a poll on that file when it changes); a freeze
/// that does not complete is undone.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<(), Error> {
    use std::os::{fd::AsFd, unix::fs::FileExt};

    let want = if frozen { "1" } else { "0" };
    let path = dir.join("cgroup.events");
    let events = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    write(dir, "cgroup.freeze", want)?;
    let deadline = std::time::Instant::now() + FREEZE_TIMEOUT;
    let mut buf = [0u8; 256];
    loop {
        let n = events
            .read_at(&mut buf, 0)
            .map_err(|e| Error::io(&path, e))?;
        let text = String::from_utf8_lossy(&buf[..n]);
        if (flat_keyed(&text).get("frozen") == Some(&1)) == frozen {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            if frozen {
                let _ = write(dir, "cgroup.freeze", "0");
            }
            return Err(Error::new(
                dir,
                format!("cgroup.events did not report frozen {want} in {FREEZE_TIMEOUT:?}"),
            ));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX).max(1);
        let mut fds = [nix::poll::PollFd::new(
            events.as_fd(),
            nix::poll::PollFlags::POLLPRI,
        )];
        // A fixture file never signals: its content is what was written, checked above.
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms.min(100)));
    }
}

/// `frozen` of `cgroup.events`.
pub fn is_frozen(dir: &Path) -> Result<bool, Error> {
    let events =
        read(dir, "cgroup.events").map_err(|e| Error::io(&dir.join("cgroup.events"), e))?;
    Ok(flat_keyed(&events).get("frozen") == Some(&1))
}

/// SIGKILL to every process of the cgroup and its descendants, at once (`cgroup.kill`,
/// Linux 5.14).
pub fn kill(dir: &Path) -> Result<(), Error> {
    write(dir, "cgroup.kill", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Resources {
        Resources {
            memory: 10 << 20,
            memory_swap: 30 << 20,
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            cpuset_cpus: "0".to_owned(),
            pids_limit: Some(10),
            ..Default::default()
        }
    }

    fn get(dir: &Path, f: &str) -> String {
        read(dir, f).unwrap_or_default()
    }

    /// A v2 tree as the kernel lays it out (fixture files), root offering every controller.
    #[test]
    fn files_and_subtree_control() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let dir = root.join("berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        apply(&dir, 2, &limits()).unwrap();
        assert_eq!(
            get(root, "cgroup.subtree_control"),
            "+memory +cpu +cpuset +pids"
        );
        assert_eq!(
            get(&root.join("berth"), "cgroup.subtree_control"),
            "+memory +cpu +cpuset +pids"
        );
        assert_eq!(get(&dir, "memory.max"), "10485760");
        assert_eq!(get(&dir, "memory.swap.max"), "20971520");
        assert_eq!(get(&dir, "cpu.weight"), "20");
        assert_eq!(get(&dir, "cpu.max"), "50000 100000");
        assert_eq!(get(&dir, "cpuset.cpus"), "0");
        assert_eq!(get(&dir, "pids.max"), "10");
    }

    /// docker update's values: unlimited pids and quota, a new blkio weight.
    #[test]
    fn update_values() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        let dir = root.join("c");
        std::fs::create_dir_all(&dir).unwrap();
        let r = Resources {
            pids_limit: Some(-1),
            cpu_quota: -1,
            memory_swap: -1,
            memory: 64 << 20,
            blkio_weight: 500,
            ..Default::default()
        };
        apply(&dir, 1, &r).unwrap();
        assert_eq!(get(&dir, "pids.max"), "max");
        assert_eq!(get(&dir, "cpu.max"), "max 100000");
        assert_eq!(get(&dir, "memory.swap.max"), "max");
        assert_eq!(get(&dir, "memory.max"), "67108864");
        assert_eq!(get(&dir, "io.weight"), "4950");
    }

    /// Per-device weights and throttles: io.weight on its own scale, one io.max line per
    /// device, and the io controller enabled in the parents.
    #[test]
    fn device_weights_and_throttles() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        let dir = root.join("berth/c");
        std::fs::create_dir_all(&dir).unwrap();
        let rate = |rate| berth_bundle::DeviceRate {
            major: 8,
            minor: 0,
            rate,
        };
        let r = Resources {
            blkio_weight_device: vec![berth_bundle::DeviceWeight {
                major: 8,
                minor: 0,
                weight: 500,
            }],
            device_read_bps: vec![rate(1_048_576)],
            device_write_bps: vec![rate(2_097_152)],
            device_read_iops: vec![rate(100)],
            device_write_iops: vec![rate(50)],
            ..Default::default()
        };
        apply(&dir, 2, &r).unwrap();
        assert_eq!(get(root, "cgroup.subtree_control"), "+io");
        assert_eq!(get(&dir, "io.weight"), "8:0 4950");
        assert_eq!(
            get(&dir, "io.max"),
            "8:0 rbps=1048576 wbps=2097152 riops=100 wiops=50"
        );
        // With BFQ the weight keeps blkio's scale.
        std::fs::write(dir.join("io.bfq.weight"), "").unwrap();
        apply(&dir, 2, &r).unwrap();
        assert_eq!(get(&dir, "io.bfq.weight"), "8:0 500");
    }

    /// A hybrid host's v2 hierarchy offers no controller: nothing is written there.
    #[test]
    fn without_controllers_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "hugetlb\n").unwrap();
        let dir = t.path().join("berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        apply(&dir, 2, &limits()).unwrap();
        assert!(!t.path().join("cgroup.subtree_control").exists());
        assert!(!dir.join("memory.max").exists());
    }

    #[test]
    fn stats_from_fixture() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for (f, v) in [
            (
                "cpu.stat",
                "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\n\
                 nr_throttled 1\nthrottled_usec 30\n",
            ),
            ("memory.current", "8192000\n"),
            ("memory.max", "max\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 4096\nfile 8192\ninactive_file 2048\n"),
            ("pids.current", "2\n"),
            ("pids.max", "100\n"),
            (
                "io.stat",
                "8:0 rbytes=4096 wbytes=512 rios=1 wios=1 dbytes=0 dios=0\n",
            ),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let c = cpu(d);
        assert_eq!((c.total, c.user, c.kernel), (2_000_000, 1_500_000, 500_000));
        assert_eq!(
            (c.periods, c.throttled_periods, c.throttled_time),
            (4, 1, 30_000)
        );
        assert!(c.percpu.is_empty());
        let m = memory(d);
        assert_eq!((m.usage, m.limit, m.failcnt), (8_192_000, u64::MAX, 1));
        assert_eq!(m.stats["inactive_file"], 2048);
        assert_eq!((pids(d).current, pids(d).limit), (2, 100));
        let b = blkio(d);
        assert!(!b.v1);
        assert_eq!(
            b.service_bytes
                .iter()
                .map(|e| (e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            vec![("read", 4096), ("write", 512)]
        );
    }
}

//! The v1 backend: one hierarchy per controller (or comounted ones, `cpu,cpuacct`), each
//! file in the hierarchy that has its controller.

use std::{path::Path, time::Duration};

use berth_bundle::Resources;

use crate::{
    Error, read, read_u64,
    stats::{Blkio, BlkioEntry, Cpu, Memory, Pids, flat_keyed},
    write,
};

/// Writes `r` into `dir`, a cgroup of a hierarchy with `controllers` (its mount options).
/// Zero values are left alone; on update, memory and memory+swap are written in the order the
/// kernel accepts (memory may not exceed memory+swap at any time).
pub fn apply(dir: &Path, controllers: &[String], r: &Resources) -> Result<(), Error> {
    let has = |c: &str| controllers.iter().any(|o| o == c);
    if has("memory") {
        apply_memory(dir, r)?;
    }
    if has("cpu") {
        if r.cpu_shares > 0 {
            write(dir, "cpu.shares", &r.cpu_shares.to_string())?;
        }
        if r.cpu_period > 0 {
            write(dir, "cpu.cfs_period_us", &r.cpu_period.to_string())?;
        }
        if r.cpu_quota != 0 {
            write(dir, "cpu.cfs_quota_us", &r.cpu_quota.to_string())?;
        }
    }
    if has("cpuset") {
        if !r.cpuset_cpus.is_empty() {
            write(dir, "cpuset.cpus", &r.cpuset_cpus)?;
        }
        if !r.cpuset_mems.is_empty() {
            write(dir, "cpuset.mems", &r.cpuset_mems)?;
        }
    }
    if has("pids")
        && let Some(n) = r.pids_limit
    {
        let max = if n > 0 {
            n.to_string()
        } else {
            "max".to_owned()
        };
        write(dir, "pids.max", &max)?;
    }
    if has("blkio") && r.blkio_weight > 0 {
        let file = ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|f| dir.join(f).exists())
            .ok_or_else(|| Error::new(dir, "no blkio weight file: the kernel has no BFQ"))?;
        write(dir, file, &r.blkio_weight.to_string())?;
    }
    if has("blkio") {
        apply_device_io(dir, r)?;
    }
    Ok(())
}

/// The per-device weights and throttles, one line per device and file.
fn apply_device_io(dir: &Path, r: &Resources) -> Result<(), Error> {
    if !r.blkio_weight_device.is_empty() {
        let file = ["blkio.weight_device", "blkio.bfq.weight_device"]
            .into_iter()
            .find(|f| dir.join(f).exists())
            .ok_or_else(|| Error::new(dir, "no blkio weight_device file: the kernel has no BFQ"))?;
        for d in &r.blkio_weight_device {
            write(dir, file, &format!("{}:{} {}", d.major, d.minor, d.weight))?;
        }
    }
    for (list, name, _) in r.throttles() {
        for d in list {
            let line = format!("{}:{} {}", d.major, d.minor, d.rate);
            write(dir, &format!("blkio.throttle.{name}"), &line)?;
        }
    }
    Ok(())
}

fn apply_memory(dir: &Path, r: &Resources) -> Result<(), Error> {
    let memsw = "memory.memsw.limit_in_bytes";
    let swap = r.memory_swap != 0 && dir.join(memsw).exists();
    // Raising the limit above the current memory+swap needs memory+swap raised first.
    let current_memsw = read_u64(dir, memsw).unwrap_or(u64::MAX);
    let swap_first =
        swap && (r.memory_swap == -1 || u64::try_from(r.memory).unwrap_or(0) > current_memsw);
    if swap_first {
        write(dir, memsw, &r.memory_swap.to_string())?;
    }
    if r.memory > 0 {
        write(dir, "memory.limit_in_bytes", &r.memory.to_string())?;
    }
    if swap && !swap_first {
        write(dir, memsw, &r.memory_swap.to_string())?;
    }
    if r.memory_reservation > 0 {
        write(
            dir,
            "memory.soft_limit_in_bytes",
            &r.memory_reservation.to_string(),
        )?;
    }
    if let Some(s) = r.memory_swappiness {
        write(dir, "memory.swappiness", &s.to_string())?;
    }
    if r.oom_kill_disable {
        write(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

/// The v1 clock tick (USER_HZ) of cpuacct.stat, in nanoseconds.
const TICK_NS: u64 = 10_000_000;

/// CPU usage from the cpuacct hierarchy's `dir` and throttling from the cpu one's.
pub fn cpu(cpuacct: Option<&Path>, cpu: Option<&Path>) -> Cpu {
    let mut out = Cpu::default();
    if let Some(d) = cpuacct {
        out.total = read_u64(d, "cpuacct.usage").unwrap_or(0);
        out.percpu = read(d, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let stat = flat_keyed(&read(d, "cpuacct.stat").unwrap_or_default());
        out.user = stat
            .get("user")
            .copied()
            .unwrap_or(0)
            .saturating_mul(TICK_NS);
        out.kernel = stat
            .get("system")
            .copied()
            .unwrap_or(0)
            .saturating_mul(TICK_NS);
    }
    if let Some(d) = cpu {
        let stat = flat_keyed(&read(d, "cpu.stat").unwrap_or_default());
        out.periods = stat.get("nr_periods").copied().unwrap_or(0);
        out.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        out.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
    }
    out
}

/// memory.usage_in_bytes and its siblings, and memory.stat as it is.
pub fn memory(dir: &Path) -> Memory {
    Memory {
        usage: read_u64(dir, "memory.usage_in_bytes").unwrap_or(0),
        max_usage: read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0),
        limit: read_u64(dir, "memory.limit_in_bytes").unwrap_or(0),
        failcnt: read_u64(dir, "memory.failcnt").unwrap_or(0),
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

/// The blkio lists: the CFQ/BFQ files where the kernel has them, else the throttle ones
/// (bytes and operations) that every kernel keeps.
pub fn blkio(dir: &Path) -> Blkio {
    let list = |name: &str| -> Vec<BlkioEntry> {
        let own = blkio_entries(&read(dir, &format!("blkio.{name}")).unwrap_or_default());
        if !own.is_empty() {
            return own;
        }
        blkio_entries(&read(dir, &format!("blkio.throttle.{name}")).unwrap_or_default())
    };
    Blkio {
        v1: true,
        service_bytes: list("io_service_bytes_recursive"),
        serviced: list("io_serviced_recursive"),
        queued: list("io_queued_recursive"),
        service_time: list("io_service_time_recursive"),
        wait_time: list("io_wait_time_recursive"),
        merged: list("io_merged_recursive"),
        time: list("time_recursive"),
        sectors: list("sectors_recursive"),
    }
}

/// `8:0 Read 4096` lines (or `8:0 4096` without an operation); the `Total` line is skipped.
pub(crate) fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, value) = match f.as_slice() {
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] if dev.contains(':') => (*dev, "", *value),
            _ => continue,
        };
        let Some((major, minor)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(value)) = (major.parse(), minor.parse(), value.parse())
        else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_owned(),
            value,
        });
    }
    out
}

/// How long a freeze may take before it is given up (the cgroup is thawed again).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Freezes (`FROZEN`) or thaws (`THAWED`) the freezer cgroup `dir` and waits until the
/// kernel reports that state; a freeze that does not complete is undone.
pub fn set_freezer(dir: &Path, frozen: bool) -> Result<(), Error> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    write(dir, "freezer.state", want)?;
    let deadline = std::time::Instant::now() + FREEZE_TIMEOUT;
    let mut delay = Duration::from_millis(1);
    loop {
        let state = read(dir, "freezer.state").map_err(|e| Error::io(dir, e))?;
        if state.trim() == want {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            if frozen {
                let _ = write(dir, "freezer.state", "THAWED");
            }
            return Err(Error::new(
                dir,
                format!("still {} after {FREEZE_TIMEOUT:?}", state.trim()),
            ));
        }
        // FREEZING: a task was busy (in a vfork, say); asking again retries it.
        if frozen {
            write(dir, "freezer.state", want)?;
        }
        crate::pause(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

/// Whether the freezer cgroup `dir` is frozen.
pub fn frozen(dir: &Path) -> bool {
    read(dir, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN")
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

    fn opts(o: &[&str]) -> Vec<String> {
        o.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The throttles land in blkio.throttle.*; a weight device without CFQ/BFQ is an error
    /// (the runtime warns and discards it before, as dockerd).
    #[test]
    fn device_throttles() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let rate = |rate| berth_bundle::DeviceRate {
            major: 254,
            minor: 0,
            rate,
        };
        let r = Resources {
            device_read_bps: vec![rate(1_048_576)],
            device_write_iops: vec![rate(30)],
            ..Default::default()
        };
        apply(dir, &opts(&["blkio"]), &r).unwrap();
        assert_eq!(get(dir, "blkio.throttle.read_bps_device"), "254:0 1048576");
        assert_eq!(get(dir, "blkio.throttle.write_iops_device"), "254:0 30");
        assert!(!dir.join("blkio.throttle.write_bps_device").exists());
        let w = Resources {
            blkio_weight_device: vec![berth_bundle::DeviceWeight {
                major: 254,
                minor: 0,
                weight: 300,
            }],
            ..Default::default()
        };
        assert!(apply(dir, &opts(&["blkio"]), &w).is_err());
        std::fs::write(dir.join("blkio.weight_device"), "").unwrap();
        apply(dir, &opts(&["blkio"]), &w).unwrap();
        assert_eq!(get(dir, "blkio.weight_device"), "254:0 300");
    }

    #[test]
    fn files_per_controller() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        apply(dir, &opts(&["memory"]), &limits()).unwrap();
        apply(dir, &opts(&["cpu", "cpuacct"]), &limits()).unwrap();
        apply(dir, &opts(&["pids"]), &limits()).unwrap();
        assert_eq!(get(dir, "memory.limit_in_bytes"), "10485760");
        assert_eq!(get(dir, "memory.memsw.limit_in_bytes"), "31457280");
        assert_eq!(get(dir, "cpu.shares"), "512");
        assert_eq!(get(dir, "cpu.cfs_quota_us"), "50000");
        assert_eq!(get(dir, "pids.max"), "10");
        assert!(!dir.join("cpuset.cpus").exists());
    }

    /// A fixture file that records every write, so that the order can be checked: raising
    /// memory above the current memory+swap writes memory+swap first.
    #[test]
    fn raising_memory_raises_memsw_first() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "20971520\n").unwrap();
        let r = Resources {
            memory: 50 << 20,
            memory_swap: 100 << 20,
            ..Default::default()
        };
        // The fixture cannot refuse, so the order shows in what the memsw file held when
        // memory was written: read back after each step through a failing write.
        std::fs::create_dir(dir.join("memory.limit_in_bytes")).unwrap();
        let err = apply(dir, &opts(&["memory"]), &r).unwrap_err();
        assert!(err.path.ends_with("memory.limit_in_bytes"), "{err}");
        assert_eq!(get(dir, "memory.memsw.limit_in_bytes"), "104857600");
        // Lowering: memory first (memsw not touched before the memory write fails).
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "209715200\n").unwrap();
        let err = apply(dir, &opts(&["memory"]), &r).unwrap_err();
        assert!(err.path.ends_with("memory.limit_in_bytes"), "{err}");
        assert_eq!(get(dir, "memory.memsw.limit_in_bytes"), "209715200\n");
    }

    #[test]
    fn stats_from_fixture() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for (f, v) in [
            ("cpuacct.usage", "123456789\n"),
            ("cpuacct.usage_percpu", "100000000 23456789 \n"),
            ("cpuacct.stat", "user 7\nsystem 3\n"),
            (
                "cpu.stat",
                "nr_periods 5\nnr_throttled 2\nthrottled_time 9000\n",
            ),
            ("memory.usage_in_bytes", "4096000\n"),
            ("memory.max_usage_in_bytes", "5000000\n"),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.failcnt", "0\n"),
            (
                "memory.stat",
                "cache 8192\nrss 4096\ntotal_inactive_file 1024\n",
            ),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n",
            ),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let c = cpu(Some(d), Some(d));
        assert_eq!((c.total, c.percpu.len()), (123_456_789, 2));
        assert_eq!((c.user, c.kernel), (70_000_000, 30_000_000));
        assert_eq!(
            (c.periods, c.throttled_periods, c.throttled_time),
            (5, 2, 9000)
        );
        let m = memory(d);
        assert_eq!((m.usage, m.max_usage), (4_096_000, 5_000_000));
        assert_eq!(m.stats["total_inactive_file"], 1024);
        assert_eq!(pids(d).current, 3);
        assert_eq!(pids(d).limit, 0);
        let b = blkio(d);
        assert_eq!(b.service_bytes.len(), 3);
        assert_eq!(b.service_bytes[0].op, "Read");
        assert_eq!(b.service_bytes[1].value, 512);
        assert!(b.serviced.is_empty() && b.v1);
    }

    #[test]
    fn freezer_in_a_fixture() {
        let t = tempfile::tempdir().unwrap();
        // A fixture's file reads back what was written: FROZEN at once.
        std::fs::write(t.path().join("freezer.state"), "THAWED\n").unwrap();
        set_freezer(t.path(), true).unwrap();
        assert!(frozen(t.path()));
        set_freezer(t.path(), false).unwrap();
        assert!(!frozen(t.path()));
    }
}

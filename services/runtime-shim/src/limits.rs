//! The container's cgroup limits written into its cgroup: the v1 controllers' files
//! (memory, cpu, cpuset, pids) or their v2 equivalents (memory.max, cpu.max, ...), before any
//! process joins. A v2 controller not enabled for the cgroup is enabled in the parents'
//! `cgroup.subtree_control` when the hierarchy offers it.

use std::path::Path;

use berth_bundle::Resources;

use crate::error::ShimError;

fn write(dir: &Path, file: &str, value: &str) -> Result<(), ShimError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| ShimError::Cgroup {
        path: path.clone(),
        reason: format!("writing {value:?}: {e}"),
    })
}

/// v1: each value into its controller's hierarchy (`controllers` are the mount's options).
pub(crate) fn apply_v1(dir: &Path, controllers: &[String], r: &Resources) -> Result<(), ShimError> {
    let has = |c: &str| controllers.iter().any(|o| o == c);
    if has("memory") {
        if r.memory > 0 {
            write(dir, "memory.limit_in_bytes", &r.memory.to_string())?;
        }
        if r.memory_swap != 0 && dir.join("memory.memsw.limit_in_bytes").exists() {
            write(
                dir,
                "memory.memsw.limit_in_bytes",
                &r.memory_swap.to_string(),
            )?;
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
    if has("pids") {
        let max = match r.pids_limit {
            Some(n) if n > 0 => n.to_string(),
            _ => "max".to_owned(),
        };
        write(dir, "pids.max", &max)?;
    }
    Ok(())
}

/// The v2 controllers `r` needs.
fn v2_needs(r: &Resources) -> Vec<&'static str> {
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
    if r.pids_limit.is_some_and(|n| n > 0) {
        out.push("pids");
    }
    out
}

/// v2: enables what `r` needs from the hierarchy's root down to `dir`'s parent (`levels`
/// components below the root), then writes the files. A controller the hierarchy does not
/// offer (a hybrid host keeps them on v1) is left to the v1 side.
pub(crate) fn apply_v2(dir: &Path, levels: usize, r: &Resources) -> Result<(), ShimError> {
    let root = dir.ancestors().nth(levels).unwrap_or(dir);
    let offered = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<&str> = v2_needs(r)
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
        if r.memory > 0 {
            write(dir, "memory.max", &r.memory.to_string())?;
        }
        match r.memory_swap {
            -1 => write(dir, "memory.swap.max", "max")?,
            s if s > 0 => {
                // v2 limits swap alone: memory+swap minus memory.
                let swap = s.saturating_sub(r.memory.max(0)).max(0);
                write(dir, "memory.swap.max", &swap.to_string())?;
            }
            _ => {}
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
    if on("pids")
        && let Some(n) = r.pids_limit.filter(|n| *n > 0)
    {
        write(dir, "pids.max", &n.to_string())?;
    }
    Ok(())
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

    fn read(dir: &Path, f: &str) -> String {
        std::fs::read_to_string(dir.join(f)).unwrap_or_default()
    }

    /// A v2 tree as the kernel lays it out (fixture files), root offering every controller.
    #[test]
    fn v2_files_and_subtree_control() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let dir = root.join("berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        apply_v2(&dir, 2, &limits()).unwrap();
        assert_eq!(
            read(root, "cgroup.subtree_control"),
            "+memory +cpu +cpuset +pids"
        );
        assert_eq!(
            read(&root.join("berth"), "cgroup.subtree_control"),
            "+memory +cpu +cpuset +pids"
        );
        assert_eq!(read(&dir, "memory.max"), "10485760");
        assert_eq!(read(&dir, "memory.swap.max"), "20971520");
        assert_eq!(read(&dir, "cpu.weight"), "20");
        assert_eq!(read(&dir, "cpu.max"), "50000 100000");
        assert_eq!(read(&dir, "cpuset.cpus"), "0");
        assert_eq!(read(&dir, "pids.max"), "10");
    }

    /// A hybrid host's v2 hierarchy offers no controller: nothing is written there.
    #[test]
    fn v2_without_controllers_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "hugetlb\n").unwrap();
        let dir = t.path().join("berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        apply_v2(&dir, 2, &limits()).unwrap();
        assert!(!t.path().join("cgroup.subtree_control").exists());
        assert!(!dir.join("memory.max").exists());
    }

    #[test]
    fn v1_files_per_controller() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        let opts = |o: &[&str]| o.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        apply_v1(dir, &opts(&["memory"]), &limits()).unwrap();
        apply_v1(dir, &opts(&["cpu", "cpuacct"]), &limits()).unwrap();
        apply_v1(dir, &opts(&["pids"]), &limits()).unwrap();
        assert_eq!(read(dir, "memory.limit_in_bytes"), "10485760");
        assert_eq!(read(dir, "memory.memsw.limit_in_bytes"), "31457280");
        assert_eq!(read(dir, "cpu.shares"), "512");
        assert_eq!(read(dir, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(dir, "pids.max"), "10");
        assert!(!dir.join("cpuset.cpus").exists());
    }
}

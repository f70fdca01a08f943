//! What the host's cgroups offer: the version (v1, hybrid v1, or the v2 unified hierarchy), the
//! driver, and which resource limits can be enforced. Read from the cgroup filesystem so that
//! the same code is tested against fixture trees for both versions.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "1",
            CgroupVersion::V2 => "2",
        }
    }
}

/// How container cgroups are created: directly in cgroupfs (default), or through systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Cgroupfs,
    /// Each container a transient scope of systemd's (`exec-opts native.cgroupdriver=systemd`).
    Systemd,
}

impl CgroupDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

/// The limits the host's cgroups can enforce (the booleans of `/info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupInfo {
    pub version: CgroupVersion,
    pub driver: CgroupDriver,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    pub cpu_shares: bool,
    pub cpu_set: bool,
    pub pids_limit: bool,
    pub oom_kill_disable: bool,
    pub kernel_memory_tcp: bool,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub blkio_read_bps_device: bool,
    pub blkio_write_bps_device: bool,
    pub blkio_read_iops_device: bool,
    pub blkio_write_iops_device: bool,
    pub warnings: Vec<String>,
}

impl CgroupInfo {
    /// Reads `/sys/fs/cgroup`.
    pub fn detect_host() -> CgroupInfo {
        CgroupInfo::detect(Path::new("/sys/fs/cgroup"))
    }

    /// Reads the cgroup tree mounted at `root`.
    pub fn detect(root: &Path) -> CgroupInfo {
        match std::fs::read_to_string(root.join("cgroup.controllers")) {
            Ok(controllers) => v2(root, &controllers),
            Err(_) => v1(root),
        }
    }
}

fn v1(root: &Path) -> CgroupInfo {
    let has = |rel: &str| root.join(rel).exists();
    let mut info = CgroupInfo {
        version: CgroupVersion::V1,
        driver: CgroupDriver::Cgroupfs,
        memory_limit: has("memory/memory.limit_in_bytes"),
        swap_limit: has("memory/memory.memsw.limit_in_bytes"),
        cpu_cfs_period: has("cpu/cpu.cfs_period_us"),
        cpu_cfs_quota: has("cpu/cpu.cfs_quota_us"),
        cpu_shares: has("cpu/cpu.shares"),
        cpu_set: has("cpuset/cpuset.cpus"),
        // The root of the v1 pids hierarchy has no pids.max; the mounted controller is enough.
        pids_limit: has("pids/cgroup.procs"),
        oom_kill_disable: has("memory/memory.oom_control"),
        kernel_memory_tcp: has("memory/memory.kmem.tcp.limit_in_bytes"),
        blkio_weight: has("blkio/blkio.weight") || has("blkio/blkio.bfq.weight"),
        blkio_weight_device: has("blkio/blkio.weight_device")
            || has("blkio/blkio.bfq.weight_device"),
        blkio_read_bps_device: has("blkio/blkio.throttle.read_bps_device"),
        blkio_write_bps_device: has("blkio/blkio.throttle.write_bps_device"),
        blkio_read_iops_device: has("blkio/blkio.throttle.read_iops_device"),
        blkio_write_iops_device: has("blkio/blkio.throttle.write_iops_device"),
        warnings: Vec::new(),
    };
    for (ok, what) in [
        (info.memory_limit, "No memory limit support"),
        (info.swap_limit, "No swap limit support"),
        (info.cpu_cfs_quota, "No cpu cfs quota support"),
        (info.cpu_cfs_period, "No cpu cfs period support"),
        (info.cpu_shares, "No cpu shares support"),
        (info.cpu_set, "No cpuset support"),
        (info.pids_limit, "No pids limit support"),
    ] {
        if !ok {
            info.warnings.push(format!("WARNING: {what}"));
        }
    }
    info
}

fn v2(root: &Path, controllers: &str) -> CgroupInfo {
    let on: Vec<&str> = controllers.split_whitespace().collect();
    let has = |c: &str| on.contains(&c);
    let mut info = CgroupInfo {
        version: CgroupVersion::V2,
        driver: CgroupDriver::Cgroupfs,
        memory_limit: has("memory"),
        // The root has no memory.swap.max; swap accounting shows in a child or in the kernel
        // config. Docker reports it with the memory controller unless the kernel lacks it.
        swap_limit: has("memory") && !root.join("memory.swap.disabled").exists(),
        cpu_cfs_period: has("cpu"),
        cpu_cfs_quota: has("cpu"),
        cpu_shares: has("cpu"),
        cpu_set: has("cpuset"),
        pids_limit: has("pids"),
        oom_kill_disable: false,
        kernel_memory_tcp: false,
        blkio_weight: has("io"),
        blkio_weight_device: has("io"),
        blkio_read_bps_device: has("io"),
        blkio_write_bps_device: has("io"),
        blkio_read_iops_device: has("io"),
        blkio_write_iops_device: has("io"),
        warnings: Vec::new(),
    };
    for (ok, what) in [
        (info.memory_limit, "No memory limit support"),
        (info.cpu_cfs_quota, "No cpu cfs quota support"),
        (info.cpu_set, "No cpuset support"),
        (info.pids_limit, "No pids limit support"),
    ] {
        if !ok {
            info.warnings.push(format!("WARNING: {what}"));
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, content) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let root = dir.path().to_owned();
        (dir, root)
    }

    #[test]
    fn v2_unified_from_fixture() {
        let (_d, root) = tree(&[
            (
                "cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma misc\n",
            ),
            ("cgroup.subtree_control", "cpu memory pids\n"),
        ]);
        let info = CgroupInfo::detect(&root);
        assert_eq!(info.version, CgroupVersion::V2);
        assert!(info.memory_limit && info.swap_limit && info.cpu_cfs_quota);
        assert!(info.cpu_set && info.pids_limit);
        assert!(!info.oom_kill_disable);
        assert!(info.blkio_weight_device && info.blkio_read_bps_device);
        assert!(info.blkio_write_iops_device);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    }

    #[test]
    fn v2_without_controllers_warns() {
        let (_d, root) = tree(&[("cgroup.controllers", "io\n")]);
        let info = CgroupInfo::detect(&root);
        assert_eq!(info.version, CgroupVersion::V2);
        assert!(!info.memory_limit && !info.pids_limit);
        assert!(
            info.warnings
                .contains(&"WARNING: No memory limit support".to_owned())
        );
    }

    #[test]
    fn v1_hybrid_from_fixture() {
        let (_d, root) = tree(&[
            ("memory/memory.limit_in_bytes", ""),
            ("memory/memory.oom_control", ""),
            ("cpu/cpu.cfs_period_us", ""),
            ("cpu/cpu.cfs_quota_us", ""),
            ("cpu/cpu.shares", ""),
            ("cpuset/cpuset.cpus", ""),
            ("pids/cgroup.procs", ""),
            ("blkio/blkio.throttle.read_bps_device", ""),
            ("unified/cgroup.controllers", ""),
        ]);
        let info = CgroupInfo::detect(&root);
        assert_eq!(info.version, CgroupVersion::V1);
        // Throttles without CFQ/BFQ: no weight device.
        assert!(info.blkio_read_bps_device && !info.blkio_write_bps_device);
        assert!(!info.blkio_weight_device);
        assert!(info.memory_limit && !info.swap_limit && info.oom_kill_disable);
        assert_eq!(
            info.warnings,
            vec!["WARNING: No swap limit support".to_owned()]
        );
    }

    #[test]
    fn this_host() {
        // Whatever the host runs, detection yields a version and a driver.
        let info = CgroupInfo::detect_host();
        assert!(matches!(
            info.version,
            CgroupVersion::V1 | CgroupVersion::V2
        ));
    }
}

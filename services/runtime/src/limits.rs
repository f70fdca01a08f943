//! A container's resource limits checked as dockerd checks them (moby's
//! verifyPlatformContainerResources, in its words) against what the host's cgroups offer,
//! and turned into the shim's cgroup values.

use berth_proto::runtime::v1 as pb;

use berth_cgroup::CgroupInfo;

/// dockerd's smallest memory limit and reservation.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// What the host offers for the checks.
pub(crate) struct Host<'a> {
    pub(crate) cgroups: &'a CgroupInfo,
    pub(crate) cpus: u32,
    /// Checking a docker update: values are changes (dockerd's create defaults, such as swap
    /// as large as memory, are not applied).
    pub(crate) update: bool,
}

/// Checks `r` (clearing what the host cannot enforce, as dockerd does with a warning);
/// the warnings, or the error that refuses the container.
pub(crate) fn check(r: &mut pb::Resources, host: &Host<'_>) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return Err("Minimum memory limit allowed is 6MB".to_owned());
    }
    if r.memory > 0 && !host.cgroups.memory_limit {
        warnings.push(
            "Your kernel does not support memory limit capabilities or the cgroup is not \
             mounted. Limitation discarded."
                .to_owned(),
        );
        r.memory = 0;
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap != -1 && !host.cgroups.swap_limit {
        warnings.push(
            "Your kernel does not support swap limit capabilities or the cgroup is not \
             mounted. Memory limited without swap."
                .to_owned(),
        );
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap == 0 && !host.update {
        // dockerd's default: as much swap as memory.
        r.memory_swap = r.memory.saturating_mul(2);
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(
            "Minimum memoryswap limit should be larger than memory limit, see usage".to_owned(),
        );
    }
    if r.memory == 0 && r.memory_swap > 0 {
        return Err(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
                .to_owned(),
        );
    }
    if let Some(s) = r.memory_swappiness
        && !(0..=100).contains(&s)
    {
        return Err(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        ));
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
                .to_owned(),
        );
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return Err("Minimum memory reservation allowed is 6MB".to_owned());
    }
    // What the host's cgroups cannot enforce is discarded with dockerd's warning, never
    // dropped silently.
    let c = host.cgroups;
    let mut discard = |unsupported: bool, set: bool, text: &str| -> bool {
        let gone = unsupported && set;
        if gone {
            warnings.push(text.to_owned());
        }
        gone
    };
    if discard(
        c.version == berth_cgroup::CgroupVersion::V2,
        r.memory_swappiness.is_some(),
        "Your kernel does not support memory swappiness capabilities or the cgroup is not \
         mounted. Memory swappiness discarded.",
    ) {
        r.memory_swappiness = None;
    }
    if discard(
        !c.oom_kill_disable,
        r.oom_kill_disable == Some(true),
        "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
    ) {
        r.oom_kill_disable = None;
    }
    if discard(
        !c.cpu_shares,
        r.cpu_shares > 0,
        "Your kernel does not support CPU shares or the cgroup is not mounted. Shares \
         discarded.",
    ) {
        r.cpu_shares = 0;
    }
    if discard(
        !c.cpu_cfs_period,
        r.cpu_period > 0,
        "Your kernel does not support CPU cfs period or the cgroup is not mounted. Period \
         discarded.",
    ) {
        r.cpu_period = 0;
    }
    if discard(
        !c.cpu_cfs_quota,
        r.cpu_quota > 0,
        "Your kernel does not support CPU cfs quota or the cgroup is not mounted. Quota \
         discarded.",
    ) {
        r.cpu_quota = 0;
    }
    if discard(
        !c.cpu_set,
        !r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty(),
        "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
    ) {
        r.cpuset_cpus.clear();
        r.cpuset_mems.clear();
    }
    if discard(
        !c.pids_limit,
        r.pids_limit.is_some_and(|n| n > 0),
        "Your kernel does not support pids limit capabilities or the cgroup is not mounted. \
         PIDs limit discarded.",
    ) {
        r.pids_limit = None;
    }
    if discard(
        !c.blkio_weight,
        r.blkio_weight > 0,
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight \
         discarded.",
    ) {
        r.blkio_weight = 0;
    }
    if discard(
        !c.blkio_weight_device,
        !r.blkio_weight_devices.is_empty(),
        "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. \
         Weight-device discarded.",
    ) {
        r.blkio_weight_devices.clear();
    }
    for (supported, list, text) in [
        (
            c.blkio_read_bps_device,
            &mut r.read_bps,
            "Your kernel does not support BPS Block I/O read limit or the cgroup is not \
             mounted. Block I/O BPS read limit discarded.",
        ),
        (
            c.blkio_write_bps_device,
            &mut r.write_bps,
            "Your kernel does not support BPS Block I/O write limit or the cgroup is not \
             mounted. Block I/O BPS write limit discarded.",
        ),
        (
            c.blkio_read_iops_device,
            &mut r.read_iops,
            "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. \
             Block I/O IOPS read limit discarded.",
        ),
        (
            c.blkio_write_iops_device,
            &mut r.write_iops,
            "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. \
             Block I/O IOPS write limit discarded.",
        ),
    ] {
        if discard(!supported, !list.is_empty(), text) {
            list.clear();
        }
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err("Range of blkio weight is from 10 to 1000".to_owned());
    }
    if r.nano_cpus > 0 && !c.cpu_cfs_quota {
        return Err(
            "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler \
                    or the cgroup is not mounted"
                .to_owned(),
        );
    }
    if r.oom_kill_disable == Some(true) && r.memory == 0 {
        warnings.push(
            "OOM killer is disabled for the container, but no memory limit is set, this can \
             result in the system running out of resources."
                .to_owned(),
        );
    }
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".to_owned());
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".to_owned());
    }
    let max_nano = i64::from(host.cpus) * 1_000_000_000;
    if r.nano_cpus < 0 || r.nano_cpus > max_nano {
        return Err(format!(
            "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
            host.cpus, host.cpus
        ));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. \
             1000000)"
                .to_owned(),
        );
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".to_owned());
    }
    if r.cpu_shares < 0 {
        return Err(format!("invalid CPU shares: {}", r.cpu_shares));
    }
    for (value, kind) in [(&r.cpuset_cpus, "cpus"), (&r.cpuset_mems, "mems")] {
        if !value.is_empty() && parse_list(value).is_none() {
            return Err(format!("Invalid value {value} for cpuset {kind}"));
        }
    }
    if !r.cpuset_cpus.is_empty()
        && let Some(want) = parse_list(&r.cpuset_cpus)
        && want.iter().any(|c| *c >= host.cpus)
    {
        return Err(format!(
            "Requested CPUs are not available - requested {}, available: 0-{}",
            r.cpuset_cpus,
            host.cpus.saturating_sub(1)
        ));
    }
    // After the resources, as verifyPlatformContainerSettings checks it.
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            r.oom_score_adj
        ));
    }
    Ok(warnings)
}

/// A cpuset list (`0-2,4`); None when malformed.
fn parse_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The per-device block I/O settings with each path's device numbers, read from the host
/// at start as dockerd reads them (a path that is not there fails the start with its words).
pub(crate) fn device_io(
    r: &pb::Resources,
    into: &mut berth_bundle::Resources,
) -> Result<(), String> {
    fn numbers(path: &str) -> Result<(u64, u64), String> {
        let st = nix::sys::stat::stat(path).map_err(|e| {
            // Go's words for the errno, lower case.
            let text = e.desc();
            let mut chars = text.chars();
            let first = chars.next().map(|c| c.to_lowercase().collect::<String>());
            format!(
                "stat {path}: {}{}",
                first.unwrap_or_default(),
                chars.as_str()
            )
        })?;
        let dev = st.st_rdev;
        Ok((nix::sys::stat::major(dev), nix::sys::stat::minor(dev)))
    }
    for d in &r.blkio_weight_devices {
        let (major, minor) = numbers(&d.path)?;
        into.blkio_weight_device.push(berth_bundle::DeviceWeight {
            major,
            minor,
            weight: u16::try_from(d.weight).unwrap_or(u16::MAX),
        });
    }
    for (from, to) in [
        (&r.read_bps, &mut into.device_read_bps),
        (&r.write_bps, &mut into.device_write_bps),
        (&r.read_iops, &mut into.device_read_iops),
        (&r.write_iops, &mut into.device_write_iops),
    ] {
        for d in from {
            let (major, minor) = numbers(&d.path)?;
            to.push(berth_bundle::DeviceRate {
                major,
                minor,
                rate: d.rate,
            });
        }
    }
    Ok(())
}

/// The shim's cgroup values for checked limits (`--cpus` as a quota over a 100 ms period).
pub(crate) fn for_shim(r: &pb::Resources) -> berth_bundle::Resources {
    let (period, quota) = if r.nano_cpus > 0 {
        (100_000, r.nano_cpus / 10_000)
    } else {
        (u64::try_from(r.cpu_period).unwrap_or(0), r.cpu_quota)
    };
    berth_bundle::Resources {
        memory: r.memory,
        memory_swap: r.memory_swap,
        memory_reservation: r.memory_reservation,
        memory_swappiness: r.memory_swappiness.and_then(|s| u64::try_from(s).ok()),
        oom_kill_disable: r.oom_kill_disable == Some(true),
        cpu_shares: u64::try_from(r.cpu_shares).unwrap_or(0),
        cpu_period: period,
        cpu_quota: quota,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        pids_limit: r.pids_limit,
        blkio_weight: u16::try_from(r.blkio_weight).unwrap_or(0),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(swap: bool) -> CgroupInfo {
        let mut c = CgroupInfo::detect(std::path::Path::new("/nonexistent"));
        c.memory_limit = true;
        c.swap_limit = swap;
        c.cpu_cfs_period = true;
        c.cpu_cfs_quota = true;
        c.cpu_shares = true;
        c.cpu_set = true;
        c.pids_limit = true;
        c
    }

    fn err(r: pb::Resources) -> String {
        let h = host(true);
        check(
            &mut r.clone(),
            &Host {
                cgroups: &h,
                cpus: 2,
                update: false,
            },
        )
        .unwrap_err()
    }

    #[test]
    fn dockerds_checks_in_its_words() {
        let m = |memory, memory_swap| pb::Resources {
            memory,
            memory_swap,
            ..Default::default()
        };
        assert_eq!(err(m(1 << 20, 0)), "Minimum memory limit allowed is 6MB");
        assert!(err(m(10 << 20, 8 << 20)).starts_with("Minimum memoryswap limit"));
        assert!(err(m(0, 8 << 20)).starts_with("You should always set the Memory limit"));
        assert_eq!(
            err(pb::Resources {
                nano_cpus: 3_000_000_000,
                ..Default::default()
            }),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert!(
            err(pb::Resources {
                nano_cpus: 500_000_000,
                cpu_period: 100_000,
                ..Default::default()
            })
            .starts_with("Conflicting options")
        );
        assert!(
            err(pb::Resources {
                cpu_quota: 10,
                ..Default::default()
            })
            .starts_with("CPU cfs quota")
        );
        assert!(
            err(pb::Resources {
                cpuset_cpus: "5".to_owned(),
                ..Default::default()
            })
            .starts_with("Requested CPUs are not available")
        );
        for n in [1001, -1001] {
            assert_eq!(
                err(pb::Resources {
                    oom_score_adj: n,
                    ..Default::default()
                }),
                format!("Invalid value {n}, range for oom score adj is [-1000, 1000]")
            );
        }
        // No swap accounting: a warning, and swap left unlimited.
        let h = host(false);
        let mut r = m(10 << 20, 20 << 20);
        let w = check(
            &mut r,
            &Host {
                cgroups: &h,
                cpus: 2,
                update: false,
            },
        )
        .unwrap();
        assert!(w[0].contains("Memory limited without swap"));
        assert_eq!(r.memory_swap, -1);
        // A controller the host lacks: discarded with dockerd's warning, not dropped silently.
        let mut h = host(true);
        h.pids_limit = false;
        h.cpu_shares = false;
        let mut r = pb::Resources {
            pids_limit: Some(10),
            cpu_shares: 512,
            oom_kill_disable: Some(true),
            memory: 64 << 20,
            ..Default::default()
        };
        let w = check(
            &mut r,
            &Host {
                cgroups: &h,
                cpus: 2,
                update: false,
            },
        )
        .unwrap();
        assert_eq!(
            (r.pids_limit, r.cpu_shares, r.oom_kill_disable),
            (None, 0, None)
        );
        assert!(
            w.iter().any(|w| w.contains("PIDs limit discarded")),
            "{w:?}"
        );
        assert!(w.iter().any(|w| w.contains("Shares discarded")), "{w:?}");
        assert!(
            w.iter().any(|w| w.contains("OomKillDisable discarded")),
            "{w:?}"
        );
    }

    /// Device throttles the host lacks are discarded with dockerd's warnings; the ones it
    /// has are kept; a device path is read into its numbers at start.
    #[test]
    fn device_io_checked_and_resolved() {
        let mut h = host(true);
        h.blkio_read_bps_device = true;
        let dev = |rate| pb::ThrottleDevice {
            path: "/dev/null".to_owned(),
            rate,
        };
        let mut r = pb::Resources {
            read_bps: vec![dev(1 << 20)],
            write_iops: vec![dev(10)],
            blkio_weight_devices: vec![pb::WeightDevice {
                path: "/dev/null".to_owned(),
                weight: 300,
            }],
            ..Default::default()
        };
        let w = check(
            &mut r,
            &Host {
                cgroups: &h,
                cpus: 2,
                update: false,
            },
        )
        .unwrap();
        assert_eq!(
            w,
            [
                "Your kernel does not support Block I/O weight_device or the cgroup is not \
                 mounted. Weight-device discarded.",
                "Your kernel does not support IOPS Block write limit or the cgroup is not \
                 mounted. Block I/O IOPS write limit discarded."
            ]
        );
        assert!(r.write_iops.is_empty() && r.blkio_weight_devices.is_empty());
        let mut shim = for_shim(&r);
        device_io(&r, &mut shim).unwrap();
        // /dev/null is 1:3 on Linux.
        assert_eq!(
            shim.device_read_bps,
            [berth_bundle::DeviceRate {
                major: 1,
                minor: 3,
                rate: 1 << 20
            }]
        );
        r.read_bps[0].path = "/dev/no-such-disk".to_owned();
        assert_eq!(
            device_io(&r, &mut shim).unwrap_err(),
            "stat /dev/no-such-disk: no such file or directory"
        );
    }

    #[test]
    fn cpus_become_a_quota() {
        let r = for_shim(&pb::Resources {
            nano_cpus: 500_000_000,
            pids_limit: Some(10),
            ..Default::default()
        });
        assert_eq!(
            (r.cpu_period, r.cpu_quota, r.pids_limit),
            (100_000, 50_000, Some(10))
        );
        assert_eq!(parse_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_list("a"), None);
    }
}

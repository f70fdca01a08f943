//! The container's cgroup limits, as the shim writes them (v1 controller files or their v2
//! equivalents). Zero or None leaves a limit unset.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// Bytes.
    pub memory: i64,
    /// Memory plus swap, bytes; -1 unlimited swap.
    pub memory_swap: i64,
    /// Bytes (v1 soft limit, v2 memory.low).
    pub memory_reservation: i64,
    /// 0 to 100 (v1 only).
    pub memory_swappiness: Option<u64>,
    /// v1 only.
    pub oom_kill_disable: bool,
    /// Relative weight, 2 to 262144 (v2: converted to cpu.weight).
    pub cpu_shares: u64,
    /// Microseconds.
    pub cpu_period: u64,
    /// Microseconds per period; 0 unset.
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// None or a value of 0 or less: unlimited.
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000 (v2: converted to io.weight); 0 unset.
    pub blkio_weight: u16,
    /// Per-device weights (`--blkio-weight-device`).
    pub blkio_weight_device: Vec<DeviceWeight>,
    /// Per-device throttles: bytes per second (`--device-read-bps`, `--device-write-bps`)
    /// and operations per second (`--device-read-iops`, `--device-write-iops`).
    pub device_read_bps: Vec<DeviceRate>,
    pub device_write_bps: Vec<DeviceRate>,
    pub device_read_iops: Vec<DeviceRate>,
    pub device_write_iops: Vec<DeviceRate>,
}

/// A block device's weight, 10 to 1000.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceWeight {
    pub major: u64,
    pub minor: u64,
    pub weight: u16,
}

/// A block device's throttle (bytes or operations per second).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceRate {
    pub major: u64,
    pub minor: u64,
    pub rate: u64,
}

impl Resources {
    /// The four throttle lists with their v1 file (`blkio.throttle.<name>`) and v2 `io.max`
    /// key.
    pub fn throttles(&self) -> [(&[DeviceRate], &'static str, &'static str); 4] {
        [
            (&self.device_read_bps, "read_bps_device", "rbps"),
            (&self.device_write_bps, "write_bps_device", "wbps"),
            (&self.device_read_iops, "read_iops_device", "riops"),
            (&self.device_write_iops, "write_iops_device", "wiops"),
        ]
    }

    /// Whether any per-device block I/O setting is given.
    pub fn has_device_io(&self) -> bool {
        !self.blkio_weight_device.is_empty() || self.throttles().iter().any(|t| !t.0.is_empty())
    }
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    pub fn validate(&self) -> Result<(), String> {
        let list = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
        };
        if !list(&self.cpuset_cpus) || !list(&self.cpuset_mems) {
            return Err("invalid cpuset".to_owned());
        }
        if self.memory_swappiness.is_some_and(|s| s > 100) {
            return Err("invalid memory swappiness".to_owned());
        }
        Ok(())
    }
}

/// runc's conversion of a blkio weight (10..1000) to a v2 io.weight (1..10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990
}

/// Docker's (runc's) conversion of cpu shares (2..262144) to a v2 cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_as_runc_converts_them() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(shares_to_weight(0), 0);
    }
}

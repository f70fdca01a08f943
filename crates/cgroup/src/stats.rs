//! A cgroup's resource usage as its files report it: CPU (nanoseconds), memory (bytes, with
//! the kernel's `memory.stat` keys as they are: v1 `total_inactive_file`, v2
//! `inactive_file`), pids and block I/O. Which keys a client sees is the front end's choice.

use std::collections::BTreeMap;

use crate::CgroupVersion;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Which backend read memory (and so which `memory.stat` keys are there).
    pub version: CgroupVersion,
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub total: u64,
    pub kernel: u64,
    pub user: u64,
    /// v1 only.
    pub percpu: Vec<u64>,
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub usage: u64,
    /// v1's max_usage_in_bytes (v2: memory.peak where the kernel has it).
    pub max_usage: u64,
    /// `u64::MAX` when unlimited ("max").
    pub limit: u64,
    /// v1 failcnt; v2 the `oom` count of memory.events.
    pub failcnt: u64,
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pids {
    pub current: u64,
    /// 0: unlimited.
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// v1 has the eight lists; v2 only bytes read and written per device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blkio {
    pub v1: bool,
    pub service_bytes: Vec<BlkioEntry>,
    pub serviced: Vec<BlkioEntry>,
    pub queued: Vec<BlkioEntry>,
    pub service_time: Vec<BlkioEntry>,
    pub wait_time: Vec<BlkioEntry>,
    pub merged: Vec<BlkioEntry>,
    pub time: Vec<BlkioEntry>,
    pub sectors: Vec<BlkioEntry>,
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, cgroup.events).
pub(crate) fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The host's CPU time from /proc/stat (the `cpu` line's first seven fields, in clock ticks
/// of 10 ms, as nanoseconds) and the number of CPUs it lists.
pub fn system_cpu(proc_stat: &str) -> (u64, u32) {
    let mut total = 0;
    let mut cpus = 0;
    for line in proc_stat.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            break;
        };
        if let Some(fields) = rest.strip_prefix(' ') {
            let ticks: u64 = fields
                .split_whitespace()
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum();
            total = ticks.saturating_mul(10_000_000);
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            cpus += 1;
        }
    }
    (total, cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat() {
        let text = "cpu  10 0 5 100 1 0 2 7 0 0\ncpu0 5 0 2 50 0 0 1 0 0 0\n\
                    cpu1 5 0 3 50 1 0 1 0 0 0\nintr 1 2 3\n";
        assert_eq!(system_cpu(text), (118 * 10_000_000, 2));
    }
}

//! One sample of a container: its cgroup's files (through `berth_cgroup`, whichever version
//! holds each controller), the host's CPU time, and the counters of the interfaces in its
//! network namespace. What does not change while the container runs is resolved once: its
//! cgroup's directories (from mountinfo) per process, the machine's memory per runtime.

use std::{collections::HashMap, sync::OnceLock};

use berth_cgroup::Cgroup;
use berth_proto::runtime::v1 as pb;

use crate::{container::Container, lifecycle::Containers};

/// The host's CPU time and CPUs, read once for every container sampled at the same time (as
/// dockerd's collector does).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Host {
    pub(crate) system: u64,
    pub(crate) cpus: u32,
}

impl Host {
    pub(crate) fn read() -> Host {
        let (system, cpus) = berth_cgroup::stats::system_cpu(
            &std::fs::read_to_string("/proc/stat").unwrap_or_default(),
        );
        Host { system, cpus }
    }
}

/// What a container is sampled from: its record and, while it runs, its cgroup.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) container: Container,
    cgroup: Option<Cgroup>,
}

impl Source {
    /// Resolves the cgroup of a running container (mountinfo is read here, not per sample).
    pub(crate) fn new(container: Container) -> Source {
        let cgroup = if container.state.running() {
            Containers::cgroup(&container).ok()
        } else {
            None
        };
        Source { container, cgroup }
    }

    /// Whether this source still describes `c`: the same process of the same container.
    pub(crate) fn same(&self, c: &Container) -> bool {
        self.container.state.running() == c.state.running()
            && self.container.state.pid == c.state.pid
            && self.container.name == c.name
    }

    pub(crate) fn running(&self) -> bool {
        self.container.state.running()
    }

    /// A sample now; dockerd's zeroed answer for a container that does not run.
    pub(crate) fn read(&self, host: &Host) -> pb::StatsSample {
        let c = &self.container;
        let mut out = zero(c);
        let (true, Some(cg)) = (c.state.running(), &self.cgroup) else {
            return out;
        };
        let s = cg.stats();
        out.read = crate::container::now_nanos();
        out.cgroup_version = match s.version {
            berth_cgroup::CgroupVersion::V1 => 1,
            berth_cgroup::CgroupVersion::V2 => 2,
        };
        out.cpu = Some(pb::CpuStats {
            total_usage: s.cpu.total,
            percpu_usage: s.cpu.percpu,
            usage_in_kernelmode: s.cpu.kernel,
            usage_in_usermode: s.cpu.user,
            system_cpu_usage: host.system,
            online_cpus: host.cpus,
            throttling_periods: s.cpu.periods,
            throttled_periods: s.cpu.throttled_periods,
            throttled_time: s.cpu.throttled_time,
        });
        // An unlimited cgroup reports the host's memory, as dockerd does.
        let machine = machine_memory();
        out.memory = Some(pb::MemoryStats {
            usage: s.memory.usage,
            max_usage: s.memory.max_usage,
            limit: if machine > 0 {
                s.memory.limit.min(machine)
            } else {
                s.memory.limit
            },
            failcnt: s.memory.failcnt,
            stats: s.memory.stats.into_iter().collect(),
        });
        out.pids = Some(pb::PidsStats {
            current: s.pids.current,
            limit: s.pids.limit,
        });
        let entries = |l: Vec<berth_cgroup::stats::BlkioEntry>| -> Vec<pb::BlkioEntry> {
            l.into_iter()
                .map(|e| pb::BlkioEntry {
                    major: e.major,
                    minor: e.minor,
                    op: e.op,
                    value: e.value,
                })
                .collect()
        };
        let b = s.blkio;
        out.blkio = Some(pb::BlkioStats {
            io_service_bytes_recursive: entries(b.service_bytes),
            io_serviced_recursive: entries(b.serviced),
            io_queue_recursive: entries(b.queued),
            io_service_time_recursive: entries(b.service_time),
            io_wait_time_recursive: entries(b.wait_time),
            io_merged_recursive: entries(b.merged),
            io_time_recursive: entries(b.time),
            sectors_recursive: entries(b.sectors),
        });
        // The host's interfaces are not the container's (dockerd shows none for host mode).
        if c.network_mode() != "host" && c.state.pid > 0 {
            let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", c.state.pid));
            out.networks = net_dev(&dev.unwrap_or_default());
        }
        out
    }
}

/// dockerd's answer for a container that does not run: its ID and name, nothing else.
pub(crate) fn zero(c: &Container) -> pb::StatsSample {
    pb::StatsSample {
        id: c.id.clone(),
        name: c.name.clone(),
        ..Default::default()
    }
}

/// MemTotal of /proc/meminfo, in bytes, read once (dockerd too reads it at start).
fn machine_memory() -> u64 {
    static MEM: OnceLock<u64> = OnceLock::new();
    *MEM.get_or_init(|| {
        meminfo_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default())
    })
}

fn meminfo_total(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The counters of /proc/<pid>/net/dev by interface, loopback left out.
fn net_dev(text: &str) -> HashMap<String, pb::NetworkStats> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|n| n.parse().unwrap_or(0))
                .collect();
            if v.len() < 12 {
                return None;
            }
            Some((
                name.to_owned(),
                pb::NetworkStats {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
        let n = net_dev(text);
        assert_eq!(n.len(), 1);
        let e = &n["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (5000, 40, 1, 2)
        );
        assert_eq!(
            (e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped),
            (3000, 30, 3, 4)
        );
    }

    #[test]
    fn machine_memory_in_bytes() {
        assert_eq!(
            meminfo_total("MemTotal:        2048 kB\nMemFree: 1 kB\n"),
            2048 * 1024
        );
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), 0);
    }
}

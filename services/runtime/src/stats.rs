//! docker stats: samples of a container's cgroup (through `berth_cgroup`, whichever version
//! holds each controller), the host's CPU time, and the counters of the interfaces in its
//! network namespace, about every second. The front end renders them as dockerd does.

use std::{sync::Arc, time::Duration};

use berth_proto::runtime::v1 as pb;
use tokio::sync::mpsc;
use tonic::Status;

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

/// How often dockerd's collector samples.
const INTERVAL: Duration = Duration::from_secs(1);

impl Containers {
    /// The samples for `req`; the stream ends when the client goes, or the container is
    /// removed.
    pub(crate) fn stats(
        self: &Arc<Self>,
        req: &pb::StatsRequest,
    ) -> Result<mpsc::Receiver<Result<pb::StatsSample, Status>>, ContainerError> {
        let c = self.find(&req.id)?;
        let (tx, rx) = mpsc::channel(2);
        let this = self.clone();
        let (stream, one_shot) = (req.stream, req.one_shot);
        tokio::spawn(async move {
            let mut prev: Option<pb::StatsSample> = None;
            loop {
                let Ok(Some(c)) = this.store.get(&c.id) else {
                    break;
                };
                let running = c.state.running();
                if !stream && !running {
                    let _ = tx.send(Ok(zero(&c))).await;
                    break;
                }
                let mut s = if running { sample(c).await } else { zero(&c) };
                if !stream && !one_shot && prev.is_none() {
                    prev = Some(s);
                    tokio::time::sleep(INTERVAL).await;
                    continue;
                }
                if let Some(p) = prev.take() {
                    s.preread = p.read;
                    s.precpu = p.cpu;
                }
                prev = Some(s.clone());
                if tx.send(Ok(s)).await.is_err() || !stream {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(INTERVAL) => {}
                    () = tx.closed() => break,
                }
            }
        });
        Ok(rx)
    }
}

/// dockerd's answer for a container that does not run: its ID and name, nothing else.
fn zero(c: &Container) -> pb::StatsSample {
    pb::StatsSample {
        id: c.id.clone(),
        name: c.name.clone(),
        ..Default::default()
    }
}

/// One sample of a running container, read in a blocking task.
async fn sample(c: Container) -> pb::StatsSample {
    let fallback = zero(&c);
    tokio::task::spawn_blocking(move || read_sample(&c))
        .await
        .unwrap_or(fallback)
}

fn read_sample(c: &Container) -> pb::StatsSample {
    let mut out = zero(c);
    let Ok(cg) = Containers::cgroup(c) else {
        return out;
    };
    let s = cg.stats();
    out.read = crate::container::now_nanos();
    let (system, cpus) =
        berth_cgroup::stats::system_cpu(&std::fs::read_to_string("/proc/stat").unwrap_or_default());
    out.cgroup_version = match s.version {
        berth_cgroup::CgroupVersion::V1 => 1,
        berth_cgroup::CgroupVersion::V2 => 2,
    };
    out.cpu = Some(pb::CpuStats {
        total_usage: s.cpu.total,
        percpu_usage: s.cpu.percpu,
        usage_in_kernelmode: s.cpu.kernel,
        usage_in_usermode: s.cpu.user,
        system_cpu_usage: system,
        online_cpus: cpus,
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

/// MemTotal of /proc/meminfo, in bytes.
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The counters of /proc/<pid>/net/dev by interface, loopback left out.
fn net_dev(text: &str) -> std::collections::HashMap<String, pb::NetworkStats> {
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
}

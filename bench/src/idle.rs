//! The idle footprint: the resident memory of every Berth process (the five services and the
//! nats-server `berth up` started) beside dockerd and its containerd, both engines up with no
//! container, no image and no call in flight.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use crate::{
    host::{ProcMem, poll_until, proc_mem, status_kib},
    report::{Stats, stats},
};

/// The target: Berth's idle RSS at most this fraction of dockerd + containerd's.
pub(crate) const TARGET_RATIO: f64 = 0.5;

/// The Berth processes measured, by binary name.
pub(crate) const BERTH_PROCESSES: [&str; 6] = [
    "berth-api-gateway",
    "berth-runtime",
    "berth-images",
    "berth-network",
    "berth-volumes",
    "nats-server",
];

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// How long both engines sit idle before the first sample.
    pub(crate) settle: Duration,
    /// Samples, one a second.
    pub(crate) samples: usize,
}

/// One process, over the samples.
#[derive(Debug, Clone)]
pub(crate) struct Process {
    pub(crate) name: String,
    /// VmRSS over the samples, KiB.
    pub(crate) rss: Stats,
    /// The last sample, for the split into anonymous and file pages.
    pub(crate) last: ProcMem,
    pub(crate) threads: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct IdleResults {
    pub(crate) plan: Plan,
    pub(crate) berth: Vec<Process>,
    pub(crate) dockerd: Vec<Process>,
}

/// Samples `berth` and `dockerd` (name, pid) once a second after `plan.settle`.
pub(crate) fn measure(
    berth: &[(String, i32)],
    dockerd: &[(String, i32)],
    plan: &Plan,
) -> anyhow::Result<IdleResults> {
    anyhow::ensure!(plan.samples >= 1, "--idle-samples must be at least 1");
    pause("both engines to sit idle", plan.settle);
    let all: Vec<&(String, i32)> = berth.iter().chain(dockerd).collect();
    let mut samples: Vec<Vec<ProcMem>> = vec![Vec::new(); all.len()];
    for i in 0..plan.samples {
        if i > 0 {
            pause("the next idle sample", Duration::from_secs(1));
        }
        for (k, (name, pid)) in all.iter().enumerate() {
            let m = proc_mem(*pid)
                .ok_or_else(|| anyhow::anyhow!("{name} (pid {pid}) exited while idle"))?;
            samples[k].push(m);
        }
    }
    let process = |k: usize| {
        let (name, pid) = all[k];
        let rss: Vec<f64> = samples[k].iter().map(|m| m.rss as f64).collect();
        Process {
            name: name.clone(),
            rss: stats(&rss).expect("at least one sample"),
            last: *samples[k].last().expect("at least one sample"),
            threads: status_kib(*pid, "Threads"),
        }
    };
    Ok(IdleResults {
        plan: *plan,
        berth: (0..berth.len()).map(process).collect(),
        dockerd: (berth.len()..all.len()).map(process).collect(),
    })
}

/// Waits `d` (a measured pause, not a wait for an event).
fn pause(what: &str, d: Duration) {
    let until = Instant::now() + d;
    poll_until(what, d + Duration::from_secs(1), || Instant::now() >= until);
}

/// The sum of the processes' median VmRSS, KiB.
fn total(ps: &[Process]) -> f64 {
    ps.iter().map(|p| p.rss.median).sum()
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

impl IdleResults {
    pub(crate) fn ratio(&self) -> f64 {
        total(&self.berth) / total(&self.dockerd)
    }

    fn verdict(&self) -> &'static str {
        if self.ratio() <= TARGET_RATIO {
            "met"
        } else {
            "not met"
        }
    }

    pub(crate) fn summary_lines(&self) -> Vec<String> {
        vec![format!(
            "Idle RSS of Berth's {} processes (five services + nats-server) over dockerd + \
             containerd: {} / {} = **{:.2}×**; the target (at most {TARGET_RATIO}×) is **{}**",
            self.berth.len(),
            mib(total(&self.berth)),
            mib(total(&self.dockerd)),
            self.ratio(),
            self.verdict()
        )]
    }

    pub(crate) fn table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "idle footprint (VmRSS, median of {} samples)",
            self.plan.samples
        );
        for p in self.berth.iter().chain(&self.dockerd) {
            let _ = writeln!(
                t,
                "  {:<20} {:>10}  threads {}",
                p.name,
                mib(p.rss.median),
                p.threads.map_or("?".to_owned(), |n| n.to_string())
            );
        }
        let _ = writeln!(
            t,
            "  Berth {} / dockerd + containerd {} = {:.2}x (target <= {TARGET_RATIO}x: {})",
            mib(total(&self.berth)),
            mib(total(&self.dockerd)),
            self.ratio(),
            self.verdict()
        );
    }

    pub(crate) fn markdown(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "| process | VmRSS (median) | RssAnon | RssFile | PSS | threads |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        let row = |s: &mut String, p: &Process| {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                p.name,
                mib(p.rss.median),
                mib(p.last.anon as f64),
                mib(p.last.file as f64),
                p.last.pss.map_or("?".to_owned(), |v| mib(v as f64)),
                p.threads.map_or("?".to_owned(), |n| n.to_string())
            );
        };
        for p in &self.berth {
            row(s, p);
        }
        let _ = writeln!(
            s,
            "| **Berth, total** | **{}** | | | | |",
            mib(total(&self.berth))
        );
        for p in &self.dockerd {
            row(s, p);
        }
        let _ = writeln!(
            s,
            "| **dockerd + containerd** | **{}** | | | | |",
            mib(total(&self.dockerd))
        );
        let _ = writeln!(
            s,
            "\nBerth over dockerd: **{:.2}×** (target at most {TARGET_RATIO}×: **{}**).\n",
            self.ratio(),
            self.verdict()
        );
        let _ = writeln!(s, "### Method\n");
        let _ = writeln!(
            s,
            "Both engines freshly started (`berth up` with its defaults; dockerd as in the other \
             parts), no container and no image in either, nothing calling them. After {:.0} s \
             idle, {} samples one second apart of `/proc/<pid>/status` (VmRSS, RssAnon, \
             RssFile, Threads) and `/proc/<pid>/smaps_rollup` (PSS) of each process; the table \
             gives each process's median VmRSS and the last sample's split. VmRSS counts shared \
             pages (libc, the binary's code) in full in every process, as for dockerd and \
             containerd. `berth up` itself (a supervisor, like systemd for the units) is not \
             counted. The network and volumes services run on one thread (their tokio runtime \
             is current-thread; `berth.services.<name>.worker-threads` changes it); the gateway, \
             runtime and images keep a worker per core. The service binaries are the release \
             build, linked with packed relative relocations and identical code folding (their \
             build script services/link_args.rs; bench/IDLE-MEMORY.md).",
            self.plan.settle.as_secs_f64(),
            self.plan.samples
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(name: &str, kib: f64) -> Process {
        Process {
            name: name.to_owned(),
            rss: stats(&[kib]).unwrap(),
            last: ProcMem {
                rss: kib as u64,
                hwm: kib as u64,
                anon: 1024,
                file: kib as u64 - 1024,
                pss: None,
                private: None,
            },
            threads: Some(2),
        }
    }

    #[test]
    fn the_ratio_sums_every_process_of_each_engine() {
        let r = IdleResults {
            plan: Plan {
                settle: Duration::from_secs(10),
                samples: 5,
            },
            berth: BERTH_PROCESSES
                .iter()
                .map(|n| process(n, 10.0 * 1024.0))
                .collect(),
            dockerd: vec![
                process("dockerd", 80.0 * 1024.0),
                process("containerd", 40.0 * 1024.0),
            ],
        };
        assert!((r.ratio() - 0.5).abs() < 1e-9);
        assert_eq!(r.verdict(), "met");
        let line = r.summary_lines().join("\n");
        assert!(line.contains("60.0 MiB / 120.0 MiB = **0.50×**"), "{line}");
        let mut md = String::new();
        r.markdown(&mut md);
        assert!(md.contains("| berth-network | 10.0 MiB |"), "{md}");
        assert!(
            md.contains("| **dockerd + containerd** | **120.0 MiB** |"),
            "{md}"
        );
    }
}

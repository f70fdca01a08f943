//! The stats benchmark (the runtime II issue): with N busybox containers running in each
//! engine, `docker stats --no-stream` of all of them, and the latency of one container's
//! first stats sample (`docker stats --no-stream <id>`), and the CPU the engine's processes
//! use while `docker stats` streams all of them (`stats_cpu.rs`), both engines driven by the
//! same docker CLI in the same run. Starting the containers is setup, not timed.

use std::fmt::Write as _;

use std::time::Duration;

use anyhow::ensure;

use crate::{
    Target,
    containers::{ensure_none, remove_all, timed},
    report::{Stats, median_ratio, stats, verdict},
    stats_cpu::{self, Counted},
};

/// The target: Berth at most this fraction of dockerd.
pub(crate) const STATS_TARGET_RATIO: f64 = 0.5;

/// What the stats benchmark runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Containers running in each engine while `docker stats --no-stream` is timed.
    pub(crate) containers: usize,
    /// Timed runs of each measurement per engine.
    pub(crate) runs: usize,
    /// Windows of streamed `docker stats` whose CPU is counted, per engine.
    pub(crate) cpu_runs: usize,
    /// How long each window lasts.
    pub(crate) cpu_window: Duration,
}

/// One engine's timings, seconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineStats {
    /// `docker stats --no-stream` of every running container.
    pub(crate) all: Vec<f64>,
    /// `docker stats --no-stream <id>` of one.
    pub(crate) one: Vec<f64>,
    /// CPU seconds of the counted processes in a window of streamed `docker stats`.
    pub(crate) cpu: Vec<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct StatsResults {
    pub(crate) image: String,
    pub(crate) plan: Plan,
    pub(crate) berth: EngineStats,
    pub(crate) dockerd: EngineStats,
    /// What each engine's CPU row counts.
    pub(crate) counted: [String; 2],
}

/// The whole stats benchmark for both engines; every container is removed at the end.
pub(crate) fn run(
    targets: [&Target<'_>; 2],
    counted: [&Counted; 2],
    image: &str,
    plan: &Plan,
) -> anyhow::Result<StatsResults> {
    ensure!(
        plan.containers >= 1 && plan.runs >= 1,
        "--stats-containers and --stats-runs must be at least 1"
    );
    let mut results = [EngineStats::default(), EngineStats::default()];
    let r = measure(targets, image, plan, &mut results)
        .and_then(|()| streamed_cpu(targets, counted, plan, &mut results));
    for t in targets {
        let _ = remove_all(t);
    }
    r?;
    let [berth, dockerd] = results;
    Ok(StatsResults {
        image: image.to_owned(),
        plan: *plan,
        berth,
        dockerd,
        counted: counted.map(Counted::describe),
    })
}

/// The CPU of each engine's counted processes while `docker stats` streams, the engines
/// alternating.
fn streamed_cpu(
    targets: [&Target<'_>; 2],
    counted: [&Counted; 2],
    plan: &Plan,
    results: &mut [EngineStats; 2],
) -> anyhow::Result<()> {
    eprintln!(
        "berth-bench: docker stats streamed: {} windows of {:?} per engine...",
        plan.cpu_runs, plan.cpu_window
    );
    for i in 0..plan.cpu_runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let secs =
                stats_cpu::measure(targets[k], counted[k], plan.containers, plan.cpu_window)?;
            results[k].cpu.push(secs);
        }
    }
    Ok(())
}

fn measure(
    targets: [&Target<'_>; 2],
    image: &str,
    plan: &Plan,
    results: &mut [EngineStats; 2],
) -> anyhow::Result<()> {
    let mut first = Vec::new();
    for t in targets {
        ensure_none(t, "before the stats benchmark")?;
        eprintln!(
            "berth-bench: {}: starting {} containers for docker stats...",
            t.kind.name(),
            plan.containers
        );
        for i in 0..plan.containers {
            let id = t.docker_ok(&["run", "-d", "--network", "none", image, "sleep", "3600"])?;
            if i == 0 {
                first.push(id.trim().to_owned());
            }
        }
    }
    eprintln!(
        "berth-bench: docker stats --no-stream: {} timed runs per engine...",
        plan.runs
    );
    let format = ["--format", "{{.ID}} {{.CPUPerc}} {{.MemUsage}}"];
    for i in 0..plan.runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let t = targets[k];
            let mut args = vec!["stats", "--no-stream"];
            args.extend(format);
            let (secs, out) = timed(t, &args)?;
            let lines = out.lines().filter(|l| !l.trim().is_empty()).count();
            ensure!(
                lines == plan.containers,
                "{}: docker stats --no-stream listed {lines} of {} containers:\n{out}",
                t.kind.name(),
                plan.containers
            );
            results[k].all.push(secs);
            args.push(&first[k]);
            let (secs, out) = timed(t, &args)?;
            ensure!(
                out.lines().count() == 1,
                "{}: docker stats --no-stream {} printed:\n{out}",
                t.kind.name(),
                first[k]
            );
            results[k].one.push(secs);
        }
    }
    Ok(())
}

/// Which of an engine's timings a row shows.
type Pick = fn(&EngineStats) -> &Vec<f64>;

fn secs3(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.3}"))
}

impl StatsResults {
    fn medians(&self, f: Pick) -> (Option<Stats>, Option<Stats>) {
        (stats(f(&self.berth)), stats(f(&self.dockerd)))
    }

    fn ratio(&self, f: Pick) -> Option<f64> {
        median_ratio(f(&self.berth), f(&self.dockerd))
    }

    fn verdict(r: Option<f64>) -> String {
        verdict(r, STATS_TARGET_RATIO)
    }

    /// The rows: a name, the timings, Berth's and dockerd's median seconds.
    fn rows(&self) -> [(String, Pick); 3] {
        [
            (
                format!(
                    "`docker stats --no-stream` of {} running containers, median (s)",
                    self.plan.containers
                ),
                |e| &e.all,
            ),
            (
                "`docker stats --no-stream <id>` (first sample of one), median (s)".to_owned(),
                |e| &e.one,
            ),
            (
                format!(
                    "CPU used while `docker stats` streams {} containers for {} s, median (s)",
                    self.plan.containers,
                    self.plan.cpu_window.as_secs()
                ),
                |e| &e.cpu,
            ),
        ]
    }

    pub(crate) fn summary_lines(&self) -> Vec<String> {
        self.rows()
            .into_iter()
            .map(|(name, f)| {
                let (b, d) = self.medians(f);
                format!(
                    "{} of {}: Berth {} s, dockerd {} s; Berth/dockerd **{}**",
                    name.trim_end_matches(", median (s)"),
                    if name.starts_with("CPU") {
                        self.plan.cpu_runs
                    } else {
                        self.plan.runs
                    },
                    secs3(b.map(|s| s.median)),
                    secs3(d.map(|s| s.median)),
                    Self::verdict(self.ratio(f))
                )
            })
            .collect()
    }

    pub(crate) fn table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "stats: {} containers of {}, {} runs",
            self.plan.containers, self.image, self.plan.runs
        );
        let _ = writeln!(t, "{:<80} {:>8} {:>8}", "", "Berth", "dockerd");
        for (name, f) in self.rows() {
            let (b, d) = self.medians(f);
            let _ = writeln!(
                t,
                "{:<80} {:>8} {:>8}",
                name.replace('`', ""),
                secs3(b.map(|s| s.median)),
                secs3(d.map(|s| s.median))
            );
            let _ = writeln!(t, "  ratio Berth/dockerd: {}", Self::verdict(self.ratio(f)));
        }
    }

    pub(crate) fn markdown(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "`docker stats --no-stream` with {} containers running `{} sleep 3600` in each \
             engine (`--network none`), `docker stats --no-stream <id>` of one of them (the \
             time to its first sample), and the CPU time the engines' processes use while \
             `docker stats` streams all of them.\n",
            self.plan.containers, self.image
        );
        let _ = writeln!(s, "| | Berth | dockerd | Berth/dockerd |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (name, f) in self.rows() {
            let (b, d) = self.medians(f);
            let (b, d) = (b.map(|s| s.median), d.map(|s| s.median));
            let r = b.zip(d).map(|(b, d)| format!("{:.3}×", b / d));
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} |",
                secs3(b),
                secs3(d),
                r.unwrap_or_else(|| "n/a".to_owned())
            );
        }
        let _ = writeln!(s, "\n### Method\n");
        let _ = writeln!(
            s,
            "Both engines are driven by the same docker CLI (`--format '{{{{.ID}}}} \
             {{{{.CPUPerc}}}} {{{{.MemUsage}}}}'`), timed wall clock from spawning the CLI to \
             its exit, the engines alternating. Each of the {} rounds times the whole list \
             (which must name every container) then the one container. Starting the \
             containers is setup, not timed; all are removed at the end.\n",
            self.plan.runs
        );
        let _ = writeln!(
            s,
            "The no-stream answer needs a CPU window (`precpu`): dockerd waits for two ticks \
             of its one-second collector; Berth's runtime samples the container, waits 100 ms \
             and samples again (the CPU percentage the CLI computes, CPU delta over system \
             delta, is the same quantity over any window; 100 ms spans 20 of /proc/stat's \
             10 ms ticks on 2 CPUs and one CFS period). The docker CLI then prints on its \
             500 ms ticker, a floor under both engines.\n"
        );
        let _ = writeln!(
            s,
            "Streamed CPU: with the same containers running, `docker stats --format \
             '{{{{.ID}}}} {{{{.CPUPerc}}}}'` (streamed) runs against one engine; once it has \
             printed its first table, utime + stime (`/proc/<pid>/stat`) of the counted \
             processes is read, again {} s later, and the CLI is stopped; {} windows per \
             engine, alternating, median shown. Counted for Berth: {} (the runtime samples \
             every watched container once a second in one collector; the gateway renders the \
             JSON); for dockerd: {} (dockerd's collector asks containerd for each task's \
             metrics, which asks the container's shim). The CLI is not counted.\n",
            self.plan.cpu_window.as_secs(),
            self.plan.cpu_runs,
            self.counted[0],
            self.counted[1]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_verdicts() {
        let r = StatsResults {
            image: "busybox".into(),
            plan: Plan {
                containers: 50,
                runs: 2,
                cpu_runs: 3,
                cpu_window: Duration::from_secs(10),
            },
            berth: EngineStats {
                all: vec![0.2, 0.4],
                one: vec![0.1, 0.1],
                cpu: vec![0.3, 0.2, 0.4],
            },
            dockerd: EngineStats {
                all: vec![2.0, 2.0],
                one: vec![0.1, 0.1],
                cpu: vec![1.0, 1.0, 2.0],
            },
            counted: [
                "`berth-runtime` and every `berth-shim`".into(),
                "`dockerd`".into(),
            ],
        };
        let lines = r.summary_lines();
        assert!(
            lines[0].contains("0.150× (target ≤ 0.5×: met)"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("1.000× (target ≤ 0.5×: not met)"),
            "{lines:?}"
        );
        let mut md = String::new();
        r.markdown(&mut md);
        assert!(md.contains("| `docker stats --no-stream` of 50 running containers, median (s) | 0.300 | 2.000 | 0.150× |"), "{md}");
        assert!(
            lines[2].contains("for 10 s of 3: Berth 0.300 s, dockerd 1.000 s")
                && lines[2].contains("0.300× (target ≤ 0.5×: met)"),
            "{lines:?}"
        );
        assert!(
            md.contains("Counted for Berth: `berth-runtime` and every `berth-shim`"),
            "{md}"
        );
    }
}

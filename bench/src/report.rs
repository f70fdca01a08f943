//! Statistics, the table printed to stdout and the Markdown written to `bench/RESULTS.md`.

use std::{fmt::Write as _, time::Duration};

use crate::host::{Machine, ProcMem};

/// The images issue's target: Berth's median cold pull at most this fraction of dockerd's.
pub(crate) const TARGET_RATIO: f64 = 0.5;
/// The runtime issue's target: Berth's median `docker run --rm` at most this fraction of
/// dockerd's.
pub(crate) const RUN_TARGET_RATIO: f64 = 0.25;
/// The runtime issue's target for one `berth-shim`: at most this RSS, KiB.
pub(crate) const SHIM_RSS_TARGET_KIB: u64 = 2048;
/// The store's target: Berth's one `docker rm` of the stopped containers at most this fraction
/// of dockerd's.
pub(crate) const RM_TARGET_RATIO: f64 = 0.7;
/// The store's target: Berth's median `docker ps -a` at 1,000 containers at most this fraction
/// of dockerd's.
pub(crate) const PS_TARGET_RATIO: f64 = 0.5;

/// One timed `docker pull`; times in seconds from the CLI's start.
#[derive(Debug, Clone)]
pub(crate) struct Pull {
    pub(crate) round: usize,
    /// 1 if this engine pulled first in its round, 2 if second.
    pub(crate) position: usize,
    /// Wall clock from spawning the CLI to its exit.
    pub(crate) secs: f64,
    /// The CLI printed `Pulling from ...` (the manifest is resolved).
    pub(crate) resolved: Option<f64>,
    /// The last layer's `Download complete`.
    pub(crate) downloaded: Option<f64>,
    /// The last layer's `Pull complete` (unpacked and registered).
    pub(crate) unpacked: Option<f64>,
}

/// Median, 90th percentile, minimum, maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub(crate) median: f64,
    /// Nearest rank: the smallest value at least 90% of the values are at or below.
    pub(crate) p90: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

pub(crate) fn stats(values: &[f64]) -> Option<Stats> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    };
    let rank = (n * 9).div_ceil(10).max(1);
    Some(Stats {
        median,
        p90: v[rank - 1],
        min: v[0],
        max: v[n - 1],
    })
}

fn median_of(pulls: &[Pull], f: impl Fn(&Pull) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = pulls.iter().filter_map(f).collect();
    stats(&v).map(|s| s.median)
}

#[derive(Debug, Clone)]
pub(crate) struct ImageSummary {
    pub(crate) reference: String,
    pub(crate) manifest_media_type: String,
    pub(crate) layers: usize,
    pub(crate) random_layers: usize,
    pub(crate) compressed: u64,
    pub(crate) uncompressed: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Versions {
    pub(crate) berth: String,
    pub(crate) dockerd: String,
    pub(crate) containerd: String,
    pub(crate) runc: String,
    pub(crate) cli: String,
    pub(crate) registry: String,
}

/// The image-pull benchmark.
#[derive(Debug, Clone)]
pub(crate) struct PullResults {
    pub(crate) image: ImageSummary,
    pub(crate) rounds: usize,
    pub(crate) berth: Vec<Pull>,
    pub(crate) dockerd: Vec<Pull>,
    /// VmHWM of berth-images before the first pull and after the last, KiB.
    pub(crate) berth_images_hwm_start: Option<u64>,
    pub(crate) berth_images_hwm: Option<u64>,
    /// VmHWM of dockerd and its containerd after the last pull, KiB.
    pub(crate) dockerd_hwm: Option<u64>,
    pub(crate) containerd_hwm: Option<u64>,
}

/// 100 × (create + start) of one engine.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub(crate) containers: usize,
    /// Wall clock of the whole loop (every CLI invocation, one after the other).
    pub(crate) secs: f64,
    /// Each `docker create` and each `docker start`, seconds.
    pub(crate) create: Vec<f64>,
    pub(crate) start: Vec<f64>,
    /// Containers `docker ps` listed as running at the end.
    pub(crate) running: usize,
    /// The memory of every shim of the engine while the containers ran.
    pub(crate) shims: Vec<ProcMem>,
}

impl Throughput {
    pub(crate) fn per_sec(&self) -> f64 {
        self.containers as f64 / self.secs
    }

    fn shim_stat(&self, f: impl Fn(&ProcMem) -> Option<u64>) -> Option<Stats> {
        let v: Vec<f64> = self
            .shims
            .iter()
            .filter_map(|m| f(m).map(|k| k as f64))
            .collect();
        stats(&v)
    }

    fn shim_sum(&self, f: impl Fn(&ProcMem) -> Option<u64>) -> Option<u64> {
        self.shims.iter().map(f).sum()
    }
}

/// The container benchmark's numbers for one engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineContainers {
    /// Each timed `docker run --rm`, seconds.
    pub(crate) runs: Vec<f64>,
    /// Each `docker version` timed right after a run, seconds: the CLI's own floor.
    pub(crate) version: Vec<f64>,
    /// The shim of one `sleep` container, alone, once idle.
    pub(crate) idle_shim: Option<ProcMem>,
    pub(crate) throughput: Option<Throughput>,
}

/// The container benchmark.
#[derive(Debug, Clone)]
pub(crate) struct ContainerResults {
    pub(crate) image: String,
    pub(crate) image_id: String,
    pub(crate) runs: usize,
    pub(crate) warmup: usize,
    pub(crate) settle: Duration,
    pub(crate) berth: EngineContainers,
    pub(crate) dockerd: EngineContainers,
}

impl ContainerResults {
    pub(crate) fn run_stats(&self) -> (Option<Stats>, Option<Stats>) {
        (stats(&self.berth.runs), stats(&self.dockerd.runs))
    }

    /// Berth's median `docker run --rm` over dockerd's.
    pub(crate) fn run_ratio(&self) -> Option<f64> {
        let (b, d) = self.run_stats();
        Some(b?.median / d?.median)
    }

    fn run_p90_ratio(&self) -> Option<f64> {
        let (b, d) = self.run_stats();
        Some(b?.p90 / d?.p90)
    }

    fn run_verdict(&self) -> String {
        verdict(self.run_ratio(), RUN_TARGET_RATIO)
    }

    /// Berth's total create + start time over dockerd's.
    pub(crate) fn throughput_ratio(&self) -> Option<f64> {
        Some(self.berth.throughput.as_ref()?.secs / self.dockerd.throughput.as_ref()?.secs)
    }

    /// The berth-shims' VmRSS while the containers ran: median and max, KiB.
    fn shim_rss(&self) -> Option<Stats> {
        self.berth.throughput.as_ref()?.shim_stat(|m| Some(m.rss))
    }

    fn shim_verdict(&self) -> String {
        match self.shim_rss() {
            Some(s) => format!(
                "median {}, max {} (target ≤ {}: {})",
                mib(Some(s.median as u64)),
                mib(Some(s.max as u64)),
                mib(Some(SHIM_RSS_TARGET_KIB)),
                met(s.max <= SHIM_RSS_TARGET_KIB as f64)
            ),
            None => "n/a".to_owned(),
        }
    }

    fn summary_lines(&self) -> Vec<String> {
        let (b, d) = self.run_stats();
        let cell = |s: Option<Stats>| secs3(s.map(|s| s.median));
        let mut out = vec![format!(
            "`docker run --rm --network none busybox true`, median of {}: Berth {} s, dockerd {} s; \
             Berth/dockerd **{}**",
            self.runs,
            cell(b),
            cell(d),
            self.run_verdict()
        )];
        if let (Some(bt), Some(dt)) = (&self.berth.throughput, &self.dockerd.throughput) {
            out.push(format!(
                "{} × (`docker create` + `docker start`): Berth {:.2} s ({:.1} containers/s), \
                 dockerd {:.2} s ({:.1} containers/s); Berth/dockerd time **{}**",
                bt.containers,
                bt.secs,
                bt.per_sec(),
                dt.secs,
                dt.per_sec(),
                ratio(self.throughput_ratio())
            ));
        }
        out.push(format!(
            "RSS of one `berth-shim` while {} containers run: **{}**",
            self.berth.throughput.as_ref().map_or(0, |t| t.containers),
            self.shim_verdict()
        ));
        out
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Results {
    pub(crate) date: String,
    pub(crate) command: String,
    pub(crate) machine: Machine,
    pub(crate) versions: Versions,
    pub(crate) pull: Option<PullResults>,
    pub(crate) containers: Option<ContainerResults>,
    pub(crate) store: Option<StoreResults>,
    pub(crate) seccomp: Option<crate::seccomp::SeccompResults>,
    pub(crate) idle: Option<crate::idle::IdleResults>,
    pub(crate) volumes: Option<crate::volumes::VolumeResults>,
    pub(crate) build: Option<crate::build::BuildResults>,
    pub(crate) stats: Option<crate::stats::StatsResults>,
    pub(crate) network: Option<crate::network::NetworkResults>,
    /// What the teardown did.
    pub(crate) cleanup: Vec<String>,
    /// What was left behind or changed (empty: nothing).
    pub(crate) leftovers: Vec<String>,
}

pub(crate) fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}

/// A Berth/dockerd ratio and whether it is at most `target`.
pub(crate) fn verdict(ratio: Option<f64>, target: f64) -> String {
    ratio.map_or_else(
        || "n/a".to_owned(),
        |r| format!("{r:.3}× (target ≤ {target}×: {})", met(r <= target)),
    )
}

/// Berth's median over dockerd's.
pub(crate) fn median_ratio(berth: &[f64], dockerd: &[f64]) -> Option<f64> {
    Some(stats(berth)?.median / stats(dockerd)?.median)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// `median / max` of KiB figures, in MiB.
fn median_max(st: Option<Stats>) -> String {
    format!(
        "{} / {}",
        mib_f(st.map(|s| s.median)),
        mib_f(st.map(|s| s.max))
    )
}

fn mib_f(kib: Option<f64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.2} MiB", k / 1024.0))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2}"))
}

fn secs3(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.3}"))
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×"))
}

fn bytes_mib(b: u64) -> String {
    format!("{b} bytes ({:.1} MiB)", b as f64 / (1024.0 * 1024.0))
}

impl PullResults {
    pub(crate) fn berth_stats(&self) -> Option<Stats> {
        stats(&self.berth.iter().map(|p| p.secs).collect::<Vec<_>>())
    }

    pub(crate) fn dockerd_stats(&self) -> Option<Stats> {
        stats(&self.dockerd.iter().map(|p| p.secs).collect::<Vec<_>>())
    }

    /// Berth's median over dockerd's.
    pub(crate) fn ratio(&self) -> Option<f64> {
        Some(self.berth_stats()?.median / self.dockerd_stats()?.median)
    }

    /// Berth over dockerd within each round (both pulled minutes apart at most).
    pub(crate) fn round_ratios(&self) -> Option<Stats> {
        let v: Vec<f64> = self
            .berth
            .iter()
            .filter_map(|b| {
                let d = self.dockerd.iter().find(|d| d.round == b.round)?;
                Some(b.secs / d.secs)
            })
            .collect();
        stats(&v)
    }

    fn round_ratio_text(&self) -> String {
        self.round_ratios().map_or_else(
            || "n/a".to_owned(),
            |r| {
                format!(
                    "median {:.2}×, min {:.2}×, max {:.2}×",
                    r.median, r.min, r.max
                )
            },
        )
    }

    pub(crate) fn target_met(&self) -> bool {
        self.ratio().is_some_and(|r| r <= TARGET_RATIO)
    }

    fn meets_image_spec(&self) -> bool {
        self.image.layers >= 3 && self.image.compressed >= 50_000_000
    }

    fn verdict(&self) -> String {
        verdict(self.ratio(), TARGET_RATIO)
    }

    fn summary_lines(&self) -> Vec<String> {
        vec![format!(
            "Berth's median cold pull over dockerd's: **{}**; the issue's target (at most \
             {TARGET_RATIO}×) is **{}**. Peak RSS of Berth's images service (`berth-images` \
             VmHWM): **{}**",
            ratio(self.ratio()),
            met(self.target_met()),
            mib(self.berth_images_hwm)
        )]
    }

    fn table(&self, t: &mut String) {
        let b = self.berth_stats();
        let d = self.dockerd_stats();
        let cell = |s: Option<Stats>, f: fn(Stats) -> f64| secs(s.map(f));
        let _ = writeln!(
            t,
            "cold pull of {} ({} layers, {} compressed), {} round(s)",
            self.image.reference,
            self.image.layers,
            bytes_mib(self.image.compressed),
            self.rounds
        );
        let _ = writeln!(t, "{:<28} {:>12} {:>12}", "", "Berth", "dockerd");
        for (name, f) in [
            ("median (s)", (|s: Stats| s.median) as fn(Stats) -> f64),
            ("min (s)", |s: Stats| s.min),
            ("max (s)", |s: Stats| s.max),
        ] {
            let _ = writeln!(t, "{name:<28} {:>12} {:>12}", cell(b, f), cell(d, f));
        }
        let _ = writeln!(
            t,
            "{:<28} {:>12} {:>12}",
            "downloads done (median s)",
            secs(median_of(&self.berth, |p| p.downloaded)),
            secs(median_of(&self.dockerd, |p| p.downloaded))
        );
        let _ = writeln!(
            t,
            "{:<28} {:>12} {:>12}",
            "layers unpacked (median s)",
            secs(median_of(&self.berth, |p| p.unpacked)),
            secs(median_of(&self.dockerd, |p| p.unpacked))
        );
        let _ = writeln!(t, "ratio Berth/dockerd (median): {}", self.verdict());
        let _ = writeln!(t, "ratio within each round: {}", self.round_ratio_text());
        let _ = writeln!(
            t,
            "peak RSS: berth-images {}; dockerd {} + its containerd {}",
            mib(self.berth_images_hwm),
            mib(self.dockerd_hwm),
            mib(self.containerd_hwm)
        );
    }

    fn markdown(&self, s: &mut String) {
        let b = self.berth_stats();
        let d = self.dockerd_stats();
        let _ = writeln!(
            s,
            "A cold `docker pull` of a large multi-layer image from a private registry on 127.0.0.1.\n"
        );
        let _ = writeln!(s, "| {} rounds | Berth | dockerd |", self.rounds);
        let _ = writeln!(s, "|---|---:|---:|");
        for (name, f) in [
            ("median (s)", (|s: Stats| s.median) as fn(Stats) -> f64),
            ("min (s)", |s: Stats| s.min),
            ("max (s)", |s: Stats| s.max),
        ] {
            let _ = writeln!(s, "| {name} | {} | {} |", secs(b.map(f)), secs(d.map(f)));
        }
        let _ = writeln!(
            s,
            "| peak RSS (VmHWM) | berth-images {} | dockerd {}, its containerd {} |",
            mib(self.berth_images_hwm),
            mib(self.dockerd_hwm),
            mib(self.containerd_hwm)
        );
        let _ = writeln!(
            s,
            "\nBerth/dockerd, median over median: **{}**. The same ratio within each round: {}.\n",
            self.verdict(),
            self.round_ratio_text()
        );

        let _ = writeln!(s, "### Phases\n");
        let _ = writeln!(
            s,
            "Medians, in seconds from the start of the CLI, of the moments the docker CLI printed \
             each line (its non-terminal output; both engines report a layer's `Download complete` \
             when its blob is stored and `Pull complete` once it is unpacked and registered).\n"
        );
        let _ = writeln!(
            s,
            "| | `Pulling from` (manifest resolved) | last `Download complete` | last `Pull complete` | CLI exit |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for (name, pulls) in [("Berth", &self.berth), ("dockerd", &self.dockerd)] {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} |",
                secs(median_of(pulls, |p| p.resolved)),
                secs(median_of(pulls, |p| p.downloaded)),
                secs(median_of(pulls, |p| p.unpacked)),
                secs(median_of(pulls, |p| Some(p.secs)))
            );
        }

        let _ = writeln!(s, "\n### Every pull\n");
        let _ = writeln!(
            s,
            "| round | engine | order in round | total (s) | manifest (s) | downloads done (s) | layers unpacked (s) |"
        );
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|");
        let mut all: Vec<(&str, &Pull)> = self
            .berth
            .iter()
            .map(|p| ("Berth", p))
            .chain(self.dockerd.iter().map(|p| ("dockerd", p)))
            .collect();
        all.sort_by_key(|(_, p)| (p.round, p.position));
        for (name, p) in all {
            let _ = writeln!(
                s,
                "| {} | {name} | {} | {:.2} | {} | {} | {} |",
                p.round,
                p.position,
                p.secs,
                secs(p.resolved),
                secs(p.downloaded),
                secs(p.unpacked)
            );
        }

        let _ = writeln!(s, "\n### Image\n");
        let _ = writeln!(s, "- `{}`", self.image.reference);
        let _ = writeln!(
            s,
            "- {} layers, gzip: {} of incompressible random data and busybox; `{}`",
            self.image.layers, self.image.random_layers, self.image.manifest_media_type
        );
        let _ = writeln!(
            s,
            "- compressed (what is downloaded): {}; uncompressed: {}",
            bytes_mib(self.image.compressed),
            bytes_mib(self.image.uncompressed)
        );
        let _ = writeln!(
            s,
            "- the issue asks for at least 3 layers and 50 MB compressed: {}",
            if self.meets_image_spec() {
                "yes"
            } else {
                "**no** (smaller image than the issue's benchmark)"
            }
        );

        let _ = writeln!(s, "\n### Method\n");
        let _ = writeln!(
            s,
            "The image is built once (`berth_testutil::images::large_layout`) and pushed to a private \
             `docker-registry` on 127.0.0.1 (plain HTTP). Each round, for each engine (the order \
             alternates from round to round): `docker rmi -f` the image (and `docker image prune \
             -a -f` for dockerd), check that nothing of it is stored (no image, no layer, and for \
             Berth an empty content store), `sync` and drop the page cache, run `docker version` \
             against the engine (so that the CLI's and the engine's code, not the image, are back \
             in memory), then time `docker pull` wall clock from spawning the CLI to its exit, and \
             check the pulled image's ID. Both \
             engines download at most 3 layers at once (their defaults). Peak RSS is the `VmHWM` of \
             the process right after the last pull (the peak since it started; `berth-images` was at {} \
             before the first pull). On a shared machine the ratio moves from run to run with the \
             load: the ratio within each round and the load average below tell how noisy a run was.\n",
            mib(self.berth_images_hwm_start)
        );
    }
}

impl ContainerResults {
    fn table(&self, t: &mut String) {
        let (b, d) = self.run_stats();
        let _ = writeln!(
            t,
            "docker run --rm --network none {} true: {} timed runs per engine (after {} warm-up)",
            self.image, self.runs, self.warmup
        );
        let _ = writeln!(t, "{:<28} {:>12} {:>12}", "", "Berth", "dockerd");
        for (name, f) in [
            ("median (s)", (|s: Stats| s.median) as fn(Stats) -> f64),
            ("p90 (s)", |s: Stats| s.p90),
            ("min (s)", |s: Stats| s.min),
            ("max (s)", |s: Stats| s.max),
        ] {
            let _ = writeln!(
                t,
                "{name:<28} {:>12} {:>12}",
                secs3(b.map(f)),
                secs3(d.map(f))
            );
        }
        let (bv, dv) = (stats(&self.berth.version), stats(&self.dockerd.version));
        let _ = writeln!(
            t,
            "{:<28} {:>12} {:>12}",
            "docker version median (s)",
            secs3(bv.map(|s| s.median)),
            secs3(dv.map(|s| s.median))
        );
        let _ = writeln!(t, "ratio Berth/dockerd (median): {}", self.run_verdict());
        let _ = writeln!(
            t,
            "ratio Berth/dockerd (p90): {}",
            ratio(self.run_p90_ratio())
        );
        if let (Some(bt), Some(dt)) = (&self.berth.throughput, &self.dockerd.throughput) {
            let _ = writeln!(
                t,
                "{} x (create + start): Berth {:.2} s ({:.1}/s), dockerd {:.2} s ({:.1}/s); time ratio {}",
                bt.containers,
                bt.secs,
                bt.per_sec(),
                dt.secs,
                dt.per_sec(),
                ratio(self.throughput_ratio())
            );
        }
        let idle = |m: Option<ProcMem>| {
            m.map_or_else(
                || "n/a".to_owned(),
                |m| {
                    format!(
                        "RSS {} (anon {}, file {}), PSS {}",
                        mib(Some(m.rss)),
                        mib(Some(m.anon)),
                        mib(Some(m.file)),
                        mib(m.pss)
                    )
                },
            )
        };
        let _ = writeln!(
            t,
            "one idle shim: berth-shim {}; containerd-shim-runc-v2 {}",
            idle(self.berth.idle_shim),
            idle(self.dockerd.idle_shim)
        );
        for (name, e) in [
            ("berth-shim", &self.berth),
            ("containerd-shim-runc-v2", &self.dockerd),
        ] {
            if let Some(tp) = &e.throughput {
                let rss = tp.shim_stat(|m| Some(m.rss));
                let hwm = tp.shim_stat(|m| Some(m.hwm));
                let pss = tp.shim_stat(|m| m.pss);
                let _ = writeln!(
                    t,
                    "{name} x{} while running: VmRSS median {} max {}; VmHWM max {}; PSS median {}",
                    tp.shims.len(),
                    mib_f(rss.map(|s| s.median)),
                    mib_f(rss.map(|s| s.max)),
                    mib_f(hwm.map(|s| s.max)),
                    mib_f(pss.map(|s| s.median)),
                );
            }
        }
        let _ = writeln!(t, "berth-shim RSS: {}", self.shim_verdict());
    }

    fn markdown(&self, s: &mut String) {
        let (b, d) = self.run_stats();
        let _ = writeln!(
            s,
            "The busybox image `{}` (`{}`), pulled into both engines before anything is timed.\n",
            self.image, self.image_id
        );
        let _ = writeln!(s, "### `docker run --rm --network none busybox true`\n");
        let _ = writeln!(
            s,
            "| {} runs each | Berth | dockerd | Berth/dockerd |",
            self.runs
        );
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (name, f) in [
            ("median (s)", (|s: Stats| s.median) as fn(Stats) -> f64),
            ("p90 (s)", |s: Stats| s.p90),
            ("min (s)", |s: Stats| s.min),
            ("max (s)", |s: Stats| s.max),
        ] {
            let r = match (b, d) {
                (Some(b), Some(d)) => Some(f(b) / f(d)),
                _ => None,
            };
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} |",
                secs3(b.map(f)),
                secs3(d.map(f)),
                ratio(r)
            );
        }
        let (bv, dv) = (stats(&self.berth.version), stats(&self.dockerd.version));
        let _ = writeln!(
            s,
            "| `docker version` median (s): the CLI's start-up and one API call | {} | {} | {} |",
            secs3(bv.map(|s| s.median)),
            secs3(dv.map(|s| s.median)),
            ratio(bv.zip(dv).map(|(b, d)| b.median / d.median))
        );
        let _ = writeln!(
            s,
            "\nBerth/dockerd, median over median: **{}**.\n",
            self.run_verdict()
        );

        if let (Some(bt), Some(dt)) = (&self.berth.throughput, &self.dockerd.throughput) {
            let _ = writeln!(
                s,
                "### {} × (`docker create --network none busybox sleep 1000` + `docker start`)\n",
                bt.containers
            );
            let _ = writeln!(s, "| | Berth | dockerd | Berth/dockerd |");
            let _ = writeln!(s, "|---|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| total (s) | {:.2} | {:.2} | {} |",
                bt.secs,
                dt.secs,
                ratio(Some(bt.secs / dt.secs))
            );
            let _ = writeln!(
                s,
                "| containers/s | {:.1} | {:.1} | {} |",
                bt.per_sec(),
                dt.per_sec(),
                ratio(Some(bt.per_sec() / dt.per_sec()))
            );
            for (name, f) in [
                (
                    "`docker create` median (s)",
                    (|t: &Throughput| stats(&t.create)) as fn(&Throughput) -> Option<Stats>,
                ),
                ("`docker start` median (s)", |t: &Throughput| {
                    stats(&t.start)
                }),
            ] {
                let bm = f(bt).map(|s| s.median);
                let dm = f(dt).map(|s| s.median);
                let r = bm.zip(dm).map(|(b, d)| b / d);
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | {} |",
                    secs3(bm),
                    secs3(dm),
                    ratio(r)
                );
            }
            let _ = writeln!(
                s,
                "| running at the end (`docker ps`) | {} | {} | |",
                bt.running, dt.running
            );
            let _ = writeln!(s);
        }

        let _ = writeln!(s, "### Shim memory\n");
        let _ = writeln!(
            s,
            "Per shim process, from `/proc/<pid>/status` (VmRSS, VmHWM, RssAnon, RssFile) and \
             `/proc/<pid>/smaps_rollup` (PSS; private = Private_Clean + Private_Dirty). RSS counts \
             every resident page a process maps, including code and libc pages that all shims \
             share; PSS divides shared pages among the processes that map them; private memory \
             is what one more shim really costs.\n"
        );
        let _ = writeln!(s, "| | berth-shim | containerd-shim-runc-v2 (dockerd) |");
        let _ = writeln!(s, "|---|---:|---:|");
        let idle_row = |s: &mut String, name: &str, f: fn(&ProcMem) -> Option<u64>| {
            let _ = writeln!(
                s,
                "| idle shim (one `sleep` container): {name} | {} | {} |",
                mib(self.berth.idle_shim.as_ref().and_then(f)),
                mib(self.dockerd.idle_shim.as_ref().and_then(f))
            );
        };
        idle_row(s, "VmRSS", |m| Some(m.rss));
        let both = |m: Option<ProcMem>| {
            m.map_or_else(
                || "n/a".to_owned(),
                |m| format!("{} / {}", mib(Some(m.anon)), mib(Some(m.file))),
            )
        };
        let _ = writeln!(
            s,
            "| idle shim (one `sleep` container): RssAnon / RssFile | {} | {} |",
            both(self.berth.idle_shim),
            both(self.dockerd.idle_shim)
        );
        idle_row(s, "PSS", |m| m.pss);
        idle_row(s, "private", |m| m.private);
        if let (Some(bt), Some(dt)) = (&self.berth.throughput, &self.dockerd.throughput) {
            let n = bt.containers;
            let row = |s: &mut String, name: &str, f: &dyn Fn(&Throughput) -> String| {
                let _ = writeln!(s, "| {n} running: {name} | {} | {} |", f(bt), f(dt));
            };
            row(s, "shim processes", &|t| t.shims.len().to_string());
            row(s, "VmRSS median / max", &|t| {
                median_max(t.shim_stat(|m| Some(m.rss)))
            });
            row(s, "VmHWM (peak) median / max", &|t| {
                median_max(t.shim_stat(|m| Some(m.hwm)))
            });
            row(s, "RssAnon median / RssFile median", &|t| {
                let a = t.shim_stat(|m| Some(m.anon));
                let f = t.shim_stat(|m| Some(m.file));
                format!(
                    "{} / {}",
                    mib_f(a.map(|s| s.median)),
                    mib_f(f.map(|s| s.median))
                )
            });
            row(s, "PSS median", &|t| {
                mib_f(t.shim_stat(|m| m.pss).map(|s| s.median))
            });
            row(s, "private median", &|t| {
                mib_f(t.shim_stat(|m| m.private).map(|s| s.median))
            });
            row(s, "all shims: sum of PSS", &|t| mib(t.shim_sum(|m| m.pss)));
        }
        let _ = writeln!(
            s,
            "\n`berth-shim` VmRSS while the containers run: **{}**. Where it goes and what was \
             tried to lower it: `bench/SHIM-MEMORY.md`.\n",
            self.shim_verdict()
        );

        let _ = writeln!(s, "### Method\n");
        let _ = writeln!(
            s,
            "Both engines are driven by the same docker CLI, one invocation at a time, timed wall \
             clock from spawning the CLI to its exit (the CLI's own start-up, about the same for \
             both, is included). Latency: {} untimed warm-up runs per engine, then {} timed runs \
             per engine, the engines alternating (which one goes first alternates too), each run \
             followed by a `docker version` against the same engine (the floor under any CLI \
             command: the CLI's start-up and one API call); \
             afterwards no container may be left. Throughput: for each engine in turn, a loop of \
             `docker create` (its ID read from stdout) then `docker start` of it, timed from the \
             first create to the last start's exit; then `docker ps` must list them all running; \
             after {:.1} s the memory of every shim process of the engine is read (the shims of \
             this engine only: Berth's `berth-shim`s name its run root, dockerd's \
             `containerd-shim-runc-v2`s its exec root); then every container is removed with \
             `docker rm -f` (not timed). The idle shim: one `docker run -d ... sleep 1000`, its \
             shim read after {:.1} s, then removed. dockerd runs with `--bridge none`, which is \
             why every container of both engines has `--network none`.\n",
            self.warmup,
            self.runs,
            self.settle.as_secs_f64(),
            self.settle.as_secs_f64()
        );
    }
}

/// The store benchmark's numbers for one engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineStore {
    /// Wall clock of creating every container, several at a time (setup, not a row's time).
    pub(crate) create_secs: f64,
    /// Each timed `docker ps -a`, seconds.
    pub(crate) ps: Vec<f64>,
    /// Each `docker version` timed right after one, seconds: the CLI's own floor.
    pub(crate) version: Vec<f64>,
    /// The one timed `docker rm`, seconds.
    pub(crate) rm_secs: f64,
    /// Each `docker ps -a` against a canned copy of this engine's answers, seconds: the CLI's
    /// floor (its start-up, decoding and printing, no engine).
    pub(crate) canned: Vec<f64>,
    /// The bytes of the engine's `GET /containers/json?all=1` body.
    pub(crate) body_bytes: usize,
}

/// The store benchmark: `docker ps -a` with many containers, one `docker rm` of many.
#[derive(Debug, Clone)]
pub(crate) struct StoreResults {
    pub(crate) image: String,
    /// Containers in each engine while `docker ps -a` is timed.
    pub(crate) containers: usize,
    /// Containers the one timed `docker rm` removes.
    pub(crate) remove: usize,
    pub(crate) ps_runs: usize,
    /// Concurrent `docker create` during the setup.
    pub(crate) jobs: usize,
    pub(crate) berth: EngineStore,
    pub(crate) dockerd: EngineStore,
}

impl StoreResults {
    fn ps_stats(&self) -> (Option<Stats>, Option<Stats>) {
        (stats(&self.berth.ps), stats(&self.dockerd.ps))
    }

    /// Berth's median `docker ps -a` over dockerd's.
    fn ps_ratio(&self) -> Option<f64> {
        let (b, d) = self.ps_stats();
        Some(b?.median / d?.median)
    }

    /// The medians of `docker ps -a` against each engine's canned answers: the CLI's floor.
    fn floor_stats(&self) -> (Option<Stats>, Option<Stats>) {
        (stats(&self.berth.canned), stats(&self.dockerd.canned))
    }

    /// The best ratio Berth could reach with an engine that took no time at all: the CLI's
    /// median against Berth's canned answers over dockerd's median `docker ps -a`.
    fn floor_ratio(&self) -> Option<f64> {
        Some(self.floor_stats().0?.median / self.ps_stats().1?.median)
    }

    /// The line on the floor, for the summary and the markdown.
    fn floor_line(&self) -> String {
        let (bf, df) = self.floor_stats();
        let (b, d) = self.ps_stats();
        let above = |ps: Option<Stats>, floor: Option<Stats>| {
            ps.zip(floor).map_or_else(
                || "n/a".to_owned(),
                |(p, f)| format!("{:.1} ms", (p.median - f.median) * 1000.0),
            )
        };
        format!(
            "the CLI's floor (`docker ps -a` against a canned copy of the engine's answers, \
             median): Berth's {} s ({} bytes), dockerd's {} s ({} bytes); above it, Berth {}, \
             dockerd {}; Berth's floor over dockerd's `docker ps -a`: {}{}",
            secs3(bf.map(|s| s.median)),
            self.berth.body_bytes,
            secs3(df.map(|s| s.median)),
            self.dockerd.body_bytes,
            above(b, bf),
            above(d, df),
            ratio(self.floor_ratio()),
            if self.floor_ratio().is_some_and(|r| r > PS_TARGET_RATIO) {
                " (the target cannot be met by the engine alone)"
            } else {
                ""
            }
        )
    }

    /// Berth's `docker rm` over dockerd's.
    fn rm_ratio(&self) -> f64 {
        self.berth.rm_secs / self.dockerd.rm_secs
    }

    fn summary_lines(&self) -> Vec<String> {
        let (b, d) = self.ps_stats();
        vec![
            format!(
                "`docker ps -a` with {} containers, median of {}: Berth {} s, dockerd {} s; \
                 Berth/dockerd **{}**",
                self.containers,
                self.ps_runs,
                secs3(b.map(|s| s.median)),
                secs3(d.map(|s| s.median)),
                verdict(self.ps_ratio(), PS_TARGET_RATIO)
            ),
            self.floor_line(),
            format!(
                "one `docker rm` of {} stopped containers: Berth {:.3} s, dockerd {:.3} s; \
                 Berth/dockerd **{}**",
                self.remove,
                self.berth.rm_secs,
                self.dockerd.rm_secs,
                verdict(Some(self.rm_ratio()), RM_TARGET_RATIO)
            ),
        ]
    }

    /// The rows of the table: a name, Berth's and dockerd's seconds.
    fn rows(&self) -> Vec<(String, Option<f64>, Option<f64>)> {
        let (b, d) = self.ps_stats();
        let (bv, dv) = (stats(&self.berth.version), stats(&self.dockerd.version));
        let n = self.containers;
        let mut rows: Vec<(String, Option<f64>, Option<f64>)> = [
            ("median", (|s: Stats| s.median) as fn(Stats) -> f64),
            ("p90", |s: Stats| s.p90),
            ("min", |s: Stats| s.min),
            ("max", |s: Stats| s.max),
        ]
        .into_iter()
        .map(|(name, f)| {
            (
                format!("`docker ps -a` ({n} containers) {name} (s)"),
                b.map(f),
                d.map(f),
            )
        })
        .collect();
        let (bf, df) = self.floor_stats();
        rows.push((
            format!("`docker ps -a` ({n}), canned answer: the CLI's floor, median (s)"),
            bf.map(|s| s.median),
            df.map(|s| s.median),
        ));
        rows.push((
            "`docker version` median (s): the CLI's start-up and one API call".to_owned(),
            bv.map(|s| s.median),
            dv.map(|s| s.median),
        ));
        rows.push((
            format!("one `docker rm` of {} stopped containers (s)", self.remove),
            Some(self.berth.rm_secs),
            Some(self.dockerd.rm_secs),
        ));
        rows.push((
            format!(
                "setup, not timed above: {n} × `docker create`, {} at a time (s)",
                self.jobs
            ),
            Some(self.berth.create_secs),
            Some(self.dockerd.create_secs),
        ));
        rows
    }

    fn table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "store: {} containers from {} (created, never started) in each engine",
            self.containers, self.image
        );
        let _ = writeln!(t, "{:<66} {:>8} {:>8}", "", "Berth", "dockerd");
        for (name, b, d) in self.rows() {
            let _ = writeln!(
                t,
                "{:<66} {:>8} {:>8}",
                name.replace('`', ""),
                secs3(b),
                secs3(d)
            );
        }
        let _ = writeln!(
            t,
            "ratio Berth/dockerd, docker ps -a (median): {}",
            verdict(self.ps_ratio(), PS_TARGET_RATIO)
        );
        let _ = writeln!(
            t,
            "ratio Berth/dockerd, docker rm of {}: {}",
            self.remove,
            verdict(Some(self.rm_ratio()), RM_TARGET_RATIO)
        );
        let _ = writeln!(t, "{}", self.floor_line().replace('`', ""));
    }

    fn markdown(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "What each engine's container store costs once it holds many containers: {} \
             containers created from the busybox image `{}` with `docker create --network none \
             busybox true` (never started) in each engine.\n",
            self.containers, self.image
        );
        let _ = writeln!(s, "| | Berth | dockerd | Berth/dockerd |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (name, b, d) in self.rows() {
            let r = b.zip(d).map(|(b, d)| b / d);
            let _ = writeln!(s, "| {name} | {} | {} | {} |", secs3(b), secs3(d), ratio(r));
        }
        let _ = writeln!(
            s,
            "\n`docker ps -a` with {} containers, Berth/dockerd median over median: **{}**. One \
             `docker rm` of {} stopped containers, Berth/dockerd: **{}**.\n",
            self.containers,
            verdict(self.ps_ratio(), PS_TARGET_RATIO),
            self.remove,
            verdict(Some(self.rm_ratio()), RM_TARGET_RATIO)
        );
        let _ = writeln!(s, "The floor: {}.\n", self.floor_line());
        let _ = writeln!(s, "### Method\n");
        let _ = writeln!(
            s,
            "Both engines are driven by the same docker CLI, timed wall clock from spawning the \
             CLI to its exit. Setup (not timed in the rows): in each engine, {n} × `docker create \
             --network none busybox true`, {jobs} CLI processes at a time; `docker ps -a -q` must \
             then list {n}, and one untimed `docker ps -a` per engine must print {n} rows. \
             `docker ps -a`: {runs} timed runs per engine (plain `docker ps -a`, its output read \
             and discarded), the engines alternating (which one goes first alternates too), each \
             followed by a `docker version` against the same engine (the CLI's start-up). The \
             CLI's floor: each engine's answers are then captured (the API version its `/_ping` \
             gives, and its `GET /containers/json?all=1` body at the version the CLI settles \
             on, with every container listed) and served by a trivial server of the benchmark \
             (no work per request; `Content-Length` framing); the same CLI runs `docker ps -a` \
             against each copy {runs} times, alternating. That is the CLI's own start-up, \
             decoding and printing of that engine's body: what an engine takes above it is the \
             engine's. Berth's floor over dockerd's `docker ps -a` median is the best ratio an \
             engine that answered in no time could reach. `docker rm`: then ONE `docker rm` of the first {rm} containers created (the same set the \
             `docker ps -a` runs listed), Berth first, then dockerd; it must print {rm} lines and \
             leave {left}. Every container is removed afterwards with `docker rm -f` (not timed). \
             The `docker rm` row is a single run per engine: it moves more from run to run than \
             the medians do.\n",
            n = self.containers,
            jobs = self.jobs,
            runs = self.ps_runs,
            rm = self.remove,
            left = self.containers - self.remove,
        );
    }
}

/// The parts of `bench/RESULTS.md`, in order; a run may measure one alone (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Pull,
    Containers,
    Store,
    Seccomp,
    Idle,
    Volumes,
    Build,
    Stats,
    Network,
}

impl Part {
    /// How many parts there are.
    const COUNT: usize = 9;
    const ALL: [Part; Part::COUNT] = [
        Part::Pull,
        Part::Containers,
        Part::Store,
        Part::Seccomp,
        Part::Idle,
        Part::Volumes,
        Part::Build,
        Part::Stats,
        Part::Network,
    ];

    /// Its section's heading and its name in the summary.
    fn title(self) -> &'static str {
        match self {
            Part::Pull => "Image pull",
            Part::Containers => "Containers",
            Part::Store => "Store",
            Part::Seccomp => "Seccomp",
            Part::Idle => "Idle footprint",
            Part::Volumes => "Volumes",
            Part::Build => "Build",
            Part::Stats => "Stats",
            Part::Network => "Network",
        }
    }
}

/// The first line of a part's section: when, how and with which Berth it was measured.
fn provenance(date: &str, command: &str, berth: &str) -> String {
    format!("_Measured {date} by {command}; Berth {berth}._")
}

/// What an earlier `bench/RESULTS.md` holds of each part (indexed by `Part as usize`).
#[derive(Debug, Default)]
struct Previous {
    /// Its summary lines: `- **<title>** (measured <date>):` and the lines under it.
    summary: [Vec<String>; Part::COUNT],
    /// Its section, from its `## <title>` up to the next `## `, starting with its provenance.
    section: [Option<String>; Part::COUNT],
}

impl Previous {
    fn parse(text: &str) -> Previous {
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name));
        // Sections written before each had its own provenance line: the whole file's.
        let date = field("- Date: ").unwrap_or("at an unknown date");
        let command = field("- Command: ").map_or("an unknown command", |c| {
            c.trim_end_matches(" (as root, from the workspace root)")
        });
        let berth = field("- Berth: ").map_or("of an unknown version", |b| {
            b.trim_end_matches(" (release build)")
        });
        let mut p = Previous::default();

        let mut current = None;
        let summary = text
            .lines()
            .skip_while(|l| !l.starts_with("- Machine: "))
            .skip(1)
            .take_while(|l| !l.is_empty());
        for line in summary {
            if let Some(rest) = line.strip_prefix("- **") {
                current = Part::ALL.into_iter().find(|part| {
                    rest.strip_prefix(part.title())
                        .is_some_and(|r| r.starts_with("**"))
                });
            } else if let Some(rest) = line.strip_prefix("- ") {
                // Written before the summary was grouped by part: the pull's line names itself,
                // the other lines are the container benchmark's.
                let (part, text) = match rest.strip_prefix("Image pull: ") {
                    Some(t) => (Part::Pull, t),
                    None => (Part::Containers, rest),
                };
                let lines = &mut p.summary[part as usize];
                if lines.is_empty() {
                    lines.push(format!("- **{}** (measured {date}):", part.title()));
                }
                lines.push(format!("  - {text}"));
                current = None;
                continue;
            }
            if let Some(part) = current {
                p.summary[part as usize].push(line.to_owned());
            }
        }

        let mut bodies: [Option<Vec<&str>>; Part::COUNT] = Default::default();
        let mut current = None;
        for line in text.lines() {
            if let Some(title) = line.strip_prefix("## ") {
                current = Part::ALL.into_iter().find(|part| part.title() == title);
                if let Some(part) = current {
                    bodies[part as usize] = Some(Vec::new());
                }
            } else if let Some(part) = current {
                bodies[part as usize].get_or_insert_default().push(line);
            }
        }
        for part in Part::ALL {
            let Some(body) = &bodies[part as usize] else {
                continue;
            };
            let body: Vec<&str> = body.iter().copied().skip_while(|l| l.is_empty()).collect();
            let mut section = format!("## {}\n\n", part.title());
            if !body.first().is_some_and(|l| l.starts_with("_Measured ")) {
                section += &provenance(date, command, berth);
                section += "\n\n";
            }
            for l in body {
                section += l;
                section += "\n";
            }
            p.section[part as usize] = Some(section);
        }
        p
    }
}

impl Results {
    /// The summary table (plain text, for stdout).
    pub(crate) fn table(&self) -> String {
        let mut t = String::new();
        if let Some(p) = &self.pull {
            p.table(&mut t);
        }
        if let Some(c) = &self.containers {
            c.table(&mut t);
        }
        if let Some(st) = &self.store {
            st.table(&mut t);
        }
        if let Some(sc) = &self.seccomp {
            sc.table(&mut t);
        }
        if let Some(i) = &self.idle {
            i.table(&mut t);
        }
        if let Some(v) = &self.volumes {
            v.table(&mut t);
        }
        if let Some(b) = &self.build {
            b.table(&mut t);
        }
        if let Some(st) = &self.stats {
            st.table(&mut t);
        }
        if let Some(n) = &self.network {
            n.table(&mut t);
        }
        let _ = writeln!(
            t,
            "leftovers: {}",
            if self.leftovers.is_empty() {
                "none".to_owned()
            } else {
                self.leftovers.join("; ")
            }
        );
        t
    }

    /// The summary lines of one part, if this run measured it.
    fn summary_lines(&self, part: Part) -> Option<Vec<String>> {
        match part {
            Part::Pull => self.pull.as_ref().map(PullResults::summary_lines),
            Part::Containers => self
                .containers
                .as_ref()
                .map(ContainerResults::summary_lines),
            Part::Store => self.store.as_ref().map(StoreResults::summary_lines),
            Part::Seccomp => self
                .seccomp
                .as_ref()
                .map(crate::seccomp::SeccompResults::summary_lines),
            Part::Idle => self
                .idle
                .as_ref()
                .map(crate::idle::IdleResults::summary_lines),
            Part::Volumes => self
                .volumes
                .as_ref()
                .map(crate::volumes::VolumeResults::summary_lines),
            Part::Build => self
                .build
                .as_ref()
                .map(crate::build::BuildResults::summary_lines),
            Part::Stats => self
                .stats
                .as_ref()
                .map(crate::stats::StatsResults::summary_lines),
            Part::Network => self
                .network
                .as_ref()
                .map(crate::network::NetworkResults::summary_lines),
        }
    }

    /// The section of one part below its heading and when it was measured, if this run measured
    /// it.
    fn section(&self, part: Part) -> Option<String> {
        let mut s = String::new();
        match part {
            Part::Pull => self.pull.as_ref()?.markdown(&mut s),
            Part::Containers => self.containers.as_ref()?.markdown(&mut s),
            Part::Store => self.store.as_ref()?.markdown(&mut s),
            Part::Seccomp => self.seccomp.as_ref()?.markdown(&mut s),
            Part::Idle => self.idle.as_ref()?.markdown(&mut s),
            Part::Volumes => self.volumes.as_ref()?.markdown(&mut s),
            Part::Build => self.build.as_ref()?.markdown(&mut s),
            Part::Stats => self.stats.as_ref()?.markdown(&mut s),
            Part::Network => self.network.as_ref()?.markdown(&mut s),
        }
        Some(s)
    }

    /// The whole of `bench/RESULTS.md`. `previous` is the file as it was: the parts this run did
    /// not measure keep their summary lines and sections from it.
    pub(crate) fn markdown(&self, previous: Option<&str>) -> String {
        let m = &self.machine;
        let v = &self.versions;
        let kept = previous.map(Previous::parse).unwrap_or_default();
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks: Berth and dockerd\n");
        let _ = writeln!(
            s,
            "Written by `berth-bench` (`bench/`) at the end of every run; do not edit by hand. A \
             run of one part (`--only <part> --results`) replaces that part only: each part says \
             when it was measured.\n"
        );
        let _ = writeln!(
            s,
            "- Command: `{}` (as root, from the workspace root)",
            self.command
        );
        let _ = writeln!(s, "- Date: {}", self.date);
        let _ = writeln!(
            s,
            "- Machine: {} × {}, {} of memory, {}",
            m.nproc,
            m.cpu,
            mib(Some(m.mem_total_kib)),
            m.os
        );
        for part in Part::ALL {
            match self.summary_lines(part) {
                Some(lines) => {
                    let _ = writeln!(s, "- **{}** (measured {}):", part.title(), self.date);
                    for l in lines {
                        let _ = writeln!(s, "  - {l}");
                    }
                }
                None => {
                    for l in &kept.summary[part as usize] {
                        let _ = writeln!(s, "{l}");
                    }
                }
            }
        }
        let _ = writeln!(s);
        for part in Part::ALL {
            match self.section(part) {
                Some(section) => {
                    let _ = writeln!(s, "## {}\n", part.title());
                    let _ = writeln!(
                        s,
                        "{}\n",
                        provenance(&self.date, &format!("`{}`", self.command), &v.berth)
                    );
                    s += &section;
                }
                None => s += kept.section[part as usize].as_deref().unwrap_or(""),
            }
        }

        let _ = writeln!(s, "## Machine\n");
        let _ = writeln!(s, "- CPU: {} × {}", m.nproc, m.cpu);
        let _ = writeln!(s, "- Memory: {}", mib(Some(m.mem_total_kib)));
        let _ = writeln!(s, "- Kernel: {} ({})", m.kernel, m.os);
        let _ = writeln!(
            s,
            "- Filesystem of both engines' roots and the registry's storage: {}",
            m.filesystem
        );
        let _ = writeln!(
            s,
            "- Load average when the run started: {} (a shared machine: other work may run meanwhile)",
            m.loadavg
        );

        let _ = writeln!(s, "\n## Versions\n");
        let _ = writeln!(s, "- Berth: {} (release build)", v.berth);
        let _ = writeln!(
            s,
            "- dockerd: {} (Debian's docker.io), containerd {}, {}",
            v.dockerd, v.containerd, v.runc
        );
        let _ = writeln!(s, "- docker CLI (drives both engines): {}", v.cli);
        let _ = writeln!(s, "- registry: Debian's docker-registry {}", v.registry);

        let _ = writeln!(s, "\n## Setup and cleanup\n");
        let _ = writeln!(
            s,
            "One Berth engine (`berth up`, release binaries) and one dockerd run side by side, each \
             in its own temporary roots; dockerd has its own socket, data root, exec root and \
             containerd, `--bridge none`, `--iptables=false`, `--ip-forward=false`. Images come \
             from a private `docker-registry` on 127.0.0.1 (plain HTTP).\n"
        );
        if self.network.is_some() {
            let _ = writeln!(
                s,
                "This run measured the network part: dockerd ran in Docker's default network \
                 configuration instead (iptables, IP forwarding, masquerade, userland proxy) on a \
                 bridge of its own; the iptables chains and rules it added were taken out and \
                 `ip_forward` set back when it stopped.\n"
            );
        }
        for n in &self.cleanup {
            let _ = writeln!(s, "- {n}");
        }
        if self.leftovers.is_empty() {
            let _ = writeln!(
                s,
                "- Left behind: nothing (no process, no mount under the benchmark's directories, \
                 no new network link; ip_forward and iptables unchanged)"
            );
        } else {
            for l in &self.leftovers {
                let _ = writeln!(s, "- **Left behind**: {l}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_p90_min_max() {
        let s = stats(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.p90, s.min, s.max), (2.0, 3.0, 1.0, 3.0));
        let s = stats(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = stats(&v).unwrap();
        assert_eq!((s.median, s.p90), (10.5, 18.0));
        assert_eq!(stats(&[5.0]).unwrap().p90, 5.0);
        assert!(stats(&[]).is_none());
    }

    /// A file from before the parts were grouped: the whole file's date, command and Berth.
    const LEGACY: &str = "# Benchmarks\n\n- Command: `scripts/bench.sh` (as root, from the \
        workspace root)\n- Date: D1\n- Machine: M\n- Image pull: P\n- run C1\n- shims C2\n\n\
        ## Image pull\n\nPULL\n\n### Phases\n\nPH\n\n## Containers\n\nCONT\n\n\
        ## Machine\n\n- CPU\n\n## Versions\n\n- Berth: commit abc (release build)\n";

    #[test]
    fn previous_legacy() {
        let p = Previous::parse(LEGACY);
        assert_eq!(
            p.summary[Part::Pull as usize],
            ["- **Image pull** (measured D1):", "  - P"]
        );
        assert_eq!(
            p.summary[Part::Containers as usize],
            [
                "- **Containers** (measured D1):",
                "  - run C1",
                "  - shims C2"
            ]
        );
        assert!(p.summary[Part::Store as usize].is_empty());
        let prov = "_Measured D1 by `scripts/bench.sh`; Berth commit abc._";
        assert_eq!(
            p.section[Part::Pull as usize].as_deref(),
            Some(format!("## Image pull\n\n{prov}\n\nPULL\n\n### Phases\n\nPH\n\n").as_str())
        );
        assert_eq!(
            p.section[Part::Containers as usize].as_deref(),
            Some(format!("## Containers\n\n{prov}\n\nCONT\n\n").as_str())
        );
        assert!(p.section[Part::Store as usize].is_none());
    }

    #[test]
    fn previous_idle_part_is_kept() {
        let text = "- Date: D3\n- Machine: M\n- **Idle footprint** (measured D3):\n  - I1\n\n\
            ## Idle footprint\n\n_Measured D3 by x; Berth y._\n\nIDLE\n\n## Machine\n";
        let p = Previous::parse(text);
        assert_eq!(
            p.summary[Part::Idle as usize],
            ["- **Idle footprint** (measured D3):", "  - I1"]
        );
        assert_eq!(
            p.section[Part::Idle as usize].as_deref(),
            Some("## Idle footprint\n\n_Measured D3 by x; Berth y._\n\nIDLE\n\n")
        );
    }

    #[test]
    fn previous_grouped() {
        let text = "- Date: D2\n- Machine: M\n- **Containers** (measured D1):\n  - C1\n\
            - **Store** (measured D2):\n  - S1\n  - S2\n\n## Store\n\n_Measured D2 by x; \
            Berth y._\n\nSTORE\n\n## Machine\n";
        let p = Previous::parse(text);
        assert!(p.summary[Part::Pull as usize].is_empty());
        assert_eq!(
            p.summary[Part::Containers as usize],
            ["- **Containers** (measured D1):", "  - C1"]
        );
        assert_eq!(
            p.summary[Part::Store as usize],
            ["- **Store** (measured D2):", "  - S1", "  - S2"]
        );
        assert_eq!(
            p.section[Part::Store as usize].as_deref(),
            Some("## Store\n\n_Measured D2 by x; Berth y._\n\nSTORE\n\n")
        );
    }

    #[test]
    fn previous_volumes_part_is_kept() {
        let text = "- Date: D3\n- Machine: M\n- **Volumes** (measured D3):\n  - V1\n\n\
            ## Volumes\n\n_Measured D3 by x; Berth y._\n\nVOLUMES\n\n## Machine\n";
        let p = Previous::parse(text);
        assert_eq!(
            p.summary[Part::Volumes as usize],
            ["- **Volumes** (measured D3):", "  - V1"]
        );
        assert_eq!(
            p.section[Part::Volumes as usize].as_deref(),
            Some("## Volumes\n\n_Measured D3 by x; Berth y._\n\nVOLUMES\n\n")
        );
        assert!(p.section[Part::Idle as usize].is_none());
    }

    #[test]
    fn previous_network_part_is_kept() {
        let text = "- Date: D4\n- Machine: M\n- **Stats** (measured D3):\n  - S1\n\
            - **Network** (measured D4):\n  - N1\n  - N2\n\n## Stats\n\nSTATS\n\n\
            ## Network\n\n_Measured D4 by x; Berth y._\n\nNET\n\n### Method\n\nM\n\n## Machine\n";
        let p = Previous::parse(text);
        assert_eq!(
            p.summary[Part::Network as usize],
            ["- **Network** (measured D4):", "  - N1", "  - N2"]
        );
        assert_eq!(p.summary[Part::Stats as usize].len(), 2);
        assert_eq!(
            p.section[Part::Network as usize].as_deref(),
            Some("## Network\n\n_Measured D4 by x; Berth y._\n\nNET\n\n### Method\n\nM\n\n")
        );
        assert_eq!(Part::ALL[Part::COUNT - 1], Part::Network);
    }
}

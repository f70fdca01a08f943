//! Statistics, the table printed to stdout and the Markdown written to `bench/RESULTS.md`.

use std::fmt::Write as _;

use crate::host::Machine;

/// The target: Berth's median at most this fraction of dockerd's.
pub(crate) const TARGET_RATIO: f64 = 0.5;

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

/// Median, minimum, maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub(crate) median: f64,
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
    Some(Stats {
        median,
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
    pub(crate) cli: String,
    pub(crate) registry: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Results {
    pub(crate) date: String,
    pub(crate) command: String,
    pub(crate) machine: Machine,
    pub(crate) versions: Versions,
    pub(crate) image: ImageSummary,
    pub(crate) rounds: usize,
    pub(crate) berth: Vec<Pull>,
    pub(crate) dockerd: Vec<Pull>,
    /// VmHWM of berth-images before the first pull and at the end, KiB.
    pub(crate) berth_images_hwm_start: Option<u64>,
    pub(crate) berth_images_hwm: Option<u64>,
    pub(crate) dockerd_hwm: Option<u64>,
    pub(crate) containerd_hwm: Option<u64>,
    /// What the teardown did.
    pub(crate) cleanup: Vec<String>,
    /// What was left behind or changed (empty: nothing).
    pub(crate) leftovers: Vec<String>,
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2}"))
}

fn bytes_mib(b: u64) -> String {
    format!("{b} bytes ({:.1} MiB)", b as f64 / (1024.0 * 1024.0))
}

impl Results {
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
        match self.ratio() {
            Some(r) => format!(
                "{r:.3}× (target ≤ {TARGET_RATIO}×: {})",
                if self.target_met() { "met" } else { "not met" }
            ),
            None => "n/a".to_owned(),
        }
    }

    /// The summary table (plain text, for stdout).
    pub(crate) fn table(&self) -> String {
        let b = self.berth_stats();
        let d = self.dockerd_stats();
        let cell = |s: Option<Stats>, f: fn(Stats) -> f64| secs(s.map(f));
        let mut t = String::new();
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

    /// The whole of `bench/RESULTS.md`.
    pub(crate) fn markdown(&self) -> String {
        let b = self.berth_stats();
        let d = self.dockerd_stats();
        let m = &self.machine;
        let v = &self.versions;
        let mut s = String::new();
        let _ = writeln!(s, "# Image-pull benchmark: Berth and dockerd\n");
        let _ = writeln!(
            s,
            "Written by `berth-bench` (`bench/`) at the end of every run; do not edit by hand.\n"
        );
        let _ = writeln!(
            s,
            "- Command: `{}` (as root, from the workspace root)",
            self.command
        );
        let _ = writeln!(s, "- Date: {}", self.date);
        let _ = writeln!(
            s,
            "- Result: Berth's median cold pull over dockerd's: **{}**; the issue's target \
             (at most {TARGET_RATIO}×) is **{}**.",
            self.ratio()
                .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×")),
            if self.target_met() { "met" } else { "not met" }
        );
        let _ = writeln!(
            s,
            "- Peak RSS of Berth's images service (`berth-images` VmHWM): **{}**\n",
            mib(self.berth_images_hwm)
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

        let _ = writeln!(s, "## Phases\n");
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

        let _ = writeln!(s, "\n## Every pull\n");
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

        let _ = writeln!(s, "\n## Image\n");
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

        let _ = writeln!(s, "\n## Machine\n");
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
            "- dockerd: {} (Debian's docker.io), containerd {}",
            v.dockerd, v.containerd
        );
        let _ = writeln!(s, "- docker CLI (drives both engines): {}", v.cli);
        let _ = writeln!(s, "- registry: Debian's docker-registry {}", v.registry);

        let _ = writeln!(s, "\n## Method\n");
        let _ = writeln!(
            s,
            "The image is built once (`berth_testutil::images::large_layout`) and pushed to a private \
             `docker-registry` on 127.0.0.1 (plain HTTP). One Berth engine (`berth up`, release \
             binaries) and one dockerd run side by side, each in its own temporary roots; dockerd \
             has its own socket, data root, exec root and containerd, `--bridge none`, \
             `--iptables=false`, `--ip-forward=false`. Each round, for each engine (the order \
             alternates from round to round): `docker rmi -f` the image (and `docker image prune \
             -a -f` for dockerd), check that nothing of it is stored (no image, no layer, and for \
             Berth an empty content store), `sync` and drop the page cache, run `docker version` \
             against the engine (so that the CLI's and the engine's code, not the image, are back \
             in memory), then time `docker pull` wall clock from spawning the CLI to its exit, and \
             check the pulled image's ID. Both \
             engines download at most 3 layers at once (their defaults). Peak RSS is the `VmHWM` of \
             the process at the end of the run (the peak since it started; `berth-images` was at {} \
             before the first pull). On a shared machine the ratio moves from run to run with the \
             load: the ratio within each round and the load average above tell how noisy a run was.",
            mib(self.berth_images_hwm_start)
        );

        let _ = writeln!(s, "\n## Cleanup\n");
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
    fn median_min_max() {
        let s = stats(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = stats(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert!(stats(&[]).is_none());
    }
}

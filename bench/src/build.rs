//! Build (the docker build issue): `docker build` with the classic builder (`DOCKER_BUILDKIT=0`)
//! of a 10-step Dockerfile whose COPY takes a 20 MiB context (incompressible data) and whose
//! RUNs write files, in both engines: cold (`--no-cache`: every step runs) and fully cached
//! (every step after FROM reads ` ---> Using cache`). The targets: cold ≤ 0.5×
//! dockerd, cached ≤ 0.3×. Beside them, the docker CLI's own floor: the same build against an
//! engine that only drains the context ([`crate::cli_floor`]).

use std::{fmt::Write as _, path::Path, time::Instant};

use anyhow::{Context, ensure};

use crate::{
    Target,
    report::{Stats, median_ratio, stats, verdict},
};

/// The cold build's target: Berth's median at most this fraction of dockerd's.
pub(crate) const COLD_TARGET_RATIO: f64 = 0.5;
/// The cached rebuild's target.
pub(crate) const CACHED_TARGET_RATIO: f64 = 0.3;
/// The tag both engines build.
const TAG: &str = "berth-bench-build:latest";
/// Files of the context's `data/` directory.
const PARTS: usize = 4;

/// The Dockerfile: 10 steps on `image`.
pub(crate) fn dockerfile(image: &str) -> String {
    format!(
        "FROM {image}\n\
         ENV BENCH=build\n\
         WORKDIR /work\n\
         COPY data/ /work/data/\n\
         RUN dd if=/dev/zero of=/work/zeros bs=1024 count=4096 2>/dev/null\n\
         RUN ls -l /work/data > /work/list && echo one > /work/one\n\
         RUN cat /work/data/part0 > /work/copy0\n\
         LABEL bench=build\n\
         RUN for i in 1 2 3 4 5; do echo $i > /work/f$i; done\n\
         CMD [\"sh\"]\n"
    )
}

/// Steps that print ` ---> Using cache` on a cached rebuild (all but FROM).
pub(crate) fn cached_steps(dockerfile: &str) -> usize {
    dockerfile.lines().filter(|l| !l.is_empty()).count() - 1
}

/// Writes the context into `dir`: the Dockerfile and `data/part0..` of `total` bytes together,
/// pseudo-random (no compression helps either engine).
pub(crate) fn write_context(dir: &Path, image: &str, total: usize) -> anyhow::Result<()> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).context("creating the build context")?;
    std::fs::write(dir.join("Dockerfile"), dockerfile(image)).context("writing the Dockerfile")?;
    // xorshift64: fast, deterministic, incompressible enough.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..PARTS {
        let len = total / PARTS + usize::from(i < total % PARTS);
        let mut buf = Vec::with_capacity(len + 8);
        while buf.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.extend_from_slice(&x.to_le_bytes());
        }
        buf.truncate(len);
        std::fs::write(data.join(format!("part{i}")), buf).context("writing the context")?;
    }
    Ok(())
}

/// One engine's timed builds, seconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineBuilds {
    pub(crate) cold: Vec<f64>,
    pub(crate) cached: Vec<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct BuildResults {
    pub(crate) image: String,
    pub(crate) context_mib: usize,
    pub(crate) rounds: usize,
    pub(crate) berth: EngineBuilds,
    pub(crate) dockerd: EngineBuilds,
    /// The same cached build against the null engine, seconds: the CLI's own part.
    pub(crate) floor: Vec<f64>,
}

/// The plan of the build benchmark.
pub(crate) struct Plan {
    pub(crate) rounds: usize,
    pub(crate) context_mib: usize,
}

/// One `DOCKER_BUILDKIT=0 docker build`, timed from spawning the CLI to its exit; checks that
/// a cached build ran no step and a cold one ran every RUN.
fn timed_build(t: &Target<'_>, ctx: &Path, cached: bool, steps: usize) -> anyhow::Result<f64> {
    let mut cmd = t.cmd();
    // No network: the RUNs need none, and the bench's dockerd runs without a bridge.
    cmd.env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", TAG]);
    if !cached {
        cmd.arg("--no-cache");
    }
    cmd.arg(ctx);
    let start = Instant::now();
    let out = cmd.output().context("running docker build")?;
    let secs = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{}: docker build failed:\n{stdout}\n{}",
        t.kind.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = stdout.matches(" ---> Using cache").count();
    let want = if cached { steps } else { 0 };
    ensure!(
        hits == want,
        "{}: {hits} cached steps, expected {want}:\n{stdout}",
        t.kind.name()
    );
    Ok(secs)
}

/// The build against the null engine: the CLI's start-up, `_ping`, and tarring and sending
/// the context, with no engine work.
fn timed_floor(t: &Target<'_>, host: &str, ctx: &Path) -> anyhow::Result<f64> {
    let mut cmd = t.cmd();
    cmd.env("DOCKER_HOST", host)
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", TAG])
        .arg(ctx);
    let start = Instant::now();
    let out = cmd.output().context("running docker build")?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "docker build against the null engine failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(secs)
}

/// Removes what the builds made (the tagged image takes its intermediate images with it).
fn clean(t: &Target<'_>) -> anyhow::Result<()> {
    let (ok, _, err) = t.docker(&["rmi", "-f", TAG])?;
    ensure!(
        ok || err.contains("No such image"),
        "docker rmi {TAG}: {err}"
    );
    t.docker_ok(&["image", "prune", "-f"])?;
    Ok(())
}

/// Runs the benchmark: per round, in each engine (alternating which goes first), a cold build
/// then a cached one.
pub(crate) fn run(
    targets: [&Target<'_>; 2],
    image: &str,
    plan: &Plan,
) -> anyhow::Result<BuildResults> {
    eprintln!("berth-bench: build...");
    let dir = tempfile::tempdir().context("a temporary directory")?;
    write_context(dir.path(), image, plan.context_mib << 20)?;
    let steps = cached_steps(&dockerfile(image));
    let mut r = BuildResults {
        image: image.to_owned(),
        context_mib: plan.context_mib,
        rounds: plan.rounds,
        berth: EngineBuilds::default(),
        dockerd: EngineBuilds::default(),
        floor: Vec::new(),
    };
    let null = crate::cli_floor::null_engine(dir.path())?;
    for round in 0..plan.rounds {
        let order = if round % 2 == 0 {
            targets
        } else {
            [targets[1], targets[0]]
        };
        for t in order {
            let cold = timed_build(t, dir.path(), false, steps)?;
            let cached = timed_build(t, dir.path(), true, steps)?;
            let e = match t.kind {
                crate::Kind::Berth => &mut r.berth,
                crate::Kind::Dockerd => &mut r.dockerd,
            };
            e.cold.push(cold);
            e.cached.push(cached);
        }
        r.floor
            .push(timed_floor(targets[0], &null.host, dir.path())?);
    }
    for t in targets {
        clean(t)?;
    }
    Ok(r)
}

fn median(v: &[f64]) -> String {
    stats(v).map_or_else(|| "n/a".to_owned(), |s: Stats| format!("{:.3}", s.median))
}

impl BuildResults {
    pub(crate) fn cold_ratio(&self) -> Option<f64> {
        median_ratio(&self.berth.cold, &self.dockerd.cold)
    }

    pub(crate) fn cached_ratio(&self) -> Option<f64> {
        median_ratio(&self.berth.cached, &self.dockerd.cached)
    }

    /// The CLI's floor over dockerd's cached rebuild: no engine's ratio can be lower.
    pub(crate) fn floor_ratio(&self) -> Option<f64> {
        median_ratio(&self.floor, &self.dockerd.cached)
    }

    fn floor_text(&self) -> String {
        self.floor_ratio().map_or_else(
            || "n/a".to_owned(),
            |r| format!("{} s, {r:.3}× of dockerd's", median(&self.floor)),
        )
    }

    pub(crate) fn summary_lines(&self) -> Vec<String> {
        vec![
            format!(
                "cold `docker build` (10 steps, {} MiB COPY), median of {}: Berth {} s, dockerd \
                 {} s; Berth/dockerd **{}**",
                self.context_mib,
                self.rounds,
                median(&self.berth.cold),
                median(&self.dockerd.cold),
                verdict(self.cold_ratio(), COLD_TARGET_RATIO)
            ),
            format!(
                "fully cached rebuild: Berth {} s, dockerd {} s; Berth/dockerd **{}** (the \
                 docker CLI's own floor: {})",
                median(&self.berth.cached),
                median(&self.dockerd.cached),
                verdict(self.cached_ratio(), CACHED_TARGET_RATIO),
                self.floor_text()
            ),
        ]
    }

    pub(crate) fn table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "build: 10-step Dockerfile on {}, {} MiB context, classic builder, {} rounds",
            self.image, self.context_mib, self.rounds
        );
        let _ = writeln!(t, "{:<40} {:>8} {:>8}", "", "Berth", "dockerd");
        for (name, b, d) in [
            (
                "cold build median (s)",
                &self.berth.cold,
                &self.dockerd.cold,
            ),
            (
                "cached rebuild median (s)",
                &self.berth.cached,
                &self.dockerd.cached,
            ),
        ] {
            let _ = writeln!(t, "{name:<40} {:>8} {:>8}", median(b), median(d));
        }
        let _ = writeln!(
            t,
            "{:<40} {:>8}",
            "docker CLI floor, null engine (s)",
            median(&self.floor)
        );
        let _ = writeln!(
            t,
            "ratio Berth/dockerd, cold: {}; cached: {}",
            verdict(self.cold_ratio(), COLD_TARGET_RATIO),
            verdict(self.cached_ratio(), CACHED_TARGET_RATIO)
        );
    }

    pub(crate) fn markdown(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "`DOCKER_BUILDKIT=0 docker build` of a 10-step Dockerfile on `{}` (ENV, WORKDIR, a \
             COPY of {} MiB of incompressible data, four RUNs that write files, LABEL, CMD).\n",
            self.image, self.context_mib
        );
        let _ = writeln!(s, "| | Berth | dockerd | Berth/dockerd |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (name, b, d, r) in [
            (
                "cold build (`--no-cache`), median (s)",
                &self.berth.cold,
                &self.dockerd.cold,
                self.cold_ratio(),
            ),
            (
                "fully cached rebuild, median (s)",
                &self.berth.cached,
                &self.dockerd.cached,
                self.cached_ratio(),
            ),
        ] {
            let r = r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×"));
            let _ = writeln!(s, "| {name} | {} | {} | {r} |", median(b), median(d));
        }
        let floor = self
            .floor_ratio()
            .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×"));
        let _ = writeln!(
            s,
            "| the docker CLI's own floor (the cached build against a null engine), median (s) \
             | {} | | {floor} |",
            median(&self.floor)
        );
        let _ = writeln!(
            s,
            "\nCold: **{}**. Cached: **{}**.\n",
            verdict(self.cold_ratio(), COLD_TARGET_RATIO),
            verdict(self.cached_ratio(), CACHED_TARGET_RATIO)
        );
        let _ = writeln!(s, "### Method\n");
        let _ = writeln!(
            s,
            "Both engines are driven by the same docker CLI with `DOCKER_BUILDKIT=0` and \
             `--network none`, timed wall clock from spawning the CLI to its exit (sending the context included). Per round \
             ({} rounds, the engine that goes first alternating): a cold build with `--no-cache` \
             (no step may print ` ---> Using cache`), then the same build again, where every \
             step after FROM must print it. The base image is already present in both engines. \
             Afterwards the tagged image is removed with its intermediate images, then `docker \
             image prune -f`.\n",
            self.rounds
        );
        let _ = writeln!(
            s,
            "The floor: once per round, the same cached `docker build` against a null engine \
             on a unix socket that answers `_ping`, reads the whole context and answers a \
             successful build in one line. What it measures is the CLI alone (its start-up, \
             `_ping`, tarring and sending the {} MiB context); its ratio to dockerd's cached \
             rebuild is the lowest ratio any engine can reach, so a cached target below it \
             cannot be met by an engine.\n",
            self.context_mib
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_steps_and_a_context_of_the_asked_size() {
        let df = dockerfile("busybox:latest");
        assert_eq!(df.lines().count(), 10);
        assert!(df.starts_with("FROM busybox:latest\n"));
        assert_eq!(df.matches("\nRUN ").count(), 4);
        assert_eq!(cached_steps(&df), 9);
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), "busybox", 1_000_003).unwrap();
        let sizes: Vec<u64> = (0..PARTS)
            .map(|i| {
                std::fs::metadata(dir.path().join(format!("data/part{i}")))
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes.iter().sum::<u64>(), 1_000_003);
        let a = std::fs::read(dir.path().join("data/part0")).unwrap();
        let b = std::fs::read(dir.path().join("data/part1")).unwrap();
        assert_ne!(a[..64], b[..64], "the parts differ");
    }

    #[test]
    fn ratios_and_verdicts() {
        let r = BuildResults {
            image: "busybox".to_owned(),
            context_mib: 20,
            rounds: 3,
            berth: EngineBuilds {
                cold: vec![1.0, 2.0, 3.0],
                cached: vec![0.1, 0.2, 0.3],
            },
            dockerd: EngineBuilds {
                cold: vec![4.0, 4.0, 4.0],
                cached: vec![0.5, 0.5, 0.5],
            },
            floor: vec![0.2, 0.25, 0.3],
        };
        assert_eq!(r.cold_ratio(), Some(0.5));
        assert!((r.cached_ratio().unwrap() - 0.4).abs() < 1e-9);
        let lines = r.summary_lines();
        assert!(
            lines[0].contains("0.500× (target ≤ 0.5×: met)"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("0.400× (target ≤ 0.3×: not met)"),
            "{lines:?}"
        );
        let mut md = String::new();
        r.markdown(&mut md);
        assert!(md.contains("| cold build (`--no-cache`), median (s) | 2.000 | 4.000 | 0.500× |"));
        assert!(
            md.contains("against a null engine), median (s) | 0.250 | | 0.500× |"),
            "{md}"
        );
        assert!(
            lines[1].contains("floor: 0.250 s, 0.500× of dockerd's"),
            "{lines:?}"
        );
        let empty = BuildResults {
            berth: EngineBuilds::default(),
            ..r
        };
        assert_eq!(empty.cold_ratio(), None);
    }
}

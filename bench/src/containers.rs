//! The container benchmark: `docker run --rm --network none busybox true` latency, 100 ×
//! (`docker create` + `docker start`) throughput, and the memory of the per-container shims
//! (`berth-shim` for Berth, `containerd-shim-runc-v2` for dockerd), both engines driven by the
//! same docker CLI in the same run.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};

use crate::{
    Kind, Target,
    host::{self, ProcMem},
    report::{ContainerResults, EngineContainers, Throughput},
};

/// `docker version` of the server only: the floor under any CLI command (the CLI's start-up
/// and one API round trip).
pub(crate) const VERSION_ARGS: [&str; 3] = ["version", "--format", "{{.Server.Version}}"];

/// What the container benchmark runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Timed `docker run --rm` per engine.
    pub(crate) runs: usize,
    /// Untimed `docker run --rm` per engine before the timed ones.
    pub(crate) warmup: usize,
    /// Containers created and started in the throughput test.
    pub(crate) containers: usize,
    /// How long the containers run before their shims' memory is read.
    pub(crate) settle: Duration,
}

/// One engine, with how to find its shims.
pub(crate) struct Engine<'a> {
    pub(crate) target: &'a Target<'a>,
    /// A directory every shim of this engine names on its command line.
    pub(crate) root: &'a Path,
}

impl Engine<'_> {
    /// The shim binary's file name.
    fn shim_name(&self) -> &'static str {
        match self.target.kind {
            Kind::Berth => "berth-shim",
            Kind::Dockerd => "containerd-shim-runc-v2",
        }
    }

    /// The engine's shim processes, with their command lines.
    fn shims(&self) -> Vec<(i32, Vec<String>)> {
        let name = self.shim_name();
        host::processes_with(&self.root.to_string_lossy())
            .into_iter()
            .filter(|(_, argv)| {
                argv.first()
                    .is_some_and(|a| Path::new(a).file_name().is_some_and(|n| n == name))
            })
            .collect()
    }

    /// The shim of one container (its full ID is on the shim's command line: Berth's bundle
    /// path, containerd's `-id`).
    fn shim_of(&self, id: &str) -> Option<i32> {
        self.shims()
            .into_iter()
            .find(|(_, argv)| argv.iter().any(|a| a.contains(id)))
            .map(|(pid, _)| pid)
    }
}

/// Runs the CLI and returns how long it took from spawn to exit, and its stdout.
pub(crate) fn timed(t: &Target<'_>, args: &[&str]) -> anyhow::Result<(f64, String)> {
    let mut cmd = t.cmd();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running docker {args:?}"))?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "{}: docker {args:?} failed ({}):\n{}\n{}",
        t.kind.name(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((secs, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Container IDs the engine lists (`docker ps -a -q --no-trunc`).
pub(crate) fn all_containers(t: &Target<'_>) -> anyhow::Result<Vec<String>> {
    Ok(t.docker_ok(&["ps", "-a", "-q", "--no-trunc"])?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Fails if the engine has any container; `when` says at what point of the benchmark.
pub(crate) fn ensure_none(t: &Target<'_>, when: &str) -> anyhow::Result<()> {
    let left = all_containers(t)?;
    ensure!(
        left.is_empty(),
        "{}: containers exist {when}: {left:?}",
        t.kind.name()
    );
    Ok(())
}

/// `docker rm -f` of every container of the engine, in batches; checks none is left.
pub(crate) fn remove_all(t: &Target<'_>) -> anyhow::Result<usize> {
    let ids = all_containers(t)?;
    for chunk in ids.chunks(50) {
        let mut args = vec!["rm", "-f"];
        args.extend(chunk.iter().map(String::as_str));
        t.docker_ok(&args)?;
    }
    let left = all_containers(t)?;
    ensure!(
        left.is_empty(),
        "{}: containers left after rm -f: {left:?}",
        t.kind.name()
    );
    Ok(ids.len())
}

/// Memory of the engine's shims, read now.
fn shim_memory(e: &Engine<'_>) -> Vec<ProcMem> {
    e.shims()
        .into_iter()
        .filter_map(|(pid, _)| host::proc_mem(pid))
        .collect()
}

/// Pauses the benchmark (not timed): lets the shims reach their steady state.
fn settle(d: Duration) {
    let until = Instant::now() + d;
    host::poll_until(
        "the containers to settle",
        d + Duration::from_secs(1),
        || Instant::now() >= until,
    );
}

/// One `docker run -d ... sleep 1000`: the memory of its shim once it is idle; then removed.
fn idle_shim(e: &Engine<'_>, image: &str, plan: &Plan) -> anyhow::Result<Option<ProcMem>> {
    let t = e.target;
    let id = t
        .docker_ok(&["run", "-d", "--network", "none", image, "sleep", "1000"])?
        .trim()
        .to_owned();
    ensure!(
        !id.is_empty(),
        "{}: docker run -d printed no ID",
        t.kind.name()
    );
    settle(plan.settle);
    let pid = e.shim_of(&id);
    let mem = pid.and_then(host::proc_mem);
    if pid.is_none() {
        eprintln!(
            "berth-bench: {}: no {} process names container {id}",
            t.kind.name(),
            e.shim_name()
        );
    }
    t.docker_ok(&["rm", "-f", &id])?;
    Ok(mem)
}

/// `containers` × (`docker create` + `docker start`), timed as a whole; the shims' memory while
/// they all run; then every container removed (not timed).
fn throughput(e: &Engine<'_>, image: &str, plan: &Plan) -> anyhow::Result<Throughput> {
    let t = e.target;
    let mut create = Vec::with_capacity(plan.containers);
    let mut start = Vec::with_capacity(plan.containers);
    let mut ids = Vec::with_capacity(plan.containers);
    let begin = Instant::now();
    for _ in 0..plan.containers {
        let (c, out) = timed(t, &["create", "--network", "none", image, "sleep", "1000"])?;
        let id = out.trim().to_owned();
        let (s, _) = timed(t, &["start", &id])?;
        create.push(c);
        start.push(s);
        ids.push(id);
    }
    let secs = begin.elapsed().as_secs_f64();
    let running = t.docker_ok(&["ps", "-q", "--no-trunc"])?;
    let running = running.lines().filter(|l| !l.trim().is_empty()).count();
    ensure!(
        running == plan.containers,
        "{}: {running} containers running after starting {}",
        t.kind.name(),
        plan.containers
    );
    settle(plan.settle);
    let shims = shim_memory(e);
    let removed = remove_all(t)?;
    ensure!(
        removed == plan.containers,
        "{}: removed {removed} containers, expected {}",
        t.kind.name(),
        plan.containers
    );
    Ok(Throughput {
        containers: plan.containers,
        secs,
        create,
        start,
        running,
        shims,
    })
}

/// The whole container benchmark for both engines.
pub(crate) fn run(
    berth: &Engine<'_>,
    dockerd: &Engine<'_>,
    image: &str,
    image_id: &str,
    plan: &Plan,
) -> anyhow::Result<ContainerResults> {
    let engines = [berth, dockerd];
    for e in engines {
        ensure_none(e.target, "before the benchmark")?;
    }
    let run_args = ["run", "--rm", "--network", "none", image, "true"];
    eprintln!(
        "berth-bench: docker run --rm: {} warm-up and {} timed runs per engine...",
        plan.warmup, plan.runs
    );
    for _ in 0..plan.warmup {
        for e in engines {
            timed(e.target, &run_args)?;
        }
    }
    let mut results = [EngineContainers::default(), EngineContainers::default()];
    for i in 0..plan.runs {
        // Alternate which engine goes first.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (secs, _) = timed(engines[k].target, &run_args)?;
            results[k].runs.push(secs);
            let (secs, _) = timed(engines[k].target, &VERSION_ARGS)?;
            results[k].version.push(secs);
        }
    }
    for e in engines {
        ensure_none(e.target, "after the docker run --rm runs")?;
    }
    let line = |r: &EngineContainers| {
        crate::report::stats(&r.runs)
            .map_or_else(|| "n/a".to_owned(), |s| format!("{:.3} s", s.median))
    };
    eprintln!(
        "berth-bench: docker run --rm median: Berth {}, dockerd {}",
        line(&results[0]),
        line(&results[1])
    );

    for (k, e) in engines.into_iter().enumerate() {
        results[k].idle_shim = idle_shim(e, image, plan)?;
    }
    for (k, e) in engines.into_iter().enumerate() {
        eprintln!(
            "berth-bench: {}: {} × (docker create + docker start)...",
            e.target.kind.name(),
            plan.containers
        );
        let t = throughput(e, image, plan)?;
        eprintln!(
            "berth-bench: {}: {} containers in {:.2} s ({:.1}/s)",
            e.target.kind.name(),
            t.containers,
            t.secs,
            t.per_sec()
        );
        results[k].throughput = Some(t);
    }
    let [berth, dockerd] = results;
    Ok(ContainerResults {
        image: image.to_owned(),
        image_id: image_id.to_owned(),
        runs: plan.runs,
        warmup: plan.warmup,
        settle: plan.settle,
        berth,
        dockerd,
    })
}

//! The store benchmark: what an engine's container store costs once it holds many containers.
//! With 1,000 created (never started) `busybox true` containers in each engine, `docker ps -a`
//! (median of several runs, the engines alternating), then ONE `docker rm` of 300 of them, both
//! engines driven by the same docker CLI in the same run. Creating the containers is setup (done
//! several at a time) and is not timed in the rows.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use anyhow::ensure;

use crate::{
    Target, canned,
    containers::{VERSION_ARGS, all_containers, ensure_none, remove_all, timed},
    report::{EngineStore, StoreResults},
};

/// What the store benchmark runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Containers created in each engine before `docker ps -a` is timed.
    pub(crate) containers: usize,
    /// How many of them the one timed `docker rm` removes (the first created).
    pub(crate) remove: usize,
    /// Timed `docker ps -a` per engine.
    pub(crate) ps_runs: usize,
    /// Concurrent `docker create` processes during the setup.
    pub(crate) jobs: usize,
}

/// `n` × `docker create --network none <image> true`, `jobs` at a time; the IDs in the order
/// the creates returned.
fn create_many(t: &Target<'_>, image: &str, n: usize, jobs: usize) -> anyhow::Result<Vec<String>> {
    let next = AtomicUsize::new(0);
    let ids = Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.clamp(1, n.max(1)))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let out = t.docker_ok(&["create", "--network", "none", image, "true"])?;
                        let id = out.trim();
                        ensure!(
                            !id.is_empty(),
                            "{}: docker create printed no ID",
                            t.kind.name()
                        );
                        ids.lock().expect("ids").push(id.to_owned());
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a docker create worker panicked"))
    })?;
    Ok(ids.into_inner().expect("ids"))
}

/// Non-empty lines of a CLI's output.
fn line_count(out: &str) -> usize {
    out.lines().filter(|l| !l.trim().is_empty()).count()
}

/// The CLI's floor: `docker ps -a` against a canned copy of each engine's answers (captured
/// now, with every container listed), the same number of runs, alternating.
fn floor(
    targets: [&Target<'_>; 2],
    plan: &Plan,
    results: &mut [EngineStore; 2],
) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-canned")
        .tempdir()?;
    let mut servers = Vec::new();
    for (k, t) in targets.into_iter().enumerate() {
        let answers = canned::capture(t)?;
        results[k].body_bytes = answers.body.len();
        let server = canned::serve(dir.path(), t.kind.name(), answers)?;
        let canned = Target {
            kind: t.kind,
            host: server.host.clone(),
            cli: t.cli,
            cli_config: t.cli_config.clone(),
        };
        let (_, out) = timed(&canned, &["ps", "-a"])?;
        ensure!(
            line_count(&out) == plan.containers + 1,
            "{}: docker ps -a against the canned answer printed {} lines",
            t.kind.name(),
            line_count(&out)
        );
        servers.push((server, canned));
    }
    eprintln!(
        "berth-bench: docker ps -a against canned answers (the CLI's floor): {} runs each...",
        plan.ps_runs
    );
    for i in 0..plan.ps_runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (secs, _) = timed(&servers[k].1, &["ps", "-a"])?;
            results[k].canned.push(secs);
        }
    }
    Ok(())
}

/// The whole store benchmark for both engines (Berth first); every container is removed at the
/// end.
pub(crate) fn run(
    targets: [&Target<'_>; 2],
    image: &str,
    plan: &Plan,
) -> anyhow::Result<StoreResults> {
    ensure!(
        plan.remove <= plan.containers,
        "cannot remove {} of {} containers",
        plan.remove,
        plan.containers
    );
    for t in targets {
        ensure_none(t, "before the store benchmark")?;
    }
    let mut results = [EngineStore::default(), EngineStore::default()];
    let mut ids = [Vec::new(), Vec::new()];
    for (k, t) in targets.into_iter().enumerate() {
        eprintln!(
            "berth-bench: {}: creating {} containers, {} at a time (setup, not timed)...",
            t.kind.name(),
            plan.containers,
            plan.jobs
        );
        let begin = Instant::now();
        ids[k] = create_many(t, image, plan.containers, plan.jobs)?;
        results[k].create_secs = begin.elapsed().as_secs_f64();
        let listed = all_containers(t)?.len();
        ensure!(
            listed == plan.containers,
            "{}: docker ps -a lists {listed} containers after creating {}",
            t.kind.name(),
            plan.containers
        );
        eprintln!(
            "berth-bench: {}: {} containers created in {:.1} s",
            t.kind.name(),
            plan.containers,
            results[k].create_secs
        );
    }

    let ps_args = ["ps", "-a"];
    // One untimed `docker ps -a` per engine, which must list every container (and a header).
    for t in targets {
        let (_, out) = timed(t, &ps_args)?;
        ensure!(
            line_count(&out) == plan.containers + 1,
            "{}: docker ps -a printed {} lines for {} containers",
            t.kind.name(),
            line_count(&out),
            plan.containers
        );
    }
    eprintln!(
        "berth-bench: docker ps -a with {} containers: {} timed runs per engine...",
        plan.containers, plan.ps_runs
    );
    for i in 0..plan.ps_runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (secs, _) = timed(targets[k], &ps_args)?;
            results[k].ps.push(secs);
            let (secs, _) = timed(targets[k], &VERSION_ARGS)?;
            results[k].version.push(secs);
        }
    }

    floor(targets, plan, &mut results)?;

    for (k, t) in targets.into_iter().enumerate() {
        let mut args = vec!["rm"];
        args.extend(ids[k][..plan.remove].iter().map(String::as_str));
        let (secs, out) = timed(t, &args)?;
        ensure!(
            line_count(&out) == plan.remove,
            "{}: docker rm of {} containers printed {} lines",
            t.kind.name(),
            plan.remove,
            line_count(&out)
        );
        let left = all_containers(t)?.len();
        ensure!(
            left == plan.containers - plan.remove,
            "{}: {left} containers left after removing {} of {}",
            t.kind.name(),
            plan.remove,
            plan.containers
        );
        results[k].rm_secs = secs;
        eprintln!(
            "berth-bench: {}: docker rm of {} containers: {secs:.2} s",
            t.kind.name(),
            plan.remove
        );
    }
    for t in targets {
        remove_all(t)?;
    }
    let [berth, dockerd] = results;
    Ok(StoreResults {
        image: image.to_owned(),
        containers: plan.containers,
        remove: plan.remove,
        ps_runs: plan.ps_runs,
        jobs: plan.jobs,
        berth,
        dockerd,
    })
}

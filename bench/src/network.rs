//! The network benchmark (the network issue), both engines driven by the same docker CLI in
//! the same run, dockerd in Docker's default configuration (iptables, IP forwarding, userland
//! proxy; [`crate::dockerd::Networking::Default`]):
//!
//! - `docker run --rm busybox true` on the default network;
//! - the time of `POST /networks/{id}/connect` (veth, address, rules, DNS) of a fresh running
//!   container, with 1, 100 and 500 containers running on that network;
//! - 50 concurrent `docker run -d` on one user network: errors, and whether they all resolve
//!   each other (busybox `nslookup` from a few of them);
//! - one container publishing 100 ports: its start and the memory it costs (the network
//!   service's RSS growth; dockerd's docker-proxy processes);
//! - Berth only: the time from a SIGKILL of berth-network until a container's DNS answers.
//!
//! The formatting is in `network_report.rs`.

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use nix::{sys::signal::Signal, unistd::Pid};

use crate::{
    Kind, Target,
    containers::{ensure_none, remove_all, timed},
    host,
};

/// The user networks the benchmark creates (removed at the end).
const NETWORKS: [&str; 3] = ["bench-attach", "bench-many", "bench-dns"];

/// What the network benchmark runs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Timed `docker run --rm busybox true` per engine.
    pub(crate) runs: usize,
    /// Untimed ones before.
    pub(crate) warmup: usize,
    /// Running containers on the network at which attaches are timed, ascending.
    pub(crate) counts: Vec<usize>,
    /// Timed attaches at each count.
    pub(crate) attaches: usize,
    /// `docker run -d` started at once on one user network.
    pub(crate) concurrent: usize,
    /// How many of those look up all the others.
    pub(crate) resolvers: usize,
    /// Ports one container publishes.
    pub(crate) ports: u16,
    /// The first host port tried for them.
    pub(crate) port_base: u16,
    /// Timed starts of that container per engine.
    pub(crate) port_runs: usize,
    /// SIGKILLs of berth-network (each timed until DNS answers again).
    pub(crate) kills: usize,
    /// `docker run -d` at a time while containers are started for the attach counts.
    pub(crate) jobs: usize,
}

/// Attach times at one count of running containers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Attach {
    pub(crate) running: usize,
    pub(crate) secs: Vec<f64>,
}

/// The concurrent start and the lookups.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Concurrent {
    /// Wall clock of the whole batch.
    pub(crate) secs: f64,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    /// Lookups made (each resolver of each other container) and how many answered.
    pub(crate) lookups: usize,
    pub(crate) answered: usize,
}

/// The container with many published ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Ports {
    pub(crate) start: Vec<f64>,
    /// Memory it cost, KiB, each run: Berth's network service's RSS growth; dockerd's
    /// docker-proxy processes.
    pub(crate) mem_kib: Vec<u64>,
    /// dockerd's docker-proxy processes while it ran (0 for Berth).
    pub(crate) proxies: usize,
}

/// One engine's measurements.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EngineNetwork {
    pub(crate) run: Vec<f64>,
    pub(crate) attach: Vec<Attach>,
    pub(crate) concurrent: Concurrent,
    pub(crate) ports: Ports,
    /// Berth only: seconds from each SIGKILL of berth-network to DNS answering again.
    pub(crate) dns_back: Vec<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct NetworkResults {
    pub(crate) image: String,
    pub(crate) plan: Plan,
    /// The first of the published ports.
    pub(crate) port_start: u16,
    pub(crate) berth: EngineNetwork,
    pub(crate) dockerd: EngineNetwork,
}

/// What the benchmark needs of the engines besides their CLI.
pub(crate) struct Engines<'a, 'b> {
    pub(crate) targets: [&'a Target<'b>; 2],
    /// berth-network's pid now (a new one after a restart).
    pub(crate) berth_network: &'a dyn Fn() -> Option<i32>,
    pub(crate) dockerd_pid: Option<i32>,
}

/// The whole network benchmark; every container and network it made is removed at the end.
pub(crate) fn run(e: &Engines<'_, '_>, image: &str, plan: &Plan) -> anyhow::Result<NetworkResults> {
    ensure!(
        plan.runs >= 1 && plan.attaches >= 1 && !plan.counts.is_empty(),
        "--net-runs, --net-attaches and --net-containers must not be empty or 0"
    );
    ensure!(
        plan.counts.windows(2).all(|w| w[0] < w[1]) && plan.counts[0] >= 1,
        "--net-containers must be ascending counts of at least 1"
    );
    let port_start = free_range(plan.port_base, plan.ports)?;
    let mut results = [EngineNetwork::default(), EngineNetwork::default()];
    let r = measure(e, image, plan, port_start, &mut results);
    for t in e.targets {
        let _ = remove_all(t);
        for n in NETWORKS {
            let _ = t.docker(&["network", "rm", n]);
        }
    }
    r?;
    let [berth, dockerd] = results;
    Ok(NetworkResults {
        image: image.to_owned(),
        plan: plan.clone(),
        port_start,
        berth,
        dockerd,
    })
}

/// The first `base + 100 k` from which `n` TCP ports are free on every address.
fn free_range(base: u16, n: u16) -> anyhow::Result<u16> {
    for k in 0..40u16 {
        let Some(start) = base.checked_add(k.saturating_mul(100)) else {
            break;
        };
        let Some(end) = start.checked_add(n) else {
            break;
        };
        if (start..end).all(|p| TcpListener::bind(("0.0.0.0", p)).is_ok()) {
            return Ok(start);
        }
    }
    bail!("no {n} free TCP ports in a row from {base} (--net-port-base)")
}

fn measure(
    e: &Engines<'_, '_>,
    image: &str,
    plan: &Plan,
    port_start: u16,
    results: &mut [EngineNetwork; 2],
) -> anyhow::Result<()> {
    for t in e.targets {
        ensure_none(t, "before the network benchmark")?;
    }
    eprintln!(
        "berth-bench: docker run --rm (default network): {} timed runs per engine...",
        plan.runs
    );
    for t in e.targets {
        for _ in 0..plan.warmup {
            timed(t, &["run", "--rm", image, "true"])?;
        }
    }
    for i in 0..plan.runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (secs, _) = timed(e.targets[k], &["run", "--rm", image, "true"])?;
            results[k].run.push(secs);
        }
    }
    for (k, t) in e.targets.into_iter().enumerate() {
        results[k].attach = attaches(t, image, plan)?;
        results[k].concurrent = concurrent(t, image, plan)?;
        results[k].ports = ports(e, t, image, plan, port_start)?;
    }
    results[0].dns_back = dns_back(e, image, plan)?;
    Ok(())
}

/// `docker run -d` of `n` containers, `jobs` at a time; the errors.
fn start_many(
    t: &Target<'_>,
    n: usize,
    jobs: usize,
    args: &(dyn Fn(usize) -> Vec<String> + Sync),
) -> Vec<String> {
    let jobs = jobs.max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|j| {
                s.spawn(move || {
                    (j..n)
                        .step_by(jobs)
                        .filter_map(|i| {
                            let a = args(i);
                            let a: Vec<&str> = a.iter().map(String::as_str).collect();
                            match t.docker(&a) {
                                Ok((true, _, _)) => None,
                                Ok((false, out, err)) => Some(format!("{out}{err}")),
                                Err(e) => Some(format!("{e:#}")),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["a thread panicked".to_owned()])
            })
            .collect()
    })
}

/// `docker network rm NAME` once its containers are gone. dockerd 20.10 may still list
/// endpoints of removed containers after a burst of `rm -f` ("has active endpoints"): those
/// it lists are disconnected with `--force` and the removal retried for 30 s; if it still
/// refuses, its network is left to its data root's removal. Berth must remove its own.
fn remove_network(t: &Target<'_>, name: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    let removed = host::poll_until("a network removed", Duration::from_secs(30), || {
        match t.docker(&["network", "rm", name]) {
            Ok((true, _, _)) => return true,
            Ok((false, out, err)) => last = format!("{out}{err}"),
            Err(e) => last = e.to_string(),
        }
        let stale = t
            .docker(&[
                "network",
                "inspect",
                "-f",
                "{{range $k, $v := .Containers}}{{$v.Name}} {{end}}",
                name,
            ])
            .map(|(_, out, _)| out)
            .unwrap_or_default();
        for endpoint in stale.split_whitespace() {
            let _ = t.docker(&["network", "disconnect", "--force", name, endpoint]);
        }
        false
    });
    if !removed && t.kind == Kind::Dockerd {
        // dockerd's stale endpoints stay until it restarts; its data root goes at the end.
        eprintln!("berth-bench: dockerd kept network {name} (its stale endpoints): {last}");
        return Ok(());
    }
    ensure!(
        removed,
        "{}: docker network rm {name}: {last}",
        t.kind.name()
    );
    Ok(())
}

/// Attach times at each count of containers running on `bench-attach`.
fn attaches(t: &Target<'_>, image: &str, plan: &Plan) -> anyhow::Result<Vec<Attach>> {
    t.docker_ok(&["network", "create", "bench-attach"])?;
    let mut out = Vec::new();
    let mut running = 0;
    for &count in &plan.counts {
        eprintln!(
            "berth-bench: {}: {count} containers on bench-attach, {} timed attaches...",
            t.kind.name(),
            plan.attaches
        );
        let more = count - running;
        let run = |_| {
            [
                "run",
                "-d",
                "--network",
                "bench-attach",
                image,
                "sleep",
                "3600",
            ]
            .map(str::to_owned)
            .to_vec()
        };
        let errors = start_many(t, more, plan.jobs, &run);
        ensure!(
            errors.is_empty(),
            "{}: starting containers on bench-attach: {errors:?}",
            t.kind.name()
        );
        running = count;
        let mut secs = Vec::new();
        for _ in 0..plan.attaches {
            // A fresh running container on the default network, connected to the user one.
            let id = t.docker_ok(&["run", "-d", image, "sleep", "3600"])?;
            let id = id.trim();
            let body = format!(r#"{{"Container":"{id}"}}"#);
            let (s, _, _) = crate::api::call(t, "POST", "/networks/bench-attach/connect", &body)?;
            secs.push(s);
            t.docker_ok(&["rm", "-f", id])?;
        }
        out.push(Attach {
            running: count,
            secs,
        });
    }
    remove_all(t)?;
    remove_network(t, "bench-attach")?;
    Ok(out)
}

/// `plan.concurrent` `docker run -d` at once on `bench-many`, then lookups of every one of them
/// from the first `plan.resolvers`.
fn concurrent(t: &Target<'_>, image: &str, plan: &Plan) -> anyhow::Result<Concurrent> {
    eprintln!(
        "berth-bench: {}: {} concurrent docker run -d on bench-many...",
        t.kind.name(),
        plan.concurrent
    );
    t.docker_ok(&["network", "create", "bench-many"])?;
    let name = |i: usize| format!("bench-many-{i}");
    let run = |i| {
        let n = name(i);
        [
            "run",
            "-d",
            "--network",
            "bench-many",
            "--name",
            &n,
            image,
            "sleep",
            "3600",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let started = Instant::now();
    let errors = start_many(t, plan.concurrent, plan.concurrent, &run);
    let mut c = Concurrent {
        secs: started.elapsed().as_secs_f64(),
        errors: errors.len(),
        first_error: errors.first().map(|e| e.trim().to_owned()),
        ..Concurrent::default()
    };
    let up: Vec<String> = (0..plan.concurrent)
        .map(name)
        .filter(|n| t.docker(&["inspect", n]).is_ok_and(|(ok, _, _)| ok))
        .collect();
    for r in up.iter().take(plan.resolvers) {
        let others: Vec<&str> = up.iter().filter(|n| *n != r).map(String::as_str).collect();
        let script = format!(
            "for n in {}; do case \"$(nslookup -type=a $n 2>&1)\" in *Name:*) echo OK $n;; \
             *) echo FAIL $n;; esac; done",
            others.join(" ")
        );
        let out = t.docker_ok(&["exec", r, "sh", "-c", &script])?;
        c.lookups += others.len();
        c.answered += out.lines().filter(|l| l.starts_with("OK ")).count();
    }
    remove_all(t)?;
    remove_network(t, "bench-many")?;
    Ok(c)
}

/// dockerd's docker-proxy processes: (how many, their RSS in KiB).
fn proxies(dockerd: i32) -> (usize, u64) {
    let procs: Vec<i32> = host::processes_with("docker-proxy")
        .into_iter()
        .filter(|(pid, argv)| {
            argv.first().is_some_and(|a| a.ends_with("docker-proxy"))
                && host::parent(*pid) == Some(dockerd)
        })
        .map(|(pid, _)| pid)
        .collect();
    let rss = procs
        .iter()
        .filter_map(|p| host::status_kib(*p, "VmRSS"))
        .sum();
    (procs.len(), rss)
}

/// One container publishing `plan.ports` ports: its start and what its ports cost.
fn ports(
    e: &Engines<'_, '_>,
    t: &Target<'_>,
    image: &str,
    plan: &Plan,
    first: u16,
) -> anyhow::Result<Ports> {
    eprintln!(
        "berth-bench: {}: a container publishing {} ports, {} timed starts...",
        t.kind.name(),
        plan.ports,
        plan.port_runs
    );
    let last = first + plan.ports - 1;
    let publish = format!("{first}-{last}:{first}-{last}");
    let memory = || -> anyhow::Result<(usize, u64)> {
        Ok(match t.kind {
            Kind::Berth => {
                let pid = (e.berth_network)().context("berth-network is not running")?;
                (0, host::status_kib(pid, "VmRSS").unwrap_or(0))
            }
            Kind::Dockerd => proxies(e.dockerd_pid.context("dockerd's pid")?),
        })
    };
    let mut p = Ports::default();
    for _ in 0..plan.port_runs {
        let (_, before) = memory()?;
        let (secs, id) = timed(t, &["run", "-d", "-p", &publish, image, "sleep", "3600"])?;
        let (n, after) = memory()?;
        p.start.push(secs);
        p.mem_kib.push(after.saturating_sub(before));
        p.proxies = p.proxies.max(n);
        t.docker_ok(&["rm", "-f", id.trim()])?;
    }
    Ok(p)
}

/// Berth only: a SIGKILL of berth-network, then `nslookup` from a container on a user network
/// until it answers; seconds from the kill, each time.
fn dns_back(e: &Engines<'_, '_>, image: &str, plan: &Plan) -> anyhow::Result<Vec<f64>> {
    let t = e.targets[0];
    if plan.kills == 0 {
        return Ok(Vec::new());
    }
    eprintln!(
        "berth-bench: Berth: {} SIGKILLs of berth-network, timing DNS back...",
        plan.kills
    );
    t.docker_ok(&["network", "create", "bench-dns"])?;
    for n in ["bench-dns-a", "bench-dns-b"] {
        t.docker_ok(&[
            "run",
            "-d",
            "--network",
            "bench-dns",
            "--name",
            n,
            image,
            "sleep",
            "3600",
        ])?;
    }
    // A lookup started every 20 ms, each in the background: one sent while the service is
    // down may wait for busybox nslookup's own timeout (whole seconds), the first one sent
    // after it is back answers at once and ends the loop.
    let until_answer = "rm -f /tmp/dns-ok; n=0; while [ ! -e /tmp/dns-ok ] && [ $n -lt 1500 ]; do \
                        (nslookup -type=a bench-dns-b 2>&1 | grep -q Name: && touch /tmp/dns-ok) \
                        >/dev/null 2>&1 & sleep 0.02; n=$((n+1)); done; [ -e /tmp/dns-ok ]";
    let lookup = ["exec", "bench-dns-a", "sh", "-c", until_answer];
    timed(t, &lookup).context("DNS before any kill")?;
    let mut out = Vec::new();
    for _ in 0..plan.kills {
        let pid = (e.berth_network)().context("berth-network is not running")?;
        nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL)
            .context("SIGKILL of berth-network")?;
        let killed = Instant::now();
        timed(t, &lookup).context("DNS after a SIGKILL of berth-network")?;
        out.push(killed.elapsed().as_secs_f64());
        let back = host::poll_until("berth-network to restart", Duration::from_secs(30), || {
            (e.berth_network)().is_some_and(|p| p != pid)
        });
        ensure!(back, "berth-network was not restarted after its SIGKILL");
    }
    remove_all(t)?;
    remove_network(t, "bench-dns")?;
    Ok(out)
}

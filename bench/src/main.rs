//! `berth-bench`: Berth and Debian's dockerd side by side in the same run, both driven by the
//! real docker CLI.
//!
//! - Image pull (the images issue): a cold `docker pull` of a multi-layer image (at least 3
//!   layers, 50 MB compressed) from a private registry on 127.0.0.1; the ratio of the medians,
//!   with the images service's peak RSS.
//! - Containers (the runtime issue): `docker run --rm --network none busybox true` latency,
//!   100 × (`docker create` + `docker start`) throughput, and the RSS of the per-container
//!   shims (`containers.rs`).
//! - Store (the container store): with 1,000 created containers in each engine, `docker ps -a`
//!   latency, then one `docker rm` of 300 stopped containers (`store.rs`).
//! - Seccomp: compiling Docker's default profile, carrying it in the bundle and loading it, and
//!   `docker run --rm` with it against `seccomp=unconfined` in both engines (`seccomp.rs`).
//! - Build: `DOCKER_BUILDKIT=0 docker build` of a 10-step Dockerfile with a 20 MiB COPY,
//!   cold and fully cached (`build.rs`).
//! - Idle footprint: the RSS of every Berth process (five services and nats-server) beside
//!   dockerd + containerd, both engines up with no container (`idle.rs`).
//! - Volumes (the volumes issue): `docker volume create` + `rm` latency, and `docker run -v
//!   fresh:/usr` with copy-up of an image directory of many small files (`volumes.rs`).
//! - Stats (the runtime II issue): `docker stats --no-stream` with 50 running containers, and
//!   one container's first sample (`stats.rs`).
//! - Network (the network issue): `docker run --rm` on the default network, attach time at 1,
//!   100 and 500 running containers, 50 concurrent `docker run -d` resolving each other, one
//!   container publishing 100 ports, and DNS back after a SIGKILL of berth-network
//!   (`network.rs`); dockerd then runs in Docker's default network configuration.
//!
//! Run it as root with `scripts/bench.sh [--rounds N] [--runs N] ...`, which installs what is
//! missing, builds the release binaries and runs this. It prints a table and rewrites
//! `bench/RESULTS.md`; `--only <part> --results` measures one part and replaces only that
//! part's rows there, keeping the others' last measured values.

mod api;
mod build;
mod canned;
mod cli_floor;
mod containers;
mod dockerd;
mod fake_engine;
mod host;
mod idle;
mod iptables;
mod network;
mod network_report;
mod report;
mod seccomp;
mod stats;
mod stats_cpu;
mod store;
mod volumes;

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use berth_testutil::{Engine, EngineOptions, MediaTypes, Registry, images, push_layout};
use clap::Parser;

use crate::{
    dockerd::{Dockerd, Networking},
    host::{HostState, Machine},
    report::{ImageSummary, Pull, PullResults, Results, Versions},
};

/// The repository (in the registry) and tag of the pull benchmark's image.
const IMAGE: &str = "large:latest";
/// The repository and tag of the container benchmark's image.
const BUSYBOX: &str = "busybox:latest";
/// The repository and tag of the volumes benchmark's copy-up image.
const COPYUP: &str = "copyup:latest";

/// Which benchmarks to run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    /// The image-pull benchmark only.
    Pull,
    /// The container benchmark only (run latency, create + start throughput, shim memory).
    Containers,
    /// The store benchmark only (`docker ps -a` at 1,000 containers, `docker rm` of 300).
    Store,
    /// The seccomp filter's cost (compile, bundle, load; `docker run --rm` with and without).
    Seccomp,
    /// The idle footprint only (RSS of every process of both engines, no container running).
    Idle,
    /// The volumes benchmark only (volume create + rm, docker run with copy-up).
    Volumes,
    /// The build benchmark only (classic builder, cold and cached).
    Build,
    /// The stats benchmark only (docker stats --no-stream of many containers, and of one).
    Stats,
    /// The network benchmark only (default-network run, attach, concurrency, ports, DNS).
    Network,
}

#[derive(Parser, Debug)]
#[command(
    name = "berth-bench",
    about = "Berth and Debian's dockerd side by side: cold docker pull of a large multi-layer \
             image from a local registry; docker run --rm latency, create + start throughput \
             and shim memory; docker ps -a at 1,000 containers and docker rm of 300; volume \
             create + rm and docker run with copy-up. Run as \
             root, through scripts/bench.sh."
)]
struct Args {
    /// Run one benchmark only (then the results file is left alone unless --results is given,
    /// and with --results only that benchmark's part of it is replaced).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Timed pulls per engine (the order of the engines alternates from round to round).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Timed `docker run --rm --network none busybox true` per engine (at least 20).
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Untimed `docker run --rm` per engine before the timed ones.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Containers created and started (one after the other) in the throughput test.
    #[arg(long, default_value_t = 100)]
    containers: usize,
    /// Containers created (not started) in each engine for the store benchmark.
    #[arg(long, default_value_t = 1000)]
    store_containers: usize,
    /// How many of them the store benchmark's one timed `docker rm` removes.
    #[arg(long, default_value_t = 300)]
    store_remove: usize,
    /// Timed `docker ps -a` per engine in the store benchmark.
    #[arg(long, default_value_t = 10)]
    ps_runs: usize,
    /// Repetitions of each in-process seccomp measurement (compile, bundle, load).
    #[arg(long, default_value_t = 200)]
    seccomp_rounds: usize,
    /// Concurrent `docker create` processes while the store benchmark creates its containers.
    #[arg(long, default_value_t = 8)]
    create_jobs: usize,
    /// Milliseconds the containers run before their shims' memory is read.
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
    /// Seconds both engines sit idle before the idle footprint's first sample.
    #[arg(long, default_value_t = 10)]
    idle_settle_secs: u64,
    /// Timed cold + cached build pairs per engine in the build benchmark (a cached rebuild
    /// takes some 30 ms: its median wants more than a few).
    #[arg(long, default_value_t = 10)]
    build_rounds: usize,
    /// Size of the build benchmark's COPY context, in MiB.
    #[arg(long, default_value_t = 20)]
    build_context_mb: usize,
    /// Samples (one a second) of the idle footprint.
    #[arg(long, default_value_t = 5)]
    idle_samples: usize,
    /// Containers running in each engine for the stats benchmark.
    #[arg(long, default_value_t = 50)]
    stats_containers: usize,
    /// Timed `docker stats --no-stream` (of all, and of one) per engine.
    #[arg(long, default_value_t = 5)]
    stats_runs: usize,
    /// Windows of streamed `docker stats` whose CPU is counted, per engine.
    #[arg(long, default_value_t = 3)]
    stats_cpu_runs: usize,
    /// Seconds in each window of streamed `docker stats`.
    #[arg(long, default_value_t = 10)]
    stats_cpu_secs: u64,
    /// Timed `docker run --rm busybox true` on the default network per engine.
    #[arg(long, default_value_t = 30)]
    net_runs: usize,
    /// Counts of running containers on one network at which attaches are timed (ascending).
    #[arg(long, value_delimiter = ',', default_value = "1,100,500")]
    net_containers: Vec<usize>,
    /// Timed attaches (`POST /networks/{id}/connect`) at each count.
    #[arg(long, default_value_t = 20)]
    net_attaches: usize,
    /// `docker run -d` started at once on one user network.
    #[arg(long, default_value_t = 50)]
    net_concurrent: usize,
    /// How many of those look up all the others with nslookup.
    #[arg(long, default_value_t = 3)]
    net_resolvers: usize,
    /// Ports published by one container.
    #[arg(long, default_value_t = 100)]
    net_ports: u16,
    /// The first host port tried for them (then +100 until the range is free).
    #[arg(long, default_value_t = 20000)]
    net_port_base: u16,
    /// Timed starts of the container with published ports per engine.
    #[arg(long, default_value_t = 3)]
    net_port_runs: usize,
    /// SIGKILLs of berth-network, each timed until a container's DNS answers again.
    #[arg(long, default_value_t = 3)]
    net_kills: usize,
    /// Timed `docker volume create` + `docker volume rm` per engine.
    #[arg(long, default_value_t = 30)]
    volume_cycles: usize,
    /// Timed `docker run -v fresh:/usr` (copy-up) per engine.
    #[arg(long, default_value_t = 5)]
    copyup_runs: usize,
    /// Size of the copy-up image's tree of small files, in MiB (the issue asks for 50 MB or
    /// more).
    #[arg(long, default_value_t = 64)]
    copyup_mb: u64,
    /// Size of each of its files, in KiB.
    #[arg(long, default_value_t = 4)]
    copyup_file_kib: u64,
    /// Compressed size of the image's random-data layers, in MiB (the issue asks for 50 MB or
    /// more; 64 MiB makes 3 random layers plus busybox).
    #[arg(long, default_value_t = 64)]
    size_mb: u64,
    /// Write the results (to PATH, default RESULTS.md beside this crate's Cargo.toml); with
    /// --only, only that benchmark's part of the file is replaced.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    results: Option<Option<PathBuf>>,
    /// Print the table only; leave the results file alone.
    #[arg(long)]
    no_write: bool,
    /// The docker CLI that drives both engines (default: /usr/local/bin/docker if present,
    /// else the first `docker` on PATH).
    #[arg(long)]
    docker: Option<PathBuf>,
    /// The dockerd to compare with (Debian's docker.io).
    #[arg(long, default_value = "/usr/sbin/dockerd")]
    dockerd: PathBuf,
}

fn main() -> ExitCode {
    // Engine::up finds the Berth binaries through BERTH_BIN_DIR; without it, use the directory
    // of this executable (target/release when run with `cargo run --release`).
    if std::env::var_os("BERTH_BIN_DIR").is_none() {
        let exe = std::env::current_exe().expect("own path");
        let dir = exe.parent().expect("own directory").to_owned();
        let status = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env("BERTH_BIN_DIR", &dir)
            .status();
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
            Err(e) => {
                eprintln!("berth-bench: re-running {}: {e}", exe.display());
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    match run(&args) {
        Ok(results) => {
            print!("{}", results.table());
            if !args.no_write && (args.only.is_none() || args.results.is_some()) {
                let path =
                    args.results.clone().flatten().unwrap_or_else(|| {
                        Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md")
                    });
                // A partial run keeps the other parts' last measured values.
                let previous = match args.only {
                    Some(_) => std::fs::read_to_string(&path).ok(),
                    None => None,
                };
                if let Err(e) = std::fs::write(&path, results.markdown(previous.as_deref())) {
                    eprintln!("berth-bench: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("results written to {}", path.display());
            }
            if results.leftovers.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("berth-bench: something was left behind (see above)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("berth-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The docker CLI both engines are driven with.
fn docker_cli(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let local = Path::new("/usr/local/bin/docker");
    if local.is_file() {
        return Ok(local.to_owned());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("docker"))
        .find(|p| p.is_file())
        .context("no docker CLI found (--docker PATH)")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Berth,
    Dockerd,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Berth => "Berth",
            Kind::Dockerd => "dockerd",
        }
    }
}

/// One engine as the CLI sees it.
struct Target<'a> {
    kind: Kind,
    host: String,
    cli: &'a Path,
    cli_config: PathBuf,
}

impl Target<'_> {
    fn cmd(&self) -> Command {
        let mut c = Command::new(self.cli);
        c.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.cli_config)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .stdin(Stdio::null());
        c
    }

    /// Runs the CLI; returns (success, stdout, stderr).
    fn docker(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let out = self
            .cmd()
            .args(args)
            .output()
            .with_context(|| format!("running {} {args:?}", self.cli.display()))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn docker_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let (ok, stdout, stderr) = self.docker(args)?;
        ensure!(
            ok,
            "{}: docker {args:?} failed:\n{stdout}\n{stderr}",
            self.kind.name()
        );
        Ok(stdout)
    }
}

/// Names of the entries of `dir` (none if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What of the image is still stored, by looking at the engine's directories.
fn stored(kind: Kind, root: &Path) -> Vec<String> {
    let dirs: &[&str] = match kind {
        // berth-images: <data-root>/images/{blobs/sha256,ingest,overlay2}
        Kind::Berth => &["blobs/sha256", "ingest", "overlay2"],
        // dockerd (overlay2 graph driver): layer store, image store, layer directories
        Kind::Dockerd => &[
            "image/overlay2/layerdb/sha256",
            "image/overlay2/imagedb/content/sha256",
            "overlay2",
            "overlay2/l",
        ],
    };
    let mut out = Vec::new();
    for d in dirs {
        for e in entries(&root.join(d)) {
            if kind == Kind::Dockerd && *d == "overlay2" && e == "l" {
                continue;
            }
            out.push(format!("{d}/{e}"));
        }
    }
    out
}

/// Removes the image from the engine and checks that nothing of it is stored.
fn make_absent(t: &Target<'_>, image: &str, root: &Path) -> anyhow::Result<()> {
    let (ok, _, stderr) = t.docker(&["rmi", "-f", image])?;
    ensure!(
        ok || stderr.contains("No such image"),
        "{}: docker rmi -f {image}: {stderr}",
        t.kind.name()
    );
    if t.kind == Kind::Dockerd {
        t.docker_ok(&["image", "prune", "-a", "-f"])?;
    }
    let left = t.docker_ok(&["image", "ls", "-a", "-q"])?;
    ensure!(
        left.trim().is_empty(),
        "{}: images still listed after rmi: {left}",
        t.kind.name()
    );
    let files = stored(t.kind, root);
    ensure!(
        files.is_empty(),
        "{}: still stored after rmi: {files:?}",
        t.kind.name()
    );
    Ok(())
}

/// `docker pull`, timed from spawning the CLI to its exit; the moments of its progress lines
/// give the phases.
fn timed_pull(t: &Target<'_>, image: &str, round: usize, position: usize) -> anyhow::Result<Pull> {
    let mut cmd = t.cmd();
    cmd.args(["pull", image])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().context("spawning docker pull")?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.context("reading docker pull's output")?;
        lines.push((start.elapsed().as_secs_f64(), line));
    }
    let status = child.wait().context("waiting for docker pull")?;
    let secs = start.elapsed().as_secs_f64();
    let err = err_reader.join().unwrap_or_default();
    let output: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    ensure!(
        status.success(),
        "{}: docker pull {image} failed ({status}):\n{output}{err}",
        t.kind.name()
    );
    let mut pull = Pull {
        round,
        position,
        secs,
        resolved: None,
        downloaded: None,
        unpacked: None,
    };
    for (at, line) in &lines {
        let Some((id, status)) = line.split_once(": ") else {
            continue;
        };
        if status.starts_with("Pulling from ") {
            pull.resolved = pull.resolved.or(Some(*at));
        } else if id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            match status.trim() {
                "Download complete" => pull.downloaded = later(pull.downloaded, at),
                "Pull complete" => pull.unpacked = later(pull.unpacked, at),
                "Already exists" => bail!(
                    "{}: not a cold pull, layer {id} already exists:\n{output}",
                    t.kind.name()
                ),
                _ => {}
            }
        }
    }
    Ok(pull)
}

/// The later of two moments.
fn later(a: Option<f64>, b: &f64) -> Option<f64> {
    Some(a.map_or(*b, |x| x.max(*b)))
}

fn first_line(cmd: &mut Command) -> String {
    cmd.stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn package_version(name: &str) -> String {
    first_line(Command::new("dpkg-query").args(["-W", "-f", "${Version}\\n", name]))
}

fn berth_version(workspace: &Path) -> String {
    let commit = first_line(Command::new("git").arg("-C").arg(workspace).args([
        "rev-parse",
        "--short",
        "HEAD",
    ]));
    let changed: Vec<String> = Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.get(3..).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    match changed.len() {
        0 => format!("commit {commit}"),
        1..=4 => format!(
            "commit {commit} (uncommitted changes: {})",
            changed.join(", ")
        ),
        n => format!("commit {commit} with uncommitted changes to {n} files"),
    }
}

fn command_line() -> String {
    std::env::var("BERTH_BENCH_COMMAND").unwrap_or_else(|_| {
        std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn run(args: &Args) -> anyhow::Result<Results> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "run as root (sudo scripts/bench.sh)"
    );
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(args.size_mb >= 1, "--size-mb must be at least 1");
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.containers >= 1, "--containers must be at least 1");
    ensure!(args.ps_runs >= 1, "--ps-runs must be at least 1");
    ensure!(args.create_jobs >= 1, "--create-jobs must be at least 1");
    ensure!(
        (1..=args.store_containers).contains(&args.store_remove),
        "--store-remove must be from 1 to --store-containers"
    );
    let wants = |part| args.only.is_none_or(|o| o == part);
    let (do_pull, do_containers, do_store, do_seccomp, do_idle) = (
        wants(Only::Pull),
        wants(Only::Containers),
        wants(Only::Store),
        wants(Only::Seccomp),
        wants(Only::Idle),
    );
    let do_volumes = wants(Only::Volumes);
    ensure!(
        args.volume_cycles >= 1 && args.copyup_runs >= 1,
        "--volume-cycles and --copyup-runs must be at least 1"
    );
    ensure!(
        args.copyup_mb >= 1 && args.copyup_file_kib >= 1,
        "--copyup-mb and --copyup-file-kib must be at least 1"
    );
    let do_build = wants(Only::Build);
    let do_stats = wants(Only::Stats);
    let do_network = wants(Only::Network);
    ensure!(
        args.net_ports >= 1 && args.net_concurrent >= 2 && args.net_port_runs >= 1,
        "--net-ports and --net-port-runs must be at least 1, --net-concurrent at least 2"
    );
    ensure!(args.build_rounds >= 1, "--build-rounds must be at least 1");
    let cli = docker_cli(args.docker.as_deref())?;
    let bin_dir = berth_testutil::bin_dir();
    ensure!(
        ["berth", "berth-images", "berth-runtime", "berth-shim"]
            .iter()
            .all(|b| bin_dir.join(b).is_file()),
        "no Berth binaries in {} (cargo build --release --workspace --bins)",
        bin_dir.display()
    );
    host::drop_caches()?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned();
    let date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default();
    let work = tempfile::Builder::new()
        .prefix("berth-bench")
        .tempdir()
        .context("work dir")?;
    let machine = Machine::read(work.path());
    let before = HostState::read();
    eprintln!(
        "berth-bench: Berth binaries from {}, docker CLI {}",
        bin_dir.display(),
        cli.display()
    );

    let registry = Registry::start();
    let pull_image = if do_pull {
        eprintln!(
            "berth-bench: building the pull image ({} MiB of random data)...",
            args.size_mb
        );
        let info = images::large_layout(
            &work.path().join("layout"),
            MediaTypes::Docker,
            args.size_mb << 20,
        );
        push_layout(&info.layout, IMAGE, &registry, None).context("pushing the image")?;
        let image = registry.image(IMAGE);
        let summary = ImageSummary {
            reference: image.clone(),
            manifest_media_type: info.manifest_media_type.clone(),
            layers: info.layers.len(),
            random_layers: info.layers.len() - 1,
            compressed: info.layers_size(),
            uncompressed: info.layers.iter().map(|l| l.tar_size).sum(),
        };
        std::fs::remove_dir_all(&info.layout).ok();
        eprintln!(
            "berth-bench: pushed {image}: {} layers, {} bytes compressed",
            summary.layers, summary.compressed
        );
        Some((image, info.image_id().to_owned(), summary))
    } else {
        None
    };
    let busybox = if do_containers || do_store || do_seccomp || do_build || do_stats || do_network {
        let info = images::busybox_layout(&work.path().join("busybox"), MediaTypes::Docker);
        push_layout(&info.layout, BUSYBOX, &registry, None).context("pushing busybox")?;
        std::fs::remove_dir_all(&info.layout).ok();
        let image = registry.image(BUSYBOX);
        eprintln!("berth-bench: pushed {image}");
        Some((image, info.image_id().to_owned()))
    } else {
        None
    };

    let copyup = if do_volumes {
        eprintln!(
            "berth-bench: building the copy-up image ({} MiB of {} KiB files)...",
            args.copyup_mb, args.copyup_file_kib
        );
        let (info, tree) = volumes::copyup_layout(
            &work.path().join("copyup"),
            args.copyup_mb << 20,
            args.copyup_file_kib << 10,
        );
        push_layout(&info.layout, COPYUP, &registry, None).context("pushing the copy-up image")?;
        std::fs::remove_dir_all(&info.layout).ok();
        let image = registry.image(COPYUP);
        eprintln!("berth-bench: pushed {image}");
        Some((image, tree))
    } else {
        None
    };

    eprintln!("berth-bench: starting Berth (berth up) and dockerd...");
    let mut engine = Engine::up(EngineOptions::default());
    // The network benchmark compares with Docker's default network configuration; the other
    // parts run no container on a network.
    let networking = if do_network {
        Networking::Default
    } else {
        Networking::Isolated
    };
    let mut dockerd = Dockerd::start(&args.dockerd, &cli, &registry.addr(), networking)?;
    let engine_dir = engine.dir.path().to_owned();
    let dockerd_dir = dockerd.dir().to_owned();
    let registry_dir = registry
        .storage()
        .parent()
        .expect("registry dir")
        .to_owned();
    let cli_config = work.path().join("docker-cli");
    std::fs::create_dir_all(&cli_config)?;
    let berth = Target {
        kind: Kind::Berth,
        host: engine.docker_host.clone(),
        cli: &cli,
        cli_config: cli_config.clone(),
    };
    let docker = Target {
        kind: Kind::Dockerd,
        host: dockerd.host.clone(),
        cli: &cli,
        cli_config,
    };
    let berth_root = engine.data_root.join("images");
    let dockerd_root = dockerd.data_root();
    ensure!(
        berth_root.is_dir(),
        "{} is missing: where does berth-images keep its store?",
        berth_root.display()
    );
    let images_pid = engine.pid_of("berth-images").context("berth-images pid")?;
    let versions = Versions {
        berth: berth_version(&workspace),
        dockerd: docker
            .docker_ok(&containers::VERSION_ARGS)?
            .trim()
            .to_owned(),
        containerd: package_version("containerd"),
        runc: first_line(Command::new("runc").arg("--version")),
        cli: format!(
            "{} ({})",
            first_line(Command::new(&cli).arg("--version")),
            cli.display()
        ),
        registry: package_version("docker-registry"),
    };

    // First, while both engines are fresh: nothing pulled, no container ever run.
    let idle = if do_idle {
        eprintln!("berth-bench: measuring the idle footprint...");
        let pid = |name: &str| {
            engine
                .pid_of(name)
                .map(|p| (name.to_owned(), p))
                .with_context(|| format!("{name} is not running"))
        };
        let berth_procs = idle::BERTH_PROCESSES
            .iter()
            .map(|n| pid(n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let dockerd_procs = vec![
            ("dockerd".to_owned(), dockerd.pid().context("dockerd pid")?),
            (
                "containerd".to_owned(),
                dockerd.containerd_pid().context("containerd pid")?,
            ),
        ];
        let plan = idle::Plan {
            settle: Duration::from_secs(args.idle_settle_secs),
            samples: args.idle_samples,
        };
        Some(idle::measure(&berth_procs, &dockerd_procs, &plan)?)
    } else {
        None
    };

    let mut leftovers = Vec::new();
    let mut cleanup = Vec::new();
    let mut images_to_remove = Vec::new();
    let pull = match &pull_image {
        Some((image, image_id, summary)) => {
            let p = pull_benchmark(
                args,
                [&berth, &docker],
                [&berth_root, &dockerd_root],
                image,
                image_id,
                summary,
                images_pid,
                &dockerd,
            )?;
            if engine.pid_of("berth-images") != Some(images_pid) {
                leftovers.push(
                    "berth-images restarted during the run: its VmHWM covers only part of it"
                        .to_owned(),
                );
            }
            Some(p)
        }
        None => None,
    };

    if let Some((image, image_id)) = &busybox {
        images_to_remove.push(image.clone());
        for t in [&berth, &docker] {
            t.docker_ok(&["pull", "-q", image])?;
            let id = t.docker_ok(&["image", "inspect", "--format", "{{.Id}}", image])?;
            ensure!(
                id.trim() == image_id,
                "{}: pulled busybox has ID {} instead of {image_id}",
                t.kind.name(),
                id.trim()
            );
        }
    }
    let containers = match &busybox {
        Some((image, image_id)) if do_containers => {
            let plan = containers::Plan {
                runs: args.runs,
                warmup: args.warmup,
                containers: args.containers,
                settle: Duration::from_millis(args.settle_ms),
            };
            Some(or_clean_up(
                [&berth, &docker],
                containers::run(
                    &containers::Engine {
                        target: &berth,
                        root: &engine.run_root,
                    },
                    &containers::Engine {
                        target: &docker,
                        root: &dockerd_dir,
                    },
                    image,
                    image_id,
                    &plan,
                ),
            )?)
        }
        _ => None,
    };
    let store = match &busybox {
        Some((image, _)) if do_store => {
            let plan = store::Plan {
                containers: args.store_containers,
                remove: args.store_remove,
                ps_runs: args.ps_runs,
                jobs: args.create_jobs,
            };
            Some(or_clean_up(
                [&berth, &docker],
                store::run([&berth, &docker], image, &plan),
            )?)
        }
        _ => None,
    };

    let build = match &busybox {
        Some((image, _)) if do_build => {
            let plan = build::Plan {
                rounds: args.build_rounds,
                context_mib: args.build_context_mb,
            };
            Some(or_clean_up(
                [&berth, &docker],
                build::run([&berth, &docker], image, &plan),
            )?)
        }
        _ => None,
    };

    let stats = match &busybox {
        Some((image, _)) if do_stats => {
            let plan = stats::Plan {
                containers: args.stats_containers,
                runs: args.stats_runs,
                cpu_runs: args.stats_cpu_runs,
                cpu_window: Duration::from_secs(args.stats_cpu_secs),
            };
            let pid = |name: &str| {
                engine
                    .pid_of(name)
                    .map(|p| (name.to_owned(), p))
                    .with_context(|| format!("{name} is not running"))
            };
            let berth_counted = stats_cpu::Counted {
                daemons: vec![pid("berth-api-gateway")?, pid("berth-runtime")?],
                shim_root: engine.run_root.clone(),
                shim: "berth-shim",
            };
            let dockerd_counted = stats_cpu::Counted {
                daemons: vec![
                    ("dockerd".to_owned(), dockerd.pid().context("dockerd pid")?),
                    (
                        "containerd".to_owned(),
                        dockerd.containerd_pid().context("containerd pid")?,
                    ),
                ],
                shim_root: dockerd_dir.clone(),
                shim: "containerd-shim-runc-v2",
            };
            Some(or_clean_up(
                [&berth, &docker],
                stats::run(
                    [&berth, &docker],
                    [&berth_counted, &dockerd_counted],
                    image,
                    &plan,
                ),
            )?)
        }
        _ => None,
    };

    let seccomp = match &busybox {
        Some((image, _)) if do_seccomp => {
            eprintln!("berth-bench: seccomp...");
            let mut r = seccomp::micro(args.seccomp_rounds)?;
            or_clean_up(
                [&berth, &docker],
                seccomp::starts([&berth, &docker], image, args.runs, &mut r),
            )?;
            Some(r)
        }
        _ => None,
    };

    let volumes = match &copyup {
        Some((image, tree)) => {
            images_to_remove.push(image.clone());
            for t in [&berth, &docker] {
                t.docker_ok(&["pull", "-q", image])?;
            }
            let plan = volumes::Plan {
                cycles: args.volume_cycles,
                copyup_runs: args.copyup_runs,
            };
            Some(or_clean_up(
                [&berth, &docker],
                volumes::run([&berth, &docker], image, *tree, &plan),
            )?)
        }
        None => None,
    };

    let network = match &busybox {
        Some((image, _)) if do_network => {
            let plan = network::Plan {
                runs: args.net_runs,
                warmup: args.warmup,
                counts: args.net_containers.clone(),
                attaches: args.net_attaches,
                concurrent: args.net_concurrent,
                resolvers: args.net_resolvers,
                ports: args.net_ports,
                port_base: args.net_port_base,
                port_runs: args.net_port_runs,
                kills: args.net_kills,
                jobs: args.create_jobs,
            };
            let berth_network = || engine.pid_of("berth-network");
            let engines = network::Engines {
                targets: [&berth, &docker],
                berth_network: &berth_network,
                dockerd_pid: dockerd.pid(),
            };
            Some(or_clean_up(
                [&berth, &docker],
                network::run(&engines, image, &plan),
            )?)
        }
        _ => None,
    };

    // Teardown: remove the containers and images from both (so their stores go quietly), then
    // stop everything.
    for t in [&berth, &docker] {
        match containers::remove_all(t) {
            Ok(0) => {}
            Ok(n) => leftovers.push(format!("{}: {n} containers left at the end", t.kind.name())),
            Err(e) => cleanup.push(format!("removing the containers at the end: {e:#}")),
        }
    }
    for (t, root) in [(&berth, &berth_root), (&docker, &dockerd_root)] {
        for image in &images_to_remove {
            if let Err(e) = make_absent(t, image, root) {
                cleanup.push(format!("removing {image} at the end: {e:#}"));
            }
        }
    }
    let engine_mounts = host::mounts_under(&engine_dir);
    if !engine_mounts.is_empty() {
        leftovers.push(format!("mounts under Berth's roots: {engine_mounts:?}"));
        host::unmount_under(&engine_dir);
    }
    if engine.stop() {
        cleanup.push("Berth stopped on SIGTERM (berth up and its services)".to_owned());
    } else {
        leftovers.push("berth up did not stop within 30 s of SIGTERM; killed".to_owned());
    }
    drop(engine);
    let t = dockerd.stop();
    cleanup.extend(t.notes);
    leftovers.extend(t.problems);
    drop(dockerd);
    drop(registry);
    drop(work);
    cleanup.push("registry killed; every temporary directory removed".to_owned());

    for (what, dir) in [
        ("Berth", &engine_dir),
        ("dockerd", &dockerd_dir),
        ("the registry", &registry_dir),
    ] {
        let needle = dir.to_string_lossy().into_owned();
        let procs = host::processes_with(&needle);
        if !procs.is_empty() {
            leftovers.push(format!("processes of {what} still running: {procs:?}"));
        }
        let mounts = host::mounts_under(dir);
        if !mounts.is_empty() {
            leftovers.push(format!("mounts under {}: {mounts:?}", dir.display()));
        }
        if dir.exists() {
            leftovers.push(format!("{} still exists", dir.display()));
        }
    }
    let after = HostState::read();
    leftovers.extend(before.changes(&after));
    if after.links.contains("docker0") {
        leftovers.push("a docker0 link exists".to_owned());
    }

    Ok(Results {
        date,
        command: command_line(),
        machine,
        versions,
        pull,
        containers,
        store,
        seccomp,
        idle,
        volumes,
        build,
        stats,
        network,
        cleanup,
        leftovers,
    })
}

/// The result of a benchmark; on failure, first removes every container of both engines (what
/// the benchmark created), so that they stop quietly.
fn or_clean_up<T>(targets: [&Target<'_>; 2], result: anyhow::Result<T>) -> anyhow::Result<T> {
    if result.is_err() {
        for t in targets {
            if let Err(e) = containers::remove_all(t) {
                eprintln!("berth-bench: {}: removing containers: {e:#}", t.kind.name());
            }
        }
    }
    result
}

/// The image-pull benchmark: `args.rounds` cold pulls per engine, the order alternating.
#[allow(clippy::too_many_arguments)]
fn pull_benchmark(
    args: &Args,
    targets: [&Target<'_>; 2],
    roots: [&Path; 2],
    image: &str,
    image_id: &str,
    summary: &ImageSummary,
    images_pid: i32,
    dockerd: &Dockerd,
) -> anyhow::Result<PullResults> {
    let hwm_start = host::status_kib(images_pid, "VmHWM");
    let mut berth_pulls = Vec::new();
    let mut dockerd_pulls = Vec::new();
    for round in 1..=args.rounds {
        let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        let mut line = format!("berth-bench: pull round {round}/{}:", args.rounds);
        for (i, k) in order.into_iter().enumerate() {
            let (t, root) = (targets[k], roots[k]);
            make_absent(t, image, root)?;
            host::drop_caches()?;
            // The CLI's and the engine's own code back in memory: the pull stays cold (the
            // registry reads every blob from disk) without timing how fast a 40 MB CLI loads.
            t.docker_ok(&containers::VERSION_ARGS)?;
            let pull = timed_pull(t, image, round, i + 1)?;
            let id = t.docker_ok(&["image", "inspect", "--format", "{{.Id}}", image])?;
            ensure!(
                id.trim() == image_id,
                "{}: pulled image has ID {} instead of {image_id}",
                t.kind.name(),
                id.trim(),
            );
            line += &format!(" {} {:.2} s", t.kind.name(), pull.secs);
            match t.kind {
                Kind::Berth => berth_pulls.push(pull),
                Kind::Dockerd => dockerd_pulls.push(pull),
            }
        }
        eprintln!("{line}");
    }
    // Read right after the pulls: the container benchmark must not count.
    let berth_images_hwm = host::status_kib(images_pid, "VmHWM");
    let dockerd_hwm = dockerd.pid().and_then(|p| host::status_kib(p, "VmHWM"));
    let containerd_hwm = dockerd
        .containerd_pid()
        .and_then(|p| host::status_kib(p, "VmHWM"));
    for (t, root) in targets.into_iter().zip(roots) {
        make_absent(t, image, root)?;
    }
    Ok(PullResults {
        image: summary.clone(),
        rounds: args.rounds,
        berth: berth_pulls,
        dockerd: dockerd_pulls,
        berth_images_hwm_start: hwm_start,
        berth_images_hwm,
        dockerd_hwm,
        containerd_hwm,
    })
}

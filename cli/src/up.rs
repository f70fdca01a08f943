//! `berth up`: the local all-in-one engine. Starts nats-server (unless the configuration names
//! a NATS URL) and the five services, waits for `/_ping`, prints `DOCKER_HOST`, restarts a
//! service that fails, and stops everything it started on SIGINT/SIGTERM.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use berth_config::{CommonFlags, DaemonConfig, Host};
use berth_types::ServiceName;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::Child,
};

use crate::supervise::{self, Spec};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub common: CommonFlags,
    /// Where the service binaries are (default: beside this executable, then PATH).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// The file `berth up` records its NATS URL in, for `berth status`.
pub fn nats_url_file(run_root: &Path) -> PathBuf {
    run_root.join("nats.url")
}

fn find_binary(name: &str, bin_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = bin_dir {
        dirs.push(d.to_owned());
    }
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
    {
        dirs.push(d);
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("{name} not found (looked beside berth and in PATH)"))
}

/// Starts nats-server with JetStream, its data under the data root, on a free loopback port.
async fn start_nats(
    cfg: &DaemonConfig,
    bin_dir: Option<&Path>,
) -> anyhow::Result<(Child, Spec, String)> {
    let store = cfg.data_root.join("nats");
    let ports_dir = cfg.exec_root.join("nats");
    std::fs::create_dir_all(&store)?;
    std::fs::create_dir_all(&ports_dir)?;
    let spec = Spec {
        name: "nats-server".to_owned(),
        program: find_binary("nats-server", bin_dir)?,
        args: vec![
            "--jetstream".to_owned(),
            "--store_dir".to_owned(),
            store.display().to_string(),
            "--addr".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            "-1".to_owned(),
            "--http_port".to_owned(),
            "0".to_owned(),
            "--ports_file_dir".to_owned(),
            ports_dir.display().to_string(),
        ],
        log: cfg.exec_root.join("nats-server.log"),
    };
    let mut child = supervise::spawn(&spec)?;
    let pid = child.id().unwrap_or_default();
    let ports_file = ports_dir.join(format!("nats-server_{pid}.ports"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ports_file)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(url) = v["nats"][0].as_str()
        {
            return Ok((child, spec, url.to_owned()));
        }
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!("nats-server exited ({status}); see {}", spec.log.display());
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill().await;
            anyhow::bail!("nats-server did not start; see {}", spec.log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A restarted nats-server must come back on the port the services know.
fn restart_on_same_port(mut spec: Spec, url: &str) -> Spec {
    if let Some(port) = url.rsplit(':').next()
        && let Some(i) = spec.args.iter().position(|a| a == "--port")
    {
        spec.args[i + 1] = port.to_owned();
    }
    spec
}

fn service_spec(
    service: ServiceName,
    args: &UpArgs,
    cfg: &DaemonConfig,
    nats: &str,
) -> anyhow::Result<Spec> {
    let mut a = vec![
        "--data-root".to_owned(),
        cfg.data_root.display().to_string(),
        "--run-root".to_owned(),
        cfg.exec_root.display().to_string(),
        "--nats-url".to_owned(),
        nats.to_owned(),
    ];
    if let Some(c) = &args.common.config {
        a.extend(["--config".to_owned(), c.display().to_string()]);
    }
    if args.common.debug {
        a.push("--debug".to_owned());
    }
    if let Some(l) = args.common.log_level {
        a.extend(["--log-level".to_owned(), l.as_filter().to_owned()]);
    }
    Ok(Spec {
        name: service.as_str().to_owned(),
        program: find_binary(service.binary(), args.bin_dir.as_deref())?,
        args: a,
        log: cfg.exec_root.join(format!("{service}.log")),
    })
}

/// Sends `GET /_ping` and checks for `200`.
async fn ping(host: &Host) -> bool {
    let req = b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n";
    let mut buf = [0u8; 12];
    let result = match host {
        Host::Unix(p) => match tokio::net::UnixStream::connect(p).await {
            Ok(mut s) => async {
                s.write_all(req).await?;
                s.read_exact(&mut buf).await
            }
            .await
            .map(|_| ()),
            Err(e) => Err(e),
        },
        // A TCP host may require TLS; accepting a connection is the readiness signal there.
        Host::Tcp { host, port } => {
            return tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .is_ok();
        }
    };
    result.is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

/// Whether a backend accepts connections (over TCP, before any TLS).
async fn accepts(address: &berth_config::ServiceAddress) -> bool {
    match address {
        berth_config::ServiceAddress::Unix(p) => tokio::net::UnixStream::connect(p).await.is_ok(),
        berth_config::ServiceAddress::Tcp { host, port } => {
            tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .is_ok()
        }
    }
}

/// Whether `GET /info` answers without a warning that a backend or the event bus is not
/// reachable yet: the first `docker info` after "up" is clean. A TCP host (maybe TLS) is not
/// asked.
async fn info_clean(host: &Host) -> bool {
    let Host::Unix(p) = host else {
        return true;
    };
    let req = b"GET /info HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n";
    let Ok(mut s) = tokio::net::UnixStream::connect(p).await else {
        return false;
    };
    let mut buf = Vec::new();
    if s.write_all(req).await.is_err() || s.read_to_end(&mut buf).await.is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    if !head.starts_with("HTTP/1.1 200") {
        return false;
    }
    // The body may be chunked: the JSON object is between its first { and last }.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if a < b => &body[a..=b],
        _ => return false,
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    !v["Warnings"].as_array().into_iter().flatten().any(|w| {
        w.as_str()
            .is_some_and(|w| w.contains("event bus") || w.contains("is unavailable"))
    })
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let cfg = DaemonConfig::load(&args.common)?;
    std::fs::create_dir_all(&cfg.data_root)?;
    std::fs::create_dir_all(&cfg.exec_root)?;

    let mut children: Vec<Supervised> = Vec::new();
    let nats = match &cfg.berth.nats_url {
        Some(url) => url.clone(),
        None => {
            let (child, spec, url) = start_nats(&cfg, args.bin_dir.as_deref()).await?;
            children.push(supervise(restart_on_same_port(spec, &url), child));
            url
        }
    };
    berth_service::write_atomic(&nats_url_file(&cfg.exec_root), nats.as_bytes(), 0o644)?;

    let mut order: Vec<ServiceName> = ServiceName::backends().to_vec();
    order.push(ServiceName::ApiGateway);
    for service in order {
        let spec = service_spec(service, &args, &cfg, &nats)?;
        let child = match supervise::spawn(&spec) {
            Ok(c) => c,
            Err(e) => {
                stop_all(children).await;
                return Err(e);
            }
        };
        children.push(supervise(spec, child));
    }

    let hosts = cfg.api_hosts();
    // Up means the API answers, every backend accepts connections and `/info` has no warning
    // about a backend or the event bus, so that the first command after "Berth is up" cannot
    // meet a service still starting.
    let backends: Vec<berth_config::ServiceAddress> = ServiceName::backends()
        .into_iter()
        .map(|s| cfg.service_address(s))
        .collect();
    let ready = async {
        loop {
            let mut up = ping(&hosts[0]).await;
            for b in &backends {
                up = up && accepts(b).await;
            }
            up = up && info_clean(&hosts[0]).await;
            if up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .is_err()
    {
        stop_all(children).await;
        anyhow::bail!(
            "the API did not answer /_ping on {} within 60s; logs are in {}",
            hosts[0],
            cfg.exec_root.display()
        );
    }
    println!("Berth is up. Use it with:");
    println!("  export DOCKER_HOST={}", hosts[0]);
    println!("Logs: {}/*.log  NATS: {nats}", cfg.exec_root.display());

    berth_service::shutdown_signal().await;
    stop_all(children).await;
    let _ = std::fs::remove_file(nats_url_file(&cfg.exec_root));
    println!("Berth stopped.");
    Ok(())
}

/// A child under supervision: restarted when it fails, stopped on request.
struct Supervised {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn supervise(spec: Spec, mut child: Child) -> Supervised {
    let (stop, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let status = tokio::select! {
                _ = &mut stop_rx => {
                    supervise::stop(&spec.name, &mut child, Duration::from_secs(10)).await;
                    return;
                }
                status = child.wait() => status,
            };
            match status {
                Ok(s) if !supervise::failed(&s) => {
                    eprintln!("berth: {} exited cleanly; not restarting it", spec.name);
                    let _ = stop_rx.await;
                    return;
                }
                Ok(s) => eprintln!(
                    "berth: {} failed ({s}); restarting in {backoff:?}",
                    spec.name
                ),
                Err(e) => eprintln!("berth: waiting for {}: {e}; restarting", spec.name),
            }
            tokio::select! {
                _ = &mut stop_rx => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            match supervise::spawn(&spec) {
                Ok(c) => child = c,
                Err(e) => {
                    eprintln!("berth: restarting {}: {e}", spec.name);
                    let _ = stop_rx.await;
                    return;
                }
            }
        }
    });
    Supervised { stop, task }
}

/// Stops the gateway first, then the backends, then NATS (the reverse of start).
async fn stop_all(children: Vec<Supervised>) {
    for s in children.into_iter().rev() {
        let _ = s.stop.send(());
        let _ = s.task.await;
    }
}

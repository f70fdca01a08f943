//! `berth status`: which services are up, from their heartbeats on `berth.health.*`.

use std::{collections::BTreeMap, time::Duration};

use berth_bus::Heartbeat;
use berth_config::{CommonFlags, DaemonConfig};
use berth_types::ServiceName;
use futures::StreamExt;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: CommonFlags,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The NATS URL: flag or config, else the one `berth up` recorded, else the default.
fn nats_url(cfg: &DaemonConfig) -> String {
    cfg.berth.nats_url.clone().unwrap_or_else(|| {
        std::fs::read_to_string(crate::up::nats_url_file(&cfg.exec_root))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| berth_config::DEFAULT_NATS_URL.to_owned())
    })
}

/// Prints the table; returns the exit code: 0 when every service is up.
pub async fn run(args: StatusArgs) -> anyhow::Result<i32> {
    let cfg = DaemonConfig::load(&args.common)?;
    let url = nats_url(&cfg);
    let client = async_nats::ConnectOptions::new()
        .name("berth-status")
        .connection_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
        .map_err(|e| anyhow::anyhow!("NATS is not reachable at {url}: {e}"))?;
    let mut sub = client.subscribe(berth_bus::subjects::HEALTH_ALL).await?;
    // Listen for a little over two heartbeat intervals: every live service speaks in that time.
    let window = cfg.berth.heartbeat_interval * 2 + Duration::from_millis(500);
    let mut seen: BTreeMap<ServiceName, Heartbeat> = BTreeMap::new();
    let collect = async {
        while let Some(msg) = sub.next().await {
            if let Ok(hb) = serde_json::from_slice::<Heartbeat>(&msg.payload)
                && let Some(name) = hb.service_name()
            {
                seen.insert(name, hb);
                if seen.len() == ServiceName::ALL.len() {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(window, collect).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if args.json {
        let rows: Vec<serde_json::Value> = ServiceName::ALL
            .iter()
            .map(|s| match seen.get(s) {
                Some(hb) => serde_json::json!({"service": s.as_str(), "up": true, "heartbeat": hb}),
                None => serde_json::json!({"service": s.as_str(), "up": false}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<12} {:<6} {:<8} {:<8} {:<10} {:<40} METRICS",
            "SERVICE", "STATUS", "PID", "VERSION", "UPTIME", "GRPC"
        );
        for s in ServiceName::ALL {
            match seen.get(&s) {
                Some(hb) => println!(
                    "{:<12} {:<6} {:<8} {:<8} {:<10} {:<40} {}",
                    s.as_str(),
                    "up",
                    hb.pid,
                    hb.version,
                    format!("{}s", now - hb.started_at),
                    hb.grpc,
                    hb.metrics
                ),
                None => println!("{:<12} {:<6}", s.as_str(), "down"),
            }
        }
    }
    Ok(if seen.len() == ServiceName::ALL.len() {
        0
    } else {
        1
    })
}

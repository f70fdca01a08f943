use std::path::PathBuf;

use crate::{DaemonConfig, LogLevel};

/// Flags every Berth binary accepts. They override daemon.json.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonFlags {
    /// daemon.json to read (default /etc/berth/daemon.json).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Root of persistent state (default /var/lib/berth).
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Root of sockets and run-time state (default /run/berth); Docker's `exec-root`.
    #[arg(long, value_name = "DIR", alias = "exec-root")]
    pub run_root: Option<PathBuf>,
    /// NATS server URL; overrides `berth.nats-url`.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Debug logging.
    #[arg(long, short = 'D')]
    pub debug: bool,
    /// Log level: debug, info, warn, error, fatal.
    #[arg(long, short = 'l', value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

impl CommonFlags {
    pub(crate) fn apply(&self, cfg: &mut DaemonConfig) {
        if let Some(d) = &self.data_root {
            cfg.data_root = d.clone();
        }
        if let Some(d) = &self.run_root {
            cfg.exec_root = d.clone();
        }
        if let Some(u) = &self.nats_url {
            cfg.berth.nats_url = Some(u.clone());
        }
        if self.debug {
            cfg.debug = true;
        }
        if let Some(l) = self.log_level {
            cfg.log_level = l;
        }
    }
}

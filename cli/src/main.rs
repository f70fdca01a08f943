//! `berth`: the operator CLI. `berth up` runs the whole engine in the foreground, `berth certs`
//! makes mutual-TLS material, `berth status` shows which services are alive.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "berth", version = berth_service::VERSION, about = "Operate a Berth engine")]
enum Cli {
    /// Run NATS and the five services in the foreground (local all-in-one mode).
    Up(berth_cli::up::UpArgs),
    /// Make a CA, a server and a client certificate for mutual TLS.
    Certs(berth_cli::certs::CertsArgs),
    /// Show which services are up, from their heartbeats.
    Status(berth_cli::status::StatusArgs),
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli {
        Cli::Certs(args) => berth_cli::certs::run(&args),
        Cli::Up(args) => runtime()?.block_on(berth_cli::up::run(args)),
        Cli::Status(args) => {
            let code = runtime()?.block_on(berth_cli::status::run(args))?;
            std::process::exit(code)
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

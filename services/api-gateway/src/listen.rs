//! Serving the API on every `hosts` address: unix sockets (0660, group `docker` when it
//! exists), TCP, and TCP with TLS. Connections may be upgraded (attach, exec).

use std::{path::Path, sync::Arc, time::Duration};

use axum::Router;
use berth_config::Host;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, UnixListener},
    sync::watch,
    task::JoinSet,
};
use tokio_rustls::TlsAcceptor;

/// A bound listener.
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener, Option<TlsAcceptor>),
}

/// Whether a TCP host's address is only reachable from this host.
fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Binds every host. TLS applies to TCP hosts only, as with dockerd. A TCP host without TLS
/// on an address other hosts reach is refused unless the configuration says `"tls": false`
/// (as dockerd 28 does): whoever reaches it controls the host.
pub(crate) async fn bind(
    hosts: &[Host],
    tls: Option<Arc<rustls::ServerConfig>>,
    tls_off_accepted: bool,
) -> anyhow::Result<Vec<(String, Listener)>> {
    if tls.is_none() && !tls_off_accepted {
        for host in hosts {
            if let Host::Tcp { host: h, .. } = host
                && !loopback(h)
            {
                anyhow::bail!(
                    "refusing to serve the API on {host} without TLS: anyone who can reach it \
                     controls this host. Configure tlsverify with tlscacert, tlscert and \
                     tlskey, or set \"tls\": false in daemon.json to serve it anyway"
                );
            }
        }
    }
    let mut out = Vec::new();
    for host in hosts {
        let listener = match host {
            Host::Unix(path) => Listener::Unix(bind_unix(path)?),
            Host::Tcp { host: h, port } => {
                let l = TcpListener::bind((h.as_str(), *port))
                    .await
                    .map_err(|e| anyhow::anyhow!("listening on {host}: {e}"))?;
                if tls.is_none() {
                    tracing::warn!(%host, "serving the API on TCP without TLS: anyone who can reach it controls the host");
                }
                Listener::Tcp(l, tls.clone().map(TlsAcceptor::from))
            }
        };
        out.push((host.to_string(), listener));
    }
    Ok(out)
}

fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    let l = berth_service::bind_unix(path, 0o660)
        .map_err(|e| anyhow::anyhow!("listening on unix://{}: {e}", path.display()))?;
    if let Ok(Some(group)) = nix::unistd::Group::from_name("docker")
        && let Err(e) = nix::unistd::chown(path, None, Some(group.gid))
    {
        tracing::warn!(error = %e, path = %path.display(), "cannot give the socket to group docker");
    }
    Ok(l)
}

/// Accepts connections until `stop` turns true, then lets open ones finish for a moment.
pub(crate) async fn serve(
    name: String,
    listener: Listener,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = accept(&listener) => match accepted {
                Ok(Some(accepted)) => {
                    let (app, stop) = (app.clone(), stop.clone());
                    conns.spawn(async move {
                        if let Some(io) = handshake(accepted).await {
                            serve_connection(io, app, stop).await;
                        }
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// An accepted connection; a TLS handshake, if any, happens in the connection's own task.
enum Accepted {
    Plain(Box<dyn Io>),
    Tls(tokio::net::TcpStream, TlsAcceptor, std::net::SocketAddr),
}

async fn accept(listener: &Listener) -> std::io::Result<Option<Accepted>> {
    match listener {
        Listener::Unix(l) => Ok(Some(Accepted::Plain(Box::new(l.accept().await?.0)))),
        Listener::Tcp(l, tls) => {
            let (s, peer) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok(Some(match tls {
                None => Accepted::Plain(Box::new(s)),
                Some(acceptor) => Accepted::Tls(s, acceptor.clone(), peer),
            }))
        }
    }
}

/// Finishes the TLS handshake (with a deadline); a client refused here is logged and dropped.
async fn handshake(accepted: Accepted) -> Option<Box<dyn Io>> {
    match accepted {
        Accepted::Plain(io) => Some(io),
        Accepted::Tls(s, acceptor, peer) => {
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(s)).await {
                Ok(Ok(tls)) => Some(Box::new(tls)),
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "TLS handshake refused");
                    None
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    None
                }
            }
        }
    }
}

async fn serve_connection(io: Box<dyn Io>, app: Router, mut stop: watch::Receiver<bool>) {
    let service = TowerToHyperService::new(app);
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_goes_without_tls_by_default() {
        assert!(loopback("127.0.0.1") && loopback("[::1]") && loopback("localhost"));
        assert!(!loopback("0.0.0.0") && !loopback("10.0.0.5") && !loopback("myhost"));
    }

    #[tokio::test]
    async fn a_reachable_tcp_host_without_tls_is_refused_unless_accepted() {
        let host = Host::Tcp {
            host: "0.0.0.0".to_owned(),
            port: 0,
        };
        let e = bind(std::slice::from_ref(&host), None, false)
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("without TLS"), "{e}");
        assert_eq!(bind(&[host], None, true).await.unwrap().len(), 1);
    }
}

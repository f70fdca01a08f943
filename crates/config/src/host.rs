use std::{fmt, path::PathBuf, str::FromStr};

/// One Docker API listener from `hosts` / `-H`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `tcp://host:port`; the host may be a name or an address.
    Tcp {
        host: String,
        port: u16,
    },
}

impl FromStr for Host {
    type Err = String;
    /// Accepts what dockerd accepts: `unix:///path`, `tcp://host:port`, `tcp://:port`,
    /// `host:port`, and a bare `tcp://host` (port 2375).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(format!(
                    "{s:?}: a unix socket address needs an absolute path"
                ));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if s.starts_with("fd://") || s.starts_with("npipe://") || s.starts_with("ssh://") {
            return Err(format!(
                "{s:?}: only unix:// and tcp:// listeners are supported"
            ));
        }
        let rest = s.strip_prefix("tcp://").unwrap_or(s);
        if rest.contains("://") {
            return Err(format!("{s:?}: invalid bind address protocol"));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) =
            split_host_port(rest).ok_or_else(|| format!("{s:?}: invalid bind address"))?;
        let host = if host.is_empty() {
            "0.0.0.0".to_owned()
        } else {
            host
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{s:?}: invalid port"))?,
            None => 2375,
        };
        Ok(Host::Tcp { host, port })
    }
}

/// Splits `host:port`, `[v6]:port`, `host`.
fn split_host_port(s: &str) -> Option<(String, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':')?),
        };
        return Some((h.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_owned(), Some(p))),
        Some(_) => None,
        None => Some((s.to_owned(), None)),
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Host::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// Where a service's gRPC server is: a unix socket (one host), or TCP with mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAddress {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl FromStr for ServiceAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<Host>()? {
            Host::Unix(p) => Ok(ServiceAddress::Unix(p)),
            Host::Tcp { .. } if !s.starts_with("tcp://") => {
                Err(format!("{s:?}: use unix:///path or tcp://host:port"))
            }
            Host::Tcp { host, port } => Ok(ServiceAddress::Tcp { host, port }),
        }
    }
}

impl fmt::Display for ServiceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceAddress::Unix(p) => Host::Unix(p.clone()).fmt(f),
            ServiceAddress::Tcp { host, port } => Host::Tcp {
                host: host.clone(),
                port: *port,
            }
            .fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> Host {
        Host::Tcp {
            host: h.to_owned(),
            port: p,
        }
    }

    #[test]
    fn parses_docker_host_forms() {
        let cases = [
            (
                "unix:///var/run/docker.sock",
                Host::Unix("/var/run/docker.sock".into()),
            ),
            ("tcp://0.0.0.0:2376", tcp("0.0.0.0", 2376)),
            ("tcp://:2375", tcp("0.0.0.0", 2375)),
            ("tcp://127.0.0.1", tcp("127.0.0.1", 2375)),
            ("127.0.0.1:4243", tcp("127.0.0.1", 4243)),
            ("tcp://[::1]:2376", tcp("::1", 2376)),
            ("tcp://localhost:2376/", tcp("localhost", 2376)),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Host>().unwrap(), want, "{s}");
        }
        for bad in [
            "unix://",
            "unix://rel/path",
            "fd://",
            "http://x:1",
            "tcp://h:port",
            "tcp://h:99999",
        ] {
            assert!(bad.parse::<Host>().is_err(), "{bad}");
        }
    }

    #[test]
    fn service_address_requires_scheme() {
        assert!("127.0.0.1:1".parse::<ServiceAddress>().is_err());
        assert_eq!(
            "tcp://10.0.0.2:7001"
                .parse::<ServiceAddress>()
                .unwrap()
                .to_string(),
            "tcp://10.0.0.2:7001"
        );
    }
}

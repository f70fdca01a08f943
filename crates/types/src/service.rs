use std::{fmt, str::FromStr};

/// One of Berth's services. Each runs as its own process and systemd unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    ApiGateway,
    Runtime,
    Images,
    Network,
    Volumes,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown service {0:?}: expected one of api-gateway, runtime, images, network, volumes")]
pub struct UnknownService(pub String);

impl ServiceName {
    pub const ALL: [ServiceName; 5] = [
        ServiceName::ApiGateway,
        ServiceName::Runtime,
        ServiceName::Images,
        ServiceName::Network,
        ServiceName::Volumes,
    ];

    /// The name used for sockets, units, binaries (`berth-<name>`) and NATS subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::ApiGateway => "api-gateway",
            ServiceName::Runtime => "runtime",
            ServiceName::Images => "images",
            ServiceName::Network => "network",
            ServiceName::Volumes => "volumes",
        }
    }

    /// The executable that runs this service.
    pub fn binary(self) -> &'static str {
        match self {
            ServiceName::ApiGateway => "berth-api-gateway",
            ServiceName::Runtime => "berth-runtime",
            ServiceName::Images => "berth-images",
            ServiceName::Network => "berth-network",
            ServiceName::Volumes => "berth-volumes",
        }
    }

    /// The services the gateway calls over gRPC.
    pub fn backends() -> [ServiceName; 4] {
        [
            ServiceName::Runtime,
            ServiceName::Images,
            ServiceName::Network,
            ServiceName::Volumes,
        ]
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = UnknownService;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| UnknownService(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip() {
        for n in ServiceName::ALL {
            assert_eq!(n.as_str().parse::<ServiceName>().unwrap(), n);
            assert_eq!(n.binary(), format!("berth-{n}"));
        }
        assert!("dockerd".parse::<ServiceName>().is_err());
    }
}

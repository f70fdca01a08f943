//! IPv4 address management: subnets, picking a free one, handing out addresses. Pure
//! functions; the store makes them durable (one write transaction per allocation).

use std::{collections::BTreeSet, fmt, net::Ipv4Addr, str::FromStr};

/// An IPv4 network, its address masked to the prefix: 172.18.0.0/16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl Ipv4Net {
    /// The network of `addr`/`prefix` (host bits cleared); None for a prefix over 32.
    pub(crate) fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        (prefix <= 32).then(|| Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub(crate) fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }

    fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    pub(crate) fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.first()
    }

    pub(crate) fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Whether `other` lies inside this network.
    pub(crate) fn covers(&self, other: &Ipv4Net) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }

    /// The first usable host address (the gateway by default).
    pub(crate) fn first_host(&self) -> Option<Ipv4Addr> {
        (self.prefix <= 30).then(|| Ipv4Addr::from(self.first() + 1))
    }

    /// The subnets of size `/size` inside this network, in order (at most `limit`).
    pub(crate) fn subnets(&self, size: u8, limit: usize) -> Vec<Ipv4Net> {
        if size < self.prefix || size > 32 {
            return Vec::new();
        }
        let step = 1u64 << (32 - u32::from(size));
        let count = 1u64 << u32::from(size - self.prefix);
        (0..count.min(limit as u64))
            .filter_map(|i| {
                let a = u64::from(self.first()) + i * step;
                Ipv4Net::new(Ipv4Addr::from(u32::try_from(a).ok()?), size)
            })
            .collect()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    /// `172.18.0.0/16`; an address with host bits set is refused, as Docker does.
    fn from_str(s: &str) -> Result<Ipv4Net, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let net = Ipv4Net::new(addr, prefix).ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        if net.addr != addr {
            return Err(format!("invalid subnet {s}: it should be {net}"));
        }
        Ok(net)
    }
}

/// The pools a subnet is picked from when none is given: daemon.json's
/// `default-address-pools`, else Docker's defaults (172.17–31.0.0/16, then 192.168.0.0/16 in
/// /20s).
pub(crate) fn default_pools(configured: &[(Ipv4Net, u8)]) -> Vec<(Ipv4Net, u8)> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let mut out: Vec<(Ipv4Net, u8)> = (17..=31)
        .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).map(|n| (n, 16)))
        .collect();
    out.extend(Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).map(|n| (n, 20)));
    out
}

/// The first subnet of the pools that overlaps nothing in `taken` (routes on the host and
/// other networks' subnets).
pub(crate) fn pick_subnet(pools: &[(Ipv4Net, u8)], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    pools.iter().find_map(|(base, size)| {
        base.subnets(*size, 1 << 16)
            .into_iter()
            .find(|n| !taken.iter().any(|t| t.overlaps(n)))
    })
}

/// One pool of a network as IPAM sees it.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) subnet: Ipv4Net,
    /// Where addresses are handed out from (inside the subnet).
    pub(crate) range: Ipv4Net,
    pub(crate) gateway: Ipv4Addr,
    /// Never handed out (auxiliary addresses).
    pub(crate) reserved: BTreeSet<Ipv4Addr>,
}

impl Pool {
    /// Whether `ip` may be handed out: in the subnet, neither its network nor broadcast
    /// address, the gateway, a reserved one nor in `used`.
    pub(crate) fn is_free(&self, ip: Ipv4Addr, used: impl Fn(Ipv4Addr) -> bool) -> bool {
        let a = u32::from(ip);
        let (net_lo, net_hi) = (self.subnet.first(), self.subnet.last());
        self.subnet.contains(ip)
            && (self.subnet.prefix >= 31 || (a != net_lo && a != net_hi))
            && ip != self.gateway
            && !self.reserved.contains(&ip)
            && !used(ip)
    }

    /// The next free address after `last` (wrapping around once), skipping the network and
    /// broadcast addresses, the gateway, the reserved ones and those `used` says are taken (it
    /// is asked about the candidates only, so that an allocation on a network of many
    /// endpoints reads a few of their addresses, not all of them). Sequential, as dockerd's: an
    /// address released is not handed out again at once.
    pub(crate) fn allocate(
        &self,
        used: impl Fn(Ipv4Addr) -> bool,
        last: Option<Ipv4Addr>,
    ) -> Option<Ipv4Addr> {
        let (lo, hi) = (self.range.first(), self.range.last());
        let free = |a: u32| self.is_free(Ipv4Addr::from(a), &used);
        let start = match last.map(u32::from) {
            Some(l) if l >= lo && l < hi => l + 1,
            _ => lo,
        };
        (start..=hi)
            .chain(lo..start)
            .find(|a| free(*a))
            .map(Ipv4Addr::from)
    }
}

/// dockerd's MAC for an address: 02:42 followed by the four bytes of the IPv4 address.
pub(crate) fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `02:42:ac:11:00:02` (or with dashes); None when it is not six hex bytes.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

pub(crate) fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_compare() {
        assert_eq!(net("172.18.0.0/16").to_string(), "172.18.0.0/16");
        assert!("172.18.0.1/16".parse::<Ipv4Net>().is_err());
        assert!("172.18.0.0".parse::<Ipv4Net>().is_err());
        assert!("172.18.0.0/33".parse::<Ipv4Net>().is_err());
        assert!(net("172.16.0.0/12").overlaps(&net("172.17.0.0/16")));
        assert!(!net("172.17.0.0/16").overlaps(&net("172.18.0.0/16")));
        assert!(net("172.16.0.0/12").covers(&net("172.17.0.0/16")));
        assert!(!net("172.17.0.0/16").covers(&net("172.16.0.0/12")));
        assert_eq!(
            net("10.0.0.0/8").subnets(24, 2),
            vec![net("10.0.0.0/24"), net("10.0.1.0/24")]
        );
    }

    #[test]
    fn subnets_avoid_what_is_taken() {
        let pools = default_pools(&[]);
        // Another engine's docker0 and a host route.
        let taken = [net("172.17.0.0/16"), net("172.19.5.0/24")];
        assert_eq!(pick_subnet(&pools, &taken), Some(net("172.18.0.0/16")));
        let taken = [net("172.16.0.0/12")];
        assert_eq!(pick_subnet(&pools, &taken), Some(net("192.168.0.0/20")));
        let custom = default_pools(&[(net("10.10.0.0/16"), 24)]);
        assert_eq!(
            pick_subnet(&custom, &[net("10.10.0.0/24")]),
            Some(net("10.10.1.0/24"))
        );
        assert_eq!(
            pick_subnet(&[(net("10.0.0.0/24"), 24)], &[net("10.0.0.0/8")]),
            None
        );
    }

    #[test]
    fn addresses_are_handed_out_once_and_in_order() {
        let subnet = net("10.1.0.0/29");
        let pool = Pool {
            subnet,
            range: subnet,
            gateway: "10.1.0.1".parse().unwrap(),
            reserved: ["10.1.0.3".parse().unwrap()].into(),
        };
        let mut used = BTreeSet::new();
        let mut last = None;
        let mut got = Vec::new();
        while let Some(a) = pool.allocate(|ip| used.contains(&ip), last) {
            used.insert(a);
            last = Some(a);
            got.push(a.to_string());
        }
        // Not .0 (network), .1 (gateway), .3 (aux) or .7 (broadcast).
        assert_eq!(got, ["10.1.0.2", "10.1.0.4", "10.1.0.5", "10.1.0.6"]);
        // A released address is not the next one handed out.
        used.remove(&"10.1.0.4".parse().unwrap());
        used.remove(&"10.1.0.2".parse().unwrap());
        assert_eq!(
            pool.allocate(|ip| used.contains(&ip), Some("10.1.0.2".parse().unwrap())),
            Some("10.1.0.4".parse().unwrap())
        );
        assert_eq!(
            pool.allocate(|ip| used.contains(&ip), Some("10.1.0.6".parse().unwrap())),
            Some("10.1.0.2".parse().unwrap())
        );
    }

    #[test]
    fn ip_range_limits_the_addresses() {
        let pool = Pool {
            subnet: net("10.2.0.0/16"),
            range: net("10.2.5.0/24"),
            gateway: "10.2.0.1".parse().unwrap(),
            reserved: BTreeSet::new(),
        };
        assert_eq!(
            pool.allocate(|_| false, None),
            Some("10.2.5.0".parse().unwrap())
        );
        assert_eq!(
            mac_string(mac_for("172.17.0.2".parse().unwrap())),
            "02:42:ac:11:00:02"
        );
        assert_eq!(
            parse_mac("02:42:AC:11:00:09"),
            Some([2, 0x42, 0xac, 0x11, 0, 9])
        );
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:zz"), None);
    }
}

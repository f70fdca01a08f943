//! IPv6 subnets of networks created with `--ipv6`: the subnet given (`--subnet fd00:1::/64`)
//! or a unique local /64 picked as dockerd 27+ does, the gateway (the subnet's first address,
//! on the bridge), and sequential allocation of containers' addresses from the second one.

use std::{collections::BTreeSet, fmt, net::Ipv6Addr, str::FromStr};

/// An IPv6 subnet: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv6Net {
    addr: Ipv6Addr,
    prefix: u8,
}

/// The smallest subnet a network can have: a gateway and one container.
pub(crate) const MAX_PREFIX: u8 = 126;

impl Ipv6Net {
    /// The subnet of `addr` (host bits cleared); None for a prefix over 128.
    pub(crate) fn new(addr: Ipv6Addr, prefix: u8) -> Option<Ipv6Net> {
        (prefix <= 128).then(|| Ipv6Net {
            addr: Ipv6Addr::from(u128::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }

    pub(crate) fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask(self.prefix) == u128::from(self.addr)
    }

    /// Whether `other` lies inside this subnet.
    pub(crate) fn covers(&self, other: &Ipv6Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    pub(crate) fn overlaps(&self, other: &Ipv6Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The `n`th address of the subnet, inside it.
    pub(crate) fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        let ip = Ipv6Addr::from(u128::from(self.addr).checked_add(n)?);
        self.contains(ip).then_some(ip)
    }

    /// The default gateway: the subnet's first address after the subnet-router anycast one.
    pub(crate) fn first_host(&self) -> Option<Ipv6Addr> {
        self.nth(1)
    }

    /// The lowest address of `range` (`--ip-range`, inside this subnet; else the subnet) that
    /// is not the subnet-router anycast address, not taken (`used`: containers, the gateway,
    /// auxiliary addresses). None when the range is full.
    pub(crate) fn allocate_in(
        &self,
        range: &Ipv6Net,
        used: &BTreeSet<Ipv6Addr>,
    ) -> Option<Ipv6Addr> {
        // A /64 holds 2^64 addresses; the first `used.len() + 2` candidates hold a free one.
        let tries = u128::try_from(used.len())
            .unwrap_or(u128::MAX)
            .saturating_add(1);
        (0..=tries)
            .map_while(|n| range.nth(n))
            .find(|ip| *ip != self.addr && !used.contains(ip))
    }
}

fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv6Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Ipv6Net, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Ipv6Net::new(addr, prefix).ok_or_else(bad)
    }
}

/// What an endpoint on a network with IPv6 gets its address from: the subnet, the addresses
/// that are never handed out (the gateway, auxiliary addresses), and the one asked for.
#[derive(Debug, Clone)]
pub(crate) struct Want6 {
    pub(crate) subnet: Ipv6Net,
    /// Where dynamic addresses come from (`--ip-range`; else the subnet).
    pub(crate) range: Ipv6Net,
    pub(crate) gateway: Ipv6Addr,
    pub(crate) reserved: BTreeSet<Ipv6Addr>,
    pub(crate) fixed: Option<Ipv6Addr>,
}

/// A unique local /64 (fdXX:XXXX:XXXX::/64, RFC 4193's random global ID) that overlaps none
/// of `taken`, as dockerd 27+ picks one for `--ipv6` without a subnet.
pub(crate) fn pick_ula(taken: &[Ipv6Net]) -> Option<Ipv6Net> {
    (0..16).find_map(|_| {
        let global = uuid::Uuid::new_v4().as_u128() >> 88; // 40 random bits
        let addr = Ipv6Addr::from((0xfd_u128 << 120) | (global << 80));
        let net = Ipv6Net::new(addr, 64)?;
        (!taken.iter().any(|t| t.overlaps(&net))).then_some(net)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_contain() {
        let n: Ipv6Net = "fd00:1:2::5/64".parse().unwrap();
        assert_eq!(n.to_string(), "fd00:1:2::/64");
        assert!(n.contains(ip("fd00:1:2::ffff")));
        assert!(!n.contains(ip("fd00:1:3::1")));
        assert_eq!(n.first_host(), Some(ip("fd00:1:2::1")));
        assert!("fd00::/129".parse::<Ipv6Net>().is_err());
        assert!("10.0.0.0/8".parse::<Ipv6Net>().is_err());
        let wide: Ipv6Net = "fd00:1::/32".parse().unwrap();
        assert!(wide.overlaps(&n) && n.overlaps(&wide));
        assert!(!n.overlaps(&"fd00:1:3::/64".parse().unwrap()));
    }

    #[test]
    fn addresses_are_handed_out_in_order_skipping_the_taken() {
        let n: Ipv6Net = "fd00::/64".parse().unwrap();
        let mut used = BTreeSet::from([ip("fd00::1")]);
        assert_eq!(n.allocate_in(&n, &used), Some(ip("fd00::2")));
        used.insert(ip("fd00::2"));
        used.insert(ip("fd00::4"));
        assert_eq!(n.allocate_in(&n, &used), Some(ip("fd00::3")));
        let tiny: Ipv6Net = "fd00::/126".parse().unwrap();
        let full = BTreeSet::from([ip("fd00::1"), ip("fd00::2"), ip("fd00::3")]);
        assert_eq!(tiny.allocate_in(&tiny, &full), None);
        // From an --ip-range only, its first address included.
        let range: Ipv6Net = "fd00::100/120".parse().unwrap();
        assert!(n.covers(&range) && !range.covers(&n));
        assert_eq!(n.allocate_in(&range, &used), Some(ip("fd00::100")));
        used.insert(ip("fd00::100"));
        assert_eq!(n.allocate_in(&range, &used), Some(ip("fd00::101")));
        assert_eq!(n.allocate_in(&n, &used), Some(ip("fd00::3")));
        let one: Ipv6Net = "fd00::100/128".parse().unwrap();
        assert_eq!(n.allocate_in(&one, &used), None);
    }

    #[test]
    fn picked_ula_subnets_are_unique_local_and_free() {
        let a = pick_ula(&[]).unwrap();
        assert_eq!(a.prefix(), 64);
        assert_eq!(a.to_string().get(..2), Some("fd"));
        let all: Ipv6Net = "fd00::/8".parse().unwrap();
        assert_eq!(pick_ula(&[all]), None);
    }
}

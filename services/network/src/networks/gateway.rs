//! Which of a container's endpoints provides its default routes, as dockerd 28 chooses: the
//! endpoints ordered by `--gw-priority` (highest first), then networks that are not internal,
//! then those with both an IPv4 and an IPv6 gateway, then by network name; the first
//! dual-stack endpoint in that order provides both routes, else the first with an IPv4
//! gateway the IPv4 route and the first with an IPv6 gateway the IPv6 one (moby's
//! `Endpoint.Less` and `selectGatewayEndpoint`).

use std::cmp::Ordering;

use berth_proto::network::v1 as pb;

use super::Networks;
use crate::netlink::{self, Inside};

/// One endpoint as the choice sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate<'a> {
    pub(crate) priority: i64,
    pub(crate) internal: bool,
    /// The network has IPv6 (the bridge has an IPv6 gateway).
    pub(crate) ipv6: bool,
    pub(crate) network: &'a str,
}

impl Candidate<'_> {
    /// An endpoint on a bridge network: internal ones have no gateway.
    pub(crate) fn of<'a>(n: &'a pb::NetworkRecord, priority: i64) -> Candidate<'a> {
        Candidate {
            priority,
            internal: n.internal,
            ipv6: n.enable_ipv6,
            network: &n.name,
        }
    }

    /// Whether it has an IPv4 and an IPv6 gateway.
    fn gateways(&self) -> (bool, bool) {
        (!self.internal, !self.internal && self.ipv6)
    }

    fn count(&self) -> u8 {
        let (v4, v6) = self.gateways();
        u8::from(v4) + u8::from(v6)
    }

    /// dockerd's order: better candidates for the default gateway first.
    fn order(&self, other: &Candidate<'_>) -> Ordering {
        other
            .priority
            .cmp(&self.priority)
            .then(self.internal.cmp(&other.internal))
            .then(other.count().cmp(&self.count()))
            .then(self.network.cmp(other.network))
    }
}

/// The indexes of the endpoints that provide the IPv4 and the IPv6 default route.
pub(crate) fn elect(c: &[Candidate<'_>]) -> (Option<usize>, Option<usize>) {
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[a].order(&c[b]));
    let (mut v4, mut v6) = (None, None);
    for i in order {
        match c[i].gateways() {
            // dockerd 28: the first dual-stack endpoint provides both, even over a
            // single-stack one of a higher priority.
            (true, true) => return (Some(i), Some(i)),
            (true, false) => {
                v4.get_or_insert(i);
            }
            (false, true) => {
                v6.get_or_insert(i);
            }
            (false, false) => {}
        }
    }
    (v4, v6)
}

impl Networks {
    /// For each of a container's endpoints (in any order): whether it provides the IPv4 and
    /// the IPv6 default route. An endpoint whose network is gone provides none.
    pub(super) fn routes_of(&self, eps: &[pb::Endpoint]) -> Vec<(bool, bool)> {
        let gone = pb::NetworkRecord {
            internal: true,
            ..Default::default()
        };
        let nets: Vec<pb::NetworkRecord> = eps
            .iter()
            .map(|e| self.find(&e.network_id).unwrap_or_else(|_| gone.clone()))
            .collect();
        let cands: Vec<Candidate<'_>> = nets
            .iter()
            .zip(eps)
            .map(|(n, e)| Candidate::of(n, e.gw_priority))
            .collect();
        let (v4, v6) = elect(&cands);
        (0..eps.len())
            .map(|i| (v4 == Some(i), v6 == Some(i)))
            .collect()
    }

    /// Records the choice `routes` (from `routes_of(eps)`) for the endpoints whose flags it
    /// changes; with `netns`, the routes an endpoint gains are set (replacing the old ones).
    pub(super) async fn apply_routes(
        &self,
        cid: &str,
        eps: &[pb::Endpoint],
        routes: &[(bool, bool)],
        netns: Option<&std::path::Path>,
    ) {
        for (e, &(v4, v6)) in eps.iter().zip(routes) {
            if (e.default_route, e.default_route6) == (v4, v6) {
                continue;
            }
            let gain4 = v4 && !e.default_route;
            let gain6 = v6 && !e.default_route6;
            if let Some(netns) = netns.filter(|_| gain4 || gain6)
                && let Ok(ip) = e.ipv4_address.parse()
            {
                let inside = Inside {
                    interface: e.interface.clone(),
                    ip,
                    prefix: u8::try_from(e.ipv4_prefix_len).unwrap_or(32),
                    gateway: e.gateway.parse().ok().filter(|_| gain4),
                    ip6: netlink::ip6_of(e),
                    gateway6: e.ipv6_gateway.parse().ok().filter(|_| gain6),
                    link_local: Vec::new(),
                    sysctls: Vec::new(),
                };
                if let Err(err) = netlink::configure_inside(netns.to_owned(), vec![inside]).await {
                    tracing::warn!(error = %err, container = cid, "moving the default route");
                    continue;
                }
            }
            // The record as stored now (another step may have changed it since `eps` was read).
            let mut now = self
                .store
                .container_endpoints(cid)
                .ok()
                .and_then(|l| l.into_iter().find(|x| x.network_id == e.network_id))
                .unwrap_or_else(|| e.clone());
            now.default_route = v4;
            now.default_route6 = v6;
            if let Err(err) = self.store.update_endpoint(&now) {
                tracing::warn!(error = %err, container = cid, "recording the default route");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(network: &str, priority: i64, internal: bool, ipv6: bool) -> Candidate<'_> {
        Candidate {
            priority,
            internal,
            ipv6,
            network,
        }
    }

    #[test]
    fn the_highest_priority_wins_then_the_name() {
        assert_eq!(elect(&[]), (None, None));
        let eps = [c("b", 0, false, false), c("a", 0, false, false)];
        assert_eq!(elect(&eps), (Some(1), None), "equal priorities: by name");
        let eps = [c("a", 0, false, false), c("b", 5, false, false)];
        assert_eq!(elect(&eps), (Some(1), None));
        let eps = [c("a", -1, false, false), c("b", 0, false, false)];
        assert_eq!(
            elect(&eps),
            (Some(1), None),
            "negative priorities come last"
        );
    }

    #[test]
    fn internal_networks_never_provide_a_route() {
        let eps = [c("a", 9, true, true), c("b", 0, false, false)];
        assert_eq!(elect(&eps), (Some(1), None));
        assert_eq!(elect(&[c("a", 0, true, false)]), (None, None));
    }

    #[test]
    fn ipv6_is_chosen_apart_from_ipv4_as_dockerd_28_does() {
        // Equal priorities: a dual-stack network comes before single-stack ones.
        let eps = [c("a", 0, false, false), c("z", 0, false, true)];
        assert_eq!(elect(&eps), (Some(1), Some(1)));
        // The first dual-stack endpoint takes both, even below a single-stack one.
        let eps = [c("a", 5, false, false), c("z", 0, false, true)];
        assert_eq!(elect(&eps), (Some(1), Some(1)));
        // Without a dual-stack candidate, the IPv6 route comes from the best one with IPv6.
        let eps = [c("a", 5, false, false), c("z", 0, true, true)];
        assert_eq!(elect(&eps), (Some(0), None));
    }
}

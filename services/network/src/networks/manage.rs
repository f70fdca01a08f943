//! Finding, listing, removing and pruning networks, and `docker network ls`'s filters.

use berth_proto::network::v1 as pb;

use super::{Networks, kernel, rules::rule_of};
use crate::{NetworkError, store::Refusal};

/// Whether a network passes the filters (`endpoints`: how many it has).
pub(crate) fn matches(f: &pb::NetworkFilters, n: &pb::NetworkRecord, endpoints: usize) -> bool {
    let any = |values: &[String], pred: &dyn Fn(&str) -> bool| {
        values.is_empty() || values.iter().any(|v| pred(v))
    };
    let label_ok = |l: &pb::LabelFilter| match (&l.value, n.labels.get(&l.key)) {
        (None, Some(_)) => true,
        (Some(want), Some(have)) => want == have,
        _ => false,
    };
    let dangling_ok = match f.dangling {
        None => true,
        Some(true) => !n.predefined && endpoints == 0,
        Some(false) => n.predefined || endpoints > 0,
    };
    dangling_ok
        && any(&f.drivers, &|d| d == n.driver)
        && any(&f.ids, &|id| n.id.starts_with(id))
        && any(&f.names, &|name| n.name.contains(name))
        && any(&f.scopes, &|s| s == "local")
        && any(&f.types, &|t| match t {
            "custom" => !n.predefined,
            "builtin" => n.predefined,
            _ => false,
        })
        && f.labels.iter().all(label_ok)
        && !f.labels_not.iter().any(label_ok)
        && f.until.is_none_or(|u| n.created / 1_000_000_000 <= u)
}

impl Networks {
    /// Full ID, exact name, or unique ID prefix (moby's order).
    pub(crate) fn find(&self, r: &str) -> Result<pb::NetworkRecord, NetworkError> {
        let all = self.store.networks()?;
        if let Some(n) = all.iter().find(|n| n.id == r) {
            return Ok(n.clone());
        }
        if let Some(n) = all.iter().find(|n| n.name == r) {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&pb::NetworkRecord> = if r.is_empty() {
            Vec::new()
        } else {
            all.iter().filter(|n| n.id.starts_with(r)).collect()
        };
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NetworkError::not_found(format!("network {r} not found"))),
            _ => Err(NetworkError::invalid(format!(
                "network {r} is ambiguous ({} matches found based on ID prefix)",
                by_prefix.len()
            ))),
        }
    }

    pub(super) fn info(&self, n: pb::NetworkRecord) -> Result<pb::NetworkInfo, NetworkError> {
        let endpoints = self.store.network_endpoints(&n.id)?;
        Ok(pb::NetworkInfo {
            network: Some(n),
            endpoints,
        })
    }

    pub(crate) fn inspect(&self, r: &str) -> Result<pb::NetworkInfo, NetworkError> {
        let n = self.find(r)?;
        self.info(n)
    }

    pub(crate) fn list(
        &self,
        f: &pb::NetworkFilters,
    ) -> Result<Vec<pb::NetworkInfo>, NetworkError> {
        let mut out = Vec::new();
        for n in self.store.networks()? {
            let info = self.info(n)?;
            let n = info.network.as_ref().expect("set above");
            if matches(f, n, info.endpoints.len()) {
                out.push(info);
            }
        }
        out.sort_by(|a, b| {
            let name = |i: &pb::NetworkInfo| i.network.as_ref().map(|n| n.name.clone());
            name(a).cmp(&name(b))
        });
        Ok(out)
    }

    /// docker network rm.
    pub(crate) async fn remove(&self, r: &str) -> Result<(), NetworkError> {
        let _g = self.lock.lock().await;
        let n = self.find(r)?;
        self.remove_locked(&n).await
    }

    pub(super) async fn remove_locked(&self, n: &pb::NetworkRecord) -> Result<(), NetworkError> {
        if n.predefined {
            return Err(NetworkError::forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let destroyed = self.network_event(n, "destroy", None);
        if let Err(Refusal::InUse(_)) = self.store.remove_network(&n.id, &destroyed)? {
            return Err(NetworkError::forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        if let Some(rule) = rule_of(n) {
            self.fw
                .nft(&self.fw.remove_network_text(&rule))
                .await
                .map_err(kernel)?;
        }
        self.fw.forget_in_docker_user(&n.bridge).await;
        self.links.delete(&n.bridge).await.map_err(kernel)?;
        Ok(())
    }

    /// docker network prune: the user-defined networks without endpoints that the filters
    /// select. Their names.
    pub(crate) async fn prune(&self, f: &pb::NetworkFilters) -> Result<Vec<String>, NetworkError> {
        let _g = self.lock.lock().await;
        let mut out = Vec::new();
        for n in self.store.networks()? {
            if n.predefined || !self.store.network_endpoints(&n.id)?.is_empty() {
                continue;
            }
            if !matches(f, &n, 0) {
                continue;
            }
            self.remove_locked(&n).await?;
            out.push(n.name);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_as_docker_does() {
        let n = pb::NetworkRecord {
            id: "abcdef".to_owned(),
            name: "mynet".to_owned(),
            driver: "bridge".to_owned(),
            created: 10_000_000_000,
            labels: [("a".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        };
        let f = |f: pb::NetworkFilters| matches(&f, &n, 0);
        assert!(f(pb::NetworkFilters::default()));
        assert!(f(pb::NetworkFilters {
            ids: vec!["abc".to_owned()],
            names: vec!["net".to_owned()],
            types: vec!["custom".to_owned()],
            dangling: Some(true),
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            types: vec!["builtin".to_owned()],
            ..Default::default()
        }));
        let label = |k: &str, v: Option<&str>| pb::LabelFilter {
            key: k.to_owned(),
            value: v.map(str::to_owned),
        };
        assert!(f(pb::NetworkFilters {
            labels: vec![label("a", Some("1"))],
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            labels: vec![label("a", Some("2"))],
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            labels_not: vec![label("a", None)],
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            until: Some(9),
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            scopes: vec!["swarm".to_owned()],
            ..Default::default()
        }));
    }
}

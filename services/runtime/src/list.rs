//! docker ps: the summaries and the filters.

use serde_json::Value;

use berth_proto::runtime::v1 as pb;

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

impl Containers {
    pub(crate) fn list(&self, req: &pb::ListRequest) -> Result<pb::JsonResponse, ContainerError> {
        let filters = Filters::parse(&req.filters)?;
        let mut all = self.store.all()?;
        all.sort_by(|a, b| b.created.cmp(&a.created));
        let all_wanted = req.all || req.limit > 0 || filters.has("status");
        let out: Vec<Value> = all
            .iter()
            .filter(|c| all_wanted || c.state.running())
            .filter(|c| filters.matches(c))
            .take(if req.limit > 0 {
                req.limit as usize
            } else {
                usize::MAX
            })
            .map(Container::summary)
            .collect();
        Ok(pb::JsonResponse {
            json: Value::Array(out).to_string(),
        })
    }
}

/// The filters of GET /containers/json that Berth applies: status, name, id, label.
struct Filters(std::collections::BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(text: &str) -> Result<Filters, ContainerError> {
        let mut out = std::collections::BTreeMap::new();
        if text.trim().is_empty() {
            return Ok(Filters(out));
        }
        let v: Value = serde_json::from_str(text)
            .map_err(|e| ContainerError::invalid(format!("invalid filter: {e}")))?;
        for (k, vals) in v.as_object().into_iter().flatten() {
            let list: Vec<String> = match vals {
                Value::Object(m) => m.keys().cloned().collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn matches(&self, c: &Container) -> bool {
        self.0.iter().all(|(k, vals)| {
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "status" => c.state.status.as_str() == v,
                    "name" => c.short_name().contains(v.trim_start_matches('/')),
                    "id" => c.id.starts_with(v.as_str()),
                    "label" => {
                        let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                        match c.config["Labels"][lk].as_str() {
                            Some(val) => lv.is_empty() && !v.contains('=') || val == lv,
                            None => false,
                        }
                    }
                    _ => true,
                })
        })
    }
}

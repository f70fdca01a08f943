//! docker ps (moby's daemon/list.go): the filters, `all` and `limit`, the order, and the sizes
//! of the writable layers. The front end validates the filters; this applies them.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use berth_proto::{images::v1 as images, runtime::v1 as pb};
use berth_types::ImageRef;
use futures::StreamExt;
use regex::Regex;

use crate::{
    container::{Container, Sizes, Status},
    container_error::ContainerError,
    lifecycle::Containers,
};

/// How many containers' sizes are asked of the images service at once.
const SIZE_LOOKUPS: usize = 4;

impl Containers {
    /// GET /containers/json.
    pub(crate) async fn list(
        &self,
        req: &pb::ListRequest,
    ) -> Result<pb::ListResponse, ContainerError> {
        let mut all = self.store.all_shared()?;
        newest_first(&mut all);
        let filters = req.filters.clone().unwrap_or_default();
        let mut filter = PsFilter::new(filters, &all)?;
        if !filter.f.ancestors.is_empty() {
            filter.ancestor_ids = self
                .resolve_images(filter.f.ancestors.iter().map(String::as_str))
                .await;
        }
        let chosen = filter.select(&all, req.all, req.limit);
        let mut sizes = if req.size {
            self.sizes(&chosen).await
        } else {
            HashMap::new()
        };
        let containers = chosen
            .iter()
            .map(|c| {
                // No lookup (a SipHash of the ID) when no size was asked for.
                let sizes = if sizes.is_empty() {
                    None
                } else {
                    sizes.remove(&c.id)
                };
                pb::ContainerInfo {
                    container: Some(c.summary_proto()),
                    size_rw: sizes.map(|s| s.rw),
                    size_root_fs: sizes.map(|s| s.root_fs),
                    ..Default::default()
                }
            })
            .collect();
        Ok(pb::ListResponse { containers })
    }

    /// The IDs of the images the `ancestor` values name, as the images service resolves them
    /// (name, name:tag, ID or ID prefix). Values that name no image are left out, as moby does.
    async fn resolve_images<'a>(&self, names: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for name in names {
            match self
                .images_client()
                .inspect(images::InspectRequest {
                    name: name.to_owned(),
                })
                .await
            {
                Ok(r) => {
                    ids.insert(bare_id(&r.into_inner().id).to_owned());
                }
                Err(e) => tracing::debug!(image = name, error = %e, "ancestor filter: no image"),
            }
        }
        ids
    }

    /// Each container's sizes, by ID: the bytes in its writable layer (the images service's
    /// snapshot usage) and those plus its image's size. A container whose snapshot or image
    /// cannot be measured (being created or removed) counts zero for that part.
    pub(crate) async fn sizes(&self, containers: &[&Container]) -> HashMap<String, Sizes> {
        let image_ids: BTreeSet<&str> = containers.iter().map(|c| c.image_id.as_str()).collect();
        let mut image_sizes: HashMap<&str, i64> = HashMap::new();
        for id in image_ids.into_iter().filter(|id| !id.is_empty()) {
            let size = match self
                .images_client()
                .inspect(images::InspectRequest {
                    name: id.to_owned(),
                })
                .await
            {
                Ok(r) => crate::create::image_size(&r.into_inner()),
                Err(e) => {
                    tracing::debug!(image = id, error = %e, "container size: image size");
                    0
                }
            };
            image_sizes.insert(id, size);
        }
        let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
        let rw: Vec<i64> = futures::stream::iter(ids.into_iter().map(|id| self.rw_size(id)))
            .buffered(SIZE_LOOKUPS)
            .collect()
            .await;
        containers
            .iter()
            .zip(rw)
            .map(|(c, rw)| {
                let image = image_sizes.get(c.image_id.as_str()).copied().unwrap_or(0);
                (
                    c.id.clone(),
                    Sizes {
                        rw,
                        root_fs: image + rw,
                    },
                )
            })
            .collect()
    }

    /// The bytes in container `id`'s writable layer; 0 if its snapshot cannot be measured.
    pub(crate) async fn rw_size(&self, id: String) -> i64 {
        match self
            .images_client()
            .usage(images::SnapshotKey { key: id })
            .await
        {
            Ok(u) => u.into_inner().size,
            Err(e) => {
                tracing::debug!(error = %e, "container size: snapshot usage");
                0
            }
        }
    }
}

/// Newest first, as moby lists them (by creation time; the ID breaks ties).
pub(crate) fn newest_first(all: &mut [Arc<Container>]) {
    all.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
}

/// An image ID without its `sha256:`.
fn bare_id(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// The `filters` of GET /containers/json, with what they name looked up.
struct PsFilter {
    f: pb::ContainerFilters,
    /// The `name` values, each with its regexp when it compiles (moby's `Match`).
    names: Vec<(String, Option<Regex>)>,
    statuses: Vec<Status>,
    /// The container `before` names: only those created before it are listed.
    before: Option<String>,
    /// The container `since` names: only those created after it are listed.
    since: Option<String>,
    /// The image IDs (without `sha256:`) the `ancestor` values resolve to.
    ancestor_ids: BTreeSet<String>,
}

impl PsFilter {
    /// `all` resolves `before` and `since`.
    fn new(f: pb::ContainerFilters, all: &[Arc<Container>]) -> Result<PsFilter, ContainerError> {
        let lookup_opt = |v: &str| {
            if v.is_empty() {
                Ok(None)
            } else {
                lookup(all, v).map(Some)
            }
        };
        let before = lookup_opt(&f.before)?;
        let since = lookup_opt(&f.since)?;
        let names = f
            .names
            .iter()
            .map(|v| (v.clone(), Regex::new(v).ok()))
            .collect();
        let statuses = f
            .statuses
            .iter()
            .map(|s| {
                Status::try_from(*s)
                    .map_err(|_| ContainerError::invalid(format!("invalid status {s}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(PsFilter {
            f,
            names,
            statuses,
            before,
            since,
            ancestor_ids: BTreeSet::new(),
        })
    }

    /// The containers to list, from `sorted` (newest first): those after `before` and ahead of
    /// `since`; the stopped ones only with `all`, a `limit` or a `status` filter; at most `limit`.
    fn select<'a>(
        &self,
        sorted: &'a [Arc<Container>],
        all: bool,
        limit: i64,
    ) -> Vec<&'a Container> {
        let show_stopped = all || limit > 0 || !self.statuses.is_empty();
        let mut before_passed = self.before.is_none();
        let mut out = Vec::new();
        for c in sorted {
            if !before_passed {
                before_passed = self.before.as_deref() == Some(c.id.as_str());
                continue;
            }
            if self.since.as_deref() == Some(c.id.as_str()) {
                break;
            }
            if !show_stopped && !c.state.running() {
                continue;
            }
            if !self.matches(c) {
                continue;
            }
            out.push(&**c);
            if limit > 0 && out.len() as i64 >= limit {
                break;
            }
        }
        out
    }

    /// Whether `c` passes every filter: one of a filter's values must match (OR), and every
    /// filter must (AND); every label filter must hold.
    fn matches(&self, c: &Container) -> bool {
        let f = &self.f;
        let name_ok = self.names.is_empty()
            || self.names.iter().any(|(v, re)| {
                [c.name.as_str(), c.short_name()]
                    .iter()
                    .any(|n| v == n || re.as_ref().is_some_and(|re| re.is_match(n)))
            });
        let id_ok = f.ids.is_empty() || f.ids.iter().any(|v| c.id.starts_with(v.as_str()));
        let labels_ok = f.labels.iter().all(|l| match &l.value {
            Some(v) => c.spec.labels.get(&l.key) == Some(v),
            None => c.spec.labels.contains_key(&l.key),
        });
        let exited_ok = f.exited.is_empty()
            || (!c.state.running()
                && c.state.started_at > 0
                && f.exited.contains(&c.state.exit_code));
        let network_ok = f.networks.is_empty() || {
            let nets = networks(c);
            f.networks.iter().any(|v| nets.iter().any(|n| n == v))
        };
        let ancestor_ok = f.ancestors.is_empty()
            || f.ancestors
                .iter()
                .any(|v| image_matches(c, v, &self.ancestor_ids));
        let status_ok = self.statuses.is_empty() || self.statuses.contains(&c.state.shown());
        let health = c
            .state
            .health
            .as_ref()
            .map_or("none", |h| h.status.as_str());
        let health_ok = f.health.is_empty() || f.health.iter().any(|h| h == health);
        name_ok
            && id_ok
            && f.is_task.is_none_or(|t| !t)
            && labels_ok
            && exited_ok
            && status_ok
            && health_ok
            && (f.volumes.is_empty() || crate::mounts::uses_volume(c, &f.volumes))
            && ancestor_ok
            && network_ok
            && ports_match(&f.publish, published(c))
            && ports_match(&f.expose, exposed(c))
    }
}

/// The container ports with a host port published (while it runs), as `(port, protocol)`.
fn published(c: &Container) -> Vec<(u32, String)> {
    c.network
        .iter()
        .flat_map(|n| &n.ports)
        .map(|p| (p.container_port, p.protocol.clone()))
        .collect()
}

/// The exposed ports (`80/tcp`), as `(port, protocol)`.
fn exposed(c: &Container) -> Vec<(u32, String)> {
    c.spec
        .network
        .iter()
        .flat_map(|n| &n.exposed_ports)
        .filter_map(|e| {
            let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            Some((port.parse().ok()?, proto.to_owned()))
        })
        .collect()
}

/// moby's `publish`/`expose` filters: each value is `<port>[/<proto>]` or
/// `<first>-<last>[/<proto>]` (tcp by default); one match of any value is enough.
fn ports_match(values: &[String], ports: Vec<(u32, String)>) -> bool {
    values.is_empty()
        || values.iter().any(|v| {
            let (range, proto) = v.split_once('/').unwrap_or((v.as_str(), "tcp"));
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            let (Ok(first), Ok(last)) = (first.parse::<u32>(), last.parse::<u32>()) else {
                return false;
            };
            ports
                .iter()
                .any(|(p, pr)| pr == proto && (first..=last).contains(p))
        })
}

/// The container `before`/`since` name: full ID, name (with or without the slash), or unique
/// ID prefix; its ID.
fn lookup(all: &[Arc<Container>], value: &str) -> Result<String, ContainerError> {
    if let Some(c) = all.iter().find(|c| c.id == value) {
        return Ok(c.id.clone());
    }
    let name = value.trim_start_matches('/');
    if let Some(c) = all.iter().find(|c| c.short_name() == name) {
        return Ok(c.id.clone());
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut found = all.iter().filter(|c| c.id.starts_with(value));
        if let Some(c) = found.next() {
            if found.next().is_some() {
                return Err(ContainerError::invalid(format!(
                    "multiple IDs found with provided prefix: {value}"
                )));
            }
            return Ok(c.id.clone());
        }
    }
    Err(ContainerError::not_found(format!(
        "No such container: {value}"
    )))
}

/// The networks a container is on, by name: its list (its network mode's, and those
/// `docker network connect` added); none for `container:<id>`.
fn networks(c: &Container) -> Vec<String> {
    crate::connect::networks_of(&c.spec)
        .into_iter()
        .map(|e| e.network)
        .collect()
}

/// Whether `c` was created from the image `value` names: an ID the images service resolved it
/// to, the reference as the container was created with, the same reference normalized
/// (`busybox` is `docker.io/library/busybox:latest`), or the image ID or a prefix of it.
fn image_matches(c: &Container, value: &str, resolved: &BTreeSet<String>) -> bool {
    let id = bare_id(&c.image_id);
    if resolved.contains(id) || c.image() == value {
        return true;
    }
    let normalized = |r: &str| ImageRef::parse_docker_ref(r).ok().map(|r| r.to_string());
    if normalized(value).is_some_and(|v| Some(v) == normalized(c.image())) {
        return true;
    }
    let v = bare_id(value);
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()) && id.starts_with(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{State, Status, tests::sample};

    const IMG: &str = "sha256:b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

    /// A container record created `secs` after a fixed time.
    fn ctr(id_char: char, name: &str, secs: i64, status: Status) -> Container {
        let t = |s: i64| (1_700_000_000 + s) * 1_000_000_000;
        let mut c = sample(id_char, name);
        c.created = t(secs);
        c.image_id = IMG.to_owned();
        c.spec.network = Some(pb::NetworkSpec {
            mode: "bridge".to_owned(),
            ..Default::default()
        });
        c.state = State {
            status,
            started_at: if status == Status::Created {
                0
            } else {
                t(secs + 1)
            },
            ..State::default()
        };
        c
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// a: running "web" (label tier=front, healthy), b: exited 0 "db" (label tier=back,
    /// --network none, unhealthy), c: created "job" (from alpine), d: exited 3 "worker"
    /// (--network host); newest first: d, c, b, a.
    fn fixture() -> Vec<Arc<Container>> {
        let mut a = ctr('a', "web", 0, Status::Running);
        a.spec.labels = labels(&[("tier", "front"), ("app", "x")]);
        let mut b = ctr('b', "db", 10, Status::Exited);
        b.spec.labels = labels(&[("tier", "back")]);
        b.spec.network.as_mut().unwrap().mode = "none".to_owned();
        // a is healthy; b ran with a health check, which its stop left unhealthy.
        let mut h = crate::health::Health::starting(None);
        h.status = crate::health::HealthStatus::Healthy;
        a.state.health = Some(h.clone());
        h.stopped();
        b.state.health = Some(h);
        let mut c = ctr('c', "job", 20, Status::Created);
        c.spec.image = "alpine:3".to_owned();
        // Connected to backnet as well (docker network connect).
        c.spec.network.as_mut().unwrap().endpoints = ["bridge", "backnet"]
            .map(|n| pb::EndpointSpec {
                network: n.to_owned(),
                ..Default::default()
            })
            .to_vec();
        c.image_id = "sha256:a1".to_owned() + &"0".repeat(62);
        let mut d = ctr('d', "worker", 30, Status::Exited);
        d.state.exit_code = 3;
        d.spec.network.as_mut().unwrap().mode = "host".to_owned();
        let mut all: Vec<Arc<Container>> = [a, b, c, d].into_iter().map(Arc::new).collect();
        newest_first(&mut all);
        all
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The filters as the front end sends them: each key with its values.
    fn filters(pairs: &[(&str, &[&str])]) -> pb::ContainerFilters {
        let mut f = pb::ContainerFilters::default();
        for (key, values) in pairs {
            let v = strings(values);
            match *key {
                "id" => f.ids = v,
                "name" => f.names = v,
                "label" => {
                    f.labels = v
                        .iter()
                        .map(|l| match l.split_once('=') {
                            Some((k, val)) => pb::LabelFilter {
                                key: k.to_owned(),
                                value: Some(val.to_owned()),
                            },
                            None => pb::LabelFilter {
                                key: l.clone(),
                                value: None,
                            },
                        })
                        .collect()
                }
                "status" => {
                    f.statuses = v
                        .iter()
                        .map(|s| {
                            Status::from_str_name(&format!("STATUS_{}", s.to_uppercase())).unwrap()
                                as i32
                        })
                        .collect()
                }
                "exited" => f.exited = v.iter().map(|e| e.parse().unwrap()).collect(),
                "ancestor" => f.ancestors = v,
                "before" => f.before = v[0].clone(),
                "since" => f.since = v[0].clone(),
                "network" => f.networks = v,
                "volume" => f.volumes = v,
                "health" => f.health = v,
                "publish" => f.publish = v,
                "expose" => f.expose = v,
                "is-task" => f.is_task = Some(v[0] == "true"),
                other => panic!("no filter {other}"),
            }
        }
        f
    }

    /// The first letters of the IDs listed for `pairs` with `all` and `limit`.
    fn ps(pairs: &[(&str, &[&str])], all: bool, limit: i64) -> Result<String, ContainerError> {
        let cs = fixture();
        let f = PsFilter::new(filters(pairs), &cs)?;
        Ok(f.select(&cs, all, limit)
            .iter()
            .map(|c| c.id.chars().next().unwrap())
            .collect())
    }

    fn ok(pairs: &[(&str, &[&str])]) -> String {
        ps(pairs, true, 0).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
    }

    #[test]
    fn all_limit_and_order() {
        assert_eq!(ps(&[], false, 0).unwrap(), "a");
        assert_eq!(ps(&[], true, 0).unwrap(), "dcba");
        // A limit shows the stopped ones too, newest first.
        assert_eq!(ps(&[], false, 2).unwrap(), "dc");
        // So does a status filter; exited alone does not (moby).
        assert_eq!(ps(&[("status", &["exited"])], false, 0).unwrap(), "db");
        assert_eq!(ps(&[("exited", &["0"])], false, 0).unwrap(), "");
    }

    #[test]
    fn unknown_containers_in_before_are_not_found() {
        let e = ps(&[("before", &["nosuch"])], true, 0).unwrap_err();
        assert_eq!(e.to_string(), "No such container: nosuch");
        assert_eq!(
            berth_errors::HasKind::kind(&e),
            berth_types::ErrorKind::NotFound
        );
    }

    #[test]
    fn id_name_label() {
        assert_eq!(ok(&[("id", &["bbb"])]), "b");
        assert_eq!(ok(&[("id", &["b", "c"])]), "cb");
        assert_eq!(ok(&[("id", &["xbbb"])]), "");
        // Names: substring (a regexp search), with or without the slash, anchors work.
        assert_eq!(ok(&[("name", &["o"])]), "dc");
        assert_eq!(ok(&[("name", &["/web"])]), "a");
        assert_eq!(ok(&[("name", &["^w"])]), "da");
        assert_eq!(ok(&[("name", &["^/w.*r$"])]), "d");
        assert_eq!(ok(&[("name", &["web", "db"])]), "ba");
        // A value that is no regexp still matches exactly.
        assert_eq!(ok(&[("name", &["(web"])]), "");
        // Labels: key, key=value; all values must hold.
        assert_eq!(ok(&[("label", &["tier"])]), "ba");
        assert_eq!(ok(&[("label", &["tier=back"])]), "b");
        assert_eq!(ok(&[("label", &["tier=front", "app"])]), "a");
        assert_eq!(ok(&[("label", &["tier=front", "app=y"])]), "");
        // Keys AND together.
        assert_eq!(ok(&[("label", &["tier"]), ("name", &["db"])]), "b");
    }

    #[test]
    fn status_exited_health_task() {
        assert_eq!(ok(&[("status", &["running"])]), "a");
        assert_eq!(ok(&[("status", &["created", "running"])]), "ca");
        assert_eq!(ok(&[("status", &["paused"])]), "");
        assert_eq!(ok(&[("exited", &["0"])]), "b");
        assert_eq!(ok(&[("exited", &["3", "0"])]), "db");
        // Created, never started: no exit code to match.
        assert_eq!(ok(&[("exited", &["0"]), ("name", &["job"])]), "");
        assert_eq!(ok(&[("health", &["none"])]), "dc");
        assert_eq!(ok(&[("health", &["healthy"])]), "a");
        assert_eq!(ok(&[("health", &["unhealthy", "none"])]), "dcb");
        assert_eq!(ok(&[("health", &["starting"])]), "");
        assert_eq!(ok(&[("is-task", &["false"])]), "dcba");
        assert_eq!(ok(&[("is-task", &["true"])]), "");
    }

    #[test]
    fn before_and_since() {
        assert_eq!(ok(&[("before", &["job"])]), "ba");
        assert_eq!(ok(&[("before", &["/job"])]), "ba");
        assert_eq!(ok(&[("since", &["db"])]), "dc");
        let b = "b".repeat(64);
        assert_eq!(ok(&[("since", &[b.as_str()])]), "dc");
        assert_eq!(ok(&[("since", &["bbbb"]), ("before", &["d"])]), "c");
        // Without all, the stopped ones stay hidden.
        assert_eq!(ps(&[("since", &["web"])], false, 0).unwrap(), "");
    }

    #[test]
    fn ancestor_network_volume_ports() {
        assert_eq!(ok(&[("ancestor", &["busybox"])]), "dba");
        assert_eq!(ok(&[("ancestor", &["busybox:latest"])]), "dba");
        assert_eq!(
            ok(&[("ancestor", &["docker.io/library/busybox:latest"])]),
            "dba"
        );
        assert_eq!(ok(&[("ancestor", &[IMG])]), "dba");
        assert_eq!(ok(&[("ancestor", &["b0b0b0"])]), "dba");
        assert_eq!(ok(&[("ancestor", &["alpine:3"])]), "c");
        assert_eq!(ok(&[("ancestor", &["alpine"])]), "");
        assert_eq!(ok(&[("ancestor", &["alpine:3", "busybox"])]), "dcba");
        // An ID the images service resolved a name to.
        let cs = fixture();
        let mut f = PsFilter::new(filters(&[("ancestor", &["myalias"])]), &cs).unwrap();
        assert!(f.select(&cs, true, 0).is_empty());
        f.ancestor_ids.insert(bare_id(IMG).to_owned());
        assert_eq!(f.select(&cs, true, 0).len(), 3);

        assert_eq!(ok(&[("network", &["bridge"])]), "ca");
        assert_eq!(ok(&[("network", &["none", "host"])]), "db");
        assert_eq!(ok(&[("network", &["default"])]), "");
        assert_eq!(ok(&[("network", &["backnet"])]), "c");
        assert_eq!(ok(&[("volume", &["data"])]), "");
        assert_eq!(ok(&[("publish", &["80"])]), "");
        assert_eq!(ok(&[("expose", &["8000-8080/tcp"])]), "");

        // web exposes 80/tcp and 8053/udp and publishes 80.
        let mut cs = fixture();
        let web = Arc::make_mut(cs.iter_mut().find(|c| c.short_name() == "web").unwrap());
        web.spec.network.as_mut().unwrap().exposed_ports =
            vec!["80/tcp".to_owned(), "8053/udp".to_owned()];
        web.network = Some(pb::NetworkState {
            ports: vec![pb::PublishedPort {
                container_port: 80,
                protocol: "tcp".to_owned(),
                host_ip: "0.0.0.0".to_owned(),
                host_port: 18080,
            }],
            ..Default::default()
        });
        let n = |key: &str, v: &[&str]| {
            let f = PsFilter::new(filters(&[(key, v)]), &cs).unwrap();
            f.select(&cs, true, 0).len()
        };
        assert_eq!(n("publish", &["80"]), 1);
        assert_eq!(n("publish", &["80/udp"]), 0);
        assert_eq!(n("publish", &["8053/udp"]), 0);
        assert_eq!(n("expose", &["8000-8080/udp"]), 1);
        assert_eq!(n("expose", &["1-79", "81-90"]), 0);
    }
}

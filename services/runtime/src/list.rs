//! docker ps (moby's daemon/list.go): the filters, `all` and `limit`, the order, and the sizes
//! of the writable layers.

use std::collections::{BTreeSet, HashMap};

use berth_proto::{images::v1 as images, runtime::v1 as pb};
use berth_types::{Filters, ImageRef};
use futures::StreamExt;
use regex::Regex;
use serde_json::Value;

use crate::{
    container::{Container, Sizes, parse_nanos},
    container_error::ContainerError,
    lifecycle::Containers,
};

/// The filter keys GET /containers/json accepts (moby's acceptedPsFilterTags).
const ACCEPTED: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "is-task",
    "isolation",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// The states `status` may name (moby's ValidateContainerState), in moby's order.
const STATES: &[&str] = &[
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

/// The health states `health` may name. Berth runs no healthchecks: every container is "none".
const HEALTHS: &[&str] = &["none", "starting", "healthy", "unhealthy"];

/// How many containers' sizes are asked of the images service at once.
const SIZE_LOOKUPS: usize = 4;

impl Containers {
    /// GET /containers/json.
    pub(crate) async fn list(
        &self,
        req: &pb::ListRequest,
    ) -> Result<pb::JsonResponse, ContainerError> {
        let mut all = self.store.all()?;
        newest_first(&mut all);
        let mut filter = PsFilter::parse(&req.filters, &all)?;
        if filter.filters.contains("ancestor") {
            filter.ancestor_ids = self.resolve_images(filter.filters.values("ancestor")).await;
        }
        let chosen = filter.select(&all, req.all, req.limit);
        let mut sizes = if req.size {
            self.sizes(&chosen).await
        } else {
            HashMap::new()
        };
        let out: Vec<Value> = chosen
            .iter()
            .map(|c| c.summary(sizes.remove(&c.id)))
            .collect();
        Ok(pb::JsonResponse {
            json: Value::Array(out).to_string(),
        })
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
                Ok(r) => serde_json::from_str::<Value>(&r.into_inner().json)
                    .ok()
                    .and_then(|v| v["Size"].as_i64())
                    .unwrap_or(0),
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
    async fn rw_size(&self, id: String) -> i64 {
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
pub(crate) fn newest_first(all: &mut [Container]) {
    all.sort_by(|a, b| {
        let key = |c: &Container| parse_nanos(&c.created).unwrap_or(0);
        key(b).cmp(&key(a)).then_with(|| b.id.cmp(&a.id))
    });
}

/// An image ID without its `sha256:`.
fn bare_id(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// The `filters` of GET /containers/json, validated, with what they name looked up.
struct PsFilter {
    filters: Filters,
    /// The `name` values, each with its regexp when it compiles (moby's `Match`).
    names: Vec<(String, Option<Regex>)>,
    /// The `exited` codes.
    exited: Vec<i64>,
    /// The `is-task` value. No Berth container is a swarm task.
    is_task: Option<bool>,
    /// The container `before` names: only those created before it are listed.
    before: Option<String>,
    /// The container `since` names: only those created after it are listed.
    since: Option<String>,
    /// The image IDs (without `sha256:`) the `ancestor` values resolve to.
    ancestor_ids: BTreeSet<String>,
    /// Whether `publish` or `expose` name a port.
    ports: bool,
}

impl PsFilter {
    /// Validates `text` (moby's foldFilter); `all` resolves `before` and `since`.
    fn parse(text: &str, all: &[Container]) -> Result<PsFilter, ContainerError> {
        let invalid = |message: String| ContainerError::invalid(message);
        let filters = Filters::parse(text).map_err(|e| invalid(e.message))?;
        filters.validate(ACCEPTED).map_err(|e| invalid(e.message))?;

        let exited = filters
            .values("exited")
            .map(|v| {
                v.parse::<i64>().map_err(|e| {
                    let why = match e.kind() {
                        std::num::IntErrorKind::PosOverflow
                        | std::num::IntErrorKind::NegOverflow => "value out of range",
                        _ => "invalid syntax",
                    };
                    invalid(format!(
                        "invalid filter 'exited={v}': strconv.Atoi: parsing {v:?}: {why}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for v in filters.values("status") {
            if !STATES.contains(&v) {
                return Err(invalid(format!(
                    "invalid filter 'status={v}': invalid value for state ({v}): must be one of {}",
                    STATES.join(", ")
                )));
            }
        }
        let is_task = bool_filter(&filters, "is-task")?;
        for v in filters.values("health") {
            if !HEALTHS.contains(&v) {
                return Err(invalid(format!(
                    "invalid filter 'health={v}': invalid value for health ({v}): must be one of {}",
                    HEALTHS.join(", ")
                )));
            }
        }
        let before = filters
            .values("before")
            .map(|v| lookup(all, v))
            .collect::<Result<Vec<_>, _>>()?
            .pop();
        let since = filters
            .values("since")
            .map(|v| lookup(all, v))
            .collect::<Result<Vec<_>, _>>()?
            .pop();
        for key in ["publish", "expose"] {
            for v in filters.values(key) {
                check_port_range(key, v).map_err(invalid)?;
            }
        }
        let ports =
            filters.values("publish").next().is_some() || filters.values("expose").next().is_some();
        let names = filters
            .values("name")
            .map(|v| (v.to_owned(), Regex::new(v).ok()))
            .collect();
        Ok(PsFilter {
            filters,
            names,
            exited,
            is_task,
            before,
            since,
            ancestor_ids: BTreeSet::new(),
            ports,
        })
    }

    /// The containers to list, from `sorted` (newest first): those after `before` and ahead of
    /// `since`; the stopped ones only with `all`, a `limit` or a `status` filter; at most `limit`.
    fn select<'a>(&self, sorted: &'a [Container], all: bool, limit: i64) -> Vec<&'a Container> {
        let show_stopped = all || limit > 0 || self.filters.values("status").next().is_some();
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
            out.push(c);
            if limit > 0 && out.len() as i64 >= limit {
                break;
            }
        }
        out
    }

    /// Whether `c` passes every filter key: one of a key's values must match (OR), and every
    /// key must (AND).
    fn matches(&self, c: &Container) -> bool {
        let f = &self.filters;
        let name_ok = self.names.is_empty()
            || self.names.iter().any(|(v, re)| {
                [c.name.as_str(), c.short_name()]
                    .iter()
                    .any(|n| v == n || re.as_ref().is_some_and(|re| re.is_match(n)))
            });
        let exited_ok = self.exited.is_empty()
            || (!c.state.running()
                && parse_nanos(&c.state.started_at).is_some()
                && self.exited.contains(&c.state.exit_code));
        let network_ok = !f.contains("network") || {
            let nets = networks(c);
            f.values("network").any(|v| nets.iter().any(|n| n == v))
        };
        let ancestor_ok = !f.contains("ancestor")
            || f.values("ancestor")
                .any(|v| image_matches(c, v, &self.ancestor_ids));
        name_ok
            && f.fuzzy_match("id", &c.id)
            && self.is_task.is_none_or(|t| !t)
            && f.match_kv_list("label", &c.labels())
            && exited_ok
            && f.exact_match("status", c.state.status.as_str())
            && f.exact_match("health", "none")
            // Berth mounts no volumes yet (the summaries' Mounts are empty): none can match.
            && !f.contains("volume")
            && ancestor_ok
            && network_ok
            // Nor does it publish or expose ports yet (the summaries' Ports are empty).
            && !self.ports
    }
}

/// moby's `GetBoolOrDefault`: absent is None; no value, or neither or both of true/false, is
/// an error.
fn bool_filter(f: &Filters, key: &str) -> Result<Option<bool>, ContainerError> {
    if !f.contains(key) {
        return Ok(None);
    }
    let values: Vec<&str> = f.values(key).collect();
    if values.is_empty() {
        return Err(ContainerError::invalid(format!("invalid filter '{key}'")));
    }
    let is_false = values.iter().any(|v| matches!(*v, "0" | "false"));
    let is_true = values.iter().any(|v| matches!(*v, "1" | "true"));
    if is_false == is_true {
        return Err(ContainerError::invalid(format!(
            "invalid filter '{key}=[{}]'",
            values.join(" ")
        )));
    }
    Ok(Some(is_true))
}

/// The container `before`/`since` name: full ID, name (with or without the slash), or unique
/// ID prefix; its ID.
fn lookup(all: &[Container], value: &str) -> Result<String, ContainerError> {
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

/// moby's port filter values: `<port>[/<proto>]` or `<start>-<end>[/<proto>]`.
fn check_port_range(key: &str, value: &str) -> Result<(), String> {
    if value.contains(':') {
        return Err(format!(
            "filter for '{key}' should not contain ':': {value}"
        ));
    }
    let bad = |why: String| format!("error while looking up for {key} {value}: {why}");
    if value.is_empty() {
        return Err(bad("invalid port range: value is empty".to_owned()));
    }
    let range = value.split_once('/').map_or(value, |(r, _)| r);
    let port = |p: &str, which: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(format!("invalid {which} port '{p}': invalid syntax")))
    };
    match range.split_once('-') {
        None => port(range, "start").map(|_| ()),
        Some((start, end)) => {
            let s = port(start, "start")?;
            let e = port(end, "end")?;
            if e < s {
                return Err(bad(format!("invalid port range: {value}")));
            }
            Ok(())
        }
    }
}

/// The networks a container is on, by name: its network mode's (`default` is Docker's
/// `bridge`); none for `container:<id>`.
fn networks(c: &Container) -> Vec<String> {
    match c.network_mode().as_str() {
        "default" => vec!["bridge".to_owned()],
        m if m.starts_with("container:") => Vec::new(),
        m => vec![m.to_owned()],
    }
}

/// Whether `c` was created from the image `value` names: an ID the images service resolved it
/// to, the reference as the container was created with, the same reference normalized
/// (`busybox` is `docker.io/library/busybox:latest`), or the image ID or a prefix of it.
fn image_matches(c: &Container, value: &str, resolved: &BTreeSet<String>) -> bool {
    let id = bare_id(&c.image_id);
    if resolved.contains(id) || c.image == value {
        return true;
    }
    let normalized = |r: &str| ImageRef::parse_docker_ref(r).ok().map(|r| r.to_string());
    if normalized(value).is_some_and(|v| Some(v) == normalized(&c.image)) {
        return true;
    }
    let v = bare_id(value);
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()) && id.starts_with(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::container::{State, Status, ZERO_TIME};

    const IMG: &str = "sha256:b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

    /// A container record created `secs` after a fixed time.
    fn ctr(id_char: char, name: &str, secs: i64, status: Status) -> Container {
        let t = |s: i64| {
            time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + s)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let started = status != Status::Created;
        Container {
            id: id_char.to_string().repeat(64),
            name: format!("/{name}"),
            created: t(secs),
            path: "sh".to_owned(),
            args: Vec::new(),
            config: json!({"Labels": {}}),
            host_config: json!({"NetworkMode": "default"}),
            image: "busybox".to_owned(),
            image_id: IMG.to_owned(),
            rootfs: Value::Null,
            state: State {
                status,
                started_at: if started {
                    t(secs + 1)
                } else {
                    ZERO_TIME.to_owned()
                },
                ..State::default()
            },
            restart_count: 0,
        }
    }

    /// a: running "web" (label tier=front), b: exited 0 "db" (label tier=back, --network
    /// none), c: created "job" (from alpine), d: exited 3 "worker" (--network host); newest
    /// first: d, c, b, a.
    fn fixture() -> Vec<Container> {
        let mut a = ctr('a', "web", 0, Status::Running);
        a.config["Labels"] = json!({"tier": "front", "app": "x"});
        let mut b = ctr('b', "db", 10, Status::Exited);
        b.config["Labels"] = json!({"tier": "back"});
        b.host_config["NetworkMode"] = "none".into();
        let mut c = ctr('c', "job", 20, Status::Created);
        c.image = "alpine:3".to_owned();
        c.image_id = "sha256:a1".to_owned() + &"0".repeat(62);
        let mut d = ctr('d', "worker", 30, Status::Exited);
        d.state.exit_code = 3;
        d.host_config["NetworkMode"] = "host".into();
        let mut all = vec![a, b, c, d];
        newest_first(&mut all);
        all
    }

    /// The first letters of the IDs listed for `filters` (JSON) with `all`.
    fn ps(filters: &str, all: bool, limit: i64) -> Result<String, ContainerError> {
        let cs = fixture();
        let f = PsFilter::parse(filters, &cs)?;
        Ok(f.select(&cs, all, limit)
            .iter()
            .map(|c| c.id.chars().next().unwrap())
            .collect())
    }

    fn ok(filters: &str) -> String {
        ps(filters, true, 0).unwrap_or_else(|e| panic!("{filters}: {e}"))
    }

    fn err(filters: &str) -> String {
        match ps(filters, true, 0) {
            Ok(ids) => panic!("{filters} should fail, listed {ids}"),
            Err(e) => {
                assert_eq!(
                    berth_errors::HasKind::kind(&e),
                    berth_types::ErrorKind::InvalidArgument,
                    "{e}"
                );
                e.to_string()
            }
        }
    }

    #[test]
    fn all_limit_and_order() {
        assert_eq!(ps("", false, 0).unwrap(), "a");
        assert_eq!(ps("", true, 0).unwrap(), "dcba");
        // A limit shows the stopped ones too, newest first.
        assert_eq!(ps("", false, 2).unwrap(), "dc");
        // So does a status filter; exited alone does not (moby).
        assert_eq!(ps(r#"{"status":["exited"]}"#, false, 0).unwrap(), "db");
        assert_eq!(ps(r#"{"exited":["0"]}"#, false, 0).unwrap(), "");
    }

    #[test]
    fn keys_are_validated() {
        assert_eq!(err(r#"{"xyz":["1"]}"#), "invalid filter 'xyz'");
        assert_eq!(
            err(r#"{"status":["xyz"]}"#),
            "invalid filter 'status=xyz': invalid value for state (xyz): must be one of created, running, paused, restarting, removing, exited, dead"
        );
        assert_eq!(
            err(r#"{"health":["sick"]}"#),
            "invalid filter 'health=sick': invalid value for health (sick): must be one of none, starting, healthy, unhealthy"
        );
        assert_eq!(
            err(r#"{"exited":["x"]}"#),
            r#"invalid filter 'exited=x': strconv.Atoi: parsing "x": invalid syntax"#
        );
        assert_eq!(
            err(r#"{"is-task":["maybe"]}"#),
            "invalid filter 'is-task=[maybe]'"
        );
        assert_eq!(
            err(r#"{"publish":["80:80"]}"#),
            "filter for 'publish' should not contain ':': 80:80"
        );
        assert!(err(r#"{"expose":["http"]}"#).starts_with("error while looking up for expose"));
        assert!(err("[1]").starts_with("invalid filter"));
        let e = ps(r#"{"before":["nosuch"]}"#, true, 0).unwrap_err();
        assert_eq!(e.to_string(), "No such container: nosuch");
        assert_eq!(
            berth_errors::HasKind::kind(&e),
            berth_types::ErrorKind::NotFound
        );
    }

    #[test]
    fn id_name_label() {
        assert_eq!(ok(r#"{"id":["bbb"]}"#), "b");
        assert_eq!(ok(r#"{"id":["b","c"]}"#), "cb");
        assert_eq!(ok(r#"{"id":["xbbb"]}"#), "");
        // Names: substring (a regexp search), with or without the slash, anchors work.
        assert_eq!(ok(r#"{"name":["o"]}"#), "dc");
        assert_eq!(ok(r#"{"name":["/web"]}"#), "a");
        assert_eq!(ok(r#"{"name":["^w"]}"#), "da");
        assert_eq!(ok(r#"{"name":["^/w.*r$"]}"#), "d");
        assert_eq!(ok(r#"{"name":["web","db"]}"#), "ba");
        // A value that is no regexp still matches exactly.
        assert_eq!(ok(r#"{"name":["(web"]}"#), "");
        // Labels: key, key=value; all values must hold.
        assert_eq!(ok(r#"{"label":["tier"]}"#), "ba");
        assert_eq!(ok(r#"{"label":["tier=back"]}"#), "b");
        assert_eq!(ok(r#"{"label":["tier=front","app"]}"#), "a");
        assert_eq!(ok(r#"{"label":["tier=front","app=y"]}"#), "");
        // Keys AND together.
        assert_eq!(ok(r#"{"label":["tier"],"name":["db"]}"#), "b");
        // The legacy map-of-bool form.
        assert_eq!(ok(r#"{"name":{"web":true}}"#), "a");
    }

    #[test]
    fn status_exited_health_task() {
        assert_eq!(ok(r#"{"status":["running"]}"#), "a");
        assert_eq!(ok(r#"{"status":["created","running"]}"#), "ca");
        assert_eq!(ok(r#"{"status":["paused"]}"#), "");
        assert_eq!(ok(r#"{"exited":["0"]}"#), "b");
        assert_eq!(ok(r#"{"exited":["3","0"]}"#), "db");
        // Created, never started: no exit code to match.
        assert_eq!(ok(r#"{"exited":["0"],"name":["job"]}"#), "");
        assert_eq!(ok(r#"{"health":["none"]}"#), "dcba");
        assert_eq!(ok(r#"{"health":["healthy"]}"#), "");
        assert_eq!(ok(r#"{"is-task":["false"]}"#), "dcba");
        assert_eq!(ok(r#"{"is-task":["true"]}"#), "");
    }

    #[test]
    fn before_and_since() {
        assert_eq!(ok(r#"{"before":["job"]}"#), "ba");
        assert_eq!(ok(r#"{"before":["/job"]}"#), "ba");
        assert_eq!(ok(r#"{"since":["db"]}"#), "dc");
        assert_eq!(ok(&format!(r#"{{"since":["{}"]}}"#, "b".repeat(64))), "dc");
        assert_eq!(ok(r#"{"since":["bbbb"],"before":["d"]}"#), "c");
        // Without all, the stopped ones stay hidden.
        assert_eq!(ps(r#"{"since":["web"]}"#, false, 0).unwrap(), "");
    }

    #[test]
    fn ancestor_network_volume_ports() {
        assert_eq!(ok(r#"{"ancestor":["busybox"]}"#), "dba");
        assert_eq!(ok(r#"{"ancestor":["busybox:latest"]}"#), "dba");
        assert_eq!(
            ok(r#"{"ancestor":["docker.io/library/busybox:latest"]}"#),
            "dba"
        );
        assert_eq!(ok(&format!(r#"{{"ancestor":["{IMG}"]}}"#)), "dba");
        assert_eq!(ok(r#"{"ancestor":["b0b0b0"]}"#), "dba");
        assert_eq!(ok(r#"{"ancestor":["alpine:3"]}"#), "c");
        assert_eq!(ok(r#"{"ancestor":["alpine"]}"#), "");
        assert_eq!(ok(r#"{"ancestor":["alpine:3","busybox"]}"#), "dcba");
        // An ID the images service resolved a name to.
        let cs = fixture();
        let mut f = PsFilter::parse(r#"{"ancestor":["myalias"]}"#, &cs).unwrap();
        assert!(f.select(&cs, true, 0).is_empty());
        f.ancestor_ids.insert(bare_id(IMG).to_owned());
        assert_eq!(f.select(&cs, true, 0).len(), 3);

        assert_eq!(ok(r#"{"network":["bridge"]}"#), "ca");
        assert_eq!(ok(r#"{"network":["none","host"]}"#), "db");
        assert_eq!(ok(r#"{"network":["default"]}"#), "");
        assert_eq!(ok(r#"{"volume":["data"]}"#), "");
        assert_eq!(ok(r#"{"publish":["80"]}"#), "");
        assert_eq!(ok(r#"{"expose":["8000-8080/tcp"]}"#), "");
        assert_eq!(ok(r#"{"publish":[]}"#), "dcba");
        assert_eq!(ok(r#"{"isolation":["default"]}"#), "dcba");
    }
}

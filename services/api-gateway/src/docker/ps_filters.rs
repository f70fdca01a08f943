//! The `filters` of `GET /containers/json` (moby's foldFilter and its checks) and of
//! `POST /containers/prune`, validated and turned into the runtime's typed filters. Docker's
//! error messages are kept word for word.

use berth_proto::runtime::v1 as pb;
use berth_types::Filters;

use crate::error::ApiError;

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

/// The filter keys POST /containers/prune accepts (moby's containersAcceptedFilters).
const PRUNE_ACCEPTED: &[&str] = &["label", "label!", "until"];

/// The health states `health` may name.
const HEALTHS: &[&str] = &["none", "starting", "healthy", "unhealthy"];

fn invalid(message: String) -> ApiError {
    ApiError::invalid(message)
}

fn strings(f: &Filters, key: &str) -> Vec<String> {
    f.values(key).map(str::to_owned).collect::<Vec<_>>()
}

/// The typed filters for the query's `filters` text.
pub fn parse(text: &str) -> Result<pb::ContainerFilters, ApiError> {
    let f = Filters::parse(text)?;
    f.validate(ACCEPTED)?;
    let exited =
        f.values("exited")
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
    let statuses = f
        .values("status")
        .map(|v| {
            pb::container_state::Status::from_str_name(&format!("STATUS_{}", v.to_uppercase()))
                .filter(|_| STATES.contains(&v))
                .map(|s| s as i32)
                .ok_or_else(|| {
                    invalid(format!(
                        "invalid filter 'status={v}': invalid value for state ({v}): must be one of {}",
                        STATES.join(", ")
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for v in f.values("health") {
        if !HEALTHS.contains(&v) {
            return Err(invalid(format!(
                "invalid filter 'health={v}': invalid value for health ({v}): must be one of {}",
                HEALTHS.join(", ")
            )));
        }
    }
    let is_task = bool_filter(&f, "is-task")?;
    for key in ["publish", "expose"] {
        for v in f.values(key) {
            check_port_range(key, v).map_err(invalid)?;
        }
    }
    let labels = label_filters(&f, "label");
    Ok(pb::ContainerFilters {
        ids: strings(&f, "id"),
        names: strings(&f, "name"),
        labels,
        statuses,
        exited,
        ancestors: strings(&f, "ancestor"),
        // moby keeps the last value of each.
        before: f.values("before").last().unwrap_or_default().to_owned(),
        since: f.values("since").last().unwrap_or_default().to_owned(),
        networks: strings(&f, "network"),
        volumes: strings(&f, "volume"),
        health: strings(&f, "health"),
        publish: strings(&f, "publish"),
        expose: strings(&f, "expose"),
        is_task,
        isolation: strings(&f, "isolation"),
    })
}

fn label_filters(f: &Filters, key: &str) -> Vec<pb::LabelFilter> {
    f.values(key)
        .map(|l| {
            let (key, value) = super::split_label(l);
            pb::LabelFilter { key, value }
        })
        .collect()
}

/// The typed filters of `POST /containers/prune` (`now`: seconds since the epoch, for an
/// `until` given as a duration).
pub fn prune(text: &str, now: i64) -> Result<pb::PruneRequest, ApiError> {
    let f = Filters::parse(text)?;
    f.validate(PRUNE_ACCEPTED)?;
    let until: Vec<&str> = f.values("until").collect();
    if until.len() > 1 {
        return Err(invalid("more than one until filter specified".to_owned()));
    }
    Ok(pb::PruneRequest {
        labels: label_filters(&f, "label"),
        labels_not: label_filters(&f, "label!"),
        until: until
            .first()
            .map(|v| crate::docker::image_filters::parse_until(v, now))
            .transpose()?,
    })
}

/// moby's `GetBoolOrDefault`: absent is None; no value, or neither or both of true/false, is
/// an error.
fn bool_filter(f: &Filters, key: &str) -> Result<Option<bool>, ApiError> {
    if !f.contains(key) {
        return Ok(None);
    }
    let values: Vec<&str> = f.values(key).collect();
    if values.is_empty() {
        return Err(invalid(format!("invalid filter '{key}'")));
    }
    let is_false = values.iter().any(|v| matches!(*v, "0" | "false"));
    let is_true = values.iter().any(|v| matches!(*v, "1" | "true"));
    if is_false == is_true {
        return Err(invalid(format!(
            "invalid filter '{key}=[{}]'",
            values.join(" ")
        )));
    }
    Ok(Some(is_true))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(filters: &str) -> String {
        parse(filters).expect_err(filters).message
    }

    #[test]
    fn keys_and_values_are_validated_as_moby_does() {
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
    }

    #[test]
    fn both_encodings_become_typed_filters() {
        assert_eq!(parse(r#"{"name":{"web":true}}"#).unwrap().names, ["web"]);
        let f = parse(r#"{"name":["web"],"label":["a","b=c"],"status":["running","exited"],"exited":["3"],"before":["x"],"is-task":["false"]}"#).unwrap();
        assert_eq!(f.names, ["web"]);
        assert_eq!(f.labels.len(), 2);
        assert_eq!(f.labels[1].value.as_deref(), Some("c"));
        assert_eq!(
            f.statuses,
            [
                pb::container_state::Status::Exited as i32,
                pb::container_state::Status::Running as i32
            ]
        );
        assert_eq!(f.exited, [3]);
        assert_eq!(f.before, "x");
        assert_eq!(f.is_task, Some(false));
        assert_eq!(parse("").unwrap(), pb::ContainerFilters::default());
    }

    #[test]
    fn prune_filters_as_moby_takes_them() {
        let p = prune(r#"{"label":["a=b"],"label!":["k"],"until":["100"]}"#, 1000).unwrap();
        assert_eq!(p.labels[0].key, "a");
        assert_eq!(p.labels[0].value.as_deref(), Some("b"));
        assert_eq!(
            (p.labels_not[0].key.as_str(), p.labels_not[0].value.as_ref()),
            ("k", None)
        );
        assert_eq!(p.until, Some(100));
        assert_eq!(
            prune(r#"{"until":["10m"]}"#, 1000).unwrap().until,
            Some(400)
        );
        assert_eq!(prune("", 0).unwrap(), pb::PruneRequest::default());
        let e = |t: &str| prune(t, 0).unwrap_err().message;
        assert_eq!(e(r#"{"status":["exited"]}"#), "invalid filter 'status'");
        assert_eq!(
            e(r#"{"until":["1","2"]}"#),
            "more than one until filter specified"
        );
        assert!(e(r#"{"until":["soon"]}"#).contains("failed to parse value as time or duration"));
    }
}

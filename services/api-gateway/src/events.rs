//! `GET /events`: which stored events a request wants (moby's daemon/events/filter.go), and the
//! `since`/`until` timestamps.

use berth_types::{Event, EventType};

use berth_types::Filters;

use crate::error::ApiError;

/// Filter keys `/events` accepts.
pub const ACCEPTED_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// The one parser of API timestamps.
pub use crate::docker::timestamp::parse as parse_timestamp;

/// What a `/events` request selects.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub since: Option<i128>,
    pub until: Option<i128>,
    pub filters: Filters,
}

impl EventQuery {
    pub fn new(
        since: Option<&str>,
        until: Option<&str>,
        filters: Option<&str>,
    ) -> Result<EventQuery, ApiError> {
        let parse = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(parse_timestamp).transpose();
        let since = parse(since)?;
        let until = parse(until)?;
        if let (Some(s), Some(u)) = (since, until)
            && s > u
        {
            return Err(ApiError::invalid(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                fmt_ts(s),
                fmt_ts(u)
            )));
        }
        let filters = Filters::parse(filters.unwrap_or_default()).map_err(ApiError::from)?;
        filters.validate(ACCEPTED_FILTERS).map_err(ApiError::from)?;
        for t in filters.values("type") {
            if t.parse::<EventType>().is_err() {
                return Err(ApiError::invalid(format!("invalid filter 'type={t}'")));
            }
        }
        Ok(EventQuery {
            since,
            until,
            filters,
        })
    }

    /// Whether `ev` falls in the time window and passes the filters.
    pub fn wants(&self, ev: &Event) -> bool {
        let t = i128::from(ev.time_nano);
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
            return false;
        }
        include(&self.filters, ev)
    }
}

fn fmt_ts(nanos: i128) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

/// moby's `Filter.Include`.
fn include(f: &Filters, ev: &Event) -> bool {
    let attrs = &ev.actor.attributes;
    let name = attrs.get("name").map(String::as_str).unwrap_or_default();
    let id = ev.actor.id.as_str();
    // Actor filters apply to every event: `container=x` keeps only x's events.
    let fuzzy_name = |key: &str| f.fuzzy_match(key, id) || f.fuzzy_match(key, name);
    let action = ev.action.as_str();
    let event_ok = if ["health_status", "exec_create", "exec_start"]
        .iter()
        .any(|k| f.values("event").any(|v| v == *k))
    {
        f.fuzzy_match("event", action)
    } else {
        f.exact_match("event", action)
    };
    event_ok
        && f.exact_match("type", ev.kind.as_str())
        && (!f.contains("scope") || f.exact_match("scope", &ev.scope))
        && [
            "daemon",
            "container",
            "plugin",
            "volume",
            "network",
            "node",
            "service",
            "secret",
            "config",
        ]
        .iter()
        .all(|k| fuzzy_name(k))
        && match_image(f, ev)
        && f.match_kv_list("label", attrs)
}

fn strip_tag(image: &str) -> &str {
    // `repo:tag` → `repo`, but not a registry port (`host:5000/repo`) or a digest.
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') && !image[..i].ends_with("@sha256") => &image[..i],
        _ => image,
    }
}

fn match_image(f: &Filters, ev: &Event) -> bool {
    let id = ev.actor.id.as_str();
    let attr = if ev.kind == EventType::Image {
        "name"
    } else {
        "image"
    };
    let name = ev
        .actor
        .attributes
        .get(attr)
        .map(String::as_str)
        .unwrap_or_default();
    if !f.contains("image") {
        return true;
    }
    [id, name, strip_tag(id), strip_tag(name)]
        .iter()
        .any(|s| f.values("image").any(|v| v == *s))
}

#[cfg(test)]
mod tests {
    use berth_types::Actor;

    use super::*;

    fn ev(kind: EventType, action: &str, id: &str, attrs: &[(&str, &str)], t: i64) -> Event {
        Event::new(
            kind,
            action.parse().unwrap(),
            Actor {
                id: id.to_owned(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            t,
        )
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("1717000000").unwrap(),
            1_717_000_000_000_000_000
        );
        assert_eq!(
            parse_timestamp("1717000000.5").unwrap(),
            1_717_000_000_500_000_000
        );
        assert_eq!(
            parse_timestamp("1717000000.000000001").unwrap(),
            1_717_000_000_000_000_001
        );
        assert!(parse_timestamp("10m").is_err());
        assert!(parse_timestamp("2024-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn since_after_until_is_rejected() {
        let e = EventQuery::new(Some("20"), Some("10"), None).unwrap_err();
        assert!(e.message.contains("cannot be after"), "{}", e.message);
        assert!(EventQuery::new(None, None, Some(r#"{"colour":["x"]}"#)).is_err());
        assert!(EventQuery::new(None, None, Some(r#"{"type":["bogus"]}"#)).is_err());
    }

    #[test]
    fn filter_table() {
        let c = ev(
            EventType::Container,
            "start",
            "abc123",
            &[
                ("name", "web"),
                ("image", "busybox:latest"),
                ("tier", "front"),
            ],
            100,
        );
        let i = ev(
            EventType::Image,
            "pull",
            "busybox:latest",
            &[("name", "busybox")],
            100,
        );
        let d = ev(EventType::Daemon, "reload", "e1", &[("name", "host")], 100);
        let x = ev(
            EventType::Container,
            "exec_create: ls -l",
            "abc123",
            &[("name", "web")],
            100,
        );
        let cases: [(&str, &Event, bool); 14] = [
            (r#"{}"#, &c, true),
            (r#"{"type":["container"]}"#, &c, true),
            (r#"{"type":["image"]}"#, &c, false),
            (r#"{"container":["web"]}"#, &c, true),
            (r#"{"container":["abc"]}"#, &c, true),
            (r#"{"container":["web"]}"#, &i, false),
            (r#"{"event":["start"]}"#, &c, true),
            (r#"{"event":["die"]}"#, &c, false),
            (r#"{"event":["exec_create"]}"#, &x, true),
            (r#"{"image":["busybox"]}"#, &c, true),
            (r#"{"image":["busybox"]}"#, &i, true),
            (r#"{"label":["tier=front"]}"#, &c, true),
            (r#"{"label":["tier=back"]}"#, &c, false),
            (r#"{"daemon":["e1"],"type":["daemon"]}"#, &d, true),
        ];
        for (filters, event, want) in cases {
            let q = EventQuery::new(None, None, Some(filters)).unwrap();
            assert_eq!(
                q.wants(event),
                want,
                "{filters} on {} {}",
                event.kind,
                event.action
            );
        }
    }

    #[test]
    fn time_window() {
        let q = EventQuery::new(Some("1"), Some("2"), None).unwrap();
        assert!(q.wants(&ev(EventType::Daemon, "reload", "e", &[], 1_500_000_000)));
        assert!(!q.wants(&ev(EventType::Daemon, "reload", "e", &[], 2_000_000_001)));
        assert!(!q.wants(&ev(EventType::Daemon, "reload", "e", &[], 999_999_999)));
    }

    #[test]
    fn strips_tags_not_ports() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(
            strip_tag("localhost:5000/busybox"),
            "localhost:5000/busybox"
        );
        assert_eq!(
            strip_tag("localhost:5000/busybox:1"),
            "localhost:5000/busybox"
        );
    }
}

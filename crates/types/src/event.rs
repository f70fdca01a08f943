//! The Docker event message (`GET /events`), exactly as moby writes it. Services publish these
//! on NATS and the gateway streams them to clients unchanged.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::id::InvalidId;

/// The object an event is about (`Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Container,
    Image,
    Volume,
    Network,
    Daemon,
    Plugin,
    Builder,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::Container,
        EventType::Image,
        EventType::Volume,
        EventType::Network,
        EventType::Daemon,
        EventType::Plugin,
        EventType::Builder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
            EventType::Volume => "volume",
            EventType::Network => "network",
            EventType::Daemon => "daemon",
            EventType::Plugin => "plugin",
            EventType::Builder => "builder",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| InvalidId {
                what: "event type",
                value: s.to_owned(),
            })
    }
}

/// An event's `Action`. Most are one word (`start`); a few carry details after a colon
/// (`exec_create: ls -l`, `health_status: healthy`). The part before the colon is the base.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventAction(String);

impl EventAction {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `exec_create: ls` → `exec_create`. This is the last token of the NATS subject.
    pub fn base(&self) -> &str {
        self.0.split(':').next().unwrap_or_default()
    }
}

impl FromStr for EventAction {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let action = EventAction(s.to_owned());
        let base = action.base();
        if !base.is_empty()
            && base
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-')
        {
            Ok(action)
        } else {
            Err(InvalidId {
                what: "event action",
                value: s.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for EventAction {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EventAction> for String {
    fn from(a: EventAction) -> String {
        a.0
    }
}

impl fmt::Display for EventAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Actor`: the object's ID and its attributes (labels, name, exitCode, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, in the JSON shape of moby's `events.Message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Deprecated mirror of `Action`, written for container and image events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Deprecated mirror of `Actor.ID`, written for container and image events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Deprecated: the container's image, on container events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: EventType,
    #[serde(rename = "Action")]
    pub action: EventAction,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// Builds an event stamped with `time_nano` (nanoseconds since the epoch), filling the
    /// deprecated fields the way moby does.
    pub fn new(kind: EventType, action: EventAction, actor: Actor, time_nano: i64) -> Event {
        let legacy = matches!(kind, EventType::Container | EventType::Image);
        let from = (kind == EventType::Container)
            .then(|| actor.attributes.get("image").cloned())
            .flatten();
        Event {
            status: legacy.then(|| action.as_str().to_owned()),
            id: legacy.then(|| actor.id.clone()),
            from,
            kind,
            action,
            actor,
            scope: "local".to_owned(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(id: &str, attrs: &[(&str, &str)]) -> Actor {
        Actor {
            id: id.to_owned(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn json_shape_matches_moby() {
        let cases: [(EventType, &str, Actor, serde_json::Value); 3] = [
            (
                EventType::Container,
                "die",
                actor("abc", &[("image", "busybox"), ("exitCode", "0")]),
                serde_json::json!({
                    "status": "die", "id": "abc", "from": "busybox",
                    "Type": "container", "Action": "die",
                    "Actor": {"ID": "abc", "Attributes": {"image": "busybox", "exitCode": "0"}},
                    "scope": "local", "time": 1_717_000_000, "timeNano": 1_717_000_000_123_456_789_i64
                }),
            ),
            (
                EventType::Image,
                "pull",
                actor("busybox:latest", &[("name", "busybox")]),
                serde_json::json!({
                    "status": "pull", "id": "busybox:latest",
                    "Type": "image", "Action": "pull",
                    "Actor": {"ID": "busybox:latest", "Attributes": {"name": "busybox"}},
                    "scope": "local", "time": 1_717_000_000, "timeNano": 1_717_000_000_123_456_789_i64
                }),
            ),
            (
                EventType::Daemon,
                "reload",
                actor("e-1", &[("name", "host")]),
                serde_json::json!({
                    "Type": "daemon", "Action": "reload",
                    "Actor": {"ID": "e-1", "Attributes": {"name": "host"}},
                    "scope": "local", "time": 1_717_000_000, "timeNano": 1_717_000_000_123_456_789_i64
                }),
            ),
        ];
        for (kind, action, actor, want) in cases {
            let ev = Event::new(
                kind,
                action.parse().unwrap(),
                actor,
                1_717_000_000_123_456_789,
            );
            assert_eq!(serde_json::to_value(&ev).unwrap(), want);
            let back: Event = serde_json::from_value(want).unwrap();
            assert_eq!(back, ev);
        }
    }

    #[test]
    fn action_base_strips_details() {
        let a: EventAction = "exec_create: ls -l".parse().unwrap();
        assert_eq!(a.base(), "exec_create");
        let a: EventAction = "health_status: healthy".parse().unwrap();
        assert_eq!(a.base(), "health_status");
        assert!("".parse::<EventAction>().is_err());
        assert!("Start".parse::<EventAction>().is_err());
        assert!("a.b".parse::<EventAction>().is_err());
    }
}

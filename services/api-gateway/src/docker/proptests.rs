//! Property tests of the parsers that take a client's input: the create body (every field of
//! the table, with the table's sample value or any other JSON in its place), the ps and image
//! filters, and API timestamps. Whatever a client sends, the answer is a value or a 400, never
//! a panic (which would cost the client its connection). 10,000 cases each.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{create, fields, image_filters, ps_filters, timestamp};
use crate::api_version::{ApiVersion, MAX, MIN};
use berth_types::ErrorKind;

/// Any JSON value, a few levels deep, with numbers at the edges (negative, huge, fractional).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1i64),
            Just(0i64),
            any::<i64>()
        ]
        .prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        // Strings shaped like what fields parse: sizes, ports, paths, key=value pairs.
        "[0-9]{1,20}[bkmgKMG]?|[a-z]{1,8}=[a-z0-9:/.]{0,8}|/[a-z/]{0,10}(:[a-z/]{0,6})?(:r[ow])?|[0-9.:]{1,15}/(tcp|udp|sctp)"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                "[A-Za-z]{1,10}|80/tcp|Name|Type|Source|Target",
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Sets `value` at the dotted `path` of `body`, making the objects on the way.
fn set(body: &mut Value, path: &str, value: Value) {
    let mut at = body;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(m) = at else { return };
        if keys.peek().is_none() {
            m.insert(key.to_owned(), value);
            return;
        }
        at = m.entry(key.to_owned()).or_insert_with(|| json!({}));
    }
}

/// A create body: an image, then some rows of the field table set to their sample value (which
/// the table says counts as set) or to any JSON at all.
fn create_body() -> impl Strategy<Value = Value> {
    let row = (0..fields::FIELDS.len(), any::<bool>(), any_json());
    (prop::collection::vec(row, 0..6), any_json()).prop_map(|(rows, networking)| {
        let mut body = json!({"Image": "busybox"});
        for (i, sample, other) in rows {
            let f = &fields::FIELDS[i];
            let value = if sample {
                serde_json::from_str(f.sample).unwrap_or(Value::String(f.sample.to_owned()))
            } else {
                other
            };
            set(&mut body, f.path, value);
        }
        if networking.is_object() {
            body["NetworkingConfig"] = json!({"EndpointsConfig": networking});
        }
        body
    })
}

fn version() -> impl Strategy<Value = ApiVersion> {
    (MIN.minor..=MAX.minor).prop_map(|minor| ApiVersion { major: 1, minor })
}

/// A `filters` text: JSON of Docker's two shapes with keys a client may send, or any text.
fn filters_text() -> impl Strategy<Value = String> {
    let key = "label|name|id|status|ancestor|before|since|until|dangling|reference|health|exited|network|volume|publish|expose|is-task|[a-z]{1,6}";
    let value =
        ".{0,16}|[a-z]{1,5}=[a-z]{0,5}|[0-9]{1,12}(\\.[0-9]{0,10})?|-?[0-9]{1,4}[smh]|true|false|1";
    prop_oneof![
        prop::collection::btree_map(
            key,
            prop::collection::btree_map(value, any::<bool>(), 0..3),
            0..4
        )
        .prop_map(|m| serde_json::to_string(&m).unwrap_or_default()),
        prop::collection::btree_map(key, prop::collection::vec(value, 0..3), 0..4)
            .prop_map(|m| serde_json::to_string(&m).unwrap_or_default()),
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any create body gives a spec or a 400 (a 404 for a volume driver that does not exist,
    /// as dockerd), for every API version.
    #[test]
    fn any_create_body_is_a_spec_or_a_400(body in create_body(), v in version(), platform in "|linux|linux/amd64|windows|.{0,8}") {
        if let Err(e) = create::spec(body, v, &platform) {
            prop_assert!(
                matches!(e.kind, ErrorKind::InvalidArgument | ErrorKind::NotFound),
                "{:?}: {}", e.kind, e.message
            );
        }
    }

    /// Any filters text gives typed filters or a 400, for ps and for the image endpoints.
    #[test]
    fn any_filters_are_typed_or_a_400(text in filters_text()) {
        for r in [
            ps_filters::parse(&text).map(|_| ()),
            image_filters::list(&text).map(|_| ()),
            image_filters::prune(&text).map(|_| ()),
        ] {
            if let Err(e) = r {
                prop_assert_eq!(e.kind, ErrorKind::InvalidArgument, "{}", e.message);
            }
        }
    }

    /// Any timestamp is nanoseconds or a 400; whole seconds read back as they were written.
    #[test]
    fn any_timestamp_parses_or_is_a_400(text in ".{0,24}|-?[0-9]{1,20}(\\.[0-9]{0,12})?", secs in any::<i64>()) {
        if let Err(e) = timestamp::parse(&text) {
            prop_assert_eq!(e.kind, ErrorKind::InvalidArgument);
        }
        let _ = timestamp::parse_i64(&text);
        prop_assert_eq!(timestamp::parse(&secs.to_string()).ok(), Some(i128::from(secs) * 1_000_000_000));
    }
}

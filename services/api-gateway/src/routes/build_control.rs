//! `POST /build/prune` and `POST /build/cancel`, as dockerd answers them for the classic
//! builder.
//!
//! dockerd's `/build/prune` prunes BuildKit's cache only (moby `builder/backend.PruneCache`
//! calls `buildkit.Prune`, whatever builder made the images). The classic builder's cache is
//! its intermediate images: they are images, listed by `docker images -a`, freed with the image
//! they lead to (`docker rmi`, `docker image prune`), never by a build-cache prune. Berth has
//! no BuildKit, so a build-cache prune frees nothing and says so, after checking its options as
//! dockerd does; `system df` shows the same empty build cache.

use axum::{
    Json, Router,
    extract::{RawQuery, State},
    response::{IntoResponse, Response},
    routing::post,
};
use berth_proto::images::v1 as pb;
use berth_types::Filters;
use serde_json::json;

use crate::{api_version::ApiVersion, error::ApiError, state::AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/build/prune", post(prune))
        .route("/build/cancel", post(cancel))
}

/// The filters BuildKit's prune accepts (moby `builder-next.Builder.Prune`; `mutable` and
/// `immutable` are BuildKit's but not exposed).
const PRUNE_FILTERS: &[&str] = &[
    "until",
    "unused-for",
    "label",
    "label!",
    "id",
    "parent",
    "type",
    "description",
    "inuse",
    "shared",
    "private",
];

/// The options of a build-cache prune, checked.
#[derive(Debug, Default, PartialEq)]
struct PruneOptions {
    all: bool,
    reserved_space: i64,
    max_used_space: i64,
    min_free_space: i64,
}

fn form(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(q: &'a [(String, String)], key: &str) -> &'a str {
    q.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// moby's `parseBytesFromFormValue`.
fn bytes(q: &[(String, String)], name: &str) -> Result<i64, ApiError> {
    match get(q, name) {
        "" => Ok(0),
        v => v.parse::<i64>().map_err(|e| {
            ApiError::invalid(format!(
                "{name} is in bytes and expects an integer, got {v}: strconv.Atoi: parsing {v:?}: {}",
                if matches!(e.kind(), std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow) {
                    "value out of range"
                } else {
                    "invalid syntax"
                }
            ))
        }),
    }
}

/// A Go duration (`24h`, `1h30m`, `1.5s`), as `time.ParseDuration` reads it.
fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[num_len..];
        let Some(unit) = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

/// moby's `timestamp.GetTimestamp`: a duration, a Unix time, or an RFC 3339 date.
fn is_timestamp(s: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    is_go_duration(s)
        || crate::docker::timestamp::parse(s).is_ok()
        || time::OffsetDateTime::parse(s, &Rfc3339).is_ok()
        || time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

/// Reads `POST /build/prune`'s query as moby's `postPrune` and `toBuildkitPruneInfo` do.
fn prune_options(q: &str, version: ApiVersion) -> Result<PruneOptions, ApiError> {
    let q = form(q);
    let filters = Filters::parse(get(&q, "filters"))?;
    filters.validate(PRUNE_FILTERS)?;
    let one = |k: &str| -> Result<Option<&str>, ApiError> {
        let mut v = filters.values(k);
        match (v.next(), v.next()) {
            (first, None) => Ok(first),
            _ => Err(ApiError::invalid("filters expect only one value")),
        }
    };
    let (until, unused_for) = (one("until")?, one("unused-for")?);
    if until.is_some() && unused_for.is_some() {
        return Err(ApiError::invalid(
            r#"conflicting filters: "until" and "unused-for""#,
        ));
    }
    let key = if unused_for.is_some() {
        "unused-for"
    } else {
        "until"
    };
    if let Some(v) = until.or(unused_for)
        && !is_timestamp(v)
    {
        return Err(ApiError::invalid(format!(
            "{key:?} filter expects a duration (e.g., '24h') or a timestamp: invalid value {v:?}"
        )));
    }
    for k in &PRUNE_FILTERS[4..] {
        one(k)?;
    }
    let mut o = PruneOptions {
        all: crate::routes::images::bool_param(&q.iter().cloned().collect(), "all"),
        ..PruneOptions::default()
    };
    if version >= "1.48".parse().expect("a version") {
        o.reserved_space = match bytes(&q, "reserved-space")? {
            // The deprecated name, read only when the new one is not used.
            0 => bytes(&q, "keep-storage")?,
            n => n,
        };
        o.max_used_space = bytes(&q, "max-used-space")?;
        o.min_free_space = bytes(&q, "min-free-space")?;
    } else {
        o.reserved_space = bytes(&q, "keep-storage")?;
    }
    Ok(o)
}

/// `POST /build/prune`: the options checked; nothing to free (see the module's comment); the
/// images service reports the prune with its `builder prune` event.
async fn prune(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    version: Option<axum::Extension<ApiVersion>>,
) -> Result<Response, ApiError> {
    let version = version.map_or(crate::api_version::MAX, |v| v.0);
    let opts = prune_options(&q.unwrap_or_default(), version)?;
    tracing::debug!(
        ?opts,
        "build cache prune: the classic builder keeps no build cache"
    );
    let r = st
        .images
        .prune_build_cache(pb::PruneBuildCacheRequest {})
        .await
        .map_err(|e| ApiError::from_status(&e))?;
    Ok(Json(json!({
        "CachesDeleted": r.caches_deleted,
        "SpaceReclaimed": r.space_reclaimed,
    }))
    .into_response())
}

/// `POST /build/cancel?id=`: stops the running builds started with that `buildid`; an unknown
/// ID is no error, as in dockerd.
async fn cancel(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = form(&q.unwrap_or_default());
    let id = get(&q, "id");
    if id.is_empty() {
        return Err(ApiError::invalid("build ID not provided"));
    }
    st.images
        .cancel_build(pb::CancelBuildRequest { id: id.to_owned() })
        .await
        .map_err(|e| ApiError::from_status(&e))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::http::StatusCode::OK,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(q: &str) -> Result<PruneOptions, String> {
        prune_options(q, crate::api_version::MAX).map_err(|e| e.message)
    }

    #[test]
    fn prune_options_are_read_as_dockerd_reads_them() {
        assert_eq!(opts("").unwrap(), PruneOptions::default());
        let o = opts("all=1&reserved-space=10&max-used-space=20&min-free-space=30").unwrap();
        assert_eq!(
            o,
            PruneOptions {
                all: true,
                reserved_space: 10,
                max_used_space: 20,
                min_free_space: 30
            }
        );
        assert_eq!(opts("keep-storage=5").unwrap().reserved_space, 5);
        assert_eq!(
            opts("keep-storage=5&reserved-space=7")
                .unwrap()
                .reserved_space,
            7
        );
        assert_eq!(
            prune_options("keep-storage=5&reserved-space=7", "1.47".parse().unwrap())
                .unwrap()
                .reserved_space,
            5,
            "before 1.48 only keep-storage"
        );
        assert_eq!(
            opts("keep-storage=1GB").unwrap_err(),
            r#"keep-storage is in bytes and expects an integer, got 1GB: strconv.Atoi: parsing "1GB": invalid syntax"#
        );
        for ok in [
            r#"{"until":{"24h":true}}"#,
            r#"{"until":["1h30m"]}"#,
            r#"{"unused-for":["1700000000"]}"#,
            r#"{"until":["2024-01-02T03:04:05Z"]}"#,
            r#"{"label":["a=b"],"type":["regular"]}"#,
        ] {
            let q = format!("filters={}", urlencode(ok));
            assert!(opts(&q).is_ok(), "{ok}: {:?}", opts(&q));
        }
        let err = |f: &str| opts(&format!("filters={}", urlencode(f))).unwrap_err();
        assert_eq!(err(r#"{"mutable":["1"]}"#), "invalid filter 'mutable'");
        assert_eq!(
            err(r#"{"until":["24h"],"unused-for":["1h"]}"#),
            r#"conflicting filters: "until" and "unused-for""#
        );
        assert_eq!(
            err(r#"{"until":["1h","2h"]}"#),
            "filters expect only one value"
        );
        assert_eq!(err(r#"{"id":["a","b"]}"#), "filters expect only one value");
        assert!(
            err(r#"{"until":["soon"]}"#)
                .starts_with(r#""until" filter expects a duration (e.g., '24h') or a timestamp"#)
        );
    }

    #[test]
    fn go_durations() {
        for ok in ["24h", "1h30m", "1.5s", "300ms", "-2h", "0", "10us"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "h", "24", "1..5s", "1d", "24hx", "."] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }

    fn urlencode(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
}

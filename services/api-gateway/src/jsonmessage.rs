//! Docker's JSONMessage stream (pull, push, load): one JSON object per line, chunked, with
//! `progressDetail` for progress bars and `errorDetail`/`error` for a failure mid-stream.

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use berth_proto::images::v1 as pb;
use berth_types::ErrorKind;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::json;

use crate::{backends::ProgressStream, error::ApiError};

fn human(n: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", units[u])
    }
}

/// The width of a progress bar, in cells.
const BAR_WIDTH: i128 = 50;

/// Docker's progress bar for `current` of `total` (`total > 0`): `[===>   ] 5MB/10MB`, always
/// `BAR_WIDTH + 1` cells between the brackets. Any `current` renders: nothing done yet,
/// negative, or past the total (clamped to an empty or a full bar).
fn bar(current: i64, total: i64) -> String {
    // i128: `current * BAR_WIDTH` cannot overflow for any i64.
    let done = (i128::from(current) * BAR_WIDTH / i128::from(total.max(1))).clamp(0, BAR_WIDTH);
    let done = usize::try_from(done).unwrap_or_default();
    let width = usize::try_from(BAR_WIDTH).unwrap_or_default();
    format!(
        "[{}>{}] {}/{}",
        "=".repeat(done),
        " ".repeat(width - done),
        human(current),
        human(total)
    )
}

/// The JSON line for one progress message. No input panics it: every line is one JSON
/// object and `\n`.
pub fn line(p: &pb::Progress) -> Bytes {
    let mut v = if !p.error.is_empty() {
        json!({"errorDetail": {"message": p.error}, "error": p.error})
    } else if p.total > 0 {
        json!({
            "status": p.status,
            "progressDetail": {"current": p.current, "total": p.total},
            "progress": bar(p.current, p.total),
        })
    } else {
        json!({"status": p.status, "progressDetail": {}})
    };
    if !p.id.is_empty() && p.error.is_empty() {
        v["id"] = json!(p.id);
    }
    let mut out = serde_json::to_vec(&v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn error_of(p: &pb::Progress) -> ApiError {
    ApiError::new(
        ErrorKind::parse(&p.error_kind).unwrap_or(ErrorKind::Internal),
        p.error.clone(),
    )
}

/// Turns a progress stream into the HTTP response. An error before any progress becomes a
/// plain HTTP error with its status (as moby does before it has flushed); after that, a JSON
/// error line ends the stream.
pub async fn respond(mut stream: ProgressStream) -> Response {
    let first = match stream.next().await {
        None => None,
        Some(Err(status)) => return ApiError::from_status(&status).into_response(),
        Some(Ok(p)) if !p.error.is_empty() => return error_of(&p).into_response(),
        Some(Ok(p)) => Some(p),
    };
    let head = futures::stream::iter(first.map(|p| Ok::<_, std::io::Error>(line(&p))));
    let rest = stream.map(|item| {
        Ok::<_, std::io::Error>(match item {
            Ok(p) => line(&p),
            Err(status) => line(&pb::Progress {
                error: status.message().to_owned(),
                ..Default::default()
            }),
        })
    });
    stream_response(head.chain(rest))
}

/// A chunked `application/json` response from lines.
pub fn stream_response(
    lines: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    let mut res = (StatusCode::OK, Body::from_stream(lines)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let l = line(&pb::Progress {
            id: "abc".to_owned(),
            status: "Downloading".to_owned(),
            current: 500,
            total: 1000,
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["progressDetail"], json!({"current": 500, "total": 1000}));
        assert_eq!(v["id"], "abc");
        assert!(v["progress"].as_str().unwrap().contains("500B/1.00kB"));
        let e = line(&pb::Progress {
            error: "boom".to_owned(),
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(
            v,
            json!({"errorDetail": {"message": "boom"}, "error": "boom"})
        );
        assert!(e.ends_with(b"\n"));
    }

    /// One line: a single JSON object, then `\n`, and nothing else.
    fn one_object(l: &[u8]) -> serde_json::Map<String, serde_json::Value> {
        let (body, nl) = l.split_at(l.len().saturating_sub(1));
        assert_eq!(nl, b"\n", "{l:?}");
        assert!(!body.contains(&b'\n'), "{l:?}");
        match serde_json::from_slice(body) {
            Ok(serde_json::Value::Object(m)) => m,
            other => panic!("not one JSON object ({other:?}): {l:?}"),
        }
    }

    fn number() -> impl proptest::strategy::Strategy<Value = i64> {
        use proptest::prelude::*;
        prop_oneof![
            Just(0i64),
            Just(i64::MIN),
            Just(i64::MAX),
            -2i64..2,
            -1_000_000i64..1_000_000,
            any::<i64>(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// No progress value panics the renderer (a panic kills the client's connection
        /// mid-pull: `unexpected EOF`), and every line is one JSON object ending in `\n`.
        #[test]
        fn any_progress_renders_one_json_line(
            id in ".{0,12}",
            status in ".{0,20}",
            current in number(),
            total in number(),
            error in proptest::prop_oneof![proptest::strategy::Just(String::new()), ".{0,20}"],
        ) {
            let p = pb::Progress { id, status, current, total, error, ..Default::default() };
            let m = one_object(&line(&p));
            if p.error.is_empty() {
                proptest::prop_assert_eq!(&m["status"], &json!(p.status));
                if let Some(bar) = m.get("progress") {
                    let bar = bar.as_str().unwrap_or_default();
                    proptest::prop_assert!(bar.starts_with('[') && bar.contains(']'), "{}", bar);
                }
            } else {
                proptest::prop_assert_eq!(&m["error"], &json!(p.error));
            }
        }
    }

    #[test]
    fn progress_bar_edges() {
        let bar = |current, total| {
            let m = one_object(&line(&pb::Progress {
                status: "Downloading".to_owned(),
                current,
                total,
                ..Default::default()
            }));
            m.get("progress")
                .and_then(|b| b.as_str().map(str::to_owned))
        };
        // Nothing yet: an empty bar (Docker's `[>    ...]`).
        assert_eq!(
            bar(0, 100).unwrap(),
            format!("[>{}] 0B/100B", " ".repeat(50))
        );
        assert_eq!(
            bar(50, 100).unwrap(),
            format!("[{}>{}] 50B/100B", "=".repeat(25), " ".repeat(25))
        );
        // Done, and more than the total: a full bar, not a negative run of spaces.
        assert_eq!(
            bar(100, 100).unwrap(),
            format!("[{}>] 100B/100B", "=".repeat(50))
        );
        assert!(
            bar(500, 100)
                .unwrap()
                .starts_with(&format!("[{}>]", "=".repeat(50)))
        );
        assert!(
            bar(-5, 100)
                .unwrap()
                .starts_with(&format!("[>{}]", " ".repeat(50)))
        );
        assert!(bar(i64::MAX, i64::MAX).is_some());
        assert!(bar(i64::MIN, 1).is_some());
        // No total: no bar.
        assert_eq!(bar(5, 0), None);
        assert_eq!(bar(5, -1), None);
    }
}

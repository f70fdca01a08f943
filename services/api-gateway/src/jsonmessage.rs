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

/// The JSON line for one progress message.
pub fn line(p: &pb::Progress) -> Bytes {
    let mut v = if !p.error.is_empty() {
        json!({"errorDetail": {"message": p.error}, "error": p.error})
    } else if p.total > 0 {
        let width = 50i64;
        let done = (p.current.min(p.total) * width / p.total).max(0);
        let bar = format!(
            "[{}>{}] {}/{}",
            "=".repeat(done.saturating_sub(1) as usize),
            " ".repeat((width - done) as usize),
            human(p.current),
            human(p.total)
        );
        json!({"status": p.status, "progressDetail": {"current": p.current, "total": p.total}, "progress": bar})
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
}

//! Image archives and pushes: docker save (`GET /images/get?names=`, `GET /images/{name}/get`),
//! docker load (`POST /images/load`), docker import (`POST /images/create?fromSrc=`) and docker
//! push (`POST /images/{name}/push`). Archives stream both ways: the request body goes to the
//! images service as it arrives, and a save's tar is the response body as it is written.
//! `/images/{name}/...` routes are matched by suffix in `images.rs`, which calls in here.

use std::collections::HashMap;

use axum::{
    Router,
    body::Body,
    extract::{Query, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use berth_proto::images::v1 as pb;
use berth_types::ErrorKind;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::BodyExt;
use serde_json::json;

use super::pump::{Pump, body_bytes};
use crate::{
    backends::MessageStream, error::ApiError, jsonmessage, registry_auth,
    routes::images::bool_param, state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/images/get", get(save_many))
        .route("/images/load", post(load))
}

/// The values of `key` in a query string (`names=a&names=b`).
fn all(query: &str, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn first(query: &str, key: &str) -> String {
    all(query, key).into_iter().next().unwrap_or_default()
}

/// `GET /images/get?names=a&names=b`.
async fn save_many(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    save(st, all(&q.unwrap_or_default(), "names")).await
}

/// docker save: `application/x-tar`, streamed. An unknown name is an error before the body; a
/// failure while writing breaks the transfer off (the client never takes a short tar for a
/// whole one).
pub async fn save(st: AppState, names: Vec<String>) -> Result<Response, ApiError> {
    let stream = st
        .images
        .save(pb::SaveRequest {
            names,
            platform: String::new(),
        })
        .await
        .map_err(|e| ApiError::from_status(&e))?;
    let body = stream.map(|c| {
        c.map(|c| Bytes::from(c.data))
            .map_err(|s| std::io::Error::other(s.message().to_owned()))
    });
    let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(res)
}

impl<T: Send + 'static> Pump<T> {
    /// Sends the service's answer: an error only once the whole body is read.
    async fn answer(
        self,
        answer: Result<MessageStream, tonic::Status>,
    ) -> Result<Response, ApiError> {
        let stream = match answer {
            Ok(s) => s,
            Err(e) => {
                self.finish().await;
                return Err(ApiError::from_status(&e));
            }
        };
        let res = respond(stream).await;
        if res.status().is_client_error() || res.status().is_server_error() {
            self.finish().await;
        }
        Ok(res)
    }
}

impl<T: Send + 'static> Pump<T> {
    /// Sends the service's answer as moby's postImagesLoad does: the headers go out before
    /// the load, so every error of it, from the call or from its first message, is a JSON
    /// error line in a 200 stream (docker-py raises ImageLoadError from it, the CLI prints
    /// it). The rest of the body is read first, as for an HTTP error.
    async fn answer_in_stream(self, answer: Result<MessageStream, tonic::Status>) -> Response {
        let peeked = match answer {
            Ok(stream) => peek(stream).await,
            Err(e) => Err(ApiError::from_status(&e)),
        };
        match peeked {
            Ok((head, rest)) => stream_lines(head, rest),
            Err(e) => {
                self.finish().await;
                let line = jsonmessage::line(&pb::Progress {
                    error: e.message,
                    ..Default::default()
                });
                jsonmessage::stream_response(futures::stream::iter([Ok(line)]))
            }
        }
    }
}

/// `POST /images/load?quiet=`: the body is the archive.
async fn load(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    let head = pb::LoadRequest {
        data: Vec::new(),
        quiet: bool_param(&q, "quiet"),
        platform: q.get("platform").cloned().unwrap_or_default(),
        upload_error: String::new(),
    };
    let mut pump = Pump::start(
        body_bytes(body),
        head,
        |p| pb::LoadRequest {
            data: p.data.into(),
            upload_error: p.upload_error,
            ..Default::default()
        },
        None,
    );
    let answer = pump.call(|upload| st.images.load(upload)).await;
    Ok(pump.answer_in_stream(answer).await)
}

/// `POST /images/create?fromSrc=-|URL&repo=&tag=&changes=&message=&platform=`: docker import.
/// The tarball is the body (`-`) or fetched from an `http://` URL on the loopback interface.
pub async fn import(st: AppState, uri: &Uri, body: Body) -> Result<Response, ApiError> {
    let q = uri.query().unwrap_or_default();
    let source = first(q, "fromSrc");
    if source.is_empty() {
        return Err(ApiError::invalid("fromImage or fromSrc is required"));
    }
    let options = pb::ImportOptions {
        repo: first(q, "repo"),
        tag: first(q, "tag"),
        changes: all(q, "changes"),
        message: first(q, "message"),
        platform: first(q, "platform"),
        source: source.clone(),
    };
    let data: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>> = if source == "-"
    {
        Box::pin(body_bytes(body))
    } else {
        Box::pin(fetch(&source).await?)
    };
    let head = pb::ImportRequest {
        data: Vec::new(),
        options: Some(options),
        upload_error: String::new(),
    };
    let mut pump = Pump::start(
        data,
        head,
        |p| pb::ImportRequest {
            data: p.data.into(),
            upload_error: p.upload_error,
            options: None,
        },
        None,
    );
    let answer = pump.call(|upload| st.images.import(upload)).await;
    pump.answer(answer).await
}

/// The body of `GET url`, for `docker import URL`. Only plain HTTP to the loopback interface.
async fn fetch(
    source: &str,
) -> Result<impl Stream<Item = Result<Bytes, String>> + Send + 'static, ApiError> {
    let url = if source.contains("://") {
        source.to_owned()
    } else {
        format!("http://{source}")
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| ApiError::invalid(format!("invalid import source {source:?}: {e}")))?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if uri.scheme_str() != Some("http") || !loopback {
        return Err(ApiError::invalid(format!(
            "cannot import from {url}: only http:// URLs on the loopback interface are allowed"
        )));
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let res = client
        .get(uri)
        .await
        .map_err(|e| ApiError::invalid(format!("fetching {url}: {e}")))?;
    if res.status() != StatusCode::OK {
        return Err(ApiError::invalid(format!(
            "fetching {url}: the server answered {}",
            res.status()
        )));
    }
    Ok(res
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(|e| e.to_string())))
}

/// `POST /images/{name}/push?tag=` with `X-Registry-Auth`.
pub async fn push(
    st: AppState,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let auth = registry_auth::decode(headers.get("X-Registry-Auth").and_then(|v| v.to_str().ok()))?;
    let stream = st
        .images
        .push(pb::PushRequest {
            name: name.to_owned(),
            tag: q.get("tag").cloned().unwrap_or_default(),
            auth: Some(auth),
        })
        .await
        .map_err(|e| ApiError::from_status(&e))?;
    Ok(respond(stream).await)
}

/// The JSON line of one message: a progress line, a `stream` text or an `aux` object.
pub fn message_line(m: &pb::StreamMessage) -> Bytes {
    if !m.stream.is_empty() {
        let mut out = serde_json::to_vec(&json!({ "stream": m.stream })).unwrap_or_default();
        out.push(b'\n');
        return Bytes::from(out);
    }
    if let Some(p) = &m.pushed {
        let aux = json!({"Tag": p.tag, "Digest": p.digest, "Size": p.size});
        let mut out =
            serde_json::to_vec(&json!({"progressDetail": {}, "aux": aux})).unwrap_or_default();
        out.push(b'\n');
        return Bytes::from(out);
    }
    jsonmessage::line(&m.progress.clone().unwrap_or_default())
}

fn error_of(m: &pb::StreamMessage) -> Option<ApiError> {
    let p = m.progress.as_ref().filter(|p| !p.error.is_empty())?;
    Some(ApiError::new(
        ErrorKind::parse(&p.error_kind).unwrap_or(ErrorKind::Internal),
        p.error.clone(),
    ))
}

/// The first message of a stream, or its error (a failed call or an error message).
async fn peek(
    mut stream: MessageStream,
) -> Result<(Option<pb::StreamMessage>, MessageStream), ApiError> {
    match stream.next().await {
        None => Ok((None, stream)),
        Some(Err(status)) => Err(ApiError::from_status(&status)),
        Some(Ok(m)) => match error_of(&m) {
            Some(e) => Err(e),
            None => Ok((Some(m), stream)),
        },
    }
}

/// The lines of a stream whose first message was `head`, as a chunked `application/json`
/// stream; an error later on is its last line.
fn stream_lines(head: Option<pb::StreamMessage>, stream: MessageStream) -> Response {
    let head = futures::stream::iter(head.map(|m| Ok::<_, std::io::Error>(message_line(&m))));
    let rest = stream.map(|item| {
        Ok::<_, std::io::Error>(match item {
            Ok(m) => message_line(&m),
            Err(status) => jsonmessage::line(&pb::Progress {
                error: status.message().to_owned(),
                ..Default::default()
            }),
        })
    });
    jsonmessage::stream_response(head.chain(rest))
}

/// The HTTP answer of a message stream: an error before the first line is a plain HTTP error
/// with its status; after that, the lines go out as a chunked `application/json` stream and
/// an error is its last line.
pub async fn respond(stream: MessageStream) -> Response {
    match peek(stream).await {
        Ok((head, rest)) => stream_lines(head, rest),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_query_values() {
        let l = message_line(&pb::StreamMessage {
            stream: "Loaded image: busybox:latest\n".to_owned(),
            ..Default::default()
        });
        assert_eq!(
            &l[..],
            b"{\"stream\":\"Loaded image: busybox:latest\\n\"}\n"
        );
        let l = message_line(&pb::StreamMessage {
            pushed: Some(pb::Pushed {
                tag: "latest".to_owned(),
                digest: "sha256:x".to_owned(),
                size: 5,
            }),
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["aux"]["Size"], 5);
        let l = message_line(&pb::StreamMessage {
            progress: Some(pb::Progress {
                status: "sha256:abc".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["status"], "sha256:abc");
        assert_eq!(all("names=a&names=b%2Fc&x=1", "names"), ["a", "b/c"]);
        assert_eq!(first("changes=CMD+sh&fromSrc=-", "fromSrc"), "-");
        assert_eq!(first("", "repo"), "");
    }
}

//! `POST /build`: the classic builder (`version=1`). Every query parameter moby reads is
//! honoured or refused by name; the body (the context) streams to the images service, which
//! owns builds; the answer is the builder's JSON stream, rendered here as dockerd writes it
//! (`{"stream":...}`, `{"aux":{"ID":...}}`, a RUN's stderr in red, the error line).

use std::collections::HashMap;

use axum::{
    Router,
    body::Body,
    extract::{RawQuery, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine;
use berth_proto::images::v1::{self as pb, build_message::Line};
use berth_types::ErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    api_version::ApiVersion,
    backends::BuildStream,
    error::ApiError,
    jsonmessage,
    routes::{
        pump::{Pump, body_bytes},
        spool::SpoolDir,
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/build", post(build))
}

/// The refusal of BuildKit builds.
pub const NO_BUILDKIT: &str = "BuildKit builds (version=2) are not supported by Berth: it builds with the classic builder only (DOCKER_BUILDKIT=0)";

/// The query's values by key (repeated keys keep every value).
struct Form(HashMap<String, Vec<String>>);

impl Form {
    fn parse(q: &str) -> Form {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            m.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Form(m)
    }
    fn get(&self, k: &str) -> &str {
        self.0
            .get(k)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0.get(k).cloned().unwrap_or_default()
    }
    /// moby's BoolValue.
    fn bool(&self, k: &str) -> bool {
        !matches!(
            self.get(k).trim().to_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        )
    }
    /// moby's Int64ValueOrZero: not a number reads as 0.
    fn int(&self, k: &str) -> i64 {
        self.get(k).parse().unwrap_or(0)
    }
    fn json<T: serde::de::DeserializeOwned + Default>(
        &self,
        k: &str,
        what: &str,
    ) -> Result<T, ApiError> {
        match self.get(k) {
            "" => Ok(T::default()),
            s => serde_json::from_str(s).map_err(|e| ApiError::invalid(format!("{what}: {e}"))),
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Ulimit {
    name: String,
    soft: i64,
    hard: i64,
}

/// The build's options from the query and headers, as moby's `newImageBuildOptions` reads
/// them; what Berth cannot do is refused by name.
fn options(
    q: &Form,
    headers: &HeaderMap,
    version: ApiVersion,
) -> Result<pb::BuildOptions, ApiError> {
    match q.get("version") {
        "" | "1" => {}
        "2" => return Err(ApiError::new(ErrorKind::NotImplemented, NO_BUILDKIT)),
        v => return Err(ApiError::invalid(format!("invalid version {}", json!(v)))),
    }
    if !q.all("securityopt").is_empty() {
        return Err(ApiError::invalid(
            "security options are not supported on linux",
        ));
    }
    if q.bool("squash") {
        return Err(ApiError::invalid(
            "squash is only supported with experimental mode",
        ));
    }
    match q.get("remote") {
        "" => {}
        "client-session" => {
            return Err(ApiError::invalid(
                "experimental session with v1 builder is no longer supported, use builder version v2 (BuildKit) instead",
            ));
        }
        r => {
            return Err(ApiError::new(
                ErrorKind::NotImplemented,
                format!(
                    "remote build contexts are not supported by Berth (remote={r}): send the context as the request body"
                ),
            ));
        }
    }
    if !q.get("session").is_empty() {
        return Err(ApiError::new(
            ErrorKind::NotImplemented,
            format!(
                "BuildKit sessions are not supported by Berth's classic builder (session={})",
                q.get("session")
            ),
        ));
    }
    match q.get("isolation") {
        "" | "default" => {}
        i => {
            return Err(ApiError::invalid(format!(
                "unsupported isolation: {}",
                json!(i)
            )));
        }
    }
    if version >= "1.40".parse().expect("a version")
        && !matches!(q.get("outputs"), "" | "[]" | "null")
    {
        return Err(ApiError::new(
            ErrorKind::NotImplemented,
            "outputs are not supported by the classic builder",
        ));
    }
    let shm_size = match q.get("shmsize") {
        "" => 0,
        s => s.parse().map_err(|e| {
            ApiError::invalid(format!("strconv.ParseInt: parsing {}: {e}", json!(s)))
        })?,
    };
    let ulimits: Vec<Ulimit> = q.json("ulimits", "error reading ulimit settings")?;
    let build_args: HashMap<String, Option<String>> =
        q.json("buildargs", "error reading build args")?;
    let labels: HashMap<String, String> = q.json("labels", "error reading labels")?;
    let cache_from: Vec<String> = q.json("cachefrom", "error reading cache-from")?;
    let platform = if version >= "1.32".parse().expect("a version") {
        q.get("platform").to_owned()
    } else {
        String::new()
    };
    Ok(pb::BuildOptions {
        tags: q.all("t"),
        dockerfile: q.get("dockerfile").to_owned(),
        build_args: build_args
            .into_iter()
            .map(|(key, value)| pb::BuildArg { key, value })
            .collect(),
        labels: labels.into_iter().collect(),
        target: q.get("target").to_owned(),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        // rm defaults to true; forcerm implies it.
        remove: q.bool("forcerm") || q.get("rm").is_empty() || q.bool("rm"),
        force_remove: q.bool("forcerm"),
        quiet: q.bool("q"),
        platform,
        cache_from,
        run: Some(pb::BuildRunOptions {
            network_mode: q.get("networkmode").to_owned(),
            extra_hosts: q.all("extrahosts"),
            memory: q.int("memory"),
            memory_swap: q.int("memswap"),
            cpu_shares: q.int("cpushares"),
            cpu_period: q.int("cpuperiod"),
            cpu_quota: q.int("cpuquota"),
            cpuset_cpus: q.get("cpusetcpus").to_owned(),
            cpuset_mems: q.get("cpusetmems").to_owned(),
            cgroup_parent: q.get("cgroupparent").to_owned(),
            shm_size,
            ulimits: ulimits
                .into_iter()
                .map(|u| pb::BuildUlimit {
                    name: u.name,
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
        }),
        auths: auth_configs(headers),
        want_aux: version >= "1.30".parse().expect("a version"),
        build_id: q.get("buildid").to_owned(),
    })
}

/// `X-Registry-Config`: base64url JSON of AuthConfigs by registry; unreadable is none, as in
/// moby.
fn auth_configs(headers: &HeaderMap) -> HashMap<String, pb::Auth> {
    #[derive(serde::Deserialize, Default)]
    struct AuthConfig {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default)]
        serveraddress: String,
        #[serde(default)]
        identitytoken: String,
        #[serde(default)]
        registrytoken: String,
    }
    let Some(h) = headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
    else {
        return HashMap::new();
    };
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(h.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim()))
        .unwrap_or_default();
    serde_json::from_slice::<HashMap<String, AuthConfig>>(&bytes)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, a)| {
            (
                k,
                pb::Auth {
                    username: a.username,
                    password: a.password,
                    server_address: a.serveraddress,
                    identity_token: a.identitytoken,
                    registry_token: a.registrytoken,
                },
            )
        })
        .collect()
}

/// One build message as dockerd writes it.
pub fn render(m: &pb::BuildMessage) -> Bytes {
    let v = match &m.line {
        Some(Line::Stream(s)) => json!({"stream": s}),
        Some(Line::Stderr(s)) => json!({"stream": format!("\u{1b}[91m{s}\u{1b}[0m")}),
        Some(Line::AuxId(id)) => json!({"aux": {"ID": id}}),
        Some(Line::Progress(p)) => return jsonmessage::line(p),
        Some(Line::Error(e)) => error_json(&e.message, e.code),
        // The end of a successful build: nothing to show.
        Some(Line::Result(_)) | None => return Bytes::new(),
    };
    let mut out = serde_json::to_vec(&v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn error_json(message: &str, code: i32) -> Value {
    let mut detail = json!({"message": message});
    if code != 0 {
        detail["code"] = json!(code);
    }
    json!({"errorDetail": detail, "error": message})
}

async fn build(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    version: Option<axum::Extension<ApiVersion>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let q = Form::parse(&q.unwrap_or_default());
    let version = version.map_or(crate::api_version::MAX, |v| v.0);
    let opts = options(&q, &headers, version)?;
    tracing::debug!("build: request received");
    // The context goes through a spool file when the images service is on this host.
    let (writer, guard) = match st.spool.as_deref().map(SpoolDir::create) {
        Some(Ok((w, g))) => (Some(w), Some(g)),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "creating a spool file: the context goes as messages");
            (None, None)
        }
        None => (None, None),
    };
    let head = pb::BuildRequest {
        options: Some(opts),
        spool: guard
            .as_ref()
            .map(|g| g.name().to_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut pump = Pump::start(
        timed(body_bytes(body)),
        head,
        |p| pb::BuildRequest {
            data: p.data,
            upload_error: p.upload_error,
            spooled: p.spooled,
            ..Default::default()
        },
        writer,
    );
    let answer: Result<BuildStream, tonic::Status> =
        pump.call(|upload| st.images.build(upload)).await;
    // The service has opened the spool file by now, or never will.
    drop(guard);
    let stream = match answer {
        Ok(s) => s,
        Err(e) => {
            pump.finish().await;
            return Err(ApiError::from_status(&e));
        }
    };
    tracing::debug!("build: the images service answered");
    Ok(jsonmessage::stream_response(lines(stream)).into_response())
}

/// The context's chunks, with debug lines at its first and last byte (the build's phases).
fn timed(
    body: impl futures::Stream<Item = Result<Bytes, String>> + Send + 'static,
) -> impl futures::Stream<Item = Result<Bytes, String>> + Send + 'static {
    let mut first = true;
    body.map(move |c| {
        if std::mem::take(&mut first) {
            tracing::debug!("build: first byte of the context");
        }
        c
    })
    .chain(futures::stream::poll_fn(|_| {
        tracing::debug!("build: last byte of the context");
        std::task::Poll::Ready(None)
    }))
}

/// What the client reads when the build's stream breaks or ends with neither its result nor
/// an error (the images service stopped mid-build).
pub const NO_RESULT: &str =
    "the build ended without a result: the images service stopped before it finished";

/// The build's lines as dockerd writes them. A stream that ends without the build's result
/// ends with an error line: a client must never take a broken build for a success.
fn lines(stream: BuildStream) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = finished.clone();
    let error_line = |message: &str| {
        let mut out = serde_json::to_vec(&error_json(message, 0)).unwrap_or_default();
        out.push(b'\n');
        Bytes::from(out)
    };
    stream
        .map(move |item| match item {
            Ok(m) => {
                if matches!(m.line, Some(Line::Result(_) | Line::Error(_))) {
                    seen.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                render(&m)
            }
            // The images service sends its errors as lines: a broken stream is the service
            // (or the connection to it) gone.
            Err(status) => {
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
                error_line(&format!("{NO_RESULT} ({})", status.message()))
            }
        })
        .chain(futures::stream::once(async move {
            tracing::debug!("build: the stream ends");
            if finished.load(std::sync::atomic::Ordering::Relaxed) {
                Bytes::new()
            } else {
                error_line(NO_RESULT)
            }
        }))
        .filter(|b| std::future::ready(!b.is_empty()))
        .map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(q: &str) -> Result<pb::BuildOptions, ApiError> {
        options(&Form::parse(q), &HeaderMap::new(), crate::api_version::MAX)
    }

    #[test]
    fn query_parameters_are_read_or_refused_by_name() {
        let o = opts("t=a&t=b:1&dockerfile=x&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&labels=%7B%22k%22%3A%22v%22%7D&nocache=1&q=1&rm=0&networkmode=host&extrahosts=h%3A1.2.3.4&shmsize=67108864&memory=1000&ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1%2C%22Hard%22%3A2%7D%5D").unwrap();
        assert_eq!(o.tags, ["a", "b:1"]);
        assert!(o.no_cache && o.quiet && !o.remove && o.want_aux);
        let mut args: Vec<_> = o
            .build_args
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_deref()))
            .collect();
        args.sort();
        assert_eq!(args, [("A", Some("1")), ("B", None)]);
        let run = o.run.unwrap();
        assert_eq!(
            (run.network_mode.as_str(), run.shm_size, run.memory),
            ("host", 67_108_864, 1000)
        );
        assert_eq!(run.ulimits[0].hard, 2);
        assert!(opts("").unwrap().remove, "rm defaults to true");
        assert_eq!(opts("buildid=b1").unwrap().build_id, "b1");
        assert_eq!(opts("version=2").unwrap_err().message, NO_BUILDKIT);
        assert_eq!(
            opts("version=3").unwrap_err().message,
            "invalid version \"3\""
        );
        assert_eq!(
            opts("squash=1").unwrap_err().message,
            "squash is only supported with experimental mode"
        );
        assert_eq!(
            opts("securityopt=x").unwrap_err().message,
            "security options are not supported on linux"
        );
        assert_eq!(
            opts("isolation=hyperv").unwrap_err().message,
            "unsupported isolation: \"hyperv\""
        );
        assert!(
            opts("remote=http://x/c.tar")
                .unwrap_err()
                .message
                .contains("remote=http://x/c.tar")
        );
        assert!(
            opts("buildargs=%5B")
                .unwrap_err()
                .message
                .starts_with("error reading build args")
        );
        assert!(
            opts("outputs=%5B%7B%7D%5D")
                .unwrap_err()
                .message
                .contains("outputs")
        );
    }

    async fn collect(messages: Vec<Result<pb::BuildMessage, tonic::Status>>) -> Vec<Value> {
        let out: Vec<_> = lines(Box::pin(futures::stream::iter(messages)))
            .collect()
            .await;
        out.into_iter()
            .map(|b| serde_json::from_slice(&b.unwrap()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_stream_without_its_result_ends_with_an_error() {
        let m = |l: Line| Ok(pb::BuildMessage { line: Some(l) });
        let step = || m(Line::Stream("Step 1/1 : RUN x\n".into()));
        assert_eq!(
            collect(vec![step()]).await,
            [
                json!({"stream": "Step 1/1 : RUN x\n"}),
                error_json(NO_RESULT, 0)
            ]
        );
        assert_eq!(
            collect(vec![step(), m(Line::Result("sha256:ab".into()))]).await,
            [json!({"stream": "Step 1/1 : RUN x\n"})],
            "the result is not shown"
        );
        let failed = pb::BuildError {
            message: "boom".into(),
            kind: String::new(),
            code: 1,
        };
        assert_eq!(
            collect(vec![step(), m(Line::Error(failed))]).await.len(),
            2,
            "an error is the end"
        );
        assert_eq!(
            collect(vec![
                step(),
                Err(tonic::Status::unknown("h2 protocol error"))
            ])
            .await[1],
            error_json(&format!("{NO_RESULT} (h2 protocol error)"), 0)
        );
    }

    #[test]
    fn lines_read_as_dockerd_writes_them() {
        let line = |l: Line| {
            let b = render(&pb::BuildMessage { line: Some(l) });
            serde_json::from_slice::<Value>(&b).unwrap()
        };
        assert_eq!(
            line(Line::Stream("Step 1/2 : FROM x\n".into())),
            json!({"stream": "Step 1/2 : FROM x\n"})
        );
        assert_eq!(
            line(Line::Stderr("oops\n".into())),
            json!({"stream": "\u{1b}[91moops\n\u{1b}[0m"})
        );
        assert_eq!(
            line(Line::AuxId("sha256:ab".into())),
            json!({"aux": {"ID": "sha256:ab"}})
        );
        assert_eq!(
            line(Line::Error(pb::BuildError {
                message: "m".into(),
                kind: String::new(),
                code: 2
            })),
            json!({"errorDetail": {"code": 2, "message": "m"}, "error": "m"})
        );
    }
}

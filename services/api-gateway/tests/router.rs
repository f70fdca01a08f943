#![recursion_limit = "256"]
//! The router driven in-process (`oneshot`) with fake backends: versioning, headers, errors,
//! and the system endpoints' shapes.

use std::sync::{Arc, atomic::AtomicI64};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use berth_api_gateway::{
    app,
    backends::{
        Answer, AttachStream, ChunkStream, ContainersBackend, ImagesBackend, InputStream,
        LogStream, MessageStream, NetworksBackend, ProgressStream, SystemBackend, Upload,
        VolumesBackend, WaitStream,
    },
    host::HostFacts,
    state::AppState,
};
use berth_proto::{
    images::v1 as images, network::v1 as network, runtime::v1 as runtime, volumes::v1 as volumes,
};
use tower::ServiceExt;

/// Answers like healthy services, except the volumes service, which is down.
struct Fake;

#[tonic::async_trait]
impl SystemBackend for Fake {
    async fn runtime_info(&self) -> Answer<runtime::InfoResponse> {
        Ok(runtime::InfoResponse {
            containers: 1,
            stopped: 1,
            cgroup_version: "2".to_owned(),
            cgroup_driver: "cgroupfs".to_owned(),
            engine_id: "0b7c5b52-1d3a-4f8e-9a55-0c0d7e7f1a2b".to_owned(),
            ..Default::default()
        })
    }
    async fn images_info(&self) -> Answer<images::InfoResponse> {
        Ok(images::InfoResponse {
            driver: "overlay2".to_owned(),
            ..Default::default()
        })
    }
    async fn network_info(&self) -> Answer<network::InfoResponse> {
        Ok(network::InfoResponse::default())
    }
    async fn volumes_info(&self) -> Answer<volumes::InfoResponse> {
        Err(tonic::Status::unavailable("connection refused"))
    }
    async fn containers_usage(&self) -> Answer<runtime::DiskUsageResponse> {
        Ok(runtime::DiskUsageResponse::default())
    }
    async fn images_usage(&self) -> Answer<images::DiskUsageResponse> {
        Ok(images::DiskUsageResponse {
            layers_size: 5,
            images: vec![],
        })
    }
    async fn volumes_usage(&self) -> Answer<volumes::DiskUsageResponse> {
        Err(tonic::Status::unavailable("connection refused"))
    }
}

fn unimplemented<T>() -> Answer<T> {
    Err(tonic::Status::unimplemented("not in this test"))
}

/// Where the gateway of the spool test hands build contexts over.
static SPOOL_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

#[tonic::async_trait]
impl ImagesBackend for Fake {
    /// Reads the context as the images service does, and answers with what it read: whether
    /// it came in a spool file, the length said last, the file's bytes, the bytes in messages.
    async fn build(
        &self,
        mut body: Upload<images::BuildRequest>,
    ) -> Answer<berth_api_gateway::backends::BuildStream> {
        use futures::StreamExt;
        let head = body.next().await.unwrap_or_default();
        let (mut spooled, mut data) = (0, Vec::new());
        while let Some(m) = body.next().await {
            spooled = spooled.max(m.spooled);
            data.extend_from_slice(&m.data);
        }
        let file = match (head.spool.as_str(), SPOOL_DIR.get()) {
            ("", _) | (_, None) => Vec::new(),
            (name, Some(dir)) => std::fs::read(dir.join(name)).unwrap_or_default(),
        };
        let text = format!(
            "spool={} spooled={spooled} file={} data={}",
            !head.spool.is_empty(),
            String::from_utf8_lossy(&file),
            String::from_utf8_lossy(&data)
        );
        let line = images::build_message::Line::Stream(text);
        Ok(Box::pin(futures::stream::iter([Ok(
            images::BuildMessage { line: Some(line) },
        )])))
    }
    async fn pull(&self, _: images::PullRequest) -> Answer<ProgressStream> {
        unimplemented()
    }
    /// One image per `reference` filter, tagged with it: shows what the gateway sent.
    async fn list(&self, req: images::ListRequest) -> Answer<images::ListResponse> {
        let f = req.filters.unwrap_or_default();
        Ok(images::ListResponse {
            images: f
                .references
                .into_iter()
                .map(|r| images::ImageSummary {
                    id: "sha256:aa".to_owned(),
                    repo_tags: vec![r],
                    size: 10,
                    ..Default::default()
                })
                .collect(),
        })
    }
    /// `busybox` exists; nothing else does.
    async fn inspect(&self, name: String) -> Answer<images::InspectResponse> {
        if name == "busybox" {
            return Ok(images::InspectResponse {
                id: "sha256:aa".to_owned(),
                image: Some(images::Image {
                    id: "sha256:aa".to_owned(),
                    repo_tags: vec!["busybox:latest".to_owned()],
                    created: "2024-09-26T21:31:42Z".to_owned(),
                    config: Some(images::ImageConfig {
                        cmd: Some(images::StringList {
                            values: vec!["sh".to_owned()],
                        }),
                        ..Default::default()
                    }),
                    architecture: "arm64".to_owned(),
                    variant: "v8".to_owned(),
                    os: "linux".to_owned(),
                    size: 7,
                    layers: vec!["sha256:cc".to_owned()],
                    upper_dir: "/layers/cc/diff".to_owned(),
                    ..Default::default()
                }),
            });
        }
        Err(berth_errors::to_status(
            berth_types::ErrorKind::NotFound,
            format!("No such image: {name}"),
        ))
    }
    async fn history(&self, _: String) -> Answer<images::HistoryResponse> {
        unimplemented()
    }
    async fn tag(&self, _: images::TagRequest) -> Answer<()> {
        unimplemented()
    }
    async fn remove(&self, _: images::RemoveRequest) -> Answer<images::RemoveResponse> {
        unimplemented()
    }
    /// "Deletes" one image per `label!` key and reclaims `until` bytes: shows what was sent.
    async fn prune(&self, f: images::ImageFilters) -> Answer<images::PruneResponse> {
        Ok(images::PruneResponse {
            items: f
                .labels_not
                .into_iter()
                .map(|l| images::Deleted {
                    untagged: String::new(),
                    deleted: l.key,
                })
                .collect(),
            space_reclaimed: f.until.unwrap_or_default(),
        })
    }
    async fn login(&self, _: images::Auth) -> Answer<images::LoginResponse> {
        unimplemented()
    }
    async fn save(&self, _: images::SaveRequest) -> Answer<ChunkStream> {
        unimplemented()
    }
    /// Reads the archive, then: `status...` fails the call, `line...` fails in the stream's
    /// first message, anything else loads `x:latest`.
    async fn load(&self, mut upload: Upload<images::LoadRequest>) -> Answer<MessageStream> {
        use futures::StreamExt;
        let mut data = Vec::new();
        while let Some(m) = upload.next().await {
            data.extend(m.data);
        }
        let invalid = "invalid tar archive: unexpected EOF";
        if data.starts_with(b"status") {
            return Err(berth_errors::to_status(
                berth_types::ErrorKind::InvalidArgument,
                invalid,
            ));
        }
        let m = if data.starts_with(b"line") {
            images::StreamMessage {
                progress: Some(images::Progress {
                    error: invalid.to_owned(),
                    error_kind: "invalid-argument".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        } else {
            images::StreamMessage {
                stream: "Loaded image: x:latest\n".to_owned(),
                ..Default::default()
            }
        };
        Ok(Box::pin(futures::stream::iter([Ok(m)])))
    }
    async fn import(&self, _: Upload<images::ImportRequest>) -> Answer<MessageStream> {
        unimplemented()
    }
    async fn push(&self, _: images::PushRequest) -> Answer<MessageStream> {
        unimplemented()
    }
    async fn distribution(
        &self,
        _: images::DistributionRequest,
    ) -> Answer<images::DistributionResponse> {
        unimplemented()
    }
}

/// No containers: every lookup is a 404 with Docker's text.
#[tonic::async_trait]
impl ContainersBackend for Fake {
    /// Images named `echo/...` exist: the answer's Id is the request, encoded (hex), so that
    /// tests see the spec the gateway built. Every other image is missing.
    async fn create(&self, req: runtime::CreateRequest) -> Answer<runtime::CreateResponse> {
        let spec = req.spec.clone().unwrap_or_default();
        if spec.image.starts_with("echo/") {
            let bytes = prost::Message::encode_to_vec(&req);
            let id = bytes.iter().map(|b| format!("{b:02x}")).collect();
            return Ok(runtime::CreateResponse {
                id,
                warnings: Vec::new(),
            });
        }
        Err(berth_errors::to_status(
            berth_types::ErrorKind::NotFound,
            format!("No such image: {}", spec.image),
        ))
    }
    async fn start(&self, id: String) -> Answer<()> {
        no_such_container(&id)
    }
    async fn wait(&self, req: runtime::WaitRequest) -> Answer<WaitStream> {
        no_such_container(&req.id)
    }
    async fn inspect(&self, id: String) -> Answer<runtime::ContainerInfo> {
        no_such_container(&id)
    }
    async fn list(&self, _: runtime::ListRequest) -> Answer<runtime::ListResponse> {
        Ok(runtime::ListResponse::default())
    }
    async fn remove(&self, req: runtime::RemoveRequest) -> Answer<()> {
        no_such_container(&req.id)
    }
    /// Deletes the `label!` keys, reclaiming `until` bytes: tests see the typed filters.
    async fn prune(&self, f: runtime::PruneRequest) -> Answer<runtime::PruneResponse> {
        Ok(runtime::PruneResponse {
            deleted: f.labels_not.into_iter().map(|l| l.key).collect(),
            space_reclaimed: f.until.unwrap_or_default().unsigned_abs(),
        })
    }
    async fn kill(&self, req: runtime::KillRequest) -> Answer<()> {
        no_such_container(&req.id)
    }
    async fn stop(&self, req: runtime::StopRequest) -> Answer<()> {
        no_such_container(&req.id)
    }
    async fn restart(&self, req: runtime::StopRequest) -> Answer<()> {
        no_such_container(&req.id)
    }
    async fn rename(&self, req: runtime::RenameRequest) -> Answer<()> {
        no_such_container(&req.id)
    }
    async fn logs(&self, req: runtime::LogsRequest) -> Answer<LogStream> {
        no_such_container(&req.id)
    }

    async fn attach(&self, req: runtime::AttachRequest) -> Answer<AttachStream> {
        no_such_container(&req.id)
    }
    async fn input(&self, _: InputStream) -> Answer<()> {
        Ok(())
    }
    async fn resize(&self, req: runtime::ResizeRequest) -> Answer<()> {
        no_such_container(&req.id)
    }
    async fn exec_create(&self, req: runtime::ExecCreateRequest) -> Answer<String> {
        no_such_container(&req.id)
    }
    /// Exec `tty` exists (created with a TTY) and prints `hi`.
    async fn exec_start(&self, req: runtime::ExecStartRequest) -> Answer<AttachStream> {
        if req.exec_id == "tty" {
            let frame = runtime::AttachFrame {
                stream: 1,
                data: b"hi".to_vec(),
            };
            return Ok(Box::pin(futures::stream::iter([Ok(frame)])));
        }
        no_such_exec(&req.exec_id)
    }
    async fn exec_inspect(&self, exec_id: String) -> Answer<runtime::ExecInfo> {
        if exec_id == "tty" {
            return Ok(runtime::ExecInfo {
                id: exec_id,
                container_id: "c".to_owned(),
                spec: Some(runtime::ExecSpec {
                    cmd: vec!["sh".to_owned()],
                    tty: true,
                    attach_stdout: true,
                    ..Default::default()
                }),
                running: false,
                exit_code: None,
                pid: 0,
            });
        }
        if exec_id == "cut" {
            // The runtime was killed during the call.
            return Err(tonic::Status::unknown("transport error"));
        }
        no_such_exec(&exec_id)
    }
    async fn top(&self, req: runtime::TopRequest) -> Answer<runtime::TopResponse> {
        assert_ne!(req.id, "boom", "a bug in a backend client");
        no_such_container(&req.id)
    }
    async fn stats(
        &self,
        req: runtime::StatsRequest,
    ) -> Answer<berth_api_gateway::backends::StatsStream> {
        no_such_container(&req.id)
    }
    async fn pause(&self, id: String) -> Answer<()> {
        no_such_container(&id)
    }
    async fn unpause(&self, id: String) -> Answer<()> {
        no_such_container(&id)
    }
    async fn update(&self, req: runtime::UpdateRequest) -> Answer<runtime::UpdateResponse> {
        no_such_container(&req.id)
    }
}

#[tonic::async_trait]
impl NetworksBackend for Fake {
    async fn create_network(
        &self,
        req: network::CreateNetworkRequest,
    ) -> Answer<network::NetworkInfo> {
        no_such_network(&req.name)
    }

    async fn list_networks(&self, _: network::NetworkFilters) -> Answer<Vec<network::NetworkInfo>> {
        Ok(Vec::new())
    }

    async fn inspect_network(&self, id: String) -> Answer<network::NetworkInfo> {
        no_such_network(&id)
    }

    async fn remove_network(&self, id: String) -> Answer<()> {
        no_such_network(&id)
    }

    async fn prune_networks(&self, _: network::NetworkFilters) -> Answer<Vec<String>> {
        Ok(Vec::new())
    }

    async fn check_endpoint(
        &self,
        req: network::EndpointRequest,
    ) -> Answer<network::NetworkRecord> {
        Ok(network::NetworkRecord {
            name: req.network,
            ..Default::default()
        })
    }
}

#[tonic::async_trait]
impl VolumesBackend for Fake {
    async fn create_volume(&self, req: volumes::CreateRequest) -> Answer<volumes::Volume> {
        no_such_volume(&req.name)
    }

    async fn list_volumes(&self, _: volumes::VolumeFilters) -> Answer<Vec<volumes::Volume>> {
        Ok(Vec::new())
    }

    async fn inspect_volume(&self, name: String) -> Answer<volumes::Volume> {
        no_such_volume(&name)
    }

    async fn remove_volume(&self, name: String, _: bool) -> Answer<()> {
        no_such_volume(&name)
    }

    async fn prune_volumes(
        &self,
        _: volumes::VolumeFilters,
        _: bool,
    ) -> Answer<(Vec<String>, u64)> {
        Ok((Vec::new(), 0))
    }
}

fn no_such_volume<T>(name: &str) -> Answer<T> {
    Err(berth_errors::to_status(
        berth_types::ErrorKind::NotFound,
        format!("get {name}: no such volume"),
    ))
}

fn no_such_network<T>(id: &str) -> Answer<T> {
    Err(berth_errors::to_status(
        berth_types::ErrorKind::NotFound,
        format!("network {id} not found"),
    ))
}

fn no_such_exec<T>(id: &str) -> Answer<T> {
    Err(berth_errors::to_status(
        berth_types::ErrorKind::NotFound,
        format!("No such exec instance: {id}"),
    ))
}

fn no_such_container<T>(id: &str) -> Answer<T> {
    Err(berth_errors::to_status(
        berth_types::ErrorKind::NotFound,
        format!("No such container: {id}"),
    ))
}

async fn state() -> AppState {
    // Nothing listens there: the bus stays disconnected, which the handlers must survive.
    let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
        .await
        .unwrap();
    let cfg = berth_config::DaemonConfig::parse(std::path::Path::new("daemon.json"), "{}").unwrap();
    AppState {
        backends: Arc::new(Fake),
        images: Arc::new(Fake),
        containers: Arc::new(Fake),
        networks: Arc::new(Fake),
        volumes: Arc::new(Fake),
        bus,
        host: Arc::new(HostFacts::read()),
        cfg: Arc::new(cfg),
        event_listeners: Arc::new(AtomicI64::new(0)),
        spool: None,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn call(method: Method, uri: &str) -> Reply {
    let res = app(state().await, None)
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn assert_engine_headers(r: &Reply) {
    assert_eq!(r.headers["api-version"], "1.50");
    assert_eq!(r.headers["ostype"], "linux");
    assert_eq!(r.headers["docker-experimental"], "false");
    assert_eq!(r.headers["server"], "Docker/28.2.2 (linux)");
}

#[tokio::test]
async fn ping_get_and_head() {
    let r = call(Method::GET, "/_ping").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(r.headers["builder-version"], "1");
    assert_eq!(r.headers["swarm"], "inactive");
    assert_eq!(
        r.headers["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    assert_engine_headers(&r);
    let r = call(Method::HEAD, "/_ping").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-length"], "0");
    assert!(r.body.is_empty());
    let r = call(Method::GET, "/v1.44/_ping").await;
    assert_eq!(r.body, "OK");
}

#[tokio::test]
async fn versions_outside_the_range_are_400() {
    let r = call(Method::GET, "/v1.51/version").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.body,
        r#"{"message":"client version 1.51 is too new. Maximum supported API version is 1.50"}"#
    );
    assert_engine_headers(&r);
    let r = call(Method::GET, "/v1.23/version").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        r.body
            .starts_with("client version 1.23 is too old. Minimum supported API version is 1.24")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_page_not_found() {
    for (m, uri) in [
        (Method::GET, "/nope"),
        (Method::GET, "/v1.50/widgets/x/json"),
        (Method::GET, "/v1.50/plugins/x/nope"),
        (Method::POST, "/v1.50/secrets/x"),
        (Method::GET, "/v1.50/swarm/init"),
        (Method::POST, "/v1.50/info"),
        (Method::DELETE, "/_ping"),
    ] {
        let r = call(m.clone(), uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {uri}");
        assert_eq!(r.body, r#"{"message":"page not found"}"#);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_engine_headers(&r);
    }
    let r = call(Method::OPTIONS, "/v1.50/containers/json").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn version_shape() {
    let r = call(Method::GET, "/version").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["ApiVersion"], "1.50");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Version"], "28.2.2");
    assert!(v["GoVersion"].is_string());
    assert_eq!(v["Components"][0]["Name"], "Engine");
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test]
async fn info_names_the_service_that_is_down() {
    let r = call(Method::GET, "/v1.50/info").await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["Containers"], 1);
    assert_eq!(v["CgroupVersion"], "2");
    assert_eq!(v["ID"], "0b7c5b52-1d3a-4f8e-9a55-0c0d7e7f1a2b");
    let warnings = v["Warnings"].to_string();
    assert!(
        warnings.contains("the volumes service is unavailable"),
        "{warnings}"
    );
    assert!(
        warnings.contains("event bus (NATS) is unreachable"),
        "{warnings}"
    );
}

#[tokio::test]
async fn system_df_selects_types_and_reports_a_down_backend() {
    let r = call(Method::GET, "/v1.50/system/df?type=image").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["LayersSize"], 5);
    assert!(v.get("Volumes").is_none() && v.get("Containers").is_none());
    let r = call(Method::GET, "/v1.50/system/df?type=bogus").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(Method::GET, "/v1.50/system/df").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("connection refused"), "{}", r.body);
}

#[tokio::test]
async fn events_rejects_bad_queries() {
    let r = call(Method::GET, "/v1.50/events?since=20&until=10").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("cannot be after"), "{}", r.body);
    let r = call(
        Method::GET,
        "/v1.50/events?filters=%7B%22colour%22%3A%5B%22x%22%5D%7D",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, r#"{"message":"invalid filter 'colour'"}"#);
    let r = call(Method::GET, "/v1.50/events?since=yesterday").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn image_names_with_slashes_and_colons_route_by_suffix() {
    let r = call(
        Method::GET,
        "/v1.50/images/localhost:5000/library/busybox:latest/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        r#"{"message":"No such image: localhost:5000/library/busybox:latest"}"#
    );
    let r = call(Method::GET, "/v1.50/images/busybox/unknown-suffix").await;
    assert_eq!(r.body, r#"{"message":"page not found"}"#);
}

#[tokio::test]
async fn image_inspect_is_rendered_from_the_typed_image() {
    let r = call(Method::GET, "/v1.50/images/busybox/json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "Id": "sha256:aa",
            "RepoTags": ["busybox:latest"],
            "RepoDigests": [],
            "Parent": "",
            "Comment": "",
            "Created": "2024-09-26T21:31:42Z",
            "DockerVersion": "",
            "Author": "",
            "Config": {"Cmd": ["sh"]},
            "Architecture": "arm64",
            "Variant": "v8",
            "Os": "linux",
            "Size": 7,
            "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": "/layers/cc/diff"}},
            "RootFS": {"Type": "layers", "Layers": ["sha256:cc"]},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        })
    );
}

/// `?filters=` with its JSON percent-encoded.
fn with_filters(path: &str, filters: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("filters", filters)
        .finish();
    format!("{path}?{q}")
}

#[tokio::test]
async fn image_list_filters_are_parsed_by_the_gateway() {
    // Both encodings reach the service as the same typed filters.
    for filters in [
        r#"{"reference":["busy*"],"dangling":["false"]}"#,
        r#"{"reference":{"busy*":true},"dangling":{"false":true}}"#,
    ] {
        let r = call(Method::GET, &with_filters("/v1.50/images/json", filters)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v[0]["RepoTags"], serde_json::json!(["busy*"]));
        assert!(v[0].get("VirtualSize").is_none());
    }
    let r = call(
        Method::GET,
        &with_filters("/v1.43/images/json", r#"{"reference":["a"]}"#),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v[0]["VirtualSize"], 10, "{v}");
    for (filters, message) in [
        (r#"{"label!":["a"]}"#, "invalid filter 'label!'"),
        (
            r#"{"dangling":["maybe"]}"#,
            "invalid filter 'dangling=maybe'",
        ),
        (
            r#"{"until":["soon"]}"#,
            r#"failed to parse value as time or duration: \"soon\""#,
        ),
    ] {
        let r = call(Method::GET, &with_filters("/v1.50/images/json", filters)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{filters}");
        assert_eq!(r.body, format!(r#"{{"message":"{message}"}}"#));
    }
}

#[tokio::test]
async fn image_prune_filters_are_parsed_by_the_gateway() {
    let r = post_json(
        &with_filters(
            "/v1.50/images/prune",
            r#"{"label!":{"a=1":true},"until":{"100":true}}"#,
        ),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"ImagesDeleted":[{"Deleted":"a"}],"SpaceReclaimed":100}"#
    );
    let r = post_json("/v1.50/images/prune", "application/json", "").await;
    assert_eq!(r.body, r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#);
    let r = post_json(
        &with_filters("/v1.50/images/prune", r#"{"reference":["x"]}"#),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, r#"{"message":"invalid filter 'reference'"}"#);
}

#[tokio::test]
async fn container_prune_filters_are_parsed_by_the_gateway() {
    let r = post_json(
        &with_filters(
            "/v1.50/containers/prune",
            r#"{"label!":{"a=1":true},"until":{"100":true}}"#,
        ),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"ContainersDeleted":["a"],"SpaceReclaimed":100}"#
    );
    let r = post_json("/v1.50/containers/prune", "application/json", "").await;
    assert_eq!(r.body, r#"{"ContainersDeleted":null,"SpaceReclaimed":0}"#);
    let r = post_json(
        &with_filters("/v1.50/containers/prune", r#"{"status":["exited"]}"#),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, r#"{"message":"invalid filter 'status'"}"#);
}

async fn post_json(uri: &str, content_type: &str, body: &str) -> Reply {
    let res = app(state().await, None)
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("Content-Type", content_type)
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[tokio::test]
async fn container_create_errors_are_dockers() {
    let r = post_json(
        "/v1.45/containers/create?name=web",
        "application/json",
        r#"{"Image":"nope"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.body, r#"{"message":"No such image: nope"}"#);
    let r = post_json("/containers/create", "application/json", "{bad").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("invalid JSON: "), "{}", r.body);
    let r = post_json("/containers/create", "text/plain", r#"{"Image":"x"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("must be 'application/json'"), "{}", r.body);
}

/// The request the gateway sent for a create body, at an API version.
async fn created(version: &str, body: serde_json::Value) -> runtime::CreateRequest {
    let r = post_json(
        &format!("/v{version}/containers/create?name=web"),
        "application/json",
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{version}: {}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let hex = v["Id"].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(v["Warnings"], serde_json::json!([]));
    prost::Message::decode(bytes.as_slice()).unwrap()
}

/// What each client version sends for `docker run -it --rm --name web -e A=1 -w /w -u nobody
/// --stop-signal SIGINT --init echo/x sh`, with the deprecated and version-specific fields
/// those versions carry, becomes one spec.
#[tokio::test]
async fn create_bodies_of_every_api_version() {
    let body = |extra: serde_json::Value, host_extra: serde_json::Value| {
        let mut b = serde_json::json!({
            "Hostname": "", "Domainname": "", "User": "nobody",
            "AttachStdin": true, "AttachStdout": true, "AttachStderr": true,
            "Tty": true, "OpenStdin": true, "StdinOnce": true,
            "Env": ["A=1"], "Cmd": ["sh"], "Image": "echo/x", "Volumes": {},
            "WorkingDir": "/w", "Entrypoint": null, "OnBuild": null, "Labels": {"l": "v"},
            "StopSignal": "SIGINT",
            "HostConfig": {
                "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
                "NetworkMode": "default", "PortBindings": {},
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": true,
                "VolumeDriver": "", "VolumesFrom": null, "CapAdd": null, "CapDrop": null,
                "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null,
                "GroupAdd": null, "IpcMode": "", "Cgroup": "", "Links": null, "OomScoreAdj": 0,
                "PidMode": "", "Privileged": false, "PublishAllPorts": false,
                "ReadonlyRootfs": false, "SecurityOpt": null, "UTSMode": "", "UsernsMode": "",
                "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
                "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
                "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
                "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
                "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
                "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
                "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0,
                "MemorySwappiness": null, "OomKillDisable": false, "PidsLimit": null,
                "Ulimits": null, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
                "IOMaximumBandwidth": 0, "MaskedPaths": null, "ReadonlyPaths": null,
                "Init": true
            },
            "NetworkingConfig": {"EndpointsConfig": {"default": {}}}
        });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        for (k, v) in host_extra.as_object().unwrap() {
            b["HostConfig"][k] = v.clone();
        }
        b
    };
    let check = |req: &runtime::CreateRequest, console: (u32, u32)| {
        assert_eq!(req.name, "web");
        let spec = req.spec.clone().unwrap();
        let p = spec.process.clone().unwrap();
        assert_eq!(spec.image, "echo/x");
        assert_eq!(p.cmd.unwrap().values, ["sh"]);
        assert!(p.entrypoint.is_none());
        assert_eq!(
            (p.env, p.user, p.working_dir),
            (vec!["A=1".to_owned()], "nobody".to_owned(), "/w".to_owned())
        );
        assert!(p.tty && p.open_stdin && p.stdin_once && p.attach_stdin);
        assert_eq!((p.console_height, p.console_width), console);
        assert_eq!(spec.stop_signal, "SIGINT");
        assert_eq!(spec.labels.get("l").map(String::as_str), Some("v"));
        assert!(spec.init);
        assert_eq!(spec.network.as_ref().unwrap().mode, "bridge");
        assert!(spec.resources.is_none() && spec.mounts.is_empty());
        spec
    };
    // 1.24: KernelMemory (zero) and the container-wide MacAddress (empty); no AutoRemove yet.
    let old = body(
        serde_json::json!({"MacAddress": "", "NetworkDisabled": false}),
        serde_json::json!({"KernelMemory": 0, "ConsoleSize": [30, 100]}),
    );
    let spec = check(&created("1.24", old.clone()).await, (0, 0));
    assert!(!spec.auto_remove, "1.24 has no AutoRemove");
    // 1.41: AutoRemove; ConsoleSize still unknown.
    assert!(check(&created("1.41", old).await, (0, 0)).auto_remove);
    // 1.42: ConsoleSize; KernelMemory still sent by older CLIs.
    let mid = body(
        serde_json::json!({"MacAddress": ""}),
        serde_json::json!({"KernelMemory": 0, "KernelMemoryTCP": 0, "ConsoleSize": [30, 100]}),
    );
    check(&created("1.42", mid).await, (30, 100));
    // 1.44 and 1.50: the CLI of today (CgroupnsMode, Annotations, DNSNames in endpoints).
    let new = body(
        serde_json::json!({}),
        serde_json::json!({"ConsoleSize": [30, 100], "CgroupnsMode": "", "Annotations": null}),
    );
    for v in ["1.44", "1.50"] {
        check(&created(v, new.clone()).await, (30, 100));
    }
    // The deprecated container-wide MAC address goes to the container's network, at every
    // version that knows it.
    for v in ["1.24", "1.43", "1.50"] {
        let req = created(
            v,
            serde_json::json!({"Image": "echo/x", "MacAddress": "02:42:ac:11:00:02"}),
        )
        .await;
        let net = req.spec.unwrap().network.unwrap();
        assert_eq!(net.endpoints[0].network, "bridge", "{v}");
        assert_eq!(net.endpoints[0].mac_address, "02:42:ac:11:00:02", "{v}");
    }
    // --health-start-interval arrived with 1.44: older versions drop it, as dockerd does.
    let hc = body(
        serde_json::json!({"Healthcheck": {"Test": ["CMD-SHELL", "true"],
            "Interval": 1_000_000_000i64, "Retries": 2, "StartInterval": 5_000_000}}),
        serde_json::json!({}),
    );
    let h = |v: &runtime::CreateRequest| v.spec.clone().unwrap().health_check.unwrap();
    let at_43 = h(&created("1.43", hc.clone()).await);
    assert_eq!(at_43.test, ["CMD-SHELL", "true"]);
    assert_eq!(
        (at_43.interval, at_43.retries, at_43.start_interval),
        (1_000_000_000, 2, 0)
    );
    assert_eq!(h(&created("1.44", hc).await).start_interval, 5_000_000);
}

/// A panic under a handler is a Docker-style 500 that names the request; the router goes on.
#[tokio::test]
async fn a_panic_is_a_500_with_the_request_id() {
    let r = call(Method::GET, "/containers/boom/top").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.starts_with("internal error in Berth's API gateway (request "),
        "{msg}"
    );
    assert!(msg.contains("a bug in a backend client"), "{msg}");
    let r = call(Method::GET, "/containers/x/top").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_json_413() {
    let big = format!(
        r#"{{"Image":"echo/x","Env":["A={}"]}}"#,
        "x".repeat(berth_api_gateway::BODY_LIMIT)
    );
    let r = post_json("/containers/create", "application/json", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.body.contains("request body too large"), "{}", r.body);
}

#[tokio::test]
async fn refused_options_name_themselves() {
    for (body, words) in [
        (
            r#"{"Image":"echo/x","HostConfig":{"CpuPercent":50}}"#,
            "--cpu-percent is not supported by Berth yet (HostConfig.CpuPercent)",
        ),
        (
            // docker-py's spelling: Go reads keys case-insensitively.
            r#"{"Image":"echo/x","HostConfig":{"CPURealtimeRuntime":1000}}"#,
            "--cpu-rt-runtime is not supported by Berth yet (HostConfig.CpuRealtimeRuntime)",
        ),
        (
            r#"{"Image":"echo/x","HostConfig":{"VolumesFrom":["other:rshared"]}}"#,
            "invalid mode: rshared",
        ),
        (
            r#"{"Image":"echo/x","HostConfig":{"VolumesFrom":["other:ro,nocopy"]}}"#,
            "invalid mode: ro,nocopy",
        ),
        (
            r#"{"Image":"echo/x","HostConfig":{"VolumesFrom":[""]}}"#,
            "volumes-from specification cannot be an empty string",
        ),
        (
            r#"{"Image":"echo/x","HostConfig":{"Binds":["/tmp:ro"]}}"#,
            "invalid volume specification: '/tmp:ro'",
        ),
        (
            r#"{"Image":"echo/x","HostConfig":{"LogConfig":{"Type":"bogus"}}}"#,
            "logger: no log driver named 'bogus' is registered",
        ),
    ] {
        let r = post_json("/containers/create", "application/json", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.body, serde_json::json!({"message": words}).to_string());
    }
}

#[tokio::test]
async fn container_routes_answer_404_and_list() {
    for (method, uri) in [
        (Method::GET, "/containers/x/json"),
        (Method::POST, "/containers/x/start"),
        (Method::POST, "/containers/x/wait"),
        (Method::POST, "/containers/x/kill"),
        (Method::POST, "/containers/x/stop?t=1"),
        (Method::POST, "/containers/x/rename?name=y"),
        (Method::DELETE, "/containers/x?force=1"),
        (Method::GET, "/containers/x/logs?stdout=1"),
        (
            Method::POST,
            "/containers/x/attach?stream=1&stdout=1&stderr=1",
        ),
        (Method::GET, "/containers/x/stats?stream=0"),
        (Method::POST, "/containers/x/pause"),
        (Method::POST, "/containers/x/unpause"),
        (Method::POST, "/containers/x/update"),
    ] {
        let r = call(method.clone(), uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(r.body, r#"{"message":"No such container: x"}"#);
    }
    let r = call(Method::GET, "/containers/x/logs").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Timestamps past what nanoseconds in an i64 hold are refused, not wrapped or a panic.
    for t in [
        "9999999999",
        "-9999999999",
        "9223372036854775807",
        "9999-01-01T00:00:00Z",
    ] {
        for p in ["since", "until"] {
            let r = call(Method::GET, &format!("/containers/x/logs?stdout=1&{p}={t}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{p}={t}");
            assert_eq!(
                r.body,
                format!(r#"{{"message":"invalid timestamp: \"{t}\""}}"#)
            );
        }
    }
    let r = call(Method::GET, "/containers/json?all=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body, "[]");
}

const NOT_A_MANAGER: &str = r#"{"message":"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."}"#;

/// Every swarm route answers as dockerd on a node in no swarm: 503 with its message, which
/// docker-py's `Swarm()` and `leave_swarm(force=True)` take for "no swarm".
#[tokio::test]
async fn swarm_routes_answer_as_a_node_in_no_swarm() {
    let routes = [
        (Method::GET, "/swarm"),
        (Method::GET, "/swarm/unlockkey"),
        (Method::POST, "/swarm/update?version=1"),
        (Method::POST, "/swarm/unlock"),
        (Method::GET, "/nodes"),
        (Method::GET, "/nodes/n1"),
        (Method::DELETE, "/nodes/n1?force=1"),
        (Method::POST, "/nodes/n1/update?version=1"),
        (Method::GET, "/services?status=1"),
        (Method::POST, "/services/create"),
        (Method::GET, "/services/s1"),
        (Method::POST, "/services/s1/update?version=1"),
        (Method::DELETE, "/services/s1"),
        (Method::GET, "/services/s1/logs?stdout=1"),
        (Method::GET, "/tasks"),
        (Method::GET, "/tasks/t1"),
        (Method::GET, "/tasks/t1/logs?stderr=1"),
        (Method::GET, "/secrets"),
        (Method::POST, "/secrets/create"),
        (Method::GET, "/secrets/x"),
        (Method::DELETE, "/secrets/x"),
        (Method::POST, "/secrets/x/update?version=1"),
        (Method::GET, "/configs"),
        (Method::POST, "/configs/create"),
        (Method::GET, "/configs/x"),
        (Method::DELETE, "/configs/x"),
        (Method::POST, "/configs/x/update?version=1"),
    ];
    for prefix in ["", "/v1.50", "/v1.24"] {
        for (method, path) in &routes {
            let uri = format!("{prefix}{path}");
            let r = call(method.clone(), &uri).await;
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}");
            assert_eq!(r.body, NOT_A_MANAGER, "{method} {uri}");
            assert_eq!(r.headers["content-type"], "application/json");
            assert_engine_headers(&r);
        }
        let r = call(Method::POST, &format!("{prefix}/swarm/leave?force=1")).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.body, r#"{"message":"This node is not part of a swarm"}"#);
        for path in ["/swarm/init", "/swarm/join"] {
            let r = call(Method::POST, &format!("{prefix}{path}")).await;
            assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{path}");
            assert_eq!(
                r.body,
                r#"{"message":"swarm mode is not supported by Berth"}"#
            );
        }
    }
    // Logs check their streams first, as moby's swarmLogs does.
    let r = call(Method::GET, "/v1.50/services/s1/logs").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        r#"{"message":"Bad parameters: you must choose at least one stream"}"#
    );
}

/// No plugins: an empty list, every named plugin missing (so `docker inspect x` goes on to
/// "No such object"), installs and creates refused by name.
#[tokio::test]
async fn plugin_routes_answer_as_with_no_plugin() {
    for prefix in ["", "/v1.50"] {
        let r = call(Method::GET, &format!("{prefix}/plugins")).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "[]"));
        assert_eq!(r.headers["content-type"], "application/json");
        let filters = "%7B%22enabled%22%3A%7B%22true%22%3Atrue%7D%7D";
        let r = call(Method::GET, &format!("{prefix}/plugins?filters={filters}")).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "[]"));
        let r = call(
            Method::GET,
            &format!("{prefix}/plugins?filters=%7B%22x%22%3A%5B%22y%22%5D%7D"),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body, r#"{"message":"invalid filter 'x'"}"#);
        for (method, path, name) in [
            (Method::GET, "/plugins/x/json", "x"),
            (
                Method::GET,
                "/plugins/vieux/sshfs:latest/json",
                "vieux/sshfs:latest",
            ),
            (Method::DELETE, "/plugins/x?force=1", "x"),
            (
                Method::DELETE,
                "/plugins/vieux/sshfs:latest",
                "vieux/sshfs:latest",
            ),
            (Method::POST, "/plugins/x/enable?timeout=30", "x"),
            (Method::POST, "/plugins/x/disable", "x"),
            (Method::POST, "/plugins/x/push", "x"),
            (Method::POST, "/plugins/x:1/upgrade?remote=x:2", "x:1"),
            (Method::POST, "/plugins/x/set", "x"),
        ] {
            let uri = format!("{prefix}{path}");
            let r = call(method.clone(), &uri).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert_eq!(
                r.body,
                format!(r#"{{"message":"plugin \"{name}\" not found"}}"#),
                "{method} {uri}"
            );
        }
        for (method, path, what) in [
            (
                Method::GET,
                "/plugins/privileges?remote=vieux/sshfs",
                "install vieux/sshfs",
            ),
            (
                Method::POST,
                "/plugins/pull?remote=vieux/sshfs&name=s",
                "install vieux/sshfs",
            ),
            (Method::POST, "/plugins/create?name=mine", "create mine"),
        ] {
            let uri = format!("{prefix}{path}");
            let r = call(method.clone(), &uri).await;
            assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{method} {uri}");
            assert_eq!(
                r.body,
                format!(r#"{{"message":"plugins are not supported by Berth: cannot {what}"}}"#)
            );
        }
    }
}

/// BuildKit's session and gRPC endpoints are refused with a message that says why.
#[tokio::test]
async fn buildkit_endpoints_are_refused() {
    for uri in ["/session", "/grpc", "/v1.50/session", "/v1.50/grpc"] {
        let r = call(Method::POST, uri).await;
        assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{uri}");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("BuildKit sessions are not supported by Berth"),
            "{uri}: {}",
            r.body
        );
        assert_engine_headers(&r);
    }
}

/// A POST of a JSON body that asks for the connection's upgrade (`Upgrade: tcp`).
fn upgrade(uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("Content-Type", "application/json")
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The framing of an exec start follows the start request's `Tty`, as moby's router does, not
/// the exec's: docker-py's `exec_start(socket=True)` of an exec created with `tty=True` sends
/// `Tty: false` and reads multiplexed frames.
#[tokio::test]
async fn exec_start_framing_follows_the_start_request() {
    let multiplexed = "\u{1}\0\0\0\0\0\0\u{2}hi";
    for (body, content_type, output) in [
        (
            r#"{"Detach":false,"Tty":false}"#,
            "application/vnd.docker.multiplexed-stream",
            multiplexed,
        ),
        (
            "{}",
            "application/vnd.docker.multiplexed-stream",
            multiplexed,
        ),
        ("", "application/vnd.docker.multiplexed-stream", multiplexed),
        (
            r#"{"Detach":false,"Tty":true}"#,
            "application/vnd.docker.raw-stream",
            "hi",
        ),
    ] {
        let r = post_json("/v1.50/exec/tty/start", "application/json", body).await;
        assert_eq!(r.status, StatusCode::OK, "{body}");
        assert_eq!(r.headers["content-type"], content_type, "{body}");
        assert_eq!(r.body, output, "{body}");
        // Hijacked: the 101 names the same framing.
        let res = app(state().await, None)
            .oneshot(upgrade("/v1.50/exec/tty/start", body))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS, "{body}");
        assert_eq!(res.headers()["content-type"], content_type, "{body}");
    }
    let r = post_json(
        "/v1.50/exec/tty/start",
        "application/json",
        r#"{"ConsoleSize":[4294967297,80]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

/// As moby's router, an exec start refuses before the upgrade only an exec that does not
/// exist: any other failure is written in the stream after the 101, where the CLI prints it
/// (before the upgrade the CLI shows only "unable to upgrade to tcp, received 500").
#[tokio::test]
async fn exec_start_errors_after_the_upgrade_are_in_the_stream() {
    let res = app(state().await, None)
        .oneshot(upgrade("/v1.50/exec/nope/start", r#"{"Tty":false}"#))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app(state().await, None)
        .oneshot(upgrade("/v1.50/exec/cut/start", r#"{"Tty":false}"#))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    let message = "service unavailable: transport error\r\n";
    let r = post_json("/v1.50/exec/cut/start", "application/json", "{}").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_bytes()[..8], [1, 0, 0, 0, 0, 0, 0, 38]);
    assert_eq!(&r.body[8..], message);
    let r = post_json(
        "/v1.50/exec/cut/start",
        "application/json",
        r#"{"Detach":true}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
}

/// docker load: as moby's postImagesLoad, which writes its headers before it loads, every
/// error of the load is a JSON error line in a 200 stream (docker-py's ImageLoadError).
#[tokio::test]
async fn load_errors_are_error_lines_in_the_stream() {
    let message = "invalid tar archive: unexpected EOF";
    for body in ["status: not an archive", "line: not an archive"] {
        let r = post_json("/v1.50/images/load?quiet=1", "application/x-tar", body).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.body);
        assert_eq!(r.headers["content-type"], "application/json");
        let line = r
            .body
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("{:?}", r.body));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"errorDetail": {"message": message}, "error": message}),
            "{body}"
        );
    }
    let r = post_json("/images/load", "application/x-tar", "an archive").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "{\"stream\":\"Loaded image: x:latest\\n\"}\n");
}

#[tokio::test]
async fn stats_and_update_refuse_before_the_runtime() {
    let r = call(Method::GET, "/containers/x/stats?stream=1&one-shot=1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        r#"{"message":"cannot have stream=true and one-shot=true"}"#
    );
    let r = post_json(
        "/containers/x/update",
        "application/json",
        r#"{"Memory":67108864,"CpuRealtimeRuntime":1000}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("--cpu-rt-runtime"), "{}", r.body);
    let r = post_json("/containers/x/update", "text/plain", "{}").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_build_context_goes_through_a_spool_file_to_a_local_images_service() {
    let run = tempfile::tempdir().unwrap();
    let json = format!(r#"{{"exec-root": {:?}}}"#, run.path().display().to_string());
    let cfg =
        berth_config::DaemonConfig::parse(std::path::Path::new("daemon.json"), &json).unwrap();
    let spool = berth_api_gateway::routes::spool::SpoolDir::open(&cfg).unwrap();
    SPOOL_DIR.set(cfg.spool_dir()).unwrap();
    let mut st = state().await;
    st.spool = Some(Arc::new(spool));
    let res = app(st, None)
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri("/v1.47/build?t=x")
                .header("Content-Type", "application/x-tar")
                .body(Body::from("the context"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("spool=true spooled=11 file=the context data="),
        "{body}"
    );
    let left: Vec<_> = std::fs::read_dir(cfg.spool_dir()).unwrap().collect();
    assert!(left.is_empty(), "the spool file is removed: {left:?}");
}

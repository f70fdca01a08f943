//! What the gateway asks the backend services, behind a trait so handlers can be tested with
//! fakes. The real implementation calls each service over gRPC with the trace context attached.

use std::time::Duration;

use berth_proto::{
    images::v1 as images, network::v1 as network, runtime::v1 as runtime, volumes::v1 as volumes,
};
use berth_service::Channel;
use berth_service::trace_interceptor;
use berth_types::ServiceName;
use tonic::Status;

/// One backend's answer, or why it is missing.
pub type Answer<T> = Result<T, Status>;

/// The system calls of `/info` and `/system/df`.
#[tonic::async_trait]
pub trait SystemBackend: Send + Sync + 'static {
    async fn runtime_info(&self) -> Answer<runtime::InfoResponse>;
    async fn images_info(&self) -> Answer<images::InfoResponse>;
    async fn network_info(&self) -> Answer<network::InfoResponse>;
    async fn volumes_info(&self) -> Answer<volumes::InfoResponse>;
    async fn containers_usage(&self) -> Answer<runtime::DiskUsageResponse>;
    async fn images_usage(&self) -> Answer<images::DiskUsageResponse>;
    async fn volumes_usage(&self) -> Answer<volumes::DiskUsageResponse>;
}

/// gRPC clients to the four backends.
#[derive(Clone)]
pub struct GrpcBackends {
    runtime: Channel,
    images: Channel,
    network: Channel,
    volumes: Channel,
}

/// How long `/info` waits for one service before reporting it as down.
const INFO_DEADLINE: Duration = Duration::from_secs(3);

impl GrpcBackends {
    pub fn new(channels: Vec<(ServiceName, Channel)>) -> anyhow::Result<GrpcBackends> {
        let get = |want: ServiceName| {
            channels
                .iter()
                .find(|(s, _)| *s == want)
                .map(|(_, c)| c.clone())
                .ok_or_else(|| anyhow::anyhow!("no channel for {want}"))
        };
        Ok(GrpcBackends {
            runtime: get(ServiceName::Runtime)?,
            images: get(ServiceName::Images)?,
            network: get(ServiceName::Network)?,
            volumes: get(ServiceName::Volumes)?,
        })
    }
}

fn request<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(INFO_DEADLINE);
    req
}

/// A client that carries the caller's trace context.
type Traced = tonic::service::interceptor::InterceptedService<
    Channel,
    fn(tonic::Request<()>) -> Result<tonic::Request<()>, Status>,
>;

const TRACE: fn(tonic::Request<()>) -> Result<tonic::Request<()>, Status> = trace_interceptor;

impl GrpcBackends {
    fn runtime_client(&self) -> runtime::runtime_client::RuntimeClient<Traced> {
        runtime::runtime_client::RuntimeClient::with_interceptor(self.runtime.clone(), TRACE)
    }

    fn images_client(&self) -> images::images_client::ImagesClient<Traced> {
        images::images_client::ImagesClient::with_interceptor(self.images.clone(), TRACE)
    }

    fn network_client(&self) -> network::network_client::NetworkClient<Traced> {
        network::network_client::NetworkClient::with_interceptor(self.network.clone(), TRACE)
    }

    fn volumes_client(&self) -> volumes::volumes_client::VolumesClient<Traced> {
        volumes::volumes_client::VolumesClient::with_interceptor(self.volumes.clone(), TRACE)
    }
}

#[tonic::async_trait]
impl SystemBackend for GrpcBackends {
    async fn runtime_info(&self) -> Answer<runtime::InfoResponse> {
        let mut c = self.runtime_client();
        Ok(c.info(request(runtime::InfoRequest {})).await?.into_inner())
    }

    async fn images_info(&self) -> Answer<images::InfoResponse> {
        let mut c = self.images_client();
        Ok(c.info(request(images::InfoRequest {})).await?.into_inner())
    }

    async fn network_info(&self) -> Answer<network::InfoResponse> {
        let mut c = self.network_client();
        Ok(c.info(request(network::InfoRequest {})).await?.into_inner())
    }

    async fn volumes_info(&self) -> Answer<volumes::InfoResponse> {
        let mut c = self.volumes_client();
        Ok(c.info(request(volumes::InfoRequest {})).await?.into_inner())
    }

    async fn containers_usage(&self) -> Answer<runtime::DiskUsageResponse> {
        let mut c = self.runtime_client();
        Ok(c.disk_usage(request(runtime::DiskUsageRequest {}))
            .await?
            .into_inner())
    }

    async fn images_usage(&self) -> Answer<images::DiskUsageResponse> {
        let mut c = self.images_client();
        Ok(c.disk_usage(request(images::DiskUsageRequest {}))
            .await?
            .into_inner())
    }

    async fn volumes_usage(&self) -> Answer<volumes::DiskUsageResponse> {
        let mut c = self.volumes_client();
        Ok(c.disk_usage(request(volumes::DiskUsageRequest {}))
            .await?
            .into_inner())
    }
}

/// A stream of progress messages from a long operation.
pub type ProgressStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<images::Progress, Status>> + Send>>;

/// The image calls.
#[tonic::async_trait]
pub trait ImagesBackend: Send + Sync + 'static {
    async fn pull(&self, req: images::PullRequest) -> Answer<ProgressStream>;
    async fn list(&self, req: images::ListRequest) -> Answer<images::ListResponse>;
    async fn inspect(&self, name: String) -> Answer<images::InspectResponse>;
    async fn history(&self, name: String) -> Answer<images::HistoryResponse>;
    async fn tag(&self, req: images::TagRequest) -> Answer<()>;
    async fn remove(&self, req: images::RemoveRequest) -> Answer<images::RemoveResponse>;
    async fn prune(&self, filters: images::ImageFilters) -> Answer<images::PruneResponse>;
    async fn login(&self, auth: images::Auth) -> Answer<images::LoginResponse>;
    /// docker save: the archive's bytes.
    async fn save(&self, req: images::SaveRequest) -> Answer<ChunkStream>;
    /// docker load: the archive streams in (the first message carries the options).
    async fn load(&self, body: Upload<images::LoadRequest>) -> Answer<MessageStream>;
    /// docker import: the tarball streams in (the first message carries the options).
    async fn import(&self, body: Upload<images::ImportRequest>) -> Answer<MessageStream>;
    async fn push(&self, req: images::PushRequest) -> Answer<MessageStream>;
    /// GET /distribution/{name}/json: what the registry holds, without a pull.
    async fn distribution(
        &self,
        req: images::DistributionRequest,
    ) -> Answer<images::DistributionResponse>;
    /// docker build: the context streams in (the first message carries the options).
    async fn build(&self, body: Upload<images::BuildRequest>) -> Answer<BuildStream> {
        drop(body);
        Err(Status::unimplemented("build"))
    }
    /// POST /build/cancel: stops the running builds with that `buildid`.
    async fn cancel_build(
        &self,
        req: images::CancelBuildRequest,
    ) -> Answer<images::CancelBuildResponse> {
        drop(req);
        Err(Status::unimplemented("build cancel"))
    }
    /// POST /build/prune: the build cache pruned, with its event.
    async fn prune_build_cache(
        &self,
        _req: images::PruneBuildCacheRequest,
    ) -> Answer<images::PruneBuildCacheResponse> {
        Err(Status::unimplemented("build cache prune"))
    }
}

/// The lines of a build.
pub type BuildStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<images::BuildMessage, Status>> + Send>>;

/// The bytes of a long answer (docker save).
pub type ChunkStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<images::DataChunk, Status>> + Send>>;

/// The JSONMessage lines of a long operation (load, import, push).
pub type MessageStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<images::StreamMessage, Status>> + Send>>;

/// A client-streamed request (an upload).
pub type Upload<T> = std::pin::Pin<Box<dyn futures::Stream<Item = T> + Send>>;

/// An upload as a stream tonic can send (`Sync`): relayed through a small channel by a task,
/// which stops when the call is dropped.
fn relay<T: Send + 'static>(mut upload: Upload<T>) -> tokio_stream::wrappers::ReceiverStream<T> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(item) = futures::StreamExt::next(&mut upload).await {
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Image calls may run long (a pull of a large image): no deadline but the client's.
fn long<T>(msg: T) -> tonic::Request<T> {
    tonic::Request::new(msg)
}

#[tonic::async_trait]
impl ImagesBackend for GrpcBackends {
    async fn pull(&self, req: images::PullRequest) -> Answer<ProgressStream> {
        let stream = self.images_client().pull(long(req)).await?.into_inner();
        Ok(Box::pin(stream))
    }

    async fn list(&self, req: images::ListRequest) -> Answer<images::ListResponse> {
        Ok(self.images_client().list(request(req)).await?.into_inner())
    }

    async fn inspect(&self, name: String) -> Answer<images::InspectResponse> {
        Ok(self
            .images_client()
            .inspect(request(images::InspectRequest { name }))
            .await?
            .into_inner())
    }

    async fn history(&self, name: String) -> Answer<images::HistoryResponse> {
        Ok(self
            .images_client()
            .history(request(images::InspectRequest { name }))
            .await?
            .into_inner())
    }

    async fn tag(&self, req: images::TagRequest) -> Answer<()> {
        self.images_client().tag(request(req)).await?;
        Ok(())
    }

    async fn remove(&self, req: images::RemoveRequest) -> Answer<images::RemoveResponse> {
        Ok(self.images_client().remove(long(req)).await?.into_inner())
    }

    async fn prune(&self, filters: images::ImageFilters) -> Answer<images::PruneResponse> {
        Ok(self
            .images_client()
            .prune(long(images::PruneRequest {
                filters: Some(filters),
            }))
            .await?
            .into_inner())
    }

    async fn login(&self, auth: images::Auth) -> Answer<images::LoginResponse> {
        Ok(self
            .images_client()
            .login(request(images::LoginRequest { auth: Some(auth) }))
            .await?
            .into_inner())
    }

    async fn save(&self, req: images::SaveRequest) -> Answer<ChunkStream> {
        Ok(Box::pin(
            self.images_client().save(long(req)).await?.into_inner(),
        ))
    }

    async fn load(&self, body: Upload<images::LoadRequest>) -> Answer<MessageStream> {
        let body = relay(body);
        Ok(Box::pin(
            self.images_client().load(long(body)).await?.into_inner(),
        ))
    }

    async fn import(&self, body: Upload<images::ImportRequest>) -> Answer<MessageStream> {
        let body = relay(body);
        Ok(Box::pin(
            self.images_client().import(long(body)).await?.into_inner(),
        ))
    }

    async fn distribution(
        &self,
        req: images::DistributionRequest,
    ) -> Answer<images::DistributionResponse> {
        Ok(self
            .images_client()
            .distribution(long(req))
            .await?
            .into_inner())
    }

    async fn push(&self, req: images::PushRequest) -> Answer<MessageStream> {
        Ok(Box::pin(
            self.images_client().push(long(req)).await?.into_inner(),
        ))
    }

    async fn build(&self, body: Upload<images::BuildRequest>) -> Answer<BuildStream> {
        let body = relay(body);
        Ok(Box::pin(
            self.images_client().build(long(body)).await?.into_inner(),
        ))
    }

    async fn cancel_build(
        &self,
        req: images::CancelBuildRequest,
    ) -> Answer<images::CancelBuildResponse> {
        Ok(self
            .images_client()
            .cancel_build(request(req))
            .await?
            .into_inner())
    }

    async fn prune_build_cache(
        &self,
        req: images::PruneBuildCacheRequest,
    ) -> Answer<images::PruneBuildCacheResponse> {
        Ok(self
            .images_client()
            .prune_build_cache(request(req))
            .await?
            .into_inner())
    }
}

/// The log entries of `docker logs`.
pub type LogStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<runtime::LogEntry, Status>> + Send>>;

/// The live output of `docker attach`.
pub type AttachStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<runtime::AttachFrame, Status>> + Send>>;

/// The answer of `docker wait`, once the condition is met.
pub type WaitStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<runtime::WaitResponse, Status>> + Send>>;

/// The samples of `docker stats`.
pub type StatsStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<runtime::StatsSample, Status>> + Send>>;

/// The stdin of an attach or exec, chunk by chunk (the first names the target).
pub type InputStream = tokio::sync::mpsc::Receiver<runtime::InputChunk>;

/// The container calls.
#[tonic::async_trait]
pub trait ContainersBackend: Send + Sync + 'static {
    async fn create(&self, req: runtime::CreateRequest) -> Answer<runtime::CreateResponse>;
    async fn start(&self, id: String) -> Answer<()>;
    /// Answers once the wait is registered; the stream yields the result.
    async fn wait(&self, req: runtime::WaitRequest) -> Answer<WaitStream>;
    async fn inspect(&self, id: String) -> Answer<runtime::ContainerInfo>;
    async fn list(&self, req: runtime::ListRequest) -> Answer<runtime::ListResponse>;
    async fn remove(&self, req: runtime::RemoveRequest) -> Answer<()>;
    async fn prune(&self, req: runtime::PruneRequest) -> Answer<runtime::PruneResponse>;
    async fn kill(&self, req: runtime::KillRequest) -> Answer<()>;
    async fn stop(&self, req: runtime::StopRequest) -> Answer<()>;
    async fn restart(&self, req: runtime::StopRequest) -> Answer<()>;
    async fn rename(&self, req: runtime::RenameRequest) -> Answer<()>;
    /// docker network connect (the runtime owns the container's list of networks).
    async fn network_connect(&self, _req: runtime::ConnectRequest) -> Answer<()> {
        Err(Status::unimplemented("network connect"))
    }
    async fn network_disconnect(&self, _req: runtime::DisconnectRequest) -> Answer<()> {
        Err(Status::unimplemented("network disconnect"))
    }
    async fn logs(&self, req: runtime::LogsRequest) -> Answer<LogStream>;
    /// Answers once the attach is registered (before the container starts, when it has not).
    async fn attach(&self, req: runtime::AttachRequest) -> Answer<AttachStream>;
    /// Relays stdin until the stream ends.
    async fn input(&self, chunks: InputStream) -> Answer<()>;
    async fn resize(&self, req: runtime::ResizeRequest) -> Answer<()>;
    /// The exec's ID.
    async fn exec_create(&self, req: runtime::ExecCreateRequest) -> Answer<String>;
    /// Answers once the exec runs; attached, the stream carries its output and ends after its
    /// exit code is recorded.
    async fn exec_start(&self, req: runtime::ExecStartRequest) -> Answer<AttachStream>;
    async fn exec_inspect(&self, exec_id: String) -> Answer<runtime::ExecInfo>;
    async fn top(&self, req: runtime::TopRequest) -> Answer<runtime::TopResponse>;

    // The container filesystem API (docker cp, export, diff, commit). Defaults answer
    // "unimplemented" so that test fakes need not provide them.
    async fn stat_path(&self, _req: runtime::PathRequest) -> Answer<runtime::PathStat> {
        Err(Status::unimplemented("stat_path"))
    }
    async fn archive_path(&self, _req: runtime::PathRequest) -> Answer<ArchiveStream> {
        Err(Status::unimplemented("archive_path"))
    }
    async fn extract_to_dir(&self, _body: Upload<runtime::ExtractChunk>) -> Answer<()> {
        Err(Status::unimplemented("extract_to_dir"))
    }
    async fn export(&self, _id: String) -> Answer<ArchiveStream> {
        Err(Status::unimplemented("export"))
    }
    async fn changes(&self, _id: String) -> Answer<images::ChangesResponse> {
        Err(Status::unimplemented("changes"))
    }
    async fn commit(&self, _req: runtime::CommitRequest) -> Answer<runtime::CommitResponse> {
        Err(Status::unimplemented("commit"))
    }
    async fn stats(&self, req: runtime::StatsRequest) -> Answer<StatsStream>;
    async fn pause(&self, id: String) -> Answer<()>;
    async fn unpause(&self, id: String) -> Answer<()>;
    async fn update(&self, req: runtime::UpdateRequest) -> Answer<runtime::UpdateResponse>;
}

/// A container's tar stream (docker cp, docker export).
pub type ArchiveStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<runtime::ArchiveChunk, Status>> + Send>>;

#[tonic::async_trait]
impl ContainersBackend for GrpcBackends {
    async fn create(&self, req: runtime::CreateRequest) -> Answer<runtime::CreateResponse> {
        Ok(self.runtime_client().create(long(req)).await?.into_inner())
    }

    async fn start(&self, id: String) -> Answer<()> {
        self.runtime_client()
            .start(long(runtime::ContainerRef { id }))
            .await?;
        Ok(())
    }

    async fn wait(&self, req: runtime::WaitRequest) -> Answer<WaitStream> {
        Ok(Box::pin(
            self.runtime_client().wait(long(req)).await?.into_inner(),
        ))
    }

    async fn inspect(&self, id: String) -> Answer<runtime::ContainerInfo> {
        Ok(self
            .runtime_client()
            .inspect(request(runtime::ContainerRef { id }))
            .await?
            .into_inner())
    }

    async fn list(&self, req: runtime::ListRequest) -> Answer<runtime::ListResponse> {
        Ok(self.runtime_client().list(request(req)).await?.into_inner())
    }

    async fn remove(&self, req: runtime::RemoveRequest) -> Answer<()> {
        self.runtime_client().remove(long(req)).await?;
        Ok(())
    }

    async fn prune(&self, req: runtime::PruneRequest) -> Answer<runtime::PruneResponse> {
        Ok(self.runtime_client().prune(long(req)).await?.into_inner())
    }

    async fn kill(&self, req: runtime::KillRequest) -> Answer<()> {
        self.runtime_client().kill(long(req)).await?;
        Ok(())
    }

    async fn stop(&self, req: runtime::StopRequest) -> Answer<()> {
        let mut done = self.runtime_client().stop(long(req)).await?.into_inner();
        match done.message().await? {
            Some(_) => Ok(()),
            None => Err(Status::unavailable("the runtime ended the stop early")),
        }
    }

    async fn restart(&self, req: runtime::StopRequest) -> Answer<()> {
        let mut done = self.runtime_client().restart(long(req)).await?.into_inner();
        match done.message().await? {
            Some(_) => Ok(()),
            None => Err(Status::unavailable("the runtime ended the restart early")),
        }
    }

    async fn rename(&self, req: runtime::RenameRequest) -> Answer<()> {
        self.runtime_client().rename(request(req)).await?;
        Ok(())
    }

    async fn network_connect(&self, req: runtime::ConnectRequest) -> Answer<()> {
        self.runtime_client().network_connect(long(req)).await?;
        Ok(())
    }

    async fn network_disconnect(&self, req: runtime::DisconnectRequest) -> Answer<()> {
        self.runtime_client().network_disconnect(long(req)).await?;
        Ok(())
    }

    async fn logs(&self, req: runtime::LogsRequest) -> Answer<LogStream> {
        Ok(Box::pin(
            self.runtime_client().logs(long(req)).await?.into_inner(),
        ))
    }

    async fn attach(&self, req: runtime::AttachRequest) -> Answer<AttachStream> {
        Ok(Box::pin(
            self.runtime_client().attach(long(req)).await?.into_inner(),
        ))
    }

    async fn input(&self, chunks: InputStream) -> Answer<()> {
        let chunks = tokio_stream::wrappers::ReceiverStream::new(chunks);
        self.runtime_client().input(long(chunks)).await?;
        Ok(())
    }

    async fn resize(&self, req: runtime::ResizeRequest) -> Answer<()> {
        self.runtime_client().resize(request(req)).await?;
        Ok(())
    }

    async fn exec_create(&self, req: runtime::ExecCreateRequest) -> Answer<String> {
        Ok(self
            .runtime_client()
            .exec_create(request(req))
            .await?
            .into_inner()
            .id)
    }

    async fn exec_start(&self, req: runtime::ExecStartRequest) -> Answer<AttachStream> {
        Ok(Box::pin(
            self.runtime_client()
                .exec_start(long(req))
                .await?
                .into_inner(),
        ))
    }

    async fn exec_inspect(&self, exec_id: String) -> Answer<runtime::ExecInfo> {
        Ok(self
            .runtime_client()
            .exec_inspect(request(runtime::ExecRef { exec_id }))
            .await?
            .into_inner())
    }

    async fn top(&self, req: runtime::TopRequest) -> Answer<runtime::TopResponse> {
        Ok(self.runtime_client().top(request(req)).await?.into_inner())
    }

    async fn stat_path(&self, req: runtime::PathRequest) -> Answer<runtime::PathStat> {
        Ok(self
            .runtime_client()
            .stat_path(long(req))
            .await?
            .into_inner())
    }

    async fn archive_path(&self, req: runtime::PathRequest) -> Answer<ArchiveStream> {
        Ok(Box::pin(
            self.runtime_client()
                .archive_path(long(req))
                .await?
                .into_inner(),
        ))
    }

    async fn extract_to_dir(&self, body: Upload<runtime::ExtractChunk>) -> Answer<()> {
        let body = relay(body);
        self.runtime_client().extract_to_dir(long(body)).await?;
        Ok(())
    }

    async fn export(&self, id: String) -> Answer<ArchiveStream> {
        Ok(Box::pin(
            self.runtime_client()
                .export(long(runtime::ContainerRef { id }))
                .await?
                .into_inner(),
        ))
    }

    async fn changes(&self, id: String) -> Answer<images::ChangesResponse> {
        Ok(self
            .runtime_client()
            .changes(long(runtime::ContainerRef { id }))
            .await?
            .into_inner())
    }

    async fn commit(&self, req: runtime::CommitRequest) -> Answer<runtime::CommitResponse> {
        Ok(self.runtime_client().commit(long(req)).await?.into_inner())
    }

    async fn stats(&self, req: runtime::StatsRequest) -> Answer<StatsStream> {
        Ok(Box::pin(
            self.runtime_client().stats(long(req)).await?.into_inner(),
        ))
    }

    async fn pause(&self, id: String) -> Answer<()> {
        self.runtime_client()
            .pause(long(runtime::ContainerRef { id }))
            .await?;
        Ok(())
    }

    async fn unpause(&self, id: String) -> Answer<()> {
        self.runtime_client()
            .unpause(long(runtime::ContainerRef { id }))
            .await?;
        Ok(())
    }

    async fn update(&self, req: runtime::UpdateRequest) -> Answer<runtime::UpdateResponse> {
        Ok(self.runtime_client().update(long(req)).await?.into_inner())
    }
}

/// The network calls.
#[tonic::async_trait]
pub trait NetworksBackend: Send + Sync + 'static {
    async fn create_network(
        &self,
        req: network::CreateNetworkRequest,
    ) -> Answer<network::NetworkInfo>;
    async fn list_networks(
        &self,
        filters: network::NetworkFilters,
    ) -> Answer<Vec<network::NetworkInfo>>;
    async fn inspect_network(&self, id: String) -> Answer<network::NetworkInfo>;
    async fn remove_network(&self, id: String) -> Answer<()>;
    /// The names of the networks removed.
    async fn prune_networks(&self, filters: network::NetworkFilters) -> Answer<Vec<String>>;
    /// The network an endpoint would join, its settings checked.
    async fn check_endpoint(
        &self,
        req: network::EndpointRequest,
    ) -> Answer<network::NetworkRecord> {
        let info = self.inspect_network(req.network).await?;
        Ok(info.network.unwrap_or_default())
    }
}

#[tonic::async_trait]
impl NetworksBackend for GrpcBackends {
    async fn create_network(
        &self,
        req: network::CreateNetworkRequest,
    ) -> Answer<network::NetworkInfo> {
        Ok(self
            .network_client()
            .create_network(long(req))
            .await?
            .into_inner())
    }

    async fn list_networks(
        &self,
        filters: network::NetworkFilters,
    ) -> Answer<Vec<network::NetworkInfo>> {
        Ok(self
            .network_client()
            .list_networks(request(network::ListNetworksRequest {
                filters: Some(filters),
            }))
            .await?
            .into_inner()
            .networks)
    }

    async fn inspect_network(&self, id: String) -> Answer<network::NetworkInfo> {
        Ok(self
            .network_client()
            .inspect_network(request(network::NetworkRef { id }))
            .await?
            .into_inner())
    }

    async fn remove_network(&self, id: String) -> Answer<()> {
        self.network_client()
            .remove_network(long(network::NetworkRef { id }))
            .await?;
        Ok(())
    }

    async fn prune_networks(&self, filters: network::NetworkFilters) -> Answer<Vec<String>> {
        Ok(self
            .network_client()
            .prune_networks(long(network::PruneNetworksRequest {
                filters: Some(filters),
            }))
            .await?
            .into_inner()
            .deleted)
    }

    async fn check_endpoint(
        &self,
        req: network::EndpointRequest,
    ) -> Answer<network::NetworkRecord> {
        Ok(self
            .network_client()
            .check_endpoint(request(req))
            .await?
            .into_inner())
    }
}

/// The volume calls.
#[tonic::async_trait]
pub trait VolumesBackend: Send + Sync + 'static {
    async fn create_volume(&self, req: volumes::CreateRequest) -> Answer<volumes::Volume>;
    async fn list_volumes(&self, filters: volumes::VolumeFilters) -> Answer<Vec<volumes::Volume>>;
    async fn inspect_volume(&self, name: String) -> Answer<volumes::Volume>;
    async fn remove_volume(&self, name: String, force: bool) -> Answer<()>;
    /// The names of the volumes removed and the bytes reclaimed.
    async fn prune_volumes(
        &self,
        filters: volumes::VolumeFilters,
        all: bool,
    ) -> Answer<(Vec<String>, u64)>;
}

#[tonic::async_trait]
impl VolumesBackend for GrpcBackends {
    async fn create_volume(&self, req: volumes::CreateRequest) -> Answer<volumes::Volume> {
        Ok(self.volumes_client().create(long(req)).await?.into_inner())
    }

    async fn list_volumes(&self, filters: volumes::VolumeFilters) -> Answer<Vec<volumes::Volume>> {
        Ok(self
            .volumes_client()
            .list(request(volumes::ListRequest {
                filters: Some(filters),
            }))
            .await?
            .into_inner()
            .volumes)
    }

    async fn inspect_volume(&self, name: String) -> Answer<volumes::Volume> {
        Ok(self
            .volumes_client()
            .inspect(request(volumes::VolumeRef { name }))
            .await?
            .into_inner())
    }

    async fn remove_volume(&self, name: String, force: bool) -> Answer<()> {
        self.volumes_client()
            .remove(long(volumes::RemoveRequest { name, force }))
            .await?;
        Ok(())
    }

    async fn prune_volumes(
        &self,
        filters: volumes::VolumeFilters,
        all: bool,
    ) -> Answer<(Vec<String>, u64)> {
        let r = self
            .volumes_client()
            .prune(long(volumes::PruneRequest {
                filters: Some(filters),
                all,
            }))
            .await?
            .into_inner();
        Ok((r.deleted, r.space_reclaimed))
    }
}

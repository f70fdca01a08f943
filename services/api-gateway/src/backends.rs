//! What the gateway asks the backend services, behind a trait so handlers can be tested with
//! fakes. The real implementation calls each service over gRPC with the trace context attached.

use std::time::Duration;

use berth_proto::{
    images::v1 as images, network::v1 as network, runtime::v1 as runtime, volumes::v1 as volumes,
};
use berth_service::trace_interceptor;
use berth_types::ServiceName;
use tonic::{Status, transport::Channel};

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

#[tonic::async_trait]
impl SystemBackend for GrpcBackends {
    async fn runtime_info(&self) -> Answer<runtime::InfoResponse> {
        let mut c = runtime::runtime_client::RuntimeClient::with_interceptor(
            self.runtime.clone(),
            trace_interceptor,
        );
        Ok(c.info(request(runtime::InfoRequest {})).await?.into_inner())
    }

    async fn images_info(&self) -> Answer<images::InfoResponse> {
        let mut c = images::images_client::ImagesClient::with_interceptor(
            self.images.clone(),
            trace_interceptor,
        );
        Ok(c.info(request(images::InfoRequest {})).await?.into_inner())
    }

    async fn network_info(&self) -> Answer<network::InfoResponse> {
        let mut c = network::network_client::NetworkClient::with_interceptor(
            self.network.clone(),
            trace_interceptor,
        );
        Ok(c.info(request(network::InfoRequest {})).await?.into_inner())
    }

    async fn volumes_info(&self) -> Answer<volumes::InfoResponse> {
        let mut c = volumes::volumes_client::VolumesClient::with_interceptor(
            self.volumes.clone(),
            trace_interceptor,
        );
        Ok(c.info(request(volumes::InfoRequest {})).await?.into_inner())
    }

    async fn containers_usage(&self) -> Answer<runtime::DiskUsageResponse> {
        let mut c = runtime::runtime_client::RuntimeClient::with_interceptor(
            self.runtime.clone(),
            trace_interceptor,
        );
        Ok(c.disk_usage(request(runtime::DiskUsageRequest {}))
            .await?
            .into_inner())
    }

    async fn images_usage(&self) -> Answer<images::DiskUsageResponse> {
        let mut c = images::images_client::ImagesClient::with_interceptor(
            self.images.clone(),
            trace_interceptor,
        );
        Ok(c.disk_usage(request(images::DiskUsageRequest {}))
            .await?
            .into_inner())
    }

    async fn volumes_usage(&self) -> Answer<volumes::DiskUsageResponse> {
        let mut c = volumes::volumes_client::VolumesClient::with_interceptor(
            self.volumes.clone(),
            trace_interceptor,
        );
        Ok(c.disk_usage(request(volumes::DiskUsageRequest {}))
            .await?
            .into_inner())
    }
}

//! `docker login`: credentials checked against the registry, as dockerd's `POST /auth` does.

use berth_types::ImageRef;
use oci_client::{RegistryOperation, errors::OciDistributionError, secrets::RegistryAuth};

use crate::{ImagesError, registry::Credentials, service::ImageService};

fn unauthorized() -> ImagesError {
    ImagesError::Unauthorized("unauthorized: incorrect username or password".to_owned())
}

impl ImageService {
    /// Succeeds when the registry accepts the credentials. `server` is a host[:port] or a URL;
    /// empty means Docker Hub.
    pub(crate) async fn login(&self, server: &str, creds: Credentials) -> Result<(), ImagesError> {
        let host = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        let host = match host {
            "" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
            h => h,
        };
        // Any repository of the registry serves to ask for a token; none is read.
        let probe: ImageRef = format!("{host}/library/berth-login-probe")
            .parse()
            .map_err(|e: berth_types::ReferenceError| {
                ImagesError::InvalidArgument(e.to_string())
            })?;
        let endpoint = self
            .registries
            .endpoints(&probe)
            .pop()
            .expect("the registry itself is always an endpoint");
        let client = self.registries.client(&endpoint);
        let reference = crate::registry::oci_reference(&probe, &endpoint);
        let auth = creds.to_auth();
        let token = client
            .auth(&reference, &auth, RegistryOperation::Pull)
            .await
            .map_err(|e| match e {
                OciDistributionError::AuthenticationFailure(_) => unauthorized(),
                other => ImagesError::Registry(format!("login to {host}: {other}")),
            })?;
        if token.is_some() || matches!(auth, RegistryAuth::Anonymous) {
            return Ok(());
        }
        // Basic auth (or none asked): an authenticated request tells whether it is accepted.
        match client.catalog(&reference, &auth, Some(1), None).await {
            Ok(_) => Ok(()),
            Err(OciDistributionError::UnauthorizedError { .. })
            | Err(OciDistributionError::AuthenticationFailure(_)) => Err(unauthorized()),
            Err(OciDistributionError::ServerError { code: 401, .. }) => Err(unauthorized()),
            Err(OciDistributionError::RegistryError { envelope, .. })
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, oci_client::errors::OciErrorCode::Unauthorized)) =>
            {
                Err(unauthorized())
            }
            // A registry without a catalog still accepted the credentials for /v2/.
            Err(e) => {
                tracing::debug!(error = %e, "catalog unavailable after login");
                Ok(())
            }
        }
    }
}

//! `GET /distribution/{name}/json` (moby's distribution router; docker-py's
//! `images.get_registry_data`): the registry's descriptor of a reference and the platforms it
//! offers, asked of the images service, which reads the manifest without pulling the image.
//! Names contain `/` (`127.0.0.1:5000/team/app:1`), so the route is matched on its suffix.

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::get,
};
use berth_proto::images::v1 as pb;
use serde_json::{Map, Value, json};

use crate::{
    error::{ApiError, json_response},
    registry_auth,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/distribution/{*rest}", get(inspect))
}

async fn inspect(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(name) = rest.strip_suffix("/json").filter(|n| !n.is_empty()) else {
        return Err(ApiError::not_found("page not found"));
    };
    let auth = registry_auth::decode(headers.get("X-Registry-Auth").and_then(|v| v.to_str().ok()))?;
    let d = st
        .images
        .distribution(pb::DistributionRequest {
            reference: name.to_owned(),
            auth: Some(auth),
        })
        .await
        .map_err(|e| ApiError::from_status(&e))?;
    Ok(json_response(StatusCode::OK, &render(&d)))
}

/// moby's `registry.DistributionInspect`: an OCI descriptor and OCI platforms, whose optional
/// fields are left out when empty.
fn render(d: &pb::DistributionResponse) -> Value {
    let platforms: Vec<Value> = d
        .platforms
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("architecture".into(), json!(p.architecture));
            m.insert("os".into(), json!(p.os));
            if !p.os_version.is_empty() {
                m.insert("os.version".into(), json!(p.os_version));
            }
            if !p.os_features.is_empty() {
                m.insert("os.features".into(), json!(p.os_features));
            }
            if !p.variant.is_empty() {
                m.insert("variant".into(), json!(p.variant));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "Descriptor": {"mediaType": d.media_type, "digest": d.digest, "size": d.size},
        "Platforms": platforms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_moby_shape() {
        let v = render(&pb::DistributionResponse {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: "sha256:abc".into(),
            size: 42,
            platforms: vec![
                pb::RegistryPlatform {
                    architecture: "amd64".into(),
                    os: "linux".into(),
                    ..Default::default()
                },
                pb::RegistryPlatform {
                    architecture: "arm".into(),
                    os: "linux".into(),
                    variant: "v7".into(),
                    ..Default::default()
                },
            ],
        });
        assert_eq!(
            v,
            json!({
                "Descriptor": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:abc", "size": 42},
                "Platforms": [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm", "os": "linux", "variant": "v7"}],
            })
        );
    }
}

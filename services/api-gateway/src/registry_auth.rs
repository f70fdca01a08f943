//! `X-Registry-Auth`: base64url-encoded JSON AuthConfig, as the docker CLI and SDKs send it.

use base64::Engine;
use berth_proto::images::v1 as pb;
use serde::Deserialize;

use crate::error::ApiError;

/// Docker's AuthConfig; keys are lowercase on the wire (camel case accepted too).
#[derive(Debug, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default, alias = "Username")]
    pub username: String,
    #[serde(default, alias = "Password")]
    pub password: String,
    #[serde(default, alias = "ServerAddress")]
    pub serveraddress: String,
    #[serde(default, alias = "IdentityToken")]
    pub identitytoken: String,
    #[serde(default, alias = "RegistryToken")]
    pub registrytoken: String,
}

impl From<AuthConfig> for pb::Auth {
    fn from(a: AuthConfig) -> pb::Auth {
        pb::Auth {
            username: a.username,
            password: a.password,
            server_address: a.serveraddress,
            identity_token: a.identitytoken,
            registry_token: a.registrytoken,
        }
    }
}

/// Decodes the header; absent or empty means anonymous.
pub fn decode(header: Option<&str>) -> Result<pb::Auth, ApiError> {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(pb::Auth::default());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
        .map_err(|_| ApiError::invalid("invalid X-Registry-Auth header: not base64"))?;
    // `{}` and `null` are anonymous.
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Auth header: {e}")))?;
    Ok(parse(v)
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Auth header: {e}")))?
        .into())
}

/// An AuthConfig object (null: anonymous), keys in any case as Go decodes them.
pub fn parse(v: serde_json::Value) -> Result<AuthConfig, String> {
    if v.is_null() {
        return Ok(AuthConfig::default());
    }
    crate::docker::keys::parse(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_cli_and_sdk_forms() {
        let json = br#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}"#;
        let url = base64::engine::general_purpose::URL_SAFE.encode(json);
        let a = decode(Some(&url)).unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
        let std = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(decode(Some(&std)).unwrap().server_address, "127.0.0.1:5000");
        assert_eq!(decode(None).unwrap(), pb::Auth::default());
        let empty = base64::engine::general_purpose::URL_SAFE.encode(b"{}");
        assert_eq!(decode(Some(&empty)).unwrap(), pb::Auth::default());
        assert!(decode(Some("%%%")).is_err());
        let camel = br#"{"userName":"u","serverAddress":"r","identityToken":"t"}"#;
        let a = decode(Some(
            &base64::engine::general_purpose::URL_SAFE.encode(camel),
        ))
        .unwrap();
        assert_eq!((a.username.as_str(), a.server_address.as_str()), ("u", "r"));
        assert_eq!(a.identity_token, "t");
    }
}

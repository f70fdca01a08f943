//! API versions (`/v1.NN/` prefixes) and the headers every response carries (moby's
//! VersionMiddleware).

use std::{cmp::Ordering, fmt, str::FromStr};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

/// The Docker engine version whose API Berth serves.
pub const ENGINE_VERSION: &str = "28.2.2";
/// `Server` header; clients read the OS from it (`Docker/<ver> (<os>)`).
const SERVER_HEADER: &str = "Docker/28.2.2 (linux)";
pub const MAX: ApiVersion = ApiVersion {
    major: 1,
    minor: 50,
};
const MAX_STR: &str = "1.50";
pub const MIN: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

/// `1.50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl Ord for ApiVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor).cmp(&(other.major, other.minor))
    }
}

impl PartialOrd for ApiVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for ApiVersion {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s.split_once('.').ok_or(())?;
        Ok(ApiVersion {
            major: major.parse().map_err(|_| ())?,
            minor: minor.parse().map_err(|_| ())?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Splits `/v1.50/info` into (`1.50`, `/info`). Paths without a version prefix are unchanged.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((version, &rest[end..]))
}

/// Adds the engine headers to a response.
fn add_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static(SERVER_HEADER));
    h.insert("Api-Version", HeaderValue::from_static(MAX_STR));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
}

/// Checks and strips the version prefix, records the version for handlers, and stamps the
/// engine headers on every response.
pub async fn middleware(mut req: Request, next: Next) -> Response {
    let mut version = MAX;
    if let Some((v, rest)) = split_version(req.uri().path()) {
        let parsed: Option<ApiVersion> = v.parse().ok();
        let mut res = match parsed {
            Some(p) if p > MAX => Some(
                ApiError::invalid(format!(
                    "client version {v} is too new. Maximum supported API version is {MAX}"
                ))
                .into_response(),
            ),
            // moby writes this one as plain text.
            Some(p) if p < MIN => Some(
                (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!(
                        "client version {v} is too old. Minimum supported API version is {MIN}, please upgrade your client to a newer version\n"
                    ),
                )
                    .into_response(),
            ),
            Some(p) => {
                version = p;
                None
            }
            None => Some(ApiError::not_found("page not found").into_response()),
        };
        if let Some(res) = res.as_mut() {
            add_headers(res);
            return std::mem::take(res);
        }
        let rest = if rest.is_empty() { "/" } else { rest };
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    let mut res = next.run(req).await;
    add_headers(&mut res);
    res
}

/// `OPTIONS` on anything answers 200, as moby does (CORS preflight).
pub fn options_ok() -> Response {
    (StatusCode::OK, Body::empty()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_prefixes() {
        assert_eq!(split_version("/v1.50/info"), Some(("1.50", "/info")));
        assert_eq!(
            split_version("/v1.24/images/a/b:c/json"),
            Some(("1.24", "/images/a/b:c/json"))
        );
        assert_eq!(split_version("/v1.50"), Some(("1.50", "")));
        assert_eq!(split_version("/info"), None);
        assert_eq!(split_version("/volumes/x"), None);
    }

    #[test]
    fn header_constants_agree() {
        assert_eq!(MAX.to_string(), MAX_STR);
        assert_eq!(SERVER_HEADER, format!("Docker/{ENGINE_VERSION} (linux)"));
    }

    #[test]
    fn orders_versions() {
        assert!("1.51".parse::<ApiVersion>().unwrap() > MAX);
        assert!("1.9".parse::<ApiVersion>().unwrap() < MIN);
        assert!("1.100".parse::<ApiVersion>().unwrap() > MAX);
        assert!("x".parse::<ApiVersion>().is_err());
    }
}

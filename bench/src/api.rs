//! The Engine API without the CLI: one HTTP/1.1 request on the engine's unix socket, as an
//! SDK (docker-py, Docker's Go client) makes it. Timing a call this way measures the engine
//! alone; through the CLI, its own start (about 15 ms per command) is part of every figure.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Instant,
};

use anyhow::{Context, bail, ensure};

use crate::Target;

/// The API version both engines speak (Debian's dockerd 20.10 stops at 1.41).
const VERSION: &str = "v1.41";

/// `method path` with a JSON `body` on `t`'s socket: (seconds until the whole answer was
/// read, status, body). A status of 400 or more is an error naming the answer.
pub(crate) fn call(
    t: &Target<'_>,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(f64, u16, String)> {
    let Some(socket) = t.host.strip_prefix("unix://") else {
        bail!("{}: not a unix socket: {}", t.kind.name(), t.host);
    };
    let started = Instant::now();
    let mut s = UnixStream::connect(socket).with_context(|| format!("connecting to {socket}"))?;
    let request = format!(
        "{method} /{VERSION}{path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let secs = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .with_context(|| format!("{}: no HTTP status in {text:?}", t.kind.name()))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    ensure!(
        status < 400,
        "{}: {method} {path}: {status} {body}",
        t.kind.name()
    );
    Ok((secs, status, body))
}

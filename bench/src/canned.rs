//! The CLI's floor under `docker ps -a`: the same docker CLI against a trivial server that
//! answers with a copy of one engine's own answers (the API version its `/_ping` gives and its
//! `GET /containers/json?all=1` body, captured once). What the CLI takes there is its own
//! start-up, decoding and printing of that body; what an engine takes above it is the engine's
//! (its answer's time, and the framing of the real socket).

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    sync::Arc,
};

use anyhow::{Context, bail, ensure};

use crate::{
    Target,
    fake_engine::{self, Answer, FakeEngine},
};

/// The docker CLI's own newest API version (28.x): it never asks for a newer one.
const CLI_MAX_API: (u32, u32) = (1, 50);

/// One engine's answers, as the CLI would get them.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// The engine's `Api-Version` (what its `/_ping` says).
    pub(crate) api_version: String,
    /// `GET /v<negotiated>/containers/json?all=1`'s body.
    pub(crate) body: Vec<u8>,
}

/// One HTTP/1.0 request (so that the answer is never chunked) on `socket`: (head, body).
fn get(socket: &str, method: &str, path: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let mut s = UnixStream::connect(socket).with_context(|| format!("connecting to {socket}"))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("{method} {path}: no end of the headers in the answer");
    };
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    ensure!(
        head.split(' ').nth(1) == Some("200"),
        "{method} {path}: {head}"
    );
    Ok((head, answer[split + 4..].to_vec()))
}

/// `1.41` → (1, 41).
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The version the CLI settles on with an engine that says `engine`: the older of the two.
fn negotiated(engine: &str) -> String {
    let v = parse_version(engine).map_or(CLI_MAX_API, |v| v.min(CLI_MAX_API));
    format!("{}.{}", v.0, v.1)
}

/// A header's value in an answer's head (case-insensitive name).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// What engine `t` answers to the CLI's `docker ps -a` (its ping, then the list).
pub(crate) fn capture(t: &Target<'_>) -> anyhow::Result<Captured> {
    let Some(socket) = t.host.strip_prefix("unix://") else {
        bail!("{}: not a unix socket: {}", t.kind.name(), t.host);
    };
    let (head, _) = get(socket, "GET", "/_ping")?;
    let api_version = header(&head, "Api-Version")
        .with_context(|| format!("{}: no Api-Version in {head}", t.kind.name()))?
        .to_owned();
    let path = format!("/v{}/containers/json?all=1", negotiated(&api_version));
    let (_, body) = get(socket, "GET", &path)?;
    Ok(Captured { api_version, body })
}

/// Serves `answers` on `<dir>/<name>.sock`: the ping and the list; anything else is a 404.
pub(crate) fn serve(dir: &Path, name: &str, answers: Captured) -> anyhow::Result<FakeEngine> {
    let body: Arc<[u8]> = answers.body.into();
    FakeEngine::serve(dir, name, &answers.api_version, move |r| {
        if r.path.ends_with("/_ping") {
            fake_engine::ping()
        } else if r.path.contains("/containers/json") {
            Answer {
                status: "200 OK",
                content_type: "application/json",
                body: body.clone(),
            }
        } else {
            Answer {
                status: "404 Not Found",
                content_type: "application/json",
                body: Arc::from(&b"{\"message\":\"not served by the canned server\"}"[..]),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_settles_on_the_older_version() {
        assert_eq!(negotiated("1.41"), "1.41");
        assert_eq!(negotiated("1.50"), "1.50");
        assert_eq!(negotiated("1.51"), "1.50");
        assert_eq!(negotiated("junk"), "1.50");
    }

    #[test]
    fn serves_the_captured_body_and_ping_over_one_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let canned = serve(
            dir.path(),
            "t",
            Captured {
                api_version: "1.41".to_owned(),
                body: b"[{\"Id\":\"x\"}]".to_vec(),
            },
        )
        .expect("serve");
        let socket = canned.socket().to_str().expect("utf-8").to_owned();
        let mut s = UnixStream::connect(&socket).expect("connect");
        s.write_all(
            b"HEAD /_ping HTTP/1.1\r\nHost: d\r\n\r\nGET /v1.41/containers/json?all=1 HTTP/1.1\r\n\
              Host: d\r\n\r\n",
        )
        .expect("write");
        let mut reader = std::io::BufReader::new(s);
        let mut text = String::new();
        // The ping's head, then the list's head and its body.
        while !text.ends_with("[{\"Id\":\"x\"}]") {
            let mut buf = [0u8; 256];
            let n = reader.read(&mut buf).expect("read");
            assert!(n > 0, "connection closed after {text:?}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert_eq!(text.matches("Api-Version: 1.41").count(), 2, "{text}");
        assert!(text.contains("Content-Length: 12\r\n"), "{text}");
        let (head, _) = get(&socket, "GET", "/_ping").expect("ping");
        assert_eq!(header(&head, "api-version"), Some("1.41"));
        drop(canned);
        assert!(!dir.path().join("t.sock").exists());
    }
}

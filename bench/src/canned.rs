//! The CLI's floor under `docker ps -a`: the same docker CLI against a trivial server that
//! answers with a copy of one engine's own answers (the API version its `/_ping` gives and its
//! `GET /containers/json?all=1` body, captured once). What the CLI takes there is its own
//! start-up, decoding and printing of that body; what an engine takes above it is the engine's
//! (its answer's time, and the framing of the real socket).

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use anyhow::{Context, bail, ensure};

use crate::Target;

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

/// The trivial server; stopped and its socket removed on drop.
pub(crate) struct Canned {
    /// `unix://...`, for DOCKER_HOST.
    pub(crate) host: String,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Canned {
    /// Serves `answers` on `<dir>/<name>.sock`.
    pub(crate) fn serve(dir: &Path, name: &str, answers: Captured) -> anyhow::Result<Canned> {
        let socket = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(answers);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let answers = answers.clone();
                    std::thread::spawn(move || {
                        // A client that goes away ends its connection; nothing to report.
                        let _ = answer(conn, &answers);
                    });
                }
            })
        };
        Ok(Canned {
            host: format!("unix://{}", socket.display()),
            socket,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop up so that it sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The whole answer (head and body) to one request line.
fn response(answers: &Captured, method: &str, path: &str) -> Vec<u8> {
    let (status, kind, body): (&str, &str, &[u8]) = if path.ends_with("/_ping") {
        ("200 OK", "text/plain; charset=utf-8", b"OK")
    } else if path.contains("/containers/json") {
        ("200 OK", "application/json", &answers.body)
    } else {
        (
            "404 Not Found",
            "application/json",
            b"{\"message\":\"not served by the canned server\"}",
        )
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nApi-Version: {}\r\nOstype: linux\r\nContent-Type: {kind}\r\n\
         Content-Length: {}\r\n\r\n",
        answers.api_version,
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body);
    }
    out
}

/// Answers every request of one (keep-alive) connection.
fn answer(conn: UnixStream, answers: &Captured) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        // The headers; a body (none for the CLI's GET and HEAD) is not expected.
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            if h.trim().is_empty() {
                break;
            }
        }
        conn.write_all(&response(answers, &method, &path))?;
        // HTTP/1.0 (the capture's own requests): one answer per connection.
        if line.trim_end().ends_with("HTTP/1.0") {
            return Ok(());
        }
    }
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
        let canned = Canned::serve(
            dir.path(),
            "t",
            Captured {
                api_version: "1.41".to_owned(),
                body: b"[{\"Id\":\"x\"}]".to_vec(),
            },
        )
        .expect("serve");
        let socket = canned.host.strip_prefix("unix://").expect("unix");
        let mut s = UnixStream::connect(socket).expect("connect");
        s.write_all(
            b"HEAD /_ping HTTP/1.1\r\nHost: d\r\n\r\nGET /v1.41/containers/json?all=1 HTTP/1.1\r\n\
              Host: d\r\n\r\n",
        )
        .expect("write");
        let mut reader = BufReader::new(s);
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
        let (head, _) = get(socket, "GET", "/_ping").expect("ping");
        assert_eq!(header(&head, "api-version"), Some("1.41"));
        drop(canned);
        assert!(!dir.path().join("t.sock").exists());
    }
}

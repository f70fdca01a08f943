//! A trivial Docker API server on a unix socket, for the CLI's floors: the same docker CLI
//! command against a server that answers at once, so that what is measured is the CLI's own
//! start-up, sending and decoding. Every request's body is read (chunked or with a length) and
//! thrown away; the answer comes from the caller's function.

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

use anyhow::Context;

/// One request as the server saw it.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
}

/// One answer: status line text (`200 OK`), content type, body. A `HEAD` gets no body.
pub(crate) struct Answer {
    pub(crate) status: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: Arc<[u8]>,
}

type Responder = dyn Fn(&Request) -> Answer + Send + Sync;

/// The server; stopped and its socket removed on drop.
pub(crate) struct FakeEngine {
    /// `unix://...`, for DOCKER_HOST.
    pub(crate) host: String,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeEngine {
    /// Serves on `<dir>/<name>.sock`, every answer carrying `Api-Version: <api_version>`; one
    /// thread per connection.
    pub(crate) fn serve(
        dir: &Path,
        name: &str,
        api_version: &str,
        respond: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> anyhow::Result<FakeEngine> {
        let socket = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let respond: Arc<Responder> = Arc::new(respond);
        let api_version: Arc<str> = api_version.into();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (respond, api_version) = (respond.clone(), api_version.clone());
                    std::thread::spawn(move || {
                        // A client that goes away ends its connection; nothing to report.
                        let _ = serve_connection(conn, &api_version, &*respond);
                    });
                }
            })
        };
        Ok(FakeEngine {
            host: format!("unix://{}", socket.display()),
            socket,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    #[cfg(test)]
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for FakeEngine {
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

/// A request's line and its headers (lower-case names).
type Head = (String, Vec<(String, String)>);

/// The request line and the headers of one request; `None` at the end.
fn head(r: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
        }
    }
    Ok(Some((line.trim().to_owned(), headers)))
}

/// Reads a request body (chunked or with a length) and throws it away; returns its length.
fn drain(r: &mut impl BufRead, headers: &[(String, String)]) -> std::io::Result<u64> {
    let get = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut total = 0;
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let size = size.trim().split(';').next().unwrap_or("0");
            let n = u64::from_str_radix(size, 16).map_err(std::io::Error::other)?;
            if n == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l)? == 0 || l.trim().is_empty() {
                        return Ok(total);
                    }
                }
            }
            total += std::io::copy(&mut r.by_ref().take(n), &mut std::io::sink())?;
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        }
    }
    let n = get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut r.by_ref().take(n), &mut std::io::sink())
}

/// Answers every request of one (keep-alive) connection; an HTTP/1.0 request ends it.
fn serve_connection(
    conn: UnixStream,
    api_version: &str,
    respond: &Responder,
) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::with_capacity(1 << 16, conn);
    while let Some((line, headers)) = head(&mut r)? {
        drain(&mut r, &headers)?;
        let mut parts = line.split_whitespace();
        let req = Request {
            method: parts.next().unwrap_or("").to_owned(),
            path: parts.next().unwrap_or("").to_owned(),
        };
        let a = respond(&req);
        write!(
            w,
            "HTTP/1.1 {}\r\nApi-Version: {api_version}\r\nOstype: linux\r\nContent-Type: {}\r\n\
             Content-Length: {}\r\n\r\n",
            a.status,
            a.content_type,
            a.body.len()
        )?;
        if req.method != "HEAD" {
            w.write_all(&a.body)?;
        }
        if line.ends_with("HTTP/1.0") {
            return Ok(());
        }
    }
    Ok(())
}

/// `200 OK` with `body` as `content_type`.
pub(crate) fn ok(content_type: &'static str, body: &[u8]) -> Answer {
    Answer {
        status: "200 OK",
        content_type,
        body: body.into(),
    }
}

/// The ping's answer.
pub(crate) fn ping() -> Answer {
    ok("text/plain; charset=utf-8", b"OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_and_drains_a_chunked_body_on_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let e = FakeEngine::serve(dir.path(), "t", "1.47", |r| {
            if r.path.ends_with("/_ping") {
                ping()
            } else {
                ok("application/json", r.path.as_bytes())
            }
        })
        .unwrap();
        let mut s = UnixStream::connect(e.socket()).unwrap();
        s.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s.write_all(b"POST /v1.47/build?t=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        s.write_all(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        s.write_all(b"GET /v1.47/x HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert_eq!(out.matches("Api-Version: 1.47").count(), 3, "{out}");
        // The HEAD's answer has a length but no body; the others echo their paths.
        assert!(out.contains("Content-Length: 2\r\n\r\nHTTP/1.1"), "{out}");
        assert!(out.contains("/v1.47/build?t=x"), "{out}");
        assert!(out.ends_with("\r\n\r\n/v1.47/x"), "{out}");
        let socket = e.socket().to_owned();
        drop(e);
        assert!(!socket.exists());
    }
}

//! The docker CLI's own floor for `docker build`: the same build against an engine that does
//! nothing (it answers `/_ping`, reads the whole context and answers a successful build in
//! one line), so that what is left is the CLI's start-up, its `_ping`, and tarring and
//! sending the context. No engine can answer a build faster than that.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::Path,
    thread::JoinHandle,
};

use anyhow::Context;

/// A Docker API on a unix socket that answers everything as done, and builds by draining.
pub(crate) struct NullEngine {
    pub(crate) host: String,
    _thread: JoinHandle<()>,
}

impl NullEngine {
    /// Listens on `dir/null-engine.sock`; one thread per connection.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<NullEngine> {
        let path = dir.join("null-engine.sock");
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("listening on {}", path.display()))?;
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = serve(conn);
                });
            }
        });
        Ok(NullEngine {
            host: format!("unix://{}", path.display()),
            _thread: thread,
        })
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
                while head_line(r)? {}
                return Ok(total);
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

/// Reads one line; false when it is empty (the end of the trailers) or the input ended.
fn head_line(r: &mut impl BufRead) -> std::io::Result<bool> {
    let mut l = String::new();
    Ok(r.read_line(&mut l)? > 0 && !l.trim().is_empty())
}

fn serve(conn: UnixStream) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::with_capacity(1 << 16, conn);
    while let Some((line, headers)) = head(&mut r)? {
        drain(&mut r, &headers)?;
        let body: &[u8] = if line.contains("/build") {
            b"{\"stream\":\"Successfully built 0123456789ab\\n\"}\r\n"
        } else if line.starts_with("HEAD ") {
            b""
        } else {
            b"OK"
        };
        let len = if line.starts_with("HEAD ") {
            2
        } else {
            body.len()
        };
        write!(
            w,
            "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: {}\r\nContent-Length: {len}\r\n\r\n",
            if line.contains("/build") {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            }
        )?;
        w.write_all(body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_and_drains_a_chunked_build() {
        let dir = tempfile::tempdir().unwrap();
        let e = NullEngine::start(dir.path()).unwrap();
        let path = e.host.strip_prefix("unix://").unwrap();
        let mut s = UnixStream::connect(path).unwrap();
        s.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s.write_all(b"POST /v1.47/build?t=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        s.write_all(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(
            out.ends_with("Successfully built 0123456789ab\\n\"}\r\n"),
            "{out}"
        );
    }
}

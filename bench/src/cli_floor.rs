//! The docker CLI's own floor for `docker build`: the same build against an engine that does
//! nothing (it answers `/_ping`, reads the whole context and answers a successful build in
//! one line), so that what is left is the CLI's start-up, its `_ping`, and tarring and
//! sending the context. No engine can answer a build faster than that.

use std::path::Path;

use crate::fake_engine::{self, FakeEngine};

/// A Docker API that answers everything as done, and builds by draining the context.
pub(crate) fn null_engine(dir: &Path) -> anyhow::Result<FakeEngine> {
    FakeEngine::serve(dir, "null-engine", "1.47", |r| {
        if r.path.contains("/build") {
            fake_engine::ok(
                "application/json",
                b"{\"stream\":\"Successfully built 0123456789ab\\n\"}\r\n",
            )
        } else {
            fake_engine::ping()
        }
    })
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        os::unix::net::UnixStream,
    };

    use super::*;

    #[test]
    fn answers_a_build_as_built() {
        let dir = tempfile::tempdir().unwrap();
        let e = null_engine(dir.path()).unwrap();
        let mut s = UnixStream::connect(e.socket()).unwrap();
        s.write_all(b"POST /v1.47/build?t=x HTTP/1.0\r\nContent-Length: 2\r\n\r\nab")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.ends_with("Successfully built 0123456789ab\\n\"}\r\n"),
            "{out}"
        );
    }
}

//! docker logs: the json-file log the shim writes, read back entry by entry (stdout/stderr
//! selection, tail, since/until, timestamps), and followed by polling the file until the
//! container has stopped and the file is drained.

use std::{
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;
use tokio::sync::mpsc;
use tonic::Status;

use crate::{container::parse_nanos, container_error::ContainerError, lifecycle::Containers};

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// What to send of the log.
#[derive(Clone)]
pub(crate) struct Selection {
    stdout: bool,
    stderr: bool,
    since: i64,
    until: i64,
    timestamps: bool,
}

impl Selection {
    fn from_request(req: &pb::LogsRequest) -> Selection {
        Selection {
            stdout: req.stdout,
            stderr: req.stderr,
            since: req.since,
            until: req.until,
            timestamps: req.timestamps,
        }
    }

    /// The entry as a chunk to send, or None if it is filtered out.
    fn chunk(&self, line: &str) -> Option<pb::LogEntry> {
        let e: Entry = serde_json::from_str(line).ok()?;
        let stream = match e.stream.as_str() {
            "stdout" if self.stdout => 1,
            "stderr" if self.stderr => 2,
            _ => return None,
        };
        if self.since > 0 || self.until > 0 {
            let t = parse_nanos(&e.time).unwrap_or(0);
            if self.since > 0 && t < self.since {
                return None;
            }
            if self.until > 0 && t > self.until {
                return None;
            }
        }
        let data = if self.timestamps {
            format!("{} {}", e.time, e.log).into_bytes()
        } else {
            e.log.into_bytes()
        };
        Some(pb::LogEntry { stream, data })
    }
}

/// The log files oldest first: `<log>.N` … `<log>.1`, `<log>`.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    for n in 1..1000 {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if !p.exists() {
            break;
        }
        rotated.push((n, p));
    }
    rotated.reverse();
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_owned());
    out
}

/// Complete lines of the whole log, and the size of the current file that was read.
fn read_all(path: &Path) -> (Vec<String>, u64) {
    let mut lines = Vec::new();
    let mut size = 0;
    for f in files(path) {
        let text = std::fs::read(&f).unwrap_or_default();
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if f == path {
            size = complete as u64;
        }
        lines.extend(
            String::from_utf8_lossy(&text[..complete])
                .lines()
                .map(str::to_owned),
        );
    }
    (lines, size)
}

/// New complete lines of the current file from `offset`; a file shorter than the offset was
/// rotated and is read from its start.
fn read_from(path: &Path, offset: &mut u64) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < *offset {
        *offset = 0;
    }
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    String::from_utf8_lossy(&buf[..complete])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The last `tail` selected lines ("all" or negative: everything).
fn tail_lines(sel: &Selection, lines: &[String], tail: &str) -> Vec<pb::LogEntry> {
    let chunks: Vec<pb::LogEntry> = lines.iter().filter_map(|l| sel.chunk(l)).collect();
    match tail.trim().parse::<i64>() {
        Ok(n) if n >= 0 => {
            let n = n as usize;
            chunks[chunks.len().saturating_sub(n)..].to_vec()
        }
        _ => chunks,
    }
}

type LogStream = mpsc::Receiver<Result<pb::LogEntry, Status>>;

impl Containers {
    pub(crate) fn logs(
        self: &Arc<Self>,
        req: &pb::LogsRequest,
    ) -> Result<LogStream, ContainerError> {
        let c = self.find(&req.id)?;
        if crate::spec::log_rotation(&c.spec).is_none() {
            return Err(ContainerError::new(
                berth_types::ErrorKind::NotImplemented,
                "configured logging driver does not support reading",
            ));
        }
        let sel = Selection::from_request(req);
        let path = self.log_path(&c.id);
        let (lines, mut offset) = read_all(&path);
        let initial = tail_lines(&sel, &lines, &req.tail);
        let (tx, rx) = mpsc::channel(64);
        let follow = req.follow && c.state.running();
        let this = self.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            for e in initial {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            loop {
                // Read the state first: lines written before the exit are drained below.
                let running = matches!(this.store.get(&id), Ok(Some(c)) if c.state.running());
                for line in read_from(&path, &mut offset) {
                    if let Some(e) = sel.chunk(&line)
                        && tx.send(Ok(e)).await.is_err()
                    {
                        return;
                    }
                }
                if !running || tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel() -> Selection {
        Selection {
            stdout: true,
            stderr: true,
            since: 0,
            until: 0,
            timestamps: false,
        }
    }

    #[test]
    fn tail_and_streams() {
        let lines: Vec<String> = [
            r#"{"log":"out\n","stream":"stdout","time":"2026-01-01T00:00:01.000000001Z"}"#,
            r#"{"log":"err\n","stream":"stderr","time":"2026-01-01T00:00:02Z"}"#,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let all = tail_lines(&sel(), &lines, "all");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].stream, 2);
        let last = tail_lines(&sel(), &lines, "1");
        assert_eq!(last[0].data, b"err\n");
        let only_out = Selection {
            stderr: false,
            ..sel()
        };
        assert_eq!(tail_lines(&only_out, &lines, "all").len(), 1);
        let ts = Selection {
            timestamps: true,
            ..sel()
        };
        assert_eq!(
            tail_lines(&ts, &lines, "1")[0].data,
            b"2026-01-01T00:00:02Z err\n"
        );
        let since = Selection {
            since: parse_nanos("2026-01-01T00:00:01.5Z").unwrap(),
            ..sel()
        };
        assert_eq!(tail_lines(&since, &lines, "all").len(), 1);
    }

    #[test]
    fn follows_appends_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x-json.log");
        std::fs::write(&p, "a\nb").unwrap();
        let mut off = 0;
        assert_eq!(read_from(&p, &mut off), ["a"]);
        std::fs::write(&p, "a\nb\n").unwrap();
        assert_eq!(read_from(&p, &mut off), ["b"]);
        std::fs::write(&p, "c\n").unwrap();
        assert_eq!(read_from(&p, &mut off), ["c"]);
        std::fs::write(dir.path().join("x-json.log.1"), "old\n").unwrap();
        assert_eq!(read_all(&p).0, ["old", "c"]);
    }
}

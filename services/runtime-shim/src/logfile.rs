//! Docker's json-file log driver: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-…Z"}`, lines longer than 16 KiB split into
//! partial entries (without the newline), and rotation: once the file has reached `max_size`,
//! the next entry goes to a new file, the old ones shifting to `<log>.1`, `<log>.2`, … and
//! only `max_file` files kept in all (with `max_file` 1 the file is truncated instead).

use std::{
    fs::File,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::Serialize;

use crate::{config::LogConfig, exit::rfc3339_nano, stdio::StreamKind};

/// Docker splits log lines at this size.
const MAX_LINE: usize = 16 * 1024;

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// The log file with its rotation.
pub struct JsonLog {
    path: PathBuf,
    max_size: u64,
    max_file: u32,
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

impl JsonLog {
    pub fn open(cfg: &LogConfig) -> std::io::Result<JsonLog> {
        if let Some(dir) = cfg.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(&cfg.path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: cfg.path.clone(),
            max_size: cfg.max_size,
            max_file: cfg.max_file.max(1),
            file,
            size,
        })
    }

    /// Appends one encoded entry, rotating first if the file is full.
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.max_size > 0 && self.size >= self.max_size {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_file < 2 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(numbered(self.max_file - 1));
        for n in (1..self.max_file - 1).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Turns a process's output into log entries: whole lines per stream, partial lines kept
/// until their newline (or until they reach 16 KiB, or the stream ends).
pub struct LogSink {
    log: JsonLog,
    partial: [Vec<u8>; 2],
}

impl LogSink {
    pub fn new(log: JsonLog) -> LogSink {
        LogSink {
            log,
            partial: [Vec::new(), Vec::new()],
        }
    }

    pub fn feed(&mut self, stream: StreamKind, mut data: &[u8]) -> std::io::Result<()> {
        let time = rfc3339_nano(SystemTime::now());
        let mut out = Vec::new();
        let idx = stream as usize;
        while !data.is_empty() {
            let room = MAX_LINE - self.partial[idx].len();
            let take = match data.iter().position(|b| *b == b'\n') {
                Some(i) if i < room => i + 1,
                _ => data.len().min(room),
            };
            self.partial[idx].extend_from_slice(&data[..take]);
            data = &data[take..];
            let line = &self.partial[idx];
            if line.ends_with(b"\n") || line.len() >= MAX_LINE {
                out.clear();
                encode(&mut out, line, stream, &time);
                self.partial[idx].clear();
                // One entry per write, so that rotation happens between entries.
                self.log.append(&out)?;
            }
        }
        self.partial[idx].shrink_to(1024);
        Ok(())
    }

    /// The stream ended: its partial line is written as it is.
    pub fn close(&mut self, stream: StreamKind) -> std::io::Result<()> {
        let idx = stream as usize;
        if self.partial[idx].is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        encode(
            &mut out,
            &self.partial[idx],
            stream,
            &rfc3339_nano(SystemTime::now()),
        );
        self.partial[idx] = Vec::new();
        self.log.append(&out)
    }

    pub fn sync(&mut self) -> std::io::Result<()> {
        self.log.file.sync_data()
    }
}

fn encode(out: &mut Vec<u8>, line: &[u8], stream: StreamKind, time: &str) {
    let text = String::from_utf8_lossy(line);
    let e = Entry {
        log: &text,
        stream: stream.as_str(),
        time,
    };
    if serde_json::to_writer(&mut *out, &e).is_ok() {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let cfg = LogConfig {
            path: path.clone(),
            max_size: 0,
            max_file: 1,
        };
        let mut sink = LogSink::new(JsonLog::open(&cfg).unwrap());
        sink.feed(StreamKind::Stdout, b"hel").unwrap();
        sink.feed(StreamKind::Stderr, b"oops\n").unwrap();
        sink.feed(StreamKind::Stdout, b"lo\nwor").unwrap();
        sink.close(StreamKind::Stdout).unwrap();
        let l = lines(&path);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0]["log"], "oops\n");
        assert_eq!(l[0]["stream"], "stderr");
        assert_eq!(l[1]["log"], "hello\n");
        assert_eq!(l[1]["stream"], "stdout");
        assert_eq!(l[2]["log"], "wor");
        assert!(l[2]["time"].as_str().unwrap().ends_with('Z'));

        let long = vec![b'x'; MAX_LINE + 10];
        sink.feed(StreamKind::Stdout, &long).unwrap();
        sink.feed(StreamKind::Stdout, b"\n").unwrap();
        let l = lines(&path);
        assert_eq!(l[3]["log"].as_str().unwrap().len(), MAX_LINE);
        assert_eq!(l[4]["log"].as_str().unwrap().len(), 11);
    }

    #[test]
    fn rotation_keeps_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let cfg = LogConfig {
            path: path.clone(),
            max_size: 100,
            max_file: 3,
        };
        let mut sink = LogSink::new(JsonLog::open(&cfg).unwrap());
        for i in 0..20 {
            sink.feed(StreamKind::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let p1 = dir.path().join("c-json.log.1");
        let p2 = dir.path().join("c-json.log.2");
        assert!(p1.exists() && p2.exists());
        assert!(!dir.path().join("c-json.log.3").exists());
        let last = lines(&path);
        assert_eq!(last.last().unwrap()["log"], "line 19\n");
        assert!(std::fs::metadata(&p1).unwrap().len() >= 100);

        let one = LogConfig {
            path: dir.path().join("one.log"),
            max_size: 50,
            max_file: 1,
        };
        let mut sink = LogSink::new(JsonLog::open(&one).unwrap());
        for i in 0..10 {
            sink.feed(StreamKind::Stdout, format!("l{i}\n").as_bytes())
                .unwrap();
        }
        assert!(!dir.path().join("one.log.1").exists());
        assert!(std::fs::metadata(&one.path).unwrap().len() < 150);
    }
}

//! `exit.json`: the exit status as the shim records it in the bundle, written atomically
//! (write, fsync, rename, fsync the directory) before anyone is told the process stopped, so
//! a runtime that was down learns every exit from disk.

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::BundleError;

pub const EXIT_FILE: &str = "exit.json";

/// `{"exit_code": 137, "signal": 9, "exited_at": "2026-…Z", "oom_killed": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal that killed the process (Docker's convention).
    pub exit_code: i32,
    /// The signal that killed the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// RFC 3339 with nanoseconds, UTC.
    pub exited_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

impl ExitStatus {
    /// An exit now: `exit_code` (128 + the signal for a killed process) and the signal.
    pub fn new(exit_code: i32, signal: Option<i32>) -> ExitStatus {
        ExitStatus {
            exit_code,
            signal,
            exited_at: rfc3339_nano(SystemTime::now()),
            oom_killed: false,
        }
    }

    /// A process that never ran: Docker's code for the start failure.
    pub fn failed(code: i32) -> ExitStatus {
        ExitStatus::new(code, None)
    }

    /// Reads `<bundle>/exit.json`; `Ok(None)` when there is none (the process has not
    /// exited, or its exit was never recorded).
    pub fn read(bundle: &Path) -> Result<Option<ExitStatus>, BundleError> {
        crate::fs::read_json(&exit_path(bundle))
    }

    /// Writes `<bundle>/exit.json` atomically.
    pub fn write(&self, bundle: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::fs::write_atomic(&exit_path(bundle), &bytes)
    }
}

/// `<bundle>/exit.json`.
pub fn exit_path(bundle: &Path) -> PathBuf {
    bundle.join(EXIT_FILE)
}

/// Go's RFC3339Nano in UTC: `2006-01-02T15:04:05.999999999Z`, trailing zeros of the fraction
/// dropped (as Docker writes log and event times).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_format_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_400_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.1234Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::new(951_782_400, 5);
        assert_eq!(rfc3339_nano(leap), "2000-02-29T00:00:00.000000005Z");
    }

    #[test]
    fn exit_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ExitStatus::read(dir.path()).unwrap().is_none());
        let s = ExitStatus::failed(127);
        s.write(dir.path()).unwrap();
        assert_eq!(ExitStatus::read(dir.path()).unwrap().unwrap(), s);
        let text = std::fs::read_to_string(exit_path(dir.path())).unwrap();
        assert!(!text.contains("signal"), "{text}");
        let killed = ExitStatus {
            oom_killed: true,
            ..ExitStatus::new(137, Some(9))
        };
        killed.write(dir.path()).unwrap();
        assert_eq!(ExitStatus::read(dir.path()).unwrap().unwrap(), killed);
    }

    #[test]
    fn exit_file_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            exit_path(dir.path()),
            r#"{"exit_code": 143, "signal": 15, "exited_at": "2026-01-02T03:04:05.5Z"}"#,
        )
        .unwrap();
        let s = ExitStatus::read(dir.path()).unwrap().unwrap();
        assert_eq!(
            (s.exit_code, s.signal, s.oom_killed),
            (143, Some(15), false)
        );
        assert_eq!(s.exited_at, "2026-01-02T03:04:05.5Z");
        std::fs::write(exit_path(dir.path()), "{").unwrap();
        assert!(matches!(
            ExitStatus::read(dir.path()),
            Err(BundleError::Invalid { .. })
        ));
    }
}

//! Crash points for the tests that kill the runtime between two steps of a change:
//! `BERTH_RUNTIME_FAILPOINT=<point>:<marker file>` makes the process abort when it reaches
//! `<point>`, once (the marker file is created first, and a later run that finds it goes on),
//! as a SIGKILL would stop it there. Unset, a point costs one load of a cached value.

use std::sync::OnceLock;

/// The configured point and its marker file.
fn configured() -> Option<&'static (String, std::path::PathBuf)> {
    static POINT: OnceLock<Option<(String, std::path::PathBuf)>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            let v = std::env::var("BERTH_RUNTIME_FAILPOINT").ok()?;
            let (point, marker) = v.split_once(':')?;
            Some((point.to_owned(), marker.into()))
        })
        .as_ref()
}

/// Aborts the process at `point` if it is the configured one and has not fired yet.
pub(crate) fn hit(point: &str) {
    let Some((p, marker)) = configured() else {
        return;
    };
    if p != point {
        return;
    }
    let fresh = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker)
        .is_ok();
    if fresh {
        tracing::error!(point, "failpoint: aborting");
        std::process::abort();
    }
}

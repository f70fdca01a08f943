//! The chaos run's clients: each loops over run, exec, logs, stop, rm, tag, rmi, pull and
//! events with the real docker CLI, and records what every call got.

use std::{
    collections::BTreeMap,
    process::Stdio,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use berth_testutil::{BusyboxEngine, unix_now};

use crate::Kills;

/// A call that takes longer than this hangs (a violation).
const DEADLINE: Duration = Duration::from_secs(60);

/// A small xorshift generator (no dependency for a killer's dice).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// What the workload's successful calls did to one container.
#[derive(Debug, Default, Clone)]
pub(crate) struct Life {
    pub(crate) name: String,
    pub(crate) stopped: bool,
    pub(crate) removed: bool,
}

/// Every call's outcome.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) calls: u64,
    pub(crate) ok: u64,
    pub(crate) docker_errors: u64,
    /// Connections lost (or refused) while the gateway was killed and not back yet.
    pub(crate) lost_to_gateway: u64,
    /// Hangs, connections lost without a gateway kill, answers that are no Docker error.
    pub(crate) violations: Vec<String>,
    /// Containers a `docker run -d` started, by ID.
    pub(crate) containers: BTreeMap<String, Life>,
    /// Names of every container the workload tried to run.
    pub(crate) names: Vec<String>,
}

enum Outcome {
    Ok(String),
    Failed,
}

fn is_lost(stderr: &str) -> bool {
    [
        "Cannot connect to the Docker daemon",
        "EOF",
        "connection reset",
        "broken pipe",
        "connection refused",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// Runs one docker command with a deadline and records its outcome.
fn call(s: &BusyboxEngine, journal: &Mutex<Journal>, kills: &Kills, args: &[&str]) -> Outcome {
    let started = Instant::now();
    let child = s
        .engine
        .docker_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(DEADLINE);
    let mut j = journal.lock().unwrap();
    j.calls += 1;
    let out = match out {
        Ok(Ok(out)) => out,
        _ => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            j.violations
                .push(format!("docker {args:?} hung for {DEADLINE:?}"));
            return Outcome::Failed;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        j.ok += 1;
        return Outcome::Ok(stdout);
    }
    // The gateway was killed during the call, or was not back yet.
    let ended = Instant::now();
    let gateway_killed = kills.lock().unwrap().iter().any(|(what, at, back)| {
        *what == "berth-api-gateway" && *at <= ended && *back + Duration::from_secs(1) >= started
    });
    if stderr.contains("Error response from daemon:") {
        j.docker_errors += 1;
    } else if (is_lost(&stderr) || (stderr.is_empty() && out.status.code() == Some(255)))
        && gateway_killed
    {
        // (`docker exec` exits 255 silently when the daemon is gone for its exit code.)
        j.lost_to_gateway += 1;
    } else if !stderr.is_empty() && args[0] == "pull" && !is_lost(&stderr) {
        // A pull's error arrives in its progress stream, printed as is.
        j.docker_errors += 1;
    } else {
        // When, in the logs' clock, to find the engine's side of it.
        let at = time::OffsetDateTime::now_utc();
        j.violations.push(format!(
            "docker {args:?} (ended {at}, took {:?}): {}: {stderr}",
            ended - started,
            out.status
        ));
    }
    Outcome::Failed
}

/// One client's loop until `stop`.
pub(crate) fn client(
    n: u64,
    s: &BusyboxEngine,
    stop: &AtomicBool,
    journal: &Mutex<Journal>,
    kills: &Kills,
) {
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let name = format!("chaos-{n}-{i}");
        journal.lock().unwrap().names.push(name.clone());
        let id = match call(
            s,
            journal,
            kills,
            &["run", "-d", "--name", &name, &s.image, "sleep", "1000"],
        ) {
            Outcome::Ok(id) => {
                journal.lock().unwrap().containers.insert(
                    id.clone(),
                    Life {
                        name: name.clone(),
                        ..Life::default()
                    },
                );
                Some(id)
            }
            Outcome::Failed => None,
        };
        call(s, journal, kills, &["exec", &name, "true"]);
        call(s, journal, kills, &["logs", &name]);
        let stopped = matches!(
            call(s, journal, kills, &["stop", "-t", "1", &name]),
            Outcome::Ok(_)
        );
        let removed = matches!(call(s, journal, kills, &["rm", &name]), Outcome::Ok(_));
        if let Some(id) = id
            && let Some(life) = journal.lock().unwrap().containers.get_mut(&id)
        {
            life.stopped = stopped;
            life.removed = removed;
        }
        if i.is_multiple_of(3) {
            let tag = format!("chaos-{n}:{i}");
            call(s, journal, kills, &["tag", &s.image, &tag]);
            call(s, journal, kills, &["rmi", &tag]);
        }
        if i.is_multiple_of(5) {
            call(s, journal, kills, &["pull", "-q", &s.image]);
        }
        if i.is_multiple_of(4) {
            let since = (unix_now() - 30).to_string();
            let until = unix_now().to_string();
            call(
                s,
                journal,
                kills,
                &["events", "--since", &since, "--until", &until],
            );
        }
    }
}

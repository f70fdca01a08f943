//! The chaos run behind `scripts/chaos.sh` (ignored in the normal suite): a mixed workload from
//! concurrent docker clients while a killer SIGKILLs a random Berth process (nats-server too)
//! every few seconds, then the failure model's invariants, printed as figures.
//!
//! `CHAOS_SECONDS` (default 120) bounds the run, `CHAOS_CLIENTS` (default 4) the clients,
//! `CHAOS_KILL_EVERY` (seconds, default 4) the killer's pace.

#[path = "chaos/invariants.rs"]
mod invariants;
#[path = "chaos/workload.rs"]
mod workload;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use berth_testutil::{BusyboxEngine, eventually_explained, unix_now};
use nix::{sys::signal::Signal, unistd::Pid};

use workload::{Journal, Rng};

const TARGETS: [&str; 6] = [
    "nats-server",
    "berth-images",
    "berth-network",
    "berth-volumes",
    "berth-runtime",
    "berth-api-gateway",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (what, when killed, when back) of every kill; "back" is when the API answered again for the
/// gateway, the kill itself for the others.
pub(crate) type Kills = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

#[test]
#[ignore = "a chaos run: scripts/chaos.sh"]
fn chaos() {
    let seconds = env_u64("CHAOS_SECONDS", 120);
    let clients = env_u64("CHAOS_CLIENTS", 4);
    let every = Duration::from_secs(env_u64("CHAOS_KILL_EVERY", 4).max(1));
    let s = Arc::new(BusyboxEngine::with_tags(&["v2"]));
    let since = unix_now();
    let stop = Arc::new(AtomicBool::new(false));
    let journal = Arc::new(Mutex::new(Journal::default()));
    let kills: Kills = Arc::new(Mutex::new(Vec::new()));

    let workers: Vec<_> = (0..clients)
        .map(|n| {
            let (s, stop, journal, kills) =
                (s.clone(), stop.clone(), journal.clone(), kills.clone());
            std::thread::spawn(move || workload::client(n, &s, &stop, &journal, &kills))
        })
        .collect();
    let killer = {
        let (s, stop, kills) = (s.clone(), stop.clone(), kills.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::seeded();
            let mut next = Instant::now() + every;
            while !stop.load(Ordering::SeqCst) {
                if Instant::now() < next {
                    std::thread::park_timeout(Duration::from_millis(200));
                    continue;
                }
                next = Instant::now() + every;
                let target = TARGETS[rng.below(TARGETS.len())];
                if let Some(pid) = s.engine.pid_of(target) {
                    // Taken before the kill: a client may see its connection lost before
                    // this thread runs again after the signal.
                    let at = Instant::now();
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    let gateway = target == "berth-api-gateway";
                    // Until it is back, the gateway counts as down.
                    let down_until = at + Duration::from_secs(if gateway { 3600 } else { 0 });
                    let n = {
                        let mut k = kills.lock().unwrap();
                        k.push((target, at, down_until));
                        k.len() - 1
                    };
                    if gateway {
                        let deadline = at + Duration::from_secs(60);
                        while Instant::now() < deadline
                            && !s.engine.docker(&["version"]).status.success()
                        {
                            std::thread::park_timeout(Duration::from_millis(100));
                        }
                        kills.lock().unwrap()[n].2 = Instant::now();
                    }
                }
            }
        })
    };
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        std::thread::park_timeout(end - Instant::now());
    }
    stop.store(true, Ordering::SeqCst);
    killer.thread().unpark();
    killer.join().unwrap();
    for w in workers {
        w.join().unwrap();
    }

    // Every service back, and the bus: then the invariants.
    eventually_explained("every Berth service to answer again", || {
        let out = s.engine.docker(&["info", "--format", "{{json .Warnings}}"]);
        let (o, e) = berth_testutil::text(&out);
        if out.status.success() && (o.trim() == "null" || o.trim() == "[]") {
            Ok(())
        } else {
            Err(format!("{o}{e}"))
        }
    });
    let journal = journal.lock().unwrap();
    let kills = kills.lock().unwrap();
    let report = invariants::check(&s, since, &journal, &kills);
    println!("{report}");
    if report.failed() > 0 {
        // The engine's logs outlive its temporary directory, to explain the violations.
        let path = std::env::temp_dir().join("berth-chaos-engine.log");
        if std::fs::write(&path, s.engine.logs()).is_ok() {
            println!("engine logs: {}", path.display());
        }
    }
    assert_eq!(report.failed(), 0, "{report}");
}

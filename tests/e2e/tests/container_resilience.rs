//! Containers under failures and at scale: every process of `berth up` SIGKILLed in turn under
//! running containers, exits (and a dead shim) while the runtime cannot observe them, a shim
//! killed under its container, 50 containers started and removed concurrently, and what
//! `docker rm` leaves behind (nothing).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Instant,
};

use berth_testutil::{
    BusyboxEngine, Engine, eventually, eventually_explained, run, text, unix_now,
};
use nix::{sys::signal::Signal, unistd::Pid};

/// Prints `tick 0`, `tick 1`, … five times a second, forever.
const TICK: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";

/// The container fixture, with this file's own helpers.
struct Setup(BusyboxEngine);

impl std::ops::Deref for Setup {
    type Target = BusyboxEngine;

    fn deref(&self) -> &BusyboxEngine {
        &self.0
    }
}

impl Setup {
    fn new() -> Setup {
        Setup(BusyboxEngine::new())
    }

    /// The host pid of a running container's first process.
    fn pid(&self, id: &str) -> i32 {
        let pid = self.inspect(id)["State"]["Pid"]
            .as_i64()
            .unwrap_or_default() as i32;
        assert!(pid > 0, "{id} has no pid");
        pid
    }

    /// `docker info`'s warnings (`null` when there are none).
    fn warnings(&self) -> Option<String> {
        let out = self
            .engine
            .docker(&["info", "--format", "{{json .Warnings}}"]);
        out.status.success().then(|| text(&out).0.trim().to_owned())
    }

    /// The `tick N` numbers in `docker logs`, in order.
    fn logged_ticks(&self, id: &str) -> Vec<u64> {
        ticks(self.docker(&["logs", id]).lines())
    }

    /// The `die` events of the given containers since `since`: (container ID, exitCode); none
    /// while `docker events` fails.
    fn die_events(&self, since: u64, ids: &[&str]) -> Vec<(String, String)> {
        let out = self.engine.docker(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &(unix_now() + 1).to_string(),
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.ID}} {{index .Actor.Attributes \"exitCode\"}}",
        ]);
        text(&out)
            .0
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, code)| (id.to_owned(), code.to_owned()))
            .collect()
    }
}

fn ticks<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<u64> {
    lines
        .filter_map(|l| l.trim().strip_prefix("tick ")?.parse().ok())
        .collect()
}

/// The highest tick in a json-file log, read from the disk (the API may be down).
fn last_tick_on_disk(log_path: &str) -> u64 {
    let raw = std::fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<String> = raw
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["log"].as_str().map(str::to_owned))
        .collect();
    ticks(lines.iter().map(String::as_str))
        .into_iter()
        .max()
        .unwrap_or_default()
}

/// The state letter and start time (clock ticks after boot) of a process, from /proc.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

fn is_live(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

/// The same process (pid and start time) still exists and has not exited.
fn still_there(pid: i32, start: u64) -> bool {
    proc_stat(pid).is_some_and(|(state, s)| s == start && !matches!(state, 'Z' | 'X'))
}

fn signal(pid: i32, sig: Signal) {
    nix::sys::signal::kill(Pid::from_raw(pid), sig)
        .unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
}

/// The mount points of the host's cgroup hierarchies (v1 controllers, named v1, v2).
fn cgroup_mounts() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mut out: Vec<PathBuf> = mi
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let fstype = post.split(' ').next()?;
            let mount_point = PathBuf::from(pre.get(4)?);
            (matches!(fstype, "cgroup" | "cgroup2") && pre.get(3) == Some(&"/"))
                .then_some(mount_point)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every process's mount and network namespace (`mnt:[4026532…]`).
fn namespaces_in_use() -> HashSet<String> {
    let mut out = HashSet::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.parse::<i32>().is_ok())
        {
            for ns in ["mnt", "net"] {
                if let Ok(l) = std::fs::read_link(e.path().join("ns").join(ns)) {
                    out.insert(l.display().to_string());
                }
            }
        }
    }
    out
}

/// The names of everything under `dir` (symlinks not followed).
fn names_under(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            names_under(&e.path(), out);
        }
    }
}

/// A service process stopped with SIGSTOP, so it can observe nothing; SIGKILLed when dropped
/// (also when the test fails while it is frozen: cleanup's docker commands would hang on it).
struct Frozen(i32);

impl Frozen {
    fn new(pid: i32) -> Frozen {
        signal(pid, Signal::SIGSTOP);
        let f = Frozen(pid);
        eventually("the process to be stopped", || {
            proc_stat(pid).is_some_and(|(s, _)| s == 'T').then_some(())
        });
        f
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

/// Everything a container has on the host, captured while it exists, to check after
/// `docker rm` that none of it remains.
struct Footprint {
    id: String,
    /// (what, pid, start time): the shim and the container's first process.
    procs: Vec<(&'static str, i32, u64)>,
    /// The container's mount and network namespaces.
    namespaces: Vec<String>,
    /// (what, path, whether it existed when captured).
    paths: Vec<(String, PathBuf, bool)>,
    /// How many files and directories under the engine's roots were named after it.
    named: usize,
}

impl Footprint {
    fn capture(s: &Setup, id: &str) -> Footprint {
        let c = s.inspect(id);
        let bundle = s.engine.run_root.join("runtime/containers").join(id);
        let mut procs = Vec::new();
        let shim = std::fs::read_to_string(bundle.join("shim.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "berth-shim")
            });
        if let Some(pid) = shim
            && let Some((_, start)) = proc_stat(pid)
        {
            procs.push(("shim", pid, start));
        }
        let mut namespaces = Vec::new();
        let pid = c["State"]["Pid"].as_i64().unwrap_or_default() as i32;
        if pid > 0
            && let Some((_, start)) = proc_stat(pid)
        {
            procs.push(("container process", pid, start));
            for ns in ["mnt", "net"] {
                let l = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("ns link");
                namespaces.push(l.display().to_string());
            }
        }
        let mut paths: Vec<(String, PathBuf)> = vec![("bundle".to_owned(), bundle.clone())];
        if let Ok(a) = std::fs::read_to_string(bundle.join("address")) {
            let sock = a.trim().trim_start_matches("unix://").to_owned();
            paths.push(("shim socket".to_owned(), PathBuf::from(sock)));
        }
        if let Some(log) = c["LogPath"].as_str().filter(|l| !l.is_empty()) {
            let dir = Path::new(log).parent().expect("log dir").to_owned();
            paths.push(("log dir".to_owned(), dir));
        }
        if let Some(upper) = c["GraphDriver"]["Data"]["UpperDir"].as_str() {
            let dir = Path::new(upper).parent().expect("snapshot dir").to_owned();
            paths.push(("snapshot".to_owned(), dir));
        }
        for mp in cgroup_mounts() {
            paths.push((
                format!("cgroup {}", mp.display()),
                mp.join("berth").join(id),
            ));
        }
        let mut names = Vec::new();
        names_under(&s.engine.run_root, &mut names);
        names_under(&s.engine.data_root, &mut names);
        Footprint {
            id: id.to_owned(),
            named: names.iter().filter(|n| n.contains(&id[..12])).count(),
            procs,
            namespaces,
            paths: paths
                .into_iter()
                .map(|(what, p)| {
                    let there = p.exists();
                    (what, p, there)
                })
                .collect(),
        }
    }

    fn has(&self, what: &str) -> bool {
        self.paths.iter().any(|(w, _, there)| w == what && *there)
    }

    /// What a running container must have: a check that `assert_gone` can fail.
    fn assert_running(&self) {
        let procs: Vec<&str> = self.procs.iter().map(|(w, ..)| *w).collect();
        assert_eq!(procs, ["shim", "container process"], "{}", self.id);
        assert_eq!(self.namespaces.len(), 2, "{}", self.id);
        assert!(self.named > 0, "{}: no file named after it", self.id);
        for what in ["bundle", "shim socket", "log dir", "snapshot"] {
            assert!(
                self.has(what),
                "{} has no {what}: {:?}",
                self.id,
                self.paths
            );
        }
        let cgroups = self.paths.iter().filter(|(w, ..)| w.starts_with("cgroup "));
        for (what, p, there) in cgroups {
            assert!(there, "{}: no {what} dir {}", self.id, p.display());
        }
    }
}

/// Nothing of the removed containers remains: no process (shim or container), no process in
/// their mount or network namespaces, no mount, no cgroup dir in any hierarchy, no bundle,
/// socket, log or snapshot, no file named after them under the engine's roots, no record.
fn assert_gone(s: &Setup, fps: &[Footprint]) {
    eventually("the removed containers' processes to end", || {
        fps.iter()
            .all(|f| f.procs.iter().all(|(_, p, st)| !still_there(*p, *st)))
            .then_some(())
    });
    let namespaces: HashSet<&str> = fps
        .iter()
        .flat_map(|f| f.namespaces.iter().map(String::as_str))
        .collect();
    eventually(
        "no process left in the removed containers' namespaces",
        || {
            let used = namespaces_in_use();
            namespaces
                .iter()
                .all(|ns| !used.contains(*ns))
                .then_some(())
        },
    );
    let shims: HashSet<i32> = s.engine.shim_pids().into_iter().collect();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut names = Vec::new();
    names_under(&s.engine.run_root, &mut names);
    names_under(&s.engine.data_root, &mut names);
    // Nothing of the engine is ever mounted on the host (the container's mounts live in its
    // own mount namespace, checked above).
    for root in [&s.engine.data_root, &s.engine.run_root] {
        let r = root.display().to_string();
        let left: Vec<&str> = mi.lines().filter(|l| l.contains(&r)).collect();
        assert!(left.is_empty(), "mounts under {r}: {left:?}");
    }
    for f in fps {
        for (_, pid, _) in f.procs.iter().filter(|(w, ..)| *w == "shim") {
            assert!(!shims.contains(pid), "{}: its shim {pid} remains", f.id);
        }
        for l in mi.lines() {
            assert!(
                !l.contains(&f.id) && !f.namespaces.iter().any(|ns| l.contains(ns.as_str())),
                "{}: a mount remains: {l}",
                f.id
            );
        }
        for (what, p, _) in &f.paths {
            assert!(!p.exists(), "{}: its {what} {} remains", f.id, p.display());
        }
        let short = &f.id[..12];
        let left: Vec<&String> = names.iter().filter(|n| n.contains(short)).collect();
        assert!(left.is_empty(), "{}: files remain: {left:?}", f.id);
    }
    if !fps.is_empty() {
        let mut args = vec!["inspect"];
        args.extend(fps.iter().map(|f| f.id.as_str()));
        let out = s.engine.docker(&args);
        let (o, e) = text(&out);
        assert!(!out.status.success(), "{o}");
        for f in fps {
            assert!(e.contains(&format!("No such object: {}", f.id)), "{e}");
        }
    }
}

/// Freezes `service` (SIGSTOP) until the containers have logged more, then SIGKILLs it, waits
/// for `berth up` to restart it and the API to answer, and checks that the containers ran on
/// undisturbed and that their output written meanwhile is all there.
fn outage(s: &Setup, service: &str, ids: &[String], pids: &[i32], warnings: &Option<String>) {
    let t0 = Instant::now();
    let before = s
        .engine
        .pid_of(service)
        .unwrap_or_else(|| panic!("{service} is not running"));
    let logs: Vec<String> = ids
        .iter()
        .map(|id| s.inspect(id)["LogPath"].as_str().unwrap().to_owned())
        .collect();
    let at_freeze: Vec<u64> = logs.iter().map(|l| last_tick_on_disk(l)).collect();
    let frozen = Frozen::new(before);
    // The shims write the output on their own while the service can do nothing.
    let during: Vec<u64> = eventually(&format!("ticks while {service} is stopped"), || {
        let now: Vec<u64> = logs.iter().map(|l| last_tick_on_disk(l)).collect();
        now.iter()
            .zip(&at_freeze)
            .all(|(n, f)| *n >= f + 2)
            .then_some(now)
    });
    drop(frozen);
    let killed = Instant::now();
    eventually(&format!("berth up to restart {service}"), || {
        s.engine.pid_of(service).filter(|p| *p != before)
    });
    eventually_explained(&format!("the API to answer again after {service}"), || {
        let version = s.engine.docker(&["version"]);
        if !version.status.success() {
            return Err(format!("docker version: {:?}", text(&version)));
        }
        let now = s.warnings();
        if now != *warnings {
            return Err(format!(
                "docker info warnings: {now:?}, before: {warnings:?}"
            ));
        }
        let ps = s
            .engine
            .docker(&["ps", "--no-trunc", "--format", "{{.ID}} {{.State}}"]);
        let ps = text(&ps);
        if !ids
            .iter()
            .all(|id| ps.0.lines().any(|l| l == format!("{id} running")))
        {
            return Err(format!("docker ps: {ps:?}"));
        }
        let images = s
            .engine
            .docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
        let images = text(&images);
        if !images.0.contains(&s.image) {
            return Err(format!("docker image ls: {images:?}"));
        }
        // network and volumes answer the API through /info (a warning when down, checked
        // above) and, for volumes, /system/df.
        let df = s.engine.docker(&["system", "df"]);
        if !df.status.success() {
            return Err(format!("docker system df: {:?}", text(&df)));
        }
        Ok(())
    });
    let back = killed.elapsed();
    for (id, pid) in ids.iter().zip(pids) {
        let c = s.inspect(id);
        assert_eq!(c["State"]["Status"], "running", "after {service}: {id}");
        assert_eq!(c["State"]["Pid"], *pid, "after {service}: {id}");
        assert!(
            is_live(*pid),
            "after {service}: {id}'s process {pid} is gone"
        );
    }
    for (id, d) in ids.iter().zip(&during) {
        let got = s.logged_ticks(id);
        let last = got.last().copied().unwrap_or_default();
        assert!(
            last >= *d,
            "after {service}: {id}: docker logs ends at tick {last}, tick {d} was written"
        );
        let want: Vec<u64> = (0..=last).collect();
        assert_eq!(got, want, "after {service}: {id}: ticks lost");
        eventually(&format!("{id} to keep ticking after {service}"), || {
            let out = s.docker(&["logs", "--tail", "1", id]);
            ticks(out.lines())
                .last()
                .is_some_and(|n| *n > last)
                .then_some(())
        });
    }
    eprintln!(
        "{service}: stopped until {} ticks were logged, killed, API back {back:?} later; round {:?}",
        during
            .iter()
            .zip(&at_freeze)
            .map(|(d, f)| d - f)
            .min()
            .unwrap_or_default(),
        t0.elapsed()
    );
}

#[test]
fn containers_outlive_every_service_killed_in_turn() {
    let s = Setup::new();
    let since = unix_now();
    let trap = format!("trap 'echo got TERM; exit 0' TERM; {TICK}");
    let ids = vec![
        s.docker(&["run", "-d", "--name", "tick1", &s.image, "sh", "-c", TICK]),
        s.docker(&["run", "-d", "--name", "tick2", &s.image, "sh", "-c", TICK]),
        s.docker(&[
            "run", "-d", "--name", "trapper", &s.image, "sh", "-c", &trap,
        ]),
    ];
    let pids: Vec<i32> = ids.iter().map(|id| s.pid(id)).collect();
    let fps: Vec<Footprint> = ids.iter().map(|id| Footprint::capture(&s, id)).collect();
    fps.iter().for_each(Footprint::assert_running);
    let warnings = s.warnings();
    assert!(warnings.is_some(), "docker info failed");

    // `berth up` supervises its own nats-server too (no nats-url is configured).
    for service in [
        "nats-server",
        "berth-images",
        "berth-network",
        "berth-volumes",
        "berth-runtime",
        "berth-api-gateway",
    ] {
        outage(&s, service, &ids, &pids, &warnings);
    }

    // docker wait, registered before the stops, returns each exit code.
    let waits: Vec<_> = ids
        .iter()
        .map(|id| {
            s.engine
                .docker_cmd()
                .args(["wait", id])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("docker wait")
        })
        .collect();
    // The trap answers TERM at once: exit 0, long before the 10 s timeout's SIGKILL.
    let t = Instant::now();
    s.docker(&["stop", "trapper"]);
    eprintln!("docker stop trapper: {:?}", t.elapsed());
    // sh as PID 1 without a trap ignores TERM: SIGKILL after 1 s.
    s.docker(&["stop", "-t", "1", "tick1", "tick2"]);
    let want = ["137", "137", "0"];
    for ((w, id), code) in waits.into_iter().zip(&ids).zip(want) {
        let out = w.wait_with_output().expect("docker wait");
        let (o, e) = text(&out);
        assert!(out.status.success(), "docker wait {id}: {o}{e}");
        assert_eq!(o.trim(), code, "docker wait {id}");
        assert_eq!(s.docker(&["wait", id]), code, "docker wait {id} afterwards");
        let c = s.inspect(id);
        assert_eq!(c["State"]["Status"], "exited", "{id}");
        assert_eq!(c["State"]["ExitCode"].to_string(), code, "{id}");
    }
    let logs = s.docker(&["logs", "trapper"]);
    assert_eq!(logs.lines().last(), Some("got TERM"), "{logs}");
    for id in &ids {
        let got = s.logged_ticks(id);
        assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>(), "{id}");
    }

    // The bus works after NATS and every publisher were killed: each exit was published once.
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut dies = eventually("the die events", || {
        let d = s.die_events(since, &id_refs);
        (d.len() >= 3).then_some(d)
    });
    dies.sort();
    let mut expected: Vec<(String, String)> = ids
        .iter()
        .zip(want)
        .map(|(id, c)| (id.clone(), c.to_owned()))
        .collect();
    expected.sort();
    assert_eq!(dies, expected);

    for id in &ids {
        s.docker(&["rm", id]);
    }
    assert_gone(&s, &fps);
    assert_eq!(s.docker(&["ps", "-aq"]), "");
}

#[test]
fn exits_while_the_runtime_is_down_are_recorded_when_it_returns() {
    let s = Setup::new();
    let since = unix_now();
    let trapped = s.docker(&[
        "run",
        "-d",
        "--name",
        "trapped",
        &s.image,
        "sh",
        "-c",
        "trap 'echo caught TERM; exit 42' TERM; while true; do sleep 0.2; done",
    ]);
    let killed = s.docker(&["run", "-d", "--name", "killed", &s.image, "sleep", "1000"]);
    let orphaned = s.docker(&["run", "-d", "--name", "orphaned", &s.image, "sleep", "1000"]);
    let fps = [
        Footprint::capture(&s, &trapped),
        Footprint::capture(&s, &killed),
        Footprint::capture(&s, &orphaned),
    ];
    fps.iter().for_each(Footprint::assert_running);
    let (p_trapped, p_killed) = (s.pid(&trapped), s.pid(&killed));
    let (_, orphan_shim, _) = fps[2].procs[0];
    let (_, orphan_pid, orphan_start) = fps[2].procs[1];
    let runtime = s.engine.pid_of("berth-runtime").expect("runtime running");

    // `berth up` restarts a failed service at once and leaves one that exited cleanly down
    // for good: freezing the runtime is what keeps it from observing the exits.
    let frozen = Frozen::new(runtime);
    // Two containers exit; the third loses its shim and runs on, unsupervised.
    signal(p_trapped, Signal::SIGTERM);
    signal(p_killed, Signal::SIGKILL);
    signal(orphan_shim, Signal::SIGKILL);
    eventually("the shims to record both exits", || {
        fps[..2]
            .iter()
            .all(|f| {
                let bundle = s.engine.run_root.join("runtime/containers").join(&f.id);
                bundle.join("exit.json").exists()
            })
            .then_some(())
    });
    eventually("the shim to die", || (!is_live(orphan_shim)).then_some(()));
    assert!(!is_live(p_trapped) && !is_live(p_killed));
    assert!(still_there(orphan_pid, orphan_start));
    let exited_by = time::OffsetDateTime::now_utc();
    drop(frozen);
    eventually("berth up to restart the runtime", || {
        s.engine.pid_of("berth-runtime").filter(|p| *p != runtime)
    });

    let ps = eventually_explained("docker ps -a to show the three exits", || {
        let out = s
            .engine
            .docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        let o = text(&out).0;
        if out.status.success() && o.lines().filter(|l| l.contains(" Exited (")).count() == 3 {
            Ok(o)
        } else {
            Err(format!("{:?}", text(&out)))
        }
    });
    let mut lines: Vec<&str> = ps.lines().collect();
    lines.sort();
    assert!(lines[0].starts_with("killed Exited (137) "), "{ps}");
    // The shim is gone: what it left runs no more, killed through the cgroup.
    assert!(lines[1].starts_with("orphaned Exited (137) "), "{ps}");
    assert!(lines[2].starts_with("trapped Exited (42) "), "{ps}");
    assert!(!still_there(orphan_pid, orphan_start), "the orphan runs on");
    for (id, code) in [(&trapped, 42), (&killed, 137), (&orphaned, 137)] {
        let c = s.inspect(id);
        assert_eq!(c["State"]["Status"], "exited", "{id}");
        assert_eq!(c["State"]["Running"], false, "{id}");
        assert_eq!(c["State"]["Pid"], 0, "{id}");
        assert_eq!(c["State"]["ExitCode"], code, "{id}");
        assert_eq!(s.docker(&["wait", id]), code.to_string(), "{id}");
        if id == &orphaned {
            continue;
        }
        // When the shim saw the exit, not when the runtime learned of it.
        let finished = c["State"]["FinishedAt"].as_str().unwrap();
        let finished =
            time::OffsetDateTime::parse(finished, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("FinishedAt {finished:?}: {e}"));
        assert!(
            finished <= exited_by && finished.unix_timestamp() >= since as i64,
            "{id}: FinishedAt {finished} is not when it exited (before {exited_by})"
        );
    }
    assert_eq!(s.docker(&["logs", &trapped]), "caught TERM");

    let ids = [trapped.as_str(), killed.as_str(), orphaned.as_str()];
    let mut dies = eventually("the die events", || {
        let d = s.die_events(since, &ids);
        (d.len() >= 3).then_some(d)
    });
    dies.sort();
    let mut want = vec![
        (trapped.clone(), "42".to_owned()),
        (killed.clone(), "137".to_owned()),
        (orphaned.clone(), "137".to_owned()),
    ];
    want.sort();
    assert_eq!(dies, want, "one die event per exit");

    s.docker(&["rm", &trapped, &killed, &orphaned]);
    assert_gone(&s, &fps);
}

#[test]
fn fifty_containers_started_and_removed_concurrently() {
    const N: usize = 50;
    let s = Setup::new();
    let concurrently = |args: &dyn Fn(usize) -> Vec<String>| -> Vec<Output> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let mut cmd = s.engine.docker_cmd();
                    cmd.args(args(i));
                    scope.spawn(move || run(&mut cmd))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        })
    };

    let t = Instant::now();
    let image = s.image.clone();
    let outs = concurrently(&|_| {
        ["run", "-d", "--network", "none", &image, "sleep", "1000"]
            .map(str::to_owned)
            .to_vec()
    });
    let started = t.elapsed();
    let mut ids = Vec::new();
    for out in &outs {
        let (o, e) = text(out);
        assert!(out.status.success(), "docker run failed:\n{o}\n{e}");
        ids.push(o.trim().to_owned());
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), N, "{ids:?}");
    let listed: HashSet<String> = s
        .docker(&["ps", "-q", "--no-trunc"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, ids.iter().cloned().collect::<HashSet<_>>());
    let names: HashSet<String> = s
        .docker(&["ps", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), N, "{names:?}");
    assert!(names.iter().all(|n| !n.is_empty()));

    // One shim per container, each with its container running in namespaces of its own.
    let fps: Vec<Footprint> = ids.iter().map(|id| Footprint::capture(&s, id)).collect();
    fps.iter().for_each(Footprint::assert_running);
    let shims: HashSet<i32> = s.engine.shim_pids().into_iter().collect();
    let their_shims: HashSet<i32> = fps.iter().map(|f| f.procs[0].1).collect();
    assert_eq!(shims.len(), N);
    assert_eq!(shims, their_shims);
    let namespaces: HashSet<&String> = fps.iter().flat_map(|f| &f.namespaces).collect();
    assert_eq!(
        namespaces.len(),
        2 * N,
        "each container has its own mnt and net ns"
    );

    // The runtime, SIGKILLed under them, reconnects to all 50 shims and loses none.
    let runtime = s.engine.pid_of("berth-runtime").expect("runtime running");
    signal(runtime, Signal::SIGKILL);
    eventually("berth up to restart the runtime", || {
        s.engine.pid_of("berth-runtime").filter(|p| *p != runtime)
    });
    eventually_explained("docker ps to list the 50 again", || {
        let out = s
            .engine
            .docker(&["ps", "-q", "--no-trunc", "--filter", "status=running"]);
        let got: HashSet<String> = text(&out).0.lines().map(str::to_owned).collect();
        if got == listed {
            Ok(())
        } else {
            Err(format!("{} listed: {:?}", got.len(), text(&out).1))
        }
    });
    for f in &fps {
        let c = s.inspect(&f.id);
        assert_eq!(c["State"]["Status"], "running", "{}", f.id);
        assert_eq!(c["State"]["Pid"], f.procs[1].1, "{}", f.id);
        assert!(
            f.procs.iter().all(|(_, p, st)| still_there(*p, *st)),
            "{}",
            f.id
        );
    }

    let t = Instant::now();
    let outs = concurrently(&|i| vec!["rm".to_owned(), "-f".to_owned(), ids[i].clone()]);
    let removed = t.elapsed();
    for out in &outs {
        let (o, e) = text(out);
        assert!(out.status.success(), "docker rm -f failed:\n{o}\n{e}");
    }
    assert_eq!(s.docker(&["ps", "-aq"]), "");
    assert_gone(&s, &fps);
    assert_eq!(s.engine.shim_pids(), Vec::<i32>::new());
    let bundles = s.engine.run_root.join("runtime/containers");
    let left: Vec<_> = std::fs::read_dir(&bundles)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "bundles remain: {left:?}");
    eprintln!(
        "{N} concurrent docker run -d: {started:?}; {N} concurrent docker rm -f: {removed:?}"
    );
}

/// `rm -f` of a running container is covered above (50 at once) and in containers.rs.
#[test]
fn docker_rm_leaves_nothing_of_an_exited_or_a_never_started_container() {
    let s = Setup::new();
    let ran = s.docker(&["run", "-d", &s.image, "sh", "-c", "echo done"]);
    assert_eq!(s.docker(&["wait", &ran]), "0");
    assert_eq!(s.docker(&["logs", &ran]), "done");
    let ran_fp = Footprint::capture(&s, &ran);
    for what in ["bundle", "log dir", "snapshot"] {
        assert!(ran_fp.has(what), "{ran}: no {what}: {:?}", ran_fp.paths);
    }

    let created = s.docker(&["create", &s.image, "true"]);
    assert_eq!(s.inspect(&created)["State"]["Status"], "created");
    let created_fp = Footprint::capture(&s, &created);
    assert!(created_fp.has("snapshot"), "{:?}", created_fp.paths);
    assert!(ran_fp.named > 0 && created_fp.named > 0);
    assert!(created_fp.procs.is_empty(), "{:?}", created_fp.procs);

    s.docker(&["rm", &ran]);
    s.docker(&["rm", &created]);
    assert_gone(&s, &[ran_fp, created_fp]);
    assert_eq!(s.docker(&["ps", "-aq"]), "");
    assert_eq!(s.engine.shim_pids(), Vec::<i32>::new());
}

/// A shim that dies under its running container: as with containerd's dead-shim cleanup, the
/// container's processes are killed (none may run on unsupervised), its cgroup removed, and the
/// exit recorded as 137 (SIGKILL) with a `die` event; `docker rm` then leaves nothing.
#[test]
fn a_killed_shim_takes_its_container_down_and_leaves_nothing() {
    let s = Setup::new();
    let since = unix_now();
    let id = s.docker(&["run", "-d", "--name", "orphan", &s.image, "sleep", "1000"]);
    let fp = Footprint::capture(&s, &id);
    fp.assert_running();
    let (_, shim, _) = fp.procs[0];
    let (_, pid, start) = fp.procs[1];
    signal(shim, Signal::SIGKILL);

    let c = eventually("the container to be recorded as exited", || {
        let c = s.inspect(&id);
        (c["State"]["Status"] == "exited").then_some(c)
    });
    assert_eq!(c["State"]["ExitCode"], 137, "{c}");
    assert_eq!(c["State"]["Pid"], 0, "{c}");
    assert!(
        !still_there(pid, start),
        "the container's process {pid} runs on"
    );
    for (what, p, _) in fp.paths.iter().filter(|(w, ..)| w.starts_with("cgroup ")) {
        assert!(!p.exists(), "its {what} dir {} remains", p.display());
    }
    assert_eq!(s.docker(&["wait", &id]), "137");
    let dies = eventually("the die event", || {
        let d = s.die_events(since, &[&id]);
        (!d.is_empty()).then_some(d)
    });
    assert_eq!(dies, [(id.clone(), "137".to_owned())]);

    s.docker(&["rm", &id]);
    assert_gone(&s, &[fp]);
}

/// `POST /containers/{id}/wait` on the engine's socket: returns once the status line is read
/// (the runtime answers only after registering the wait), with the rest to read later.
fn start_wait(engine: &Engine, id: &str) -> std::io::BufReader<std::os::unix::net::UnixStream> {
    use std::io::{BufRead, Write};
    let mut sock = engine.api_socket();
    write!(
        sock,
        "POST /containers/{id}/wait HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut r = std::io::BufReader::new(sock);
    let mut status = String::new();
    r.read_line(&mut status).expect("status line");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    r
}

/// A `docker wait` under way when the runtime is killed must not report an exit that did not
/// happen: it reports the container's real exit once there is one (or fails, as the CLI does
/// when dockerd dies), never a success with a made-up code.
#[test]
fn a_wait_under_way_survives_a_killed_runtime() {
    use std::io::Read;
    let s = Setup::new();
    let id = s.docker(&["run", "-d", &s.image, "sleep", "1000"]);
    let mut wait = start_wait(&s.engine, &id);
    let runtime = s.engine.pid_of("berth-runtime").expect("runtime running");
    signal(runtime, Signal::SIGKILL);
    eventually("berth up to restart the runtime", || {
        s.engine.pid_of("berth-runtime").filter(|p| *p != runtime)
    });
    eventually("docker ps to answer again", || {
        s.engine.docker(&["ps"]).status.success().then_some(())
    });
    signal(s.pid(&id), Signal::SIGKILL);
    let mut rest = String::new();
    let _ = wait.read_to_string(&mut rest);
    let body = rest.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // A complete answer is a JSON object (in one chunk); a broken body is an error to the CLI.
    if let (Some(a), Some(b)) = (body.find('{'), body.rfind('}')) {
        let v: serde_json::Value = serde_json::from_str(&body[a..=b]).expect("JSON");
        assert_eq!(v["StatusCode"], 137, "{v}");
        assert!(v["Error"].is_null(), "{v}");
    }
}

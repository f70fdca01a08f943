//! The failure model's invariants, checked once the chaos has stopped, with their figures.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
    time::Instant,
};

use berth_testutil::{BusyboxEngine, eventually_explained, unix_now};

use crate::workload::Journal;

pub(crate) struct Report {
    /// (invariant, held, figures)
    lines: Vec<(&'static str, bool, String)>,
    calls: u64,
    kills: usize,
    violations: usize,
}

impl Report {
    pub(crate) fn failed(&self) -> usize {
        self.lines.iter().filter(|l| !l.1).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, held, figures) in &self.lines {
            let mark = if *held { "ok  " } else { "FAIL" };
            writeln!(f, "{mark} {name}: {figures}")?;
        }
        let failed = self.failed();
        write!(
            f,
            "{} passed, {failed} failed ({} calls, {} kills, {} violations)",
            self.lines.len() - failed,
            self.calls,
            self.kills,
            self.violations
        )
    }
}

fn names_under(dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        out.push(e.path().display().to_string());
        if depth > 0 && e.file_type().is_ok_and(|t| t.is_dir()) {
            names_under(&e.path(), depth - 1, out);
        }
    }
}

pub(crate) fn check(
    s: &BusyboxEngine,
    since: u64,
    j: &Journal,
    kills: &[(&'static str, Instant, Instant)],
) -> Report {
    let mut lines = Vec::new();
    let mut violations = j.violations.len();

    // 1. Every call succeeded or got a Docker-style error.
    for v in j.violations.iter().take(10) {
        eprintln!("violation: {v}");
    }
    let mut by_target: BTreeMap<&str, usize> = BTreeMap::new();
    for (t, _, _) in kills {
        *by_target.entry(t).or_default() += 1;
    }
    lines.push((
        "every call answered or failed as Docker does",
        j.violations.is_empty(),
        format!(
            "{} calls: {} ok, {} Docker errors, {} lost while the gateway was killed, {} violations; kills {by_target:?}",
            j.calls,
            j.ok,
            j.docker_errors,
            j.lost_to_gateway,
            j.violations.len()
        ),
    ));

    // 2. Every container that ran is running or has a recorded exit (or was removed).
    let mut bad = Vec::new();
    let mut live = 0;
    for (id, life) in &j.containers {
        if life.removed {
            continue;
        }
        let out = s.engine.docker(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.FinishedAt}}",
            id,
        ]);
        let (o, e) = berth_testutil::text(&out);
        let o = o.trim();
        live += 1;
        let ok = o.starts_with("running ")
            || (o.starts_with("exited ") && !o.ends_with("0001-01-01T00:00:00Z"))
            // An `rm` whose answer was lost may have removed it.
            || e.contains("No such object") && !life.removed;
        if !ok {
            bad.push(format!("{} ({id}): {o}{e}", life.name));
        }
    }
    violations += bad.len();
    lines.push((
        "every container that ran is running or has a recorded exit",
        bad.is_empty(),
        format!(
            "{} run, {live} not removed by the workload, {} wrong {:?}",
            j.containers.len(),
            bad.len(),
            bad.iter().take(3).collect::<Vec<_>>()
        ),
    ));

    // 3. Every create, start, die and destroy of those containers is in the event history.
    let out = s.docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(unix_now() + 1).to_string(),
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    let seen: BTreeSet<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let (a, id) = l.split_once(' ')?;
            Some((a.split(':').next()?.to_owned(), id.to_owned()))
        })
        .collect();
    let mut missing = Vec::new();
    let mut expected = 0;
    for (id, life) in &j.containers {
        let mut want = vec!["create", "start"];
        if life.stopped {
            want.push("die");
        }
        if life.removed {
            want.push("destroy");
        }
        for a in want {
            expected += 1;
            if !seen.contains(&(a.to_owned(), id.clone())) {
                missing.push(format!("{a} {}", life.name));
            }
        }
    }
    violations += missing.len();
    lines.push((
        "every create, start, die and destroy is in docker events",
        missing.is_empty(),
        format!(
            "{expected} expected, {} missing {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ),
    ));

    // 4. No blob or layer missing for a listed image: each one saves.
    let images = s.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let images: Vec<&str> = images.lines().filter(|l| !l.contains("<none>")).collect();
    let unsaved: Vec<String> = images
        .iter()
        .filter_map(|i| {
            let out = s.engine.docker(&["save", i]);
            (!out.status.success() || out.stdout.is_empty())
                .then(|| format!("{i}: {}", berth_testutil::text(&out).1.trim()))
        })
        .collect();
    violations += unsaved.len();
    lines.push((
        "no blob or layer missing for a listed image",
        unsaved.is_empty(),
        format!(
            "{} images, {} not saveable {unsaved:?}",
            images.len(),
            unsaved.len()
        ),
    ));

    // 5. Once every container is removed: no shim, mount, cgroup or snapshot left.
    let left = s.docker(&["ps", "-aq"]);
    for id in left.lines() {
        s.engine.docker(&["rm", "-f", id]);
    }
    let ids: Vec<String> = j.containers.keys().cloned().collect();
    let roots = [s.engine.data_root.clone(), s.engine.run_root.clone()];
    let mut leftovers = Vec::new();
    let mut check_left = || -> Result<(), String> {
        leftovers.clear();
        let shims = s.engine.shim_pids();
        if !shims.is_empty() {
            // Their command lines name their bundles, to tell which step left them.
            let cmds: Vec<String> = shims
                .iter()
                .map(|pid| {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                })
                .collect();
            leftovers.push(format!("{} shims {cmds:?}", shims.len()));
        }
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for r in &roots {
            let r = r.display().to_string();
            let n = mi.lines().filter(|l| l.contains(&r)).count();
            if n > 0 {
                leftovers.push(format!("{n} mounts under {r}"));
            }
        }
        let mut names = Vec::new();
        for r in &roots {
            names_under(r, 6, &mut names);
        }
        names_under(Path::new("/sys/fs/cgroup"), 3, &mut names);
        let named: Vec<&String> = names
            .iter()
            .filter(|p| {
                let name = p.rsplit('/').next().unwrap_or(p);
                ids.iter().any(|id| name.contains(id.as_str()))
            })
            .collect();
        if !named.is_empty() {
            leftovers.push(format!(
                "{} files, snapshots or cgroups named after a container: {:?}",
                named.len(),
                named.iter().take(3).collect::<Vec<_>>()
            ));
        }
        if !s.docker(&["ps", "-aq"]).is_empty() {
            leftovers.push("containers left".to_owned());
        }
        if leftovers.is_empty() {
            Ok(())
        } else {
            Err(leftovers.join(", "))
        }
    };
    let clean = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually_explained("nothing left of the removed containers", &mut check_left)
    }))
    .is_ok();
    let why = leftovers.join(", ");
    if !clean {
        violations += 1;
    }
    lines.push((
        "no orphan shim, mount, cgroup or snapshot",
        clean,
        if clean {
            format!("{} containers checked", ids.len())
        } else {
            format!("after waiting: {why}")
        },
    ));

    Report {
        lines,
        calls: j.calls,
        kills: kills.len(),
        violations,
    }
}

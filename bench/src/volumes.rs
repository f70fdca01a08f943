//! The volumes benchmark (the volumes issue): `docker volume create` + `docker volume rm`
//! latency, and `docker run --rm --network none -v <fresh>:/usr <image> true`, whose fresh
//! named volume is filled by copy-up from the image's `/usr`: a directory of many small files
//! (at least 50 MB). Both engines are driven by the same docker CLI in the same run.

use std::{fmt::Write as _, path::Path};

use anyhow::ensure;
use berth_testutil::{
    ImageInfo, MediaTypes,
    images::{
        Entry, EntryKind, ImageBuilder, LayerCompression, Layout, PLATFORM_LABEL, busybox_entries,
    },
};

use crate::{
    Target,
    containers::{VERSION_ARGS, timed},
    report::{Stats, median_ratio, stats, verdict},
};

/// The volumes issue's target: Berth at most this fraction of dockerd, for both measurements.
pub(crate) const VOLUME_TARGET_RATIO: f64 = 0.6;

/// Files per directory of the copy-up tree.
const FILES_PER_DIR: u64 = 256;

/// What the volumes benchmark runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Timed `docker volume create` + `docker volume rm` per engine.
    pub(crate) cycles: usize,
    /// Timed `docker run` with a copy-up per engine.
    pub(crate) copyup_runs: usize,
}

/// The copy-up image's tree: `total` bytes under `usr/share/bench/dNNN/fNNN`, files of
/// `file` bytes (seeded random data), [`FILES_PER_DIR`] to a directory.
pub(crate) fn copyup_entries(total: u64, file: u64) -> Vec<Entry> {
    let file = file.max(1);
    let files = total.div_ceil(file);
    let mut entries = vec![
        Entry::dir("usr", 0o755),
        Entry::dir("usr/share", 0o755),
        Entry::dir("usr/share/bench", 0o755),
    ];
    for i in 0..files {
        if i % FILES_PER_DIR == 0 {
            entries.push(Entry::dir(
                &format!("usr/share/bench/d{:03}", i / FILES_PER_DIR),
                0o755,
            ));
        }
        entries.push(Entry::file(
            &format!(
                "usr/share/bench/d{:03}/f{:03}",
                i / FILES_PER_DIR,
                i % FILES_PER_DIR
            ),
            0o644,
            berth_testutil::images::random_bytes(i, usize::try_from(file).unwrap_or(4096)),
        ));
    }
    entries
}

/// The size of a file entry; `None` for anything else.
fn file_len(e: &Entry) -> Option<u64> {
    match &e.kind {
        EntryKind::File(d) => Some(d.len() as u64),
        _ => None,
    }
}

/// What the copy-up image holds besides busybox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tree {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

/// The copy-up image, tagged `latest` in a new layout at `dir`: busybox, then one layer of
/// the tree of [`copyup_entries`].
pub(crate) fn copyup_layout(dir: &Path, total: u64, file: u64) -> (ImageInfo, Tree) {
    let layout = Layout::create(dir);
    let entries = copyup_entries(total, file);
    let tree = Tree {
        files: entries.iter().filter_map(file_len).count() as u64,
        bytes: entries.iter().filter_map(file_len).sum(),
    };
    let info = ImageBuilder::new(&layout, MediaTypes::Docker)
        .layer(
            LayerCompression::Gzip,
            &busybox_entries(),
            "berth-bench: busybox",
        )
        .layer(
            LayerCompression::Gzip,
            &entries,
            "berth-bench: many small files under /usr/share/bench",
        )
        .label(PLATFORM_LABEL, "linux/amd64")
        .set("Cmd", serde_json::json!(["sh"]))
        .write(Some("latest"));
    (info, tree)
}

/// One engine's times, seconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineVolumes {
    pub(crate) create: Vec<f64>,
    pub(crate) rm: Vec<f64>,
    /// `create` + `rm` of the same volume.
    pub(crate) cycle: Vec<f64>,
    /// `docker version` after each cycle: the CLI's floor under any command (its start-up,
    /// the `_ping` and one API call that costs the engine next to nothing).
    pub(crate) version: Vec<f64>,
    /// The same through the Engine API, without the CLI (`POST /volumes/create`, `DELETE`).
    pub(crate) api_cycle: Vec<f64>,
    pub(crate) copyup: Vec<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct VolumeResults {
    pub(crate) image: String,
    pub(crate) tree: Tree,
    pub(crate) plan: Plan,
    pub(crate) berth: EngineVolumes,
    pub(crate) dockerd: EngineVolumes,
}

/// Removes the named volumes (untimed), whatever happened.
fn remove_volumes(t: &Target<'_>, names: &[String]) {
    for n in names {
        let _ = t.docker(&["volume", "rm", "-f", n]);
    }
}

/// The whole volumes benchmark for both engines (Berth first in odd rounds); every volume it
/// made is removed at the end.
pub(crate) fn run(
    targets: [&Target<'_>; 2],
    image: &str,
    tree: Tree,
    plan: &Plan,
) -> anyhow::Result<VolumeResults> {
    let mut results = [EngineVolumes::default(), EngineVolumes::default()];
    let mut made: [Vec<String>; 2] = Default::default();
    let r = measure(targets, image, tree, plan, &mut results, &mut made);
    for (k, t) in targets.into_iter().enumerate() {
        remove_volumes(t, &made[k]);
    }
    r?;
    let [berth, dockerd] = results;
    Ok(VolumeResults {
        image: image.to_owned(),
        tree,
        plan: *plan,
        berth,
        dockerd,
    })
}

fn measure(
    targets: [&Target<'_>; 2],
    image: &str,
    tree: Tree,
    plan: &Plan,
    results: &mut [EngineVolumes; 2],
    made: &mut [Vec<String>; 2],
) -> anyhow::Result<()> {
    eprintln!(
        "berth-bench: docker volume create + rm: {} timed cycles per engine...",
        plan.cycles
    );
    for i in 0..plan.cycles {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let name = format!("bench-cycle-{i}");
            let (c, _) = timed(targets[k], &["volume", "create", &name])?;
            made[k].push(name.clone());
            let (r, _) = timed(targets[k], &["volume", "rm", &name])?;
            made[k].pop();
            results[k].create.push(c);
            results[k].rm.push(r);
            results[k].cycle.push(c + r);
            let (v, _) = timed(targets[k], &VERSION_ARGS)?;
            results[k].version.push(v);
        }
    }
    eprintln!(
        "berth-bench: POST /volumes/create + DELETE /volumes/NAME: {} timed cycles per engine...",
        plan.cycles
    );
    for i in 0..plan.cycles {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let name = format!("bench-api-{i}");
            let body = format!(r#"{{"Name":"{name}"}}"#);
            let (c, _, _) = crate::api::call(targets[k], "POST", "/volumes/create", &body)?;
            made[k].push(name.clone());
            let (r, _, _) =
                crate::api::call(targets[k], "DELETE", &format!("/volumes/{name}"), "")?;
            made[k].pop();
            results[k].api_cycle.push(c + r);
        }
    }
    eprintln!(
        "berth-bench: docker run -v fresh:/usr (copy-up of {} files, {} bytes): {} timed runs \
         per engine...",
        tree.files, tree.bytes, plan.copyup_runs
    );
    let count = "find /usr/share/bench -type f | wc -l";
    for i in 0..plan.copyup_runs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let t = targets[k];
            let name = format!("bench-copyup-{i}");
            made[k].push(name.clone());
            let mount = format!("{name}:/usr");
            let args = [
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &mount,
                image,
                "true",
            ];
            let (secs, _) = timed(t, &args)?;
            results[k].copyup.push(secs);
            if i == 0 {
                // The volume got the whole tree.
                let (_, out) = timed(t, &["run", "--rm", "-v", &mount, image, "sh", "-c", count])?;
                ensure!(
                    out.trim() == tree.files.to_string(),
                    "{}: the fresh volume holds {} files of the image's {}",
                    t.kind.name(),
                    out.trim(),
                    tree.files
                );
            }
            t.docker_ok(&["volume", "rm", &name])?;
            made[k].pop();
        }
    }
    Ok(())
}

fn secs3(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.3}"))
}

/// A row's two cells: one more decimal when either is below 10 ms (an API cycle), so that the
/// ratio can be read from them.
fn secs_row(b: Option<f64>, d: Option<f64>) -> (String, String) {
    let fine = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.4}"));
    if b.into_iter().chain(d).any(|s| s < 0.01) {
        (fine(b), fine(d))
    } else {
        (secs3(b), secs3(d))
    }
}

/// Milliseconds to two decimals: an API cycle takes a few of them, too few for `secs3`.
fn millis2(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{:.2}", s * 1e3))
}

impl VolumeResults {
    fn medians(&self, f: impl Fn(&EngineVolumes) -> &Vec<f64>) -> (Option<Stats>, Option<Stats>) {
        (stats(f(&self.berth)), stats(f(&self.dockerd)))
    }

    fn ratio(&self, f: impl Fn(&EngineVolumes) -> &Vec<f64>) -> Option<f64> {
        median_ratio(f(&self.berth), f(&self.dockerd))
    }

    fn verdict(r: Option<f64>) -> String {
        verdict(r, VOLUME_TARGET_RATIO)
    }

    /// The rows: a name, Berth's and dockerd's median seconds.
    fn rows(&self) -> Vec<(String, Option<f64>, Option<f64>)> {
        let row = |name: &str, f: fn(&EngineVolumes) -> &Vec<f64>| {
            let (b, d) = self.medians(f);
            (name.to_owned(), b.map(|s| s.median), d.map(|s| s.median))
        };
        vec![
            row("`docker volume create` median (s)", |e| &e.create),
            row("`docker volume rm` median (s)", |e| &e.rm),
            row("`docker volume create` + `rm` median (s)", |e| &e.cycle),
            row("`docker version` median (s), the CLI's floor", |e| {
                &e.version
            }),
            row(
                "API `POST /volumes/create` + `DELETE` median (s), no CLI",
                |e| &e.api_cycle,
            ),
            row(
                "`docker run --rm -v fresh:/usr` with copy-up median (s)",
                |e| &e.copyup,
            ),
        ]
    }

    /// Two CLI floors over dockerd's create + rm: the least Berth's CLI row can be, were its
    /// engine to take no time at all.
    fn floor_ratio(&self) -> Option<f64> {
        let b = stats(&self.berth.version)?.median;
        let d = stats(&self.dockerd.cycle)?.median;
        Some(2.0 * b / d)
    }

    pub(crate) fn summary_lines(&self) -> Vec<String> {
        let (bc, dc) = self.medians(|e| &e.cycle);
        let (bv, dv) = self.medians(|e| &e.version);
        let (bu, du) = self.medians(|e| &e.copyup);
        let (ba, da) = self.medians(|e| &e.api_cycle);
        vec![
            format!(
                "`docker volume create` + `rm`, median of {}: Berth {} s, dockerd {} s; \
                 Berth/dockerd **{}**",
                self.plan.cycles,
                secs3(bc.map(|s| s.median)),
                secs3(dc.map(|s| s.median)),
                Self::verdict(self.ratio(|e| &e.cycle))
            ),
            format!(
                "The same through the Engine API without the CLI (as an SDK calls it), median of \
                 {}: Berth {} ms, dockerd {} ms; Berth/dockerd **{}**",
                self.plan.cycles,
                millis2(ba.map(|s| s.median)),
                millis2(da.map(|s| s.median)),
                Self::verdict(self.ratio(|e| &e.api_cycle))
            ),
            format!(
                "`docker run --rm -v fresh:/usr` copying up {} files ({:.1} MiB), median of {}: \
                 Berth {} s, dockerd {} s; Berth/dockerd **{}**",
                self.tree.files,
                self.tree.bytes as f64 / f64::from(1 << 20),
                self.plan.copyup_runs,
                secs3(bu.map(|s| s.median)),
                secs3(du.map(|s| s.median)),
                Self::verdict(self.ratio(|e| &e.copyup))
            ),
            format!(
                "The CLI's floor (`docker version`, median): Berth {} s, dockerd {} s; two of \
                 them (create and rm are two CLI commands) are already {} of dockerd's create + \
                 rm: through the CLI the ≤ {}× target cannot be met even by an engine that takes \
                 no time; the API row is the engine's part",
                secs3(bv.map(|s| s.median)),
                secs3(dv.map(|s| s.median)),
                self.floor_ratio()
                    .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×")),
                VOLUME_TARGET_RATIO
            ),
        ]
    }

    pub(crate) fn table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "volumes: {} create+rm cycles, {} copy-up runs of {} ({} files)",
            self.plan.cycles, self.plan.copyup_runs, self.image, self.tree.files
        );
        let _ = writeln!(t, "{:<66} {:>8} {:>8}", "", "Berth", "dockerd");
        for (name, b, d) in self.rows() {
            let _ = writeln!(
                t,
                "{:<66} {:>8} {:>8}",
                name.replace('`', ""),
                secs3(b),
                secs3(d)
            );
        }
        let _ = writeln!(
            t,
            "ratio Berth/dockerd, volume create + rm (median): {}",
            Self::verdict(self.ratio(|e| &e.cycle))
        );
        let _ = writeln!(
            t,
            "ratio Berth/dockerd, volume create + rm through the API (median): {}",
            Self::verdict(self.ratio(|e| &e.api_cycle))
        );
        let _ = writeln!(
            t,
            "ratio Berth/dockerd, run with copy-up (median): {}",
            Self::verdict(self.ratio(|e| &e.copyup))
        );
    }

    pub(crate) fn markdown(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "Named volumes: `docker volume create` + `docker volume rm` of one volume, and \
             `docker run --rm --network none -v <fresh>:/usr {} true`, whose fresh volume is \
             filled by copy-up from the image's `/usr`: {} files of {} bytes in all under \
             `/usr/share/bench` ({} to a directory).\n",
            self.image, self.tree.files, self.tree.bytes, FILES_PER_DIR
        );
        let _ = writeln!(s, "| | Berth | dockerd | Berth/dockerd |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (name, b, d) in self.rows() {
            let r = b.zip(d).map(|(b, d)| format!("{:.3}×", b / d));
            let (bs, ds) = secs_row(b, d);
            let _ = writeln!(
                s,
                "| {name} | {bs} | {ds} | {} |",
                r.unwrap_or_else(|| "n/a".to_owned())
            );
        }
        let _ = writeln!(s, "\n### Method\n");
        let _ = writeln!(
            s,
            "Both engines are driven by the same docker CLI, timed wall clock from spawning the \
             CLI to its exit, the engines alternating (which one goes first alternates too). \
             {} cycles of `docker volume create bench-cycle-N` then `docker volume rm` of it, \
             each followed by a `docker version` against the same engine (the CLI's floor under \
             any command: its start-up, the `_ping` and one API call; create + rm is two \
             commands, so two floors, which alone come close to dockerd's whole cycle: through \
             the CLI the ≤ {}× target is out of reach for any engine, and the API row below is \
             what compares the engines); as many cycles through the Engine API on the engine's socket (one HTTP/1.1 \
             connection per call, timed from connect to the whole answer), which is what the \
             engine itself takes, the CLI's own start (about 15 ms a command, the same for \
             both) left out; then {} runs, each with a volume name never used before; after the first run of \
             each engine an untimed `docker run` counts the files in the volume (all {} must \
             be there), and every volume is removed (not timed).\n",
            self.plan.cycles, VOLUME_TARGET_RATIO, self.plan.copyup_runs, self.tree.files
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_has_many_small_files_adding_up() {
        let e = copyup_entries(10 * 4096 + 1, 4096);
        let files: Vec<&Entry> = e.iter().filter(|e| file_len(e).is_some()).collect();
        assert_eq!(files.len(), 11);
        assert!(files.iter().all(|f| file_len(f) == Some(4096)));
        assert_eq!(files[0].path, "usr/share/bench/d000/f000");
        let e = copyup_entries(FILES_PER_DIR * 2 * 16, 16);
        assert_eq!(
            e.iter().filter(|e| file_len(e).is_none()).count(),
            3 + 2,
            "usr, share, bench and two directories of files"
        );
    }

    #[test]
    fn the_report_says_the_ratios() {
        let engine = |k: f64| EngineVolumes {
            create: vec![0.02 * k, 0.03 * k, 0.025 * k],
            rm: vec![0.02 * k; 3],
            cycle: vec![0.04 * k, 0.05 * k, 0.046 * k],
            version: vec![0.015, 0.016, 0.017],
            api_cycle: vec![0.008 * k, 0.010 * k, 0.012 * k],
            copyup: vec![1.0 * k, 1.2 * k],
        };
        let r = VolumeResults {
            image: "127.0.0.1:5000/copyup:latest".to_owned(),
            tree: Tree {
                files: 16384,
                bytes: 64 << 20,
            },
            plan: Plan {
                cycles: 3,
                copyup_runs: 2,
            },
            berth: engine(0.5),
            dockerd: engine(1.0),
        };
        let lines = r.summary_lines();
        assert_eq!(
            lines[0],
            "`docker volume create` + `rm`, median of 3: Berth 0.023 s, dockerd 0.046 s; \
             Berth/dockerd **0.500× (target ≤ 0.6×: met)**"
        );
        assert!(lines[1].contains("without the CLI"));
        assert!(
            lines[1].contains("Berth 5.00 ms, dockerd 10.00 ms"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("16384 files (64.0 MiB), median of 2"));
        assert!(lines[2].contains("Berth 0.550 s, dockerd 1.100 s"));
        assert!(
            lines[3].contains("Berth 0.016 s, dockerd 0.016 s; two of them")
                && lines[3].contains("already 0.696× of dockerd's create + rm"),
            "{}",
            lines[3]
        );
        let mut md = String::new();
        r.markdown(&mut md);
        assert!(md.contains(
            "| `docker run --rm -v fresh:/usr` with copy-up median (s) | 0.550 | 1.100 | 0.500× |"
        ));
        assert!(md.contains(
            "| API `POST /volumes/create` + `DELETE` median (s), no CLI | 0.0050 | 0.0100 | 0.500× |"
        ));
        let slow = VolumeResults {
            berth: engine(1.0),
            ..r
        };
        assert!(slow.summary_lines()[0].ends_with("**1.000× (target ≤ 0.6×: not met)**"));
    }
}

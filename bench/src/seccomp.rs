//! The cost of the seccomp filter per container start: compiling Docker's default profile (once
//! per capability set: the runtime caches it), carrying it in the bundle, loading it
//! (seccomp(2), what the shim does in every container), and `docker run --rm` with the default
//! profile against `seccomp=unconfined` in both engines.

use std::{fmt::Write as _, time::Instant};

use anyhow::Context;
use berth_seccomp::{Arch, Profile, Target as SeccompTarget};

use crate::{
    Target,
    containers::timed,
    report::{Stats, stats},
};

/// Microseconds of each step, over `rounds` repetitions.
#[derive(Debug, Clone)]
pub(crate) struct SeccompResults {
    pub(crate) rounds: usize,
    /// Parsing the default profile's JSON (what a custom profile costs at create).
    pub(crate) parse: Option<Stats>,
    /// Resolving and compiling it for Docker's default capabilities (a cache miss).
    pub(crate) compile: Option<Stats>,
    /// The same with CAP_SYS_ADMIN added (a larger allow list).
    pub(crate) compile_admin: Option<Stats>,
    /// The filter written into the bundle's config and read back (serde, hex).
    pub(crate) bundle: Option<Stats>,
    /// seccomp(2) of the compiled default filter, in a fresh thread each time.
    pub(crate) load: Option<Stats>,
    /// Instructions of the default filter, and with CAP_SYS_ADMIN.
    pub(crate) insns: (usize, usize),
    /// `docker run --rm` median seconds per engine: (default profile, unconfined).
    pub(crate) runs: usize,
    pub(crate) berth_runs: (Option<Stats>, Option<Stats>),
    pub(crate) dockerd_runs: (Option<Stats>, Option<Stats>),
}

fn micros<T>(
    rounds: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<Option<Stats>> {
    let mut v = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        drop(f()?);
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(stats(&v))
}

/// Loads `filter` in a new thread (with no_new_privs, which is per thread, as is the filter)
/// and returns how long seccomp(2) took, in microseconds.
fn timed_load(filter: &[berth_seccomp::SockFilter]) -> anyhow::Result<f64> {
    let insns: Vec<nix::libc::sock_filter> = filter
        .iter()
        .map(|i| nix::libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| -> anyhow::Result<f64> {
            nix::sys::prctl::set_no_new_privs().context("no_new_privs")?;
            let prog = nix::libc::sock_fprog {
                len: u16::try_from(insns.len())?,
                filter: insns.as_ptr().cast_mut(),
            };
            let t = Instant::now();
            #[allow(unsafe_code)]
            // SAFETY: `prog` points at `insns`, alive for the call; the kernel copies the
            // program. The filter (Docker's default) lets this thread finish and exit.
            let rc = unsafe {
                nix::libc::syscall(
                    nix::libc::SYS_seccomp,
                    nix::libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &raw const prog,
                )
            };
            let us = t.elapsed().as_secs_f64() * 1e6;
            nix::errno::Errno::result(rc).context("seccomp(2)")?;
            Ok(us)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the loading thread panicked"))?
    })
}

/// The in-process part: parse, compile, bundle, load.
pub(crate) fn micro(rounds: usize) -> anyhow::Result<SeccompResults> {
    let arch = Arch::native().context("no seccomp syscall table for this architecture")?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut target = SeccompTarget {
        arch,
        caps: berth_bundle::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        kernel: berth_seccomp::kernel_version(release.trim()),
    };
    let json = berth_seccomp::DEFAULT_PROFILE_JSON;
    let profile = Profile::parse(json)?;
    let parse = micros(rounds, || Ok(Profile::parse(json)?))?;
    let compiled = |t: &SeccompTarget| -> anyhow::Result<berth_seccomp::Program> {
        berth_seccomp::compile(&profile, t)?.context("the default profile filters")
    };
    let compile = micros(rounds, || compiled(&target))?;
    let program = compiled(&target)?;
    target.caps.push("CAP_SYS_ADMIN".to_owned());
    let compile_admin = micros(rounds, || compiled(&target))?;
    let admin = compiled(&target)?;
    let seccomp = berth_bundle::Seccomp {
        filter: program
            .filter
            .iter()
            .map(|i| berth_bundle::BpfInsn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect(),
        flags: program.flags,
    };
    let bundle = micros(rounds, || {
        let text = serde_json::to_vec(&seccomp)?;
        let back: berth_bundle::Seccomp = serde_json::from_slice(&text)?;
        anyhow::ensure!(back == seccomp, "the filter does not round-trip");
        Ok(())
    })?;
    let mut loads = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        loads.push(timed_load(&program.filter)?);
    }
    Ok(SeccompResults {
        rounds,
        parse,
        compile,
        compile_admin,
        bundle,
        load: stats(&loads),
        insns: (program.filter.len(), admin.filter.len()),
        runs: 0,
        berth_runs: (None, None),
        dockerd_runs: (None, None),
    })
}

/// `docker run --rm --network none IMAGE true`, default profile and unconfined alternating, in
/// both engines: (default, unconfined) seconds for Berth, then for dockerd.
pub(crate) fn starts(
    targets: [&Target<'_>; 2],
    image: &str,
    runs: usize,
    r: &mut SeccompResults,
) -> anyhow::Result<()> {
    let mut out = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    let default = ["run", "--rm", "--network", "none", image, "true"];
    let unconfined = [
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        image,
        "true",
    ];
    for (t, o) in targets.iter().zip(&mut out) {
        // Warm-up, untimed.
        timed(t, &default)?;
        timed(t, &unconfined)?;
        for _ in 0..runs {
            o.0.push(timed(t, &default)?.0);
            o.1.push(timed(t, &unconfined)?.0);
        }
    }
    r.runs = runs;
    r.berth_runs = (stats(&out[0].0), stats(&out[0].1));
    r.dockerd_runs = (stats(&out[1].0), stats(&out[1].1));
    Ok(())
}

fn us(s: Option<Stats>) -> String {
    s.map_or_else(|| "n/a".to_owned(), |s| format!("{:.1}", s.median))
}

fn ms_diff(runs: (Option<Stats>, Option<Stats>)) -> String {
    match runs {
        (Some(d), Some(u)) => format!(
            "{:.1} ms with the filter, {:.1} ms unconfined ({:+.1} ms)",
            d.median * 1e3,
            u.median * 1e3,
            (d.median - u.median) * 1e3
        ),
        _ => "n/a".to_owned(),
    }
}

impl SeccompResults {
    /// What every start pays: the bundle's share and the load (compiling is cached).
    fn per_start(&self) -> Option<f64> {
        Some(self.bundle?.median + self.load?.median)
    }

    pub(crate) fn summary_lines(&self) -> Vec<String> {
        let per = self.per_start();
        vec![
            format!(
                "per container start (filter in the bundle + seccomp(2)): **{} µs (target ≤ 2 ms: {})**; compiling Docker's default profile (once per capability set, then cached): {} µs",
                per.map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1}")),
                if per.is_some_and(|p| p <= 2000.0) {
                    "met"
                } else {
                    "not met"
                },
                us(self.compile)
            ),
            format!(
                "`docker run --rm` medians: Berth {}; dockerd {}",
                ms_diff(self.berth_runs),
                ms_diff(self.dockerd_runs)
            ),
        ]
    }

    pub(crate) fn table(&self, t: &mut String) {
        let _ = writeln!(t, "seccomp, {} rounds (µs, median / p90)", self.rounds);
        for (name, s) in self.rows() {
            let _ = writeln!(
                t,
                "{name:<40} {:>10} {:>10}",
                us(s),
                s.map_or_else(|| "n/a".to_owned(), |s| format!("{:.1}", s.p90))
            );
        }
        let _ = writeln!(t, "docker run --rm: Berth {}", ms_diff(self.berth_runs));
        let _ = writeln!(t, "docker run --rm: dockerd {}", ms_diff(self.dockerd_runs));
    }

    fn rows(&self) -> [(&'static str, Option<Stats>); 5] {
        [
            ("parse the profile JSON", self.parse),
            ("compile (default capabilities)", self.compile),
            ("compile (with CAP_SYS_ADMIN)", self.compile_admin),
            ("filter into the bundle and back", self.bundle),
            ("seccomp(2) load", self.load),
        ]
    }

    pub(crate) fn markdown(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "Docker's default profile, compiled by `berth-seccomp` to {} BPF instructions ({} with CAP_SYS_ADMIN). The runtime compiles a profile once per capability set and caches it; each start then writes the filter into the bundle and the shim loads it with seccomp(2).\n",
            self.insns.0, self.insns.1
        );
        let _ = writeln!(
            s,
            "| {} rounds, µs | median | p90 | min | max |",
            self.rounds
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        let f = |s: Option<Stats>, g: fn(Stats) -> f64| {
            s.map_or_else(|| "n/a".to_owned(), |s| format!("{:.1}", g(s)))
        };
        for (name, st) in self.rows() {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} |",
                f(st, |s| s.median),
                f(st, |s| s.p90),
                f(st, |s| s.min),
                f(st, |s| s.max)
            );
        }
        let _ = writeln!(
            s,
            "\n`docker run --rm --network none busybox true`, {} timed runs of each, alternating (whole runs: their difference carries the noise of everything else a start does):\n",
            self.runs
        );
        let _ = writeln!(s, "- Berth: {}", ms_diff(self.berth_runs));
        let _ = writeln!(s, "- dockerd: {}\n", ms_diff(self.dockerd_runs));
    }
}

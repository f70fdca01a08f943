//! The container's cgroup, with plain cgroupfs writes: one directory `<path>` under every
//! mounted hierarchy (each v1 controller, named v1 hierarchies such as name=systemd, and the
//! v2 unified hierarchy, whether alone or beside v1 in hybrid mode).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use nix::unistd::Pid;

use crate::error::ShimError;

#[derive(Debug, Clone)]
pub struct Cgroup {
    /// `<mount point>/<path>` for every hierarchy, first the v2 one if any.
    dirs: Vec<Hierarchy>,
}

#[derive(Debug, Clone)]
struct Hierarchy {
    dir: PathBuf,
    /// Path components of the cgroup below the hierarchy's root (`berth/<id>`: 2).
    levels: usize,
    v2: bool,
    cpuset: bool,
    memory: bool,
    devices: bool,
    /// The v1 mount's options (its controllers); empty for v2.
    controllers: Vec<String>,
}

/// The cgroup hierarchies mounted in `mountinfo` (the text of /proc/self/mountinfo): their
/// mount points, whether v2, and the v1 options. Bind mounts of a subtree are skipped.
fn hierarchies(mountinfo: &str) -> Vec<(PathBuf, bool, Vec<String>)> {
    let mut out: Vec<(PathBuf, bool, Vec<String>)> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || pre[3] != "/" {
            continue;
        }
        let v2 = match post[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let opts: Vec<String> = post[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro"))
            .map(str::to_owned)
            .collect();
        if out.iter().any(|(_, v, o)| *v == v2 && *o == opts) {
            continue;
        }
        out.push((PathBuf::from(unescape(pre[4])), v2, opts));
    }
    out.sort_by_key(|(_, v2, _)| !*v2);
    out
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(oct) = s.get(i + 1..i + 4)
            && let Ok(v) = u8::from_str_radix(oct, 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cg_err(path: &Path, reason: impl std::fmt::Display) -> ShimError {
    ShimError::Cgroup {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

impl Cgroup {
    /// The cgroup `rel` (e.g. `berth/<id>`) in this host's hierarchies; nothing is created.
    pub fn at(rel: &str) -> Result<Cgroup, ShimError> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| ShimError::io(Path::new("/proc/self/mountinfo"), e))?;
        Ok(Cgroup::from_mountinfo(&mi, rel))
    }

    fn from_mountinfo(mountinfo: &str, rel: &str) -> Cgroup {
        let dirs = hierarchies(mountinfo)
            .into_iter()
            .map(|(mp, v2, opts)| Hierarchy {
                dir: mp.join(rel),
                levels: Path::new(rel).components().count(),
                v2,
                cpuset: opts.iter().any(|o| o == "cpuset"),
                memory: opts.iter().any(|o| o == "memory"),
                devices: opts.iter().any(|o| o == "devices"),
                controllers: if v2 { Vec::new() } else { opts.clone() },
            })
            .collect();
        Cgroup { dirs }
    }

    /// Creates the directories (v1 cpuset: copying cpus and mems down from the parent, which
    /// a new cpuset cgroup lacks).
    pub fn create(&self) -> Result<(), ShimError> {
        for h in &self.dirs {
            let mut tries = 0;
            loop {
                let r = if h.cpuset {
                    create_cpuset(&h.dir)
                } else {
                    std::fs::create_dir_all(&h.dir)
                };
                match r {
                    Ok(()) => break,
                    // Another shim's cleanup removed a parent that was empty, between our
                    // mkdirs: make it again.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => tries += 1,
                    Err(e) => return Err(cg_err(&h.dir, e)),
                }
            }
        }
        Ok(())
    }

    /// Confines the cgroup's devices to `rules`: the v1 devices controller where mounted, a
    /// device program on the v2 hierarchy. Before any process joins.
    pub fn restrict_devices(&self, rules: &[berth_bundle::DeviceRule]) -> Result<(), ShimError> {
        for h in &self.dirs {
            if h.v2 {
                crate::device_cgroup::attach_v2(&h.dir, rules)?;
            } else if h.devices {
                crate::device_cgroup::apply_v1(&h.dir, rules)?;
            }
        }
        Ok(())
    }

    /// Writes the limits into every hierarchy that has their controllers. Before any process
    /// joins.
    pub fn apply_limits(&self, r: &berth_bundle::Resources) -> Result<(), ShimError> {
        if r.is_empty() {
            return Ok(());
        }
        for h in &self.dirs {
            if h.v2 {
                crate::limits::apply_v2(&h.dir, h.levels, r)?;
            } else {
                crate::limits::apply_v1(&h.dir, &h.controllers, r)?;
            }
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add(&self, pid: Pid) -> Result<(), ShimError> {
        for h in &self.dirs {
            let f = h.dir.join("cgroup.procs");
            write_file(&f, pid.as_raw().to_string().as_bytes()).map_err(|e| cg_err(&f, e))?;
        }
        Ok(())
    }

    /// The processes in the cgroup (from the first hierarchy).
    pub fn procs(&self) -> Vec<Pid> {
        let Some(h) = self.dirs.first() else {
            return Vec::new();
        };
        std::fs::read_to_string(h.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok().map(Pid::from_raw))
            .collect()
    }

    /// Whether the kernel's OOM killer killed a process in this cgroup.
    pub fn oom_killed(&self) -> bool {
        self.dirs.iter().any(|h| {
            let file = if h.v2 {
                "memory.events"
            } else if h.memory {
                "memory.oom_control"
            } else {
                return false;
            };
            std::fs::read_to_string(h.dir.join(file))
                .unwrap_or_default()
                .lines()
                .any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
        })
    }

    /// Removes the directories, then their parents up to the hierarchy's root when nothing
    /// else is in them (the `berth` parent goes with the last container). Fails with EBUSY
    /// while processes remain.
    pub fn remove(&self) -> Result<(), ShimError> {
        for h in &self.dirs {
            match std::fs::remove_dir(&h.dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(cg_err(&h.dir, e)),
            }
            // A parent still holding another container's cgroup is not empty: rmdir refuses.
            for parent in h.dir.ancestors().skip(1).take(h.levels.saturating_sub(1)) {
                if std::fs::remove_dir(parent).is_err() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// [`Cgroup::remove`], retried for up to a second: right after its last process was
    /// reaped, the kernel may still report a cgroup busy. For synchronous callers (a failed
    /// start); the running shim retries on its runtime instead.
    pub fn remove_blocking(&self) -> Result<(), ShimError> {
        let mut last = Ok(());
        for _ in 0..100 {
            last = self.remove();
            if last.is_ok() {
                break;
            }
            // A bounded wait without a runtime: poll on no descriptors times out after 10 ms.
            let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::from(10u8));
        }
        last
    }

    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|h| h.dir.as_path())
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(bytes)
}

const CPUSET_FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// Whether `dir` is a cpuset cgroup whose cpus and mems are set: one that can take tasks.
fn cpuset_ready(dir: &Path) -> bool {
    CPUSET_FILES
        .iter()
        .all(|f| std::fs::read_to_string(dir.join(f)).is_ok_and(|s| !s.trim().is_empty()))
}

/// Creates `dir` and whatever parents are missing or not ready, each with its parent's cpus
/// and mems. A parent that exists is not enough: another shim may have just made it and not
/// yet filled it in (concurrent starts), and a task cannot join a cpuset without them.
fn create_cpuset(dir: &Path) -> std::io::Result<()> {
    if cpuset_ready(dir) {
        return Ok(());
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    create_cpuset(parent)?;
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    for f in CPUSET_FILES {
        let mine = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if mine.trim().is_empty() {
            let theirs = std::fs::read_to_string(parent.join(f))?;
            write_file(&dir.join(f), theirs.trim().as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 /sub /mnt/memsub rw,relatime - cgroup cgroup rw,memory
100 31 0:32 / /mnt/mem\\040again rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_hierarchies() {
        let cg = Cgroup::from_mountinfo(HYBRID, "berth/x");
        let dirs: Vec<String> = cg.dirs().map(|d| d.display().to_string()).collect();
        assert_eq!(
            dirs,
            vec![
                "/sys/fs/cgroup/unified/berth/x",
                "/sys/fs/cgroup/cpu,cpuacct/berth/x",
                "/sys/fs/cgroup/cpuset/berth/x",
                "/sys/fs/cgroup/memory/berth/x",
                "/sys/fs/cgroup/systemd/berth/x",
            ]
        );
        assert!(cg.dirs[2].cpuset && cg.dirs[3].memory && cg.dirs[0].v2);
    }

    #[test]
    fn unified_only() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = Cgroup::from_mountinfo(mi, "a/b");
        assert_eq!(cg.dirs().count(), 1);
        assert_eq!(cg.dirs[0].dir, Path::new("/sys/fs/cgroup/a/b"));
    }

    #[test]
    fn oom_from_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("x");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        let cg = Cgroup {
            dirs: vec![Hierarchy {
                dir: d.clone(),
                levels: 1,
                v2: true,
                cpuset: false,
                memory: false,
                devices: false,
                controllers: Vec::new(),
            }],
        };
        assert!(cg.oom_killed());
        std::fs::write(d.join("memory.events"), "oom_kill 0\n").unwrap();
        assert!(!cg.oom_killed());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}

//! A container's cgroup: one directory `<path>` under every mounted hierarchy (each v1
//! controller, named v1 hierarchies such as name=systemd, and the v2 unified hierarchy,
//! whether alone or beside v1 in hybrid mode). Each operation goes to the backend of the
//! hierarchy that has the controller: v1 where the host mounts it there, else v2.

use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use crate::{CgroupVersion, Error, Stats, mountinfo, stats, v1, v2, write};

#[derive(Debug, Clone)]
pub struct Cgroup {
    /// `<mount point>/<path>` for every hierarchy, first the v2 one if any.
    dirs: Vec<Hierarchy>,
    /// Parents are left at removal (a `--cgroup-parent` the user named, which dockerd
    /// leaves in place too).
    keep_parents: bool,
}

#[derive(Debug, Clone)]
struct Hierarchy {
    dir: PathBuf,
    /// Path components of the cgroup below the hierarchy's root (`berth/<id>`: 2).
    levels: usize,
    v2: bool,
    /// The v1 mount's options (its controllers); empty for v2.
    controllers: Vec<String>,
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Which freezer a cgroup is paused with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    /// The v1 freezer controller's `freezer.state`.
    V1,
    /// The v2 core `cgroup.freeze`.
    V2,
}

impl Cgroup {
    /// The cgroup `rel` (e.g. `berth/<id>`) in this host's hierarchies; nothing is created.
    pub fn at(rel: &str) -> Result<Cgroup, Error> {
        let path = Path::new("/proc/self/mountinfo");
        let mi = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(Cgroup::from_mountinfo(&mi, rel))
    }

    /// The cgroup `rel` in the hierarchies `mountinfo` lists.
    pub fn from_mountinfo(mountinfo: &str, rel: &str) -> Cgroup {
        let dirs = mountinfo::hierarchies(mountinfo)
            .into_iter()
            .map(|m| Hierarchy {
                dir: m.mount_point.join(rel),
                levels: Path::new(rel).components().count(),
                v2: m.v2,
                controllers: if m.v2 { Vec::new() } else { m.options },
            })
            .collect();
        Cgroup {
            dirs,
            keep_parents: false,
        }
    }

    /// The same cgroup, whose parents [`Cgroup::remove`] leaves in place.
    pub fn keeping_parents(mut self, keep: bool) -> Cgroup {
        self.keep_parents = keep;
        self
    }

    /// A cgroup in one v2 hierarchy whose root is `root` (a fixture tree, or a v2 mount).
    pub fn v2_at(root: &Path, rel: &str) -> Cgroup {
        Cgroup {
            dirs: vec![Hierarchy {
                dir: root.join(rel),
                levels: Path::new(rel).components().count(),
                v2: true,
                controllers: Vec::new(),
            }],
            keep_parents: false,
        }
    }

    /// Creates the directories (v1 cpuset: copying cpus and mems down from the parent, which
    /// a new cpuset cgroup lacks).
    pub fn create(&self) -> Result<(), Error> {
        for h in &self.dirs {
            let mut tries = 0;
            loop {
                let r = if h.has("cpuset") {
                    create_cpuset(&h.dir)
                } else {
                    std::fs::create_dir_all(&h.dir)
                };
                match r {
                    Ok(()) => break,
                    // Another shim's cleanup removed a parent that was empty, between our
                    // mkdirs: make it again.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => tries += 1,
                    Err(e) => return Err(Error::io(&h.dir, e)),
                }
            }
        }
        Ok(())
    }

    /// Confines the cgroup's devices to `rules`: the v1 devices controller where mounted, a
    /// device program on the v2 hierarchy. Before any process joins.
    pub fn restrict_devices(&self, rules: &[berth_bundle::DeviceRule]) -> Result<(), Error> {
        for h in &self.dirs {
            if h.v2 {
                crate::devices::attach_v2(&h.dir, rules)?;
            } else if h.has("devices") {
                crate::devices::apply_v1(&h.dir, rules)?;
            }
        }
        Ok(())
    }

    /// Writes the limits into every hierarchy that has their controllers: before any process
    /// joins, and again for `docker update` (zero values are left as they are).
    pub fn apply_limits(&self, r: &berth_bundle::Resources) -> Result<(), Error> {
        if r.is_empty() {
            return Ok(());
        }
        for h in &self.dirs {
            if h.v2 {
                v2::apply(&h.dir, h.levels, r)?;
            } else {
                v1::apply(&h.dir, &h.controllers, r)?;
            }
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add(&self, pid: Pid) -> Result<(), Error> {
        for h in &self.dirs {
            write(&h.dir, "cgroup.procs", &pid.as_raw().to_string())?;
        }
        Ok(())
    }

    /// The processes in the cgroup (from the first hierarchy).
    pub fn procs(&self) -> Vec<Pid> {
        let Some(h) = self.dirs.first() else {
            return Vec::new();
        };
        crate::read(&h.dir, "cgroup.procs")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok().map(Pid::from_raw))
            .collect()
    }

    /// Whether the kernel's OOM killer killed a process in this cgroup.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills() > 0
    }

    /// How many processes of this cgroup the kernel's OOM killer killed (`oom_kill` of v1
    /// memory.oom_control or v2 memory.events).
    pub fn oom_kills(&self) -> u64 {
        self.dirs
            .iter()
            .map(|h| {
                let file = if h.v2 {
                    "memory.events"
                } else if h.has("memory") {
                    "memory.oom_control"
                } else {
                    return 0;
                };
                crate::read(&h.dir, file)
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
    }

    /// The v1 hierarchy with `controller`, else the v2 one when its cgroup has the
    /// controller's `file` (enabled by its parents).
    fn dir_for(&self, controller: &str, v2_file: &str) -> Option<(&Path, bool)> {
        if let Some(h) = self.dirs.iter().find(|h| !h.v2 && h.has(controller)) {
            return Some((&h.dir, false));
        }
        self.dirs
            .iter()
            .find(|h| h.v2 && h.dir.join(v2_file).exists())
            .map(|h| (h.dir.as_path(), true))
    }

    /// The freezer the cgroup is paused with: the v1 controller where mounted, else v2.
    pub fn freezer(&self) -> Option<(Freezer, &Path)> {
        if let Some(h) = self.dirs.iter().find(|h| !h.v2 && h.has("freezer")) {
            return Some((Freezer::V1, &h.dir));
        }
        self.dirs
            .iter()
            .find(|h| h.v2)
            .map(|h| (Freezer::V2, h.dir.as_path()))
    }

    /// Freezes every process of the cgroup and returns once the kernel reports it frozen
    /// (docker pause); `false` thaws it (docker unpause).
    pub fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        match self.freezer() {
            Some((Freezer::V1, dir)) => v1::set_freezer(dir, frozen),
            Some((Freezer::V2, dir)) => v2::set_frozen(dir, frozen),
            None => Err(Error::new(
                Path::new("/sys/fs/cgroup"),
                "no freezer mounted",
            )),
        }
    }

    /// Whether the cgroup is frozen.
    pub fn frozen(&self) -> bool {
        match self.freezer() {
            Some((Freezer::V1, dir)) => v1::frozen(dir),
            Some((Freezer::V2, dir)) => v2::is_frozen(dir).unwrap_or(false),
            None => false,
        }
    }

    /// What the cgroup's processes use, each controller read where it is mounted.
    pub fn stats(&self) -> Stats {
        let memory = self.dir_for("memory", "memory.current");
        let version = match memory {
            Some((_, true)) => CgroupVersion::V2,
            Some((_, false)) => CgroupVersion::V1,
            None if self.dirs.iter().any(|h| !h.v2) => CgroupVersion::V1,
            None => CgroupVersion::V2,
        };
        let cpu = match self.dir_for("cpuacct", "cpu.stat") {
            Some((d, true)) => v2::cpu(d),
            Some((d, false)) => v1::cpu(Some(d), self.dir_for("cpu", "cpu.stat").map(|(d, _)| d)),
            None => stats::Cpu::default(),
        };
        Stats {
            version,
            cpu,
            memory: memory
                .map(|(d, is_v2)| if is_v2 { v2::memory(d) } else { v1::memory(d) })
                .unwrap_or_default(),
            pids: self.pick("pids", "pids.current", v1::pids, v2::pids),
            blkio: self.pick("blkio", "io.stat", v1::blkio, v2::blkio),
        }
    }

    /// `controller`'s numbers from the backend that has it; the default where none has.
    fn pick<T: Default>(
        &self,
        controller: &str,
        v2_file: &str,
        from_v1: fn(&Path) -> T,
        from_v2: fn(&Path) -> T,
    ) -> T {
        match self.dir_for(controller, v2_file) {
            Some((d, true)) => from_v2(d),
            Some((d, false)) => from_v1(d),
            None => T::default(),
        }
    }

    /// Removes the directories, then their parents up to the hierarchy's root when nothing
    /// else is in them (the `berth` parent goes with the last container) unless they are
    /// kept. Fails with EBUSY while processes remain.
    pub fn remove(&self) -> Result<(), Error> {
        for h in &self.dirs {
            match std::fs::remove_dir(&h.dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&h.dir, e)),
            }
            if self.keep_parents {
                continue;
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
    /// reaped, the kernel may still report a cgroup busy. For synchronous callers.
    pub fn remove_blocking(&self) -> Result<(), Error> {
        let mut last = Ok(());
        for _ in 0..100 {
            last = self.remove();
            if last.is_ok() {
                break;
            }
            crate::pause(std::time::Duration::from_millis(10));
        }
        last
    }

    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|h| h.dir.as_path())
    }
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
            std::fs::write(dir.join(f), theirs.trim())?;
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
36 31 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
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
                "/sys/fs/cgroup/freezer/berth/x",
                "/sys/fs/cgroup/systemd/berth/x",
            ]
        );
        assert!(cg.dirs[2].has("cpuset") && cg.dirs[3].has("memory") && cg.dirs[0].v2);
        // Hybrid: paused with the v1 freezer.
        assert_eq!(
            cg.freezer(),
            Some((Freezer::V1, Path::new("/sys/fs/cgroup/freezer/berth/x")))
        );
    }

    #[test]
    fn unified_only() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = Cgroup::from_mountinfo(mi, "a/b");
        assert_eq!(cg.dirs().count(), 1);
        assert_eq!(cg.dirs[0].dir, Path::new("/sys/fs/cgroup/a/b"));
        assert_eq!(
            cg.freezer(),
            Some((Freezer::V2, Path::new("/sys/fs/cgroup/a/b")))
        );
    }

    #[test]
    fn oom_from_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::v2_at(dir.path(), "x");
        let d = dir.path().join("x");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("memory.events"), "low 0\noom 1\noom_kill 2\n").unwrap();
        assert!(cg.oom_killed());
        assert_eq!(cg.oom_kills(), 2);
        std::fs::write(d.join("memory.events"), "oom_kill 0\n").unwrap();
        assert!(!cg.oom_killed());
    }

    /// A v2-only host: every stat from the unified hierarchy's files.
    #[test]
    fn v2_stats_through_the_cgroup() {
        let t = tempfile::tempdir().unwrap();
        let cg = Cgroup::v2_at(t.path(), "berth/c");
        let d = t.path().join("berth/c");
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n"),
            ("memory.current", "1000\n"),
            ("memory.max", "2000\n"),
            ("memory.stat", "inactive_file 100\n"),
            ("pids.current", "1\n"),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let s = cg.stats();
        assert_eq!(s.version, CgroupVersion::V2);
        assert_eq!(s.cpu.total, 10_000);
        assert_eq!((s.memory.usage, s.memory.limit), (1000, 2000));
        assert_eq!(s.pids.current, 1);
        assert!(s.blkio.service_bytes.is_empty());
    }
}

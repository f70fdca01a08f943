//! What a container sees at `/sys/fs/cgroup`, as runc builds it for dockerd's `cgroup` mount:
//! on a host with v1 hierarchies (legacy or hybrid), a tmpfs with one directory per v1
//! hierarchy (named as on the host, `cpu,cpuacct`, `systemd`), each showing the container's
//! own cgroup, plus a symlink per controller of a comounted hierarchy (`cpu` ->
//! `cpu,cpuacct`); a hybrid host's unified hierarchy is not shown. On a v2-only host, the
//! unified hierarchy itself, at the container's cgroup.
//!
//! With a private cgroup namespace each hierarchy is mounted afresh (the kernel roots it at
//! the namespace's root, the container's cgroup); with the host's namespace the container's
//! directory is bound. Which one is the shim's choice; this module only says what to mount.

use std::path::{Path, PathBuf};

use crate::mountinfo;

/// One hierarchy of the container's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewMount {
    /// The directory under `/sys/fs/cgroup` (the mount point's name on the host); empty for
    /// the v2 hierarchy of a v2-only host, mounted on `/sys/fs/cgroup` itself.
    pub name: String,
    /// The container's cgroup in this hierarchy on the host (what is bound with the host's
    /// cgroup namespace).
    pub host_dir: PathBuf,
    pub v2: bool,
    /// The mount data of a fresh mount (v1: the controllers, `cpu,cpuacct`, or the name,
    /// `name=systemd`; v2: empty).
    pub data: String,
    /// The symlinks next to a comounted hierarchy: one per controller (`cpu`, `cpuacct`).
    pub links: Vec<String>,
}

/// The v1 controllers (the rest of a v1 mount's options are flags such as `xattr`).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// The container's view of the cgroup `rel` in the hierarchies `mountinfo` lists.
pub fn container_view(mountinfo: &str, rel: &str) -> Vec<ViewMount> {
    let all = mountinfo::hierarchies(mountinfo);
    let any_v1 = all.iter().any(|m| !m.v2);
    all.into_iter()
        .filter(|m| m.v2 != any_v1)
        .map(|m| {
            let host_dir = m.mount_point.join(rel);
            if m.v2 {
                return ViewMount {
                    name: String::new(),
                    host_dir,
                    v2: true,
                    data: String::new(),
                    links: Vec::new(),
                };
            }
            let name = m
                .mount_point
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let controllers: Vec<&str> = m
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| V1_CONTROLLERS.contains(o))
                .collect();
            let named = m.options.iter().find(|o| o.starts_with("name="));
            let data = match named {
                Some(n) if controllers.is_empty() => n.clone(),
                Some(n) => format!("{},{n}", controllers.join(",")),
                None => controllers.join(","),
            };
            let links = if controllers.len() > 1 {
                controllers
                    .iter()
                    .filter(|c| **c != name)
                    .map(|c| (*c).to_owned())
                    .collect()
            } else {
                Vec::new()
            };
            ViewMount {
                name,
                host_dir,
                v2: false,
                data,
                links,
            }
        })
        .filter(|v| v.v2 || !v.name.is_empty())
        .collect()
}

/// The view of the cgroup `rel` on this host.
pub fn host_view(rel: &str) -> Result<Vec<ViewMount>, crate::Error> {
    let path = Path::new("/proc/self/mountinfo");
    let mi = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
    Ok(container_view(&mi, rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_host_shows_its_v1_hierarchies() {
        let mi = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let v = container_view(mi, "berth/x");
        let names: Vec<&str> = v.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["cpu,cpuacct", "memory", "systemd"]);
        assert_eq!(v[0].data, "cpu,cpuacct");
        assert_eq!(v[0].links, ["cpu", "cpuacct"]);
        assert_eq!(
            v[1].host_dir,
            Path::new("/sys/fs/cgroup/memory/berth/x").to_path_buf()
        );
        assert!(v[1].links.is_empty() && v[1].data == "memory");
        assert_eq!(v[2].data, "name=systemd");
        assert!(v.iter().all(|m| !m.v2));
    }

    #[test]
    fn unified_host_shows_the_v2_hierarchy() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let v = container_view(mi, "mine/c");
        assert_eq!(v.len(), 1);
        assert!(v[0].v2 && v[0].name.is_empty());
        assert_eq!(v[0].host_dir, Path::new("/sys/fs/cgroup/mine/c"));
    }
}

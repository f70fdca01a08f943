//! Concurrent shims creating their cgroups under a parent that does not exist yet, as at the
//! first starts after boot (root, real cgroupfs).

mod common;

use std::path::Path;

use berth_cgroup::Cgroup;

/// Every container cgroup can take a task: in a v1 cpuset hierarchy that means cpus and mems
/// were copied down, including into the shared parent that another shim made first.
#[test]
fn concurrent_creates_under_a_new_parent() {
    common::require_root();
    let parent = format!("berth-test-cg{}", std::process::id());
    for round in 0..20 {
        let cgs: Vec<Cgroup> = (0..4)
            .map(|i| Cgroup::at(&format!("{parent}/r{round}c{i}")).unwrap())
            .collect();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = cgs.iter().map(|cg| s.spawn(|| cg.create())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut problems = Vec::new();
        for (cg, r) in cgs.iter().zip(&results) {
            if let Err(e) = r {
                problems.push(format!("create: {e}"));
            }
            for dir in cg.dirs() {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let file = dir.join(f);
                    if file.exists() && read(&file).trim().is_empty() {
                        problems.push(format!("{} is empty", file.display()));
                    }
                }
            }
        }
        // Removing the last one removes the now empty parent too: the next round starts
        // without it.
        for cg in &cgs {
            cg.remove_blocking().unwrap();
        }
        assert!(problems.is_empty(), "round {round}: {problems:#?}");
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

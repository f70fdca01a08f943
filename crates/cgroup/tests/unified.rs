//! The v2 backend for real on this host's unified hierarchy (`/sys/fs/cgroup/unified` on a
//! hybrid host, `/sys/fs/cgroup` on a v2 one): create, procs, freeze, thaw, kill, remove.
//! Controllers are not needed for these, so they run whatever the hierarchy offers. Root.

use std::{os::unix::process::ExitStatusExt, path::Path, process::Command};

use berth_cgroup::{Cgroup, Freezer, v2};

fn unified_root() -> Option<&'static Path> {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.controllers").exists())
}

#[test]
fn freeze_thaw_kill_on_the_unified_hierarchy() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(root) = unified_root() else {
        eprintln!("skipped: no cgroup v2 hierarchy");
        return;
    };
    let rel = format!("berth-test-v2-{}/c", std::process::id());
    let cg = Cgroup::v2_at(root, &rel);
    cg.create().unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    cg.add(pid).unwrap();
    assert_eq!(cg.procs(), vec![pid]);
    assert_eq!(cg.freezer().map(|f| f.0), Some(Freezer::V2));

    cg.set_frozen(true).unwrap();
    assert!(cg.frozen());
    let dir = root.join(&rel);
    assert!(v2::is_frozen(&dir).unwrap());
    // A frozen task does not run: its CPU time stays put while the cgroup is frozen.
    let ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        let f: Vec<&str> = after.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = ticks();
    // A usage counter of the cgroup itself: not advancing either.
    let usage = v2::cpu(&dir).total;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
    while std::time::Instant::now() < deadline {
        std::hint::spin_loop();
    }
    assert_eq!(ticks(), before);
    assert_eq!(v2::cpu(&dir).total, usage);

    cg.set_frozen(false).unwrap();
    assert!(!cg.frozen());

    v2::kill(&dir).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    cg.remove_blocking().unwrap();
    assert!(!root.join(rel).parent().unwrap().exists());
}

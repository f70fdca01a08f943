//! Bind propagation through the real docker CLI: `rshared` carries a mount made in the
//! container back to the host, `rslave` carries a host mount into the container, and a source
//! whose mount cannot carry them is refused with dockerd's words.

use std::path::{Path, PathBuf};

use berth_testutil::{BusyboxEngine, eventually};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Directories the test bound on themselves (with a propagation), unmounted at the end even
/// when the test fails.
struct SelfBinds(Vec<PathBuf>);

impl SelfBinds {
    fn add(&mut self, dir: &Path, propagation: MsFlags) {
        std::fs::create_dir_all(dir).unwrap();
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        self.0.push(dir.to_owned());
        mount(None::<&str>, dir, None::<&str>, propagation, None::<&str>).unwrap();
    }
}

impl Drop for SelfBinds {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = umount2(d, MntFlags::MNT_DETACH);
        }
    }
}

fn is_mount_point(path: &Path) -> bool {
    let p = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

#[test]
fn rshared_and_rslave_carry_mounts_and_need_a_mount_that_can() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let dir = s.engine.dir.path();
    let mut binds = SelfBinds(Vec::new());
    let shared = dir.join("shared");
    binds.add(&shared, MsFlags::MS_SHARED);
    let private = dir.join("private");
    binds.add(&private, MsFlags::MS_PRIVATE);

    // rshared: a tmpfs the container mounts shows on the host, and goes with its unmount.
    let v = format!("{}:/s:rshared", shared.display());
    s.docker(&[
        "run",
        "-d",
        "--name",
        "sh1",
        "--cap-add",
        "SYS_ADMIN",
        "-v",
        &v,
        img,
        "sleep",
        "60",
    ]);
    let m = &s.inspect("sh1")["Mounts"][0];
    assert_eq!(m["Propagation"], "rshared");
    assert_eq!(m["Mode"], "rshared");
    s.docker(&[
        "exec",
        "sh1",
        "sh",
        "-c",
        "mkdir -p /s/sub && mount -t tmpfs tmpfs /s/sub && echo in > /s/sub/f",
    ]);
    assert!(is_mount_point(&shared.join("sub")));
    assert_eq!(
        std::fs::read_to_string(shared.join("sub/f")).unwrap(),
        "in\n"
    );
    s.docker(&["exec", "sh1", "umount", "/s/sub"]);
    eventually("the container's unmount seen on the host", || {
        (!is_mount_point(&shared.join("sub"))).then_some(())
    });
    s.docker(&["rm", "-f", "sh1"]);

    // rslave (--mount): a host mount made after the start shows in the container.
    let m = format!(
        "type=bind,source={},target=/s,bind-propagation=rslave",
        shared.display()
    );
    s.docker(&[
        "run", "-d", "--name", "sl1", "--mount", &m, img, "sleep", "60",
    ]);
    let late = shared.join("late");
    std::fs::create_dir_all(&late).unwrap();
    mount(
        Some("tmpfs"),
        &late,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    std::fs::write(late.join("g"), "host").unwrap();
    let seen = s.docker(&["exec", "sl1", "cat", "/s/late/g"]);
    umount2(&late, MntFlags::MNT_DETACH).unwrap();
    assert_eq!(seen, "host");
    s.docker(&["rm", "-f", "sl1"]);

    // A private source mount carries neither: dockerd's errors at start.
    let v = format!("{}:/p:rshared", private.display());
    let (_, out) = s.fails(&["run", "--rm", "-v", &v, img, "true"]);
    let p = private.display();
    assert!(
        out.contains(&format!(
            "path {p} is mounted on {p} but it is not a shared mount"
        )),
        "{out}"
    );
    let m = format!("type=bind,source={p},target=/p,bind-propagation=slave");
    let (_, out) = s.fails(&["run", "--rm", "--mount", &m, img, "true"]);
    assert!(
        out.contains(&format!(
            "path {p} is mounted on {p} but it is not a shared or slave mount"
        )),
        "{out}"
    );
    // private and rprivate need nothing.
    let v = format!("{p}:/p:private");
    s.docker(&["run", "--rm", "-v", &v, img, "true"]);
    drop(binds);
    assert!(!is_mount_point(&shared) && !is_mount_point(&private));
}

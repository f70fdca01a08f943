use std::fs;

use super::*;

fn root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) == 0
}

fn whiteout(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
}

fn listing(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            let k = match c.kind {
                Kind::Modified => "C",
                Kind::Added => "A",
                Kind::Deleted => "D",
            };
            format!("{k} {}", c.path)
        })
        .collect()
}

/// Needs root (whiteouts are device nodes, opaque dirs trusted.* xattrs): skipped visibly.
#[test]
fn changes_read_as_dockerd_lists_them() {
    if !root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let mid = dir.path().join("mid");
    let up = dir.path().join("upper");
    for d in ["etc", "tmp", "bin", "usr/share/x", "var/keep"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    fs::write(base.join("etc/passwd"), "root").unwrap();
    fs::write(base.join("etc/group"), "root").unwrap();
    fs::write(base.join("usr/share/x/y"), "y").unwrap();
    fs::write(base.join("var/keep/k"), "k").unwrap();
    // A middle layer deletes /bin: the image has no /bin.
    fs::create_dir_all(&mid).unwrap();
    whiteout(&mid.join("bin"));

    for d in ["etc", "tmp", "newdir", "usr/share/x", "var/keep", "bin"] {
        fs::create_dir_all(up.join(d)).unwrap();
    }
    fs::write(up.join("etc/passwd"), "root and more").unwrap();
    whiteout(&up.join("etc/group"));
    fs::write(up.join("tmp/new"), "n").unwrap();
    fs::write(up.join("newdir/a"), "a").unwrap();
    fs::write(up.join("usr/share/x/z"), "z").unwrap();
    fs::write(up.join("bin/sh"), "sh").unwrap();
    rustix::fs::setxattr(
        up.join("usr/share/x"),
        berth_treetar::OPAQUE_XATTR,
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Copied up with nothing changed under it: not listed.
    let lowers = Lowers {
        dirs: vec![mid, base],
    };
    assert_eq!(
        listing(&changes(&up, &lowers)),
        [
            "A /bin",
            "A /bin/sh",
            "C /etc",
            "D /etc/group",
            "C /etc/passwd",
            "A /newdir",
            "A /newdir/a",
            "C /tmp",
            "A /tmp/new",
            "C /usr",
            "C /usr/share",
            "C /usr/share/x",
            "A /usr/share/x/z",
            "D /usr/share/x/y",
        ]
    );
}

#[test]
fn an_empty_upper_has_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("base/etc")).unwrap();
    fs::create_dir_all(dir.path().join("upper")).unwrap();
    let lowers = Lowers {
        dirs: vec![dir.path().join("base")],
    };
    assert!(changes(&dir.path().join("upper"), &lowers).is_empty());
}

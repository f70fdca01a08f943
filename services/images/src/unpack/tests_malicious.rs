//! Malicious layers. Each is unpacked into a fresh `dest` inside a fresh temporary directory
//! that also holds `outside/` (a file `target`, a directory `dir/` with a file `inner`); after
//! the unpack, everything in that temporary directory except `dest` must be exactly as it was
//! (same inodes, link counts, owners, modes, times, ctimes, xattrs, contents), and canary paths
//! elsewhere (`/tmp/...`, `/etc/...`) must not exist.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::testutil::{Layer, T, require_root, snapshot, unique};
use super::{UnpackError, unpack_layer};

/// What the unpack must return (nothing may change outside `dest` in any case).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The layer is rejected as unsafe.
    Unsafe,
    /// The layer fails (the kernel, resolving inside `dest`, finds no such path).
    Fails,
    /// The layer applies, entirely inside `dest`.
    Contained,
}

struct Sandbox {
    tmp: tempfile::TempDir,
    dest: PathBuf,
    /// `outside/` as an absolute path.
    outside: String,
}

impl Sandbox {
    fn new() -> Self {
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("dir")).unwrap();
        fs::write(outside.join("target"), b"original").unwrap();
        fs::write(outside.join("dir/inner"), b"inner").unwrap();
        fs::set_permissions(outside.join("target"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(outside.join("dir"), fs::Permissions::from_mode(0o755)).unwrap();
        let outside = outside.to_str().unwrap().to_owned();
        Sandbox { tmp, dest, outside }
    }

    fn d(&self, rel: &str) -> PathBuf {
        self.dest.join(rel)
    }
}

/// Unpacks `build`'s layer into a fresh sandbox, checks the result and that nothing outside
/// `dest` changed, and that no canary exists afterwards. Returns the sandbox for more checks.
fn run(
    case: &str,
    expect: Expect,
    canaries: &[&Path],
    build: impl FnOnce(&Sandbox, &mut Layer),
) -> Sandbox {
    let sb = Sandbox::new();
    let mut layer = Layer::new();
    build(&sb, &mut layer);
    let blob = layer.finish();
    let before = snapshot(sb.tmp.path(), Some(&sb.dest), true);
    let result = unpack_layer(&blob[..], &sb.dest);
    match (&result, expect) {
        (Err(UnpackError::Unsafe { .. }), Expect::Unsafe) => {}
        (Err(UnpackError::Unsafe { .. }), _) => panic!("{case}: unexpectedly unsafe: {result:?}"),
        (Err(_), Expect::Fails) | (Ok(_), Expect::Contained) => {}
        _ => panic!("{case}: expected {expect:?}, got {result:?}"),
    }
    let after = snapshot(sb.tmp.path(), Some(&sb.dest), true);
    assert_eq!(before, after, "{case}: something outside dest changed");
    for canary in canaries {
        assert!(
            fs::symlink_metadata(canary).is_err(),
            "{case}: {canary:?} was created"
        );
    }
    sb
}

fn file(l: &mut Layer, name: &[u8]) {
    l.raw(EntryType::Regular, name, b"", b"pwned");
}

#[test]
fn unpack_rejects_dotdot_names() {
    let u = unique("dotdot");
    let tmp_canary = std::env::temp_dir().join(&u);
    for name in [
        format!("../{u}"),
        format!("../../{u}"),
        format!("a/../../{u}"),
        format!("/../../{u}"),
        format!("ok/../{u}"),
    ] {
        run(&name, Expect::Unsafe, &[tmp_canary.as_path()], |_, l| {
            file(l, name.as_bytes())
        });
    }
    run(
        "device ../",
        Expect::Unsafe,
        &[tmp_canary.as_path()],
        |_, l| {
            l.raw(EntryType::Char, format!("../{u}").as_bytes(), b"", b"");
        },
    );
    run(
        "directory ../",
        Expect::Unsafe,
        &[tmp_canary.as_path()],
        |_, l| {
            l.raw(
                EntryType::Directory,
                format!("../{u}/").as_bytes(),
                b"",
                b"",
            );
        },
    );
}

#[test]
fn unpack_rejects_dotdot_in_long_names() {
    let u = unique("long");
    let canary = std::env::temp_dir().join(&u);
    run("PAX path", Expect::Unsafe, &[canary.as_path()], |_, l| {
        l.pax(&[("path", format!("../../{u}").as_bytes())]);
        file(l, b"innocent");
    });
    run(
        "GNU long name",
        Expect::Unsafe,
        &[canary.as_path()],
        |_, l| {
            l.gnu_long_name(format!("x/../../../{u}").as_bytes());
            file(l, b"innocent");
        },
    );
    run(
        "PAX linkpath of a hard link",
        Expect::Unsafe,
        &[],
        |_, l| {
            l.pax(&[("linkpath", b"../outside/target")]);
            l.raw(EntryType::Link, b"h", b"innocent", b"");
        },
    );
}

#[test]
fn unpack_keeps_absolute_names_inside() {
    let u = unique("abs");
    let canary = Path::new("/etc").join(&u);
    let sb = run(
        "absolute name",
        Expect::Contained,
        &[canary.as_path()],
        |_, l| {
            file(l, format!("/etc/{u}").as_bytes());
        },
    );
    assert_eq!(fs::read(sb.d(&format!("etc/{u}"))).unwrap(), b"pwned");
}

#[test]
fn unpack_never_writes_through_symlinked_parents() {
    for target in ["../outside", "../../outside", "outside-abs"] {
        let u = unique("through");
        let sb = run(target, Expect::Fails, &[], |sb, l| {
            let target = if target == "outside-abs" {
                sb.outside.as_str()
            } else {
                target
            };
            l.symlink("link", target);
            l.raw(
                EntryType::Regular,
                format!("link/{u}").as_bytes(),
                b"",
                b"pwned",
            );
        });
        assert!(
            fs::symlink_metadata(sb.d("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

#[test]
fn unpack_link_to_root_stays_inside() {
    let u = unique("root-link");
    let canary = std::env::temp_dir().join(&u);
    let sb = run(
        "link -> /",
        Expect::Contained,
        &[canary.as_path()],
        |_, l| {
            l.symlink("link", "/");
            l.raw(
                EntryType::Regular,
                format!("link/tmp/{u}").as_bytes(),
                b"",
                b"pwned",
            );
        },
    );
    assert_eq!(fs::read(sb.d(&format!("tmp/{u}"))).unwrap(), b"pwned");
}

#[test]
fn unpack_symlink_chains_and_loops_stay_inside() {
    run("chain", Expect::Fails, &[], |sb, l| {
        l.symlink("a", "b");
        l.symlink("b", &sb.outside);
        l.raw(EntryType::Regular, b"a/target", b"", b"pwned");
    });
    run("loop", Expect::Fails, &[], |_, l| {
        l.symlink("loop", "loop");
        l.raw(EntryType::Regular, b"loop/x", b"", b"pwned");
    });
}

#[test]
fn unpack_hard_links_stay_inside() {
    run("hardlink ../", Expect::Unsafe, &[], |_, l| {
        l.hardlink("h", "../outside/target");
    });
    run("hardlink absolute", Expect::Fails, &[], |sb, l| {
        l.hardlink("h", &format!("{}/target", sb.outside));
    });
    for target in ["../outside", "outside-abs"] {
        run("hardlink through a symlink", Expect::Fails, &[], |sb, l| {
            let target = if target == "outside-abs" {
                sb.outside.as_str()
            } else {
                target
            };
            l.symlink("s", target);
            l.hardlink("h", "s/target");
        });
    }
    // A hard link to a symlink links the symlink itself, not what it points to.
    let sb = run("hardlink to a symlink", Expect::Contained, &[], |sb, l| {
        l.symlink("s", &format!("{}/target", sb.outside));
        l.hardlink("h", "s");
    });
    let h = fs::symlink_metadata(sb.d("h")).unwrap();
    assert!(h.file_type().is_symlink());
    assert_eq!(h.nlink(), 2);
}

#[test]
fn unpack_replaces_symlinks_instead_of_following_them() {
    for target in ["../outside/dir", "outside-abs"] {
        let sb = run(
            "directory over a symlink",
            Expect::Contained,
            &[],
            |sb, l| {
                let target = if target == "outside-abs" {
                    format!("{}/dir", sb.outside)
                } else {
                    target.to_owned()
                };
                l.symlink("d", &target);
                l.dir("d", 0o777, (4242, 4242), T);
            },
        );
        let d = fs::symlink_metadata(sb.d("d")).unwrap();
        assert!(d.is_dir());
        assert_eq!((d.mode() & 0o7777, d.uid()), (0o777, 4242));
        assert!(fs::read_dir(sb.d("d")).unwrap().next().is_none());

        let sb = run("file over a symlink", Expect::Contained, &[], |sb, l| {
            let target = if target == "outside-abs" {
                format!("{}/target", sb.outside)
            } else {
                "../outside/target".to_owned()
            };
            l.symlink("f", &target);
            l.file("f", 0o4777, (4242, 4242), b"pwned");
        });
        assert!(fs::symlink_metadata(sb.d("f")).unwrap().is_file());
        assert_eq!(fs::read(sb.d("f")).unwrap(), b"pwned");

        run("device over a symlink", Expect::Contained, &[], |sb, l| {
            let target = if target == "outside-abs" {
                format!("{}/target", sb.outside)
            } else {
                "../outside/target".to_owned()
            };
            l.symlink("n", &target);
            l.node("n", EntryType::Char, (1, 3), 0o666, (4242, 4242));
        });
    }
}

#[test]
fn unpack_never_chmods_or_chowns_through_symlinks() {
    run("directory under a symlink", Expect::Fails, &[], |sb, l| {
        l.symlink("l", &sb.outside);
        l.dir("l/dir", 0o777, (4242, 4242), T);
    });
    run("file under a symlink", Expect::Fails, &[], |_, l| {
        l.symlink("l", "../outside");
        l.file("l/target", 0o4777, (4242, 4242), b"pwned");
    });
    run("device under a symlink", Expect::Fails, &[], |sb, l| {
        l.symlink("l", &sb.outside);
        l.node("l/null", EntryType::Char, (1, 3), 0o666, (0, 0));
    });
    run("xattr under a symlink", Expect::Fails, &[], |sb, l| {
        l.symlink("l", &format!("{}/dir", sb.outside));
        l.pax(&[("SCHILY.xattr.user.evil", b"1")]);
        l.file("l/inner", 0o644, (0, 0), b"pwned");
    });
}

#[test]
fn unpack_whiteouts_stay_inside() {
    run("../.wh.x", Expect::Unsafe, &[], |_, l| {
        file(l, b"../.wh.target")
    });
    run("outside/.wh.target", Expect::Unsafe, &[], |_, l| {
        file(l, b"../outside/.wh.target")
    });
    run(".wh...", Expect::Unsafe, &[], |_, l| file(l, b"a/.wh..."));
    run(".wh..", Expect::Unsafe, &[], |_, l| file(l, b"a/.wh.."));
    run(".wh.", Expect::Unsafe, &[], |_, l| file(l, b"a/.wh."));
    for target in ["../outside", "outside-abs"] {
        run("whiteout under a symlink", Expect::Fails, &[], |sb, l| {
            let target = if target == "outside-abs" {
                sb.outside.as_str()
            } else {
                target
            };
            l.symlink("w", target);
            file(l, b"w/.wh.target");
        });
        run("opaque under a symlink", Expect::Fails, &[], |sb, l| {
            let target = if target == "outside-abs" {
                sb.outside.as_str()
            } else {
                target
            };
            l.symlink("o", target);
            file(l, b"o/.wh..wh..opq");
        });
    }
    // A whiteout over a symlink replaces the symlink.
    let sb = run("whiteout of a symlink", Expect::Contained, &[], |sb, l| {
        l.symlink("s", &format!("{}/target", sb.outside));
        file(l, b".wh.s");
    });
    assert!(
        fs::symlink_metadata(sb.d("s"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn unpack_skips_forged_overlay_xattrs() {
    let sb = run(
        "trusted.overlay.* in a layer",
        Expect::Contained,
        &[],
        |_, l| {
            l.pax(&[
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ]);
            l.dir("d", 0o755, (0, 0), T);
        },
    );
    assert!(super::testutil::xattrs(&sb.d("d")).is_empty());
}

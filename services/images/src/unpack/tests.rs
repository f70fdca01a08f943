//! Unpacking ordinary layers: every kind of entry and its metadata, compression, whiteouts,
//! replacement of earlier entries, determinism.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::testutil::{Layer, T, require_root, sha256, snapshot, xattr};
use super::{UnpackStats, unpack_layer};

fn unpack_into(blob: &[u8]) -> (tempfile::TempDir, UnpackStats) {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let stats = unpack_layer(blob, tmp.path()).unwrap();
    (tmp, stats)
}

fn long_dir(prefix: &str) -> String {
    format!("{prefix}/{}/", "d".repeat(120))
}

fn long_name(prefix: &str) -> String {
    format!("{}{}", long_dir(prefix), "f".repeat(90))
}

/// A layer with one of everything. Every directory is listed, so that two unpacks give the same
/// tree (directories made implicitly get the current time, as with containerd).
fn full_layer() -> Vec<u8> {
    let mut l = Layer::new();
    l.raw(EntryType::Directory, b"./", b"", b"")
        .dir("etc/", 0o755, (0, 0), T + 1)
        .file_at("etc/hosts", 0o644, (0, 0), T + 2, b"127.0.0.1 localhost\n")
        .link(
            EntryType::Symlink,
            "etc/localtime",
            "/usr/share/zoneinfo/UTC",
            (1000, 1001),
            T + 4,
        )
        .dir("usr/", 0o755, (0, 0), T)
        .dir("usr/bin/", 0o711, (0, 0), T)
        .file("usr/bin/sudo", 0o4755, (0, 0), b"#!sudo\n")
        .hardlink("usr/bin/sudo-link", "usr/bin/sudo")
        .dir("tmp", 0o1777, (0, 0), T)
        .dir("home", 0o755, (0, 0), T)
        .dir("home/user", 0o700, (1000, 1000), T + 3)
        .pax(&[
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.trusted.berth", b"1"),
            ("mtime", b"1600000000.5"),
            ("atime", b"1600000100.25"),
        ])
        .file("home/user/data", 0o2640, (1000, 1000), b"data")
        .pax(&[("SCHILY.xattr.user.dir", b"yes")])
        .dir("opt", 0o750, (0, 0), T + 5)
        .pax(&[("uid", b"3000000"), ("gid", b"3000001")])
        .file("opt/big-ids", 0o600, (0, 0), b"ids")
        .dir("dev", 0o755, (0, 0), T)
        .node("dev/null", EntryType::Char, (1, 3), 0o666, (0, 0))
        .node("dev/loop0", EntryType::Block, (7, 0), 0o660, (0, 6))
        .dir("run", 0o755, (0, 0), T)
        .node("run/fifo", EntryType::Fifo, (0, 0), 0o620, (0, 0))
        // GNU long names (the tar crate writes one for names over 100 bytes).
        .dir("gnu", 0o755, (0, 0), T)
        .dir(&long_dir("gnu"), 0o755, (0, 0), T)
        .file(&long_name("gnu"), 0o644, (0, 0), b"gnu long")
        .dir("pax", 0o755, (0, 0), T)
        .pax(&[("path", long_dir("pax").as_bytes())])
        .dir("short-dir", 0o755, (0, 0), T)
        .pax(&[("path", long_name("pax").as_bytes())])
        .file("short-name", 0o644, (0, 0), b"pax long");
    l.finish()
}

#[test]
fn unpack_full_layer() {
    require_root();
    let blob = full_layer();
    let (tmp, stats) = unpack_into(&blob);
    let d = tmp.path();
    let md = |p: &str| fs::symlink_metadata(d.join(p)).unwrap();

    assert_eq!(stats.diff_id, sha256(&blob));
    assert_eq!(stats.entries, 25);
    assert_eq!(stats.size, (20 + 7 + 4 + 3 + 8 + 8) as u64);

    // The root entry `./` leaves the destination as it was.
    assert_eq!(md("").mode() & 0o7777, 0o711);

    let hosts = md("etc/hosts");
    assert!(hosts.is_file());
    assert_eq!(
        (hosts.mode() & 0o7777, hosts.uid(), hosts.gid()),
        (0o644, 0, 0)
    );
    assert_eq!((hosts.mtime(), hosts.atime()), (T as i64 + 2, T as i64 + 2));

    let data = md("home/user/data");
    assert_eq!(
        (data.mode() & 0o7777, data.uid(), data.gid()),
        (0o2640, 1000, 1000)
    );
    assert_eq!(
        (data.mtime(), data.mtime_nsec()),
        (1_600_000_000, 500_000_000)
    );
    assert_eq!(
        (data.atime(), data.atime_nsec()),
        (1_600_000_100, 250_000_000)
    );
    assert_eq!(
        xattr(&d.join("home/user/data"), "user.note").as_deref(),
        Some("hello")
    );
    assert_eq!(
        xattr(&d.join("home/user/data"), "trusted.berth").as_deref(),
        Some("1")
    );
    assert_eq!(fs::read(d.join("home/user/data")).unwrap(), b"data");

    // Directory times are set after their contents are written.
    let home = md("home/user");
    assert_eq!(
        (home.mode() & 0o7777, home.uid(), home.gid()),
        (0o700, 1000, 1000)
    );
    assert_eq!(home.mtime(), T as i64 + 3);
    assert_eq!(md("etc").mtime(), T as i64 + 1);
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    let opt = md("opt");
    assert_eq!((opt.mode() & 0o7777, opt.mtime()), (0o750, T as i64 + 5));
    assert_eq!(xattr(&d.join("opt"), "user.dir").as_deref(), Some("yes"));
    assert_eq!(md("usr/bin").mode() & 0o7777, 0o711);
    assert_eq!(md(&long_dir("gnu")).mtime(), T as i64);
    assert_eq!(md(&long_dir("pax")).mtime(), T as i64);
    let ids = md("opt/big-ids");
    assert_eq!((ids.uid(), ids.gid()), (3_000_000, 3_000_001));

    let sudo = md("usr/bin/sudo");
    assert_eq!(sudo.mode() & 0o7777, 0o4755);
    let link = md("usr/bin/sudo-link");
    assert_eq!((link.ino(), link.nlink()), (sudo.ino(), 2));

    let lt = md("etc/localtime");
    assert!(lt.file_type().is_symlink());
    assert_eq!(
        fs::read_link(d.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!((lt.uid(), lt.gid(), lt.mtime()), (1000, 1001, T as i64 + 4));

    let null = md("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (nix::sys::stat::makedev(1, 3), 0o666)
    );
    let lp = md("dev/loop0");
    assert!(lp.file_type().is_block_device());
    assert_eq!(
        (lp.rdev(), lp.mode() & 0o7777, lp.gid()),
        (nix::sys::stat::makedev(7, 0), 0o660, 6)
    );
    let fifo = md("run/fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);

    assert_eq!(fs::read(d.join(long_name("gnu"))).unwrap(), b"gnu long");
    assert_eq!(fs::read(d.join(long_name("pax"))).unwrap(), b"pax long");
    assert!(!d.join("short-name").exists());
    assert!(!d.join("short-dir").exists());
}

#[test]
fn unpack_compressed_layers_match_plain() {
    require_root();
    let blob = full_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&blob).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&blob[..], 3).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);

    let (plain_dir, plain) = unpack_into(&blob);
    let expected = snapshot(plain_dir.path(), None, false);
    for compressed in [gz, zst] {
        let (dir, stats) = unpack_into(&compressed);
        assert_eq!(stats, plain);
        assert_eq!(stats.diff_id, sha256(&blob));
        assert_eq!(snapshot(dir.path(), None, false), expected);
    }
}

#[test]
fn unpack_is_deterministic() {
    require_root();
    let blob = full_layer();
    let (a, sa) = unpack_into(&blob);
    let (b, sb) = unpack_into(&blob);
    assert_eq!(sa, sb);
    assert_eq!(
        snapshot(a.path(), None, false),
        snapshot(b.path(), None, false)
    );
}

#[test]
fn unpack_trailing_padding_is_hashed() {
    require_root();
    let mut blob = Layer::new().file("a", 0o644, (0, 0), b"a").finish();
    // Tar writers pad to a 10 KiB record; the digest covers it.
    blob.resize(blob.len() + 10 * 1024, 0);
    let (_dir, stats) = unpack_into(&blob);
    assert_eq!(stats.diff_id, sha256(&blob));
}

#[test]
fn unpack_whiteouts() {
    require_root();
    let blob = Layer::new()
        .file("gone", 0o644, (0, 0), b"x")
        .dir("etc", 0o755, (0, 0), T)
        .file("etc/.wh.foo", 0o644, (12, 34), b"")
        .file("usr/.wh..wh..opq", 0o644, (0, 0), b"")
        .file(".wh..wh.plnk", 0o644, (0, 0), b"")
        .file(".wh.gone", 0o644, (0, 0), b"")
        .finish();
    let (tmp, stats) = unpack_into(&blob);
    let d = tmp.path();
    assert_eq!(stats.entries, 6);
    let foo = fs::symlink_metadata(d.join("etc/foo")).unwrap();
    assert!(foo.file_type().is_char_device());
    assert_eq!((foo.rdev(), foo.uid(), foo.gid()), (0, 12, 34));
    assert!(!d.join("etc/.wh.foo").exists());
    assert_eq!(fs::metadata(d.join("etc")).unwrap().mtime(), T as i64);
    assert_eq!(
        xattr(&d.join("usr"), "trusted.overlay.opaque").as_deref(),
        Some("y")
    );
    assert!(fs::read_dir(d.join("usr")).unwrap().next().is_none());
    // A whiteout replaces an earlier entry of the same layer.
    assert!(
        fs::symlink_metadata(d.join("gone"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let mut names: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["etc", "gone", "usr"]);
}

#[test]
fn unpack_later_entries_replace_earlier_ones() {
    require_root();
    let blob = Layer::new()
        .file("f2d", 0o644, (0, 0), b"file")
        .dir("f2d", 0o711, (0, 0), T)
        .file("d2f/child/deep", 0o644, (0, 0), b"x")
        .file("d2f", 0o600, (0, 0), b"now a file")
        .dir("merge", 0o755, (0, 0), T)
        .file("merge/kept", 0o644, (0, 0), b"kept")
        .dir("merge", 0o700, (5, 5), T + 9)
        .symlink("s2f", "/etc/passwd")
        .file("s2f", 0o644, (0, 0), b"real")
        .file("f2s", 0o644, (0, 0), b"old")
        .symlink("f2s", "target")
        .node("n2f", EntryType::Fifo, (0, 0), 0o600, (0, 0))
        .file("n2f", 0o644, (0, 0), b"file")
        .finish();
    let (tmp, _) = unpack_into(&blob);
    let d = tmp.path();
    let md = |p: &str| fs::symlink_metadata(d.join(p)).unwrap();
    assert!(md("f2d").is_dir());
    assert_eq!(md("f2d").mode() & 0o7777, 0o711);
    assert!(md("d2f").is_file());
    assert_eq!(fs::read(d.join("d2f")).unwrap(), b"now a file");
    let merge = md("merge");
    assert_eq!(
        (merge.mode() & 0o7777, merge.uid(), merge.mtime()),
        (0o700, 5, T as i64 + 9)
    );
    assert_eq!(fs::read(d.join("merge/kept")).unwrap(), b"kept");
    assert!(md("s2f").is_file());
    assert_eq!(fs::read(d.join("s2f")).unwrap(), b"real");
    assert!(md("f2s").file_type().is_symlink());
    assert!(md("n2f").is_file());
}

#[test]
fn unpack_makes_missing_parents() {
    require_root();
    let blob = Layer::new().file("a/b/c", 0o600, (7, 7), b"c").finish();
    let (tmp, _) = unpack_into(&blob);
    for dir in ["a", "a/b"] {
        let md = fs::symlink_metadata(tmp.path().join(dir)).unwrap();
        assert!(md.is_dir());
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o755, 0, 0));
    }
}

#[test]
fn unpack_symlinked_parent_resolves_inside_the_layer() {
    require_root();
    // `lib -> usr/lib` then `lib/x`: the entry lands in usr/lib/x, as containerd does it.
    let blob = Layer::new()
        .dir("usr/lib", 0o755, (0, 0), T)
        .symlink("lib", "/usr/lib")
        .file("lib/x", 0o644, (0, 0), b"x")
        .finish();
    let (tmp, _) = unpack_into(&blob);
    assert_eq!(fs::read(tmp.path().join("usr/lib/x")).unwrap(), b"x");
    assert!(
        fs::symlink_metadata(tmp.path().join("lib"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn unpack_rejects_garbage() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_layer(&[0x1f, 0x8b, 0, 1, 2, 3][..], tmp.path()).unwrap_err();
    assert!(matches!(err, super::UnpackError::Read(_)), "{err:?}");
    let err = unpack_layer(&b"not a tar"[..], &tmp.path().join("missing")).unwrap_err();
    assert!(matches!(err, super::UnpackError::Dest { .. }), "{err:?}");
}

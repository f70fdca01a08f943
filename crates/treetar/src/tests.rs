use std::{fs, os::unix::fs::MetadataExt, path::Path};

use super::*;

fn names(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            String::from_utf8(e.path_bytes().into_owned()).unwrap()
        })
        .collect()
}

fn tree(root: &Path) {
    fs::create_dir_all(root.join("d/e")).unwrap();
    fs::write(root.join("d/f"), b"hello").unwrap();
    fs::write(root.join("d/e/g"), b"x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("d/link")).unwrap();
    fs::hard_link(root.join("d/f"), root.join("d/h")).unwrap();
}

#[test]
fn a_tree_is_written_in_order_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let mut t = TreeTar::new(Vec::new(), Whiteouts::Keep);
    t.append_tree(&dir.path().join("d"), "d").unwrap();
    let out = t.finish().unwrap();
    assert_eq!(names(&out), ["d/", "d/e/", "d/e/g", "d/f", "d/h", "d/link"]);
    let mut a = tar::Archive::new(out.as_slice());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        match p.as_str() {
            "d/h" => {
                assert_eq!(e.header().entry_type(), tar::EntryType::Link);
                assert_eq!(e.link_name().unwrap().unwrap().display().to_string(), "d/f");
            }
            "d/f" => assert_eq!(e.header().mode().unwrap(), 0o100644),
            "d/link" => assert_eq!(
                e.link_name().unwrap().unwrap().display().to_string(),
                "/etc/passwd"
            ),
            _ => {}
        }
    }
}

#[test]
fn without_a_name_only_the_contents_are_written() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let mut t = TreeTar::new(Vec::new(), Whiteouts::Keep);
    t.append_tree(&dir.path().join("d"), "").unwrap();
    assert_eq!(names(&t.finish().unwrap()), ["e/", "e/g", "f", "h", "link"]);
}

/// Needs root (mknod, trusted.* xattrs): skipped visibly otherwise.
#[test]
fn overlay_whiteouts_become_oci_whiteouts() {
    if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path();
    fs::create_dir_all(up.join("etc/opq")).unwrap();
    fs::write(up.join("etc/opq/new"), b"n").unwrap();
    rustix::fs::setxattr(
        up.join("etc/opq"),
        OPAQUE_XATTR,
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        up.join("etc/gone"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    let mut t = TreeTar::new(Vec::new(), Whiteouts::Oci);
    t.append_tree(up, "").unwrap();
    let out = t.finish().unwrap();
    assert_eq!(
        names(&out),
        [
            "etc/",
            "etc/.wh.gone",
            "etc/opq/",
            "etc/opq/.wh..wh..opq",
            "etc/opq/new"
        ]
    );
    let mut a = tar::Archive::new(out.as_slice());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().ends_with(".wh.gone") {
            assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
            assert_eq!(e.header().size().unwrap(), 0);
        }
    }
    // Kept as they are without the conversion.
    let mut t = TreeTar::new(Vec::new(), Whiteouts::Keep);
    t.append_tree(up, "").unwrap();
    assert_eq!(
        names(&t.finish().unwrap()),
        ["etc/", "etc/gone", "etc/opq/", "etc/opq/new"]
    );
}

#[test]
fn a_tree_round_trips_through_extract() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    fs::set_permissions(
        dir.path().join("d/e"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    let mut t = TreeTar::new(Vec::new(), Whiteouts::Keep);
    t.append_tree(&dir.path().join("d"), "d").unwrap();
    let out = t.finish().unwrap();
    let dest = tempfile::tempdir().unwrap();
    extract(out.as_slice(), dest.path(), ExtractOptions::default()).unwrap();
    let d = dest.path().join("d");
    assert_eq!(fs::read(d.join("f")).unwrap(), b"hello");
    assert_eq!(fs::read(d.join("e/g")).unwrap(), b"x");
    assert_eq!(
        fs::read_link(d.join("link")).unwrap().display().to_string(),
        "/etc/passwd"
    );
    assert_eq!(
        fs::metadata(d.join("h")).unwrap().ino(),
        fs::metadata(d.join("f")).unwrap().ino()
    );
    assert_eq!(fs::metadata(d.join("e")).unwrap().mode() & 0o7777, 0o750);
    let src_mtime = fs::metadata(dir.path().join("d/f")).unwrap().mtime();
    assert_eq!(fs::metadata(d.join("f")).unwrap().mtime(), src_mtime);
}

fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                b.append_link(&mut h, name, link).unwrap();
            }
            _ => {
                // Written raw so that `..` reaches the archive.
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn entries_that_leave_the_destination_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");
    fs::create_dir(&dest).unwrap();
    for bad in [
        tar_of(&[("../evil", tar::EntryType::Regular, "")]),
        tar_of(&[("a", tar::EntryType::Symlink, "../../evil")]),
        tar_of(&[("a", tar::EntryType::Link, "../evil")]),
        // A symlink to the outside, then a file through it.
        tar_of(&[
            ("up", tar::EntryType::Symlink, "."),
            ("up", tar::EntryType::Symlink, ".."),
        ]),
    ] {
        let r = extract(bad.as_slice(), &dest, ExtractOptions::default());
        assert!(r.is_err(), "{r:?}");
    }
    // Through a symlink that leads out (made by hand, as a container could).
    std::os::unix::fs::symlink(outer.path(), dest.join("out")).unwrap();
    let through = tar_of(&[("out/evil", tar::EntryType::Regular, "")]);
    assert!(extract(through.as_slice(), &dest, ExtractOptions::default()).is_err());
    assert!(!outer.path().join("evil").exists());
}

#[test]
fn no_overwrite_dir_non_dir_refuses_replacing_a_directory() {
    let dest = tempfile::tempdir().unwrap();
    fs::create_dir(dest.path().join("x")).unwrap();
    let t = tar_of(&[("x", tar::EntryType::Regular, "")]);
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: true,
        chown: None,
    };
    let e = extract(t.as_slice(), dest.path(), opts).unwrap_err();
    assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
    // Allowed by default: the directory is replaced.
    extract(t.as_slice(), dest.path(), ExtractOptions::default()).unwrap();
    assert!(dest.path().join("x").is_file());
}

#[test]
fn gzip_is_read() {
    let t = tar_of(&[("f", tar::EntryType::Regular, "")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &t).unwrap();
    let gz = gz.finish().unwrap();
    let dest = tempfile::tempdir().unwrap();
    extract(gz.as_slice(), dest.path(), ExtractOptions::default()).unwrap();
    assert!(dest.path().join("f").is_file());
}

#[test]
fn names_keep_dot_slash_and_long_names_survive() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let long = "x".repeat(150);
    fs::write(dir.path().join("d").join(&long), b"l").unwrap();
    std::os::unix::fs::symlink(&long, dir.path().join("d/longlink")).unwrap();
    let mut t = TreeTar::new(Vec::new(), Whiteouts::Keep);
    t.append_tree(&dir.path().join("d"), ".").unwrap();
    let out = t.finish().unwrap();
    let n = names(&out);
    assert_eq!(n[0], "./");
    assert!(n.contains(&"./e/".to_owned()), "{n:?}");
    assert!(n.contains(&format!("./{long}")), "{n:?}");
    let mut a = tar::Archive::new(out.as_slice());
    let link = a
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path_bytes().ends_with(b"longlink"))
        .unwrap();
    assert_eq!(
        link.link_name_bytes().unwrap().into_owned(),
        long.as_bytes()
    );
}

#[test]
fn failed_writes_read_as_dockerds_errors() {
    let dest = tempfile::tempdir().unwrap();
    let long = "a".repeat(300);
    let real = fs::canonicalize(dest.path()).unwrap();
    for (kind, what) in [
        (tar::EntryType::Regular, "open"),
        (tar::EntryType::Directory, "mkdir"),
    ] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, &long, std::io::empty()).unwrap();
        let t = b.into_inner().unwrap();
        let e = extract(t.as_slice(), dest.path(), ExtractOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{what} {}/{long}: file name too long", real.display())
        );
    }
}

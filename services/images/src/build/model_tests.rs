use std::io::Cursor;

use super::*;

/// A tar of `(path, body, mode)`; a path ending in `/` is a directory.
fn tar_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body, mode) in files {
        let mut h = tar::Header::new_gnu();
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
        }
        h.set_size(body.len() as u64);
        h.set_mode(*mode);
        h.set_cksum();
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn model(files: &[(&str, &str, u32)]) -> Model {
    scan(Cursor::new(tar_of(files))).unwrap()
}

const CONTEXT: &[(&str, &str, u32)] = &[
    ("Dockerfile", "FROM busybox\n", 0o644),
    ("data/", "", 0o755),
    ("data/part0", "zero", 0o644),
    ("data/part1", "one", 0o600),
    ("./other/deep/x", "x", 0o644),
    ("a.txt", "a", 0o644),
    ("b.txt", "b", 0o644),
];

fn sum(m: &Model, sources: &[&str], dest: &str) -> Option<String> {
    let sources: Vec<String> = sources.iter().map(|s| (*s).to_owned()).collect();
    m.copy_checksum(&sources, dest)
}

#[test]
fn files_directories_and_the_directories_they_imply() {
    let m = model(CONTEXT);
    let df = m.get("Dockerfile").unwrap();
    assert_eq!(df.data.as_deref(), Some(&b"FROM busybox\n"[..]));
    assert_eq!(df.digest, Some(Checksum::of(b"FROM busybox\n")));
    assert_eq!(m.get("data/part1").unwrap().mode, 0o600);
    assert!(m.get("other").unwrap().dir && m.get("./other/deep/").unwrap().dir);
    assert!(m.get("../../a.txt").is_some(), "`..` stops at the root");
    // A large file keeps its digest, not its bytes.
    let big = "z".repeat((SMALL + 1) as usize);
    let m = model(&[("big", &big, 0o644)]);
    let e = m.get("big").unwrap();
    assert!(e.data.is_none() && e.size == SMALL + 1);
    assert_eq!(e.digest, Some(Checksum::of(big.as_bytes())));
}

#[test]
fn what_the_model_does_not_represent() {
    let conflict = tar_of(&[("a", "file", 0o644), ("a/b", "under a file", 0o644)]);
    assert!(matches!(
        scan(Cursor::new(conflict)),
        Err(NoModel::Unsupported)
    ));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_cksum();
    b.append_link(&mut h, "l", "a").unwrap();
    let r = scan(Cursor::new(b.into_inner().unwrap()));
    assert!(matches!(r, Err(NoModel::Unsupported)), "{r:?}");
    let mut truncated = tar_of(CONTEXT);
    truncated.truncate(700);
    assert!(matches!(
        scan(Cursor::new(truncated)),
        Err(NoModel::Read(_))
    ));
}

#[test]
fn a_copy_checksum_changes_with_what_it_copies_only() {
    let m = model(CONTEXT);
    let dir = sum(&m, &["data/"], "/work/data/").unwrap();
    assert!(dir.starts_with("dir:"));
    assert_eq!(
        sum(&model(CONTEXT), &["./data"], "/work/data/"),
        Some(dir.clone())
    );
    let with = |path: &str, body: &str, mode: u32| {
        let mut files = CONTEXT.to_vec();
        files.retain(|f| f.0 != path);
        files.push((path, body, mode));
        model(&files)
    };
    // The same size, another content: a miss.
    assert_ne!(
        sum(&with("data/part0", "ZERO", 0o644), &["data/"], "/w/"),
        Some(dir.clone())
    );
    // Another mode: a miss.
    assert_ne!(
        sum(&with("data/part0", "zero", 0o755), &["data/"], "/w/"),
        Some(dir.clone())
    );
    // A new file in the directory: a miss.
    assert_ne!(
        sum(&with("data/part2", "two", 0o644), &["data/"], "/w/"),
        Some(dir.clone())
    );
    // A file outside what is copied: the same key.
    assert_eq!(
        sum(&with("a.txt", "changed", 0o644), &["data/"], "/w/"),
        Some(dir)
    );
    let file = sum(&m, &["a.txt"], "/x").unwrap();
    assert!(file.starts_with("file:"));
    assert_ne!(
        sum(&with("a.txt", "A", 0o644), &["a.txt"], "/x"),
        Some(file)
    );
    let glob = sum(&m, &["*.txt"], "/x/").unwrap();
    assert!(glob.starts_with("multi:"));
    assert_eq!(sum(&m, &["a.txt", "b.txt"], "/x/"), Some(glob.clone()));
    assert_ne!(
        sum(&with("b.txt", "B", 0o644), &["*.txt"], "/x/"),
        Some(glob)
    );
    assert!(sum(&m, &["."], "/all/").unwrap().starts_with("dir:"));
}

#[test]
fn what_the_model_leaves_to_the_disk() {
    let m = model(CONTEXT);
    assert_eq!(
        sum(&m, &["missing"], "/x"),
        None,
        "not found: the disk says so"
    );
    assert_eq!(sum(&m, &["nothing*"], "/x/"), None, "no match");
    assert_eq!(
        sum(&m, &["a.txt", "b.txt"], "/x"),
        None,
        "several sources need a directory destination"
    );
    assert_eq!(sum(&m, &["http://127.0.0.1/f"], "/x"), None);
}

/// The paths left on disk by unpacking `files` and applying `ignore` as the disk path does.
fn disk_pruned(files: &[(&str, &str, u32)], ignore: &Ignore) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(Cursor::new(tar_of(files)))
        .unpack(dir.path())
        .unwrap();
    super::super::context::prune_for_tests(dir.path(), ignore);
    let mut out = Vec::new();
    let mut stack = vec![(dir.path().to_owned(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                stack.push((e.path(), r.clone()));
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

#[test]
fn dockerignore_prunes_the_model_as_the_disk() {
    let files: &[(&str, &str, u32)] = &[
        ("Dockerfile", "x", 0o644),
        ("a.log", "x", 0o644),
        ("a.txt", "x", 0o644),
        ("sub/", "", 0o755),
        ("sub/x", "x", 0o644),
        ("sub/keep", "x", 0o644),
        ("sub/deeper/y.log", "x", 0o644),
        ("gone/z", "x", 0o644),
        ("empty/", "", 0o755),
    ];
    for text in [
        "*.log\nsub\n!sub/keep\n",
        "*.log\ngone\n",
        "**/*.log\nempty\n",
        "*\n!a.txt\n",
        "sub/deeper\n",
    ] {
        let ignore = Ignore::parse(text).unwrap();
        let mut m = model(files);
        m.prune(&ignore);
        let kept: Vec<String> = m.entries.keys().cloned().collect();
        assert_eq!(kept, disk_pruned(files, &ignore), "{text:?}");
    }
}

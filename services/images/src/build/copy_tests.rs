//! COPY's sources, destinations, owners and checksums.
use super::*;

#[test]
fn destinations_and_globs() {
    assert_eq!(normalize_dest("/app", "x"), "/app/x");
    assert_eq!(normalize_dest("/app", "./"), "/app/");
    assert_eq!(normalize_dest("", "."), "/");
    assert_eq!(normalize_dest("/w", "/abs/dir/"), "/abs/dir/");
    assert!(glob_match("*.txt", "a.txt") && !glob_match("*.txt", "d/a.txt"));
    assert!(glob_match("d/?.t[x]t", "d/a.txt"));
}

#[test]
fn copy_semantics() {
    let ctx = tempfile::tempdir().unwrap();
    let img = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ctx.path().join("dir/sub")).unwrap();
    std::fs::write(ctx.path().join("dir/sub/f"), "f").unwrap();
    std::fs::write(ctx.path().join("a.txt"), "a").unwrap();
    std::fs::write(ctx.path().join("b.txt"), "b").unwrap();
    std::fs::create_dir_all(img.path().join("etc")).unwrap();
    std::fs::write(
        img.path().join("etc/passwd"),
        "root:x:0:0::/:/bin/sh\nbob:x:1000:1000::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(img.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
    let src = Tree::new(vec![ctx.path().to_owned()]);
    let image = Tree::new(vec![img.path().to_owned()]);
    assert_eq!(parse_chown("bob:staff", &image).unwrap(), (1000, 50));
    assert_eq!(parse_chown("7", &image).unwrap(), (7, 7));
    assert!(
        parse_chown("nobody", &image)
            .unwrap_err()
            .to_string()
            .contains("no such user: nobody")
    );
    let plan = |sources: &[&str], dest: &str| {
        let s: Vec<String> = sources.iter().map(|x| (*x).to_owned()).collect();
        CopyPlan::new(
            CopyRequest {
                add: false,
                sources: &s,
                inline: vec![],
                downloads: vec![],
                dest,
                workdir: "/w",
                owner: Some((1, 2)),
            },
            &src,
            &image,
            None,
        )
    };
    let names = |p: &CopyPlan| {
        let mut buf = Vec::new();
        p.write_layer(&src, &image, &mut buf).unwrap();
        let mut a = tar::Archive::new(buf.as_slice());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                format!(
                    "{}:{}",
                    e.path().unwrap().display(),
                    e.header().uid().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let p = plan(&["*.txt"], "out/").unwrap();
    assert!(p.checksum.starts_with("multi:"));
    assert_eq!(
        names(&p),
        ["w/:1", "w/out/:1", "w/out/a.txt:1", "w/out/b.txt:1"]
    );
    // A directory's contents, not the directory; an existing image dir keeps its owner.
    let p = plan(&["dir"], "/etc").unwrap();
    assert!(p.checksum.starts_with("dir:"));
    assert_eq!(names(&p), ["etc/:0", "etc/sub/:1", "etc/sub/f:1"]);
    // A file to a file name.
    assert_eq!(
        names(&plan(&["a.txt"], "/x/renamed").unwrap()),
        ["x/:1", "x/renamed:1"]
    );
    assert!(
        plan(&["a.txt", "b.txt"], "/x")
            .err()
            .unwrap()
            .to_string()
            .contains("must be a directory and end with a /")
    );
    assert_eq!(
        plan(&["nope"], "/x").err().unwrap().to_string(),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist"
    );
    // The checksum follows the content.
    let before = plan(&["a.txt"], "/x").unwrap().checksum;
    std::fs::write(ctx.path().join("a.txt"), "changed").unwrap();
    assert_ne!(plan(&["a.txt"], "/x").unwrap().checksum, before);
}

use super::*;

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn options_are_checked_as_the_local_driver_checks_them() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("x", "1")], "invalid option: \"x\""),
        (&[("device", "tmpfs")], "missing required option: \"type\""),
        (&[("type", "tmpfs")], "missing required option: \"device\""),
        (&[("o", "size=1m")], "missing required option: \"device\""),
        (
            &[("o", "size=1m"), ("device", "tmpfs")],
            "missing required option: \"type\"",
        ),
        (
            &[("size", "1g")],
            "quota size requested but no quota support",
        ),
        (&[("size", "lots")], "invalid size: 'lots'"),
        (
            &[("type", "cifs"), ("device", "//srv:445/share")],
            "port not allowed in CIFS device URL, include 'port' in 'o='",
        ),
    ];
    for (o, want) in cases {
        assert_eq!(validate(&opts(o)).unwrap_err(), *want, "{o:?}");
    }
    for ok in [
        &[][..],
        &[("type", "tmpfs"), ("device", "tmpfs")][..],
        &[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=10m,uid=1000"),
        ][..],
        &[("type", "none"), ("device", "/srv"), ("o", "bind")][..],
        &[("size", "0")][..],
        &[("type", "cifs"), ("device", "//srv/share")][..],
    ] {
        validate(&opts(ok)).unwrap();
    }
    assert!(needs_mount(&opts(&[("type", "tmpfs"), ("device", "x")])));
    assert!(!needs_mount(&opts(&[("size", "0")])));
    assert!(!needs_mount(&opts(&[])));
}

#[test]
fn sizes_and_ports_parse_as_go_units_and_urls() {
    assert_eq!(parse_size("10"), Some(10));
    assert_eq!(parse_size("10k"), Some(10 * 1024));
    assert_eq!(parse_size("1.5MiB"), Some(3 << 19));
    assert_eq!(parse_size("2g"), Some(2 << 30));
    assert_eq!(parse_size("g"), None);
    assert_eq!(parse_size("-1"), None);
    assert_eq!(url_port("//h:445/s"), Some("445"));
    assert_eq!(url_port("smb://u@h:1/s"), Some("1"));
    assert_eq!(url_port("//[::1]:9/s"), Some("9"));
    assert_eq!(url_port("//h/s"), None);
    assert_eq!(url_port("//[::1]/s"), None);
}

#[test]
fn o_splits_into_flags_and_data_as_moby() {
    let (f, d) = parse_options("size=10m,uid=1000,ro,noexec");
    assert_eq!(f, MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC);
    assert_eq!(d, "size=10m,uid=1000");
    let (f, d) = parse_options("bind");
    assert_eq!(f, MsFlags::MS_BIND);
    assert_eq!(d, "");
    // A later word clears what an earlier one set.
    let (f, _) = parse_options("ro,rw,rbind,rshared");
    assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_SHARED);
    let (f, d) = parse_options("addr=1.2.3.4,username=u,password=p");
    assert!(f.is_empty());
    assert_eq!(d, "addr=1.2.3.4,username=u,password=p");
}

#[test]
fn a_password_is_masked() {
    let o = "addr=1.2.3.4,username=u,password=s3cret,vers=3";
    assert_eq!(
        mask(&format!("mount //h/s:/x, data: {o}: permission denied"), o),
        "mount //h/s:/x, data: addr=1.2.3.4,username=u,password=********,vers=3: \
         permission denied"
    );
    assert_eq!(mask("no password here", "vers=3"), "no password here");
}

#[test]
fn a_failed_mount_names_device_flags_and_data_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let e = mount(
        &opts(&[
            ("type", "none"),
            ("device", missing.to_str().unwrap()),
            ("o", "bind"),
        ]),
        dir.path(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        format!(
            "failed to mount local volume: mount {}:{}, flags: 0x1000: no such file or directory",
            missing.display(),
            dir.path().display()
        )
    );
    // An unknown filesystem type with a password in its data.
    let e = mount(
        &opts(&[
            ("type", "berthnofs"),
            ("device", "//h/s"),
            ("o", "ro,username=u,password=hunter2"),
        ]),
        dir.path(),
    )
    .unwrap_err();
    assert!(!e.contains("hunter2"), "{e}");
    assert!(
        e.starts_with(&format!(
            "failed to mount local volume: mount //h/s:{}, flags: 0x1, data: username=u,password=********: ",
            dir.path().display()
        )),
        "{e}"
    );
}

#[test]
fn mountinfo_paths_are_unescaped() {
    assert_eq!(unescape("/a\\040b"), "/a b");
    assert_eq!(unescape("/plain"), "/plain");
    assert_eq!(unescape("/x\\"), "/x\\");
    assert!(is_mounted(Path::new("/proc")));
    assert!(!is_mounted(Path::new("/proc/self")));
}

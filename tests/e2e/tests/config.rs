//! daemon.json errors as a user sees them: the binary refuses to start and names the key.

use berth_testutil::{bin, run, text};

fn start_with(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.json");
    std::fs::write(&path, config).unwrap();
    let out = run(std::process::Command::new(bin("berth-runtime"))
        .arg("--config")
        .arg(&path)
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--run-root")
        .arg(dir.path().join("run")));
    (out.status.success(), text(&out).1)
}

#[test]
fn unknown_keys_and_bad_values_are_refused_by_name() {
    let (ok, err) = start_with(r#"{"hosts": [], "colour": "blue"}"#);
    assert!(!ok);
    assert!(
        err.contains("don't match any configuration option: colour"),
        "{err}"
    );
    let (ok, err) = start_with(r#"{"log-level": "loud"}"#);
    assert!(!ok);
    assert!(err.contains("invalid value for \"log-level\""), "{err}");
    let (ok, err) = start_with(r#"{"debug": tru"#);
    assert!(!ok);
    assert!(err.contains("not valid JSON"), "{err}");
}

#[test]
fn a_missing_named_config_file_is_an_error() {
    let out = run(std::process::Command::new(bin("berth-images"))
        .args(["--config", "/nonexistent/daemon.json"]));
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("/nonexistent/daemon.json"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn an_unusable_seccomp_profile_stops_the_engine_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-profile.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let missing = dir.path().join("missing.json");
    for (profile, want) in [
        (
            &missing,
            format!("opening seccomp profile ({}) failed", missing.display()),
        ),
        (&bad, "unknown action".to_owned()),
    ] {
        let config = serde_json::json!({ "seccomp-profile": profile }).to_string();
        let (ok, err) = start_with(&config);
        assert!(!ok);
        assert!(
            err.contains("invalid value for \"seccomp-profile\""),
            "{err}"
        );
        assert!(err.contains(&want), "{err}");
        // `berth up` refuses before it starts anything.
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, &config).unwrap();
        let out = run(std::process::Command::new(bin("berth"))
            .arg("up")
            .arg("--config")
            .arg(&path)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--run-root")
            .arg(dir.path().join("run")));
        assert!(!out.status.success());
        let err = text(&out).1;
        assert!(err.contains(&want), "{err}");
    }
}

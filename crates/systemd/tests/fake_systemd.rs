//! The driver's D-Bus client against a fake systemd (`berth_testutil::FakeSystemd`: a private
//! `dbus-daemon` on which the fake owns `org.freedesktop.systemd1`), which makes the scope's
//! cgroup in a fixture tree and finishes each job with a `JobRemoved` signal, as systemd does.

use berth_systemd::{
    Error, Prop, Systemd, limit_properties, scope_cgroup, scope_name, scope_properties,
    system_bus_address,
};
use berth_testutil::{FakeSystemd, SystemdCall};

fn fake() -> (FakeSystemd, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    (FakeSystemd::start(vec![root.path().to_owned()]), root)
}

fn text(props: &[(&str, Prop)]) -> Vec<(String, String)> {
    props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_value().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_is_started_with_its_properties_changed_and_stopped() {
    let (f, root) = fake();
    let sd = Systemd::at(f.address()).await.unwrap();
    let r = berth_bundle::Resources {
        memory: 64 << 20,
        cpu_period: 100_000,
        cpu_quota: 50_000,
        pids_limit: Some(20),
        ..Default::default()
    };
    let unit = scope_name("c0ffee");
    let props = scope_properties(
        "c0ffee",
        "web-api.slice",
        4242,
        &r,
        &berth_bundle::default_device_rules(),
        false,
    )
    .unwrap();
    sd.start_unit(&unit, &props).await.unwrap();
    let dir = root
        .path()
        .join(scope_cgroup("web-api.slice", "c0ffee").unwrap());
    assert!(
        dir.ends_with("web.slice/web-api.slice/berth-c0ffee.scope") && dir.is_dir(),
        "the scope's cgroup {}",
        dir.display()
    );
    let bigger = berth_bundle::Resources {
        memory: 128 << 20,
        ..r.clone()
    };
    sd.set_properties(&unit, &limit_properties(&bigger, false))
        .await
        .unwrap();
    sd.stop_unit(&unit).await.unwrap();
    assert!(!dir.exists(), "stopped: its cgroup is gone");
    assert!(f.active_units().is_empty());
    let calls = f.calls();
    assert_eq!(calls[0], SystemdCall::Subscribe);
    let SystemdCall::Start {
        name,
        mode,
        properties,
    } = &calls[1]
    else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (name.as_str(), mode.as_str()),
        ("berth-c0ffee.scope", "replace")
    );
    assert_eq!(properties, &text(&props), "every property, as sent");
    for (k, v) in [
        ("Slice", r#""web-api.slice""#),
        ("Delegate", "true"),
        ("MemoryLimit", "uint64 67108864"),
        ("CPUQuotaPerSecUSec", "uint64 500000"),
        ("TasksMax", "uint64 20"),
        ("DevicePolicy", r#""strict""#),
    ] {
        assert_eq!(calls[1].property(k), Some(v), "{k} in {properties:?}");
    }
    assert!(calls[1].property("PIDs").unwrap().contains("4242"));
    assert_eq!(calls[2].property("MemoryLimit"), Some("uint64 134217728"));
    assert_eq!(
        calls[3],
        SystemdCall::Stop {
            name: "berth-c0ffee.scope".into(),
            mode: "replace".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_a_leftover_unit_and_an_unknown_one() {
    let (f, _root) = fake();
    let sd = Systemd::at(f.address()).await.unwrap();
    f.set_job_result("failed");
    let props = scope_properties("bad", "berth.slice", 1, &Default::default(), &[], false).unwrap();
    let e = sd.start_unit(&scope_name("bad"), &props).await.unwrap_err();
    assert!(
        matches!(&e, Error::Job { unit, result } if unit == "berth-bad.scope" && result == "failed"),
        "{e}"
    );
    // The failed unit is still known: starting it again stops and resets it first.
    f.set_job_result("done");
    sd.start_unit(&scope_name("bad"), &props).await.unwrap();
    let calls = f.calls();
    let stops = calls
        .iter()
        .filter(|c| matches!(c, SystemdCall::Stop { .. }))
        .count();
    assert_eq!(stops, 1, "{calls:?}");
    assert_eq!(f.active_units(), vec!["berth-bad.scope".to_owned()]);
    // A unit systemd does not know (a scope collected when its last process left) is
    // stopped already.
    let before = f.calls().len();
    sd.stop_unit("berth-none.scope").await.unwrap();
    assert!(
        !f.calls()[before..]
            .iter()
            .any(|c| matches!(c, SystemdCall::Stop { .. }))
    );
}

#[tokio::test]
async fn no_bus_is_a_clear_error() {
    let e = match Systemd::at("unix:path=/nonexistent/bus").await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => e,
    };
    assert!(
        e.to_string()
            .contains("connecting to unix:path=/nonexistent/bus"),
        "{e}"
    );
    assert_eq!(
        system_bus_address(None),
        "unix:path=/run/dbus/system_bus_socket"
    );
    assert_eq!(system_bus_address(Some("unix:path=/x")), "unix:path=/x");
}

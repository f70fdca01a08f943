//! The driver's D-Bus client against a fake systemd: a private `dbus-daemon` (Debian's
//! `dbus-daemon` package) on which this test owns `org.freedesktop.systemd1` and serves a
//! minimal Manager that records StartTransientUnit and StopUnit, makes the scope's cgroup in a
//! fixture tree, and finishes each job with a `JobRemoved` signal, as systemd does.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};

use berth_systemd::{Error, Prop, Systemd, scope_cgroup, scope_name, scope_properties};
use zbus::{
    object_server::SignalEmitter,
    zvariant::{ObjectPath, OwnedObjectPath, OwnedValue},
};

/// A dbus-daemon of the test's own, killed on drop.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .unwrap();
        #[allow(clippy::disallowed_methods)]
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian package dbus-daemon; scripts/setup-debian.sh)");
        // The address is printed once the bus listens.
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        Bus {
            child,
            address: address.trim().to_owned(),
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A call the fake manager received.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Subscribe,
    Start {
        name: String,
        mode: String,
        properties: Vec<(String, Prop)>,
    },
    Stop {
        name: String,
        mode: String,
    },
}

/// systemd's own error names.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum SystemdError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoSuchUnit(String),
}

struct FakeManager {
    calls: Arc<Mutex<Vec<Call>>>,
    /// The fixture tree where scopes' cgroups are made.
    root: PathBuf,
    jobs: u32,
    /// The result the next job ends with.
    result: Arc<Mutex<String>>,
}

impl FakeManager {
    fn job(&mut self) -> (u32, OwnedObjectPath) {
        self.jobs += 1;
        let path = format!("/org/freedesktop/systemd1/job/{}", self.jobs);
        (self.jobs, ObjectPath::try_from(path).unwrap().into())
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeManager {
    async fn subscribe(&self) {
        self.calls.lock().unwrap().push(Call::Subscribe);
    }

    async fn start_transient_unit(
        &mut self,
        name: String,
        mode: String,
        properties: Vec<(String, OwnedValue)>,
        _aux: Vec<(String, Vec<(String, OwnedValue)>)>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let properties: Vec<(String, Prop)> = properties
            .iter()
            .map(|(k, v)| (k.clone(), Prop::from_value(v).expect("a known type")))
            .collect();
        let slice = properties.iter().find_map(|(k, v)| match (k.as_str(), v) {
            ("Slice", Prop::Str(s)) => Some(s.clone()),
            _ => None,
        });
        let id = name
            .strip_prefix("docker-")
            .and_then(|n| n.strip_suffix(".scope"))
            .unwrap_or(&name);
        let dir = scope_cgroup(&slice.unwrap_or_default(), id)
            .map_err(|e| zbus::fdo::Error::InvalidArgs(e.to_string()))?;
        std::fs::create_dir_all(self.root.join(dir))
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        self.calls.lock().unwrap().push(Call::Start {
            name: name.clone(),
            mode,
            properties,
        });
        let (id, job) = self.job();
        // systemd may finish the job before its reply goes out: the signal comes first.
        let result = self.result.lock().unwrap().clone();
        Self::job_removed(&emitter, id, job.as_ref(), &name, &result)
            .await
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        Ok(job)
    }

    async fn stop_unit(
        &mut self,
        name: String,
        mode: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedObjectPath, SystemdError> {
        let known = self
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| matches!(c, Call::Start { name: n, .. } if *n == name));
        if !known {
            return Err(SystemdError::NoSuchUnit(format!("Unit {name} not loaded.")));
        }
        self.calls.lock().unwrap().push(Call::Stop {
            name: name.clone(),
            mode,
        });
        let (id, job) = self.job();
        let emitter = emitter.to_owned();
        let path = job.clone();
        // Here the reply goes first and the signal after it.
        tokio::spawn(async move {
            let _ = Self::job_removed(&emitter, id, path.as_ref(), &name, "done").await;
        });
        Ok(job)
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// A fake systemd on a private bus: its calls, the result its next job gives, the fixture.
struct Fake {
    bus: Bus,
    calls: Arc<Mutex<Vec<Call>>>,
    result: Arc<Mutex<String>>,
    root: tempfile::TempDir,
    _conn: zbus::Connection,
}

async fn fake() -> Fake {
    let bus = Bus::start();
    let root = tempfile::tempdir().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let result = Arc::new(Mutex::new("done".to_owned()));
    let manager = FakeManager {
        calls: calls.clone(),
        root: root.path().to_owned(),
        jobs: 0,
        result: result.clone(),
    };
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at("/org/freedesktop/systemd1", manager)
        .unwrap()
        .build()
        .await
        .unwrap();
    Fake {
        bus,
        calls,
        result,
        root,
        _conn: conn,
    }
}

fn cgroup(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_is_started_with_its_properties_and_stopped() {
    let f = fake().await;
    let sd = Systemd::at(&f.bus.address).await.unwrap();
    let r = berth_bundle::Resources {
        memory: 64 << 20,
        cpu_period: 100_000,
        cpu_quota: 50_000,
        pids_limit: Some(20),
        ..Default::default()
    };
    let unit = scope_name("c0ffee");
    let props = scope_properties("c0ffee", "web-api.slice", 4242, &r, false);
    sd.start_unit(&unit, &props).await.unwrap();
    assert!(
        cgroup(f.root.path(), "web.slice/web-api.slice/docker-c0ffee.scope").is_dir(),
        "the scope's cgroup"
    );
    sd.stop_unit(&unit).await.unwrap();
    let calls = f.calls.lock().unwrap().clone();
    assert_eq!(calls[0], Call::Subscribe);
    let Call::Start {
        name,
        mode,
        properties,
    } = &calls[1]
    else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (name.as_str(), mode.as_str()),
        ("docker-c0ffee.scope", "replace")
    );
    let sent: Vec<(&str, &Prop)> = properties.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let want: Vec<(&str, &Prop)> = props.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(sent, want);
    for (k, v) in [
        ("Slice", Prop::Str("web-api.slice".into())),
        ("PIDs", Prop::Pids(vec![4242])),
        ("Delegate", Prop::Bool(true)),
        ("MemoryLimit", Prop::U64(64 << 20)),
        ("CPUQuotaPerSecUSec", Prop::U64(500_000)),
        ("TasksMax", Prop::U64(20)),
    ] {
        assert!(sent.contains(&(k, &v)), "{k} missing from {sent:?}");
    }
    assert_eq!(
        calls[2],
        Call::Stop {
            name: "docker-c0ffee.scope".into(),
            mode: "replace".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_and_an_unknown_unit() {
    let f = fake().await;
    let sd = Systemd::at(&f.bus.address).await.unwrap();
    *f.result.lock().unwrap() = "failed".to_owned();
    let props = scope_properties("bad", "system.slice", 1, &Default::default(), false);
    let e = sd.start_unit(&scope_name("bad"), &props).await.unwrap_err();
    assert!(
        matches!(&e, Error::Job { unit, result } if unit == "docker-bad.scope" && result == "failed"),
        "{e}"
    );
    // A unit systemd does not know (a scope collected when its last process left) is
    // stopped already.
    sd.stop_unit("docker-none.scope").await.unwrap();
    assert!(
        !f.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| matches!(c, Call::Stop { .. }))
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
}

//! `docker run -u` and `docker exec -u`, as root: the user's `name` is resolved inside the
//! container against the root filesystem's /etc/passwd and /etc/group (`common::PASSWD`,
//! `common::GROUP`), and the process runs with the ids it names.

mod common;

use berth_shim_proto::{ShimClient, v1 as pb};
use common::{Bundle, attach_and_start, collect, is_berth_shim, kill_and_delete};
use serde_json::{Value, json};

/// Prints what the process runs as. `Groups:` in /proc/self/status is setgroups's list.
const REPORT: &str = "echo uid=$(id -u) gid=$(id -g); grep ^Groups: /proc/self/status; \
                      echo home=$HOME";

/// What [`REPORT`] printed: "uid=U gid=G", the sorted groups, and HOME.
fn parse(out: &str) -> (String, Vec<u32>, String) {
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {out:?}"))
            .trim()
            .to_owned()
    };
    let ids = out
        .lines()
        .find(|l| l.starts_with("uid="))
        .unwrap_or_else(|| panic!("no uid= in {out:?}"))
        .to_owned();
    let mut groups: Vec<u32> = line("Groups:")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort_unstable();
    (ids, groups, line("home="))
}

/// Runs [`REPORT`] as the container's process with `user` and `env`; returns its output.
async fn run_as(user: Value, env: &[&str]) -> (String, Vec<u32>, String) {
    let b = Bundle::new(&["sh", "-c", REPORT]).with(|c| {
        c["process"]["user"] = user;
        c["process"]["env"] = json!(env);
    });
    let c = b.run().await;
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    assert_eq!(exit.exit_code, 0, "{:?}", b.log());
    c.delete(pb::DeleteRequest {}).await.unwrap();
    parse(&b.stdout())
}

#[tokio::test]
async fn user_names_and_numbers() {
    let path = ["PATH=/bin"];
    let (ids, groups, home) = run_as(json!({"name": "nobody"}), &path).await;
    assert_eq!(ids, "uid=65534 gid=65534");
    assert_eq!(groups, [65534]);
    assert_eq!(home, "/home", "HOME from passwd");

    // Numbers need no entry; HOME is then "/".
    let (ids, groups, home) = run_as(json!({"name": "1234:5678"}), &path).await;
    assert_eq!(ids, "uid=1234 gid=5678");
    assert_eq!(groups, [5678]);
    assert_eq!(home, "/");

    // A HOME in the environment is kept; the name overrides uid and gid.
    let (ids, _, home) = run_as(
        json!({"uid": 5, "gid": 5, "name": "nobody:users"}),
        &["PATH=/bin", "HOME=/root"],
    )
    .await;
    assert_eq!(ids, "uid=65534 gid=100");
    assert_eq!(home, "/root");
}

#[tokio::test]
async fn supplementary_groups() {
    // The implicit form: the groups listing `app` (wheel, users), then additional_gids.
    let (ids, groups, home) = run_as(
        json!({"name": "app", "additional_gids": [7]}),
        &["PATH=/bin"],
    )
    .await;
    assert_eq!(ids, "uid=1000 gid=1000");
    assert_eq!(groups, [7, 10, 100, 1000]);
    assert_eq!(home, "/home/app");

    // user:group: the group replaces the primary one; as in runc the membership groups are
    // not added, additional_gids (docker run --group-add) still are.
    let (ids, groups, _) = run_as(
        json!({"name": "app:staff", "additional_gids": [7]}),
        &["PATH=/bin"],
    )
    .await;
    assert_eq!(ids, "uid=1000 gid=50");
    assert_eq!(groups, [7, 50]);
}

#[tokio::test]
async fn unknown_user_or_group_is_a_start_error() {
    for name in [
        "nosuchuser",
        "nosuchuser:users",
        "app:nosuchgroup",
        "1:nosuchgroup",
    ] {
        let want = if name.starts_with("nosuchuser") {
            "unable to find user nosuchuser: no matching entries in passwd file"
        } else {
            "unable to find group nosuchgroup: no matching entries in group file"
        };
        let b = Bundle::new(&["true"]).with(|c| c["process"]["user"] = json!({"name": name}));
        let (code, stderr) = b.start().expect_err("start must fail");
        assert_eq!(code, 125, "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
        let e = b.read_json("start-error.json").expect("start-error.json");
        assert_eq!(e, json!({"kind": "other", "message": want}));
        for d in b.cgroup_dirs() {
            assert!(!d.exists(), "cgroup {} remains", d.display());
        }
        assert!(b.shim_pid().is_none_or(|p| !is_berth_shim(p)));
    }
}

#[tokio::test]
async fn without_passwd_and_group_only_numbers_work() {
    let b = Bundle::new(&["true"]).with(|c| c["process"]["user"] = json!({"name": "nobody"}));
    let lower = b.tmp.path().join("lower/etc");
    std::fs::remove_file(lower.join("passwd")).unwrap();
    std::fs::remove_file(lower.join("group")).unwrap();
    let (code, _) = b.start().expect_err("a name needs /etc/passwd");
    assert_eq!(code, 125);
    assert_eq!(
        b.read_json("start-error.json").unwrap()["message"],
        "unable to find user nobody: no matching entries in passwd file"
    );

    let b = Bundle::new(&["sh", "-c", REPORT]).with(|c| {
        c["process"]["user"] = json!({"name": "42:43"});
        c["process"]["env"] = json!(["PATH=/bin"]);
    });
    let lower = b.tmp.path().join("lower/etc");
    std::fs::remove_file(lower.join("passwd")).unwrap();
    std::fs::remove_file(lower.join("group")).unwrap();
    let c = b.run().await;
    assert_eq!(c.wait(pb::WaitRequest {}).await.unwrap().exit_code, 0);
    let (ids, groups, home) = parse(&b.stdout());
    assert_eq!(
        (ids.as_str(), groups, home.as_str()),
        ("uid=42 gid=43", vec![43], "/")
    );
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

/// Starts an exec of [`REPORT`] as `user`: its output, or the start error.
async fn exec_as(
    c: &ShimClient,
    user: Option<pb::User>,
) -> Result<(String, Vec<u32>, String), pb::StartError> {
    let exec_id = c
        .exec(pb::ExecRequest {
            exec_id: String::new(),
            process: Some(pb::ProcessSpec {
                args: vec!["sh".into(), "-c".into(), REPORT.into()],
                env: vec!["PATH=/bin".to_owned()],
                user,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .exec_id;
    let (stream, r) = attach_and_start(c, &exec_id).await;
    if let Some(e) = r.error {
        return Err(e);
    }
    let (out, err) = collect(stream).await;
    let st = c.exec_wait(pb::ExecWaitRequest { exec_id }).await.unwrap();
    assert_eq!(st.exit_code, 0, "{out}{err}");
    Ok(parse(&out))
}

#[tokio::test]
async fn exec_with_a_user_name() {
    let b = Bundle::new(&["sleep", "1000"]);
    let c = b.run().await;
    let name = |n: &str| {
        Some(pb::User {
            name: n.to_owned(),
            ..Default::default()
        })
    };
    let (ids, groups, home) = exec_as(&c, name("app")).await.unwrap();
    assert_eq!(ids, "uid=1000 gid=1000");
    assert_eq!(groups, [10, 100, 1000]);
    assert_eq!(home, "/home/app");

    let (ids, groups, home) = exec_as(&c, name("nobody:users")).await.unwrap();
    assert_eq!(ids, "uid=65534 gid=100");
    assert_eq!(groups, [100]);
    assert_eq!(home, "/home");

    // No name: the numeric user as before, with HOME from passwd.
    let (ids, _, home) = exec_as(&c, None).await.unwrap();
    assert_eq!(ids, "uid=0 gid=0");
    assert_eq!(home, "/root");

    let e = exec_as(&c, name("ghost")).await.unwrap_err();
    assert_eq!(e.kind, "other");
    assert_eq!(
        e.message,
        "unable to find user ghost: no matching entries in passwd file"
    );

    kill_and_delete(&c).await;
}

//! Legacy links through the real docker CLI: `--link name:alias` on the default bridge gives
//! the linking container /etc/hosts lines and dockerd's environment variables, inspect shows
//! `HostConfig.Links` as dockerd stores them (`/name:/me/alias`); on a user-defined network a
//! link is a name the embedded DNS server answers for the linking container only; dockerd's
//! refusals (a missing or stopped container, the host network).

use berth_testutil::BusyboxEngine;

fn ip_of(s: &BusyboxEngine, name: &str, network: &str) -> String {
    s.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn links_on_the_default_bridge_give_hosts_and_environment() {
    let s = BusyboxEngine::new();
    s.sleeper(
        "db",
        &[
            "--hostname",
            "dbhost",
            "-e",
            "SECRET=s3",
            "--expose",
            "5432",
        ],
    );
    let db_ip = ip_of(&s, "db", "bridge");
    assert!(!db_ip.is_empty());
    let out = s.docker(&[
        "run",
        "--name",
        "app",
        "--link",
        "db:store",
        &s.image,
        "sh",
        "-c",
        "cat /etc/hosts; env",
    ]);
    assert!(
        out.contains(&format!("{db_ip}\tstore dbhost db\n")),
        "{out}"
    );
    for want in [
        format!("STORE_PORT=tcp://{db_ip}:5432"),
        format!("STORE_PORT_5432_TCP=tcp://{db_ip}:5432"),
        format!("STORE_PORT_5432_TCP_ADDR={db_ip}"),
        "STORE_PORT_5432_TCP_PORT=5432".to_owned(),
        "STORE_PORT_5432_TCP_PROTO=tcp".to_owned(),
        "STORE_NAME=/app/store".to_owned(),
        "STORE_ENV_SECRET=s3".to_owned(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want}: {out}");
    }
    assert!(!out.contains("STORE_ENV_PATH"), "{out}");
    let app = s.inspect("app");
    assert_eq!(
        app["HostConfig"]["Links"],
        serde_json::json!(["/db:/app/store"]),
        "{}",
        app["HostConfig"]
    );
    // docker-py's `links` (a dict name → alias) too.
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
out = c.containers.run(sys.argv[2], "env", links={"db": "py-db"}, name="pyapp")
assert b"PY_DB_NAME=/pyapp/py-db\n" in out, out
assert c.containers.get("pyapp").attrs["HostConfig"]["Links"] == ["/db:/pyapp/py-db"]
c.containers.get("pyapp").remove()
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &s.engine.docker_host, &s.image])
        .output()
        .expect("python3");
    let (o, e) = berth_testutil::text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    // Reached by the alias.
    s.docker(&[
        "run", "--rm", "--link", "db", &s.image, "ping", "-c1", "-W2", "db",
    ]);
    // `docker exec` gets the link variables too (dockerd's exec environment).
    s.sleeper("app2", &["--link", "db:store"]);
    let out = s.docker(&["exec", "-e", "STORE_ENV_SECRET=mine", "app2", "env"]);
    for want in [
        "STORE_NAME=/app2/store".to_owned(),
        format!("STORE_PORT_5432_TCP_ADDR={db_ip}"),
        "STORE_ENV_SECRET=mine".to_owned(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want}: {out}");
    }
    // The linked container restarted with a new address: the line follows it.
    s.docker(&["restart", "-t", "0", "db"]);
    let new_ip = ip_of(&s, "db", "bridge");
    let hosts = s.docker(&["exec", "app2", "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l == format!("{new_ip}\tstore dbhost db")),
        "{new_ip}: {hosts}"
    );
    assert_ne!(new_ip, db_ip, "addresses are handed out after the last one");
    assert!(!hosts.contains(&format!("{db_ip}\t")), "{hosts}");
    s.docker(&["rm", "-f", "app2"]);

    // dockerd's refusals.
    let (_, err) = s.fails(&["run", "--rm", "--link", "nosuch:x", &s.image, "true"]);
    assert!(err.contains("could not get container for nosuch"), "{err}");
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--link",
        "db:x",
        &s.image,
        "true",
    ]);
    assert!(
        err.contains("host type networking can't be used with links"),
        "{err}"
    );
    s.docker(&["stop", "-t", "0", "db"]);
    let (_, err) = s.fails(&["run", "--rm", "--link", "db:x", &s.image, "true"]);
    assert!(
        err.contains("Cannot link to a non running container: /db AS /"),
        "{err}"
    );
}

#[test]
fn links_on_a_user_network_are_dns_names_of_the_linking_container() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "--subnet", "10.249.0.0/24", "lnet"]);
    s.sleeper("db", &["--network", "lnet"]);
    s.sleeper("app", &["--network", "lnet", "--link", "db:store"]);
    s.sleeper("other", &["--network", "lnet"]);
    let db_ip = ip_of(&s, "db", "lnet");
    let (code, out, _) = s.status(&["exec", "app", "nslookup", "store", "127.0.0.11"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&db_ip), "{out}");
    // Only for the linking container.
    let (code, out, _) = s.status(&["exec", "other", "nslookup", "store", "127.0.0.11"]);
    assert!(code != 0 || !out.contains(&db_ip), "{out}");
    // No hosts line, no variables on a user-defined network (dockerd).
    let hosts = s.docker(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("store"), "{hosts}");
    assert_eq!(
        s.inspect("app")["HostConfig"]["Links"],
        serde_json::json!(["/db:/app/store"])
    );
    s.docker(&["rm", "-f", "db", "app", "other"]);
    s.docker(&["network", "rm", "lnet"]);
}

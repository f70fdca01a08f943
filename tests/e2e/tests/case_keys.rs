//! Go's JSON decoder matches keys case-insensitively at every level, and so does Berth's
//! gateway: docker-py passes a `host_config` dict through as the caller wrote it, so a nested
//! key in another case (`{"RestartPolicy": {"name": "always"}}`) must be the field it names,
//! honored or refused, never dropped.

use std::process::Command;

use berth_testutil::BusyboxEngine;

#[test]
fn nested_keys_in_another_case_are_honored() {
    let s = BusyboxEngine::new();
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
api = c.api
image = sys.argv[2]
ct = api.create_container(image, "true", host_config={
    "restartpolicy": {"name": "on-failure", "maximumretrycount": 2},
    "Mounts": [{"type": "tmpfs", "target": "/t", "tmpfsoptions": {"sizebytes": 1048576}}],
    "LogConfig": {"type": "json-file", "config": {"max-size": "1m"}},
})
hc = api.inspect_container(ct["Id"])["HostConfig"]
assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}, hc["RestartPolicy"]
assert [m["Target"] for m in hc["Mounts"]] == ["/t"], hc["Mounts"]
assert hc["Mounts"][0]["TmpfsOptions"]["SizeBytes"] == 1048576, hc["Mounts"]
assert hc["LogConfig"]["Config"] == {"max-size": "1m"}, hc["LogConfig"]
r = api._post_json(api._url("/containers/{0}/update", ct["Id"]),
                   data={"restartpolicy": {"name": "always"}})
api._raise_for_status(r)
hc = api.inspect_container(ct["Id"])["HostConfig"]
assert hc["RestartPolicy"]["Name"] == "always", hc["RestartPolicy"]
for host_config, flag in [({"LogConfig": {"type": "syslog"}}, "--log-driver syslog"),
                          ({"restartpolicy": {"name": "sometimes"}}, "unknown policy 'sometimes'")]:
    try:
        api.create_container(image, "true", host_config=host_config)
    except docker.errors.APIError as e:
        assert e.status_code == 400, (host_config, e.status_code)
        assert flag in str(e.explanation), (host_config, e.explanation)
    else:
        raise AssertionError("accepted %r" % host_config)
api.remove_container(ct["Id"])
assert c.containers.list(all=True) == []
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.engine.docker_host, &s.image])
        .output()
        .expect("python3");
    let (o, e) = berth_testutil::text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}

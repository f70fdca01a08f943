//! `docker ps` through the real docker CLI: every filter key, `-a`/`-n`, invalid filters, the
//! sizes of `docker ps -s`, and the containers in `docker system df`.

use std::collections::HashMap;

use berth_testutil::BusyboxEngine;

/// The container fixture: an engine with busybox pulled from a private registry.
type Setup = BusyboxEngine;

/// The four containers of the filter tests, by ID; newest first: worker, job, db, web.
struct Fixture {
    s: Setup,
    names: HashMap<String, &'static str>,
}

impl Fixture {
    fn new() -> Fixture {
        let s = Setup::new();
        let img = s.image.clone();
        let mut names = HashMap::new();
        let web = s.docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "--label",
            "tier=front",
            "--label",
            "app=x",
            &img,
            "sleep",
            "1000",
        ]);
        names.insert(web, "web");
        let db = s.docker(&[
            "run",
            "-d",
            "--name",
            "db",
            "--label",
            "tier=back",
            "--network",
            "none",
            &img,
            "true",
        ]);
        assert_eq!(s.docker(&["wait", &db]), "0");
        names.insert(db, "db");
        let job = s.docker(&["create", "--name", "job", &img, "true"]);
        names.insert(job, "job");
        let worker = s.docker(&[
            "run",
            "-d",
            "--name",
            "worker",
            "--network",
            "host",
            &img,
            "sh",
            "-c",
            "exit 3",
        ]);
        assert_eq!(s.docker(&["wait", &worker]), "3");
        names.insert(worker, "worker");
        Fixture { s, names }
    }

    fn id(&self, name: &str) -> String {
        self.names
            .iter()
            .find(|(_, n)| **n == name)
            .map(|(id, _)| id.clone())
            .expect("a fixture container")
    }

    /// `docker ps --no-trunc -q <args>`, as the fixture's names (and only its IDs).
    fn ps(&self, args: &[&str]) -> Vec<&'static str> {
        let mut all = vec!["ps", "--no-trunc", "--format", "{{.ID}}"];
        all.extend(args);
        self.s
            .docker(&all)
            .lines()
            .map(|id| {
                *self
                    .names
                    .get(id)
                    .unwrap_or_else(|| panic!("{all:?} listed an unknown ID {id:?}"))
            })
            .collect()
    }

    /// `docker ps -a --filter <f>...`.
    fn filtered(&self, filters: &[&str]) -> Vec<&'static str> {
        let mut args = vec!["-a"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        self.ps(&args)
    }
}

#[test]
fn ps_filters_all_and_limit() {
    let fx = Fixture::new();
    let every = ["worker", "job", "db", "web"];
    let none: [&str; 0] = [];

    // all, limit.
    assert_eq!(fx.ps(&[]), ["web"]);
    assert_eq!(fx.ps(&["-a"]), every);
    assert_eq!(fx.ps(&["-n", "2"]), ["worker", "job"]);
    assert_eq!(fx.ps(&["-l"]), ["worker"]);
    assert_eq!(fx.ps(&["-a", "-n", "3"]), ["worker", "job", "db"]);

    // id: a prefix; name: a regexp search, with or without the slash.
    let db = fx.id("db");
    assert_eq!(fx.filtered(&[&format!("id={}", &db[..12])]), ["db"]);
    assert_eq!(fx.filtered(&[&format!("id={db}")]), ["db"]);
    assert_eq!(fx.filtered(&["id=zzzz"]), none);
    assert_eq!(fx.filtered(&["name=web"]), ["web"]);
    assert_eq!(fx.filtered(&["name=o"]), ["worker", "job"]);
    assert_eq!(fx.filtered(&["name=^w"]), ["worker", "web"]);
    assert_eq!(fx.filtered(&["name=^/db$"]), ["db"]);
    assert_eq!(fx.filtered(&["name=web", "name=db"]), ["db", "web"]);

    // label: key or key=value; every value must hold.
    assert_eq!(fx.filtered(&["label=tier"]), ["db", "web"]);
    assert_eq!(fx.filtered(&["label=tier=back"]), ["db"]);
    assert_eq!(fx.filtered(&["label=tier=front", "label=app=x"]), ["web"]);
    assert_eq!(fx.filtered(&["label=tier=front", "label=app=y"]), none);

    // status (which shows stopped containers without -a too), exited.
    assert_eq!(fx.filtered(&["status=exited"]), ["worker", "db"]);
    assert_eq!(fx.ps(&["--filter", "status=exited"]), ["worker", "db"]);
    assert_eq!(fx.filtered(&["status=created"]), ["job"]);
    assert_eq!(fx.filtered(&["status=running"]), ["web"]);
    assert_eq!(
        fx.filtered(&["status=running", "status=created"]),
        ["job", "web"]
    );
    assert_eq!(fx.filtered(&["status=paused"]), none);
    assert_eq!(fx.filtered(&["exited=0"]), ["db"]);
    assert_eq!(fx.filtered(&["exited=3"]), ["worker"]);
    assert_eq!(fx.filtered(&["exited=0", "exited=3"]), ["worker", "db"]);
    assert_eq!(fx.ps(&["--filter", "exited=0"]), none);

    // ancestor: the reference, its normalized form, the image ID or a prefix of it.
    let image_id =
        fx.s.docker(&["image", "inspect", "--format", "{{.Id}}", &fx.s.image]);
    let bare = image_id.trim_start_matches("sha256:");
    assert_eq!(fx.filtered(&[&format!("ancestor={}", fx.s.image)]), every);
    let untagged = fx.s.image.trim_end_matches(":latest");
    assert_eq!(fx.filtered(&[&format!("ancestor={untagged}")]), every);
    assert_eq!(fx.filtered(&[&format!("ancestor={image_id}")]), every);
    assert_eq!(fx.filtered(&[&format!("ancestor={}", &bare[..12])]), every);
    assert_eq!(fx.filtered(&["ancestor=nosuchimage"]), none);
    assert_eq!(
        fx.filtered(&[&format!("ancestor={}", fx.s.image), "name=db"]),
        ["db"]
    );

    // before, since: by name or ID.
    assert_eq!(fx.filtered(&["before=job"]), ["db", "web"]);
    assert_eq!(fx.filtered(&[&format!("since={db}")]), ["worker", "job"]);
    assert_eq!(fx.filtered(&["since=web", "before=worker"]), ["job", "db"]);

    // network: by name; the default network is Docker's "bridge".
    assert_eq!(fx.filtered(&["network=none"]), ["db"]);
    assert_eq!(fx.filtered(&["network=host"]), ["worker"]);
    assert_eq!(fx.filtered(&["network=bridge"]), ["job", "web"]);
    assert_eq!(
        fx.filtered(&["network=none", "network=host"]),
        ["worker", "db"]
    );

    // No volumes, ports, healthchecks or swarm tasks yet.
    assert_eq!(fx.filtered(&["volume=data"]), none);
    assert_eq!(fx.filtered(&["publish=80"]), none);
    assert_eq!(fx.filtered(&["expose=8000-8080/tcp"]), none);
    assert_eq!(fx.filtered(&["health=none"]), every);
    assert_eq!(fx.filtered(&["health=healthy"]), none);
    assert_eq!(fx.filtered(&["is-task=false"]), every);
    assert_eq!(fx.filtered(&["is-task=true"]), none);
}

#[test]
fn ps_invalid_filters() {
    let s = Setup::new();
    let (_, err) = s.fails(&["ps", "--filter", "xyz=1"]);
    assert!(err.contains("invalid filter 'xyz'"), "{err}");
    let (_, err) = s.fails(&["ps", "-a", "--filter", "status=bogus"]);
    assert!(
        err.contains("invalid filter 'status=bogus': invalid value for state (bogus): must be one of created, running, paused, restarting, removing, exited, dead"),
        "{err}"
    );
    let (_, err) = s.fails(&["ps", "--filter", "exited=abc"]);
    assert!(err.contains("invalid filter 'exited=abc'"), "{err}");
    let (_, err) = s.fails(&["ps", "--filter", "health=sick"]);
    assert!(err.contains("invalid filter 'health=sick'"), "{err}");
    let (_, err) = s.fails(&["ps", "--filter", "is-task=maybe"]);
    assert!(err.contains("invalid filter 'is-task=[maybe]'"), "{err}");
    let (_, err) = s.fails(&["ps", "--filter", "publish=80:80"]);
    assert!(err.contains("should not contain ':'"), "{err}");
    let (_, err) = s.fails(&["ps", "--filter", "before=nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

/// A `docker ps -s` size, `524kB (virtual 4.77MB)`, as bytes (decimal units, as the CLI).
fn bytes(human: &str) -> f64 {
    let split = human
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(human.len());
    let (n, unit) = human.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("a size: {human:?}"));
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("a size unit: {human:?}"),
    };
    n * scale
}

#[test]
fn ps_sizes_and_system_df() {
    let s = Setup::new();
    let w = s.docker(&[
        "run",
        "-d",
        "--name",
        "writer",
        &s.image,
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1k count=512",
    ]);
    assert_eq!(s.docker(&["wait", &w]), "0");
    let idle = s.docker(&["run", "-d", "--name", "idle", &s.image, "sleep", "1000"]);
    let image_size = s.docker(&["image", "inspect", "--format", "{{.Size}}", &s.image]);
    let image_size: i64 = image_size.parse().expect("image size");
    assert!(image_size > 0);

    // The API: SizeRw is what the container wrote; SizeRootFs adds the image.
    let list = s.api_get("/containers/json?all=1&size=1");
    let by_id = |id: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|c| c["Id"] == id))
            .unwrap_or_else(|| panic!("{id} in {list}"))
            .clone()
    };
    let wc = by_id(&w);
    let rw = wc["SizeRw"].as_i64().unwrap_or(0);
    assert!(rw >= 512 * 1024, "SizeRw {rw}: {wc}");
    assert!(rw < 2 * 1024 * 1024, "SizeRw {rw}: {wc}");
    assert_eq!(wc["SizeRootFs"].as_i64(), Some(image_size + rw), "{wc}");
    let ic = by_id(&idle);
    assert!(ic["SizeRw"].as_i64().unwrap_or(0) < 64 * 1024, "{ic}");
    assert!(ic["SizeRootFs"].as_i64().unwrap_or(0) >= image_size, "{ic}");
    // Without size=1, no sizes.
    let plain = s.api_get("/containers/json?all=1");
    assert!(plain[0].get("SizeRw").is_none(), "{plain}");
    assert_eq!(
        s.api_get(
            "/containers/json?all=1&size=1&filters=%7B%22name%22%3A%5B%22%5Ewriter%24%22%5D%7D"
        )
        .as_array()
        .map(Vec::len),
        Some(1)
    );

    // The CLI: "524kB (virtual 4.77MB)".
    let size = s.docker(&[
        "ps",
        "-as",
        "--filter",
        "name=^writer$",
        "--format",
        "{{.Size}}",
    ]);
    let (own, virt) = size
        .strip_suffix(')')
        .and_then(|x| x.split_once(" (virtual "))
        .unwrap_or_else(|| panic!("a ps -s size: {size:?}"));
    assert!(bytes(own) >= 524_000.0, "{size}");
    assert!(
        bytes(virt) >= bytes(own) + image_size as f64 * 0.99,
        "{size}"
    );
    // .Size in a format asks for the sizes without -s.
    let table = s.docker(&["ps", "-a", "--format", "{{.Names}} {{.Size}}"]);
    assert!(table.contains("writer 5"), "{table}");
    let table = s.docker(&["ps", "-s"]);
    assert!(table.contains("SIZE"), "{table}");
    assert!(table.contains("(virtual "), "{table}");

    // docker system df: two containers, one running; the size is the writable layers'.
    let df = s.docker(&["system", "df", "--format", "{{json .}}"]);
    let line = df
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("df JSON"))
        .find(|l| l["Type"] == "Containers")
        .unwrap_or_else(|| panic!("a Containers line: {df}"));
    assert_eq!(line["TotalCount"], "2", "{line}");
    assert_eq!(line["Active"], "1", "{line}");
    let total = bytes(line["Size"].as_str().unwrap_or_default());
    assert!(total >= 524_000.0, "{line}");
    let reclaimable = line["Reclaimable"].as_str().unwrap_or_default();
    let reclaimable = bytes(reclaimable.split(' ').next().unwrap_or_default());
    assert!(reclaimable >= 524_000.0, "{line}");
    // The image both containers use counts as active, with its containers.
    let images = df
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("df JSON"))
        .find(|l| l["Type"] == "Images")
        .unwrap_or_else(|| panic!("an Images line: {df}"));
    assert_eq!(images["Active"], "1", "{images}");

    let df = s.api_get("/system/df?type=container");
    let cs = df["Containers"].as_array().expect("Containers");
    assert_eq!(cs.len(), 2, "{df}");
    let wd = cs
        .iter()
        .find(|c| c["Id"] == w.as_str())
        .unwrap_or_else(|| panic!("{df}"));
    assert_eq!(wd["Names"], serde_json::json!(["/writer"]));
    assert_eq!(wd["Image"], s.image.as_str());
    assert_eq!(wd["State"], "exited");
    assert!(
        wd["Status"].as_str().unwrap().starts_with("Exited (0)"),
        "{wd}"
    );
    assert_eq!(
        wd["Command"],
        "sh -c 'dd if=/dev/zero of=/big bs=1k count=512'"
    );
    assert!(wd["Created"].as_i64().unwrap() > 0, "{wd}");
    assert!(
        wd["ImageID"].as_str().unwrap().starts_with("sha256:"),
        "{wd}"
    );
    assert!(wd["SizeRw"].as_i64().unwrap() >= 512 * 1024, "{wd}");
    assert_eq!(
        wd["SizeRootFs"].as_i64(),
        Some(image_size + wd["SizeRw"].as_i64().unwrap())
    );

    let verbose = s.docker(&["system", "df", "-v"]);
    let section = verbose
        .split("Containers space usage:")
        .nth(1)
        .and_then(|r| r.split("Local Volumes space usage:").next())
        .unwrap_or_else(|| panic!("{verbose}"));
    let row = section
        .lines()
        .find(|l| l.trim_end().ends_with(" writer"))
        .unwrap_or_else(|| panic!("a row for writer: {section}"));
    assert!(row.starts_with(&w[..12]), "{row}");
    assert!(row.contains("Exited (0)"), "{row}");
    assert!(row.contains("kB"), "{row}");
    assert!(
        section.lines().any(|l| l.trim_end().ends_with(" idle")),
        "{section}"
    );
}

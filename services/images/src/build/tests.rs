//! The builder against a real store in a temporary directory: the stream, the images, the
//! cache, multi-stage COPY --from, and the refusals.

use std::{path::Path, sync::Arc};

use berth_proto::images::v1::{self as pb, build_message::Line};
use tokio::sync::mpsc;

use super::{BuildOut, BuildSpec, runner::Unsupported};
use crate::{import::ImportSpec, service::ImageService};

async fn service(dir: &Path) -> Arc<ImageService> {
    let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
        .await
        .unwrap();
    let events = berth_bus::EventPublisher::spawn(bus, Default::default());
    let cfg = berth_config::DaemonConfig::parse(Path::new("d.json"), "{}").unwrap();
    ImageService::open(dir, &cfg, events).unwrap()
}

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// Builds; returns the lines (`E:` for the error) and the result.
async fn build(
    svc: &Arc<ImageService>,
    opts: pb::BuildOptions,
    ctx: Vec<u8>,
) -> (Vec<String>, Result<String, String>) {
    let spec = BuildSpec::from_pb(opts).unwrap();
    let svc = svc.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let prepared = match svc.prepare_build(&spec, crate::pipe::ReadChunks(&ctx[..])) {
            Ok(p) => p,
            Err(e) => return (vec![], Err(e.to_string())),
        };
        let (tx, mut rx) = mpsc::channel(1024);
        let mut out = BuildOut::new(tx, spec.quiet);
        let r = svc.run_build(&prepared, &spec, &mut out, &Unsupported, &rt);
        let r = match r {
            Ok(id) => {
                out.done(&id);
                Ok(id.to_string())
            }
            Err((e, code)) => {
                let m = e.to_string();
                out.failed(&e, code);
                Err(m)
            }
        };
        let mut lines = Vec::new();
        let mut result = None;
        while let Ok(m) = rx.try_recv() {
            assert!(result.is_none(), "the result is the last message");
            lines.push(match m.line {
                Some(Line::Result(id)) => {
                    result = Some(id);
                    continue;
                }
                Some(Line::Stream(s)) => s,
                Some(Line::AuxId(id)) => format!("aux:{id}"),
                Some(Line::Error(e)) => format!("E:{}", e.message),
                other => format!("{other:?}"),
            });
        }
        // A successful build ends with its result, a failed one without.
        assert_eq!(result.as_ref(), r.as_ref().ok());
        (lines, r)
    })
    .await
    .unwrap()
}

fn opts(tags: &[&str]) -> pb::BuildOptions {
    pb::BuildOptions {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        want_aux: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_cache_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let base = ImportSpec {
        repo: "base".to_owned(),
        source: "-".to_owned(),
        ..Default::default()
    };
    let etc = tar_of(&[
        (
            "etc/passwd",
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        ),
        ("etc/group", "app:x:1000:\n"),
    ]);
    svc.import(base.plan().unwrap(), &etc[..]).unwrap();
    let dockerfile = "FROM base AS one\nARG V=1\nENV A=$V B=\"x y\"\nWORKDIR /app\nCOPY --chown=app f.txt ./\nFROM base\nCOPY --from=one /app/f.txt /copied\nLABEL k=v\nCMD [\"sh\"]\n";
    let ctx = tar_of(&[
        ("Dockerfile", dockerfile),
        ("f.txt", "hello"),
        (".dockerignore", "ignored\n"),
        ("ignored", "x"),
    ]);
    let (lines, r) = build(&svc, opts(&["out:1"]), ctx.clone()).await;
    let id = r.unwrap();
    assert_eq!(lines[0], "Step 1/9 : FROM base AS one\n");
    assert!(
        lines[1].starts_with(" ---> ") && lines[1].len() == 19,
        "{lines:?}"
    );
    assert_eq!(lines[2], "Step 2/9 : ARG V=1\n");
    assert!(lines.iter().any(|l| l.starts_with("aux:sha256:")));
    assert_eq!(
        lines[lines.len() - 2],
        format!("Successfully built {}\n", &id[7..19])
    );
    assert_eq!(lines[lines.len() - 1], "Successfully tagged out:1\n");
    assert!(!lines.iter().any(|l| l.contains("Using cache")));
    let img = svc.inspect("out:1").unwrap();
    assert!(!img.parent.is_empty(), "a built image names its parent");
    // docker images hides the untagged intermediate images; -a shows them.
    let shown = svc.summaries(false).unwrap().len();
    assert_eq!(svc.summaries(true).unwrap().len(), shown + 5);
    let cfg = img.config.unwrap();
    assert_eq!(cfg.cmd.unwrap().values, ["sh"]);
    assert_eq!(cfg.labels.get("k").map(String::as_str), Some("v"));
    assert_eq!(
        img.layers.len(),
        2,
        "base + COPY --from; LABEL and CMD add none"
    );
    let hist = svc.history("out:1").unwrap();
    assert!(
        hist[0]
            .created_by
            .starts_with("/bin/sh -c #(nop)  CMD [\"sh\"]"),
        "{:?}",
        hist[0].created_by
    );
    assert!(
        hist[2]
            .created_by
            .starts_with("/bin/sh -c #(nop) COPY file:"),
        "{:?}",
        hist[2].created_by
    );
    let stage_one = svc
        .inspect(&lines[lines.iter().position(|l| l.starts_with("aux:")).unwrap()][4..])
        .unwrap();
    let env = stage_one.config.unwrap().env;
    assert!(
        env.contains(&"A=1".to_owned()) && env.contains(&"B=x y".to_owned()),
        "{env:?}"
    );
    // The copied file, its owner from the image's /etc/passwd, in the stage's top layer.
    let rec = svc.find(&stage_one.id).unwrap();
    let top = svc.layers.diff_dir(rec.chain.last().unwrap());
    let meta = std::fs::metadata(top.join("app/f.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);

    // Again: every step from the cache, the same image.
    let (lines, r) = build(&svc, opts(&["out:2"]), ctx.clone()).await;
    assert_eq!(r.unwrap(), id);
    assert_eq!(
        lines.iter().filter(|l| *l == " ---> Using cache\n").count(),
        7,
        "{lines:?}"
    );
    // A changed file invalidates its COPY and what follows, not what precedes.
    let ctx2 = tar_of(&[("Dockerfile", dockerfile), ("f.txt", "changed")]);
    let (lines, r) = build(&svc, opts(&[]), ctx2).await;
    assert_ne!(r.unwrap(), id);
    assert_eq!(
        lines.iter().filter(|l| *l == " ---> Using cache\n").count(),
        3,
        "{lines:?}"
    );
    // --no-cache, -q and --target.
    let mut o = opts(&[]);
    o.no_cache = true;
    o.quiet = true;
    o.target = "one".to_owned();
    let (lines, r) = build(&svc, o, ctx.clone()).await;
    let id = r.unwrap();
    assert_eq!(lines, [format!("{id}\n")]);
    // The unused build-arg warning.
    let mut o = opts(&[]);
    o.build_args = vec![
        pb::BuildArg {
            key: "NOPE".into(),
            value: Some("1".into()),
        },
        pb::BuildArg {
            key: "V".into(),
            value: Some("2".into()),
        },
    ];
    let (lines, _) = build(&svc, o, ctx).await;
    assert!(
        lines.contains(&"[Warning] One or more build-args [NOPE] were not consumed\n".to_owned()),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let ctx = |df: &str| tar_of(&[("Dockerfile", df)]);
    let (_, r) = build(&svc, opts(&[]), ctx("FROM scratch\nFOOBAR x\n")).await;
    assert_eq!(
        r.unwrap_err(),
        "dockerfile parse error on line 2: unknown instruction: FOOBAR"
    );
    let (_, r) = build(&svc, opts(&[]), ctx("# only\n")).await;
    assert_eq!(
        r.unwrap_err(),
        "failed to parse Dockerfile: file with no instructions"
    );
    let (lines, r) = build(&svc, opts(&[]), ctx("FROM scratch\nRUN true\n")).await;
    // A RUN needs an image to run (scratch has no shell): refused before any container.
    let no_image = "Please provide a source image with `from` prior to run";
    assert_eq!(r.unwrap_err(), no_image);
    assert_eq!(lines.last().unwrap(), &format!("E:{no_image}"));
    let (_, r) = build(&svc, opts(&[]), ctx("FROM scratch\nCOPY --chmod=644 a /\n")).await;
    assert!(
        r.unwrap_err()
            .starts_with("the --chmod option requires BuildKit")
    );
    let (_, r) = build(
        &svc,
        opts(&[]),
        ctx("FROM scratch\nRUN --network=none true\n"),
    )
    .await;
    assert!(
        r.unwrap_err()
            .starts_with("the --network option requires BuildKit")
    );
    let mut o = opts(&[]);
    o.target = "nope".to_owned();
    let (_, r) = build(&svc, o, ctx("FROM scratch AS a\nLABEL a=b\n")).await;
    assert_eq!(r.unwrap_err(), "target stage \"nope\" could not be found");
    let (_, r) = build(&svc, opts(&[]), ctx("FROM scratch\n")).await;
    assert_eq!(
        r.unwrap_err(),
        "No image was generated. Is your Dockerfile empty?"
    );
    // FROM scratch, heredoc COPY, ADD of a local tar, and ONBUILD triggers in a child.
    let inner = tar_of(&[("inside/x", "1")]);
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("Dockerfile", b"FROM scratch\nCOPY <<EOF /greeting\nhi\nEOF\nADD t.tar /unpacked/\nONBUILD LABEL from=trigger\n".as_slice()),
        ("t.tar", inner.as_slice()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body).unwrap();
    }
    let (lines, r) = build(&svc, opts(&["parent"]), b.into_inner().unwrap()).await;
    r.unwrap();
    assert_eq!(lines[1], " ---> \n", "scratch has no ID");
    let rec = svc.find("parent").unwrap();
    let top = svc.layers.diff_dir(rec.chain.last().unwrap());
    assert!(top.join("unpacked/inside/x").is_file());
    let below = svc.layers.diff_dir(&rec.chain[0]);
    assert_eq!(
        std::fs::read_to_string(below.join("greeting")).unwrap(),
        "hi\n"
    );
    let (lines, r) = build(&svc, opts(&["child"]), ctx("FROM parent\n")).await;
    r.unwrap();
    assert!(
        lines.contains(&"# Executing 1 build trigger\n".to_owned()),
        "{lines:?}"
    );
    let img = svc.inspect("child").unwrap();
    assert_eq!(
        img.config.unwrap().labels.get("from").map(String::as_str),
        Some("trigger")
    );
}

/// Serves `body` for one GET on a loopback port; returns the port.
fn serve_once(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_of_a_loopback_url() {
    // As every service's main does (the HTTP client needs a TLS provider to be built).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let port = serve_once("downloaded\n");
    let df = format!("FROM scratch\nADD http://127.0.0.1:{port}/files/hello.txt /in/\n");
    let (lines, r) = build(&svc, opts(&["fetched"]), tar_of(&[("Dockerfile", &df)])).await;
    r.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Step 2/2 : ADD http://127.0.0.1:")),
        "{lines:?}"
    );
    let rec = svc.find("fetched").unwrap();
    let f = svc
        .layers
        .diff_dir(rec.chain.last().unwrap())
        .join("in/hello.txt");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "downloaded\n");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&f).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (_, r) = build(
        &svc,
        opts(&[]),
        tar_of(&[("Dockerfile", "FROM scratch\nADD http://example.com/x /x\n")]),
    )
    .await;
    assert!(
        r.unwrap_err()
            .contains("only http:// URLs on the loopback interface")
    );
    let (_, r) = build(
        &svc,
        opts(&[]),
        tar_of(&[("Dockerfile", "FROM scratch\nCOPY http://127.0.0.1/x /x\n")]),
    )
    .await;
    assert_eq!(r.unwrap_err(), "source can't be a URL for COPY");
}

//! Property tests of what the images service takes from outside: registry manifests and
//! indexes, `--change` lines, and `docker load` archives. Whatever a registry or a client
//! sends, the answer is a value or an error, never a panic; a refused archive leaves nothing
//! in the store. 10,000 cases each.

use std::io::Write;

use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Map, Value, json};

use crate::{ImagesError, changes, manifest};

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A descriptor, often well formed, sometimes with a wrong type in any field.
fn descriptor() -> impl Strategy<Value = Value> {
    let media = prop_oneof![
        Just("application/vnd.oci.image.layer.v1.tar+gzip".to_owned()),
        Just("application/vnd.docker.image.rootfs.diff.tar.gzip".to_owned()),
        Just("application/vnd.oci.image.manifest.v1+json".to_owned()),
        ".{0,12}",
    ];
    let digest = prop_oneof![
        Just(DIGEST.to_owned()),
        "sha256:[0-9a-f]{0,70}",
        "[a-z0-9]{0,8}:.{0,10}"
    ];
    let size = prop_oneof![
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!("12"))
    ];
    let platform = prop_oneof![
        Just(Value::Null),
        Just(json!({"os": "linux", "architecture": "amd64"})),
        (".{0,6}", ".{0,6}", ".{0,4}")
            .prop_map(|(o, a, v)| json!({"os": o, "architecture": a, "variant": v})),
        Just(json!("linux/amd64")),
    ];
    (media, digest, size, platform)
        .prop_map(|(m, d, s, p)| json!({"mediaType": m, "digest": d, "size": s, "platform": p}))
}

/// Manifest and index documents as a registry may send them, right or wrong.
fn manifest_bytes() -> impl Strategy<Value = Vec<u8>> {
    let version = prop_oneof![
        Just(json!(2)),
        Just(json!(1)),
        Just(json!("2")),
        Just(Value::Null)
    ];
    let doc = (
        version,
        prop::option::of(descriptor()),
        prop::option::of(prop::collection::vec(descriptor(), 0..4)),
        prop::option::of(prop::collection::vec(descriptor(), 0..4)),
    )
        .prop_map(|(v, config, layers, manifests)| {
            let mut m = Map::new();
            m.insert("schemaVersion".into(), v);
            if let Some(c) = config {
                m.insert("config".into(), c);
            }
            if let Some(l) = layers {
                m.insert("layers".into(), Value::Array(l));
            }
            if let Some(x) = manifests {
                m.insert("manifests".into(), Value::Array(x));
            }
            serde_json::to_vec(&m).unwrap_or_default()
        });
    prop_oneof![doc, prop::collection::vec(any::<u8>(), 0..64)]
}

/// `--change` lines: instructions Docker knows and others, with any arguments.
fn change_lines() -> impl Strategy<Value = Vec<String>> {
    let instr = "CMD|ENTRYPOINT|ENV|EXPOSE|LABEL|ONBUILD|STOPSIGNAL|USER|VOLUME|WORKDIR|HEALTHCHECK|SHELL|RUN|FROM|[a-zA-Z]{1,8}";
    let args = prop_oneof![
        ".{0,20}",
        "\\[(\"[a-z ]{0,5}\",?){0,3}\\]?",
        "[a-z]{1,4}=[\"a-z ]{0,6}( [a-z]{1,3}=[a-z]{0,3})*",
        "[0-9]{1,6}(/(tcp|udp|x))?(-[0-9]{1,6})?",
        "(--[a-z-]{1,12}=[0-9a-z]{0,4} ){0,3}(CMD|NONE) ?.{0,8}",
    ];
    prop::collection::vec(
        (instr, " {0,2}", args).prop_map(|(i, sp, a)| format!("{i}{sp}{a}")),
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any manifest or index a registry sends parses or is an error.
    #[test]
    fn any_manifest_parses_or_is_an_error(bytes in manifest_bytes()) {
        let _ = manifest::parse(&bytes);
    }

    /// Any `--change` lines apply or are a 400.
    #[test]
    fn any_change_applies_or_is_a_400(lines in change_lines()) {
        let mut config = changes::empty_config();
        if let Err(e) = changes::apply(&mut config, &lines) {
            prop_assert!(matches!(e, ImagesError::InvalidArgument(_)), "{e:?}");
        }
    }
}

/// One archive member: a path (often one the loader looks for), and content.
fn member() -> impl Strategy<Value = (String, Vec<u8>)> {
    let path = prop_oneof![
        Just("manifest.json".to_owned()),
        Just("repositories".to_owned()),
        Just("index.json".to_owned()),
        Just("oci-layout".to_owned()),
        Just("c.json".to_owned()),
        Just("l/layer.tar".to_owned()),
        Just(format!("blobs/sha256/{}", &DIGEST[7..])),
        "(\\.\\./|/)?[a-z]{1,4}(/[a-z.]{1,4}){0,2}",
    ];
    let content = prop_oneof![
        Just(br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#.to_vec()),
        Just(br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec()),
        Just(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        Just(format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{DIGEST}","size":0}}]}}"#).into_bytes()),
        prop::collection::vec(any::<u8>(), 0..48),
        manifest_bytes(),
    ];
    (path, content)
}

fn tar_of(members: &[(String, Vec<u8>)], symlink: Option<&(String, String)>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // A path the tar crate refuses to write (`..`, absolute) goes in raw.
        if b.append_data(&mut h.clone(), path, &data[..]).is_err() {
            let _ = h.set_path("x");
            let name = path.as_bytes();
            let n = name.len().min(99);
            h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
            h.as_old_mut().name[n..].fill(0);
            h.set_cksum();
            let _ = b.append(&h, &data[..]);
        }
    }
    if let Some((path, target)) = symlink {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        let _ = b.append_link(&mut h, path, target);
    }
    b.into_inner().unwrap_or_default()
}

/// Any archive `docker load` is given (members the loader looks for with any content, links
/// out of the archive, plain or gzip, or no tar at all) loads or is refused, and a refusal
/// leaves no blob or layer that no image uses.
#[test]
fn any_load_archive_loads_or_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let svc = rt.block_on(crate::archive_tests::service(dir.path()));
    let archive = (
        prop::collection::vec(member(), 0..5),
        prop::option::of(("[a-z.]{1,8}", "(\\.\\./|/)?[a-z./]{0,12}")),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..2),
    )
        .prop_map(|(members, link, gz, junk)| {
            let mut t = tar_of(&members, link.as_ref());
            if gz {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                let _ = e.write_all(&t);
                t = e.finish().unwrap_or_default();
            }
            if junk.len() == 1 {
                t = junk;
            }
            t
        });
    let mut runner = TestRunner::new(ProptestConfig::with_cases(10_000));
    runner
        .run(&archive, |bytes| {
            // Loaded or refused: either way the store stays consistent (checked at the end).
            let _ = svc.load(&bytes[..]);
            Ok(())
        })
        .unwrap();
    crate::archive_tests::assert_clean(dir.path(), &svc);
}

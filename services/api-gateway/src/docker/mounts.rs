//! Docker's mount fields of a create body (`HostConfig.Binds`, `HostConfig.Mounts`,
//! `HostConfig.Tmpfs`, `HostConfig.VolumeDriver`, `Config.Volumes`) parsed and checked as
//! moby's linux parser does, into the spec's typed mounts; and the other way, inspect's
//! `Mounts` and `HostConfig.Binds/Mounts/Tmpfs` from the typed record.

use std::collections::HashMap;

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;

type Kind = pb::mount_spec::Type;

/// The mount fields of a create body, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub mounts: Vec<pb::MountSpec>,
    pub tmpfs: HashMap<String, String>,
    /// Anonymous volumes asked for by path (`Config.Volumes`, the CLI's `-v /path`).
    pub volumes: Vec<String>,
    /// `HostConfig.VolumesFrom`: `container[:ro|:rw]`, checked.
    pub volumes_from: Vec<String>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(msg.into())
}

fn invalid_spec(raw: &str) -> ApiError {
    invalid(format!("invalid volume specification: '{raw}'"))
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// A `-v` mode (`ro,z,rprivate,nocopy`), checked as moby's `ValidMountMode`: at most one of
/// each kind.
#[derive(Debug, Default)]
struct Mode {
    read_only: bool,
    relabel: String,
    propagation: String,
    no_copy: bool,
    consistency: String,
}

fn parse_mode(mode: &str) -> Option<Mode> {
    let mut m = Mode::default();
    let (mut rw, mut label, mut prop, mut copy, mut cons) = (0, 0, 0, 0, 0);
    for o in mode.split(',') {
        match o {
            "rw" | "ro" => {
                rw += 1;
                m.read_only = o == "ro";
            }
            "z" | "Z" => {
                label += 1;
                m.relabel = o.to_owned();
            }
            "nocopy" => {
                copy += 1;
                m.no_copy = true;
            }
            "consistent" | "cached" | "delegated" => {
                cons += 1;
                m.consistency = o.to_owned();
            }
            p if PROPAGATIONS.contains(&p) => {
                prop += 1;
                m.propagation = p.to_owned();
            }
            _ => return None,
        }
    }
    (rw <= 1 && label <= 1 && prop <= 1 && copy <= 1 && cons <= 1).then_some(m)
}

/// Whether a container path is usable as a mount's destination.
fn check_target(kind: &str, target: &str) -> Result<(), ApiError> {
    if target.is_empty() {
        return Err(invalid(format!(
            "invalid mount config for type {kind:?}: field Target must not be empty"
        )));
    }
    if !target.starts_with('/') {
        return Err(invalid(format!(
            "invalid mount config for type {kind:?}: invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    if target.split('/').all(|c| c.is_empty() || c == ".") {
        return Err(invalid(format!(
            "invalid mount config for type {kind:?}: invalid specification: destination can't be '/'"
        )));
    }
    Ok(())
}

/// One `-v` entry (moby `linuxParser.ParseMountRaw`).
fn bind(raw: &str, driver: &str) -> Result<pb::MountSpec, ApiError> {
    let arr: Vec<&str> = raw.split(':').collect();
    if arr.first().is_none_or(|s| s.is_empty()) {
        return Err(invalid_spec(raw));
    }
    let (source, target, mode) = match arr.as_slice() {
        [dest] => ("", *dest, ""),
        [_, m] if parse_mode(m).is_some() => return Err(invalid_spec(raw)),
        [src, dest] => (*src, *dest, ""),
        [src, dest, mode] => (*src, *dest, *mode),
        _ => return Err(invalid_spec(raw)),
    };
    let m = if mode.is_empty() {
        Mode::default()
    } else {
        parse_mode(mode).ok_or_else(|| invalid(format!("invalid mode: {mode}")))?
    };
    let kind = if source.starts_with('/') {
        Kind::Bind
    } else {
        Kind::Volume
    };
    let kind_name = if kind == Kind::Bind { "bind" } else { "volume" };
    check_target(kind_name, target).map_err(|e| {
        invalid(format!(
            "invalid volume specification: '{raw}': {}",
            e.message
        ))
    })?;
    if kind == Kind::Volume && !m.propagation.is_empty() {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    if kind == Kind::Bind && m.no_copy {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    Ok(pb::MountSpec {
        r#type: kind as i32,
        source: source.to_owned(),
        target: target.to_owned(),
        read_only: m.read_only,
        propagation: m.propagation,
        relabel: m.relabel,
        create_source: kind == Kind::Bind,
        no_copy: m.no_copy,
        volume_driver: if kind == Kind::Volume {
            driver.to_owned()
        } else {
            String::new()
        },
        from_binds: true,
        consistency: m.consistency,
        ..Default::default()
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
struct ApiMount {
    #[serde(rename = "Type")]
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    consistency: String,
    bind_options: Option<BindOptions>,
    volume_options: Option<VolumeOptions>,
    tmpfs_options: Option<TmpfsOptions>,
    image_options: Option<Value>,
    cluster_options: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
struct BindOptions {
    propagation: String,
    non_recursive: bool,
    create_mountpoint: bool,
    read_only_non_recursive: bool,
    read_only_force_recursive: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
struct VolumeOptions {
    no_copy: bool,
    labels: Option<HashMap<String, String>>,
    driver_config: Option<DriverConfig>,
    subpath: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
struct DriverConfig {
    name: String,
    options: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
struct TmpfsOptions {
    size_bytes: i64,
    mode: u32,
    options: Option<Vec<Vec<String>>>,
}

/// Go's `filepath.IsLocal`: relative, not empty, and not leaving its directory lexically.
fn is_local(p: &str) -> bool {
    if p.is_empty() || p.starts_with('/') {
        return false;
    }
    let mut depth = 0i32;
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// One `--mount` (moby `validateMountConfig` and `parseMountSpec`).
fn api_mount(m: ApiMount) -> Result<pb::MountSpec, ApiError> {
    let k = m.kind.as_str();
    let not = |field: &str| {
        invalid(format!(
            "invalid mount config for type {k:?}: field {field} must not be specified"
        ))
    };
    let kind = match k {
        "bind" => Kind::Bind,
        "volume" => Kind::Volume,
        "tmpfs" => Kind::Tmpfs,
        "npipe" | "cluster" | "image" => {
            return Err(invalid(format!(
                "--mount type={k} is not supported by Berth yet (HostConfig.Mounts)"
            )));
        }
        _ => {
            return Err(invalid(format!(
                "invalid mount config for type {k:?}: mount type unknown"
            )));
        }
    };
    check_target(k, &m.target)?;
    let mut spec = pb::MountSpec {
        r#type: kind as i32,
        source: m.source.clone(),
        target: m.target.clone(),
        read_only: m.read_only,
        consistency: m.consistency.clone(),
        ..Default::default()
    };
    if m.image_options.is_some() {
        return Err(not("ImageOptions"));
    }
    if m.cluster_options.is_some() {
        return Err(not("ClusterOptions"));
    }
    match kind {
        Kind::Bind => {
            if m.volume_options.is_some() {
                return Err(not("VolumeOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(not("TmpfsOptions"));
            }
            if m.source.is_empty() {
                return Err(invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            if !m.source.starts_with('/') {
                return Err(invalid(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            let b = m.bind_options.unwrap_or_default();
            if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
                return Err(invalid(format!(
                    "invalid mount config for type \"bind\": invalid propagation mode: {}",
                    b.propagation
                )));
            }
            spec.propagation = b.propagation;
            spec.non_recursive = b.non_recursive;
            spec.read_only_non_recursive = b.read_only_non_recursive;
            spec.read_only_force_recursive = b.read_only_force_recursive;
            spec.create_source = b.create_mountpoint;
        }
        Kind::Volume => {
            if m.bind_options.is_some() {
                return Err(not("BindOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(not("TmpfsOptions"));
            }
            let v = m.volume_options.unwrap_or_default();
            let d = v.driver_config.unwrap_or_default();
            spec.no_copy = v.no_copy;
            spec.volume_labels = v.labels.unwrap_or_default();
            spec.volume_driver = d.name;
            spec.volume_options = d.options.unwrap_or_default();
            if !v.subpath.is_empty() {
                if m.source.is_empty() {
                    return Err(invalid(
                        "invalid mount config for type \"volume\": must not set Subpath when \
                         using anonymous volumes",
                    ));
                }
                if !is_local(&v.subpath) {
                    return Err(invalid(
                        "invalid mount config for type \"volume\": subpath must be a relative \
                         path within the volume",
                    ));
                }
                spec.subpath = v.subpath;
            }
        }
        _ => {
            if !m.source.is_empty() {
                return Err(not("Source"));
            }
            if m.bind_options.is_some() {
                return Err(not("BindOptions"));
            }
            if m.volume_options.is_some() {
                return Err(not("VolumeOptions"));
            }
            let t = m.tmpfs_options.unwrap_or_default();
            if t.size_bytes < 0 {
                return Err(invalid(
                    "invalid mount config for type \"tmpfs\": invalid tmpfs size",
                ));
            }
            if t.options.is_some_and(|o| !o.is_empty()) {
                return Err(invalid(
                    "--mount tmpfs options other than size and mode are not supported by Berth \
                     yet (HostConfig.Mounts.TmpfsOptions.Options)",
                ));
            }
            spec.tmpfs_size = t.size_bytes;
            spec.tmpfs_mode = t.mode & 0o7777;
        }
    }
    Ok(spec)
}

/// One `--volumes-from` (moby `linuxParser.ParseVolumesFrom`): a container and a mode that
/// may say `ro` or `rw` (and `z`), but no propagation and no copy mode.
fn volumes_from(spec: &str) -> Result<(), ApiError> {
    if spec.is_empty() {
        return Err(invalid(
            "volumes-from specification cannot be an empty string",
        ));
    }
    let mode = spec.split_once(':').map_or("", |(_, m)| m);
    if mode.is_empty() {
        return Ok(());
    }
    match parse_mode(mode) {
        Some(m) if m.propagation.is_empty() && !m.no_copy => Ok(()),
        _ => Err(invalid(format!("invalid mode: {mode}"))),
    }
}

/// `--tmpfs` options (moby `ParseTmpfsOptions`): the flags and data tmpfs takes.
fn tmpfs_options(opts: &str) -> Result<(), ApiError> {
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let ok = match o.split_once('=') {
            None => matches!(
                o,
                "ro" | "rw" | "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev"
            ),
            Some(("mode", v)) => !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b)),
            Some(("size" | "nr_inodes" | "nr_blocks" | "uid" | "gid", v)) => {
                !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'%')
            }
            Some(_) => false,
        };
        if !ok {
            return Err(invalid(format!("invalid tmpfs option [\"{o}\"]")));
        }
    }
    Ok(())
}

/// The keys of `HostConfig.Mounts` (see `keys.rs`).
pub fn schema() -> super::keys::Schema {
    super::keys::Schema::of::<Vec<ApiMount>>()
}

/// The mount fields of a create body.
pub fn parse(body: &Value) -> Result<Parsed, ApiError> {
    let hc = &body["HostConfig"];
    let driver = hc["VolumeDriver"].as_str().unwrap_or_default();
    if !matches!(driver, "" | "local") {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    let mut out = Parsed::default();
    let strings = |v: &Value, what: &str| -> Result<Vec<String>, ApiError> {
        if v.is_null() {
            return Ok(Vec::new());
        }
        serde_json::from_value(v.clone()).map_err(|e| invalid(format!("invalid JSON: {what}: {e}")))
    };
    for from in strings(&hc["VolumesFrom"], "HostConfig.VolumesFrom")? {
        volumes_from(&from)?;
        out.volumes_from.push(from);
    }
    for raw in strings(&hc["Binds"], "HostConfig.Binds")? {
        out.mounts.push(bind(&raw, driver)?);
    }
    if !hc["Mounts"].is_null() {
        let list: Vec<ApiMount> = serde_json::from_value(hc["Mounts"].clone())
            .map_err(|e| invalid(format!("invalid JSON: HostConfig.Mounts: {e}")))?;
        for m in list {
            out.mounts.push(api_mount(m)?);
        }
    }
    if !hc["Tmpfs"].is_null() {
        let map: HashMap<String, String> = serde_json::from_value(hc["Tmpfs"].clone())
            .map_err(|e| invalid(format!("invalid JSON: HostConfig.Tmpfs: {e}")))?;
        for (path, opts) in map {
            check_target("tmpfs", &path)?;
            tmpfs_options(&opts)?;
            out.tmpfs.insert(path, opts);
        }
    }
    if let Some(vols) = body["Volumes"].as_object() {
        for path in vols.keys() {
            check_target("volume", path)?;
            out.volumes.push(path.clone());
        }
    } else if !body["Volumes"].is_null() {
        return Err(invalid("invalid JSON: Volumes: not an object"));
    }
    out.volumes.sort();
    Ok(out)
}

/// inspect's `Mounts` (and `docker ps`'s), as dockerd fills it.
pub fn inspect_mounts(c: &pb::Container) -> Value {
    let list: Vec<Value> = c
        .mount_points
        .iter()
        .map(|p| {
            let kind = Kind::try_from(p.r#type).unwrap_or(Kind::Unspecified);
            let mut v = json!({
                "Type": match kind {
                    Kind::Bind => "bind",
                    Kind::Volume => "volume",
                    Kind::Tmpfs => "tmpfs",
                    _ => "",
                },
                "Source": p.source,
                "Destination": p.destination,
                "Mode": p.mode,
                "RW": !p.read_only,
                "Propagation": p.propagation,
            });
            if kind == Kind::Volume {
                v["Name"] = json!(p.name);
                v["Driver"] = json!(p.driver);
            }
            v
        })
        .collect();
    json!(list)
}

/// `HostConfig.Binds`, `Mounts` and `Tmpfs` from the spec, as the client sent them.
pub fn host_config(spec: &pb::ContainerSpec, v: &mut Value) {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        let kind = Kind::try_from(m.r#type).unwrap_or(Kind::Unspecified);
        if m.from_binds {
            let mut mode: Vec<&str> = Vec::new();
            if m.read_only {
                mode.push("ro");
            }
            for s in [&m.relabel, &m.propagation, &m.consistency] {
                if !s.is_empty() {
                    mode.push(s);
                }
            }
            if m.no_copy {
                mode.push("nocopy");
            }
            let mut s = if m.source.is_empty() {
                m.target.clone()
            } else {
                format!("{}:{}", m.source, m.target)
            };
            if !mode.is_empty() {
                s = format!("{s}:{}", mode.join(","));
            }
            binds.push(s);
            continue;
        }
        let mut j = json!({
            "Type": match kind {
                Kind::Bind => "bind",
                Kind::Volume => "volume",
                _ => "tmpfs",
            },
            "Source": m.source,
            "Target": m.target,
        });
        if m.read_only {
            j["ReadOnly"] = json!(true);
        }
        match kind {
            Kind::Bind
                if !m.propagation.is_empty()
                    || m.non_recursive
                    || m.create_source
                    || m.read_only_non_recursive
                    || m.read_only_force_recursive =>
            {
                let mut b = json!({});
                if !m.propagation.is_empty() {
                    b["Propagation"] = json!(m.propagation);
                }
                if m.non_recursive {
                    b["NonRecursive"] = json!(true);
                }
                if m.create_source {
                    b["CreateMountpoint"] = json!(true);
                }
                if m.read_only_non_recursive {
                    b["ReadOnlyNonRecursive"] = json!(true);
                }
                if m.read_only_force_recursive {
                    b["ReadOnlyForceRecursive"] = json!(true);
                }
                j["BindOptions"] = b;
            }
            Kind::Volume if m.no_copy || !m.volume_labels.is_empty() => {
                let mut o = json!({});
                if m.no_copy {
                    o["NoCopy"] = json!(true);
                }
                if !m.volume_labels.is_empty() {
                    o["Labels"] = json!(m.volume_labels);
                }
                j["VolumeOptions"] = o;
            }
            Kind::Tmpfs if m.tmpfs_size != 0 || m.tmpfs_mode != 0 => {
                let mut o = json!({});
                if m.tmpfs_size != 0 {
                    o["SizeBytes"] = json!(m.tmpfs_size);
                }
                if m.tmpfs_mode != 0 {
                    o["Mode"] = json!(m.tmpfs_mode);
                }
                j["TmpfsOptions"] = o;
            }
            _ => {}
        }
        mounts.push(j);
    }
    if !binds.is_empty() {
        v["Binds"] = json!(binds);
    }
    if !mounts.is_empty() {
        v["Mounts"] = json!(mounts);
    }
    if !spec.tmpfs.is_empty() {
        v["Tmpfs"] = json!(spec.tmpfs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binds(list: &[&str]) -> Result<Parsed, String> {
        parse(&json!({"HostConfig": {"Binds": list}})).map_err(|e| e.message)
    }

    #[test]
    fn binds_as_moby_parses_them() {
        let p = binds(&["data:/data", "/host:/h:ro", "/anon", "v2:/x:nocopy,ro"]).unwrap();
        let m = &p.mounts;
        assert_eq!(m[0].r#type, Kind::Volume as i32);
        assert_eq!(
            (m[0].source.as_str(), m[0].target.as_str()),
            ("data", "/data")
        );
        assert_eq!(m[1].r#type, Kind::Bind as i32);
        assert!(m[1].read_only && m[1].create_source && m[1].from_binds);
        assert_eq!(m[2].r#type, Kind::Volume as i32);
        assert!(m[2].source.is_empty());
        assert!(m[3].no_copy && m[3].read_only);
        assert_eq!(binds(&["/a:/b:bogus"]).unwrap_err(), "invalid mode: bogus");
        assert_eq!(
            binds(&["/a:ro"]).unwrap_err(),
            "invalid volume specification: '/a:ro'"
        );
        assert_eq!(
            binds(&["a:b:c:d"]).unwrap_err(),
            "invalid volume specification: 'a:b:c:d'"
        );
        assert_eq!(
            binds(&[""]).unwrap_err(),
            "invalid volume specification: ''"
        );
        assert!(
            binds(&["v:rel"])
                .unwrap_err()
                .contains("mount path must be absolute")
        );
        assert!(
            binds(&["/a:/"])
                .unwrap_err()
                .contains("destination can't be '/'")
        );
        assert_eq!(
            binds(&["/a:/b:nocopy"]).unwrap_err(),
            "invalid mode: nocopy"
        );
        assert_eq!(
            binds(&["v:/b:rshared"]).unwrap_err(),
            "invalid mode: rshared"
        );
        assert_eq!(binds(&["/a:/b:ro,rw"]).unwrap_err(), "invalid mode: ro,rw");
        assert_eq!(
            parse(&json!({"HostConfig": {"Binds": ["/a:/b:rshared"]}}))
                .unwrap()
                .mounts[0]
                .propagation,
            "rshared"
        );
        assert!(binds(&["/a:/b:rprivate,z"]).is_ok());
    }

    #[test]
    fn subpaths_are_local_to_a_named_volume() {
        for ok in ["a", "a/b", "a/../b", "./a", "a/"] {
            assert!(is_local(ok), "{ok}");
        }
        for bad in ["", "/a", "..", "../a", "a/../../b"] {
            assert!(!is_local(bad), "{bad}");
        }
        let one = |m: Value| parse(&json!({"HostConfig": {"Mounts": [m]}})).map_err(|e| e.message);
        let p = one(json!({"Type": "volume", "Source": "v", "Target": "/m",
            "VolumeOptions": {"Subpath": "a/b"}}))
        .unwrap();
        assert_eq!(p.mounts[0].subpath, "a/b");
        assert_eq!(
            one(json!({"Type": "volume", "Target": "/m", "VolumeOptions": {"Subpath": "a"}}))
                .unwrap_err(),
            "invalid mount config for type \"volume\": must not set Subpath when using \
             anonymous volumes"
        );
        assert_eq!(
            one(json!({"Type": "volume", "Source": "v", "Target": "/m",
                "VolumeOptions": {"Subpath": "../a"}}))
            .unwrap_err(),
            "invalid mount config for type \"volume\": subpath must be a relative path \
             within the volume"
        );
    }

    #[test]
    fn mounts_as_moby_checks_them() {
        let one = |m: Value| parse(&json!({"HostConfig": {"Mounts": [m]}})).map_err(|e| e.message);
        let p = one(json!({"Type": "tmpfs", "Target": "/t",
            "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}}))
        .unwrap();
        assert_eq!(p.mounts[0].tmpfs_size, 1 << 20);
        assert_eq!(p.mounts[0].tmpfs_mode, 0o700);
        let p = one(json!({"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": true}}))
            .unwrap();
        assert!(p.mounts[0].no_copy && !p.mounts[0].create_source);
        assert_eq!(
            one(json!({"Type": "bind", "Target": "/b"})).unwrap_err(),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            one(json!({"Type": "tmpfs", "Source": "x", "Target": "/t"})).unwrap_err(),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            one(json!({"Type": "bind", "Source": "/x", "Target": "/b",
                "BindOptions": {"Propagation": "sideways"}}))
            .unwrap_err(),
            "invalid mount config for type \"bind\": invalid propagation mode: sideways"
        );
        assert_eq!(
            one(json!({"Type": "volume", "Target": ""})).unwrap_err(),
            "invalid mount config for type \"volume\": field Target must not be empty"
        );
        assert!(
            one(json!({"Type": "nfs", "Target": "/x"}))
                .unwrap_err()
                .contains("mount type unknown")
        );
    }

    #[test]
    fn tmpfs_and_anonymous_volumes() {
        let p = parse(&json!({"Volumes": {"/b": {}, "/a": {}},
            "HostConfig": {"Tmpfs": {"/t": "size=64m,mode=1770,exec"}}}))
        .unwrap();
        assert_eq!(p.volumes, ["/a", "/b"]);
        assert_eq!(p.tmpfs["/t"], "size=64m,mode=1770,exec");
        let e = parse(&json!({"HostConfig": {"Tmpfs": {"/t": "size=1m,evil=1"}}})).unwrap_err();
        assert_eq!(e.message, "invalid tmpfs option [\"evil=1\"]");
        let e = parse(&json!({"HostConfig": {"Tmpfs": {"/t": "mode=9"}}})).unwrap_err();
        assert_eq!(e.message, "invalid tmpfs option [\"mode=9\"]");
        let e = parse(&json!({"HostConfig": {"VolumeDriver": "flocker"}})).unwrap_err();
        assert!(e.message.contains("plugin \"flocker\" not found"));
    }

    #[test]
    fn host_config_shows_what_was_sent() {
        let p = binds(&["data:/data", "/host:/h:ro"]).unwrap();
        let spec = pb::ContainerSpec {
            mounts: p.mounts,
            ..Default::default()
        };
        let mut v = json!({"Binds": null});
        host_config(&spec, &mut v);
        assert_eq!(v["Binds"], json!(["data:/data", "/host:/h:ro"]));
    }

    #[test]
    fn bind_recursion_options_are_kept_and_shown() {
        let opts = json!({"NonRecursive": true, "ReadOnlyNonRecursive": true,
            "ReadOnlyForceRecursive": true});
        let p = parse(
            &json!({"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/s",
            "Target": "/m", "ReadOnly": true, "BindOptions": opts}]}}),
        )
        .unwrap();
        let m = &p.mounts[0];
        assert!(m.non_recursive && m.read_only_non_recursive && m.read_only_force_recursive);
        let spec = pb::ContainerSpec {
            mounts: p.mounts,
            ..Default::default()
        };
        let mut v = json!({});
        host_config(&spec, &mut v);
        assert_eq!(v["Mounts"][0]["BindOptions"], opts);
    }
}

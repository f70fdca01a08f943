//! Test images, written by hand as OCI image layouts, and a push of a layout to a [`Registry`].
//!
//! A layout directory is what `skopeo`, `umoci` and `docker buildx --output type=oci` read and
//! write: `oci-layout`, `index.json` (one entry per tag, named by the
//! `org.opencontainers.image.ref.name` annotation) and `blobs/sha256/<hex>`. Everything is
//! deterministic: fixed mtimes and owners in the tars, gzip headers without a time, configs
//! with sorted keys, seeded random data; the same host busybox gives the same digests.
//!
//! The images:
//! - [`busybox_layout`]: one layer with the host's static busybox, its applets as symlinks,
//!   `/etc/passwd`, `/etc/group` and the usual directories; `Cmd ["sh"]`.
//! - [`multilayer_layout`]: busybox + an uncompressed layer (files, a hardlink pair, a symlink,
//!   directories) + a zstd layer with a whiteout and an opaque directory; see
//!   [`MULTILAYER_FILES`] for what a correct unpack holds.
//! - [`two_platform_index`]: an index with linux/amd64 and linux/arm64/v8 manifests.
//! - [`large_layout`]: busybox + 3 or more layers of incompressible data, for benchmarks.
//!
//! Each comes in Docker (schema 2) or OCI media types, [`MediaTypes`]; [`ImageBuilder`] and
//! [`Entry`] build others. [`push_layout`] uploads a layout's image or index to a registry.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::registry::Registry;

/// Where Debian's busybox-static installs its binary (the same file as /usr/bin/busybox with
/// merged /usr).
pub const BUSYBOX: &str = "/bin/busybox";

/// The mtime of every tar entry and the `created` of every config: 2024-01-01T00:00:00Z.
pub const MTIME: u64 = 1_704_067_200;
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// The annotation naming a tag in a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `PATH` of every image here (Docker's default).
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The label every image here carries, with the platform it was built for.
pub const PLATFORM_LABEL: &str = "org.berth.test.platform";

/// The busybox applets linked in `/bin` of the busybox image.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "[",
    "ash",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "df",
    "dirname",
    "du",
    "echo",
    "env",
    "false",
    "find",
    "free",
    "grep",
    "gzip",
    "head",
    "hexdump",
    "hostname",
    "httpd",
    "id",
    "ifconfig",
    "ip",
    "kill",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mkfifo",
    "mknod",
    "mount",
    "mv",
    "nc",
    "netstat",
    "nproc",
    "nslookup",
    "od",
    "ping",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "sync",
    "tail",
    "tar",
    "tee",
    "test",
    "timeout",
    "top",
    "touch",
    "tr",
    "true",
    "umount",
    "uname",
    "uniq",
    "uptime",
    "wc",
    "wget",
    "which",
    "whoami",
    "xargs",
    "yes",
];

/// The media types of one family: Docker's image manifest v2 schema 2, or OCI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaTypes {
    Oci,
    Docker,
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerCompression {
    None,
    Gzip,
    /// OCI media types only: Docker's schema 2 has no zstd layer type.
    Zstd,
}

pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// Whether this is an index or a manifest list (points at manifests, not layers).
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }
}

impl MediaTypes {
    pub fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Oci => media_type::OCI_MANIFEST,
            MediaTypes::Docker => media_type::DOCKER_MANIFEST,
        }
    }

    /// The index (OCI) or manifest list (Docker) type.
    pub fn index(self) -> &'static str {
        match self {
            MediaTypes::Oci => media_type::OCI_INDEX,
            MediaTypes::Docker => media_type::DOCKER_MANIFEST_LIST,
        }
    }

    pub fn config(self) -> &'static str {
        match self {
            MediaTypes::Oci => media_type::OCI_CONFIG,
            MediaTypes::Docker => media_type::DOCKER_CONFIG,
        }
    }

    /// The layer type for a compression; panics for Docker + zstd.
    pub fn layer(self, compression: LayerCompression) -> &'static str {
        match (self, compression) {
            (MediaTypes::Oci, LayerCompression::None) => media_type::OCI_LAYER,
            (MediaTypes::Oci, LayerCompression::Gzip) => media_type::OCI_LAYER_GZIP,
            (MediaTypes::Oci, LayerCompression::Zstd) => media_type::OCI_LAYER_ZSTD,
            (MediaTypes::Docker, LayerCompression::None) => media_type::DOCKER_LAYER,
            (MediaTypes::Docker, LayerCompression::Gzip) => media_type::DOCKER_LAYER_GZIP,
            (MediaTypes::Docker, LayerCompression::Zstd) => {
                panic!("zstd layers need OCI media types")
            }
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in Sha256::digest(data) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What a tar entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A hard link to an earlier entry of the same layer (path from the root, no leading /).
    Hardlink(String),
}

/// One entry of a layer tar. Paths are relative to the root (a leading `/` is dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

fn rel(path: &str) -> String {
    path.trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

impl Entry {
    fn new(path: &str, kind: EntryKind, mode: u32) -> Entry {
        Entry {
            path: rel(path),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry::new(path, EntryKind::Dir, mode)
    }

    pub fn file(path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Entry {
        Entry::new(path, EntryKind::File(data.into()), mode)
    }

    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(path, EntryKind::Symlink(target.to_owned()), 0o777)
    }

    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::new(path, EntryKind::Hardlink(rel(target)), 0o644)
    }

    /// The OCI whiteout deleting `path` from the layers below: `<dir>/.wh.<name>`.
    pub fn whiteout(path: &str) -> Entry {
        let p = rel(path);
        let wh = match p.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{p}"),
        };
        Entry::file(&wh, 0o644, Vec::new())
    }

    /// The OCI opaque marker `<dir>/.wh..wh..opq`: the layers below contribute nothing to `dir`.
    pub fn opaque(dir: &str) -> Entry {
        Entry::file(&format!("{}/.wh..wh..opq", rel(dir)), 0o644, Vec::new())
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// An uncompressed layer tar of these entries, in order (parents before children), with
/// deterministic headers.
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(MTIME);
        h.set_size(0);
        let r = match &e.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, format!("{}/", e.path), std::io::empty())
            }
            EntryKind::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &e.path, &data[..])
            }
            EntryKind::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, &e.path, target)
            }
            EntryKind::Hardlink(target) => {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, &e.path, target)
            }
        };
        r.unwrap_or_else(|err| panic!("tar entry {}: {err}", e.path));
    }
    b.into_inner().expect("tar")
}

/// A layer in a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub media_type: String,
    /// Digest of the blob as stored and pushed (compressed).
    pub digest: String,
    /// Size of the blob (compressed).
    pub size: u64,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    pub compression: LayerCompression,
}

/// An image (one manifest) written to a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The layout directory.
    pub layout: PathBuf,
    /// Its tag in the layout's `index.json`, if it has one (children of an index have none).
    pub tag: Option<String>,
    pub media: MediaTypes,
    pub manifest_media_type: String,
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_media_type: String,
    /// The config digest: Docker's image ID.
    pub config_digest: String,
    pub config_size: u64,
    pub layers: Vec<LayerInfo>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl ImageInfo {
    /// Docker's image ID (`sha256:` + the config digest).
    pub fn image_id(&self) -> &str {
        &self.config_digest
    }

    /// The compressed layer digests, in order.
    pub fn layer_digests(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.digest.clone()).collect()
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// Sum of the compressed layer sizes.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// `os/architecture[/variant]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// The manifest as written to the layout.
    pub fn manifest_bytes(&self) -> Vec<u8> {
        read_blob(&self.layout, &self.manifest_digest)
    }

    /// The config as written to the layout.
    pub fn config_bytes(&self) -> Vec<u8> {
        read_blob(&self.layout, &self.config_digest)
    }

    pub fn config_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.config_bytes()).expect("config JSON")
    }
}

/// An index (OCI) or manifest list (Docker) written to a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    pub layout: PathBuf,
    pub tag: Option<String>,
    pub media: MediaTypes,
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub manifests: Vec<ImageInfo>,
}

impl IndexInfo {
    /// The manifest for `os/arch`.
    pub fn for_platform(&self, os: &str, architecture: &str) -> Option<&ImageInfo> {
        self.manifests
            .iter()
            .find(|m| m.os == os && m.architecture == architecture)
    }
}

/// The path of a blob in a layout.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest
        .split_once(':')
        .unwrap_or_else(|| panic!("bad digest {digest}"));
    layout.join("blobs").join(alg).join(hex)
}

/// A blob of a layout.
pub fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let p = blob_path(layout, digest);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// An OCI image layout directory being written.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Creates (or reuses) a layout directory: `oci-layout`, `blobs/sha256/`, and an empty
    /// `index.json` unless there is one.
    pub fn create(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dir");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        let l = Layout {
            dir: dir.to_owned(),
        };
        if !dir.join("index.json").exists() {
            l.write_index_json(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_type::OCI_INDEX,
                "manifests": [],
            }));
        }
        l
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a blob; returns its digest and size.
    pub fn write_blob(&self, data: &[u8]) -> (String, u64) {
        let digest = sha256_digest(data);
        let p = blob_path(&self.dir, &digest);
        std::fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        (digest, data.len() as u64)
    }

    /// Writes a layer blob of these entries.
    pub fn add_layer(
        &self,
        media: MediaTypes,
        compression: LayerCompression,
        entries: &[Entry],
    ) -> LayerInfo {
        self.add_layer_tar(media, compression, &layer_tar(entries))
    }

    /// Writes a layer blob from an uncompressed tar.
    pub fn add_layer_tar(
        &self,
        media: MediaTypes,
        compression: LayerCompression,
        tar: &[u8],
    ) -> LayerInfo {
        let media_type = media.layer(compression).to_owned();
        let blob = match compression {
            LayerCompression::None => tar.to_vec(),
            LayerCompression::Gzip => {
                // Stored blocks for big (benchmark) layers of random data, which would not
                // compress anyway (deflate stores incompressible blocks too): much faster.
                let level = if tar.len() > 16 << 20 {
                    flate2::Compression::none()
                } else {
                    flate2::Compression::default()
                };
                let mut gz = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::with_capacity(tar.len() / 2), level);
                gz.write_all(tar).expect("gzip");
                gz.finish().expect("gzip")
            }
            LayerCompression::Zstd => zstd::stream::encode_all(tar, 3).expect("zstd"),
        };
        let (digest, size) = self.write_blob(&blob);
        LayerInfo {
            media_type,
            digest,
            size,
            diff_id: sha256_digest(tar),
            tar_size: tar.len() as u64,
            compression,
        }
    }

    fn read_index_json(&self) -> serde_json::Value {
        let raw = std::fs::read(self.dir.join("index.json")).expect("read index.json");
        serde_json::from_slice(&raw).expect("index.json")
    }

    fn write_index_json(&self, v: &serde_json::Value) {
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(v).expect("json"),
        )
        .expect("write index.json");
    }

    /// Names a manifest or index with a tag in `index.json`, replacing an entry of that tag.
    pub fn tag(&self, media_type: &str, digest: &str, size: u64, tag: &str) {
        let mut index = self.read_index_json();
        let manifests = index["manifests"].as_array_mut().expect("manifests");
        manifests.retain(|m| m["annotations"][REF_NAME] != tag);
        manifests.push(serde_json::json!({
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "annotations": { REF_NAME: tag },
        }));
        self.write_index_json(&index);
    }

    /// Writes an index (OCI) or manifest list (Docker) of these images of this layout, with
    /// their platforms; tags it if `tag` is given.
    pub fn add_index(
        &self,
        media: MediaTypes,
        images: &[ImageInfo],
        tag: Option<&str>,
    ) -> IndexInfo {
        let manifests: Vec<serde_json::Value> = images
            .iter()
            .map(|i| {
                let mut platform = serde_json::json!({
                    "architecture": i.architecture,
                    "os": i.os,
                });
                if let Some(v) = &i.variant {
                    platform["variant"] = v.clone().into();
                }
                serde_json::json!({
                    "mediaType": i.manifest_media_type,
                    "digest": i.manifest_digest,
                    "size": i.manifest_size,
                    "platform": platform,
                })
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media.index(),
            "manifests": manifests,
        });
        let (digest, size) = self.write_blob(&serde_json::to_vec(&index).expect("json"));
        if let Some(t) = tag {
            self.tag(media.index(), &digest, size, t);
        }
        IndexInfo {
            layout: self.dir.clone(),
            tag: tag.map(str::to_owned),
            media,
            media_type: media.index().to_owned(),
            digest,
            size,
            manifests: images.to_vec(),
        }
    }
}

/// Builds one image (config + manifest) in a layout.
pub struct ImageBuilder<'a> {
    layout: &'a Layout,
    media: MediaTypes,
    os: String,
    architecture: String,
    variant: Option<String>,
    container_config: serde_json::Map<String, serde_json::Value>,
    layers: Vec<LayerInfo>,
    history: Vec<serde_json::Value>,
}

impl<'a> ImageBuilder<'a> {
    /// linux/amd64, `Env [PATH]`, no layers yet.
    pub fn new(layout: &'a Layout, media: MediaTypes) -> ImageBuilder<'a> {
        let mut container_config = serde_json::Map::new();
        container_config.insert("Env".to_owned(), serde_json::json!([PATH_ENV]));
        ImageBuilder {
            layout,
            media,
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            variant: None,
            container_config,
            layers: Vec::new(),
            history: Vec::new(),
        }
    }

    pub fn platform(mut self, os: &str, architecture: &str, variant: Option<&str>) -> Self {
        os.clone_into(&mut self.os);
        architecture.clone_into(&mut self.architecture);
        self.variant = variant.map(str::to_owned);
        self
    }

    /// A new layer of these entries, with a history entry.
    pub fn layer(self, compression: LayerCompression, entries: &[Entry], created_by: &str) -> Self {
        let l = self.layout.add_layer(self.media, compression, entries);
        self.existing_layer(l, created_by)
    }

    /// A layer already written to this layout (shared with another image).
    pub fn existing_layer(mut self, layer: LayerInfo, created_by: &str) -> Self {
        self.layers.push(layer);
        self.history.push(serde_json::json!({
            "created": CREATED,
            "created_by": created_by,
        }));
        self
    }

    /// Sets a key of the container configuration (`Cmd`, `Entrypoint`, `WorkingDir`, `User`,
    /// `ExposedPorts`, ...), with an empty-layer history entry as `docker build` writes.
    pub fn set(mut self, key: &str, value: serde_json::Value) -> Self {
        self.history.push(serde_json::json!({
            "created": CREATED,
            "created_by": format!("/bin/sh -c #(nop)  {} {value}", key.to_uppercase()),
            "empty_layer": true,
        }));
        self.container_config.insert(key.to_owned(), value);
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        let labels = self
            .container_config
            .entry("Labels")
            .or_insert_with(|| serde_json::json!({}));
        labels[key] = value.into();
        self
    }

    /// Writes the config and the manifest; tags the manifest in `index.json` if `tag` is given.
    pub fn write(self, tag: Option<&str>) -> ImageInfo {
        let mut config = serde_json::json!({
            "architecture": self.architecture,
            "os": self.os,
            "created": CREATED,
            "config": self.container_config,
            "rootfs": {
                "type": "layers",
                "diff_ids": self.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            "history": self.history,
        });
        if let Some(v) = &self.variant {
            config["variant"] = v.clone().into();
        }
        let (config_digest, config_size) = self
            .layout
            .write_blob(&serde_json::to_vec(&config).expect("json"));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": self.media.manifest(),
            "config": {
                "mediaType": self.media.config(),
                "digest": config_digest,
                "size": config_size,
            },
            "layers": self.layers.iter().map(|l| serde_json::json!({
                "mediaType": l.media_type,
                "digest": l.digest,
                "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let (manifest_digest, manifest_size) = self
            .layout
            .write_blob(&serde_json::to_vec(&manifest).expect("json"));
        if let Some(t) = tag {
            self.layout
                .tag(self.media.manifest(), &manifest_digest, manifest_size, t);
        }
        ImageInfo {
            layout: self.layout.path().to_owned(),
            tag: tag.map(str::to_owned),
            media: self.media,
            manifest_media_type: self.media.manifest().to_owned(),
            manifest_digest,
            manifest_size,
            config_media_type: self.media.config().to_owned(),
            config_digest,
            config_size,
            layers: self.layers,
            os: self.os,
            architecture: self.architecture,
            variant: self.variant,
        }
    }
}

/// The host's static busybox binary.
pub fn busybox_binary() -> Vec<u8> {
    [BUSYBOX, "/usr/bin/busybox"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .unwrap_or_else(|| panic!("{BUSYBOX} is missing (apt-get install busybox-static)"))
}

/// The entries of the busybox base layer.
pub fn busybox_entries() -> Vec<Entry> {
    let mut e = vec![
        Entry::dir("bin", 0o755),
        Entry::file("bin/busybox", 0o755, busybox_binary()),
    ];
    for applet in BUSYBOX_APPLETS {
        e.push(Entry::symlink(&format!("bin/{applet}"), "busybox"));
    }
    e.extend([
        Entry::dir("dev", 0o755),
        Entry::dir("etc", 0o755),
        Entry::file(
            "etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        Entry::file("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n"),
        Entry::file("etc/hostname", 0o644, ""),
        Entry::file("etc/hosts", 0o644, "127.0.0.1\tlocalhost\n"),
        Entry::file("etc/resolv.conf", 0o644, ""),
        Entry::dir("home", 0o755),
        Entry::dir("proc", 0o555),
        Entry::dir("root", 0o700),
        Entry::dir("sys", 0o555),
        Entry::dir("tmp", 0o1777),
        Entry::dir("usr", 0o755),
        Entry::dir("usr/bin", 0o755),
        Entry::dir("usr/sbin", 0o755),
        Entry::dir("var", 0o755),
        Entry::dir("var/tmp", 0o1777),
    ]);
    e
}

const BUSYBOX_CREATED_BY: &str = "berth-testutil: busybox base layer (Debian busybox-static)";

fn busybox_image(layout: &Layout, media: MediaTypes) -> ImageBuilder<'_> {
    ImageBuilder::new(layout, media).layer(
        LayerCompression::Gzip,
        &busybox_entries(),
        BUSYBOX_CREATED_BY,
    )
}

/// A busybox image tagged `latest` in a new layout at `dir`: one gzip layer, `Cmd ["sh"]`,
/// linux/amd64.
pub fn busybox_layout(dir: &Path, media: MediaTypes) -> ImageInfo {
    let layout = Layout::create(dir);
    busybox_image(&layout, media)
        .label(PLATFORM_LABEL, "linux/amd64")
        .set("Cmd", serde_json::json!(["sh"]))
        .write(Some("latest"))
}

/// What the root filesystem of [`multilayer_layout`] holds besides busybox: path and content
/// (`None`: the path must not exist).
pub const MULTILAYER_FILES: &[(&str, Option<&str>)] = &[
    ("data/a.txt", Some("alpha v2\n")),
    ("data/b.txt", Some("bravo\n")),
    ("data/c.txt", Some("charlie\n")),
    ("data/gone.txt", None),
    ("data/hard1", Some("hardlinked\n")),
    ("data/hard2", Some("hardlinked\n")),
    ("data/sub/one.txt", Some("one\n")),
    ("data/sub/two.txt", Some("two\n")),
    ("data/nobody.txt", Some("owned by nobody\n")),
    ("opaque/old1.txt", None),
    ("opaque/old2.txt", None),
    ("opaque/new.txt", Some("new\n")),
    ("etc/motd", None),
];

/// A multi-layer image tagged `latest` (OCI media types):
/// 1. busybox (gzip), plus `/etc/motd`;
/// 2. uncompressed: `/data` with files, a hardlink pair `hard1`/`hard2`, a symlink
///    `link -> a.txt`, a file owned by 65534 with mode 0600, a subdirectory `sub`, a
///    file to be deleted `gone.txt`, and `/opaque` with `old1.txt` and `old2.txt`;
/// 3. zstd: changes `data/a.txt`, adds `data/c.txt`, whiteouts `data/gone.txt` and
///    `etc/motd` (from layer 1), makes `/opaque` opaque and adds `opaque/new.txt`.
///
/// The result is [`MULTILAYER_FILES`]; `data/hard1` and `data/hard2` are one inode;
/// `data/link` is a symlink to `a.txt`.
pub fn multilayer_layout(dir: &Path) -> ImageInfo {
    let media = MediaTypes::Oci;
    let layout = Layout::create(dir);
    let mut base = busybox_entries();
    base.push(Entry::file("etc/motd", 0o644, "welcome\n"));
    let layer2 = [
        Entry::dir("data", 0o755),
        Entry::file("data/a.txt", 0o644, "alpha\n"),
        Entry::file("data/b.txt", 0o644, "bravo\n"),
        Entry::file("data/gone.txt", 0o644, "to be deleted\n"),
        Entry::file("data/hard1", 0o644, "hardlinked\n"),
        Entry::hardlink("data/hard2", "data/hard1"),
        Entry::symlink("data/link", "a.txt"),
        Entry::file("data/nobody.txt", 0o600, "owned by nobody\n").owner(65534, 65534),
        Entry::dir("data/sub", 0o750),
        Entry::file("data/sub/one.txt", 0o644, "one\n"),
        Entry::file("data/sub/two.txt", 0o644, "two\n"),
        Entry::dir("opaque", 0o755),
        Entry::file("opaque/old1.txt", 0o644, "old 1\n"),
        Entry::file("opaque/old2.txt", 0o644, "old 2\n"),
    ];
    let layer3 = [
        Entry::dir("data", 0o755),
        Entry::file("data/a.txt", 0o644, "alpha v2\n"),
        Entry::file("data/c.txt", 0o644, "charlie\n"),
        Entry::whiteout("data/gone.txt"),
        Entry::dir("etc", 0o755),
        Entry::whiteout("etc/motd"),
        Entry::dir("opaque", 0o755),
        Entry::opaque("opaque"),
        Entry::file("opaque/new.txt", 0o644, "new\n"),
    ];
    ImageBuilder::new(&layout, media)
        .layer(LayerCompression::Gzip, &base, BUSYBOX_CREATED_BY)
        .layer(
            LayerCompression::None,
            &layer2,
            "berth-testutil: files, hardlinks, a symlink, directories (uncompressed)",
        )
        .layer(
            LayerCompression::Zstd,
            &layer3,
            "berth-testutil: a change, whiteouts, an opaque directory (zstd)",
        )
        .label(PLATFORM_LABEL, "linux/amd64")
        .set("WorkingDir", "/data".into())
        .set("Cmd", serde_json::json!(["sh"]))
        .write(Some("latest"))
}

/// An index (OCI) or manifest list (Docker) tagged `latest` with linux/amd64 and
/// linux/arm64/v8 images. Both share the busybox layer (so the arm64 one does not run); their
/// configs differ in architecture and in the [`PLATFORM_LABEL`] label.
pub fn two_platform_index(dir: &Path, media: MediaTypes) -> IndexInfo {
    let layout = Layout::create(dir);
    let layer = layout.add_layer(media, LayerCompression::Gzip, &busybox_entries());
    let images: Vec<ImageInfo> = [("amd64", None), ("arm64", Some("v8"))]
        .into_iter()
        .map(|(arch, variant)| {
            let platform = match variant {
                Some(v) => format!("linux/{arch}/{v}"),
                None => format!("linux/{arch}"),
            };
            ImageBuilder::new(&layout, media)
                .platform("linux", arch, variant)
                .existing_layer(layer.clone(), BUSYBOX_CREATED_BY)
                .label(PLATFORM_LABEL, &platform)
                .set("Cmd", serde_json::json!(["sh"]))
                .write(None)
        })
        .collect();
    layout.add_index(media, &images, Some("latest"))
}

/// `len` bytes of seeded pseudo-random (incompressible) data (splitmix64).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A large image tagged `latest`: busybox plus at least 3 gzip layers of seeded random data
/// (files of at most 8 MiB under `/bench/layerN/`) whose compressed sizes add up to at least
/// `total_compressed_bytes` (a layer holds at most 64 MiB).
pub fn large_layout(dir: &Path, media: MediaTypes, total_compressed_bytes: u64) -> ImageInfo {
    const MAX_LAYER: u64 = 64 << 20;
    const MAX_FILE: u64 = 8 << 20;
    let layout = Layout::create(dir);
    let n = total_compressed_bytes.div_ceil(MAX_LAYER).max(3);
    let per_layer = total_compressed_bytes.div_ceil(n);
    let mut image = busybox_image(&layout, media);
    let mut seed = 0;
    for i in 0..n {
        let mut entries = vec![
            Entry::dir("bench", 0o755),
            Entry::dir(&format!("bench/layer{i}"), 0o755),
        ];
        let mut left = per_layer;
        let mut j = 0;
        while left > 0 {
            let len = left.min(MAX_FILE);
            seed += 1;
            entries.push(Entry::file(
                &format!("bench/layer{i}/part{j}.bin"),
                0o644,
                random_bytes(seed, len as usize),
            ));
            left -= len;
            j += 1;
        }
        image = image.layer(
            LayerCompression::Gzip,
            &entries,
            &format!("berth-testutil: {per_layer} random bytes"),
        );
    }
    image
        .label(PLATFORM_LABEL, "linux/amd64")
        .set("Cmd", serde_json::json!(["sh"]))
        .write(Some("latest"))
}

/// Splits `name[:tag]` (a repository in the registry, no host) into name and tag (`latest`).
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (reference, "latest"),
    }
}

/// Pushes the image or index of an OCI layout to `registry` as `reference` (`name[:tag]`,
/// without the registry host), with basic auth if `creds` is given; returns the pushed
/// manifest's (or index's) digest.
///
/// The layout's `index.json` must hold one entry, or one tagged with the reference's tag.
/// Blobs the repository has already are skipped (HEAD); for an index, each child manifest
/// (and its blobs) is pushed by digest first, then the index by tag.
pub fn push_layout(
    layout_dir: &Path,
    reference: &str,
    registry: &Registry,
    creds: Option<(&str, &str)>,
) -> anyhow::Result<String> {
    let (name, tag) = split_reference(reference);
    let raw = std::fs::read(layout_dir.join("index.json"))
        .with_context(|| format!("{}: no index.json", layout_dir.display()))?;
    let index: serde_json::Value = serde_json::from_slice(&raw)?;
    let entries = index["manifests"]
        .as_array()
        .context("index.json without manifests")?;
    let entry = match entries.as_slice() {
        [one] => one,
        many => many
            .iter()
            .find(|m| m["annotations"][REF_NAME] == tag)
            .with_context(|| {
                format!(
                    "{}: {} entries and none tagged {tag}",
                    layout_dir.display(),
                    many.len()
                )
            })?,
    };
    let client = registry.client(creds);
    push_descriptor(&client, layout_dir, name, entry, tag)
}

fn push_descriptor(
    client: &crate::registry::RegistryClient,
    layout: &Path,
    name: &str,
    desc: &serde_json::Value,
    reference: &str,
) -> anyhow::Result<String> {
    let media_type = desc["mediaType"].as_str().context("descriptor mediaType")?;
    let digest = desc["digest"].as_str().context("descriptor digest")?;
    let path = blob_path(layout, digest);
    let body = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("{}: not JSON", path.display()))?;
    if media_type::is_index(media_type) {
        for child in manifest["manifests"]
            .as_array()
            .context("index manifests")?
        {
            let d = child["digest"].as_str().context("child digest")?;
            push_descriptor(client, layout, name, child, d)?;
        }
    } else {
        let config = std::iter::once(&manifest["config"]);
        let layers = manifest["layers"].as_array().context("manifest layers")?;
        for blob in config.chain(layers) {
            let d = blob["digest"].as_str().context("blob digest")?;
            client
                .push_blob(name, d, &blob_path(layout, d))
                .with_context(|| format!("push {d} to {name}"))?;
        }
    }
    let pushed = client.put_manifest(name, reference, media_type, &body)?;
    if pushed != digest {
        bail!("the registry stored {name}:{reference} as {pushed}, the layout has {digest}");
    }
    Ok(pushed)
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, io::Read};

    use super::*;

    /// Decompresses a layer blob.
    fn layer_tar_of(info: &ImageInfo, l: &LayerInfo) -> Vec<u8> {
        let blob = read_blob(&info.layout, &l.digest);
        match l.compression {
            LayerCompression::None => blob,
            LayerCompression::Gzip => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&blob[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            LayerCompression::Zstd => zstd::stream::decode_all(&blob[..]).unwrap(),
        }
    }

    /// Every digest, size and diff_id in the layout agrees with the bytes.
    fn check_image(info: &ImageInfo) {
        let manifest: serde_json::Value = serde_json::from_slice(&info.manifest_bytes()).unwrap();
        assert_eq!(sha256_digest(&info.manifest_bytes()), info.manifest_digest);
        assert_eq!(info.manifest_bytes().len() as u64, info.manifest_size);
        assert_eq!(manifest["mediaType"], info.manifest_media_type.as_str());
        assert_eq!(manifest["config"]["digest"], info.config_digest.as_str());
        assert_eq!(
            manifest["config"]["mediaType"],
            info.config_media_type.as_str()
        );
        assert_eq!(sha256_digest(&info.config_bytes()), info.config_digest);
        let config = info.config_json();
        assert_eq!(config["architecture"], info.architecture.as_str());
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Env"], serde_json::json!([PATH_ENV]));
        let diff_ids: Vec<String> =
            serde_json::from_value(config["rootfs"]["diff_ids"].clone()).unwrap();
        assert_eq!(diff_ids, info.diff_ids());
        let non_empty = config["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["empty_layer"] != true)
            .count();
        assert_eq!(non_empty, info.layers.len());
        for (i, l) in info.layers.iter().enumerate() {
            assert_eq!(manifest["layers"][i]["digest"], l.digest.as_str());
            assert_eq!(manifest["layers"][i]["mediaType"], l.media_type.as_str());
            assert_eq!(manifest["layers"][i]["size"], l.size);
            let blob = read_blob(&info.layout, &l.digest);
            assert_eq!(sha256_digest(&blob), l.digest);
            assert_eq!(blob.len() as u64, l.size);
            let tar = layer_tar_of(info, l);
            assert_eq!(sha256_digest(&tar), l.diff_id);
        }
    }

    /// path -> (entry type, link target, content, mode, uid) of a layer tar.
    fn tar_entries(tar: &[u8]) -> HashMap<String, (tar::EntryType, String, Vec<u8>, u32, u64)> {
        let mut out = HashMap::new();
        let mut a = tar::Archive::new(tar);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.insert(
                path,
                (
                    h.entry_type(),
                    link,
                    data,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                ),
            );
        }
        out
    }

    fn assert_pushed(reg: &Registry, name: &str, tag: &str, info: &ImageInfo) {
        let got = reg.manifest(name, tag).unwrap().expect("pushed manifest");
        assert_eq!(got.digest, info.manifest_digest);
        assert_eq!(got.media_type, info.manifest_media_type);
        assert_eq!(got.body, info.manifest_bytes());
        assert_eq!(got.json()["config"]["digest"], info.config_digest.as_str());
        let config = reg.blob(name, &info.config_digest).unwrap().unwrap();
        assert_eq!(config, info.config_bytes());
        let client = reg.client(reg.credentials());
        for l in &info.layers {
            assert!(client.has_blob(name, &l.digest).unwrap(), "{}", l.digest);
        }
    }

    #[test]
    fn busybox_layout_is_consistent_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        for media in [MediaTypes::Oci, MediaTypes::Docker] {
            let info = busybox_layout(&dir.path().join(format!("{media:?}")), media);
            check_image(&info);
            assert_eq!(info.layers.len(), 1);
            assert_eq!(
                info.layers[0].media_type,
                media.layer(LayerCompression::Gzip)
            );
            assert_eq!(info.manifest_media_type, media.manifest());
            assert_eq!(
                info.config_json()["config"]["Cmd"],
                serde_json::json!(["sh"])
            );
            let again = busybox_layout(&dir.path().join(format!("{media:?}-again")), media);
            assert_eq!(again.manifest_digest, info.manifest_digest);

            let files = tar_entries(&layer_tar_of(&info, &info.layers[0]));
            let (kind, _, data, mode, _) = &files["bin/busybox"];
            assert_eq!(*kind, tar::EntryType::Regular);
            assert_eq!(*data, busybox_binary());
            assert_eq!(*mode, 0o755);
            for applet in ["sh", "echo", "true", "sleep", "cat", "ls", "id", "hostname"] {
                let (kind, target, ..) = &files[&format!("bin/{applet}")];
                assert_eq!(
                    (*kind, target.as_str()),
                    (tar::EntryType::Symlink, "busybox")
                );
            }
            assert_eq!(files["tmp"].3, 0o1777);
            assert!(String::from_utf8_lossy(&files["etc/passwd"].2).contains("nobody:x:65534"));
            for d in ["root", "proc", "sys", "dev"] {
                assert_eq!(files[d].0, tar::EntryType::Directory, "{d}");
            }
            let index: serde_json::Value =
                serde_json::from_slice(&std::fs::read(info.layout.join("index.json")).unwrap())
                    .unwrap();
            assert_eq!(
                index["manifests"][0]["digest"],
                info.manifest_digest.as_str()
            );
            assert_eq!(index["manifests"][0]["annotations"][REF_NAME], "latest");
        }
    }

    #[test]
    fn busybox_layouts_push_and_read_back() {
        let reg = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        for (media, name) in [
            (MediaTypes::Oci, "test/oci"),
            (MediaTypes::Docker, "test/docker"),
        ] {
            let info = busybox_layout(&dir.path().join(name), media);
            let digest = push_layout(&info.layout, &format!("{name}:v1"), &reg, None).unwrap();
            assert_eq!(digest, info.manifest_digest);
            assert_pushed(&reg, name, "v1", &info);
            assert_pushed(&reg, name, &info.manifest_digest, &info);
            // Again: every blob is there already.
            push_layout(&info.layout, &format!("{name}:v2"), &reg, None).unwrap();
            let mut tags = reg.tags(name).unwrap();
            tags.sort();
            assert_eq!(tags, ["v1", "v2"]);
        }
    }

    #[test]
    fn multilayer_layout_has_whiteouts_hardlinks_and_three_compressions() {
        let dir = tempfile::tempdir().unwrap();
        let info = multilayer_layout(dir.path());
        check_image(&info);
        let kinds: Vec<_> = info.layers.iter().map(|l| l.media_type.as_str()).collect();
        assert_eq!(
            kinds,
            [
                media_type::OCI_LAYER_GZIP,
                media_type::OCI_LAYER,
                media_type::OCI_LAYER_ZSTD
            ]
        );
        let l2 = tar_entries(&layer_tar_of(&info, &info.layers[1]));
        assert_eq!(l2["data/hard2"].0, tar::EntryType::Link);
        assert_eq!(l2["data/hard2"].1, "data/hard1");
        assert_eq!(l2["data/nobody.txt"].4, 65534);
        let l3 = tar_entries(&layer_tar_of(&info, &info.layers[2]));
        assert!(l3.contains_key("data/.wh.gone.txt"));
        assert!(l3.contains_key("opaque/.wh..wh..opq"));

        let reg = Registry::start();
        push_layout(&info.layout, "multi/layer:latest", &reg, None).unwrap();
        assert_pushed(&reg, "multi/layer", "latest", &info);
    }

    /// Runs a command; asserts it succeeded; returns stdout.
    fn ok(cmd: &mut std::process::Command) -> String {
        let out = crate::run(cmd);
        let (stdout, stderr) = crate::text(&out);
        assert!(out.status.success(), "{cmd:?}: {stdout}\n{stderr}");
        stdout
    }

    /// umoci unpacks a layout's `latest` into `bundle`; returns the rootfs.
    fn umoci_unpack(layout: &Path, bundle: &Path) -> PathBuf {
        ok(std::process::Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:latest", layout.display()))
            .arg(bundle));
        bundle.join("rootfs")
    }

    /// umoci, an independent OCI implementation, unpacks the busybox layout, and it runs.
    #[test]
    fn umoci_unpacks_busybox_and_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let bb = busybox_layout(&dir.path().join("bb"), MediaTypes::Oci);
        let rootfs = umoci_unpack(&bb.layout, &dir.path().join("bundle"));
        assert_eq!(
            std::fs::read(rootfs.join("bin/busybox")).unwrap(),
            busybox_binary()
        );
        let echo = ok(std::process::Command::new("chroot").arg(&rootfs).args([
            "/bin/sh",
            "-c",
            "echo hello from $(id -u) in $(ls -d /tmp)",
        ]));
        assert_eq!(echo, "hello from 0 in /tmp\n");
    }

    /// skopeo (recompressing every layer to gzip: umoci 0.4.7 has no zstd) and umoci apply
    /// the multilayer image's whiteouts, opaque directory and hardlinks as documented.
    #[test]
    fn skopeo_and_umoci_unpack_the_multilayer_image() {
        let dir = tempfile::tempdir().unwrap();
        let ml = multilayer_layout(&dir.path().join("ml"));
        let gz = dir.path().join("gz");
        ok(std::process::Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-compress-format", "gzip"])
            .arg(format!("oci:{}:latest", ml.layout.display()))
            .arg(format!("oci:{}:latest", gz.display())));
        let rootfs = umoci_unpack(&gz, &dir.path().join("bundle"));
        for (path, content) in MULTILAYER_FILES {
            let got = std::fs::read_to_string(rootfs.join(path)).ok();
            assert_eq!(got.as_deref(), *content, "{path}");
        }
        use std::os::unix::fs::MetadataExt;
        let h1 = std::fs::metadata(rootfs.join("data/hard1")).unwrap();
        let h2 = std::fs::metadata(rootfs.join("data/hard2")).unwrap();
        assert_eq!((h1.ino(), h1.nlink()), (h2.ino(), 2));
        assert_eq!(
            std::fs::read_link(rootfs.join("data/link")).unwrap(),
            Path::new("a.txt")
        );
        let nobody = std::fs::metadata(rootfs.join("data/nobody.txt")).unwrap();
        assert_eq!((nobody.uid(), nobody.mode() & 0o7777), (65534, 0o600));
        let names: Vec<_> = std::fs::read_dir(rootfs.join("opaque"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["new.txt"]);
    }

    /// skopeo reads the OCI index and selects a platform from it.
    #[test]
    fn skopeo_selects_a_platform_of_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let index = two_platform_index(dir.path(), MediaTypes::Oci);
        for (arch, label) in [("amd64", "linux/amd64"), ("arm64", "linux/arm64/v8")] {
            let out = ok(std::process::Command::new("skopeo")
                .args(["--override-arch", arch, "inspect", "--config"])
                .arg(format!("oci:{}:latest", index.layout.display())));
            let config: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(config["architecture"], arch);
            assert_eq!(config["config"]["Labels"][PLATFORM_LABEL], label);
        }
    }

    #[test]
    fn two_platform_index_pushes_children_then_index() {
        let reg = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        for (media, name) in [
            (MediaTypes::Oci, "multi/oci"),
            (MediaTypes::Docker, "multi/docker"),
        ] {
            let index = two_platform_index(&dir.path().join(name), media);
            assert_eq!(index.manifests.len(), 2);
            let amd = index.for_platform("linux", "amd64").unwrap();
            let arm = index.for_platform("linux", "arm64").unwrap();
            check_image(amd);
            check_image(arm);
            assert_eq!(arm.platform(), "linux/arm64/v8");
            assert_eq!(amd.layers, arm.layers);
            assert_ne!(amd.config_digest, arm.config_digest);
            assert_eq!(
                arm.config_json()["config"]["Labels"][PLATFORM_LABEL],
                "linux/arm64/v8"
            );

            let digest = push_layout(&index.layout, name, &reg, None).unwrap();
            assert_eq!(digest, index.digest);
            let got = reg.manifest(name, "latest").unwrap().unwrap();
            assert_eq!(got.digest, index.digest);
            assert_eq!(got.media_type, media.index());
            let platforms: Vec<_> = got.json()["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["platform"]["architecture"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(platforms, ["amd64", "arm64"]);
            for m in &index.manifests {
                assert_pushed(&reg, name, &m.manifest_digest, m);
            }
        }
    }

    #[test]
    fn large_layout_to_an_auth_registry() {
        let dir = tempfile::tempdir().unwrap();
        let total = 6 << 20;
        let info = large_layout(dir.path(), MediaTypes::Docker, total);
        check_image(&info);
        assert_eq!(info.layers.len(), 4);
        let random: u64 = info.layers[1..].iter().map(|l| l.size).sum();
        assert!(random >= total, "{random} < {total}");

        let reg = Registry::with_auth("bench", "pw");
        let err = push_layout(&info.layout, "big:1", &reg, None).unwrap_err();
        assert!(format!("{err:#}").contains("401"), "{err:#}");
        let err = push_layout(&info.layout, "big:1", &reg, Some(("bench", "nope"))).unwrap_err();
        assert!(format!("{err:#}").contains("401"), "{err:#}");
        push_layout(&info.layout, "big:1", &reg, reg.credentials()).unwrap();
        assert_pushed(&reg, "big", "1", &info);
        let layer = reg.blob("big", &info.layers[2].digest).unwrap().unwrap();
        assert_eq!(sha256_digest(&layer), info.layers[2].digest);
    }

    #[test]
    fn random_bytes_are_seeded_and_incompressible() {
        assert_eq!(random_bytes(7, 1000), random_bytes(7, 1000));
        assert_ne!(random_bytes(7, 1000), random_bytes(8, 1000));
        let data = random_bytes(1, 1 << 20);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&data).unwrap();
        assert!(gz.finish().unwrap().len() >= data.len());
    }

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(split_reference("a/b:c"), ("a/b", "c"));
        assert_eq!(split_reference("a/b"), ("a/b", "latest"));
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(Entry::whiteout("/data/x").path, "data/.wh.x");
        assert_eq!(Entry::whiteout("x").path, ".wh.x");
        assert_eq!(Entry::opaque("/d/").path, "d/.wh..wh..opq");
    }
}

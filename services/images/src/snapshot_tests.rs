//! Snapshots against a real overlay mount (root), and the rule that layers under a snapshot
//! are never deleted.

use std::{io::Write, sync::Arc};

use berth_types::Digest;

use crate::{layers::chain_ids, service::ImageService, store::ImageRecord};

fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image service in a temp dir with one two-layer image tagged `test/img:1`.
async fn service_with_image(dir: &std::path::Path) -> (Arc<ImageService>, ImageRecord) {
    let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
        .await
        .unwrap();
    let events = berth_bus::EventPublisher::spawn(bus, Default::default());
    let cfg = berth_config::DaemonConfig::parse(std::path::Path::new("d.json"), "{}").unwrap();
    let svc = ImageService::open(dir, &cfg, events).unwrap();
    let tars = [
        layer_tar(&[("etc/base", b"base"), ("etc/over", b"lower")]),
        layer_tar(&[("etc/over", b"upper-layer")]),
    ];
    let diff_ids: Vec<Digest> = tars.iter().map(Digest::sha256_of).collect();
    let chain = chain_ids(&diff_ids);
    let mut blobs = Vec::new();
    for (i, t) in tars.iter().enumerate() {
        let mut w = svc.content.writer().unwrap();
        w.write_all(t).unwrap();
        let d = w.commit(Some(&diff_ids[i]), None).unwrap();
        let parent = i.checked_sub(1).map(|p| chain[p].clone());
        svc.layers
            .ensure(
                &svc.store,
                &chain[i],
                &diff_ids[i],
                parent.as_ref(),
                svc.content.open_blob(&d).unwrap(),
            )
            .unwrap();
        blobs.push(d);
    }
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {"Cmd": ["sh"]}});
    let config_digest = svc
        .content
        .put(config.to_string().as_bytes(), None)
        .unwrap();
    let rec = ImageRecord {
        id: config_digest,
        repo_tags: vec![],
        repo_digests: vec![],
        manifest: None,
        chain,
        diff_ids,
        size: 0,
        created: None,
        added_at: 0,
        blobs,
        last_tag_time: None,
        parent: None,
        build_key: None,
    };
    let tag: berth_types::ImageRef = "test/img:1".parse().unwrap();
    let rec = svc.commit_image(rec, Some(&tag), None).unwrap();
    (svc, rec)
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[tokio::test]
async fn prepare_gives_an_overlay_mount_and_protects_its_layers() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the snapshot tests need root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (svc, img) = service_with_image(dir.path()).await;

    let (mounts, image_id) = svc.prepare("c1", "test/img:1").unwrap();
    assert_eq!(image_id, img.id);
    assert_eq!(mounts.len(), 1);
    let m = &mounts[0];
    assert_eq!(m.kind, "overlay");
    let lower = m.options[0].strip_prefix("lowerdir=").unwrap();
    assert_eq!(
        lower.split(':').count(),
        2,
        "both layers, top first: {lower}"
    );
    assert!(lower.starts_with(&svc.layers.diff_dir(&img.chain[1]).display().to_string()));
    assert!(matches!(
        svc.prepare("c1", "test/img:1"),
        Err(crate::ImagesError::AlreadyExists(_))
    ));
    assert!(svc.prepare("../x", "test/img:1").is_err());

    // Nothing is mounted by prepare; the caller mounts the spec.
    let target = dir.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    nix::mount::mount(
        Some(m.source.as_str()),
        &target,
        Some(m.kind.as_str()),
        nix::mount::MsFlags::empty(),
        Some(m.options.join(",").as_str()),
    )
    .unwrap();
    let guard = Mounted(target.clone());
    assert_eq!(std::fs::read(target.join("etc/base")).unwrap(), b"base");
    assert_eq!(
        std::fs::read(target.join("etc/over")).unwrap(),
        b"upper-layer"
    );
    std::fs::write(target.join("new-file"), vec![7u8; 1000]).unwrap();
    drop(guard);

    let (size, inodes) = svc.usage("c1").unwrap();
    assert_eq!((size, inodes), (1000, 1));
    assert_eq!(svc.mounts("c1").unwrap().0, mounts);

    // The image is in use: rmi refuses, rmi -f untags but keeps it and its layers.
    let err = svc.remove("test/img:1", false).unwrap_err().to_string();
    assert!(err.contains("must be forced"), "{err}");
    svc.remove(&img.id.to_string(), true).unwrap();
    assert!(svc.store.image(&img.id).unwrap().is_some());
    assert!(svc.layers.diff_dir(&img.chain[0]).is_dir());

    // Without the snapshot, the image and its layers go.
    svc.remove_snapshot("c1").unwrap();
    assert!(!dir.path().join("snapshots/c1").exists());
    assert!(svc.remove_snapshot("c1").is_err());
    let out = svc.remove(&img.id.to_string(), false).unwrap();
    assert!(out.iter().any(|d| d.deleted == img.id.to_string()));
    for c in &img.chain {
        assert!(!svc.layers.diff_dir(c).exists(), "layer {c} removed");
    }
}

#[tokio::test]
async fn a_snapshot_directory_left_without_its_record_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, img) = service_with_image(dir.path()).await;
    let id = img.id.to_string();
    svc.prepare("kept", &id).unwrap();
    svc.prepare("cut", &id).unwrap();
    // A remove cut by a kill between its transaction and the directory.
    svc.store.update(|tx| tx.delete_snapshot("cut")).unwrap();
    let cut = dir.path().join("snapshots/cut");
    assert!(cut.is_dir());
    // The caller's retry removes the directory, and says done.
    svc.remove_snapshot("cut").unwrap();
    assert!(!cut.exists());
    assert!(matches!(
        svc.remove_snapshot("cut"),
        Err(crate::ImagesError::NotFound(_))
    ));
    // Or the service's next start does (`ImageService::open` sweeps; a prepare cut before its
    // transaction leaves a directory too).
    std::fs::create_dir_all(cut.join("upper")).unwrap();
    assert_eq!(svc.sweep_snapshots().unwrap(), 1);
    assert!(!cut.exists(), "swept");
    assert!(
        dir.path().join("snapshots/kept").is_dir(),
        "a recorded one stays"
    );
    assert!(svc.snapshot("kept").is_ok());
    assert_eq!(svc.sweep_snapshots().unwrap(), 0);
}

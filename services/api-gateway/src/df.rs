//! `GET /system/df`: images, containers and volumes with their sizes, in Docker's shapes.

use berth_proto::{images::v1 as images, runtime::v1 as runtime, volumes::v1 as volumes};
use serde_json::{Value, json};

use crate::error::ApiError;

/// The object types `type=` may select.
pub const TYPES: [&str; 4] = ["container", "image", "volume", "build-cache"];

/// Which parts a request wants: all when `type` is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub containers: bool,
    pub images: bool,
    pub volumes: bool,
    pub build_cache: bool,
}

impl Wanted {
    pub fn from_types<'a>(types: impl Iterator<Item = &'a str>) -> Result<Wanted, ApiError> {
        let types: Vec<&str> = types.collect();
        if let Some(bad) = types.iter().find(|t| !TYPES.contains(t)) {
            return Err(ApiError::invalid(format!("unknown object type: {bad}")));
        }
        let all = types.is_empty();
        let has = |t: &str| all || types.contains(&t);
        Ok(Wanted {
            containers: has("container"),
            images: has("image"),
            volumes: has("volume"),
            build_cache: has("build-cache"),
        })
    }
}

/// An image as `/images/json` and `/system/df` show it.
pub(crate) fn image(i: &images::ImageSummary) -> Value {
    json!({
        "Id": i.id,
        "ParentId": i.parent_id,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Created": i.created,
        "Size": i.size,
        "SharedSize": i.shared_size,
        "Labels": i.labels,
        "Containers": i.containers,
    })
}

fn volume(v: &volumes::VolumeUsage) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": v.options,
        "Scope": v.scope,
        "UsageData": {"Size": v.size, "RefCount": v.ref_count},
    })
}

/// The response body; parts not wanted are absent (null), as moby leaves them.
pub fn compose(
    wanted: Wanted,
    imgs: Option<images::DiskUsageResponse>,
    ctrs: Option<runtime::DiskUsageResponse>,
    vols: Option<volumes::DiskUsageResponse>,
) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(i) = imgs.filter(|_| wanted.images) {
        out.insert("LayersSize".to_owned(), json!(i.layers_size));
        let users = |id: &str| -> i64 {
            ctrs.iter()
                .flat_map(|c| &c.containers)
                .filter(|c| c.container.as_ref().is_some_and(|c| c.image_id == id))
                .count() as i64
        };
        let images = i.images.iter().map(|img| {
            let mut v = image(img);
            if ctrs.is_some() {
                v["Containers"] = users(&img.id).into();
            }
            v
        });
        out.insert("Images".to_owned(), images.collect());
    }
    if let Some(c) = ctrs.filter(|_| wanted.containers) {
        out.insert(
            "Containers".to_owned(),
            json!(
                c.containers
                    .iter()
                    .map(crate::docker::container::summary)
                    .collect::<Vec<_>>()
            ),
        );
    }
    if let Some(v) = vols.filter(|_| wanted.volumes) {
        out.insert("Volumes".to_owned(), v.volumes.iter().map(volume).collect());
    }
    if wanted.build_cache {
        out.insert("BuildCache".to_owned(), json!([]));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_types() {
        let w = Wanted::from_types(["volume"].into_iter()).unwrap();
        assert!(w.volumes && !w.images && !w.containers);
        assert!(Wanted::from_types(["disk"].into_iter()).is_err());
        let all = Wanted::from_types(std::iter::empty()).unwrap();
        assert!(all.images && all.containers && all.volumes && all.build_cache);
    }

    #[test]
    fn containers_shape() {
        let v = compose(
            Wanted::from_types(["container"].into_iter()).unwrap(),
            None,
            Some(runtime::DiskUsageResponse {
                containers: vec![runtime::ContainerInfo {
                    container: Some(runtime::Container {
                        id: "c1".to_owned(),
                        name: "web".to_owned(),
                        spec: Some(runtime::ContainerSpec {
                            image: "busybox".to_owned(),
                            labels: [("k".to_owned(), "v".to_owned())].into_iter().collect(),
                            ..Default::default()
                        }),
                        image_id: "sha256:b0".to_owned(),
                        path: "sh".to_owned(),
                        args: vec!["-c".to_owned(), "sleep 1".to_owned()],
                        created: 1_700_000_000_000_000_000,
                        state: Some(runtime::ContainerState {
                            status: runtime::container_state::Status::Running as i32,
                            started_at: 1,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    size_rw: Some(524_288),
                    size_root_fs: Some(2_000_000),
                    ..Default::default()
                }],
            }),
            None,
        );
        let c = &v["Containers"][0];
        assert_eq!(c["Id"], "c1");
        assert_eq!(c["Names"], json!(["/web"]));
        assert_eq!(c["ImageID"], "sha256:b0");
        assert_eq!(c["Command"], "sh -c 'sleep 1'");
        assert_eq!(c["Created"], 1_700_000_000);
        assert_eq!(c["State"], "running");
        assert!(c["Status"].as_str().unwrap().starts_with("Up "));
        assert_eq!(
            (c["SizeRw"].as_i64(), c["SizeRootFs"].as_i64()),
            (Some(524_288), Some(2_000_000))
        );
        assert_eq!(c["Labels"], json!({"k": "v"}));
        assert!(v.get("Images").is_none() && v.get("Volumes").is_none());
    }

    #[test]
    fn images_count_their_containers() {
        let img = |id: &str| images::ImageSummary {
            id: id.to_owned(),
            containers: -1,
            ..Default::default()
        };
        let ctr = |image_id: &str| runtime::ContainerInfo {
            container: Some(runtime::Container {
                image_id: image_id.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = compose(
            Wanted::from_types(["image"].into_iter()).unwrap(),
            Some(images::DiskUsageResponse {
                layers_size: 0,
                images: vec![img("sha256:a"), img("sha256:b")],
            }),
            Some(runtime::DiskUsageResponse {
                containers: vec![ctr("sha256:a"), ctr("sha256:a")],
            }),
            None,
        );
        assert_eq!(v["Images"][0]["Containers"], 2);
        assert_eq!(v["Images"][1]["Containers"], 0);
        // Containers were fetched for the count only: not listed.
        assert!(v.get("Containers").is_none());
    }

    #[test]
    fn shapes() {
        let v = compose(
            Wanted::from_types(std::iter::empty()).unwrap(),
            Some(images::DiskUsageResponse {
                layers_size: 42,
                images: vec![],
            }),
            Some(runtime::DiskUsageResponse { containers: vec![] }),
            Some(volumes::DiskUsageResponse {
                volumes: vec![volumes::VolumeUsage {
                    name: "data".to_owned(),
                    size: 7,
                    ref_count: 1,
                    ..Default::default()
                }],
            }),
        );
        assert_eq!(v["LayersSize"], 42);
        assert_eq!(v["Images"], json!([]));
        assert_eq!(
            v["Volumes"][0]["UsageData"],
            json!({"Size": 7, "RefCount": 1})
        );
        assert_eq!(v["BuildCache"], json!([]));
    }
}

//! RUN containers left behind by an images service that died mid-build. Each RUN container
//! carries two labels: the service's data directory (which images service made it) and the
//! process's instance ID. On start, the service removes, through the runtime, the containers
//! of its directory made by another instance: their builds died with it.

use std::collections::HashMap;
use std::time::Duration;

use berth_errors::kind_of;
use berth_proto::runtime::v1::{self as rpb, runtime_client::RuntimeClient};
use berth_service::Channel;
use berth_types::ErrorKind;

/// Label: the data directory of the images service that created the RUN container.
pub(crate) const OWNER_LABEL: &str = "berth.build.owner";
/// Label: the instance (one per process start) that created it.
pub(crate) const INSTANCE_LABEL: &str = "berth.build.instance";

/// Who creates RUN containers: this images service, this time.
#[derive(Clone, Debug)]
pub(crate) struct Owner {
    pub(crate) dir: String,
    pub(crate) instance: String,
}

impl Owner {
    pub(crate) fn new(data_dir: &std::path::Path) -> Owner {
        Owner {
            dir: data_dir.display().to_string(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// The labels of a RUN container.
    pub(crate) fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (OWNER_LABEL.to_owned(), self.dir.clone()),
            (INSTANCE_LABEL.to_owned(), self.instance.clone()),
        ])
    }

    /// Whether a container with these labels is a RUN container of an earlier instance.
    fn is_orphan(&self, labels: &HashMap<String, String>) -> bool {
        labels.get(OWNER_LABEL) == Some(&self.dir)
            && labels
                .get(INSTANCE_LABEL)
                .is_some_and(|i| *i != self.instance)
    }
}

/// Removes the RUN containers of earlier instances, but those their builds kept (recorded in
/// `store`): once, as soon as the runtime answers.
pub(crate) fn spawn(
    runtime: Channel,
    owner: Owner,
    svc: std::sync::Arc<crate::service::ImageService>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = RuntimeClient::new(runtime);
        let mut wait = Duration::from_millis(100);
        loop {
            match reap(&mut client, &owner, &svc.store).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(removed = n, "removed RUN containers of interrupted builds");
                    }
                    return;
                }
                Err(s) if kind_of(&s) == ErrorKind::Unavailable => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(s) => {
                    tracing::warn!(error = %s, "could not remove the RUN containers of interrupted builds");
                    return;
                }
            }
        }
    })
}

async fn reap(
    client: &mut RuntimeClient<Channel>,
    owner: &Owner,
    store: &crate::store::Store,
) -> Result<usize, tonic::Status> {
    let list = client
        .list(rpb::ListRequest {
            all: true,
            filters: Some(rpb::ContainerFilters {
                labels: vec![rpb::LabelFilter {
                    key: OWNER_LABEL.to_owned(),
                    value: Some(owner.dir.clone()),
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    let containers: Vec<_> = list
        .containers
        .into_iter()
        .filter_map(|i| i.container)
        .collect();
    let existing = containers.iter().map(|c| c.id.clone()).collect();
    let kept = store
        .kept_run_containers(&existing)
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    let mut n = 0;
    for c in containers {
        if kept.contains(&c.id) {
            continue;
        }
        let labels = c
            .spec
            .as_ref()
            .map(|s| s.labels.clone())
            .unwrap_or_default();
        if !owner.is_orphan(&labels) {
            continue;
        }
        let req = rpb::RemoveRequest {
            id: c.id.clone(),
            force: true,
            volumes: true,
        };
        match client.remove(req).await {
            Ok(_) => n += 1,
            Err(s) if kind_of(&s) == ErrorKind::NotFound => {}
            Err(s) => return Err(s),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_containers_of_earlier_instances_of_this_service_are_orphans() {
        let now = Owner::new(std::path::Path::new("/var/lib/berth/images"));
        let before = Owner::new(std::path::Path::new("/var/lib/berth/images"));
        let elsewhere = Owner::new(std::path::Path::new("/other/images"));
        assert!(now.is_orphan(&before.labels()));
        assert!(!now.is_orphan(&now.labels()), "a running build's container");
        assert!(!now.is_orphan(&elsewhere.labels()), "another service's");
        assert!(!now.is_orphan(&HashMap::new()), "a user's container");
        let mut no_instance = before.labels();
        no_instance.remove(INSTANCE_LABEL);
        assert!(!now.is_orphan(&no_instance));
    }
}

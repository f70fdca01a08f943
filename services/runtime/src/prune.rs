//! docker container prune (moby `daemon/prune.go` `ContainerPrune`): every container that is
//! not running (nor paused, nor waiting for its restart) and that the filters select is
//! removed as `docker rm` would, its anonymous volumes kept; the bytes of the writable layers
//! are reported, and one `prune` event with them.

use std::sync::atomic::Ordering;

use berth_proto::runtime::v1 as pb;
use berth_types::{Actor, Event, EventType};

use crate::{
    container::{Container, Status, now_nanos},
    container_error::ContainerError,
    lifecycle::Containers,
};

/// Whether `c` is one prune removes.
fn prunable(c: &Container, f: &pb::PruneRequest) -> bool {
    let labels = &c.spec.labels;
    let matches = |l: &pb::LabelFilter| match &l.value {
        Some(v) => labels.get(&l.key) == Some(v),
        None => labels.contains_key(&l.key),
    };
    let stopped = matches!(
        c.state.status,
        Status::Created | Status::Exited | Status::Dead
    );
    stopped
        && f.until.is_none_or(|t| c.created <= t.saturating_mul(1_000_000_000))
        && f.labels.iter().all(matches)
        // moby's MatchKVList: left out only when every `label!` matches.
        && (f.labels_not.is_empty() || !f.labels_not.iter().all(matches))
}

/// Clears the prune flag when the prune ends, however it ends.
struct Pruning<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Pruning<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Containers {
    /// POST /containers/prune.
    pub(crate) async fn prune(
        &self,
        req: &pb::PruneRequest,
    ) -> Result<pb::PruneResponse, ContainerError> {
        if self.pruning.swap(true, Ordering::SeqCst) {
            return Err(ContainerError::conflict(
                "a prune operation is already running",
            ));
        }
        let _pruning = Pruning(&self.pruning);
        let mut out = pb::PruneResponse::default();
        for c in self.store.all()?.iter().filter(|c| prunable(c, req)) {
            let size = self.rw_size(c.id.clone()).await;
            let rm = pb::RemoveRequest {
                id: c.id.clone(),
                force: false,
                volumes: false,
            };
            if let Err(e) = self.remove(&rm).await {
                tracing::warn!(error = %e, id = c.id, "prune: removing a container");
                continue;
            }
            out.space_reclaimed += u64::try_from(size).unwrap_or(0);
            out.deleted.push(c.id.clone());
        }
        let mut actor = Actor::default();
        actor
            .attributes
            .insert("reclaimed".to_owned(), out.space_reclaimed.to_string());
        match "prune".parse() {
            Ok(a) => self
                .events
                .publish(&Event::new(EventType::Container, a, actor, now_nanos())),
            Err(e) => tracing::error!(error = %e, "bad event action"),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::tests::sample;

    fn label(key: &str, value: Option<&str>) -> pb::LabelFilter {
        pb::LabelFilter {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn only_stopped_containers_the_filters_select() {
        let mut c = sample('a', "x");
        c.created = 100 * 1_000_000_000;
        c.spec.labels.insert("keep".to_owned(), "yes".to_owned());
        let all = pb::PruneRequest::default();
        for (status, pruned) in [
            (Status::Created, true),
            (Status::Exited, true),
            (Status::Dead, true),
            (Status::Running, false),
            (Status::Paused, false),
            (Status::Restarting, false),
            (Status::Removing, false),
        ] {
            c.state.status = status;
            assert_eq!(prunable(&c, &all), pruned, "{status:?}");
        }
        c.state.status = Status::Exited;
        let f = |labels, labels_not, until| pb::PruneRequest {
            labels,
            labels_not,
            until,
        };
        assert!(prunable(&c, &f(vec![], vec![], Some(100))));
        assert!(!prunable(&c, &f(vec![], vec![], Some(99))));
        assert!(prunable(&c, &f(vec![label("keep", None)], vec![], None)));
        assert!(prunable(
            &c,
            &f(vec![label("keep", Some("yes"))], vec![], None)
        ));
        assert!(!prunable(
            &c,
            &f(vec![label("keep", Some("no"))], vec![], None)
        ));
        assert!(!prunable(&c, &f(vec![], vec![label("keep", None)], None)));
        assert!(prunable(&c, &f(vec![], vec![label("other", None)], None)));
        // `label!` leaves out only what matches all of them.
        assert!(prunable(
            &c,
            &f(
                vec![],
                vec![label("keep", None), label("other", None)],
                None
            )
        ));
    }
}

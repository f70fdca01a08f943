//! Where the domain's calls run. They touch the disk, so as a rule on the blocking pool; but
//! `docker volume create` and `rm` of a plain volume (a few directories and one commit) run on
//! the caller's thread when no other operation holds the lock: the two thread hops of the pool
//! were a good part of their latency, and there they never wait for another operation. A
//! removal that unmounts a filesystem of the volume's own may take long: it goes to the pool.

use std::sync::Arc;

use berth_proto::volumes::v1 as pb;

use crate::{VolumesError, info::Volumes};

impl Volumes {
    /// Runs `f` on the blocking pool.
    pub(crate) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Volumes) -> Result<T, VolumesError> + Send + 'static,
    ) -> Result<T, VolumesError> {
        let d = self.clone();
        tokio::task::spawn_blocking(move || f(&d))
            .await
            .map_err(|e| VolumesError::Store(anyhow::anyhow!("volumes task: {e}")))?
    }

    /// docker volume create: at once when the lock is free, else on the blocking pool.
    pub(crate) async fn create_quick(
        self: &Arc<Self>,
        req: pb::CreateRequest,
    ) -> Result<pb::Volume, VolumesError> {
        if let Some(_g) = self.try_lock() {
            return self.create_locked(req);
        }
        self.blocking(move |d| d.create(req)).await
    }

    /// docker volume rm: at once when quick and the lock is free, else on the blocking pool.
    pub(crate) async fn remove_quick(
        self: &Arc<Self>,
        name: String,
        force: bool,
    ) -> Result<(), VolumesError> {
        if self.removal_is_quick(&name)
            && let Some(_g) = self.try_lock()
        {
            return self.remove_locked(&name, force);
        }
        self.blocking(move |d| d.remove(&name, force)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn domain(dir: &std::path::Path) -> Arc<Volumes> {
        Arc::new(Volumes::new(
            Store::open(dir).unwrap(),
            dir.to_owned(),
            None,
        ))
    }

    #[tokio::test]
    async fn a_removed_untouched_volume_is_the_next_ones_directory() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let d = domain(dir.path());
        let create = |name: &str| pb::CreateRequest {
            name: name.to_owned(),
            ..Default::default()
        };
        let ino =
            |name: &str| std::fs::metadata(dir.path().join(name).join("_data")).map(|m| m.ino());
        d.create_quick(create("one")).await.unwrap();
        let first = ino("one").unwrap();
        d.remove_quick("one".to_owned(), false).await.unwrap();
        assert!(!dir.path().join("one").exists());
        d.create_quick(create("two")).await.unwrap();
        assert_eq!(ino("two").unwrap(), first, "the spare taken");
        // Written to: removed, not kept. Held open meanwhile, so that the file system cannot
        // give its inode number to the next directory and the comparison means something.
        std::fs::write(dir.path().join("two/_data/f"), "x").unwrap();
        let held = std::fs::File::open(dir.path().join("two/_data")).unwrap();
        d.remove_quick("two".to_owned(), false).await.unwrap();
        d.create_quick(create("three")).await.unwrap();
        assert_ne!(ino("three").unwrap(), first);
        drop(held);
        assert_eq!(
            std::fs::read_dir(dir.path().join("three/_data"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn a_create_and_rm_run_at_once_or_wait_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let d = domain(dir.path());
        let req = pb::CreateRequest {
            name: "quick".to_owned(),
            ..Default::default()
        };
        d.create_quick(req.clone()).await.unwrap();
        assert!(dir.path().join("quick/_data").is_dir());
        d.remove_quick("quick".to_owned(), false).await.unwrap();
        assert!(!dir.path().join("quick").exists());

        // Another operation holds the lock: the call waits for it on the pool, not in place.
        let (locked, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let holder = std::thread::spawn({
            let d = d.clone();
            move || {
                let _g = d.lock();
                locked.0.send(()).unwrap();
                release.1.recv().unwrap();
            }
        });
        locked.1.recv().unwrap();
        let waiting = tokio::spawn({
            let d = d.clone();
            async move { d.create_quick(req).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !dir.path().join("quick").exists(),
            "ran under another's lock"
        );
        release.0.send(()).unwrap();
        holder.join().unwrap();
        waiting.await.unwrap().unwrap();
        assert!(dir.path().join("quick/_data").is_dir());
        let e = d.remove_quick("nope".to_owned(), false).await.unwrap_err();
        assert!(e.to_string().contains("no such volume"), "{e}");
        d.remove_quick("nope".to_owned(), true).await.unwrap();
    }
}

//! A background task owned by a value: it stops when the value is dropped, so nothing a
//! service started outlives its run (tests serve several in one process).

/// The task; it is aborted when this is dropped.
#[derive(Debug)]
pub struct TaskGuard(tokio::task::JoinHandle<()>);

impl TaskGuard {
    /// Spawns `task`, owned by the returned guard.
    pub fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> TaskGuard {
        TaskGuard(tokio::spawn(task))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! The shim's domain: the container's main process and its execs, their status and stdio, and
//! the operations the call layer (`rpc`) exposes. No wire types here.

use std::{
    collections::HashMap,
    os::fd::OwnedFd,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI32, AtomicU64, Ordering},
    },
    time::Duration,
};

use nix::{
    sys::{signal::Signal, wait::WaitStatus},
    unistd::Pid,
};
use tokio::{io::unix::AsyncFd, sync::watch};

use crate::{
    config::{Config, Process, validate_process},
    error::{ShimError, StartError},
    exit::{self, ExitStatus},
    logfile::LogSink,
    process::{self, ParentIo, channel::ParentEnd},
    stdio::{self, Hub, StreamKind},
};
use berth_cgroup::Cgroup;

/// How long output may keep flowing after a process exited before its exit is recorded
/// anyway (a leaked descriptor in a process outside the container could hold it open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProcStatus {
    Created,
    Running,
    Stopped(ExitStatus),
}

type SharedFd = Arc<AsyncFd<OwnedFd>>;

/// A process of the container: the main one or an exec.
pub(crate) struct Proc {
    pid: AtomicI32,
    status: watch::Sender<ProcStatus>,
    hub: Arc<Hub>,
    stdin: Mutex<Option<SharedFd>>,
    pty: Mutex<Option<SharedFd>>,
    pending: Mutex<Option<ParentEnd>>,
    terminal: bool,
}

impl Proc {
    fn new(terminal: bool, keep_backlog: bool) -> Arc<Proc> {
        Arc::new(Proc {
            pid: AtomicI32::new(0),
            status: watch::Sender::new(ProcStatus::Created),
            hub: Hub::new(if terminal { 1 } else { 2 }, keep_backlog),
            stdin: Mutex::new(None),
            pty: Mutex::new(None),
            pending: Mutex::new(None),
            terminal,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst).max(0) as u32
    }

    pub(crate) fn status(&self) -> ProcStatus {
        self.status.borrow().clone()
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Resolves with the exit status once the process has stopped.
    pub(crate) async fn wait(&self) -> ExitStatus {
        let mut rx = self.status.subscribe();
        let st = rx
            .wait_for(|s| matches!(s, ProcStatus::Stopped(_)))
            .await
            .map(|s| s.clone());
        match st {
            Ok(ProcStatus::Stopped(e)) => e,
            _ => ExitStatus::failed(255),
        }
    }

    fn attach_io(&self, io: ParentIo, log: Option<Arc<Mutex<LogSink>>>) -> std::io::Result<()> {
        if let Some(pty) = io.pty {
            let fd = stdio::async_fd(pty)?;
            stdio::spawn_pump(fd.clone(), StreamKind::Stdout, self.hub.clone(), log);
            *lock(&self.stdin) = Some(fd.clone());
            *lock(&self.pty) = Some(fd);
            return Ok(());
        }
        for (fd, kind) in [
            (io.stdout, StreamKind::Stdout),
            (io.stderr, StreamKind::Stderr),
        ] {
            if let Some(fd) = fd {
                stdio::spawn_pump(stdio::async_fd(fd)?, kind, self.hub.clone(), log.clone());
            }
        }
        if let Some(w) = io.stdin {
            *lock(&self.stdin) = Some(stdio::async_fd(w)?);
        }
        Ok(())
    }

    pub(crate) async fn write_stdin(&self, data: &[u8]) -> Result<(), ShimError> {
        let fd = lock(&self.stdin)
            .clone()
            .ok_or_else(|| ShimError::Precondition("stdin is not open".to_owned()))?;
        stdio::write_all(&fd, data)
            .await
            .map_err(|e| ShimError::io(&PathBuf::from("stdin"), e))
    }

    /// A pipe is closed; a terminal gets EOT (^D), as closing its master would hang it up.
    pub(crate) async fn close_stdin(&self) -> Result<(), ShimError> {
        if self.terminal {
            return self.write_stdin(&[0x04]).await;
        }
        lock(&self.stdin).take();
        Ok(())
    }

    pub(crate) fn resize(&self, width: u16, height: u16) -> Result<(), ShimError> {
        let fd = lock(&self.pty)
            .clone()
            .ok_or_else(|| ShimError::Precondition("the process has no terminal".to_owned()))?;
        crate::sys::set_winsize(fd.get_ref(), width, height)
            .map_err(|e| ShimError::sys("TIOCSWINSZ", e))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct ExecEntry {
    pub(crate) spec: Process,
    pub(crate) proc: Arc<Proc>,
}

pub(crate) struct Shim {
    pub(crate) cfg: Config,
    pub(crate) bundle: PathBuf,
    cgroup: Cgroup,
    init: Arc<Proc>,
    execs: Mutex<HashMap<String, Arc<ExecEntry>>>,
    /// Exits reaped before their pid was known (an exec's process can exit before the shim has
    /// read its pid), with when they were reaped; at most a few entries.
    unclaimed: Mutex<HashMap<i32, (WaitStatus, std::time::Instant)>>,
    stop: watch::Sender<bool>,
    exec_seq: AtomicU64,
}

impl Shim {
    /// The shim around a container that `process::spawn_container` created. Must run inside
    /// the tokio runtime (the stdio is registered with its reactor).
    pub(crate) fn new(
        cfg: Config,
        bundle: PathBuf,
        cgroup: Cgroup,
        spawned: process::Spawned,
        log: Option<LogSink>,
    ) -> Result<Arc<Shim>, ShimError> {
        let init = Proc::new(cfg.process.terminal, false);
        init.pid.store(spawned.pid.as_raw(), Ordering::SeqCst);
        let log = log.map(|l| Arc::new(Mutex::new(l)));
        init.attach_io(spawned.io, log)
            .map_err(|e| ShimError::io(&bundle, e))?;
        if let Some(chan) = spawned.pending {
            *lock(&init.pending) = Some(chan);
        } else {
            init.status.send_replace(ProcStatus::Running);
        }
        Ok(Arc::new(Shim {
            cfg,
            bundle,
            cgroup,
            init,
            execs: Mutex::new(HashMap::new()),
            unclaimed: Mutex::new(HashMap::new()),
            stop: watch::Sender::new(false),
            exec_seq: AtomicU64::new(1),
        }))
    }

    pub(crate) fn init(&self) -> &Arc<Proc> {
        &self.init
    }

    /// The main process (empty id) or an exec.
    pub(crate) fn proc(&self, exec_id: &str) -> Result<Arc<Proc>, ShimError> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        Ok(self.exec(exec_id)?.proc.clone())
    }

    pub(crate) fn exec(&self, exec_id: &str) -> Result<Arc<ExecEntry>, ShimError> {
        lock(&self.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(format!("no such exec: {exec_id}")))
    }

    /// A child was reaped.
    pub(crate) fn on_exit(self: &Arc<Self>, pid: Pid, ws: WaitStatus) {
        let proc = if pid.as_raw() == self.init.pid.load(Ordering::SeqCst) {
            Some((self.init.clone(), true))
        } else {
            let execs = lock(&self.execs);
            live_with_pid(execs.values().map(|e| &e.proc), pid).map(|p| (p, false))
        };
        match proc {
            Some((p, main)) => {
                if matches!(p.status(), ProcStatus::Stopped(_)) {
                    return;
                }
                tokio::spawn(self.clone().record_exit(p, ws, main));
            }
            None => {
                let mut u = lock(&self.unclaimed);
                if u.len() >= 64 {
                    u.clear();
                }
                u.insert(pid.as_raw(), (ws, std::time::Instant::now()));
            }
        }
    }

    async fn record_exit(self: Arc<Self>, p: Arc<Proc>, ws: WaitStatus, main: bool) {
        let Some(mut st) = exit::from_wait(ws) else {
            return;
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, p.hub.closed()).await;
        if main {
            st.oom_killed = self.cgroup.oom_killed();
            if let Err(e) = exit::write(&self.bundle, &st) {
                eprintln!("berth-shim: writing exit.json: {e}");
            }
        }
        lock(&p.pending).take();
        p.status.send_replace(ProcStatus::Stopped(st));
    }

    /// Registers `pid` for `p` (spawned at `spawned`), picking up an exit reaped before. An
    /// exit reaped before the spawn is another process's that had the same pid (pids are
    /// reused), not this one's.
    fn claim(self: &Arc<Self>, p: &Arc<Proc>, pid: Pid, main: bool, spawned: std::time::Instant) {
        p.pid.store(pid.as_raw(), Ordering::SeqCst);
        let reaped = lock(&self.unclaimed).remove(&pid.as_raw());
        if let Some((ws, at)) = reaped
            && at >= spawned
        {
            tokio::spawn(self.clone().record_exit(p.clone(), ws, main));
        }
    }

    /// Releases a container held by wait_for_start.
    pub(crate) fn start(self: &Arc<Self>) -> Result<(), StartError> {
        let Some(chan) = lock(&self.init.pending).take() else {
            return Ok(());
        };
        match process::release(chan) {
            Ok(()) => {
                self.init.status.send_replace(ProcStatus::Running);
                Ok(())
            }
            Err(e) => {
                let e = StartError::from(e);
                crate::start::write_start_error(&self.bundle, &e);
                Err(e)
            }
        }
    }

    pub(crate) fn kill(&self, exec_id: &str, signal: i32, all: bool) -> Result<(), ShimError> {
        let sig = Signal::try_from(signal)
            .map_err(|_| ShimError::InvalidArgument(format!("invalid signal {signal}")))?;
        let p = self.proc(exec_id)?;
        if matches!(p.status(), ProcStatus::Stopped(_)) || p.pid() == 0 {
            return Err(ShimError::Precondition(
                "the process is not running".to_owned(),
            ));
        }
        let mut targets = vec![Pid::from_raw(p.pid() as i32)];
        if all && exec_id.is_empty() {
            targets.extend(self.cgroup.procs());
        }
        for pid in targets {
            match nix::sys::signal::kill(pid, sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(ShimError::sys(format!("kill {pid} {sig}"), e)),
            }
        }
        Ok(())
    }

    pub(crate) fn exec_create(&self, exec_id: &str, spec: Process) -> Result<String, ShimError> {
        validate_process(&spec).map_err(ShimError::InvalidArgument)?;
        if self.init.status() != ProcStatus::Running {
            return Err(ShimError::Precondition(
                "the container is not running".to_owned(),
            ));
        }
        let id = if exec_id.is_empty() {
            format!("exec-{}", self.exec_seq.fetch_add(1, Ordering::SeqCst))
        } else {
            exec_id.to_owned()
        };
        let mut execs = lock(&self.execs);
        if execs.contains_key(&id) {
            return Err(ShimError::Precondition(format!("exec {id} already exists")));
        }
        let proc = Proc::new(spec.terminal, true);
        execs.insert(id.clone(), Arc::new(ExecEntry { spec, proc }));
        Ok(id)
    }

    /// Starts an exec. A process that could not be started is stopped with Docker's code.
    pub(crate) fn exec_start(
        self: &Arc<Self>,
        exec_id: &str,
    ) -> Result<Result<u32, StartError>, ShimError> {
        let entry = self.exec(exec_id)?;
        if entry.proc.status() != ProcStatus::Created {
            return Err(ShimError::Precondition(format!(
                "exec {exec_id} was already started"
            )));
        }
        if self.init.status() != ProcStatus::Running {
            return Err(ShimError::Precondition(
                "the container is not running".to_owned(),
            ));
        }
        let init = Pid::from_raw(self.init.pid() as i32);
        let spawned_at = std::time::Instant::now();
        let spawned = match process::spawn_exec(init, &entry.spec, &self.cfg, &self.cgroup) {
            Ok(s) => s,
            Err(e) => {
                let e = StartError::from(e);
                entry.proc.hub.close_all();
                entry
                    .proc
                    .status
                    .send_replace(ProcStatus::Stopped(ExitStatus::failed(
                        e.kind.exec_exit_code(),
                    )));
                return Ok(Err(e));
            }
        };
        let pid = spawned.pid;
        entry
            .proc
            .attach_io(spawned.io, None)
            .map_err(|e| ShimError::io(&self.bundle, e))?;
        entry.proc.status.send_replace(ProcStatus::Running);
        self.claim(&entry.proc, pid, false, spawned_at);
        Ok(Ok(pid.as_raw() as u32))
    }

    /// Cleans up once the main process has stopped, then stops the shim. A container still
    /// held by wait_for_start is killed first.
    pub(crate) async fn delete(&self) -> Result<ExitStatus, ShimError> {
        match self.init.status() {
            ProcStatus::Running => {
                return Err(ShimError::Precondition(
                    "the container is running: kill it before deleting".to_owned(),
                ));
            }
            ProcStatus::Created => {
                let _ =
                    nix::sys::signal::kill(Pid::from_raw(self.init.pid() as i32), Signal::SIGKILL);
            }
            ProcStatus::Stopped(_) => {}
        }
        let st = self.init.wait().await;
        self.remove_cgroup().await?;
        crate::daemon::remove_files(&self.cfg, &self.bundle);
        self.stop.send_replace(true);
        Ok(st)
    }

    /// Removes the cgroup. What outlives the main process in it (a daemon of a container
    /// that shares the host's pid namespace) is killed first, as containerd's shim kills all
    /// on the exit of such a container: a stopped container runs nothing.
    async fn remove_cgroup(&self) -> Result<(), ShimError> {
        let mut last = Ok(());
        for _ in 0..100 {
            let left = self.cgroup.procs();
            for pid in &left {
                let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
            }
            // A frozen cgroup's processes die only once thawed.
            if !left.is_empty() && self.cgroup.frozen() {
                let _ = self.cgroup.set_frozen(false);
            }
            last = self.cgroup.remove();
            if last.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(last?)
    }

    /// Stops the shim without cleaning up; refused while the main process runs.
    pub(crate) fn shutdown(&self) -> Result<(), ShimError> {
        if self.init.status() == ProcStatus::Running {
            return Err(ShimError::Precondition(
                "the container is running".to_owned(),
            ));
        }
        self.stop.send_replace(true);
        Ok(())
    }

    /// Resolves when Delete or Shutdown asked the shim to stop.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// The process not yet stopped that has `pid`. Execs are kept after they exit (for their
/// state and exit code) and the host reuses pids: an exited exec with the same pid as a new
/// one must not take the new one's exit, which would be lost (a health probe then runs into
/// its timeout and fails).
fn live_with_pid<'a>(procs: impl Iterator<Item = &'a Arc<Proc>>, pid: Pid) -> Option<Arc<Proc>> {
    procs
        .filter(|p| p.pid.load(Ordering::SeqCst) == pid.as_raw())
        .find(|p| !matches!(p.status(), ProcStatus::Stopped(_)))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_goes_to_the_live_process_of_a_reused_pid() {
        let old = Proc::new(false, true);
        old.pid.store(42, Ordering::SeqCst);
        old.status
            .send_replace(ProcStatus::Stopped(ExitStatus::failed(0)));
        let new = Proc::new(false, true);
        new.pid.store(42, Ordering::SeqCst);
        new.status.send_replace(ProcStatus::Running);
        let other = Proc::new(false, true);
        other.pid.store(7, Ordering::SeqCst);
        for order in [[&old, &new, &other], [&new, &old, &other]] {
            let found = live_with_pid(order.into_iter(), Pid::from_raw(42)).unwrap();
            assert!(Arc::ptr_eq(&found, &new));
        }
        assert!(live_with_pid([&old].into_iter(), Pid::from_raw(42)).is_none());
    }
}

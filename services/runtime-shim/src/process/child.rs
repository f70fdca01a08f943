//! What runs in the new process, between clone/fork and execve: namespaces, the filesystem,
//! the terminal, user (resolved in the container's root), capabilities, the seccomp filter,
//! then exec (or the tiny init). Failures travel back to the shim as a [`StartError`] over the channel; nothing
//! here returns to the shim's code.

use std::{
    convert::Infallible,
    ffi::CString,
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
};

use nix::{
    fcntl::OFlag,
    pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt},
    sched::{CloneFlags, setns, unshare},
    sys::stat::Mode,
    unistd::{Gid, Uid, chdir, execve, setgid, setgroups, setsid, setuid},
};

use super::channel::ChildEnd;
use crate::{
    capabilities,
    config::{Config, ConsoleSize, Process, Rlimit, Seccomp},
    error::{StartError, StartErrorKind},
    pathutil, rlimits, rootfs, sys, user,
};

/// The child's end of the stdio: pipes (or /dev/null for stdin) made by the shim, or a
/// terminal that the child opens inside the container's own devpts.
pub(crate) enum ChildIo {
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Terminal(Option<ConsoleSize>),
}

/// What the process needs beyond its spec: the container-wide security settings.
pub(crate) struct ExecOpts<'a> {
    pub(crate) capabilities: Option<&'a [String]>,
    pub(crate) no_new_privileges: bool,
    /// The compiled filter, loaded before exec (see [`load_seccomp`]); None: unconfined.
    pub(crate) seccomp: Option<&'a Seccomp>,
    pub(crate) rlimits: &'a [Rlimit],
    pub(crate) init: bool,
    /// The container's main process: a missing working directory is created (Docker creates
    /// WorkingDir); an exec's must exist (runc refuses to chdir otherwise).
    pub(crate) create_cwd: bool,
}

fn fail(what: impl std::fmt::Display, e: impl crate::error::GoText) -> StartError {
    StartError::other(format!("{what}: {}", e.go_text()))
}

/// Reports `result`'s error, if any, and gives the exit code of the child.
pub(crate) fn finish(chan: &ChildEnd, result: Result<Infallible, StartError>) -> isize {
    match result {
        Ok(never) => match never {},
        Err(e) => {
            chan.fail(&e);
            e.kind.exit_code() as isize
        }
    }
}

/// The container's first process: cloned into new pid/mount/uts/ipc(/net) namespaces.
pub(crate) fn container_main(
    cfg: &Config,
    rootfs_dir: &Path,
    chan: &ChildEnd,
    io: &ChildIo,
    netns: Option<&OwnedFd>,
) -> Result<Infallible, StartError> {
    chan.wait_continue()?;
    // Read in the host's cgroup namespace: in a new one, mountinfo shows the host's cgroup
    // mounts relative to the new root.
    let cgroup_view = crate::cgroupfs::view(cfg)?;
    // Now in the container's cgroup: a new cgroup namespace is rooted there.
    if cfg.namespaces.cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| fail("unshare cgroup namespace", e))?;
    }
    if let Some(fd) = netns {
        setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| fail("joining the netns", e))?;
    }
    if cfg.namespaces.uts {
        nix::unistd::sethostname(cfg.effective_hostname()).map_err(|e| fail("sethostname", e))?;
        if !cfg.domainname.is_empty() {
            sys::setdomainname(&cfg.domainname).map_err(|e| fail("setdomainname", e))?;
        }
    }
    rootfs::prepare(cfg, rootfs_dir, &cgroup_view)?;
    let tty = match io {
        ChildIo::Terminal(size) => {
            let t = open_pty(chan, *size)?;
            rootfs::bind_console(&t.1)?;
            Some(t.0)
        }
        ChildIo::Pipes { .. } => None,
    };
    rootfs::finish(cfg)?;
    let opts = ExecOpts {
        capabilities: cfg.capabilities.as_deref(),
        no_new_privileges: cfg.no_new_privileges,
        seccomp: cfg.seccomp.as_ref(),
        rlimits: &cfg.rlimits,
        init: cfg.init,
        create_cwd: true,
    };
    exec_process(&cfg.process, chan, io, tty, &opts)
}

/// An exec's process: already in the container's namespaces (the intermediate process did
/// setns and cloned it with CLONE_PARENT, so it is the shim's child).
pub(crate) fn exec_main(
    spec: &Process,
    chan: &ChildEnd,
    io: &ChildIo,
    opts: &ExecOpts<'_>,
) -> Result<Infallible, StartError> {
    let tty = match io {
        ChildIo::Terminal(size) => Some(open_pty(chan, *size)?.0),
        ChildIo::Pipes { .. } => None,
    };
    exec_process(spec, chan, io, tty, opts)
}

/// Opens a pty in the container's devpts (so it is /dev/pts/N inside), hands the master to
/// the shim, and returns the slave and its path.
fn open_pty(chan: &ChildEnd, size: Option<ConsoleSize>) -> Result<(OwnedFd, String), StartError> {
    let master: PtyMaster = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| fail("opening /dev/ptmx", e))?;
    grantpt(&master).map_err(|e| fail("grantpt", e))?;
    unlockpt(&master).map_err(|e| fail("unlockpt", e))?;
    let name = ptsname_r(&master).map_err(|e| fail("ptsname", e))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(format_args!("opening {name}"), e))?;
    if let Some(s) = size {
        sys::set_winsize(&slave, s.width, s.height).map_err(|e| fail("TIOCSWINSZ", e))?;
    }
    chan.send_pty(master.as_fd())
        .map_err(|e| fail("sending the pty to the shim", e))?;
    Ok((slave, name))
}

fn exec_process(
    spec: &Process,
    chan: &ChildEnd,
    io: &ChildIo,
    tty: Option<OwnedFd>,
    opts: &ExecOpts<'_>,
) -> Result<Infallible, StartError> {
    rlimits::apply(opts.rlimits)?;
    // In the container's root (after pivot_root, or setns for an exec), still privileged:
    // its /etc/passwd and /etc/group name the user and its home.
    let who = user::for_process(&spec.user)?;
    let env = user::with_home(&spec.env, &who.home);
    let cwd = PathBuf::from(&spec.cwd);
    if !cwd.exists() && !opts.create_cwd {
        // Docker reports it with 127, as it does every "no such file or directory".
        return Err(StartError {
            kind: StartErrorKind::NotFound,
            message: format!(
                "chdir to cwd (\"{}\") set in config.json failed: no such file or directory",
                spec.cwd
            ),
        });
    }
    if !cwd.exists() {
        std::fs::create_dir_all(&cwd)
            .map_err(|e| fail(format_args!("creating cwd {}", spec.cwd), e))?;
    }
    if opts.init {
        // PID 1 shows as `berth-init -- <command>`, not as the shim's host command line
        // (which names host paths).
        let mut shown = vec!["berth-init", "--"];
        shown.extend(spec.args.iter().map(String::as_str));
        // Best effort: a container is not refused for its init's name.
        let _ = sys::set_cmdline(&shown);
    }
    let keep = capabilities::wanted(opts.capabilities);
    capabilities::limit_bounding(&keep)?;
    if !opts.no_new_privileges {
        // Without no_new_privs, loading a filter takes CAP_SYS_ADMIN: now, before the user
        // and capabilities change (runc's order). The rest of the setup runs under it.
        load_seccomp(opts.seccomp)?;
    }
    let groups: Vec<Gid> = who.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(|e| fail("setgroups", e))?;
    setgid(Gid::from_raw(who.gid)).map_err(|e| fail(format_args!("setgid {}", who.gid), e))?;
    setuid(Uid::from_raw(who.uid)).map_err(|e| fail(format_args!("setuid {}", who.uid), e))?;
    capabilities::apply(&keep, who.uid)?;
    if opts.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| fail("no_new_privs", e))?;
    }
    chdir(&cwd).map_err(|e| fail(format_args!("chdir {}", spec.cwd), e))?;
    let path = pathutil::find_executable(&spec.args[0], &env, &cwd)?;

    match (io, tty) {
        (_, Some(slave)) => {
            setsid().map_err(|e| fail("setsid", e))?;
            sys::set_controlling_tty(&slave).map_err(|e| fail("TIOCSCTTY", e))?;
            dup_stdio(&slave, &slave, &slave)?;
        }
        (
            ChildIo::Pipes {
                stdin,
                stdout,
                stderr,
            },
            None,
        ) => dup_stdio(stdin, stdout, stderr)?,
        (ChildIo::Terminal(_), None) => unreachable!("a terminal process always has a pty"),
    }
    sys::cloexec_fds_from(3);

    let c = |s: &str| CString::new(s).map_err(|_| StartError::other("NUL in args or env"));
    let args: Vec<CString> = spec.args.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let env: Vec<CString> = env.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let path_c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| StartError::other("NUL in path"))?;

    chan.ready().map_err(|e| fail("reporting ready", e))?;
    chan.wait_exec()?;
    sys::reset_signals();
    if opts.no_new_privileges {
        // As late as possible (runc's order), so that the shim's own steps are not filtered.
        load_seccomp(opts.seccomp)?;
    }
    if opts.init {
        return super::init::run(&path_c, &args, &env, chan);
    }
    Err(exec_error(
        &spec.args[0],
        execve(&path_c, &args, &env).unwrap_err(),
    ))
}

/// Installs the container's seccomp filter, if it has one.
fn load_seccomp(filter: Option<&Seccomp>) -> Result<(), StartError> {
    match filter {
        Some(s) => sys::seccomp_set_filter(&s.filter, s.flags)
            .map_err(|e| fail("error loading seccomp filter into kernel", e)),
        None => Ok(()),
    }
}

pub(crate) fn exec_error(arg0: &str, e: nix::Error) -> StartError {
    StartError {
        kind: crate::error::exec_errno_kind(e),
        message: format!("exec: \"{arg0}\": {}", e.desc().to_lowercase()),
    }
}

fn dup_stdio(i: &OwnedFd, o: &OwnedFd, e: &OwnedFd) -> Result<(), StartError> {
    nix::unistd::dup2_stdin(i).map_err(|err| fail("dup2 stdin", err))?;
    nix::unistd::dup2_stdout(o).map_err(|err| fail("dup2 stdout", err))?;
    nix::unistd::dup2_stderr(e).map_err(|err| fail("dup2 stderr", err))?;
    Ok(())
}

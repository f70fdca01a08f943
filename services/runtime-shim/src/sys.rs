//! The shim's only `unsafe`: fork/clone, a few ioctls and calls nix does not wrap safely.
//! Every caller of fork/clone is single-threaded: `start` runs before any runtime exists and
//! the shim's tokio runtime is current-thread with no blocking pool in use (see `daemon.rs`),
//! so the child may allocate and run ordinary Rust until it execs or exits.

use std::os::fd::{AsFd, AsRawFd};

use nix::{
    libc,
    sched::CloneFlags,
    sys::signal::{SigHandler, SigSet, Signal},
    unistd::{ForkResult, Pid},
};

/// Stack for a cloned child. Only the pages it touches are ever backed, so a generous size
/// costs nothing.
const CLONE_STACK: usize = 8 << 20;

/// fork(2).
pub(crate) fn fork() -> nix::Result<ForkResult> {
    // SAFETY: callers are single-threaded (module doc), so no lock can be held by another
    // thread across the fork; the child runs ordinary Rust and ends in exec or `exit_now`.
    unsafe { nix::unistd::fork() }
}

/// clone(2) with `flags` and SIGCHLD as the exit signal; the child runs `child` and exits with
/// its return value. Unlike fork, new namespaces (pid included) apply to the child itself.
pub(crate) fn clone(child: Box<dyn FnMut() -> isize + '_>, flags: CloneFlags) -> nix::Result<Pid> {
    let mut stack = vec![0u8; CLONE_STACK];
    // SAFETY: without CLONE_VM the child gets its own copy of the address space, stack
    // included; the parent is single-threaded (module doc); 8 MiB is the default thread stack
    // the child's code is written for.
    unsafe {
        nix::sched::clone(
            child,
            &mut stack,
            flags,
            Some(Signal::SIGCHLD as libc::c_int),
        )
    }
}

/// _exit(2): leaves without running atexit handlers or destructors, as a forked child must.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// setdomainname(2) (nix has no wrapper).
pub(crate) fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    nix::errno::Errno::result(rc).map(drop)
}

nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// Makes the terminal `fd` the calling session leader's controlling terminal (TIOCSCTTY).
pub(crate) fn set_controlling_tty(fd: impl AsFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal); the fd is open.
    unsafe { tiocsctty(fd.as_fd().as_raw_fd(), 0) }.map(drop)
}

/// Sets a pty's window size (TIOCSWINSZ).
pub(crate) fn set_winsize(fd: impl AsFd, width: u16, height: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize`, which lives for the call.
    unsafe { tiocswinsz(fd.as_fd().as_raw_fd(), &ws) }.map(drop)
}

/// Restores every signal's default disposition and unblocks all signals, so the container
/// does not inherit the shim's (Rust ignores SIGPIPE; tokio handles SIGCHLD).
pub(crate) fn reset_signals() {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL cannot run any handler code.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
    let _ = SigSet::all().thread_unblock();
}

/// Takes ownership of a descriptor that SCM_RIGHTS just installed in this process.
pub(crate) fn own_received_fd(raw: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel installed `raw` for us in recvmsg; nothing else owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) }
}

/// Closes every descriptor from `first` up (close_range(2)). Only for a process that will
/// never drop the owners of those descriptors (the container's init loop).
pub(crate) fn close_fds_from(first: u32) {
    // SAFETY: close_range only closes descriptors; callers never use them afterwards.
    unsafe { libc::close_range(first, u32::MAX, 0) };
}

/// Marks every descriptor from `first` up close-on-exec, so nothing of the shim's leaks into
/// the container's process.
pub(crate) fn cloexec_fds_from(first: u32) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors.
    unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
}

/// Registers `fd` with the tokio reactor.
pub(crate) fn register_fd(
    fd: std::os::fd::OwnedFd,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an OwnedFd is a valid open descriptor that stays open, and always returns the
    // same raw descriptor, until it is dropped, which only the AsyncFd can do.
    Ok(unsafe { tokio::io::unix::AsyncFd::register(fd) }?)
}

/// Replaces what /proc/self/cmdline and comm show, writing over the process's own argument
/// area through /proc/self/mem (what setproctitle does; truncated to the area's length). The
/// `--init` PID 1 is a fork of the shim: without this, every process in the container could
/// read the shim's host-side command line (the bundle path).
pub(crate) fn set_cmdline(args: &[&str]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let (_, rest) = stat
        .rsplit_once(") ")
        .ok_or_else(|| std::io::Error::other("bad /proc/self/stat"))?;
    // Fields after the command, numbered from 3 as in proc(5): arg_start is 48, arg_end 49.
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let (start, end) = (
        f.get(45).copied().unwrap_or(0),
        f.get(46).copied().unwrap_or(0),
    );
    if start == 0 || end <= start {
        return Err(std::io::Error::other("no argument area"));
    }
    let mut buf = vec![0u8; (end - start) as usize];
    let mut at = 0;
    for a in args {
        let room = buf.len().saturating_sub(at + 1);
        let n = a.len().min(room);
        buf[at..at + n].copy_from_slice(&a.as_bytes()[..n]);
        at += n + 1;
        if at >= buf.len() {
            break;
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")?
        .write_all_at(&buf, start)?;
    if let Some(name) = args.first()
        && let Ok(name) = std::ffi::CString::new(*name)
    {
        nix::sys::prctl::set_name(&name)?;
    }
    Ok(())
}

/// Installs `filter` for the calling thread and the processes it execs (seccomp(2)
/// `SECCOMP_SET_MODE_FILTER` with `flags`). Needs no_new_privs or CAP_SYS_ADMIN.
pub(crate) fn seccomp_set_filter(filter: &[berth_bundle::BpfInsn], flags: u32) -> nix::Result<()> {
    let insns: Vec<libc::sock_filter> = filter
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let prog = libc::sock_fprog {
        len: u16::try_from(insns.len()).map_err(|_| nix::errno::Errno::EINVAL)?,
        filter: insns.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `insns`, both alive for the call; the kernel copies the
    // program and keeps no pointer to it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &raw const prog,
        )
    };
    nix::errno::Errno::result(rc).map(drop)
}

/// `struct mount_attr` of mount_setattr(2) (its first version, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` (linux/mount.h).
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Makes the mount at `path` and every mount below it read-only: mount_setattr(2) with
/// `AT_RECURSIVE` (Linux 5.12; ENOSYS before).
pub(crate) fn make_recursively_read_only(path: &std::path::Path) -> nix::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| nix::errno::Errno::EINVAL)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is a NUL-terminated string and `attr` a `mount_attr` of the size
    // passed, both alive for the call; the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    nix::errno::Errno::result(rc).map(drop)
}

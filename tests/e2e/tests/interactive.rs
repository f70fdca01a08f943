//! Interactive and per-container features through the real docker CLI: piped stdin with
//! half-close, `-it` on a real pseudo-terminal (TERM, window size, resize, exit codes), detach
//! keys and `docker attach`, `docker exec` in all its forms (with exec inspect and events),
//! `docker top`, `-u`, `--init`, hostname/PID 1/rootfs/network namespaces, stop signals and
//! timeouts, and run options and image config defaults.

use std::{
    io::{Read, Write},
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::{fs::OpenOptionsExt, process::CommandExt},
    },
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Instant,
};

use berth_testutil::{
    BusyboxEngine, Engine, eventually, eventually_explained,
    images::{busybox_entries, layer_tar, random_bytes, sha256_digest},
    patience, unix_now,
};
use nix::{
    fcntl::OFlag,
    pty::{grantpt, posix_openpt, ptsname_r, unlockpt},
    sys::{
        signal::{Signal, kill},
        termios::{LocalFlags, tcgetattr},
    },
    unistd::Pid,
};

/// The container fixture, with this file's own helpers.
struct Setup(BusyboxEngine);

impl std::ops::Deref for Setup {
    type Target = BusyboxEngine;

    fn deref(&self) -> &BusyboxEngine {
        &self.0
    }
}

impl Setup {
    fn new() -> Setup {
        Setup(BusyboxEngine::new())
    }

    /// Runs docker with `input` written to its stdin through a pipe that is then closed;
    /// (exit code, stdout, stderr). Fails the test if docker does not exit in time.
    fn with_stdin(&self, args: &[&str], input: &[u8]) -> (i32, String, String) {
        let mut cmd = self.engine.docker_cmd();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Reaped(cmd.spawn().expect("spawn docker"));
        let mut stdin = child.0.stdin.take().expect("stdin");
        let input = input.to_vec();
        // Docker may exit without reading (no -i): a broken pipe is not an error here.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let readers = [
            child
                .0
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
            child
                .0
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn Read + Send>),
        ]
        .map(|r| {
            let mut r = r.expect("a pipe");
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        });
        let status = eventually(&format!("docker {args:?} to exit"), || {
            child.0.try_wait().expect("try_wait")
        });
        writer.join().expect("stdin writer");
        let [o, e] = readers.map(|r| r.join().expect("output reader"));
        (status.code().unwrap_or(-1), o, e)
    }

    /// The attributes of the `action` events of container `name` since `since`, once one of
    /// them satisfies `done`.
    fn events_until(
        &self,
        since: u64,
        name: &str,
        action: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        eventually(&format!("the {action} events of {name}"), || {
            let found: Vec<_> = self
                .container_events(since, name)
                .into_iter()
                .filter(|(a, _)| a == action)
                .map(|(_, attrs)| attrs)
                .collect();
            done(&found).then_some(found)
        })
    }

    /// The signals of the `kill` events of container `name` since `since`, once there are
    /// `n` of them.
    fn kill_signals(&self, since: u64, name: &str, n: usize) -> Vec<String> {
        self.events_until(since, name, "kill", |k| k.len() >= n)
            .iter()
            .map(|attrs| attrs["signal"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until the logs of `name` contain `what`.
    fn wait_for_log(&self, name: &str, what: &str) {
        eventually_explained(&format!("{what:?} in the logs of {name}"), || {
            let (_, o, e) = self.status(&["logs", name]);
            if o.contains(what) {
                Ok(())
            } else {
                Err(format!("{o}{e}"))
            }
        });
    }
}

/// A child process killed (and reaped) if the test ends before it exits.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A pseudo-terminal driving the docker CLI
// ---------------------------------------------------------------------------------------------

/// The docker CLI on a pseudo-terminal that is its controlling terminal (a session of its
/// own, as under a terminal emulator). The master side is read by a thread.
struct Pty {
    what: String,
    master: std::fs::File,
    child: Reaped,
    rx: mpsc::Receiver<Vec<u8>>,
    /// Output not consumed by `expect` yet.
    pending: Vec<u8>,
    /// Everything the terminal showed, for failure messages.
    transcript: Vec<u8>,
}

impl Pty {
    /// Starts docker `args` on a new terminal of `rows` x `cols`.
    fn docker(engine: &Engine, args: &[&str], rows: u16, cols: u16) -> Pty {
        let master =
            posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let slave_path = ptsname_r(&master).expect("ptsname");
        let master = std::fs::File::from(OwnedFd::from(master));
        set_winsize(&master, rows, cols);
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(&slave_path)
            .unwrap_or_else(|e| panic!("open {slave_path}: {e}"));
        let mut cmd = engine.docker_cmd();
        // The engine, not the client's environment, gives the container its TERM.
        cmd.args(args)
            .env("TERM", "dumb")
            .stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave);
        let child = Reaped(spawn_in_session(&mut cmd));
        // The parent's copies of the slave go with the Command.
        drop(cmd);
        let mut reader = master.try_clone().expect("dup master");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // EIO once no process has the slave open any more.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            what: format!("docker {}", args.join(" ")),
            master,
            child,
            rx,
            pending: Vec::new(),
            transcript: Vec::new(),
        }
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.transcript).into_owned()
    }

    fn take(&mut self, chunk: Vec<u8>) {
        self.transcript.extend_from_slice(&chunk);
        self.pending.extend(chunk);
    }

    /// Waits until the terminal shows `text`; consumes the output up to its end.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + patience();
        loop {
            if let Some(i) = self
                .pending
                .windows(text.len())
                .position(|w| w == text.as_bytes())
            {
                self.pending.drain(..i + text.len());
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.take(chunk),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "timed out waiting for {text:?} from {}; the terminal showed:\n{:?}",
                    self.what,
                    self.shown()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "the terminal of {} closed ({:?}) before {text:?}; it showed:\n{:?}",
                    self.what,
                    self.child.0.try_wait(),
                    self.shown()
                ),
            }
        }
    }

    /// Types `s`.
    fn send(&mut self, s: &str) {
        self.master
            .write_all(s.as_bytes())
            .expect("write to the pty");
    }

    /// Waits until docker has put the terminal in raw mode (it reads keys one by one: a
    /// ctrl-q typed before would be eaten by the line discipline).
    fn wait_raw(&self) {
        eventually("the terminal in raw mode", || {
            let t = tcgetattr(self.master.as_fd()).expect("tcgetattr");
            (!t.local_flags.contains(LocalFlags::ICANON)).then_some(())
        });
    }

    /// Resizes the terminal and tells docker, as a terminal emulator does.
    fn resize(&self, rows: u16, cols: u16) {
        set_winsize(&self.master, rows, cols);
        let pid = Pid::from_raw(self.child.0.id() as i32);
        kill(pid, Signal::SIGWINCH).expect("SIGWINCH");
    }

    /// Waits for docker to exit; its exit code.
    fn wait(&mut self) -> i32 {
        let what = format!("{} to exit", self.what);
        let status = eventually_explained(&what, || {
            while let Ok(chunk) = self.rx.try_recv() {
                self.take(chunk);
            }
            match self.child.0.try_wait().expect("try_wait") {
                Some(s) => Ok(s),
                None => Err(format!("the terminal showed:\n{:?}", self.shown())),
            }
        });
        status
            .code()
            .unwrap_or_else(|| panic!("{} was killed: {status}", self.what))
    }
}

/// Spawns `cmd` as the leader of a new session whose controlling terminal is its stdin.
#[allow(unsafe_code)]
fn spawn_in_session(cmd: &mut Command) -> Child {
    // SAFETY: between fork and exec the closure only makes two system calls, setsid(2) and
    // ioctl(2), both async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn docker on a pty")
}

/// TIOCSWINSZ on the terminal `fd`.
#[allow(unsafe_code)]
fn set_winsize(fd: &impl AsRawFd, rows: u16, cols: u16) {
    let ws = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, valid for the call.
    let r = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn run_with_piped_stdin_and_with_a_tty() {
    let s = Setup::new();

    // 5 MB through a pipe: every byte arrives, and the client's half-close is stdin EOF.
    let data = random_bytes(7, 5_000_000);
    let digest = sha256_digest(&data);
    let (code, out, err) = s.with_stdin(
        &[
            "run",
            "-i",
            "--rm",
            &s.image,
            "sh",
            "-c",
            "cat > /tmp/in && wc -c < /tmp/in && sha256sum /tmp/in",
        ],
        &data,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().map(|l| l.trim()), Some("5000000"), "{out}");
    assert_eq!(
        lines.get(1).and_then(|l| l.split_whitespace().next()),
        digest.strip_prefix("sha256:"),
        "{out}"
    );
    let (code, out, err) = s.with_stdin(&["run", "-i", "--rm", &s.image, "cat"], b"hi\n");
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    // Without -i the container's stdin is not the client's.
    let (code, out, err) = s.with_stdin(&["run", "--rm", &s.image, "cat"], b"hi\n");
    assert_eq!((code, out.as_str()), (0, ""), "{err}");

    // -it: a shell on a terminal of the client's size that follows its resizes.
    let since = unix_now() - 1;
    let mut t = Pty::docker(
        &s.engine,
        &["run", "-it", "--rm", "--name", "tty1", &s.image, "sh"],
        30,
        100,
    );
    t.expect("/ # ");
    t.send("busybox tty\r");
    t.expect("/dev/pts/0");
    // The typed line is echoed: the quotes make the output differ from the echo.
    t.send("echo \"T=$TERM.\"\r");
    t.expect("T=xterm.");
    t.send("echo \"S=$(busybox stty size).\"\r");
    t.expect("S=30 100.");
    t.resize(40, 120);
    t.send(
        "until [ \"$(busybox stty size)\" = '40 120' ]; do sleep 0.05; done; echo RE\"\"SIZED\r",
    );
    t.expect("RESIZED");
    // Each resize of the container is a `resize` event with the size.
    for (h, w) in [("30", "100"), ("40", "120")] {
        s.events_until(since, "tty1", "resize", |r| {
            r.iter().any(|a| a["height"] == h && a["width"] == w)
        });
    }
    t.send("exit 7\r");
    assert_eq!(t.wait(), 7, "{}", t.shown());
    eventually("the --rm container to be removed", || {
        s.docker(&["ps", "-aq", "--filter", "name=tty1"])
            .is_empty()
            .then_some(())
    });
}

#[test]
fn detach_keys_then_attach() {
    let s = Setup::new();

    // ctrl-p ctrl-q: the client leaves, the container keeps running.
    let mut t = Pty::docker(
        &s.engine,
        &["run", "-it", "--name", "det", &s.image, "sh"],
        24,
        80,
    );
    t.expect("/ # ");
    t.send("echo fi\"\"rst\r");
    t.expect("first");
    t.wait_raw();
    t.send("\x10\x11");
    assert_eq!(t.wait(), 0, "{}", t.shown());
    assert_eq!(s.inspect("det")["State"]["Running"], true);

    // docker attach: the same shell; its exit code is attach's.
    let mut a = Pty::docker(&s.engine, &["attach", "det"], 24, 80);
    a.wait_raw();
    a.send("echo ba\"\"ck\r");
    a.expect("back");
    a.send("exit 3\r");
    assert_eq!(a.wait(), 3, "{}", a.shown());
    let c = s.inspect("det");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["State"]["ExitCode"], 3);

    // Custom keys: ctrl-p ctrl-q reach the shell, ctrl-x x detaches.
    let mut t = Pty::docker(
        &s.engine,
        &[
            "run",
            "-it",
            "--detach-keys",
            "ctrl-x,x",
            "--name",
            "det2",
            &s.image,
            "sh",
        ],
        24,
        80,
    );
    t.expect("/ # ");
    t.wait_raw();
    t.send("\x10\x11");
    t.send("echo al\"\"ive\r");
    t.expect("alive");
    t.send("\x18x");
    assert_eq!(t.wait(), 0, "{}", t.shown());
    assert_eq!(s.inspect("det2")["State"]["Running"], true);

    // docker create -it, then docker start -ai: the shell on this terminal, its exit code.
    s.docker(&["create", "-it", "--name", "later", &s.image, "sh"]);
    let mut t = Pty::docker(&s.engine, &["start", "-ai", "later"], 24, 80);
    t.wait_raw();
    t.send("echo st\"\"arted\r");
    t.expect("started");
    t.send("exit 9\r");
    assert_eq!(t.wait(), 9, "{}", t.shown());
    assert_eq!(s.inspect("later")["State"]["ExitCode"], 9);
}

#[test]
fn exec_forms_inspect_and_events() {
    let s = Setup::new();
    let since = unix_now() - 1;
    s.docker(&[
        "run", "-d", "--name", "ex", "-e", "BASE=1", &s.image, "sleep", "1000",
    ]);

    assert_eq!(s.docker(&["exec", "ex", "echo", "hi"]), "hi");
    let (code, o, e) = s.status(&["exec", "ex", "sh", "-c", "exit 5"]);
    assert_eq!(code, 5, "{o}\n{e}");
    assert_eq!(
        s.docker(&["exec", "-u", "nobody", "ex", "id", "-u"]),
        "65534"
    );
    let id = s.docker(&["exec", "-u", "nobody:root", "ex", "id"]);
    assert!(id.starts_with("uid=65534(nobody) gid=0(root)"), "{id}");
    assert_eq!(s.docker(&["exec", "-w", "/tmp", "ex", "pwd"]), "/tmp");
    // An exec's working directory must exist (as with runc); a container's is created.
    let (code, out) = s.fails(&["exec", "-w", "/nowhere", "ex", "pwd"]);
    assert_eq!(code, 127, "{out}");
    assert!(
        out.contains("chdir to cwd (\"/nowhere\") set in config.json failed"),
        "{out}"
    );
    let (_, ls, _) = s.status(&["exec", "ex", "ls", "-d", "/nowhere"]);
    assert_eq!(ls.trim(), "", "the exec created its working directory");
    // The exec's environment is the container's with -e on top.
    assert_eq!(
        s.docker(&["exec", "-e", "FOO=bar", "ex", "sh", "-c", "echo $FOO $BASE"]),
        "bar 1"
    );
    assert_eq!(
        s.docker(&["exec", "-e", "BASE=2", "ex", "sh", "-c", "echo $BASE"]),
        "2"
    );

    // Detached: returns at once; the process still runs to its end.
    s.docker(&[
        "exec",
        "-d",
        "ex",
        "sh",
        "-c",
        "echo made > /tmp/made.part && mv /tmp/made.part /tmp/made",
    ]);
    eventually("the detached exec's file", || {
        let (code, o, _) = s.status(&["exec", "ex", "cat", "/tmp/made"]);
        (code == 0 && o.trim() == "made").then_some(())
    });

    // -i: piped stdin, half-closed.
    let data = random_bytes(3, 1_000_000);
    let (code, o, e) = s.with_stdin(&["exec", "-i", "ex", "sh", "-c", "cat | wc -c"], &data);
    assert_eq!((code, o.trim()), (0, "1000000"), "{e}");
    // Without -i, nothing is read.
    let (code, o, e) = s.with_stdin(&["exec", "ex", "cat"], b"hi\n");
    assert_eq!((code, o.as_str()), (0, ""), "{e}");

    // -it: a terminal of the client's size, resized, and the exit code.
    let mut t = Pty::docker(&s.engine, &["exec", "-it", "ex", "sh"], 20, 70);
    t.expect("/ # ");
    t.send("echo \"Y=$(busybox tty).\"\r");
    t.expect("Y=/dev/pts/");
    t.send("echo \"T=$TERM.\"\r");
    t.expect("T=xterm.");
    t.send("echo \"S=$(busybox stty size).\"\r");
    t.expect("S=20 70.");
    t.resize(33, 111);
    t.send(
        "until [ \"$(busybox stty size)\" = '33 111' ]; do sleep 0.05; done; echo RE\"\"SIZED\r",
    );
    t.expect("RESIZED");
    t.send("exit 4\r");
    assert_eq!(t.wait(), 4, "{}", t.shown());

    // A missing command; a missing user.
    let (code, out) = s.fails(&["exec", "ex", "nope"]);
    assert_eq!(code, 127, "{out}");
    assert!(out.contains("executable file not found"), "{out}");
    let (code, out) = s.fails(&["exec", "-u", "nosuch", "ex", "true"]);
    assert!(
        out.contains("unable to find user nosuch: no matching entries in passwd file"),
        "{out}"
    );
    // moby's exit code for an exec that failed otherwise (exitUnknown).
    assert_eq!(code, 128, "{out}");

    // A running exec: in the container's ExecIDs, Running with its pid.
    s.docker(&["exec", "-d", "ex", "sleep", "999"]);
    let ids = s.inspect("ex")["ExecIDs"].clone();
    let running = ids[0].as_str().unwrap_or_else(|| panic!("ExecIDs: {ids}"));
    assert_eq!(ids.as_array().map(Vec::len), Some(1), "{ids}");
    let info = s.api_get(&format!("/exec/{running}/json"));
    assert_eq!(info["Running"], true, "{info}");
    assert!(info["Pid"].as_u64().unwrap_or(0) > 0, "{info}");

    // Exec inspect and the exec events: create, start and die with the exit code.
    let events = eventually("the exec events", || {
        let ev = s.container_events(since, "ex");
        let dies = ev.iter().filter(|(a, _)| a == "exec_die").count();
        (dies >= 4).then_some(ev)
    });
    let exec_id = |action: &str| -> String {
        events
            .iter()
            .find(|(a, _)| a == action)
            .and_then(|(_, attrs)| attrs["execID"].as_str())
            .unwrap_or_else(|| panic!("no {action:?} event with an execID: {events:?}"))
            .to_owned()
    };
    let hi = exec_id("exec_create: echo hi");
    assert_eq!(exec_id("exec_start: echo hi"), hi, "{events:?}");
    let die = events
        .iter()
        .find(|(a, attrs)| a == "exec_die" && attrs["execID"] == hi.as_str())
        .unwrap_or_else(|| panic!("no exec_die of {hi}: {events:?}"));
    assert_eq!(die.1["exitCode"], "0", "{events:?}");
    let five = exec_id("exec_create: sh -c exit 5");
    assert!(
        events.iter().any(|(a, attrs)| a == "exec_die"
            && attrs["execID"] == five.as_str()
            && attrs["exitCode"] == "5"),
        "{events:?}"
    );
    let info = s.api_get(&format!("/exec/{hi}/json"));
    assert_eq!(info["ID"], hi.as_str(), "{info}");
    assert_eq!(info["Running"], false, "{info}");
    assert_eq!(info["ExitCode"], 0, "{info}");
    assert_eq!(info["ProcessConfig"]["entrypoint"], "echo", "{info}");
    assert_eq!(
        info["ProcessConfig"]["arguments"],
        serde_json::json!(["hi"]),
        "{info}"
    );
    let cid = s.inspect("ex")["Id"].clone();
    assert_eq!(info["ContainerID"], cid, "{info}");
    let info = s.api_get(&format!("/exec/{five}/json"));
    assert_eq!(info["ExitCode"], 5, "{info}");

    // Not on a stopped container.
    s.docker(&["kill", "ex"]);
    assert_eq!(s.docker(&["wait", "ex"]), "137");
    let (_, out) = s.fails(&["exec", "ex", "echo", "hi"]);
    assert!(out.contains("is not running"), "{out}");
}

#[test]
fn top_user_and_init() {
    let s = Setup::new();

    // docker top: the container's processes, by host pid.
    s.docker(&["run", "-d", "--name", "top1", &s.image, "sleep", "1000"]);
    let pid = s.inspect("top1")["State"]["Pid"].as_i64().expect("a pid");
    assert!(pid > 0);
    let top = s.docker(&["top", "top1"]);
    let mut lines = top.lines();
    let titles: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{top}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(
        rows.iter()
            .any(|r| r.get(1) == Some(&pid.to_string().as_str()) && r[7..] == ["sleep", "1000"]),
        "{top}"
    );
    let top = s.docker(&["top", "top1", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = top
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["PID", "COMMAND"], "{top}");
    assert_eq!(
        rows[1..],
        [vec![pid.to_string().as_str(), "sleep"]],
        "{top}"
    );
    s.docker(&["kill", "top1"]);
    assert_eq!(s.docker(&["wait", "top1"]), "137");
    let (_, out) = s.fails(&["top", "top1"]);
    assert!(out.contains("is not running"), "{out}");

    // -u: names from the image's /etc/passwd and /etc/group, or numbers.
    assert_eq!(
        s.docker(&["run", "--rm", "-u", "nobody", &s.image, "id", "-u"]),
        "65534"
    );
    let id = s.docker(&["run", "--rm", "-u", "1234:5678", &s.image, "id"]);
    assert!(id.starts_with("uid=1234 gid=5678"), "{id}");
    assert_eq!(
        s.docker(&["run", "--rm", "-u", "nobody:nogroup", &s.image, "id", "-g"]),
        "65534"
    );
    assert_eq!(
        s.docker(&[
            "run",
            "--rm",
            "-u",
            "nobody",
            &s.image,
            "sh",
            "-c",
            "echo $HOME"
        ]),
        "/nonexistent"
    );
    let (code, out) = s.fails(&["run", "--rm", "-u", "nosuch", &s.image, "true"]);
    assert!(
        out.contains("unable to find user nosuch: no matching entries in passwd file"),
        "{code}: {out}"
    );

    // --init: PID 1 is the init, not the command.
    let ps = s.docker(&["run", "--rm", "--init", &s.image, "ps", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let one = rows
        .iter()
        .find(|r| r.first() == Some(&"1"))
        .unwrap_or_else(|| panic!("no PID 1: {ps}"));
    assert_ne!(one.get(1), Some(&"ps"), "{ps}");
    // PID 1 is named as an init; the shim's host command line (bundle path) is not shown.
    assert_eq!(one.get(1), Some(&"berth-init"), "{ps}");
    let cmdline = s.docker(&["run", "--rm", "--init", &s.image, "cat", "/proc/1/cmdline"]);
    let cmdline = cmdline.replace('\0', " ");
    assert!(
        cmdline.starts_with("berth-init -- cat /proc/1/cmdline"),
        "{cmdline:?}"
    );
    assert!(!cmdline.contains("bundle"), "{cmdline:?}");
    let me = rows
        .iter()
        .find(|r| r.get(1) == Some(&"ps"))
        .unwrap_or_else(|| panic!("no ps: {ps}"));
    assert_ne!(me[0], "1", "{ps}");
    // An orphan is reaped (it would stay a zombie, /proc/<pid> present, otherwise).
    let reap = "(sleep 0 & echo $! > /tmp/p); p=$(cat /tmp/p); i=0; \
                while [ -e /proc/$p ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 1; sleep 0.01; done; \
                echo reaped";
    let (code, o, e) = s.status(&["run", "--rm", "--init", &s.image, "sh", "-c", reap]);
    assert_eq!((code, o.trim()), (0, "reaped"), "{e}");
    // Signals are forwarded: sleep gets the SIGTERM of docker stop and dies of it, well
    // before the timeout's SIGKILL.
    s.docker(&[
        "run", "-d", "--init", "--name", "ini", &s.image, "sleep", "1000",
    ]);
    let started = Instant::now();
    s.docker(&["stop", "-t", "20", "ini"]);
    let c = s.inspect("ini");
    assert_eq!(c["State"]["ExitCode"], 143, "{c}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn hostname_pid1_rootfs_and_networks() {
    let s = Setup::new();
    assert_eq!(
        s.docker(&[
            "run",
            "--rm",
            "--hostname",
            "h1",
            &s.image,
            "sh",
            "-c",
            "hostname; cat /etc/hostname",
        ]),
        "h1\nh1"
    );
    // The default hostname is the short ID.
    let id = s.docker(&[
        "run",
        "-d",
        &s.image,
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    assert_eq!(s.docker(&["wait", &id]), "0");
    assert_eq!(
        s.docker(&["logs", &id]),
        format!("{}\n{}", &id[..12], &id[..12])
    );
    assert_eq!(
        s.docker(&["inspect", "-f", "{{.Config.Hostname}}", &id]),
        &id[..12]
    );

    // PID 1 is the command.
    assert_eq!(
        s.docker(&["run", "--rm", &s.image, "sh", "-c", "echo $$"]),
        "1"
    );
    // The root is an overlay.
    let root = s.docker(&[
        "run",
        "--rm",
        &s.image,
        "grep",
        " / ",
        "/proc/self/mountinfo",
    ]);
    assert!(root.contains(" - overlay "), "{root}");

    // --network none: only the loopback; host: the host's interfaces.
    assert_eq!(
        s.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &s.image,
            "ls",
            "/sys/class/net"
        ]),
        "lo"
    );
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let seen = s.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        &s.image,
        "ls",
        "/sys/class/net",
    ]);
    // Other engines of the test run add and remove their own links meanwhile.
    let others = |n: &str| n.starts_with("bt") || n.starts_with("berth");
    let mut seen: Vec<&str> = seen.lines().filter(|n| !others(n)).collect();
    seen.sort();
    host.retain(|n| !others(n));
    assert_eq!(seen, host);
}

#[test]
fn stop_signals_timeouts_and_kill_events() {
    let s = Setup::new();
    let since = unix_now() - 1;

    // --stop-signal: the trap exits 0.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "SIGUSR1",
        &s.image,
        "sh",
        "-c",
        "trap 'exit 0' USR1; echo ready; sleep 1000 & wait",
    ]);
    s.wait_for_log("usr1", "ready");
    s.docker(&["stop", "usr1"]);
    let c = s.inspect("usr1");
    assert_eq!(c["Config"]["StopSignal"], "SIGUSR1", "{c}");
    assert_eq!(c["State"]["ExitCode"], 0, "{c}");
    assert_eq!(s.kill_signals(since, "usr1", 1), ["10"]);

    // --stop-timeout: SIGTERM ignored, SIGKILL after the container's own timeout.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--stop-timeout",
        "1",
        &s.image,
        "sh",
        "-c",
        "trap '' TERM; echo ready; sleep 1000 & wait",
    ]);
    s.wait_for_log("slow", "ready");
    s.docker(&["stop", "slow"]);
    let c = s.inspect("slow");
    assert_eq!(c["Config"]["StopTimeout"], 1, "{c}");
    assert_eq!(c["State"]["ExitCode"], 137, "{c}");
    assert_eq!(s.kill_signals(since, "slow", 2), ["15", "9"]);

    // docker stop -t on a TERM-ignoring container returns, with SIGKILL's code.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "deaf",
        &s.image,
        "sh",
        "-c",
        "trap '' TERM; echo ready; sleep 1000 & wait",
    ]);
    s.wait_for_log("deaf", "ready");
    s.docker(&["stop", "-t", "2", "deaf"]);
    assert_eq!(s.inspect("deaf")["State"]["ExitCode"], 137);
    assert_eq!(s.kill_signals(since, "deaf", 2), ["15", "9"]);
}

#[test]
fn run_options_and_image_config_defaults() {
    let s = Setup::new();
    let dir = tempfile::tempdir().expect("tempdir");

    // --env-file: comments skipped, values kept whole.
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "A=1\n# a comment\nB=two words\n").expect("env file");
    let env_path = env_file.to_str().expect("utf-8 path");
    assert_eq!(
        s.docker(&[
            "run",
            "--rm",
            "--env-file",
            env_path,
            &s.image,
            "sh",
            "-c",
            "echo \"$A|$B\"",
        ]),
        "1|two words"
    );

    // --label: in inspect and for ps filters.
    s.docker(&[
        "run", "-d", "--name", "lab", "--label", "a=b", &s.image, "sleep", "1000",
    ]);
    assert_eq!(s.inspect("lab")["Config"]["Labels"]["a"], "b");
    assert_eq!(
        s.docker(&["ps", "--filter", "label=a=b", "--format", "{{.Names}}"]),
        "lab"
    );
    assert_eq!(
        s.docker(&["ps", "--filter", "label=a=c", "--format", "{{.Names}}"]),
        ""
    );

    // --entrypoint and -w.
    assert_eq!(
        s.docker(&["run", "--rm", "--entrypoint", "echo", &s.image, "hello"]),
        "hello"
    );
    assert_eq!(
        s.docker(&["run", "--rm", "-w", "/tmp", &s.image, "pwd"]),
        "/tmp"
    );
    // A working directory the image does not have is created.
    assert_eq!(
        s.docker(&["run", "--rm", "-w", "/made/here", &s.image, "pwd"]),
        "/made/here"
    );

    // An image whose config has Env, WorkingDir, User and StopSignal.
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, layer_tar(&busybox_entries())).expect("rootfs.tar");
    s.docker(&[
        "import",
        "--change",
        "ENV X=1",
        "--change",
        "WORKDIR /tmp",
        "--change",
        "USER nobody",
        "--change",
        "STOPSIGNAL SIGUSR1",
        "--change",
        "CMD [\"sh\"]",
        rootfs.to_str().expect("utf-8 path"),
        "defaults:1",
    ]);
    assert_eq!(
        s.docker(&[
            "run",
            "--rm",
            "defaults:1",
            "sh",
            "-c",
            "echo \"$X|$(pwd)|$(id -u)\"",
        ]),
        "1|/tmp|65534"
    );
    // Options still win over the image's defaults.
    assert_eq!(
        s.docker(&[
            "run",
            "--rm",
            "-e",
            "X=2",
            "-u",
            "root",
            "-w",
            "/",
            "defaults:1",
            "sh",
            "-c",
            "echo \"$X|$(pwd)|$(id -u)\"",
        ]),
        "2|/|0"
    );
    // The image's stop signal.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "dflt",
        "defaults:1",
        "sh",
        "-c",
        "trap 'exit 0' USR1; echo ready; sleep 1000 & wait",
    ]);
    s.wait_for_log("dflt", "ready");
    let c = s.inspect("dflt");
    assert_eq!(c["Config"]["StopSignal"], "SIGUSR1", "{c}");
    assert_eq!(c["Config"]["User"], "nobody", "{c}");
    assert_eq!(c["Config"]["WorkingDir"], "/tmp", "{c}");
    s.docker(&["stop", "-t", "20", "dflt"]);
    assert_eq!(s.inspect("dflt")["State"]["ExitCode"], 0);
}

#[test]
fn exec_with_a_tty_survives_its_client() {
    let s = Setup::new();
    s.docker(&["run", "-d", "--name", "ex", &s.image, "sleep", "1000"]);
    let mut t = Pty::docker(&s.engine, &["exec", "-it", "ex", "sh"], 24, 80);
    t.expect("/ # ");
    t.send("echo $$ > /tmp/sh.pid; echo SA\"\"VED\r");
    t.expect("SAVED");
    t.wait_raw();
    t.send("\x10\x11");
    // The CLI reports the detach itself ("read escape sequence") and exits. (Read before the
    // exit: output still in the pty when the CLI exits may not have been read yet.)
    t.expect("read escape sequence");
    t.wait();
    // The shell, at its prompt, is still there for a while after its client left (with the
    // bug it reads ^D and exits within milliseconds).
    let (code, o, e) = s.status(&[
        "exec",
        "ex",
        "sh",
        "-c",
        "p=$(cat /tmp/sh.pid); i=0; \
         while [ $i -lt 10 ]; do kill -0 $p || exit 1; i=$((i+1)); sleep 0.1; done",
    ]);
    assert_eq!(code, 0, "the detached exec's shell exited:\n{o}{e}");
    let ids = s.inspect("ex")["ExecIDs"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(1), "{ids}");
}

/// The docker CLI spots its detach keys itself with a TTY and just hangs up, so the engine
/// sees only the end of the connection. A client that sends the keys (the API, docker-py's
/// sockets) is detached by the engine, which publishes `detach`, or `exec_detach` for an exec,
/// as dockerd does.
#[test]
fn detach_keys_sent_to_the_api() {
    let s = Setup::new();
    let since = unix_now() - 1;
    s.docker(&["run", "-dit", "--name", "raw", &s.image, "sh"]);

    let mut a = Hijacked::open(
        &s.engine,
        "/containers/raw/attach?stream=1&stdin=1&stdout=1&stderr=1",
        "",
    );
    a.send(b"echo at\"\"tached\r");
    a.expect("attached");
    a.send(b"\x10\x11");
    a.expect_closed();
    s.events_until(since, "raw", "detach", |d| d.len() == 1);
    assert_eq!(s.inspect("raw")["State"]["Running"], true);

    let exec: serde_json::Value = serde_json::from_str(&s.api_post(
        "/containers/raw/exec",
        r#"{"AttachStdin":true,"AttachStdout":true,"Tty":true,"Cmd":["sh"],"DetachKeys":"ctrl-x,x"}"#,
    ))
    .expect("exec create JSON");
    let id = exec["Id"].as_str().expect("exec ID").to_owned();
    let mut e = Hijacked::open(
        &s.engine,
        &format!("/exec/{id}/start"),
        r#"{"Detach":false,"Tty":true}"#,
    );
    e.send(b"echo in\"\"side\r");
    e.expect("inside");
    e.send(b"\x18x");
    e.expect_closed();
    let d = s.events_until(since, "raw", "exec_detach", |d| !d.is_empty());
    assert_eq!(d[0]["execID"], id.as_str(), "{d:?}");
    assert_eq!(s.events_until(since, "raw", "detach", |_| true).len(), 1);
}

/// docker-py frames an exec's output by the `tty` it passes to `exec_start` (`Tty` in the start
/// body), not the exec's: so does dockerd's router. An exec created with a TTY and started
/// with `tty=False` (the default) is multiplexed; started with `tty=True`, raw.
#[test]
fn exec_start_framing_follows_the_start_request() {
    let s = Setup::new();
    s.docker(&["run", "-d", "--name", "ex", &s.image, "sleep", "1000"]);
    let script = r#"
import sys, docker
c = docker.APIClient(base_url=sys.argv[1], version="auto")
# The exec starts once the 101 is out, so output written at once is not lost in the read of
# the response's headers (docker-py drops bytes that come with them).
for i in range(20):
    out = c.exec_start(c.exec_create("ex", ["echo", "hi"])["Id"])
    assert out == b"hi\n", (i, out)
cmd = ["sh", "-c", "echo hi"]
e = c.exec_create("ex", cmd, tty=True)
out = c.exec_start(e["Id"])
assert out == b"hi\r\n", out
e = c.exec_create("ex", cmd, tty=True)
sock = c.exec_start(e["Id"], socket=True)
frames = list(docker.utils.socket.frames_iter(sock, tty=False))
assert frames and all(t == 1 for t, _ in frames), frames
assert b"".join(d for _, d in frames) == b"hi\r\n", frames
e = c.exec_create("ex", cmd, tty=True)
out = c.exec_start(e["Id"], tty=True)
assert out == b"hi\r\n", out
print("ok")
"#;
    let out =
        berth_testutil::run(Command::new("python3").args(["-c", script, &s.engine.docker_host]));
    let (o, e) = berth_testutil::text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}

/// A hijacked API connection (`Upgrade: tcp`), as an SDK opens for attach and exec start.
struct Hijacked {
    sock: std::os::unix::net::UnixStream,
    seen: Vec<u8>,
}

impl Hijacked {
    fn open(engine: &Engine, path: &str, body: &str) -> Hijacked {
        use std::io::{Read, Write};
        let mut sock = engine.api_socket();
        write!(
            sock,
            "POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("request");
        // The response head, byte by byte: what follows it is the stream.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            sock.read_exact(&mut b).expect("response head");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "POST {path}: {head}");
        Hijacked {
            sock,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.sock.write_all(bytes).expect("send");
    }

    /// Reads until `text` has been seen.
    fn expect(&mut self, text: &str) {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            let n = self
                .sock
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}; seen {:?}", self.shown()));
            assert_ne!(n, 0, "closed before {text:?}; seen {:?}", self.shown());
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads until the engine closes the connection.
    fn expect_closed(&mut self) {
        use std::io::Read;
        let mut rest = Vec::new();
        self.sock
            .read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("waiting for the end: {e}; seen {:?}", self.shown()));
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

#[test]
fn an_invalid_stop_signal_is_refused_at_create() {
    let s = Setup::new();
    let (code, out) = s.fails(&[
        "run",
        "-d",
        "--name",
        "badsig",
        "--stop-signal",
        "FOO",
        &s.image,
        "sleep",
        "1000",
    ]);
    assert!(out.contains("Invalid signal: FOO"), "{code}: {out}");
    assert_eq!(s.docker(&["ps", "-aq"]), "");
}

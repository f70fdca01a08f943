//! An exit whose release hangs (the network service frozen: its Detach gets no answer) holds
//! up only that container: the exit is recorded at once, every other container's changes go
//! on, and the exit's waiters wake once the network answers again.

use std::time::{Duration, Instant};

use berth_testutil::{BusyboxEngine, eventually};
use nix::{sys::signal::Signal, unistd::Pid};

/// A service stopped with SIGSTOP; continued when dropped (also when the test fails).
struct Frozen(i32);

impl Frozen {
    fn new(pid: i32) -> Frozen {
        nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP");
        let f = Frozen(pid);
        eventually("the process to be stopped", || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            (state == 'T').then_some(())
        });
        f
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

/// Well under the 30 s a call to a frozen service takes to time out.
const QUICK: Duration = Duration::from_secs(12);

#[test]
fn a_frozen_network_service_holds_up_only_the_exiting_container() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    s.docker(&[
        "run",
        "-d",
        "--name",
        "leaving",
        img,
        "sh",
        "-c",
        "while [ ! -e /go ]; do sleep 0.1; done; exit 3",
    ]);
    s.docker(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "none",
        img,
        "sleep",
        "1000",
    ]);
    let network = s.engine.pid_of("berth-network").expect("network running");
    let frozen = Frozen::new(network);
    s.docker(&["exec", "leaving", "touch", "/go"]);
    let t = Instant::now();
    eventually("the exit to be recorded", || {
        (s.inspect("leaving")["State"]["Status"] == "exited").then_some(())
    });
    assert!(
        t.elapsed() < QUICK,
        "the exit waited for the network: {:?}",
        t.elapsed()
    );
    assert_eq!(s.inspect("leaving")["State"]["ExitCode"], 3);
    // Its Detach still hangs; the other container's changes go on.
    let t = Instant::now();
    s.docker(&["ps", "-a"]);
    s.docker(&["pause", "other"]);
    s.docker(&["unpause", "other"]);
    s.docker(&["rename", "other", "other2"]);
    assert_eq!(s.inspect("other2")["State"]["Running"], true);
    assert!(t.elapsed() < QUICK, "others waited: {:?}", t.elapsed());
    drop(frozen);
    // Released: its waiters wake, and it starts again on the network it left.
    assert_eq!(s.docker(&["wait", "leaving"]), "3");
    s.docker(&["start", "leaving"]);
    s.docker(&["rm", "-f", "leaving", "other2"]);
}

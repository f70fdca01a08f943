//! Where an operation's time goes: named phases, logged as one debug line when it ends
//! (`RUST_LOG=berth_network=debug`). Cheap enough to stay: a clock read per phase.

use std::time::{Duration, Instant};

/// The phases of one operation so far.
#[derive(Debug)]
pub(crate) struct Phases {
    start: Instant,
    last: Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Phases {
    pub(crate) fn start() -> Phases {
        let now = Instant::now();
        Phases {
            start: now,
            last: now,
            done: Vec::new(),
        }
    }

    /// Ends the phase `name` (the time since the previous mark).
    pub(crate) fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.done.push((name, now - self.last));
        self.last = now;
    }

    /// The phases as `name 1.23ms, ...` with the total last.
    pub(crate) fn summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut s: String = self
            .done
            .iter()
            .map(|(n, d)| format!("{n} {:.2}ms, ", ms(*d)))
            .collect();
        s += &format!("total {:.2}ms", ms(self.start.elapsed()));
        s
    }

    /// Logs the phases of `what` at debug level.
    pub(crate) fn log(&self, what: &str, container: &str) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(container, "{what}: {}", self.summary());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_named_in_order_with_the_total_last() {
        let mut p = Phases::start();
        p.mark("store");
        p.mark("veth");
        let s = p.summary();
        let store = s.find("store ").unwrap();
        let veth = s.find("veth ").unwrap();
        let total = s.find("total ").unwrap();
        assert!(store < veth && veth < total, "{s}");
        assert!(s.ends_with("ms"), "{s}");
    }
}

//! Which samples a stats request sends, and with which `precpu`: dockerd's rules, with
//! Berth's own timing.
//!
//! - `stream=false`: two samples `NO_STREAM_WINDOW` apart, the first as `precpu`/`preread`
//!   of the second, which is sent. dockerd waits for two ticks of its one-second collector;
//!   the CPU percentage a client computes (CPU delta / system delta × CPUs) is the same
//!   quantity over any window, so a shorter one answers sooner and stays right. The window is
//!   long enough for /proc/stat's 10 ms ticks to count the host's time to a few percent
//!   (100 ms on 2 CPUs: 20 ticks) and covers a whole CFS period (100 ms), so a `--cpus`
//!   quota shows as its share.
//! - `one-shot=true` (with `stream=false`): the first sample at once, without `precpu`.
//! - streamed: the first sample at once (without `precpu`, as dockerd's first frame), then
//!   the shared collector's samples about every `INTERVAL`, each carrying the one sent
//!   before it. A collector tick that comes less than `MIN_GAP` after the last frame sent
//!   (the first one, taken when the request came) is skipped, so every window is long enough.
//! - A container that does not run: dockerd's zeroed sample (at once when not streamed).

use std::time::{Duration, Instant};

use berth_proto::runtime::v1 as pb;

/// How often dockerd's collector samples, and so Berth's streamed frames.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// The CPU window of a `stream=false` answer.
pub(crate) const NO_STREAM_WINDOW: Duration = Duration::from_millis(100);

/// The shortest window between two streamed frames.
const MIN_GAP: Duration = Duration::from_millis(500);

/// What to do with a sample offered to a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Send this frame; the request ends after it when `last`.
    Send {
        frame: Box<pb::StatsSample>,
        last: bool,
    },
    /// Kept as the next frame's `precpu`: take another sample after `NO_STREAM_WINDOW`.
    Prime,
    /// Too close to the last frame sent: wait for the next.
    Skip,
}

/// One request's state.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    stream: bool,
    one_shot: bool,
    /// The last sample sent (streamed), or the primed one (`stream=false`).
    prev: Option<pb::StatsSample>,
    last_sent: Option<Instant>,
}

impl Pace {
    pub(crate) fn new(stream: bool, one_shot: bool) -> Pace {
        Pace {
            stream,
            one_shot,
            prev: None,
            last_sent: None,
        }
    }

    /// `s`, taken at `now` of a container that `running` or not.
    pub(crate) fn offer(&mut self, s: pb::StatsSample, running: bool, now: Instant) -> Step {
        if !self.stream {
            if !running || self.one_shot {
                return Step::Send {
                    frame: Box::new(s),
                    last: true,
                };
            }
            return match self.prev.take() {
                None => {
                    self.prev = Some(s);
                    Step::Prime
                }
                Some(p) => Step::Send {
                    frame: Box::new(with_pre(s, &p)),
                    last: true,
                },
            };
        }
        if self
            .last_sent
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_GAP)
        {
            return Step::Skip;
        }
        let frame = match &self.prev {
            Some(p) => with_pre(s.clone(), p),
            None => s.clone(),
        };
        self.prev = Some(s);
        self.last_sent = Some(now);
        Step::Send {
            frame: Box::new(frame),
            last: false,
        }
    }
}

/// `s` with `p` as its `precpu` and `preread`.
fn with_pre(mut s: pb::StatsSample, p: &pb::StatsSample) -> pb::StatsSample {
    s.preread = p.read;
    s.precpu = p.cpu.clone();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample read at `read` ns with `cpu` ns of the container's and `system` of the host's.
    fn sample(read: i64, cpu: u64, system: u64) -> pb::StatsSample {
        pb::StatsSample {
            id: "c".into(),
            read,
            cpu: Some(pb::CpuStats {
                total_usage: cpu,
                system_cpu_usage: system,
                online_cpus: 2,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The percentage the docker CLI computes from a frame.
    fn cli_percent(f: &pb::StatsSample) -> f64 {
        let (c, p) = (f.cpu.clone().unwrap(), f.precpu.clone().unwrap());
        let cpu = c.total_usage as f64 - p.total_usage as f64;
        let sys = c.system_cpu_usage as f64 - p.system_cpu_usage as f64;
        cpu / sys * f64::from(c.online_cpus) * 100.0
    }

    #[test]
    fn no_stream_primes_then_sends_the_window() {
        let t0 = Instant::now();
        let mut p = Pace::new(false, false);
        // 100 ms on 2 CPUs: 200 ms of host time; a busy loop used 100 ms of it.
        let first = sample(1_000_000_000, 5_000_000_000, 90_000_000_000);
        assert_eq!(p.offer(first, true, t0), Step::Prime);
        let second = sample(1_100_000_000, 5_100_000_000, 90_200_000_000);
        let Step::Send { frame, last } = p.offer(second, true, t0 + NO_STREAM_WINDOW) else {
            panic!("the second sample is sent");
        };
        assert!(last);
        assert_eq!(frame.preread, 1_000_000_000);
        assert_eq!(frame.read, 1_100_000_000);
        assert_eq!(frame.precpu.as_ref().unwrap().total_usage, 5_000_000_000);
        assert!((cli_percent(&frame) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn one_shot_and_stopped_are_sent_at_once_without_precpu() {
        let t0 = Instant::now();
        let Step::Send { frame, last } = Pace::new(false, true).offer(sample(5, 1, 2), true, t0)
        else {
            panic!("one-shot is sent at once");
        };
        assert!(last && frame.precpu.is_none() && frame.preread == 0);
        let stopped = pb::StatsSample::default();
        assert_eq!(
            Pace::new(false, false).offer(stopped.clone(), false, t0),
            Step::Send {
                frame: Box::new(stopped),
                last: true
            }
        );
    }

    #[test]
    fn streamed_frames_carry_the_last_one_sent() {
        let t0 = Instant::now();
        let mut p = Pace::new(true, false);
        let Step::Send { frame, last } = p.offer(sample(10, 100, 1000), true, t0) else {
            panic!("the first frame is sent at once");
        };
        assert!(!last && frame.precpu.is_none() && frame.preread == 0);
        // The collector ticks 30 ms later: too short a window.
        let early = t0 + Duration::from_millis(30);
        assert_eq!(p.offer(sample(13, 103, 1003), true, early), Step::Skip);
        let Step::Send { frame, .. } = p.offer(sample(20, 150, 2000), true, early + INTERVAL)
        else {
            panic!("the next tick is sent");
        };
        assert_eq!(frame.preread, 10);
        assert_eq!(frame.precpu.unwrap().total_usage, 100);
        let Step::Send { frame, .. } =
            p.offer(sample(30, 160, 3000), true, early + INTERVAL + INTERVAL)
        else {
            panic!("and the one after");
        };
        assert_eq!(frame.preread, 20);
    }
}

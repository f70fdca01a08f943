//! Health checks as dockerd runs them (moby `daemon/health.go`): the probe's settings with
//! dockerd's defaults, when the next probe is due, and the state machine that turns probe
//! results into `starting`, `healthy` and `unhealthy`. No I/O here: `health_monitor.rs` runs
//! the probes.

use std::time::Duration;

use berth_proto::runtime::v1 as pb;

/// The longest probe output kept; longer output is cut and ends with "...".
pub(crate) const MAX_OUTPUT: usize = 4096;
/// How many probe results the log keeps.
pub(crate) const MAX_LOG: usize = 5;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// As stored; anything else (an empty status) is unhealthy, as dockerd reads it.
    fn parse(s: &str) -> HealthStatus {
        match s {
            "starting" => HealthStatus::Starting,
            "healthy" => HealthStatus::Healthy,
            _ => HealthStatus::Unhealthy,
        }
    }
}

/// One run of the probe. Times in nanoseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// 0 healthy; anything else (-1: timed out or could not run) a failure.
    pub(crate) exit_code: i64,
    pub(crate) output: String,
}

/// A container's health (inspect's State.Health).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    pub(crate) status: HealthStatus,
    pub(crate) failing_streak: u32,
    /// Oldest first, at most `MAX_LOG`.
    pub(crate) log: Vec<Probe>,
}

/// The settings of a container's health check, dockerd's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// What the probe execs (`CMD-SHELL` wrapped in `/bin/sh -c`); empty: the check has no
    /// command, and every probe fails saying so, as in dockerd.
    pub(crate) cmd: Vec<String>,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) start_period: Duration,
    pub(crate) start_interval: Duration,
    pub(crate) retries: u32,
}

fn or_default(nanos: i64, default: Duration) -> Duration {
    u64::try_from(nanos)
        .ok()
        .filter(|n| *n > 0)
        .map_or(default, Duration::from_nanos)
}

impl Settings {
    /// The check a container runs; None when it has none (no test, `NONE`, an unknown type).
    pub(crate) fn of(spec: &pb::ContainerSpec) -> Option<Settings> {
        let h = spec.health_check.as_ref()?;
        let (kind, args) = h.test.split_first()?;
        let cmd = match kind.as_str() {
            "CMD" => args.to_vec(),
            "CMD-SHELL" if args.is_empty() => Vec::new(),
            "CMD-SHELL" => {
                let shell = spec
                    .process
                    .as_ref()
                    .map(|p| p.shell.clone())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()]);
                shell.into_iter().chain(args.iter().cloned()).collect()
            }
            _ => return None,
        };
        Some(Settings {
            cmd,
            interval: or_default(h.interval, DEFAULT_INTERVAL),
            timeout: or_default(h.timeout, DEFAULT_TIMEOUT),
            start_period: or_default(h.start_period, Duration::ZERO),
            start_interval: or_default(h.start_interval, DEFAULT_START_INTERVAL),
            retries: u32::try_from(h.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
        })
    }

    /// How long to wait before the next probe, `since_start` after the container started:
    /// the start interval while in the start period and still starting, else the interval.
    pub(crate) fn next_delay(&self, since_start: Duration, status: HealthStatus) -> Duration {
        if since_start < self.start_period && status == HealthStatus::Starting {
            self.start_interval
        } else {
            self.interval
        }
    }

    fn in_start_period(&self, started_at: i64, probe_start: i64) -> bool {
        let since = u64::try_from(probe_start.saturating_sub(started_at)).unwrap_or(0);
        Duration::from_nanos(since) < self.start_period
    }
}

impl Health {
    /// The health at a (re)start: `starting`, no failures, the log of earlier runs kept.
    pub(crate) fn starting(previous: Option<Health>) -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: previous.map(|h| h.log).unwrap_or_default(),
        }
    }

    /// When the container stops: dockerd marks it unhealthy as its monitor stops.
    pub(crate) fn stopped(&mut self) {
        self.status = HealthStatus::Unhealthy;
    }

    /// Records a probe of the run started at `started_at`; the new status when it changed.
    /// A success makes it healthy; a failure counts, except while it is starting within the
    /// start period, and `retries` failures in a row make it unhealthy.
    pub(crate) fn record(
        &mut self,
        probe: Probe,
        s: &Settings,
        started_at: i64,
    ) -> Option<HealthStatus> {
        let old = self.status;
        let in_start_period =
            old == HealthStatus::Starting && s.in_start_period(started_at, probe.start);
        if probe.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !in_start_period {
            self.failing_streak = self.failing_streak.saturating_add(1);
            if self.failing_streak >= s.retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        if self.log.len() >= MAX_LOG {
            self.log.drain(..=self.log.len() - MAX_LOG);
        }
        self.log.push(probe);
        (self.status != old).then_some(self.status)
    }

    pub(crate) fn to_proto(&self) -> pb::HealthState {
        pb::HealthState {
            status: self.status.as_str().to_owned(),
            failing_streak: self.failing_streak,
            log: self
                .log
                .iter()
                .map(|p| pb::HealthProbe {
                    start: p.start,
                    end: p.end,
                    exit_code: p.exit_code,
                    output: p.output.clone(),
                })
                .collect(),
        }
    }

    pub(crate) fn from_proto(p: pb::HealthState) -> Health {
        Health {
            status: HealthStatus::parse(&p.status),
            failing_streak: p.failing_streak,
            log: p
                .log
                .into_iter()
                .map(|p| Probe {
                    start: p.start,
                    end: p.end,
                    exit_code: p.exit_code,
                    output: p.output,
                })
                .collect(),
        }
    }
}

/// A probe's output, stdout and stderr together, cut at `MAX_OUTPUT` bytes.
#[derive(Debug, Default)]
pub(crate) struct Output {
    buf: Vec<u8>,
    truncated: bool,
}

impl Output {
    pub(crate) fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        self.truncated |= keep < data.len();
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            out.push_str("...");
        }
        out
    }
}

/// The result of a probe that outlived its timeout, as dockerd words it.
pub(crate) fn timed_out(timeout: Duration, output: &str) -> String {
    let d = go_duration(timeout);
    if output.is_empty() {
        format!("Health check exceeded timeout ({d})")
    } else {
        format!("Health check exceeded timeout ({d}): {output}")
    }
}

/// A duration as Go's `time.Duration.String` writes it: `1s`, `1.5s`, `500ms`, `2m0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    let unit = |n: u128, per: u128, suffix: &str| {
        let (whole, rest) = (n / per, n % per);
        if rest == 0 {
            return format!("{whole}{suffix}");
        }
        let width = per.to_string().len() - 1;
        let frac = format!("{rest:0width$}");
        format!("{whole}.{}{suffix}", frac.trim_end_matches('0'))
    };
    const S: u128 = 1_000_000_000;
    match n {
        0 => "0s".to_owned(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => unit(n, 1_000, "µs"),
        n if n < S => unit(n, 1_000_000, "ms"),
        n => {
            let (h, m) = (n / (3600 * S), n / (60 * S) % 60);
            let s = unit(n % (60 * S), S, "s");
            match (h, m) {
                (0, 0) => s,
                (0, m) => format!("{m}m{s}"),
                (h, m) => format!("{h}h{m}m{s}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn settings(retries: u32, start_period: u64) -> Settings {
        Settings {
            cmd: vec!["true".to_owned()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            start_period: Duration::from_secs(start_period),
            start_interval: Duration::from_millis(100),
            retries,
        }
    }

    fn probe(at: i64, exit_code: i64) -> Probe {
        Probe {
            start: at * SEC,
            end: at * SEC + 1,
            exit_code,
            output: String::new(),
        }
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy() {
        let s = settings(2, 0);
        let mut h = Health::starting(None);
        assert_eq!(h.record(probe(1, 1), &s, 0), None);
        assert_eq!(h.failing_streak, 1);
        assert_eq!(h.record(probe(2, 1), &s, 0), Some(HealthStatus::Unhealthy));
        assert_eq!(h.record(probe(3, 1), &s, 0), None);
        assert_eq!(h.failing_streak, 3);
        // One success ends the streak; any exit code but 0 is a failure.
        assert_eq!(h.record(probe(4, 0), &s, 0), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(probe(5, 2), &s, 0), None);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert_eq!(h.record(probe(6, -1), &s, 0), Some(HealthStatus::Unhealthy));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_and_a_success_ends_it() {
        let s = settings(1, 10);
        let mut h = Health::starting(None);
        // Started at 100 s: failures before 110 s leave it starting.
        assert_eq!(h.record(probe(101, 1), &s, 100 * SEC), None);
        assert_eq!(h.record(probe(105, 1), &s, 100 * SEC), None);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        assert_eq!(
            h.record(probe(111, 1), &s, 100 * SEC),
            Some(HealthStatus::Unhealthy)
        );
        // Once healthy, a failure within the start period counts.
        let mut h = Health::starting(None);
        assert_eq!(
            h.record(probe(101, 0), &s, 100 * SEC),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(
            h.record(probe(102, 1), &s, 100 * SEC),
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn the_log_keeps_the_last_five_and_a_restart_keeps_it() {
        let s = settings(3, 0);
        let mut h = Health::starting(None);
        for i in 0..7 {
            h.record(probe(i, 0), &s, 0);
        }
        let starts: Vec<i64> = h.log.iter().map(|p| p.start / SEC).collect();
        assert_eq!(starts, [2, 3, 4, 5, 6]);
        h.stopped();
        assert_eq!(h.status, HealthStatus::Unhealthy);
        let again = Health::starting(Some(h.clone()));
        assert_eq!(again.status, HealthStatus::Starting);
        assert_eq!(again.log, h.log);
        assert_eq!(Health::from_proto(h.to_proto()), h);
    }

    #[test]
    fn the_start_interval_applies_while_starting_in_the_start_period() {
        let s = settings(3, 10);
        let early = Duration::from_secs(1);
        assert_eq!(
            s.next_delay(early, HealthStatus::Starting),
            s.start_interval
        );
        assert_eq!(s.next_delay(early, HealthStatus::Healthy), s.interval);
        let late = Duration::from_secs(11);
        assert_eq!(s.next_delay(late, HealthStatus::Starting), s.interval);
    }

    #[test]
    fn settings_take_dockerds_defaults_and_the_shell() {
        let spec = |test: &[&str]| pb::ContainerSpec {
            health_check: Some(pb::HealthCheck {
                test: test.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = Settings::of(&spec(&["CMD-SHELL", "test -f /ok"])).unwrap();
        assert_eq!(s.cmd, ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.start_period, Duration::ZERO);
        assert_eq!(s.start_interval, Duration::from_secs(5));
        assert_eq!(s.retries, 3);
        assert_eq!(
            Settings::of(&spec(&["CMD", "ls", "/"])).unwrap().cmd,
            ["ls", "/"]
        );
        // The container's shell (Config.Shell, the image's SHELL) runs CMD-SHELL.
        let mut bash = spec(&["CMD-SHELL", "true"]);
        bash.process = Some(pb::Process {
            shell: vec!["/bin/bash".to_owned(), "-c".to_owned()],
            ..Default::default()
        });
        assert_eq!(
            Settings::of(&bash).unwrap().cmd,
            ["/bin/bash", "-c", "true"]
        );
        assert_eq!(Settings::of(&spec(&["NONE"])), None);
        assert_eq!(Settings::of(&spec(&[])), None);
        assert_eq!(Settings::of(&spec(&["BOGUS", "x"])), None);
        assert_eq!(Settings::of(&pb::ContainerSpec::default()), None);
    }

    #[test]
    fn output_is_cut_at_4096_bytes() {
        let mut o = Output::default();
        o.push(b"hello ");
        assert_eq!(o.text(), "hello ");
        o.push(&[b'x'; 5000]);
        let t = o.text();
        assert_eq!(t.len(), MAX_OUTPUT + 3);
        assert!(t.ends_with("xxx..."));
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        for (d, s) in [
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(120), "2m0s"),
            (Duration::from_secs(3725), "1h2m5s"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(42), "42ns"),
        ] {
            assert_eq!(go_duration(d), s);
        }
        assert_eq!(
            timed_out(Duration::from_secs(1), ""),
            "Health check exceeded timeout (1s)"
        );
        assert_eq!(
            timed_out(Duration::from_secs(2), "so far"),
            "Health check exceeded timeout (2s): so far"
        );
    }
}

//! The network benchmark's summary lines, table and Markdown section.

use std::fmt::Write as _;

use crate::{
    network::{Attach, EngineNetwork, NetworkResults},
    report::{met, stats, verdict},
};

/// The network issue's target: Berth's median `docker run --rm` on the default network at most
/// this fraction of dockerd's.
pub(crate) const NET_RUN_TARGET_RATIO: f64 = 0.3;
/// The target for one attach: p50 under this, seconds.
pub(crate) const ATTACH_TARGET_SECS: f64 = 0.005;
/// "Flat": the p50 at the largest count at most this many times the one at the smallest.
pub(crate) const ATTACH_FLAT_RATIO: f64 = 1.5;
/// Where Berth's attach time goes (the phases berth-network and berth-runtime log at debug
/// level), for the method text.
const ATTACH_PHASES: &str = "Where the attach time goes (Berth; `RUST_LOG=berth_network=debug,\
    berth_runtime=debug` logs the phases of every connect): the gateway asks the runtime, which \
    checks the endpoint with the network service (one gRPC call) and connects it (a second); \
    the network service records the endpoint, its address, the `connect` event, the embedded \
    DNS server's record and the default routes it takes over in one redb transaction (one \
    fsync), then at once adds the endpoint's nft element (a line to the service's one \
    long-lived `nft -i` child: an element of a non-interval set, nothing read back; until \
    this change an `nft -f -` process per attach, 3-9 ms of fork and exec on a loaded host) \
    and makes the links: the bridge checked, the \
    veth created with its peer in the container's netns (netlink), then one thread in the \
    netns sets the address, the routes and opens the DNS server's sockets. Its answer waits \
    for JetStream to store the `connect` event (the settle layer), then the runtime rewrites \
    /etc/hosts and resolv.conf in place and records the container (a second fsync). Until \
    this change every attach also ran `iptables` up to four times (the DOCKER-USER accept, \
    now checked by a task of its own after the attach), made three store commits and \
    started a second thread in the netns for the DNS sockets.";
/// The goal for DNS back after a SIGKILL of the network service, seconds.
pub(crate) const DNS_BACK_GOAL_SECS: f64 = 1.0;

fn median(v: &[f64]) -> Option<f64> {
    stats(v).map(|s| s.median)
}

fn secs3(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.3}"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |s| format!("{:.2} ms", s * 1e3))
}

fn kib_median(v: &[u64]) -> Option<f64> {
    median(&v.iter().map(|k| *k as f64).collect::<Vec<_>>())
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MiB", k / 1024.0))
}

fn ratio(b: Option<f64>, d: Option<f64>) -> Option<f64> {
    Some(b? / d?).filter(|r| r.is_finite())
}

/// The p50s of each count, and the verdict on them: under the target and flat.
fn attach_verdict(a: &[Attach]) -> String {
    let p50s: Vec<Option<f64>> = a.iter().map(|x| median(&x.secs)).collect();
    let (Some(Some(first)), Some(Some(last))) = (p50s.first(), p50s.last()) else {
        return "n/a".to_owned();
    };
    let under = p50s
        .iter()
        .all(|p| p.is_some_and(|p| p < ATTACH_TARGET_SECS));
    let flat = *last <= *first * ATTACH_FLAT_RATIO;
    format!(
        "p50 under {} ms: {}; flat (p50 at {} ≤ {ATTACH_FLAT_RATIO}× p50 at {}): {}",
        ATTACH_TARGET_SECS * 1e3,
        met(under),
        a.last().map_or(0, |x| x.running),
        a.first().map_or(0, |x| x.running),
        met(flat)
    )
}

fn attach_p50s(a: &[Attach]) -> String {
    a.iter()
        .map(|x| format!("{} at {}", ms(median(&x.secs)), x.running))
        .collect::<Vec<_>>()
        .join(", ")
}

impl NetworkResults {
    fn run_ratio(&self) -> Option<f64> {
        ratio(median(&self.berth.run), median(&self.dockerd.run))
    }

    fn concurrent_line(&self, name: &str, e: &EngineNetwork) -> String {
        let c = &e.concurrent;
        let ok = c.errors == 0 && c.lookups > 0 && c.answered == c.lookups;
        let mut s = format!(
            "{name}: {} errors in {:.2} s, {}/{} lookups answered ({})",
            c.errors,
            c.secs,
            c.answered,
            c.lookups,
            met(ok)
        );
        if let Some(err) = &c.first_error {
            let _ = write!(s, "; first error: {}", err.lines().next().unwrap_or(""));
        }
        s
    }

    pub(crate) fn summary_lines(&self) -> Vec<String> {
        let (b, d) = (&self.berth, &self.dockerd);
        let dns = stats(&b.dns_back);
        vec![
            format!(
                "`docker run --rm busybox true` on the default network, median of {}: Berth {} \
                 s, dockerd {} s; Berth/dockerd **{}**",
                self.plan.runs,
                secs3(median(&b.run)),
                secs3(median(&d.run)),
                verdict(self.run_ratio(), NET_RUN_TARGET_RATIO)
            ),
            format!(
                "Attach (`POST /networks/{{id}}/connect`), p50 by running containers: Berth {}; \
                 dockerd {}; Berth **{}**",
                attach_p50s(&b.attach),
                attach_p50s(&d.attach),
                attach_verdict(&b.attach)
            ),
            format!(
                "{} concurrent `docker run -d` on one user network, {} of them looking up all the \
                 others: {}; {}",
                self.plan.concurrent,
                self.plan.resolvers,
                self.concurrent_line("**Berth**", b),
                self.concurrent_line("dockerd", d)
            ),
            format!(
                "One container publishing {} ports, start median of {}: Berth {} s, dockerd {} \
                 s (Berth/dockerd {}); memory: Berth's network service +{}, dockerd's {} \
                 docker-proxy processes {}",
                self.plan.ports,
                self.plan.port_runs,
                secs3(median(&b.ports.start)),
                secs3(median(&d.ports.start)),
                ratio(median(&b.ports.start), median(&d.ports.start))
                    .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×")),
                mib(kib_median(&b.ports.mem_kib)),
                d.ports.proxies,
                mib(kib_median(&d.ports.mem_kib)),
            ),
            match dns {
                Some(s) => format!(
                    "DNS back after a SIGKILL of berth-network (Berth only), {} kills ({} s): \
                     median {:.3} s, max {:.3} s (**goal < {DNS_BACK_GOAL_SECS} s: {}**)",
                    b.dns_back.len(),
                    b.dns_back
                        .iter()
                        .map(|s| format!("{s:.3}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.median,
                    s.max,
                    met(s.max < DNS_BACK_GOAL_SECS)
                ),
                None => "DNS back after a SIGKILL of berth-network: not measured".to_owned(),
            },
        ]
    }

    pub(crate) fn table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "network: {} runs, attach at {:?} containers, {} concurrent, {} ports",
            self.plan.runs, self.plan.counts, self.plan.concurrent, self.plan.ports
        );
        for l in self.summary_lines() {
            let _ = writeln!(t, "  {}", l.replace(['`', '*'], ""));
        }
    }

    pub(crate) fn markdown(&self, s: &mut String) {
        let (b, d) = (&self.berth, &self.dockerd);
        let _ = writeln!(
            s,
            "Networking with `{}`, dockerd in Docker's default configuration (bridge, \
             iptables, IP forwarding and masquerade, userland proxy) on a bridge of its own.\n",
            self.image
        );
        let _ = writeln!(s, "| | Berth | dockerd | Berth/dockerd |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        let row = |s: &mut String,
                   name: &str,
                   b: Option<f64>,
                   d: Option<f64>,
                   f: fn(Option<f64>) -> String| {
            let r = ratio(b, d).map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}×"));
            let _ = writeln!(s, "| {name} | {} | {} | {r} |", f(b), f(d));
        };
        row(
            s,
            "`docker run --rm busybox true`, default network, median (s)",
            median(&b.run),
            median(&d.run),
            secs3,
        );
        for (ba, da) in b.attach.iter().zip(&d.attach) {
            row(
                s,
                &format!("attach p50 with {} running containers", ba.running),
                median(&ba.secs),
                median(&da.secs),
                ms,
            );
        }
        row(
            s,
            &format!(
                "{} concurrent `docker run -d`, whole batch (s)",
                self.plan.concurrent
            ),
            Some(b.concurrent.secs),
            Some(d.concurrent.secs),
            secs3,
        );
        row(
            s,
            &format!(
                "`docker run -d` publishing {} ports, median (s)",
                self.plan.ports
            ),
            median(&b.ports.start),
            median(&d.ports.start),
            secs3,
        );
        row(
            s,
            &format!(
                "memory of {} published ports (Berth: network service growth; dockerd: \
                 docker-proxy)",
                self.plan.ports
            ),
            kib_median(&b.ports.mem_kib),
            kib_median(&d.ports.mem_kib),
            mib,
        );
        let _ = writeln!(s);
        for l in self.summary_lines() {
            let _ = writeln!(s, "- {l}");
        }
        let _ = writeln!(s, "\n### Method\n");
        let _ = writeln!(
            s,
            "Both engines are driven by the same docker CLI. {runs} timed `docker run --rm \
             {image} true` per engine (after {warm} untimed), the engines alternating. Attach: \
             with {counts:?} `sleep` containers running on the user network `bench-attach` \
             (started {jobs} at a time, not timed), {att} times a fresh `sleep` container on the \
             default network is connected with `POST /networks/bench-attach/connect` on the \
             engine's socket, timed from connect to the whole answer (the CLI's start left \
             out), then removed; flat means the p50 at the largest count is at most \
             {ATTACH_FLAT_RATIO}× the one at the smallest. Concurrency: {conc} `docker run -d \
             --network bench-many --name bench-many-N` spawned at once; then the first {res} \
             run busybox `nslookup -type=a` of every other one (an answer has a `Name:`). \
             Ports: `docker run -d -p {p0}-{p1}:{p0}-{p1}` ({pruns} runs, the range checked \
             free first); memory is the VmRSS of berth-network after the start minus before, \
             and the summed VmRSS of dockerd's docker-proxy children (one per port and address \
             family; the RSS of each counts the pages they share). DNS back: with two \
             containers on `bench-dns`, berth-network gets SIGKILL and `docker exec` runs \
             `nslookup` every 20 ms (each in the background, so that one sent while the service is \
             down and waiting for its own timeout does not hold the next) until one answers; \
             timed from the kill. Every \
             container and network is removed at the end; dockerd's iptables chains and rules \
             are taken out and `ip_forward` set back.\n\n{ATTACH_PHASES}\n",
            runs = self.plan.runs,
            image = self.image,
            warm = self.plan.warmup,
            counts = self.plan.counts,
            jobs = self.plan.jobs,
            att = self.plan.attaches,
            conc = self.plan.concurrent,
            res = self.plan.resolvers,
            p0 = self.port_start,
            p1 = u32::from(self.port_start) + u32::from(self.plan.ports) - 1,
            pruns = self.plan.port_runs,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{Concurrent, Plan, Ports};

    fn plan() -> Plan {
        Plan {
            runs: 3,
            warmup: 1,
            counts: vec![1, 100, 500],
            attaches: 3,
            concurrent: 50,
            resolvers: 3,
            ports: 100,
            port_base: 20000,
            port_runs: 3,
            kills: 3,
            jobs: 8,
        }
    }

    fn engine(k: f64, attach: [f64; 3]) -> EngineNetwork {
        EngineNetwork {
            run: vec![0.1 * k, 0.2 * k, 0.3 * k],
            attach: [1, 100, 500]
                .into_iter()
                .zip(attach)
                .map(|(running, p)| Attach {
                    running,
                    secs: vec![p, p * 2.0, p / 2.0],
                })
                .collect(),
            concurrent: Concurrent {
                secs: 2.0 * k,
                errors: 0,
                first_error: None,
                lookups: 147,
                answered: 147,
            },
            ports: Ports {
                start: vec![0.5 * k; 3],
                mem_kib: vec![1024, 2048, 4096],
                proxies: 0,
            },
            dns_back: vec![0.2, 0.4, 0.3],
        }
    }

    fn results() -> NetworkResults {
        NetworkResults {
            image: "127.0.0.1:5000/busybox:latest".to_owned(),
            plan: plan(),
            port_start: 20000,
            berth: engine(0.25, [0.002, 0.0021, 0.0025]),
            dockerd: EngineNetwork {
                ports: Ports {
                    start: vec![2.0; 3],
                    mem_kib: vec![100 * 1024; 3],
                    proxies: 100,
                },
                dns_back: Vec::new(),
                ..engine(1.0, [0.01, 0.02, 0.05])
            },
        }
    }

    #[test]
    fn the_summary_says_the_targets() {
        let r = results();
        let l = r.summary_lines();
        assert_eq!(
            l[0],
            "`docker run --rm busybox true` on the default network, median of 3: Berth 0.050 s, \
             dockerd 0.200 s; Berth/dockerd **0.250× (target ≤ 0.3×: met)**"
        );
        assert_eq!(
            l[1],
            "Attach (`POST /networks/{id}/connect`), p50 by running containers: Berth 2.00 ms \
             at 1, 2.10 ms at 100, 2.50 ms at 500; dockerd 10.00 ms at 1, 20.00 ms at 100, \
             50.00 ms at 500; Berth **p50 under 5 ms: met; flat (p50 at 500 ≤ 1.5× p50 at 1): \
             met**"
        );
        assert!(l[2].contains("**Berth**: 0 errors in 0.50 s, 147/147 lookups answered (met)"));
        assert!(l[3].contains("Berth 0.125 s, dockerd 2.000 s (Berth/dockerd 0.062×)"));
        assert!(l[3].contains(
            "Berth's network service +2.0 MiB, dockerd's 100 docker-proxy processes 100.0 MiB"
        ));
        assert_eq!(
            l[4],
            "DNS back after a SIGKILL of berth-network (Berth only), 3 kills (0.200, 0.400, \
             0.300 s): median 0.300 s, max 0.400 s (**goal < 1 s: met**)"
        );
        let mut md = String::new();
        r.markdown(&mut md);
        assert!(
            md.contains("| attach p50 with 500 running containers | 2.50 ms | 50.00 ms | 0.050× |")
        );
        assert!(md.contains("`docker run -d -p 20000-20099:20000-20099`"));
        let mut t = String::new();
        r.table(&mut t);
        assert!(!t.contains('`') && t.contains("goal < 1 s: met"));
    }

    #[test]
    fn misses_are_not_met() {
        let mut r = results();
        r.berth = engine(0.5, [0.002, 0.004, 0.006]);
        r.berth.concurrent.errors = 2;
        r.berth.concurrent.first_error = Some("Error response\nmore".to_owned());
        r.berth.dns_back = vec![0.5, 1.2];
        let l = r.summary_lines();
        assert!(
            l[0].ends_with("**0.500× (target ≤ 0.3×: not met)**"),
            "{}",
            l[0]
        );
        assert!(
            l[1].ends_with("p50 under 5 ms: not met; flat (p50 at 500 ≤ 1.5× p50 at 1): not met**")
        );
        assert!(l[2].contains(
            "2 errors in 1.00 s, 147/147 lookups answered (not met); first error: Error response;"
        ));
        assert!(l[4].contains("max 1.200 s (**goal < 1 s: not met**)"));
        r.berth.dns_back.clear();
        assert!(r.summary_lines()[4].ends_with("not measured"));
    }
}

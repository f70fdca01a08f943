//! docker top: the processes of a container — those in its pid namespace — read from /proc
//! for the default `-ef` columns, or through `ps` with the caller's options (as Docker does)
//! filtered to the container's pids.

use std::{collections::BTreeSet, path::Path};

use berth_proto::runtime::v1 as pb;

use crate::{container_error::ContainerError, lifecycle::Containers};

impl Containers {
    /// GET /containers/{id}/top?ps_args=.
    pub(crate) async fn top(
        &self,
        req: &pb::TopRequest,
    ) -> Result<pb::TopResponse, ContainerError> {
        let c = self.find(&req.id)?;
        if !c.state.running() || c.state.pid == 0 {
            return Err(ContainerError::conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let pids = namespace_pids(Path::new("/proc"), c.state.pid)?;
        let args = req.ps_args.trim();
        if args.is_empty() || args == "-ef" {
            let procs = Procfs::new(Path::new("/proc"));
            Ok(pb::TopResponse {
                titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                    .map(str::to_owned)
                    .to_vec(),
                processes: pids
                    .iter()
                    .filter_map(|p| procs.row(*p))
                    .map(|values| pb::StringList { values })
                    .collect(),
            })
        } else {
            // `-q pids` selects the container's processes; some options (such as f) cannot be
            // combined with it, so without it on failure (the output is filtered anyway).
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            let mut out = ps(args.split_whitespace().chain(["-q", &list.join(",")])).await?;
            if !out.status.success() {
                out = ps(args.split_whitespace()).await?;
            }
            if !out.status.success() {
                return Err(ContainerError::Internal(anyhow::anyhow!(
                    "ps: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
        }
    }
}

async fn ps<'a>(
    args: impl Iterator<Item = &'a str>,
) -> Result<std::process::Output, ContainerError> {
    tokio::process::Command::new("ps")
        .args(args)
        .output()
        .await
        .map_err(|e| ContainerError::Internal(anyhow::anyhow!("running ps: {e}")))
}

/// The pids (host view) of the processes in the same pid namespace as `init`.
fn namespace_pids(proc: &Path, init: u32) -> Result<BTreeSet<u32>, ContainerError> {
    let ns = std::fs::read_link(proc.join(init.to_string()).join("ns/pid"))?;
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(proc)?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|n| n == ns) {
            out.insert(pid);
        }
    }
    Ok(out)
}

/// moby's parsePSOutput: the PID column located by its title; rows of other pids dropped;
/// the last column keeps its spaces.
fn parse_ps(output: &str, pids: &BTreeSet<u32>) -> Result<pb::TopResponse, ContainerError> {
    let mut lines = output.lines();
    let titles: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let pid_col = titles.iter().position(|t| *t == "PID").ok_or_else(|| {
        ContainerError::Internal(anyhow::anyhow!("Couldn't find PID field in ps output"))
    })?;
    let mut rows = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_fields(line, titles.len());
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            rows.push(pb::StringList { values: fields });
        }
    }
    Ok(pb::TopResponse {
        titles: titles.into_iter().map(str::to_owned).collect(),
        processes: rows,
    })
}

/// Splits `line` into `n` whitespace-separated fields, the last one taking the rest.
fn split_fields(line: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line.trim_start();
    while out.len() + 1 < n && !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() || out.len() + 1 == n {
        out.push(rest.trim_end().to_owned());
    }
    out
}

/// What `ps -ef` shows, read from /proc.
struct Procfs<'a> {
    root: &'a Path,
    ticks: u64,
    boot: i64,
    now: i64,
}

impl<'a> Procfs<'a> {
    fn new(root: &'a Path) -> Procfs<'a> {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|t| *t > 0)
            .unwrap_or(100) as u64;
        let boot = std::fs::read_to_string(root.join("stat"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
            .unwrap_or(0);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Procfs {
            root,
            ticks,
            boot,
            now,
        }
    }

    /// UID PID PPID C STIME TTY TIME CMD.
    fn row(&self, pid: u32) -> Option<Vec<String>> {
        let dir = self.root.join(pid.to_string());
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let (head, rest) = stat.rsplit_once(") ")?;
        let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
        // Fields after the command, numbered from 3 (state) as in proc(5).
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| {
            f.get(n - 3)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (ppid, tty_nr) = (field(4), field(7));
        let cpu = (field(14) + field(15)) / self.ticks;
        let started = self.boot + (field(22) / self.ticks) as i64;
        let elapsed = (self.now - started).max(1) as u64;
        let uid = std::fs::read_to_string(dir.join("status"))
            .ok()?
            .lines()
            .find_map(|l| {
                l.strip_prefix("Uid:")?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .unwrap_or(0u32);
        let user = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmd = if cmdline.is_empty() {
            format!("[{comm}]")
        } else {
            String::from_utf8_lossy(&cmdline)
                .trim_end_matches('\0')
                .replace('\0', " ")
        };
        Some(vec![
            user,
            pid.to_string(),
            ppid.to_string(),
            (cpu * 100 / elapsed).to_string(),
            stime(started, self.now),
            tty(tty_nr),
            format!("{:02}:{:02}:{:02}", cpu / 3600, cpu / 60 % 60, cpu % 60),
            cmd,
        ])
    }
}

/// ps's STIME: `HH:MM` for today, `MonDD` before (UTC).
fn stime(started: i64, now: i64) -> String {
    let at = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    let (s, n) = (at(started), at(now));
    if s.date() == n.date() {
        format!("{:02}:{:02}", s.hour(), s.minute())
    } else {
        let month = format!("{:?}", s.month());
        format!("{}{:02}", &month[..3], s.day())
    }
}

/// ps's TTY: `pts/N` for pseudo-terminals, `?` for none.
fn tty(nr: u64) -> String {
    let major = (nr >> 8) & 0xfff;
    let minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
    match (nr, major) {
        (0, _) => "?".to_owned(),
        (_, 136..=143) => format!("pts/{}", (major - 136) * 256 + minor),
        (_, 4) => format!("tty{minor}"),
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_is_filtered_by_pid() {
        let out = "UID   PID  PPID  C STIME TTY  TIME     CMD\n\
                   root  10   1     0 10:00 ?    00:00:00 sleep 100\n\
                   root  11   1     0 10:00 ?    00:00:00 other thing\n";
        let pids: BTreeSet<u32> = [10].into_iter().collect();
        let v = parse_ps(out, &pids).unwrap();
        assert_eq!(v.titles[1], "PID");
        assert_eq!(v.processes.len(), 1);
        assert_eq!(
            v.processes[0].values,
            [
                "root",
                "10",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 100"
            ]
        );
        assert!(parse_ps("A B\n1 2\n", &pids).is_err());
    }

    #[test]
    fn ttys_and_times() {
        assert_eq!(tty(0), "?");
        assert_eq!(tty(136 << 8 | 3), "pts/3");
        assert_eq!(stime(3600 * 25 + 60, 3600 * 25 + 120), "01:01");
        assert_eq!(stime(0, 86400 * 40), "Jan01");
    }

    #[test]
    fn this_process_has_a_row() {
        let procs = Procfs::new(Path::new("/proc"));
        let row = procs.row(std::process::id()).unwrap();
        assert_eq!(row.len(), 8);
        assert_eq!(row[1], std::process::id().to_string());
        let pids = namespace_pids(Path::new("/proc"), std::process::id()).unwrap();
        assert!(pids.contains(&std::process::id()));
    }
}

//! One long-lived `nft -i` child that runs the element changes of every operation (an attach's
//! endpoint element, a port's map element), instead of a fork and exec of `nft` per operation
//! (3-9 ms each on a loaded host, the largest part of an attach; a line to the child takes
//! about 0.2 ms).
//!
//! Each transaction is one line (its commands joined with `;`: nft runs one input line as one
//! batch, all or nothing), followed by a line with a word nft cannot parse, `berth_sync_<n>`:
//! the syntax error nft prints for it, echoing the word, ends the transaction's output. nft
//! writes nothing on success and its errors (and the echo) on stderr, so whatever stderr holds
//! before the sentinel's error is the transaction's error. The child reads only its stdin: when
//! the service dies it sees the end of its input and exits; a transaction it was running is
//! applied whole or not at all (and the table is rewritten from the store at the next start).

use std::time::Duration;

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStderr, ChildStdin},
};

/// How long a transaction may take before the child is taken for hung and killed.
const PATIENCE: Duration = Duration::from_secs(20);

/// The prefix of the sentinel word that ends a transaction's output.
const SENTINEL: &str = "berth_sync_";

/// The child, started at the first transaction and again after one that failed to talk to it.
#[derive(Debug, Default)]
pub(crate) struct Session {
    live: tokio::sync::Mutex<Option<Live>>,
}

#[derive(Debug)]
struct Live {
    child: Child,
    stdin: ChildStdin,
    stderr: BufReader<ChildStderr>,
    next: u64,
}

/// Why a transaction did not run through the child.
#[derive(Debug)]
pub(crate) enum Failed {
    /// nft refused it (its error message): it was not applied.
    Refused(String),
    /// The child could not be started or talked to: whether the transaction was applied is
    /// unknown (the element changes are idempotent, so it may be run again).
    Session(anyhow::Error),
}

/// Whether `text` can go through the session: element changes only, one command a line (the
/// whole table at start is written by a process of its own).
pub(crate) fn fits(text: &str) -> bool {
    !text.is_empty()
        && text.lines().all(|l| {
            (l.starts_with("add element ") || l.starts_with("delete element "))
                && !l.contains(';')
                && !l.contains(SENTINEL)
        })
}

/// The commands of `text` as one input line: one batch.
fn one_line(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What nft printed for a transaction, from the lines before its sentinel's echo: the
/// sentinel's own error is the last of them; markers (`^^^`) and blank lines are left out.
fn error_of(mut lines: Vec<String>) -> Option<String> {
    if lines.last().is_some_and(|l| l.contains("Error:")) {
        lines.pop();
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// A line nft prints under an input line to mark where an error is.
fn is_marker(line: &str) -> bool {
    line.trim_matches(|c: char| c == '^' || c == '~' || c.is_whitespace())
        .is_empty()
}

impl Session {
    /// Runs the element changes of `text` (see [`fits`]) as one transaction.
    pub(crate) async fn run(&self, text: &str) -> Result<(), Failed> {
        let mut live = self.live.lock().await;
        if live.is_none() {
            *live = Some(spawn().map_err(Failed::Session)?);
        }
        let Some(l) = live.as_mut() else {
            return Err(Failed::Session(anyhow::anyhow!("no nft session")));
        };
        let result = tokio::time::timeout(PATIENCE, l.exchange(&one_line(text))).await;
        match result {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(error))) => Err(Failed::Refused(error)),
            Ok(Err(e)) => {
                *live = None;
                Err(Failed::Session(e))
            }
            Err(_) => {
                *live = None;
                Err(Failed::Session(anyhow::anyhow!(
                    "nft did not answer in {PATIENCE:?}"
                )))
            }
        }
    }
}

fn spawn() -> anyhow::Result<Live> {
    let mut child = tokio::process::Command::new("nft")
        .arg("-i")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("running nft -i: {e}"))?;
    let (Some(stdin), Some(stderr)) = (child.stdin.take(), child.stderr.take()) else {
        anyhow::bail!("nft -i without its pipes");
    };
    Ok(Live {
        child,
        stdin,
        stderr: BufReader::new(stderr),
        next: 0,
    })
}

impl Live {
    /// Sends one transaction and reads what nft printed for it: None when it was applied.
    async fn exchange(&mut self, line: &str) -> anyhow::Result<Option<String>> {
        let sentinel = format!("{SENTINEL}{}", self.next);
        self.next += 1;
        self.stdin
            .write_all(format!("{line}\n{sentinel}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let mut lines = Vec::new();
        let mut buf = String::new();
        loop {
            buf.clear();
            if self.stderr.read_line(&mut buf).await? == 0 {
                let status = self.child.try_wait().ok().flatten();
                anyhow::bail!("nft -i exited ({status:?})");
            }
            let l = buf.trim_end_matches('\n');
            if l.trim() == sentinel {
                return Ok(error_of(lines));
            }
            if !is_marker(l) {
                lines.push(l.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_element_changes_go_through_the_session() {
        assert!(fits(
            "add element inet b endpoints { 10.0.0.2 . \"b0\" }\n\
             delete element inet b endpoints { 10.0.0.2 . \"b0\" }\n"
        ));
        assert!(!fits(""));
        assert!(!fits("add table inet b\ndelete table inet b\n"));
        assert!(!fits("add element inet b x { 1 }; flush ruleset\n"));
        assert!(!fits("add element inet b berth_sync_1 { 1 }\n"));
        assert_eq!(
            one_line("add element inet b s { 1 }\nadd element inet b s { 2 }\n"),
            "add element inet b s { 1 }; add element inet b s { 2 }"
        );
    }

    #[test]
    fn the_sentinels_error_is_not_the_transactions() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            error_of(s(&[
                "Error: syntax error, unexpected newline, expecting string"
            ])),
            None
        );
        assert_eq!(error_of(Vec::new()), None);
        assert_eq!(
            error_of(s(&[
                "Error: No such file or directory",
                "add element inet b nosuch { 1 }",
                "Error: syntax error, unexpected newline"
            ]))
            .as_deref(),
            Some("Error: No such file or directory\nadd element inet b nosuch { 1 }")
        );
        assert!(is_marker("            ^^^^^~~~"));
        assert!(is_marker(""));
        assert!(!is_marker("Error: x"));
    }

    fn nft(args: &[&str]) -> String {
        let out = std::process::Command::new("nft")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Against the host's nft, in a table of its own (root only, as the e2e tests).
    #[tokio::test]
    async fn a_live_session_applies_refuses_whole_and_goes_on() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let t = format!("berth_ut_{}", std::process::id());
        nft(&[&format!(
            "add table inet {t}; add set inet {t} s {{ type ipv4_addr; }}"
        )]);
        let session = Session::default();
        let add = |ip: &str| format!("add element inet {t} s {{ {ip} }}\n");
        session.run(&add("10.0.0.1")).await.unwrap();
        let bad = add("10.0.0.2") + &format!("add element inet {t} nosuch {{ 10.0.0.3 }}\n");
        match session.run(&bad).await {
            Err(Failed::Refused(e)) => assert!(e.contains("nosuch"), "{e}"),
            other => panic!("{other:?}"),
        }
        session.run(&add("10.0.0.4")).await.unwrap();
        let listed = nft(&["list", "set", "inet", &t, "s"]);
        nft(&["delete", "table", "inet", &t]);
        assert!(
            listed.contains("10.0.0.1") && listed.contains("10.0.0.4"),
            "{listed}"
        );
        assert!(
            !listed.contains("10.0.0.2"),
            "one batch, all or nothing: {listed}"
        );
    }
}

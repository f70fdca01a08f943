//! Resource limits. The container inherits the host's limits (the shim's) unless the config
//! asks for others: a runtime that asks for more than the host's hard limit gets EPERM for
//! every container (STACK.md), so a request above it fails with a message that says so.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::{config::Rlimit, error::StartError};

/// The resource named `name` (`nofile`, `RLIMIT_NOFILE`, ...).
pub fn resource(name: &str) -> Result<Resource, String> {
    let lower = name.to_ascii_lowercase();
    let short = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    Ok(match short {
        "as" => Resource::RLIMIT_AS,
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        _ => return Err(format!("unknown rlimit {name:?}")),
    })
}

/// Applies `limits` to the calling process; limits not listed stay as inherited.
pub fn apply(limits: &[Rlimit]) -> Result<(), StartError> {
    for l in limits {
        let res = resource(&l.kind).map_err(StartError::other)?;
        if let Err(e) = setrlimit(res, l.soft, l.hard) {
            let host = getrlimit(res).map(|(_, h)| h).unwrap_or(0);
            let hint = if e == nix::errno::Errno::EPERM && l.hard > host {
                format!(" (the host's hard limit is {host})")
            } else {
                String::new()
            };
            return Err(StartError::other(format!(
                "setting rlimit {}={}:{}: {e}{hint}",
                l.kind, l.soft, l.hard
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(resource("nofile").unwrap(), Resource::RLIMIT_NOFILE);
        assert_eq!(resource("RLIMIT_NPROC").unwrap(), Resource::RLIMIT_NPROC);
        assert!(resource("bogus").is_err());
    }
}

//! The security options of a create body in Docker's words: capabilities, `--security-opt`,
//! ulimits and the pid/ipc/uts namespace modes, validated as dockerd validates them.

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;

use crate::error::ApiError;

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(msg.into())
}

/// Capability names as Docker takes them (`net_admin`, `CAP_NET_ADMIN`, `ALL`), normalized
/// to `CAP_NET_ADMIN` or `ALL`; an unknown one is Docker's error.
pub fn capabilities(list: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    list.unwrap_or_default()
        .into_iter()
        .map(|c| {
            let up = c.trim().to_uppercase();
            if up == "ALL" {
                return Ok(up);
            }
            let name = if up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            };
            if berth_bundle::ALL_CAPABILITIES.contains(&name.as_str()) {
                Ok(name)
            } else {
                Err(invalid(format!("unknown capability: {name:?}")))
            }
        })
        .collect()
}

/// `--security-opt` entries (moby's parseSecurityOpt), normalized to `key=value`. Seccomp
/// takes `unconfined`, `builtin` or a profile (Docker's JSON, checked here); Berth has no
/// AppArmor or SELinux labels yet: only the values that ask for none of them are taken; the
/// rest are refused by name.
pub fn security_opts(list: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for opt in list.unwrap_or_default() {
        if opt == "no-new-privileges" {
            out.push("no-new-privileges=true".to_owned());
            continue;
        }
        let (k, v) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| invalid(format!("invalid --security-opt 1: {opt:?}")))?;
        match (k, v) {
            ("no-new-privileges", v) => {
                let b = match v {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => return Err(invalid(format!("invalid --security-opt 2: {opt:?}"))),
                };
                out.push(format!("no-new-privileges={b}"));
            }
            ("seccomp" | "apparmor", "unconfined") => out.push(format!("{k}=unconfined")),
            ("seccomp", "builtin") => out.push(format!("seccomp={v}")),
            ("seccomp", profile) => {
                // The CLI sends the profile file's content; kept as sent, as dockerd keeps
                // it (inspect shows it), after the checks dockerd would make at start.
                berth_seccomp::Profile::parse(profile).map_err(|e| invalid(e.to_string()))?;
                out.push(format!("seccomp={profile}"));
            }
            ("apparmor" | "label" | "writable-cgroups", _) => {
                return Err(invalid(format!(
                    "--security-opt {k} is not supported by Berth yet (HostConfig.SecurityOpt)"
                )));
            }
            _ => return Err(invalid(format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    name: String,
    #[serde(default)]
    soft: i64,
    #[serde(default)]
    hard: i64,
}

/// The rlimits Docker's ulimits name (go-units' names and checks); -1 is unlimited.
pub fn ulimits(list: Option<Vec<Ulimit>>) -> Result<Vec<pb::Rlimit>, ApiError> {
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    list.unwrap_or_default()
        .into_iter()
        .map(|u| {
            if !NAMES.contains(&u.name.as_str()) {
                return Err(invalid(format!("invalid ulimit type: {}", u.name)));
            }
            for v in [u.soft, u.hard] {
                if v < -1 {
                    return Err(invalid(format!("invalid ulimit value {v} for {}", u.name)));
                }
            }
            let lim = |v: i64| if v == -1 { i64::MAX } else { v };
            if lim(u.soft) > lim(u.hard) {
                return Err(invalid(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                )));
            }
            Ok(pb::Rlimit {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            })
        })
        .collect()
}

/// `--pid`, `--ipc` and `--uts`: `""`/`private` (a new namespace, `shareable` too for ipc) or
/// `host`; Docker's error for anything else; another container's namespace is refused by name
/// until Berth can join one.
pub fn namespace_mode(kind: &str, flag: &str, mode: &str) -> Result<String, ApiError> {
    let ok = match kind {
        "IPC" => matches!(mode, "" | "private" | "shareable" | "host"),
        _ => matches!(mode, "" | "private" | "host"),
    };
    if mode.starts_with("container:") {
        return Err(invalid(format!(
            "{flag} {mode} is not supported by Berth yet"
        )));
    }
    if kind == "IPC" && mode == "none" {
        return Err(invalid(format!(
            "{flag} none is not supported by Berth yet"
        )));
    }
    if !ok {
        return Err(invalid(format!("invalid {kind} mode: {mode}")));
    }
    Ok(mode.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_as_docker_takes_them() {
        let c = capabilities(Some(vec![
            "net_admin".into(),
            "CAP_SYS_TIME".into(),
            "all".into(),
        ]));
        assert_eq!(c.unwrap(), ["CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"]);
        let e = capabilities(Some(vec!["FOO".into()])).unwrap_err();
        assert_eq!(e.message, r#"unknown capability: "CAP_FOO""#);
    }

    #[test]
    fn security_opts_as_moby_parses_them() {
        let o = security_opts(Some(vec![
            "no-new-privileges".into(),
            "no-new-privileges:false".into(),
            "seccomp=unconfined".into(),
            "apparmor=unconfined".into(),
        ]));
        assert_eq!(
            o.unwrap(),
            [
                "no-new-privileges=true",
                "no-new-privileges=false",
                "seccomp=unconfined",
                "apparmor=unconfined"
            ]
        );
        let err = |s: &str| security_opts(Some(vec![s.to_owned()])).unwrap_err().message;
        assert_eq!(err("foo"), r#"invalid --security-opt 1: "foo""#);
        assert_eq!(err("foo=bar"), r#"invalid --security-opt 2: "foo=bar""#);
        assert_eq!(
            err("no-new-privileges=maybe"),
            r#"invalid --security-opt 2: "no-new-privileges=maybe""#
        );
        let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
        assert_eq!(
            security_opts(Some(vec![
                format!("seccomp={profile}"),
                "seccomp=builtin".into()
            ]))
            .unwrap(),
            [format!("seccomp={profile}"), "seccomp=builtin".to_owned()]
        );
        assert!(err("seccomp={").starts_with("Decoding seccomp profile failed: "));
        assert!(err(r#"seccomp={"defaultAction":"SCMP_ACT_NOPE"}"#).contains("unknown action"));
        assert!(err("label=disable").starts_with("--security-opt label is not supported"));
    }

    #[test]
    fn ulimits_and_modes() {
        let u = |name: &str, soft, hard| Ulimit {
            name: name.to_owned(),
            soft,
            hard,
        };
        let r = ulimits(Some(vec![u("nofile", 100, 200), u("core", -1, -1)])).unwrap();
        assert_eq!((r[0].soft, r[1].hard), (100, -1));
        assert_eq!(
            ulimits(Some(vec![u("nofile", 300, 200)]))
                .unwrap_err()
                .message,
            "ulimit soft limit must be less than or equal to hard limit: 300 > 200"
        );
        assert_eq!(
            ulimits(Some(vec![u("files", 1, 1)])).unwrap_err().message,
            "invalid ulimit type: files"
        );
        assert_eq!(namespace_mode("PID", "--pid", "host").unwrap(), "host");
        assert_eq!(
            namespace_mode("UTS", "--uts", "bogus").unwrap_err().message,
            "invalid UTS mode: bogus"
        );
        assert!(namespace_mode("IPC", "--ipc", "container:x").is_err());
        assert_eq!(
            namespace_mode("IPC", "--ipc", "shareable").unwrap(),
            "shareable"
        );
    }
}

//! A container's seccomp filter: Docker's default profile, the one `--security-opt
//! seccomp=<json>` gave, or none (`seccomp=unconfined`, `--privileged`), as dockerd chooses.
//! Compiled once per (profile digest, capabilities, architecture) and cached: a container
//! start costs a lookup, and the shim only loads the program.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use berth_bundle::{BpfInsn, Seccomp};
use berth_config::SeccompProfile;
use berth_proto::runtime::v1 as pb;
use berth_seccomp::{Arch, Profile, Target};
use sha2::{Digest, Sha256};

use crate::container_error::ContainerError;

/// Compiled programs kept at most; past that the cache starts over.
const KEEP: usize = 64;

/// The profile a container asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice<'a> {
    Unconfined,
    Default,
    Custom(&'a str),
}

/// What the container's security options choose (the last `seccomp=` entry wins, as in
/// moby's parseSecurityOpt), else the daemon's `seccomp-profile`. `--privileged` runs
/// unconfined unless a profile is named (moby's WithSeccomp).
pub(crate) fn choice<'a>(sec: &'a pb::SecuritySpec, daemon: &'a SeccompProfile) -> Choice<'a> {
    match sec
        .security_opt
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix("seccomp="))
    {
        Some("unconfined") => Choice::Unconfined,
        None if sec.privileged => Choice::Unconfined,
        Some("builtin") => Choice::Default,
        Some(json) => Choice::Custom(json),
        None => match daemon {
            SeccompProfile::Builtin => Choice::Default,
            SeccompProfile::Unconfined => Choice::Unconfined,
            SeccompProfile::File { json, .. } => Choice::Custom(json),
        },
    }
}

type Key = ([u8; 32], Vec<String>, Arch);

/// Compiled filters by (profile digest, sorted capabilities, architecture).
pub(crate) struct SeccompCache {
    /// The daemon's `seccomp-profile`.
    daemon: SeccompProfile,
    arch: Option<Arch>,
    kernel: (u64, u64),
    programs: Mutex<HashMap<Key, Option<Arc<Seccomp>>>>,
}

impl SeccompCache {
    /// For this host (its architecture and kernel) and the daemon's profile.
    pub(crate) fn new(daemon: SeccompProfile) -> SeccompCache {
        Self::with_arch(daemon, host_arch())
    }

    /// With filters built for `arch`; None: a kernel without seccomp.
    fn with_arch(daemon: SeccompProfile, arch: Option<Arch>) -> SeccompCache {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        SeccompCache {
            daemon,
            arch,
            kernel: berth_seccomp::kernel_version(release.trim()),
            programs: Mutex::new(HashMap::new()),
        }
    }

    /// The filter for a container with these security options and capabilities (its
    /// bounding set; None: Docker's default set). None: unconfined.
    pub(crate) fn for_container(
        &self,
        sec: &pb::SecuritySpec,
        caps: Option<&[String]>,
    ) -> Result<Option<Arc<Seccomp>>, ContainerError> {
        let choice = choice(sec, &self.daemon);
        let json = match choice {
            Choice::Unconfined => return Ok(None),
            Choice::Default => berth_seccomp::DEFAULT_PROFILE_JSON,
            Choice::Custom(json) => json,
        };
        let Some(arch) = self.arch else {
            // As dockerd's WithSeccomp on a kernel without seccomp (here: or no syscall table
            // for the host): the default profile (or the daemon's) is skipped with a warning,
            // one the container names refused (a start's error: a 500).
            let named = sec
                .security_opt
                .iter()
                .rev()
                .find_map(|o| o.strip_prefix("seccomp="));
            return match named {
                Some(p) if p != "builtin" => Err(ContainerError::new(
                    berth_types::ErrorKind::Internal,
                    "seccomp is not enabled in your kernel, cannot run a custom seccomp profile",
                )),
                _ => {
                    tracing::warn!(
                        "seccomp is not enabled in your kernel, running container without \
                         default profile"
                    );
                    Ok(None)
                }
            };
        };
        let mut caps: Vec<String> = match caps {
            Some(c) => c.to_vec(),
            None => berth_bundle::DEFAULT_CAPABILITIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        };
        caps.sort();
        caps.dedup();
        // The built-in profile's key needs no hashing of its 10 KiB.
        let digest = match choice {
            Choice::Custom(json) => Sha256::digest(json.as_bytes()).into(),
            _ => [0; 32],
        };
        let key: Key = (digest, caps, arch);
        if let Some(p) = self.lock().get(&key) {
            return Ok(p.clone());
        }
        let program = compile(json, &key.1, arch, self.kernel)?;
        let mut programs = self.lock();
        if programs.len() >= KEEP {
            programs.clear();
        }
        programs.insert(key, program.clone());
        Ok(program)
    }

    /// The check at create: a profile that does not compile is refused now rather than at
    /// start. Without seccomp in the kernel nothing is compiled, and dockerd refuses a named
    /// profile only when the container starts.
    pub(crate) fn check(
        &self,
        sec: &pb::SecuritySpec,
        caps: Option<&[String]>,
    ) -> Result<(), ContainerError> {
        if self.arch.is_none() {
            return Ok(());
        }
        self.for_container(sec, caps).map(drop)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Option<Arc<Seccomp>>>> {
        self.programs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The architecture filters are built for; None when the host cannot have one.
fn host_arch() -> Option<Arch> {
    Arch::native().filter(|_| kernel_has_seccomp())
}

/// `docker info`'s SecurityOptions entry and warning, as moby's fillSecurityOptions: none
/// when the host cannot filter.
pub(crate) fn info_entry(daemon: &SeccompProfile) -> Option<(String, Option<&'static str>)> {
    info_entry_on(daemon, host_arch().is_some())
}

fn info_entry_on(daemon: &SeccompProfile, seccomp: bool) -> Option<(String, Option<&'static str>)> {
    if !seccomp {
        return None;
    }
    let warning = (*daemon != SeccompProfile::Builtin)
        .then_some("WARNING: daemon is not using the default seccomp profile");
    Some((
        format!("name=seccomp,profile={}", daemon.info_name()),
        warning,
    ))
}

/// Whether the kernel filters syscalls (moby reads `Seccomp:` in /proc/self/status).
fn kernel_has_seccomp() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| s.contains("\nSeccomp:"))
}

/// Parses and compiles a profile for one container.
pub(crate) fn compile(
    json: &str,
    caps: &[String],
    arch: Arch,
    kernel: (u64, u64),
) -> Result<Option<Arc<Seccomp>>, ContainerError> {
    let invalid = |e: berth_seccomp::ProfileError| ContainerError::invalid(e.to_string());
    let profile = if json == berth_seccomp::DEFAULT_PROFILE_JSON {
        berth_seccomp::default_profile().clone()
    } else {
        Profile::parse(json).map_err(invalid)?
    };
    let target = Target {
        arch,
        caps: caps.to_vec(),
        kernel,
    };
    Ok(berth_seccomp::compile(&profile, &target)
        .map_err(invalid)?
        .map(|p| {
            Arc::new(Seccomp {
                filter: p
                    .filter
                    .iter()
                    .map(|i| BpfInsn {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect(),
                flags: p.flags,
            })
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILTIN: SeccompProfile = SeccompProfile::Builtin;

    fn sec(opts: &[&str], privileged: bool) -> pb::SecuritySpec {
        pb::SecuritySpec {
            security_opt: opts.iter().map(|o| (*o).to_owned()).collect(),
            privileged,
            ..Default::default()
        }
    }

    #[test]
    fn dockerd_chooses_the_profile() {
        assert_eq!(choice(&sec(&[], false), &BUILTIN), Choice::Default);
        assert_eq!(
            choice(&sec(&["seccomp=unconfined"], false), &BUILTIN),
            Choice::Unconfined
        );
        assert_eq!(choice(&sec(&[], true), &BUILTIN), Choice::Unconfined);
        assert_eq!(
            choice(&sec(&["seccomp={}"], true), &BUILTIN),
            Choice::Custom("{}")
        );
        assert_eq!(
            choice(
                &sec(&["no-new-privileges=true", "seccomp={\"a\":1}"], false),
                &BUILTIN
            ),
            Choice::Custom("{\"a\":1}")
        );
    }

    #[test]
    fn compiled_once_per_profile_and_caps() {
        let cache = SeccompCache::new(SeccompProfile::Builtin);
        if cache.arch.is_none() {
            return;
        }
        let a = cache
            .for_container(&sec(&[], false), None)
            .unwrap()
            .unwrap();
        let b = cache
            .for_container(&sec(&[], false), None)
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let admin = ["CAP_SYS_ADMIN".to_owned()];
        let c = cache
            .for_container(&sec(&[], false), Some(&admin))
            .unwrap()
            .unwrap();
        assert_ne!(a.filter, c.filter);
        assert!(
            cache
                .for_container(&sec(&["seccomp=unconfined"], false), None)
                .unwrap()
                .is_none()
        );
        let e = cache
            .for_container(
                &sec(&["seccomp={\"defaultAction\":\"SCMP_ACT_NOPE\"}"], false),
                None,
            )
            .unwrap_err();
        assert!(e.to_string().contains("unknown action"), "{e}");
        assert_eq!(cache.lock().len(), 2);
    }

    #[test]
    fn the_daemon_profile_is_the_default() {
        let file = SeccompProfile::File {
            path: "/etc/p.json".into(),
            json: "{\"d\":1}".to_owned(),
        };
        // No seccomp= option: the daemon's choice; privileged stays unconfined.
        assert_eq!(choice(&sec(&[], false), &file), Choice::Custom("{\"d\":1}"));
        assert_eq!(
            choice(&sec(&[], false), &SeccompProfile::Unconfined),
            Choice::Unconfined
        );
        assert_eq!(choice(&sec(&[], true), &file), Choice::Unconfined);
        // The container's option wins, `builtin` naming Docker's default.
        for daemon in [&file, &SeccompProfile::Unconfined] {
            assert_eq!(
                choice(&sec(&["seccomp=unconfined"], false), daemon),
                Choice::Unconfined
            );
            assert_eq!(
                choice(&sec(&["seccomp=builtin"], false), daemon),
                Choice::Default
            );
            assert_eq!(
                choice(&sec(&["seccomp={}"], false), daemon),
                Choice::Custom("{}")
            );
        }
    }

    #[test]
    fn without_seccomp_in_the_kernel_containers_run_unconfined() {
        let file = SeccompProfile::File {
            path: "/etc/p.json".into(),
            json: "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}".to_owned(),
        };
        for daemon in [BUILTIN, file.clone()] {
            let cache = SeccompCache::with_arch(daemon.clone(), None);
            // Docker's default profile, or the daemon's: skipped, the container starts.
            for opts in [&[][..], &["seccomp=builtin"], &["seccomp=unconfined"]] {
                assert!(
                    cache
                        .for_container(&sec(opts, false), None)
                        .unwrap()
                        .is_none()
                );
                assert!(cache.check(&sec(opts, false), None).is_ok());
            }
            assert!(
                cache
                    .for_container(&sec(&[], true), None)
                    .unwrap()
                    .is_none()
            );
            // A profile the container names: created, then refused at start (a 500).
            let named = sec(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"], false);
            assert!(cache.check(&named, None).is_ok());
            let e = cache.for_container(&named, None).unwrap_err();
            assert_eq!(
                e.to_string(),
                "seccomp is not enabled in your kernel, cannot run a custom seccomp profile"
            );
            assert_eq!(
                berth_errors::HasKind::kind(&e),
                berth_types::ErrorKind::Internal
            );
            // And docker info names no seccomp, with no warning.
            assert_eq!(info_entry_on(&daemon, false), None);
        }
    }

    #[test]
    fn info_names_the_daemon_profile() {
        let info_entry = |d: &SeccompProfile| info_entry_on(d, true);
        assert_eq!(
            info_entry(&BUILTIN),
            Some(("name=seccomp,profile=builtin".to_owned(), None))
        );
        let (entry, warning) = info_entry(&SeccompProfile::Unconfined).unwrap();
        assert_eq!(entry, "name=seccomp,profile=unconfined");
        assert!(warning.is_some());
        let file = SeccompProfile::File {
            path: "/etc/p.json".into(),
            json: String::new(),
        };
        assert_eq!(
            info_entry(&file).unwrap().0,
            "name=seccomp,profile=/etc/p.json"
        );
    }
}

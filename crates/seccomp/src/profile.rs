//! Docker's seccomp profile format (moby `profiles/seccomp`: the OCI `LinuxSeccomp` plus
//! `archMap`, `names`, `includes` and `excludes`), parsed and checked as dockerd and runc
//! check it, and resolved for one container (its capabilities, the host's architecture and
//! kernel) into the rules a filter is built from.

use serde::Deserialize;

use crate::{Arch, ProfileError};

/// A profile as Docker's JSON gives it. Unknown keys are ignored, as Go's decoder does.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    #[serde(default)]
    pub listener_path: String,
    #[serde(default)]
    pub syscalls: Option<Vec<Syscall>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

/// One rule: `names` (or the older `name`) get `action` when every `args` comparison holds,
/// if the rule applies (`includes`/`excludes`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub names: Option<Vec<String>>,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    #[serde(default)]
    pub includes: Option<Filter>,
    #[serde(default)]
    pub excludes: Option<Filter>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    #[serde(default)]
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// When a rule applies: the container has every one of `caps` in its bounding set, the host
/// is one of `arches` (libseccomp's native names: `amd64`, `arm64`, ...), its kernel is at
/// least `min_kernel` (`"4.8"`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What a matching syscall gets (`SECCOMP_RET_*` with its data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    Trace(u16),
    Log,
    Allow,
}

impl Action {
    /// The filter's return value.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillThread => 0,
            Action::KillProcess => 0x8000_0000,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::Trace(m) => 0x7ff0_0000 | u32::from(m),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }

    /// runc's names; `errno` is the rule's `errnoRet` (EPERM when absent).
    fn parse(name: &str, errno: Option<u32>) -> Result<Action, ProfileError> {
        const EPERM: u32 = 1;
        let data = || {
            let e = errno.unwrap_or(EPERM);
            u16::try_from(e)
                .map_err(|_| ProfileError::Invalid(format!("errnoRet {e} is too large")))
        };
        let with_errno = matches!(name, "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE");
        if errno.is_some() && !with_errno {
            return Err(ProfileError::Invalid(format!(
                "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {name}"
            )));
        }
        Ok(match name {
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_ERRNO" => Action::Errno(data()?),
            "SCMP_ACT_TRACE" => Action::Trace(data()?),
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_NOTIFY" => {
                return Err(ProfileError::Unsupported(
                    "SCMP_ACT_NOTIFY (a seccomp agent)".to_owned(),
                ));
            }
            _ => return Err(ProfileError::Invalid(format!("unknown action {name:?}"))),
        })
    }
}

/// A comparison of one argument, as libseccomp's `SCMP_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Ne(u64),
    Lt(u64),
    Le(u64),
    Eq(u64),
    Ge(u64),
    Gt(u64),
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

/// One comparison: argument `index` (0 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cond {
    pub index: u8,
    pub cmp: Cmp,
}

impl Arg {
    fn parse(&self) -> Result<Cond, ProfileError> {
        let index = u8::try_from(self.index)
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| {
                ProfileError::Invalid(format!("argument index {} is out of range", self.index))
            })?;
        let v = self.value;
        let cmp = match self.op.as_str() {
            "SCMP_CMP_NE" => Cmp::Ne(v),
            "SCMP_CMP_LT" => Cmp::Lt(v),
            "SCMP_CMP_LE" => Cmp::Le(v),
            "SCMP_CMP_EQ" => Cmp::Eq(v),
            "SCMP_CMP_GE" => Cmp::Ge(v),
            "SCMP_CMP_GT" => Cmp::Gt(v),
            "SCMP_CMP_MASKED_EQ" => Cmp::MaskedEq {
                mask: v,
                value: self.value_two,
            },
            op => {
                return Err(ProfileError::Invalid(format!(
                    "unknown comparison operator {op:?}"
                )));
            }
        };
        Ok(Cond { index, cmp })
    }
}

/// `SECCOMP_FILTER_FLAG_*` a profile may ask for.
fn flag(name: &str) -> Result<u32, ProfileError> {
    match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => Ok(1),
        "SECCOMP_FILTER_FLAG_LOG" => Ok(2),
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => Ok(4),
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => Err(ProfileError::Unsupported(name.to_owned())),
        _ => Err(ProfileError::Invalid(format!("unknown flag {name:?}"))),
    }
}

/// A rule resolved for a container: the syscall names it covers, its conditions and action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub names: Vec<String>,
    pub conds: Vec<Cond>,
    pub action: Action,
}

/// A profile resolved for one container: what the BPF compiler takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolved {
    pub default_action: Action,
    /// The native architecture first, then the others the profile names (sub-architectures).
    pub arches: Vec<Arch>,
    pub flags: u32,
    pub rules: Vec<Rule>,
}

/// What a rule's `includes`/`excludes` are checked against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub arch: Arch,
    /// The container's bounding set (`CAP_` names).
    pub caps: Vec<String>,
    /// The host kernel's version and major revision (`6.1` of `6.1.0-18-amd64`).
    pub kernel: (u64, u64),
}

impl Profile {
    /// Parses Docker's JSON and checks everything that would fail when the filter is built,
    /// so that a bad profile is refused when the container is created.
    pub fn parse(json: &str) -> Result<Profile, ProfileError> {
        let p: Profile =
            serde_json::from_str(json).map_err(|e| ProfileError::Decode(e.to_string()))?;
        p.check()?;
        Ok(p)
    }

    /// No default action and no rules: moby's "seccomp disabled".
    pub fn is_disabled(&self) -> bool {
        self.default_action.is_empty() && self.syscalls.as_ref().is_none_or(Vec::is_empty)
    }

    fn check(&self) -> Result<(), ProfileError> {
        if self.is_disabled() {
            return Ok(());
        }
        if self.architectures.as_ref().is_some_and(|a| !a.is_empty())
            && self.arch_map.as_ref().is_some_and(|a| !a.is_empty())
        {
            return Err(ProfileError::Invalid(
                "both 'architectures' and 'archMap' are specified in the seccomp profile, use \
                 either 'architectures' or 'archMap'"
                    .to_owned(),
            ));
        }
        if !self.listener_path.is_empty() {
            return Err(ProfileError::Unsupported(
                "listenerPath (a seccomp agent)".to_owned(),
            ));
        }
        Action::parse(&self.default_action, self.default_errno_ret)?;
        let arch_names =
            self.architectures
                .iter()
                .flatten()
                .chain(self.arch_map.iter().flatten().flat_map(|m| {
                    std::iter::once(&m.architecture).chain(m.sub_architectures.iter().flatten())
                }));
        for a in arch_names {
            Arch::from_scmp(a)
                .map_err(|_| ProfileError::Invalid(format!("unknown architecture {a:?}")))?;
        }
        for f in self.flags.iter().flatten() {
            flag(f)?;
        }
        for s in self.syscalls.iter().flatten() {
            if !s.name.is_empty() && s.names.as_ref().is_some_and(|n| !n.is_empty()) {
                return Err(ProfileError::Invalid(
                    "both 'name' and 'names' are specified in the seccomp profile, use either \
                     'name' or 'names'"
                        .to_owned(),
                ));
            }
            Action::parse(&s.action, s.errno_ret)?;
            for a in s.args.iter().flatten() {
                a.parse()?;
            }
            for f in s.includes.iter().chain(&s.excludes) {
                if let Some(k) = &f.min_kernel {
                    parse_kernel(k)?;
                }
            }
        }
        Ok(())
    }

    /// The rules that apply to `target` (moby's setupSeccomp), or None when the profile turns
    /// seccomp off.
    pub fn resolve(&self, target: &Target) -> Result<Option<Resolved>, ProfileError> {
        if self.is_disabled() {
            return Ok(None);
        }
        let default_action = Action::parse(&self.default_action, self.default_errno_ret)?;
        let mut names: Vec<&String> = self.architectures.iter().flatten().collect();
        if let Some(m) = self
            .arch_map
            .iter()
            .flatten()
            .find(|m| Arch::from_scmp(&m.architecture) == Ok(Some(target.arch)))
        {
            names.push(&m.architecture);
            names.extend(m.sub_architectures.iter().flatten());
        }
        // libseccomp's filter always has the native architecture.
        let mut arches = vec![target.arch];
        for n in names {
            if let Ok(Some(a)) = Arch::from_scmp(n)
                && !arches.contains(&a)
            {
                arches.push(a);
            }
        }
        let mut flags = 0;
        for f in self.flags.iter().flatten() {
            flags |= flag(f)?;
        }
        let mut rules = Vec::new();
        for s in self.syscalls.iter().flatten() {
            if !applies(s, target)? {
                continue;
            }
            let names = if s.name.is_empty() {
                s.names.clone().unwrap_or_default()
            } else {
                vec![s.name.clone()]
            };
            let conds = s
                .args
                .iter()
                .flatten()
                .map(Arg::parse)
                .collect::<Result<_, _>>()?;
            rules.push(Rule {
                names,
                conds,
                action: Action::parse(&s.action, s.errno_ret)?,
            });
        }
        Ok(Some(Resolved {
            default_action,
            arches,
            flags,
            rules,
        }))
    }
}

fn applies(s: &Syscall, t: &Target) -> Result<bool, ProfileError> {
    let arch = t.arch.native_name();
    let has_cap = |c: &String| t.caps.contains(c);
    if let Some(ex) = &s.excludes {
        if ex.arches.iter().flatten().any(|a| a == arch) || ex.caps.iter().flatten().any(has_cap) {
            return Ok(false);
        }
        if let Some(k) = &ex.min_kernel
            && t.kernel >= parse_kernel(k)?
        {
            return Ok(false);
        }
    }
    if let Some(inc) = &s.includes {
        if inc
            .arches
            .as_ref()
            .is_some_and(|a| !a.is_empty() && !a.iter().any(|a| a == arch))
            || !inc.caps.iter().flatten().all(has_cap)
        {
            return Ok(false);
        }
        if let Some(k) = &inc.min_kernel
            && t.kernel < parse_kernel(k)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `"<kernel>.<major>"` as moby reads it; `""` is none (0.0, always met).
fn parse_kernel(v: &str) -> Result<(u64, u64), ProfileError> {
    if v.is_empty() {
        return Ok((0, 0));
    }
    let bad = || {
        ProfileError::Invalid(format!(
            "invalid kernel version: {v:?}, expected \"<kernel>.<major>\""
        ))
    };
    let (k, m) = v.split_once('.').ok_or_else(bad)?;
    let k: u8 = k.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    if (k, m) == (0, 0) {
        return Err(bad());
    }
    Ok((k.into(), m.into()))
}

/// The version and major revision of a kernel release string (`6.1.0-18-amd64` → (6, 1)).
pub fn kernel_version(release: &str) -> (u64, u64) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

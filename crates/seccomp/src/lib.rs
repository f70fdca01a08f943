//! Seccomp for Berth's containers: Docker's profile format ([`Profile`], moby's
//! `profiles/seccomp`), Docker's default profile built in ([`default_profile`]), and a
//! compiler from a profile, resolved for one container ([`Target`]: its capabilities, the
//! host's architecture and kernel), to the classic BPF program ([`Program`]) that the shim
//! loads with seccomp(2) just before exec. No libseccomp: the shim is static and loads the
//! bytes the runtime compiled.
//!
//! ```text
//! gateway:  Profile::parse(json)            -> 400 with dockerd's words when it is bad
//! runtime:  compile(&profile, &target)      -> Program (cached per digest, caps and arch)
//! shim:     seccomp(SECCOMP_SET_MODE_FILTER, program.flags, program.filter)
//! ```

mod arch;
mod asm;
mod compile;
#[cfg(test)]
mod interp;
mod profile;
mod tables;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

pub use arch::{Arch, X32_SYSCALL_BIT};
pub use asm::{MAX_INSNS, SockFilter};
pub use profile::{
    Action, ArchMap, Arg, Cmp, Cond, Filter, Profile, Resolved, Rule, Syscall, Target,
    kernel_version,
};

/// Docker's default profile (moby `profiles/seccomp/default.json`, Apache-2.0), in Docker's
/// own format: the same parser reads it and users' profiles.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("default.json");

/// A profile that cannot be used; the messages are dockerd's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("Decoding seccomp profile failed: {0}")]
    Decode(String),
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
    #[error("seccomp profile: {0} is not supported by Berth")]
    Unsupported(String),
    #[error("seccomp profile: the filter has {0} instructions, more than the kernel's 4096")]
    TooLarge(usize),
}

/// A compiled filter: what the shim hands to seccomp(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub filter: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*`.
    pub flags: u32,
}

/// Docker's default profile, parsed once.
pub fn default_profile() -> &'static Profile {
    static DEFAULT: LazyLock<Profile> = LazyLock::new(|| {
        Profile::parse(DEFAULT_PROFILE_JSON).unwrap_or_else(|e| panic!("built-in profile: {e}"))
    });
    &DEFAULT
}

/// `profile` resolved for `target` and compiled; None when the profile turns seccomp off
/// (no default action and no rules).
pub fn compile(profile: &Profile, target: &Target) -> Result<Option<Program>, ProfileError> {
    let Some(resolved) = profile.resolve(target)? else {
        return Ok(None);
    };
    Ok(Some(Program {
        filter: compile::compile(&resolved)?,
        flags: resolved.flags,
    }))
}

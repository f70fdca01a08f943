//! The architectures a filter is built for: their audit numbers (`seccomp_data.arch`), their
//! syscall tables, and the names profiles give them.

use crate::tables;

/// `__X32_SYSCALL_BIT`: x32 syscalls are x86_64's audit arch with this bit in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture Berth has a syscall table for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    /// x86_64's 32-bit-pointer ABI: x86_64's audit arch, numbers at or above
    /// [`X32_SYSCALL_BIT`].
    X32,
    X86,
    Aarch64,
    Arm,
}

impl Arch {
    /// The architecture this program was built for (the host's), if Berth knows it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else if cfg!(target_arch = "arm") {
            Some(Arch::Arm)
        } else {
            None
        }
    }

    /// `AUDIT_ARCH_*`, what the kernel puts in `seccomp_data.arch`.
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => 0xc000_003e,
            Arch::X86 => 0x4000_0003,
            Arch::Aarch64 => 0xc000_00b7,
            Arch::Arm => 0x4000_0028,
        }
    }

    /// Whether syscall arguments are 64 bits wide (both halves are compared).
    pub fn wide(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::X32 | Arch::Aarch64)
    }

    /// The name moby gives the host's architecture in a rule's `includes`/`excludes`
    /// `arches` (libseccomp's native names).
    pub fn native_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::X32 => "x32",
            Arch::X86 => "x86",
            Arch::Aarch64 => "arm64",
            Arch::Arm => "arm",
        }
    }

    /// The number of syscall `name` on this architecture.
    pub fn syscall(self, name: &str) -> Option<u32> {
        let table = match self {
            Arch::X86_64 => tables::X86_64,
            Arch::X32 => tables::X32,
            Arch::X86 => tables::X86,
            Arch::Aarch64 => tables::AARCH64,
            Arch::Arm => tables::ARM,
        };
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }

    /// The architecture an `SCMP_ARCH_*` name stands for: `Ok(None)` for one libseccomp knows
    /// but Berth has no table for (it cannot run on the hosts Berth supports), `Err` for a
    /// name libseccomp does not know.
    pub fn from_scmp(name: &str) -> Result<Option<Arch>, UnknownArch> {
        Ok(Some(match name {
            "SCMP_ARCH_X86_64" => Arch::X86_64,
            "SCMP_ARCH_X32" => Arch::X32,
            "SCMP_ARCH_X86" => Arch::X86,
            "SCMP_ARCH_AARCH64" => Arch::Aarch64,
            "SCMP_ARCH_ARM" => Arch::Arm,
            "SCMP_ARCH_NATIVE" => return Ok(Arch::native()),
            "SCMP_ARCH_MIPS"
            | "SCMP_ARCH_MIPS64"
            | "SCMP_ARCH_MIPS64N32"
            | "SCMP_ARCH_MIPSEL"
            | "SCMP_ARCH_MIPSEL64"
            | "SCMP_ARCH_MIPSEL64N32"
            | "SCMP_ARCH_PPC"
            | "SCMP_ARCH_PPC64"
            | "SCMP_ARCH_PPC64LE"
            | "SCMP_ARCH_S390"
            | "SCMP_ARCH_S390X"
            | "SCMP_ARCH_PARISC"
            | "SCMP_ARCH_PARISC64"
            | "SCMP_ARCH_RISCV64"
            | "SCMP_ARCH_LOONGARCH64"
            | "SCMP_ARCH_M68K"
            | "SCMP_ARCH_SH"
            | "SCMP_ARCH_SHEB" => {
                return Ok(None);
            }
            _ => return Err(UnknownArch),
        }))
    }

    /// The `SCMP_ARCH_*` name of this architecture.
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
        }
    }
}

/// An `SCMP_ARCH_*` name libseccomp does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownArch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_resolve_per_arch() {
        assert_eq!(Arch::X86_64.syscall("mkdir"), Some(83));
        assert_eq!(Arch::X86.syscall("mkdir"), Some(39));
        assert_eq!(Arch::X32.syscall("mkdir"), Some(83 | X32_SYSCALL_BIT));
        assert_eq!(Arch::Aarch64.syscall("mkdir"), None);
        assert_eq!(Arch::Aarch64.syscall("mkdirat"), Some(34));
        assert_eq!(Arch::X86_64.syscall("clone3"), Some(435));
        assert_eq!(Arch::Arm.syscall("set_tls"), Some(0xf0005));
        assert_eq!(Arch::X86_64.syscall("removexattrat"), Some(466));
        assert_eq!(Arch::from_scmp("SCMP_ARCH_S390X"), Ok(None));
        assert!(Arch::from_scmp("SCMP_ARCH_Z80").is_err());
    }
}

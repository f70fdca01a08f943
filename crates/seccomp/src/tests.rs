//! The profile parser and the compiler, checked by running the programs through a BPF
//! interpreter.

use crate::{
    interp::{Data, run},
    *,
};

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0001;
const ENOSYS: u32 = 0x0005_0026;
const KILL: u32 = 0;

fn caps(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| (*s).to_owned()).collect()
}

fn default_caps() -> Vec<String> {
    caps(&[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ])
}

fn target(arch: Arch, caps: Vec<String>) -> Target {
    Target {
        arch,
        caps,
        kernel: (6, 1),
    }
}

fn prog(p: &Profile, t: &Target) -> Vec<SockFilter> {
    compile(p, t).unwrap().unwrap().filter
}

/// The verdict for syscall `name` of `arch` with `args`.
fn verdict(f: &[SockFilter], arch: Arch, name: &str, args: [u64; 6]) -> u32 {
    let nr = arch
        .syscall(name)
        .unwrap_or_else(|| panic!("{name} on {arch:?}"));
    run(
        f,
        &Data {
            nr,
            arch: arch.audit(),
            args,
        },
    )
}

fn call(f: &[SockFilter], arch: Arch, name: &str) -> u32 {
    verdict(f, arch, name, [0; 6])
}

#[test]
fn default_profile_allows_the_list_and_denies_the_rest() {
    let f = prog(default_profile(), &target(Arch::X86_64, default_caps()));
    assert!(f.len() < 1500, "{} instructions", f.len());
    for ok in [
        "read",
        "write",
        "openat",
        "execve",
        "exit_group",
        "mkdir",
        "capset",
        "setuid",
        "prctl",
        "close_range",
        "rt_sigreturn",
        "futex",
        "mseal",
    ] {
        assert_eq!(call(&f, Arch::X86_64, ok), ALLOW, "{ok}");
    }
    for denied in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "swapon",
        "swapoff",
        "reboot",
        "bpf",
        "init_module",
        "kexec_load",
        "open_by_handle_at",
        "clock_settime",
        "syslog",
        "chroot_nope",
    ] {
        if let Some(nr) = Arch::X86_64.syscall(denied) {
            let v = run(
                &f,
                &Data {
                    nr,
                    arch: Arch::X86_64.audit(),
                    args: [0; 6],
                },
            );
            assert_eq!(v, EPERM, "{denied}");
        }
    }
    // CAP_SYS_CHROOT is in the default set: chroot is allowed.
    assert_eq!(call(&f, Arch::X86_64, "chroot"), ALLOW);
    // clone3 answers ENOSYS so that glibc falls back to clone.
    assert_eq!(call(&f, Arch::X86_64, "clone3"), ENOSYS);
    // A syscall newer than any the profile names: ENOSYS, as runc answers.
    let f_nr = |nr| {
        run(
            &f,
            &Data {
                nr,
                arch: Arch::X86_64.audit(),
                args: [0; 6],
            },
        )
    };
    assert_eq!(f_nr(467), ENOSYS);
    assert_eq!(f_nr(1000), ENOSYS);
    // A number inside the table that no rule names: the default action.
    assert_eq!(f_nr(Arch::X86_64.syscall("lookup_dcookie").unwrap()), EPERM);
}

#[test]
fn clone_flags_and_socket_and_personality_args() {
    let f = prog(default_profile(), &target(Arch::X86_64, default_caps()));
    let clone = |flags: u64| verdict(&f, Arch::X86_64, "clone", [flags, 0, 0, 0, 0, 0]);
    const CLONE_NEWUSER: u64 = 0x1000_0000;
    const CLONE_NEWNS: u64 = 0x0002_0000;
    assert_eq!(clone(0x11 /* SIGCHLD */ | 0x0120_0000), ALLOW);
    assert_eq!(clone(CLONE_NEWUSER | 0x11), EPERM);
    assert_eq!(clone(CLONE_NEWNS), EPERM);
    // The mask covers the high half too: a flag above bit 31 is no namespace flag.
    assert_eq!(clone(1 << 40), ALLOW);
    let socket = |domain: u64| verdict(&f, Arch::X86_64, "socket", [domain, 1, 0, 0, 0, 0]);
    assert_eq!(socket(2), ALLOW); // AF_INET
    assert_eq!(socket(16), ALLOW); // AF_NETLINK
    assert_eq!(socket(39), ALLOW);
    assert_eq!(socket(38), EPERM); // AF_ALG
    assert_eq!(socket(40), EPERM); // AF_VSOCK
    assert_eq!(socket(41), ALLOW);
    assert_eq!(socket(1 << 32), ALLOW); // GT 40 in 64 bits
    let pers = |p: u64| verdict(&f, Arch::X86_64, "personality", [p, 0, 0, 0, 0, 0]);
    for ok in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(pers(ok), ALLOW, "{ok:#x}");
    }
    assert_eq!(pers(0x0040_0000), EPERM); // READ_IMPLIES_EXEC
    assert_eq!(pers(0xffff_ffff_ffff_ffff), EPERM);
}

#[test]
fn capability_groups_apply_with_their_capability() {
    let mut c = default_caps();
    c.extend(caps(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME"]));
    let f = prog(default_profile(), &target(Arch::X86_64, c));
    for ok in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone3",
        "ptrace",
        "process_vm_readv",
        "clock_settime",
        "settimeofday",
        "bpf",
    ] {
        assert_eq!(call(&f, Arch::X86_64, ok), ALLOW, "{ok}");
    }
    assert_eq!(
        verdict(&f, Arch::X86_64, "clone", [0x1000_0000, 0, 0, 0, 0, 0]),
        ALLOW
    );
    for still in [
        "keyctl",
        "add_key",
        "kexec_load",
        "init_module",
        "reboot",
        "swapoff",
    ] {
        assert_eq!(call(&f, Arch::X86_64, still), EPERM, "{still}");
    }
    // ptrace is also allowed without the capability from kernel 4.8 on.
    let f = prog(default_profile(), &target(Arch::X86_64, default_caps()));
    assert_eq!(call(&f, Arch::X86_64, "ptrace"), ALLOW);
    let old = Target {
        kernel: (4, 4),
        ..target(Arch::X86_64, default_caps())
    };
    assert_eq!(
        call(&prog(default_profile(), &old), Arch::X86_64, "ptrace"),
        EPERM
    );
}

#[test]
fn sub_architectures_and_bad_arch() {
    let f = prog(default_profile(), &target(Arch::X86_64, default_caps()));
    // i386 has its own numbers: mkdir is 39 there (x86_64's 39 is getpid).
    assert_eq!(call(&f, Arch::X86, "mkdir"), ALLOW);
    assert_eq!(call(&f, Arch::X86, "mount"), EPERM);
    assert_eq!(call(&f, Arch::X86, "socketcall"), ALLOW);
    assert_eq!(call(&f, Arch::X86, "arch_prctl"), ALLOW); // includes arches: amd64 is the host
    // 32-bit arguments: the low half only.
    assert_eq!(
        verdict(&f, Arch::X86, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    // x32 calls go through the x32 part.
    assert_eq!(call(&f, Arch::X32, "mkdir"), ALLOW);
    assert_eq!(call(&f, Arch::X32, "unshare"), EPERM);
    // An architecture the filter was not built for is killed.
    let arm = run(
        &f,
        &Data {
            nr: 1,
            arch: Arch::Arm.audit(),
            args: [0; 6],
        },
    );
    assert_eq!(arm, KILL);
    // Without x32 in the profile, x32 calls are a bad architecture too.
    let only64 = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[]}"#,
    )
    .unwrap();
    let f = prog(&only64, &target(Arch::X86_64, vec![]));
    assert_eq!(call(&f, Arch::X86_64, "mount"), ALLOW);
    assert_eq!(call(&f, Arch::X32, "mkdir"), KILL);
    assert_eq!(call(&f, Arch::X86, "mkdir"), KILL);
}

#[test]
fn aarch64_with_arm() {
    let f = prog(default_profile(), &target(Arch::Aarch64, default_caps()));
    assert_eq!(call(&f, Arch::Aarch64, "mkdirat"), ALLOW);
    assert_eq!(call(&f, Arch::Aarch64, "unshare"), EPERM);
    assert_eq!(call(&f, Arch::Aarch64, "clone3"), ENOSYS);
    assert_eq!(call(&f, Arch::Arm, "set_tls"), ALLOW);
    assert_eq!(call(&f, Arch::Arm, "mount"), EPERM);
    assert_eq!(
        run(
            &f,
            &Data {
                nr: 1,
                arch: Arch::X86_64.audit(),
                args: [0; 6]
            }
        ),
        KILL
    );
}

#[test]
fn custom_profile_errno_and_comparisons() {
    let p = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[
              {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
              {"name":"chmod","action":"SCMP_ACT_ERRNO"},
              {"names":["fchmod"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":1,"value":511,"op":"SCMP_CMP_EQ"}]},
              {"names":["lseek"],"action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[{"index":1,"value":4294967296,"op":"SCMP_CMP_GE"}]},
              {"names":["pread64"],"action":"SCMP_ACT_TRAP","args":[{"index":3,"value":100,"op":"SCMP_CMP_LT"},{"index":2,"value":5,"op":"SCMP_CMP_NE"}]},
              {"names":["getpid"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":4294967297,"op":"SCMP_CMP_LE"}]},
              {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_GT"}]}
            ]}"#,
    )
    .unwrap();
    let f = prog(&p, &target(Arch::X86_64, vec![]));
    let x = Arch::X86_64;
    assert_eq!(call(&f, x, "mkdir"), 0x0005_000d);
    assert_eq!(call(&f, x, "mkdirat"), 0x0005_000d);
    assert_eq!(call(&f, x, "chmod"), EPERM);
    assert_eq!(call(&f, x, "rmdir"), ALLOW);
    assert_eq!(verdict(&f, x, "fchmod", [3, 511, 0, 0, 0, 0]), 0x8000_0000);
    assert_eq!(
        verdict(&f, x, "fchmod", [3, 511 | (1 << 32), 0, 0, 0, 0]),
        ALLOW
    );
    let lseek = |off| verdict(&f, x, "lseek", [0, off, 0, 0, 0, 0]);
    assert_eq!(lseek(0xffff_ffff), ALLOW);
    assert_eq!(lseek(1 << 32), 0x0005_0016);
    assert_eq!(lseek(u64::MAX), 0x0005_0016);
    let pread = |n, off| verdict(&f, x, "pread64", [0, 0, n, off, 0, 0]);
    assert_eq!(pread(4, 99), 0x0003_0000);
    assert_eq!(pread(5, 99), ALLOW);
    assert_eq!(pread(4, 100), ALLOW);
    assert_eq!(pread(4, 1 << 33), ALLOW);
    let getpid = |v| verdict(&f, x, "getpid", [v, 0, 0, 0, 0, 0]);
    assert_eq!(getpid(0x1_0000_0001), 0x7ffc_0000);
    assert_eq!(getpid(0x1_0000_0000), 0x7ffc_0000);
    assert_eq!(getpid(0x1_0000_0002), ALLOW);
    assert_eq!(getpid(0x2_0000_0000), ALLOW);
    let getppid = |v| verdict(&f, x, "getppid", [v, 0, 0, 0, 0, 0]);
    assert_eq!(getppid(0xffff_ffff), ALLOW);
    assert_eq!(getppid(0x1_0000_0000), 0x0005_0005);
    // The default action allows: no ENOSYS for unknown numbers.
    assert_eq!(
        run(
            &f,
            &Data {
                nr: 999,
                arch: x.audit(),
                args: [0; 6]
            }
        ),
        ALLOW
    );
}

#[test]
fn every_comparison_matches_64_bit_semantics() {
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let values = [
        0u64,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0xffff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        0x7fff_ffff,
    ];
    for op in ops {
        for v in values {
            let json = format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{{"index":2,"value":{v},"valueTwo":{two},"op":"{op}"}}]}}]}}"#,
                two = v & 0xf0f0_f0f0_0000_0001
            );
            let f = prog(
                &Profile::parse(&json).unwrap(),
                &target(Arch::X86_64, vec![]),
            );
            for arg in values.iter().chain(&[2, 0xffff_fffe, 0x2_0000_0000]) {
                let want = match op {
                    "SCMP_CMP_NE" => *arg != v,
                    "SCMP_CMP_LT" => *arg < v,
                    "SCMP_CMP_LE" => *arg <= v,
                    "SCMP_CMP_EQ" => *arg == v,
                    "SCMP_CMP_GE" => *arg >= v,
                    "SCMP_CMP_GT" => *arg > v,
                    _ => arg & v == v & 0xf0f0_f0f0_0000_0001,
                };
                let got = verdict(&f, Arch::X86_64, "read", [0, 0, *arg, 0, 0, 0]) == ALLOW;
                assert_eq!(got, want, "{op} {v:#x} on {arg:#x}");
            }
        }
    }
}

#[test]
fn bad_profiles_are_refused_with_dockerds_words() {
    let err = |j: &str| Profile::parse(j).unwrap_err().to_string();
    assert!(err("{").starts_with("Decoding seccomp profile failed: "));
    assert!(err(r#"{"defaultAction": 3}"#).starts_with("Decoding seccomp profile failed: "));
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":[]}]}"#
        ),
        "invalid seccomp profile: both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
    );
    assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#).contains("both 'name' and 'names'"));
    assert!(err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).contains("unknown action"));
    assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#).contains("argument index 6"));
    assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#).contains("unknown comparison"));
    assert!(
        err(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}"#)
            .contains("unknown architecture")
    );
    assert!(
        err(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x"}"#).contains("not supported")
    );
    assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}"#).contains("errnoRet"));
    assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4"}}]}"#).contains("invalid kernel version"));
    // No default action and no rules: seccomp off.
    let off = Profile::parse("{}").unwrap();
    assert!(
        compile(&off, &target(Arch::X86_64, vec![]))
            .unwrap()
            .is_none()
    );
    assert_eq!(kernel_version("6.18.44-fc-v1272"), (6, 18));
}

#[test]
fn flags_and_large_profiles() {
    let p = Profile::parse(r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
    assert_eq!(
        compile(&p, &target(Arch::X86_64, vec![]))
            .unwrap()
            .unwrap()
            .flags,
        6
    );
    // Many conditional rules on one syscall still fit (long jumps go through `ja`).
    let rules: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[{{"index":1,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#))
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{},{{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}}]}}"#,
        rules.join(",")
    );
    let f = prog(
        &Profile::parse(&json).unwrap(),
        &target(Arch::X86_64, vec![]),
    );
    assert_eq!(
        verdict(&f, Arch::X86_64, "ioctl", [0, 299, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        verdict(&f, Arch::X86_64, "ioctl", [0, 300, 0, 0, 0, 0]),
        EPERM
    );
    assert_eq!(call(&f, Arch::X86_64, "write"), ALLOW);
    // Past the kernel's limit: refused, not truncated.
    let rules: Vec<String> = (0..900)
        .map(|i| format!(r#"{{"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[{{"index":1,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#))
        .collect();
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}"#,
        rules.join(",")
    );
    let e = compile(
        &Profile::parse(&json).unwrap(),
        &target(Arch::X86_64, vec![]),
    )
    .unwrap_err();
    assert!(matches!(e, ProfileError::TooLarge(_)), "{e}");
}

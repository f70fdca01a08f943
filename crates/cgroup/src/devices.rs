//! The container's device rules in its cgroup: through the v1 devices controller
//! (`devices.deny`/`devices.allow`) and, on the v2 hierarchy, through a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program generated from the same rules (v2 has no devices
//! controller). On a hybrid host both apply.

use std::path::Path;

use berth_bundle::{DeviceKind, DeviceRule};

use crate::Error;

/// One eBPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The kernel's `struct bpf_insn`.
    pub fn bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// Opcodes (linux/bpf.h).
/// r_dst = *(u32 *)(r_src + off)
const LDX_W: u8 = 0x61;
/// 32-bit r_dst &= imm
const AND32_K: u8 = 0x54;
/// 32-bit r_dst >>= imm
const RSH32_K: u8 = 0x74;
/// r_dst = r_src
const MOV64_X: u8 = 0xbf;
/// r_dst = imm
const MOV64_K: u8 = 0xb7;
/// r_dst &= imm
const AND64_K: u8 = 0x57;
/// if r_dst != imm goto pc + 1 + off
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

/// `struct bpf_cgroup_dev_ctx`: access_type (type | access << 16), major, minor.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// The device program for `rules`: the last rule that matches a device decides, nothing
/// matching is denied. Registers: r2 type, r3 access, r4 major, r5 minor.
pub fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>, String> {
    let mut out = vec![
        Insn::new(LDX_W, 2, 1, 0, 0),
        Insn::new(AND32_K, 2, 0, 0, 0xffff),
        Insn::new(LDX_W, 3, 1, 0, 0),
        Insn::new(RSH32_K, 3, 0, 0, 16),
        Insn::new(LDX_W, 4, 1, 4, 0),
        Insn::new(LDX_W, 5, 1, 8, 0),
    ];
    let num = |v: u32| i32::try_from(v).map_err(|_| format!("device number {v} out of range"));
    for rule in rules.iter().rev() {
        rule.validate()?;
        // Each check jumps past the rest of the block when it fails; the offsets are set
        // once the block's length is known.
        let mut block: Vec<(Insn, bool)> = Vec::new();
        let mut check = |dst: u8, imm: i32| block.push((Insn::new(JNE_K, dst, 0, 0, imm), true));
        match rule.kind {
            DeviceKind::All => {}
            DeviceKind::Char => check(2, DEV_CHAR),
            DeviceKind::Block => check(2, DEV_BLOCK),
        }
        let bits = rule.access_bits();
        if bits != 7 {
            // Every access asked for must be among the rule's.
            block.push((Insn::new(MOV64_X, 1, 3, 0, 0), false));
            block.push((Insn::new(AND64_K, 1, 0, 0, (!bits & 7) as i32), false));
            block.push((Insn::new(JNE_K, 1, 0, 0, 0), true));
        }
        if let Some(major) = rule.major {
            block.push((Insn::new(JNE_K, 4, 0, 0, num(major)?), true));
        }
        if let Some(minor) = rule.minor {
            block.push((Insn::new(JNE_K, 5, 0, 0, num(minor)?), true));
        }
        block.push((Insn::new(MOV64_K, 0, 0, 0, i32::from(rule.allow)), false));
        block.push((Insn::new(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        let catch_all = !block.iter().any(|(_, jump)| *jump);
        for (i, (mut insn, jump)) in block.into_iter().enumerate() {
            if jump {
                insn.off = i16::try_from(len - i - 1).map_err(|_| "device program too long")?;
            }
            out.push(insn);
        }
        // A rule for every device decides for all: what would follow is unreachable, which
        // the verifier refuses.
        if catch_all {
            return Ok(out);
        }
    }
    out.push(Insn::new(MOV64_K, 0, 0, 0, 0));
    out.push(Insn::new(EXIT, 0, 0, 0, 0));
    Ok(out)
}

/// The v1 devices controller of cgroup `dir`: everything denied, then the rules in order.
pub fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), Error> {
    crate::write(dir, "devices.deny", "a")?;
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        crate::write(dir, file, &r.cgroup_v1())?;
    }
    Ok(())
}

/// The rules as a device program attached to the v2 cgroup `dir`.
pub fn attach_v2(dir: &Path, rules: &[DeviceRule]) -> Result<(), Error> {
    let fail = |reason: String| Error::new(dir, reason);
    let insns = program(rules).map_err(fail)?;
    let code: Vec<u8> = insns.iter().flat_map(Insn::bytes).collect();
    let prog = crate::bpf::load_device_program(&code)
        .map_err(|e| fail(format!("loading the device program: {e}")))?;
    let cgroup = std::fs::File::open(dir).map_err(|e| fail(e.to_string()))?;
    crate::bpf::attach_device_program(&cgroup, &prog)
        .map_err(|e| fail(format!("attaching the device program: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_program() {
        let rules = berth_bundle::default_device_rules();
        let p = program(&rules).unwrap();
        // The context loads, a block per rule, the final deny.
        assert_eq!(
            &p[..2],
            &[
                Insn::new(LDX_W, 2, 1, 0, 0),
                Insn::new(AND32_K, 2, 0, 0, 0xffff)
            ]
        );
        assert_eq!(p[p.len() - 2], Insn::new(MOV64_K, 0, 0, 0, 0));
        // The last rule (c 136:* rwm) comes first: type, major, allow, exit.
        assert_eq!(p[6], Insn::new(JNE_K, 2, 0, 3, DEV_CHAR));
        assert_eq!(p[7], Insn::new(JNE_K, 4, 0, 2, 136));
        assert_eq!(p[8], Insn::new(MOV64_K, 0, 0, 0, 1));
        assert_eq!(p[9], Insn::new(EXIT, 0, 0, 0, 0));
        // The first rule (c *:* m) comes last: type, the access check, allow, exit.
        let n = p.len();
        assert_eq!(p[n - 8], Insn::new(JNE_K, 2, 0, 5, DEV_CHAR));
        assert_eq!(p[n - 7], Insn::new(MOV64_X, 1, 3, 0, 0));
        assert_eq!(p[n - 6], Insn::new(AND64_K, 1, 0, 0, 6));
        assert_eq!(p[n - 5], Insn::new(JNE_K, 1, 0, 2, 0));
        assert_eq!(
            Insn::new(JNE_K, 4, 0, 2, 136).bytes(),
            [0x55, 0x04, 2, 0, 136, 0, 0, 0]
        );
        assert_eq!(
            Insn::new(LDX_W, 5, 1, 8, 0).bytes(),
            [0x61, 0x15, 8, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn a_rule_for_every_device_ends_the_program() {
        let all = DeviceRule::allow(DeviceKind::All, None, None, "rwm");
        let p = program(&[berth_bundle::default_device_rules()[0].clone(), all]).unwrap();
        assert_eq!(p.len(), 8);
        assert_eq!(p[6], Insn::new(MOV64_K, 0, 0, 0, 1));
        assert_eq!(p[7], Insn::new(EXIT, 0, 0, 0, 0));
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let r = DeviceRule::allow(DeviceKind::Char, Some(u32::MAX), None, "r");
        assert!(program(&[r]).is_err());
    }
}

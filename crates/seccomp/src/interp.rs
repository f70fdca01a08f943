//! A classic-BPF interpreter for the instructions the compiler emits, with the kernel's
//! checks (forward jumps only, in bounds, ends in a return): the tests run programs through
//! it and check their verdicts.

use crate::SockFilter;

/// `struct seccomp_data` for one call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Data {
    pub(crate) nr: u32,
    pub(crate) arch: u32,
    pub(crate) args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> u32 {
        match off {
            0 => self.nr,
            4 => self.arch,
            16..=63 if off.is_multiple_of(4) => {
                let a = self.args[((off - 16) / 8) as usize];
                if off.is_multiple_of(8) {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => panic!("load from offset {off}"),
        }
    }
}

/// The filter's return value for `d`.
pub(crate) fn run(prog: &[SockFilter], d: &Data) -> u32 {
    assert!(prog.len() <= crate::MAX_INSNS);
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let k = i.k;
        let jump = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
        match i.code {
            0x20 => acc = d.word(k),
            0x54 => acc &= k,
            0x05 => pc += k as usize,
            0x15 => pc += jump(acc == k),
            0x25 => pc += jump(acc > k),
            0x35 => pc += jump(acc >= k),
            0x06 => return k,
            c => panic!("unexpected opcode {c:#x} at {}", pc - 1),
        }
        assert!(pc < prog.len(), "ran off the end");
    }
}

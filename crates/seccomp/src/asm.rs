//! A small classic-BPF assembler: one op per instruction, forward jumps to labels, resolved
//! into offsets at the end (a conditional jump reaches at most 255 instructions ahead; `ja`
//! any distance).

use crate::ProfileError;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub(crate) const LD_W_ABS: u16 = 0x20;
pub(crate) const ALU_AND_K: u16 = 0x54;
pub(crate) const JA: u16 = 0x05;
pub(crate) const JEQ: u16 = 0x15;
pub(crate) const JGT: u16 = 0x25;
pub(crate) const JGE: u16 = 0x35;
pub(crate) const RET_K: u16 = 0x06;

/// The most instructions the kernel takes in one filter (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where a conditional jump goes: the next instruction or a label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum To {
    Next,
    L(Label),
}

enum Op {
    Insn(SockFilter),
    Jump { code: u16, k: u32, jt: To, jf: To },
    Ja(Label),
}

#[derive(Default)]
pub(crate) struct Asm {
    ops: Vec<Op>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    pub(crate) fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// The next instruction is `l`'s.
    pub(crate) fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.ops.len());
    }

    pub(crate) fn load(&mut self, offset: u32) {
        self.insn(LD_W_ABS, offset);
    }

    pub(crate) fn and(&mut self, mask: u32) {
        self.insn(ALU_AND_K, mask);
    }

    pub(crate) fn ret(&mut self, value: u32) {
        self.insn(RET_K, value);
    }

    pub(crate) fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.ops.push(Op::Jump { code, k, jt, jf });
    }

    pub(crate) fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }

    fn insn(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Insn(SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    /// The program, every label bound and every jump within reach.
    pub(crate) fn finish(self) -> Result<Vec<SockFilter>, ProfileError> {
        if self.ops.len() > MAX_INSNS {
            return Err(ProfileError::TooLarge(self.ops.len()));
        }
        let too_far = || ProfileError::Invalid("a rule is too large for one filter".to_owned());
        let dist = |from: usize, l: Label| -> Result<usize, ProfileError> {
            let at = self.labels[l.0].ok_or_else(too_far)?;
            at.checked_sub(from + 1).ok_or_else(too_far)
        };
        let off = |from: usize, to: To| -> Result<u8, ProfileError> {
            match to {
                To::Next => Ok(0),
                To::L(l) => u8::try_from(dist(from, l)?).map_err(|_| too_far()),
            }
        };
        self.ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                Ok(match *op {
                    Op::Insn(f) => f,
                    Op::Jump { code, k, jt, jf } => SockFilter {
                        code,
                        jt: off(i, jt)?,
                        jf: off(i, jf)?,
                        k,
                    },
                    Op::Ja(l) => SockFilter {
                        code: JA,
                        jt: 0,
                        jf: 0,
                        k: u32::try_from(dist(i, l)?).map_err(|_| too_far())?,
                    },
                })
            })
            .collect()
    }
}

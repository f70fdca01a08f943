//! A resolved profile compiled to classic BPF, with libseccomp's semantics:
//!
//! - the audit architecture is checked first; one the filter was not built for gets
//!   `KILL_THREAD` (libseccomp's bad-architecture action), as do x32 syscalls (numbers with
//!   `__X32_SYSCALL_BIT`) on x86_64 when the filter has no x32 part;
//! - per architecture, each syscall's number is found by a binary search over the numbers
//!   the rules name (a handful of jumps instead of hundreds); names an architecture lacks are
//!   skipped, as runc skips them;
//! - a syscall's conditional rules are tried in the profile's order (all of a rule's
//!   comparisons must hold; 64-bit arguments are compared as two 32-bit halves, 32-bit
//!   architectures compare the low half only), then its first unconditional rule, else the
//!   default action;
//! - as runc does, a syscall newer than every one the profile names for that architecture
//!   answers ENOSYS rather than the default action (unless that is to allow or log), so that
//!   libc falls back to an older call.

use std::collections::BTreeMap;

use crate::{
    Arch, ProfileError,
    arch::X32_SYSCALL_BIT,
    asm::{Asm, JEQ, JGE, JGT, SockFilter, To},
    profile::{Action, Cmp, Cond, Resolved},
};

const ENOSYS: u16 = 38;
/// `offsetof(struct seccomp_data, arch)`.
const ARCH_OFFSET: u32 = 4;
/// `offsetof(struct seccomp_data, args)`.
const ARGS_OFFSET: u32 = 16;
/// Instructions a leaf of the search tree may hold (its jumps to the shared returns must
/// stay within 255).
const LEAF_BUDGET: usize = 160;

/// A rule with comparisons: its comparisons and action.
type CondRule = (Vec<Cond>, Action);

/// What one syscall gets: conditional rules in order, then `otherwise`.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    nr: u32,
    conds: Vec<CondRule>,
    otherwise: Action,
}

impl Entry {
    fn cost(&self) -> usize {
        if self.conds.is_empty() {
            1
        } else {
            3 + self
                .conds
                .iter()
                .map(|(c, _)| 1 + c.len() * 6)
                .sum::<usize>()
        }
    }
}

/// The BPF program for `r`.
pub(crate) fn compile(r: &Resolved) -> Result<Vec<SockFilter>, ProfileError> {
    let mut a = Asm::default();
    let bad_arch = Action::KillThread.ret();
    a.load(ARCH_OFFSET);
    // One section per audit architecture (x86_64 and x32 share one).
    let mut audits: Vec<u32> = Vec::new();
    for arch in &r.arches {
        if !audits.contains(&arch.audit()) {
            audits.push(arch.audit());
        }
    }
    let sections: Vec<_> = audits.iter().map(|_| a.label()).collect();
    for (audit, l) in audits.iter().zip(&sections) {
        let next = a.label();
        a.jump(JEQ, *audit, To::Next, To::L(next));
        a.ja(*l);
        a.bind(next);
    }
    a.ret(bad_arch);
    for (audit, l) in audits.iter().zip(sections) {
        a.bind(l);
        a.load(0);
        let has = |x: Arch| r.arches.contains(&x);
        if *audit == Arch::X86_64.audit() {
            let native = a.label();
            a.jump(JGE, X32_SYSCALL_BIT, To::Next, To::L(native));
            if has(Arch::X32) {
                let x32 = a.label();
                a.ja(x32);
                a.bind(native);
                arch_section(&mut a, r, Arch::X86_64, has(Arch::X86_64))?;
                a.bind(x32);
                arch_section(&mut a, r, Arch::X32, true)?;
            } else {
                a.ret(bad_arch);
                a.bind(native);
                arch_section(&mut a, r, Arch::X86_64, true)?;
            }
        } else {
            let arch = r.arches.iter().find(|x| x.audit() == *audit).copied();
            arch_section(&mut a, r, arch.unwrap_or(Arch::X86_64), true)?;
        }
    }
    a.finish()
}

/// The rules for `arch`, the syscall number loaded. `enabled` false: the architecture is not
/// in the filter (x86_64 when only x32 is), every syscall gets the bad-arch action.
fn arch_section(a: &mut Asm, r: &Resolved, arch: Arch, enabled: bool) -> Result<(), ProfileError> {
    if !enabled {
        a.ret(Action::KillThread.ret());
        return Ok(());
    }
    let mut per_nr: BTreeMap<u32, (Vec<CondRule>, Option<Action>)> = BTreeMap::new();
    for rule in &r.rules {
        for name in &rule.names {
            let Some(nr) = arch.syscall(name) else {
                continue;
            };
            let e = per_nr.entry(nr).or_default();
            if rule.conds.is_empty() {
                e.1.get_or_insert(rule.action);
            } else {
                e.0.push((rule.conds.clone(), rule.action));
            }
        }
    }
    let max = per_nr.keys().next_back().copied();
    let entries: Vec<Entry> = per_nr
        .into_iter()
        .map(|(nr, (conds, un))| Entry {
            nr,
            conds,
            otherwise: un.unwrap_or(r.default_action),
        })
        .filter(|e| !(e.conds.is_empty() && e.otherwise == r.default_action))
        .collect();
    if let Some(max) = max
        && !matches!(r.default_action, Action::Allow | Action::Log)
    {
        let known = a.label();
        a.jump(JGT, max, To::Next, To::L(known));
        a.ret(Action::Errno(ENOSYS).ret());
        a.bind(known);
    }
    tree(a, &entries, r.default_action, arch.wide());
    Ok(())
}

/// A binary search over `entries` (sorted by number); every path ends in a return.
fn tree(a: &mut Asm, entries: &[Entry], default: Action, wide: bool) {
    let cost: usize = entries.iter().map(Entry::cost).sum();
    if entries.len() <= 1 || cost <= LEAF_BUDGET {
        return leaf(a, entries, default, wide);
    }
    let mid = entries.len() / 2;
    let left = a.label();
    let right = a.label();
    a.jump(JGE, entries[mid].nr, To::Next, To::L(left));
    a.ja(right);
    a.bind(left);
    tree(a, &entries[..mid], default, wide);
    a.bind(right);
    tree(a, &entries[mid..], default, wide);
}

fn leaf(a: &mut Asm, entries: &[Entry], default: Action, wide: bool) {
    let mut pool: Vec<(Action, crate::asm::Label)> = Vec::new();
    for e in entries {
        if e.conds.is_empty() {
            let l = match pool.iter().find(|(act, _)| *act == e.otherwise) {
                Some((_, l)) => *l,
                None => {
                    let l = a.label();
                    pool.push((e.otherwise, l));
                    l
                }
            };
            a.jump(JEQ, e.nr, To::L(l), To::Next);
            continue;
        }
        let body = a.label();
        let skip = a.label();
        a.jump(JEQ, e.nr, To::L(body), To::Next);
        a.ja(skip);
        a.bind(body);
        for (conds, action) in &e.conds {
            let fail = a.label();
            for c in conds {
                cond(a, c, fail, wide);
            }
            a.ret(action.ret());
            a.bind(fail);
        }
        a.ret(e.otherwise.ret());
        a.bind(skip);
    }
    a.ret(default.ret());
    for (action, l) in pool {
        a.bind(l);
        a.ret(action.ret());
    }
}

/// Falls through when `c` holds, jumps to `fail` otherwise.
fn cond(a: &mut Asm, c: &Cond, fail: crate::asm::Label, wide: bool) {
    let lo_off = ARGS_OFFSET + 8 * u32::from(c.index);
    let hi_off = lo_off + 4;
    let hi = |v: u64| (v >> 32) as u32;
    let lo = |v: u64| v as u32;
    let f = To::L(fail);
    if !wide {
        a.load(lo_off);
        match c.cmp {
            Cmp::Eq(v) => a.jump(JEQ, v as u32, To::Next, f),
            Cmp::Ne(v) => a.jump(JEQ, v as u32, f, To::Next),
            Cmp::Gt(v) => a.jump(JGT, v as u32, To::Next, f),
            Cmp::Ge(v) => a.jump(JGE, v as u32, To::Next, f),
            Cmp::Lt(v) => a.jump(JGE, v as u32, f, To::Next),
            Cmp::Le(v) => a.jump(JGT, v as u32, f, To::Next),
            Cmp::MaskedEq { mask, value } => {
                a.and(mask as u32);
                a.jump(JEQ, value as u32, To::Next, f);
            }
        }
        return;
    }
    let pass = a.label();
    let p = To::L(pass);
    a.load(hi_off);
    match c.cmp {
        Cmp::Eq(v) => {
            a.jump(JEQ, hi(v), To::Next, f);
            a.load(lo_off);
            a.jump(JEQ, lo(v), To::Next, f);
        }
        Cmp::Ne(v) => {
            a.jump(JEQ, hi(v), To::Next, p);
            a.load(lo_off);
            a.jump(JEQ, lo(v), f, To::Next);
        }
        Cmp::Gt(v) | Cmp::Ge(v) => {
            a.jump(JGT, hi(v), p, To::Next);
            a.jump(JEQ, hi(v), To::Next, f);
            a.load(lo_off);
            let op = if matches!(c.cmp, Cmp::Gt(_)) {
                JGT
            } else {
                JGE
            };
            a.jump(op, lo(v), To::Next, f);
        }
        Cmp::Lt(v) | Cmp::Le(v) => {
            a.jump(JGT, hi(v), f, To::Next);
            a.jump(JEQ, hi(v), To::Next, p);
            a.load(lo_off);
            let op = if matches!(c.cmp, Cmp::Lt(_)) {
                JGE
            } else {
                JGT
            };
            a.jump(op, lo(v), f, To::Next);
        }
        Cmp::MaskedEq { mask, value } => {
            a.and(hi(mask));
            a.jump(JEQ, hi(value), To::Next, f);
            a.load(lo_off);
            a.and(lo(mask));
            a.jump(JEQ, lo(value), To::Next, f);
        }
    }
    a.bind(pass);
}

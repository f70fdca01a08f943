//! The service binaries are linked as `services/link_args.rs` (their build script) says:
//! packed relative relocations (DT_RELR), so that the loader does not read a `.rela.dyn` of 24 bytes per pointer at every
//! start (bench/IDLE-MEMORY.md).

use berth_testutil::bin;

const SERVICES: [&str; 5] = [
    "berth-api-gateway",
    "berth-runtime",
    "berth-images",
    "berth-network",
    "berth-volumes",
];

const PT_DYNAMIC: u32 = 2;
const DT_RELASZ: i64 = 8;
const DT_RELR: i64 = 36;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The (tag, value) entries of an ELF64 little-endian file's dynamic segment.
fn dynamic_entries(elf: &[u8]) -> Vec<(i64, u64)> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not ELF64");
    let phoff = u64_at(elf, 0x20) as usize;
    let phentsize = u16_at(elf, 0x36) as usize;
    let phnum = u16_at(elf, 0x38) as usize;
    let mut out = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph) != PT_DYNAMIC {
            continue;
        }
        let (off, size) = (u64_at(elf, ph + 8) as usize, u64_at(elf, ph + 32) as usize);
        for e in (off..off + size).step_by(16) {
            out.push((u64_at(elf, e) as i64, u64_at(elf, e + 8)));
        }
    }
    out
}

#[test]
fn service_binaries_pack_their_relative_relocations() {
    for name in SERVICES {
        let elf = std::fs::read(bin(name)).unwrap();
        let dynamic = dynamic_entries(&elf);
        assert!(!dynamic.is_empty(), "{name}: no dynamic segment");
        assert!(
            dynamic.iter().any(|&(tag, _)| tag == DT_RELR),
            "{name}: no DT_RELR entry (linked without -z pack-relative-relocs)"
        );
        let rela = dynamic
            .iter()
            .find(|&&(tag, _)| tag == DT_RELASZ)
            .map_or(0, |&(_, v)| v);
        assert!(rela < 64 * 1024, "{name}: .rela.dyn is still {rela} bytes");
    }
}

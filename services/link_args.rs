//! Link flags of the five service binaries: the `build` script of each service's package. One
//! process of each service runs all the time, and the pages of its binary that the loader and
//! start-up touch count in its resident memory (bench/IDLE-MEMORY.md).

fn main() {
    // The script is this file, outside the package (a path that does not exist would make
    // cargo run it, and link again, on every build).
    println!("cargo:rerun-if-changed=../link_args.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    // Relative relocations packed as DT_RELR (glibc 2.36, binutils 2.38, lld 15): the loader
    // reads a bitmap of a few KiB instead of a `.rela.dyn` of 24 bytes per pointer.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // Identical code folding: rustc links x86_64 Linux with its own lld, which merges functions
    // whose machine code is the same (monomorphised generics often are).
    if arch == "x86_64" {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
}

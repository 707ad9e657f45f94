//! The default build is the fast one (issue 15): on x86_64/aarch64 Linux
//! with glibc a plain `cargo build` links `kcc` as a static PIE
//! (build/static_link.rs) — no interpreter, no shared libraries — unless
//! `KCC_LINK=dynamic` asked otherwise. A PIE, so lintian accepts it in the
//! Debian package and the kernel still randomises its address.
#![cfg(all(target_os = "linux", target_env = "gnu", any(target_arch = "x86_64", target_arch = "aarch64")))]

use crate::util::*;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const ET_DYN: u16 = 3;
const DT_NEEDED: u64 = 1;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// What the ELF header and program headers of a 64-bit little-endian
/// executable say about its linkage.
struct Linkage {
    pie: bool,
    interpreter: bool,
    needed: usize,
}

fn linkage(elf: &[u8]) -> Linkage {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "a 64-bit little-endian ELF");
    let (phoff, phentsize, phnum) = (u64_at(elf, 0x20) as usize, u16_at(elf, 0x36) as usize, u16_at(elf, 0x38));
    let mut found = Linkage { pie: u16_at(elf, 0x10) == ET_DYN, interpreter: false, needed: 0 };
    for i in 0..usize::from(phnum) {
        let ph = phoff + i * phentsize;
        match u32_at(elf, ph) {
            PT_INTERP => found.interpreter = true,
            PT_DYNAMIC => {
                let (offset, size) = (u64_at(elf, ph + 8) as usize, u64_at(elf, ph + 32) as usize);
                found.needed =
                    elf[offset..offset + size].chunks_exact(16).filter(|d| u64_at(d, 0) == DT_NEEDED).count();
            }
            _ => {}
        }
    }
    found
}

#[test]
fn the_default_build_is_a_static_pie() {
    if option_env!("KCC_LINK") == Some("dynamic") {
        return skip("built with KCC_LINK=dynamic: the dynamic build was asked for");
    }
    let elf = std::fs::read(kcc_exe()).unwrap();
    let found = linkage(&elf);
    assert!(!found.interpreter, "{} names a dynamic loader: the static link did not happen", kcc_exe().display());
    assert_eq!(found.needed, 0, "{} needs shared libraries but has no loader for them", kcc_exe().display());
    assert!(found.pie, "{} is not position-independent (lintian rejects a static non-PIE)", kcc_exe().display());
}

#[test]
fn the_test_harness_itself_stays_dynamic() {
    // Guards the reading above: the same code sees this test binary's loader.
    let found = linkage(&std::fs::read(std::env::current_exe().unwrap()).unwrap());
    assert!(found.interpreter && found.needed > 0, "the test binary should be linked as before");
}

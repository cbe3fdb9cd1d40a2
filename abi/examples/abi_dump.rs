//! abi-check, Rust side: print every constant and structure layout of the
//! ABI crate in the format of `scripts/abi-check.c`, which prints the same
//! from the C header `v4v.h`; `make abi-check` diffs the two.
use core::mem::size_of;
use v4v_abi::{roundup, Iov, RingDataEnt, C_CONSTANTS, C_LAYOUTS};

fn main() {
    for (name, value) in C_CONSTANTS {
        println!("const {name} {value:#x}");
    }
    // Element sizes of the variable-length arrays that end three structures.
    let elems: &[(&str, usize)] = &[
        ("v4v_pfn_list.pages", size_of::<u64>()),
        ("v4v_ring.ring", size_of::<u8>()),
        ("v4v_ring_data.data", size_of::<RingDataEnt>()),
    ];
    for (name, size, fields) in C_LAYOUTS {
        println!("size {name} {size}");
        for (field, offset) in *fields {
            println!("offset {name}.{field} {offset}");
            let full = format!("{name}.{field}");
            if let Some((_, elem)) = elems.iter().find(|(n, _)| *n == full) {
                println!("elem {full} {elem}");
            }
        }
    }
    // The iov array of sendv is a plain array of v4v_iov.
    debug_assert_eq!(size_of::<Iov>(), 16);
    for a in [0u64, 1, 15, 16, 17, 16_777_184] {
        println!("roundup {a} {}", roundup(a));
    }
}

//! Arbitrary tree sizes and indices: valid proofs verify, and a mutated proof or root
//! fails. The property lives in `weightlog_schema::properties`, where `cargo test` also
//! runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, u16, u16, u16, u8)| {
    let (size, index, old, flip, bit) = input;
    weightlog_schema::properties::proofs(size, index, old, flip, bit);
});

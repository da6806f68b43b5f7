//! Arbitrary bytes through validation and decoding: never a panic, and whatever decodes
//! re-encodes to the same bytes (canonical form). The property lives in
//! `weightlog_schema::properties`, where `cargo test` also runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| weightlog_schema::properties::decode(data));

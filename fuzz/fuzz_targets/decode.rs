//! Arbitrary bytes through validation and decoding: never a panic, and whatever decodes
//! re-encodes to the same bytes (canonical form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightlog_schema::codec;

fuzz_target!(|data: &[u8]| {
    let _ = codec::access(data);
    if let Ok(event) = codec::decode(data) {
        let again = codec::encode(&event).expect("a decoded event encodes");
        assert_eq!(again, data, "decode accepted non-canonical bytes");
    }
    let _ = weightlog_schema::SignedCheckpoint::parse(&String::from_utf8_lossy(data));
});

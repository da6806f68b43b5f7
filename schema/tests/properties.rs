//! The fuzz targets' properties (`weightlog_schema::properties`) on a fixed budget of
//! generated inputs, so `cargo test` checks what `cargo fuzz` checks without a nightly
//! toolchain. The inputs: random bytes, and valid events with bytes flipped, cut and
//! spliced (what a coverage-guided fuzzer reaches quickly).

use weightlog_schema::event::EventKind;
use weightlog_schema::properties;
use weightlog_schema::samples::sample;

/// A fixed input stream (SplitMix64), so a failure reproduces.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

const DECODE_INPUTS: usize = 20_000;
const PROOF_INPUTS: usize = 400;

#[test]
fn decode_never_panics_and_accepts_only_canonical_bytes() {
    let mut stream = Stream(1);
    let valid: Vec<Vec<u8>> = EventKind::ALL
        .iter()
        .flat_map(|kind| (0..4).map(move |seed| weightlog_schema::encode(&sample(*kind, seed))))
        .map(|encoded| encoded.expect("samples encode"))
        .collect();
    for valid_bytes in &valid {
        properties::decode(valid_bytes);
    }
    for round in 0..DECODE_INPUTS {
        let mut data = valid[stream.below(valid.len())].clone();
        match round % 4 {
            0 => {
                let length = stream.below(512);
                data = (0..length).map(|_| stream.next() as u8).collect();
            }
            1 => {
                for _ in 0..1 + stream.below(4) {
                    let position = stream.below(data.len());
                    data[position] ^= 1 << stream.below(8);
                }
            }
            2 => data.truncate(stream.below(data.len() + 1)),
            _ => {
                let other = &valid[stream.below(valid.len())];
                let cut = stream.below(data.len().min(other.len()) + 1);
                data[..cut].copy_from_slice(&other[..cut]);
            }
        }
        properties::decode(&data);
    }
}

#[test]
fn proofs_verify_and_mutations_fail() {
    let mut stream = Stream(2);
    for _ in 0..PROOF_INPUTS {
        let value = stream.next();
        properties::proofs(
            value as u16,
            (value >> 16) as u16,
            (value >> 32) as u16,
            (value >> 48) as u16,
            stream.next() as u8,
        );
    }
    // The edges: one leaf, a full power of two, the largest tree.
    for size in [0u16, 1, 1023, 2047] {
        properties::proofs(size, u16::MAX, size, 0, 255);
    }
}

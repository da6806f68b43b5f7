//! Weights -> u16 against the SDK vectors in shared/chain-fixtures/vectors.json (produced with
//! bittensor-wallet / the SDK's own conversion), in both SDK generations' arithmetic.

use serde_json::Value;
use weightlog_replay::emit::{Precision, to_u16};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/chain-fixtures/vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sdk_vectors_convert_exactly() {
    let cases = vectors()["weights_u16"].as_array().unwrap().clone();
    assert!(cases.len() >= 6);
    for case in cases {
        let input: Vec<f64> = serde_json::from_value(case["input"].clone()).unwrap();
        let uids: Vec<u16> = (0..input.len() as u16).collect();
        for (key, precision) in [
            ("v10_float32", Precision::Float32),
            ("v11_float64", Precision::Float64),
        ] {
            let expected: Vec<u16> = serde_json::from_value(case[key].clone()).unwrap();
            let emitted = to_u16(&uids, &input, precision).unwrap();
            // The vectors list every uid's value; a 0 is dropped with its uid before submission.
            let kept: Vec<(u16, u16)> = uids
                .iter()
                .zip(&expected)
                .filter(|(_, weight)| **weight > 0)
                .map(|(uid, weight)| (*uid, *weight))
                .collect();
            let got: Vec<(u16, u16)> = emitted.uids.into_iter().zip(emitted.weights).collect();
            assert_eq!(got, kept, "{key} of {input:?}");
        }
    }
}

#[test]
fn the_largest_weight_is_always_65535_and_order_is_kept() {
    let emitted = to_u16(&[9, 3, 7], &[0.2, 0.9, 0.45], Precision::Float64).unwrap();
    assert_eq!(emitted.uids, vec![9, 3, 7]);
    assert_eq!(emitted.weights, vec![14563, 65535, 32768]);
}

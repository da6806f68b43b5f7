//! Every example in specs/mechanism-io/ reproduces its `*.expected.json`, under the
//! comparison rules of that folder's README:
//! - u16 weights equal; float64 values to relative 1e-12 (absolute floor 1e-15);
//! - float32 modes (quasar validator_v1/v2, omega two_pool/legacy_winrate): floats within 8
//!   float32 ulps, u16 within +-1;
//! - parallel `uids` / value lists compare as sets of (uid, value); an entry that rounds to 0
//!   may be dropped with its uid;
//! - integers, strings, booleans and list lengths exact; extra keys in our output allowed;
//! - an expected `{"error": ...}` needs an error from us.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use weightlog_replay::{is_float32_mode, run_json};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs/mechanism-io")
}

/// (name, input, expected) for every example whose name contains `system`.
fn examples(system: &str) -> Vec<(String, Value, Value)> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(examples_dir()).expect("specs/mechanism-io beside the repo");
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".input.json").map(str::to_string))
        .filter(|name| name.contains(system))
        .collect();
    names.sort();
    for name in names {
        let read = |suffix: &str| -> Value {
            let path = examples_dir().join(format!("{name}.{suffix}.json"));
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        };
        found.push((name.clone(), read("input"), read("expected")));
    }
    found
}

struct Rules {
    float32: bool,
}

fn is_zero(value: &Value) -> bool {
    value.as_f64().is_some_and(|number| number == 0.0)
}

fn numbers_match(expected: &Value, actual: &Value, path: &str, rules: &Rules) -> bool {
    let (Some(e), Some(a)) = (expected.as_f64(), actual.as_f64()) else {
        return false;
    };
    let both_integers = (expected.is_i64() || expected.is_u64())
        && (actual.is_i64() || actual.is_u64() || a.fract() == 0.0);
    if both_integers {
        let tolerance = if rules.float32 && (path.contains("u16") || path.contains("weights")) {
            1.0
        } else {
            0.0
        };
        return (e - a).abs() <= tolerance;
    }
    let difference = (e - a).abs();
    if rules.float32 {
        let magnitude = e.abs().max(a.abs()) as f32;
        let ulp = f32::from_bits(magnitude.to_bits() + 1) - magnitude;
        // The README's float32 rule is ulps only: no absolute floor.
        difference <= 8.0 * f64::from(ulp)
    } else {
        difference <= (1e-12 * e.abs().max(a.abs())).max(1e-15)
    }
}

/// Value lists parallel to a `uids` list, by key.
type ParallelLists<'a> = Vec<(&'a String, &'a Vec<Value>)>;

/// The uid-keyed view of an object holding a `uids` list and parallel value lists.
fn uid_keyed(object: &Map<String, Value>) -> Option<(Vec<Value>, ParallelLists<'_>)> {
    let uids = object.get("uids")?.as_array()?;
    let parallel: ParallelLists<'_> = object
        .iter()
        .filter(|(key, _)| key.as_str() != "uids")
        .filter_map(|(key, value)| value.as_array().map(|list| (key, list)))
        .filter(|(_, list)| list.len() == uids.len())
        .collect();
    Some((uids.clone(), parallel))
}

fn compare(expected: &Value, actual: &Value, path: &str, rules: &Rules, errors: &mut Vec<String>) {
    match expected {
        Value::Object(expected_object) => {
            let Some(actual_object) = actual.as_object() else {
                errors.push(format!("{path}: expected an object, got {actual}"));
                return;
            };
            if let (Some((expected_uids, expected_lists)), Some((actual_uids, _))) =
                (uid_keyed(expected_object), uid_keyed(actual_object))
            {
                compare_uid_keyed(
                    &expected_uids,
                    &expected_lists,
                    &actual_uids,
                    actual_object,
                    path,
                    rules,
                    errors,
                );
                for (key, value) in expected_object {
                    if key == "uids" || expected_lists.iter().any(|(list_key, _)| *list_key == key)
                    {
                        continue;
                    }
                    compare_key(key, value, actual_object, path, rules, errors);
                }
                return;
            }
            for (key, value) in expected_object {
                compare_key(key, value, actual_object, path, rules, errors);
            }
        }
        Value::Array(expected_items) => {
            let Some(actual_items) = actual.as_array() else {
                errors.push(format!("{path}: expected a list, got {actual}"));
                return;
            };
            if expected_items.len() != actual_items.len() {
                errors.push(format!(
                    "{path}: expected {} items, got {}",
                    expected_items.len(),
                    actual_items.len()
                ));
                return;
            }
            for (index, (e, a)) in expected_items.iter().zip(actual_items).enumerate() {
                compare(e, a, &format!("{path}[{index}]"), rules, errors);
            }
        }
        Value::Number(_) => {
            if !numbers_match(expected, actual, path, rules) {
                errors.push(format!("{path}: expected {expected}, got {actual}"));
            }
        }
        Value::Null => {
            if !(actual.is_null() || actual.as_str() == Some("NaN")) {
                errors.push(format!("{path}: expected null, got {actual}"));
            }
        }
        _ => {
            if expected != actual {
                errors.push(format!("{path}: expected {expected}, got {actual}"));
            }
        }
    }
}

fn compare_key(
    key: &str,
    expected: &Value,
    actual_object: &Map<String, Value>,
    path: &str,
    rules: &Rules,
    errors: &mut Vec<String>,
) {
    match actual_object.get(key) {
        Some(actual) => compare(expected, actual, &format!("{path}.{key}"), rules, errors),
        None => errors.push(format!("{path}.{key}: missing")),
    }
}

fn compare_uid_keyed(
    expected_uids: &[Value],
    expected_lists: &[(&String, &Vec<Value>)],
    actual_uids: &[Value],
    actual_object: &Map<String, Value>,
    path: &str,
    rules: &Rules,
    errors: &mut Vec<String>,
) {
    let position = |uids: &[Value], uid: &Value| uids.iter().position(|candidate| candidate == uid);
    for (key, expected_list) in expected_lists {
        let Some(actual_list) = actual_object.get(key.as_str()).and_then(Value::as_array) else {
            errors.push(format!("{path}.{key}: missing"));
            continue;
        };
        for (uid, expected_value) in expected_uids.iter().zip(expected_list.iter()) {
            match position(actual_uids, uid) {
                Some(index) => compare(
                    expected_value,
                    &actual_list[index],
                    &format!("{path}.{key}[uid {uid}]"),
                    rules,
                    errors,
                ),
                None if is_zero(expected_value)
                    || dropped_as_zero(expected_uids, expected_lists, uid) => {}
                None => errors.push(format!("{path}.{key}: uid {uid} missing")),
            }
        }
        for (uid, actual_value) in actual_uids.iter().zip(actual_list.iter()) {
            if position(expected_uids, uid).is_none() && !is_zero(actual_value) {
                errors.push(format!(
                    "{path}.{key}: unexpected uid {uid} = {actual_value}"
                ));
            }
        }
    }
}

/// Whether the expected entry for `uid` has a u16 weight of 0 (so it may be dropped).
fn dropped_as_zero(uids: &[Value], lists: &[(&String, &Vec<Value>)], uid: &Value) -> bool {
    let index = uids.iter().position(|candidate| candidate == uid);
    lists
        .iter()
        .filter(|(key, _)| key.contains("u16"))
        .any(|(_, list)| index.is_some_and(|index| is_zero(&list[index])))
}

/// Runs every example of `system`; panics listing every mismatch.
fn check_system(system: &str, minimum_examples: usize) {
    let examples = examples(system);
    assert!(
        examples.len() >= minimum_examples,
        "found {} {system} examples, expected at least {minimum_examples}",
        examples.len()
    );
    let mut failures = Vec::new();
    for (name, input, expected) in examples {
        let mode = input.get("mode").and_then(Value::as_str).unwrap_or("");
        let rules = Rules {
            float32: is_float32_mode(mode),
        };
        let result = run_json(&input);
        if expected.get("error").is_some() {
            if let Ok(output) = result {
                failures.push(format!("{name}: expected an error, got {output}"));
            }
            continue;
        }
        match result {
            Err(error) => failures.push(format!("{name}: {error}")),
            Ok(output) => {
                let mut errors = Vec::new();
                compare(&expected, &output, "$", &rules, &mut errors);
                if !errors.is_empty() {
                    let shown: Vec<String> = errors.iter().take(12).cloned().collect();
                    failures.push(format!(
                        "{name}: {} mismatches:\n    {}",
                        errors.len(),
                        shown.join("\n    ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn affine_examples_reproduce() {
    check_system("affine", 7);
}

#[test]
fn loosh_examples_reproduce() {
    check_system("loosh", 5);
}

#[test]
fn quasar_examples_reproduce() {
    check_system("quasar", 14);
}

#[test]
fn omega_examples_reproduce() {
    check_system("omega", 7);
}

#[test]
fn aml_examples_reproduce() {
    check_system("aml", 5);
}

#[test]
fn comparator_rules_hold() {
    let rules = Rules { float32: false };
    let mut errors = Vec::new();
    // Uid-keyed lists compare as sets; a zero entry may be dropped.
    compare(
        &serde_json::json!({"uids": [1, 2, 3], "weights": [0.5, 0.0, 0.5], "u16": [65535, 0, 65535]}),
        &serde_json::json!({"uids": [3, 1], "weights": [0.5, 0.5], "u16": [65535, 65535]}),
        "$",
        &rules,
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    compare(
        &serde_json::json!(1.0),
        &serde_json::json!(1.0 + 1e-9),
        "$",
        &rules,
        &mut errors,
    );
    assert_eq!(errors.len(), 1);
    compare(
        &serde_json::json!({"a": 1}),
        &serde_json::json!({"a": 1, "extra": 2}),
        "$",
        &rules,
        &mut errors,
    );
    assert_eq!(errors.len(), 1, "extra keys are allowed");
    compare(
        &serde_json::json!([1, 2]),
        &serde_json::json!([1]),
        "$",
        &rules,
        &mut errors,
    );
    assert_eq!(errors.len(), 2, "lengths are exact");
}

//! `weightlog mechanism run` end to end: every example of specs/mechanism-io through the
//! binary (the numeric comparison itself is replay/tests/mechanism_io.rs), and the error
//! contract: `{"error": ...}` on stdout and a non-zero exit, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs/mechanism-io")
}

/// Runs `mechanism run --input -` with `stdin`; returns (exit code, stdout JSON, stderr).
fn run(stdin: &[u8]) -> (i32, Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .args(["mechanism", "run", "--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {stdout}"));
    (
        output.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_example_runs_through_the_binary() {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".input.json").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 39, "{} examples", names.len());
    for name in names {
        let input = std::fs::read(examples_dir().join(format!("{name}.input.json"))).unwrap();
        let expected: Value = serde_json::from_slice(
            &std::fs::read(examples_dir().join(format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let (code, output, stderr) = run(&input);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        if expected.get("error").is_some() {
            assert_ne!(code, 0, "{name}: expected a failure");
            assert!(output.get("error").is_some(), "{name}: {output}");
            continue;
        }
        assert_eq!(code, 0, "{name}: {output}");
        for key in expected.as_object().unwrap().keys() {
            assert!(output.get(key).is_some(), "{name}: output lacks `{key}`");
        }
    }
}

/// The two upstream failures the spec documents come out as error objects too.
#[test]
fn documented_upstream_failures_print_an_error_object() {
    let omega = br#"{"mode":"two_pool","n":3,"hotkeys":["a","b","c"],"all_model_scores":{},"baseline":0.5}"#;
    let (code, output, _) = run(omega);
    assert_eq!(code, 1);
    assert!(
        output["error"].as_str().unwrap().contains("uid 111"),
        "{output}"
    );

    let mut affine: Value = serde_json::from_slice(
        &std::fs::read(examples_dir().join("gen-affine_stages_v2-1.input.json")).unwrap(),
    )
    .unwrap();
    affine["miners"][1]["first_block"] = Value::Null;
    let (code, output, _) = run(affine.to_string().as_bytes());
    assert_eq!(code, 1);
    assert!(
        output["error"].as_str().unwrap().contains("first_block"),
        "{output}"
    );
}

#[test]
fn bad_input_prints_an_error_object_and_exits_non_zero() {
    for (input, needle) in [
        (&b"{not json"[..], "not JSON"),
        (b"[1, 2]", "object"),
        (b"{\"mode\": \"nope\"}", "unknown mode"),
        (b"{\"mode\": 7}", "mode"),
        (b"{\"something\": 1}", "cannot tell"),
        (b"{\"mode\": \"two_pool\"}", ""),
        (b"{\"mode\": \"stages_v2\", \"environments\": \"x\"}", ""),
        (b"{\"evaluate\": {\"responses\": 3}}", ""),
        (b"{\"miners\": {\"hk\": 5}}", ""),
        (b"{\"mode\": \"metric\", \"dataset\": \"narrativeqa\"}", ""),
    ] {
        let (code, output, stderr) = run(input);
        assert_eq!(code, 1, "{}: {output}", String::from_utf8_lossy(input));
        let message = output["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error key: {output}"));
        assert!(message.contains(needle), "{message}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Input that cannot be read is invalid input too: the same error object, not a bare line
/// on stderr.
#[test]
fn unreadable_input_prints_an_error_object_too() {
    let (code, output, _) = run(b"{\"mode\": \"readme\", \"x\": \"\xff\"}");
    assert_eq!(code, 1, "{output}");
    let message = output["error"].as_str().expect("an error key");
    assert!(message.contains("stdin: cannot read"), "{message}");

    let missing = std::env::temp_dir().join("weightlog-no-such-mechanism-input.json");
    let output = Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .args(["mechanism", "run", "--input"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let message = stdout["error"].as_str().expect("an error key");
    assert!(message.contains("cannot read"), "{message}");
    assert!(
        message.contains("weightlog-no-such-mechanism-input.json"),
        "{message}"
    );
}

//! Problem sets for ABD, DED and ELR: the built-in sets we wrote (`data/abd.jsonl`,
//! `data/ded.jsonl`, `data/elr.jsonl`, compiled into the binary) and a loader for a user's
//! JSON Lines file of the same shape.
//!
//! A challenge records its whole problem in `extra_json`. With the built-in set the problem
//! is the one the seed picks (`SplitMix64(seed).below(len)`), and re-evaluation checks that;
//! a problem from a user set is passed in the parameters (`{"problem": {...}}`) and the
//! recorded copy is what an auditor re-runs (the log is signed, so it cannot be swapped).
//!
//! **API Boundary:** a user's file is untrusted input: each line must parse into the
//! problem type (unknown fields refused) and stay under [`PROBLEM_BYTES_MAX`].

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weightlog_schema::event::ChallengeIssued;

use super::EnvError;
use super::rng::SplitMix64;
use crate::sandbox::RunResult;

/// The largest problem (one JSON line) accepted.
pub const PROBLEM_BYTES_MAX: usize = 1 << 20;
/// The most problems one file may hold.
pub const PROBLEMS_MAX: usize = 1_000_000;

const ABD_BUILTIN: &str = include_str!("../../data/abd.jsonl");
const DED_BUILTIN: &str = include_str!("../../data/ded.jsonl");
const ELR_BUILTIN: &str = include_str!("../../data/elr.jsonl");

/// Abduction: a program and the output it printed; the miner finds an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbdProblem {
    pub id: String,
    pub program: String,
    /// An input that gives `output` (ours; the miner may find another).
    pub input: String,
    pub output: String,
}

/// Deduction: a task statement and tests; the miner writes the program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedProblem {
    pub id: String,
    pub prompt: String,
    pub tests: Vec<DedTest>,
    /// A program that passes every test (ours, for the set's own tests).
    pub solution: String,
}

/// One DED test case, as affine's `verification_info` has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DedTest {
    /// Feed `input` on stdin; the output must equal `output` after trailing-whitespace
    /// normalisation.
    StdinStdout { input: String, output: String },
    /// Call `fn_name(*args)` and print it; the printed text must equal
    /// `str(expected[0])`, which the set records as `expected_text`.
    FunctionCall {
        fn_name: String,
        args: Vec<serde_json::Value>,
        expected: Vec<serde_json::Value>,
        expected_text: String,
    },
}

/// A numeric-answer problem (ELR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElrProblem {
    pub id: String,
    pub question: String,
    /// `str(numerical_answer)`: what the `<Answer>` must hold exactly.
    pub answer: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProblemError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} line {line}: {message}")]
    Line {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{origin}: no problems")]
    Empty { origin: String },
}

/// Problems from JSON Lines text (blank lines skipped).
pub fn parse_jsonl<T: DeserializeOwned>(origin: &str, text: &str) -> Result<Vec<T>, ProblemError> {
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let failure = |message: String| ProblemError::Line {
            origin: origin.to_string(),
            line: index + 1,
            message,
        };
        if line.len() > PROBLEM_BYTES_MAX {
            return Err(failure(format!(
                "{} bytes, above the limit {PROBLEM_BYTES_MAX}",
                line.len()
            )));
        }
        if problems.len() == PROBLEMS_MAX {
            return Err(failure(format!("more than {PROBLEMS_MAX} problems")));
        }
        problems.push(serde_json::from_str(line).map_err(|error| failure(error.to_string()))?);
    }
    if problems.is_empty() {
        return Err(ProblemError::Empty {
            origin: origin.to_string(),
        });
    }
    Ok(problems)
}

/// A user's problem set from a JSON Lines file.
pub fn load_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ProblemError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProblemError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_jsonl(&path.display().to_string(), &text)
}

// The sets are part of the binary and tested, so a parse failure is a programmer error.
static ABD: LazyLock<Vec<AbdProblem>> =
    LazyLock::new(|| parse_jsonl("data/abd.jsonl", ABD_BUILTIN).expect("data/abd.jsonl parses"));
static DED: LazyLock<Vec<DedProblem>> =
    LazyLock::new(|| parse_jsonl("data/ded.jsonl", DED_BUILTIN).expect("data/ded.jsonl parses"));
static ELR: LazyLock<Vec<ElrProblem>> =
    LazyLock::new(|| parse_jsonl("data/elr.jsonl", ELR_BUILTIN).expect("data/elr.jsonl parses"));

/// The built-in ABD set.
pub fn abd_builtin() -> &'static [AbdProblem] {
    &ABD
}

/// The built-in DED set.
pub fn ded_builtin() -> &'static [DedProblem] {
    &DED
}

/// The built-in ELR set.
pub fn elr_builtin() -> &'static [ElrProblem] {
    &ELR
}

/// Where a challenge's problem came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The built-in set, at the index the seed picks.
    Builtin,
    /// Passed in the parameters (a user's set).
    Given,
}

/// What a challenge of a problem environment records in `extra_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posed<P> {
    pub source: Source,
    pub problem: P,
    /// Sandbox fuel per program run, for environments that run code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoseParameters<P> {
    problem: Option<P>,
    fuel: Option<u64>,
}

/// The problem a seed and parameters (`{"problem": ..., "fuel": ...}`, both optional) pose.
pub(super) fn pose<P: Clone + DeserializeOwned>(
    environment: &'static str,
    seed: u64,
    parameters: &Value,
    builtin: &[P],
    fuel_default: Option<u64>,
) -> Result<Posed<P>, EnvError> {
    let invalid = |message: String| EnvError::Invalid {
        environment,
        message,
    };
    let parameters: PoseParameters<P> = serde_json::from_value(parameters.clone())
        .map_err(|error| invalid(format!("parameters: {error}")))?;
    let fuel = match (fuel_default, parameters.fuel) {
        (None, None) => None,
        (None, Some(_)) => return Err(invalid("this environment runs no code; no fuel".into())),
        (Some(default), fuel) => {
            let fuel = fuel.unwrap_or(default);
            if fuel == 0 || fuel > crate::sandbox::FUEL_MAX {
                return Err(invalid(format!(
                    "fuel must be in 1..={}, not {fuel}",
                    crate::sandbox::FUEL_MAX
                )));
            }
            Some(fuel)
        }
    };
    let (source, problem) = match parameters.problem {
        Some(problem) => (Source::Given, problem),
        None => (Source::Builtin, builtin[pick(seed, builtin.len())].clone()),
    };
    Ok(Posed {
        source,
        problem,
        fuel,
    })
}

/// The problem a recorded challenge poses, checked against what its seed and recorded
/// parameters give (a mismatch means the task was forged).
pub(super) fn recorded<P: Clone + Serialize + DeserializeOwned>(
    environment: &'static str,
    challenge: &ChallengeIssued,
    generate: impl Fn(u64, &Value) -> Result<super::Generated, EnvError>,
) -> Result<Posed<P>, EnvError> {
    let invalid = |message: String| EnvError::Invalid {
        environment,
        message,
    };
    let posed: Posed<P> = serde_json::from_str(&challenge.extra_json).map_err(|error| {
        invalid(format!(
            "challenge `{}`: extra_json is not a posed problem: {error}",
            challenge.challenge_id
        ))
    })?;
    let mut parameters = serde_json::Map::new();
    if let Some(fuel) = posed.fuel {
        parameters.insert("fuel".into(), fuel.into());
    }
    if posed.source == Source::Given {
        let problem = serde_json::to_value(&posed.problem)
            .map_err(|error| invalid(format!("cannot encode the problem: {error}")))?;
        parameters.insert("problem".into(), problem);
    }
    let generated = generate(challenge.seed, &Value::Object(parameters))?;
    super::check_recorded(environment, challenge, &generated, "problem or prompt")?;
    Ok(posed)
}

/// `extra_json` text for a posed problem.
pub(super) fn encode<P: Serialize>(
    environment: &'static str,
    posed: &Posed<P>,
) -> Result<String, EnvError> {
    serde_json::to_string(posed).map_err(|error| EnvError::Invalid {
        environment,
        message: format!("cannot encode the problem: {error}"),
    })
}

/// Runs a Python program in the shared sandbox under `fuel`, or says why there is no
/// sandbox to run it in.
pub(super) fn run_python(
    environment: &'static str,
    program: &str,
    stdin: &str,
    fuel: u64,
) -> Result<RunResult, EnvError> {
    let unavailable = |message: String| EnvError::Sandbox {
        environment,
        message,
    };
    #[cfg(feature = "sandbox")]
    {
        let limits = crate::sandbox::Limits {
            fuel,
            ..crate::sandbox::Limits::default()
        };
        crate::sandbox::Sandbox::shared()
            .map_err(unavailable)?
            .run_python(program, stdin.as_bytes(), &limits)
            .map_err(|error| unavailable(error.to_string()))
    }
    #[cfg(not(feature = "sandbox"))]
    {
        let _ = (program, stdin, fuel);
        Err(unavailable(
            "this weightlog was built without its `sandbox` feature".into(),
        ))
    }
}

/// The index a seed picks among `count` problems (`count > 0`).
pub fn pick(seed: u64, count: usize) -> usize {
    assert!(count > 0, "a problem set is never empty");
    SplitMix64::new(seed).below(count as u64) as usize
}

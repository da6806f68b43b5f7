//! affine's DED (deduction, `ded.py`; scoring.md section 1.2): the miner writes a Python
//! program for a task; it runs in the sandbox against the problem's test cases.
//!
//! The code is the last ```python fence of the response, else its last fence, else the
//! whole text. `stdin_stdout` cases compare the output with the expected one after
//! trailing-whitespace normalisation (the text right-trimmed, each line right-trimmed);
//! `function_call` cases append a `__main__` block printing `fn_name(*args)` and compare it
//! with `str(expected[0])`. Score 1 iff every case passes with a clean exit and empty stderr
//! (0 with no cases). Cases run in order and scoring stops at the first failure, so a
//! hostile program costs at most one budget; each case gets the recorded fuel.

use serde_json::Value;
use weightlog_schema::event::{ChallengeIssued, Metric};

use super::problems::{self, DedProblem, DedTest};
use super::text;
use super::{EnvError, Environment, Evaluation, Generated, sat};
use crate::sandbox::Verdict;

pub const NAME: &str = "affine:ded";
/// Fuel of each test case's run unless the parameters say otherwise.
pub const FUEL_DEFAULT: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct Ded;

pub fn prompt(problem: &DedProblem) -> String {
    format!(
        "{}\n\nWrite a complete Python 3 program (it may read stdin and must print its \
         answer to stdout). Put it in a single ```python code block.",
        problem.prompt.trim_end()
    )
}

fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

/// The program and stdin one case runs, and the output it must print; `None` for a case
/// that cannot be run (a function name that is not an identifier).
pub fn case_program(code: &str, case: &DedTest) -> Option<(String, String, String)> {
    match case {
        DedTest::StdinStdout { input, output } => {
            Some((code.to_string(), input.clone(), output.clone()))
        }
        DedTest::FunctionCall {
            fn_name,
            args,
            expected_text,
            ..
        } => {
            if !is_identifier(fn_name) {
                return None;
            }
            // The arguments travel as a JSON string literal, which is also a valid Python
            // string literal.
            let arguments = serde_json::to_string(&serde_json::to_string(args).ok()?).ok()?;
            let program = format!(
                "{code}\n\nif __name__ == \"__main__\":\n    import json as _weightlog_json\n    \
                 print({fn_name}(*_weightlog_json.loads({arguments})))\n"
            );
            Some((program, String::new(), expected_text.clone()))
        }
    }
}

/// Runs every case until one fails: (cases passed, fuel used in all).
pub fn run_cases(code: &str, cases: &[DedTest], fuel: u64) -> Result<(usize, u64), EnvError> {
    let mut passed = 0;
    let mut fuel_used = 0u64;
    for case in cases {
        let Some((program, stdin, expected)) = case_program(code, case) else {
            break;
        };
        let run = problems::run_python(NAME, &program, &stdin, fuel)?;
        fuel_used = fuel_used.saturating_add(run.fuel_used);
        let ok = run.verdict == Verdict::Ok
            && run.stderr.is_empty()
            && text::rstrip_lines(&run.stdout_text()) == text::rstrip_lines(&expected);
        if !ok {
            break;
        }
        passed += 1;
    }
    Ok((passed, fuel_used))
}

impl Environment for Ded {
    fn name(&self) -> &'static str {
        NAME
    }

    fn evaluators(&self) -> &'static [&'static str] {
        &[sat::EVALUATOR]
    }

    fn runs_code(&self) -> bool {
        true
    }

    fn generate(&self, seed: u64, parameters: &Value) -> Result<Generated, EnvError> {
        let posed = problems::pose(
            NAME,
            seed,
            parameters,
            problems::ded_builtin(),
            Some(FUEL_DEFAULT),
        )?;
        Ok(Generated {
            prompt: prompt(&posed.problem),
            extra_json: problems::encode(NAME, &posed)?,
        })
    }

    fn evaluate(
        &self,
        challenge: &ChallengeIssued,
        response: Option<&str>,
    ) -> Result<Evaluation, EnvError> {
        let posed = problems::recorded::<DedProblem>(NAME, challenge, |seed, parameters| {
            self.generate(seed, parameters)
        })?;
        let cases = &posed.problem.tests;
        let total = cases.len() as f64;
        let metrics = |passed: usize| {
            vec![
                Metric {
                    name: "cases_passed".into(),
                    value: passed as f64,
                },
                Metric {
                    name: "cases_total".into(),
                    value: total,
                },
            ]
        };
        let Some(response) = response else {
            return Ok(Evaluation {
                score: 0.0,
                metrics: metrics(0),
                fuel_used: None,
            });
        };
        let code = text::code_of(response);
        let (passed, fuel_used) = run_cases(&code, cases, posed.fuel.unwrap_or(FUEL_DEFAULT))?;
        let all = !cases.is_empty() && passed == cases.len();
        Ok(Evaluation {
            score: if all { 1.0 } else { 0.0 },
            metrics: metrics(passed),
            fuel_used: Some(fuel_used),
        })
    }
}

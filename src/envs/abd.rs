//! affine's ABD (abduction, `abd.py`; scoring.md section 1.2): the miner sees a Python
//! program and the output it printed, and proposes an input in `<INPUT>…</INPUT>`.
//!
//! Scoring: take the last `<INPUT>` block (tags case-insensitive, after deleting
//! `<think>`/`<thinking>` blocks), strip it, right-trim its lines and drop trailing blank
//! lines. 0 without tags; 0 with fewer lines than the program has `input()` calls (for
//! `for _ in range(int(input()))` programs: unless there are more lines than the first
//! line's integer). Otherwise the program runs in the sandbox with that stdin plus a
//! newline; 0 on anything but a clean exit with empty stderr; 1 iff its output equals the
//! expected output exactly, or after strip and CRLF→LF, or line by line after right-trims.
//! Upstream's wall-clock and CPU limits become the challenge's recorded fuel budget.

use serde_json::Value;
use weightlog_schema::event::{ChallengeIssued, Metric};

use super::problems::{self, AbdProblem};
use super::text;
use super::{EnvError, Environment, Evaluation, Generated, sat};
use crate::sandbox::Verdict;

pub const NAME: &str = "affine:abd";
/// Fuel of the program's run unless the parameters say otherwise.
pub const FUEL_DEFAULT: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct Abd;

/// The prompt a miner sees for a problem.
pub fn prompt(problem: &AbdProblem) -> String {
    format!(
        "You are given a Python program and the exact output it printed. Find an input \
         (the text the program read from stdin) that makes it print this output.\n\n\
         Program:\n```python\n{}\n```\n\nExpected output:\n```\n{}\n```\n\n\
         Put the input between <INPUT> and </INPUT> tags, one line per line read.",
        problem.program.trim_end(),
        problem.output.trim_end()
    )
}

/// The proposed input of a response, as the scorer reads it (`None`: no tags).
pub fn proposed_input(response: &str) -> Option<String> {
    let cleaned = text::without_thinking(response);
    text::last_tagged(&cleaned, "INPUT").map(|input| text::tidy_lines(&input))
}

/// Whether an input has enough lines for the program's `input()` calls.
pub fn enough_lines(program: &str, input: &str) -> bool {
    let lines: Vec<&str> = if input.is_empty() {
        Vec::new()
    } else {
        input.split('\n').collect()
    };
    if program.contains("for _ in range(int(input()))") {
        return match lines.first().map(|line| line.trim().parse::<i64>()) {
            Some(Ok(count)) => lines.len() as i64 > count,
            _ => false,
        };
    }
    lines.len() >= program.matches("input()").count()
}

/// Upstream's three ways an output may equal the expected one.
pub fn outputs_match(actual: &str, expected: &str) -> bool {
    if actual == expected {
        return true;
    }
    let unify = |text: &str| text.trim().replace("\r\n", "\n");
    if unify(actual) == unify(expected) {
        return true;
    }
    let lines = |text: &str| {
        text.trim()
            .lines()
            .map(|line| line.trim_end().to_string())
            .collect::<Vec<_>>()
    };
    lines(actual) == lines(expected)
}

fn metric(name: &str, value: f64) -> Metric {
    Metric {
        name: name.into(),
        value,
    }
}

impl Environment for Abd {
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
            problems::abd_builtin(),
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
        let posed = problems::recorded::<AbdProblem>(NAME, challenge, |seed, parameters| {
            self.generate(seed, parameters)
        })?;
        let zero = |input_found: f64| Evaluation {
            score: 0.0,
            metrics: vec![metric("input_found", input_found), metric("ran", 0.0)],
            fuel_used: None,
        };
        let Some(input) = response.and_then(proposed_input) else {
            return Ok(zero(0.0));
        };
        if !enough_lines(&posed.problem.program, &input) {
            return Ok(zero(1.0));
        }
        let run = problems::run_python(
            NAME,
            &posed.problem.program,
            &format!("{input}\n"),
            posed.fuel.unwrap_or(FUEL_DEFAULT),
        )?;
        let clean = run.verdict == Verdict::Ok && run.stderr.is_empty();
        let matched = clean && outputs_match(&run.stdout_text(), &posed.problem.output);
        Ok(Evaluation {
            score: if matched { 1.0 } else { 0.0 },
            metrics: vec![metric("input_found", 1.0), metric("ran", 1.0)],
            fuel_used: Some(run.fuel_used),
        })
    }
}

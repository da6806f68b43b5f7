//! affine's ELR (`elr.py`, Project-Euler style; scoring.md section 1.2): a question with a
//! numeric answer. Score 1 iff the stripped content of the last `<Answer>…</Answer>` (tags
//! matched exactly) equals `str(numerical_answer)` exactly; no tags scores 0. Nothing runs.

use serde_json::Value;
use weightlog_schema::event::{ChallengeIssued, Metric};

use super::problems::{self, ElrProblem};
use super::text;
use super::{EnvError, Environment, Evaluation, Generated, sat};

pub const NAME: &str = "affine:elr";

#[derive(Debug, Clone, Copy, Default)]
pub struct Elr;

pub fn prompt(problem: &ElrProblem) -> String {
    format!(
        "{}\n\nGive the final numerical answer between <Answer> and </Answer> tags.",
        problem.question.trim_end()
    )
}

/// The answer a response gives (`None`: no `<Answer>` tags).
pub fn answer_of(response: &str) -> Option<String> {
    text::last_tagged_exact(response, "Answer").map(|answer| answer.trim().to_string())
}

impl Environment for Elr {
    fn name(&self) -> &'static str {
        NAME
    }

    fn evaluators(&self) -> &'static [&'static str] {
        &[sat::EVALUATOR]
    }

    fn generate(&self, seed: u64, parameters: &Value) -> Result<Generated, EnvError> {
        let posed = problems::pose(NAME, seed, parameters, problems::elr_builtin(), None)?;
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
        let posed = problems::recorded::<ElrProblem>(NAME, challenge, |seed, parameters| {
            self.generate(seed, parameters)
        })?;
        let answer = response.and_then(answer_of);
        let correct = answer.as_deref() == Some(posed.problem.answer.as_str());
        Ok(Evaluation {
            score: if correct { 1.0 } else { 0.0 },
            metrics: vec![Metric {
                name: "answer_found".into(),
                value: if answer.is_some() { 1.0 } else { 0.0 },
            }],
            fuel_used: None,
        })
    }
}

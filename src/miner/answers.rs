//! The reference miner's answers: for each environment a correct answer (one the
//! environment's `evaluate` scores 1.0, or an on-topic one where answers are scored by
//! consensus) and a wrong but well-formed one. Which of the two a challenge gets is drawn by
//! the caller; [`Draw`] gives the deterministic randomness both need.
//!
//! Prompts are parsed back from the exact text the environments generate (`affine:sat`,
//! `affine:hvm`, `quasar`) or looked up in the bundled problem sets (`affine:abd`,
//! `affine:ded`, `affine:elr`). A prompt that cannot be parsed or found gets the wrong answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::envs::problems;
use crate::envs::{abd, ded, elr, hvm, sat};

/// Search steps of the SAT solver before it gives up (n = 15 needs at most 2^15 leaves).
const SAT_STEPS_MAX: u64 = 4_000_000;
/// Hole assignments the HVM search tries before it gives up.
const HVM_CANDIDATES_MAX: u64 = 1_000_000;
/// Results of a video search answer.
pub const VIDEO_RESULTS: usize = 5;
/// Alerts an aml prompt may hold.
pub const ALERTS_MAX: usize = 10_000;

/// Deterministic randomness keyed by (seed, challenge id): the same miner answers the same
/// challenge the same way, and different seeds answer differently.
#[derive(Debug, Clone)]
pub struct Draw {
    seed: u64,
    challenge_id: String,
}

impl Draw {
    pub fn new(seed: u64, challenge_id: &str) -> Draw {
        Draw {
            seed,
            challenge_id: challenge_id.to_string(),
        }
    }

    /// A uniform u64 for `label`.
    pub fn u64(&self, label: &str) -> u64 {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"weightlog reference miner\0");
        hasher.update(&self.seed.to_le_bytes());
        hasher.update(&(self.challenge_id.len() as u64).to_le_bytes());
        hasher.update(self.challenge_id.as_bytes());
        hasher.update(label.as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest.as_bytes()[..8]);
        u64::from_le_bytes(bytes)
    }

    /// A uniform float in [0, 1) for `label`.
    pub fn unit(&self, label: &str) -> f64 {
        (self.u64(label) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..bound` for `label` (`bound > 0`; the tiny modulo bias is harmless here).
    pub fn below(&self, label: &str, bound: usize) -> usize {
        assert!(bound > 0, "below(0) has no values");
        (self.u64(label) % bound as u64) as usize
    }
}

/// Why a challenge gets no answer at all (the miner answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("unknown environment {0}")]
    UnknownEnvironment(String),
    #[error("malformed {environment} prompt: {reason}")]
    MalformedPrompt {
        environment: &'static str,
        reason: String,
    },
}

/// The answer to `prompt` in `environment`: correct when `correct`, else wrong but
/// well-formed. `quality` also shapes environments scored on a scale: each video search
/// result is on topic with that probability, and aml risk scores blur as it falls.
pub fn answer(
    environment: &str,
    prompt: &str,
    correct: bool,
    quality: f64,
    draw: &Draw,
) -> Result<String, AnswerError> {
    Ok(match environment {
        sat::NAME => sat_answer(prompt, correct),
        elr::NAME => elr_answer(prompt, correct),
        abd::NAME => abd_answer(prompt, correct),
        ded::NAME => ded_answer(prompt, correct),
        hvm::NAME => hvm_answer(prompt, correct),
        "quasar:long_context" | crate::envs::needle::NAME => needle_answer(prompt, correct, draw),
        "loosh:inference" | crate::envs::prompt::NAME => {
            super::loosh_bank::answer(prompt, correct, draw)
        }
        "omega:video_search" => video_answer(prompt, quality, draw),
        "aml" => aml_answer(prompt, quality, draw)?,
        other => {
            return Err(AnswerError::UnknownEnvironment(
                other.chars().take(64).collect(),
            ));
        }
    })
}

// ---------------------------------------------------------------- affine:sat

/// The clauses (DIMACS literals) and variable count of a `Sat` prompt.
pub fn parse_sat(prompt: &str) -> Option<(u32, Vec<Vec<i32>>)> {
    let after = prompt.split_once("over variables x1..x")?.1;
    let (count, rest) = after.split_once(':')?;
    let variables: u32 = count.trim().parse().ok()?;
    let formula = rest.trim_start().lines().next()?;
    let mut clauses = Vec::new();
    for clause in formula.split(" ∧ ") {
        let inner = clause.trim().strip_prefix('(')?.strip_suffix(')')?;
        let mut literals = Vec::new();
        for literal in inner.split(" ∨ ") {
            let (negated, name) = match literal.trim().strip_prefix('¬') {
                Some(name) => (true, name),
                None => (false, literal.trim()),
            };
            let index: i32 = name.strip_prefix('x')?.parse().ok()?;
            if index < 1 || index as u32 > variables {
                return None;
            }
            literals.push(if negated { -index } else { index });
        }
        clauses.push(literals);
    }
    Some((variables, clauses))
}

/// A satisfying assignment by backtracking (index `i - 1` holds `x<i>`), if one is found
/// within [`SAT_STEPS_MAX`] steps.
pub fn solve_sat(variables: u32, clauses: &[Vec<i32>]) -> Option<Vec<bool>> {
    fn falsified(clause: &[i32], assigned: &[Option<bool>]) -> bool {
        clause
            .iter()
            .all(|literal| assigned[literal.unsigned_abs() as usize - 1] == Some(*literal < 0))
    }
    fn search(
        next: usize,
        assigned: &mut Vec<Option<bool>>,
        clauses: &[Vec<i32>],
        steps: &mut u64,
    ) -> bool {
        *steps += 1;
        if *steps > SAT_STEPS_MAX || clauses.iter().any(|clause| falsified(clause, assigned)) {
            return false;
        }
        if next == assigned.len() {
            return true;
        }
        for value in [true, false] {
            assigned[next] = Some(value);
            if search(next + 1, assigned, clauses, steps) {
                return true;
            }
        }
        assigned[next] = None;
        false
    }
    let mut assigned = vec![None; variables as usize];
    let mut steps = 0;
    search(0, &mut assigned, clauses, &mut steps).then(|| {
        assigned
            .into_iter()
            .map(|value| value == Some(true))
            .collect()
    })
}

fn sat_answer(prompt: &str, correct: bool) -> String {
    let Some((variables, clauses)) = parse_sat(prompt) else {
        return "x1=True".into();
    };
    if correct && let Some(solution) = solve_sat(variables, &clauses) {
        return sat::answer(&solution);
    }
    // Every literal of the first clause false: that clause, and so the formula, fails.
    let mut wrong = vec![false; variables as usize];
    if let Some(first) = clauses.first() {
        for literal in first {
            wrong[literal.unsigned_abs() as usize - 1] = *literal < 0;
        }
    }
    sat::answer(&wrong)
}

// ---------------------------------------------------------------- abd, ded, elr

fn elr_answer(prompt: &str, correct: bool) -> String {
    let found = problems::elr_builtin()
        .iter()
        .find(|problem| elr::prompt(problem) == prompt);
    match found {
        Some(problem) if correct => format!("<Answer>{}</Answer>", problem.answer),
        Some(problem) => format!("<Answer>{}1</Answer>", problem.answer),
        None => "<Answer>0</Answer>".into(),
    }
}

fn abd_answer(prompt: &str, correct: bool) -> String {
    let found = problems::abd_builtin()
        .iter()
        .find(|problem| abd::prompt(problem) == prompt);
    match found {
        Some(problem) if correct => format!("<INPUT>\n{}\n</INPUT>", problem.input.trim_end()),
        // No lines at all: fewer than the program's input() calls, so it scores 0.
        _ => "<INPUT>\n</INPUT>".into(),
    }
}

fn ded_answer(prompt: &str, correct: bool) -> String {
    let found = problems::ded_builtin()
        .iter()
        .find(|problem| ded::prompt(problem) == prompt);
    match found {
        Some(problem) if correct => {
            format!("```python\n{}\n```", problem.solution.trim_end())
        }
        _ => "```python\nprint(\"no idea\")\n```".into(),
    }
}

// ---------------------------------------------------------------- affine:hvm

/// The program, holes and cases of an `Hvm` prompt.
pub fn parse_hvm(prompt: &str) -> Option<hvm::Task> {
    let (_, rest) = prompt.split_once("HALT stops):\n")?;
    let (listing, rest) = rest.split_once("\n\nHoles: ")?;
    let mut program = Vec::new();
    for (index, line) in listing.lines().enumerate() {
        let (number, instruction) = line.split_once(": ")?;
        if number.parse::<usize>().ok()? != index {
            return None;
        }
        program.push(instruction.to_string());
    }
    let (holes_line, rest) = rest.split_once("\n\nCases:\n")?;
    let mut holes = Vec::new();
    for hole in holes_line.split(", ") {
        let (name, domain) = hole.split_once(" in ")?;
        let (low, high) = domain.split_once("..=")?;
        holes.push(hvm::Hole {
            name: name.to_string(),
            low: low.parse().ok()?,
            high: high.parse().ok()?,
        });
    }
    let (cases_text, _) = rest.split_once("\n\nFill every hole")?;
    // Cases are joined by one newline, and each expected output keeps its own newlines.
    let mut cases = Vec::new();
    let mut rest = cases_text;
    while let Some(after) = rest.strip_prefix("inputs [") {
        let (inputs, after) = after.split_once("] -> output:\n")?;
        let inputs = inputs
            .split(", ")
            .filter(|value| !value.is_empty())
            .map(|value| value.parse().ok())
            .collect::<Option<Vec<i64>>>()?;
        let (expected, next) = match after.find("\ninputs [") {
            Some(end) => (&after[..end], &after[end + 1..]),
            None => (after, ""),
        };
        cases.push(hvm::Case {
            inputs,
            expected: expected.to_string(),
        });
        rest = next;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(hvm::Task {
        program,
        holes,
        cases,
    })
}

/// Whether hole values make every case print its expected output.
fn hvm_passes(task: &hvm::Task, values: &BTreeMap<String, i64>) -> bool {
    task.cases.iter().all(|case| {
        let output = hvm::run(&task.program, values, &case.inputs).unwrap_or_else(|error| error);
        hvm::canonical(&output) == hvm::canonical(&case.expected)
    })
}

/// The first in-domain assignment (in odometer order) that passes, or fails when `pass` is
/// false.
fn hvm_search(task: &hvm::Task, pass: bool) -> Option<BTreeMap<String, i64>> {
    if task.holes.iter().any(|hole| hole.low > hole.high) {
        return None;
    }
    let mut values: Vec<i64> = task.holes.iter().map(|hole| hole.low).collect();
    for _ in 0..HVM_CANDIDATES_MAX {
        let map: BTreeMap<String, i64> = task
            .holes
            .iter()
            .zip(&values)
            .map(|(hole, value)| (hole.name.clone(), *value))
            .collect();
        if hvm_passes(task, &map) == pass {
            return Some(map);
        }
        // Next assignment; None after the last one.
        let mut position = 0;
        loop {
            let hole = task.holes.get(position)?;
            if values[position] < hole.high {
                values[position] += 1;
                break;
            }
            values[position] = hole.low;
            position += 1;
        }
    }
    None
}

fn hvm_answer(prompt: &str, correct: bool) -> String {
    let Some(task) = parse_hvm(prompt) else {
        return "<HOLES>\n?a=0\n</HOLES>".into();
    };
    if let Some(values) = hvm_search(&task, correct) {
        return hvm::answer(&values);
    }
    // Nothing to choose from: a value outside its domain is well-formed and scores 0.
    let values = task
        .holes
        .iter()
        .map(|hole| (hole.name.clone(), hole.high.saturating_add(1)))
        .collect();
    hvm::answer(&values)
}

// ---------------------------------------------------------------- quasar

/// The needle's (key, number) in a `Needle` prompt.
pub fn parse_needle(prompt: &str) -> Option<(String, String)> {
    let (_, rest) = prompt.split_once("The special magic number for ")?;
    let (key, rest) = rest.split_once(" is ")?;
    let (number, _) = rest.split_once('.')?;
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some((key.to_string(), number.to_string()))
}

fn needle_answer(prompt: &str, correct: bool, draw: &Draw) -> String {
    let needle = parse_needle(prompt).map(|(_, number)| number);
    match needle {
        Some(number) if correct => number,
        other => {
            // Another seven-digit number, as a confused model might give.
            let mut guess = (1_000_000 + draw.u64("needle") % 9_000_000).to_string();
            if other.as_deref() == Some(guess.as_str()) {
                guess = (1_000_000 + (draw.u64("needle again") % 9_000_000)).to_string();
            }
            guess
        }
    }
}

// ---------------------------------------------------------------- omega:video_search

/// One video search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoResult {
    pub video_id: String,
    pub description: String,
}

/// The answer of `omega:video_search` (JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoResults {
    pub results: Vec<VideoResult>,
}

const VIDEO_ON_TOPIC: [&str; 8] = [
    "A close look at {query}, filmed in natural light.",
    "Short documentary clip about {query} with narration.",
    "Handheld footage showing {query} from several angles.",
    "Time-lapse of {query} over an afternoon.",
    "Amateur video of {query}, uploaded with a short caption.",
    "Slow-motion shots of {query} set to quiet music.",
    "Drone footage capturing {query} from above.",
    "A beginner's walkthrough featuring {query} step by step.",
];
const VIDEO_OFF_TOPIC: [&str; 8] = [
    "Unboxing a set of kitchen knives and testing them on tomatoes.",
    "Highlights of a regional chess tournament, final round.",
    "Stand-up comedy set recorded in a small club.",
    "Tutorial on formatting spreadsheets for monthly budgets.",
    "Karaoke night at a neighbourhood bar, two singers.",
    "Reviewing three brands of mechanical pencils.",
    "Podcast recording about retirement savings plans.",
    "Lecture slides on medieval tax records, with voice-over.",
];

/// Each result is on topic with probability `quality`, drawn per result, so a relevance
/// score averages five draws per answer rather than one all-or-nothing draw.
fn video_answer(prompt: &str, quality: f64, draw: &Draw) -> String {
    let query = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    let offset = draw.below("video order", VIDEO_ON_TOPIC.len());
    let results = (0..VIDEO_RESULTS)
        .map(|index| {
            let on_topic = draw.unit(&format!("on topic {index}")) < quality;
            let description = if on_topic {
                VIDEO_ON_TOPIC[(offset + index) % VIDEO_ON_TOPIC.len()].replace("{query}", &query)
            } else {
                VIDEO_OFF_TOPIC[(offset + index) % VIDEO_OFF_TOPIC.len()].to_string()
            };
            VideoResult {
                video_id: format!("{:011x}", draw.u64(&format!("video {index}")) >> 20),
                description,
            }
        })
        .collect();
    serde_json::to_string(&VideoResults { results }).unwrap_or_default()
}

// ---------------------------------------------------------------- aml

/// One alert of an aml prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    #[serde(default)]
    pub address: String,
    pub risk_signal: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmlPrompt {
    pub alerts: Vec<Alert>,
}

/// The answer of `aml` (JSON text): one score per alert, in the alerts' order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmlAnswer {
    pub alert_ids: Vec<String>,
    pub scores: Vec<f64>,
}

/// Scores are the risk signal plus uniform noise of half-width `(1 - quality) * 0.5`.
fn aml_answer(prompt: &str, quality: f64, draw: &Draw) -> Result<String, AnswerError> {
    let malformed = |reason: String| AnswerError::MalformedPrompt {
        environment: "aml",
        reason,
    };
    let parsed: AmlPrompt =
        serde_json::from_str(prompt).map_err(|error| malformed(error.to_string()))?;
    if parsed.alerts.len() > ALERTS_MAX {
        return Err(malformed(format!("more than {ALERTS_MAX} alerts")));
    }
    let width = (1.0 - quality.clamp(0.0, 1.0)) * 0.5;
    let mut answer = AmlAnswer {
        alert_ids: Vec::with_capacity(parsed.alerts.len()),
        scores: Vec::with_capacity(parsed.alerts.len()),
    };
    for alert in parsed.alerts {
        if !alert.risk_signal.is_finite() {
            return Err(malformed(format!(
                "alert {}: risk_signal is not a number",
                alert.alert_id
            )));
        }
        let noise = (draw.unit(&format!("aml {}", alert.alert_id)) * 2.0 - 1.0) * width;
        let score = (alert.risk_signal + noise).clamp(0.0, 1.0);
        answer.scores.push((score * 10_000.0).round() / 10_000.0);
        answer.alert_ids.push(alert.alert_id);
    }
    serde_json::to_string(&answer).map_err(|error| malformed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::Environment;
    use serde_json::json;

    #[test]
    fn sat_prompts_parse_back_into_their_formula_and_solve() {
        for seed in 0..20 {
            let (formula, _) = sat::formula(seed, 15, 10);
            let prompt = sat::prompt(&formula);
            let (variables, clauses) = parse_sat(&prompt).unwrap();
            assert_eq!(variables, 15);
            assert_eq!(clauses, formula.clauses);
            let solution = solve_sat(variables, &clauses).unwrap();
            let parsed = sat::parse_assignment(&sat::answer(&solution));
            assert!(sat::satisfies(&formula, &parsed));
            let wrong = sat::parse_assignment(&sat_answer(&prompt, false));
            assert!(!sat::satisfies(&formula, &wrong));
        }
    }

    #[test]
    fn hvm_prompts_parse_back_into_their_task() {
        for seed in 0..20 {
            let generated = hvm::Hvm.generate(seed, &json!({})).unwrap();
            let (task, _) = hvm::task(seed);
            assert_eq!(parse_hvm(&generated.prompt).unwrap(), task, "seed {seed}");
        }
    }

    #[test]
    fn needles_are_found() {
        let (prompt, hidden) = crate::envs::needle::haystack(3, 200, "narrativeqa");
        assert_eq!(parse_needle(&prompt), Some((hidden.key, hidden.answer)));
    }

    #[test]
    fn draws_are_deterministic_and_keyed() {
        let a = Draw::new(1, "c1");
        assert_eq!(a.u64("x"), Draw::new(1, "c1").u64("x"));
        assert_ne!(a.u64("x"), Draw::new(2, "c1").u64("x"));
        assert_ne!(a.u64("x"), Draw::new(1, "c2").u64("x"));
        assert!((0.0..1.0).contains(&a.unit("y")));
    }
}

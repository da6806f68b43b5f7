//! affine's HVM (`hvm.py` v0.1.1; scoring.md section 1.2): a program for a small stack VM
//! with holes (`?a`, `?b`, ...), each with a domain, and three cases (inputs and expected
//! output). The miner fills the holes in the last `<HOLES>` block, one `?name=int` a line.
//!
//! Scoring: 0 if the block is missing or a line is malformed, if the set of holes differs
//! from the program's, or if a value is outside its domain; otherwise each case runs in
//! the VM ([`STEPS_MAX`] steps, [`STACK_DEPTH_MAX`] values) and the answer scores 1 iff every
//! output equals the expected one after canonicalisation (CRLF/CR as LF, one trailing
//! newline stripped, lines right-trimmed).
//!
//! The VM and the generator are ours (the spec gives the rules, not the instruction set):
//! `READ`, `PUSH n`, `PUSH ?hole`, `ADD`, `SUB`, `MUL` (wrapping i64), `MOD` (Euclidean; by 0
//! is an error), `DUP`, `SWAP`, `DROP`, `PRINT`, `JZ i` (pop, jump to instruction `i` if
//! zero), `JMP i`, `HALT`. A generated program reads `x` and a count `n`, then `n` times
//! transforms `x` with a seeded chain of operations on holes and constants and prints it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weightlog_schema::event::{ChallengeIssued, Metric};

use super::rng::SplitMix64;
use super::text;
use super::{EnvError, Environment, Evaluation, Generated, sat};

pub const NAME: &str = "affine:hvm";
pub const STEPS_MAX: u32 = 8_000;
pub const STACK_DEPTH_MAX: usize = 256;
pub const CASES: usize = 3;
/// The most holes a `<HOLES>` block may fill (more is malformed).
const HOLES_PARSED_MAX: usize = 64;

#[derive(Debug, Clone, Copy, Default)]
pub struct Hvm;

/// One hole and its domain (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hole {
    pub name: String,
    pub low: i64,
    pub high: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub inputs: Vec<i64>,
    pub expected: String,
}

/// What a challenge records: the program (one instruction a line), holes and cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub program: Vec<String>,
    pub holes: Vec<Hole>,
    pub cases: Vec<Case>,
}

fn invalid(message: impl Into<String>) -> EnvError {
    EnvError::Invalid {
        environment: NAME,
        message: message.into(),
    }
}

/// Runs `program` with holes filled from `values` on `inputs`: the printed lines, or the
/// error that stopped it (`Err` text is what the program "printed" for comparison).
pub fn run(
    program: &[String],
    values: &BTreeMap<String, i64>,
    inputs: &[i64],
) -> Result<String, String> {
    let mut stack: Vec<i64> = Vec::new();
    let mut output = String::new();
    let mut inputs = inputs.iter();
    let mut counter = 0usize;
    for _ in 0..STEPS_MAX {
        let Some(line) = program.get(counter) else {
            return Ok(output);
        };
        let mut words = line.split_whitespace();
        let operation = words.next().unwrap_or("");
        let argument = words.next();
        counter += 1;
        let pop = |stack: &mut Vec<i64>| stack.pop().ok_or_else(|| "stack underflow".to_string());
        match (operation, argument) {
            ("READ", None) => stack.push(*inputs.next().ok_or("no more input")?),
            ("PUSH", Some(value)) => stack.push(match value.strip_prefix('?') {
                Some(_) => *values.get(value).ok_or("unfilled hole")?,
                None => value.parse().map_err(|_| "bad constant")?,
            }),
            ("ADD" | "SUB" | "MUL" | "MOD", None) => {
                let right = pop(&mut stack)?;
                let left = pop(&mut stack)?;
                stack.push(match operation {
                    "ADD" => left.wrapping_add(right),
                    "SUB" => left.wrapping_sub(right),
                    "MUL" => left.wrapping_mul(right),
                    _ => left.checked_rem_euclid(right).ok_or("modulo by zero")?,
                });
            }
            ("DUP", None) => {
                let top = *stack.last().ok_or("stack underflow")?;
                stack.push(top);
            }
            ("SWAP", None) => {
                let length = stack.len();
                if length < 2 {
                    return Err("stack underflow".into());
                }
                stack.swap(length - 1, length - 2);
            }
            ("DROP", None) => {
                pop(&mut stack)?;
            }
            ("PRINT", None) => {
                output.push_str(&pop(&mut stack)?.to_string());
                output.push('\n');
            }
            ("JZ", Some(target)) => {
                if pop(&mut stack)? == 0 {
                    counter = target.parse().map_err(|_| "bad jump")?;
                }
            }
            ("JMP", Some(target)) => counter = target.parse().map_err(|_| "bad jump")?,
            ("HALT", None) => return Ok(output),
            _ => return Err(format!("bad instruction `{line}`")),
        }
        if stack.len() > STACK_DEPTH_MAX {
            return Err("stack overflow".into());
        }
    }
    Err("step limit".into())
}

/// Output canonicalisation: CRLF/CR as LF, one trailing newline stripped, lines right-trimmed.
pub fn canonical(output: &str) -> String {
    let unified = output.replace("\r\n", "\n").replace('\r', "\n");
    let stripped = unified.strip_suffix('\n').unwrap_or(&unified);
    stripped
        .split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The task a seed gives, and the hole values it was planted with.
pub fn task(seed: u64) -> (Task, BTreeMap<String, i64>) {
    let mut rng = SplitMix64::new(seed);
    let hole_count = 2 + rng.below(2) as usize;
    let mut holes = Vec::new();
    let mut planted = BTreeMap::new();
    for index in 0..hole_count {
        let name = format!("?{}", (b'a' + index as u8) as char);
        let high = [5, 9, 15][rng.below(3) as usize];
        planted.insert(name.clone(), rng.below(high as u64 + 1) as i64);
        holes.push(Hole { name, low: 0, high });
    }
    // Each hole appears at least once in the chain, then a few constants.
    let mut operands: Vec<String> = holes.iter().map(|hole| hole.name.clone()).collect();
    for _ in 0..rng.below(3) {
        operands.push((1 + rng.below(9)).to_string());
    }
    for index in (1..operands.len()).rev() {
        operands.swap(index, rng.below(index as u64 + 1) as usize);
    }
    let mut body = Vec::new();
    for operand in &operands {
        body.push(format!("PUSH {operand}"));
        body.push(["ADD", "SUB", "MUL"][rng.below(3) as usize].to_string());
    }
    // Keep the numbers readable.
    body.push("PUSH 1000".into());
    body.push("MOD".into());
    // 0 READ x, 1 READ n, 2.. loop: SWAP, body, DUP PRINT, SWAP, PUSH 1 SUB, DUP, JZ end, JMP 2.
    let mut program = vec!["READ".to_string(), "READ".to_string(), "SWAP".to_string()];
    program.extend(body);
    program.extend(["DUP", "PRINT", "SWAP", "PUSH 1", "SUB", "DUP"].map(String::from));
    let end = program.len() + 2;
    program.push(format!("JZ {end}"));
    program.push("JMP 2".into());
    program.push("HALT".into());
    let cases = (0..CASES)
        .map(|_| {
            let inputs = vec![rng.below(20) as i64, 1 + rng.below(3) as i64];
            let expected = run(&program, &planted, &inputs).unwrap_or_else(|error| error);
            Case { inputs, expected }
        })
        .collect();
    (
        Task {
            program,
            holes,
            cases,
        },
        planted,
    )
}

pub fn prompt(task: &Task) -> String {
    let program: Vec<String> = task
        .program
        .iter()
        .enumerate()
        .map(|(index, line)| format!("{index}: {line}"))
        .collect();
    let holes: Vec<String> = task
        .holes
        .iter()
        .map(|hole| format!("{} in {}..={}", hole.name, hole.low, hole.high))
        .collect();
    let cases: Vec<String> = task
        .cases
        .iter()
        .map(|case| format!("inputs {:?} -> output:\n{}", case.inputs, case.expected))
        .collect();
    format!(
        "A stack machine runs this program (READ pushes the next input; PUSH, ADD, SUB, MUL, \
         MOD, DUP, SWAP, DROP, PRINT work on the stack; JZ i pops and jumps to instruction i \
         if zero; JMP i jumps; HALT stops):\n{}\n\nHoles: {}\n\nCases:\n{}\n\n\
         Fill every hole so that each case prints its output. Answer with\n<HOLES>\n?a=1\n...\n</HOLES>",
        program.join("\n"),
        holes.join(", "),
        cases.join("\n")
    )
}

/// The hole values of a response (`None`: no block or a malformed line).
pub fn parse_holes(response: &str) -> Option<BTreeMap<String, i64>> {
    let block = text::last_tagged(response, "HOLES")?;
    let mut values = BTreeMap::new();
    for line in block.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once('=')?;
        let name = name.trim();
        let is_name = name.len() > 1
            && name.starts_with('?')
            && name[1..]
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '_');
        if !is_name || values.len() >= HOLES_PARSED_MAX {
            return None;
        }
        values.insert(name.to_string(), value.trim().parse::<i64>().ok()?);
    }
    Some(values)
}

impl Environment for Hvm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn evaluators(&self) -> &'static [&'static str] {
        &[sat::EVALUATOR]
    }

    fn generate(&self, seed: u64, parameters: &Value) -> Result<Generated, EnvError> {
        if parameters
            .as_object()
            .is_none_or(|object| !object.is_empty())
        {
            return Err(invalid("HVM takes no parameters; pass {}"));
        }
        let (task, _) = task(seed);
        let extra_json = serde_json::to_string(&task)
            .map_err(|error| invalid(format!("cannot encode the task: {error}")))?;
        Ok(Generated {
            prompt: prompt(&task),
            extra_json,
        })
    }

    fn evaluate(
        &self,
        challenge: &ChallengeIssued,
        response: Option<&str>,
    ) -> Result<Evaluation, EnvError> {
        let generated = self.generate(challenge.seed, &serde_json::json!({}))?;
        super::check_recorded(NAME, challenge, &generated, "task or prompt")?;
        let (task, _) = task(challenge.seed);
        let values = response.and_then(parse_holes);
        let valid = values.as_ref().is_some_and(|values| {
            values.len() == task.holes.len()
                && task.holes.iter().all(|hole| {
                    values
                        .get(&hole.name)
                        .is_some_and(|value| (hole.low..=hole.high).contains(value))
                })
        });
        let passed = match (&values, valid) {
            (Some(values), true) => task
                .cases
                .iter()
                .filter(|case| {
                    let output = run(&task.program, values, &case.inputs).unwrap_or_else(|e| e);
                    canonical(&output) == canonical(&case.expected)
                })
                .count(),
            _ => 0,
        };
        Ok(Evaluation {
            score: if valid && passed == task.cases.len() {
                1.0
            } else {
                0.0
            },
            metrics: vec![
                Metric {
                    name: "holes_valid".into(),
                    value: if valid { 1.0 } else { 0.0 },
                },
                Metric {
                    name: "cases_passed".into(),
                    value: passed as f64,
                },
            ],
            fuel_used: None,
        })
    }
}

/// The answer that fills the planted values (for tests and demos).
pub fn answer(planted: &BTreeMap<String, i64>) -> String {
    let lines: Vec<String> = planted
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("<HOLES>\n{}\n</HOLES>", lines.join("\n"))
}

//! affine's SAT environment (`sat.py` v0.0.2, scoring.md section 1): planted k-SAT with
//! n = 15 variables, k = 10 literals per clause and m = int(4.26 n) = 63 clauses. The miner
//! answers with `x<i>=True|False|1|0` assignments; the last assignment of a variable wins; the
//! answer scores 1 iff every clause has a literal whose sign matches the parsed value
//! (an unassigned variable satisfies nothing), else 0.
//!
//! The generator is ours (upstream draws from Python's `random`): seeded SplitMix64 picks a
//! planted assignment, then each clause's k distinct variables and signs; a clause the
//! planted assignment leaves unsatisfied gets its first literal flipped, so the planted
//! assignment always satisfies the formula. The clauses are recorded in the challenge's
//! `extra_json` and must equal what the seed gives.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weightlog_schema::event::{ChallengeIssued, Metric};

use super::rng::SplitMix64;
use super::{EnvError, Environment, Evaluation, Generated};

pub const NAME: &str = "affine:sat";
/// The per-sample evaluator of the affine profile (its projection reads these scores).
pub const EVALUATOR: &str = "affine:sample";
pub const VARIABLES_DEFAULT: u32 = 15;
pub const LITERALS_PER_CLAUSE_DEFAULT: u32 = 10;
/// Bounds that keep a generated challenge small (it is recorded in the log).
pub const VARIABLES_MAX: u32 = 1_000;
pub const CLAUSES_MAX: u32 = 10_000;

/// The SAT environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sat;

/// A formula: each clause a list of non-zero literals, `+i` for `x<i>` and `-i` for not
/// `x<i>` (variables numbered from 1, DIMACS style).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Formula {
    pub variables: u32,
    pub literals_per_clause: u32,
    pub clauses: Vec<Vec<i32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {
    #[serde(default = "variables_default")]
    variables: u32,
    #[serde(default = "literals_default")]
    literals_per_clause: u32,
}

fn variables_default() -> u32 {
    VARIABLES_DEFAULT
}

fn literals_default() -> u32 {
    LITERALS_PER_CLAUSE_DEFAULT
}

fn invalid(message: impl Into<String>) -> EnvError {
    EnvError::Invalid {
        environment: NAME,
        message: message.into(),
    }
}

/// The formula and planted assignment (index `i - 1` holds `x<i>`) a seed gives.
pub fn formula(seed: u64, variables: u32, literals_per_clause: u32) -> (Formula, Vec<bool>) {
    let mut rng = SplitMix64::new(seed);
    let planted: Vec<bool> = (0..variables).map(|_| rng.coin()).collect();
    // int(4.26 * n), as upstream computes the clause count.
    let clause_count = (4.26 * f64::from(variables)) as u32;
    let mut clauses = Vec::with_capacity(clause_count as usize);
    for _ in 0..clause_count {
        // k distinct variables: a partial Fisher-Yates shuffle of 1..=n.
        let mut pool: Vec<i32> = (1..=variables as i32).collect();
        let mut clause = Vec::with_capacity(literals_per_clause as usize);
        for index in 0..literals_per_clause as usize {
            let pick = index + rng.below((pool.len() - index) as u64) as usize;
            pool.swap(index, pick);
            let variable = pool[index];
            clause.push(if rng.coin() { variable } else { -variable });
        }
        let satisfied = clause
            .iter()
            .any(|literal| planted[literal.unsigned_abs() as usize - 1] == (*literal > 0));
        if !satisfied {
            clause[0] = -clause[0];
        }
        clauses.push(clause);
    }
    let formula = Formula {
        variables,
        literals_per_clause,
        clauses,
    };
    (formula, planted)
}

/// The prompt a miner sees for a formula.
pub fn prompt(formula: &Formula) -> String {
    let clauses: Vec<String> = formula
        .clauses
        .iter()
        .map(|clause| {
            let literals: Vec<String> = clause
                .iter()
                .map(|literal| {
                    let name = format!("x{}", literal.unsigned_abs());
                    if *literal > 0 {
                        name
                    } else {
                        format!("¬{name}")
                    }
                })
                .collect();
            format!("({})", literals.join(" ∨ "))
        })
        .collect();
    format!(
        "Find a satisfying assignment for the following {}-SAT formula over variables x1..x{}:\n{}\n\
         Provide your answer as comma-separated assignments like `x1=True, x2=False, ...`, \
         or respond `UNSAT` if it has no solution.",
        formula.literals_per_clause,
        formula.variables,
        clauses.join(" ∧ ")
    )
}

/// Every `x<i>=(True|False|1|0)` in a response, the last assignment of a variable winning
/// (upstream's `re.findall(r"x(\d+)=(True|False|1|0)")` read into a dict).
pub fn parse_assignment(response: &str) -> std::collections::BTreeMap<u64, bool> {
    let mut assignment = std::collections::BTreeMap::new();
    let bytes = response.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'x' {
            index += 1;
            continue;
        }
        let digits_start = index + 1;
        let mut cursor = digits_start;
        while cursor < bytes.len() && bytes[cursor].is_ascii_digit() {
            cursor += 1;
        }
        if cursor == digits_start || cursor >= bytes.len() || bytes[cursor] != b'=' {
            index += 1;
            continue;
        }
        let rest = &response[cursor + 1..];
        let value = if rest.starts_with("True") || rest.starts_with('1') {
            Some(true)
        } else if rest.starts_with("False") || rest.starts_with('0') {
            Some(false)
        } else {
            None
        };
        match (value, response[digits_start..cursor].parse::<u64>()) {
            (Some(value), Ok(variable)) => {
                assignment.insert(variable, value);
                index = cursor + 1;
            }
            _ => index += 1,
        }
    }
    assignment
}

/// Whether an assignment satisfies every clause.
pub fn satisfies(formula: &Formula, assignment: &std::collections::BTreeMap<u64, bool>) -> bool {
    formula.clauses.iter().all(|clause| {
        clause.iter().any(|literal| {
            assignment.get(&u64::from(literal.unsigned_abs())) == Some(&(*literal > 0))
        })
    })
}

/// An answer in the format the prompt asks for.
pub fn answer(assignment: &[bool]) -> String {
    assignment
        .iter()
        .enumerate()
        .map(|(index, value)| format!("x{}={}", index + 1, if *value { "True" } else { "False" }))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Environment for Sat {
    fn name(&self) -> &'static str {
        NAME
    }

    fn evaluators(&self) -> &'static [&'static str] {
        &[EVALUATOR]
    }

    fn generate(&self, seed: u64, parameters: &Value) -> Result<Generated, EnvError> {
        let parameters: Parameters = serde_json::from_value(parameters.clone())
            .map_err(|error| invalid(format!("parameters: {error}")))?;
        if parameters.variables == 0 || parameters.variables > VARIABLES_MAX {
            return Err(invalid(format!(
                "variables must be in 1..={VARIABLES_MAX}, not {}",
                parameters.variables
            )));
        }
        if parameters.literals_per_clause == 0
            || parameters.literals_per_clause > parameters.variables
        {
            return Err(invalid(format!(
                "literals_per_clause must be in 1..=variables ({}), not {}",
                parameters.variables, parameters.literals_per_clause
            )));
        }
        let (formula, _) = formula(seed, parameters.variables, parameters.literals_per_clause);
        if formula.clauses.len() > CLAUSES_MAX as usize {
            return Err(invalid("too many clauses"));
        }
        let extra_json = serde_json::to_string(&formula)
            .map_err(|error| invalid(format!("cannot encode the formula: {error}")))?;
        Ok(Generated {
            prompt: prompt(&formula),
            extra_json,
        })
    }

    fn evaluate(
        &self,
        challenge: &ChallengeIssued,
        response: Option<&str>,
    ) -> Result<Evaluation, EnvError> {
        let recorded: Formula = serde_json::from_str(&challenge.extra_json).map_err(|error| {
            invalid(format!(
                "challenge `{}`: extra_json is not a formula: {error}",
                challenge.challenge_id
            ))
        })?;
        let parameters = serde_json::json!({
            "variables": recorded.variables,
            "literals_per_clause": recorded.literals_per_clause,
        });
        let generated = self.generate(challenge.seed, &parameters)?;
        super::check_recorded(NAME, challenge, &generated, "formula or prompt")?;
        let assignment = response.map(parse_assignment).unwrap_or_default();
        let satisfied = satisfies(&recorded, &assignment);
        let clauses_satisfied = recorded
            .clauses
            .iter()
            .filter(|clause| {
                clause.iter().any(|literal| {
                    assignment.get(&u64::from(literal.unsigned_abs())) == Some(&(*literal > 0))
                })
            })
            .count();
        Ok(Evaluation {
            score: if satisfied { 1.0 } else { 0.0 },
            metrics: vec![Metric {
                name: "clauses_satisfied".into(),
                value: clauses_satisfied as f64,
            }],
            fuel_used: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn challenge(seed: u64) -> ChallengeIssued {
        let generated = Sat.generate(seed, &json!({})).unwrap();
        ChallengeIssued {
            challenge_id: format!("sat-{seed}"),
            environment: NAME.into(),
            seed,
            prompt: generated.prompt,
            extra_json: generated.extra_json,
            target_uids: vec![1],
            deadline_ms: 0,
        }
    }

    #[test]
    fn the_default_formula_has_upstreams_shape() {
        let (formula, planted) = formula(42, 15, 10);
        assert_eq!(formula.clauses.len(), 63);
        assert_eq!(planted.len(), 15);
        for clause in &formula.clauses {
            assert_eq!(clause.len(), 10);
            let mut variables: Vec<u32> = clause.iter().map(|l| l.unsigned_abs()).collect();
            variables.sort_unstable();
            variables.dedup();
            assert_eq!(variables.len(), 10, "variables in a clause are distinct");
        }
    }

    #[test]
    fn the_planted_assignment_scores_one_and_its_negation_zero() {
        for seed in 0..50 {
            let challenge = challenge(seed);
            let (_, planted) = formula(seed, 15, 10);
            let good = Sat.evaluate(&challenge, Some(&answer(&planted))).unwrap();
            assert_eq!(good.score, 1.0, "seed {seed}");
            assert_eq!(good.metrics[0].value, 63.0);
            let unassigned = Sat.evaluate(&challenge, Some("UNSAT")).unwrap();
            assert_eq!(unassigned.score, 0.0);
            assert_eq!(unassigned.metrics[0].value, 0.0);
            assert_eq!(Sat.evaluate(&challenge, None).unwrap().score, 0.0);
        }
    }

    #[test]
    fn parsing_follows_upstreams_regex() {
        let parsed = parse_assignment("x1=True, x2=0 x3 = True x12=1x1=False x4=maybe xx5=1");
        let expected: Vec<(u64, bool)> = vec![(1, false), (2, false), (5, true), (12, true)];
        assert_eq!(parsed.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_forged_challenge_is_refused() {
        let mut forged = challenge(7);
        let mut formula: Formula = serde_json::from_str(&forged.extra_json).unwrap();
        formula.clauses[0][0] = -formula.clauses[0][0];
        forged.extra_json = serde_json::to_string(&formula).unwrap();
        assert!(Sat.evaluate(&forged, Some("x1=True")).is_err());
        let mut reseeded = challenge(7);
        reseeded.seed = 8;
        assert!(Sat.evaluate(&reseeded, Some("x1=True")).is_err());
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Sat.generate(1, &json!({"variables": 0})).is_err());
        assert!(
            Sat.generate(1, &json!({"variables": 5, "literals_per_clause": 6}))
                .is_err()
        );
        assert!(Sat.generate(1, &json!({"clauses": 3})).is_err());
    }
}

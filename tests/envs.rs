//! The challenge environments: challenges are reproducible from their seed; right answers
//! score 1, wrong ones 0 and malformed ones get the spec's verdict; forged challenges are
//! refused; the built-in problem sets are solvable in the sandbox; and evaluations recorded
//! as events are re-executed by the auditor (`replay verify --re-evaluate`) with the same
//! scores and fuel.
#![cfg(feature = "sandbox")]

mod common;

use common::issued_challenge;
use serde_json::{Value, json};
use weightlog::audit::{AuditOptions, MemorySource, Verdict, audit};
use weightlog::envs::problems::{self, AbdProblem, DedProblem, DedTest, Posed};
use weightlog::envs::{
    self, EnvError, Environment, Evaluation, abd, ded, elr, hvm, needle, prompt,
};
use weightlog::genlog::{self, GenOptions};
use weightlog::sandbox::Sandbox;
use weightlog_schema::event::{
    ChallengeIssued, EvaluationRecorded, ResponseOutcome, ResponseReceived,
};
use weightlog_schema::{Event, Payload};

fn score(
    environment: &dyn Environment,
    challenge: &ChallengeIssued,
    response: Option<&str>,
) -> f64 {
    environment
        .evaluate(challenge, response)
        .expect("evaluate")
        .score
}

fn posed<P: serde::de::DeserializeOwned>(challenge: &ChallengeIssued) -> Posed<P> {
    serde_json::from_str(&challenge.extra_json).unwrap()
}

#[test]
fn every_environment_regenerates_the_same_challenge_from_its_seed() {
    let cases: [(&dyn Environment, Value); 7] = [
        (&envs::sat::Sat, json!({})),
        (&abd::Abd, json!({})),
        (&ded::Ded, json!({})),
        (&elr::Elr, json!({})),
        (&hvm::Hvm, json!({})),
        (&needle::Needle, json!({"context_length": 500})),
        (&prompt::Prompt, json!({})),
    ];
    for (environment, parameters) in cases {
        let name = environment.name();
        assert!(envs::by_name(name).is_some(), "{name} is registered");
        let distinct: std::collections::BTreeSet<String> = (0..20)
            .map(|seed| {
                let first = environment.generate(seed, &parameters).unwrap();
                assert_eq!(
                    environment.generate(seed, &parameters).unwrap(),
                    first,
                    "{name}"
                );
                first.extra_json
            })
            .collect();
        assert!(
            distinct.len() > 3,
            "{name}: seeds pick different challenges"
        );
        assert!(
            environment
                .generate(1, &json!({"no_such_parameter": 1}))
                .is_err(),
            "{name} refuses unknown parameters"
        );
    }
}

#[test]
fn a_forged_challenge_is_refused() {
    let cases: [(&dyn Environment, Value); 5] = [
        (&abd::Abd, json!({})),
        (&ded::Ded, json!({})),
        (&elr::Elr, json!({})),
        (&hvm::Hvm, json!({})),
        (&needle::Needle, json!({"context_length": 100})),
    ];
    for (environment, parameters) in cases {
        let mut forged = issued_challenge(environment, 5, &parameters);
        forged.seed = 6;
        let other = issued_challenge(environment, 6, &parameters);
        if other.extra_json != forged.extra_json {
            assert!(
                matches!(
                    environment.evaluate(&forged, Some("x")),
                    Err(EnvError::Invalid { .. })
                ),
                "{}",
                environment.name()
            );
        }
        let mut changed_prompt = issued_challenge(environment, 5, &parameters);
        changed_prompt.prompt.push_str(" (easier)");
        assert!(environment.evaluate(&changed_prompt, Some("x")).is_err());
    }
}

#[test]
fn elr_takes_the_last_answer_tag_exactly() {
    for seed in 0..10 {
        let issued = issued_challenge(&elr::Elr, seed, &json!({}));
        let answer = posed::<weightlog::envs::problems::ElrProblem>(&issued)
            .problem
            .answer;
        let right = format!("thinking... <Answer>0</Answer> so <Answer> {answer} </Answer>");
        assert_eq!(score(&elr::Elr, &issued, Some(&right)), 1.0);
        assert_eq!(
            score(
                &elr::Elr,
                &issued,
                Some(&format!("<Answer>{answer}0</Answer>"))
            ),
            0.0
        );
        // Malformed: no tags, or the tag in another case.
        assert_eq!(score(&elr::Elr, &issued, Some(&answer)), 0.0);
        assert_eq!(
            score(
                &elr::Elr,
                &issued,
                Some(&format!("<answer>{answer}</answer>"))
            ),
            0.0
        );
        assert_eq!(score(&elr::Elr, &issued, None), 0.0);
    }
}

#[test]
fn hvm_scores_the_planted_holes_and_refuses_malformed_ones() {
    for seed in 0..20 {
        let issued = issued_challenge(&hvm::Hvm, seed, &json!({}));
        let (task, planted) = hvm::task(seed);
        assert_eq!(
            score(&hvm::Hvm, &issued, Some(&hvm::answer(&planted))),
            1.0,
            "seed {seed}"
        );
        // One hole set to another in-domain value that changes some case's output.
        let mut wrong = planted.clone();
        let (name, value) = planted.iter().next().unwrap();
        let hole = task.holes.iter().find(|hole| &hole.name == name).unwrap();
        wrong.insert(
            name.clone(),
            if *value == hole.high {
                hole.low
            } else {
                value + 1
            },
        );
        let changes = task.cases.iter().any(|case| {
            hvm::run(&task.program, &wrong, &case.inputs)
                != hvm::run(&task.program, &planted, &case.inputs)
        });
        if changes {
            assert_eq!(
                score(&hvm::Hvm, &issued, Some(&hvm::answer(&wrong))),
                0.0,
                "seed {seed}"
            );
        }
        let mut outside = planted.clone();
        outside.insert(name.clone(), hole.high + 1);
        assert_eq!(score(&hvm::Hvm, &issued, Some(&hvm::answer(&outside))), 0.0);
        let mut extra = planted.clone();
        extra.insert("?zz".into(), 0);
        assert_eq!(score(&hvm::Hvm, &issued, Some(&hvm::answer(&extra))), 0.0);
        let malformed = hvm::answer(&planted).replace('=', ":");
        assert_eq!(score(&hvm::Hvm, &issued, Some(&malformed)), 0.0);
        assert_eq!(score(&hvm::Hvm, &issued, Some("no block")), 0.0);
        assert_eq!(score(&hvm::Hvm, &issued, None), 0.0);
    }
}

#[test]
fn the_needle_is_found_at_any_context_length() {
    for (seed, context_length) in [(1, 16), (2, 1_000), (3, 20_000)] {
        let issued = issued_challenge(
            &needle::Needle,
            seed,
            &json!({"context_length": context_length}),
        );
        let hidden: needle::Hidden = serde_json::from_str(&issued.extra_json).unwrap();
        let words = issued.prompt.split_whitespace().count() as u64;
        assert!(words >= context_length, "{words} < {context_length}");
        assert!(issued.prompt.contains(&format!("is {}.", hidden.answer)));
        assert_eq!(score(&needle::Needle, &issued, Some(&hidden.answer)), 1.0);
        // qa F1 over normalised tokens: extra words lower the score, a wrong number zeroes it.
        let partial = score(
            &needle::Needle,
            &issued,
            Some(&format!("The number is {}", hidden.answer)),
        );
        assert!(partial > 0.0 && partial < 1.0, "{partial}");
        assert_eq!(score(&needle::Needle, &issued, Some("42")), 0.0);
        assert_eq!(score(&needle::Needle, &issued, None), 0.0);
    }
    let count = issued_challenge(
        &needle::Needle,
        4,
        &json!({"context_length": 200, "dataset": "passage_count"}),
    );
    assert_eq!(count.environment, needle::NAME);
    assert!(
        needle::Needle
            .generate(1, &json!({"context_length": 3_000_000}))
            .is_err()
    );
    assert!(
        needle::Needle
            .generate(1, &json!({"context_length": 100, "dataset": "dureader"}))
            .is_err()
    );
}

#[test]
fn loosh_prompts_are_not_scored_here() {
    let issued = issued_challenge(&prompt::Prompt, 9, &json!({}));
    assert!(!issued.prompt.is_empty());
    assert!(prompt::Prompt.evaluators().is_empty());
    assert!(matches!(
        prompt::Prompt.evaluate(&issued, Some("an answer")),
        Err(EnvError::Undecided { .. })
    ));
}

#[test]
fn abd_scores_inputs_by_running_the_program() {
    let issued = issued_challenge(&abd::Abd, 3, &json!({}));
    let problem = posed::<AbdProblem>(&issued).problem;
    let right = format!(
        "<think><INPUT>nope</INPUT></think>Here: <input>\n{}\n</INPUT>",
        problem.input
    );
    let evaluation = abd::Abd.evaluate(&issued, Some(&right)).unwrap();
    assert_eq!(evaluation.score, 1.0, "{problem:?}");
    assert!(evaluation.fuel_used.is_some_and(|fuel| fuel > 0));
    assert_eq!(
        abd::Abd.evaluate(&issued, Some(&right)).unwrap(),
        evaluation
    );
    // Malformed: no tags scores 0 without running anything.
    let untagged = abd::Abd.evaluate(&issued, Some(&problem.input)).unwrap();
    assert_eq!((untagged.score, untagged.fuel_used), (0.0, None));
    assert_eq!(score(&abd::Abd, &issued, None), 0.0);

    // A given (user) problem: a wrong input, too few lines, and a program that errors.
    let given = AbdProblem {
        id: "double".into(),
        program: "n = int(input())\nm = int(input())\nprint(n * 2 + m)\n".into(),
        input: "4\n1".into(),
        output: "9\n".into(),
    };
    let issued = issued_challenge(
        &abd::Abd,
        1,
        &json!({"problem": given, "fuel": 600_000_000u64}),
    );
    assert_eq!(score(&abd::Abd, &issued, Some("<INPUT>4\n1</INPUT>")), 1.0);
    assert_eq!(score(&abd::Abd, &issued, Some("<INPUT>3\n3</INPUT>")), 1.0);
    assert_eq!(score(&abd::Abd, &issued, Some("<INPUT>4\n2</INPUT>")), 0.0);
    assert_eq!(score(&abd::Abd, &issued, Some("<INPUT>9</INPUT>")), 0.0);
    assert_eq!(score(&abd::Abd, &issued, Some("<INPUT>x\n1</INPUT>")), 0.0);
}

#[test]
fn every_builtin_abd_input_gives_its_output_in_the_sandbox() {
    let sandbox = Sandbox::shared().unwrap();
    for problem in problems::abd_builtin() {
        assert!(
            abd::enough_lines(&problem.program, &problem.input),
            "{}",
            problem.id
        );
        let run = sandbox
            .run_python(
                &problem.program,
                format!("{}\n", problem.input).as_bytes(),
                &Default::default(),
            )
            .unwrap();
        assert!(
            run.stderr.is_empty(),
            "{}: {}",
            problem.id,
            run.stderr_text()
        );
        assert!(
            abd::outputs_match(&run.stdout_text(), &problem.output),
            "{}",
            problem.id
        );
    }
}

#[test]
fn every_builtin_ded_solution_passes_its_tests_in_the_sandbox() {
    for problem in problems::ded_builtin() {
        let (passed, fuel) =
            ded::run_cases(&problem.solution, &problem.tests, ded::FUEL_DEFAULT).unwrap();
        assert_eq!(passed, problem.tests.len(), "{}", problem.id);
        assert!(fuel > 0);
    }
}

#[test]
fn ded_scores_programs_against_every_case() {
    let problem = DedProblem {
        id: "sum".into(),
        prompt: "Print the sum of the integers on stdin.".into(),
        tests: vec![
            DedTest::StdinStdout {
                input: "1 2\n".into(),
                output: "3\n".into(),
            },
            DedTest::StdinStdout {
                input: "5 5 5\n".into(),
                output: "15".into(),
            },
        ],
        solution: "print(sum(map(int, input().split())))\n".into(),
    };
    let issued = issued_challenge(
        &ded::Ded,
        1,
        &json!({"problem": problem, "fuel": 600_000_000u64}),
    );
    let right = "Sure:\n```python\nprint(sum(map(int, input().split())))   \n```\n";
    let evaluation = ded::Ded.evaluate(&issued, Some(right)).unwrap();
    assert_eq!(evaluation.score, 1.0);
    assert_eq!(evaluation.metrics[0].value, 2.0);
    let first_only = "```python\nxs = input().split()\nprint(int(xs[0]) + int(xs[1]))\n```";
    let partial = ded::Ded.evaluate(&issued, Some(first_only)).unwrap();
    assert_eq!((partial.score, partial.metrics[0].value), (0.0, 1.0));
    // Any stderr fails a case, even with the right output.
    let noisy =
        "import sys\nprint('debug', file=sys.stderr)\nprint(sum(map(int, input().split())))\n";
    assert_eq!(score(&ded::Ded, &issued, Some(noisy)), 0.0);
    // Hostile code stops at the recorded fuel.
    let spin = ded::Ded
        .evaluate(&issued, Some("while True: pass"))
        .unwrap();
    assert_eq!((spin.score, spin.fuel_used), (0.0, Some(600_000_000)));
    assert_eq!(score(&ded::Ded, &issued, None), 0.0);

    let function = DedProblem {
        id: "twice".into(),
        prompt: "Write twice(xs) returning xs + xs.".into(),
        tests: vec![DedTest::FunctionCall {
            fn_name: "twice".into(),
            args: vec![json!([1, "a"])],
            expected: vec![json!([1, "a", 1, "a"])],
            expected_text: "[1, 'a', 1, 'a']".into(),
        }],
        solution: "def twice(xs):\n    return xs + xs\n".into(),
    };
    let issued = issued_challenge(&ded::Ded, 2, &json!({"problem": function}));
    assert_eq!(
        score(
            &ded::Ded,
            &issued,
            Some("def twice(xs):\n    return xs + xs\n")
        ),
        1.0
    );
    assert_eq!(
        score(&ded::Ded, &issued, Some("def twice(xs):\n    return xs\n")),
        0.0
    );
}

#[test]
fn user_problem_sets_load_from_jsonl() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("mine.jsonl");
    let mut text = String::new();
    for problem in &problems::elr_builtin()[..3] {
        text.push_str(&serde_json::to_string(problem).unwrap());
        text.push_str("\n\n");
    }
    std::fs::write(&path, &text).unwrap();
    let loaded: Vec<problems::ElrProblem> = problems::load_jsonl(&path).unwrap();
    assert_eq!(loaded, problems::elr_builtin()[..3]);
    std::fs::write(&path, "{\"id\": 1}\n").unwrap();
    assert!(problems::load_jsonl::<problems::ElrProblem>(&path).is_err());
    std::fs::write(&path, "\n").unwrap();
    assert!(problems::load_jsonl::<problems::ElrProblem>(&path).is_err());
    let issued = issued_challenge(&elr::Elr, 0, &json!({"problem": loaded[1]}));
    let answer = format!("<Answer>{}</Answer>", loaded[1].answer);
    assert_eq!(score(&elr::Elr, &issued, Some(&answer)), 1.0);
}

/// A generated affine log followed by a challenge, responses and honest evaluations for
/// every environment that decides scores; `lie` flips one recorded evaluation.
fn log_with_evaluations(lie: Option<usize>) -> (Vec<Event>, usize) {
    let mut events = genlog::events(&GenOptions::new("affine", 300, 3)).unwrap();
    let (uid, hotkey) = common::first_responder(&events);
    let mut timestamp_ms = events.last().unwrap().timestamp_ms;
    let mut push = |events: &mut Vec<Event>, payload| {
        timestamp_ms += 1;
        events.push(Event::new(timestamp_ms, payload));
    };
    let abd_issued = issued_challenge(&abd::Abd, 11, &json!({"fuel": 600_000_000u64}));
    let abd_input = posed::<AbdProblem>(&abd_issued).problem.input;
    let ded_issued = issued_challenge(&ded::Ded, 12, &json!({}));
    let ded_solution = posed::<DedProblem>(&ded_issued).problem.solution;
    let elr_issued = issued_challenge(&elr::Elr, 13, &json!({}));
    let hvm_issued = issued_challenge(&hvm::Hvm, 14, &json!({}));
    let needle_issued = issued_challenge(&needle::Needle, 15, &json!({"context_length": 300}));
    let needle_answer: needle::Hidden = serde_json::from_str(&needle_issued.extra_json).unwrap();
    let plan: Vec<(&dyn Environment, ChallengeIssued, Vec<Option<String>>)> = vec![
        (
            &abd::Abd,
            abd_issued,
            vec![
                Some(format!("<INPUT>{abd_input}</INPUT>")),
                Some("<INPUT>zz</INPUT>".into()),
            ],
        ),
        (
            &ded::Ded,
            ded_issued,
            vec![
                Some(format!("```python\n{ded_solution}```")),
                Some("print(".into()),
            ],
        ),
        (
            &elr::Elr,
            elr_issued,
            vec![Some("<Answer>7</Answer>".into()), None],
        ),
        (
            &hvm::Hvm,
            hvm_issued,
            vec![
                Some(hvm::answer(&hvm::task(14).1)),
                Some("<HOLES></HOLES>".into()),
            ],
        ),
        (
            &needle::Needle,
            needle_issued,
            vec![Some(needle_answer.answer.clone()), Some("1".into())],
        ),
        (
            &envs::sat::Sat,
            issued_challenge(&envs::sat::Sat, 16, &json!({})),
            vec![
                Some(envs::sat::answer(&envs::sat::formula(16, 15, 10).1)),
                None,
            ],
        ),
    ];
    let mut evaluations = 0;
    for (environment, issued, responses) in plan {
        push(&mut events, Payload::ChallengeIssued(issued.clone()));
        for (index, body) in responses.into_iter().enumerate() {
            let uid = uid + index as u16;
            let outcome = match &body {
                Some(body) => ResponseOutcome::Ok { body: body.clone() },
                None => ResponseOutcome::Error {
                    message: "timed out".into(),
                },
            };
            push(
                &mut events,
                Payload::ResponseReceived(ResponseReceived {
                    challenge_id: issued.challenge_id.clone(),
                    uid,
                    hotkey,
                    outcome,
                    latency_ms: 10,
                    attempts: 1,
                    miner_signature: None,
                }),
            );
            let Evaluation {
                score,
                metrics,
                fuel_used,
            } = environment.evaluate(&issued, body.as_deref()).unwrap();
            let score = if lie == Some(evaluations) {
                1.0 - score
            } else {
                score
            };
            push(
                &mut events,
                Payload::EvaluationRecorded(EvaluationRecorded {
                    challenge_id: issued.challenge_id.clone(),
                    uid,
                    score,
                    metrics,
                    evaluator: environment.evaluators()[0].into(),
                    fuel_used,
                }),
            );
            evaluations += 1;
        }
    }
    (events, evaluations)
}

#[test]
fn recorded_evaluations_round_trip_through_events_and_re_evaluation() {
    let options = AuditOptions {
        threads: 2,
        re_evaluate: true,
        ..AuditOptions::default()
    };
    let (honest, evaluations) = log_with_evaluations(None);
    let ran_code = honest.iter().filter(|event| {
        matches!(&event.payload, Payload::EvaluationRecorded(evaluation) if evaluation.fuel_used.is_some())
    });
    assert!(
        ran_code.count() >= 3,
        "ABD and DED evaluations record their fuel"
    );
    let (before, _) = audit(
        &MemorySource::new(&genlog::events(&GenOptions::new("affine", 300, 3)).unwrap()).unwrap(),
        &options,
        &|_| {},
    )
    .unwrap();
    let (report, _) = audit(&MemorySource::new(&honest).unwrap(), &options, &|_| {}).unwrap();
    assert_eq!(report.verdict, Verdict::Match, "{report:?}");
    assert_eq!(
        report.evaluations_checked,
        before.evaluations_checked + evaluations as u64
    );

    // A recorded score that the evidence does not give is found at its seq.
    let (lying, _) = log_with_evaluations(Some(2));
    let (report, _) = audit(&MemorySource::new(&lying).unwrap(), &options, &|_| {}).unwrap();
    let Verdict::Diverged(finding) = &report.verdict else {
        panic!("{report:?}");
    };
    assert_eq!(finding.kind, "EvaluationRecorded");
    assert!(finding.reason.contains(ded::NAME), "{finding:?}");
}

//! loosh end to end from events with real embeddings: a round's prompt and answers are
//! embedded with MiniLM (CPU), recorded quantised, the emissions computed from the records,
//! the weights from the emissions; the auditor re-embeds and re-evaluates everything and
//! catches a forged embedding and an inflated emission. Also the heatmap of a round.
#![cfg(feature = "embed")]

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use weightlog::audit::{AuditOptions, AuditReport, LogSource, Verdict, audit};
use weightlog::embed::{Backend, Embedder};
use weightlog::keys::Hotkey;
use weightlog::log::{Genesis, Log, LogReader};
use weightlog::loosh;
use weightlog_replay::projection::Projection;
use weightlog_replay::projection::decision::Recomputed;
use weightlog_replay::projection::loosh_evaluate::{
    ENVIRONMENT, LooshEvaluate, LooshEvaluateState, PROMPT_EMBEDDING_UID,
};
use weightlog_replay::projection::registry::for_genesis;
use weightlog_schema::event::{
    AccountId, Axon, ChallengeIssued, LogId, MetagraphObserved, Neuron, ResponseOutcome,
    ResponseReceived, SubmissionOutcome, WeightHyperparameters, WeightsCall, WeightsComputed,
    WeightsSubmitted,
};
use weightlog_schema::{Event, Hash, Payload, codec};

const START_MS: u64 = 1_763_000_000_000;

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::from_env(Backend::Cpu).unwrap())
}

fn miner_key(uid: u16) -> Hotkey {
    Hotkey::from_seed(&[uid as u8 + 10; 32])
}

const ROUNDS: [(&str, [&str; 5]); 3] = [
    (
        "Why does the sky look blue at noon?",
        [
            "Sunlight scatters off air molecules, and blue light scatters the most, so the sky looks blue.",
            "Rayleigh scattering: shorter blue wavelengths are scattered far more by the atmosphere than red.",
            "Air molecules scatter short wavelengths strongly, which is why the midday sky appears blue.",
            "The sky is blue because molecules in the air scatter blue sunlight in every direction.",
            "My favourite pizza topping is pineapple with extra cheese.",
        ],
    ),
    (
        "What is the capital of Australia?",
        [
            "The capital of Australia is Canberra.",
            "Canberra is Australia's capital city.",
            "Australia's capital is Canberra, not Sydney.",
            "It is Canberra, in the Australian Capital Territory.",
            "Bananas are rich in potassium.",
        ],
    ),
    (
        "How do vaccines train the immune system?",
        [
            "Vaccines expose the immune system to a harmless antigen so it learns to make antibodies.",
            "A vaccine shows the body a weakened or partial pathogen, building immune memory.",
            "They present antigens that prime B and T cells, so a later infection is fought quickly.",
            "Vaccination trains immunity by safely mimicking an infection.",
            "The stock market fell sharply today.",
        ],
    ),
];

/// What a lying or careless validator changes while writing its log.
#[derive(Clone, Copy, PartialEq)]
enum Forgery {
    None,
    /// Record the off-topic miner's embedding as a copy of a good answer's, and compute
    /// emissions and weights honestly from that forged record.
    Embedding,
    /// Record one emission 10% higher, with weights that follow it.
    Emission,
}

/// Writes a loosh log: a metagraph, then rounds of challenge, answers, embeddings and
/// emissions, and a weight decision after each round. Returns the seqs of interest.
fn write_log(path: &Path, forgery: Forgery) -> (u64, u64) {
    write_log_with(path, forgery, embedder())
}

/// [`write_log`] with the answers embedded by `embedder` (any backend).
fn write_log_with(path: &Path, forgery: Forgery, embedder: &Embedder) -> (u64, u64) {
    let key = common::validator_key();
    let log = Log::create(
        path,
        key,
        Genesis {
            netuid: 78,
            profile: "loosh".into(),
            parameters_json: "{\"alpha\":0.3}".into(),
            timestamp_ms: START_MS,
            log_id: LogId([9; 16]),
        },
    )
    .unwrap();
    let genesis = log.reader().snapshot().unwrap().event(0).unwrap();
    let mut weights = for_genesis(&genesis).unwrap();
    weights.apply(0, &genesis).unwrap();
    let mut rounds = LooshEvaluateState::default();
    LooshEvaluate.apply(&mut rounds, 0, &genesis).unwrap();
    let parameters_hash = codec::parameters_hash_of("{\"alpha\":0.3}");
    let mut seq = 1u64;
    let mut forged_seq = 0u64;
    let mut append =
        |payload: Payload,
         weights: &mut Box<dyn weightlog_replay::projection::registry::RunningProjection>,
         rounds: &mut LooshEvaluateState|
         -> u64 {
            let event = Event::new(START_MS + seq * 1_000, payload);
            weights.apply(seq, &event).unwrap();
            LooshEvaluate.apply(rounds, seq, &event).unwrap();
            assert_eq!(log.append(&event).unwrap(), seq);
            seq += 1;
            seq - 1
        };

    let neurons = (0..6u16)
        .map(|uid| Neuron {
            uid,
            hotkey: AccountId(miner_key(uid).public_key()),
            coldkey: AccountId(miner_key(uid + 100).public_key()),
            stake_rao: 1_000_000_000,
            validator_permit: false,
            active: true,
            registration_block: 10,
            axon: Some(Axon {
                ip: format!("10.0.0.{}", uid + 1),
                port: 8091,
                protocol: 4,
                version: 1,
            }),
        })
        .collect();
    append(
        Payload::MetagraphObserved(MetagraphObserved {
            netuid: 78,
            block: 100,
            block_hash: Hash([1; 32]),
            spec_version: 393,
            neurons,
            hyperparameters: WeightHyperparameters {
                tempo: 360,
                min_allowed_weights: 1,
                max_weights_limit: 65535,
                weights_version_key: 0,
                weights_rate_limit_blocks: 100,
                commit_reveal_enabled: false,
                reveal_period_epochs: 1,
                commit_reveal_version: 4,
            },
        }),
        &mut weights,
        &mut rounds,
    );

    let mut inflated_seq = 0u64;
    for (index, (prompt, answers)) in ROUNDS.iter().enumerate() {
        let challenge = ChallengeIssued {
            challenge_id: format!("round-{index}"),
            environment: ENVIRONMENT.into(),
            seed: index as u64,
            prompt: (*prompt).into(),
            extra_json: "{}".into(),
            target_uids: (0..6).collect(),
            deadline_ms: START_MS + 10_000_000,
        };
        append(
            Payload::ChallengeIssued(challenge.clone()),
            &mut weights,
            &mut rounds,
        );
        let mut responses = Vec::new();
        for uid in 0..6u16 {
            let outcome = match answers.get(uid as usize) {
                Some(answer) => ResponseOutcome::Ok {
                    body: (*answer).into(),
                },
                // uid 5 never answers.
                None => ResponseOutcome::Error {
                    message: "timed out".into(),
                },
            };
            let response = ResponseReceived {
                challenge_id: challenge.challenge_id.clone(),
                uid,
                hotkey: AccountId(miner_key(uid).public_key()),
                outcome,
                latency_ms: 800 + 150 * u64::from(uid),
                attempts: 1,
                miner_signature: None,
            };
            append(
                Payload::ResponseReceived(response.clone()),
                &mut weights,
                &mut rounds,
            );
            responses.push(response);
        }
        let mut embeddings = loosh::embedding_events(embedder, &challenge, &responses, 32).unwrap();
        assert_eq!(embeddings[0].uid, PROMPT_EMBEDDING_UID);
        if forgery == Forgery::Embedding && index == 1 {
            // uid 4's off-topic answer recorded with uid 0's vector.
            let good = embeddings.iter().find(|e| e.uid == 0).unwrap().clone();
            let bad = embeddings.iter_mut().find(|e| e.uid == 4).unwrap();
            bad.vector = good.vector;
            bad.scale = good.scale;
        }
        for embedding in embeddings {
            let is_forged = forgery == Forgery::Embedding && index == 1 && embedding.uid == 4;
            let at = append(
                Payload::EmbeddingComputed(embedding),
                &mut weights,
                &mut rounds,
            );
            if is_forged {
                forged_seq = at;
            }
        }
        let mut emissions = loosh::emission_events(&rounds, &challenge.challenge_id).unwrap();
        let mut last = 0;
        assert_eq!(emissions.len(), 5, "five answers, five emissions");
        for emission in &mut emissions {
            let inflate = forgery == Forgery::Emission && index == 2 && emission.uid == 4;
            if inflate {
                emission.score *= 1.1;
            }
            let at = append(
                Payload::EvaluationRecorded(emission.clone()),
                &mut weights,
                &mut rounds,
            );
            last = at;
            if inflate {
                inflated_seq = at;
            }
        }
        // Computed over every event so far, the last emission included.
        let log_size = last + 1;
        let recomputed = weights.decision().unwrap();
        let Recomputed::Weights(decision) = recomputed else {
            panic!("loosh gives weights after a round: {recomputed:?}");
        };
        let decision_seq = append(
            Payload::WeightsComputed(WeightsComputed {
                block: 200 + index as u64,
                mechanism: weights.name().into(),
                parameters_hash,
                log_size,
                uids: decision.uids,
                raw_weight_bits: decision.raw_weight_bits,
                u16_uids: decision.u16_uids,
                u16_weights: decision.u16_weights,
            }),
            &mut weights,
            &mut rounds,
        );
        // Included at once: the validator stays in loosh's NORMAL mode.
        append(
            Payload::WeightsSubmitted(WeightsSubmitted {
                decision_seq,
                call: WeightsCall::SetWeights,
                extrinsic_hash: Some(Hash([index as u8 + 1; 32])),
                reveal_round: None,
                outcome: SubmissionOutcome::Included { block: 101 },
                spec_version: None,
            }),
            &mut weights,
            &mut rounds,
        );
    }
    log.close().unwrap();
    (forged_seq, inflated_seq)
}

fn run(path: &Path, re_evaluate: bool, re_embed: bool) -> AuditReport {
    run_on(path, re_evaluate, re_embed.then_some(Backend::Cpu))
}

/// An audit that re-embeds on `re_embed`'s backend, when given.
fn run_on(path: &Path, re_evaluate: bool, re_embed: Option<Backend>) -> AuditReport {
    let options = AuditOptions {
        threads: 2,
        re_evaluate,
        re_embed: re_embed.map(|backend| {
            Arc::new(Embedder::from_env(backend).unwrap()) as Arc<dyn weightlog::audit::Reembedder>
        }),
        ..AuditOptions::default()
    };
    let source = LogSource::new(LogReader::open(path).unwrap());
    audit(&source, &options, &|_| {}).unwrap().0
}

fn last_weights(path: &Path) -> WeightsComputed {
    let snapshot = LogReader::open(path).unwrap().snapshot().unwrap();
    let size = snapshot.size().unwrap();
    (0..size)
        .rev()
        .find_map(|seq| match snapshot.event(seq).unwrap().payload {
            Payload::WeightsComputed(computed) => Some(computed),
            _ => None,
        })
        .unwrap()
}

#[test]
fn an_honest_loosh_log_re_embeds_and_re_evaluates_to_a_match() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("loosh.redb");
    write_log(&path, Forgery::None);

    let report = run(&path, true, true);
    assert_eq!(report.verdict, Verdict::Match, "{report:#?}");
    // Three rounds: a prompt and five answers embedded, five emissions each.
    assert_eq!(report.embeddings_checked, 18);
    assert_eq!(report.embeddings_not_rerun, 0);
    assert_eq!(report.evaluations_checked, 15);
    assert_eq!(report.decisions_checked, 3);

    // On-topic answers earn more than the off-topic one.
    let weights = last_weights(&path);
    let weight_of = |uid: u16| {
        weights
            .u16_uids
            .iter()
            .position(|u| *u == uid)
            .map_or(0, |index| weights.u16_weights[index])
    };
    for good in 0..4 {
        assert!(weight_of(good) > weight_of(4), "uid {good}: {weights:?}");
    }
}

#[test]
fn a_forged_embedding_passes_every_check_but_re_embedding() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("forged.redb");
    let (forged_seq, _) = write_log(&path, Forgery::Embedding);

    // Signed consistently and with weights that follow the forged record.
    let plain = run(&path, true, false);
    assert_eq!(plain.verdict, Verdict::Match, "{plain:#?}");

    let report = run(&path, false, true);
    let Verdict::Diverged(finding) = &report.verdict else {
        panic!("re-embedding must catch the forged vector: {report:#?}");
    };
    assert_eq!(finding.seq, forged_seq);
    assert_eq!(finding.kind, "EmbeddingComputed");
    assert!(finding.reason.contains("uid 4"), "{}", finding.reason);
    assert_eq!(report.embeddings_diverged, 1);
}

#[test]
fn an_inflated_emission_is_caught_by_re_evaluation() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("inflated.redb");
    let (_, inflated_seq) = write_log(&path, Forgery::Emission);

    let plain = run(&path, false, false);
    assert_eq!(plain.verdict, Verdict::Match, "{plain:#?}");

    let report = run(&path, true, false);
    let Verdict::Diverged(finding) = &report.verdict else {
        panic!("re-evaluation must catch the inflated emission: {report:#?}");
    };
    assert_eq!(finding.seq, inflated_seq);
    assert_eq!(finding.kind, "EvaluationRecorded");
}

#[test]
fn the_heatmap_of_a_round_draws_its_recorded_similarities() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("loosh.redb");
    write_log(&path, Forgery::None);
    let reader = LogReader::open(&path).unwrap();
    let map = weightlog::loosh::heatmap::from_log(&reader, "round-1").unwrap();
    assert_eq!(map.labels[0], "prompt");
    assert_eq!(map.labels.len(), 6);
    for (row, values) in map.cosines.iter().enumerate() {
        assert_eq!(values[row], 1.0);
        for (column, value) in values.iter().enumerate() {
            assert_eq!(*value, map.cosines[column][row]);
        }
    }
    // "Canberra is Australia's capital city." is closer to the first answer than bananas.
    let canberra = map
        .labels
        .iter()
        .position(|label| label == "uid 1")
        .unwrap();
    let bananas = map
        .labels
        .iter()
        .position(|label| label == "uid 4")
        .unwrap();
    let first = map
        .labels
        .iter()
        .position(|label| label == "uid 0")
        .unwrap();
    assert!(map.cosines[first][canberra] > map.cosines[first][bananas] + 0.3);

    for name in ["round-1.svg", "round-1.png"] {
        let out = directory.path().join(name);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_weightlog"))
            .args(["loosh", "heatmap", "round-1", "--log"])
            .arg(&path)
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let bytes = std::fs::read(&out).unwrap();
        if name.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            assert!(String::from_utf8(bytes).unwrap().contains("uid 4"));
        }
    }
    let missing = weightlog::loosh::heatmap::from_log(&reader, "no-such-round").unwrap_err();
    assert!(
        missing.to_string().contains("no recorded embeddings"),
        "{missing}"
    );
}

/// The same rounds embedded on the CPU and on wgpu: the i8 records agree (at most a few
/// components one step apart, where the two backends' floats straddle a rounding point),
/// the weights computed from either set of records are the same, and each log passes an
/// audit that re-embeds it on the other backend.
#[cfg(feature = "wgpu")]
#[test]
fn records_from_the_cpu_and_from_wgpu_give_the_same_loosh_weights() {
    let directory = tempfile::tempdir().unwrap();
    let (cpu_path, wgpu_path) = (
        directory.path().join("cpu.redb"),
        directory.path().join("wgpu.redb"),
    );
    let wgpu = Embedder::from_env(Backend::Wgpu).unwrap();
    write_log_with(&cpu_path, Forgery::None, embedder());
    write_log_with(&wgpu_path, Forgery::None, &wgpu);

    let embeddings = |path: &Path| -> Vec<weightlog_schema::event::EmbeddingComputed> {
        let snapshot = LogReader::open(path).unwrap().snapshot().unwrap();
        (0..snapshot.size().unwrap())
            .filter_map(|seq| match snapshot.event(seq).unwrap().payload {
                Payload::EmbeddingComputed(embedding) => Some(embedding),
                _ => None,
            })
            .collect()
    };
    let (on_cpu, on_wgpu) = (embeddings(&cpu_path), embeddings(&wgpu_path));
    assert_eq!(on_cpu.len(), on_wgpu.len());
    let mut components_apart = 0;
    for (cpu, gpu) in on_cpu.iter().zip(&on_wgpu) {
        assert_eq!((&cpu.challenge_id, cpu.uid), (&gpu.challenge_id, gpu.uid));
        for (a, b) in cpu.vector.iter().zip(&gpu.vector) {
            assert!(
                (i16::from(*a) - i16::from(*b)).abs() <= 1,
                "uid {} of {}: {a} on the CPU, {b} on wgpu",
                cpu.uid,
                cpu.challenge_id
            );
            components_apart += usize::from(a != b);
        }
    }
    eprintln!(
        "{components_apart} of {} recorded components differ by one step between backends",
        on_cpu.len() * on_cpu[0].vector.len()
    );

    let (cpu_weights, wgpu_weights) = (last_weights(&cpu_path), last_weights(&wgpu_path));
    assert_eq!(cpu_weights.u16_uids, wgpu_weights.u16_uids);
    assert_eq!(
        cpu_weights.u16_weights, wgpu_weights.u16_weights,
        "the weights a validator sets do not depend on its backend"
    );
    if on_cpu == on_wgpu {
        assert_eq!(cpu_weights.raw_weight_bits, wgpu_weights.raw_weight_bits);
    }

    for (path, other) in [(&cpu_path, Backend::Wgpu), (&wgpu_path, Backend::Cpu)] {
        let report = run_on(path, true, Some(other));
        assert_eq!(report.verdict, Verdict::Match, "{report:?}");
        assert_eq!(report.embeddings_diverged, 0);
        assert!(report.embeddings_checked > 0);
    }
}

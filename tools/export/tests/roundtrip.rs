//! Round trip: export a generated log, read every file back with the Rust Parquet reader and
//! compare every value with the events in the log, built here independently of the export's
//! own row code.

mod common;

use std::path::Path;

use common::Value;
use weightlog::log::LogReader;
use weightlog_export::{Compression, ExportOptions, Partition, Table, export, metadata};
use weightlog_schema::event::{Payload, ResponseOutcome, SubmissionOutcome};
use weightlog_schema::{Event, event_id};

fn options(log: &Path, out_dir: &Path) -> ExportOptions {
    ExportOptions {
        log: log.to_path_buf(),
        out_dir: out_dir.to_path_buf(),
        from: 0,
        to: None,
        tables: Table::ALL.to_vec(),
        partition: None,
        compression: Compression::Zstd,
    }
}

fn text(value: impl ToString) -> Value {
    Value::Text(value.to_string())
}

fn unsigned(value: impl Into<u64>) -> Value {
    Value::Unsigned(value.into())
}

fn optional<T>(value: Option<T>, to: impl Fn(T) -> Value) -> Value {
    value.map_or(Value::Null, to)
}

/// The rows `table` should hold for one event, written from the event types directly.
fn expected(table: Table, seq: u64, bytes: &[u8], event: &Event) -> Vec<Vec<Value>> {
    let head = || vec![unsigned(seq), Value::Signed(event.timestamp_ms as i64)];
    let row = |rest: Vec<Value>| {
        let mut row = head();
        row.extend(rest);
        row
    };
    match (table, &event.payload) {
        (Table::Events, _) => vec![row(vec![
            text(event.kind().name()),
            text(event_id(bytes)),
            unsigned(bytes.len() as u64),
            unsigned(event.schema_version),
        ])],
        (Table::Challenges, Payload::ChallengeIssued(challenge)) => vec![row(vec![
            text(&challenge.challenge_id),
            text(&challenge.environment),
            unsigned(challenge.seed),
            text(&challenge.prompt),
            text(&challenge.extra_json),
            Value::List(
                challenge
                    .target_uids
                    .iter()
                    .map(|&uid| unsigned(uid))
                    .collect(),
            ),
            unsigned(challenge.deadline_ms),
        ])],
        (Table::Responses, Payload::ResponseReceived(response)) => {
            let (status, body, message) = match &response.outcome {
                ResponseOutcome::Ok { body } => ("ok", text(body), Value::Null),
                ResponseOutcome::Error { message } => ("error", Value::Null, text(message)),
            };
            vec![row(vec![
                text(&response.challenge_id),
                unsigned(response.uid),
                text(response.hotkey.to_ss58()),
                text(status),
                body,
                message,
                unsigned(response.latency_ms),
                unsigned(response.attempts),
                optional(response.miner_signature, |signature| {
                    text(format!("0x{}", hex::encode(signature.0)))
                }),
            ])]
        }
        (Table::Evaluations, Payload::EvaluationRecorded(evaluation)) => vec![row(vec![
            text(&evaluation.challenge_id),
            unsigned(evaluation.uid),
            Value::Float(evaluation.score.to_bits()),
            Value::List(
                evaluation
                    .metrics
                    .iter()
                    .map(|metric| {
                        Value::Struct(vec![
                            text(&metric.name),
                            Value::Float(metric.value.to_bits()),
                        ])
                    })
                    .collect(),
            ),
            text(&evaluation.evaluator),
            optional(evaluation.fuel_used, unsigned),
        ])],
        (Table::Embeddings, Payload::EmbeddingComputed(embedding)) => vec![row(vec![
            text(&embedding.challenge_id),
            unsigned(embedding.uid),
            text(embedding.model_hash),
            Value::Float(f64::from(embedding.scale).to_bits()),
            Value::List(
                embedding
                    .vector
                    .iter()
                    .map(|&item| Value::Signed(item.into()))
                    .collect(),
            ),
        ])],
        (Table::Metagraph, Payload::MetagraphObserved(observed)) => {
            let hyper = &observed.hyperparameters;
            observed
                .neurons
                .iter()
                .map(|neuron| {
                    let axon = neuron.axon.as_ref();
                    row(vec![
                        unsigned(observed.netuid),
                        unsigned(observed.block),
                        text(observed.block_hash),
                        unsigned(observed.spec_version),
                        unsigned(neuron.uid),
                        text(neuron.hotkey.to_ss58()),
                        text(neuron.coldkey.to_ss58()),
                        unsigned(neuron.stake_rao),
                        Value::Bool(neuron.validator_permit),
                        Value::Bool(neuron.active),
                        unsigned(neuron.registration_block),
                        optional(axon, |axon| text(&axon.ip)),
                        optional(axon, |axon| unsigned(axon.port)),
                        optional(axon, |axon| unsigned(axon.protocol)),
                        optional(axon, |axon| unsigned(axon.version)),
                        unsigned(hyper.tempo),
                        unsigned(hyper.min_allowed_weights),
                        unsigned(hyper.max_weights_limit),
                        unsigned(hyper.weights_version_key),
                        unsigned(hyper.weights_rate_limit_blocks),
                        Value::Bool(hyper.commit_reveal_enabled),
                        unsigned(hyper.reveal_period_epochs),
                        unsigned(hyper.commit_reveal_version),
                    ])
                })
                .collect()
        }
        (Table::Weights, Payload::WeightsComputed(decision)) => {
            let mut rows = Vec::new();
            for (&uid, &bits) in decision.uids.iter().zip(&decision.raw_weight_bits) {
                let sent = decision.u16_uids.iter().position(|&sent| sent == uid);
                rows.push(row(vec![
                    unsigned(decision.block),
                    text(&decision.mechanism),
                    text(decision.parameters_hash),
                    unsigned(decision.log_size),
                    unsigned(uid),
                    Value::Float(bits),
                    optional(sent, |index| unsigned(decision.u16_weights[index])),
                ]));
            }
            rows
        }
        (Table::Submissions, Payload::WeightsSubmitted(submitted)) => {
            let (block, reason) = match &submitted.outcome {
                SubmissionOutcome::Included { block } => (Some(*block), None),
                SubmissionOutcome::Rejected { reason } => (None, Some(reason)),
                SubmissionOutcome::TimedOut => (None, None),
            };
            vec![row(vec![
                unsigned(submitted.decision_seq),
                json_name(serde_json::to_value(submitted.call)),
                optional(submitted.extrinsic_hash, text),
                optional(submitted.reveal_round, unsigned),
                text(
                    serde_json::to_value(&submitted.outcome).unwrap()["status"]
                        .as_str()
                        .unwrap(),
                ),
                optional(block, unsigned),
                optional(reason, text),
                optional(submitted.spec_version, unsigned),
            ])]
        }
        (Table::ExternalScores, Payload::ExternalScoreRecorded(recorded)) => recorded
            .scores
            .iter()
            .map(|entry| {
                row(vec![
                    text(&recorded.source),
                    unsigned(recorded.block),
                    unsigned(entry.uid),
                    Value::Float(entry.score.to_bits()),
                    text(&recorded.extra_json),
                ])
            })
            .collect(),
        (Table::GroundTruth, Payload::GroundTruthRevealed(revealed)) => vec![row(vec![
            text(&revealed.challenge_id),
            text(&revealed.truth_json),
        ])],
        (Table::Profiles, Payload::LogOpened(opened)) => vec![row(vec![
            text("LogOpened"),
            text(&opened.profile),
            text(&opened.parameters_json),
            text(opened.parameters_hash),
            unsigned(opened.netuid),
            text(opened.validator_hotkey.to_ss58()),
            text(opened.log_id.to_hex()),
        ])],
        (Table::Profiles, Payload::ProfileChanged(changed)) => vec![row(vec![
            text("ProfileChanged"),
            text(&changed.profile),
            text(&changed.parameters_json),
            text(changed.parameters_hash),
            Value::Null,
            Value::Null,
            Value::Null,
        ])],
        (Table::Environments, Payload::EnvironmentRegistered(registered)) => vec![row(vec![
            text(&registered.name),
            text(&registered.version),
            json_name(serde_json::to_value(registered.environment_kind)),
            optional(registered.module_hash, text),
            text(&registered.parameters_json),
        ])],
        _ => Vec::new(),
    }
}

/// A unit enum's name as the JSON form (`cat --json`) writes it.
fn json_name(value: serde_json::Result<serde_json::Value>) -> Value {
    text(value.unwrap().as_str().unwrap())
}

#[test]
fn every_value_round_trips() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 300, 7);
    let out = directory.path().join("out");
    let summary = export(&options(&log, &out), |_, _| {}).unwrap();
    assert_eq!((summary.from, summary.to), (0, 301));

    let reader = LogReader::open(&log).unwrap();
    let snapshot = reader.snapshot().unwrap();
    let mut events = Vec::new();
    snapshot
        .for_each_raw(0, u64::MAX, |seq, bytes| {
            events.push((
                seq,
                bytes.to_vec(),
                weightlog_schema::decode(bytes).unwrap(),
            ));
            Ok(())
        })
        .unwrap();
    assert_eq!(events.len(), 301);

    for table in Table::ALL {
        let found = common::table_rows(&out, table.name());
        let wanted: Vec<Vec<Value>> = if table == Table::Checkpoints {
            snapshot
                .checkpoint_texts()
                .unwrap()
                .into_iter()
                .map(|(size, text_form)| {
                    let signed = weightlog_schema::SignedCheckpoint::parse(&text_form).unwrap();
                    let last = &events[(size - 1) as usize].2;
                    vec![
                        unsigned(size - 1),
                        Value::Signed(last.timestamp_ms as i64),
                        unsigned(size),
                        text(&signed.checkpoint.origin),
                        text(signed.checkpoint.root),
                        text(signed.signer.to_ss58()),
                        text(format!("0x{}", hex::encode(signed.signature))),
                        text(signed.to_text()),
                    ]
                })
                .collect()
        } else {
            events
                .iter()
                .flat_map(|(seq, bytes, event)| expected(table, *seq, bytes, event))
                .collect()
        };
        assert!(!wanted.is_empty(), "the generated log gives {table} rows");
        // Embeddings of two widths live in two files; put them back in seq order.
        assert_eq!(found.len(), wanted.len(), "{table}: row count");
        for (index, (found, wanted)) in found.iter().zip(&wanted).enumerate() {
            assert_eq!(found, wanted, "{table}: row {index}");
        }
    }
    assert_eq!(
        common::files_under(&out.join("embeddings")).len(),
        2,
        "one file per vector width"
    );

    // Every file states where it came from.
    let checkpoint = snapshot.last_checkpoint().unwrap().unwrap();
    for path in common::files_under(&out) {
        let (rows, stated, _) = common::read_parquet(&path);
        assert_eq!(stated[metadata::ORIGIN], reader.meta().origin);
        assert_eq!(stated[metadata::SEQ_FROM], "0");
        assert_eq!(stated[metadata::SEQ_TO], "301");
        assert_eq!(stated[metadata::LOG_SIZE], "301");
        assert_eq!(
            stated[metadata::MERKLE_ROOT],
            checkpoint.checkpoint.root.to_string()
        );
        assert_eq!(stated[metadata::CHECKPOINT], checkpoint.to_text());
        assert_eq!(stated[metadata::SCHEMA_VERSION], "1");
        assert_eq!(stated[metadata::ROWS], rows.len().to_string());
        weightlog_schema::SignedCheckpoint::parse(&stated[metadata::CHECKPOINT])
            .unwrap()
            .verify(&reader.meta().signer)
            .unwrap();
    }
    // --verify's check agrees.
    let checks = weightlog_export::readback::verify_export(&summary).unwrap();
    assert_eq!(checks.len(), Table::ALL.len());
}

#[test]
fn row_groups_are_bounded_and_carry_statistics() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 200, 50);
    let out = directory.path().join("out");
    export(&options(&log, &out), |_, _| {}).unwrap();
    let path = &common::files_under(&out.join("events"))[0];
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(
        std::fs::File::open(path).unwrap(),
    )
    .unwrap();
    use parquet::file::reader::FileReader;
    let group = reader.metadata().row_group(0);
    assert!(group.num_rows() as usize <= weightlog_export::sink::ROW_GROUP_ROWS_MAX);
    let seq = group.column(0).statistics().expect("statistics are on");
    assert_eq!(seq.null_count_opt(), Some(0));
}

#[test]
fn date_partitions_hold_the_same_rows() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 1_000, 100);
    let flat = directory.path().join("flat");
    export(&options(&log, &flat), |_, _| {}).unwrap();
    let dated = directory.path().join("dated");
    let summary = export(
        &ExportOptions {
            partition: Some(Partition::Date),
            compression: Compression::Snappy,
            ..options(&log, &dated)
        },
        |_, _| {},
    )
    .unwrap();
    weightlog_export::readback::verify_export(&summary).unwrap();
    for table in Table::ALL {
        assert_eq!(
            common::table_rows(&flat, table.name()),
            common::table_rows(&dated, table.name()),
            "{table}"
        );
    }
    let days: Vec<_> = std::fs::read_dir(dated.join("events"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        days.len() >= 4,
        "1,000 events at 7 minutes span days: {days:?}"
    );
    assert!(
        days.iter().all(|day| day.starts_with("date=20")),
        "{days:?}"
    );
}

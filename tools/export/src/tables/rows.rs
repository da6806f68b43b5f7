//! Rows of each table, gathered in Arrow builders until a batch is flushed: one builder
//! per column, filled from the event types directly.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, FixedSizeListBuilder, Float32Builder, Float64Builder, Int8Builder, ListBuilder,
    StringBuilder, StructBuilder, TimestampMillisecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::ArrowError;
use weightlog_schema::event::{
    EnvironmentKind, Payload, ResponseOutcome, SubmissionOutcome, WeightsCall,
};
use weightlog_schema::{Event, Hash, SignedCheckpoint};

use super::{Table, metric_field, metric_fields, uid_field, vector_field};

/// The facts of one event every table row starts from.
pub struct EventRow<'a> {
    pub seq: u64,
    /// Milliseconds since the Unix epoch; checked to fit Arrow's i64 before it gets here.
    pub timestamp_ms: i64,
    pub id: &'a Hash,
    pub size_bytes: u32,
    pub event: &'a Event,
}

/// A signed checkpoint in the range, with the time of the last event it covers.
pub struct CheckpointRow<'a> {
    pub timestamp_ms: i64,
    pub checkpoint: &'a SignedCheckpoint,
}

/// Rows of one table being gathered for the next record batch.
pub struct Rows {
    table: Table,
    embedding_dimension: u32,
    rows: usize,
    /// A rough count of the bytes held, to flush before a batch of large rows grows far.
    bytes: usize,
    columns: Columns,
}

/// Fixed per-row overhead counted towards [`Rows::bytes`]: offsets, validity and the
/// fixed-width columns, rounded up.
const ROW_OVERHEAD_BYTES: usize = 128;

enum Columns {
    Events {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        kind: StringBuilder,
        id: StringBuilder,
        size_bytes: UInt32Builder,
        schema_version: UInt16Builder,
    },
    Challenges {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        challenge_id: StringBuilder,
        environment: StringBuilder,
        seed: UInt64Builder,
        prompt: StringBuilder,
        extra_json: StringBuilder,
        target_uids: ListBuilder<UInt16Builder>,
        deadline_ms: UInt64Builder,
    },
    Responses {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        challenge_id: StringBuilder,
        uid: UInt16Builder,
        hotkey: StringBuilder,
        status: StringBuilder,
        body: StringBuilder,
        error_message: StringBuilder,
        latency_ms: UInt64Builder,
        attempts: UInt32Builder,
        miner_signature: StringBuilder,
    },
    Evaluations {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        challenge_id: StringBuilder,
        uid: UInt16Builder,
        score: Float64Builder,
        metrics: ListBuilder<StructBuilder>,
        evaluator: StringBuilder,
        fuel_used: UInt64Builder,
    },
    Embeddings {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        challenge_id: StringBuilder,
        uid: UInt16Builder,
        model_hash: StringBuilder,
        scale: Float32Builder,
        vector: FixedSizeListBuilder<Int8Builder>,
    },
    Metagraph(Box<MetagraphColumns>),
    Weights {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        block: UInt64Builder,
        mechanism: StringBuilder,
        parameters_hash: StringBuilder,
        log_size: UInt64Builder,
        uid: UInt16Builder,
        raw_weight: Float64Builder,
        u16_weight: UInt16Builder,
    },
    Submissions {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        decision_seq: UInt64Builder,
        call: StringBuilder,
        extrinsic_hash: StringBuilder,
        reveal_round: UInt64Builder,
        outcome: StringBuilder,
        included_block: UInt64Builder,
        rejection_reason: StringBuilder,
        spec_version: UInt32Builder,
    },
    ExternalScores {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        source: StringBuilder,
        block: UInt64Builder,
        uid: UInt16Builder,
        score: Float64Builder,
        extra_json: StringBuilder,
    },
    GroundTruth {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        challenge_id: StringBuilder,
        truth_json: StringBuilder,
    },
    Profiles {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        kind: StringBuilder,
        profile: StringBuilder,
        parameters_json: StringBuilder,
        parameters_hash: StringBuilder,
        netuid: UInt16Builder,
        validator_hotkey: StringBuilder,
        log_id: StringBuilder,
    },
    Environments {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        name: StringBuilder,
        version: StringBuilder,
        environment_kind: StringBuilder,
        module_hash: StringBuilder,
        parameters_json: StringBuilder,
    },
    Checkpoints {
        seq: UInt64Builder,
        timestamp: TimestampMillisecondBuilder,
        size: UInt64Builder,
        origin: StringBuilder,
        root: StringBuilder,
        signer: StringBuilder,
        signature: StringBuilder,
        text: StringBuilder,
    },
}

#[derive(Default)]
struct MetagraphColumns {
    seq: UInt64Builder,
    timestamp: TimestampMillisecondBuilder,
    netuid: UInt16Builder,
    block: UInt64Builder,
    block_hash: StringBuilder,
    spec_version: UInt32Builder,
    uid: UInt16Builder,
    hotkey: StringBuilder,
    coldkey: StringBuilder,
    stake_rao: UInt64Builder,
    validator_permit: BooleanBuilder,
    active: BooleanBuilder,
    registration_block: UInt64Builder,
    axon_ip: StringBuilder,
    axon_port: UInt16Builder,
    axon_protocol: UInt8Builder,
    axon_version: UInt32Builder,
    tempo: UInt16Builder,
    min_allowed_weights: UInt16Builder,
    max_weights_limit: UInt16Builder,
    weights_version_key: UInt64Builder,
    weights_rate_limit_blocks: UInt64Builder,
    commit_reveal_enabled: BooleanBuilder,
    reveal_period_epochs: UInt64Builder,
    commit_reveal_version: UInt16Builder,
}

fn timestamps() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

impl Rows {
    pub fn new(table: Table, embedding_dimension: u32) -> Rows {
        let columns = match table {
            Table::Events => Columns::Events {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                kind: StringBuilder::new(),
                id: StringBuilder::new(),
                size_bytes: UInt32Builder::new(),
                schema_version: UInt16Builder::new(),
            },
            Table::Challenges => Columns::Challenges {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                challenge_id: StringBuilder::new(),
                environment: StringBuilder::new(),
                seed: UInt64Builder::new(),
                prompt: StringBuilder::new(),
                extra_json: StringBuilder::new(),
                target_uids: ListBuilder::new(UInt16Builder::new()).with_field(uid_field()),
                deadline_ms: UInt64Builder::new(),
            },
            Table::Responses => Columns::Responses {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                challenge_id: StringBuilder::new(),
                uid: UInt16Builder::new(),
                hotkey: StringBuilder::new(),
                status: StringBuilder::new(),
                body: StringBuilder::new(),
                error_message: StringBuilder::new(),
                latency_ms: UInt64Builder::new(),
                attempts: UInt32Builder::new(),
                miner_signature: StringBuilder::new(),
            },
            Table::Evaluations => Columns::Evaluations {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                challenge_id: StringBuilder::new(),
                uid: UInt16Builder::new(),
                score: Float64Builder::new(),
                metrics: ListBuilder::new(StructBuilder::from_fields(metric_fields(), 0))
                    .with_field(metric_field()),
                evaluator: StringBuilder::new(),
                fuel_used: UInt64Builder::new(),
            },
            Table::Embeddings => Columns::Embeddings {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                challenge_id: StringBuilder::new(),
                uid: UInt16Builder::new(),
                model_hash: StringBuilder::new(),
                scale: Float32Builder::new(),
                vector: FixedSizeListBuilder::new(
                    Int8Builder::new(),
                    embedding_dimension.min(i32::MAX as u32) as i32,
                )
                .with_field(vector_field()),
            },
            Table::Metagraph => Columns::Metagraph(Box::new(MetagraphColumns {
                timestamp: timestamps(),
                ..MetagraphColumns::default()
            })),
            Table::Weights => Columns::Weights {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                block: UInt64Builder::new(),
                mechanism: StringBuilder::new(),
                parameters_hash: StringBuilder::new(),
                log_size: UInt64Builder::new(),
                uid: UInt16Builder::new(),
                raw_weight: Float64Builder::new(),
                u16_weight: UInt16Builder::new(),
            },
            Table::Submissions => Columns::Submissions {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                decision_seq: UInt64Builder::new(),
                call: StringBuilder::new(),
                extrinsic_hash: StringBuilder::new(),
                reveal_round: UInt64Builder::new(),
                outcome: StringBuilder::new(),
                included_block: UInt64Builder::new(),
                rejection_reason: StringBuilder::new(),
                spec_version: UInt32Builder::new(),
            },
            Table::ExternalScores => Columns::ExternalScores {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                source: StringBuilder::new(),
                block: UInt64Builder::new(),
                uid: UInt16Builder::new(),
                score: Float64Builder::new(),
                extra_json: StringBuilder::new(),
            },
            Table::GroundTruth => Columns::GroundTruth {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                challenge_id: StringBuilder::new(),
                truth_json: StringBuilder::new(),
            },
            Table::Profiles => Columns::Profiles {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                kind: StringBuilder::new(),
                profile: StringBuilder::new(),
                parameters_json: StringBuilder::new(),
                parameters_hash: StringBuilder::new(),
                netuid: UInt16Builder::new(),
                validator_hotkey: StringBuilder::new(),
                log_id: StringBuilder::new(),
            },
            Table::Environments => Columns::Environments {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                name: StringBuilder::new(),
                version: StringBuilder::new(),
                environment_kind: StringBuilder::new(),
                module_hash: StringBuilder::new(),
                parameters_json: StringBuilder::new(),
            },
            Table::Checkpoints => Columns::Checkpoints {
                seq: UInt64Builder::new(),
                timestamp: timestamps(),
                size: UInt64Builder::new(),
                origin: StringBuilder::new(),
                root: StringBuilder::new(),
                signer: StringBuilder::new(),
                signature: StringBuilder::new(),
                text: StringBuilder::new(),
            },
        };
        Rows {
            table,
            embedding_dimension,
            rows: 0,
            bytes: 0,
            columns,
        }
    }

    pub fn table(&self) -> Table {
        self.table
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends the rows `row` gives this table (none when the event is of another kind).
    /// Returns how many were appended.
    pub fn append_event(&mut self, row: &EventRow) -> usize {
        let (seq_value, timestamp_ms) = (row.seq, row.timestamp_ms);
        let before = self.rows;
        match (&mut self.columns, &row.event.payload) {
            (
                Columns::Events {
                    seq,
                    timestamp,
                    kind,
                    id,
                    size_bytes,
                    schema_version,
                },
                _,
            ) => {
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                kind.append_value(row.event.kind().name());
                id.append_value(row.id.to_string());
                size_bytes.append_value(row.size_bytes);
                schema_version.append_value(row.event.schema_version);
                self.rows += 1;
            }
            (
                Columns::Challenges {
                    seq,
                    timestamp,
                    challenge_id,
                    environment,
                    seed,
                    prompt,
                    extra_json,
                    target_uids,
                    deadline_ms,
                },
                Payload::ChallengeIssued(challenge),
            ) => {
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                challenge_id.append_value(&challenge.challenge_id);
                environment.append_value(&challenge.environment);
                seed.append_value(challenge.seed);
                prompt.append_value(&challenge.prompt);
                extra_json.append_value(&challenge.extra_json);
                target_uids.values().append_slice(&challenge.target_uids);
                target_uids.append(true);
                deadline_ms.append_value(challenge.deadline_ms);
                self.rows += 1;
            }
            (
                Columns::Responses {
                    seq,
                    timestamp,
                    challenge_id,
                    uid,
                    hotkey,
                    status,
                    body,
                    error_message,
                    latency_ms,
                    attempts,
                    miner_signature,
                },
                Payload::ResponseReceived(response),
            ) => {
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                challenge_id.append_value(&response.challenge_id);
                uid.append_value(response.uid);
                hotkey.append_value(response.hotkey.to_ss58());
                match &response.outcome {
                    ResponseOutcome::Ok { body: text } => {
                        status.append_value("ok");
                        body.append_value(text);
                        error_message.append_null();
                    }
                    ResponseOutcome::Error { message } => {
                        status.append_value("error");
                        body.append_null();
                        error_message.append_value(message);
                    }
                }
                latency_ms.append_value(response.latency_ms);
                attempts.append_value(response.attempts);
                miner_signature.append_option(
                    response
                        .miner_signature
                        .map(|signature| format!("0x{}", hex::encode(signature.0))),
                );
                self.rows += 1;
            }
            (
                Columns::Evaluations {
                    seq,
                    timestamp,
                    challenge_id,
                    uid,
                    score,
                    metrics,
                    evaluator,
                    fuel_used,
                },
                Payload::EvaluationRecorded(evaluation),
            ) => {
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                challenge_id.append_value(&evaluation.challenge_id);
                uid.append_value(evaluation.uid);
                score.append_value(evaluation.score);
                let entries = metrics.values();
                for metric in &evaluation.metrics {
                    if let Some(name) = entries.field_builder::<StringBuilder>(0) {
                        name.append_value(&metric.name);
                    }
                    if let Some(value) = entries.field_builder::<Float64Builder>(1) {
                        value.append_value(metric.value);
                    }
                    entries.append(true);
                }
                metrics.append(true);
                evaluator.append_value(&evaluation.evaluator);
                fuel_used.append_option(evaluation.fuel_used);
                self.rows += 1;
            }
            (
                Columns::Embeddings {
                    seq,
                    timestamp,
                    challenge_id,
                    uid,
                    model_hash,
                    scale,
                    vector,
                },
                Payload::EmbeddingComputed(embedding),
            ) => {
                // The caller routes each embedding to the file of its own dimension.
                assert_eq!(
                    embedding.vector.len() as u64,
                    u64::from(self.embedding_dimension),
                    "an embedding reached a file of another dimension"
                );
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                challenge_id.append_value(&embedding.challenge_id);
                uid.append_value(embedding.uid);
                model_hash.append_value(embedding.model_hash.to_string());
                scale.append_value(embedding.scale);
                vector.values().append_slice(&embedding.vector);
                vector.append(true);
                self.rows += 1;
            }
            (Columns::Metagraph(columns), Payload::MetagraphObserved(observed)) => {
                let block_hash = observed.block_hash.to_string();
                let hyper = &observed.hyperparameters;
                for neuron in &observed.neurons {
                    columns.seq.append_value(seq_value);
                    columns.timestamp.append_value(timestamp_ms);
                    columns.netuid.append_value(observed.netuid);
                    columns.block.append_value(observed.block);
                    columns.block_hash.append_value(&block_hash);
                    columns.spec_version.append_value(observed.spec_version);
                    columns.uid.append_value(neuron.uid);
                    columns.hotkey.append_value(neuron.hotkey.to_ss58());
                    columns.coldkey.append_value(neuron.coldkey.to_ss58());
                    columns.stake_rao.append_value(neuron.stake_rao);
                    columns
                        .validator_permit
                        .append_value(neuron.validator_permit);
                    columns.active.append_value(neuron.active);
                    columns
                        .registration_block
                        .append_value(neuron.registration_block);
                    let axon = neuron.axon.as_ref();
                    columns.axon_ip.append_option(axon.map(|axon| &axon.ip));
                    columns.axon_port.append_option(axon.map(|axon| axon.port));
                    columns
                        .axon_protocol
                        .append_option(axon.map(|axon| axon.protocol));
                    columns
                        .axon_version
                        .append_option(axon.map(|axon| axon.version));
                    columns.tempo.append_value(hyper.tempo);
                    columns
                        .min_allowed_weights
                        .append_value(hyper.min_allowed_weights);
                    columns
                        .max_weights_limit
                        .append_value(hyper.max_weights_limit);
                    columns
                        .weights_version_key
                        .append_value(hyper.weights_version_key);
                    columns
                        .weights_rate_limit_blocks
                        .append_value(hyper.weights_rate_limit_blocks);
                    columns
                        .commit_reveal_enabled
                        .append_value(hyper.commit_reveal_enabled);
                    columns
                        .reveal_period_epochs
                        .append_value(hyper.reveal_period_epochs);
                    columns
                        .commit_reveal_version
                        .append_value(hyper.commit_reveal_version);
                    self.rows += 1;
                }
            }
            (
                Columns::Weights {
                    seq,
                    timestamp,
                    block,
                    mechanism,
                    parameters_hash,
                    log_size,
                    uid,
                    raw_weight,
                    u16_weight,
                },
                Payload::WeightsComputed(decision),
            ) => {
                let parameters = decision.parameters_hash.to_string();
                for (row_uid, raw, sent) in weight_rows(decision) {
                    seq.append_value(seq_value);
                    timestamp.append_value(timestamp_ms);
                    block.append_value(decision.block);
                    mechanism.append_value(&decision.mechanism);
                    parameters_hash.append_value(&parameters);
                    log_size.append_value(decision.log_size);
                    uid.append_value(row_uid);
                    raw_weight.append_option(raw);
                    u16_weight.append_option(sent);
                    self.rows += 1;
                }
            }
            (
                Columns::Submissions {
                    seq,
                    timestamp,
                    decision_seq,
                    call,
                    extrinsic_hash,
                    reveal_round,
                    outcome,
                    included_block,
                    rejection_reason,
                    spec_version,
                },
                Payload::WeightsSubmitted(submitted),
            ) => {
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                decision_seq.append_value(submitted.decision_seq);
                call.append_value(call_name(submitted.call));
                extrinsic_hash.append_option(submitted.extrinsic_hash.map(|hash| hash.to_string()));
                reveal_round.append_option(submitted.reveal_round);
                let (status, block, reason) = match &submitted.outcome {
                    SubmissionOutcome::Included { block } => ("included", Some(*block), None),
                    SubmissionOutcome::Rejected { reason } => ("rejected", None, Some(reason)),
                    SubmissionOutcome::TimedOut => ("timed_out", None, None),
                };
                outcome.append_value(status);
                included_block.append_option(block);
                rejection_reason.append_option(reason);
                spec_version.append_option(submitted.spec_version);
                self.rows += 1;
            }
            (
                Columns::ExternalScores {
                    seq,
                    timestamp,
                    source,
                    block,
                    uid,
                    score,
                    extra_json,
                },
                Payload::ExternalScoreRecorded(recorded),
            ) => {
                for entry in &recorded.scores {
                    seq.append_value(seq_value);
                    timestamp.append_value(timestamp_ms);
                    source.append_value(&recorded.source);
                    block.append_value(recorded.block);
                    uid.append_value(entry.uid);
                    score.append_value(entry.score);
                    extra_json.append_value(&recorded.extra_json);
                    self.rows += 1;
                }
            }
            (
                Columns::GroundTruth {
                    seq,
                    timestamp,
                    challenge_id,
                    truth_json,
                },
                Payload::GroundTruthRevealed(revealed),
            ) => {
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                challenge_id.append_value(&revealed.challenge_id);
                truth_json.append_value(&revealed.truth_json);
                self.rows += 1;
            }
            (
                Columns::Profiles {
                    seq,
                    timestamp,
                    kind,
                    profile,
                    parameters_json,
                    parameters_hash,
                    netuid,
                    validator_hotkey,
                    log_id,
                },
                payload,
            ) => {
                let (named, parameters, hash, opened) = match payload {
                    Payload::LogOpened(opened) => (
                        &opened.profile,
                        &opened.parameters_json,
                        opened.parameters_hash,
                        Some(opened),
                    ),
                    Payload::ProfileChanged(changed) => (
                        &changed.profile,
                        &changed.parameters_json,
                        changed.parameters_hash,
                        None,
                    ),
                    _ => return 0,
                };
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                kind.append_value(row.event.kind().name());
                profile.append_value(named);
                parameters_json.append_value(parameters);
                parameters_hash.append_value(hash.to_string());
                netuid.append_option(opened.map(|opened| opened.netuid));
                validator_hotkey
                    .append_option(opened.map(|opened| opened.validator_hotkey.to_ss58()));
                log_id.append_option(opened.map(|opened| opened.log_id.to_hex()));
                self.rows += 1;
            }
            (
                Columns::Environments {
                    seq,
                    timestamp,
                    name,
                    version,
                    environment_kind,
                    module_hash,
                    parameters_json,
                },
                Payload::EnvironmentRegistered(registered),
            ) => {
                seq.append_value(seq_value);
                timestamp.append_value(timestamp_ms);
                name.append_value(&registered.name);
                version.append_value(&registered.version);
                environment_kind.append_value(environment_kind_name(registered.environment_kind));
                module_hash.append_option(registered.module_hash.map(|hash| hash.to_string()));
                parameters_json.append_value(&registered.parameters_json);
                self.rows += 1;
            }
            _ => {}
        }
        let added = self.rows - before;
        if added > 0 {
            self.bytes += row.size_bytes as usize + added * ROW_OVERHEAD_BYTES;
        }
        added
    }

    /// Appends one signed checkpoint; only the checkpoints table takes them.
    pub fn append_checkpoint(&mut self, row: &CheckpointRow) -> usize {
        let Columns::Checkpoints {
            seq,
            timestamp,
            size,
            origin,
            root,
            signer,
            signature,
            text,
        } = &mut self.columns
        else {
            return 0;
        };
        let body = &row.checkpoint.checkpoint;
        let signed_text = row.checkpoint.to_text();
        // `seq` is the last event the checkpoint covers, so checkpoints join the events
        // table like every other row.
        seq.append_value(body.size.saturating_sub(1));
        timestamp.append_value(row.timestamp_ms);
        size.append_value(body.size);
        origin.append_value(&body.origin);
        root.append_value(body.root.to_string());
        signer.append_value(row.checkpoint.signer.to_ss58());
        signature.append_value(format!("0x{}", hex::encode(row.checkpoint.signature)));
        self.bytes += signed_text.len() + ROW_OVERHEAD_BYTES;
        text.append_value(signed_text);
        self.rows += 1;
        1
    }

    /// The rows gathered so far as a record batch; the builders start empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = match &mut self.columns {
            Columns::Events {
                seq,
                timestamp,
                kind,
                id,
                size_bytes,
                schema_version,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(kind.finish()),
                Arc::new(id.finish()),
                Arc::new(size_bytes.finish()),
                Arc::new(schema_version.finish()),
            ],
            Columns::Challenges {
                seq,
                timestamp,
                challenge_id,
                environment,
                seed,
                prompt,
                extra_json,
                target_uids,
                deadline_ms,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(challenge_id.finish()),
                Arc::new(environment.finish()),
                Arc::new(seed.finish()),
                Arc::new(prompt.finish()),
                Arc::new(extra_json.finish()),
                Arc::new(target_uids.finish()),
                Arc::new(deadline_ms.finish()),
            ],
            Columns::Responses {
                seq,
                timestamp,
                challenge_id,
                uid,
                hotkey,
                status,
                body,
                error_message,
                latency_ms,
                attempts,
                miner_signature,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(challenge_id.finish()),
                Arc::new(uid.finish()),
                Arc::new(hotkey.finish()),
                Arc::new(status.finish()),
                Arc::new(body.finish()),
                Arc::new(error_message.finish()),
                Arc::new(latency_ms.finish()),
                Arc::new(attempts.finish()),
                Arc::new(miner_signature.finish()),
            ],
            Columns::Evaluations {
                seq,
                timestamp,
                challenge_id,
                uid,
                score,
                metrics,
                evaluator,
                fuel_used,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(challenge_id.finish()),
                Arc::new(uid.finish()),
                Arc::new(score.finish()),
                Arc::new(metrics.finish()),
                Arc::new(evaluator.finish()),
                Arc::new(fuel_used.finish()),
            ],
            Columns::Embeddings {
                seq,
                timestamp,
                challenge_id,
                uid,
                model_hash,
                scale,
                vector,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(challenge_id.finish()),
                Arc::new(uid.finish()),
                Arc::new(model_hash.finish()),
                Arc::new(scale.finish()),
                Arc::new(vector.finish()),
            ],
            Columns::Metagraph(columns) => vec![
                Arc::new(columns.seq.finish()),
                Arc::new(columns.timestamp.finish()),
                Arc::new(columns.netuid.finish()),
                Arc::new(columns.block.finish()),
                Arc::new(columns.block_hash.finish()),
                Arc::new(columns.spec_version.finish()),
                Arc::new(columns.uid.finish()),
                Arc::new(columns.hotkey.finish()),
                Arc::new(columns.coldkey.finish()),
                Arc::new(columns.stake_rao.finish()),
                Arc::new(columns.validator_permit.finish()),
                Arc::new(columns.active.finish()),
                Arc::new(columns.registration_block.finish()),
                Arc::new(columns.axon_ip.finish()),
                Arc::new(columns.axon_port.finish()),
                Arc::new(columns.axon_protocol.finish()),
                Arc::new(columns.axon_version.finish()),
                Arc::new(columns.tempo.finish()),
                Arc::new(columns.min_allowed_weights.finish()),
                Arc::new(columns.max_weights_limit.finish()),
                Arc::new(columns.weights_version_key.finish()),
                Arc::new(columns.weights_rate_limit_blocks.finish()),
                Arc::new(columns.commit_reveal_enabled.finish()),
                Arc::new(columns.reveal_period_epochs.finish()),
                Arc::new(columns.commit_reveal_version.finish()),
            ],
            Columns::Weights {
                seq,
                timestamp,
                block,
                mechanism,
                parameters_hash,
                log_size,
                uid,
                raw_weight,
                u16_weight,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(block.finish()),
                Arc::new(mechanism.finish()),
                Arc::new(parameters_hash.finish()),
                Arc::new(log_size.finish()),
                Arc::new(uid.finish()),
                Arc::new(raw_weight.finish()),
                Arc::new(u16_weight.finish()),
            ],
            Columns::Submissions {
                seq,
                timestamp,
                decision_seq,
                call,
                extrinsic_hash,
                reveal_round,
                outcome,
                included_block,
                rejection_reason,
                spec_version,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(decision_seq.finish()),
                Arc::new(call.finish()),
                Arc::new(extrinsic_hash.finish()),
                Arc::new(reveal_round.finish()),
                Arc::new(outcome.finish()),
                Arc::new(included_block.finish()),
                Arc::new(rejection_reason.finish()),
                Arc::new(spec_version.finish()),
            ],
            Columns::ExternalScores {
                seq,
                timestamp,
                source,
                block,
                uid,
                score,
                extra_json,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(source.finish()),
                Arc::new(block.finish()),
                Arc::new(uid.finish()),
                Arc::new(score.finish()),
                Arc::new(extra_json.finish()),
            ],
            Columns::GroundTruth {
                seq,
                timestamp,
                challenge_id,
                truth_json,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(challenge_id.finish()),
                Arc::new(truth_json.finish()),
            ],
            Columns::Profiles {
                seq,
                timestamp,
                kind,
                profile,
                parameters_json,
                parameters_hash,
                netuid,
                validator_hotkey,
                log_id,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(kind.finish()),
                Arc::new(profile.finish()),
                Arc::new(parameters_json.finish()),
                Arc::new(parameters_hash.finish()),
                Arc::new(netuid.finish()),
                Arc::new(validator_hotkey.finish()),
                Arc::new(log_id.finish()),
            ],
            Columns::Environments {
                seq,
                timestamp,
                name,
                version,
                environment_kind,
                module_hash,
                parameters_json,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(name.finish()),
                Arc::new(version.finish()),
                Arc::new(environment_kind.finish()),
                Arc::new(module_hash.finish()),
                Arc::new(parameters_json.finish()),
            ],
            Columns::Checkpoints {
                seq,
                timestamp,
                size,
                origin,
                root,
                signer,
                signature,
                text,
            } => vec![
                Arc::new(seq.finish()),
                Arc::new(timestamp.finish()),
                Arc::new(size.finish()),
                Arc::new(origin.finish()),
                Arc::new(root.finish()),
                Arc::new(signer.finish()),
                Arc::new(signature.finish()),
                Arc::new(text.finish()),
            ],
        };
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.table.schema(self.embedding_dimension), columns)
    }
}

/// A weights call as the JSON form (`cat --json`) names it.
fn call_name(call: WeightsCall) -> &'static str {
    match call {
        WeightsCall::SetWeights => "set_weights",
        WeightsCall::SetMechanismWeights => "set_mechanism_weights",
        WeightsCall::CommitTimelockedMechanismWeights => "commit_timelocked_mechanism_weights",
    }
}

/// An environment kind as the JSON form (`cat --json`) names it.
fn environment_kind_name(kind: EnvironmentKind) -> &'static str {
    match kind {
        EnvironmentKind::Builtin => "builtin",
        EnvironmentKind::Wasm => "wasm",
        EnvironmentKind::Script => "script",
        EnvironmentKind::External => "external",
    }
}

/// The long form of one weight decision: `(uid, raw weight, u16 weight)` for every uid the
/// mechanism weighed, in its order, then any uid sent to the chain that it did not weigh.
/// The u16 weight is null for a uid that was not sent (its weight rounded to zero and was
/// dropped); the raw weight is null for a uid that only the u16 form names.
pub fn weight_rows(
    decision: &weightlog_schema::event::WeightsComputed,
) -> Vec<(u16, Option<f64>, Option<u16>)> {
    let sent: std::collections::BTreeMap<u16, u16> = decision
        .u16_uids
        .iter()
        .copied()
        .zip(decision.u16_weights.iter().copied())
        .collect();
    let weighed: std::collections::BTreeSet<u16> = decision.uids.iter().copied().collect();
    let mut rows: Vec<(u16, Option<f64>, Option<u16>)> = decision
        .uids
        .iter()
        .zip(&decision.raw_weight_bits)
        .map(|(&uid, &bits)| (uid, Some(f64::from_bits(bits)), sent.get(&uid).copied()))
        .collect();
    for (&uid, &weight) in decision.u16_uids.iter().zip(&decision.u16_weights) {
        if !weighed.contains(&uid) {
            rows.push((uid, None, Some(weight)));
        }
    }
    rows
}

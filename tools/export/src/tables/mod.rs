//! The exported tables: their Arrow schemas and the builders that turn events into rows.
//!
//! Every table starts with `seq` and `timestamp`, so any row can be tied back to the event
//! (and through the file's metadata, to the signed checkpoint) it came from. Columns are
//! typed; only data the log itself stores as JSON text (`extra_json`, parameters) stays text.
//! Hashes are lowercase hex and accounts SS58, exactly as `weightlog cat --json` prints them,
//! so a value can be searched for in either form.
//!
//! This module holds the tables and their schemas; `rows.rs` builds their record batches.

mod rows;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

pub use rows::{CheckpointRow, EventRow, Rows, weight_rows};

/// The tables an export can write; each is one Parquet dataset (a folder of files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Table {
    /// One row per event: seq, kind, timestamp, id, size.
    Events,
    /// `ChallengeIssued`.
    Challenges,
    /// `ResponseReceived`.
    Responses,
    /// `EvaluationRecorded`, with its metrics as a list of (name, value).
    Evaluations,
    /// `EmbeddingComputed`, the vector as a fixed-size list of i8.
    Embeddings,
    /// `MetagraphObserved`, one row per uid per observation.
    Metagraph,
    /// `WeightsComputed` in long form: one row per uid per decision.
    Weights,
    /// `WeightsSubmitted`: what reached the chain, and its outcome.
    Submissions,
    /// `ExternalScoreRecorded` in long form: one row per uid per record.
    #[value(name = "external_scores")]
    ExternalScores,
    /// `GroundTruthRevealed`.
    #[value(name = "ground_truth")]
    GroundTruth,
    /// `LogOpened` and `ProfileChanged`: the profile and parameters in force from each seq.
    Profiles,
    /// `EnvironmentRegistered`.
    Environments,
    /// The signed checkpoints whose size falls in the exported range.
    Checkpoints,
}

impl Table {
    pub const ALL: [Table; 13] = [
        Table::Events,
        Table::Challenges,
        Table::Responses,
        Table::Evaluations,
        Table::Embeddings,
        Table::Metagraph,
        Table::Weights,
        Table::Submissions,
        Table::ExternalScores,
        Table::GroundTruth,
        Table::Profiles,
        Table::Environments,
        Table::Checkpoints,
    ];

    /// The dataset's folder name under the output directory.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Challenges => "challenges",
            Table::Responses => "responses",
            Table::Evaluations => "evaluations",
            Table::Embeddings => "embeddings",
            Table::Metagraph => "metagraph",
            Table::Weights => "weights",
            Table::Submissions => "submissions",
            Table::ExternalScores => "external_scores",
            Table::GroundTruth => "ground_truth",
            Table::Profiles => "profiles",
            Table::Environments => "environments",
            Table::Checkpoints => "checkpoints",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|table| table.name() == name)
    }

    /// The schema of the table. Embeddings' vector width is part of their schema, so it is
    /// given; other tables ignore it.
    pub fn schema(self, embedding_dimension: u32) -> SchemaRef {
        let mut fields = vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new("timestamp", timestamp_type(), false),
        ];
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let optional_text = |name: &str| Field::new(name, DataType::Utf8, true);
        match self {
            Table::Events => fields.extend([
                text("kind"),
                text("id"),
                Field::new("size_bytes", DataType::UInt32, false),
                Field::new("schema_version", DataType::UInt16, false),
            ]),
            Table::Challenges => fields.extend([
                text("challenge_id"),
                text("environment"),
                Field::new("seed", DataType::UInt64, false),
                text("prompt"),
                text("extra_json"),
                Field::new("target_uids", uid_list_type(), false),
                Field::new("deadline_ms", DataType::UInt64, false),
            ]),
            Table::Responses => fields.extend([
                text("challenge_id"),
                Field::new("uid", DataType::UInt16, false),
                text("hotkey"),
                text("status"),
                optional_text("body"),
                optional_text("error_message"),
                Field::new("latency_ms", DataType::UInt64, false),
                Field::new("attempts", DataType::UInt32, false),
                optional_text("miner_signature"),
            ]),
            Table::Evaluations => fields.extend([
                text("challenge_id"),
                Field::new("uid", DataType::UInt16, false),
                Field::new("score", DataType::Float64, false),
                Field::new("metrics", metric_list_type(), false),
                text("evaluator"),
                Field::new("fuel_used", DataType::UInt64, true),
            ]),
            Table::Embeddings => fields.extend([
                text("challenge_id"),
                Field::new("uid", DataType::UInt16, false),
                text("model_hash"),
                Field::new("scale", DataType::Float32, false),
                Field::new(
                    "vector",
                    vector_type(embedding_dimension.min(i32::MAX as u32) as i32),
                    false,
                ),
            ]),
            Table::Metagraph => fields.extend([
                Field::new("netuid", DataType::UInt16, false),
                Field::new("block", DataType::UInt64, false),
                text("block_hash"),
                Field::new("spec_version", DataType::UInt32, false),
                Field::new("uid", DataType::UInt16, false),
                text("hotkey"),
                text("coldkey"),
                Field::new("stake_rao", DataType::UInt64, false),
                Field::new("validator_permit", DataType::Boolean, false),
                Field::new("active", DataType::Boolean, false),
                Field::new("registration_block", DataType::UInt64, false),
                optional_text("axon_ip"),
                Field::new("axon_port", DataType::UInt16, true),
                Field::new("axon_protocol", DataType::UInt8, true),
                Field::new("axon_version", DataType::UInt32, true),
                Field::new("tempo", DataType::UInt16, false),
                Field::new("min_allowed_weights", DataType::UInt16, false),
                Field::new("max_weights_limit", DataType::UInt16, false),
                Field::new("weights_version_key", DataType::UInt64, false),
                Field::new("weights_rate_limit_blocks", DataType::UInt64, false),
                Field::new("commit_reveal_enabled", DataType::Boolean, false),
                Field::new("reveal_period_epochs", DataType::UInt64, false),
                Field::new("commit_reveal_version", DataType::UInt16, false),
            ]),
            Table::Weights => fields.extend([
                Field::new("block", DataType::UInt64, false),
                text("mechanism"),
                text("parameters_hash"),
                Field::new("log_size", DataType::UInt64, false),
                Field::new("uid", DataType::UInt16, false),
                Field::new("raw_weight", DataType::Float64, true),
                Field::new("u16_weight", DataType::UInt16, true),
            ]),
            Table::Submissions => fields.extend([
                Field::new("decision_seq", DataType::UInt64, false),
                text("call"),
                optional_text("extrinsic_hash"),
                Field::new("reveal_round", DataType::UInt64, true),
                text("outcome"),
                Field::new("included_block", DataType::UInt64, true),
                optional_text("rejection_reason"),
                Field::new("spec_version", DataType::UInt32, true),
            ]),
            Table::ExternalScores => fields.extend([
                text("source"),
                Field::new("block", DataType::UInt64, false),
                Field::new("uid", DataType::UInt16, false),
                Field::new("score", DataType::Float64, false),
                text("extra_json"),
            ]),
            Table::GroundTruth => fields.extend([text("challenge_id"), text("truth_json")]),
            Table::Profiles => fields.extend([
                text("kind"),
                text("profile"),
                text("parameters_json"),
                text("parameters_hash"),
                Field::new("netuid", DataType::UInt16, true),
                optional_text("validator_hotkey"),
                optional_text("log_id"),
            ]),
            Table::Environments => fields.extend([
                text("name"),
                text("version"),
                text("environment_kind"),
                optional_text("module_hash"),
                text("parameters_json"),
            ]),
            Table::Checkpoints => fields.extend([
                Field::new("size", DataType::UInt64, false),
                text("origin"),
                text("root"),
                text("signer"),
                text("signature"),
                text("text"),
            ]),
        }
        Arc::new(Schema::new(fields))
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

pub(crate) fn uid_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::UInt16, false))
}

fn uid_list_type() -> DataType {
    DataType::List(uid_field())
}

pub(crate) fn metric_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ])
}

pub(crate) fn metric_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(metric_fields()), false))
}

fn metric_list_type() -> DataType {
    DataType::List(metric_field())
}

pub(crate) fn vector_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Int8, false))
}

fn vector_type(dimension: i32) -> DataType {
    DataType::FixedSizeList(vector_field(), dimension)
}

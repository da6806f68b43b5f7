//! A deterministic generated log for the export's tests and benchmark: the mix a running
//! validator appends (metagraph observations, challenges, responses, embeddings,
//! evaluations, weight decisions) plus the rarer kinds, spread over several days, committed
//! in batches so the log has many signed checkpoints.
#![allow(dead_code)]

use std::path::Path;

use weightlog::keys::Hotkey;
use weightlog::log::{Genesis, Log};
use weightlog_schema::event::{EnvironmentKind, EventKind, LogId, Payload, SubmissionOutcome};
use weightlog_schema::{Event, samples};

/// The first event's time: 2025-10-09T08:53:20Z.
pub const START_MS: u64 = 1_760_000_000_000;
/// Time between events: 7 minutes, so 1,000 events span about five days.
pub const STEP_MS: u64 = 7 * 60 * 1_000;

pub fn validator_key() -> Hotkey {
    Hotkey::from_seed(&[1; 32])
}

pub fn genesis() -> Genesis {
    Genesis {
        netuid: 7,
        profile: "affine".into(),
        parameters_json: "{\"alpha\":0.1}".into(),
        timestamp_ms: START_MS,
        log_id: LogId([7; 16]),
    }
}

/// The kind of the `index`-th generated event (after the genesis): a round of 16 events.
fn kind_of(index: u64) -> EventKind {
    const ROUND: [EventKind; 16] = [
        EventKind::MetagraphObserved,
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::ResponseReceived,
        EventKind::ResponseReceived,
        EventKind::EmbeddingComputed,
        EventKind::EmbeddingComputed,
        EventKind::EvaluationRecorded,
        EventKind::EvaluationRecorded,
        EventKind::EvaluationRecorded,
        EventKind::WeightsComputed,
        EventKind::WeightsSubmitted,
        EventKind::ExternalScoreRecorded,
        EventKind::GroundTruthRevealed,
        EventKind::EnvironmentRegistered,
        EventKind::ProfileChanged,
    ];
    ROUND[(index % 16) as usize]
}

/// The `index`-th generated event: a sample of its kind, varied so optional fields are
/// sometimes absent, one weight is sometimes dropped from the u16 form, and embeddings come
/// in two widths.
pub fn event(index: u64) -> Event {
    let mut event = samples::sample(kind_of(index), index);
    event.timestamp_ms = START_MS + (index + 1) * STEP_MS;
    match &mut event.payload {
        Payload::ResponseReceived(response) if index.is_multiple_of(3) => {
            response.miner_signature = None;
        }
        Payload::EvaluationRecorded(evaluation) if index.is_multiple_of(4) => {
            evaluation.fuel_used = None;
            evaluation.metrics.clear();
        }
        Payload::EmbeddingComputed(embedding) if index % 32 == 6 => {
            embedding.vector.truncate(128);
        }
        Payload::WeightsComputed(decision) if index % 32 == 10 => {
            // A weight that rounded to zero is dropped from what goes to the chain.
            decision.u16_uids.remove(3);
            decision.u16_weights.remove(3);
        }
        // Every outcome a submission can have, and its optional fields absent.
        Payload::WeightsSubmitted(submitted) => match (index / 16) % 3 {
            1 => {
                submitted.outcome = SubmissionOutcome::Rejected {
                    reason: "rate limited".into(),
                };
                submitted.extrinsic_hash = None;
                submitted.reveal_round = None;
                submitted.spec_version = None;
            }
            2 => submitted.outcome = SubmissionOutcome::TimedOut,
            _ => {}
        },
        Payload::EnvironmentRegistered(registered) if (index / 16).is_multiple_of(2) => {
            registered.module_hash = None;
            registered.environment_kind = EnvironmentKind::Builtin;
        }
        Payload::ExternalScoreRecorded(recorded) if (index / 16) % 3 == 1 => {
            // A record of no scores gives no rows.
            recorded.scores.clear();
        }
        _ => {}
    }
    event
}

/// Creates a log of 1 + `events` events at `path`, `batch` events per commit.
pub fn generate(path: &Path, events: u64, batch: u64) {
    let log = Log::create(path, validator_key(), genesis()).expect("create log");
    let mut index = 0;
    while index < events {
        let end = (index + batch).min(events);
        let chunk: Vec<Event> = (index..end).map(event).collect();
        log.append_batch(&chunk).expect("append");
        index = end;
    }
    log.close().expect("close log");
}

/// A cell of an exported table, as the tests compare them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Unsigned(u64),
    Signed(i64),
    /// Floats by bit pattern, so the comparison is exact.
    Float(u64),
    Bool(bool),
    Text(String),
    List(Vec<Value>),
    Struct(Vec<Value>),
}

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, TimestampMillisecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

/// Row `index` of `array` as a [`Value`].
pub fn cell(array: &dyn Array, index: usize) -> Value {
    if array.is_null(index) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::UInt8 => Value::Unsigned(array.as_primitive::<UInt8Type>().value(index).into()),
        DataType::UInt16 => Value::Unsigned(array.as_primitive::<UInt16Type>().value(index).into()),
        DataType::UInt32 => Value::Unsigned(array.as_primitive::<UInt32Type>().value(index).into()),
        DataType::UInt64 => Value::Unsigned(array.as_primitive::<UInt64Type>().value(index)),
        DataType::Int8 => Value::Signed(array.as_primitive::<Int8Type>().value(index).into()),
        DataType::Float32 => {
            Value::Float(f64::from(array.as_primitive::<Float32Type>().value(index)).to_bits())
        }
        DataType::Float64 => {
            Value::Float(array.as_primitive::<Float64Type>().value(index).to_bits())
        }
        DataType::Timestamp(_, zone) => {
            assert_eq!(zone.as_deref(), Some("UTC"));
            Value::Signed(
                array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(index),
            )
        }
        DataType::Boolean => Value::Bool(array.as_boolean().value(index)),
        DataType::Utf8 => Value::Text(array.as_string::<i32>().value(index).to_string()),
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(index);
            Value::List(
                (0..items.len())
                    .map(|item| cell(items.as_ref(), item))
                    .collect(),
            )
        }
        DataType::FixedSizeList(_, _) => {
            let items = array.as_fixed_size_list().value(index);
            Value::List(
                (0..items.len())
                    .map(|item| cell(items.as_ref(), item))
                    .collect(),
            )
        }
        DataType::Struct(_) => {
            let fields = array.as_struct();
            Value::Struct(
                fields
                    .columns()
                    .iter()
                    .map(|column| cell(column.as_ref(), index))
                    .collect(),
            )
        }
        other => panic!("no test form for {other}"),
    }
}

/// Every row of a batch.
pub fn batch_rows(batch: &RecordBatch) -> Vec<Vec<Value>> {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|column| cell(column.as_ref(), row))
                .collect()
        })
        .collect()
}

/// Every row of a Parquet file, read with the Rust reader, and its key-value metadata.
pub fn read_parquet(
    path: &Path,
) -> (
    Vec<Vec<Value>>,
    std::collections::BTreeMap<String, String>,
    arrow_schema::SchemaRef,
) {
    let file = std::fs::File::open(path).unwrap();
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|pairs| {
            pairs
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        rows.extend(batch_rows(&batch.unwrap()));
    }
    (rows, metadata, schema)
}

/// Every `*.parquet` file under `folder`, recursively, sorted by path.
pub fn files_under(folder: &Path) -> Vec<std::path::PathBuf> {
    weightlog_export::export::parquet_files(folder).unwrap()
}

/// Rows of a table across all its files, sorted by (seq, then the whole row) so that
/// exports cut into different files compare equal. Rows of one event keep their order
/// because the sort is stable and only `seq` (column 0) is compared first.
pub fn table_rows(out_dir: &Path, table: &str) -> Vec<Vec<Value>> {
    let mut rows: Vec<Vec<Value>> = files_under(&out_dir.join(table))
        .iter()
        .flat_map(|path| read_parquet(path).0)
        .collect();
    rows.sort_by_key(|row| match row[0] {
        Value::Unsigned(seq) => seq,
        _ => panic!("column 0 is the seq"),
    });
    rows
}

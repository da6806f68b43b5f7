//! A digest of a table's rows that does not depend on how they were cut into batches or
//! row groups, so the rows built from the log and the rows read back from a file give the
//! same digest exactly when they hold the same values in the same order.
//!
//! Each column has its own blake3 hasher fed every value in row order: a presence byte
//! (0 for null), then the value — integers and floats as little-endian bytes (floats by bit
//! pattern, so -0.0 and NaN payloads count), strings and lists with their length first,
//! structs field by field. The table digest is blake3 over the row count and each column's
//! name and digest.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int64Type, TimestampMillisecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};

/// Raised for a column type the digest has no encoding for: a programmer error in
/// `tables.rs`, or a file that was not written by this tool.
#[derive(Debug, thiserror::Error)]
#[error("the digest has no encoding for columns of type {data_type}")]
pub struct UnsupportedType {
    pub data_type: DataType,
}

/// The running digest of one table (or one file of it).
pub struct TableDigest {
    names: Vec<String>,
    columns: Vec<blake3::Hasher>,
    rows: u64,
}

impl TableDigest {
    pub fn new(schema: &SchemaRef) -> TableDigest {
        TableDigest {
            names: schema
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .collect(),
            columns: schema
                .fields()
                .iter()
                .map(|_| blake3::Hasher::new())
                .collect(),
            rows: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Feeds a batch whose columns are those of the schema this digest was made for.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<(), UnsupportedType> {
        assert_eq!(
            batch.num_columns(),
            self.columns.len(),
            "a batch of another table reached this digest"
        );
        for (hasher, column) in self.columns.iter_mut().zip(batch.columns()) {
            hash_array(hasher, column.as_ref())?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The digest as 64 hex digits.
    pub fn finish(&self) -> String {
        let mut table = blake3::Hasher::new();
        table.update(&self.rows.to_le_bytes());
        for (name, column) in self.names.iter().zip(&self.columns) {
            table.update(&(name.len() as u64).to_le_bytes());
            table.update(name.as_bytes());
            table.update(column.finalize().as_bytes());
        }
        table.finalize().to_hex().to_string()
    }
}

fn hash_array(hasher: &mut blake3::Hasher, array: &dyn Array) -> Result<(), UnsupportedType> {
    macro_rules! primitive {
        ($type:ty) => {{
            // One update per array, not per value: blake3's per-call cost dominates for
            // the small values of a vector.
            let values = array.as_primitive::<$type>();
            let width =
                std::mem::size_of::<<$type as arrow_array::types::ArrowPrimitiveType>::Native>();
            let mut bytes = Vec::with_capacity(values.len() * (1 + width));
            for index in 0..values.len() {
                if values.is_null(index) {
                    bytes.push(0);
                } else {
                    bytes.push(1);
                    bytes.extend_from_slice(&values.value(index).to_le_bytes());
                }
            }
            hasher.update(&bytes);
        }};
    }
    match array.data_type() {
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::Float32 => primitive!(Float32Type),
        DataType::Float64 => primitive!(Float64Type),
        DataType::Timestamp(TimeUnit::Millisecond, _) => primitive!(TimestampMillisecondType),
        DataType::Boolean => {
            let values = array.as_boolean();
            for index in 0..values.len() {
                hasher.update(&[match (values.is_null(index), values.value(index)) {
                    (true, _) => 0,
                    (false, false) => 1,
                    (false, true) => 2,
                }]);
            }
        }
        DataType::Utf8 => {
            let values = array.as_string::<i32>();
            for index in 0..values.len() {
                if values.is_null(index) {
                    hasher.update(&[0]);
                } else {
                    let text = values.value(index);
                    hasher.update(&[1]);
                    hasher.update(&(text.len() as u64).to_le_bytes());
                    hasher.update(text.as_bytes());
                }
            }
        }
        DataType::List(_) => {
            let lists = array.as_list::<i32>();
            for index in 0..lists.len() {
                if lists.is_null(index) {
                    hasher.update(&[0]);
                } else {
                    let items = lists.value(index);
                    hasher.update(&[1]);
                    hasher.update(&(items.len() as u64).to_le_bytes());
                    hash_array(hasher, items.as_ref())?;
                }
            }
        }
        DataType::FixedSizeList(_, _) => {
            let lists = array.as_fixed_size_list();
            for index in 0..lists.len() {
                if lists.is_null(index) {
                    hasher.update(&[0]);
                } else {
                    let items = lists.value(index);
                    hasher.update(&[1]);
                    hasher.update(&(items.len() as u64).to_le_bytes());
                    hash_array(hasher, items.as_ref())?;
                }
            }
        }
        DataType::Struct(_) => {
            let rows = array.as_struct();
            for index in 0..rows.len() {
                if rows.is_null(index) {
                    hasher.update(&[0]);
                } else {
                    hasher.update(&[1]);
                    for field in rows.columns() {
                        hash_array(hasher, field.slice(index, 1).as_ref())?;
                    }
                }
            }
        }
        other => {
            return Err(UnsupportedType {
                data_type: other.clone(),
            });
        }
    }
    Ok(())
}

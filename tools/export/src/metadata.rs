//! The key-value metadata every exported file carries, so a reader holding only the file
//! can tie its rows to a verifiable checkpoint: check `weightlog.checkpoint`'s signature
//! against the validator's address, then prove any row's event against its root with
//! `weightlog prove inclusion`.

/// Version of the export's layout (tables, columns, metadata keys). Bumped when a column
/// changes meaning, so readers can tell old exports from new ones.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// The log's checkpoint origin: `weightlog/netuid-N/SIGNER/LOG_ID`.
pub const ORIGIN: &str = "weightlog.origin";
/// SS58 address of the hotkey that signs the log's checkpoints.
pub const SIGNER: &str = "weightlog.signer";
/// First seq of the export (inclusive).
pub const SEQ_FROM: &str = "weightlog.seq_from";
/// End of the export (exclusive): rows come from events `seq_from <= seq < seq_to`.
pub const SEQ_TO: &str = "weightlog.seq_to";
/// Size of the log at the signed checkpoint the export was cut from (at least `seq_to`).
pub const LOG_SIZE: &str = "weightlog.log_size";
/// Merkle root (hex) of the first `log_size` events, as signed.
pub const MERKLE_ROOT: &str = "weightlog.merkle_root";
/// The signed checkpoint's text form, as `weightlog checkpoint` prints it.
pub const CHECKPOINT: &str = "weightlog.checkpoint";
/// The event schema version of the log.
pub const SCHEMA_VERSION: &str = "weightlog.schema_version";
/// [`EXPORT_FORMAT_VERSION`].
pub const EXPORT_FORMAT: &str = "weightlog.export_format";
/// Which table the file belongs to.
pub const TABLE: &str = "weightlog.table";
/// Rows in this file.
pub const ROWS: &str = "weightlog.rows";
/// The file's rows' digest (see `digest.rs`), as built from the log.
pub const DIGEST: &str = "weightlog.digest";

//! The redb tables of a log and the keys of its `meta` table.
//!
//! **Architecture Invariant:** every key and value here has a fixed, platform-independent
//! encoding (redb's own little-endian integers, byte arrays, strings); no `usize`.

use redb::TableDefinition;

/// seq -> canonical event bytes.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// seq -> leaf hash (level 0 of the Merkle tree).
pub const LEAVES: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("leaves");
/// (level >= 1, index) -> root of the complete aligned subtree of 2^level leaves starting at
/// leaf `index << level`. Enough for the root of any size and any proof in O(log n) reads.
pub const TREE: TableDefinition<(u8, u64), &[u8; 32]> = TableDefinition::new("tree");
/// log size -> signed checkpoint text; one per durable commit.
pub const CHECKPOINTS: TableDefinition<u64, &str> = TableDefinition::new("checkpoints");
/// (timestamp_ms, event id) -> seq: the dedupe index that makes appends idempotent. The
/// timestamp leads the key because events arrive roughly in time order: inserts then land at
/// the right edge of the B-tree, and a commit dirties a few pages instead of one random page
/// per event (which is what a bare hash key costs once the index outgrows the cache).
pub const BY_ID: TableDefinition<(u64, &[u8; 32]), u64> = TableDefinition::new("by_id");
/// (challenge id, seq) -> (): every event of a challenge.
pub const BY_CHALLENGE: TableDefinition<(&str, u64), ()> = TableDefinition::new("by_challenge");
/// (uid, seq) -> (): every event about a uid.
pub const BY_UID: TableDefinition<(u16, u64), ()> = TableDefinition::new("by_uid");
/// projection name -> (seq covered, state hash, bincode state); written by the replay work.
pub const PROJECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("projections");
/// Log-wide facts; see the `META_*` keys.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Value: [`FORMAT`] as UTF-8. Identifies a weightlog file and its storage layout.
pub const META_FORMAT: &str = "format";
/// Value: the newest event schema version written, u16 little-endian.
pub const META_SCHEMA_VERSION: &str = "schema_version";
/// Value: the 16-byte log id.
pub const META_LOG_ID: &str = "log_id";
/// Value: the checkpoint origin as UTF-8.
pub const META_ORIGIN: &str = "origin";
/// Value: the 32-byte sr25519 public key that signs checkpoints.
pub const META_SIGNER: &str = "signer";

/// The storage layout this build writes and reads.
pub const FORMAT: &str = "weightlog-log/1";

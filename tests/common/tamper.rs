//! Tampering by hand, as a validator could do to its own file through redb.

use std::path::Path;

use redb::{Database, ReadableTable};
use weightlog::keys::Hotkey;
use weightlog::log::tables::{BY_ID, CHECKPOINTS, EVENTS, LEAVES, TREE};
use weightlog_schema::merkle::Frontier;
use weightlog_schema::{Checkpoint, SignedCheckpoint, event_id, leaf_hash};

pub fn with_table<F>(path: &Path, edit: F)
where
    F: FnOnce(&redb::WriteTransaction),
{
    let database = Database::open(path).unwrap();
    let transaction = database.begin_write().unwrap();
    edit(&transaction);
    transaction.commit().unwrap();
}

/// Recomputes leaves, tree nodes and the dedupe index from the (edited) events, as a
/// careful forger would; with `resign`, also re-signs every checkpoint with that key.
pub fn rebuild_everything(path: &Path, resign: Option<&Hotkey>) {
    with_table(path, |transaction| {
        let events: Vec<(u64, Vec<u8>)> = {
            let table = transaction.open_table(EVENTS).unwrap();
            table
                .iter()
                .unwrap()
                .map(|entry| {
                    let (seq, bytes) = entry.unwrap();
                    (seq.value(), bytes.value().to_vec())
                })
                .collect()
        };
        let mut leaves = transaction.open_table(LEAVES).unwrap();
        let mut tree = transaction.open_table(TREE).unwrap();
        let mut by_id = transaction.open_table(BY_ID).unwrap();
        let mut checkpoints = transaction.open_table(CHECKPOINTS).unwrap();
        let sizes: Vec<(u64, String)> = checkpoints
            .iter()
            .unwrap()
            .map(|entry| {
                let (size, text) = entry.unwrap();
                (size.value(), text.value().to_string())
            })
            .collect();
        let mut frontier = Frontier::new();
        for (seq, bytes) in &events {
            let timestamp_ms = weightlog_schema::decode(bytes).unwrap().timestamp_ms;
            by_id
                .insert((timestamp_ms, &event_id(bytes).0), *seq)
                .unwrap();
            for (level, index, hash) in frontier.push(leaf_hash(bytes)) {
                if level == 0 {
                    leaves.insert(index, &hash.0).unwrap();
                } else {
                    tree.insert((level as u8, index), &hash.0).unwrap();
                }
            }
            let checkpointed = sizes.iter().find(|(size, _)| *size == seq + 1);
            if let (Some(key), Some((size, text))) = (resign, checkpointed) {
                let old = SignedCheckpoint::parse(text).unwrap();
                let fresh = Checkpoint::new(old.checkpoint.origin, *size, frontier.root())
                    .unwrap()
                    .sign(key.public(), |message| key.sign(message));
                checkpoints.insert(*size, fresh.to_text().as_str()).unwrap();
            }
        }
    });
}

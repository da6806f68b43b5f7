//! `weightlog verify`: a sequential check of a whole log that names the first bad seq.
//!
//! It trusts nothing stored except the signer's public key in `meta` (which the checkpoints
//! must match, and which an auditor compares with the validator's SS58 address): every
//! event is validated, every leaf and tree node recomputed from the event bytes, every
//! checkpoint root recomputed and every checkpoint signature checked. The parallel auditor
//! that also recomputes weights is `weightlog replay verify`.

use redb::ReadableTable;
use serde::Serialize;
use weightlog_schema::event::Payload;
use weightlog_schema::merkle::Frontier;
use weightlog_schema::signature::PublicKey;
use weightlog_schema::{Hash, SignedCheckpoint, codec, event_id, leaf_hash};

use super::reader::LogReader;
use super::tables::*;
use super::{LogError, origin_for};

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub origin: String,
    pub signer: String,
    /// Events checked before the first problem (all of them when there is none).
    pub events_checked: u64,
    pub checkpoints_checked: u64,
    /// Root of the events checked.
    pub root: Hash,
    pub problem: Option<Problem>,
}

/// The first thing wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first seq that is bad, missing or not covered as it should be.
    pub seq: u64,
    pub reason: String,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event {}: {}", self.seq, self.reason)
    }
}

/// Checks every event, leaf, tree node, root and checkpoint signature, in seq order.
/// Storage errors are returned as errors; everything wrong with the content is a `Problem`.
pub fn verify_log(
    reader: &LogReader,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, LogError> {
    let meta = reader.meta();
    let snapshot = reader.snapshot()?;
    let transaction = snapshot.transaction();
    let events = transaction.open_table(EVENTS)?;
    let leaves = transaction.open_table(LEAVES)?;
    let tree = transaction.open_table(TREE)?;
    let by_id = transaction.open_table(BY_ID)?;
    let checkpoint_table = transaction.open_table(CHECKPOINTS)?;
    let mut checkpoints = checkpoint_table.iter()?.peekable();

    let mut report = VerifyReport {
        origin: meta.origin.clone(),
        signer: meta.signer.to_ss58(),
        events_checked: 0,
        checkpoints_checked: 0,
        root: Hash::empty_tree(),
        problem: None,
    };
    let mut frontier = Frontier::new();
    let mut last_checkpoint_size = 0u64;
    let fail = |report: &mut VerifyReport, frontier: &Frontier, seq: u64, reason: String| {
        report.events_checked = frontier.size();
        report.root = frontier.root();
        report.problem = Some(Problem { seq, reason });
    };

    for entry in events.iter()? {
        let (seq, bytes) = entry?;
        let (seq, bytes) = (seq.value(), bytes.value());
        let expected = frontier.size();
        if seq != expected {
            fail(
                &mut report,
                &frontier,
                expected,
                format!(
                    "missing: the log jumps from seq {} to seq {seq}; events were removed",
                    expected.wrapping_sub(1)
                ),
            );
            return Ok(report);
        }
        let event = match codec::decode(bytes) {
            Ok(event) => event,
            Err(error) => {
                fail(
                    &mut report,
                    &frontier,
                    seq,
                    format!("stored bytes are invalid: {error}"),
                );
                return Ok(report);
            }
        };
        if let Some(reason) = check_genesis(seq, &event.payload, Some((&meta.signer, &meta.origin)))
        {
            fail(&mut report, &frontier, seq, reason);
            return Ok(report);
        }
        let kind = event.kind();
        let leaf = leaf_hash(bytes);
        let stored_leaf = leaves.get(seq)?.map(|hash| Hash(*hash.value()));
        if stored_leaf != Some(leaf) {
            fail(
                &mut report,
                &frontier,
                seq,
                format!(
                    "{kind}: the stored leaf hash does not match the event bytes; the event was changed after it was written"
                ),
            );
            return Ok(report);
        }
        let dedupe_key = (event.timestamp_ms, &event_id(bytes).0);
        if by_id.get(dedupe_key)?.map(|stored| stored.value()) != Some(seq) {
            fail(
                &mut report,
                &frontier,
                seq,
                format!("{kind}: the dedupe index does not map this event's id to its seq"),
            );
            return Ok(report);
        }
        for (level, index, hash) in frontier.push(leaf) {
            if level == 0 {
                continue;
            }
            let stored = tree
                .get((level as u8, index))?
                .map(|node| Hash(*node.value()));
            if stored != Some(hash) {
                fail(
                    &mut report,
                    &frontier,
                    seq,
                    format!(
                        "the stored Merkle node at level {level}, index {index} does not match the events under it"
                    ),
                );
                return Ok(report);
            }
        }
        while let Some(next) = checkpoints.peek() {
            let stored_size = match next {
                Ok((size, _)) => size.value(),
                Err(_) => break,
            };
            if stored_size > frontier.size() {
                break;
            }
            let (size, text) = checkpoints
                .next()
                .transpose()?
                .map_or((0, String::new()), |(size, text)| {
                    (size.value(), text.value().to_string())
                });
            if let Some(reason) =
                check_checkpoint(size, &text, &frontier, &meta.signer, &meta.origin)
            {
                let first_seq = last_checkpoint_size;
                fail(
                    &mut report,
                    &frontier,
                    first_seq.min(seq),
                    format!(
                        "checkpoint at size {size}: {reason} (an event in seqs {first_seq}..={} was changed after signing)",
                        size.saturating_sub(1)
                    ),
                );
                return Ok(report);
            }
            last_checkpoint_size = size;
            report.checkpoints_checked += 1;
        }
        progress(seq + 1);
    }

    let size = frontier.size();
    if let Some(next) = checkpoints.next() {
        let (stored_size, _) = next?;
        let stored_size = stored_size.value();
        fail(
            &mut report,
            &frontier,
            size,
            format!(
                "missing: a signed checkpoint covers {stored_size} events but the log holds {size}; events {size}..={} were removed",
                stored_size.saturating_sub(1)
            ),
        );
        return Ok(report);
    }
    if size == 0 {
        fail(
            &mut report,
            &frontier,
            0,
            "missing: the log has no events, not even its genesis".into(),
        );
        return Ok(report);
    }
    if last_checkpoint_size != size {
        fail(
            &mut report,
            &frontier,
            last_checkpoint_size,
            format!(
                "events {last_checkpoint_size}..={} are not covered by any signed checkpoint",
                size - 1
            ),
        );
        return Ok(report);
    }
    report.events_checked = size;
    report.root = frontier.root();
    Ok(report)
}

/// Seq 0 must be the genesis and no other seq may be one; with the log's `identity`
/// (signer, origin), the genesis must also name that signer and origin. (An in-memory event
/// sequence audited without signatures has no identity.)
pub(crate) fn check_genesis(
    seq: u64,
    payload: &Payload,
    identity: Option<(&PublicKey, &str)>,
) -> Option<String> {
    match (seq, payload) {
        (0, Payload::LogOpened(opened)) => {
            let (signer, origin) = identity?;
            if opened.validator_hotkey.0 != signer.0 {
                return Some(format!(
                    "LogOpened names hotkey {} but the log is signed by {}",
                    opened.validator_hotkey,
                    signer.to_ss58()
                ));
            }
            let expected = origin_for(opened.netuid, signer, &opened.log_id);
            (expected != origin).then(|| {
                format!("LogOpened gives origin {expected} but the log's origin is {origin}")
            })
        }
        (0, other) => Some(format!(
            "the first event is {}, not LogOpened",
            other.kind()
        )),
        (_, Payload::LogOpened(_)) => Some("a second LogOpened; only seq 0 may open a log".into()),
        _ => None,
    }
}

fn check_checkpoint(
    stored_size: u64,
    text: &str,
    frontier: &Frontier,
    signer: &PublicKey,
    origin: &str,
) -> Option<String> {
    let checkpoint = match SignedCheckpoint::parse(text) {
        Ok(checkpoint) => checkpoint,
        Err(error) => return Some(error.to_string()),
    };
    if let Err(error) = checkpoint.verify(signer) {
        return Some(error.to_string());
    }
    let body = &checkpoint.checkpoint;
    if body.size != stored_size || body.size != frontier.size() {
        return Some(format!(
            "it is stored under size {stored_size} but says size {}",
            body.size
        ));
    }
    if body.origin != origin {
        return Some(format!("its origin is {}, not {origin}", body.origin));
    }
    let root = frontier.root();
    (body.root != root).then(|| {
        format!(
            "the signed root is {} but the events give {root}",
            body.root
        )
    })
}

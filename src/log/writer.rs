//! The single writer thread and its group commit.
//!
//! Callers send encoded batches over a bounded channel (backpressure). The writer takes
//! what is queued — up to [`COMMIT_BATCH_EVENTS_MAX`] events — into one write transaction:
//! it assigns dense seqs, stores events, leaves, tree nodes and indexes, signs a checkpoint
//! of the new size, commits with `Durability::Immediate`, and only then acknowledges each
//! caller with its seqs. A failed commit poisons the writer: the in-memory frontier may no
//! longer match the file, so nothing more is written until the log is reopened.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};
use redb::{Database, ReadableTable};
use weightlog_schema::Checkpoint;
use weightlog_schema::merkle::Frontier;

use super::open::WriterState;
use super::reader::Notifier;
use super::tables::*;
use super::{EncodedEvent, LogError, LogMeta};
use crate::keys::Hotkey;

/// Most requests waiting for the writer; callers block beyond it (backpressure).
pub const QUEUE_REQUESTS_MAX: usize = 1024;
/// Most events the writer puts in one commit when draining the queue. A single request
/// larger than this is still committed whole, because a batch is atomic.
pub const COMMIT_BATCH_EVENTS_MAX: usize = 8192;
/// Longest the writer waits for the callers of its previous group to come back before it
/// commits a smaller group, in microseconds. Well below one fsync (~250-500 us here), so the
/// wait costs less than the commit it saves; see `gather`.
pub const GROUP_WAIT_US_MAX: u64 = 100;

type Reply = Result<Vec<u64>, LogError>;

struct Request {
    events: Vec<EncodedEvent>,
    reply: Sender<Reply>,
}

enum Message {
    Append(Request),
    Shutdown,
}

pub(super) struct WriterHandle {
    database: Arc<Database>,
    sender: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    pub(super) fn spawn(
        database: Arc<Database>,
        meta: LogMeta,
        hotkey: Hotkey,
        state: WriterState,
        notifier: Arc<Notifier>,
    ) -> Self {
        let (sender, receiver) = bounded(QUEUE_REQUESTS_MAX);
        notifier.publish(state.frontier.size());
        let writer = Writer {
            database: database.clone(),
            meta,
            hotkey,
            frontier: state.frontier,
            notifier,
            poisoned: None,
        };
        let thread = std::thread::Builder::new()
            .name("weightlog-writer".into())
            .spawn(move || writer.run(receiver))
            .ok();
        Self {
            database,
            sender,
            thread,
        }
    }

    pub(super) fn database(&self) -> &Database {
        &self.database
    }

    pub(super) fn append(&self, events: Vec<EncodedEvent>) -> Reply {
        let (reply, answer) = bounded(1);
        self.sender
            .send(Message::Append(Request { events, reply }))
            .map_err(|_| LogError::WriterStopped)?;
        answer.recv().map_err(|_| LogError::WriterStopped)?
    }

    pub(super) fn shutdown(mut self) -> Result<(), LogError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), LogError> {
        // The writer finishes everything queued before the shutdown message.
        let _ = self.sender.send(Message::Shutdown);
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| LogError::WriterStopped),
            None => Ok(()),
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

struct Writer {
    database: Arc<Database>,
    meta: LogMeta,
    hotkey: Hotkey,
    frontier: Frontier,
    notifier: Arc<Notifier>,
    poisoned: Option<String>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Message>) {
        let mut last_group_requests = 1;
        while let Ok(message) = receiver.recv() {
            let Message::Append(first) = message else {
                return;
            };
            let (group, shutdown) = gather(&receiver, first, last_group_requests);
            last_group_requests = group.len();
            self.commit_group(group);
            if shutdown {
                return;
            }
        }
    }
}

/// Drains the queue into one group after `first`. When the previous group had several
/// callers, they are likely just waking up from its acknowledgement and about to send again:
/// waiting up to [`GROUP_WAIT_US_MAX`] for as many requests as last time turns several
/// fsyncs into one. A lone caller (previous group of one) never waits.
fn gather(
    receiver: &Receiver<Message>,
    first: Request,
    last_group_requests: usize,
) -> (Vec<Request>, bool) {
    let mut events = first.events.len();
    let mut group = vec![first];
    let deadline = (last_group_requests > 1)
        .then(|| std::time::Instant::now() + std::time::Duration::from_micros(GROUP_WAIT_US_MAX));
    while events < COMMIT_BATCH_EVENTS_MAX {
        match receiver.try_recv() {
            Ok(Message::Append(request)) => {
                events += request.events.len();
                group.push(request);
            }
            Ok(Message::Shutdown) => return (group, true),
            Err(_) => match deadline {
                Some(deadline)
                    if group.len() < last_group_requests
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::yield_now();
                }
                _ => break,
            },
        }
    }
    (group, false)
}

impl Writer {
    fn commit_group(&mut self, group: Vec<Request>) {
        if let Some(reason) = &self.poisoned {
            for request in group {
                let _ = request.reply.send(Err(LogError::Poisoned {
                    reason: reason.clone(),
                }));
            }
            return;
        }
        let before = self.frontier.clone();
        match self.write(&group) {
            Ok(seqs) => {
                self.notifier.publish(self.frontier.size());
                for (request, seqs) in group.into_iter().zip(seqs) {
                    let _ = request.reply.send(Ok(seqs));
                }
            }
            Err(error) => {
                self.frontier = before;
                let reason = error.to_string();
                self.poisoned = Some(reason.clone());
                for request in group {
                    let _ = request.reply.send(Err(LogError::Poisoned {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// One durable write transaction for a group of requests; returns each request's seqs.
    fn write(&mut self, group: &[Request]) -> Result<Vec<Vec<u64>>, LogError> {
        let mut transaction = self.database.begin_write()?;
        transaction.set_durability(redb::Durability::Immediate)?;
        let size_before = self.frontier.size();
        let mut all_seqs = Vec::with_capacity(group.len());
        {
            let mut events = transaction.open_table(EVENTS)?;
            let mut leaves = transaction.open_table(LEAVES)?;
            let mut tree = transaction.open_table(TREE)?;
            let mut by_id = transaction.open_table(BY_ID)?;
            let mut by_challenge = transaction.open_table(BY_CHALLENGE)?;
            let mut by_uid = transaction.open_table(BY_UID)?;
            for request in group {
                let mut seqs = Vec::with_capacity(request.events.len());
                for event in &request.events {
                    // Idempotence: the same bytes are the same event, already in the log
                    // (or earlier in this very transaction).
                    let dedupe_key = (event.timestamp_ms, &event.id.0);
                    if let Some(existing) = by_id.get(dedupe_key)? {
                        seqs.push(existing.value());
                        continue;
                    }
                    let seq = self.frontier.size();
                    events.insert(seq, event.bytes.as_slice())?;
                    by_id.insert(dedupe_key, seq)?;
                    if let Some(challenge_id) = &event.challenge_id {
                        by_challenge.insert((challenge_id.as_str(), seq), ())?;
                    }
                    for uid in &event.uids {
                        by_uid.insert((*uid, seq), ())?;
                    }
                    let leaf = weightlog_schema::leaf_hash(&event.bytes);
                    for (level, index, hash) in self.frontier.push(leaf) {
                        if level == 0 {
                            leaves.insert(index, &hash.0)?;
                        } else {
                            // Levels are below 64 because sizes are u64.
                            tree.insert((level as u8, index), &hash.0)?;
                        }
                    }
                    seqs.push(seq);
                }
                all_seqs.push(seqs);
            }
            let size = self.frontier.size();
            if size != size_before {
                let checkpoint =
                    Checkpoint::new(self.meta.origin.clone(), size, self.frontier.root())?;
                let signed = checkpoint.sign(self.meta.signer, |message| self.hotkey.sign(message));
                let mut checkpoints = transaction.open_table(CHECKPOINTS)?;
                checkpoints.insert(size, signed.to_text().as_str())?;
            }
        }
        transaction.commit()?;
        Ok(all_seqs)
    }
}

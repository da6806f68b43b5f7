//! `init`, `append`, `inspect`, `cat`, `verify`.

use std::io::{BufRead, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use serde_json::json;
use weightlog_schema::event::LogId;
use weightlog_schema::merkle;
use weightlog_schema::signature::PublicKey;
use weightlog_schema::{
    EVENT_BYTES_MAX, Event, Hash, Payload, SCHEMA_VERSION, SequencedEvent, event_id,
};

use super::{
    AppendArgs, CatArgs, CliError, InitArgs, InspectArgs, RecoverArgs, VerifyArgs, json_value,
};
use crate::audit::{
    ADMISSION_CHECKPOINT, Admission, AuditOptions, MemorySource, Verdict, admission, audit,
};
use crate::log::{
    APPEND_BATCH_EVENTS_MAX, EncodedEvent, Genesis, Log, LogError, LogReader, Planned, verify_log,
};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

pub(super) fn init(args: InitArgs) -> Result<(), CliError> {
    let parameters_json = match &args.parameters {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
            serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|error| {
                CliError::Input(format!(
                    "--parameters {}: not valid JSON: {error}",
                    path.display()
                ))
            })?;
            text
        }
        None => "{}".to_string(),
    };
    let hotkey = args.wallet.load()?;
    let mut log_id = [0u8; 16];
    OsRng.fill_bytes(&mut log_id);
    let genesis = Genesis {
        netuid: args.netuid,
        profile: args.profile,
        parameters_json,
        timestamp_ms: now_ms(),
        log_id: LogId(log_id),
    };
    if let Some(reason) = unusable_parameters(&genesis, &PublicKey(hotkey.public_key()))? {
        return Err(CliError::Input(match &args.parameters {
            Some(path) => format!(
                "--parameters {}: {reason}; no log was created",
                path.display()
            ),
            None => format!(
                "profile `{}` needs --parameters FILE ({reason}); no log was created",
                genesis.profile
            ),
        }));
    }
    let log = Log::create(&args.log, hotkey, genesis)?;
    println!("created {}", args.log.display());
    println!("origin  {}", log.meta().origin);
    println!("signer  {}", log.meta().signer.to_ss58());
    log.close()?;
    Ok(())
}

/// Why `replay verify` would call a log with this genesis invalid at seq 0 (parameters the
/// named profile's projection cannot use), if it would. A profile with no projection takes
/// any JSON.
fn unusable_parameters(genesis: &Genesis, signer: &PublicKey) -> Result<Option<String>, CliError> {
    let source = MemorySource::new(&[genesis.event(signer)])
        .map_err(|error| CliError::Input(error.to_string()))?;
    let (report, _) = audit(&source, &AuditOptions::default(), &|_| {})
        .map_err(|error| CliError::Input(error.to_string()))?;
    Ok(match report.verdict {
        Verdict::Invalid(finding) | Verdict::Tampered(finding) => Some(finding.reason),
        Verdict::Match | Verdict::Diverged(_) => None,
    })
}

/// The longest line `append` reads: eight times [`EVENT_BYTES_MAX`], more than any event's
/// JSON needs (escaped text, numbers written out), so that a huge line is refused as it is
/// read rather than held in memory whole.
pub(crate) const JSONL_LINE_BYTES_MAX: usize = 8 * EVENT_BYTES_MAX;

/// One line of an append batch: an event, alone or in the form `cat --json` prints it (with
/// its `seq` and `id`), so that `cat --json` output appends back as it is. The envelope is
/// [`Event`]'s, field for field (a field added there fails to compile below).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: Option<u64>,
    id: Option<Hash>,
    schema_version: Option<u16>,
    timestamp_ms: u64,
    payload: Payload,
}

/// An event of a batch, with what its line claimed about it.
pub(crate) struct BatchEvent {
    pub event: Event,
    /// The line's number in the file, counting blank lines.
    pub line: u64,
    /// The seq the line gives, to be checked against where the event lands.
    pub seq: Option<u64>,
    /// The id the line gives, to be checked against the event's canonical bytes.
    pub id: Option<Hash>,
}

/// Reads a JSON Lines batch; the error names the first bad line.
pub(crate) fn read_jsonl(mut reader: impl BufRead) -> Result<Vec<BatchEvent>, CliError> {
    let mut events = Vec::new();
    let mut bytes = Vec::new();
    let mut number = 0u64;
    loop {
        bytes.clear();
        let read = (&mut reader)
            .take(JSONL_LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut bytes);
        number += 1;
        if read.map_err(|error| CliError::Input(format!("line {number}: cannot read: {error}")))?
            == 0
        {
            break;
        }
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        } else if bytes.len() > JSONL_LINE_BYTES_MAX {
            return Err(CliError::Input(format!(
                "line {number}: longer than {JSONL_LINE_BYTES_MAX} bytes, more than any event's \
                 JSON (events are at most {EVENT_BYTES_MAX} bytes)"
            )));
        }
        let line = std::str::from_utf8(&bytes)
            .map_err(|error| CliError::Input(format!("line {number}: not UTF-8: {error}")))?;
        // A byte order mark, as some Windows tools write at the start of a file.
        let line = match number {
            1 => line.strip_prefix('\u{feff}').unwrap_or(line),
            _ => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        if events.len() == APPEND_BATCH_EVENTS_MAX {
            return Err(CliError::Input(format!(
                "line {number}: a batch holds at most {APPEND_BATCH_EVENTS_MAX} events; split the file"
            )));
        }
        let parsed: Line = serde_json::from_str(line).map_err(|error| {
            // serde's own location is always "line 1" within one JSON line; give the column.
            let message = error.to_string();
            let message = message
                .rfind(" at line ")
                .map_or(message.as_str(), |end| &message[..end]);
            CliError::Input(format!(
                "line {number}, column {}: {message}",
                error.column()
            ))
        })?;
        events.push(BatchEvent {
            event: Event {
                schema_version: parsed.schema_version.unwrap_or(SCHEMA_VERSION),
                timestamp_ms: parsed.timestamp_ms,
                payload: parsed.payload,
            },
            line: number,
            seq: parsed.seq,
            id: parsed.id,
        });
    }
    Ok(events)
}

pub(super) fn append(args: AppendArgs) -> Result<(), CliError> {
    let batch = if args.jsonl.as_os_str() == "-" {
        read_jsonl(std::io::stdin().lock())?
    } else {
        let file = std::fs::File::open(&args.jsonl).map_err(CliError::io(&args.jsonl))?;
        read_jsonl(std::io::BufReader::new(file))?
    };
    if batch.is_empty() {
        return Err(CliError::Input(format!(
            "{}: no events to append",
            args.jsonl.display()
        )));
    }
    let refused = |index: usize, reason: &dyn std::fmt::Display| {
        CliError::Input(format!(
            "line {}: {reason}; nothing was appended",
            batch[index].line
        ))
    };
    // Encoded (and checked by the codec) before the log is opened for writing.
    let encoded = batch
        .iter()
        .enumerate()
        .map(|(index, given)| {
            let encoded =
                EncodedEvent::new(&given.event).map_err(|error| refused(index, &error))?;
            match given.id {
                Some(id) if id != encoded.id => Err(refused(
                    index,
                    &format!(
                        "its id is {id}, but its content's is {}: the line changed after it was \
                         written (a JSON tool that rounds integers above 2^53, as jq does, \
                         changes it so)",
                        encoded.id
                    ),
                )),
                _ => Ok(encoded),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hotkey = args.wallet.load()?;
    let log = Log::open(&args.log, hotkey)?;
    let size_before = log.reader().size()?;
    let planned = log.reader().snapshot()?.planned_seqs(&encoded)?;
    for (index, (given, planned)) in batch.iter().zip(&planned).enumerate() {
        if let Some(seq) = given.seq
            && seq != planned.seq()
        {
            let place = match planned {
                Planned::New(at) => format!("it would be appended at seq {at}"),
                Planned::InLog(at) => format!("the log holds it at seq {at}"),
                Planned::Repeated(at) => format!("it repeats the batch's event for seq {at}"),
            };
            return Err(refused(
                index,
                &format!(
                    "it gives seq {seq}, but {place}; leave `seq` out to append it wherever it falls"
                ),
            ));
        }
    }
    let admitted =
        admission(log.reader(), &encoded).map_err(|error| CliError::Input(error.to_string()))?;
    match admitted.admission {
        Admission::Admitted => {}
        Admission::Refused { index, reason } => {
            return Err(refused(
                index,
                &format!("the log's profile refuses this event: {reason}"),
            ));
        }
        Admission::Unchecked(why) => {
            eprintln!("note: the new events were not checked against a projection: {why}");
        }
    }
    let seqs = match log.append_encoded(encoded) {
        Ok(seqs) => seqs,
        Err(LogError::BadEvent { index, source }) => return Err(refused(index, &source)),
        Err(error) => return Err(error.into()),
    };
    let size = log.reader().size()?;
    println!("{}", append_summary(&seqs, size_before, size));
    // Where the next append's check resumes. The events are durable already, so failing to
    // keep it costs the next append a whole-log fold, nothing more.
    if let Some(checkpoint) = admitted.checkpoint {
        let kept = checkpoint
            .to_bytes()
            .map_err(|error| error.to_string())
            .and_then(|bytes| {
                log.store_projection_bytes(ADMISSION_CHECKPOINT, &bytes)
                    .map_err(|error| error.to_string())
            });
        if let Err(reason) = kept {
            eprintln!(
                "note: the check's checkpoint was not kept ({reason}); the next append folds the whole log"
            );
        }
    }
    log.close()?;
    Ok(())
}

/// What an append did, by line: the new events and their seqs, the lines that named an
/// event already in the log (appends are idempotent) and the lines that repeated another
/// line of the same batch.
fn append_summary(seqs: &[u64], size_before: u64, size: u64) -> String {
    let new = size - size_before;
    let already = seqs.iter().filter(|seq| **seq < size_before).count() as u64;
    let repeated = seqs.len() as u64 - new - already;
    let mut parts = vec![match new {
        0 => "0 new".to_string(),
        1 => format!("1 new at seq {size_before}"),
        _ => format!("{new} new at seqs {size_before}..={}", size - 1),
    }];
    if already > 0 {
        parts.push(format!("{already} already in the log"));
    }
    if repeated > 0 {
        parts.push(format!("{repeated} repeated in this batch"));
    }
    format!(
        "{} events: {}; log size {size}",
        seqs.len(),
        parts.join(", ")
    )
}

pub(super) fn inspect(args: InspectArgs) -> Result<(), CliError> {
    let reader = LogReader::open(&args.log)?;
    let snapshot = reader.snapshot()?;
    let size = snapshot.size()?;
    let root = merkle::root(&snapshot.stored_tree()?, size)?;
    let checkpoint = snapshot.last_checkpoint()?;
    let checkpoint_status = match &checkpoint {
        None => "none".to_string(),
        Some(checkpoint) => match checkpoint.verify(&reader.meta().signer) {
            Ok(()) if checkpoint.checkpoint.root == root && checkpoint.checkpoint.size == size => {
                "signature valid, matches the stored root".to_string()
            }
            Ok(()) => "signature valid, but does NOT match the stored tree".to_string(),
            Err(error) => format!("INVALID: {error}"),
        },
    };
    let counts = snapshot.kind_counts()?;
    if args.json {
        let by_kind: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(kind, count)| (kind.name().to_string(), json!(count)))
            .collect();
        let summary = json!({
            "path": args.log,
            "origin": reader.meta().origin,
            "signer": reader.meta().signer.to_ss58(),
            "log_id": reader.meta().log_id.to_hex(),
            "schema_version": reader.meta().schema_version,
            "size": size,
            "root": root,
            "last_checkpoint": checkpoint.as_ref().map(|c| c.to_text()),
            "last_checkpoint_status": checkpoint_status,
            "counts_by_kind": by_kind,
        });
        println!("{summary:#}");
        return Ok(());
    }
    println!("log        {}", args.log.display());
    println!("origin     {}", reader.meta().origin);
    println!("signer     {}", reader.meta().signer.to_ss58());
    println!("size       {size}");
    println!("root       {root}");
    match &checkpoint {
        Some(checkpoint) => println!(
            "checkpoint size {} root {} ({checkpoint_status})",
            checkpoint.checkpoint.size, checkpoint.checkpoint.root
        ),
        None => println!("checkpoint none"),
    }
    println!("events by kind:");
    for (kind, count) in counts {
        if count > 0 {
            println!("  {:<22} {count}", kind.name());
        }
    }
    Ok(())
}

/// Most events `cat` holds in memory at once.
const CAT_CHUNK_EVENTS: u64 = 4096;

pub(super) fn cat(args: CatArgs) -> Result<(), CliError> {
    let reader = LogReader::open(&args.log)?;
    let snapshot = reader.snapshot()?;
    let to = args.to.unwrap_or(u64::MAX).min(snapshot.size()?);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut from = args.from;
    while from < to {
        let chunk_end = to.min(from.saturating_add(CAT_CHUNK_EVENTS));
        let mut failure = None;
        snapshot.for_each_raw(from, chunk_end, |seq, bytes| {
            let event = weightlog_schema::decode(bytes).map_err(|error| LogError::Corrupt {
                seq,
                reason: error.to_string(),
            })?;
            let written = if args.json {
                let line = SequencedEvent {
                    seq,
                    id: event_id(bytes),
                    event,
                };
                serde_json::to_writer(&mut out, &line)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            } else {
                writeln!(
                    out,
                    "{seq}\t{}\t{}\t{}",
                    event.timestamp_ms,
                    event.kind(),
                    summary(&event)
                )
            };
            if let Err(error) = written {
                failure = Some(error);
            }
            Ok(())
        })?;
        if let Some(error) = failure {
            // A closed pipe (`weightlog cat | head`) is a normal way to stop reading.
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(CliError::Io {
                path: "stdout".into(),
                source: error,
            });
        }
        from = chunk_end;
    }
    out.flush().or_else(|error| match error.kind() {
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(CliError::Io {
            path: "stdout".into(),
            source: error,
        }),
    })
}

/// One short human line about an event.
fn summary(event: &Event) -> String {
    use weightlog_schema::Payload::*;
    match &event.payload {
        LogOpened(e) => format!(
            "netuid {} profile {} signer {}",
            e.netuid, e.profile, e.validator_hotkey
        ),
        ProfileChanged(e) => format!("profile {}", e.profile),
        MetagraphObserved(e) => format!("block {} neurons {}", e.block, e.neurons.len()),
        EnvironmentRegistered(e) => format!("{} {} ({:?})", e.name, e.version, e.environment_kind),
        ChallengeIssued(e) => format!(
            "challenge {} env {} uids {}",
            e.challenge_id,
            e.environment,
            e.target_uids.len()
        ),
        ResponseReceived(e) => format!(
            "challenge {} uid {} latency {} ms",
            e.challenge_id, e.uid, e.latency_ms
        ),
        EmbeddingComputed(e) => format!(
            "challenge {} uid {} dims {}",
            e.challenge_id,
            e.uid,
            e.vector.len()
        ),
        EvaluationRecorded(e) => format!(
            "challenge {} uid {} score {}",
            e.challenge_id, e.uid, e.score
        ),
        ExternalScoreRecorded(e) => format!(
            "source {} block {} scores {}",
            e.source,
            e.block,
            e.scores.len()
        ),
        GroundTruthRevealed(e) => format!("challenge {}", e.challenge_id),
        WeightsComputed(e) => format!(
            "block {} mechanism {} uids {}",
            e.block,
            e.mechanism,
            e.u16_uids.len()
        ),
        WeightsSubmitted(e) => format!("decision {} call {:?}", e.decision_seq, e.call),
    }
}

pub(super) fn recover(args: RecoverArgs) -> Result<(), CliError> {
    let size = LogReader::recover(&args.log)?;
    println!(
        "{}: {size} events, open for reading; `weightlog verify` checks them",
        args.log.display()
    );
    Ok(())
}

pub(super) fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let reader = LogReader::open(&args.log)?;
    let report = verify_log(&reader, |_| {})?;
    if args.json {
        println!("{:#}", json_value(&report)?);
    } else {
        println!("origin       {}", report.origin);
        println!("signer       {}", report.signer);
        println!("events       {}", report.events_checked);
        println!("checkpoints  {}", report.checkpoints_checked);
        println!("root         {}", report.root);
    }
    match &report.problem {
        None => {
            if !args.json {
                println!("ok: every event, leaf, root and checkpoint signature checks out");
            }
            Ok(())
        }
        Some(problem) => Err(CliError::Invalid(format!("log is invalid: {problem}"))),
    }
}

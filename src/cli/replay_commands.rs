//! `replay verify`: the auditor's command.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::output::{check_replaceable, replace_file};
use super::{CliError, ReplayCommand, ReplayVerifyArgs, json_value};
use crate::audit::{self, AuditCheckpoint, AuditOptions, AuditReport, LogSource, Verdict};

pub(super) fn replay(command: ReplayCommand) -> Result<(), CliError> {
    match command {
        ReplayCommand::Verify(args) => verify(args),
    }
}

#[cfg(feature = "embed")]
fn reembedder(backend: &str) -> Result<std::sync::Arc<dyn audit::Reembedder>, CliError> {
    let backend: crate::embed::Backend = backend.parse()?;
    Ok(std::sync::Arc::new(crate::embed::Embedder::from_env(
        backend,
    )?))
}

#[cfg(not(feature = "embed"))]
fn reembedder(_backend: &str) -> Result<std::sync::Arc<dyn audit::Reembedder>, CliError> {
    Err(CliError::Input(
        "--re-embed needs the embedder: this weightlog was built without its `embed` feature"
            .into(),
    ))
}

const CHECKPOINT_FILE: &str = "an audit checkpoint";

fn is_audit_checkpoint(bytes: &[u8]) -> bool {
    AuditCheckpoint::from_bytes(bytes).is_ok()
}

fn verify(args: ReplayVerifyArgs) -> Result<(), CliError> {
    let re_embed = if args.re_embed {
        Some(reembedder(&args.backend)?)
    } else {
        None
    };
    let from_checkpoint = match &args.from_checkpoint {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(CliError::io(path))?;
            Some(AuditCheckpoint::from_bytes(&bytes).map_err(|error| {
                CliError::Input(format!("--from-checkpoint {}: {error}", path.display()))
            })?)
        }
        None => None,
    };
    // Before the audit, which may take long, rather than after it.
    if let Some(path) = &args.save_checkpoint {
        check_replaceable(path, CHECKPOINT_FILE, is_audit_checkpoint)?;
    }
    let threads = match args.threads {
        Some(threads) => threads,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let options = AuditOptions {
        threads,
        until: args.until,
        re_evaluate: args.re_evaluate,
        from_checkpoint,
        decision_lag_events: args.decision_lag,
        re_embed,
        save_checkpoint: args.save_checkpoint.is_some(),
    };
    let source = LogSource::open(&args.log)?;
    let size = source.reader().size()?;

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} verifying [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let progress = |position: u64| {
        if let Some(bar) = &bar {
            bar.set_position(position);
        }
    };
    let started = Instant::now();
    let (report, saved) = audit::audit(&source, &options, &progress)
        .map_err(|error| CliError::Input(error.to_string()))?;
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let saved = saved.filter(|_| report.is_match());
    if let (Some(path), Some(saved)) = (&args.save_checkpoint, &saved) {
        let bytes = saved
            .to_bytes()
            .map_err(|error| CliError::Input(error.to_string()))?;
        replace_file(path, &bytes, CHECKPOINT_FILE, is_audit_checkpoint)?;
    }
    let not_saved = match (&args.save_checkpoint, &saved) {
        (Some(_), None) => Some(why_not_saved(&report, args.decision_lag)),
        _ => None,
    };
    if args.json {
        let mut value = json_value(&report)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("threads".into(), threads.into());
            map.insert("elapsed_ms".into(), (elapsed.as_millis() as u64).into());
            if let Some(path) = &args.save_checkpoint {
                map.insert(
                    "checkpoint_saved".into(),
                    json!(
                        saved
                            .as_ref()
                            .map(|saved| { json!({"path": path, "next_seq": saved.next_seq()}) })
                    ),
                );
            }
            if let Some(reason) = &not_saved {
                map.insert("checkpoint_not_saved".into(), json!(reason));
            }
        }
        println!("{value:#}");
    } else {
        print_summary(&report, args.until, threads, elapsed.as_secs_f64());
        if let (Some(path), Some(saved)) = (&args.save_checkpoint, &saved) {
            println!(
                "saved        audit checkpoint at seq {} to {}",
                saved.next_seq(),
                path.display()
            );
        }
        if let Some(reason) = &not_saved {
            println!("saved        nothing: {reason}");
        }
    }
    match &report.verdict {
        Verdict::Match => Ok(()),
        Verdict::Tampered(finding) => Err(CliError::Invalid(format!("log tampered at {finding}"))),
        Verdict::Invalid(finding) => Err(CliError::Invalid(format!(
            "log invalid for its profile at {finding}"
        ))),
        Verdict::Diverged(finding) => Err(CliError::Diverged(format!(
            "weights, evaluations or embeddings diverge at {finding}"
        ))),
    }
}

/// Why an audit asked to save a checkpoint saved none.
fn why_not_saved(report: &AuditReport, decision_lag: u64) -> String {
    if !report.is_match() {
        "an audit that did not match saves no checkpoint".into()
    } else if report.state_hash.is_none() {
        "the log's profile has no projection whose state a checkpoint could hold".into()
    } else {
        format!(
            "the checkpoint goes --decision-lag ({decision_lag}) events before the fold limit \
             ({}), and there is no projection state there; audit a longer log or lower \
             --decision-lag",
            report.folded_to
        )
    }
}

/// "1 thread", "2 threads".
fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn print_summary(report: &AuditReport, until: Option<u64>, threads: usize, seconds: f64) {
    println!("origin       {}", report.origin);
    println!("signer       {}", report.signer);
    println!(
        "events       {} of {} checked from seq {}, {} signed checkpoints",
        report.events_checked, report.log_size, report.resumed_from, report.checkpoints_checked
    );
    if until.is_some() && report.folded_to < report.log_size {
        println!(
            "until        seq {}: decisions and evaluations from seq {} on were not checked",
            report.folded_to.saturating_sub(1),
            report.folded_to
        );
    }
    println!("root         {} at size {}", report.root, report.root_size);
    match &report.state_hash {
        Some(hash) => println!(
            "projection   {} over seqs below {}, state hash {hash}",
            report.projection, report.folded_to
        ),
        None => match &report.verdict {
            Verdict::Invalid(finding) => println!(
                "projection   stopped at seq {}: not valid for the profile (see the verdict), so \
                 no state hash",
                finding.seq
            ),
            _ => println!("projection   none: the log's profile has no projection to fold"),
        },
    }
    println!(
        "decisions    {} recomputed, {} differ",
        report.decisions_checked, report.decisions_diverged
    );
    println!(
        "evaluations  {} re-run, {} differ, {} not re-runnable",
        report.evaluations_checked, report.evaluations_diverged, report.evaluations_not_rerun
    );
    if !cfg!(feature = "sandbox") && report.evaluations_not_rerun > 0 {
        println!(
            "             (this build has no sandbox: evaluations that run a miner's program \
             are not re-run)"
        );
    }
    if report.embeddings_checked + report.embeddings_not_rerun > 0 {
        println!(
            "embeddings   {} re-embedded, {} outside the tolerance, {} not re-run (another model or no text)",
            report.embeddings_checked, report.embeddings_diverged, report.embeddings_not_rerun
        );
    }
    let rate = if seconds > 0.0 {
        report.events_checked as f64 / seconds
    } else {
        0.0
    };
    println!(
        "took         {seconds:.2} s ({rate:.0} events/s, {})",
        counted(threads as u64, "thread", "threads")
    );
    match &report.verdict {
        Verdict::Match => match until {
            Some(_) => println!(
                "verdict      MATCH: untampered, and every decision up to seq {} follows from \
                 the log",
                report.folded_to.saturating_sub(1)
            ),
            None => {
                println!("verdict      MATCH: untampered, and every decision follows from the log")
            }
        },
        Verdict::Tampered(finding) => {
            println!("verdict      TAMPERED at {finding}");
        }
        Verdict::Invalid(finding) => {
            println!("verdict      INVALID (signed, but not valid for its profile) at {finding}");
        }
        Verdict::Diverged(finding) => {
            println!(
                "verdict      DIVERGED ({}); first at {finding}",
                counted(report.findings, "finding", "findings")
            );
            if let Some(recorded) = &finding.recorded {
                println!("recorded     {recorded}");
            }
            if let Some(recomputed) = &finding.recomputed {
                println!("recomputed   {recomputed}");
            }
        }
    }
}

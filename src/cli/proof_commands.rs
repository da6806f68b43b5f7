//! `checkpoint`, `prove`, `verify-proof`.

use weightlog_schema::SignedCheckpoint;
use weightlog_schema::bundle::{ProofBundle, Verified};
use weightlog_schema::signature::PublicKey;

use super::output::replace_file;
use super::{CheckpointArgs, CliError, ProveCommand, VerifyProofArgs};
use crate::log::LogReader;

pub(super) fn checkpoint(args: CheckpointArgs) -> Result<(), CliError> {
    let reader = LogReader::open(&args.log)?;
    let snapshot = reader.snapshot()?;
    let text = match args.size {
        // The error names the checkpointed sizes around it, as `prove` does.
        Some(size) => snapshot.checkpoint_text(size)?,
        None => snapshot
            .last_checkpoint()?
            .ok_or_else(|| CliError::Input("the log has no checkpoint yet".into()))?
            .to_text(),
    };
    print!("{text}");
    Ok(())
}

pub(super) fn prove(command: ProveCommand) -> Result<(), CliError> {
    let (bundle, out) = match command {
        ProveCommand::Inclusion {
            log,
            seq,
            size,
            out,
        } => {
            let reader = LogReader::open(&log)?;
            (reader.snapshot()?.inclusion_bundle(seq, size)?, out)
        }
        ProveCommand::Consistency { log, old, new, out } => {
            let reader = LogReader::open(&log)?;
            (reader.snapshot()?.consistency_bundle(old, new)?, out)
        }
    };
    let text = serde_json::to_string_pretty(&bundle)
        .map_err(|error| CliError::Input(format!("cannot write the proof as JSON: {error}")))?;
    match out {
        Some(path) => replace_file(&path, (text + "\n").as_bytes(), "a proof", |existing| {
            serde_json::from_slice::<ProofBundle>(existing).is_ok()
        })?,
        None => println!("{text}"),
    }
    Ok(())
}

pub(super) fn verify_proof(args: VerifyProofArgs) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&args.proof).map_err(CliError::io(&args.proof))?;
    let bundle: ProofBundle = serde_json::from_str(&text).map_err(|error| {
        CliError::Input(format!(
            "{}: not a proof file: {error}",
            args.proof.display()
        ))
    })?;
    let signer = PublicKey::from_ss58(&args.signer)
        .map_err(|error| CliError::Input(format!("--signer: {error}")))?;
    let trusted = match &args.checkpoint {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
            Some(
                SignedCheckpoint::parse(&text)
                    .map_err(|error| CliError::Input(format!("{}: {error}", path.display())))?,
            )
        }
        None => None,
    };
    match bundle.verify(&signer, trusted.as_ref()) {
        Ok(Verified::Inclusion {
            seq,
            size,
            root,
            event,
        }) => {
            println!(
                "ok: event {seq} ({}) is in the log at size {size}, root {root}, signed by {}",
                event.kind(),
                args.signer
            );
            Ok(())
        }
        Ok(Verified::Consistency {
            old_size,
            new_size,
            new_root,
            ..
        }) => {
            println!(
                "ok: the log at size {old_size} is a prefix of the log at size {new_size}, root {new_root}, signed by {}",
                args.signer
            );
            Ok(())
        }
        Err(error) => Err(CliError::Invalid(format!("proof does not verify: {error}"))),
    }
}

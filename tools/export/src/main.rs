//! `weightlog-export LOG OUTDIR`: Parquet snapshots of a log. See the crate docs in
//! `lib.rs` for the layout, the integrity check and the memory bound.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use weightlog_export::readback::verify_export;
use weightlog_export::{Compression, ExportError, ExportOptions, Partition, Table, export};

/// Export a weightlog log to Parquet: one dataset (folder) per table under OUTDIR, every
/// file carrying the signed checkpoint it was cut from in its key-value metadata.
#[derive(Debug, Parser)]
#[command(name = "weightlog-export", version)]
struct Arguments {
    /// The log (a redb file written by `weightlog`).
    log: PathBuf,
    /// Where the table folders go; created when missing. Existing files are never
    /// rewritten: a later run with `--from` adds files beside them.
    out_dir: PathBuf,
    /// First seq to export (for an incremental export: the previous run's --to).
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    from: u64,
    /// Continue each table from where its exports in OUT_DIR end (the runs noted in
    /// OUT_DIR/_runs and the seq ranges in the file names), to add only what the log gained
    /// since; a table never exported there starts at seq 0.
    #[arg(long)]
    resume: bool,
    /// End of the range, exclusive (default: every signed event).
    #[arg(long)]
    to: Option<u64>,
    /// Tables to write (default: all).
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    tables: Vec<Table>,
    /// Hive-style partition folders under each table.
    #[arg(long, value_enum)]
    partition: Option<Partition>,
    /// Column compression.
    #[arg(long, value_enum, default_value = "zstd")]
    compression: Compression,
    /// Re-read every written file and check its row count and digest against the log.
    #[arg(long)]
    verify: bool,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weightlog-export: {error}");
            match error {
                ExportError::Corrupt { .. } | ExportError::VerifyMismatch { .. } => {
                    ExitCode::from(2)
                }
                _ => ExitCode::from(1),
            }
        }
    }
}

fn run(arguments: Arguments) -> Result<(), ExportError> {
    let mut tables = if arguments.tables.is_empty() {
        Table::ALL.to_vec()
    } else {
        arguments.tables
    };
    tables.sort();
    tables.dedup();
    // `--resume` continues each table from where its own exports end; tables that end at
    // the same seq share one run.
    let mut runs: Vec<(u64, Vec<Table>)> = Vec::new();
    if arguments.resume {
        for (table, end) in weightlog_export::export::exported_ends(&arguments.out_dir, &tables)? {
            match runs.iter_mut().find(|(from, _)| *from == end) {
                Some((_, group)) => group.push(table),
                None => runs.push((end, vec![table])),
            }
        }
        runs.sort_by_key(|(from, _)| *from);
    } else {
        runs.push((arguments.from, tables));
    }
    for (from, tables) in runs {
        if arguments.resume
            && let Some(to) = arguments.to
            && to < from
        {
            return Err(ExportError::Resume(format!(
                "--resume starts {} at seq {from}, where its files in {} end, which is past --to {to}",
                tables
                    .iter()
                    .map(|table| table.name())
                    .collect::<Vec<_>>()
                    .join(","),
                arguments.out_dir.display()
            )));
        }
        let options = ExportOptions {
            log: arguments.log.clone(),
            out_dir: arguments.out_dir.clone(),
            from,
            to: arguments.to,
            tables,
            partition: arguments.partition,
            compression: arguments.compression,
        };
        export_one(&options, arguments.verify)?;
    }
    Ok(())
}

/// One export run, with a progress bar on a terminal, its summary and `--verify`'s check.
fn export_one(options: &ExportOptions, verify: bool) -> Result<(), ExportError> {
    // A progress bar only for a person watching; logs and pipes get the summary alone.
    let bar = std::io::stderr()
        .is_terminal()
        .then(indicatif::ProgressBar::no_length);
    if let Some(bar) = &bar {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {human_pos}/{human_len} events, {elapsed} elapsed, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    let summary = export(options, |done, total| {
        if let Some(bar) = &bar
            && (done.is_multiple_of(4_096) || done == total)
        {
            bar.set_length(total);
            bar.set_position(done);
        }
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let root = summary.checkpoint.checkpoint.root;
    say(format_args!(
        "exported seqs {}..{} (checkpoint size {}, root {root}) into {} files",
        summary.from,
        summary.to,
        summary.checkpoint.checkpoint.size,
        summary.files.len()
    ))?;
    for file in &summary.files {
        say(format_args!("  {} {} rows", file.path.display(), file.rows))?;
    }
    if verify {
        for check in verify_export(&summary)? {
            say(format_args!(
                "verified {}: {} rows in {} files, digest {}",
                check.table, check.rows, check.files, check.digest
            ))?;
        }
    }
    Ok(())
}

/// Prints one line of the summary. A reader that closed stdout early (`| head`) is not an
/// error: the files are the product, and `--verify` still runs (its failure still exits 2).
fn say(line: std::fmt::Arguments) -> Result<(), ExportError> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(ExportError::Io {
            path: "stdout".into(),
            source: error,
        }),
        _ => Ok(()),
    }
}

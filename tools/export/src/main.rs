//! weightlog-export: Parquet snapshots of a log. Not built yet (the export issue); until
//! then it says so instead of pretending to work.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "weightlog-export: Parquet export is not implemented yet; use `weightlog cat --json` for a JSON Lines dump"
    );
    ExitCode::from(2)
}

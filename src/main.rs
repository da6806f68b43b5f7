use std::process::ExitCode;

use clap::Parser;
use weightlog::cli::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weightlog: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

//! `weightlog sandbox run`: one Python program in the deterministic sandbox.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;
use crate::sandbox::{self, Limits, Sandbox, Verdict};

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run a Python program in CPython for WASI under a fuel budget and a memory cap, with
    /// no network, no host files and fixed clocks; print its stdout, stderr, verdict (ok,
    /// out_of_fuel, out_of_memory, output_too_large, error) and fuel used.
    Run(SandboxRunArgs),
}

#[derive(Debug, Args)]
pub struct SandboxRunArgs {
    /// The Python program.
    #[arg(value_name = "PROGRAM.py")]
    pub program: PathBuf,
    /// A file to feed the program as stdin (default: empty stdin).
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// Fuel budget (deterministic instruction units).
    #[arg(long, default_value_t = sandbox::FUEL_DEFAULT)]
    pub fuel: u64,
    /// Linear memory cap in MiB.
    #[arg(long, value_name = "M", default_value_t = sandbox::MEMORY_BYTES_DEFAULT >> 20)]
    pub memory_mb: u64,
    /// Print one JSON object instead of the streams and a summary line.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn sandbox(command: SandboxCommand) -> Result<(), CliError> {
    match command {
        SandboxCommand::Run(args) => run(&args),
    }
}

fn run(args: &SandboxRunArgs) -> Result<(), CliError> {
    let program = std::fs::read_to_string(&args.program).map_err(CliError::io(&args.program))?;
    let stdin = match &args.stdin {
        Some(path) => std::fs::read(path).map_err(CliError::io(path))?,
        None => Vec::new(),
    };
    let limits = Limits {
        fuel: args.fuel,
        memory_bytes: args.memory_mb.saturating_mul(1 << 20),
        ..Limits::default()
    };
    let sandbox = Sandbox::from_assets().map_err(|error| CliError::Input(error.to_string()))?;
    let result = sandbox
        .run_python(&program, &stdin, &limits)
        .map_err(|error| CliError::Input(error.to_string()))?;
    if args.json {
        let object = serde_json::json!({
            "verdict": result.verdict.as_str(),
            "exit_code": result.exit_code,
            "trap": result.trap,
            "stdout": result.stdout_text(),
            "stderr": result.stderr_text(),
            "fuel_used": result.fuel_used,
            "fuel": result.limits.fuel,
            "memory_bytes": result.limits.memory_bytes,
            "output_bytes": result.limits.output_bytes,
            "python_blake3": sandbox.python_blake3(),
        });
        println!("{object}");
    } else {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&result.stdout);
        let _ = stdout.flush();
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(&result.stderr);
        let trap = result
            .trap
            .as_deref()
            .map(|trap| format!(", trap: {trap}"))
            .unwrap_or_default();
        let exit = result
            .exit_code
            .map(|code| format!(", exit status {code}"))
            .unwrap_or_default();
        let _ = writeln!(
            stderr,
            "verdict: {}{exit}{trap}; fuel used {} of {}",
            result.verdict.as_str(),
            result.fuel_used,
            result.limits.fuel
        );
    }
    if result.verdict == Verdict::Ok {
        Ok(())
    } else {
        Err(CliError::Reported(format!(
            "the program ended with verdict {}",
            result.verdict.as_str()
        )))
    }
}

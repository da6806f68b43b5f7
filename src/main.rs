use std::process::ExitCode;

use clap::Parser;
use weightlog::cli::{Cli, Command, EXIT_ERROR, EXIT_INVALID, run};

/// Events are decoded on the audit's pool threads and dropped on its fold thread; glibc's
/// malloc serialises such cross-thread frees on arena locks, mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which is this tool's "tampered or invalid" code: a
    // script could not tell a typo from a bad log. Usage errors exit 1 like other errors;
    // --help and --version still print and exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let is_verify = matches!(
        cli.command,
        Command::Verify(_) | Command::VerifyProof(_) | Command::Replay(_)
    );
    // redb may panic on a file damaged outside redb (its docs say so). Report that as one
    // clear line instead of a panic trace; WEIGHTLOG_PANIC_TRACE=1 keeps the trace.
    if std::env::var_os("WEIGHTLOG_PANIC_TRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            // A `Reported` error was already printed in the command's own format.
            if !matches!(error, weightlog::cli::CliError::Reported(_)) {
                eprintln!("weightlog: {error}");
            }
            ExitCode::from(error.exit_code())
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            eprintln!(
                "weightlog: the log file is damaged (its storage pages do not read back: {message}); \
                 if it was not edited or truncated, this is a bug in weightlog"
            );
            // For `verify`, a file that cannot be read is a log that does not check out.
            ExitCode::from(if is_verify { EXIT_INVALID } else { EXIT_ERROR })
        }
    }
}

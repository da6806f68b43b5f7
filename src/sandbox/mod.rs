//! The deterministic sandbox: CPython 3.12 for WASI (python.wasm, a pinned asset) under
//! wasmtime, metered by fuel instead of wall-clock time, so a run's result is a pure
//! function of (program, stdin, limits) on every machine and an auditor can re-execute it.
//!
//! - [`Sandbox`]: one engine, python.wasm compiled once (from the compiled-module cache in
//!   `cache.rs` when it is there) and pre-linked ([`wasmtime::InstancePre`]); each run gets
//!   a fresh store and instance whose memory starts as a copy-on-write mapping of the
//!   module's initial image, so no state survives between runs.
//! - `wasi.rs`: our own WASI preview1 with fixed clocks, seeded randomness, in-memory stdio
//!   and no filesystem or network.
//! - `plugin.rs`: environments shipped as wasm modules (the `generate`/`evaluate` ABI).
//!
//! **Architecture Invariant:** a run reads nothing from the host but python.wasm: no clock,
//! no randomness, no environment variables, no files, no sockets. Its limits (fuel, memory,
//! output) are named constants and recorded with the result.

#[cfg(feature = "sandbox")]
mod cache;
#[cfg(feature = "sandbox")]
mod engine;
#[cfg(feature = "sandbox")]
pub mod plugin;
#[cfg(feature = "sandbox")]
pub mod wasi;

use serde::Serialize;

#[cfg(feature = "sandbox")]
pub use cache::{Origin, engine_key, entry_path};
#[cfg(feature = "sandbox")]
pub use engine::*;

/// Fuel of a run when the caller names none: about two seconds of interpreter work.
pub const FUEL_DEFAULT: u64 = 2_000_000_000;
/// The most fuel one run may be given.
pub const FUEL_MAX: u64 = 200_000_000_000;
/// Linear memory of a run when the caller names none.
pub const MEMORY_BYTES_DEFAULT: u64 = 256 << 20;
/// The most linear memory one run may be given (wasm32 addresses 4 GiB).
pub const MEMORY_BYTES_MAX: u64 = 2 << 30;
/// Bytes kept of each of stdout and stderr; a run writing more stops as output too large.
pub const OUTPUT_BYTES_DEFAULT: u64 = 1 << 20;
pub const OUTPUT_BYTES_MAX: u64 = 64 << 20;
/// The largest stdin and program a run accepts.
pub const STDIN_BYTES_MAX: u64 = 64 << 20;
pub const PROGRAM_BYTES_MAX: u64 = 4 << 20;

/// python.wasm's name inside the pinned asset.
pub const PYTHON_WASM_FILE: &str = "python.wasm";

/// What a run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub fuel: u64,
    pub memory_bytes: u64,
    /// Per stream: stdout and stderr each keep at most this many bytes.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: FUEL_DEFAULT,
            memory_bytes: MEMORY_BYTES_DEFAULT,
            output_bytes: OUTPUT_BYTES_DEFAULT,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The program finished with exit status 0.
    Ok,
    /// The fuel ran out.
    OutOfFuel,
    /// The program failed after a memory growth past the cap was refused.
    OutOfMemory,
    /// stdout or stderr went past the output cap.
    OutputTooLarge,
    /// Any other end: a non-zero exit status (an uncaught exception) or a trap.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::OutOfFuel => "out_of_fuel",
            Verdict::OutOfMemory => "out_of_memory",
            Verdict::OutputTooLarge => "output_too_large",
            Verdict::Error => "error",
        }
    }
}

/// Everything a run produced; equal inputs give an equal value, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunResult {
    pub verdict: Verdict,
    /// The exit status when the program exited (0 when `_start` returned).
    pub exit_code: Option<i32>,
    /// The trap, for runs that ended in one (e.g. "call stack exhausted").
    pub trap: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub fuel_used: u64,
    pub limits: Limits,
}

impl RunResult {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

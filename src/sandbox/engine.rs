//! The engine: wasmtime, python.wasm and a run (the `sandbox` feature).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wasmtime::{Config, Engine, InstancePre, Linker, ResourceLimiter, Store, Trap};

use super::cache::{self, Origin};
use super::wasi::{self, GuestExit, HasWasi, WasiState};
use super::{
    FUEL_MAX, Limits, MEMORY_BYTES_MAX, OUTPUT_BYTES_MAX, PROGRAM_BYTES_MAX, PYTHON_WASM_FILE,
    RunResult, STDIN_BYTES_MAX, Verdict,
};
use crate::assets::{self, AssetError, Cache};

/// Native stack of the thread a guest runs on: room for wasmtime's default wasm stack
/// limit (512 KiB) whatever the caller's own stack size.
const GUEST_THREAD_STACK_BYTES: usize = 8 << 20;
/// Tables (function references) a guest may grow to.
const TABLE_ELEMENTS_MAX: usize = 1 << 20;

/// The interpreter's command line: no user site directory, no bytecode writes, the
/// program from the argument.
const PYTHON_ARGS: [&str; 3] = ["python", "-s", "-B"];
/// The interpreter's environment: fixed hash seed and UTF-8 everywhere.
const PYTHON_ENVIRONMENT: [&str; 5] = [
    "PYTHONHASHSEED=0",
    "PYTHONUTF8=1",
    "PYTHONIOENCODING=utf-8",
    "PYTHONDONTWRITEBYTECODE=1",
    "LC_ALL=C.UTF-8",
];

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Asset(#[from] AssetError),
    #[error("cannot compile the sandbox module: {0}")]
    Compile(String),
    #[error("cannot set up the sandbox: {0}")]
    Setup(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is {actual}, above the limit {limit}")]
    Limit {
        what: &'static str,
        actual: u64,
        limit: u64,
    },
}

impl Limits {
    fn check(&self) -> Result<(), SandboxError> {
        within([
            ("fuel", self.fuel, FUEL_MAX),
            ("memory bytes", self.memory_bytes, MEMORY_BYTES_MAX),
            ("output bytes", self.output_bytes, OUTPUT_BYTES_MAX),
        ])
    }
}

/// The first of `(what, actual, limit)` whose value is above its limit, as an error.
fn within<const N: usize>(checks: [(&'static str, u64, u64); N]) -> Result<(), SandboxError> {
    match checks.into_iter().find(|(_, actual, limit)| actual > limit) {
        Some((what, actual, limit)) => Err(SandboxError::Limit {
            what,
            actual,
            limit,
        }),
        None => Ok(()),
    }
}

/// Refuses memory and table growth past the run's caps, and remembers that it did.
#[derive(Debug)]
struct GuestLimiter {
    memory_bytes_max: usize,
    memory_refused: bool,
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes_max;
        if !allowed {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

struct GuestState {
    wasi: WasiState,
    limiter: GuestLimiter,
}

impl HasWasi for GuestState {
    fn wasi(&mut self) -> &mut WasiState {
        &mut self.wasi
    }
}

/// The engine configuration every sandbox uses: fuel metering, and no source of
/// machine-dependent results (NaN bits are canonicalised; relaxed SIMD, threads and the
/// other proposals python.wasm does not use stay off).
pub fn engine() -> Result<Engine, SandboxError> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .parallel_compilation(true);
    Engine::new(&config).map_err(|error| SandboxError::Setup(error.to_string()))
}

/// CPython for WASI, compiled and linked once, run many times.
pub struct Sandbox {
    engine: Engine,
    python: InstancePre<GuestState>,
    python_blake3: String,
    origin: Origin,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sandbox")
            .field("python_blake3", &self.python_blake3)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// The sandbox on the pinned python.wasm of the asset cache (`$WEIGHTLOG_CACHE`),
    /// fetched if missing, with compiled modules cached under `<cache>/compiled`.
    pub fn from_assets() -> Result<Sandbox, SandboxError> {
        let cache = Cache::from_env()?;
        let asset = cache.ensure(assets::by_name(assets::PYTHON_WASM)?)?;
        Sandbox::new(
            &asset.path(PYTHON_WASM_FILE),
            Some(&compiled_dir(cache.root())),
        )
    }

    /// The sandbox on a python.wasm file, caching its compiled form in `compiled_dir`
    /// (`None`: compile in memory every time).
    pub fn new(python_wasm: &Path, compiled_dir: Option<&Path>) -> Result<Sandbox, SandboxError> {
        let wasm = std::fs::read(python_wasm).map_err(|source| SandboxError::Io {
            path: python_wasm.to_path_buf(),
            source,
        })?;
        let engine = engine()?;
        let (module, origin) = cache::load_or_compile(&engine, compiled_dir, &wasm)?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|error| SandboxError::Setup(error.to_string()))?;
        let python = linker
            .instantiate_pre(&module)
            .map_err(|error| SandboxError::Setup(error.to_string()))?;
        Ok(Sandbox {
            engine,
            python,
            python_blake3: blake3::hash(&wasm).to_hex().to_string(),
            origin,
        })
    }

    /// One sandbox per process for environments and audits, built on first use.
    pub fn shared() -> Result<&'static Sandbox, String> {
        static SHARED: OnceLock<Result<Sandbox, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Sandbox::from_assets().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// blake3 (hex) of the python.wasm this sandbox runs.
    pub fn python_blake3(&self) -> &str {
        &self.python_blake3
    }

    /// Whether the compiled module came from the cache.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Runs a Python program with `stdin` under `limits`. An error means the sandbox could
    /// not run it at all (bad limits); whatever the program does is in the result.
    pub fn run_python(
        &self,
        program: &str,
        stdin: &[u8],
        limits: &Limits,
    ) -> Result<RunResult, SandboxError> {
        limits.check()?;
        within([
            ("program bytes", program.len() as u64, PROGRAM_BYTES_MAX),
            ("stdin bytes", stdin.len() as u64, STDIN_BYTES_MAX),
        ])?;
        let mut args: Vec<&[u8]> = PYTHON_ARGS.iter().map(|arg| arg.as_bytes()).collect();
        args.push(b"-c");
        args.push(program.as_bytes());
        let environment: Vec<&[u8]> = PYTHON_ENVIRONMENT
            .iter()
            .map(|variable| variable.as_bytes())
            .collect();
        let wasi = WasiState::new(&args, &environment, stdin.to_vec(), limits.output_bytes);
        // The guest runs on a thread of known stack size, so how deep it may recurse does
        // not depend on the caller's thread.
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("sandbox-guest".into())
                .stack_size(GUEST_THREAD_STACK_BYTES)
                .spawn_scoped(scope, || self.run_on_this_thread(wasi, limits))
                .map_err(|error| SandboxError::Setup(format!("cannot start a thread: {error}")))?
                .join()
                .map_err(|_| SandboxError::Setup("the guest thread panicked".into()))?
        })
    }

    fn run_on_this_thread(
        &self,
        wasi: WasiState,
        limits: &Limits,
    ) -> Result<RunResult, SandboxError> {
        let state = GuestState {
            wasi,
            limiter: GuestLimiter {
                memory_bytes_max: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                memory_refused: false,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|error| SandboxError::Setup(error.to_string()))?;
        let outcome = self
            .python
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        let fuel_left = store.get_fuel().unwrap_or(0);
        let fuel_used = limits.fuel.saturating_sub(fuel_left);
        let state = store.into_data();
        let memory_refused = state.limiter.memory_refused;
        let (mut verdict, exit_code, trap) = match outcome {
            Ok(()) => (Verdict::Ok, Some(0), None),
            Err(error) => classify(&error),
        };
        // A failure after a refused memory growth is the memory cap's doing (Python raises
        // MemoryError and exits 1); running out of fuel or output stays what it is.
        if memory_refused && verdict == Verdict::Error {
            verdict = Verdict::OutOfMemory;
        }
        Ok(RunResult {
            verdict,
            exit_code,
            trap,
            stdout: state.wasi.stdout,
            stderr: state.wasi.stderr,
            fuel_used,
            limits: *limits,
        })
    }
}

/// The verdict, exit status and trap text of a run that did not return from `_start`.
fn classify(error: &wasmtime::Error) -> (Verdict, Option<i32>, Option<String>) {
    if let Some(exit) = error.downcast_ref::<GuestExit>() {
        return match exit {
            GuestExit::Exit(0) => (Verdict::Ok, Some(0), None),
            GuestExit::Exit(status) => (Verdict::Error, Some(*status), None),
            GuestExit::OutputTooLarge(_) => (Verdict::OutputTooLarge, None, None),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (Verdict::OutOfFuel, None, Some(Trap::OutOfFuel.to_string())),
        Some(trap) => (Verdict::Error, None, Some(trap.to_string())),
        // Instantiation refused: the memory cap is below the module's initial memory (the
        // limiter noted it, and the caller turns this into out of memory).
        None => (Verdict::Error, None, Some(error.to_string())),
    }
}

/// Where compiled modules live inside an asset cache root.
pub fn compiled_dir(cache_root: &Path) -> PathBuf {
    cache_root.join("compiled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_value_above_its_limit_is_the_error() {
        assert!(within([("a", 1, 1), ("b", 0, 5)]).is_ok());
        let error = within([("a", 1, 1), ("b", 6, 5), ("c", 9, 1)]).unwrap_err();
        assert!(
            matches!(
                error,
                SandboxError::Limit {
                    what: "b",
                    actual: 6,
                    limit: 5
                }
            ),
            "{error}"
        );
        let error = Limits {
            fuel: FUEL_MAX + 1,
            ..Limits::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("fuel is {}, above the limit {FUEL_MAX}", FUEL_MAX + 1)
        );
    }
}

//! The compiled-module cache: wasmtime's serialised native code for a module, so that only
//! the first run on a machine pays cranelift's compile of python.wasm (tens of seconds).
//!
//! Layout: `<cache>/compiled/<module blake3>-<engine key>.cwasm` and beside it
//! `<same>.blake3`, the blake3 of the serialised bytes. The engine key hashes wasmtime's
//! own compatibility hash (its version, target and every setting that changes code), so
//! a different wasmtime or configuration compiles afresh instead of loading stale code.
//!
//! **API Boundary:** a serialised module is native code that wasmtime loads without
//! checking it. The cache directory is trusted like the weightlog binary; the sidecar hash
//! catches torn or corrupted files (they are recompiled), not an attacker who can write
//! both files.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

use super::SandboxError;

/// Our cache layout's version; bump it when the layout or key changes.
const LAYOUT_VERSION: u32 = 1;

/// Feeds `Hash` output into blake3, so the key is stable across processes (std's
/// `DefaultHasher` promises no stability).
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The part of a cache file's name that identifies the engine.
pub fn engine_key(engine: &Engine) -> String {
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    LAYOUT_VERSION.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().to_hex()[..16].to_string()
}

/// How a module was obtained, for benchmarks and `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the compiled-module cache.
    Cached,
    /// Compiled now (and written to the cache when one is configured).
    Compiled,
}

/// The path a module's compiled form has under `dir`.
pub fn entry_path(dir: &Path, module_blake3: &str, engine: &Engine) -> PathBuf {
    dir.join(format!("{module_blake3}-{}.cwasm", engine_key(engine)))
}

/// The module compiled for `engine`: from `dir` when a valid entry is there, else compiled
/// from `wasm` and stored. A cache that cannot be written is not an error (the run goes
/// on with the module compiled in memory).
pub fn load_or_compile(
    engine: &Engine,
    dir: Option<&Path>,
    wasm: &[u8],
) -> Result<(Module, Origin), SandboxError> {
    let module_blake3 = blake3::hash(wasm).to_hex().to_string();
    let Some(dir) = dir else {
        return Ok((compile(engine, wasm)?, Origin::Compiled));
    };
    let path = entry_path(dir, &module_blake3, engine);
    let sidecar = path.with_extension("blake3");
    if let (Ok(bytes), Ok(expected)) = (fs::read(&path), fs::read_to_string(&sidecar))
        && blake3::hash(&bytes).to_hex().as_str() == expected.trim()
    {
        // SAFETY: the bytes are what `Module::serialize` wrote for an engine with the same
        // compatibility hash (the file name says so and the sidecar hash says the bytes are
        // intact); wasmtime checks the header and refuses other engines' output.
        if let Ok(module) = unsafe { Module::deserialize(engine, &bytes) } {
            return Ok((module, Origin::Cached));
        }
    }
    let module = compile(engine, wasm)?;
    let _ = store(&module, dir, &path, &sidecar);
    Ok((module, Origin::Compiled))
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Module, SandboxError> {
    Module::from_binary(engine, wasm).map_err(|error| SandboxError::Compile(error.to_string()))
}

fn store(module: &Module, dir: &Path, path: &Path, sidecar: &Path) -> Result<(), SandboxError> {
    let bytes = module
        .serialize()
        .map_err(|error| SandboxError::Compile(error.to_string()))?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    // Write under temporary names and rename, so a reader never sees half a file: the code
    // first, then the hash that vouches for it.
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&temporary, &bytes).map_err(io(&temporary))?;
    fs::rename(&temporary, path).map_err(io(path))?;
    let temporary = sidecar.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&temporary, blake3::hash(&bytes).to_hex().as_bytes()).map_err(io(&temporary))?;
    fs::rename(&temporary, sidecar).map_err(io(sidecar))?;
    Ok(())
}

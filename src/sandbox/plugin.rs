//! Environments shipped as wasm modules, pinned by blake3 in `EnvironmentRegistered`.
//!
//! ## The ABI (version 1)
//!
//! A plugin is a core wasm module that **imports nothing** (so it cannot reach a clock,
//! a file or the network) and exports:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `memory` | memory | where arguments and results live |
//! | `alloc` | `(len: i32) -> i32` | a buffer of `len` bytes for the host to write into |
//! | `generate` | `(seed: i64, params: i32, params_len: i32) -> i64` | a challenge |
//! | `evaluate` | `(seed: i64, extra: i32, extra_len: i32, response: i32, response_len: i32) -> i64` | a verdict |
//!
//! Arguments are UTF-8 JSON (`params`: the environment's parameters object; `extra`: the
//! challenge's recorded `extra_json`) or text (`response`; `response_len = -1` when the
//! miner gave no usable answer). Results are returned as `(pointer << 32) | length` of UTF-8
//! JSON in the plugin's memory:
//! - `generate`: `{"prompt": "...", "extra_json": "..."}`
//! - `evaluate`: `{"score": 1.0, "metrics": [{"name": "...", "value": 0.0}]}`
//!
//! Each call runs in a fresh instance under [`PLUGIN_FUEL_MAX`] fuel and
//! [`PLUGIN_MEMORY_BYTES_MAX`] of memory, so a call is a pure function of its arguments;
//! the fuel it used is returned with the result.
//!
//! **API Boundary:** a plugin's bytes are untrusted until their blake3 equals the hash the
//! log pinned ([`WasmEnvironment::load`]); its outputs are untrusted JSON, bounded by
//! [`PLUGIN_OUTPUT_BYTES_MAX`].

use serde::Deserialize;
use serde_json::Value;
use wasmtime::{Engine, Instance, InstancePre, Linker, Memory, ResourceLimiter, Store, Trap};
use weightlog_schema::Hash;
use weightlog_schema::event::{EnvironmentKind, EnvironmentRegistered, Metric};

/// Fuel of one `generate` or `evaluate` call.
pub const PLUGIN_FUEL_MAX: u64 = 1_000_000_000;
/// Linear memory one call may grow to.
pub const PLUGIN_MEMORY_BYTES_MAX: usize = 64 << 20;
/// The largest argument the host passes and the largest result it reads back.
pub const PLUGIN_INPUT_BYTES_MAX: usize = 16 << 20;
pub const PLUGIN_OUTPUT_BYTES_MAX: usize = 16 << 20;
/// The ABI version this host speaks (see the module documentation).
pub const ABI_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error(
        "plugin `{name}`: module blake3 is {actual} but the log pins {expected}; refusing a changed module"
    )]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("plugin `{name}`: the registration is not a wasm environment with a module hash")]
    NotWasm { name: String },
    #[error("plugin `{name}`: the module is not valid wasm: {message}")]
    Invalid { name: String, message: String },
    #[error(
        "plugin `{name}`: the module must import nothing and export memory, alloc, generate and evaluate: {message}"
    )]
    Abi { name: String, message: String },
    #[error("plugin `{name}`: {call} ran out of fuel ({fuel} units)")]
    OutOfFuel {
        name: String,
        call: &'static str,
        fuel: u64,
    },
    #[error("plugin `{name}`: {call} failed: {message}")]
    Call {
        name: String,
        call: &'static str,
        message: String,
    },
}

/// A challenge from a plugin's `generate`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginChallenge {
    pub prompt: String,
    pub extra_json: String,
}

/// A verdict from a plugin's `evaluate`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginVerdict {
    pub score: f64,
    pub metrics: Vec<Metric>,
    pub fuel_used: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictJson {
    score: f64,
    #[serde(default)]
    metrics: Vec<MetricJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricJson {
    name: String,
    value: f64,
}

struct PluginLimiter;

impl ResourceLimiter for PluginLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= PLUGIN_MEMORY_BYTES_MAX)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 16)
    }
}

/// A loaded, hash-checked plugin.
pub struct WasmEnvironment {
    name: String,
    blake3: Hash,
    engine: Engine,
    pre: InstancePre<PluginLimiter>,
}

impl std::fmt::Debug for WasmEnvironment {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WasmEnvironment")
            .field("name", &self.name)
            .field("blake3", &self.blake3)
            .finish_non_exhaustive()
    }
}

/// blake3 of a module's bytes, as `EnvironmentRegistered.module_hash` records it.
pub fn module_hash(bytes: &[u8]) -> Hash {
    Hash(*blake3::hash(bytes).as_bytes())
}

fn hex(hash: &Hash) -> String {
    hash.0.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl WasmEnvironment {
    /// Loads a plugin whose bytes must hash to `expected` (wasm binary, or WAT text when
    /// the module is written in the text format; the hash is over the bytes as given).
    pub fn load(
        engine: &Engine,
        name: &str,
        bytes: &[u8],
        expected: &Hash,
    ) -> Result<WasmEnvironment, PluginError> {
        let actual = module_hash(bytes);
        if &actual != expected {
            return Err(PluginError::HashMismatch {
                name: name.into(),
                expected: hex(expected),
                actual: hex(&actual),
            });
        }
        let module =
            wasmtime::Module::new(engine, bytes).map_err(|error| PluginError::Invalid {
                name: name.into(),
                message: error.to_string(),
            })?;
        let abi = |message: String| PluginError::Abi {
            name: name.into(),
            message,
        };
        if let Some(import) = module.imports().next() {
            return Err(abi(format!(
                "it imports {}::{}",
                import.module(),
                import.name()
            )));
        }
        for export in ["memory", "alloc", "generate", "evaluate"] {
            if module.get_export(export).is_none() {
                return Err(abi(format!("it does not export `{export}`")));
            }
        }
        let linker = Linker::new(engine);
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|error| abi(error.to_string()))?;
        Ok(WasmEnvironment {
            name: name.into(),
            blake3: actual,
            engine: engine.clone(),
            pre,
        })
    }

    /// Loads the plugin an `EnvironmentRegistered` event names, refusing bytes that do not
    /// hash to its `module_hash`.
    pub fn from_registration(
        engine: &Engine,
        registration: &EnvironmentRegistered,
        bytes: &[u8],
    ) -> Result<WasmEnvironment, PluginError> {
        match (&registration.environment_kind, &registration.module_hash) {
            (EnvironmentKind::Wasm, Some(hash)) => {
                WasmEnvironment::load(engine, &registration.name, bytes, hash)
            }
            _ => Err(PluginError::NotWasm {
                name: registration.name.clone(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn blake3(&self) -> &Hash {
        &self.blake3
    }

    /// A challenge for `seed` and `parameters`, and the fuel it took.
    pub fn generate(
        &self,
        seed: u64,
        parameters: &Value,
    ) -> Result<(PluginChallenge, u64), PluginError> {
        let parameters = parameters.to_string();
        let (output, fuel_used) = self.call("generate", |call| {
            let (pointer, length) = call.put(parameters.as_bytes())?;
            let generate = call
                .instance
                .get_typed_func::<(i64, i32, i32), i64>(&mut call.store, "generate")?;
            generate.call(&mut call.store, (seed as i64, pointer, length))
        })?;
        let challenge =
            serde_json::from_slice(&output).map_err(|error| self.failed("generate", error))?;
        Ok((challenge, fuel_used))
    }

    /// The verdict on `response` to a challenge with `seed` and recorded `extra_json`.
    pub fn evaluate(
        &self,
        seed: u64,
        extra_json: &str,
        response: Option<&str>,
    ) -> Result<PluginVerdict, PluginError> {
        let (output, fuel_used) = self.call("evaluate", |call| {
            let (extra, extra_length) = call.put(extra_json.as_bytes())?;
            let (answer, answer_length) = match response {
                Some(text) => call.put(text.as_bytes())?,
                None => (0, -1),
            };
            let evaluate = call
                .instance
                .get_typed_func::<(i64, i32, i32, i32, i32), i64>(&mut call.store, "evaluate")?;
            evaluate.call(
                &mut call.store,
                (seed as i64, extra, extra_length, answer, answer_length),
            )
        })?;
        let verdict: VerdictJson =
            serde_json::from_slice(&output).map_err(|error| self.failed("evaluate", error))?;
        if !verdict.score.is_finite() {
            return Err(self.failed("evaluate", "the score is not a finite number"));
        }
        Ok(PluginVerdict {
            score: verdict.score,
            metrics: verdict
                .metrics
                .into_iter()
                .map(|metric| Metric {
                    name: metric.name,
                    value: metric.value,
                })
                .collect(),
            fuel_used,
        })
    }

    fn failed(&self, call: &'static str, message: impl std::fmt::Display) -> PluginError {
        PluginError::Call {
            name: self.name.clone(),
            call,
            message: message.to_string(),
        }
    }

    /// Runs one ABI call in a fresh instance and reads back its result.
    fn call(
        &self,
        call_name: &'static str,
        body: impl FnOnce(&mut Call) -> wasmtime::Result<i64>,
    ) -> Result<(Vec<u8>, u64), PluginError> {
        let mut store = Store::new(&self.engine, PluginLimiter);
        store.limiter(|limiter| limiter);
        store
            .set_fuel(PLUGIN_FUEL_MAX)
            .map_err(|error| self.failed(call_name, error))?;
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|error| self.failed(call_name, error))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| self.failed(call_name, "no memory export"))?;
        let mut call = Call {
            store,
            instance,
            memory,
        };
        let packed = body(&mut call);
        let fuel_used = PLUGIN_FUEL_MAX.saturating_sub(call.store.get_fuel().unwrap_or(0));
        let packed = packed.map_err(|error| match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                name: self.name.clone(),
                call: call_name,
                fuel: PLUGIN_FUEL_MAX,
            },
            _ => self.failed(call_name, error),
        })? as u64;
        let (pointer, length) = ((packed >> 32) as usize, (packed & 0xFFFF_FFFF) as usize);
        if length > PLUGIN_OUTPUT_BYTES_MAX {
            return Err(self.failed(
                call_name,
                format!("the result is {length} bytes, above {PLUGIN_OUTPUT_BYTES_MAX}"),
            ));
        }
        let output = call
            .memory
            .data(&call.store)
            .get(pointer..pointer.saturating_add(length))
            .ok_or_else(|| self.failed(call_name, "the result lies outside the memory"))?
            .to_vec();
        Ok((output, fuel_used))
    }
}

struct Call {
    store: Store<PluginLimiter>,
    instance: Instance,
    memory: Memory,
}

impl Call {
    /// Copies `bytes` into a buffer the plugin allocates; returns its pointer and length.
    fn put(&mut self, bytes: &[u8]) -> wasmtime::Result<(i32, i32)> {
        if bytes.len() > PLUGIN_INPUT_BYTES_MAX {
            return Err(wasmtime::Error::msg(format!(
                "an argument is {} bytes, above {PLUGIN_INPUT_BYTES_MAX}",
                bytes.len()
            )));
        }
        let alloc = self
            .instance
            .get_typed_func::<i32, i32>(&mut self.store, "alloc")?;
        let length = bytes.len() as i32;
        let pointer = alloc.call(&mut self.store, length)?;
        self.memory
            .write(&mut self.store, pointer as u32 as usize, bytes)
            .map_err(|_| wasmtime::Error::msg("alloc returned a buffer outside the memory"))?;
        Ok((pointer, length))
    }
}

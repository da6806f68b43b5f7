//! weightlog: the engine crate. The log on redb, keys and wallets, and the CLI.
//! See ARCHITECTURE.md for the map.
//!
//! Cargo features (all on by default): `fetch` (pinned assets from PyPI), `embed` (burn),
//! `sandbox` (wasmtime), `node` (the live node, miners, the chain, the HTTP API). Without
//! them the crate is what an auditor needs: the log, keys, environments, `gen-log` and the
//! audit.

#[cfg(feature = "node")]
pub mod api;
#[cfg(feature = "fetch")]
pub mod assets;
pub mod audit;
#[cfg(feature = "node")]
pub mod chain;
pub mod cli;
pub mod embed;
pub mod envs;
#[cfg(feature = "node")]
pub mod epistula;
pub mod genlog;
#[cfg(feature = "fetch")]
pub mod http;
pub mod keys;
pub mod log;
pub mod loosh;
#[cfg(feature = "node")]
pub mod miner;
#[cfg(feature = "node")]
pub mod node;
pub mod sandbox;

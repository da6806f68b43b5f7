//! weightlog: the engine crate. The log on redb, keys and wallets, and the CLI.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod assets;
pub mod audit;
pub mod chain;
pub mod cli;
pub mod embed;
pub mod envs;
pub mod epistula;
pub mod genlog;
pub mod http;
pub mod keys;
pub mod log;
pub mod loosh;
pub mod miner;
pub mod node;
pub mod sandbox;

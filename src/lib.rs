//! weightlog: the engine crate. The log on redb, keys and wallets, and the CLI.
//! See ARCHITECTURE.md for the map.

pub mod audit;
pub mod chain;
pub mod cli;
pub mod envs;
pub mod genlog;
pub mod keys;
pub mod log;

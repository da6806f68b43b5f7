//! The node's configuration: a TOML file, environment variables and command-line flags, in
//! rising precedence, with Bittensor's flag names (`--netuid`, `--wallet.name`,
//! `--wallet.hotkey`, `--subtensor.network`). Every key is optional; what is left unset takes
//! the default named here.
//!
//! ```toml
//! netuid = 120
//! profile = "affine"
//! log = "validator.wlog"
//! round_interval_ms = 500
//! [wallet]
//! name = "validator"
//! hotkey = "default"
//! [subtensor]
//! network = "finney"      # or test, local, ws://..., or sim (the simulated chain)
//! [api]
//! host = "127.0.0.1"
//! port = 8092
//! push_allow = ["5F..."]  # hotkeys allowed to POST /challenges
//! [miners]
//! timeout_ms = 12000
//! concurrency = 32
//! attempts = 3
//! [sim]
//! miners = 8
//! block_ms = 250
//! tempo = 12
//! seed = 1
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variables read, each for the key of the same name.
pub const ENV_VARS: [&str; 8] = [
    "WEIGHTLOG_NETUID",
    "WEIGHTLOG_PROFILE",
    "WEIGHTLOG_LOG",
    "WEIGHTLOG_WALLET_NAME",
    "WEIGHTLOG_WALLET_HOTKEY",
    "WEIGHTLOG_WALLET_PATH",
    "WEIGHTLOG_SUBTENSOR_NETWORK",
    "WEIGHTLOG_API_PORT",
];

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub netuid: Option<u16>,
    pub profile: Option<String>,
    pub log: Option<PathBuf>,
    pub round_interval_ms: Option<u64>,
    #[serde(default)]
    pub wallet: WalletSection,
    #[serde(default)]
    pub subtensor: SubtensorSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub miners: MinersSection,
    #[serde(default)]
    pub sim: SimSection,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WalletSection {
    pub name: Option<String>,
    pub hotkey: Option<String>,
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SubtensorSection {
    pub network: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub push_allow: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MinersSection {
    pub timeout_ms: Option<u64>,
    pub concurrency: Option<usize>,
    pub attempts: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimSection {
    pub miners: Option<u16>,
    pub block_ms: Option<u64>,
    pub tempo: Option<u16>,
    pub seed: Option<u64>,
}

impl FileConfig {
    /// Reads a TOML file; unknown keys are refused (a typo should not be silently ignored).
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Overrides keys from `WEIGHTLOG_*` variables (read through `get`, so tests need not
    /// touch the process environment).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let parse = |name: &str, value: String| -> Result<u64, String> {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{name}={value:?} is not a number"))
        };
        if let Some(value) = get("WEIGHTLOG_NETUID") {
            let netuid = parse("WEIGHTLOG_NETUID", value)?;
            self.netuid = Some(
                u16::try_from(netuid)
                    .map_err(|_| format!("WEIGHTLOG_NETUID={netuid} is too large"))?,
            );
        }
        if let Some(value) = get("WEIGHTLOG_PROFILE") {
            self.profile = Some(value);
        }
        if let Some(value) = get("WEIGHTLOG_LOG") {
            self.log = Some(value.into());
        }
        if let Some(value) = get("WEIGHTLOG_WALLET_NAME") {
            self.wallet.name = Some(value);
        }
        if let Some(value) = get("WEIGHTLOG_WALLET_HOTKEY") {
            self.wallet.hotkey = Some(value);
        }
        if let Some(value) = get("WEIGHTLOG_WALLET_PATH") {
            self.wallet.path = Some(value.into());
        }
        if let Some(value) = get("WEIGHTLOG_SUBTENSOR_NETWORK") {
            self.subtensor.network = Some(value);
        }
        if let Some(value) = get("WEIGHTLOG_API_PORT") {
            let port = parse("WEIGHTLOG_API_PORT", value)?;
            self.api.port = Some(
                u16::try_from(port)
                    .map_err(|_| format!("WEIGHTLOG_API_PORT={port} is not a port"))?,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_read_and_the_environment_overrides_it() {
        let mut config: FileConfig = toml::from_str(
            "netuid = 7\nprofile = \"affine\"\n[wallet]\nname = \"v\"\n[sim]\nminers = 3\n",
        )
        .unwrap();
        assert_eq!(config.netuid, Some(7));
        assert_eq!(config.sim.miners, Some(3));
        config
            .apply_env(|name| match name {
                "WEIGHTLOG_NETUID" => Some("9".into()),
                "WEIGHTLOG_WALLET_HOTKEY" => Some("hk".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.netuid, Some(9));
        assert_eq!(config.wallet.name.as_deref(), Some("v"));
        assert_eq!(config.wallet.hotkey.as_deref(), Some("hk"));
        let error = config
            .apply_env(|name| (name == "WEIGHTLOG_NETUID").then(|| "x".to_string()))
            .unwrap_err();
        assert!(error.contains("WEIGHTLOG_NETUID"), "{error}");
        let typo = toml::from_str::<FileConfig>("netuidd = 7\n").unwrap_err();
        assert!(typo.to_string().contains("netuidd"), "{typo}");
    }
}

//! Which chain to talk to: the named networks and their endpoints.

use super::ChainError;

/// Which chain to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    Finney,
    Test,
    Local,
    Url(String),
}

impl Network {
    /// `finney`, `test`, `local`, or a `ws://` / `wss://` URL.
    pub fn parse(text: &str) -> Result<Self, ChainError> {
        match text {
            "finney" => Ok(Self::Finney),
            "test" => Ok(Self::Test),
            "local" => Ok(Self::Local),
            url if url.starts_with("ws://") || url.starts_with("wss://") => {
                Ok(Self::Url(url.to_string()))
            }
            other => Err(ChainError::UnknownNetwork(other.to_string())),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Finney => "wss://entrypoint-finney.opentensor.ai:443",
            Self::Test => "wss://test.finney.opentensor.ai:443",
            Self::Local => "ws://127.0.0.1:9944",
            Self::Url(url) => url,
        }
    }
}

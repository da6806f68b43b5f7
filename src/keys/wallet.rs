//! The btcli wallet directory layout, where passwords come from, and loading / writing keys.
//!
//! ```text
//! <path>/<name>/coldkey, coldkeypub.txt
//! <path>/<name>/hotkeys/<hotkey>, hotkeys/<hotkey>pub.txt
//! ```

use std::fmt;
use std::fs;
use std::io::{ErrorKind, IsTerminal, Write};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use super::keyfile::parse_keyfile;
use super::{Hotkey, KeyError, random_seed};

/// Environment variable holding the password of an encrypted keyfile.
pub const PASSWORD_ENV: &str = "WEIGHTLOG_WALLET_PASSWORD";
/// btcli's default wallet name.
pub const DEFAULT_WALLET: &str = "default";
/// btcli's default hotkey name.
pub const DEFAULT_HOTKEY: &str = "default";

/// Where the password of an encrypted (`$NACL`) keyfile comes from. Plain keyfiles never
/// consult it.
#[derive(Clone, Default)]
pub enum PasswordSource {
    /// `WEIGHTLOG_WALLET_PASSWORD` if set and non-empty, else an interactive prompt when stdin
    /// is a terminal, else an error.
    #[default]
    EnvOrPrompt,
    /// Only `WEIGHTLOG_WALLET_PASSWORD` (for daemons and services).
    Env,
    /// Only an interactive prompt (stdin must be a terminal).
    Prompt,
    /// This password (tests, or a caller that already holds it).
    Given(String),
}

impl PasswordSource {
    /// The password for the encrypted keyfile at `path`.
    pub(crate) fn resolve(&self, path: &Path) -> Result<Zeroizing<String>, KeyError> {
        match self {
            Self::Given(password) => Ok(Zeroizing::new(password.clone())),
            Self::Env => env_password().ok_or_else(|| KeyError::PasswordUnavailable {
                path: path.to_path_buf(),
            }),
            Self::Prompt => prompt_password(path),
            Self::EnvOrPrompt => match env_password() {
                Some(password) => Ok(password),
                None => prompt_password(path),
            },
        }
    }
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EnvOrPrompt => f.write_str("EnvOrPrompt"),
            Self::Env => f.write_str("Env"),
            Self::Prompt => f.write_str("Prompt"),
            Self::Given(_) => f.write_str("Given(<redacted>)"),
        }
    }
}

impl Drop for PasswordSource {
    fn drop(&mut self) {
        if let Self::Given(password) = self {
            password.zeroize();
        }
    }
}

fn env_password() -> Option<Zeroizing<String>> {
    std::env::var(PASSWORD_ENV)
        .ok()
        .filter(|password| !password.is_empty())
        .map(Zeroizing::new)
}

fn prompt_password(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    if !std::io::stdin().is_terminal() {
        return Err(KeyError::PasswordUnavailable {
            path: path.to_path_buf(),
        });
    }
    rpassword::prompt_password(format!("Password for {}: ", path.display()))
        .map(Zeroizing::new)
        .map_err(|source| KeyError::PasswordPrompt {
            path: path.to_path_buf(),
            source,
        })
}

/// A hotkey inside a btcli wallet directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletLocation {
    /// The wallets directory; default `~/.bittensor/wallets`. A leading `~` is expanded
    /// with `$HOME`.
    pub path: PathBuf,
    /// The wallet (coldkey) name; default `default`.
    pub name: String,
    /// The hotkey name; default `default`.
    pub hotkey: String,
}

impl Default for WalletLocation {
    fn default() -> Self {
        Self {
            path: Self::default_path(),
            name: DEFAULT_WALLET.to_string(),
            hotkey: DEFAULT_HOTKEY.to_string(),
        }
    }
}

impl WalletLocation {
    pub fn new(
        path: impl Into<PathBuf>,
        name: impl Into<String>,
        hotkey: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            name: name.into(),
            hotkey: hotkey.into(),
        }
    }

    /// `$HOME/.bittensor/wallets`, or the literal `~/.bittensor/wallets` when `$HOME` is unset
    /// (loading from it then fails with [`KeyError::NoHomeDir`]).
    pub fn default_path() -> PathBuf {
        expand_tilde(Path::new("~/.bittensor/wallets"))
    }

    /// `<path>/<name>`, with a leading `~` expanded.
    pub fn wallet_dir(&self) -> PathBuf {
        expand_tilde(&self.path).join(&self.name)
    }

    /// `<path>/<name>/hotkeys/<hotkey>`: the secret hotkey file.
    pub fn hotkey_file(&self) -> PathBuf {
        self.wallet_dir().join("hotkeys").join(&self.hotkey)
    }

    /// `<path>/<name>/hotkeys/<hotkey>pub.txt`: the hotkey's public part.
    pub fn hotkey_pub_file(&self) -> PathBuf {
        self.wallet_dir()
            .join("hotkeys")
            .join(format!("{}pub.txt", self.hotkey))
    }

    /// `<path>/<name>/coldkey`.
    pub fn coldkey_file(&self) -> PathBuf {
        self.wallet_dir().join("coldkey")
    }

    /// `<path>/<name>/coldkeypub.txt`.
    pub fn coldkeypub_file(&self) -> PathBuf {
        self.wallet_dir().join("coldkeypub.txt")
    }

    /// Names must be single path components, so a name cannot point outside the wallet.
    fn validate(&self) -> Result<(), KeyError> {
        for name in [&self.name, &self.hotkey] {
            let reason = if name.is_empty() {
                Some("it is empty")
            } else if name == "." || name == ".." {
                Some("it is `.` or `..`")
            } else if name.contains(['/', '\\', '\0']) {
                Some("it contains a path separator or NUL; use --wallet.path for the directory")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(KeyError::InvalidName {
                    name: name.clone(),
                    reason,
                });
            }
        }
        if self.path.starts_with("~") && home_dir().is_none() {
            return Err(KeyError::NoHomeDir);
        }
        Ok(())
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

fn expand_tilde(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// Loads the hotkey of a wallet (normally an unencrypted file).
pub fn load_hotkey(
    location: &WalletLocation,
    password: &PasswordSource,
) -> Result<Hotkey, KeyError> {
    location.validate()?;
    load_keyfile(&location.hotkey_file(), password)
}

/// Loads any keyfile (hotkey or coldkey), plain or `$NACL`-encrypted.
pub fn load_keyfile(path: &Path, password: &PasswordSource) -> Result<Hotkey, KeyError> {
    let bytes = fs::read(path).map(Zeroizing::new).map_err(|source| {
        if source.kind() == ErrorKind::NotFound {
            KeyError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            KeyError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    parse_keyfile(&bytes, path, password)
}

/// Generates a random hotkey and writes it, unencrypted and in btcli's format, to
/// `hotkeys/<hotkey>` (mode 0600 on unix) and `hotkeys/<hotkey>pub.txt`. Never overwrites.
pub fn write_dev_hotkey(location: &WalletLocation) -> Result<Hotkey, KeyError> {
    location.validate()?;
    let secret_path = location.hotkey_file();
    let pub_path = location.hotkey_pub_file();
    for path in [&secret_path, &pub_path] {
        // symlink_metadata also catches a dangling symlink in the way.
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyError::AlreadyExists { path: path.clone() });
        }
    }
    if let Some(dir) = secret_path.parent() {
        fs::create_dir_all(dir).map_err(|source| KeyError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }

    let seed = random_seed();
    let hotkey = Hotkey::from_seed(&seed);
    let public_hex = hex::encode(hotkey.public_key());
    let ss58 = hotkey.ss58();
    let private_hex = Zeroizing::new(hex::encode(hotkey.secret_bytes().as_ref()));
    let seed_hex = Zeroizing::new(hex::encode(seed.as_ref()));
    // Hex and SS58 need no JSON escaping.
    let secret_json = Zeroizing::new(format!(
        "{{\"accountId\":\"0x{public_hex}\",\"publicKey\":\"0x{public_hex}\",\
         \"privateKey\":\"0x{}\",\"secretSeed\":\"0x{}\",\"ss58Address\":\"{ss58}\",\
         \"cryptoType\":1}}",
        private_hex.as_str(),
        seed_hex.as_str()
    ));
    let pub_json = format!(
        "{{\"accountId\":\"0x{public_hex}\",\"publicKey\":\"0x{public_hex}\",\
         \"ss58Address\":\"{ss58}\",\"cryptoType\":1}}"
    );
    write_new(&secret_path, secret_json.as_bytes(), true)?;
    if let Err(err) = write_new(&pub_path, pub_json.as_bytes(), false) {
        // Leave no half-written wallet behind.
        let _ = fs::remove_file(&secret_path);
        return Err(err);
    }
    Ok(hotkey)
}

/// Creates `path` (failing if it exists) and writes `contents`; removes it again on failure.
fn write_new(path: &Path, contents: &[u8], secret: bool) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == ErrorKind::AlreadyExists {
            KeyError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            KeyError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(KeyError::Write {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

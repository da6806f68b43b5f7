//! all-MiniLM-L6-v2 on burn against the sentence-transformers reference
//! (../shared/fixtures/minilm): token ids, embeddings, truncation at 256 tokens, and
//! determinism on the CPU backend. With `--features wgpu` the same fixture runs on wgpu.
#![cfg(feature = "embed")]

use std::sync::OnceLock;

use serde_json::Value;
use weightlog::embed::{Backend, Embedder, HIDDEN_SIZE, quantize};

struct Item {
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn fixture() -> &'static [Item] {
    static ITEMS: OnceLock<Vec<Item>> = OnceLock::new();
    ITEMS.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/minilm/minilm_reference.json"
        );
        let json: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(json["max_seq_length"], 256);
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| Item {
                text: item["text"].as_str().unwrap().to_owned(),
                input_ids: item["input_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| id.as_u64().unwrap() as u32)
                    .collect(),
                // Each value is an exact f32 written as an f64 decimal.
                embedding: item["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|value| value.as_f64().unwrap() as f32)
                    .collect(),
            })
            .collect()
    })
}

fn texts() -> Vec<&'static str> {
    fixture().iter().map(|item| item.text.as_str()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum();
    dot / (na * nb).sqrt()
}

/// Every embedding within 1e-5 of the reference per component and cosine above 0.99999.
fn check_against_reference(embeddings: &[Vec<f32>], what: &str) {
    assert_eq!(embeddings.len(), fixture().len());
    for (index, (ours, item)) in embeddings.iter().zip(fixture()).enumerate() {
        assert_eq!(ours.len(), HIDDEN_SIZE);
        let worst = ours
            .iter()
            .zip(&item.embedding)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let cos = cosine(ours, &item.embedding);
        assert!(
            worst <= 1e-5 && cos > 0.99999,
            "{what}: item {index} {:?}: max abs diff {worst}, cosine {cos}",
            item.text
        );
    }
}

fn cpu() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::from_env(Backend::Cpu).unwrap())
}

#[test]
fn token_ids_match_the_reference_tokenizer_for_every_sentence() {
    let tokens = cpu().tokens(&texts()).unwrap();
    for (index, (ours, item)) in tokens.iter().zip(fixture()).enumerate() {
        assert_eq!(ours.ids, item.input_ids, "item {index} {:?}", item.text);
    }
    // The 163-token text is not cut at tokenizer.json's 128; the long ones stop at 256.
    assert!(tokens.iter().any(|t| t.ids.len() == 163));
    assert_eq!(tokens.iter().map(|t| t.ids.len()).max(), Some(256));
}

#[test]
fn cpu_embeddings_match_the_reference_in_batches_of_32_and_of_1() {
    let texts = texts();
    let batched = cpu().embed(&texts, 32).unwrap();
    check_against_reference(&batched, "cpu, batch 32");
    let single = cpu().embed(&texts, 1).unwrap();
    check_against_reference(&single, "cpu, batch 1");

    // Texts that differ only after token 256 embed identically; so do two copies of a text.
    let long: Vec<usize> = fixture()
        .iter()
        .enumerate()
        .filter(|(_, item)| item.input_ids.len() == 256)
        .map(|(index, _)| index)
        .collect();
    assert_eq!(long.len(), 2);
    assert_ne!(fixture()[long[0]].text, fixture()[long[1]].text);
    assert_eq!(batched[long[0]], batched[long[1]]);
    assert_eq!(batched[0], batched[31]);
    assert_eq!(fixture()[0].text, fixture()[31].text);
}

#[test]
fn cpu_embeddings_are_bit_identical_across_runs_and_thread_counts() {
    let texts = texts();
    let reference = cpu().embed(&texts, 8).unwrap();
    assert_eq!(cpu().embed(&texts, 8).unwrap(), reference, "second run");
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let embeddings = pool.install(|| cpu().embed(&texts, 8).unwrap());
        assert_eq!(embeddings, reference, "{threads} threads");
    }
}

#[test]
fn a_cpu_embedding_depends_only_on_its_text_not_on_batch_size_or_company() {
    // `embed` sorts by length and cuts passes by size, so each of these runs groups the
    // texts differently; every text must still get the same bits.
    let texts = texts();
    let reference = cpu().embed(&texts, 32).unwrap();
    for batch_size in [1, 3, 7] {
        assert_eq!(
            cpu().embed(&texts, batch_size).unwrap(),
            reference,
            "batch size {batch_size}"
        );
    }
    let reversed: Vec<&str> = texts.iter().rev().copied().collect();
    let mut embeddings = cpu().embed(&reversed, 32).unwrap();
    embeddings.reverse();
    assert_eq!(embeddings, reference, "texts in reverse order");
    for (index, text) in texts.iter().enumerate().step_by(5) {
        assert_eq!(
            cpu().embed(&[text], 32).unwrap()[0],
            reference[index],
            "text {index} alone"
        );
    }
}

#[test]
fn quantised_embeddings_stay_within_the_re_embed_tolerance() {
    let texts = texts();
    let embeddings = cpu().embed(&texts, 32).unwrap();
    let mut worst = 1.0f64;
    for embedding in &embeddings {
        let q = quantize::quantize(embedding);
        let cos = quantize::cosine_with_record(embedding, &q.vector);
        worst = worst.min(cos);
    }
    // i8 rounding costs up to about 1.5e-4 of cosine; the tolerance leaves a wide margin.
    assert!(worst > 0.9997, "worst cosine to its own record {worst}");
    assert!(worst > quantize::RE_EMBED_COSINE_MIN);
    // A paraphrase is far outside the tolerance: the check catches a swapped embedding.
    let q_cat = quantize::quantize(&embeddings[0]);
    let feline = quantize::cosine_with_record(&embeddings[1], &q_cat.vector);
    assert!(feline < quantize::RE_EMBED_COSINE_MIN, "{feline}");
}

#[test]
fn backends_parse_and_one_not_built_in_is_a_clear_error() {
    assert_eq!("cpu".parse::<Backend>().unwrap(), Backend::Cpu);
    assert_eq!("wgpu".parse::<Backend>().unwrap(), Backend::Wgpu);
    let unknown = "tpu".parse::<Backend>().unwrap_err();
    assert!(
        unknown.to_string().contains("known backends: cpu, wgpu"),
        "{unknown}"
    );
    assert_eq!(Backend::Wgpu.is_built(), cfg!(feature = "wgpu"));
    #[cfg(not(feature = "wgpu"))]
    {
        let error = Embedder::from_env(Backend::Wgpu).unwrap_err();
        assert!(error.to_string().contains("--features wgpu"), "{error}");
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_embeddings_match_the_reference() {
    let wgpu = Embedder::from_env(Backend::Wgpu).unwrap();
    let texts = texts();
    let embeddings = wgpu.embed(&texts, 32).unwrap();
    check_against_reference(&embeddings, "wgpu, batch 32");
    assert_eq!(
        wgpu.embed(&texts, 32).unwrap(),
        embeddings,
        "wgpu run to run"
    );
}

//! A round's embeddings, as the log records them (the `embed` feature).

use weightlog_replay::projection::loosh_evaluate::PROMPT_EMBEDDING_UID;
use weightlog_schema::event::{
    ChallengeIssued, EmbeddingComputed, ResponseOutcome, ResponseReceived,
};

use crate::embed::{EmbedError, Embedder, quantize};

/// `EmbeddingComputed` for a round: the prompt first, then each successful answer in the
/// order given, embedded together in batches of `batch_size`.
pub fn embedding_events(
    embedder: &Embedder,
    challenge: &ChallengeIssued,
    responses: &[ResponseReceived],
    batch_size: usize,
) -> Result<Vec<EmbeddingComputed>, EmbedError> {
    let mut texts = vec![(PROMPT_EMBEDDING_UID, challenge.prompt.as_str())];
    for response in responses {
        if response.challenge_id != challenge.challenge_id {
            continue;
        }
        if let ResponseOutcome::Ok { body } = &response.outcome {
            texts.push((response.uid, body.as_str()));
        }
    }
    let only_texts: Vec<&str> = texts.iter().map(|(_, text)| *text).collect();
    let embeddings = embedder.embed(&only_texts, batch_size)?;
    Ok(texts
        .iter()
        .zip(embeddings)
        .map(|((uid, _), values)| {
            let quantized = quantize::quantize(&values);
            EmbeddingComputed {
                challenge_id: challenge.challenge_id.clone(),
                uid: *uid,
                model_hash: embedder.model_hash(),
                scale: quantized.scale,
                vector: quantized.vector,
            }
        })
        .collect())
}

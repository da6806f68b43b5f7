//! JSON Schema documents for the JSON form of events, for tools in other languages.
//!
//! The files in `schema/json/` are generated from the Rust types by [`json_schemas`];
//! a test fails when they are not current, and `weightlog schema --out schema/json`
//! regenerates them.

use schemars::JsonSchema;

use crate::event::*;

/// `(file name, pretty JSON text)` for the whole event and for each kind's payload.
pub fn json_schemas() -> Vec<(String, String)> {
    fn document<T: JsonSchema>(name: &str) -> (String, String) {
        let schema = schemars::schema_for!(T);
        // Serialising a schema (a JSON value) cannot fail.
        let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
        (format!("{name}.schema.json"), text)
    }
    vec![
        document::<Event>("Event"),
        document::<SequencedEvent>("SequencedEvent"),
        document::<LogOpened>("LogOpened"),
        document::<ProfileChanged>("ProfileChanged"),
        document::<MetagraphObserved>("MetagraphObserved"),
        document::<EnvironmentRegistered>("EnvironmentRegistered"),
        document::<ChallengeIssued>("ChallengeIssued"),
        document::<ResponseReceived>("ResponseReceived"),
        document::<EmbeddingComputed>("EmbeddingComputed"),
        document::<EvaluationRecorded>("EvaluationRecorded"),
        document::<ExternalScoreRecorded>("ExternalScoreRecorded"),
        document::<GroundTruthRevealed>("GroundTruthRevealed"),
        document::<WeightsComputed>("WeightsComputed"),
        document::<WeightsSubmitted>("WeightsSubmitted"),
    ]
}

//! The `evaluate` section's input: the miners' responses, the optional Tier-4 quality scores
//! and node map, and the configuration overrides.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use serde::Deserialize;
use serde_json::Value;

use crate::MechanismError;

use super::fields::{finite, object, optional, refuse_unknown, required, required_array};
use super::quality::python_strip;

/// Responses whose stripped text starts with this are test-mode answers: emission 0, removed.
const TEST_MODE_PREFIX: &str = "[TEST MODE]";

/// The configuration overrides of specs/mechanism-io/README.md ("`config` overrides", loosh
/// evaluate), with upstream's production values as defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateConfig {
    pub quality_threshold: f64,
    pub w_relevance: f64,
    pub w_density: f64,
    pub w_specificity: f64,
    pub w_coherence: f64,
    pub min_raw_prompt_relevance: f64,
    pub single_miner_min_relevance: f64,
    pub outlier_min_responses: usize,
    pub clustering_min_responses: usize,
    pub outlier_quality_delta: f64,
    pub lof_neighbors: usize,
    pub lof_offset: f64,
    pub cluster_distance_threshold: f64,
    pub lambda_factor: f64,
    pub threshold_min: f64,
    pub diversity: bool,
    pub max_diversity_bonus: f64,
    pub diversity_quality_gate: f64,
    pub use_confidence: bool,
    pub consensus_bonus: f64,
    pub diff_scale: f64,
    pub diff_max_bonus: f64,
    pub diff_max_multiplier: f64,
    pub entity_caps: bool,
    pub entity_max_votes: f64,
    pub entity_min_group: usize,
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        EvaluateConfig {
            quality_threshold: 0.35,
            w_relevance: 0.4,
            w_density: 0.2,
            w_specificity: 0.2,
            w_coherence: 0.2,
            min_raw_prompt_relevance: 0.20,
            single_miner_min_relevance: 0.20,
            outlier_min_responses: 3,
            clustering_min_responses: 2,
            outlier_quality_delta: 0.15,
            lof_neighbors: 2,
            lof_offset: -1.5,
            cluster_distance_threshold: 0.5,
            lambda_factor: 1.0,
            threshold_min: 0.7,
            diversity: true,
            max_diversity_bonus: 0.15,
            diversity_quality_gate: 0.6,
            use_confidence: true,
            consensus_bonus: 1.2,
            diff_scale: 0.1,
            diff_max_bonus: 0.5,
            diff_max_multiplier: 1.5,
            entity_caps: true,
            entity_max_votes: 1.0,
            entity_min_group: 2,
        }
    }
}

impl EvaluateConfig {
    fn validate(&self) -> Result<(), MechanismError> {
        let numbers = [
            ("quality_threshold", self.quality_threshold),
            ("w_relevance", self.w_relevance),
            ("w_density", self.w_density),
            ("w_specificity", self.w_specificity),
            ("w_coherence", self.w_coherence),
            ("min_raw_prompt_relevance", self.min_raw_prompt_relevance),
            (
                "single_miner_min_relevance",
                self.single_miner_min_relevance,
            ),
            ("outlier_quality_delta", self.outlier_quality_delta),
            ("lof_offset", self.lof_offset),
            (
                "cluster_distance_threshold",
                self.cluster_distance_threshold,
            ),
            ("lambda_factor", self.lambda_factor),
            ("threshold_min", self.threshold_min),
            ("max_diversity_bonus", self.max_diversity_bonus),
            ("diversity_quality_gate", self.diversity_quality_gate),
            ("consensus_bonus", self.consensus_bonus),
            ("diff_scale", self.diff_scale),
            ("diff_max_bonus", self.diff_max_bonus),
            ("diff_max_multiplier", self.diff_max_multiplier),
            ("entity_max_votes", self.entity_max_votes),
        ];
        for (name, value) in numbers {
            finite(value, format_args!("evaluate.config.{name}"))?;
        }
        if self.lof_neighbors == 0 {
            return Err(MechanismError::invalid(
                "`evaluate.config.lof_neighbors` must be at least 1 (scikit-learn refuses 0)",
            ));
        }
        if self.diversity_quality_gate == 0.0 {
            return Err(MechanismError::invalid(
                "`evaluate.config.diversity_quality_gate` must not be 0 (it divides the quality)",
            ));
        }
        if self.entity_min_group == 0 {
            return Err(MechanismError::invalid(
                "`evaluate.config.entity_min_group` must be at least 1",
            ));
        }
        Ok(())
    }
}

/// One miner's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub uid: u16,
    pub hotkey: String,
    pub text: String,
    pub embedding: Vec<f64>,
    pub response_time_ms: f64,
    /// Upstream passes no confidences, so every response counts 1.0 unless the input says
    /// otherwise.
    pub confidence: f64,
}

/// A node's advertised IP and its coldkey, for the entity voting caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub ip: String,
    pub coldkey: String,
}

/// The `evaluate` section.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateInput {
    pub prompt_embedding: Vec<f64>,
    pub responses: Vec<Response>,
    /// Tier-4 composite quality per non-test-mode response, in input order; `None` selects the
    /// heuristic scorer.
    pub quality_scores: Option<Vec<f64>>,
    pub node_map: BTreeMap<String, NodeEntry>,
    pub config: EvaluateConfig,
}

/// A node-map entry as written: `[ip, coldkey]`, either of which may be null.
type RawNodeEntry = (Option<String>, Option<String>);

const EVALUATE_KEYS: [&str; 5] = [
    "prompt_embedding",
    "responses",
    "quality_scores",
    "node_map",
    "config",
];
const RESPONSE_KEYS: [&str; 6] = [
    "uid",
    "hotkey",
    "text",
    "embedding",
    "response_time_ms",
    "confidence",
];

fn finite_vector(values: &[f64], path: impl Display) -> Result<(), MechanismError> {
    for (index, value) in values.iter().enumerate() {
        finite(*value, format_args!("{path}[{index}]"))?;
    }
    Ok(())
}

impl EvaluateInput {
    /// Reads and checks the `evaluate` section; every error names the offending field.
    pub fn from_json(section: &Value) -> Result<Self, MechanismError> {
        let path = "evaluate";
        let fields = object(section, path)?;
        refuse_unknown(fields, &EVALUATE_KEYS, path)?;
        let prompt_embedding: Vec<f64> = required(fields, "prompt_embedding", path)?;
        if prompt_embedding.is_empty() {
            return Err(MechanismError::invalid(
                "`evaluate.prompt_embedding` must not be empty",
            ));
        }
        finite_vector(&prompt_embedding, "evaluate.prompt_embedding")?;
        let raw_responses = required_array(fields, "responses", path)?;
        let mut responses = Vec::with_capacity(raw_responses.len());
        let mut uids = BTreeSet::new();
        let mut hotkeys = BTreeSet::new();
        for (index, raw) in raw_responses.iter().enumerate() {
            let response_path = format_args!("evaluate.responses[{index}]");
            let response_fields = object(raw, response_path)?;
            refuse_unknown(response_fields, &RESPONSE_KEYS, response_path)?;
            let response = Response {
                uid: required(response_fields, "uid", response_path)?,
                hotkey: required(response_fields, "hotkey", response_path)?,
                text: required(response_fields, "text", response_path)?,
                embedding: required(response_fields, "embedding", response_path)?,
                response_time_ms: required(response_fields, "response_time_ms", response_path)?,
                confidence: optional(response_fields, "confidence", response_path)?.unwrap_or(1.0),
            };
            if response.embedding.len() != prompt_embedding.len() {
                return Err(MechanismError::invalid(format!(
                    "`{response_path}.embedding` has {} dimensions but the prompt embedding has {}",
                    response.embedding.len(),
                    prompt_embedding.len()
                )));
            }
            finite_vector(
                &response.embedding,
                format_args!("{response_path}.embedding"),
            )?;
            finite(
                response.response_time_ms,
                format_args!("{response_path}.response_time_ms"),
            )?;
            if response.response_time_ms < 0.0 {
                return Err(MechanismError::invalid(format!(
                    "`{response_path}.response_time_ms` must not be negative, got {}",
                    response.response_time_ms
                )));
            }
            finite(
                response.confidence,
                format_args!("{response_path}.confidence"),
            )?;
            // Upstream keys its label maps by `str(uid)` and its emissions by hotkey, so a
            // repeated uid or hotkey would silently overwrite another miner's entry.
            if !uids.insert(response.uid) {
                return Err(MechanismError::invalid(format!(
                    "`{response_path}.uid` {} appears twice; uids must be unique",
                    response.uid
                )));
            }
            if !hotkeys.insert(response.hotkey.clone()) {
                return Err(MechanismError::invalid(format!(
                    "`{response_path}.hotkey` {} appears twice; hotkeys must be unique",
                    response.hotkey
                )));
            }
            responses.push(response);
        }
        let quality_scores: Option<Vec<f64>> = optional(fields, "quality_scores", path)?;
        if let Some(scores) = &quality_scores {
            finite_vector(scores, "evaluate.quality_scores")?;
            let valid = responses.iter().filter(|r| !is_test_mode(&r.text)).count();
            if scores.len() != valid {
                return Err(MechanismError::invalid(format!(
                    "`evaluate.quality_scores` has {} entries but there are {valid} responses \
                     that are not [TEST MODE]; it is indexed over those",
                    scores.len()
                )));
            }
        }
        let raw_node_map: Option<BTreeMap<String, RawNodeEntry>> =
            optional(fields, "node_map", path)?;
        let node_map = raw_node_map
            .unwrap_or_default()
            .into_iter()
            .map(|(hotkey, (ip, coldkey))| {
                (
                    hotkey,
                    NodeEntry {
                        ip: ip.unwrap_or_default(),
                        coldkey: coldkey.unwrap_or_default(),
                    },
                )
            })
            .collect();
        let config: EvaluateConfig = optional(fields, "config", path)?.unwrap_or_default();
        config.validate()?;
        Ok(EvaluateInput {
            prompt_embedding,
            responses,
            quality_scores,
            node_map,
            config,
        })
    }
}

pub fn is_test_mode(text: &str) -> bool {
    python_strip(text).starts_with(TEST_MODE_PREFIX)
}

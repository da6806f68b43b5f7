//! Entity voting caps (`cap_entity_contributions`): miners that share an IP or a coldkey are
//! probably one operator, so their combined vote is capped.

use std::collections::BTreeMap;

use super::evaluate_input::{EvaluateConfig, NodeEntry};

/// `cap_entity_contributions`: miners sharing an IP (ignoring "", "0", "0.0.0.0") in groups of
/// at least `entity_min_group` get `min(1, entity_max_votes / N)`; miners not capped by IP are
/// then grouped by coldkey and take the smaller of their weight and the coldkey cap. Miners
/// without node data keep 1.0.
pub fn entity_weights(
    hotkeys: &[&str],
    node_map: &BTreeMap<String, NodeEntry>,
    config: &EvaluateConfig,
) -> Vec<f64> {
    let mut weights = vec![1.0; hotkeys.len()];
    let mut ip_groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, hotkey) in hotkeys.iter().enumerate() {
        if let Some(node) = node_map.get(*hotkey)
            && !node.ip.is_empty()
            && node.ip != "0"
            && node.ip != "0.0.0.0"
        {
            ip_groups.entry(node.ip.as_str()).or_default().push(index);
        }
    }
    let mut ip_capped = vec![false; hotkeys.len()];
    for members in ip_groups.values() {
        if members.len() < config.entity_min_group {
            continue;
        }
        let cap = f64::min(1.0, config.entity_max_votes / members.len() as f64);
        for &member in members {
            weights[member] = cap;
            ip_capped[member] = true;
        }
    }
    let mut coldkey_groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, hotkey) in hotkeys.iter().enumerate() {
        if ip_capped[index] {
            continue;
        }
        if let Some(node) = node_map.get(*hotkey)
            && !node.coldkey.is_empty()
        {
            coldkey_groups
                .entry(node.coldkey.as_str())
                .or_default()
                .push(index);
        }
    }
    for members in coldkey_groups.values() {
        if members.len() < config.entity_min_group {
            continue;
        }
        let cap = f64::min(1.0, config.entity_max_votes / members.len() as f64);
        for &member in members {
            weights[member] = f64::min(weights[member], cap);
        }
    }
    weights
}

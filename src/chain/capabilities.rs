//! The start-up check: does the connected runtime have every call, storage item and runtime
//! API weightlog uses? Missing required items stop the client with their names; optional
//! ones select a fallback (storage maps instead of `get_metagraph`, the modulo epoch rule on
//! runtimes before the stateful scheduler).

use subxt::Metadata;

/// The pallet every call and storage item below lives in.
pub const PALLET: &str = "SubtensorModule";

/// Calls we submit.
pub const REQUIRED_CALLS: &[&str] = &[
    "set_mechanism_weights",
    "commit_timelocked_mechanism_weights",
];

/// Storage items every submission reads.
pub const REQUIRED_STORAGE: &[&str] = &[
    "SubnetworkN",
    "Uids",
    "Keys",
    "ValidatorPermit",
    "LastUpdate",
    "Tempo",
    "CommitRevealWeightsEnabled",
    "CommitRevealWeightsVersion",
    "RevealPeriodEpochs",
    "WeightsVersionKey",
    "WeightsSetRateLimit",
    "MinAllowedWeights",
    "MaxWeightsLimit",
    "MechanismCountCurrent",
];

/// Storage maps the metagraph is read from when `get_metagraph` is absent.
pub const METAGRAPH_FALLBACK_STORAGE: &[&str] = &[
    "Active",
    "Axons",
    "Owner",
    "BlockAtRegistration",
    "TotalHotkeyAlpha",
];

/// The stateful epoch scheduler's storage (spec 423 and later).
pub const EPOCH_SCHEDULER_STORAGE: &[&str] = &[
    "LastEpochBlock",
    "PendingEpochAt",
    "SubnetEpochIndex",
    "BlocksSinceLastStep",
];

/// Runtime APIs subxt itself needs to sign (the account nonce).
const REQUIRED_RUNTIME_APIS: &[(&str, &str)] = &[("AccountNonceApi", "account_nonce")];

const METAGRAPH_API: (&str, &str) = ("SubnetInfoRuntimeApi", "get_metagraph");

/// What the runtime offers beyond the required items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// `SubnetInfoRuntimeApi.get_metagraph` is available.
    pub metagraph_api: bool,
    /// The stateful epoch scheduler's storage is available.
    pub stateful_epochs: bool,
    /// `SubnetOwnerHotkey` is available (the owner is exempt from the permit check).
    pub subnet_owner_hotkey: bool,
}

/// Checks `metadata` for everything we use. `Err` lists every missing item as
/// `Pallet.call(name)`, `Pallet.storage(Name)` or `Api.method`.
pub fn check_metadata(metadata: &Metadata) -> Result<Capabilities, Vec<String>> {
    let mut missing = Vec::new();
    let pallet = metadata.pallet_by_name(PALLET);
    for call in REQUIRED_CALLS {
        if pallet.and_then(|p| p.call_variant_by_name(call)).is_none() {
            missing.push(format!("{PALLET}.call({call})"));
        }
    }
    let has_storage = |name: &str| {
        pallet
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(name))
            .is_some()
    };
    for item in REQUIRED_STORAGE {
        if !has_storage(item) {
            missing.push(format!("{PALLET}.storage({item})"));
        }
    }
    let has_api = |(api, method): (&str, &str)| {
        metadata
            .runtime_api_trait_by_name(api)
            .and_then(|t| t.method_by_name(method))
            .is_some()
    };
    for &(api, method) in REQUIRED_RUNTIME_APIS {
        if !has_api((api, method)) {
            missing.push(format!("{api}.{method}"));
        }
    }
    let metagraph_api = has_api(METAGRAPH_API);
    if !metagraph_api {
        for item in METAGRAPH_FALLBACK_STORAGE {
            if !has_storage(item) {
                missing.push(format!(
                    "{PALLET}.storage({item}) (needed because {}.{} is absent)",
                    METAGRAPH_API.0, METAGRAPH_API.1
                ));
            }
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(Capabilities {
        metagraph_api,
        stateful_epochs: EPOCH_SCHEDULER_STORAGE.iter().all(|item| has_storage(item)),
        subnet_owner_hotkey: has_storage("SubnetOwnerHotkey"),
    })
}

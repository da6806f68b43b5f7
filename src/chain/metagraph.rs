//! Reading a subnet at a pinned block: the metagraph (one `get_metagraph` runtime call, or the
//! storage maps when the runtime lacks it) and the weight-setting state.

use std::net::{Ipv4Addr, Ipv6Addr};

use subxt::ext::futures::{StreamExt, TryStreamExt, stream};
use subxt::utils::H256;
use subxt::{OnlineClient, SubstrateConfig};
use weightlog_schema::event::{AccountId, Axon, MetagraphObserved, Neuron, WeightHyperparameters};
use weightlog_schema::hash::Hash;

use super::capabilities::{Capabilities, PALLET};
use super::epoch::{EpochSchedule, EpochState};
use super::values::{
    Value, account_of, bool_of, field, list_of, option_of, u8_of, u16_of, u64_of, u128_of,
};
use super::{BlockRef, ChainError, OwnNeuron, SubnetState};

/// Storage reads in flight at once when the metagraph comes from storage maps.
const STORAGE_READS_CONCURRENT_MAX: usize = 16;
/// `NetUidStorageIndex = mechanism * 4096 + netuid` (`GLOBAL_MAX_SUBNET_COUNT`).
const SUBNET_COUNT_MAX: u16 = 4096;

type Client = OnlineClient<SubstrateConfig>;

/// The storage index of a mechanism's per-uid weight data.
pub fn netuid_storage_index(netuid: u16, mechanism_id: u8) -> u16 {
    u16::from(mechanism_id)
        .saturating_mul(SUBNET_COUNT_MAX)
        .saturating_add(netuid)
}

type Key = subxt::dynamic::Value;

fn key(number: impl Into<u128>) -> Key {
    Key::u128(number.into())
}

fn account_key(account: &[u8; 32]) -> Key {
    Key::from_bytes(account)
}

/// One storage value at `at`; the entry's default when it was never written.
async fn storage_value(
    client: &Client,
    at: H256,
    entry: &str,
    keys: Vec<Key>,
) -> Result<Value, ChainError> {
    let address = subxt::dynamic::storage(PALLET, entry, keys);
    let thunk = client
        .storage()
        .at(at)
        .fetch_or_default(&address)
        .await
        .map_err(ChainError::rpc(format!("read {PALLET}.{entry}")))?;
    thunk
        .to_value()
        .map_err(|err| ChainError::decode(format!("{PALLET}.{entry}"), err))
}

/// One storage value of an `OptionQuery` entry; `None` when absent.
async fn storage_option(
    client: &Client,
    at: H256,
    entry: &str,
    keys: Vec<Key>,
) -> Result<Option<Value>, ChainError> {
    let address = subxt::dynamic::storage(PALLET, entry, keys);
    let thunk = client
        .storage()
        .at(at)
        .fetch(&address)
        .await
        .map_err(ChainError::rpc(format!("read {PALLET}.{entry}")))?;
    thunk
        .map(|thunk| {
            thunk
                .to_value()
                .map_err(|err| ChainError::decode(format!("{PALLET}.{entry}"), err))
        })
        .transpose()
}

async fn storage_u64(
    client: &Client,
    at: H256,
    entry: &str,
    netuid: u16,
) -> Result<u64, ChainError> {
    let value = storage_value(client, at, entry, vec![key(netuid)]).await?;
    u64_of(&value, entry)
}

async fn storage_u16(
    client: &Client,
    at: H256,
    entry: &str,
    netuid: u16,
) -> Result<u16, ChainError> {
    let value = storage_value(client, at, entry, vec![key(netuid)]).await?;
    u16_of(&value, entry)
}

/// The weight hyper-parameters of `netuid` at `at`.
pub async fn weight_hyperparameters(
    client: &Client,
    at: H256,
    netuid: u16,
) -> Result<WeightHyperparameters, ChainError> {
    let enabled =
        storage_value(client, at, "CommitRevealWeightsEnabled", vec![key(netuid)]).await?;
    let version = storage_value(client, at, "CommitRevealWeightsVersion", vec![]).await?;
    Ok(WeightHyperparameters {
        tempo: storage_u16(client, at, "Tempo", netuid).await?,
        min_allowed_weights: storage_u16(client, at, "MinAllowedWeights", netuid).await?,
        max_weights_limit: storage_u16(client, at, "MaxWeightsLimit", netuid).await?,
        weights_version_key: storage_u64(client, at, "WeightsVersionKey", netuid).await?,
        weights_rate_limit_blocks: storage_u64(client, at, "WeightsSetRateLimit", netuid).await?,
        commit_reveal_enabled: bool_of(&enabled, "CommitRevealWeightsEnabled")?,
        reveal_period_epochs: storage_u64(client, at, "RevealPeriodEpochs", netuid).await?,
        commit_reveal_version: u16_of(&version, "CommitRevealWeightsVersion")?,
    })
}

fn bool_at(list: &[&Value], uid: u16, what: &str) -> Result<bool, ChainError> {
    match list.get(usize::from(uid)) {
        Some(value) => bool_of(value, what),
        None => Ok(false),
    }
}

/// Everything a submission depends on, for `hotkey` on `netuid` / `mechanism_id`.
#[allow(clippy::too_many_arguments)]
pub async fn subnet_state(
    client: &Client,
    capabilities: &Capabilities,
    block: BlockRef,
    spec_version: u32,
    netuid: u16,
    mechanism_id: u8,
    hotkey: &[u8; 32],
) -> Result<SubnetState, ChainError> {
    let at = H256(block.hash.0);
    let hyperparameters = weight_hyperparameters(client, at, netuid).await?;
    let subnetwork_n = storage_u16(client, at, "SubnetworkN", netuid).await?;
    let mechanisms = storage_value(client, at, "MechanismCountCurrent", vec![key(netuid)]).await?;
    let mechanism_count = u8_of(&mechanisms, "MechanismCountCurrent")?;
    let epoch = if capabilities.stateful_epochs {
        EpochSchedule::Stateful(EpochState {
            head_block: block.number,
            tempo: hyperparameters.tempo,
            last_epoch_block: storage_u64(client, at, "LastEpochBlock", netuid).await?,
            pending_epoch_at: storage_u64(client, at, "PendingEpochAt", netuid).await?,
            subnet_epoch_index: storage_u64(client, at, "SubnetEpochIndex", netuid).await?,
            blocks_since_last_step: storage_u64(client, at, "BlocksSinceLastStep", netuid).await?,
        })
    } else {
        EpochSchedule::Modulo {
            head_block: block.number,
            netuid,
            tempo: hyperparameters.tempo,
        }
    };
    let uid = storage_option(client, at, "Uids", vec![key(netuid), account_key(hotkey)]).await?;
    let own = match uid {
        None => None,
        Some(uid) => {
            let uid = u16_of(&uid, "Uids")?;
            let permits = storage_value(client, at, "ValidatorPermit", vec![key(netuid)]).await?;
            let index = netuid_storage_index(netuid, mechanism_id);
            let updates = storage_value(client, at, "LastUpdate", vec![key(index)]).await?;
            let updates = list_of(&updates, "LastUpdate")?;
            let last_update_block = match updates.get(usize::from(uid)) {
                Some(value) => u64_of(value, "LastUpdate")?,
                None => 0,
            };
            let is_subnet_owner = if capabilities.subnet_owner_hotkey {
                let owner =
                    storage_value(client, at, "SubnetOwnerHotkey", vec![key(netuid)]).await?;
                account_of(&owner, "SubnetOwnerHotkey")? == *hotkey
            } else {
                false
            };
            Some(OwnNeuron {
                uid,
                validator_permit: bool_at(
                    &list_of(&permits, "ValidatorPermit")?,
                    uid,
                    "ValidatorPermit",
                )?,
                last_update_block,
                is_subnet_owner,
            })
        }
    };
    Ok(SubnetState {
        netuid,
        block,
        spec_version,
        hotkey: AccountId(*hotkey),
        hyperparameters,
        subnetwork_n,
        mechanism_count: mechanism_count.max(1),
        epoch,
        own,
    })
}

/// `AxonInfo` -> where the miner serves; `None` when `ip` is 0 (not serving).
fn axon_of(value: &Value) -> Result<Option<Axon>, ChainError> {
    let what = "AxonInfo";
    let ip = u128_of(field(value, "ip", what)?, what)?;
    if ip == 0 {
        return Ok(None);
    }
    let ip_type = u8_of(field(value, "ip_type", what)?, what)?;
    let ip = match ip_type {
        4 => {
            let v4 = u32::try_from(ip).map_err(|_| {
                ChainError::decode(what, format!("IPv4 address {ip} exceeds 32 bits"))
            })?;
            Ipv4Addr::from(v4).to_string()
        }
        6 => Ipv6Addr::from(ip).to_string(),
        other => return Err(ChainError::decode(what, format!("ip_type {other}"))),
    };
    Ok(Some(Axon {
        ip,
        port: u16_of(field(value, "port", what)?, what)?,
        protocol: u8_of(field(value, "protocol", what)?, what)?,
        version: u32::try_from(u128_of(field(value, "version", what)?, what)?)
            .map_err(|_| ChainError::decode(what, "version exceeds u32"))?,
    }))
}

/// The neurons from a decoded `SubnetInfoRuntimeApi.get_metagraph` answer.
pub fn neurons_from_metagraph_value(value: &Value) -> Result<Vec<Neuron>, ChainError> {
    let what = "SubnetInfoRuntimeApi.get_metagraph";
    let column = |name: &str| -> Result<Vec<&Value>, ChainError> {
        list_of(field(value, name, what)?, &format!("{what}.{name}"))
    };
    let hotkeys = column("hotkeys")?;
    let coldkeys = column("coldkeys")?;
    let axons = column("axons")?;
    let active = column("active")?;
    let permits = column("validator_permit")?;
    let registrations = column("block_at_registration")?;
    let stakes = column("total_stake")?;
    let count = hotkeys.len();
    for (name, len) in [
        ("coldkeys", coldkeys.len()),
        ("axons", axons.len()),
        ("active", active.len()),
        ("validator_permit", permits.len()),
        ("block_at_registration", registrations.len()),
        ("total_stake", stakes.len()),
    ] {
        if len != count {
            return Err(ChainError::decode(
                what,
                format!("{count} hotkeys but {len} entries in `{name}`"),
            ));
        }
    }
    let mut neurons = Vec::with_capacity(count);
    for index in 0..count {
        let uid =
            u16::try_from(index).map_err(|_| ChainError::decode(what, "more than 65536 uids"))?;
        neurons.push(Neuron {
            uid,
            hotkey: AccountId(account_of(hotkeys[index], "hotkeys")?),
            coldkey: AccountId(account_of(coldkeys[index], "coldkeys")?),
            stake_rao: u64_of(stakes[index], "total_stake")?,
            validator_permit: bool_of(permits[index], "validator_permit")?,
            active: bool_of(active[index], "active")?,
            registration_block: u64_of(registrations[index], "block_at_registration")?,
            axon: axon_of(axons[index])?,
        });
    }
    Ok(neurons)
}

async fn neurons_from_runtime_api(
    client: &Client,
    at: H256,
    netuid: u16,
    block: u64,
) -> Result<Vec<Neuron>, ChainError> {
    let call = subxt::dynamic::runtime_api_call(
        "SubnetInfoRuntimeApi",
        "get_metagraph",
        vec![subxt::dynamic::Value::u128(u128::from(netuid))],
    );
    let thunk = client
        .runtime_api()
        .at(at)
        .call(call)
        .await
        .map_err(ChainError::rpc("call SubnetInfoRuntimeApi.get_metagraph"))?;
    let value = thunk
        .to_value()
        .map_err(|err| ChainError::decode("SubnetInfoRuntimeApi.get_metagraph", err))?;
    match option_of(&value, "SubnetInfoRuntimeApi.get_metagraph")? {
        Some(metagraph) => neurons_from_metagraph_value(metagraph),
        None => Err(ChainError::NoSuchSubnet { netuid, block }),
    }
}

async fn neuron_from_storage(
    client: &Client,
    at: H256,
    netuid: u16,
    uid: u16,
    active: &[&Value],
    permits: &[&Value],
) -> Result<Neuron, ChainError> {
    let hotkey = storage_value(client, at, "Keys", vec![key(netuid), key(uid)]).await?;
    let hotkey = account_of(&hotkey, "Keys")?;
    let coldkey = storage_value(client, at, "Owner", vec![account_key(&hotkey)]).await?;
    let registration = storage_value(
        client,
        at,
        "BlockAtRegistration",
        vec![key(netuid), key(uid)],
    )
    .await?;
    let stake = storage_value(
        client,
        at,
        "TotalHotkeyAlpha",
        vec![account_key(&hotkey), key(netuid)],
    )
    .await?;
    let axon = storage_option(client, at, "Axons", vec![key(netuid), account_key(&hotkey)]).await?;
    Ok(Neuron {
        uid,
        hotkey: AccountId(hotkey),
        coldkey: AccountId(account_of(&coldkey, "Owner")?),
        stake_rao: u64_of(&stake, "TotalHotkeyAlpha")?,
        validator_permit: bool_at(permits, uid, "ValidatorPermit")?,
        active: bool_at(active, uid, "Active")?,
        registration_block: u64_of(&registration, "BlockAtRegistration")?,
        axon: axon.as_ref().map(axon_of).transpose()?.flatten(),
    })
}

/// The metagraph from storage maps: `Keys`, `Owner`, `Axons`, `BlockAtRegistration`,
/// `TotalHotkeyAlpha` (stake in alpha rao, not TAO-weighted), `Active`, `ValidatorPermit`.
async fn neurons_from_storage(
    client: &Client,
    at: H256,
    netuid: u16,
) -> Result<Vec<Neuron>, ChainError> {
    let n = storage_u16(client, at, "SubnetworkN", netuid).await?;
    let active = storage_value(client, at, "Active", vec![key(netuid)]).await?;
    let permits = storage_value(client, at, "ValidatorPermit", vec![key(netuid)]).await?;
    let active = list_of(&active, "Active")?;
    let permits = list_of(&permits, "ValidatorPermit")?;
    let (active, permits) = (&active[..], &permits[..]);
    stream::iter(0..n)
        .map(|uid| neuron_from_storage(client, at, netuid, uid, active, permits))
        .buffered(STORAGE_READS_CONCURRENT_MAX)
        .try_collect()
        .await
}

/// The metagraph of `netuid` at `block`, as the event the node appends.
pub async fn metagraph(
    client: &Client,
    capabilities: &Capabilities,
    block: BlockRef,
    spec_version: u32,
    netuid: u16,
) -> Result<MetagraphObserved, ChainError> {
    let at = H256(block.hash.0);
    let neurons = if capabilities.metagraph_api {
        neurons_from_runtime_api(client, at, netuid, block.number).await?
    } else {
        neurons_from_storage(client, at, netuid).await?
    };
    Ok(MetagraphObserved {
        netuid,
        block: block.number,
        block_hash: Hash(block.hash.0),
        spec_version,
        neurons,
        hyperparameters: weight_hyperparameters(client, at, netuid).await?,
    })
}

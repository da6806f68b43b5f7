//! The two weight calls as dynamic payloads, and decoding call data and signed extrinsics
//! back (for `chain set-weights --dry-run` and tests).
//!
//! `set_mechanism_weights(netuid, mecid, dests: Vec<u16>, weights: Vec<u16>, version_key)`
//! (call 119) and `commit_timelocked_mechanism_weights(netuid, mecid, commit:
//! BoundedVec<u8, 5000>, reveal_round: u64, commit_reveal_version: u16)` (call 118) of
//! `SubtensorModule` (specs/chain.md section 1). Arguments are given by position and
//! encoded against the connected runtime's types, so `NetUid`/`MechId` newtypes need no
//! generated code.

use std::fmt;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use subxt::client::{OfflineClient, RuntimeVersion};
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::ext::codec::Encode;
use subxt::ext::scale_value::Composite;
use subxt::tx::DynamicPayload;
use subxt::utils::H256;
use subxt::{Metadata, SubstrateConfig};

use super::capabilities::PALLET;
use super::signer::HotkeySigner;
use super::values::Value;
use super::{ChainError, MORTALITY_BLOCKS};

/// The arguments of one weight call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsCallArgs {
    /// `set_mechanism_weights`: commit-reveal off.
    Set {
        netuid: u16,
        mechanism_id: u8,
        uids: Vec<u16>,
        weights: Vec<u16>,
        version_key: u64,
    },
    /// `commit_timelocked_mechanism_weights`: commit-reveal v4.
    CommitTimelocked {
        netuid: u16,
        mechanism_id: u8,
        commit: Vec<u8>,
        reveal_round: u64,
        commit_reveal_version: u16,
    },
}

impl WeightsCallArgs {
    pub fn call_name(&self) -> &'static str {
        match self {
            Self::Set { .. } => "set_mechanism_weights",
            Self::CommitTimelocked { .. } => "commit_timelocked_mechanism_weights",
        }
    }
}

fn number(value: impl Into<u128>) -> subxt::dynamic::Value {
    subxt::dynamic::Value::u128(value.into())
}

fn u16_list(values: &[u16]) -> subxt::dynamic::Value {
    subxt::dynamic::Value::unnamed_composite(values.iter().map(|&v| number(v)))
}

/// The dynamic payload of `args`; it is checked against the metadata when encoded.
pub fn weights_call_payload(args: &WeightsCallArgs) -> DynamicPayload {
    let fields = match args {
        WeightsCallArgs::Set {
            netuid,
            mechanism_id,
            uids,
            weights,
            version_key,
        } => vec![
            number(*netuid),
            number(*mechanism_id),
            u16_list(uids),
            u16_list(weights),
            number(*version_key),
        ],
        WeightsCallArgs::CommitTimelocked {
            netuid,
            mechanism_id,
            commit,
            reveal_round,
            commit_reveal_version,
        } => vec![
            number(*netuid),
            number(*mechanism_id),
            subxt::dynamic::Value::from_bytes(commit),
            number(*reveal_round),
            number(*commit_reveal_version),
        ],
    };
    subxt::dynamic::tx(PALLET, args.call_name(), fields)
}

/// A call decoded against the metadata: names and argument values.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedCall {
    pub pallet: String,
    pub call: String,
    pub pallet_index: u8,
    pub call_index: u8,
    pub arguments: Vec<(String, Value)>,
}

impl DecodedCall {
    pub fn argument(&self, name: &str) -> Option<&Value> {
        self.arguments
            .iter()
            .find(|(argument, _)| argument == name)
            .map(|(_, value)| value)
    }
}

impl fmt::Display for DecodedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} (call {}/{})",
            self.pallet, self.call, self.pallet_index, self.call_index
        )?;
        for (name, value) in &self.arguments {
            write!(f, "\n  {name}: {value}")?;
        }
        Ok(())
    }
}

/// Decodes call data (`pallet index, call index, arguments`), refusing trailing bytes.
pub fn decode_call(metadata: &Metadata, call_data: &[u8]) -> Result<DecodedCall, ChainError> {
    let what = "call data";
    let (&pallet_index, rest) = call_data
        .split_first()
        .ok_or_else(|| ChainError::decode(what, "empty"))?;
    let pallet = metadata
        .pallet_by_index(pallet_index)
        .ok_or_else(|| ChainError::decode(what, format!("no pallet with index {pallet_index}")))?;
    let call_type = pallet.call_ty_id().ok_or_else(|| {
        ChainError::decode(what, format!("pallet {} has no calls", pallet.name()))
    })?;
    let mut cursor = rest;
    let value =
        subxt::ext::scale_value::scale::decode_as_type(&mut cursor, call_type, metadata.types())
            .map_err(|err| ChainError::decode(what, err))?;
    if !cursor.is_empty() {
        return Err(ChainError::decode(
            what,
            format!("{} trailing bytes", cursor.len()),
        ));
    }
    let subxt::ext::scale_value::ValueDef::Variant(variant) = value.value else {
        return Err(ChainError::decode(what, "the call is not an enum variant"));
    };
    let call_index = rest.first().copied().unwrap_or_default();
    let arguments = match variant.values {
        Composite::Named(fields) => fields,
        Composite::Unnamed(fields) => fields
            .into_iter()
            .enumerate()
            .map(|(index, value)| (index.to_string(), value))
            .collect(),
    };
    Ok(DecodedCall {
        pallet: pallet.name().to_string(),
        call: variant.name,
        pallet_index,
        call_index,
        arguments,
    })
}

/// A signed extrinsic taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedExtrinsic {
    /// The `MultiAddress::Id` account that signed.
    pub signer: [u8; 32],
    /// The `MultiSignature::Sr25519` signature.
    pub signature: [u8; 64],
    /// The explicit transaction-extension bytes (era, nonce, tip, ...).
    pub extensions: Vec<u8>,
    pub call_data: Vec<u8>,
    pub call: DecodedCall,
}

/// Decodes a signed v4 extrinsic (with its length prefix) signed by an sr25519 account.
pub fn decode_extrinsic(metadata: &Metadata, bytes: &[u8]) -> Result<DecodedExtrinsic, ChainError> {
    let what = "extrinsic";
    let extrinsics = subxt::ext::subxt_core::blocks::decode_from::<SubstrateConfig>(
        vec![bytes.to_vec()],
        metadata.clone(),
    )
    .map_err(|err| ChainError::decode(what, err))?;
    let details = extrinsics
        .iter()
        .next()
        .ok_or_else(|| ChainError::decode(what, "no extrinsic"))?;
    let address = details
        .address_bytes()
        .ok_or_else(|| ChainError::decode(what, "not signed"))?;
    // MultiAddress::Id is variant 0 followed by the 32-byte account.
    let signer = match address.split_first() {
        Some((0, account)) => <[u8; 32]>::try_from(account)
            .map_err(|_| ChainError::decode(what, "account id is not 32 bytes"))?,
        _ => return Err(ChainError::decode(what, "signer is not a MultiAddress::Id")),
    };
    // MultiSignature::Sr25519 is variant 1 followed by 64 bytes.
    let signature = match details.signature_bytes().and_then(|s| s.split_first()) {
        Some((1, signature)) => <[u8; 64]>::try_from(signature)
            .map_err(|_| ChainError::decode(what, "signature is not 64 bytes"))?,
        _ => return Err(ChainError::decode(what, "signature is not sr25519")),
    };
    let call_data = details.call_bytes().to_vec();
    Ok(DecodedExtrinsic {
        signer,
        signature,
        extensions: details
            .transaction_extensions_bytes()
            .unwrap_or_default()
            .to_vec(),
        call: decode_call(metadata, &call_data)?,
        call_data,
    })
}

/// The CR-v2 commit hash (`get_commit_hash`): blake2-256 of the SCALE tuple
/// `(account, netuid_index, uids, values, salt, version_key)`. Kept for audits of CR-v2
/// history; weightlog itself commits with CR-v4.
pub fn commit_hash_v2(
    account: &[u8; 32],
    netuid_index: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    let bytes = (account, netuid_index, uids, values, salt, version_key).encode();
    Blake2b::<U32>::digest(&bytes).into()
}

/// Signs `call` offline against `metadata`: for tests and for building without a node.
/// `mortal_from` is the checkpoint block `(number, hash)`; `None` makes it immortal.
pub fn build_signed_offline(
    metadata: Metadata,
    genesis_hash: [u8; 32],
    runtime: (u32, u32),
    call: &WeightsCallArgs,
    signer: &HotkeySigner,
    nonce: u64,
    mortal_from: Option<(u64, [u8; 32])>,
) -> Result<Vec<u8>, ChainError> {
    let client = OfflineClient::<SubstrateConfig>::new(
        H256(genesis_hash),
        RuntimeVersion {
            spec_version: runtime.0,
            transaction_version: runtime.1,
        },
        metadata,
    );
    let mut params = DefaultExtrinsicParamsBuilder::<SubstrateConfig>::new().nonce(nonce);
    if let Some((number, hash)) = mortal_from {
        params = params.mortal_from_unchecked(MORTALITY_BLOCKS, number, H256(hash));
    }
    let mut partial = client
        .tx()
        .create_partial_offline(&weights_call_payload(call), params.build())
        .map_err(|err| ChainError::Build(err.to_string()))?;
    Ok(partial.sign(signer).into_encoded())
}

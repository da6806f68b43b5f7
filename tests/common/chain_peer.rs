//! A JSON-RPC peer on loopback that plays a subtensor node for the chain tests: it serves a
//! metadata blob, a runtime version, a short chain of blocks, storage values and runtime-call
//! answers built by the test, and captures the extrinsics submitted to it.
//!
//! Only the legacy RPC methods subxt's `LegacyBackend` uses are answered; anything else gets
//! a "method not found" error and is recorded in `unknown_methods`, so a test that hits a new
//! code path says which method it needs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use subxt::Metadata;
use subxt::ext::codec::Encode;
use subxt::ext::scale_value::{self, Composite, ValueDef};
use subxt::ext::subxt_core::storage::get_address_bytes;
use tokio::net::TcpListener;
use tokio_util::compat::TokioAsyncReadCompatExt;

pub type Value = scale_value::Value<()>;

/// What the peer does with the next submitted extrinsic.
#[derive(Debug, Clone)]
pub enum SubmitBehaviour {
    /// Accept it and put it in a new block (reported `ready`, `inBlock`, `finalized`).
    Include,
    /// Refuse it at submission with JSON-RPC error 1010 and this `data`.
    Reject(String),
    /// Accept it and never report a block.
    Stall,
}

#[derive(Debug)]
pub struct PeerState {
    pub metadata_bytes: Vec<u8>,
    pub spec_version: u32,
    pub transaction_version: u32,
    /// Block number of the finalized head; blocks 0..=head exist.
    pub head: u64,
    /// Extra extrinsics of blocks above the initial head, by number.
    pub bodies: BTreeMap<u64, Vec<Vec<u8>>>,
    pub storage: BTreeMap<Vec<u8>, Vec<u8>>,
    /// `state_call` answers by method name.
    pub runtime_calls: BTreeMap<String, Vec<u8>>,
    pub account_nonce: u32,
    /// Behaviours for the next submissions, in order; `Include` once empty.
    pub submit_plan: Vec<SubmitBehaviour>,
    /// Every extrinsic submitted (hex-decoded), accepted or not.
    pub submitted: Vec<Vec<u8>>,
    pub unknown_methods: Vec<String>,
}

pub fn block_hash(number: u64) -> [u8; 32] {
    let mut hash = [0xb0; 32];
    hash[24..].copy_from_slice(&number.to_be_bytes());
    hash
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn parse_hex(text: &str) -> Vec<u8> {
    hex::decode(text.trim_start_matches("0x")).expect("hex from the client")
}

/// A block number parameter: a JSON number or a hex string.
fn parse_number(param: &Json) -> Option<u64> {
    match param {
        Json::Number(number) => number.as_u64(),
        Json::String(text) => u64::from_str_radix(text.trim_start_matches("0x"), 16).ok(),
        _ => None,
    }
}

fn number_of_hash(text: &str) -> Option<u64> {
    let bytes = parse_hex(text);
    let hash: [u8; 32] = bytes.try_into().ok()?;
    let number = u64::from_be_bytes(hash[24..].try_into().ok()?);
    (block_hash(number) == hash).then_some(number)
}

impl PeerState {
    pub fn new(metadata_bytes: Vec<u8>, spec_version: u32, head: u64) -> Self {
        Self {
            metadata_bytes,
            spec_version,
            transaction_version: 1,
            head,
            bodies: BTreeMap::new(),
            storage: BTreeMap::new(),
            runtime_calls: BTreeMap::new(),
            account_nonce: 5,
            submit_plan: Vec::new(),
            submitted: Vec::new(),
            unknown_methods: Vec::new(),
        }
    }

    fn header(&self, number: u64) -> Json {
        let parent = if number == 0 {
            [0; 32]
        } else {
            block_hash(number - 1)
        };
        json!({
            "parentHash": hex0x(&parent),
            "number": format!("0x{number:x}"),
            "stateRoot": hex0x(&[0x5a; 32]),
            "extrinsicsRoot": hex0x(&[0xe0; 32]),
            "digest": { "logs": [] },
        })
    }

    /// The block a hash parameter names; the head when absent or null.
    fn block_param(&self, param: Option<&Json>) -> Option<u64> {
        match param {
            None | Some(Json::Null) => Some(self.head),
            Some(Json::String(text)) => number_of_hash(text).filter(|n| *n <= self.head),
            _ => None,
        }
    }

    fn state_call(&self, method: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Metadata_metadata_at_version" => {
                let version = u32::from_le_bytes(data.try_into().map_err(|_| "bad version")?);
                let answer: Option<Vec<u8>> = (version == 16).then(|| self.metadata_bytes.clone());
                Ok(answer.encode())
            }
            "Metadata_metadata_versions" => Ok(vec![16u32].encode()),
            "AccountNonceApi_account_nonce" => Ok(self.account_nonce.encode()),
            other => self
                .runtime_calls
                .get(other)
                .cloned()
                .ok_or_else(|| format!("no runtime call {other}")),
        }
    }
}

/// A running peer: its URL and shared state.
#[derive(Clone)]
pub struct ChainPeer {
    pub url: String,
    pub state: Arc<Mutex<PeerState>>,
}

impl ChainPeer {
    pub async fn start(state: PeerState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(socket, state).await;
                });
            }
        });
        Self {
            url: format!("ws://{address}"),
            state,
        }
    }

    pub fn submitted(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().submitted.clone()
    }

    pub fn with<R>(&self, edit: impl FnOnce(&mut PeerState) -> R) -> R {
        edit(&mut self.state.lock().unwrap())
    }
}

async fn serve_connection(
    socket: tokio::net::TcpStream,
    state: Arc<Mutex<PeerState>>,
) -> Result<(), soketto::connection::Error> {
    let mut server = soketto::handshake::Server::new(socket.compat());
    let key = {
        let request = server
            .receive_request()
            .await
            .map_err(|err| soketto::connection::Error::Io(std::io::Error::other(err)))?;
        request.key()
    };
    server
        .send_response(&soketto::handshake::server::Response::Accept {
            key,
            protocol: None,
        })
        .await
        .map_err(|err| soketto::connection::Error::Io(std::io::Error::other(err)))?;
    let (mut sender, mut receiver) = server.into_builder().finish();
    let mut subscription = 0u64;
    loop {
        let mut message = Vec::new();
        receiver.receive_data(&mut message).await?;
        let request: Json = match serde_json::from_slice(&message) {
            Ok(request) => request,
            Err(_) => continue,
        };
        let id = request["id"].clone();
        let method = request["method"].as_str().unwrap_or_default().to_string();
        let params = request["params"].as_array().cloned().unwrap_or_default();
        let mut notifications = Vec::new();
        let answer = {
            let mut state = state.lock().unwrap();
            handle(
                &mut state,
                &method,
                &params,
                &mut subscription,
                &mut notifications,
            )
        };
        let response = match answer {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        };
        sender.send_text(response.to_string()).await?;
        for notification in notifications {
            sender.send_text(notification.to_string()).await?;
        }
        sender.flush().await?;
    }
}

fn handle(
    state: &mut PeerState,
    method: &str,
    params: &[Json],
    subscription: &mut u64,
    notifications: &mut Vec<Json>,
) -> Result<Json, Json> {
    let not_found = |what: String| json!({ "code": -32602, "message": what });
    match method {
        "chain_getBlockHash" => {
            let number = params.first().and_then(parse_number).unwrap_or(state.head);
            Ok(if number <= state.head {
                json!(hex0x(&block_hash(number)))
            } else {
                Json::Null
            })
        }
        "chain_getFinalizedHead" => Ok(json!(hex0x(&block_hash(state.head)))),
        "chain_getHeader" => Ok(match state.block_param(params.first()) {
            Some(number) => state.header(number),
            None => Json::Null,
        }),
        "chain_getBlock" => Ok(match state.block_param(params.first()) {
            Some(number) => {
                let extrinsics: Vec<String> = state
                    .bodies
                    .get(&number)
                    .map(|body| body.iter().map(|e| hex0x(e)).collect())
                    .unwrap_or_default();
                json!({
                    "block": { "header": state.header(number), "extrinsics": extrinsics },
                    "justifications": null,
                })
            }
            None => Json::Null,
        }),
        "state_getRuntimeVersion" => Ok(json!({
            "specName": "node-subtensor",
            "implName": "node-subtensor",
            "authoringVersion": 1,
            "specVersion": state.spec_version,
            "implVersion": 1,
            "apis": [],
            "transactionVersion": state.transaction_version,
            "stateVersion": 1,
        })),
        "state_call" => {
            let method = params.first().and_then(Json::as_str).unwrap_or_default();
            let data = parse_hex(params.get(1).and_then(Json::as_str).unwrap_or("0x"));
            state
                .state_call(method, &data)
                .map(|bytes| json!(hex0x(&bytes)))
                .map_err(not_found)
        }
        "state_getStorage" => {
            let key = parse_hex(params.first().and_then(Json::as_str).unwrap_or("0x"));
            Ok(match state.storage.get(&key) {
                Some(value) => json!(hex0x(value)),
                None => Json::Null,
            })
        }
        "system_accountNextIndex" => Ok(json!(state.account_nonce)),
        "author_submitAndWatchExtrinsic" | "author_submitExtrinsic" => {
            let bytes = parse_hex(params.first().and_then(Json::as_str).unwrap_or("0x"));
            state.submitted.push(bytes.clone());
            let behaviour = if state.submit_plan.is_empty() {
                SubmitBehaviour::Include
            } else {
                state.submit_plan.remove(0)
            };
            if let SubmitBehaviour::Reject(data) = behaviour {
                return Err(
                    json!({ "code": 1010, "message": "Invalid Transaction", "data": data }),
                );
            }
            *subscription += 1;
            let id = format!("sub{subscription}");
            let update = |result: Json| {
                json!({
                    "jsonrpc": "2.0",
                    "method": "author_extrinsicUpdate",
                    "params": { "subscription": id, "result": result },
                })
            };
            notifications.push(update(json!("ready")));
            if matches!(behaviour, SubmitBehaviour::Include) {
                state.head += 1;
                let number = state.head;
                state.bodies.insert(number, vec![bytes]);
                state.account_nonce += 1;
                let hash = hex0x(&block_hash(number));
                notifications.push(update(json!({ "inBlock": hash })));
                notifications.push(update(json!({ "finalized": hash })));
            }
            Ok(json!(id))
        }
        "author_unwatchExtrinsic" => Ok(json!(true)),
        other => {
            state.unknown_methods.push(other.to_string());
            Err(json!({ "code": -32601, "message": format!("Method not found: {other}") }))
        }
    }
}

/// The storage key of `pallet.entry(keys)` under `metadata`.
pub fn storage_key(metadata: &Metadata, pallet: &str, entry: &str, keys: Vec<Value>) -> Vec<u8> {
    let address = subxt::dynamic::storage(pallet, entry, keys);
    get_address_bytes(&address, metadata).unwrap()
}

pub fn number(value: impl Into<u128>) -> Value {
    Value::u128(value.into())
}

pub fn account(bytes: &[u8; 32]) -> Value {
    Value::from_bytes(bytes)
}

/// A value of type `type_id` with every field at its zero (numbers 0, lists empty, enums at
/// their first variant), to fill in and encode.
pub fn zero_value(metadata: &Metadata, type_id: u32) -> Value {
    let registry = metadata.types();
    let ty = registry.resolve(type_id).expect("type in the registry");
    use scale_info::TypeDef;
    match &ty.type_def {
        TypeDef::Composite(composite) => fields_value(metadata, &composite.fields),
        TypeDef::Variant(variant) => {
            let first = variant.variants.first().expect("an enum has variants");
            let fields = fields_value(metadata, &first.fields);
            let ValueDef::Composite(values) = fields.value else {
                unreachable!()
            };
            Value::variant(first.name.clone(), values)
        }
        TypeDef::Sequence(_) | TypeDef::BitSequence(_) => Value::unnamed_composite(vec![]),
        TypeDef::Array(array) => Value::unnamed_composite(
            (0..array.len).map(|_| zero_value(metadata, array.type_param.id)),
        ),
        TypeDef::Tuple(tuple) => {
            Value::unnamed_composite(tuple.fields.iter().map(|f| zero_value(metadata, f.id)))
        }
        TypeDef::Primitive(primitive) => match primitive {
            scale_info::TypeDefPrimitive::Bool => Value::bool(false),
            scale_info::TypeDefPrimitive::Str => Value::string(""),
            scale_info::TypeDefPrimitive::Char => Value::char('0'),
            _ => Value::u128(0),
        },
        TypeDef::Compact(compact) => zero_value(metadata, compact.type_param.id),
    }
}

fn fields_value(
    metadata: &Metadata,
    fields: &[scale_info::Field<scale_info::form::PortableForm>],
) -> Value {
    if fields.iter().all(|f| f.name.is_some()) && !fields.is_empty() {
        Value::named_composite(
            fields
                .iter()
                .map(|f| (f.name.clone().unwrap(), zero_value(metadata, f.ty.id))),
        )
    } else {
        Value::unnamed_composite(fields.iter().map(|f| zero_value(metadata, f.ty.id)))
    }
}

/// Replaces the named field `name` of a struct value.
pub fn set_field(value: &mut Value, name: &str, new: Value) {
    let ValueDef::Composite(Composite::Named(fields)) = &mut value.value else {
        panic!("not a struct");
    };
    let slot = fields
        .iter_mut()
        .find(|(field, _)| field == name)
        .unwrap_or_else(|| panic!("no field {name}"));
    slot.1 = new;
}

pub fn encode_as(metadata: &Metadata, type_id: u32, value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    scale_value::scale::encode_as_type(value, type_id, metadata.types(), &mut bytes).unwrap();
    bytes
}

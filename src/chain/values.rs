//! Reading dynamically decoded values (`scale_value::Value`) by field name. The runtime's
//! types change between versions (newtypes such as `NetUid`, `Compact` wrappers, currency
//! types), so the readers look through single-field wrappers instead of matching a layout.

use subxt::ext::scale_value::{Composite, Primitive, ValueDef};

use super::ChainError;

pub type Value = subxt::ext::scale_value::Value<u32>;

/// Looks through single-field composites (newtypes) to the value inside.
fn inner(mut value: &Value) -> &Value {
    loop {
        match &value.value {
            ValueDef::Composite(Composite::Named(fields)) if fields.len() == 1 => {
                value = &fields[0].1;
            }
            ValueDef::Composite(Composite::Unnamed(fields)) if fields.len() == 1 => {
                value = &fields[0];
            }
            _ => return value,
        }
    }
}

/// The named field `name` of a composite.
pub fn field<'a>(value: &'a Value, name: &str, what: &str) -> Result<&'a Value, ChainError> {
    match &inner(value).value {
        ValueDef::Composite(Composite::Named(fields)) => fields
            .iter()
            .find(|(field_name, _)| field_name == name)
            .map(|(_, value)| value)
            .ok_or_else(|| ChainError::decode(what, format!("no field `{name}`"))),
        _ => Err(ChainError::decode(what, "expected a struct")),
    }
}

pub fn u128_of(value: &Value, what: &str) -> Result<u128, ChainError> {
    match &inner(value).value {
        ValueDef::Primitive(Primitive::U128(number)) => Ok(*number),
        other => Err(ChainError::decode(
            what,
            format!("expected an unsigned integer, got {}", describe(other)),
        )),
    }
}

pub fn u64_of(value: &Value, what: &str) -> Result<u64, ChainError> {
    let number = u128_of(value, what)?;
    u64::try_from(number).map_err(|_| ChainError::decode(what, format!("{number} exceeds u64")))
}

pub fn u16_of(value: &Value, what: &str) -> Result<u16, ChainError> {
    let number = u128_of(value, what)?;
    u16::try_from(number).map_err(|_| ChainError::decode(what, format!("{number} exceeds u16")))
}

pub fn u8_of(value: &Value, what: &str) -> Result<u8, ChainError> {
    let number = u128_of(value, what)?;
    u8::try_from(number).map_err(|_| ChainError::decode(what, format!("{number} exceeds u8")))
}

pub fn bool_of(value: &Value, what: &str) -> Result<bool, ChainError> {
    match &inner(value).value {
        ValueDef::Primitive(Primitive::Bool(flag)) => Ok(*flag),
        other => Err(ChainError::decode(
            what,
            format!("expected a bool, got {}", describe(other)),
        )),
    }
}

/// The items of a sequence (`Vec<T>`, arrays), in order.
pub fn list_of<'a>(value: &'a Value, what: &str) -> Result<Vec<&'a Value>, ChainError> {
    // A one-element sequence looks like a newtype; only unwrap wrappers around sequences.
    let mut current = value;
    loop {
        match &current.value {
            ValueDef::Composite(composite) => {
                let items: Vec<&Value> = composite.values().collect();
                let single_sequence = items.len() == 1
                    && matches!(&items[0].value, ValueDef::Composite(_))
                    && matches!(composite, Composite::Named(_));
                if single_sequence {
                    current = items[0];
                    continue;
                }
                return Ok(items);
            }
            other => {
                return Err(ChainError::decode(
                    what,
                    format!("expected a sequence, got {}", describe(other)),
                ));
            }
        }
    }
}

/// A 32-byte account id (`AccountId32([u8; 32])`).
pub fn account_of(value: &Value, what: &str) -> Result<[u8; 32], ChainError> {
    let bytes = bytes_of(value, what)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| ChainError::decode(what, format!("account id of {} bytes", bytes.len())))
}

/// A byte sequence (`Vec<u8>`, `[u8; N]`, possibly inside a newtype).
pub fn bytes_of(value: &Value, what: &str) -> Result<Vec<u8>, ChainError> {
    let mut current = value;
    loop {
        match &current.value {
            ValueDef::Composite(composite) => {
                let items: Vec<&Value> = composite.values().collect();
                if items.len() == 1 && matches!(&items[0].value, ValueDef::Composite(_)) {
                    current = items[0];
                    continue;
                }
                return items.into_iter().map(|item| u8_of(item, what)).collect();
            }
            other => {
                return Err(ChainError::decode(
                    what,
                    format!("expected bytes, got {}", describe(other)),
                ));
            }
        }
    }
}

/// `Some(inner)` / `None` of an `Option<T>`.
pub fn option_of<'a>(value: &'a Value, what: &str) -> Result<Option<&'a Value>, ChainError> {
    match &value.value {
        ValueDef::Variant(variant) if variant.name == "None" => Ok(None),
        ValueDef::Variant(variant) if variant.name == "Some" => variant
            .values
            .values()
            .next()
            .map(Some)
            .ok_or_else(|| ChainError::decode(what, "`Some` without a value")),
        other => Err(ChainError::decode(
            what,
            format!("expected an Option, got {}", describe(other)),
        )),
    }
}

fn describe(value: &ValueDef<u32>) -> &'static str {
    match value {
        ValueDef::Composite(_) => "a composite",
        ValueDef::Variant(_) => "a variant",
        ValueDef::BitSequence(_) => "a bit sequence",
        ValueDef::Primitive(Primitive::Bool(_)) => "a bool",
        ValueDef::Primitive(Primitive::Char(_)) => "a char",
        ValueDef::Primitive(Primitive::String(_)) => "a string",
        ValueDef::Primitive(_) => "a number",
    }
}

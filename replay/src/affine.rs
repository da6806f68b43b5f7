//! affine: not implemented yet.

use serde_json::Value;

use crate::MechanismError;

pub fn run(_input: &Value) -> Result<Value, MechanismError> {
    Err(MechanismError::invalid(
        "the affine mechanism is not implemented yet",
    ))
}

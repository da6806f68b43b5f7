//! `mechanism run`.

use std::io::Read;

use serde_json::{Value, json};

use super::{CliError, MechanismCommand};

pub(super) fn mechanism(command: MechanismCommand) -> Result<(), CliError> {
    let MechanismCommand::Run { input } = command;
    let text = if input.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(CliError::io(std::path::Path::new("stdin")))?;
        text
    } else {
        std::fs::read_to_string(&input).map_err(CliError::io(&input))?
    };
    let result = serde_json::from_str::<Value>(&text)
        .map_err(|error| format!("{}: not JSON: {error}", input.display()))
        .and_then(|value| weightlog_replay::run_json(&value).map_err(|error| error.to_string()));
    match result {
        Ok(output) => {
            println!("{output:#}");
            Ok(())
        }
        Err(message) => {
            // The documented contract: a JSON object with an `error` key on stdout, and a
            // non-zero exit.
            println!("{:#}", json!({ "error": message }));
            Err(CliError::Reported(message))
        }
    }
}

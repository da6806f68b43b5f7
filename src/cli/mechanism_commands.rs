//! `mechanism run`.

use std::io::Read;

use serde_json::{Value, json};

use super::{CliError, MechanismCommand};

pub(super) fn mechanism(command: MechanismCommand) -> Result<(), CliError> {
    let MechanismCommand::Run { input } = command;
    // Input that cannot be read (a missing file, bytes that are not UTF-8) is invalid
    // input too, and gets the same JSON error as input that is not JSON.
    let text = if input.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|error| format!("stdin: cannot read: {error}"))
    } else {
        std::fs::read_to_string(&input)
            .map_err(|error| format!("{}: cannot read: {error}", input.display()))
    };
    let result = text
        .and_then(|text| {
            serde_json::from_str::<Value>(&text)
                .map_err(|error| format!("{}: not JSON: {error}", input.display()))
        })
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

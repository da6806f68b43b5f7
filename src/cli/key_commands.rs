//! `keys dev`, `keys show`, `schema`.

use super::{CliError, KeysCommand, SchemaArgs};
use crate::keys::write_dev_hotkey;

pub(super) fn keys(command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Dev { wallet } => {
            let location = wallet.location();
            let hotkey = write_dev_hotkey(&location)?;
            println!("wrote {}", location.hotkey_file().display());
            println!("{}", hotkey.ss58());
        }
        KeysCommand::Show { wallet } => {
            println!("{}", wallet.load()?.ss58());
        }
    }
    Ok(())
}

pub(super) fn schema(args: SchemaArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.out).map_err(CliError::io(&args.out))?;
    for (name, text) in weightlog_schema::json_schema::json_schemas() {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(CliError::io(&path))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

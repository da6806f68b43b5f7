//! `weightlog assets fetch|list|verify`.

use super::{AssetListArgs, AssetNamesArgs, AssetsCommand, CliError};
use crate::assets::{self, AssetSpec, Cache, FileState};

pub(super) fn assets(command: AssetsCommand) -> Result<(), CliError> {
    let cache = Cache::from_env()?.with_progress(true);
    match command {
        AssetsCommand::Fetch(args) => fetch(&cache, &args),
        AssetsCommand::List(args) => list(&cache, &args),
        AssetsCommand::Verify(args) => verify(&cache, &args),
    }
}

fn selected(args: &AssetNamesArgs) -> Result<Vec<&'static AssetSpec>, CliError> {
    if args.names.is_empty() {
        return Ok(assets::all().iter().collect());
    }
    args.names
        .iter()
        .map(|name| assets::by_name(name).map_err(CliError::from))
        .collect()
}

fn fetch(cache: &Cache, args: &AssetNamesArgs) -> Result<(), CliError> {
    for spec in selected(args)? {
        // Files that already match their pins are not downloaded again.
        let fetched = match cache.load(spec) {
            Ok(asset) => {
                println!(
                    "{} {}: already cached in {}",
                    spec.name,
                    spec.version,
                    asset.dir().display()
                );
                continue;
            }
            Err(_) => cache.fetch(spec)?,
        };
        println!(
            "{} {}: fetched {} from {} and verified every pin; in {}",
            spec.name,
            spec.version,
            spec.wheel,
            cache.index_url(),
            fetched.dir().display()
        );
    }
    Ok(())
}

fn list(cache: &Cache, args: &AssetListArgs) -> Result<(), CliError> {
    for spec in assets::all() {
        let states = cache.states(spec)?;
        if args.json {
            let files: Vec<serde_json::Value> = states
                .iter()
                .map(|(file, state)| {
                    serde_json::json!({
                        "name": file.name,
                        "path_in_wheel": file.path_in_wheel,
                        "size_bytes": file.size_bytes,
                        "blake3": file.blake3,
                        "state": state.to_string(),
                    })
                })
                .collect();
            let line = serde_json::json!({
                "name": spec.name,
                "package": spec.package,
                "version": spec.version,
                "wheel": spec.wheel,
                "wheel_sha256": spec.wheel_sha256,
                "dir": cache.dir(spec),
                "files": files,
            });
            println!("{line}");
            continue;
        }
        println!(
            "{} {} (PyPI {} {}, sha256 {})",
            spec.name, spec.version, spec.package, spec.wheel, spec.wheel_sha256
        );
        println!("  in {}", cache.dir(spec).display());
        for (file, state) in &states {
            println!(
                "  {:<20} {:>11} bytes  blake3 {}  {state}",
                file.name, file.size_bytes, file.blake3
            );
        }
    }
    Ok(())
}

fn verify(cache: &Cache, args: &AssetNamesArgs) -> Result<(), CliError> {
    let mut bad = Vec::new();
    for spec in selected(args)? {
        for (file, state) in cache.states(spec)? {
            println!("{} {}: {state}", spec.name, file.name);
            if state != FileState::Ok {
                bad.push(format!("{} {}", spec.name, file.name));
            }
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(CliError::Invalid(format!(
        "{} cached file(s) missing or corrupt ({}); `weightlog assets fetch` replaces them",
        bad.len(),
        bad.join(", ")
    )))
}

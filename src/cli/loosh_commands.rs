//! `weightlog loosh heatmap`.

use super::{CliError, HeatmapArgs};
use crate::log::LogReader;
use crate::loosh::heatmap::{self, HeatmapError};

pub(super) fn heatmap(args: HeatmapArgs) -> Result<(), CliError> {
    let reader = LogReader::open(&args.log)?;
    let map = heatmap::from_log(&reader, &args.challenge).map_err(|error| match error {
        HeatmapError::Log(error) => CliError::Log(error),
        other => CliError::Input(other.to_string()),
    })?;
    map.write(&args.out)
        .map_err(|error| CliError::Input(error.to_string()))?;
    println!(
        "wrote the {}x{} similarity heatmap of challenge {} to {}",
        map.labels.len(),
        map.labels.len(),
        args.challenge,
        args.out.display()
    );
    Ok(())
}

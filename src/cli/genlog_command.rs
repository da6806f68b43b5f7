//! `gen-log`: writes a synthetic log (see `genlog`).

use super::{CliError, GenLogArgs};
use crate::genlog::{self, GenError, GenOptions};

pub(super) fn gen_log(args: GenLogArgs) -> Result<(), CliError> {
    let options = GenOptions {
        events: args.events,
        profile: args.profile,
        seed: args.seed,
        miners: args.miners,
        decision_interval: args.decision_interval,
    };
    let started = std::time::Instant::now();
    let summary = genlog::generate(&args.out, &options).map_err(|error| match error {
        GenError::Log(error) => CliError::Log(error),
        other => CliError::Input(other.to_string()),
    })?;
    println!(
        "wrote {} events ({} weight decisions) of profile {} to {} in {:.1} s; synthetic, signed by {}",
        summary.events,
        summary.decisions,
        options.profile,
        args.out.display(),
        started.elapsed().as_secs_f64(),
        summary.signer_ss58
    );
    Ok(())
}

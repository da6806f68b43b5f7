//! Opt-in: reads a real network's metagraph. Runs only when `WEIGHTLOG_LIVE_CHAIN_URL` names
//! a network (`finney`, `test`, or a ws:// / wss:// URL); `WEIGHTLOG_LIVE_CHAIN_NETUID`
//! picks the subnet (default 1). Without the variable it prints why it skipped.
#![cfg(feature = "node")]

use weightlog::chain::{Chain, Network, SubmitOptions, SubxtChain};

#[tokio::test(flavor = "current_thread")]
async fn reads_a_live_metagraph() {
    let Ok(network) = std::env::var("WEIGHTLOG_LIVE_CHAIN_URL") else {
        eprintln!("skipped: set WEIGHTLOG_LIVE_CHAIN_URL=finney (or a wss:// URL) to run");
        return;
    };
    let netuid: u16 = std::env::var("WEIGHTLOG_LIVE_CHAIN_NETUID")
        .ok()
        .map(|text| {
            text.parse()
                .expect("WEIGHTLOG_LIVE_CHAIN_NETUID is a netuid")
        })
        .unwrap_or(1);
    let network = Network::parse(&network).unwrap();
    let chain = SubxtChain::connect(&network, None, SubmitOptions::default())
        .await
        .unwrap();
    let head = chain.current_block().await.unwrap();
    let observed = chain.metagraph(netuid, head).await.unwrap();
    eprintln!(
        "{}: netuid {netuid} at block {} (spec {}): {} uids, tempo {}, commit-reveal {}",
        chain.url(),
        observed.block,
        observed.spec_version,
        observed.neurons.len(),
        observed.hyperparameters.tempo,
        observed.hyperparameters.commit_reveal_enabled
    );
    assert_eq!(observed.block, head.number);
    assert!(!observed.neurons.is_empty());
    assert!(observed.hyperparameters.tempo > 0);
    for (index, neuron) in observed.neurons.iter().enumerate() {
        assert_eq!(usize::from(neuron.uid), index);
    }
}

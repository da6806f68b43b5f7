//! Signing extrinsics with the validator hotkey loaded by [`crate::keys`].
//!
//! subxt hands the signer the exact signer payload (call data, explicit extension data,
//! implicit data; blake2-256 of it when longer than 256 bytes) and expects an sr25519
//! signature with the substrate context, the same primitive [`Hotkey::sign`] uses.
//!
//! **Architecture Invariant:** log checkpoints are signed over `weightlog/checkpoint/v1\n` +
//! body, and an extrinsic signer payload starts with the call's pallet and call index
//! (`07 77` / `07 76` for our calls); neither can be mistaken for the other, so a
//! signature made for one can never be replayed as the other.

use subxt::SubstrateConfig;
use subxt::tx::Signer;
use subxt::utils::{AccountId32, MultiSignature};

use crate::keys::Hotkey;

/// A subxt [`Signer`] over a wallet hotkey.
#[derive(Clone, Debug)]
pub struct HotkeySigner {
    hotkey: Hotkey,
}

impl HotkeySigner {
    pub fn new(hotkey: Hotkey) -> Self {
        Self { hotkey }
    }

    pub fn hotkey(&self) -> &Hotkey {
        &self.hotkey
    }

    pub fn account_id(&self) -> AccountId32 {
        AccountId32(self.hotkey.public_key())
    }
}

impl Signer<SubstrateConfig> for HotkeySigner {
    fn account_id(&self) -> AccountId32 {
        HotkeySigner::account_id(self)
    }

    fn sign(&self, signer_payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(self.hotkey.sign(signer_payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weightlog_schema::checkpoint::CHECKPOINT_DOMAIN;

    #[test]
    fn extrinsic_signatures_verify_as_plain_substrate_signatures() {
        let signer = HotkeySigner::new(Hotkey::from_seed(&[1; 32]));
        let payload = [0x07, 0x77, 0x01, 0x00];
        let MultiSignature::Sr25519(signature) = Signer::sign(&signer, &payload) else {
            panic!("the hotkey signs sr25519");
        };
        assert!(
            signer
                .hotkey()
                .public()
                .verify(&payload, &signature)
                .is_ok()
        );
        assert_eq!(Signer::account_id(&signer).0, signer.hotkey().public_key());
    }

    #[test]
    fn checkpoint_domain_cannot_start_a_subtensor_call() {
        // A call payload begins with the SubtensorModule pallet index (7).
        assert_ne!(CHECKPOINT_DOMAIN.as_bytes()[0], 0x07);
    }
}

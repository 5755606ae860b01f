//! Serves the admission protocol on one stream: sends a fresh challenge,
//! reads the member's proof, answers with the verdict, and admits the peer
//! through the gate when it holds. The computation is `shoal-core`'s
//! (`RelayToken`); this is only its IO, bounded in time.

use crate::gate::Gate;
use crate::stats::{Counters, bump};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream};
use shoal_core::sync::{Admission, RELAY_AUTH_LEN, RelayToken};
use std::sync::Arc;
use std::time::Duration;

/// Longest a member may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What one admission needs.
pub(crate) struct Admit {
    pub(crate) relay: PeerId,
    pub(crate) token: RelayToken,
    pub(crate) gate: Gate,
    pub(crate) counters: Arc<Counters>,
}

impl Admit {
    /// Runs the exchange with `member` on `stream`.
    pub(crate) async fn run(&self, member: PeerId, mut stream: Stream) {
        let mut challenge = [0u8; RELAY_AUTH_LEN];
        if getrandom::fill(&mut challenge).is_err() {
            tracing::error!("no randomness for a relay challenge");
            return;
        }
        let exchange = async {
            stream.write_all(&challenge).await?;
            stream.flush().await?;
            let mut proof = [0u8; RELAY_AUTH_LEN];
            stream.read_exact(&mut proof).await?;
            Ok::<_, std::io::Error>(proof)
        };
        let verdict = match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
            Ok(Ok(proof)) => self.token.check(
                &self.relay.to_bytes(),
                &member.to_bytes(),
                &challenge,
                &proof,
            ),
            Ok(Err(e)) => {
                tracing::info!(%member, "relay admission broke off: {e}");
                Admission::Refused
            }
            Err(_) => {
                tracing::info!(%member, "relay admission timed out");
                Admission::Refused
            }
        };
        match verdict {
            Admission::Granted => {
                self.gate.admit(member);
                bump(&self.counters.admitted);
            }
            Admission::Refused => bump(&self.counters.refused),
        }
        let _ = stream.write_all(&[verdict.to_byte()]).await;
        let _ = stream.close().await;
    }
}

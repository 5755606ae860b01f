//! Fetching blobs in the background: a scheduler that finds the blobs this
//! replica's records reference but it does not hold, and for each asks one
//! connected member peer at a time that may send it (never two fetches of one
//! blob at once, at most `concurrency` blobs at once), and the async shell
//! that drives the core's [`Fetch`] state machine over one blob stream.
//!
//! Every piece is verified by the core before the replica keeps it, so a
//! peer that serves corrupted bytes is caught at its first bad piece; the
//! fetch then moves on to another peer (or retries later) and resumes from
//! the last verified piece. Records never wait for blobs. The bytes are kept
//! by the replica; this file never touches a file. Which blob stands where is
//! `blob_table.rs`'s.

use crate::blob_table::{BlobState, BlobTable, NO_PEER};
use crate::config::BlobConfig;
use crate::replica::{BlobSink, Replica};
use crate::status::{PeerPath, PeerState, PeerTable};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use shoal_core::Direction;
use shoal_core::blob::{
    self, BlobError, BlobResponse, Fetch, Incoming, MissingBlob, Outline, PieceVerdict,
};
use shoal_core::sync::GroupKey;
use shoal_core::sync::codec::LEN_PREFIX;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Missing blobs looked at per scan.
const SCAN_LIMIT: usize = 256;

/// Everything one fetch needs.
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub(crate) local: PeerId,
    pub(crate) key: GroupKey,
    pub(crate) replica: Arc<dyn Replica>,
    pub(crate) peers: PeerTable,
    pub(crate) blobs: BlobTable,
    pub(crate) control: libp2p_stream::Control,
    pub(crate) protocol: StreamProtocol,
    pub(crate) config: BlobConfig,
}

impl Fetcher {
    /// Scans for missing blobs every `scan_interval`, and whenever a peer
    /// connects, and starts fetches. The fetches are this task's: stopping
    /// it (the node stopping) stops them too, so none outlives its node.
    pub(crate) async fn run(self) {
        let mut tick = tokio::time::interval(self.config.scan_interval);
        let mut fetches = tokio::task::JoinSet::new();
        loop {
            while fetches.try_join_next().is_some() {}
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.peers.connected() => {}
            }
            let replica = self.replica.clone();
            let missing = match tokio::task::spawn_blocking(move || {
                replica.missing_blobs(SCAN_LIMIT)
            })
            .await
            {
                Ok(Ok(missing)) => missing,
                Ok(Err(e)) => {
                    tracing::warn!("cannot list missing blobs: {e}");
                    continue;
                }
                Err(_) => return,
            };
            for blob in missing {
                if self.blobs.running() >= self.config.concurrency {
                    break;
                }
                if self.blobs.claim(&blob) {
                    let fetcher = self.clone();
                    fetches.spawn(async move {
                        let _ = fetcher.fetch(blob).await;
                    });
                }
            }
        }
    }

    /// Connected members that may send one of `collections` to us and may
    /// carry it (directly, or through a relay when it is small enough),
    /// directly reached ones first; and whether any was left out only for
    /// being relayed.
    fn candidates(&self, blob: &MissingBlob) -> (Vec<PeerId>, bool) {
        let mut allowed: Vec<(PeerId, PeerPath)> = self
            .peers
            .snapshot()
            .into_iter()
            .filter(|p| matches!(p.state, PeerState::Connected))
            .filter(|p| {
                blob.collections.iter().any(|c| {
                    self.replica
                        .allows(&p.peer, c, Direction::FromPeer)
                        .unwrap_or(false)
                })
            })
            .map(|p| (p.peer, p.path))
            .collect();
        allowed.sort_by_key(|(_, path)| !matches!(path, PeerPath::Direct));
        let before = allowed.len();
        let relay_ok = blob.size <= self.config.relay_max;
        allowed.retain(|(_, path)| relay_ok || !matches!(path, PeerPath::Relayed { .. }));
        let left_out = allowed.len() < before;
        (
            allowed.into_iter().map(|(peer, _)| peer).collect(),
            left_out,
        )
    }

    /// Fetches one claimed blob, trying each candidate peer in turn. The
    /// store's own claim on the blob is taken first and held throughout: a
    /// second fetch of it (another node on the same store, another process)
    /// waits for a retry. Returns the peer it came from, or why it did not
    /// come (as the blob table also says).
    pub(crate) async fn fetch(self, blob: MissingBlob) -> Result<PeerId, String> {
        let (candidates, relayed_left_out) = self.candidates(&blob);
        if candidates.is_empty() && relayed_left_out {
            let relay_max = self.config.relay_max;
            self.blobs.awaiting_direct(&blob.hash, relay_max);
            return Err(format!(
                "it is larger than the {relay_max} bytes a relay carries; waiting for a direct connection"
            ));
        }
        let replica = self.replica.clone();
        let hash = blob.hash;
        let sink = match blocking(move || replica.blob_claim(&hash)).await {
            Ok(Some(sink)) => Arc::new(Mutex::new(Some(sink))),
            Ok(None) => {
                let error = "another fetch on this store holds it".to_string();
                self.blobs
                    .failed(&blob.hash, error.clone(), Some(self.config.retry_after));
                return Err(error);
            }
            Err(e) => {
                let error = format!("cannot claim it: {e}");
                self.blobs
                    .failed(&blob.hash, error.clone(), Some(self.config.retry_after));
                return Err(error);
            }
        };
        let mut errors = Vec::new();
        for peer in candidates {
            self.blobs
                .set(&blob.hash, |t| t.state = BlobState::Fetching { peer });
            let mut writer = None;
            let fetched = self.fetch_from(peer, &blob, &sink, &mut writer).await;
            if let Some(writer) = writer.filter(|_| fetched.is_err()) {
                // Its queued pieces are written before the next peer resumes.
                writer.abandon().await;
            }
            match fetched {
                Ok(()) => {
                    self.blobs.done(&blob.hash);
                    tracing::info!(hash = %blob.hash, %peer, "blob fetched and verified");
                    return Ok(peer);
                }
                Err(e) => {
                    tracing::warn!(hash = %blob.hash, %peer, "blob fetch failed: {e}");
                    let permanent = matches!(e, FetchError::Blob(BlobError::TooLarge { .. }));
                    errors.push(format!("{peer}: {e}"));
                    if permanent {
                        break;
                    }
                }
            }
        }
        let (error, retry_after) = match errors.is_empty() {
            // Nobody was asked: look again at the next scan or connection.
            true => (NO_PEER.to_string(), None),
            false => (errors.join("; "), Some(self.config.retry_after)),
        };
        self.blobs.failed(&blob.hash, error.clone(), retry_after);
        Err(error)
    }

    async fn fetch_from(
        &self,
        peer: PeerId,
        blob: &MissingBlob,
        sink: &SharedSink,
        writer: &mut Option<Writer>,
    ) -> Result<(), FetchError> {
        let claim = sink.clone();
        let verified = blocking(move || with_sink(&claim, |s| s.resume_point())).await?;
        let mut fetch = Fetch::new(blob.hash, blob.size, self.replica.blob_cap(), verified)?;
        self.blobs.set_verified(&blob.hash, verified);
        let timeout = self.config.timeout;
        let mut control = self.control.clone();
        let mut stream =
            tokio::time::timeout(timeout, control.open_stream(peer, self.protocol.clone()))
                .await
                .map_err(|_| FetchError::Timeout)?
                .map_err(|e| FetchError::Stream(e.to_string()))?;
        let key = self.key.blob_key(&self.local.to_bytes(), &peer.to_bytes());
        let (mut seq_out, mut seq_in) = (0u64, 0u64);
        let mut payload = Vec::new();
        loop {
            if let Some(request) = fetch.next_request() {
                let frame = blob::encode_request(&request, &key, seq_out);
                seq_out += 1;
                stream.write_all(&frame).await?;
                stream.flush().await?;
            }
            if let Some(w) = writer.as_mut() {
                payload = w.buffer(payload);
            }
            tokio::time::timeout(timeout, read_response(&mut stream, &mut payload))
                .await
                .map_err(|_| FetchError::Timeout)??;
            match blob::decode_response(&payload, &key, seq_in)? {
                Incoming::Response(BlobResponse::Outline(o)) => {
                    seq_in += 1;
                    fetch.on_outline(o.clone())?;
                    *writer = Some(Writer::start(sink.clone(), o));
                    if fetch.is_done() {
                        // Everything was here already (a resumed fetch).
                        break;
                    }
                }
                Incoming::Response(BlobResponse::Refused(refusal)) => {
                    return Err(fetch.on_refused(refusal).into());
                }
                Incoming::Piece { index, bytes } => {
                    self.blobs.count(|t| t.bytes_received += bytes.len() as u64);
                    let verdict = match fetch.on_piece(index, bytes) {
                        Ok(verdict) => verdict,
                        Err(e) => {
                            if matches!(e, BlobError::BadPiece { .. }) {
                                self.blobs.count(|t| t.bad_pieces += 1);
                            }
                            return Err(e.into());
                        }
                    };
                    let Some(w) = writer.as_mut() else {
                        return Err(BlobError::Unexpected("a piece before the outline").into());
                    };
                    w.keep(index, std::mem::take(&mut payload)).await?;
                    self.blobs.set_verified(&blob.hash, fetch.verified_pieces());
                    if matches!(verdict, PieceVerdict::Complete { .. }) {
                        break;
                    }
                }
            }
        }
        let Some(writer) = writer.take() else {
            return Err(BlobError::Unexpected("no outline").into());
        };
        let outline = writer.finish().await?;
        let claim = sink.clone();
        blocking(move || {
            let sink = claim.lock().unwrap_or_else(|p| p.into_inner()).take();
            match sink {
                Some(sink) => sink.finish(&outline),
                None => Err("the fetch's claim has ended".into()),
            }
        })
        .await?;
        let _ = stream.close().await;
        Ok(())
    }
}

/// A fetch's claim on its blob, shared with its writer thread; `None` once
/// finished.
type SharedSink = Arc<Mutex<Option<Box<dyn BlobSink>>>>;

/// Runs `f` on the claim (an error once it has been finished).
fn with_sink<T>(
    sink: &SharedSink,
    f: impl FnOnce(&mut dyn BlobSink) -> Result<T, crate::ReplicaError>,
) -> Result<T, crate::ReplicaError> {
    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_mut() {
        Some(sink) => f(sink.as_mut()),
        None => Err("the fetch's claim has ended".into()),
    }
}

/// Verified pieces queued for the writer, per fetch.
const WRITE_BEHIND: usize = 4;

/// Keeps the verified pieces of one fetch, in order, on a blocking thread
/// while the next ones arrive; the frame buffers come back for reuse.
struct Writer {
    outline: Outline,
    pieces: mpsc::Sender<(u64, Vec<u8>)>,
    spent: mpsc::Receiver<Vec<u8>>,
    /// The writer thread; taken once awaited.
    task: Option<tokio::task::JoinHandle<Result<(), FetchError>>>,
}

impl Writer {
    fn start(sink: SharedSink, outline: Outline) -> Writer {
        let (pieces, mut queued) = mpsc::channel::<(u64, Vec<u8>)>(WRITE_BEHIND);
        let (spent_tx, spent) = mpsc::channel(WRITE_BEHIND + 2);
        let kept = outline.clone();
        let task = tokio::task::spawn_blocking(move || {
            let start = blob::PIECE_HEADER_LEN - LEN_PREFIX;
            while let Some((index, frame)) = queued.blocking_recv() {
                with_sink(&sink, |s| s.append(&kept, index, &frame[start..]))
                    .map_err(|e| FetchError::Replica(e.to_string()))?;
                let _ = spent_tx.try_send(frame);
            }
            Ok(())
        });
        Writer {
            outline,
            pieces,
            spent,
            task: Some(task),
        }
    }

    /// A buffer for the next frame: one the writer is done with, else `own`.
    fn buffer(&mut self, own: Vec<u8>) -> Vec<u8> {
        self.spent.try_recv().unwrap_or(own)
    }

    /// Queues verified piece `index` (the whole frame payload) for writing.
    async fn keep(&mut self, index: u64, frame: Vec<u8>) -> Result<(), FetchError> {
        if self.pieces.send((index, frame)).await.is_ok() {
            return Ok(());
        }
        // The writer stopped early: its error says why.
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(e)) => Err(e),
                _ => Err(FetchError::Stopped),
            },
            None => Err(FetchError::Stopped),
        }
    }

    /// Stops taking pieces and waits for those queued to be written (or the
    /// writer to fail), so nothing writes behind the next attempt's back.
    async fn abandon(self) {
        drop(self.pieces);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }

    /// Waits for every queued piece to be written; the outline they verify
    /// against.
    async fn finish(self) -> Result<Outline, FetchError> {
        drop(self.pieces);
        let task = self.task.ok_or(FetchError::Stopped)?;
        task.await.map_err(|_| FetchError::Stopped)??;
        Ok(self.outline)
    }
}

/// Why one fetch from one peer failed.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("timed out")]
    Timeout,
    #[error("cannot open a blob stream: {0}")]
    Stream(String),
    #[error("blob stream broke: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot keep the blob: {0}")]
    Replica(String),
    #[error("the node stopped")]
    Stopped,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::ReplicaError> + Send + 'static,
) -> Result<T, FetchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| FetchError::Stopped)?
        .map_err(|e| FetchError::Replica(e.to_string()))
}

/// Reads one response-direction frame into `payload` (reused: only bytes
/// past its old length are zeroed), refusing an oversized one before
/// reading it.
async fn read_response(stream: &mut Stream, payload: &mut Vec<u8>) -> Result<(), FetchError> {
    let mut prefix = [0u8; LEN_PREFIX];
    stream.read_exact(&mut prefix).await?;
    let len = blob::response_frame_len(prefix)?;
    payload.resize(len, 0);
    stream.read_exact(payload).await?;
    Ok(())
}

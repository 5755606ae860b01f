//! Serving blobs: the async shell that answers one incoming blob stream.
//!
//! A requester asks for a blob's outline, then for runs of pieces. Requests
//! are sealed with a MAC under a key derived from the group key and both peer
//! ids, so only a member can ask; whether it may read *this* blob (some
//! record referencing it is in a collection we send it) is the replica's
//! decision. Pieces are read from disk by a blocking reader a few pieces
//! ahead of the socket. What to serve is decided by the replica and the
//! core's `blob::wire`; this file only moves bytes.

use crate::config::BlobConfig;
use crate::metrics::Counters;
use crate::replica::Replica;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use shoal_core::blob::{self, BlobError, BlobKey, BlobRefusal, BlobRequest, BlobResponse, Outline};
use shoal_core::sync::GroupKey;
use shoal_core::sync::codec::LEN_PREFIX;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Pieces read ahead of the socket per stream.
const READ_AHEAD: usize = 4;

/// Serves every incoming blob stream, at most `config.serving` at once;
/// past that, a stream's first request (if it comes within the timeout) is
/// answered "busy".
pub(crate) async fn accept(
    counters: Counters,
    mut incoming: libp2p_stream::IncomingStreams,
    local: PeerId,
    group: GroupKey,
    replica: Arc<dyn Replica>,
    config: BlobConfig,
) {
    let slots = Arc::new(Semaphore::new(config.serving.max(1)));
    while let Some((peer, mut stream)) = incoming.next().await {
        let key = group.blob_key(&peer.to_bytes(), &local.to_bytes());
        let replica = replica.clone();
        let slot = slots.clone().try_acquire_owned();
        let counters = counters.clone();
        tokio::spawn(async move {
            match slot {
                Ok(_slot) => serve(stream, peer, key, replica, config.timeout, &counters).await,
                Err(_) => {
                    let limit = config.timeout;
                    let asked = tokio::time::timeout(limit, read_request(&mut stream, &key, 0));
                    if matches!(asked.await, Ok(Ok(_))) {
                        let busy = BlobRefusal::Busy;
                        let _ = respond(&mut stream, &key, &mut 0, busy, limit).await;
                    }
                }
            }
        });
    }
}

/// Reads one request frame, refusing an oversized one before reading it.
pub(crate) async fn read_request(
    stream: &mut Stream,
    key: &BlobKey,
    seq: u64,
) -> Result<BlobRequest, BlobError> {
    let mut prefix = [0u8; LEN_PREFIX];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|_| BlobError::Unexpected("stream closed"))?;
    let len = blob::request_frame_len(prefix)?;
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|_| BlobError::Unexpected("stream closed mid-frame"))?;
    blob::decode_request(&payload, key, seq)
}

/// Answers requests on `stream` from `peer` until it closes, idles past
/// `idle`, takes none of our bytes for `idle` (stopped reading), or breaks
/// the protocol.
pub(crate) async fn serve(
    mut stream: Stream,
    peer: PeerId,
    key: BlobKey,
    replica: Arc<dyn Replica>,
    idle: Duration,
    counters: &Counters,
) {
    let (mut seq_in, mut seq_out) = (0u64, 0u64);
    let mut current: Option<Outline> = None;
    loop {
        let request =
            match tokio::time::timeout(idle, read_request(&mut stream, &key, seq_in)).await {
                Ok(Ok(request)) => request,
                Ok(Err(BlobError::Unexpected(_))) | Err(_) => return,
                Ok(Err(e)) => {
                    // Garbage or a bad MAC: say so once, then close. A sealed
                    // refusal only to a peer that proved the key on this
                    // stream already: to a stranger it would be a MAC under
                    // the group key over known bytes, to test guesses against.
                    tracing::warn!(%peer, "refusing a blob stream: {e}");
                    if seq_in > 0 {
                        let refusal = BlobRefusal::BadRequest;
                        let _ = respond(&mut stream, &key, &mut seq_out, refusal, idle).await;
                    }
                    return;
                }
            };
        seq_in += 1;
        let outcome = match request {
            BlobRequest::Outline { hash } => {
                let replica = replica.clone();
                let found =
                    tokio::task::spawn_blocking(move || replica.blob_outline_for(&peer, &hash))
                        .await;
                let answer = match found {
                    Ok(Ok(Ok(outline))) => {
                        counters.blob_served();
                        current = Some(outline.clone());
                        BlobResponse::Outline(outline)
                    }
                    Ok(Ok(Err(refusal))) => BlobResponse::Refused(refusal),
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, "cannot look up a blob: {e}");
                        BlobResponse::Refused(BlobRefusal::NotFound)
                    }
                    Err(_) => return,
                };
                write_sealed(&mut stream, &key, &mut seq_out, &answer, idle).await
            }
            BlobRequest::Pieces { hash, from, count } => match &current {
                Some(outline) if outline.hash == hash => {
                    match blob::serve_range(outline, from, count) {
                        Ok(range) => {
                            send_pieces(&mut stream, &replica, outline, range, idle, counters).await
                        }
                        Err(refusal) => {
                            respond(&mut stream, &key, &mut seq_out, refusal, idle).await
                        }
                    }
                }
                _ => {
                    let refusal = BlobRefusal::BadRequest;
                    respond(&mut stream, &key, &mut seq_out, refusal, idle).await
                }
            },
        };
        if let Err(e) = outcome {
            tracing::debug!(%peer, "blob stream ended: {e}");
            return;
        }
    }
}

async fn write_sealed(
    stream: &mut Stream,
    key: &BlobKey,
    seq: &mut u64,
    response: &BlobResponse,
    limit: Duration,
) -> std::io::Result<()> {
    let frame = blob::encode_response(response, key, *seq);
    *seq += 1;
    within(limit, stream.write_all(&frame)).await?;
    within(limit, stream.flush()).await
}

async fn respond(
    stream: &mut Stream,
    key: &BlobKey,
    seq: &mut u64,
    refusal: BlobRefusal,
    limit: Duration,
) -> std::io::Result<()> {
    write_sealed(stream, key, seq, &BlobResponse::Refused(refusal), limit).await
}

/// Runs one write or flush, failing it if the requester has not taken the
/// bytes within `limit` (it stopped reading): a stalled requester must not
/// hold a serving slot for good.
async fn within(
    limit: Duration,
    io: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    tokio::time::timeout(limit, io).await.map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the requester took nothing for {limit:?}"),
        )
    })?
}

/// Streams the pieces in `range`, read from disk a few pieces ahead into
/// buffers that go round between the reader and the socket, each holding a
/// whole piece frame (header, then the bytes as stored).
async fn send_pieces(
    stream: &mut Stream,
    replica: &Arc<dyn Replica>,
    outline: &Outline,
    range: std::ops::Range<u64>,
    limit: Duration,
    counters: &Counters,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Result<Vec<u8>, String>>(READ_AHEAD);
    let (spent_tx, mut spent_rx) = mpsc::channel::<Vec<u8>>(READ_AHEAD + 2);
    let (reader_replica, reader_outline) = (replica.clone(), outline.clone());
    let reader = tokio::task::spawn_blocking(move || {
        for index in range {
            let mut frame = spent_rx.try_recv().unwrap_or_default();
            let piece =
                piece_frame(&*reader_replica, &reader_outline, index, &mut frame).map(|()| frame);
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    while let Some(frame) = rx.recv().await {
        let frame = frame.map_err(std::io::Error::other)?;
        within(limit, stream.write_all(&frame)).await?;
        counters.blob_bytes_sent(frame.len() as u64);
        let _ = spent_tx.try_send(frame);
    }
    drop(reader);
    within(limit, stream.flush()).await
}

/// Fills `frame` with the whole frame of piece `index`.
fn piece_frame(
    replica: &dyn Replica,
    outline: &Outline,
    index: u64,
    frame: &mut Vec<u8>,
) -> Result<(), String> {
    frame.clear();
    frame.extend_from_slice(&[0; blob::PIECE_HEADER_LEN]);
    replica
        .blob_piece(outline, index, frame)
        .map_err(|e| e.to_string())?;
    let header = blob::encode_piece_header(index, frame.len() - blob::PIECE_HEADER_LEN)
        .map_err(|e| e.to_string())?;
    frame[..blob::PIECE_HEADER_LEN].copy_from_slice(&header);
    Ok(())
}

//! A response body fed chunk by chunk from a blocking thread over a bounded channel:
//! the producer waits when the client reads slowly, so memory stays at a few chunks
//! whatever the size of the response.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;

/// Chunks in flight between the producer and the socket.
pub(crate) const CHANNEL_CHUNKS: usize = 4;

/// Why a streamed body stopped early. Sent as the last item; hyper then aborts the
/// connection, so the client sees a truncated transfer instead of a clean end.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StreamAbort(pub String);

type Item = Result<Bytes, StreamAbort>;

/// The consumer half, as a `Stream` for [`Body::from_stream`].
struct ChannelStream {
    rx: mpsc::Receiver<Item>,
}

impl futures_core::Stream for ChannelStream {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The producer half, used from a blocking thread.
pub(crate) struct ChunkSender {
    tx: mpsc::Sender<Item>,
}

impl ChunkSender {
    /// Sends a chunk, waiting while the channel is full; `false` once the client has
    /// gone, which tells the producer to stop.
    pub(crate) fn send(&self, chunk: Vec<u8>) -> bool {
        self.tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
    }

    /// Ends the body with an error (see [`StreamAbort`]).
    pub(crate) fn abort(&self, why: String) {
        let _ = self.tx.blocking_send(Err(StreamAbort(why)));
    }
}

/// A body whose chunks come from the returned sender, starting with `first`.
pub(crate) fn channel_body(first: Vec<u8>) -> (Body, ChunkSender) {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    // Capacity is at least one and the channel is new, so this cannot fail.
    let _ = tx.try_send(Ok(Bytes::from(first)));
    (Body::from_stream(ChannelStream { rx }), ChunkSender { tx })
}

//! CSV exports streamed page by page: memory stays flat however large the export is, and
//! no database connection waits on a client that does not read. A producer task writes
//! records into a [`CsvSink`], which hands ~64 KB chunks to the response through a short
//! channel, so the producer waits for a slow client instead of piling rows up.

use std::{future::Future, time::Duration};

use axum::{
    body::Body,
    http::header,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::stream;
use tokio::sync::mpsc;
use tracing::warn;

/// Lines are sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks buffered between the database reader and the client.
const CHUNKS_IN_FLIGHT: usize = 4;
/// A client that takes no chunk for this long is cut off (its file ends short).
const STALLED_CLIENT: Duration = Duration::from_secs(30);

pub(crate) struct CsvSink {
    out: csv::Writer<Vec<u8>>,
    chunks: mpsc::Sender<Bytes>,
    export: &'static str,
}

fn new_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES * 2))
}

impl CsvSink {
    /// Writes one record and sends what was written once it fills a chunk; false when
    /// the client left or stalled, and the export should stop.
    pub async fn record<I, F>(&mut self, fields: I) -> bool
    where
        I: IntoIterator<Item = F>,
        F: AsRef<[u8]>,
    {
        if self.out.write_record(fields).is_err() || self.out.flush().is_err() {
            return false;
        }
        if self.out.get_ref().len() < CHUNK_BYTES {
            return true;
        }
        match std::mem::replace(&mut self.out, new_writer()).into_inner() {
            Ok(chunk) => self.send(chunk).await,
            Err(_) => false,
        }
    }

    /// The export stopped on a database error: the status line is long gone, so the
    /// client sees a truncated file, and the cut is logged.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        warn!(export = self.export, %error, "export stopped");
    }

    /// Sends the last, partial chunk.
    pub async fn finish(mut self) {
        let rest = std::mem::replace(&mut self.out, new_writer());
        if let Ok(rest) = rest.into_inner() {
            self.send(rest).await;
        }
    }

    async fn send(&self, chunk: Vec<u8>) -> bool {
        match tokio::time::timeout(STALLED_CLIENT, self.chunks.send(Bytes::from(chunk))).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                warn!(
                    export = self.export,
                    "export cut off: the client took nothing for 30 s"
                );
                false
            }
        }
    }
}

/// A `text/csv` attachment named `filename`, whose body `produce` writes into its sink
/// from a task of its own.
pub(crate) fn streamed<F, Fut>(export: &'static str, filename: String, produce: F) -> Response
where
    F: FnOnce(CsvSink) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (chunks, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::spawn(produce(CsvSink {
        out: new_writer(),
        chunks,
        export,
    }));
    let body = stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), receiver))
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

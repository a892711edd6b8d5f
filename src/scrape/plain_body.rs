//! The body of a plain-HTTP instance's answer, read chunk by chunk: as it came, or, with
//! `Content-Encoding: gzip`, inflated as it arrives into chunks of at most [`INFLATED_CHUNK`]
//! bytes, so that the scraper's size cap stops a gzip bomb after one chunk past the cap. The gzip
//! header and trailer (CRC-32 and length) are checked by zlib; a corrupt or cut-off stream is a
//! [`ScrapeError::Read`]. Nothing is parsed here.

use bytes::{Buf, Bytes};
use flate2::{Decompress, FlushDecompress, Status};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};

use super::error::ScrapeError;

/// Largest piece of inflated body handed out at once.
pub(crate) const INFLATED_CHUNK: usize = 64 * 1024;

/// zlib's window size for gzip (2^15 bytes, the largest a gzip stream may use).
const GZIP_WINDOW_BITS: u8 = 15;

pub(crate) enum PlainBody {
    AsSent(Incoming),
    Gzip(Box<Inflating>),
}

/// A gzip body being inflated.
pub(crate) struct Inflating {
    body: Incoming,
    inflater: Decompress,
    /// Received and not inflated yet.
    input: Bytes,
    input_ended: bool,
    finished: bool,
}

impl PlainBody {
    pub(crate) fn new(body: Incoming, gzip: bool) -> PlainBody {
        if !gzip {
            return PlainBody::AsSent(body);
        }
        PlainBody::Gzip(Box::new(Inflating {
            body,
            inflater: Decompress::new_gzip(GZIP_WINDOW_BITS),
            input: Bytes::new(),
            input_ended: false,
            finished: false,
        }))
    }

    /// The body's length as `Content-Length` announced it, for a body sent as it is.
    pub(crate) fn declared_length(&self) -> Option<u64> {
        match self {
            PlainBody::AsSent(body) => body.size_hint().exact(),
            PlainBody::Gzip(_) => None,
        }
    }

    /// The next piece of the (inflated) body; `None` at its end.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, ScrapeError> {
        match self {
            PlainBody::AsSent(body) => next_data(body).await,
            PlainBody::Gzip(inflating) => inflating.next_chunk().await,
        }
    }
}

impl Inflating {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ScrapeError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(INFLATED_CHUNK);
        while out.len() < INFLATED_CHUNK {
            let (in_before, out_before) = (self.inflater.total_in(), out.len());
            // `decompress_vec` fills at most the spare capacity, so a chunk never grows past it.
            let status = self
                .inflater
                .decompress_vec(&self.input, &mut out, FlushDecompress::None)
                .map_err(|e| ScrapeError::Read(format!("the gzip body is corrupt: {e}")))?;
            let consumed = (self.inflater.total_in() - in_before) as usize;
            self.input.advance(consumed);
            if status == Status::StreamEnd {
                self.finished = true;
                drain_to_end(&mut self.body).await;
                break;
            }
            if consumed > 0 || out.len() > out_before {
                continue;
            }
            // No progress: zlib needs more input.
            if !self.input.is_empty() {
                return Err(ScrapeError::Read(
                    "the gzip body could not be inflated".to_owned(),
                ));
            }
            if self.input_ended {
                // An empty body is an empty answer, as reqwest reads it; a stream cut short is not.
                if self.inflater.total_in() == 0 {
                    self.finished = true;
                    break;
                }
                return Err(ScrapeError::Read(
                    "the gzip body ended before its end (truncated)".to_owned(),
                ));
            }
            match next_data(&mut self.body).await? {
                Some(data) => self.input = data,
                None => self.input_ended = true,
            }
        }
        Ok((!out.is_empty()).then(|| Bytes::from(out)))
    }
}

/// The next data frame of `body` (trailers are skipped); `None` at its end.
async fn next_data(body: &mut Incoming) -> Result<Option<Bytes>, ScrapeError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ScrapeError::from_plain_body)?;
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// After the gzip trailer, reads the body's end (the last chunk of a chunked body) so that the
/// connection can be used again; anything after the trailer is ignored, and a body that goes on
/// is given up (its connection is closed).
async fn drain_to_end(body: &mut Incoming) {
    while !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(frame)) if frame.data_ref().is_none_or(|data| !data.has_remaining()) => {}
            _ => return,
        }
    }
}

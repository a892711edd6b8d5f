//! An instance's (or exporter's) answer as the scraper reads it, whichever client brought it:
//! reqwest for TLS instances and external exporters, hyper directly for plain-HTTP instances. Both
//! give the status, the headers, the URL that was asked last and the body chunk by chunk
//! (decompressed); what the scraper does with them (status handling, redirects handed back, the
//! body cap) is written once, against this type.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use reqwest::Url;

use super::error::ScrapeError;
use super::plain_http::PlainAnswer;

pub(crate) enum Answer {
    Reqwest(reqwest::Response),
    Plain(PlainAnswer),
}

impl Answer {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Answer::Reqwest(response) => response.status(),
            Answer::Plain(answer) => answer.status,
        }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        match self {
            Answer::Reqwest(response) => response.headers(),
            Answer::Plain(answer) => &answer.headers,
        }
    }

    /// The URL whose answer this is (after the redirects followed).
    pub(crate) fn asked_url(&self) -> Option<Url> {
        match self {
            Answer::Reqwest(response) => Some(response.url().clone()),
            Answer::Plain(answer) => Url::parse(&answer.asked.to_string()).ok(),
        }
    }

    /// The body's length as announced by `Content-Length`, when the body is not decompressed.
    pub(crate) fn declared_length(&self) -> Option<u64> {
        match self {
            // With gzip, reqwest drops `Content-Length` (it is the compressed size).
            Answer::Reqwest(response) => response.content_length(),
            Answer::Plain(answer) => answer.body.declared_length(),
        }
    }

    /// The next piece of the (decompressed) body; `None` at its end.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, ScrapeError> {
        match self {
            Answer::Reqwest(response) => response.chunk().await.map_err(ScrapeError::from_body),
            Answer::Plain(answer) => answer.body.next_chunk().await,
        }
    }
}

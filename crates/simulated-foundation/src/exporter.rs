//! The simulated external exporter (think of a database exporter that is told which app to
//! report on by query parameters): on [`DEV_EXPORTER_PATH`] it answers a text exposition that
//! echoes every query parameter it received as a `dev_exporter_query_param` series, so that one
//! can see what promfetcher asked it; any other path answers 404. It records every request.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use super::instance::{plain, SeenLog, SeenRequest};
use super::metrics_body::TEXT_CONTENT_TYPE;
use super::serve::Answer;

/// The only path the simulated exporter serves metrics on.
pub const DEV_EXPORTER_PATH: &str = "/metrics";

/// Answers one request to the exporter.
pub async fn handle<B>(seen: SeenLog, req: Request<B>) -> Answer {
    let request = SeenRequest::of(&req);
    let requests = {
        let mut log = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        log.push(request);
        log.len()
    };
    if req.uri().path() != DEV_EXPORTER_PATH {
        return plain(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"404 page not found\n"),
        );
    }
    let mut answer = Response::new(Full::new(Bytes::from(echo_body(
        req.uri().query().unwrap_or_default(),
        requests,
    ))));
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
    answer
}

/// The exposition for a request with `query` (raw, percent-encoded), the `requests`th received.
fn echo_body(query: &str, requests: usize) -> String {
    let mut out = String::from(
        "# HELP dev_exporter_requests_total Requests the simulated exporter received.\n\
         # TYPE dev_exporter_requests_total counter\n",
    );
    out.push_str(&format!("dev_exporter_requests_total {requests}\n"));
    out.push_str(
        "# HELP dev_exporter_query_param One query parameter of the request, decoded, by position.\n\
         # TYPE dev_exporter_query_param gauge\n",
    );
    for (position, (name, value)) in url::form_urlencoded::parse(query.as_bytes()).enumerate() {
        out.push_str(&format!(
            "dev_exporter_query_param{{position=\"{position}\",param=\"{}\",value=\"{}\"}} 1\n",
            escape(&name),
            escape(&value)
        ));
    }
    out
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_echoes_each_decoded_param_in_order() {
        let body = echo_body("target=app%2F1&app=a+%22b%22&target=x%5Cy", 3);
        assert_eq!(
            body,
            "# HELP dev_exporter_requests_total Requests the simulated exporter received.\n\
             # TYPE dev_exporter_requests_total counter\n\
             dev_exporter_requests_total 3\n\
             # HELP dev_exporter_query_param One query parameter of the request, decoded, by position.\n\
             # TYPE dev_exporter_query_param gauge\n\
             dev_exporter_query_param{position=\"0\",param=\"target\",value=\"app/1\"} 1\n\
             dev_exporter_query_param{position=\"1\",param=\"app\",value=\"a \\\"b\\\"\"} 1\n\
             dev_exporter_query_param{position=\"2\",param=\"target\",value=\"x\\\\y\"} 1\n"
        );
    }
}

//! What a caller accepts, read from its weighted header lists: whether `Accept-Encoding` takes
//! gzip, and whether `Accept` prefers an HTML page to JSON. Both lists are entries separated by
//! commas, each a token with parameters after `;`, among them an optional `q` weight (RFC 9110
//! §12.4.2), and [`weighted`] reads them once for both.

/// The entries of a weighted list: each token (trimmed, as sent) and its `q` weight in
/// thousandths (1000 without `q=` or when it is unreadable; kept within 0..=1000; a weight above
/// zero never rounds down to zero).
fn weighted(list: &str) -> impl Iterator<Item = (&str, u16)> {
    list.split(',').map(|entry| {
        let mut parts = entry.split(';');
        let token = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim().eq_ignore_ascii_case("q").then_some(value)
            })
            .find_map(|value| value.trim().parse::<f32>().ok());
        let weight = q.map_or(1000, |q| {
            let q = q.clamp(0.0, 1.0);
            ((q * 1000.0).round() as u16).max(u16::from(q > 0.0))
        });
        (token, weight)
    })
}

/// Whether an `Accept-Encoding` header value accepts gzip: `gzip` (or `x-gzip`) or `*` with a
/// q-value above zero, where an explicit `gzip` entry wins over `*`.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let mut wildcard = None;
    for (coding, weight) in weighted(accept_encoding.unwrap_or_default()) {
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return weight > 0;
        }
        if coding == "*" {
            wildcard = Some(weight > 0);
        }
    }
    wildcard.unwrap_or(false)
}

/// Whether a caller with this `Accept` header wants the page rather than JSON: `text/html` (or
/// XHTML) is named and weighs more than anything JSON matches (`application/json`,
/// `application/*`, `*/*`). No `Accept`, `*/*` alone and ties give JSON.
pub(crate) fn prefers_html(accept: Option<&str>) -> bool {
    let mut html = 0_u16;
    // The most specific range that matches JSON decides its weight.
    let mut json: (u8, u16) = (0, 0);
    for (media, weight) in weighted(accept.unwrap_or_default()) {
        match media.to_ascii_lowercase().as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(weight),
            "application/json" => json = json.max((3, weight)),
            "application/*" => json = json.max((2, weight)),
            "*/*" => json = json.max((1, weight)),
            _ => {}
        }
    }
    html > 0 && html > json.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_values_as_clients_send_them() {
        let cases = [
            // what Prometheus sends with every scrape
            (Some("gzip"), true),
            (Some("gzip, deflate, br"), true),
            (Some("br;q=1.0, gzip;q=0.8, *;q=0.1"), true),
            (Some("GZIP"), true),
            (Some("x-gzip"), true),
            (Some("*"), true),
            (Some("gzip;q=0"), false),
            (Some("*, gzip;q=0"), false),
            (Some("identity"), false),
            (Some("br, *;q=0"), false),
            (Some(""), false),
            (None, false),
        ];
        for (header, expected) in cases {
            assert_eq!(accepts_gzip(header), expected, "{header:?}");
        }
    }

    #[test]
    fn browsers_get_the_page_and_everything_else_json() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(prefers_html(Some(browser)));
        assert!(prefers_html(Some("text/html")));
        for json in [
            None,
            Some("*/*"),
            Some("application/json"),
            Some("application/json, text/html;q=0.5"),
            Some("text/html;q=0.5, */*"),
            Some("text/html;q=0, */*;q=0.1"),
            Some("text/plain"),
        ] {
            assert!(!prefers_html(json), "{json:?}");
        }
    }
}

//! `GET /doc`: the user guide, one HTML page that shows every way to call promfetcher with this
//! deployment's `base_url` filled in. The page lives in `src/http/user_guide.html` and is embedded at
//! build time; this module only fills in its placeholders (HTML-escaped). It serves no other page
//! and reads no state but the public address.

use actix_web::{web, HttpResponse};

use crate::http::html::escape as escape_html;
use crate::http::ApiState;
use crate::http::PublicAddress;

const GUIDE: &str = include_str!("user_guide.html");

/// Mounts `GET /doc`.
pub fn configure(config: &mut web::ServiceConfig) {
    config.route("/doc", web::get().to(guide));
}

/// The guide with `{{base_url}}`, `{{scheme}}` and `{{host_port}}` replaced.
pub fn render(public: &PublicAddress) -> String {
    GUIDE
        .replace("{{base_url}}", &escape_html(&public.base_url))
        .replace("{{scheme}}", &escape_html(&public.scheme))
        .replace("{{host_port}}", &escape_html(&public.host_port))
}

async fn guide(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(render(&state.public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let page = render(&PublicAddress::parse("https://pf.example.com").unwrap());
        assert!(!page.contains("{{"), "a placeholder is left");
        assert!(page.contains("https://pf.example.com/v1/apps/my-org/my-space/my-app/metrics"));
        assert!(page.contains("targets: ['pf.example.com:443']"));
    }

    #[test]
    fn base_url_is_escaped() {
        let page = render(&PublicAddress::parse("http://x.example.com/?a=<b>&c=\"d\"").unwrap());
        assert!(!page.contains("<b>"));
        assert!(page.contains("&lt;b&gt;&amp;c=&quot;d&quot;"));
    }
}

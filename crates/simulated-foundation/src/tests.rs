//! Tests of the simulated foundation through its sockets, as promfetcher sees it.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("test client")
}

fn basic(user: &str, pass: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {encoded}")
}

async fn get(url: String) -> reqwest::Response {
    client().get(url).send().await.expect("request")
}

async fn routes(f: &Foundation, auth: Option<String>) -> reqwest::Response {
    let mut req = client().get(format!("http://{}/routes", f.gorouter_addr()));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.expect("request")
}

fn good_auth(f: &Foundation) -> Option<String> {
    let (user, pass) = f.gorouter_credentials();
    Some(basic(user, pass))
}

fn metrics_url(f: &Foundation, app: &str, index: usize) -> String {
    format!("http://{}/metrics", f.instance_addr(app, index))
}

async fn one_instance(spec: InstanceSpec) -> Foundation {
    let app = AppSpec::new("acme", "dev", "one").with_instances(vec![spec]);
    Foundation::start(FoundationSpec::new("u", "p").with_app(app))
        .await
        .expect("start")
}

/// Writes one HTTP/1.1 GET and reads one response (headers, then a Content-Length body).
async fn raw_get<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("read head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("utf-8 head");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("read body");
    head + &String::from_utf8(body).expect("utf-8 body")
}

#[tokio::test]
async fn routes_json_is_byte_exact_and_escapes_like_go() {
    let app = AppSpec::new("o&o", "s", "a<b>")
        .with_routes(["q.apps.dev.local/x&y", "b.apps.dev.local"])
        .with_instances(vec![InstanceSpec::healthy()]);
    let f = Foundation::start(FoundationSpec::new("u", "p").with_app(app.clone()))
        .await
        .expect("start");
    let addr = f.instance_addr("a<b>", 0);
    let guid = f.instance_guid("a<b>", 0);
    assert_eq!(guid, app.instance_guid(0));
    let endpoint = format!(
        "[{{\"address\":\"{addr}\",\"availability_zone\":\"z1\",\"protocol\":\"http1\",\
         \"tls\":false,\"ttl\":120,\"tags\":{{\"app_id\":\"{app_id}\",\
         \"app_name\":\"a\\u003cb\\u003e\",\"component\":\"route-emitter\",\"instance_id\":\"0\",\
         \"organization_id\":\"{org_id}\",\"organization_name\":\"o\\u0026o\",\
         \"process_id\":\"{app_id}\",\"process_instance_id\":\"{guid}\",\
         \"process_type\":\"web\",\"source_id\":\"{app_id}\",\"space_id\":\"{space_id}\",\
         \"space_name\":\"s\"}},\"private_instance_id\":\"{guid}\",\
         \"server_cert_domain_san\":\"{guid}\"}}]",
        app_id = app.app_guid,
        org_id = app.org_guid,
        space_id = app.space_guid,
    );
    // Keys sorted: "b..." before "q...".
    let expected =
        format!("{{\"b.apps.dev.local\":{endpoint},\"q.apps.dev.local/x\\u0026y\":{endpoint}}}\n");
    assert_eq!(f.routes_json(), expected);

    let resp = routes(&f, good_auth(&f)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["connection"], "close");
    assert_eq!(resp.text().await.expect("body"), expected);
}

#[tokio::test]
async fn empty_foundation_serves_empty_object() {
    let f = Foundation::start(FoundationSpec::new("u", "p"))
        .await
        .expect("start");
    assert_eq!(f.routes_json(), "{}\n");
    let body = routes(&f, good_auth(&f)).await.text().await.expect("body");
    assert_eq!(body, "{}\n");
}

#[tokio::test]
async fn dev_default_route_table_lists_every_instance() {
    let f = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("start");
    assert_eq!(f.gorouter_credentials(), ("router-status", "dev-password"));
    let json = f.routes_json();
    let table: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&json).expect("valid JSON");
    let keys: Vec<&str> = table.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "billing.apps.dev.local",
            "flaky.apps.dev.local",
            "legacy.apps.dev.local",
            "secure-api.apps.dev.local",
            "shop.apps.dev.local",
            "shop.apps.dev.local/api",
            "vault.apps.dev.local",
            "worker.apps.dev.local",
        ]
    );
    let pool = |key: &str| table[key].as_array().expect("array").clone();
    assert_eq!(pool("shop.apps.dev.local").len(), 3);
    assert_eq!(pool("shop.apps.dev.local/api"), pool("shop.apps.dev.local"));
    // The down instance is listed, at an address that refuses.
    let flaky = pool("flaky.apps.dev.local");
    assert_eq!(flaky[1]["address"], f.instance_addr("flaky", 1).to_string());
    assert!(TcpStream::connect(f.instance_addr("flaky", 1))
        .await
        .is_err());
    let vault = pool("vault.apps.dev.local");
    assert_eq!(vault[0]["tls"], true);
    assert_eq!(
        vault[0]["server_cert_domain_san"],
        f.instance_guid("vault", 0)
    );
    assert_eq!(
        pool("worker.apps.dev.local")[0]["tags"]["process_type"],
        "worker"
    );
    assert_eq!(pool("shop.apps.dev.local")[2]["tags"]["instance_id"], "2");
    assert_eq!(
        pool("billing.apps.dev.local")[0]["tags"]["organization_name"],
        "acme"
    );
    let legacy = &pool("legacy.apps.dev.local")[0];
    assert!(legacy["tags"].is_null());
    assert_eq!(legacy["protocol"], "");
    assert!(legacy.get("private_instance_id").is_none());
    // The legacy route points to a healthy instance.
    let resp = get(metrics_url(&f, "legacy", 0)).await;
    assert_eq!(resp.status(), 200);
    f.shutdown().await;
}

#[tokio::test]
async fn gorouter_auth_rules_match_the_real_one() {
    let f = Foundation::start(FoundationSpec::new("router-status", "pa:ss"))
        .await
        .expect("start");
    let unauthorized = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Basic");
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(resp.text().await.expect("body"), "401 Unauthorized\n");
    };
    unauthorized(routes(&f, None).await).await;
    unauthorized(routes(&f, Some(basic("router-status", "wrong"))).await).await;
    unauthorized(routes(&f, Some(basic("other", "pa:ss"))).await).await;
    // The right password, but it contains ':' so gorouter can never accept it.
    unauthorized(routes(&f, Some(basic("router-status", "pa:ss"))).await).await;
    // Unknown paths need auth too.
    let url = format!("http://{}/varz", f.gorouter_addr());
    unauthorized(get(url).await).await;

    let health = get(format!("http://{}/health", f.gorouter_addr())).await;
    assert_eq!(health.status(), 200);

    let f = Foundation::start(FoundationSpec::new("u", "p"))
        .await
        .expect("start");
    let resp = client()
        .get(format!("http://{}/routes/", f.gorouter_addr()))
        .header("authorization", basic("u", "p"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.text().await.expect("body"), "404 page not found\n");
}

#[tokio::test]
async fn gorouter_modes_switch_at_run_time() {
    let f = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("start");
    f.set_gorouter_mode(GorouterMode::Status(503));
    let resp = routes(&f, good_auth(&f)).await;
    assert_eq!(resp.status(), 503);

    f.set_gorouter_mode(GorouterMode::Garbage);
    let resp = routes(&f, good_auth(&f)).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());

    f.set_gorouter_mode(GorouterMode::Hang);
    let hung = tokio::time::timeout(Duration::from_millis(300), routes(&f, good_auth(&f))).await;
    assert!(hung.is_err(), "a hanging gorouter must not answer");

    f.set_gorouter_mode(GorouterMode::Normal);
    let resp = routes(&f, good_auth(&f)).await;
    assert_eq!(resp.text().await.expect("body"), f.routes_json());
}

#[tokio::test]
async fn healthy_instances_serve_their_own_bodies() {
    let f = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("start");
    let shop0 = get(metrics_url(&f, "shop", 0)).await;
    assert_eq!(shop0.status(), 200);
    assert_eq!(shop0.headers()["content-type"], TEXT_CONTENT_TYPE);
    let shop0 = shop0.text().await.expect("body");
    assert!(shop0.contains("http_requests_total{method=\"GET\",code=\"200\"} 1000\n"));
    let shop2 = get(metrics_url(&f, "shop", 2))
        .await
        .text()
        .await
        .expect("body");
    assert!(shop2.contains("http_requests_total{method=\"GET\",code=\"200\"} 1034\n"));

    let billing = get(metrics_url(&f, "billing", 1)).await;
    assert_eq!(billing.headers()["content-type"], OPENMETRICS_CONTENT_TYPE);
    let billing = billing.text().await.expect("body");
    assert!(billing.ends_with("# EOF\n"));
    assert!(billing.contains("# UNIT http_request_duration_seconds seconds\n"));

    let wrong_path = get(format!("http://{}/prometheus", f.instance_addr("shop", 0))).await;
    assert_eq!(wrong_path.status(), 404);
}

#[tokio::test]
async fn basic_auth_instances_need_their_credentials() {
    let f = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("start");
    let url = format!(
        "http://{}/actuator/prometheus",
        f.instance_addr("secure-api", 1)
    );
    let resp = get(url.clone()).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let wrong = client()
        .get(&url)
        .basic_auth("metrics", Some("nope"))
        .send()
        .await;
    assert_eq!(wrong.expect("request").status(), 401);
    let right = client()
        .get(&url)
        .basic_auth("metrics", Some("s3cret"))
        .send()
        .await;
    let right = right.expect("request");
    assert_eq!(right.status(), 200);
    assert!(right
        .text()
        .await
        .expect("body")
        .contains("app_info_version"));
    // The default path is not served there.
    let default_path = client()
        .get(metrics_url(&f, "secure-api", 0))
        .basic_auth("metrics", Some("s3cret"))
        .send()
        .await
        .expect("request");
    assert_eq!(default_path.status(), 404);
}

#[tokio::test]
async fn down_instance_refuses_connections() {
    let f = one_instance(InstanceSpec::down()).await;
    let addr = f.instance_addr("one", 0);
    let err = TcpStream::connect(addr).await.expect_err("must refuse");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(f.routes_json().contains(&format!("\"address\":\"{addr}\"")));
}

#[tokio::test]
async fn external_instance_is_routed_to_its_own_address() {
    let elsewhere = "127.0.0.1:9".parse().expect("address");
    let f = one_instance(InstanceSpec::external(elsewhere)).await;
    assert_eq!(f.instance_addr("one", 0), elsewhere);
    assert!(f.routes_json().contains("\"address\":\"127.0.0.1:9\""));
    assert!(f.registrations()[0].register.contains("\"port\":9"));
}

#[tokio::test]
async fn status_instance_answers_its_status_on_every_path() {
    let f = one_instance(InstanceSpec::status(503)).await;
    for path in ["/metrics", "/elsewhere"] {
        let resp = get(format!("http://{}{path}", f.instance_addr("one", 0))).await;
        assert_eq!(resp.status(), 503);
        assert_eq!(
            resp.text().await.expect("body"),
            "503 Service Unavailable\n"
        );
    }
}

#[tokio::test]
async fn invalid_specs_fail_to_start() {
    let bad_status = Foundation::start(
        FoundationSpec::new("u", "p")
            .with_app(AppSpec::new("o", "s", "a").with_instances(vec![InstanceSpec::status(42)])),
    )
    .await;
    assert_eq!(
        bad_status.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::InvalidInput)
    );
}

#[tokio::test]
async fn garbage_instance_answers_200_with_an_invalid_body() {
    let f = one_instance(InstanceSpec::garbage()).await;
    let resp = get(metrics_url(&f, "one", 0)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.expect("body").starts_with("<html>"));
}

#[tokio::test]
async fn redirect_instance_answers_302_with_location() {
    let f = one_instance(InstanceSpec::redirect_to(
        "https://elsewhere.example/metrics",
    ))
    .await;
    let resp = get(metrics_url(&f, "one", 0)).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "https://elsewhere.example/metrics"
    );
}

#[tokio::test]
async fn delay_is_honoured() {
    let f = one_instance(InstanceSpec::healthy().with_delay(Duration::from_millis(200))).await;
    let started = Instant::now();
    let resp = get(metrics_url(&f, "one", 0)).await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn requests_are_recorded_before_the_delay() {
    let f = one_instance(InstanceSpec::healthy().with_delay(Duration::from_secs(60))).await;
    let url = metrics_url(&f, "one", 0);
    let pending = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) });
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.requests_seen("one", 0).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.requests_seen("one", 0).len(), 1);
    assert!(!pending.is_finished());
    pending.abort();
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_lower_case_headers() {
    let f = one_instance(InstanceSpec::healthy()).await;
    let addr = f.instance_addr("one", 0);
    let first = client()
        .get(format!("http://{addr}/metrics?debug=1&x=%20"))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "9.5")
        .header("Accept", "text/plain;version=0.0.4")
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), 200);
    let second = get(format!("http://{addr}/other")).await;
    assert_eq!(second.status(), 404);

    let seen = f.requests_seen("one", 0);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path_and_query, "/metrics?debug=1&x=%20");
    assert_eq!(
        seen[0].header("x-prometheus-scrape-timeout-seconds"),
        Some("9.5")
    );
    let names: Vec<&str> = seen[0].headers.iter().map(|(n, _)| n.as_str()).collect();
    let timeout_at = names
        .iter()
        .position(|n| *n == "x-prometheus-scrape-timeout-seconds");
    let accept_at = names.iter().position(|n| *n == "accept");
    assert!(
        timeout_at < accept_at,
        "headers keep their order: {names:?}"
    );
    assert_eq!(seen[1].path_and_query, "/other");
}

#[tokio::test]
async fn connections_are_kept_alive() {
    let f = one_instance(InstanceSpec::healthy()).await;
    let mut stream = TcpStream::connect(f.instance_addr("one", 0))
        .await
        .expect("connect");
    let first = raw_get(&mut stream, "/metrics").await;
    let second = raw_get(&mut stream, "/metrics").await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(first, second.replace(date_of(&second), date_of(&first)));
}

fn date_of(response: &str) -> &str {
    response
        .lines()
        .find(|l| l.starts_with("date: "))
        .unwrap_or_default()
}

#[tokio::test]
async fn gzip_only_when_accepted() {
    let f = one_instance(InstanceSpec::healthy().with_gzip()).await;
    let url = metrics_url(&f, "one", 0);
    let plain = get(url.clone()).await;
    assert!(!plain.headers().contains_key("content-encoding"));
    let plain = plain.text().await.expect("body");

    let zipped = client()
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.expect("body");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, plain);

    // Not gzipped unless the instance is set to.
    let f = one_instance(InstanceSpec::healthy()).await;
    let resp = client()
        .get(metrics_url(&f, "one", 0))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert!(!resp.headers().contains_key("content-encoding"));
}

fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_instances_verify_against_the_ca_with_the_guid() {
    let f = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("start");
    let connector = tls_connector(f.ca_pem());
    for index in 0..2 {
        let guid = f.instance_guid("vault", index);
        let name = ServerName::try_from(guid).expect("guid is a DNS name");
        let tcp = TcpStream::connect(f.instance_addr("vault", index))
            .await
            .expect("connect");
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        let response = raw_get(&mut tls, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("# TYPE http_requests_total counter\n"));
    }

    // Another instance's GUID does not match the certificate.
    let other = ServerName::try_from(f.instance_guid("vault", 1)).expect("name");
    let tcp = TcpStream::connect(f.instance_addr("vault", 0))
        .await
        .expect("connect");
    assert!(connector.connect(other, tcp).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_every_listener() {
    let f = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("start");
    let gorouter = f.gorouter_addr();
    let shop = f.instance_addr("shop", 0);
    f.shutdown().await;
    assert!(TcpStream::connect(gorouter).await.is_err());
    assert!(TcpStream::connect(shop).await.is_err());
}

#[tokio::test]
async fn hundreds_of_instances_are_cheap() {
    let app = AppSpec::new("acme", "dev", "big").with_instances(vec![
        InstanceSpec::healthy()
            .with_extra_series(100);
        300
    ]);
    let f = Foundation::start(FoundationSpec::new("u", "p").with_app(app))
        .await
        .expect("start");
    let resp = get(metrics_url(&f, "big", 299)).await;
    let body = resp.text().await.expect("body");
    assert!(body.contains("dev_load_series{n=\"99\"} 299000099\n"));
    let table: serde_json::Value = serde_json::from_str(&f.routes_json()).expect("JSON");
    assert_eq!(
        table["big.apps.dev.local"].as_array().map(Vec::len),
        Some(300)
    );
}

#[tokio::test]
async fn dropping_the_foundation_stops_it() {
    let f = one_instance(InstanceSpec::healthy()).await;
    let gorouter = f.gorouter_addr();
    let instance = f.instance_addr("one", 0);
    drop(f);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(instance).await.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(TcpStream::connect(instance).await.is_err());
    assert!(TcpStream::connect(gorouter).await.is_err());
}

//! The service broker end to end, as Cloud Foundry drives it: a real promfetcher on
//! 127.0.0.1:0 with the simulated foundation, on the embedded SQLite, a real PostgreSQL and a
//! real MariaDB (`scripts/test-all` installs and starts them and exports their URLs; a missing
//! URL fails the test). Also: two promfetchers sharing PostgreSQL, PostgreSQL stopped and
//! restarted mid-test, start-up with the database down, and a database written by the original.

use std::time::{Duration, Instant};

use crate::common::{client, config_for, sample_value, samples_named, Harness, WAIT_LIMIT};
use promfetcher::config::{GoDuration, UrlWithSecret};
use promfetcher::server::Server;
use promfetcher::settings::Settings;
use serde_json::{json, Value};
use simulated_foundation::{AppSpec, FoundationSpec, InstanceSpec};

pub(crate) const CUSTOM_PATH: &str = "/custom/prom";
const SERVICE_ID: &str = promfetcher::config::DEFAULT_BROKER_SERVICE_ID;
const PLAN_ID: &str = promfetcher::config::DEFAULT_BROKER_PLAN_ID;

/// A URL exported by scripts/test-all; its absence fails the test.
pub(crate) fn database_url(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: run `bash scripts/test-all` (as root), which installs and \
             starts PostgreSQL and MariaDB and exports their URLs"
        )
    })
}

/// A foundation with one app whose 2 instances serve metrics only at [`CUSTOM_PATH`].
pub(crate) fn spec_with_app(name: &str) -> FoundationSpec {
    FoundationSpec::dev_default().with_app(AppSpec::new("acme", "dev", name).with_instances(
        vec![InstanceSpec::healthy().with_metrics_path(CUSTOM_PATH); 2],
    ))
}

async fn start_on(db_conn: &str, app: &str) -> Harness {
    let db_conn = db_conn.to_string();
    Harness::start_with(spec_with_app(app), move |config| {
        config.db_conn = UrlWithSecret::new(db_conn);
        config.db_refresh_interval = GoDuration::from_millis(200);
    })
    .await
}

pub(crate) fn app_guid(h: &Harness, name: &str) -> String {
    h.foundation.spec().app(name).expect("app").app_guid.clone()
}

/// A unique id per test run, so tests sharing a database never collide.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// One broker call as Cloud Controller makes it; returns status and JSON body.
pub(crate) async fn osb(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client()
        .request(method, format!("{base}/broker{path}"))
        .basic_auth("user", Some("password"))
        .header("X-Broker-API-Version", "2.15")
        .header("X-Broker-API-Request-Identity", "test-request");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("broker answers");
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{path}"
    );
    assert_eq!(
        response
            .headers()
            .get("x-broker-api-request-identity")
            .and_then(|v| v.to_str().ok()),
        Some("test-request")
    );
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).expect("JSON body");
    (status, body)
}

pub(crate) fn provision_body(endpoint: Option<&str>) -> Value {
    let mut body = json!({
        "service_id": SERVICE_ID, "plan_id": PLAN_ID,
        "organization_guid": "org-guid", "space_guid": "space-guid",
        "context": {"platform": "cloudfoundry", "instance_name": "my-metrics"},
    });
    if let Some(endpoint) = endpoint {
        body["parameters"] = json!({ "endpoint": endpoint });
    }
    body
}

pub(crate) fn bind_body(app: Option<&str>, parameters: Value) -> Value {
    let mut body = json!({"service_id": SERVICE_ID, "plan_id": PLAN_ID, "parameters": parameters});
    if let Some(app) = app {
        body["app_guid"] = json!(app);
        body["bind_resource"] = json!({ "app_guid": app, "space_guid": "space-guid" });
    }
    body
}

fn delete_query() -> String {
    format!("?service_id={SERVICE_ID}&plan_id={PLAN_ID}&accepts_incomplete=true")
}

/// The status of a DELETE (unbind or deprovision) as Cloud Controller sends it.
pub(crate) async fn delete_status(base: &str, path: &str) -> u16 {
    osb(
        base,
        reqwest::Method::DELETE,
        &format!("{path}{}", delete_query()),
        None,
    )
    .await
    .0
}

/// The status of a merged scrape of `app` (200: every instance answered at the path used).
pub(crate) async fn scrape_status(base: &str, app: &str) -> u16 {
    client()
        .get(format!("{base}/v1/apps/acme/dev/{app}/metrics"))
        .send()
        .await
        .expect("promfetcher answers")
        .status()
        .as_u16()
}

/// Polls until the scrape of `app` answers `status`; panics after [`WAIT_LIMIT`].
pub(crate) async fn wait_scrape_status(base: &str, app: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        let got = scrape_status(base, app).await;
        if got == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "{app}: scrape still answers {got}, waited for {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// catalog → create-service with endpoint → bind → scrape hits the custom path → update-service
/// → unbind → deprovision, with the status-code rules along the way.
async fn cf_flow(db_conn: &str, app: &str) {
    use reqwest::Method;
    let h = start_on(db_conn, app).await;
    let base = h.base.clone();
    let guid = app_guid(&h, app);
    let instance = format!("/v2/service_instances/{}", unique("instance"));
    let binding = format!("{instance}/service_bindings/{}", unique("binding"));

    let (status, catalog) = osb(&base, Method::GET, "/v2/catalog", None).await;
    assert_eq!(status, 200);
    assert_eq!(catalog["services"][0]["name"], "promfetcher");
    assert_eq!(catalog["services"][0]["plans"][0]["name"], "fetch-app");

    assert_eq!(
        scrape_status(&base, app).await,
        406,
        "nothing at /metrics before the broker"
    );

    let create = format!("{instance}?accepts_incomplete=true");
    for expected in [201, 200] {
        let body = provision_body(Some(CUSTOM_PATH));
        assert_eq!(
            osb(&base, Method::PUT, &create, Some(body)).await.0,
            expected
        );
    }
    let (status, body) = osb(
        &base,
        Method::PUT,
        &create,
        Some(provision_body(Some("/other"))),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("Conflict")));
    let (status, body) = osb(
        &base,
        Method::PUT,
        &format!("/v2/service_instances/{}", unique("bad")),
        Some(provision_body(Some("@evil.example/x"))),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["description"]
        .as_str()
        .unwrap_or_default()
        .contains("endpoint"));
    let (status, fetched) = osb(&base, Method::GET, &instance, None).await;
    assert_eq!(
        (status, &fetched["parameters"]["endpoint"]),
        (200, &json!(CUSTOM_PATH))
    );

    let (status, bound) = osb(
        &base,
        Method::PUT,
        &format!("{binding}?accepts_incomplete=true"),
        Some(bind_body(Some(&guid), json!({}))),
    )
    .await;
    assert_eq!(status, 201, "{bound}");
    assert_eq!(bound["credentials"]["endpoint"], CUSTOM_PATH);
    assert_eq!(
        osb(
            &base,
            Method::PUT,
            &binding,
            Some(bind_body(Some(&guid), json!({})))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        osb(
            &base,
            Method::PUT,
            &binding,
            Some(bind_body(Some(&guid), json!({"endpoint": "/x"})))
        )
        .await
        .0,
        409
    );
    let service_key = format!("{instance}/service_bindings/{}", unique("key"));
    assert_eq!(
        osb(
            &base,
            Method::PUT,
            &service_key,
            Some(bind_body(None, json!({})))
        )
        .await
        .0,
        201
    );

    // the local write is in the cache at once: no wait
    let body = h.merged(&format!("/v1/apps/acme/dev/{app}/metrics")).await;
    let up = samples_named(&body, "promfetcher_up");
    assert!(
        up.len() == 2 && up.iter().all(|l| l.ends_with(" 1")),
        "{body}"
    );
    for index in 0..2 {
        let seen = h.foundation.requests_seen(app, index);
        assert_eq!(
            seen.last().map(|r| r.path_and_query.as_str()),
            Some(CUSTOM_PATH)
        );
    }
    // the broker path wins over ?metric_path=
    assert_eq!(
        h.get(&format!(
            "/v1/apps/acme/dev/{app}/metrics?metric_path=/metrics"
        ))
        .await
        .status(),
        200
    );
    let (status, fetched) = osb(&base, Method::GET, &binding, None).await;
    assert_eq!(
        (status, &fetched["credentials"]["endpoint"]),
        (200, &json!(CUSTOM_PATH))
    );

    let update = json!({"service_id": SERVICE_ID, "plan_id": PLAN_ID, "parameters": {"endpoint": "/elsewhere"}, "previous_values": {}});
    assert_eq!(
        osb(&base, Method::PATCH, &create, Some(update)).await.0,
        200
    );
    assert_eq!(
        scrape_status(&base, app).await,
        406,
        "the bound app follows the instance's new endpoint"
    );
    let update = json!({"service_id": SERVICE_ID, "parameters": {"endpoint": CUSTOM_PATH}});
    assert_eq!(
        osb(&base, Method::PATCH, &create, Some(update)).await.0,
        200
    );
    assert_eq!(scrape_status(&base, app).await, 200);

    let (status, body) = osb(
        &base,
        Method::DELETE,
        &format!("{binding}{}", delete_query()),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(
        scrape_status(&base, app).await,
        406,
        "unbinding forgets the path"
    );
    assert_eq!(delete_status(&base, &binding).await, 410);
    assert_eq!(osb(&base, Method::GET, &binding, None).await.0, 404);
    assert_eq!(delete_status(&base, &service_key).await, 200);
    assert_eq!(
        osb(
            &base,
            Method::DELETE,
            &format!("{instance}?service_id={SERVICE_ID}"),
            None
        )
        .await
        .0,
        400
    );
    let (status, body) = osb(
        &base,
        Method::DELETE,
        &format!("{instance}{}", delete_query()),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(delete_status(&base, &instance).await, 410);
    assert_eq!(osb(&base, Method::GET, &instance, None).await.0, 404);
    h.stop().await;
}

#[tokio::test]
async fn cf_flow_on_the_embedded_sqlite() {
    cf_flow("", "flow-sqlite").await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-all"]
async fn cf_flow_on_postgresql() {
    cf_flow(
        &database_url("PROMFETCHER_TEST_POSTGRES_URL"),
        "flow-postgres",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs MariaDB: run scripts/test-all"]
async fn cf_flow_on_mariadb() {
    cf_flow(
        &database_url("PROMFETCHER_TEST_MARIADB_URL"),
        "flow-mariadb",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-all"]
async fn two_promfetchers_on_one_postgresql_see_each_others_bindings() {
    let db_conn = database_url("PROMFETCHER_TEST_POSTGRES_URL");
    let app = "shared-postgres";
    let first = start_on(&db_conn, app).await;
    let mut config = config_for(&first.foundation);
    config.db_conn = UrlWithSecret::new(db_conn.clone());
    config.db_refresh_interval = GoDuration::from_millis(200);
    let second = Server::start(&Settings::from_config(&config).expect("the test config is valid"))
        .await
        .expect("second promfetcher starts");
    let second_base = format!("http://{}", second.main_addr());
    first.wait_ready().await;
    wait_for_health(&format!("http://{}/", second.health_addr())).await;

    let guid = app_guid(&first, app);
    let (instance, binding) = provision_and_bind(&first.base, &guid).await;
    assert_eq!(scrape_status(&first.base, app).await, 200);
    let waited = wait_scrape_status(&second_base, app, 200).await;
    assert!(
        waited < Duration::from_secs(3),
        "the second promfetcher took {waited:?}"
    );
    // and the other way round: unbind on the second, the first forgets
    assert_eq!(delete_status(&second_base, &binding).await, 200);
    wait_scrape_status(&first.base, app, 406).await;
    assert_eq!(delete_status(&second_base, &instance).await, 200);
    second
        .stop(promfetcher::server::signals::StopRequest::Now)
        .await;
    first.stop().await;
}

/// Creates an instance with [`CUSTOM_PATH`] and binds `app_guid` to it; returns both paths.
pub(crate) async fn provision_and_bind(base: &str, app_guid: &str) -> (String, String) {
    let instance = format!("/v2/service_instances/{}", unique("instance"));
    let binding = format!("{instance}/service_bindings/{}", unique("binding"));
    let (status, body) = osb(
        base,
        reqwest::Method::PUT,
        &instance,
        Some(provision_body(Some(CUSTOM_PATH))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = osb(
        base,
        reqwest::Method::PUT,
        &binding,
        Some(bind_body(Some(app_guid), json!({}))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (instance, binding)
}

async fn wait_for_health(url: &str) {
    let started = Instant::now();
    while client()
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(started.elapsed() < WAIT_LIMIT, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `promfetcher_store_up` of the harness' server.
async fn store_up(h: &Harness) -> Option<f64> {
    let body = h.get("/metrics").await.text().await.expect("metrics");
    sample_value(&body, "promfetcher_store_up")
}

/// Polls until `promfetcher_store_up` is `expected`; panics after [`WAIT_LIMIT`].
async fn wait_store_up(h: &Harness, expected: f64) {
    let started = Instant::now();
    while store_up(h).await != Some(expected) {
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "promfetcher_store_up never became {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a shell command of scripts/test-all (stop or start the outage cluster).
fn run(variable: &str) {
    let command = database_url(variable);
    let status = std::process::Command::new("sh")
        .args(["-c", &command])
        .status()
        .expect("sh runs");
    assert!(status.success(), "{variable} failed: {command}");
}

/// Restarts the outage cluster when a test stops in the middle.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh")
            .args([
                "-c",
                &database_url("PROMFETCHER_TEST_POSTGRES_OUTAGE_START"),
            ])
            .status();
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-all"]
async fn postgresql_stopped_mid_test_scrapes_go_on_the_broker_answers_503_and_both_heal() {
    use reqwest::Method;
    let db_conn = database_url("PROMFETCHER_TEST_POSTGRES_OUTAGE_URL");
    let app = "outage-postgres";
    let h = start_on(&db_conn, app).await;
    let guid = app_guid(&h, app);
    let (instance, binding) = provision_and_bind(&h.base, &guid).await;
    assert_eq!(scrape_status(&h.base, app).await, 200);

    assert_eq!(store_up(&h).await, Some(1.0));

    let _restart = RestartOnDrop;
    run("PROMFETCHER_TEST_POSTGRES_OUTAGE_STOP");
    // several refresh intervals with the database away: the cache keeps the path
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        scrape_status(&h.base, app).await,
        200,
        "scrapes use the cached path"
    );
    // a refresh gives up after the connection timeout (3 s)
    wait_store_up(&h, 0.0).await;
    let other = format!("/v2/service_instances/{}", unique("instance"));
    let (status, body) = osb(&h.base, Method::PUT, &other, Some(provision_body(None))).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "ServiceUnavailable");
    assert!(!body["description"].as_str().unwrap_or_default().is_empty());
    let (status, _) = osb(&h.base, Method::GET, "/v2/catalog", None).await;
    assert_eq!(status, 200, "the catalog needs no database");

    run("PROMFETCHER_TEST_POSTGRES_OUTAGE_START");
    let started = Instant::now();
    loop {
        let (status, body) = osb(&h.base, Method::PUT, &other, Some(provision_body(None))).await;
        if status == 201 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the broker never healed: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_store_up(&h, 1.0).await;
    assert_eq!(delete_status(&h.base, &binding).await, 200);
    assert_eq!(
        scrape_status(&h.base, app).await,
        406,
        "writes reach the cache again"
    );
    for id in [&instance, &other] {
        assert_eq!(delete_status(&h.base, id).await, 200);
    }
    h.stop().await;
}

#[tokio::test]
async fn start_up_with_the_database_down_fails_unless_not_exit_when_conn_failed() {
    let foundation = simulated_foundation::Foundation::start(spec_with_app("down-at-start"))
        .await
        .expect("foundation");
    // a port nothing listens on
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let mut config = config_for(&foundation);
    config.db_conn = UrlWithSecret::new(format!("postgres://u:secret-pw@{closed}/db"));
    let error =
        match Server::start(&Settings::from_config(&config).expect("the test config is valid"))
            .await
        {
            Ok(_) => panic!("promfetcher started without its database"),
            Err(error) => error.to_string(),
        };
    assert!(error.contains("not_exit_when_conn_failed"), "{error}");
    assert!(
        !error.contains("secret-pw"),
        "the password stays out of errors: {error}"
    );

    config.not_exit_when_conn_failed = true;
    let server = Server::start(&Settings::from_config(&config).expect("the test config is valid"))
        .await
        .expect("starts with not_exit_when_conn_failed");
    let base = format!("http://{}", server.main_addr());
    let (status, body) = osb(
        &base,
        reqwest::Method::PUT,
        "/v2/service_instances/x",
        Some(provision_body(None)),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("ServiceUnavailable"))
    );
    server
        .stop(promfetcher::server::signals::StopRequest::Now)
        .await;
}

#[tokio::test]
async fn a_database_written_by_the_original_keeps_its_bindings() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = spec_with_app("legacy-app");
    let guid = spec.app("legacy-app").expect("app").app_guid.clone();
    {
        let url = format!("sqlite://{}/legacy.db?mode=rwc", dir.path().display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
        // the schema gorm's AutoMigrate wrote for the original's AppEndpoint
        sqlx::query(r#"CREATE TABLE "app_endpoints" ("guid" varchar(255),"app_guid" varchar(255),"endpoint" varchar(255) , PRIMARY KEY ("guid"))"#)
            .execute(&mut db)
            .await
            .expect("create");
        sqlx::query(
            "INSERT INTO app_endpoints (guid, app_guid, endpoint) VALUES ('old-binding', ?, ?)",
        )
        .bind(&guid)
        .bind(CUSTOM_PATH)
        .execute(&mut db)
        .await
        .expect("insert");
        db.close().await.expect("close");
    }
    let db_conn = format!("sqlite:///{}/legacy.db", dir.path().display());
    let h = start_on(&db_conn, "legacy-app").await;
    assert_eq!(scrape_status(&h.base, "legacy-app").await, 200);
    let binding = "/v2/service_instances/old-instance/service_bindings/old-binding";
    let (status, body) = osb(&h.base, reqwest::Method::GET, binding, None).await;
    assert_eq!(
        (status, &body["credentials"]["endpoint"]),
        (200, &json!(CUSTOM_PATH))
    );
    assert_eq!(delete_status(&h.base, binding).await, 200);
    assert_eq!(scrape_status(&h.base, "legacy-app").await, 406);
    h.stop().await;
}

#[tokio::test]
async fn broker_operations_are_counted_by_operation_and_status_class() {
    use reqwest::Method;
    let app = "counted-app";
    let h = start_on("", app).await;
    let guid = app_guid(&h, app);
    let unauthenticated = client()
        .get(format!("{}/broker/v2/catalog", h.base))
        .header("X-Broker-API-Version", "2.15")
        .send()
        .await
        .expect("broker answers");
    assert_eq!(unauthenticated.status(), 401);
    let (instance, binding) = provision_and_bind(&h.base, &guid).await;
    assert_eq!(osb(&h.base, Method::GET, &binding, None).await.0, 200);
    let polled = format!("{binding}/last_operation");
    assert_eq!(osb(&h.base, Method::GET, &polled, None).await.0, 200);
    assert_eq!(delete_status(&h.base, &binding).await, 200);
    assert_eq!(delete_status(&h.base, &binding).await, 410);
    assert_eq!(delete_status(&h.base, &instance).await, 200);
    assert_eq!(
        osb(&h.base, Method::GET, "/v2/no-such-route", None).await.0,
        404
    );

    let body = h.get("/metrics").await.text().await.expect("metrics");
    let count = |operation: &str, class: &str| {
        sample_value(
            &body,
            &format!(
                r#"promfetcher_broker_operations_total{{operation="{operation}",status_class="{class}"}}"#
            ),
        )
    };
    assert_eq!(count("catalog", "4xx"), Some(1.0));
    assert_eq!(count("provision", "2xx"), Some(1.0));
    assert_eq!(count("bind", "2xx"), Some(1.0));
    assert_eq!(count("get_binding", "2xx"), Some(1.0));
    assert_eq!(count("last_operation", "2xx"), Some(1.0));
    assert_eq!(count("unbind", "2xx"), Some(1.0));
    assert_eq!(count("unbind", "4xx"), Some(1.0));
    assert_eq!(count("deprovision", "2xx"), Some(1.0));
    assert_eq!(count("catalog", "2xx"), None, "no catalog answered");
    // every broker answer, the unknown route included, is a `broker` answer
    assert_eq!(
        sample_value(
            &body,
            r#"promfetcher_http_requests_total{kind="broker",status_class="2xx"}"#
        ),
        Some(6.0)
    );
    assert_eq!(
        sample_value(
            &body,
            r#"promfetcher_http_requests_total{kind="broker",status_class="4xx"}"#
        ),
        Some(3.0)
    );
    h.stop().await;
}

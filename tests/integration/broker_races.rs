//! Broker requests that meet in the database, on each engine promfetcher supports (the embedded
//! SQLite, a real PostgreSQL, a real MariaDB; `scripts/test-all` starts the servers): a bind
//! that arrives while its service instance is being changed gets the instance's new path, and
//! many binds and unbinds arriving together all succeed (no lock conflict between them reaches
//! Cloud Controller as an error).

use std::time::Duration;

use crate::broker::{
    app_guid, bind_body, database_url, delete_status, osb, provision_body, unique,
    wait_scrape_status,
};
use crate::common::Harness;
use promfetcher::config::{GoDuration, UrlWithSecret};
use serde_json::json;
use simulated_foundation::{AppSpec, FoundationSpec, InstanceSpec};
use sqlx::{Connection, Executor};

/// The path the app's instances serve their metrics at; the instance starts with another one.
const NEW_PATH: &str = "/after-update";
const OLD_PATH: &str = "/before-update";

/// Where the store lives: a database URL, or the embedded SQLite in a directory of its own.
enum Database {
    Server(String),
    Embedded(tempfile::TempDir),
}

impl Database {
    fn server(variable: &str) -> Database {
        Database::Server(database_url(variable))
    }

    fn embedded() -> Database {
        Database::Embedded(tempfile::tempdir().expect("a temporary directory"))
    }

    /// The URL a second client of the same database connects with.
    fn url(&self) -> String {
        match self {
            Database::Server(url) => url.clone(),
            Database::Embedded(dir) => format!(
                "sqlite://{}",
                dir.path().join(promfetcher::store::SQLITE_FILE).display()
            ),
        }
    }

    async fn start(&self, spec: FoundationSpec) -> Harness {
        let (db_conn, data_dir) = match self {
            Database::Server(url) => (url.clone(), String::new()),
            Database::Embedded(dir) => (String::new(), dir.path().display().to_string()),
        };
        Harness::start_with(spec, move |config| {
            config.db_conn = UrlWithSecret::new(db_conn);
            if !data_dir.is_empty() {
                config.data_dir = data_dir;
            }
            config.db_refresh_interval = GoDuration::from_millis(200);
        })
        .await
    }
}

/// A bind that arrives while another writer holds its service instance (an update of it that
/// has not committed yet, here made by a second client of the database) takes the path the
/// instance has once that writer is done: the app is scraped at the new path.
async fn a_bind_during_an_update_gets_the_new_path(database: Database, app: &str) {
    let spec = FoundationSpec::dev_default().with_app(
        AppSpec::new("acme", "dev", app).with_instances(vec![
            InstanceSpec::healthy()
                .with_metrics_path(NEW_PATH);
            2
        ]),
    );
    let h = database.start(spec).await;
    let instance_id = unique("instance");
    let instance = format!("/v2/service_instances/{instance_id}");
    let (status, body) = osb(
        &h.base,
        reqwest::Method::PUT,
        &instance,
        Some(provision_body(Some(OLD_PATH))),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    sqlx::any::install_default_drivers();
    let mut updater = sqlx::AnyConnection::connect(&database.url())
        .await
        .expect("a second client connects to the database");
    let begin = match database {
        Database::Embedded(_) => "BEGIN IMMEDIATE",
        Database::Server(_) => "BEGIN",
    };
    updater.execute(begin).await.expect("transaction starts");
    updater
        .execute(
            format!(
                "UPDATE broker_instances SET endpoint = '{NEW_PATH}' \
                 WHERE instance_id = '{instance_id}'"
            )
            .as_str(),
        )
        .await
        .expect("the instance is updated");

    let binding = format!("{instance}/service_bindings/{}", unique("binding"));
    let guid = app_guid(&h, app);
    let base = h.base.clone();
    let bind = tokio::spawn(async move {
        osb(
            &base,
            reqwest::Method::PUT,
            &binding,
            Some(bind_body(Some(&guid), json!({}))),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    updater.execute("COMMIT").await.expect("the update commits");
    let (status, body) = bind.await.expect("bind task");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["credentials"]["endpoint"], NEW_PATH, "{body}");
    wait_scrape_status(&h.base, app, 200).await;
    h.stop().await;
}

#[tokio::test]
async fn a_bind_during_an_update_gets_the_new_path_on_the_embedded_sqlite() {
    a_bind_during_an_update_gets_the_new_path(Database::embedded(), "race-update-sqlite").await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-all"]
async fn a_bind_during_an_update_gets_the_new_path_on_postgresql() {
    a_bind_during_an_update_gets_the_new_path(
        Database::server("PROMFETCHER_TEST_POSTGRES_URL"),
        "race-update-postgres",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs MariaDB: run scripts/test-all"]
async fn a_bind_during_an_update_gets_the_new_path_on_mariadb() {
    a_bind_during_an_update_gets_the_new_path(
        Database::server("PROMFETCHER_TEST_MARIADB_URL"),
        "race-update-mariadb",
    )
    .await;
}

/// How many service instances, and bindings on each, the requests that arrive together touch.
const INSTANCES: usize = 6;
const BINDINGS_PER_INSTANCE: usize = 4;

/// Binds of many apps to a few service instances, all sent at once, then two updates of every
/// instance while the unbinds of half the bindings are sent: every request succeeds, no update
/// is lost, and what the database keeps for the apps is what the requests said.
async fn requests_arriving_together_all_succeed(database: Database) {
    let h = database.start(FoundationSpec::dev_default()).await;
    let instances: Vec<String> = (0..INSTANCES)
        .map(|_| format!("/v2/service_instances/{}", unique("instance")))
        .collect();
    for instance in &instances {
        let (status, body) = osb(
            &h.base,
            reqwest::Method::PUT,
            instance,
            Some(provision_body(Some(OLD_PATH))),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let bindings: Vec<String> = instances
        .iter()
        .flat_map(|instance| {
            (0..BINDINGS_PER_INSTANCE)
                .map(move |_| format!("{instance}/service_bindings/{}", unique("binding")))
        })
        .collect();

    let binds = bindings.iter().map(|binding| {
        let app = unique("app");
        let base = h.base.clone();
        async move {
            let body = bind_body(Some(&app), json!({}));
            (
                binding,
                osb(&base, reqwest::Method::PUT, binding, Some(body)).await,
            )
        }
    });
    for (binding, (status, body)) in futures_util::future::join_all(binds).await {
        assert_eq!(status, 201, "bind {binding}: {body}");
    }

    // Two updates of every instance at once, each changing another parameter: both stay.
    let changes = [
        json!({ "endpoint": NEW_PATH }),
        json!({ "owner": "team-a" }),
    ];
    let base = &h.base;
    let updates = instances.iter().flat_map(|instance| {
        changes.iter().map(move |parameters| {
            let body = json!({
                "service_id": promfetcher::config::DEFAULT_BROKER_SERVICE_ID,
                "parameters": parameters,
            });
            async move {
                (
                    instance,
                    osb(base, reqwest::Method::PATCH, instance, Some(body)).await,
                )
            }
        })
    });
    let unbinds = bindings.iter().step_by(2).map(|binding| {
        let base = h.base.clone();
        async move { (binding, delete_status(&base, binding).await) }
    });
    let (updated, unbound) = tokio::join!(
        futures_util::future::join_all(updates),
        futures_util::future::join_all(unbinds)
    );
    for (binding, status) in unbound {
        assert_eq!(status, 200, "unbind {binding}");
    }
    for (instance, (status, body)) in updated {
        assert_eq!(status, 200, "update {instance}: {body}");
    }
    for instance in &instances {
        let (status, body) = osb(&h.base, reqwest::Method::GET, instance, None).await;
        assert_eq!(status, 200, "{instance}: {body}");
        assert_eq!(
            body["parameters"],
            json!({ "endpoint": NEW_PATH, "owner": "team-a" }),
            "{instance}"
        );
    }
    // What every promfetcher on this database scrapes: the kept bindings' apps at the new
    // path, the unbound ones not at all.
    let stored = stored_paths(&database).await;
    for (index, binding) in bindings.iter().enumerate() {
        let id = binding.rsplit('/').next().expect("binding id");
        let expected = (index % 2 == 1).then_some(NEW_PATH);
        assert_eq!(stored.get(id).map(String::as_str), expected, "{binding}");
    }
    h.stop().await;
}

/// The `app_endpoints` table (binding id -> path), as a second client of the database reads it.
async fn stored_paths(database: &Database) -> std::collections::HashMap<String, String> {
    sqlx::any::install_default_drivers();
    let mut reader = sqlx::AnyConnection::connect(&database.url())
        .await
        .expect("a second client connects to the database");
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT guid, endpoint FROM app_endpoints")
        .fetch_all(&mut reader)
        .await
        .expect("app_endpoints reads");
    rows.into_iter().collect()
}

#[tokio::test]
async fn requests_arriving_together_all_succeed_on_the_embedded_sqlite() {
    requests_arriving_together_all_succeed(Database::embedded()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-all"]
async fn requests_arriving_together_all_succeed_on_postgresql() {
    requests_arriving_together_all_succeed(Database::server("PROMFETCHER_TEST_POSTGRES_URL")).await;
}

#[tokio::test]
#[ignore = "needs MariaDB: run scripts/test-all"]
async fn requests_arriving_together_all_succeed_on_mariadb() {
    requests_arriving_together_all_succeed(Database::server("PROMFETCHER_TEST_MARIADB_URL")).await;
}

//! Where the metrics paths set through the service broker live: a SQL database (SQLite embedded
//! by default, PostgreSQL or MySQL/MariaDB by `db_conn`) shared by every promfetcher behind the
//! load balancer, and the in-memory [`AppPathCache`] the request path reads. Writes go to SQL
//! then refresh the cache at once; [`EndpointStore::run_refresher`] re-reads the table at an
//! interval so other instances' writes arrive. Requests never wait for SQL. It knows the
//! broker's records, not the OSB protocol.
//!
//! - `db_url`: the `db_conn` forms of the original, read into a [`Database`] and its sqlx URL.
//! - `cache`: the immutable app → path snapshot and its shared pointer.
//! - `metrics`: whether the database answered the last refresh, and when it last did.
//! - `backup`: the export and import of every record (`promfetcher store export|import`).

mod backup;
mod cache;
mod db_url;
mod metrics;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, FromRow, Row};
use tokio_util::sync::CancellationToken;

pub use backup::{open_configured, BackupError, RecordCounts};
pub use cache::{AppPathCache, AppPaths, BrokerPath, StoredPath};
pub use db_url::{Database, Engine, UnsupportedDatabase, SQLITE_FILE};
pub use metrics::StoreMetrics;

/// How long a broker request waits for a database connection before answering 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the store could not do what was asked. Messages never contain the connection URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot reach the endpoint database: {0}")]
    Unavailable(String),
    #[error("the endpoint database refused the request: {0}")]
    Database(String),
    #[error("a record with this id was written at the same time by another request")]
    Duplicate,
    #[error("cannot prepare the endpoint database schema: {0}")]
    Migrate(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
            sqlx::Error::Database(_)
            | sqlx::Error::RowNotFound
            | sqlx::Error::ColumnDecode { .. } => StoreError::Database(error.to_string()),
            _ => StoreError::Unavailable(error.to_string()),
        }
    }
}

/// Which database holds the endpoints and how promfetcher uses it.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub database: Database,
    /// Directory of the embedded SQLite file (config `data_dir`); empty means a temporary one.
    pub data_dir: String,
    pub max_connections: u32,
    pub max_lifetime: Duration,
    /// How often the endpoints are re-read, so other instances' writes arrive.
    pub refresh_interval: Duration,
    /// Start even when the database does not answer (config `not_exit_when_conn_failed`).
    pub start_without_database: bool,
}

/// The directory of the embedded SQLite file: the configured one (created when missing), or a
/// temporary one removed when this value is dropped.
#[derive(Debug)]
pub enum DataDir {
    Fixed(std::path::PathBuf),
    Temporary(tempfile::TempDir),
}

impl DataDir {
    /// `configured` empty means temporary.
    pub fn prepare(configured: &str) -> std::io::Result<DataDir> {
        if configured.trim().is_empty() {
            return tempfile::Builder::new()
                .prefix("promfetcher-data-")
                .tempdir()
                .map(DataDir::Temporary);
        }
        let path = std::path::PathBuf::from(configured);
        std::fs::create_dir_all(&path)?;
        Ok(DataDir::Fixed(path))
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            DataDir::Fixed(path) => path,
            DataDir::Temporary(dir) => dir.path(),
        }
    }
}

/// A service instance as the broker keeps it (and as an export writes it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRecord {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
    pub organization_guid: String,
    pub space_guid: String,
    /// The provision/update parameters as canonical JSON (`""` when none).
    pub parameters: String,
    pub endpoint: Option<String>,
}

/// A binding as the broker keeps it. A binding written by the original promfetcher has only
/// `binding_id`, `app_guid` and `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingRecord {
    pub binding_id: String,
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
    /// `None` for a service key.
    pub app_guid: Option<String>,
    pub parameters: String,
    /// The binding's own endpoint (bind parameters); `None` follows the instance's.
    pub endpoint: Option<String>,
}

/// The SQL side of the broker's state, and the cache it keeps fresh.
pub struct EndpointStore {
    pool: AnyPool,
    engine: Engine,
    cache: Arc<AppPathCache>,
    metrics: StoreMetrics,
    /// Migrations ran: the schema is there.
    ready: AtomicBool,
    /// Serialises "read the table, publish the snapshot, record the outcome", so that an older
    /// read never wins and an older outcome never overwrites a newer one.
    refresh_lock: tokio::sync::Mutex<()>,
}

/// The schema, embedded in the binary.
#[derive(Debug)]
struct EmbeddedMigrations;

impl MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<Migration>, Box<dyn std::error::Error + Send + Sync>>>
                + Send,
        >,
    > {
        Box::pin(async {
            Ok(vec![Migration::new(
                1,
                Cow::Borrowed("endpoints"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("migrations/0001_endpoints.sql")),
                false,
            )])
        })
    }
}

impl EndpointStore {
    /// Prepares the pool without connecting (the embedded SQLite file, if that is the database,
    /// in `data_dir`); call [`EndpointStore::ensure_ready`] next. Refreshes are reported in
    /// `metrics`.
    pub fn new(
        settings: &StoreSettings,
        data_dir: &std::path::Path,
        cache: Arc<AppPathCache>,
        metrics: StoreMetrics,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (engine, url) = settings.database.connect_url(data_dir);
        let pool = AnyPoolOptions::new()
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if engine == Engine::MySql {
                        // InnoDB's default (repeatable read) locks the gaps next to the rows a
                        // statement looks for; two binds whose rows fall in one gap then
                        // deadlock and one fails. Read committed locks rows only, as
                        // PostgreSQL does.
                        connection
                            .execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .await?;
                    }
                    Ok(())
                })
            })
            .max_connections(settings.max_connections.max(1))
            .max_lifetime(settings.max_lifetime)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(&url)
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        Ok(EndpointStore {
            pool,
            engine,
            cache,
            metrics,
            ready: AtomicBool::new(false),
            refresh_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn cache(&self) -> &Arc<AppPathCache> {
        &self.cache
    }

    /// Runs the migrations (once) and loads the cache.
    pub async fn ensure_ready(&self) -> Result<(), StoreError> {
        let migrated = self.migrate().await;
        if migrated.is_err() {
            self.metrics.record(false);
        }
        migrated?;
        self.refresh().await
    }

    /// Runs the migrations unless they ran already.
    async fn migrate(&self) -> Result<(), StoreError> {
        if !self.ready.load(Ordering::Acquire) {
            let migrator = Migrator::new(EmbeddedMigrations)
                .await
                .map_err(|error| StoreError::Migrate(error.to_string()))?;
            migrator
                .run(&self.pool)
                .await
                .map_err(|error| match error {
                    sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
                    other => StoreError::Migrate(other.to_string()),
                })?;
            self.ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Re-reads every app path and publishes the new snapshot.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        // The outcome is recorded under the same lock as the read: a refresh that fails and is
        // recorded late cannot mark the store down after a newer one succeeded.
        let _serial = self.refresh_lock.lock().await;
        let refreshed = self.read_and_publish().await;
        self.metrics.record(refreshed.is_ok());
        refreshed
    }

    async fn read_and_publish(&self) -> Result<(), StoreError> {
        // A binding without an endpoint of its own follows its service instance's; a row the
        // original wrote has no binding record and counts as the binding's own.
        let rows: Vec<StoredPathRow> = sqlx::query_as(&self.sql(
            "SELECT e.guid, e.app_guid, e.endpoint, \
             CASE WHEN b.endpoint IS NULL THEN b.instance_id END AS follows_instance \
             FROM app_endpoints e LEFT JOIN broker_bindings b ON b.binding_id = e.guid",
        ))
        .fetch_all(&self.pool)
        .await?;
        let rows = rows.into_iter().map(|row| StoredPath {
            binding_id: row.path.guid,
            app_guid: row.path.app_guid.unwrap_or_default(),
            endpoint: row.path.endpoint.unwrap_or_default(),
            follows_service_instance: row.follows_instance,
        });
        self.cache.publish(AppPaths::from_rows(rows.collect()));
        Ok(())
    }

    /// Refreshes every `interval` until `stop`; keeps the last snapshot while the database is away.
    pub async fn run_refresher(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut was_failing = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.ensure_ready().await {
                Ok(()) if was_failing => {
                    tracing::info!("endpoint database reachable again");
                    was_failing = false;
                }
                Ok(()) => {}
                Err(error) => {
                    if !was_failing {
                        tracing::warn!(%error, "cannot refresh endpoints; serving the last known paths");
                    }
                    was_failing = true;
                }
            }
        }
    }

    /// After a committed write: the cache must show it; a failed refresh is retried by the refresher.
    async fn refresh_after_write(&self) {
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "write committed but the cache refresh failed; the next refresh will catch up");
        }
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        if self.ready.load(Ordering::Acquire) {
            Ok(())
        } else {
            self.ensure_ready().await
        }
    }

    /// `?` placeholders as the engine wants them.
    fn sql(&self, text: &str) -> String {
        if self.engine != Engine::Postgres {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 8);
        let mut n = 0;
        for c in text.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    pub async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        self.check_ready().await?;
        let record = sqlx::query_as(&self.sql(SELECT_INSTANCE))
            .bind(instance_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(record)
    }

    /// Begins a transaction that writes. On SQLite it holds the database's one write lock from
    /// the start: a transaction that read first and wrote later would fail, not wait, when
    /// another wrote in between.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        self.check_ready().await?;
        Ok(match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres | Engine::MySql => self.pool.begin().await?,
        })
    }

    /// Reads service instance `instance_id` in `tx` and holds it until `tx` ends. Every write
    /// that concerns an instance or its bindings takes this lock first, so that they run one
    /// after another: a bind during an update sees the new endpoint, an update during an
    /// unbind does not give the path back to the app being unbound. (On SQLite the write lock
    /// of [`Self::begin_write`] already does it.)
    async fn lock_instance(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        instance_id: &str,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        let select = match self.engine {
            Engine::Sqlite => Cow::Borrowed(SELECT_INSTANCE),
            Engine::Postgres | Engine::MySql => Cow::Owned(format!("{SELECT_INSTANCE} FOR UPDATE")),
        };
        let record = sqlx::query_as(&self.sql(&select))
            .bind(instance_id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(record)
    }

    pub async fn create_instance(&self, record: &InstanceRecord) -> Result<(), StoreError> {
        self.check_ready().await?;
        sqlx::query(&self.sql(
            "INSERT INTO broker_instances \
             (instance_id, service_id, plan_id, organization_guid, space_guid, parameters, endpoint) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&record.instance_id)
        .bind(&record.service_id)
        .bind(&record.plan_id)
        .bind(&record.organization_guid)
        .bind(&record.space_guid)
        .bind(&record.parameters)
        .bind(record.endpoint.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Changes service instance `instance_id` by `change` (its plan, parameters, endpoint) and
    /// gives the new endpoint to every app bound to it without an endpoint of its own, in one
    /// transaction that holds the instance: two updates at once both count. `Ok(false)` when
    /// there is no such instance; an error of `change` writes nothing.
    pub async fn update_instance<E: From<StoreError>>(
        &self,
        instance_id: &str,
        change: impl FnOnce(&mut InstanceRecord) -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut tx = self.begin_write().await?;
        let Some(mut record) = self.lock_instance(&mut tx, instance_id).await? else {
            return Ok(false);
        };
        change(&mut record)?;
        sqlx::query(&self.sql(
            "UPDATE broker_instances SET plan_id = ?, parameters = ?, endpoint = ? WHERE instance_id = ?",
        ))
        .bind(&record.plan_id)
        .bind(&record.parameters)
        .bind(record.endpoint.clone())
        .bind(&record.instance_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let followers: Vec<(String, String)> = sqlx::query_as(&self.sql(
            "SELECT binding_id, app_guid FROM broker_bindings \
             WHERE instance_id = ? AND endpoint IS NULL AND app_guid IS NOT NULL",
        ))
        .bind(&record.instance_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        for (binding_id, app_guid) in &followers {
            self.set_app_endpoint(&mut tx, binding_id, app_guid, record.endpoint.as_deref())
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.refresh_after_write().await;
        Ok(true)
    }

    /// Forgets the instance and whatever bindings remain on it. `false` when it did not exist.
    pub async fn delete_instance(&self, instance_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        self.lock_instance(&mut tx, instance_id).await?;
        sqlx::query(&self.sql(
            "DELETE FROM app_endpoints WHERE guid IN \
             (SELECT binding_id FROM broker_bindings WHERE instance_id = ?)",
        ))
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.sql("DELETE FROM broker_bindings WHERE instance_id = ?"))
            .bind(instance_id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query(&self.sql("DELETE FROM broker_instances WHERE instance_id = ?"))
            .bind(instance_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        self.refresh_after_write().await;
        Ok(deleted > 0)
    }

    /// The binding, including one written by the original promfetcher (only in `app_endpoints`).
    pub async fn binding(&self, binding_id: &str) -> Result<Option<BindingRecord>, StoreError> {
        self.check_ready().await?;
        let record = sqlx::query_as(&self.sql(
            "SELECT binding_id, instance_id, service_id, plan_id, app_guid, parameters, endpoint \
             FROM broker_bindings WHERE binding_id = ?",
        ))
        .bind(binding_id)
        .fetch_optional(&self.pool)
        .await?;
        if record.is_some() {
            return Ok(record);
        }
        let legacy: Option<AppEndpointRow> = sqlx::query_as(
            &self.sql("SELECT guid, app_guid, endpoint FROM app_endpoints WHERE guid = ?"),
        )
        .bind(binding_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(legacy.map(|row| BindingRecord {
            binding_id: row.guid,
            instance_id: String::new(),
            service_id: String::new(),
            plan_id: String::new(),
            app_guid: row.app_guid.filter(|a| !a.is_empty()),
            parameters: String::new(),
            endpoint: row.endpoint,
        }))
    }

    /// Saves the binding and, when it has an app and an endpoint, the app's path; returns that
    /// endpoint: the binding's own, else its service instance's as it is once no other write
    /// holds the instance. A binding of an instance this store does not know (one the original
    /// promfetcher, which kept no instances, was asked to create) has only its own.
    pub async fn create_binding(
        &self,
        record: &BindingRecord,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let instance = self.lock_instance(&mut tx, &record.instance_id).await?;
        let endpoint = match &record.endpoint {
            Some(own) => Some(own.clone()),
            None => instance.and_then(|instance| instance.endpoint),
        };
        sqlx::query(&self.sql(
            "INSERT INTO broker_bindings \
             (binding_id, instance_id, service_id, plan_id, app_guid, parameters, endpoint) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&record.binding_id)
        .bind(&record.instance_id)
        .bind(&record.service_id)
        .bind(&record.plan_id)
        .bind(record.app_guid.clone())
        .bind(&record.parameters)
        .bind(record.endpoint.clone())
        .execute(&mut *tx)
        .await?;
        if let Some(app_guid) = &record.app_guid {
            self.set_app_endpoint(&mut tx, &record.binding_id, app_guid, endpoint.as_deref())
                .await?;
        }
        tx.commit().await?;
        self.refresh_after_write().await;
        Ok(endpoint)
    }

    /// Forgets the binding and the app path it set. `false` when it did not exist.
    pub async fn delete_binding(&self, binding_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let instance_id: Option<String> = sqlx::query_scalar(
            &self.sql("SELECT instance_id FROM broker_bindings WHERE binding_id = ?"),
        )
        .bind(binding_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(instance_id) = instance_id {
            self.lock_instance(&mut tx, &instance_id).await?;
        }
        let mut deleted = 0;
        for table in [
            "DELETE FROM broker_bindings WHERE binding_id = ?",
            "DELETE FROM app_endpoints WHERE guid = ?",
        ] {
            deleted += sqlx::query(&self.sql(table))
                .bind(binding_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        self.refresh_after_write().await;
        Ok(deleted > 0)
    }

    /// Replaces the `app_endpoints` row of `binding_id`: the app's path, or none.
    async fn set_app_endpoint(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        binding_id: &str,
        app_guid: &str,
        endpoint: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql("DELETE FROM app_endpoints WHERE guid = ?"))
            .bind(binding_id)
            .execute(&mut **tx)
            .await?;
        if let Some(endpoint) = endpoint {
            sqlx::query(
                &self.sql("INSERT INTO app_endpoints (guid, app_guid, endpoint) VALUES (?, ?, ?)"),
            )
            .bind(binding_id)
            .bind(app_guid)
            .bind(endpoint)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// A service instance by id, as [`InstanceRecord`] reads it.
const SELECT_INSTANCE: &str =
    "SELECT instance_id, service_id, plan_id, organization_guid, space_guid, parameters, endpoint \
     FROM broker_instances WHERE instance_id = ?";

/// A row of `app_endpoints`, the original's table of binding → app → path (also a line of an
/// export).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEndpointRow {
    guid: String,
    app_guid: Option<String>,
    endpoint: Option<String>,
}

impl FromRow<'_, AnyRow> for AppEndpointRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(AppEndpointRow {
            guid: row.try_get("guid")?,
            app_guid: row.try_get("app_guid")?,
            endpoint: row.try_get("endpoint")?,
        })
    }
}

/// A row of the refresh query: an `app_endpoints` row and the service instance its binding
/// follows, if any.
struct StoredPathRow {
    path: AppEndpointRow,
    follows_instance: Option<String>,
}

impl FromRow<'_, AnyRow> for StoredPathRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(StoredPathRow {
            path: AppEndpointRow::from_row(row)?,
            follows_instance: row.try_get("follows_instance")?,
        })
    }
}

impl FromRow<'_, AnyRow> for InstanceRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(InstanceRecord {
            instance_id: row.try_get("instance_id")?,
            service_id: row.try_get("service_id")?,
            plan_id: row.try_get("plan_id")?,
            organization_guid: row.try_get("organization_guid")?,
            space_guid: row.try_get("space_guid")?,
            parameters: row.try_get("parameters")?,
            endpoint: row.try_get("endpoint")?,
        })
    }
}

impl FromRow<'_, AnyRow> for BindingRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(BindingRecord {
            binding_id: row.try_get("binding_id")?,
            instance_id: row.try_get("instance_id")?,
            service_id: row.try_get("service_id")?,
            plan_id: row.try_get("plan_id")?,
            app_guid: row.try_get("app_guid")?,
            parameters: row.try_get("parameters")?,
            endpoint: row.try_get("endpoint")?,
        })
    }
}

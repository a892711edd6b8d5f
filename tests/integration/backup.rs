//! Backup and restore of the store, end to end on the embedded SQLite, a real PostgreSQL and a
//! real MariaDB: an app's metrics path set through the broker, `promfetcher store export` (and,
//! on PostgreSQL and MariaDB, the rendered `bbr-promfetcherdb` backup script with the rendered
//! `promfetcher` job config), the database wiped (tables dropped), the restore, and the same
//! path served by scrapes again. Then: a second import changes nothing, and a truncated file, a
//! bad line and an unknown format version are refused, naming the line, with nothing changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bosh::{render_ok, Rendered};
use crate::broker::{
    app_guid, database_url, osb, provision_and_bind, spec_with_app, wait_scrape_status, CUSTOM_PATH,
};
use crate::common::{config_for, run_piped, Harness, PROMFETCHER};
use promfetcher::config::{GoDuration, UrlWithSecret};
use promfetcher::server::signals::StopRequest;
use promfetcher::server::Server;
use promfetcher::settings::Settings;
use serde_json::json;

const APP: &str = "backed-up";

/// Where the records live, and the config file the CLI reads for it.
struct Store {
    db_conn: String,
    data_dir: String,
    config_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Store {
    fn new(db_conn: &str) -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let config_file = dir.path().join("promfetcher.yml");
        std::fs::write(
            &config_file,
            format!(
                "db_conn: {}\ndata_dir: {}\n",
                json!(db_conn),
                json!(data_dir.display().to_string())
            ),
        )
        .expect("config written");
        Store {
            db_conn: db_conn.to_string(),
            data_dir: data_dir.display().to_string(),
            config_file,
            _dir: dir,
        }
    }

    /// `promfetcher store <action> -c <config>` with `input` on stdin.
    fn cli(&self, action: &str, input: &str) -> Output {
        run(
            Command::new(PROMFETCHER)
                .args(["store", action, "-c"])
                .arg(&self.config_file),
            input,
        )
    }

    /// The export, which must succeed.
    fn export(&self) -> String {
        let output = self.cli("export", "");
        assert!(output.status.success(), "export: {}", stderr(&output));
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    /// An import that must be refused, naming `expected` in its error; nothing may change.
    fn refused_import(&self, file: &str, expected: &str) {
        let before = self.export();
        let output = self.cli("import", file);
        let said = stderr(&output);
        assert!(!output.status.success(), "accepted: {file}");
        assert!(said.contains("nothing was imported"), "{said}");
        assert!(said.contains(expected), "{expected:?} not in {said}");
        assert_eq!(self.export(), before, "a refused import changed the store");
    }

    /// Drops every table (ours and the migrations'), as a lost database would be.
    async fn wipe(&self) {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        std::fs::create_dir_all(&self.data_dir).expect("data_dir");
        let (_, url) = promfetcher::store::Database::from_db_conn(&self.db_conn)
            .expect("a supported database")
            .connect_url(Path::new(&self.data_dir));
        let mut db = sqlx::AnyConnection::connect(&url)
            .await
            .expect("the database answers");
        for table in [
            "app_endpoints",
            "broker_bindings",
            "broker_instances",
            "_sqlx_migrations",
        ] {
            sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                .execute(&mut db)
                .await
                .expect("drop");
        }
        db.close().await.expect("close");
    }
}

fn run(command: &mut Command, input: &str) -> Output {
    run_piped(command, input).expect("runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// promfetcher on `store`, once ready.
async fn serve(store: &Store, foundation: simulated_foundation::Foundation) -> Harness {
    let mut config = config_for(&foundation);
    config.db_conn = UrlWithSecret::new(store.db_conn.clone());
    config.data_dir = store.data_dir.clone();
    config.db_refresh_interval = GoDuration::from_millis(200);
    let server = Server::start(&Settings::from_config(&config).expect("valid config"))
        .await
        .expect("promfetcher starts");
    let harness = Harness::around(foundation, server);
    harness.wait_ready().await;
    harness
}

/// How a backup is taken and restored.
trait Backup {
    fn backup(&self, store: &Store) -> String;
    fn restore(&self, store: &Store, artifact: &str);
}

/// The CLI itself, the artifact in memory.
struct Cli;

impl Backup for Cli {
    fn backup(&self, store: &Store) -> String {
        store.export()
    }

    fn restore(&self, store: &Store, artifact: &str) {
        let output = store.cli("import", artifact);
        assert!(output.status.success(), "import: {}", stderr(&output));
        assert!(stderr(&output).contains("imported 1 service instances, 1 bindings, 1 app paths"));
    }
}

/// The rendered BBR scripts of `bbr-promfetcherdb`, with the rendered `promfetcher` job config
/// of the same database, in a temporary `BBR_ARTIFACT_DIRECTORY`.
struct Bbr {
    scripts: Rendered,
    job: Rendered,
    artifacts: tempfile::TempDir,
}

impl Bbr {
    /// The two jobs rendered for the database at `db_conn` (a `postgres://` or `mariadb://` URL).
    fn for_database(db_conn: &str) -> Bbr {
        let url = url::Url::parse(db_conn).expect("database URL");
        let properties = json!({"promfetcher": {
            "enable_ssl": false,
            "broker": {"username": "broker", "password": "broker-secret"},
            "database": {
                "type": url.scheme(),
                "host": url.host_str().expect("host"),
                "port": url.port().expect("port"),
                "user": url.username(),
                "password": url.password().expect("password"),
                "name": url.path().trim_start_matches('/'),
            }
        }});
        Bbr {
            scripts: render_ok("bbr-promfetcherdb", &json!({"properties": {}})),
            job: render_ok("promfetcher", &json!({ "properties": properties })),
            artifacts: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn script(&self, name: &str) -> Output {
        run(
            Command::new("bash")
                .arg(self.scripts.path(&format!("bin/bbr/{name}")))
                .env("BBR_ARTIFACT_DIRECTORY", self.artifacts.path())
                .env("PROMFETCHER_BBR_CONFIG", self.job.path("config/config.yml"))
                .env("PROMFETCHER_BBR_EXECUTABLE", PROMFETCHER),
            "",
        )
    }

    fn artifact(&self) -> PathBuf {
        self.artifacts.path().join("promfetcher-store.jsonl")
    }
}

impl Backup for Bbr {
    fn backup(&self, store: &Store) -> String {
        let metadata = self.script("metadata");
        assert_eq!(
            String::from_utf8_lossy(&metadata.stdout),
            "---\nskip_bbr_scripts: false\n"
        );
        let output = self.script("backup");
        assert!(output.status.success(), "backup: {}", stderr(&output));
        let artifact = std::fs::read_to_string(self.artifact()).expect("artifact written");
        assert_eq!(
            artifact,
            store.export(),
            "the artifact is the export of the job's database"
        );
        artifact
    }

    fn restore(&self, _store: &Store, artifact: &str) {
        assert_eq!(
            std::fs::read_to_string(self.artifact()).expect("artifact"),
            artifact
        );
        let output = self.script("restore");
        assert!(output.status.success(), "restore: {}", stderr(&output));
    }
}

/// Provision and bind, back up, wipe, restore, and the path is served again; then the
/// import's idempotence and refusals.
async fn round_trip(db_conn: &str, backup: &dyn Backup) {
    use reqwest::Method;
    let store = Store::new(db_conn);
    // the database is this test's alone: nothing left from an earlier run
    store.wipe().await;
    let foundation = simulated_foundation::Foundation::start(spec_with_app(APP))
        .await
        .expect("foundation");
    let mut h = serve(&store, foundation).await;
    let guid = app_guid(&h, APP);
    let (instance, binding) = provision_and_bind(&h.base, &guid).await;
    wait_scrape_status(&h.base, APP, 200).await;

    let artifact = backup.backup(&store);
    let lines: Vec<&str> = artifact.lines().collect();
    assert_eq!(lines.len(), 5, "header, 3 records, end:\n{artifact}");
    assert_eq!(lines[0], r#"{"format":"promfetcher-store","version":1}"#);
    assert_eq!(lines[4], r#"{"end":{"records":3}}"#);
    for id in [&instance, &binding] {
        let id = id.rsplit('/').next().expect("id");
        assert!(artifact.contains(id), "{id} missing:\n{artifact}");
    }

    h.server
        .take()
        .expect("server")
        .stop(StopRequest::Now)
        .await;
    store.wipe().await;
    let h2 = serve(&store, h.foundation).await;
    wait_scrape_status(&h2.base, APP, 406).await;
    assert_eq!(store.export().lines().count(), 2, "the database is empty");

    backup.restore(&store, &artifact);
    // the running promfetcher reads the restored path at its next refresh
    wait_scrape_status(&h2.base, APP, 200).await;
    let (status, body) = osb(&h2.base, Method::GET, &binding, None).await;
    assert_eq!(
        (status, &body["credentials"]["endpoint"]),
        (200, &json!(CUSTOM_PATH))
    );
    assert_eq!(store.export(), artifact, "restored record for record");

    Cli.restore(&store, &artifact);
    assert_eq!(store.export(), artifact, "a second import changes nothing");

    let cut = lines[..4].join("\n") + "\n";
    store.refused_import(&cut, "truncated");
    let half_line = &artifact[..artifact.len() - 8];
    store.refused_import(half_line, "line 5:");
    let new_instance = lines[1].replace(
        instance.rsplit('/').next().expect("id"),
        "instance-from-the-bad-file",
    );
    let bad_middle = [
        lines[0],
        &new_instance,
        "{\"binding\": 42}",
        r#"{"end":{"records":2}}"#,
    ]
    .join("\n");
    store.refused_import(&bad_middle, "line 3:");
    let missing = [lines[0], &new_instance, r#"{"end":{"records":2}}"#].join("\n");
    store.refused_import(&missing, "records are missing");
    let future = artifact.replace(r#""version":1"#, r#""version":99"#);
    store.refused_import(&future, "format version 99 is unknown");
    h2.stop().await;
}

#[tokio::test]
async fn export_wipe_import_on_the_embedded_sqlite_serves_the_same_paths() {
    round_trip("", &Cli).await;
}

#[tokio::test]
async fn a_sqlite_url_with_a_host_round_trips_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_conn = format!("sqlite://localhost/{}", dir.path().join("pf.db").display());
    round_trip(&db_conn, &Cli).await;
    assert!(
        Path::new(&dir.path().join("pf.db")).is_file(),
        "the file is where the URL's path says"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL and ruby: run scripts/test-all"]
async fn bbr_backup_wipe_restore_on_postgresql_serves_the_same_paths() {
    let db_conn = database_url("PROMFETCHER_TEST_POSTGRES_BACKUP_URL");
    round_trip(&db_conn, &Bbr::for_database(&db_conn)).await;
}

#[tokio::test]
#[ignore = "needs MariaDB and ruby: run scripts/test-all"]
async fn bbr_backup_wipe_restore_on_mariadb_serves_the_same_paths() {
    let db_conn = database_url("PROMFETCHER_TEST_MARIADB_BACKUP_URL");
    round_trip(&db_conn, &Bbr::for_database(&db_conn)).await;
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn with_release_level_backup_false_bbr_skips_the_job() {
    let scripts = render_ok(
        "bbr-promfetcherdb",
        &json!({"properties": {"release_level_backup": false}}),
    );
    let metadata = run(
        Command::new("bash").arg(scripts.path("bin/bbr/metadata")),
        "",
    );
    assert_eq!(
        String::from_utf8_lossy(&metadata.stdout),
        "---\nskip_bbr_scripts: true\n"
    );
    let artifacts = tempfile::tempdir().expect("temp dir");
    let backup = run(
        Command::new("bash")
            .arg(scripts.path("bin/bbr/backup"))
            .env("BBR_ARTIFACT_DIRECTORY", artifacts.path())
            .env("PROMFETCHER_BBR_EXECUTABLE", "/nonexistent"),
        "",
    );
    assert!(backup.status.success(), "{}", stderr(&backup));
    assert_eq!(
        std::fs::read_dir(artifacts.path()).expect("dir").count(),
        0,
        "nothing written"
    );
}

//! Reads the `db_conn` of the original promfetcher (`sqlite://`, `postgres://`, `mysql://`,
//! `mariadb://`, or empty for a SQLite file in `data_dir`) into a [`Database`], and that into
//! the URL sqlx connects to. Pure string work: it never connects, and never puts the URL in an error or a log line.

use std::path::Path;

/// The database engines promfetcher speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    MySql,
}

/// The file name of the embedded SQLite database in `data_dir`.
pub const SQLITE_FILE: &str = "promfetcher.db";

/// Why `db_conn` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unsupported database {scheme:?}; use a sqlite://, postgres://, mysql:// or mariadb:// URL"
)]
pub struct UnsupportedDatabase {
    scheme: String,
}

/// Where the endpoints are kept: the config's `db_conn`, read once.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// `db_conn` empty: the embedded SQLite file in `data_dir`.
    InDataDir,
    /// The database `db_conn` names, as an sqlx URL (it may hold a password: never shown).
    At { engine: Engine, url: String },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::InDataDir => f.write_str("InDataDir"),
            Database::At { engine, .. } => f
                .debug_struct("At")
                .field("engine", engine)
                .finish_non_exhaustive(),
        }
    }
}

impl Database {
    /// Reads `db_conn` (`sqlite://`, `postgres://`, `mysql://`, `mariadb://`, or empty).
    pub fn from_db_conn(db_conn: &str) -> Result<Database, UnsupportedDatabase> {
        let db_conn = db_conn.trim();
        if db_conn.is_empty() {
            return Ok(Database::InDataDir);
        }
        let (scheme, rest) = db_conn.split_once("://").unwrap_or((db_conn, ""));
        let (engine, url) = match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => (Engine::Sqlite, sqlite_url(sqlite_path(rest))),
            "postgres" | "postgresql" => (Engine::Postgres, db_conn.to_string()),
            "mysql" | "mariadb" => (Engine::MySql, format!("mysql://{rest}")),
            other => {
                return Err(UnsupportedDatabase {
                    scheme: other.to_string(),
                })
            }
        };
        Ok(Database::At { engine, url })
    }

    /// The engine and sqlx URL to connect to, with the embedded file in `data_dir`.
    pub fn connect_url(&self, data_dir: &Path) -> (Engine, String) {
        match self {
            Database::InDataDir => (
                Engine::Sqlite,
                sqlite_url(&data_dir.join(SQLITE_FILE).to_string_lossy()),
            ),
            Database::At { engine, url } => (*engine, url.clone()),
        }
    }
}

/// The file a `sqlite://` URL names (`rest` is what follows `sqlite://`). The original opened
/// the URL's path without its first `/` and ignored the host: `sqlite:///data/x.db` is
/// `data/x.db` relative to the working directory, `sqlite:////var/x.db` and
/// `sqlite://localhost//var/x.db` are `/var/x.db`. A URL with a host and no path at all
/// (`sqlite://x.db`, which the original could not open) names the file `x.db`.
fn sqlite_path(rest: &str) -> &str {
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    match rest.find('/') {
        Some(path_start) => {
            let path = &rest[path_start..];
            path.strip_prefix('/').unwrap_or(path)
        }
        None => rest,
    }
}

/// A SQLite URL for `path`, creating the file when missing.
fn sqlite_url(path: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(path, SQLITE_PATH_ESCAPES);
    format!("sqlite://{encoded}?mode=rwc")
}

/// Characters that would end or change the path part of the URL.
const SQLITE_PATH_ESCAPES: &percent_encoding::AsciiSet =
    &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_url_forms_map_to_sqlx_urls() {
        let dir = Path::new("/var/lib/pf");
        let cases = [
            (
                "",
                Engine::Sqlite,
                "sqlite:///var/lib/pf/promfetcher.db?mode=rwc",
            ),
            (
                "sqlite:///data/x.db",
                Engine::Sqlite,
                "sqlite://data/x.db?mode=rwc",
            ),
            (
                "sqlite:////var/x.db",
                Engine::Sqlite,
                "sqlite:///var/x.db?mode=rwc",
            ),
            ("sqlite://x.db", Engine::Sqlite, "sqlite://x.db?mode=rwc"),
            (
                "sqlite://localhost//var/vcap/store/pf.db",
                Engine::Sqlite,
                "sqlite:///var/vcap/store/pf.db?mode=rwc",
            ),
            (
                "sqlite://localhost/pf.db?cache=shared",
                Engine::Sqlite,
                "sqlite://pf.db?mode=rwc",
            ),
            (
                "postgres://u:p@db:5432/pf?sslmode=disable",
                Engine::Postgres,
                "postgres://u:p@db:5432/pf?sslmode=disable",
            ),
            (
                "postgresql://u@db/pf",
                Engine::Postgres,
                "postgresql://u@db/pf",
            ),
            (
                "mysql://u:p@db:3306/pf",
                Engine::MySql,
                "mysql://u:p@db:3306/pf",
            ),
            (
                "mariadb://u:p@db:3306/pf",
                Engine::MySql,
                "mysql://u:p@db:3306/pf",
            ),
        ];
        for (db_conn, engine, url) in cases {
            assert_eq!(
                Database::from_db_conn(db_conn).map(|database| database.connect_url(dir)),
                Ok((engine, url.to_string())),
                "{db_conn}"
            );
        }
        assert!(Database::from_db_conn("oracle://x").is_err());
    }
}

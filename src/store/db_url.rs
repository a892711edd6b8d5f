//! Turns the `db_conn` of the original promfetcher (`sqlite://`, `postgres://`, `mysql://`,
//! `mariadb://`) or, when it is empty, a SQLite file in `data_dir`, into the URL sqlx connects
//! to. Pure string work: it never connects, and never puts the URL in an error or a log line.

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

/// The sqlx URL and engine for `db_conn`, or the embedded SQLite file in `data_dir` when empty.
pub fn connect_url(
    db_conn: &str,
    data_dir: &Path,
) -> Result<(Engine, String), UnsupportedDatabase> {
    let db_conn = db_conn.trim();
    if db_conn.is_empty() {
        return Ok((
            Engine::Sqlite,
            sqlite_url(&data_dir.join(SQLITE_FILE).to_string_lossy()),
        ));
    }
    let (scheme, rest) = db_conn.split_once("://").unwrap_or((db_conn, ""));
    match scheme.to_ascii_lowercase().as_str() {
        // The original opened the URL's path without its first `/`: `sqlite:///data/x.db` is
        // `data/x.db` relative to the working directory, `sqlite:////var/x.db` is absolute.
        "sqlite" => {
            let path = rest.split('?').next().unwrap_or_default();
            let path = path.strip_prefix('/').unwrap_or(path);
            Ok((Engine::Sqlite, sqlite_url(path)))
        }
        "postgres" | "postgresql" => Ok((Engine::Postgres, db_conn.to_string())),
        "mysql" | "mariadb" => Ok((Engine::MySql, format!("mysql://{rest}"))),
        other => Err(UnsupportedDatabase {
            scheme: other.to_string(),
        }),
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
                connect_url(db_conn, dir),
                Ok((engine, url.to_string())),
                "{db_conn}"
            );
        }
        assert!(connect_url("oracle://x", dir).is_err());
    }
}

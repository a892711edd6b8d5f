//! Export and import of the store, engine-independent: what `promfetcher store export` writes
//! and `promfetcher store import` reads, and the BBR job's artifact. The file is JSON Lines:
//! a header line `{"format":"promfetcher-store","version":1}`, one line per record (a service
//! instance, a binding, or an app path of `app_endpoints`, which also holds the bindings the
//! original promfetcher wrote), and a trailer `{"end":{"records":N}}` so that a file cut at a
//! line boundary is refused too. An import reads and checks the whole file before it writes,
//! then writes every record in one transaction, replacing a record with the same id (so a
//! second import of the same file changes nothing); records of the database that the file does
//! not name are kept. Any problem names the line and the reason, and changes nothing.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::sync::Arc;

use prometheus::Registry;
use serde::{Deserialize, Serialize};

use super::{
    AppEndpointRow, AppPathCache, BindingRecord, DataDir, Database, EndpointStore, InstanceRecord,
    StoreError, StoreMetrics, StoreSettings,
};

/// The `format` of the header line.
pub const FORMAT: &str = "promfetcher-store";
/// The version this promfetcher writes and reads.
pub const VERSION: u32 = 1;

/// Longest id or path the schema holds (`VARCHAR(255)`).
const MAX_TEXT: usize = 255;
/// Longest `parameters` the schema holds (`VARCHAR(4000)`).
const MAX_PARAMETERS: usize = 4000;

/// The first line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
}

/// One line after the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Line {
    Instance(InstanceRecord),
    Binding(BindingRecord),
    AppEndpoint(AppEndpointRow),
    End { records: usize },
}

/// Why an export failed, or an import was refused or failed (then nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error(
        "the file ends at line {lines} without its end line {{\"end\":{{\"records\":N}}}}: it is \
         truncated or not an export"
    )]
    Truncated { lines: usize },
    #[error("cannot read the file: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "the config names no database: db_conn is empty and data_dir is not set, so the records \
         live in a temporary directory of the running promfetcher only; set data_dir (or db_conn) \
         as the service has it"
    )]
    NoDatabase,
    #[error("cannot use data_dir {path:?}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// The configured store, for an export or an import by another process than the service:
/// the database of `db_conn`, or the embedded SQLite file in `data_dir`. Refused when neither
/// is configured (the service's temporary file cannot be reached).
pub async fn open_configured(
    settings: &StoreSettings,
) -> Result<(EndpointStore, DataDir), BackupError> {
    if settings.database == Database::InDataDir && settings.data_dir.trim().is_empty() {
        return Err(BackupError::NoDatabase);
    }
    let data_dir = DataDir::prepare(&settings.data_dir).map_err(|source| BackupError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    // Nobody scrapes this process: its metrics go to a registry of its own.
    let metrics = StoreMetrics::register(&Registry::new())
        .map_err(|error| StoreError::Database(error.to_string()))?;
    let store = EndpointStore::new(
        settings,
        data_dir.path(),
        Arc::new(AppPathCache::new()),
        metrics,
    )?;
    Ok((store, data_dir))
}

/// How many records of each kind an export wrote or an import read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub instances: usize,
    pub bindings: usize,
    pub app_endpoints: usize,
}

impl EndpointStore {
    /// Writes every instance, binding and app path to `out` in the export format, read in one
    /// transaction so the file is one consistent picture.
    pub async fn export(&self, out: &mut impl Write) -> Result<RecordCounts, BackupError> {
        self.check_ready().await?;
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let instances: Vec<InstanceRecord> = sqlx::query_as(
            "SELECT instance_id, service_id, plan_id, organization_guid, space_guid, parameters, \
             endpoint FROM broker_instances ORDER BY instance_id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let bindings: Vec<BindingRecord> = sqlx::query_as(
            "SELECT binding_id, instance_id, service_id, plan_id, app_guid, parameters, endpoint \
             FROM broker_bindings ORDER BY binding_id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let app_endpoints: Vec<AppEndpointRow> =
            sqlx::query_as("SELECT guid, app_guid, endpoint FROM app_endpoints ORDER BY guid")
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;

        let counts = RecordCounts {
            instances: instances.len(),
            bindings: bindings.len(),
            app_endpoints: app_endpoints.len(),
        };
        let lines = instances
            .into_iter()
            .map(Line::Instance)
            .chain(bindings.into_iter().map(Line::Binding))
            .chain(app_endpoints.into_iter().map(Line::AppEndpoint));
        write_json_line(
            out,
            &Header {
                format: FORMAT.to_string(),
                version: VERSION,
            },
        )?;
        let mut records = 0;
        for line in lines {
            write_json_line(out, &line)?;
            records += 1;
        }
        write_json_line(out, &Line::End { records })?;
        out.flush()?;
        Ok(counts)
    }

    /// Reads a whole export from `input`, checks it, then writes it in one transaction. On any
    /// error nothing is written.
    pub async fn import(&self, input: impl BufRead) -> Result<RecordCounts, BackupError> {
        let records = read_export(input)?;
        self.check_ready().await?;
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut counts = RecordCounts::default();
        for record in &records {
            match record {
                Line::Instance(i) => {
                    let values = [
                        Some(i.instance_id.as_str()),
                        Some(&i.service_id),
                        Some(&i.plan_id),
                        Some(&i.organization_guid),
                        Some(&i.space_guid),
                        Some(&i.parameters),
                        i.endpoint.as_deref(),
                    ];
                    self.replace_row(&mut tx, INSTANCES, &values).await?;
                    counts.instances += 1;
                }
                Line::Binding(b) => {
                    let values = [
                        Some(b.binding_id.as_str()),
                        Some(&b.instance_id),
                        Some(&b.service_id),
                        Some(&b.plan_id),
                        b.app_guid.as_deref(),
                        Some(&b.parameters),
                        b.endpoint.as_deref(),
                    ];
                    self.replace_row(&mut tx, BINDINGS, &values).await?;
                    counts.bindings += 1;
                }
                Line::AppEndpoint(a) => {
                    let values = [
                        Some(a.guid.as_str()),
                        a.app_guid.as_deref(),
                        a.endpoint.as_deref(),
                    ];
                    self.replace_row(&mut tx, APP_ENDPOINTS, &values).await?;
                    counts.app_endpoints += 1;
                }
                Line::End { .. } => {}
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.refresh_after_write().await;
        Ok(counts)
    }

    /// Deletes the row of `table` whose key is `values[0]` and inserts `values` in its
    /// columns' order.
    async fn replace_row(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        table: Table,
        values: &[Option<&str>],
    ) -> Result<(), StoreError> {
        let Table { name, columns } = table;
        let key = columns[0];
        sqlx::query(&self.sql(&format!("DELETE FROM {name} WHERE {key} = ?")))
            .bind(values[0].map(str::to_string))
            .execute(&mut **tx)
            .await?;
        let placeholders = vec!["?"; columns.len()].join(", ");
        let insert = format!(
            "INSERT INTO {name} ({}) VALUES ({placeholders})",
            columns.join(", ")
        );
        values
            .iter()
            .fold(sqlx::query(&self.sql(&insert)), |query, value| {
                query.bind(value.map(str::to_string))
            })
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// A table and its columns, the key first.
#[derive(Clone, Copy)]
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
}

const INSTANCES: Table = Table {
    name: "broker_instances",
    columns: &[
        "instance_id",
        "service_id",
        "plan_id",
        "organization_guid",
        "space_guid",
        "parameters",
        "endpoint",
    ],
};
const BINDINGS: Table = Table {
    name: "broker_bindings",
    columns: &[
        "binding_id",
        "instance_id",
        "service_id",
        "plan_id",
        "app_guid",
        "parameters",
        "endpoint",
    ],
};
const APP_ENDPOINTS: Table = Table {
    name: "app_endpoints",
    columns: &["guid", "app_guid", "endpoint"],
};

fn write_json_line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// Every record of an export, checked: the header's format and version, each line's shape and
/// values, ids unique per kind, and the end line's count.
pub(crate) fn read_export(input: impl BufRead) -> Result<Vec<Line>, BackupError> {
    let mut lines = input.lines().enumerate();
    let bad = |line: usize, reason: String| BackupError::BadLine { line, reason };
    let (_, first) = lines.next().ok_or(BackupError::Truncated { lines: 0 })?;
    let header: Header = serde_json::from_str(&first?).map_err(|error| {
        bad(
            1,
            format!("not the header of a promfetcher store export: {error}"),
        )
    })?;
    if header.format != FORMAT {
        return Err(bad(
            1,
            format!("format {:?} is not {FORMAT:?}", header.format),
        ));
    }
    if header.version != VERSION {
        return Err(bad(
            1,
            format!(
                "format version {} is unknown to this promfetcher, which reads version {VERSION}",
                header.version
            ),
        ));
    }
    let mut records = Vec::new();
    let mut seen: HashSet<(&'static str, String)> = HashSet::new();
    let mut ended_at = None;
    let mut last_line = 1;
    for (index, text) in lines {
        let number = index + 1;
        last_line = number;
        let text = text?;
        if let Some(end) = ended_at {
            if text.trim().is_empty() {
                continue;
            }
            return Err(bad(number, format!("text after the end line (line {end})")));
        }
        let line: Line =
            serde_json::from_str(&text).map_err(|error| bad(number, error.to_string()))?;
        if let Line::End { records: count } = line {
            if count != records.len() {
                return Err(bad(
                    number,
                    format!(
                        "the end line counts {count} records but the file has {}: records are \
                         missing",
                        records.len()
                    ),
                ));
            }
            ended_at = Some(number);
            continue;
        }
        let (kind, id) = check_record(&line).map_err(|reason| bad(number, reason))?;
        if !seen.insert((kind, id.to_string())) {
            return Err(bad(number, format!("{kind} {id:?} appears twice")));
        }
        records.push(line);
    }
    match ended_at {
        Some(_) => Ok(records),
        None => Err(BackupError::Truncated { lines: last_line }),
    }
}

/// The record's kind and id, when every value fits the schema; otherwise why not. Paths are
/// not judged: what the database held must import again (scrapes skip a path they cannot use).
fn check_record(line: &Line) -> Result<(&'static str, &str), String> {
    let (kind, ids, parameters, app_guid, endpoint): (_, Vec<(&str, &str)>, _, _, _) = match line {
        Line::Instance(i) => (
            "instance",
            vec![
                ("instance_id", &i.instance_id),
                ("service_id", &i.service_id),
                ("plan_id", &i.plan_id),
                ("organization_guid", &i.organization_guid),
                ("space_guid", &i.space_guid),
            ],
            Some(&i.parameters),
            None,
            i.endpoint.as_deref(),
        ),
        Line::Binding(b) => (
            "binding",
            vec![
                ("binding_id", &b.binding_id),
                ("instance_id", &b.instance_id),
                ("service_id", &b.service_id),
                ("plan_id", &b.plan_id),
            ],
            Some(&b.parameters),
            b.app_guid.as_deref(),
            b.endpoint.as_deref(),
        ),
        Line::AppEndpoint(a) => (
            "app_endpoint",
            vec![("guid", &a.guid)],
            None,
            a.app_guid.as_deref(),
            a.endpoint.as_deref(),
        ),
        Line::End { .. } => return Err("a second end line".to_string()),
    };
    for (name, value) in &ids {
        if value.trim().is_empty() {
            return Err(format!("{kind}: {name} is empty"));
        }
        if value.len() > MAX_TEXT {
            return Err(format!("{kind}: {name} is longer than {MAX_TEXT} bytes"));
        }
    }
    if parameters.is_some_and(|p| p.len() > MAX_PARAMETERS) {
        return Err(format!(
            "{kind}: parameters are longer than {MAX_PARAMETERS} bytes"
        ));
    }
    for (name, value) in [("app_guid", app_guid), ("endpoint", endpoint)] {
        if value.is_some_and(|v| v.len() > MAX_TEXT) {
            return Err(format!("{kind}: {name} is longer than {MAX_TEXT} bytes"));
        }
    }
    Ok((kind, ids[0].1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"{"format":"promfetcher-store","version":1}"#;
    const PATH: &str = r#"{"app_endpoint":{"guid":"b1","app_guid":"a1","endpoint":"/m"}}"#;

    fn refusal(lines: &[&str]) -> String {
        match read_export(lines.join("\n").as_bytes()) {
            Ok(records) => panic!("accepted {records:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_complete_file_is_read_and_every_flaw_names_its_line() {
        let end = r#"{"end":{"records":1}}"#;
        assert_eq!(
            read_export([HEADER, PATH, end].join("\n").as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert!(refusal(&[HEADER, PATH]).contains("truncated"));
        assert!(refusal(&[HEADER, PATH, PATH, r#"{"end":{"records":2}}"#])
            .starts_with("line 3: app_endpoint \"b1\" appears twice"));
        assert!(refusal(&[HEADER, PATH, end, PATH]).starts_with("line 4: text after the end line"));
        assert!(refusal(&[
            HEADER,
            r#"{"app_endpoint":{"guid":" ","app_guid":null,"endpoint":null}}"#,
            end
        ])
        .starts_with("line 2: app_endpoint: guid is empty"));
        assert!(
            refusal(&[HEADER, r#"{"instance":{"instance_id":"i"}}"#, end]).starts_with("line 2: ")
        );
        assert!(refusal(&[r#"{"format":"other","version":1}"#]).starts_with("line 1: format"));
        assert!(refusal(&[]).contains("truncated"));
    }
}

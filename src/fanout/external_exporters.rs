//! External exporters (config `external_exporters`): exporters that are not app instances, such
//! as a database exporter, asked once per app beside the app's instances, with query parameters
//! rendered from the app's identity (`target: ["{{ .AppID }}"]`). This module turns the config
//! entries into validated exporters at start (refusing bad schemes, hosts, paths, duplicate names
//! and templates it cannot render) and builds the URL for one app. It sends nothing: the fan-out
//! scrapes the URLs.
//!
//! Templates use the original's Go-template syntax, restricted to what it was used for: literal
//! text and field references `{{ .AppID }}` (with optional `{{-`/`-}}` whitespace trimming).
//! The fields are those of the original's route tags that are meaningful for an app:
//! [`FIELDS`]. Its per-instance fields (`InstanceID`, `ProcessInstanceID`, `ProcessID`) always
//! rendered empty for an exporter, so they are refused instead of silently sending nothing.

use std::collections::{BTreeMap, HashMap};

use url::Url;

use crate::config::ExternalExporterConfig;
use crate::routes::CfIdentity;
use crate::scrape::metric_path::MetricPath;

/// The label naming the exporter on its samples, its status samples and promfetcher's own metrics.
pub const EXPORTER_LABEL: &str = "external_exporter";

/// Scheme used when an entry names none (the original's default).
pub const DEFAULT_SCHEME: &str = "http";

/// Every field a template may name, and what it renders for an app.
pub const FIELDS: [&str; 9] = [
    "AppID",
    "AppName",
    "SpaceID",
    "SpaceName",
    "OrganizationID",
    "OrganizationName",
    "SourceID",
    "ProcessType",
    "Component",
];

/// Fields of the original's tags that name one instance; an exporter is asked once per app.
const PER_INSTANCE_FIELDS: [&str; 3] = ["InstanceID", "ProcessInstanceID", "ProcessID"];

/// `ProcessType` as the original rendered it for exporters.
const PROCESS_TYPE: &str = "external_exporter";
/// `Component` as the original rendered it for exporters.
const COMPONENT: &str = "promfetcher";

/// A config entry that cannot be used: the key (as the config file spells it) and why, in one
/// line that names the exporter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ExporterConfigError {
    pub key: String,
    pub reason: String,
}

/// One validated exporter. Its `Debug` shows the name and location, never the params.
#[derive(Clone)]
pub struct ExternalExporter {
    name: String,
    /// `scheme://host/path`, with the query pairs of `metrics_path` that no param replaces.
    base: Url,
    params: Vec<(String, Vec<Template>)>,
}

impl ExternalExporter {
    /// The exporter's name (config `name`, else `host` + `metrics_path`), unique among exporters.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL that asks this exporter about `app`: the base URL plus every param, rendered for
    /// `app` and percent-encoded.
    pub fn url_for(&self, app: &CfIdentity) -> Url {
        let mut url = self.base.clone();
        if !self.params.is_empty() {
            let mut query = url.query_pairs_mut();
            for (key, values) in &self.params {
                for value in values {
                    query.append_pair(key, &value.render(app));
                }
            }
        }
        url
    }

    /// Where the exporter is, without the query (which may carry secrets): for logs.
    pub fn location(&self) -> String {
        let mut url = self.base.clone();
        url.set_query(None);
        url.to_string()
    }
}

impl std::fmt::Debug for ExternalExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalExporter")
            .field("name", &self.name)
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

/// Validates every entry of `external_exporters`; the first problem is returned.
pub fn parse_all(
    entries: &[ExternalExporterConfig],
) -> Result<Vec<ExternalExporter>, ExporterConfigError> {
    let mut exporters: Vec<ExternalExporter> = Vec::with_capacity(entries.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let exporter = parse_one(index, entry)?;
        if let Some(first) = names.insert(exporter.name.clone(), index) {
            return Err(ExporterConfigError {
                key: format!("external_exporters[{index}].name"),
                reason: format!(
                    "exporter {:?}: external_exporters[{first}] has the same name; give each \
                     exporter its own `name` (it labels the exporter's samples)",
                    exporter.name
                ),
            });
        }
        exporters.push(exporter);
    }
    Ok(exporters)
}

fn parse_one(
    index: usize,
    entry: &ExternalExporterConfig,
) -> Result<ExternalExporter, ExporterConfigError> {
    let host = entry.host.trim();
    let path_text = match entry.metrics_path.trim() {
        "" => crate::scrape::metric_path::DEFAULT_METRIC_PATH,
        path => path,
    };
    let name = match entry.name.trim() {
        "" => format!("{host}{path_text}"),
        name => name.to_string(),
    };
    let error = |key: &str, reason: String| ExporterConfigError {
        key: format!("external_exporters[{index}].{key}"),
        reason: format!("exporter {name:?}: {reason}"),
    };

    let scheme = match entry.scheme.trim().to_ascii_lowercase().as_str() {
        "" => DEFAULT_SCHEME.to_string(),
        scheme @ ("http" | "https") => scheme.to_string(),
        other => {
            return Err(error(
                "scheme",
                format!("{other:?} is not a scheme promfetcher can scrape; use http or https"),
            ))
        }
    };
    if host.is_empty() {
        return Err(error(
            "host",
            "is empty; give the exporter's host[:port], e.g. sql-exporter.example.com:9237".into(),
        ));
    }
    if let Some(c) = host
        .chars()
        .find(|c| matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace())
    {
        return Err(error(
            "host",
            format!(
                "{host:?} contains {c:?}; give only host[:port] (the scheme goes in `scheme`, \
                 the path in `metrics_path`, no credentials)"
            ),
        ));
    }
    let mut base = Url::parse(&format!("{scheme}://{host}/"))
        .ok()
        .filter(|url| url.host_str().is_some_and(|h| !h.is_empty()))
        .ok_or_else(|| {
            error(
                "host",
                format!("{host:?} is not a valid host[:port], e.g. sql-exporter.example.com:9237"),
            )
        })?;

    let path = MetricPath::parse(path_text)
        .map_err(|invalid| error("metrics_path", invalid.reason().to_string()))?;
    base.set_path(path.path());

    let mut params = Vec::with_capacity(entry.params.len());
    for (key, values) in &entry.params {
        if key.trim().is_empty() {
            return Err(error(
                "params",
                "has an empty parameter name; every key names a query parameter".into(),
            ));
        }
        let templates = values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                Template::parse(value)
                    .map_err(|reason| error(&format!("params.{key}[{i}]"), reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        params.push((key.clone(), templates));
    }
    // The path's own query pairs stay unless a param of the same name replaces them (the
    // original set each param over the path's query).
    if let Some(query) = path.query() {
        let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(key, _)| !entry.params.contains_key(key.as_ref()))
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        if !kept.is_empty() {
            base.query_pairs_mut().extend_pairs(kept);
        }
    }
    Ok(ExternalExporter { name, base, params })
}

/// A param value: literal text and field references, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A field of [`FIELDS`], resolved at parse time so rendering cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    AppId,
    AppName,
    SpaceId,
    SpaceName,
    OrganizationId,
    OrganizationName,
    SourceId,
    ProcessType,
    Component,
}

impl Field {
    fn named(name: &str) -> Option<Field> {
        Some(match name {
            "AppID" => Field::AppId,
            "AppName" => Field::AppName,
            "SpaceID" => Field::SpaceId,
            "SpaceName" => Field::SpaceName,
            "OrganizationID" => Field::OrganizationId,
            "OrganizationName" => Field::OrganizationName,
            "SourceID" => Field::SourceId,
            "ProcessType" => Field::ProcessType,
            "Component" => Field::Component,
            _ => return None,
        })
    }

    fn value(self, app: &CfIdentity) -> &str {
        match self {
            Field::AppId => &app.app_id,
            Field::AppName => &app.app_name,
            Field::SpaceId => &app.space_id,
            Field::SpaceName => &app.space_name,
            Field::OrganizationId => &app.organization_id,
            Field::OrganizationName => &app.organization_name,
            // Cloud Foundry's route-emitter sets `source_id` to the app GUID.
            Field::SourceId => &app.app_id,
            Field::ProcessType => PROCESS_TYPE,
            Field::Component => COMPONENT,
        }
    }
}

impl Template {
    /// Parses a param value. A value without `{{` is literal text, as in the original. The error
    /// is one line saying what is wrong and what is allowed.
    pub fn parse(raw: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = raw;
        while let Some(open) = rest.find("{{") {
            text.push_str(&rest[..open]);
            let after_open = &rest[open + 2..];
            let close = after_open
                .find("}}")
                .ok_or_else(|| format!("{raw:?}: unclosed action (a \"{{{{\" without \"}}}}\")"))?;
            let mut action = &after_open[..close];
            rest = &after_open[close + 2..];
            // `{{- ` trims the whitespace before the action, ` -}}` the whitespace after it.
            if let Some(trimmed) = action.strip_prefix('-').filter(|a| starts_with_space(a)) {
                action = trimmed;
                text.truncate(text.trim_end().len());
            }
            let trim_after = action
                .strip_suffix('-')
                .filter(|a| a.ends_with(char::is_whitespace));
            if let Some(trimmed) = trim_after {
                action = trimmed;
                rest = rest.trim_start();
            }
            let field = parse_action(raw, action.trim())?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Field(field));
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Whether the value is made of field references only (and so can be shown: literal text
    /// may be a credential such as an API key).
    pub fn is_fields_only(&self) -> bool {
        self.parts.iter().all(|part| match part {
            Part::Field(_) => true,
            Part::Text(text) => text.trim().is_empty(),
        })
    }

    /// The value for `app`.
    pub fn render(&self, app: &CfIdentity) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(field.value(app)),
            }
        }
        out
    }
}

fn starts_with_space(text: &str) -> bool {
    text.starts_with(char::is_whitespace)
}

/// The inside of one `{{ ... }}`, trimmed: must be `.Field` with a known field.
fn parse_action(raw: &str, action: &str) -> Result<Field, String> {
    let allowed = || FIELDS.map(|f| format!("{{{{ .{f} }}}}")).join(", ");
    let name = action
        .strip_prefix('.')
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .ok_or_else(|| {
            format!(
                "{raw:?}: unsupported template action {{{{ {action} }}}}; only field references \
                 are supported: {}",
                allowed()
            )
        })?;
    if let Some(field) = Field::named(name) {
        return Ok(field);
    }
    if PER_INSTANCE_FIELDS.contains(&name) {
        return Err(format!(
            "{raw:?}: .{name} names one instance, but an external exporter is asked once per app \
             (the original always sent it empty); remove it"
        ));
    }
    Err(format!(
        "{raw:?}: unknown field .{name}; use one of {}",
        allowed()
    ))
}

/// The params of a config entry as `check-config` shows them: values made of field references
/// only are shown, any value with literal text is masked (it may be an API key or a token).
pub fn masked_params(params: &BTreeMap<String, Vec<String>>) -> BTreeMap<&str, Vec<&str>> {
    params
        .iter()
        .map(|(key, values)| {
            let shown = values
                .iter()
                .map(|value| match Template::parse(value) {
                    Ok(template) if template.is_fields_only() => value.as_str(),
                    _ => crate::config::MASK,
                })
                .collect();
            (key.as_str(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> CfIdentity {
        CfIdentity {
            organization_id: "org-guid".into(),
            space_id: "space-guid".into(),
            app_id: "app-guid".into(),
            organization_name: "acme".into(),
            space_name: "dev".into(),
            app_name: "my shop&co".into(),
            instance_index: "2".into(),
            process_type: "web".into(),
        }
    }

    fn entry(yaml: &str) -> ExternalExporterConfig {
        serde_norway::from_str(yaml).unwrap()
    }

    fn parsed(yaml: &str) -> Result<Vec<ExternalExporter>, ExporterConfigError> {
        parse_all(&serde_norway::from_str::<Vec<ExternalExporterConfig>>(yaml).unwrap())
    }

    #[test]
    fn every_field_renders_from_the_app() {
        let raw: String = FIELDS
            .iter()
            .map(|f| format!("{f}={{{{ .{f} }}}};"))
            .collect();
        let rendered = Template::parse(&raw).unwrap().render(&app());
        assert_eq!(
            rendered,
            "AppID=app-guid;AppName=my shop&co;SpaceID=space-guid;SpaceName=dev;\
             OrganizationID=org-guid;OrganizationName=acme;SourceID=app-guid;\
             ProcessType=external_exporter;Component=promfetcher;"
        );
    }

    #[test]
    fn template_spellings_and_literal_text() {
        let table = [
            ("{{.AppID}}", "app-guid"),
            ("{{ .AppID }}", "app-guid"),
            ("{{  .AppName\t}}", "my shop&co"),
            ("db-{{ .SpaceName }}-{{ .AppName }}", "db-dev-my shop&co"),
            ("a  {{- .SpaceName -}}  b", "adevb"),
            ("plain value", "plain value"),
            ("}} stays", "}} stays"),
            ("", ""),
        ];
        for (raw, expected) in table {
            let rendered = Template::parse(raw).unwrap().render(&app());
            assert_eq!(rendered, expected, "{raw}");
        }
    }

    #[test]
    fn template_errors_say_what_is_allowed() {
        let table = [
            (
                "{{ .AppGuid }}",
                "unknown field .AppGuid; use one of {{ .AppID }}, {{ .AppName }}",
            ),
            ("{{ .AppID", "unclosed action"),
            (
                "{{ .AppID | urlquery }}",
                "unsupported template action {{ .AppID | urlquery }}",
            ),
            ("{{ if .AppID }}x{{ end }}", "unsupported template action"),
            ("{{ . }}", "unsupported template action"),
            ("{{ AppID }}", "unsupported template action"),
            // as in Go, `{{-` is a trim marker only when a space follows
            ("a {{-.AppID}}", "unsupported template action {{ -.AppID }}"),
            ("{{ .InstanceID }}", ".InstanceID names one instance"),
            ("{{ .ProcessID }}", "asked once per app"),
        ];
        for (raw, wanted) in table {
            let error = Template::parse(raw).unwrap_err();
            assert!(error.contains(wanted), "{raw}: {error}");
            assert!(error.starts_with(&format!("{raw:?}: ")), "{error}");
            assert!(!error.contains('\n'));
        }
    }

    #[test]
    fn urls_are_built_from_parts_and_params_percent_encoded() {
        let exporters = parsed(
            r#"
- name: sql
  host: sql-exporter.example.com:9237
  scheme: HTTPS
  metrics_path: /probe?module=pg&target=old
  params:
    target: ["{{ .AppID }}"]
    app: ["{{ .OrganizationName }}/{{ .AppName }}", "second value"]
- host: 10.0.0.9
"#,
        )
        .unwrap();
        assert_eq!(exporters[0].name(), "sql");
        assert_eq!(
            exporters[0].url_for(&app()).as_str(),
            "https://sql-exporter.example.com:9237/probe?module=pg\
             &app=acme%2Fmy+shop%26co&app=second+value&target=app-guid"
        );
        assert_eq!(
            exporters[0].location(),
            "https://sql-exporter.example.com:9237/probe"
        );
        // defaults: http, /metrics, name from host and path
        assert_eq!(exporters[1].name(), "10.0.0.9/metrics");
        assert_eq!(
            exporters[1].url_for(&app()).as_str(),
            "http://10.0.0.9/metrics"
        );
    }

    #[test]
    fn bad_entries_name_the_key_and_the_exporter() {
        let table = [
            (
                "- {name: a, host: h, scheme: ftp}",
                "external_exporters[0].scheme: exporter \"a\": \"ftp\" is not a scheme",
            ),
            (
                "- {name: a, host: ''}",
                "external_exporters[0].host: exporter \"a\": is empty",
            ),
            (
                "- {name: a, host: 'http://h'}",
                "external_exporters[0].host: exporter \"a\": \"http://h\" contains '/'",
            ),
            (
                "- {name: a, host: 'user:pw@h'}",
                "external_exporters[0].host: exporter \"a\": \"user:pw@h\" contains '@'",
            ),
            (
                "- {name: a, host: 'h:notaport'}",
                "external_exporters[0].host: exporter \"a\": \"h:notaport\" is not a valid host",
            ),
            (
                "- {name: a, host: h, metrics_path: '/../x'}",
                "external_exporters[0].metrics_path: exporter \"a\": dot segments",
            ),
            (
                "- {name: a, host: h}\n- {name: a, host: g}",
                "external_exporters[1].name: exporter \"a\": external_exporters[0] has the same name",
            ),
            (
                "- {host: h}\n- {host: h, params: {x: [y]}}",
                "external_exporters[1].name: exporter \"h/metrics\"",
            ),
            (
                "- {name: a, host: h, params: {target: [ok, '{{ .Nope }}']}}",
                "external_exporters[0].params.target[1]: exporter \"a\": \"{{ .Nope }}\": unknown field .Nope",
            ),
            (
                "- {name: a, host: h, params: {'': [x]}}",
                "external_exporters[0].params: exporter \"a\": has an empty parameter name",
            ),
        ];
        for (yaml, wanted) in table {
            let error = parsed(yaml).unwrap_err().to_string();
            assert!(error.starts_with(wanted), "{yaml}\n got: {error}");
        }
    }

    #[test]
    fn only_values_made_of_fields_are_shown() {
        let config = entry(
            "{host: h, params: {target: ['{{ .AppID }}', 'x-{{ .AppID }}'], api_key: [s3cret]}}",
        );
        let shown = masked_params(&config.params);
        assert_eq!(shown["target"], ["{{ .AppID }}", crate::config::MASK]);
        assert_eq!(shown["api_key"], [crate::config::MASK]);
    }
}

//! External exporters (config `external_exporters`): exporters that are not app instances, such
//! as a database exporter, asked once per app beside the app's instances, with query parameters
//! rendered from the app's identity (`target: ["{{ .AppID }}"]`). This module turns the config
//! entries into validated exporters at start (refusing bad schemes, hosts, paths, duplicate names
//! and templates it cannot render) and builds the URL for one app. It sends nothing: the fan-out
//! scrapes the URLs.
//!
//! The param templates' syntax is [`crate::config::param_template`]'s; this module decides what
//! each field renders to for an app.

use std::collections::HashMap;

use url::Url;

use crate::config::param_template::{Field, ParamTemplate};
use crate::config::ExternalExporterConfig;
use crate::routes::CfIdentity;
use crate::scrape::metric_path::MetricPath;

/// The label naming the exporter on its samples, its status samples and promfetcher's own metrics.
pub const EXPORTER_LABEL: &str = "external_exporter";

/// Scheme used when an entry names none (the original's default).
pub const DEFAULT_SCHEME: &str = "http";

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
    params: Vec<Param>,
}

/// A query parameter: its name and the template of each of its values.
type Param = (String, Vec<ParamTemplate>);

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
                    query.append_pair(key, &render(value, app));
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

    let mut base = base_url(&entry.scheme, host).map_err(|(key, reason)| error(key, reason))?;
    let path = MetricPath::parse(path_text)
        .map_err(|invalid| error("metrics_path", invalid.reason().to_string()))?;
    base.set_path(path.path());

    let params = param_templates(&entry.params).map_err(|(key, reason)| error(&key, reason))?;
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

/// `scheme://host/` for an entry's `scheme` (http when empty) and `host`, or the key at fault
/// and why.
fn base_url(scheme: &str, host: &str) -> Result<Url, (&'static str, String)> {
    let scheme = match scheme.trim().to_ascii_lowercase().as_str() {
        "" => DEFAULT_SCHEME.to_string(),
        scheme @ ("http" | "https") => scheme.to_string(),
        other => {
            return Err((
                "scheme",
                format!("{other:?} is not a scheme promfetcher can scrape; use http or https"),
            ))
        }
    };
    if host.is_empty() {
        return Err((
            "host",
            "is empty; give the exporter's host[:port], e.g. sql-exporter.example.com:9237".into(),
        ));
    }
    if let Some(c) = host
        .chars()
        .find(|c| matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace())
    {
        return Err((
            "host",
            format!(
                "{host:?} contains {c:?}; give only host[:port] (the scheme goes in `scheme`, \
                 the path in `metrics_path`, no credentials)"
            ),
        ));
    }
    Url::parse(&format!("{scheme}://{host}/"))
        .ok()
        .filter(|url| url.host_str().is_some_and(|h| !h.is_empty()))
        .ok_or_else(|| {
            (
                "host",
                format!("{host:?} is not a valid host[:port], e.g. sql-exporter.example.com:9237"),
            )
        })
}

/// Every param's values parsed as templates, or the key at fault (`params.<name>[<i>]`) and why.
fn param_templates(
    params: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Vec<Param>, (String, String)> {
    params
        .iter()
        .map(|(key, values)| {
            if key.trim().is_empty() {
                return Err((
                    "params".to_string(),
                    "has an empty parameter name; every key names a query parameter".to_string(),
                ));
            }
            let templates = values
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    ParamTemplate::parse(value)
                        .map_err(|reason| (format!("params.{key}[{i}]"), reason))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((key.clone(), templates))
        })
        .collect()
}

/// `template` rendered for `app`.
fn render(template: &ParamTemplate, app: &CfIdentity) -> String {
    template.render(|field| field_value(field, app))
}

/// What `field` renders to for `identity`'s app.
fn field_value(field: Field, identity: &CfIdentity) -> &str {
    let app = &identity.app;
    match field {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> CfIdentity {
        CfIdentity {
            app: std::sync::Arc::new(crate::routes::AppTags {
                organization_id: "org-guid".into(),
                space_id: "space-guid".into(),
                app_id: "app-guid".into(),
                organization_name: "acme".into(),
                space_name: "dev".into(),
                app_name: "my shop&co".into(),
                process_type: "web".into(),
            }),
            instance_index: "2".into(),
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
        let raw: String = crate::config::param_template::FIELDS
            .iter()
            .map(|f| format!("{f}={{{{ .{f} }}}};"))
            .collect();
        let rendered = render(&ParamTemplate::parse(&raw).unwrap(), &app());
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
            let rendered = render(&ParamTemplate::parse(raw).unwrap(), &app());
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
            let error = ParamTemplate::parse(raw).unwrap_err();
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
        let shown = crate::config::param_template::masked_params(&config.params);
        assert_eq!(shown["target"], ["{{ .AppID }}", crate::config::MASK]);
        assert_eq!(shown["api_key"], [crate::config::MASK]);
    }
}

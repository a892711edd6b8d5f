//! The syntax of an `external_exporters` param value: the original's Go-template syntax,
//! restricted to what it was used for: literal text and field references `{{ .AppID }}` (with
//! optional `{{-`/`-}}` whitespace trimming). Parsing names every mistake in one line; what a
//! field renders to for an app is the fan-out's business (it passes `render` the values).
//! Also how `check-config` and `Debug` show params: values with literal text are masked.
//!
//! The fields are those of the original's route tags that are meaningful for an app: [`FIELDS`].
//! Its per-instance fields (`InstanceID`, `ProcessInstanceID`, `ProcessID`) always rendered
//! empty for an exporter, so they are refused instead of silently sending nothing.

use std::collections::BTreeMap;

use super::MASK;

/// Every field a template may name.
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

/// A param value: literal text and field references, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A field of [`FIELDS`], resolved at parse time so rendering cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
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
}

impl ParamTemplate {
    /// Parses a param value. A value without `{{` is literal text, as in the original. The error
    /// is one line saying what is wrong and what is allowed.
    pub fn parse(raw: &str) -> Result<ParamTemplate, String> {
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
        Ok(ParamTemplate { parts })
    }

    /// Whether the value is made of field references only (and so can be shown: literal text
    /// may be a credential such as an API key).
    pub fn is_fields_only(&self) -> bool {
        self.parts.iter().all(|part| match part {
            Part::Field(_) => true,
            Part::Text(text) => text.trim().is_empty(),
        })
    }

    /// The value with each field replaced by what `value_of` gives for it.
    pub fn render<'a>(&self, value_of: impl Fn(Field) -> &'a str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(value_of(*field)),
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
                .map(|value| match ParamTemplate::parse(value) {
                    Ok(template) if template.is_fields_only() => value.as_str(),
                    _ => MASK,
                })
                .collect();
            (key.as_str(), shown)
        })
        .collect()
}

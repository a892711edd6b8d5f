//! The diagnosis as an HTML page, for callers whose `Accept` prefers `text/html` (a browser):
//! the same report as the JSON of [`crate::http::diagnosis`], written server-side with inline
//! CSS, no script and no external asset. Every value on the page (the app as the caller named
//! it, addresses, paths, explanations) is HTML-escaped; the request's own query string is never
//! repeated. Failed and healthy instances are told apart by words, not only by colour.

use std::fmt::Write;

use crate::http::diagnosis::{
    Answer, Diagnosis, ExporterLine, Failure, InstanceLine, MergeLine, PathChoice, SourceFreshness,
};
use crate::http::html::escape;

/// The page for `diagnosis`; `base_url` (config, unescaped) leads to the user guide.
pub(crate) fn render(diagnosis: &Diagnosis, base_url: &str) -> String {
    let app = escape(&diagnosis.app);
    let failed = diagnosis.instances_failed;
    let scraped = diagnosis.instances_scraped;
    let verdict = if failed == 0 {
        format!(
            "All {scraped} instance{} answered with metrics.",
            plural(scraped)
        )
    } else {
        format!(
            "{failed} of {scraped} instance{} gave no metrics.",
            plural(scraped)
        )
    };
    let mut page = String::with_capacity(8 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>Diagnosis of {app}: {verdict} (promfetcher)</title>\n{STYLE}</head>\n<body>\n<main>\n\
         <h1>Diagnosis of <code>{app}</code></h1>\n\
         <p class=\"verdict {class}\"><strong>{mark} {verdict}</strong> promfetcher scraped every \
         instance just now, as <code>.../metrics</code> does, with the headers of your request.</p>\n",
        verdict = escape(&verdict),
        class = if failed == 0 { "ok" } else { "failed" },
        mark = if failed == 0 { "\u{2714}" } else { "\u{2716}" },
    );
    write_lookup(&mut page, diagnosis);
    write_paths(&mut page, &diagnosis.metrics_paths);
    write_instances(&mut page, &diagnosis.instances);
    write_failures(&mut page, &diagnosis.instances);
    write_merge(&mut page, &diagnosis.merge);
    write_exporters(&mut page, &diagnosis.external_exporters);
    let _ = write!(
        page,
        "<p class=\"aside\">The same report as JSON: ask this URL with \
         <code>Accept: application/json</code> (curl does by default). How to read it: \
         <a href=\"{}/doc#diagnosis\">the user guide</a>.</p>\n</main>\n</body>\n</html>\n",
        escape(base_url)
    );
    page
}

const STYLE: &str = "<style>\n\
  body { font-family: system-ui, -apple-system, \"Segoe UI\", sans-serif; margin: 0; \
         line-height: 1.5; color: #1d2330; background: #fbfbfd; }\n\
  main { max-width: 64rem; margin: 0 auto; padding: 1rem; }\n\
  h1 { border-bottom: 3px solid #e6522c; padding-bottom: .4rem; overflow-wrap: anywhere; }\n\
  h2 { margin-top: 2rem; color: #2b3a55; }\n\
  code { font-family: \"DejaVu Sans Mono\", Menlo, Consolas, monospace; font-size: .92em; \
         overflow-wrap: anywhere; }\n\
  table code { overflow-wrap: normal; white-space: nowrap; }\n\
  .scroll { overflow-x: auto; }\n\
  table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }\n\
  caption { text-align: left; font-weight: 600; padding: .3rem 0; }\n\
  th, td { text-align: left; padding: .4rem .55rem; border-bottom: 1px solid #d8dce6; \
           vertical-align: top; }\n\
  thead th { background: #eef1f7; }\n\
  dt { font-weight: 600; }\n\
  dd { margin: 0 0 .6rem 0; }\n\
  .verdict { padding: .6rem 1rem; border-left: 6px solid; }\n\
  .ok { border-color: #1f7a3a; background: #eaf6ee; color: #14532a; }\n\
  .failed { border-color: #b3261e; background: #fdecea; color: #7a1a14; }\n\
  td.ok, td.failed { font-weight: 600; white-space: nowrap; }\n\
  .failure { border-left: 4px solid #b3261e; padding: .1rem 1rem; margin: 1rem 0; }\n\
  .aside { margin-top: 2rem; color: #4a5468; }\n\
</style>\n";

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn write_lookup(page: &mut String, diagnosis: &Diagnosis) {
    let found_by = match diagnosis.found_by {
        "names" => "its org, space and app names",
        "guid" => "its app GUID",
        _ => "a route",
    };
    let _ = write!(
        page,
        "<h2>How the app was found</h2>\n<dl>\n\
         <dt>Found by</dt><dd>{found_by}</dd>\n\
         <dt>Route table</dt><dd>the routes last changed {age:.0} s ago</dd>\n\
         {sources}\
         <dt>Time for each instance</dt><dd>{timeout:.1} s</dd>\n</dl>\n",
        age = diagnosis.route_table.age_seconds,
        sources = source_lines(&diagnosis.route_sources),
        timeout = diagnosis.instance_timeout_seconds,
    );
}

/// One `<dt>`/`<dd>` pair per route source: up or failing, and since when.
fn source_lines(sources: &[SourceFreshness]) -> String {
    let mut lines = String::new();
    for source in sources {
        let state = if source.up {
            "\u{2714} up"
        } else {
            "\u{2716} failing"
        };
        let since = match source.seconds_since_success {
            Some(seconds) => format!("last delivered {seconds:.0} s ago"),
            None => "has not delivered yet".to_string(),
        };
        let lists = if source.lists_app {
            "lists this app"
        } else {
            "does not list this app"
        };
        let _ = writeln!(
            lines,
            "<dt>Route source {}</dt><dd>{state}, {since}; {lists}</dd>",
            escape(&source.source)
        );
    }
    lines
}

fn write_paths(page: &mut String, paths: &[PathChoice]) {
    page.push_str(
        "<h2>Metrics path</h2>\n<div class=\"scroll\"><table>\n\
         <caption>The path the instances were asked for, and why</caption>\n\
         <thead><tr><th scope=\"col\">App</th><th scope=\"col\">Path</th>\
         <th scope=\"col\">Set by</th><th scope=\"col\">Why</th></tr></thead>\n<tbody>\n",
    );
    for choice in paths {
        let app = if choice.app_name.is_empty() {
            &choice.app_guid
        } else {
            &choice.app_name
        };
        let set_by = match choice.source {
            "broker_binding" => "service binding",
            "service_instance" => "service instance",
            "metric_path" => "?metric_path=",
            _ => "default",
        };
        let _ = writeln!(
            page,
            "<tr><th scope=\"row\"><code>{}</code></th><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(app),
            escape(&choice.path),
            escape(set_by),
            escape(&choice.why),
        );
    }
    page.push_str("</tbody>\n</table></div>\n");
}

/// The column headings after the first two of the instances' and the exporters' tables.
const ANSWER_COLUMNS: &str = "<th scope=\"col\">Result</th><th scope=\"col\">HTTP status</th>\
     <th scope=\"col\">Format</th><th scope=\"col\">Bytes</th><th scope=\"col\">Families</th>\
     <th scope=\"col\">Samples</th><th scope=\"col\">Duration</th></tr></thead>\n<tbody>\n";

fn write_instances(page: &mut String, instances: &[InstanceLine]) {
    page.push_str(
        "<h2>Instances</h2>\n<div class=\"scroll\"><table>\n\
         <caption>What each instance answered</caption>\n<thead><tr>\
         <th scope=\"col\">Index</th><th scope=\"col\">Address</th>",
    );
    page.push_str(ANSWER_COLUMNS);
    for instance in instances {
        let address = match &instance.tls_server_name {
            Some(name) => format!(
                "<code>{}</code> (TLS, as <code>{}</code>)",
                escape(&instance.address),
                escape(name)
            ),
            None => format!("<code>{}</code>", escape(&instance.address)),
        };
        let _ = writeln!(
            page,
            "<tr id=\"instance-{index}\"><th scope=\"row\">{index}</th><td>{address}</td>{cells}</tr>",
            index = escape(&instance.index),
            cells = answer_cells(&instance.answer, instance.duration_seconds),
        );
    }
    page.push_str("</tbody>\n</table></div>\n");
}

fn write_exporters(page: &mut String, exporters: &[ExporterLine]) {
    if exporters.is_empty() {
        return;
    }
    page.push_str(
        "<h2>External exporters</h2>\n<p>Set up by the platform team, asked about your app \
         for <code>.../metrics</code> (not for <code>.../only-app-metrics</code>), without your \
         request's headers.</p>\n<div class=\"scroll\"><table>\n\
         <caption>What each external exporter answered about the app</caption>\n<thead><tr>\
         <th scope=\"col\">Exporter</th><th scope=\"col\">App GUID</th>",
    );
    page.push_str(ANSWER_COLUMNS);
    for exporter in exporters {
        let _ = writeln!(
            page,
            "<tr><th scope=\"row\">{}</th><td><code>{}</code></td>{}</tr>",
            escape(&exporter.exporter),
            escape(&exporter.app_guid),
            answer_cells(&exporter.answer, exporter.duration_seconds),
        );
    }
    page.push_str("</tbody>\n</table></div>\n");
    for (n, exporter) in exporters.iter().enumerate() {
        if let Some(failure) = &exporter.answer.failure {
            let heading = format!("Exporter {}", escape(&exporter.exporter));
            write_failure(page, &format!("exporter-failure-{n}"), &heading, failure);
        }
    }
}

/// Why `heading` (HTML) gave no metrics and what to check next, as a section labelled by its
/// heading (`id`).
fn write_failure(page: &mut String, id: &str, heading: &str, failure: &Failure) {
    let _ = writeln!(
        page,
        "<section class=\"failure\" aria-labelledby=\"{id}\">\n\
         <h3 id=\"{id}\">{heading}: {reason}</h3>\n\
         <p>{explanation}</p>\n<p><strong>Check next:</strong> {next}</p>\n</section>",
        reason = escape(failure.reason),
        explanation = escape(&failure.explanation),
        next = escape(&failure.next_check),
    );
}

/// The cells of [`ANSWER_COLUMNS`] for one answer.
fn answer_cells(answer: &Answer, duration_seconds: f64) -> String {
    let result = match &answer.failure {
        None => "<td class=\"ok\">\u{2714} OK</td>".to_string(),
        Some(failure) => format!(
            "<td class=\"failed\">\u{2716} failed: {}</td>",
            escape(failure.reason)
        ),
    };
    let format = match (&answer.content_type, answer.format) {
        (Some(content_type), Some(format)) => {
            format!("{} ({})", escape(format), escape(content_type))
        }
        (None, Some(format)) => escape(format),
        _ => String::new(),
    };
    let number = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "{result}<td>{status}</td><td>{format}</td><td>{bytes}</td><td>{families}</td>\
         <td>{samples}</td><td>{duration_seconds:.3} s</td>",
        status = answer.status.map(|s| s.to_string()).unwrap_or_default(),
        bytes = number(answer.bytes),
        families = number(answer.families),
        samples = number(answer.samples),
    )
}

/// For each failed instance: why, and what to check next; then the notes of all instances.
fn write_failures(page: &mut String, instances: &[InstanceLine]) {
    let failed: Vec<_> = instances
        .iter()
        .filter_map(|i| i.answer.failure.as_ref().map(|f| (i, f)))
        .collect();
    if !failed.is_empty() {
        page.push_str("<h2>Why instances gave no metrics</h2>\n");
    }
    for (instance, failure) in failed {
        let index = escape(&instance.index);
        write_failure(
            page,
            &format!("failure-{index}"),
            &format!(
                "Instance {index} (<code>{}</code>)",
                escape(&instance.address)
            ),
            failure,
        );
    }
    let notes: Vec<_> = instances
        .iter()
        .flat_map(|i| i.answer.notes.iter().map(move |note| (i, note)))
        .collect();
    if !notes.is_empty() {
        page.push_str("<h2>Notes</h2>\n<ul>\n");
        for (instance, note) in notes {
            let _ = writeln!(
                page,
                "<li>Instance {}: {}</li>",
                escape(&instance.index),
                escape(note)
            );
        }
        page.push_str("</ul>\n");
    }
}

/// What merging the valid answers gives, and what it leaves out.
fn write_merge(page: &mut String, merge: &MergeLine) {
    let _ = write!(
        page,
        "<h2>What the merged answer holds</h2>\n<div class=\"scroll\"><table>\n\
         <caption>The instances' valid answers, merged</caption>\n<tbody>\n\
         <tr><th scope=\"row\">Families</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Samples</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Families dropped for another type</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Repeated samples dropped</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Families left out of OpenMetrics answers</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Families named like promfetcher's own, left out</th><td>{}</td></tr>\n\
         </tbody>\n</table></div>\n",
        merge.counts.families,
        merge.counts.samples,
        merge.counts.type_conflicts,
        merge.counts.duplicate_series,
        merge.counts.left_out_of_openmetrics,
        merge.counts.promfetcher_families,
    );
    if merge.dropped.is_empty() {
        page.push_str("<p>\u{2714} The merge drops nothing.</p>\n");
    } else {
        page.push_str("<ul class=\"dropped\">\n");
        for line in &merge.dropped {
            let _ = writeln!(page, "<li>\u{2716} {}</li>", escape(line));
        }
        page.push_str("</ul>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::diagnosis::MergeDrops;
    use crate::http::diagnosis::{Failure, TableAge};

    const HOSTILE: &str = "<script>alert('x')</script>&\"";

    fn answer(failure: Option<Failure>) -> Answer {
        Answer {
            status: failure.is_none().then_some(200),
            content_type: Some(format!("text/plain{HOSTILE}")),
            format: Some("text"),
            bytes: Some(120),
            families: Some(3),
            samples: Some(7),
            failure,
            notes: vec![format!("note{HOSTILE}")],
        }
    }

    fn line(index: &str, failure: Option<Failure>) -> InstanceLine {
        InstanceLine {
            index: index.to_string(),
            address: format!("10.0.0.{index}:8080{HOSTILE}"),
            app_guid: "guid".to_string(),
            tls_server_name: Some(format!("tls{HOSTILE}")),
            path: "/metrics".to_string(),
            duration_seconds: 0.25,
            answer: answer(failure),
        }
    }

    fn diagnosis() -> Diagnosis {
        Diagnosis {
            app: format!("acme/dev/{HOSTILE}"),
            found_by: "names",
            route_table: TableAge {
                built_at_unix_seconds: 0.0,
                age_seconds: 12.0,
            },
            route_sources: vec![SourceFreshness {
                source: format!("gorouter{HOSTILE}"),
                lists_app: true,
                up: false,
                last_success_unix_seconds: None,
                seconds_since_success: None,
            }],
            metrics_paths: vec![PathChoice {
                app_guid: "guid".to_string(),
                app_name: format!("acme/dev/{HOSTILE}"),
                path: format!("/m{HOSTILE}"),
                source: "metric_path",
                why: format!("why{HOSTILE}"),
                binding_id: None,
                service_instance_id: None,
            }],
            instance_timeout_seconds: 9.5,
            instances_scraped: 2,
            instances_failed: 1,
            merge: MergeLine {
                counts: MergeDrops {
                    families: 4,
                    samples: 9,
                    type_conflicts: 1,
                    ..MergeDrops::default()
                },
                dropped: vec![format!("dropped{HOSTILE}")],
            },
            external_exporters: vec![ExporterLine {
                exporter: format!("db{HOSTILE}"),
                app_guid: "guid".to_string(),
                duration_seconds: 0.1,
                answer: answer(Some(Failure {
                    reason: "http_5xx",
                    explanation: "the exporter answered HTTP 503".to_string(),
                    next_check: "ask".to_string(),
                })),
            }],
            instances: vec![
                line("0", None),
                line(
                    "1",
                    Some(Failure {
                        reason: "connect",
                        explanation: format!("refused{HOSTILE}"),
                        next_check: format!("check{HOSTILE}"),
                    }),
                ),
            ],
        }
    }

    #[test]
    fn every_value_on_the_page_is_escaped() {
        let page = render(&diagnosis(), "https://pf.example.com/<b>");
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        assert!(!page.contains("('x')"), "{page}");
        // Each hostile value is there, escaped: app, address, TLS name, content type, path,
        // why, explanation, next check, note.
        let escaped = escape(HOSTILE);
        assert!(page.matches(escaped.as_str()).count() >= 16, "{page}");
    }

    #[test]
    fn the_page_says_ok_and_failed_in_words_with_a_row_per_instance() {
        let page = render(&diagnosis(), "https://pf.example.com");
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(page.contains("<title>Diagnosis of acme/dev/"));
        assert!(page.contains("1 of 2 instances gave no metrics."));
        assert!(page.contains("<tr id=\"instance-0\"><th scope=\"row\">0</th>"));
        assert!(page.contains("<tr id=\"instance-1\"><th scope=\"row\">1</th>"));
        assert!(page.contains("\u{2714} OK</td>"));
        assert!(page.contains("\u{2716} failed: connect</td>"));
        assert!(page.contains("<h3 id=\"failure-1\">Instance 1 ("));
        assert!(page.contains("<h2>External exporters</h2>"));
        assert!(page.contains("\u{2716} failed: http_5xx</td>"));
        assert!(page.contains("<a href=\"https://pf.example.com/doc#diagnosis\">"));
        assert!(
            !page.contains("<script") && !page.contains(" src="),
            "no script, no asset"
        );
    }
}

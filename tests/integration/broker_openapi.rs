//! schemathesis (from PyPI; scripts/test-all installs it in a venv under target/) against a
//! real promfetcher with the broker on SQLite, driven by the OpenAPI description the project
//! ships (docs/broker-openapi.yaml): generated and mutated requests to every broker route, with
//! and without the right credentials and version header. The test fails when any answer is a
//! 5xx, has a status, content type, header or body the description does not list, or when
//! schemathesis is missing.

use std::process::Command;

use crate::common::Harness;
use simulated_foundation::FoundationSpec;

/// The schemathesis executable: `PROMFETCHER_TEST_SCHEMATHESIS`, else the venv scripts/test-all
/// makes.
fn schemathesis() -> String {
    std::env::var("PROMFETCHER_TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/schemathesis/bin/schemathesis"
        )
        .to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis: run scripts/test-all"]
async fn schemathesis_finds_no_5xx_and_no_answer_outside_the_description() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let url = format!("{}/broker", h.base);
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/broker-openapi.yaml");
    let report = tempfile::tempdir().expect("report dir");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis())
            .args(["run", schema, "--url", &url, "--auth", "user:password"])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance",
            ])
            // bounded: 40 generated cases per operation and phase, one at a time, same seed
            .args(["--max-examples", "40", "--workers", "1", "--seed", "8"])
            .args(["--request-timeout", "10", "--no-color"])
            .arg("--report-dir")
            .arg(report.path())
            // its example database goes to the working directory: keep it out of the checkout
            .current_dir(report.path())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "schemathesis is required (scripts/test-all installs it in target/schemathesis): {e}"
                )
            })
    })
    .await
    .expect("schemathesis runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{said}"
    );
    // it did test every operation
    assert!(said.contains("10 selected / 10 total"), "{said}");
    println!("{said}");
    h.stop().await;
}

//! The command line as an operator uses it: `check-config` on good, bad and unknown keys, and
//! `store export|import` refusing a config whose database only the service could reach (their
//! round trips are in backup.rs).

use std::process::{Command, Output};

fn promfetcher(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promfetcher"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn write_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_masked() {
    let (_dir, path) = write_config(
        "gorouters:\n- host: 10.0.16.5\n  port: 8082\n  user: router-status\n  pass: hunter2\n\
         broker:\n  pass: broker-secret\ndb_conn: postgres://pf:db-secret@db:5432/pf\n",
    );
    let output = promfetcher(&["check-config", "-c", &path]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for secret in ["hunter2", "broker-secret", "db-secret"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
    }
    assert!(stdout.contains("host: 10.0.16.5"), "{stdout}");
    assert!(
        stdout.contains("postgres://pf:REDACTED@db:5432/pf"),
        "{stdout}"
    );
    // defaults of keys the file does not name are shown too
    assert!(stdout.contains("drain_timeout: 15s"), "{stdout}");
}

#[test]
fn check_config_fails_with_one_line_naming_the_key() {
    let (_dir, path) = write_config("port: 8085\nscrape:\n  timeout: soon\n");
    let output = promfetcher(&["-c", &path, "check-config"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("config key `scrape.timeout`"), "{stderr}");
}

#[test]
fn unknown_keys_are_a_warning_not_a_failure() {
    let (_dir, path) = write_config("port: 8085\nfrobnicate: true\n");
    let output = promfetcher(&["check-config", "-c", &path]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown config key `frobnicate` ignored"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let output = promfetcher(&["check-config", "-c", "/nonexistent/promfetcher.yml"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read config file /nonexistent/promfetcher.yml"),
        "{stderr}"
    );
}

#[test]
fn check_config_names_a_bad_external_exporter_and_hides_its_secret_params() {
    let (_dir, path) = write_config(
        "external_exporters:\n- name: sql\n  host: sql-exporter.example.com:9237\n  \
         params:\n    target: ['{{ .AppId }}']\n",
    );
    let output = promfetcher(&["check-config", "-c", &path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "config key `external_exporters[0].params.target[0]`: exporter \"sql\": \
             \"{{ .AppId }}\": unknown field .AppId; use one of {{ .AppID }}"
        ),
        "{stderr}"
    );

    let (_dir, path) = write_config(
        "external_exporters:\n- name: sql\n  host: sql-exporter.example.com:9237\n  \
         params:\n    target: ['{{ .AppID }}']\n    api_key: [exporter-secret]\n",
    );
    let output = promfetcher(&["check-config", "-c", &path]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(!stdout.contains("exporter-secret"), "{stdout}");
    assert!(stdout.contains("- '{{ .AppID }}'"), "{stdout}");
}

#[test]
fn store_commands_refuse_a_config_without_a_reachable_database() {
    let (_dir, path) = write_config("data_dir: \"\"\n");
    for action in ["export", "import"] {
        let output = promfetcher(&["store", action, "-c", &path]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{action}: {stderr}");
        assert!(stderr.contains("set data_dir (or db_conn)"), "{stderr}");
        assert!(output.stdout.is_empty(), "{action}");
    }
}

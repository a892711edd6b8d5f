//! promfetcher's integration tests, linked as one binary: each module is one area of the
//! service, tested against the real server on 127.0.0.1 port 0 (in this process, or the real
//! binary as a child process) and the simulated foundation; `common` is their shared harness.
//!
//! A test that needs a program from outside Rust is `#[ignore = "needs <program>: run
//! scripts/test-all"]`, so plain `cargo test` passes on a machine with only Rust and lists it as
//! ignored; `scripts/test-all` installs every such program and runs the ignored tests too
//! (`--include-ignored`), where a missing one fails the test with a message that names it.
//!
//! Every test shares this one process: none may change process-wide state (environment
//! variables, working directory, tracing subscriber, panic hook, signal handlers) in a way
//! another test could notice. The only globals set are rustls' default crypto provider, to the
//! same ring provider every time (`common::client`), and the soft limit on open files, which
//! the load test raises to the hard limit. Own metrics are per server, so no assertion on a
//! counter sees another test's traffic. libtest starts tests in name order, so the 60-second
//! load test (`reliability_load`, last by name) starts after every other test and runs all but
//! alone.

mod api;
mod architecture;
mod backup;
mod bosh;
mod bosh_alerts;
mod bosh_dashboards;
mod bosh_ops_files;
mod broker;
mod broker_openapi;
mod broker_races;
mod cli;
mod common;
mod corpus;
mod diagnosis;
mod external_exporters;
mod lifecycle;
mod logging;
mod metrics_auth;
mod nats;
mod ops;
mod own_metrics;
mod reliability_callers;
mod reliability_faults;
mod reliability_instances;
mod reliability_load;

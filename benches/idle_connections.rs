//! What the connections promfetcher keeps open to the instances it scraped cost in memory: the
//! real binary (release build) against the simulated foundation, with many apps of 10 instances
//! (500 series each), asked for each app once in rounds of more and more apps, as a Prometheus
//! server scraping a large foundation does within one scrape interval. After each round, once
//! the answers are sent and the process is quiet, it prints promfetcher's resident memory and
//! its open sockets; the growth per socket since the first round (16 apps) is what an idle
//! connection costs. Printed, never judged; one line per round (16, 64, 256 and `--apps` apps):
//!
//! `idle apps=<n> sockets=<n> rss_mib=<..> kib_per_socket_since_first=<..>`
//!
//! Run: `cargo bench --bench idle_connections` (about a minute); `--apps N` the largest round
//! (default 400, i.e. 4,000 instances; each instance is a listener in this process, so mind
//! `ulimit -n`), `--tls` instances that serve TLS (Cloud Foundry's instance identity
//! certificates), `--promfetcher PATH` another build.

use std::time::Duration;

use promfetcher::server::dev_mode::config_for_foundation;
use promfetcher_process::{BenchArgs, Process, Signal};
use simulated_foundation::{AppSpec, Foundation, FoundationSpec, InstanceSpec};

const INSTANCES_PER_APP: usize = 10;
const CALLERS: usize = 8;

fn main() {
    let args = BenchArgs::from_env();
    let apps: usize = args.number("--apps", 400);
    let binary = args.binary(env!("CARGO_BIN_EXE_promfetcher"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = args.has("--tls");
    runtime.block_on(run(&binary, apps, tls));
}

async fn run(binary: &str, apps: usize, tls: bool) {
    let mut instance = InstanceSpec::healthy().with_extra_series(485);
    if tls {
        instance = instance.with_tls();
    }
    let instances = vec![instance; INSTANCES_PER_APP];
    let names: Vec<String> = (0..apps).map(|i| format!("idle-{i}")).collect();
    let spec = names
        .iter()
        .fold(FoundationSpec::dev_default(), |spec, name| {
            spec.with_app(AppSpec::new("acme", "bench", name).with_instances(instances.clone()))
        });
    let foundation = Foundation::start(spec).await.expect("foundation");
    let config = config_for_foundation(&foundation, 0, 0);
    let mut promfetcher = Process::start(binary, &config);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CALLERS)
        .build()
        .expect("client");
    promfetcher.wait_ready(&client).await;
    let urls: Vec<String> = names
        .iter()
        .map(|name| format!("{}/v1/apps/acme/bench/{name}/metrics", promfetcher.api))
        .collect();

    // The first round brings the heap to its working size (eight merges at once); the growth
    // after it is the connections'.
    let mut rounds: Vec<usize> = [16, 64, 256].into_iter().filter(|&n| n < apps).collect();
    rounds.push(apps);
    let mut first: Option<(usize, u64)> = None;
    for round in rounds {
        scrape_each(&client, &urls[..round]).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let sockets = promfetcher.open_sockets();
        let rss = promfetcher.rss_kib();
        let per_socket = match first {
            Some((sockets_before, rss_before)) if sockets > sockets_before => format!(
                "{:.1}",
                (rss as f64 - rss_before as f64) / (sockets - sockets_before) as f64
            ),
            _ => "-".into(),
        };
        println!(
            "idle apps={round} sockets={sockets} rss_mib={:.1} kib_per_socket_since_first={per_socket}",
            rss as f64 / 1024.0
        );
        first.get_or_insert((sockets, rss));
    }
    promfetcher.signal(Signal::TERM);
    let _ = tokio::task::spawn_blocking(move || promfetcher.wait_exit()).await;
    foundation.shutdown().await;
}

/// Asks for every app in `urls` once, `CALLERS` at a time, and reads each answer whole.
async fn scrape_each(client: &reqwest::Client, urls: &[String]) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let callers = (0..CALLERS).map(|_| async {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(url) = urls.get(i) else { break };
            let response = client
                .get(url)
                .header("Accept-Encoding", "gzip")
                .send()
                .await
                .expect("promfetcher answers");
            assert_eq!(response.status(), 200, "{url}");
            response.bytes().await.expect("answer body");
        }
    });
    futures_util::future::join_all(callers).await;
}

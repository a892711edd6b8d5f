//! The simulated foundation's route registrars on NATS: every app's endpoints encoded byte for
//! byte as route-emitter (Diego apps) and route-registrar (platform routes) publish them, and a
//! [`DevRegistrar`] that publishes them like those registrars do: all at once when it starts and
//! when a router sends `router.start`, then again every heartbeat interval. Tests can unregister
//! an instance or silence its heartbeat. It talks NATS only; it knows nothing of promfetcher.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::gorouter::write_go_string;

/// One instance's registration under one route (route-emitter sends one URI per message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The app's name, as in its [`super::AppSpec`].
    pub app: String,
    /// The instance index.
    pub index: usize,
    /// The `router.register` body, exactly as the registrar publishes it.
    pub register: String,
    /// The `router.unregister` body (host, ports and uris only).
    pub unregister: String,
}

/// What a route-emitter registration says about one instance.
pub(super) struct EmitterFields<'a> {
    pub host: &'a str,
    pub port: u16,
    /// Set for a TLS instance: gorouter then connects to this port with TLS.
    pub tls_port: Option<u16>,
    pub uri: &'a str,
    pub app_guid: &'a str,
    pub instance_guid: &'a str,
    pub index: usize,
    pub tags: &'a BTreeMap<String, String>,
}

/// A route-emitter `router.register` body: field order `host, port, tls_port?, uris, protocol,
/// app, private_instance_id, private_instance_index, server_cert_domain_san, tags,
/// availability_zone`, compact, as route-emitter's Go encoder writes it.
pub(super) fn route_emitter_register(f: &EmitterFields<'_>) -> String {
    let mut out = addressing(f.host, f.port, f.tls_port, f.uri);
    out.pop(); // reopen the object
    out.push_str(",\"protocol\":\"http1\",\"app\":");
    write_go_string(&mut out, f.app_guid);
    out.push_str(",\"private_instance_id\":");
    write_go_string(&mut out, f.instance_guid);
    out.push_str(",\"private_instance_index\":");
    write_go_string(&mut out, &f.index.to_string());
    out.push_str(",\"server_cert_domain_san\":");
    write_go_string(&mut out, f.instance_guid);
    out.push_str(",\"tags\":{");
    for (i, (key, value)) in f.tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_string(&mut out, key);
        out.push(':');
        write_go_string(&mut out, value);
    }
    out.push_str("},\"availability_zone\":\"z1\"}");
    out
}

/// A route-registrar `router.register` body for a platform route: field order `uris, host,
/// port, tags (null), private_instance_id`.
pub(super) fn route_registrar_register(
    host: &str,
    port: u16,
    uri: &str,
    private_instance_id: &str,
) -> String {
    let mut out = String::from("{\"uris\":[");
    write_go_string(&mut out, uri);
    out.push_str("],\"host\":");
    write_go_string(&mut out, host);
    out.push_str(&format!(
        ",\"port\":{port},\"tags\":null,\"private_instance_id\":"
    ));
    write_go_string(&mut out, private_instance_id);
    out.push('}');
    out
}

/// The `router.unregister` body both registrars send: `host, port, tls_port?, uris`.
pub(super) fn unregister_body(host: &str, port: u16, tls_port: Option<u16>, uri: &str) -> String {
    addressing(host, port, tls_port, uri)
}

fn addressing(host: &str, port: u16, tls_port: Option<u16>, uri: &str) -> String {
    let mut out = String::from("{\"host\":");
    write_go_string(&mut out, host);
    out.push_str(&format!(",\"port\":{port}"));
    if let Some(tls_port) = tls_port {
        out.push_str(&format!(",\"tls_port\":{tls_port}"));
    }
    out.push_str(",\"uris\":[");
    write_go_string(&mut out, uri);
    out.push_str("]}");
    out
}

/// Publishes a foundation's registrations on NATS as the registrars do, until dropped.
pub struct DevRegistrar {
    client: async_nats::Client,
    active: Arc<Mutex<Vec<Registration>>>,
    starts_seen: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl DevRegistrar {
    /// Subscribes `router.start` on `client`, publishes every registration, and keeps publishing
    /// them every `heartbeat` and after each `router.start`.
    pub async fn start(
        client: async_nats::Client,
        registrations: Vec<Registration>,
        heartbeat: Duration,
    ) -> Result<DevRegistrar, async_nats::Error> {
        let mut starts = client.subscribe("router.start").await?;
        let active = Arc::new(Mutex::new(registrations));
        let starts_seen = Arc::new(AtomicUsize::new(0));
        publish_all(&client, &active).await?;
        let task = {
            let (client, active, starts_seen) =
                (client.clone(), active.clone(), starts_seen.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(heartbeat);
                tick.tick().await;
                loop {
                    tokio::select! {
                        start = starts.next() => match start {
                            Some(_) => { starts_seen.fetch_add(1, Ordering::SeqCst); }
                            None => return,
                        },
                        _ = tick.tick() => {}
                    }
                    // A failed publish (NATS down) is retried at the next heartbeat.
                    let _ = publish_all(&client, &active).await;
                }
            })
        };
        Ok(DevRegistrar {
            client,
            active,
            starts_seen,
            task,
        })
    }

    /// How many `router.start` messages this registrar received.
    pub fn starts_seen(&self) -> usize {
        self.starts_seen.load(Ordering::SeqCst)
    }

    /// Stops re-registering instance `index` of `app` without unregistering it, as a registrar
    /// that died would; returns how many registrations went silent.
    pub fn silence(&self, app: &str, index: usize) -> usize {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let before = active.len();
        active.retain(|r| !(r.app == app && r.index == index));
        before - active.len()
    }

    /// Unregisters instance `index` of `app` under every route and stops re-registering it.
    pub async fn unregister(&self, app: &str, index: usize) -> Result<(), async_nats::Error> {
        let removed: Vec<Registration> = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            let (removed, kept) = active
                .drain(..)
                .partition(|r| r.app == app && r.index == index);
            *active = kept;
            removed
        };
        for registration in removed {
            self.client
                .publish("router.unregister", registration.unregister.into())
                .await?;
        }
        self.client.flush().await?;
        Ok(())
    }

    /// Publishes every active registration now.
    pub async fn publish_now(&self) -> Result<(), async_nats::Error> {
        publish_all(&self.client, &self.active).await
    }
}

impl Drop for DevRegistrar {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn publish_all(
    client: &async_nats::Client,
    active: &Mutex<Vec<Registration>>,
) -> Result<(), async_nats::Error> {
    let bodies: Vec<String> = active
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|r| r.register.clone())
        .collect();
    for body in bodies {
        client.publish("router.register", body.into()).await?;
    }
    client.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_emitter_body_matches_the_reference_byte_for_byte() {
        let tags: BTreeMap<String, String> = [
            ("app_id", "8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b"),
            ("app_name", "myapp"),
            ("component", "route-emitter"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = route_emitter_register(&EmitterFields {
            host: "10.0.1.12",
            port: 61012,
            tls_port: Some(61014),
            uri: "myapp.apps.example.com",
            app_guid: "8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b",
            instance_guid: "3e1c9b5a-7d2f-4a8e-9b0c-1d2e",
            index: 0,
            tags: &tags,
        });
        assert_eq!(
            body,
            r#"{"host":"10.0.1.12","port":61012,"tls_port":61014,"uris":["myapp.apps.example.com"],"protocol":"http1","app":"8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b","private_instance_id":"3e1c9b5a-7d2f-4a8e-9b0c-1d2e","private_instance_index":"0","server_cert_domain_san":"3e1c9b5a-7d2f-4a8e-9b0c-1d2e","tags":{"app_id":"8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b","app_name":"myapp","component":"route-emitter"},"availability_zone":"z1"}"#
        );
        assert_eq!(
            unregister_body("10.0.1.12", 61012, Some(61014), "myapp.apps.example.com"),
            r#"{"host":"10.0.1.12","port":61012,"tls_port":61014,"uris":["myapp.apps.example.com"]}"#
        );
    }

    #[test]
    fn route_registrar_body_has_its_field_order() {
        assert_eq!(
            route_registrar_register("10.0.1.10", 9022, "api.sys.example.com", "4b0e1f6a"),
            r#"{"uris":["api.sys.example.com"],"host":"10.0.1.10","port":9022,"tags":null,"private_instance_id":"4b0e1f6a"}"#
        );
    }
}

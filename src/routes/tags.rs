//! The Cloud Foundry tags of a route endpoint, as gorouter's `/routes` and route-emitter's
//! registrations send them (`app_id`, `organization_name`, `instance_id`, ...). Only the tags
//! promfetcher uses are kept, typed, and those naming the app can be shared: through an
//! [`AppInterner`], every endpoint of one app holds the same [`AppTags`]. Of a large foundation's
//! route table the tags are most of the bytes (route-emitter sends twelve per endpoint), so
//! this is where its memory is saved. It reads; it decides nothing about lookups.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The tags that name an endpoint's app: the same for all its instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AppTags {
    pub organization_id: String,
    pub space_id: String,
    pub app_id: String,
    pub organization_name: String,
    pub space_name: String,
    pub app_name: String,
    /// `web`, `worker`, ...
    pub process_type: String,
}

/// The tags of one endpoint that promfetcher uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTags {
    pub app: Arc<AppTags>,
    /// `instance_id`: the instance index.
    pub instance_id: String,
}

/// A set of app tags that equal ones are shared from: [`AppInterner::share`] gives back the one
/// met first. One serves every route source, so that an app's tags are held once however many
/// sources list it.
#[derive(Debug, Default)]
pub struct AppInterner {
    known: Mutex<HashSet<Arc<AppTags>>>,
}

impl AppInterner {
    /// `app`, or the equal one met before.
    pub fn share(&self, app: Arc<AppTags>) -> Arc<AppTags> {
        let mut known = self.known();
        match known.get(&app) {
            Some(known) => known.clone(),
            None => {
                known.insert(app.clone());
                app
            }
        }
    }

    /// Drops the app tags no endpoint holds any more.
    pub fn forget_unused(&self) {
        self.known().retain(|app| Arc::strong_count(app) > 1);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<Arc<AppTags>>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<'de> Deserialize<'de> for RouteTags {
    /// A JSON object of string values (any other value is an error, as for Go's
    /// `map[string]string`); tags promfetcher does not use are read and dropped.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor;

        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = RouteTags;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string tags")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RouteTags, A::Error> {
                let mut app = AppTags::default();
                let mut instance_id = String::new();
                while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value: String = map.next_value()?;
                    let field = match name.as_ref() {
                        "organization_id" => &mut app.organization_id,
                        "space_id" => &mut app.space_id,
                        "app_id" => &mut app.app_id,
                        "organization_name" => &mut app.organization_name,
                        "space_name" => &mut app.space_name,
                        "app_name" => &mut app.app_name,
                        "process_type" => &mut app.process_type,
                        "instance_id" => &mut instance_id,
                        _ => continue,
                    };
                    *field = value;
                }
                Ok(RouteTags {
                    app: Arc::new(app),
                    instance_id,
                })
            }
        }

        deserializer.deserialize_map(TagsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_INSTANCES: &str = r#"[
        {"app_id":"a1","app_name":"shop","component":"route-emitter","instance_id":"0",
         "organization_id":"o1","organization_name":"acme","process_type":"web",
         "space_id":"s1","space_name":"dev","source_id":"a1"},
        {"app_id":"a1","app_name":"shop","component":"route-emitter","instance_id":"1",
         "organization_id":"o1","organization_name":"acme","process_type":"web",
         "space_id":"s1","space_name":"dev","source_id":"a1"}
    ]"#;

    #[test]
    fn the_tags_promfetcher_uses_are_read_and_the_others_dropped() {
        let tags: Vec<RouteTags> = serde_json::from_str(TWO_INSTANCES).unwrap();
        assert_eq!(tags[1].instance_id, "1");
        assert_eq!(tags[0].app.app_name, "shop");
        assert_eq!(tags[0].app.organization_name, "acme");
        assert_eq!(tags[0].app.process_type, "web");
        assert_eq!(tags[0].app, tags[1].app);
    }

    #[test]
    fn the_interner_gives_the_app_tags_met_first_until_none_holds_them() {
        let tags: Vec<RouteTags> = serde_json::from_str(TWO_INSTANCES).unwrap();
        let interner = AppInterner::default();
        let first = interner.share(tags[0].app.clone());
        let second = interner.share(tags[1].app.clone());
        assert!(Arc::ptr_eq(&first, &second) && Arc::ptr_eq(&first, &tags[0].app));
        drop((tags, first, second));
        interner.forget_unused();
        assert!(interner.known().is_empty());
    }

    #[test]
    fn a_tag_that_is_not_a_string_is_refused() {
        assert!(serde_json::from_str::<RouteTags>(r#"{"instance_id":1}"#).is_err());
        assert!(serde_json::from_str::<RouteTags>(r#"{"foo":true}"#).is_err());
    }
}

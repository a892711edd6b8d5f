//! The app a caller names (`org/space/app`, an app GUID or a route, from the URL path or from
//! `?app=` / `?route_url=`), checked before it is looked up. The value is only ever a key into
//! the route table, never part of a URL, so it cannot send a request anywhere; this check makes
//! values that cannot name an app or a route (other hosts, schemes, path tricks, control
//! characters, huge values) a clear `400` instead of a misleading `404`. No I/O, no lookup.

/// Longest accepted app value, in bytes: three Cloud Foundry names of 255 bytes, or a route
/// of a 253-byte host and its path, fit with room to spare.
pub const MAX_APP_VALUE_LEN: usize = 1024;

/// Why an app value was refused. Displays as `invalid app: <reason>`, on one line.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid app: {reason}")]
pub struct InvalidAppValue {
    reason: String,
}

impl InvalidAppValue {
    fn new(reason: impl Into<String>) -> InvalidAppValue {
        InvalidAppValue {
            reason: reason.into(),
        }
    }
}

/// Accepts `value` when it could name an app or a route: at most [`MAX_APP_VALUE_LEN`] bytes,
/// no control character or backslash, no scheme, no empty, `.` or `..` segment; and, unless
/// it has the three segments of `org/space/app` names (which may hold any printable
/// character), no `@` or `:` in its first segment, where a route has its host.
pub fn check(value: &str) -> Result<(), InvalidAppValue> {
    if value.len() > MAX_APP_VALUE_LEN {
        return Err(InvalidAppValue::new(format!(
            "the value is longer than {MAX_APP_VALUE_LEN} bytes"
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(InvalidAppValue::new(format!(
            "control character U+{:04X} is not allowed (CR, LF and TAB included)",
            u32::from(c)
        )));
    }
    if value.contains('\\') {
        return Err(InvalidAppValue::new("backslash is not allowed"));
    }
    if value.contains("://") {
        return Err(InvalidAppValue::new(
            "a scheme ('http://') is not allowed: name the app (org/space/app), its GUID or its \
             route, such as shop.apps.example.com",
        ));
    }
    let segments: Vec<&str> = value.trim_end_matches('/').split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(InvalidAppValue::new(
            "empty segment ('//' or a leading '/'): name the app as org/space/app or its route \
             as host or host/path",
        ));
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(InvalidAppValue::new(
            "'.' and '..' segments are not allowed",
        ));
    }
    if segments.len() != 3 && segments[0].contains(['@', ':']) {
        return Err(InvalidAppValue::new(
            "'@' or ':' in a route's host is not allowed: a route has no user or port, such as \
             shop.apps.example.com",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_app_value_is_accepted() {
        for value in [
            "acme/dev/shop",
            "acme/dev/my app (blue)",
            "a@corp/dev:1/shop@2",
            "8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b",
            "shop.apps.example.com",
            "shop.apps.example.com/api",
            "shop.apps.example.com/api/",
            "shop.apps.example.com/api/v1/x",
        ] {
            assert_eq!(check(value), Ok(()), "{value}");
        }
        assert_eq!(check(&"a".repeat(MAX_APP_VALUE_LEN)), Ok(()));
    }

    #[test]
    fn values_aimed_elsewhere_are_refused_with_a_reason() {
        let cases = [
            ("@evil.example", "'@' or ':'"),
            ("evil.example:8080", "'@' or ':'"),
            ("user@evil.example/x", "'@' or ':'"),
            ("//evil.example", "empty segment"),
            ("/acme/dev/shop", "empty segment"),
            ("shop.apps.example.com//x", "empty segment"),
            ("http://evil.example/", "scheme"),
            ("evil.example\\x", "backslash"),
            ("shop\r\nHost: evil", "U+000D"),
            ("shop\0", "U+0000"),
            ("../../etc", "'..'"),
            ("shop.apps.example.com/./x", "'.'"),
        ];
        for (value, says) in cases {
            let error = check(value).expect_err(value);
            let text = error.to_string();
            assert!(text.starts_with("invalid app: "), "{text}");
            assert!(text.contains(says), "{value:?}: {text}");
            assert!(!text.contains('\n'));
        }
        let long = "a".repeat(MAX_APP_VALUE_LEN + 1);
        assert!(check(&long).is_err());
    }
}

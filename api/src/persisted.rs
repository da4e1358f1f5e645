//! Automatic persisted queries (Apollo's APQ protocol, design/api.md "HTTP").
//!
//! A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}` and no
//! query text; if the server knows the hash it runs the text it stored, otherwise it answers
//! `PERSISTED_QUERY_NOT_FOUND` and the client repeats the request with the text, which
//! registers it. Over GET this keeps URLs short and cacheable by CDNs and browsers.
//!
//! Why the not-found answer is HTTP 200: Apollo Client's persisted-query link treats a 400 or
//! 500 as "the server does not support APQ" and stops using it for the page's lifetime, so a
//! 4xx would quietly turn the protocol off for the most common client. The answer carries
//! `Cache-Control: private, no-cache, must-revalidate` so that no cache keeps the miss.
//!
//! A registration is accepted only when the text hashes to the hash sent, so one client
//! cannot plant a different query under a hash another client will send. The store is
//! bounded by the total size of the texts it holds (moka's TinyLFU admission: a flood of
//! one-off registrations does not push out the texts clients send all the time).

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Total bytes of query text kept.
const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;

/// What the request's `persistedQuery` extension asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No `persistedQuery` extension: an ordinary request.
    NotPersisted,
    /// The hash was known (or just registered): run this text.
    Found(Arc<str>),
    /// Hash only, and not known here.
    NotFound,
    /// The extension is malformed, or the text does not match the hash.
    Invalid(String),
}

/// Query texts by their SHA-256.
pub(crate) struct Persisted {
    texts: moka::sync::Cache<[u8; 32], Arc<str>>,
}

impl Default for Persisted {
    fn default() -> Self {
        Persisted {
            texts: moka::sync::Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|_, text: &Arc<str>| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .build(),
        }
    }
}

impl Persisted {
    /// Resolves the request's `persistedQuery` extension against the store, registering the
    /// text when the request carries one that matches its hash.
    pub fn resolve(&self, req: &async_graphql::Request) -> Lookup {
        let Some(ext) = req.extensions.0.get("persistedQuery") else {
            return Lookup::NotPersisted;
        };
        let hash = match parse_extension(ext) {
            Ok(h) => h,
            Err(why) => return Lookup::Invalid(why),
        };
        if req.query.is_empty() {
            return match self.texts.get(&hash) {
                Some(text) => Lookup::Found(text),
                None => Lookup::NotFound,
            };
        }
        let actual: [u8; 32] = Sha256::digest(req.query.as_bytes()).into();
        if actual != hash {
            return Lookup::Invalid(format!(
                "persistedQuery.sha256Hash is {}, but the query text hashes to {}",
                hex::encode(hash),
                hex::encode(actual)
            ));
        }
        let text: Arc<str> = Arc::from(req.query.as_str());
        self.texts.insert(hash, text.clone());
        Lookup::Found(text)
    }
}

/// `{"version": 1, "sha256Hash": "<64 hex digits>"}` → the hash.
fn parse_extension(ext: &async_graphql::Value) -> Result<[u8; 32], String> {
    use async_graphql::Value;
    let Value::Object(fields) = ext else {
        return Err("extensions.persistedQuery must be an object {version, sha256Hash}".into());
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => {
            return Err(format!(
                "persistedQuery.version {other} is not supported; this server speaks version 1"
            ))
        }
        None => {
            return Err("persistedQuery.version is missing; this server speaks version 1".into())
        }
    }
    let Some(Value::String(hex_hash)) = fields.get("sha256Hash") else {
        return Err("persistedQuery.sha256Hash is missing or not a string".into());
    };
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_hash.to_ascii_lowercase(), &mut hash).map_err(|_| {
        format!(
            "persistedQuery.sha256Hash must be 64 hexadecimal digits; got {} characters",
            hex_hash.chars().count()
        )
    })?;
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, ext: serde_json::Value) -> async_graphql::Request {
        let mut r = async_graphql::Request::new(query);
        r.extensions = serde_json::from_value(serde_json::json!({ "persistedQuery": ext }))
            .expect("extensions");
        r
    }

    fn sha(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn hash_first_then_text_then_hash_again() {
        let store = Persisted::default();
        let q = "{ _meta { changeLogSeq } }";
        let ext = serde_json::json!({"version": 1, "sha256Hash": sha(q)});
        assert_eq!(store.resolve(&request("", ext.clone())), Lookup::NotFound);
        assert_eq!(
            store.resolve(&request(q, ext.clone())),
            Lookup::Found(Arc::from(q))
        );
        assert_eq!(
            store.resolve(&request("", ext)),
            Lookup::Found(Arc::from(q))
        );
        // Upper-case hex is the same hash.
        let upper = serde_json::json!({"version": 1, "sha256Hash": sha(q).to_uppercase()});
        assert_eq!(
            store.resolve(&request("", upper)),
            Lookup::Found(Arc::from(q))
        );
    }

    #[test]
    fn a_text_is_only_stored_under_its_own_hash() {
        let store = Persisted::default();
        let planted = serde_json::json!({"version": 1, "sha256Hash": sha("{ a }")});
        let got = store.resolve(&request("{ b }", planted.clone()));
        assert!(matches!(got, Lookup::Invalid(m) if m.contains("hashes to")));
        assert_eq!(store.resolve(&request("", planted)), Lookup::NotFound);
    }

    #[test]
    fn malformed_extensions_say_what_is_wrong() {
        let store = Persisted::default();
        for (ext, needle) in [
            (serde_json::json!("abc"), "must be an object"),
            (
                serde_json::json!({"sha256Hash": sha("x")}),
                "version is missing",
            ),
            (
                serde_json::json!({"version": 2, "sha256Hash": sha("x")}),
                "version 2 is not supported",
            ),
            (serde_json::json!({"version": 1}), "sha256Hash is missing"),
            (
                serde_json::json!({"version": 1, "sha256Hash": "zz"}),
                "64 hexadecimal digits; got 2",
            ),
        ] {
            match store.resolve(&request("", ext.clone())) {
                Lookup::Invalid(m) => assert!(m.contains(needle), "{ext}: {m}"),
                other => panic!("{ext}: {other:?}"),
            }
        }
        assert_eq!(
            store.resolve(&async_graphql::Request::new("{ a }")),
            Lookup::NotPersisted
        );
    }
}

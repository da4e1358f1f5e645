//! The web pages landql serves — landing, citizen search, property, verifier, GraphiQL, status —
//! as built by `npm run build` into `dist/` and embedded here at compile time.
//!
//! `dist/` is committed, so building landql never needs Node; CI rebuilds it from the
//! sources and fails when the result differs from what is committed. This crate only hands
//! out bytes; `api` decides routes and headers.
//!
//! Layout of `dist/`: one HTML file per page at the top, everything they load under
//! `assets/` with a content hash in its name (so it may be cached forever), and beside each
//! text file of 1 KiB or more a brotli copy `<name>.br` made at build time.

use std::borrow::Cow;

#[derive(rust_embed::RustEmbed)]
#[folder = "dist/"]
struct Dist;

/// The pages, by the route that serves them.
pub const PAGES: &[(&str, &str)] = &[
    ("/", "index.html"),
    ("/search", "search.html"),
    ("/property/{id}", "property.html"),
    ("/verify", "verify.html"),
    ("/graphiql", "graphiql.html"),
    ("/status", "status.html"),
];

/// One built file.
pub struct File {
    /// The bytes as built.
    pub raw: Cow<'static, [u8]>,
    /// The same, brotli-compressed at build time, when that was worth it.
    pub brotli: Option<Cow<'static, [u8]>>,
    /// Its media type, from its extension.
    pub content_type: &'static str,
    /// Hex SHA-256 of `raw`, for an ETag.
    pub sha256: String,
}

/// The file at `path` inside `dist/` (`index.html`, `assets/search-1a2b3c.js`), if built.
/// `.br` copies are not files of their own here: they come with their original.
pub fn file(path: &str) -> Option<File> {
    if path.ends_with(".br") {
        return None;
    }
    let f = Dist::get(path)?;
    Some(File {
        sha256: f
            .metadata
            .sha256_hash()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        raw: f.data,
        brotli: Dist::get(&format!("{path}.br")).map(|b| b.data),
        content_type: content_type(path),
    })
}

/// Every built file's path (originals only), for tests and reports.
pub fn paths() -> impl Iterator<Item = String> {
    Dist::iter()
        .filter(|p| !p.ends_with(".br"))
        .map(Cow::into_owned)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("ttf") => "font/ttf",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("wasm") => "application/wasm",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_built_and_every_asset_is_content_hashed() {
        for (_, page) in PAGES {
            let f = file(page).unwrap_or_else(|| {
                panic!("dist/{page} missing: run `npm run build` in playground/")
            });
            assert_eq!(f.content_type, "text/html; charset=utf-8");
        }
        for path in paths() {
            if let Some(name) = path.strip_prefix("assets/") {
                // name-HASH.ext: Vite's content hash, 8 characters of base64url (which may
                // contain '-' itself).
                let stem = name.rsplit_once('.').map_or(name, |(s, _)| s).as_bytes();
                let hashed = stem.len() > 9
                    && stem[stem.len() - 9] == b'-'
                    && stem[stem.len() - 8..]
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
                assert!(hashed, "{path} has no content hash in its name");
            } else {
                assert!(
                    path.ends_with(".html") || path.ends_with(".txt"),
                    "{path} is outside assets/"
                );
            }
        }
    }

    #[test]
    fn every_brotli_copy_decodes_to_its_original() {
        // A stale copy (from another build) would serve different code to br clients.
        let mut checked = 0;
        for f in paths().filter_map(|p| file(&p)) {
            let Some(br) = f.brotli else { continue };
            let mut out = Vec::new();
            brotli_decompressor::BrotliDecompress(&mut &br[..], &mut out).expect("valid brotli");
            assert!(out == f.raw[..], "a .br copy differs from its original");
            checked += 1;
        }
        assert!(checked > 0, "no compressed file in dist/");
    }
}

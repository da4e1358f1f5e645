//! A bound on how deeply a query text nests, checked before anything parses it.
//!
//! async-graphql's parser limits how deep selection sets nest, but not values: it reads a
//! list or input object argument (`[[[[…]]]]`, `{a: {a: …}}`) by recursion with no limit,
//! and a query of a few kilobytes of brackets overflows the 2 MiB stack of a tokio worker —
//! which aborts the whole API process, not just the request (found by the
//! `graphql_request` fuzz target; README, "Fuzzing"). So every text is measured by a
//! cheap scan first, and one that nests deeper than any real query is refused as
//! QUERY_TOO_COMPLEX without being parsed.

use async_graphql::ServerError;

use crate::codes::{self, Code};

/// Deepest bracket nesting — `{`, `[` and `(` together — a query text may have. The deepest
/// real queries, introspection at 16 selection levels with a few levels of arguments, stay
/// well below it; the parser recurses safely far beyond it.
pub(crate) const MAX_NESTING: usize = 64;

/// The deepest nesting of `{`, `[` and `(` in a GraphQL text, not counting what is inside
/// strings, block strings and comments. Mismatched brackets are the parser's business; this
/// counts openings minus closings, never below zero.
pub(crate) fn nesting(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped delimiter inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// Refuses a text that nests deeper than [`MAX_NESTING`], naming the limit.
pub(crate) fn check(text: &str) -> Result<(), ServerError> {
    let n = nesting(text);
    if n > MAX_NESTING {
        return Err(codes::error(
            Code::QueryTooComplex,
            format!("the query nests brackets {n} deep; the limit is {MAX_NESTING}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_outside_strings_and_comments() {
        assert_eq!(nesting(""), 0);
        assert_eq!(nesting("{ a { b(x: [1, {c: 2}]) } }"), 5);
        assert_eq!(nesting("{ a(s: \"[[[[\\\"{{\") }"), 2);
        assert_eq!(nesting("{ a(s: \"\"\"[[[ \\\"\"\" {{{ \"\"\") }"), 2);
        assert_eq!(nesting("# [[[[[\n{ a }"), 1);
        assert_eq!(nesting("}}}}{ a }"), 1);
        assert_eq!(nesting("{ a(s: \"unterminated"), 2);
    }

    /// The fuzz finding: a list argument nested a few thousand deep overflowed the stack
    /// inside async-graphql's parser. It is now refused before parsing, on a stack as small
    /// as a tokio worker's.
    #[test]
    fn deeply_nested_values_are_refused_before_parsing() {
        for open in ["[", "{a:"] {
            let close = if open == "[" { "]" } else { "}" };
            let n = 20_000;
            let text = format!("{{ a(x: {}1{}) }}", open.repeat(n), close.repeat(n));
            let refused = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || check(&text).err().map(|e| e.message))
                .unwrap()
                .join()
                .unwrap();
            assert!(refused.unwrap().contains("limit is 64"));
        }
        let ok = format!("{{ a(x: {}1{}) }}", "[".repeat(40), "]".repeat(40));
        assert!(check(&ok).is_ok());
        assert!(async_graphql::parser::parse_query(&ok).is_ok());
    }
}

//! Error codes (design/api.md): every error a resolver returns carries `extensions.code`,
//! and its message says what is wrong without internals (no SQL, paths or panics).

use async_graphql::{Error, ErrorExtensions};

/// The `extensions.code` values this crate produces. (The API adds the HTTP-level ones.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadUserInput,
    LedgerUnavailable,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::LedgerUnavailable => "LEDGER_UNAVAILABLE",
            Code::Internal => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// An error the client caused, with a message that says what to fix.
pub(crate) fn bad_input(message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", Code::BadUserInput.as_str()))
}

/// The ledger could not answer within the deadline.
pub(crate) fn ledger_unavailable(what: &str) -> Error {
    Error::new(format!(
        "the ledger did not answer ({what}); try again, or read with consistency: REPLICA"
    ))
    .extend_with(|_, e| e.set("code", Code::LedgerUnavailable.as_str()))
}

/// Our fault. The cause goes to the log with an id; the client gets only the id.
pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Error {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let incident = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::error!(incident, error = %cause, "internal error while answering a query");
    Error::new(format!(
        "internal error (incident {incident}); it has been logged"
    ))
    .extend_with(|_, e| e.set("code", Code::Internal.as_str()))
}

/// Parses a property ID argument, or says exactly which part is wrong.
pub(crate) fn parse_id(id: &str) -> Result<ledger::PropertyId, Error> {
    id.parse()
        .map_err(|e: ledger::id::IdError| bad_input(format!("invalid property ID: {e}")))
}

/// A replica read failure → an internal error (logged, not shown).
pub(crate) fn db_error(e: crate::db::DbError) -> Error {
    internal(&e)
}

//! Error codes (design/api.md): every error a resolver returns carries `extensions.code`,
//! and its message says what is wrong without internals (no SQL, paths or panics).

use async_graphql::{Error, ErrorExtensions};

/// The `extensions.code` values this crate produces. (The API adds the HTTP-level ones.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadUserInput,
    LedgerUnavailable,
    /// A read with consistency REPLICA asked for a block the replica has not applied yet.
    ReplicaBehind,
    /// A bearer token that is not valid (the API refuses the request with HTTP 401).
    Unauthenticated,
    /// The caller's role may not read this field.
    Forbidden,
    /// The database cancelled a statement at the request time limit.
    RequestTimeout,
    /// An anonymous caller read past the first page of a list that shows owner names
    /// without narrowing it to a village or survey number (`list_depth`).
    NarrowOrSignIn,
    /// An anonymous caller's daily allowance of listed records is spent (`list_quota`).
    DailyListLimit,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::LedgerUnavailable => "LEDGER_UNAVAILABLE",
            Code::ReplicaBehind => "REPLICA_BEHIND",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::RequestTimeout => "REQUEST_TIMEOUT",
            Code::NarrowOrSignIn => "NARROW_OR_SIGN_IN",
            Code::DailyListLimit => "DAILY_LIST_LIMIT",
            Code::Internal => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// An error the client caused, with a message that says what to fix.
pub(crate) fn bad_input(message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", Code::BadUserInput.as_str()))
}

/// The caller's role may not read this; the message says which role would.
pub(crate) fn forbidden(message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", Code::Forbidden.as_str()))
}

/// The ledger could not answer within the deadline.
pub(crate) fn ledger_unavailable(what: &str) -> Error {
    Error::new(format!(
        "the ledger did not answer ({what}); try again, or read with consistency: REPLICA"
    ))
    .extend_with(|_, e| e.set("code", Code::LedgerUnavailable.as_str()))
}

/// A REPLICA read of a block the replica has not applied: says how far it has got.
pub(crate) fn replica_behind(channel: &str, applied: Option<i64>, block: i64) -> Error {
    let got = match applied {
        Some(a) => format!("has applied channel {channel} up to block {a}"),
        None => format!("has not applied any block of channel {channel}"),
    };
    Error::new(format!(
        "the replica {got}, not block {block} yet; ask with consistency FRESH or LEDGER to read the ledger's history"
    ))
    .extend_with(|_, e| e.set("code", Code::ReplicaBehind.as_str()))
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

/// The `extensions.code` of an error this crate made.
pub(crate) fn code_of(e: &Error) -> Option<&str> {
    match e.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Parses a property ID argument, or says exactly which part is wrong.
pub(crate) fn parse_id(id: &str) -> Result<ledger::PropertyId, Error> {
    id.parse()
        .map_err(|e: ledger::id::IdError| bad_input(format!("invalid property ID: {e}")))
}

/// A replica read failure → an internal error (logged, not shown); except a statement the
/// database cancelled at the request time limit (SQLSTATE 57014, `statement_timeout` of the
/// API's request pool), which is the request being too slow, not our fault.
pub(crate) fn db_error(e: crate::db::DbError) -> Error {
    if let Some(sqlx::Error::Database(d)) = e.sql() {
        if d.code().as_deref() == Some("57014") {
            return Error::new(
                "the request took longer than its time limit; the database query was cancelled",
            )
            .extend_with(|_, e| e.set("code", Code::RequestTimeout.as_str()));
        }
    }
    internal(&e)
}

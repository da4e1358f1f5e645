//! Who is asking, and what they may see (design/api.md, "Limits and roles").
//!
//! The API crate verifies bearer tokens and hands the schema a [`Principal`] in each
//! request's data (or the WebSocket's connection data). The schema never sees a token: it
//! only asks "which role?" — through the guards below on the fields that need more than
//! anonymous access, and through [`page_limit`] for the largest page a role may ask for.
//! A request without a principal in its data is anonymous (least privilege), so using the
//! schema without the API's layers can never widen access.

use async_graphql::{Context, Guard, Result};

use crate::errors::forbidden;
use crate::services::Services;

/// The roles of design/api.md. Ordered by nothing: a verifier is not "more" than a citizen,
/// each role is granted what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// No token.
    Anonymous,
    Citizen,
    Verifier,
    Registrar,
    Admin,
}

impl Role {
    /// Every role, anonymous first.
    pub const ALL: [Role; 5] = [
        Role::Anonymous,
        Role::Citizen,
        Role::Verifier,
        Role::Registrar,
        Role::Admin,
    ];

    /// The roles a token may carry (its `role` claim).
    pub const SIGNED_IN: [Role; 4] = [Role::Citizen, Role::Verifier, Role::Registrar, Role::Admin];

    /// The name used in tokens, flags and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anonymous => "anonymous",
            Role::Citizen => "citizen",
            Role::Verifier => "verifier",
            Role::Registrar => "registrar",
            Role::Admin => "admin",
        }
    }

    /// A role by its name (exact, lower case), including `anonymous`.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Any role but anonymous.
    pub fn is_signed_in(self) -> bool {
        self != Role::Anonymous
    }

    /// Registrars and admins see the sync worker's errors and operational detail.
    pub fn sees_operations(self) -> bool {
        matches!(self, Role::Registrar | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of one request: a role and, when signed in, the token's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// The token's `sub`; `None` for anonymous callers.
    pub subject: Option<String>,
}

impl Principal {
    /// No token.
    pub const ANONYMOUS: Principal = Principal {
        role: Role::Anonymous,
        subject: None,
    };

    /// A caller whose token was verified.
    pub fn signed_in(role: Role, subject: impl Into<String>) -> Principal {
        Principal {
            role,
            subject: Some(subject.into()),
        }
    }
}

/// The caller of the request `ctx` belongs to (anonymous when none was given).
pub(crate) fn principal<'a>(ctx: &'a Context<'_>) -> &'a Principal {
    ctx.data_opt::<Principal>().unwrap_or(&Principal::ANONYMOUS)
}

/// The largest `first` the caller's role may ask for.
pub(crate) fn page_limit(ctx: &Context<'_>) -> (usize, Role) {
    let role = principal(ctx).role;
    let config = &ctx.data_unchecked::<Services>().0.config;
    let limit = if role.is_signed_in() {
        config.max_page
    } else {
        config.max_page_anonymous.min(config.max_page)
    };
    (limit, role)
}

/// Refuses anonymous callers: listing everything a person owns needs a signed-in role, so
/// that the registry cannot be scraped person by person.
pub(crate) struct SignedIn {
    /// What is being refused, for the message ("`owners`").
    pub what: &'static str,
}

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        require_signed_in(ctx, self.what)
    }
}

/// The check of [`SignedIn`], for resolvers that refuse only some arguments.
pub(crate) fn require_signed_in(ctx: &Context<'_>, what: &str) -> Result<()> {
    if principal(ctx).role.is_signed_in() {
        return Ok(());
    }
    Err(forbidden(format!(
        "{what} lists everything a person owns and needs a signed-in role \
         (citizen, verifier, registrar or admin): send Authorization: Bearer <token>"
    )))
}

/// Refuses everyone but registrars and admins (sync errors, operational detail).
pub(crate) struct Operators {
    pub what: &'static str,
}

impl Guard for Operators {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let role = principal(ctx).role;
        if role.sees_operations() {
            return Ok(());
        }
        Err(forbidden(format!(
            "{} is operational detail for the registrar and admin roles; this request's role is {role}",
            self.what
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("root"), None);
        assert!(!Role::SIGNED_IN.contains(&Role::Anonymous));
        assert!(Role::Registrar.sees_operations() && Role::Admin.sees_operations());
        assert!(!Role::Citizen.sees_operations() && !Role::Verifier.sees_operations());
    }
}

//! The GraphQL types of design/api.md (names are the contract: keep them).

pub(crate) mod meta;
pub(crate) mod property;
pub(crate) mod search;
pub(crate) mod verification;

use async_graphql::{Enum, InputObject, SimpleObject, ID};
use chrono::{DateTime, Utc};

pub(crate) use meta::{ChannelProgress, Meta, PropertyChange};
pub(crate) use property::{
    Owner, OwnerConnection, Property, PropertyConnection, PropertyVersionConnection,
};
pub(crate) use search::SearchResult;
pub(crate) use verification::Verification;

/// How fresh an answer must be.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// The local replica, whatever its lag.
    Replica,
    /// The replica when it is within the freshness bound, otherwise the ledger; a record
    /// missing locally is looked up on the ledger too.
    #[default]
    Fresh,
    /// Always the ledger.
    Ledger,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum PropertyOrder {
    #[default]
    IdAsc,
    CreatedAtAsc,
    CreatedAtDesc,
    UpdatedAtDesc,
    MarketValueDesc,
    AreaDesc,
}

impl PropertyOrder {
    pub fn name(self) -> &'static str {
        match self {
            PropertyOrder::IdAsc => "ID_ASC",
            PropertyOrder::CreatedAtAsc => "CREATED_AT_ASC",
            PropertyOrder::CreatedAtDesc => "CREATED_AT_DESC",
            PropertyOrder::UpdatedAtDesc => "UPDATED_AT_DESC",
            PropertyOrder::MarketValueDesc => "MARKET_VALUE_DESC",
            PropertyOrder::AreaDesc => "AREA_DESC",
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum VerificationStatus {
    Pending,
    Verified,
    Disputed,
    Rejected,
}

impl VerificationStatus {
    pub fn as_db(self) -> &'static str {
        self.ledger().as_str()
    }

    pub fn ledger(self) -> ledger::model::VerificationStatus {
        use ledger::model::VerificationStatus as L;
        match self {
            VerificationStatus::Pending => L::Pending,
            VerificationStatus::Verified => L::Verified,
            VerificationStatus::Disputed => L::Disputed,
            VerificationStatus::Rejected => L::Rejected,
        }
    }

    pub fn of(s: ledger::model::VerificationStatus) -> Self {
        use ledger::model::VerificationStatus as L;
        match s {
            L::Pending => VerificationStatus::Pending,
            L::Verified => VerificationStatus::Verified,
            L::Disputed => VerificationStatus::Disputed,
            L::Rejected => VerificationStatus::Rejected,
        }
    }
}

/// Where an answer came from.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Replica,
    Ledger,
}

/// Restricts `properties` (every field) and `search` (location, land type, status).
#[derive(InputObject, Clone, Debug, Default)]
pub struct PropertyFilter {
    /// Two-letter state code, e.g. TS (any case).
    pub state: Option<String>,
    pub district: Option<String>,
    pub mandal: Option<String>,
    pub village: Option<String>,
    pub survey_no: Option<String>,
    /// A village's account number: needs `state` and `district` (or finer) with it.
    pub khata_no: Option<String>,
    /// Properties this owner (owner_ref) holds now.
    pub owner_id: Option<ID>,
    pub land_type: Option<String>,
    pub verification_status: Option<VerificationStatus>,
    pub year: Option<i32>,
    /// 0–99.
    pub shard: Option<i32>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl PropertyFilter {
    /// The location levels filtered on, when the filter is exactly a prefix of
    /// (state, district, mandal, village) and nothing else.
    pub fn location_prefix(&self) -> Option<Vec<&str>> {
        let others = self.survey_no.is_some()
            || self.khata_no.is_some()
            || self.owner_id.is_some()
            || self.land_type.is_some()
            || self.verification_status.is_some()
            || self.year.is_some()
            || self.shard.is_some()
            || self.created_after.is_some()
            || self.created_before.is_some();
        if others {
            return None;
        }
        let levels = [&self.state, &self.district, &self.mandal, &self.village];
        let n = levels.iter().take_while(|l| l.is_some()).count();
        if levels[n..].iter().any(|l| l.is_some()) {
            return None;
        }
        Some(levels[..n].iter().flat_map(|l| l.as_deref()).collect())
    }
}

/// Relay page info.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Location {
    pub state: String,
    pub district: String,
    pub mandal: String,
    pub village: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LocationCount {
    pub name: String,
    /// state, district, mandal or village.
    pub level: String,
    pub properties: i64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Document {
    pub doc_hash: String,
    pub doc_type: String,
    pub linked_at: DateTime<Utc>,
    pub tx_id: String,
}

/// A committed transaction: where a value was written.
#[derive(SimpleObject, Clone, Debug)]
pub struct LedgerVersion {
    pub channel: String,
    pub block_number: i64,
    pub tx_index: i64,
    pub tx_id: String,
}

impl From<&crate::db::VersionRef> for LedgerVersion {
    fn from(v: &crate::db::VersionRef) -> Self {
        LedgerVersion {
            channel: v.channel.clone(),
            block_number: v.block_number,
            tx_index: v.tx_index,
            tx_id: v.tx_id.clone(),
        }
    }
}

/// Checks `first` against the page limit of the caller's role (anonymous callers get the
/// tightest); the refusal names the limit and the role.
/// `first` defaults to 20 (also when given as null).
pub(crate) fn page_size(
    ctx: &async_graphql::Context<'_>,
    first: Option<i32>,
) -> async_graphql::Result<i64> {
    let (max, role) = crate::auth::page_limit(ctx);
    check_page(
        first,
        max,
        role,
        ctx.data_unchecked::<crate::Services>().0.config.max_page,
    )
}

fn check_page(
    first: Option<i32>,
    max: usize,
    role: crate::Role,
    signed_in_max: usize,
) -> async_graphql::Result<i64> {
    let first = first.unwrap_or(20);
    if first < 0 {
        return Err(crate::errors::bad_input(format!(
            "`first` must be between 0 and {max}, got {first}"
        )));
    }
    if first as usize > max {
        let hint = if role.is_signed_in() || signed_in_max <= max {
            "page with `after`".to_string()
        } else {
            format!("page with `after`, or sign in for pages of up to {signed_in_max}")
        };
        return Err(crate::errors::bad_input(format!(
            "`first` is {first}, above the page limit of {max} for the {role} role; {hint}"
        )));
    }
    Ok(i64::from(first))
}

#[cfg(test)]
mod tests {
    use super::check_page;
    use crate::Role;

    #[test]
    fn page_limits_name_the_limit_and_the_role() {
        assert_eq!(check_page(None, 20, Role::Anonymous, 100).ok(), Some(20));
        assert_eq!(
            check_page(Some(20), 20, Role::Anonymous, 100).ok(),
            Some(20)
        );
        let e = check_page(Some(21), 20, Role::Anonymous, 100)
            .err()
            .map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("`first` is 21, above the page limit of 20 for the anonymous role; page with `after`, or sign in for pages of up to 100")
        );
        let e = check_page(Some(101), 100, Role::Citizen, 100)
            .err()
            .map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("`first` is 101, above the page limit of 100 for the citizen role; page with `after`")
        );
        assert!(check_page(Some(-1), 100, Role::Admin, 100).is_err());
    }
}

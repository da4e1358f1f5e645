//! DataLoaders: the per-property fields of a page (documents, first page of history) and the
//! properties behind search hits are each fetched in one statement for the whole page, so a
//! page of 100 properties with owners and documents costs a small, fixed number of
//! statements whatever its size. (A property's owners need none: they are part of the
//! record.) An owner's properties — the first page of `Owner.properties` and its
//! `totalCount` — are batched by owner the same way, so a page of owners with their
//! properties costs one statement per level, not one per owner.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::db::{DocumentRow, PropertyRow, VersionRow};
use crate::errors::db_error;
use crate::services::Services;

pub(crate) struct Loaders {
    services: Services,
}

impl Loaders {
    pub fn new(services: &Services) -> Self {
        Loaders {
            services: services.clone(),
        }
    }
}

/// The documents of a property (ID as on chain).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DocumentsKey(pub String);

/// The first `n` versions of a property (ID as on chain).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HistoryKey(pub String, pub i64);

/// The first page of an owner's properties: (owner_ref, rows to fetch per owner). The rows
/// are one more than the page, to know whether there is a next page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OwnerPropertiesKey(pub String, pub i64);

/// The number of properties an owner holds now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OwnerCountKey(pub String);

/// A property from the replica by its ID as on chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PropertyKey(pub String);

impl Loader<DocumentsKey> for Loaders {
    type Value = Arc<Vec<DocumentRow>>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[DocumentsKey],
    ) -> Result<HashMap<DocumentsKey, Self::Value>, Self::Error> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self.services.0.db.documents(&ids).await.map_err(db_error)?;
        let mut out: HashMap<DocumentsKey, Vec<DocumentRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in rows {
            if let Some(v) = out.get_mut(&DocumentsKey(row.property_id.clone())) {
                v.push(row);
            }
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl Loader<HistoryKey> for Loaders {
    type Value = Vec<VersionRow>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[HistoryKey],
    ) -> Result<HashMap<HistoryKey, Self::Value>, Self::Error> {
        // One statement per distinct page size (in practice one).
        let mut by_size: HashMap<i64, Vec<String>> = HashMap::new();
        for k in keys {
            by_size.entry(k.1).or_default().push(k.0.clone());
        }
        let mut out: HashMap<HistoryKey, Vec<VersionRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for (n, ids) in by_size {
            let rows = self
                .services
                .0
                .db
                .first_versions(&ids, n)
                .await
                .map_err(db_error)?;
            for row in rows {
                if let Some(v) = out.get_mut(&HistoryKey(row.property_id.clone(), n)) {
                    v.push(row);
                }
            }
        }
        Ok(out)
    }
}

impl Loader<PropertyKey> for Loaders {
    type Value = Arc<PropertyRow>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[PropertyKey],
    ) -> Result<HashMap<PropertyKey, Self::Value>, Self::Error> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .services
            .0
            .db
            .properties_by_ids(&ids)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (PropertyKey(r.id.clone()), Arc::new(r)))
            .collect())
    }
}

impl Loader<OwnerPropertiesKey> for Loaders {
    type Value = Arc<Vec<PropertyRow>>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[OwnerPropertiesKey],
    ) -> Result<HashMap<OwnerPropertiesKey, Self::Value>, Self::Error> {
        // One statement per distinct page size (in practice one).
        let mut by_size: HashMap<i64, Vec<String>> = HashMap::new();
        for k in keys {
            by_size.entry(k.1).or_default().push(k.0.clone());
        }
        let mut out: HashMap<OwnerPropertiesKey, Vec<PropertyRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for (n, owners) in by_size {
            let rows = self
                .services
                .0
                .db
                .owners_properties(&owners, n)
                .await
                .map_err(db_error)?;
            for (owner, row) in rows {
                if let Some(v) = out.get_mut(&OwnerPropertiesKey(owner, n)) {
                    v.push(row);
                }
            }
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl Loader<OwnerCountKey> for Loaders {
    type Value = i64;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[OwnerCountKey],
    ) -> Result<HashMap<OwnerCountKey, Self::Value>, Self::Error> {
        let owners: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let counts = self
            .services
            .0
            .db
            .owners_properties_counts(&owners)
            .await
            .map_err(db_error)?;
        let mut out: HashMap<OwnerCountKey, i64> = keys.iter().map(|k| (k.clone(), 0)).collect();
        for (owner, n) in counts {
            out.insert(OwnerCountKey(owner), n);
        }
        Ok(out)
    }
}

//! Keyset cursors: the sort key of the last row of a page, so the next page starts right
//! after it however many rows come before — fast on the millionth page, and with no
//! duplicates or gaps while rows are inserted (an OFFSET would shift under writes).
//!
//! A cursor is opaque to clients (base64url of a small JSON), names the order it was made
//! for, and is refused with a clear message when it is malformed or used with another order.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::db::PropertyRow;
use crate::errors::bad_input;
use crate::types::PropertyOrder;

/// The key of a property in a `properties` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Key {
    Id {
        state: String,
        year: i32,
        shard: i32,
        sequence: i64,
        id: String,
    },
    /// A single sort column (times in microseconds) and the ID as tie-break.
    Value { value: i64, id: String },
}

#[derive(Serialize, Deserialize)]
struct PropertyCursor {
    o: String,
    k: Key,
}

impl Key {
    pub fn of(row: &PropertyRow, order: PropertyOrder) -> Key {
        let s = &row.sort;
        let value = match order {
            PropertyOrder::IdAsc => {
                return Key::Id {
                    state: s.state.clone(),
                    year: s.year,
                    shard: s.shard,
                    sequence: s.sequence,
                    id: row.id.clone(),
                }
            }
            PropertyOrder::CreatedAtAsc | PropertyOrder::CreatedAtDesc => s.created_at,
            PropertyOrder::UpdatedAtDesc => s.updated_at,
            PropertyOrder::MarketValueDesc => s.market_value,
            PropertyOrder::AreaDesc => s.area_sq_m,
        };
        Key::Value {
            value,
            id: row.id.clone(),
        }
    }
}

fn encode_json<T: Serialize>(v: &T) -> String {
    // Serialising these plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

fn decode_json<T: DeserializeOwned>(cursor: &str, what: &str) -> async_graphql::Result<T> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad_input(format!("`after` is not a {what} cursor: use a cursor from a previous page's edges or pageInfo.endCursor")))?;
    serde_json::from_slice(&bytes).map_err(|_| {
        bad_input(format!(
            "`after` is not a {what} cursor: use a cursor from a previous page's edges or pageInfo.endCursor"
        ))
    })
}

pub(crate) fn encode_property(order: PropertyOrder, key: &Key) -> String {
    encode_json(&PropertyCursor {
        o: order.name().to_string(),
        k: key.clone(),
    })
}

pub(crate) fn decode_property(cursor: &str, order: PropertyOrder) -> async_graphql::Result<Key> {
    let c: PropertyCursor = decode_json(cursor, "properties")?;
    if c.o != order.name() {
        return Err(bad_input(format!(
            "`after` is a cursor for orderBy: {}, but this query orders by {}",
            c.o,
            order.name()
        )));
    }
    let shape_ok = matches!(
        (&c.k, order),
        (Key::Id { .. }, PropertyOrder::IdAsc) | (Key::Value { .. }, _)
    ) && !(order == PropertyOrder::IdAsc && matches!(c.k, Key::Value { .. }));
    if !shape_ok {
        return Err(bad_input(
            "`after` does not fit this order; use a cursor from the same query",
        ));
    }
    Ok(c.k)
}

/// Cursors of the other connections: a tuple of plain values, tagged with the connection.
#[derive(Serialize, Deserialize)]
struct Tagged<T> {
    c: String,
    k: T,
}

pub(crate) fn encode<T: Serialize>(connection: &str, key: T) -> String {
    encode_json(&Tagged {
        c: connection.to_string(),
        k: key,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(
    connection: &str,
    cursor: &str,
) -> async_graphql::Result<T> {
    let t: Tagged<T> = decode_json(cursor, connection)?;
    if t.c != connection {
        return Err(bad_input(format!(
            "`after` is a cursor of {}, not of {connection}",
            t.c
        )));
    }
    Ok(t.k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_cursors_round_trip_and_refuse_other_orders() {
        let k = Key::Value {
            value: 1_700_000_000_000_000,
            id: "LRI-IND-TS-2026-03-00567".into(),
        };
        let c = encode_property(PropertyOrder::CreatedAtDesc, &k);
        assert_eq!(
            decode_property(&c, PropertyOrder::CreatedAtDesc).unwrap(),
            k
        );
        let e = decode_property(&c, PropertyOrder::AreaDesc).unwrap_err();
        assert!(e.message.contains("CREATED_AT_DESC"), "{}", e.message);
        assert!(decode_property(&c, PropertyOrder::IdAsc).is_err());
        let e = decode_property("not a cursor!", PropertyOrder::IdAsc).unwrap_err();
        assert!(
            e.message.contains("not a properties cursor"),
            "{}",
            e.message
        );
    }

    #[test]
    fn tagged_cursors_name_their_connection() {
        let c = encode("owners", ("ravi", "O-1"));
        let k: (String, String) = decode("owners", &c).unwrap();
        assert_eq!(k, ("ravi".into(), "O-1".into()));
        assert!(decode::<(String, String)>("history", &c).is_err());
    }
}

-- landql read model, version 3: the indexes two more API queries need (design/api.md).

-- Query: properties(orderBy: UPDATED_AT_DESC) — recently changed parcels first, keyset-paged
-- by (updated_at, id). Migration 0001 left updated_at unindexed so that transfers stay HOT
-- updates; the API contract needs this order, so a transfer now also touches this one
-- index. Measured cost on the sync catch-up is in BENCHMARKS.md.
CREATE INDEX properties_updated
    ON properties (updated_at, id);

-- Query: owners(name:) — owners whose name starts with a prefix, case-insensitively,
-- keyset-paged by (lower(name), owner_ref). The "C" collation (byte order) makes LIKE
-- 'prefix%', the keyset comparison and the ORDER BY all one index range scan whatever the
-- database's collation; the API writes `lower(name) COLLATE "C"` to match. Spelling variants
-- and other scripts are the search index's job (search), not this index's.
CREATE INDEX owners_name
    ON owners ((lower(name) COLLATE "C"), owner_ref);

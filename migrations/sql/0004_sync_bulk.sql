-- landql read model, version 4: the sync worker's bulk catch-up.
--
-- A catch-up larger than the read model itself (a new replica, or one that was away for
-- long) spends most of its time maintaining secondary indexes row by row: targets.md measures
-- COPY with only a primary key at ~7x the rate with nine indexes. So for such a catch-up the
-- sync worker drops the secondary indexes (never a primary key or unique index: upserts and
-- replays depend on those), loads, and builds them again in one sorted pass each once it is
-- near the tip.
--
-- Each dropped index's definition is kept here, written in the same transaction as its DROP,
-- and deleted in the same transaction as its CREATE. So a worker killed at any moment leaves
-- every index either present or recorded here, and the next leader builds what is recorded
-- before it writes at the tip. While rows are here the API's answers stay correct; only the
-- orders and filters those indexes served are slower.
CREATE TABLE sync_dropped_indexes (
    -- The index's name (regclass text), e.g. properties_location.
    name       text PRIMARY KEY,
    -- pg_get_indexdef() of the index, replayed as is to build it again.
    definition text NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now()
);

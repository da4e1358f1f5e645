-- landql read model, version 1.
--
-- Everything here is a projection of the ledger (design/system.md, invariant 1) and can be
-- rebuilt from it. Exactly one sync worker writes (invariant 3); it applies a batch of blocks
-- and the channel checkpoint in one transaction (invariant 2).
--
-- Conventions
-- * Times. The ledger's times are Unix milliseconds; they are stored as timestamptz: the same
--   8 bytes as a bigint, microsecond precision holds every millisecond exactly, range filters
--   and date arithmetic work natively, and psql, PostGraphile and GraphQL clients read them
--   as times instead of opaque numbers. The ledger's own integers are never lost: `record`
--   keeps them as written. Convert with ms_to_timestamptz() below (exact, see there).
-- * Versions. (channel, block_number, tx_index, tx_id) names the committed transaction that
--   wrote a row. A property lives on one channel, so its versions compare by
--   (block_number, tx_index); the sync worker only overwrites a row with a newer version,
--   which makes applying a block twice a no-op.
-- * Numbers from records (areas, money, shares) are bigint, as the ledger's are i64.
-- * No foreign keys. The single writer writes parents and children in one transaction, and
--   an FK costs a lookup plus a row lock per inserted row on the ingest path; documents must
--   also be able to arrive before their property.
-- * Indexes. design/targets.md: COPY into a table with only a primary key runs ~7x faster than
--   with nine indexes, so every secondary index below names the API query it serves; nothing
--   is indexed "just in case". Full-text and fuzzy search (names, places, survey numbers) is
--   tantivy's job, not Postgres's.

-- Unix milliseconds -> timestamptz. float8 holds any ledger millisecond exactly (< 2^53) and
-- to_timestamp rounds to whole microseconds, so the result is exact. IMMUTABLE, so it can be
-- used in bulk statements (UNNEST/COPY staging) and inlined.
CREATE FUNCTION ms_to_timestamptz(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN to_timestamp(ms::double precision / 1000);

-- The current version of every property: one row per property ID (ledger world state).
CREATE TABLE properties (
    -- The ID string exactly as on chain (one of the three forms ledger::PropertyId parses).
    -- Primary key: property by ID, the hottest query (targets.md: p99 < 5 ms at 2 000 req/s).
    id                  text PRIMARY KEY,
    -- The ID's parts, for ordering like ledger::PropertyId (state, year, shard, sequence).
    state               text NOT NULL,
    year                integer NOT NULL,
    shard               integer,            -- NULL for legacy (unsharded) IDs
    sequence            bigint NOT NULL,
    -- Location and identification, from the record.
    district            text NOT NULL,
    mandal              text NOT NULL,
    village             text NOT NULL,
    survey_no           text NOT NULL,
    khata_no            text,               -- optional in records
    area_sq_m           bigint NOT NULL,
    area_text           text NOT NULL,
    land_type           text NOT NULL,
    market_value        bigint NOT NULL,    -- whole rupees
    -- pending | verified | disputed | rejected. No CHECK: the chaincode validates, and the
    -- read model must take whatever the ledger committed rather than stall the sync.
    verification_status text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    -- The record as on chain, so the API can serve it and anyone can re-hash it. jsonb keeps
    -- values, not bytes (key order, spacing); the hash is over JCS, which does not care.
    record              jsonb NOT NULL,
    record_hash         text NOT NULL,      -- sha256(JCS(record)), lower-case hex
    -- The version: the transaction that wrote this record.
    channel             text NOT NULL,
    block_number        bigint NOT NULL,
    tx_index            integer NOT NULL,
    tx_id               text NOT NULL
)
-- Transfers and corrections rewrite rows in place; free space on each page lets those
-- updates stay HOT (no index touched) when no indexed column changes. updated_at is
-- deliberately not indexed for the same reason.
WITH (fillfactor = 90);

-- Query: properties(...) connections in ID order (the default order), keyset-paged by
-- (state, year, shard, sequence, id) > cursor, optionally filtered by state (the leading
-- column). coalesce(shard, -1) puts legacy IDs first, as ledger::PropertyId orders them, and
-- keeps the row comparison total (a NULL would make it unknown); id breaks the tie between two
-- spellings of one number. The API must use the same expression to hit this index.
CREATE INDEX properties_id_order
    ON properties (state, year, (coalesce(shard, -1)), sequence, id);

-- Query: filter by state / district / mandal / village (any leading prefix), and the citizen's
-- lookup of a survey number within a village (all five columns). Also serves location counts'
-- drill-down pages when they list properties. Not unique: the chaincode refuses duplicate
-- parcels at creation, but a correction applied in a bulk statement may pass through a
-- transient duplicate.
CREATE INDEX properties_location
    ON properties (state, district, mandal, village, survey_no);

-- Query: newest (or oldest) registrations first, keyset-paged by (created_at, id).
CREATE INDEX properties_created
    ON properties (created_at, id);

-- Query: sort by market value (most / least valuable first), keyset-paged by
-- (market_value, id); also range filters on market value.
CREATE INDEX properties_market_value
    ON properties (market_value, id);

-- Query: sort by area, keyset-paged by (area_sq_m, id); also range filters on area.
CREATE INDEX properties_area
    ON properties (area_sq_m, id);

-- Query: a state's queue of pending verifications, oldest first, keyset-paged by
-- (created_at, id) — the registrar's work list. Partial: only pending rows are in it, so it
-- stays small once records get verified, and updates of other statuses never touch it.
CREATE INDEX properties_pending
    ON properties (state, created_at, id)
    WHERE verification_status = 'pending';

-- People who own land. One owner_ref (stable pseudonym) across all their parcels.
CREATE TABLE owners (
    owner_ref   text PRIMARY KEY,    -- Query: owner by ref.
    -- The name as last recorded (any script). A correction on one parcel renames the owner
    -- here; each parcel's own spelling stays in its record.
    name        text NOT NULL,
    father_name text,
    -- Ledger time of the version that set name/father_name: the sync worker only overwrites
    -- with a newer one, so the result does not depend on the order channels are read in.
    updated_at  timestamptz NOT NULL
);

-- Who owns each property now (joint owners in their order on the record, with shares).
CREATE TABLE ownerships (
    property_id text NOT NULL,
    position    integer NOT NULL,    -- index in record.owners, from 0
    owner_ref   text NOT NULL,
    share_pct   bigint NOT NULL,
    -- Query: the owners of a property (a property's owners field; dataloader by property_id).
    PRIMARY KEY (property_id, position)
);

-- Query: an owner's properties (owner → properties), keyset-paged by property_id; the API
-- joins properties by primary key.
CREATE INDEX ownerships_owner
    ON ownerships (owner_ref, property_id);

-- Every version of every property, oldest first: the full history, as the ledger's
-- /v1/records/{id}/history has it.
CREATE TABLE property_versions (
    property_id  text NOT NULL,
    block_number bigint NOT NULL,
    tx_index     integer NOT NULL,
    -- Part of the key because (block_number, tx_index) only names a transaction within a
    -- channel; a property stays on one channel, so the history still orders by block first.
    channel      text NOT NULL,
    tx_id        text NOT NULL,
    event        text NOT NULL,      -- PropertyCreated, PropertyTransferred, ...
    record       jsonb NOT NULL,     -- the record as written by this transaction
    record_hash  text NOT NULL,
    committed_at timestamptz NOT NULL, -- the transaction's ledger timestamp
    -- Query: a property's history in version order (the key's order). Also what makes
    -- re-applying a block a no-op (INSERT ... ON CONFLICT DO NOTHING).
    PRIMARY KEY (property_id, block_number, tx_index, channel)
);

-- Documents linked to properties (from the docs channel). No foreign key to properties: the
-- docs channel is read independently, so a document can arrive before its property.
CREATE TABLE documents (
    property_id  text NOT NULL,
    doc_hash     text NOT NULL,
    doc_type     text NOT NULL,
    linked_at    timestamptz NOT NULL,
    channel      text NOT NULL,
    block_number bigint NOT NULL,
    tx_index     integer NOT NULL,
    tx_id        text NOT NULL,
    -- Query: a property's documents (key prefix), and one document by property and hash.
    PRIMARY KEY (property_id, doc_hash)
);

-- Property counts per location, kept up to date by the triggers below (the sync worker does
-- not write this table). Rolled up: '' stands for "all" at a level, so
--   ('TS', '', '', '')                     the state's total,
--   ('TS', 'K.V.Rangareddy', '', '')       a district's,
--   ('TS', 'K.V.Rangareddy', 'Saroornagar', '')  a mandal's,
--   ('TS', ..., 'Balapur')                 a village's,
--   ('', '', '', '')                       every property.
-- (Real location names are never empty.) A count can reach 0 when a correction moves every
-- parcel out of a misspelt village; such rows are deleted.
CREATE TABLE location_counts (
    state      text NOT NULL,
    district   text NOT NULL,
    mandal     text NOT NULL,
    village    text NOT NULL,
    properties bigint NOT NULL,
    -- Query: one location's count, and the children of a level (e.g. the mandals of a
    -- district: state = $1 AND district = $2 AND mandal <> '' AND village = ''), by prefix.
    PRIMARY KEY (state, district, mandal, village)
);

-- Adds (sign = +1) or removes (sign = -1) the rows of the statement's transition table
-- `changed_rows` at every rollup level. Statement-level, so a bulk insert of N rows costs one
-- grouped upsert, not N.
CREATE FUNCTION location_counts_apply() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := TG_ARGV[0]::bigint;
BEGIN
    INSERT INTO location_counts AS c (state, district, mandal, village, properties)
    SELECT coalesce(state, ''), coalesce(district, ''), coalesce(mandal, ''),
           coalesce(village, ''), sign * count(*)
    FROM changed_rows
    GROUP BY ROLLUP (state, district, mandal, village)
    ON CONFLICT (state, district, mandal, village)
        DO UPDATE SET properties = c.properties + excluded.properties;
    IF sign < 0 THEN
        DELETE FROM location_counts WHERE properties = 0;
    END IF;
    RETURN NULL;
END
$$;

-- Updates move counts only when a location changes (a correction); the usual transfer or
-- status change nets to zero per key and writes nothing.
CREATE FUNCTION location_counts_move() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    moved bigint;
BEGIN
    INSERT INTO location_counts AS c (state, district, mandal, village, properties)
    SELECT coalesce(state, ''), coalesce(district, ''), coalesce(mandal, ''),
           coalesce(village, ''), sum(delta)
    FROM (
        SELECT state, district, mandal, village, -1 AS delta FROM old_rows
        UNION ALL
        SELECT state, district, mandal, village, 1 AS delta FROM new_rows
    ) AS changes
    GROUP BY ROLLUP (state, district, mandal, village)
    HAVING sum(delta) <> 0
    ON CONFLICT (state, district, mandal, village)
        DO UPDATE SET properties = c.properties + excluded.properties;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved > 0 THEN
        DELETE FROM location_counts WHERE properties = 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION location_counts_clear() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM location_counts;
    RETURN NULL;
END
$$;

-- INSERT ... ON CONFLICT DO UPDATE fires both the INSERT trigger (with the rows it inserted)
-- and the UPDATE trigger (with the rows it updated), and COPY fires the INSERT trigger, so
-- every way the sync worker writes keeps the counts right.
CREATE TRIGGER properties_count_insert
    AFTER INSERT ON properties
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_apply('1');

CREATE TRIGGER properties_count_update
    AFTER UPDATE ON properties
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_move();

CREATE TRIGGER properties_count_delete
    AFTER DELETE ON properties
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_apply('-1');

-- A rebuild truncates properties; the counts go with it.
CREATE TRIGGER properties_count_truncate
    AFTER TRUNCATE ON properties
    FOR EACH STATEMENT EXECUTE FUNCTION location_counts_clear();

-- What changed, in commit order: the feed of index followers and cache invalidation
-- (design/system.md: "change log (seq) + NOTIFY").
CREATE TABLE change_log (
    -- Assigned by the single writer as last seq + 1 inside the batch transaction, NOT by a
    -- sequence: a sequence hands out numbers that a rolled-back batch then never uses, leaving
    -- gaps, and numbers in an order different from commit order. With one writer (invariant
    -- 3) this seq is gap-free in commit order, so a follower can trust `seq > last`.
    -- Query: followers' `WHERE seq > $last ORDER BY seq LIMIT n` (primary key).
    seq          bigint PRIMARY KEY,
    property_id  text NOT NULL,
    event        text NOT NULL,      -- PropertyCreated, ..., DocumentLinked
    channel      text NOT NULL,
    block_number bigint NOT NULL,
    tx_index     integer NOT NULL,
    tx_id        text NOT NULL,
    -- When the batch was written to PostgreSQL (its transaction's start), not the ledger
    -- time: the gap between the two is the read model's lag.
    committed_at timestamptz NOT NULL DEFAULT now()
);

-- How far each channel has been applied. Written in the same transaction as the batch it
-- covers (invariant 2); the sync worker resumes from block_number + 1 and checks that the
-- next block's prev_hash equals block_hash.
CREATE TABLE checkpoints (
    channel      text PRIMARY KEY,   -- Query: the checkpoint of a channel; freshness reports.
    block_number bigint NOT NULL,
    block_hash   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Transactions (or blocks) the sync worker could not project: it records them here and moves
-- on rather than stall the channel. Written in the batch's transaction, so a replayed batch
-- cannot record an error twice. Small; read newest first by id (primary key), no index.
CREATE TABLE indexing_errors (
    id           bigserial PRIMARY KEY,
    channel      text NOT NULL,
    block_number bigint NOT NULL,
    tx_index     integer,            -- NULL when the whole block was at fault
    tx_id        text,
    error        text NOT NULL,
    -- The offending input as text, not jsonb: it may not be valid JSON at all.
    raw          text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

//! The statements of a batch's transaction, in the order [`super::write_once`] runs them.
//! Every bulk statement sends arrays (UNNEST) or COPY data, never a row at a time.

pub(super) const STAGE_BUFFERS: &str = "SET temp_buffers = '128MB'";

/// Memory for the batch's sorts, hashes and the row sets statement-level triggers see. The
/// location-count triggers keep every inserted or updated `properties` row of a statement
/// (about 1 KB each with its record), so at the default 4 MB a 5 000-event batch spilled
/// them to disk: 64 MB took the write time per 5 000 events from 288 to 259 ms at 1 M
/// records. Only this session sets it, and it runs one statement at a time, so the server
/// needs a few times 64 MB more at most (one per sort, hash or row set of the statement).
pub(super) const WORK_MEM: &str = "SET work_mem = '64MB'";

pub(super) const STAGE_DDL: &str = "
CREATE TEMP TABLE IF NOT EXISTS sync_stage (
    ord integer NOT NULL, latest boolean NOT NULL, fresh boolean NOT NULL, id text NOT NULL,
    state text NOT NULL, year integer NOT NULL, shard integer, sequence bigint NOT NULL,
    district text NOT NULL, mandal text NOT NULL, village text NOT NULL, survey_no text NOT NULL, khata_no text,
    area_sq_m bigint NOT NULL, area_text text NOT NULL, land_type text NOT NULL,
    market_value bigint NOT NULL, verification_status text NOT NULL, created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL, record jsonb NOT NULL, record_hash text NOT NULL,
    channel text NOT NULL, block_number bigint NOT NULL, tx_index integer NOT NULL,
    tx_id text NOT NULL, event text NOT NULL, committed_ms bigint NOT NULL
) ON COMMIT DELETE ROWS";

/// The columns of [`stage_row`].
pub(super) const STAGE_COPY: &str = "COPY sync_stage (ord, latest, fresh, id, state, year, shard, \
    sequence, district, mandal, village, survey_no, khata_no, area_sq_m, area_text, land_type, \
    market_value, verification_status, created_ms, updated_ms, record, record_hash, channel, \
    block_number, tx_index, tx_id, event, committed_ms) FROM STDIN (FORMAT binary)";

/// Every staged row into `property_versions` (appending and merging add to it).
macro_rules! insert_versions {
    () => {
        "INSERT INTO property_versions (property_id, block_number, tx_index, channel, tx_id,
            event, record, record_hash, committed_at)
        SELECT id, block_number, tx_index, channel, tx_id, event, record, record_hash,
            ms_to_timestamptz(committed_ms)
        FROM sync_stage"
    };
}

/// Staged rows into `properties`, those the condition that follows selects.
macro_rules! insert_properties_where {
    () => {
        "INSERT INTO properties AS p (id, state, year, shard, sequence, district, mandal,
            village, survey_no, khata_no, area_sq_m, area_text, land_type, market_value,
            verification_status, created_at, updated_at, record, record_hash, channel,
            block_number, tx_index, tx_id)
        SELECT id, state, year, shard, sequence, district, mandal, village, survey_no,
            khata_no, area_sq_m, area_text, land_type, market_value, verification_status,
            ms_to_timestamptz(created_ms), ms_to_timestamptz(updated_ms), record, record_hash,
            channel, block_number, tx_index, tx_id
        FROM sync_stage WHERE "
    };
}

/// History rows of the stage, when appending: every one is new.
pub(super) const APPEND_VERSIONS: &str = insert_versions!();

/// Inserted history rows when merging, answered as the staging ords of the applied events.
pub(super) const INSERT_VERSIONS: &str = concat!(
    "WITH ins AS (",
    insert_versions!(),
    "
    ON CONFLICT DO NOTHING
    RETURNING property_id, block_number, tx_index, channel)
SELECT s.ord FROM sync_stage s JOIN ins ON s.id = ins.property_id
    AND s.block_number = ins.block_number AND s.tx_index = ins.tx_index
    AND s.channel = ins.channel"
);

/// The newest rows of properties created in the batch, when appending.
pub(super) const APPEND_PROPERTIES: &str = concat!(insert_properties_where!(), "fresh");

/// The version guard (see `decode::Version::is_newer_than`), for a table aliased `t` whose
/// time column is `time`.
macro_rules! newer_guard {
    ($t:literal, $time:literal) => {
        concat!(
            "CASE WHEN ",
            $t,
            ".channel = excluded.channel ",
            "THEN (",
            $t,
            ".block_number, ",
            $t,
            ".tx_index) < (excluded.block_number, excluded.tx_index) ",
            "ELSE (",
            $t,
            ".",
            $time,
            ", ",
            $t,
            ".channel) < (excluded.",
            $time,
            ", excluded.channel) END"
        )
    };
}

pub(super) const UPSERT_PROPERTIES: &str = concat!(
    insert_properties_where!(),
    "latest AND NOT fresh
    ON CONFLICT (id) DO UPDATE SET state = excluded.state, year = excluded.year,
        shard = excluded.shard, sequence = excluded.sequence, district = excluded.district,
        mandal = excluded.mandal, village = excluded.village, survey_no = excluded.survey_no,
        khata_no = excluded.khata_no, area_sq_m = excluded.area_sq_m,
        area_text = excluded.area_text, land_type = excluded.land_type,
        market_value = excluded.market_value,
        verification_status = excluded.verification_status, created_at = excluded.created_at,
        updated_at = excluded.updated_at, record = excluded.record,
        record_hash = excluded.record_hash, channel = excluded.channel,
        block_number = excluded.block_number, tx_index = excluded.tx_index,
        tx_id = excluded.tx_id
    WHERE ",
    newer_guard!("p", "updated_at"),
    "
    RETURNING id, (xmax = 0) AS inserted"
);

pub(super) const DELETE_OWNERSHIPS: &str =
    "DELETE FROM ownerships WHERE property_id = ANY($1::text[])";

pub(super) const INSERT_OWNERSHIPS: &str = "
INSERT INTO ownerships (property_id, position, owner_ref, share_pct)
SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::bigint[])";

pub(super) const UPSERT_OWNERS: &str = "
INSERT INTO owners AS o (owner_ref, name, father_name, updated_at)
SELECT r, n, f, ms_to_timestamptz(t)
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(r, n, f, t)
ON CONFLICT (owner_ref) DO UPDATE SET name = excluded.name,
    father_name = excluded.father_name, updated_at = excluded.updated_at
WHERE (o.updated_at, o.name, coalesce(o.father_name, ''))
    < (excluded.updated_at, excluded.name, coalesce(excluded.father_name, ''))";

pub(super) const UPSERT_DOCUMENTS: &str = concat!(
    "WITH u AS (
        SELECT * FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::bigint[],
            $6::text[], $7::bigint[], $8::integer[], $9::text[])
        AS u(ord, property_id, doc_hash, doc_type, linked_ms, channel, block_number, tx_index, tx_id)),
    ins AS (
        INSERT INTO documents AS d (property_id, doc_hash, doc_type, linked_at, channel,
            block_number, tx_index, tx_id)
        SELECT property_id, doc_hash, doc_type, ms_to_timestamptz(linked_ms), channel,
            block_number, tx_index, tx_id FROM u
        ON CONFLICT (property_id, doc_hash) DO UPDATE SET doc_type = excluded.doc_type,
            linked_at = excluded.linked_at, channel = excluded.channel,
            block_number = excluded.block_number, tx_index = excluded.tx_index,
            tx_id = excluded.tx_id
        WHERE ",
    newer_guard!("d", "linked_at"),
    "
        RETURNING property_id, doc_hash)
    SELECT u.ord FROM u JOIN ins USING (property_id, doc_hash)"
);

pub(super) const INSERT_CHANGES: &str = "
INSERT INTO change_log (seq, property_id, event, channel, block_number, tx_index, tx_id)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
    $6::integer[], $7::text[])";

pub(super) const INSERT_ERRORS: &str = "
INSERT INTO indexing_errors (channel, block_number, tx_index, tx_id, error, raw)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::text[], $5::text[], $6::text[])
    AS u(c, b, i, t, e, r)
WHERE NOT EXISTS (SELECT 1 FROM indexing_errors x WHERE x.channel = u.c
    AND x.block_number = u.b AND x.tx_index IS NOT DISTINCT FROM u.i)";

pub(super) const UPSERT_CHECKPOINTS: &str = "
INSERT INTO checkpoints AS c (channel, block_number, block_hash, updated_at)
SELECT ch, b, h, now() FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(ch, b, h)
ON CONFLICT (channel) DO UPDATE SET block_number = excluded.block_number,
    block_hash = excluded.block_hash, updated_at = excluded.updated_at
WHERE c.block_number < excluded.block_number";

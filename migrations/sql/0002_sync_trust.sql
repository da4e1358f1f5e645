-- landql read model, version 2: what the sync worker trusts.
--
-- The sync worker checks every block's Ed25519 signature against one orderer key. Unless the
-- operator names the key (`landql sync --orderer-key`), the worker trusts the key the ledger
-- presents on first sync and pins it here (trust on first use); if the ledger later presents
-- another key, the worker refuses to go on rather than accept blocks signed by a stranger.
-- Re-pinning after a deliberate key rotation is an operator's act: DELETE the row.
CREATE TABLE sync_trust (
    -- At most one row: the key the read model's blocks were checked against.
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    orderer_key text NOT NULL,          -- Ed25519 public key, 64 lower-case hex digits
    pinned_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per accepted PLC operation, in acceptance order per DID.
CREATE TABLE plc_ops (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    did        TEXT NOT NULL,
    cid        TEXT NOT NULL,
    op         TEXT NOT NULL,           -- the signed op as JSON (Op.MarshalJSON)
    tombstone  INTEGER NOT NULL DEFAULT 0,
    nullified  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,           -- RFC 3339, millisecond precision, UTC
    UNIQUE (did, cid)
);

CREATE INDEX plc_ops_did_seq ON plc_ops (did, seq);
